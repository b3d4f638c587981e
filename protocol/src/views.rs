//! What the portal shows: the shapes server functions and the REST API send
//! to browsers and clients. The platform builds them; the UI renders them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::*;

pub mod drain;
pub mod kubernetes;
pub mod load_balancers;
pub mod monitoring;

/// One page of a longer list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

impl<T> Page<T> {
    pub fn pages(&self) -> u32 {
        let per_page = i64::from(self.per_page.max(1));
        u32::try_from((self.total + per_page - 1) / per_page)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// A page request, clamped to sane bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    pub const DEFAULT_PER_PAGE: u32 = 20;
    pub const MAX_PER_PAGE: u32 = 100;

    pub fn new(page: u32, per_page: u32) -> Self {
        Self {
            page: page.max(1),
            per_page: per_page.clamp(1, Self::MAX_PER_PAGE),
        }
    }

    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    /// This page's `items` out of `total`.
    pub fn page_of<T>(&self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::new(1, Self::DEFAULT_PER_PAGE)
    }
}

// ----- identity -----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AccountView {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    pub is_operator: bool,
    pub totp_enabled: bool,
    pub passkeys: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A new API key: the secret is shown this once and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct PasskeyView {
    pub id: PasskeyId,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A TOTP secret waiting for its first code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TotpEnrollment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    pub otpauth_url: String,
    /// The otpauth URL as a QR code, an SVG document.
    pub qr_svg: String,
}

// ----- tenancy -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "organization_verification", rename_all = "lowercase")
)]
pub enum Verification {
    Pending,
    Verified,
    Rejected,
}

impl Verification {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending verification",
            Self::Verified => "verified",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "organization_state", rename_all = "lowercase")
)]
pub enum OrganizationState {
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct OrganizationView {
    pub id: OrganizationId,
    pub name: String,
    pub verification: Verification,
    pub state: OrganizationState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The caller's roles at organization scope, e.g. ["owner"].
    pub my_roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct ProjectView {
    pub id: ProjectId,
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub name: String,
    pub workspace_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "scope_kind", rename_all = "lowercase")
)]
pub enum ScopeKind {
    Organization,
    Project,
    Workspace,
}

/// Where a role binding applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ScopeView {
    pub kind: ScopeKind,
    /// The project or workspace; `None` for the organization.
    pub id: Option<uuid::Uuid>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub enum RoleRef {
    Builtin(String),
    Custom { id: RoleId, name: String },
}

impl RoleRef {
    pub fn name(&self) -> &str {
        match self {
            Self::Builtin(key) => key,
            Self::Custom { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BindingView {
    pub id: RoleBindingId,
    pub scope: ScopeView,
    pub role: RoleRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MemberView {
    pub account_id: AccountId,
    pub email: String,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
    pub bindings: Vec<BindingView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct InvitationView {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub email: String,
    pub role: RoleRef,
    pub invited_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RoleView {
    pub id: RoleId,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PermissionView {
    pub key: String,
    pub description: String,
    /// "organization", "project", "workspace" or "platform".
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BuiltinRoleView {
    pub key: String,
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct AuditView {
    pub id: AuditEntryId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor_email: Option<String>,
    pub via_api_key: bool,
    pub organization_id: Option<OrganizationId>,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub details: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct EmailView {
    pub id: EmailId,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "workspace_kind", rename_all = "lowercase")
)]
pub enum WorkspaceKind {
    Kubernetes,
    Baremetal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "workspace_state", rename_all = "lowercase")
)]
pub enum WorkspaceState {
    Initializing,
    Provisioning,
    Active,
    Failed,
    Deleting,
}

impl WorkspaceState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Initializing => "initializing",
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "control_plane_sizing", rename_all = "snake_case")
)]
pub enum Sizing {
    /// Three control-plane replicas.
    HighAvailable,
    /// One replica.
    SingleNode,
}

impl Sizing {
    pub fn replicas(self) -> i32 {
        match self {
            Self::HighAvailable => 3,
            Self::SingleNode => 1,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::HighAvailable => "high_available",
            Self::SingleNode => "single_node",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct WorkspaceView {
    pub id: WorkspaceId,
    pub project_id: ProjectId,
    pub name: String,
    pub kind: WorkspaceKind,
    pub state: WorkspaceState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Everything the workspace page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct WorkspaceDetails {
    pub id: WorkspaceId,
    pub project_id: ProjectId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub kind: WorkspaceKind,
    pub state: WorkspaceState,
    #[cfg_attr(feature = "server", sqlx(json))]
    pub metadata: std::collections::BTreeMap<String, String>,
    pub kubernetes_version: Option<String>,
    pub provider_type: Option<String>,
    pub ingress: bool,
    pub sizing: Option<Sizing>,
    pub management_cluster: Option<String>,
    pub namespace: Option<String>,
    /// The managed network's block, when the portal plans networks.
    pub network: Option<String>,
    pub endpoint: Option<String>,
    pub dns_name: Option<String>,
    pub has_kubeconfig: bool,
    pub api_key_prefix: Option<String>,
    pub oidc_enabled: bool,
    pub session_lifetime_mins: i32,
    pub maintenance_weekday: i16,
    pub maintenance_hour: i16,
    pub auto_patch: bool,
    pub failure_reason: Option<String>,
    pub health: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub health_checked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What creating a workspace asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewWorkspace {
    pub name: String,
    pub kind: WorkspaceKind,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Kubernetes only: "1.33.2", an active catalog version.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub ingress: bool,
    /// Kubernetes only: hetzner_cloud, ionos_dcd, local, ...
    #[serde(default)]
    pub provider_type: Option<String>,
    #[serde(default)]
    pub management_cluster: Option<ManagementClusterId>,
    #[serde(default)]
    pub sizing: Option<Sizing>,
    /// The root-cluster path; operators only.
    #[serde(default)]
    pub cluster_kind: bool,
}

impl NewWorkspace {
    pub fn baremetal(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: WorkspaceKind::Baremetal,
            metadata: Default::default(),
            version: None,
            ingress: false,
            provider_type: None,
            management_cluster: None,
            sizing: None,
            cluster_kind: false,
        }
    }

    pub fn kubernetes(name: impl Into<String>, version: &str, provider_type: &str) -> Self {
        Self {
            kind: WorkspaceKind::Kubernetes,
            version: Some(version.into()),
            provider_type: Some(provider_type.into()),
            sizing: Some(Sizing::HighAvailable),
            ..Self::baremetal(name)
        }
    }
}

/// Returned once, at creation: the workspace and its API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CreatedWorkspace {
    pub workspace: WorkspaceView,
    /// Shown once; stored hashed (and sealed for the in-cluster integration).
    pub api_key: String,
    pub task: TaskId,
}

// ----- Kubernetes catalog -----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct KubernetesVersionView {
    pub id: KubernetesVersionId,
    pub version: String,
    pub active: bool,
    pub workspaces: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "management_cluster_kind", rename_all = "lowercase")
)]
pub enum ManagementClusterKind {
    Kamaji,
    Root,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct ManagementClusterView {
    pub id: ManagementClusterId,
    pub name: String,
    pub kind: ManagementClusterKind,
    pub provider_type: Option<String>,
    pub domain: String,
    pub server: String,
    pub active: bool,
    pub capacity: i32,
    pub workspaces: i64,
    pub server_version: Option<String>,
    pub check_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewManagementCluster {
    pub name: String,
    pub kind: ManagementClusterKind,
    pub provider_type: Option<String>,
    pub domain: String,
    pub kubeconfig: String,
    pub capacity: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "application_source", rename_all = "lowercase")
)]
pub enum ApplicationSource {
    Manifests,
    Helm,
}

/// A Helm chart reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ChartRef {
    pub repository: String,
    pub chart: String,
    pub version: String,
    pub namespace: String,
    #[serde(default)]
    pub values: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ApplicationView {
    pub id: ApplicationId,
    pub name: String,
    pub version: String,
    pub source: ApplicationSource,
    pub manifests: Option<String>,
    pub chart: Option<ChartRef>,
    pub prerequisite: bool,
    pub position: i32,
    pub install_timeout_secs: i32,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewApplication {
    pub name: String,
    pub version: String,
    pub source: ApplicationSource,
    pub manifests: Option<String>,
    pub chart: Option<ChartRef>,
    pub prerequisite: bool,
    pub position: i32,
    pub install_timeout_secs: i32,
}

/// What the create form offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct WorkspaceOptions {
    pub versions: Vec<String>,
    pub provider_types: Vec<String>,
    /// Active Kamaji clusters with a provider binding: (id, name, provider type).
    pub clusters: Vec<(ManagementClusterId, String, String)>,
    pub operator: bool,
}

// ----- system tasks -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "task_state", rename_all = "lowercase")
)]
pub enum TaskState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.label() == label)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "step_state", rename_all = "lowercase")
)]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl StepState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct StepView {
    pub position: i32,
    pub name: String,
    pub state: StepState,
    pub attempts: i32,
    pub max_attempts: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub message: Option<String>,
    /// What the step last reported about itself while running.
    #[serde(default)]
    pub progress: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TaskView {
    pub id: TaskId,
    pub kind: String,
    pub title: String,
    pub state: TaskState,
    pub workspace_id: Option<WorkspaceId>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub steps: Vec<StepView>,
}

/// A duration for people: "850 ms", "12.4 s", "3 min 5 s".
pub fn display_duration(from: OffsetDateTime, to: OffsetDateTime) -> String {
    let ms = (to - from).whole_milliseconds().max(0);
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// Formats a timestamp for people: "2026-11-23 13:42 UTC".
pub fn display_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

// ----- compute providers and profiles -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "server",
    derive(sqlx::Type),
    sqlx(type_name = "provider_kind", rename_all = "snake_case")
)]
pub enum ProviderKind {
    HetznerCloud,
    HetznerRobot,
    IonosDcd,
    /// Hosts are agent processes on the portal's machine (demo and tests).
    Local,
}

impl ProviderKind {
    pub const ALL: [Self; 4] = [
        Self::HetznerCloud,
        Self::HetznerRobot,
        Self::IonosDcd,
        Self::Local,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::HetznerCloud => "hetzner_cloud",
            Self::HetznerRobot => "hetzner_robot",
            Self::IonosDcd => "ionos_dcd",
            Self::Local => "local",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }

    /// The settings an operator gives besides the secret.
    pub fn setting_names(self) -> &'static [&'static str] {
        match self {
            Self::HetznerCloud => &[
                "base_url",
                "load_balancer_location",
                "load_balancer_type",
                "load_balancer_network",
            ],
            Self::HetznerRobot => &["base_url", "user"],
            Self::IonosDcd => &["base_url", "datacenter_id"],
            Self::Local => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ComputeProviderView {
    pub id: ComputeProviderId,
    pub name: String,
    pub kind: ProviderKind,
    /// Non-secret settings; the credentials are never shown again.
    pub settings: std::collections::BTreeMap<String, String>,
    pub organization: Option<String>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
    pub check_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewComputeProvider {
    pub name: String,
    pub kind: ProviderKind,
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
    /// API token (Hetzner Cloud, IONOS) or password (Hetzner Robot).
    #[serde(default)]
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ComputeProfileView {
    pub id: ComputeProfileId,
    pub name: String,
    pub provider_kind: ProviderKind,
    pub cpu: i32,
    pub ram_mb: i32,
    pub disk_gb: i32,
    /// Per month in euro cents; an organization's agreed price where one
    /// exists.
    pub price_cents: i32,
    pub parameters: std::collections::BTreeMap<String, String>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewComputeProfile {
    pub name: String,
    pub provider_kind: ProviderKind,
    pub cpu: i32,
    pub ram_mb: i32,
    pub disk_gb: i32,
    pub price_cents: i32,
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
}

/// A Hetzner Cloud datacenter and whether it can create a profile's server
/// type now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Availability {
    pub datacenter: String,
    pub location: String,
    pub available: bool,
}

/// A shell session the portal just opened for the caller: the terminal page
/// attaches to it with the reconnection token, and attaches again with the
/// same token after a reload or a dropped link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ShellStart {
    pub session: crate::ids::ShellSessionId,
    pub host: crate::ids::HostId,
    pub hostname: String,
    /// Shown once; stored hashed. Only the browser tab that started the
    /// session holds it (sessionStorage).
    pub reconnect_token: String,
}

// ----- hosts -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema, sqlx::Type),
    sqlx(type_name = "host_state", rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// The server is being ordered at the provider.
    Provisioning,
    /// The server runs; waiting for the agent's first heartbeat.
    Bootstrapping,
    /// Joining the workspace's Kubernetes cluster.
    Joining,
    Running,
    /// Ordering failed; `error` holds the provider's message.
    Error,
    Deleting,
}

impl HostState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Bootstrapping => "bootstrapping",
            Self::Joining => "joining",
            Self::Running => "running",
            Self::Error => "error",
            Self::Deleting => "deleting",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema, sqlx::Type),
    sqlx(type_name = "power_state", rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
}

/// What a power button asks the provider for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PowerRequest {
    On,
    Off,
    Reset,
}

impl PowerRequest {
    pub fn label(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Reset => "reset",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        [Self::On, Self::Off, Self::Reset]
            .into_iter()
            .find(|p| p.label() == label)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct HostView {
    pub id: HostId,
    pub workspace_id: WorkspaceId,
    pub hostname: String,
    pub profile: String,
    pub provider: Option<String>,
    pub scaling_group: Option<String>,
    pub state: HostState,
    pub error: Option<String>,
    pub power: PowerState,
    pub public_ipv4: Option<String>,
    pub online: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    pub agent_version: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A host with what its page shows besides the list row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct HostDetails {
    pub host: HostView,
    pub workspace_name: String,
    pub organization_id: OrganizationId,
    pub server_id: Option<String>,
    pub private_ipv4: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub facts: Option<crate::agent::HostFacts>,
    pub tokens: Vec<AgentTokenView>,
    pub sessions: Vec<ShellSessionView>,
    /// The task ordering or deleting the host, while one runs or when the
    /// last one failed.
    pub task: Option<TaskId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewHost {
    pub hostname: String,
    pub compute_profile: ComputeProfileId,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct OrderedHost {
    pub host: HostId,
    pub task: TaskId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct AgentTokenView {
    pub id: AgentTokenId,
    /// The first characters, to tell tokens apart.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct ShellSessionView {
    pub id: ShellSessionId,
    pub host_id: HostId,
    pub account_email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Whether a browser is attached right now.
    pub attached: bool,
    pub end_reason: Option<String>,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct ScalingGroupView {
    pub id: ScalingGroupId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub profile_id: ComputeProfileId,
    pub profile: String,
    pub desired: i32,
    /// Hosts in the group that are not being deleted.
    pub current: i64,
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewScalingGroup {
    pub name: String,
    pub compute_profile: ComputeProfileId,
    pub desired: i32,
}

/// An agent version operators published; hosts update to the newest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, sqlx::FromRow))]
pub struct AgentReleaseView {
    pub version: String,
    pub sha256: String,
    pub size_bytes: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}
