//! Provisioning and teardown of workspaces, as system tasks. Every step
//! checks before it acts, so a step repeated after a crash or a retry
//! finds its work done and moves on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use protocol::ids::{ManagementClusterId, WorkspaceId};
use protocol::views::{Sizing, WorkspaceKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Platform;
use crate::dns::Dns;
use crate::kubernetes::kubeconfig::{AdminKubeconfig, Endpoint};
use crate::kubernetes::{applications, catalog, control_plane, is_not_found};
use crate::tasks::{BoxFuture, Handler, StepContext, StepError, StepPlan, TaskSpec};

const FIELD_MANAGER: &str = "loopback";
/// The tenant namespace of the load-balancer integration.
pub const INTEGRATION_NAMESPACE: &str = "loopback-system";
/// The group whose OIDC users administer the tenant.
pub const CLAIM_GROUP: &str = "loopback-workspace-claim";

/// How provisioning behaves; from the portal's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// OIDC issuer the tenant API servers trust.
    pub oidc_issuer: String,
    pub dns: Arc<Dns>,
    /// How long to wait for Kamaji's admin kubeconfig.
    pub kubeconfig_timeout: Duration,
    /// How long the tenant API may take to answer /healthz.
    pub health_timeout: Duration,
    /// A tenant whose API never became healthy is torn down (true) or left
    /// failed for an operator to look at (false).
    pub delete_on_late_failure: bool,
    /// Whether workspaces get a managed network (a `network.create` task
    /// handler is registered).
    pub managed_network: bool,
    /// What the portal's URL is, for the in-cluster integration.
    pub portal_url: String,
}

/// Builds a workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provision {
    pub workspace: WorkspaceId,
    pub kind: WorkspaceKind,
}

impl TaskSpec for Provision {
    const KIND: &'static str = "workspace.provision";

    fn title(&self) -> String {
        match self.kind {
            WorkspaceKind::Kubernetes => "Provision the Kubernetes workspace".into(),
            WorkspaceKind::Baremetal => "Provision the bare-metal workspace".into(),
        }
    }

    fn plan(&self) -> Vec<StepPlan> {
        let step = |name: &str| StepPlan::new(name).backoff(Duration::from_secs(2));
        let wait = |name: &str| {
            step(name)
                .timeout(Duration::from_secs(1800))
                .max_attempts(3)
        };
        match self.kind {
            WorkspaceKind::Baremetal => {
                vec![wait("network"), step("dns-defaults"), step("activate")]
            }
            WorkspaceKind::Kubernetes => vec![
                wait("network"),
                step("management-pool"),
                step("namespace"),
                wait("prerequisites").max_attempts(1),
                step("control-plane"),
                wait("admin-kubeconfig"),
                step("dns"),
                wait("api-health").max_attempts(1),
                step("tenant-integrations"),
                step("store-kubeconfig"),
                wait("applications").max_attempts(1),
                step("activate"),
            ],
        }
    }
}

/// Removes what provisioning built, then the workspace record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Teardown {
    pub workspace: WorkspaceId,
}

impl TaskSpec for Teardown {
    const KIND: &'static str = "workspace.teardown";

    fn title(&self) -> String {
        "Delete the workspace".into()
    }

    fn plan(&self) -> Vec<StepPlan> {
        let step = |name: &str| {
            StepPlan::new(name)
                .backoff(Duration::from_secs(2))
                .timeout(Duration::from_secs(600))
        };
        vec![
            step("control-plane"),
            step("prerequisites"),
            step("namespace"),
            step("dns"),
            step("forget"),
        ]
    }
}

/// What the steps need to know about the workspace.
#[derive(Debug, sqlx::FromRow)]
struct Workspace {
    id: WorkspaceId,
    name: String,
    kind: WorkspaceKind,
    version: Option<String>,
    provider_type: Option<String>,
    sizing: Option<Sizing>,
    cluster_kind: bool,
    pinned_cluster_id: Option<ManagementClusterId>,
    management_cluster_id: Option<ManagementClusterId>,
    domain: Option<String>,
    api_key_sealed: Option<Vec<u8>>,
}

impl Workspace {
    fn namespace(&self) -> String {
        let prefix = if self.cluster_kind { "k8s-c" } else { "k8s-w" };
        format!("{prefix}-{}", self.id)
    }

    fn dns_name(&self) -> Option<String> {
        self.domain.as_ref().map(|d| format!("{}.k8s.{d}", self.id))
    }

    fn cluster(&self) -> Result<ManagementClusterId, StepError> {
        self.management_cluster_id
            .ok_or_else(|| StepError::fatal("no management cluster was chosen"))
    }
}

async fn load(platform: &Platform, id: WorkspaceId) -> Result<Workspace, StepError> {
    sqlx::query_as(
        "SELECT w.id, w.name, w.kind, v.version, w.provider_type, w.sizing, w.cluster_kind,
             w.pinned_cluster_id, w.management_cluster_id, c.domain, w.api_key_sealed
         FROM workspaces w
         LEFT JOIN kubernetes_versions v ON v.id = w.kubernetes_version_id
         LEFT JOIN management_clusters c ON c.id = w.management_cluster_id
         WHERE w.id = $1",
    )
    .bind(id)
    .fetch_optional(platform.db())
    .await
    .map_err(StepError::retry)?
    .ok_or_else(|| StepError::fatal("the workspace no longer exists"))
}

fn kube_step(e: impl std::fmt::Display) -> StepError {
    StepError::retry(e)
}

async fn management(platform: &Platform, w: &Workspace) -> Result<kube::Client, StepError> {
    catalog::cluster_client(platform, w.cluster()?)
        .await
        .map_err(kube_step)
}

/// Kamaji's admin kubeconfig for the tenant, once it exists.
async fn admin_kubeconfig(
    mgmt: &kube::Client,
    w: &Workspace,
) -> Result<Option<(String, AdminKubeconfig)>, StepError> {
    let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), &w.namespace());
    let Some(secret) = secrets
        .get_opt(&control_plane::admin_secret(&w.name))
        .await
        .map_err(kube_step)?
    else {
        return Ok(None);
    };
    let Some(data) = secret.data.and_then(|d| d.get("admin.conf").cloned()) else {
        return Ok(None);
    };
    let yaml = String::from_utf8(data.0).map_err(StepError::fatal)?;
    let parsed = AdminKubeconfig::parse(&yaml).map_err(StepError::fatal)?;
    Ok(Some((yaml, parsed)))
}

async fn tenant(
    mgmt: &kube::Client,
    w: &Workspace,
) -> Result<(kube::Client, AdminKubeconfig), StepError> {
    let (yaml, parsed) = admin_kubeconfig(mgmt, w)
        .await?
        .ok_or_else(|| StepError::retry("Kamaji has not written the admin kubeconfig yet"))?;
    let client = crate::kubernetes::connect(&yaml).await.map_err(kube_step)?;
    Ok((client, parsed))
}

/// Whether names given to the DNS provider resolve.
fn publishes(dns: &Dns) -> bool {
    !matches!(dns, Dns::None)
}

/// A client for the workspace's tenant API through Kamaji's admin
/// kubeconfig on the management cluster (the address, not the published
/// name, so it works whatever DNS does).
pub(crate) async fn tenant_client(
    platform: &Platform,
    id: WorkspaceId,
) -> Result<kube::Client, StepError> {
    Ok(tenant_admin(platform, id).await?.0)
}

/// A tenant client that answers 429 (and 503, 504) at once rather than
/// retrying inside kube-rs: node drains retry evictions themselves.
pub(crate) async fn tenant_client_without_retry(
    platform: &Platform,
    id: WorkspaceId,
) -> Result<kube::Client, StepError> {
    let w = load(platform, id).await?;
    let mgmt = management(platform, &w).await?;
    let (yaml, _) = admin_kubeconfig(&mgmt, &w)
        .await?
        .ok_or_else(|| StepError::retry("Kamaji has not written the admin kubeconfig yet"))?;
    crate::kubernetes::connect_without_retry(&yaml)
        .await
        .map_err(kube_step)
}

/// The tenant client and Kamaji's admin kubeconfig (its server address and
/// CA, which joining nodes need).
pub(crate) async fn tenant_admin(
    platform: &Platform,
    id: WorkspaceId,
) -> Result<(kube::Client, AdminKubeconfig), StepError> {
    let w = load(platform, id).await?;
    let mgmt = management(platform, &w).await?;
    tenant(&mgmt, &w).await
}

fn apply() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

pub struct ProvisionHandler {
    platform: Platform,
    settings: Arc<Settings>,
}

impl ProvisionHandler {
    pub fn new(platform: Platform, settings: Arc<Settings>) -> Self {
        Self { platform, settings }
    }

    async fn step(&self, ctx: &StepContext) -> Result<Option<serde_json::Value>, StepError> {
        let task: Provision = ctx.input()?;
        let platform = &self.platform;
        let db = platform.db();
        let w = load(platform, task.workspace).await?;
        match ctx.step() {
            "network" => {
                if self.settings.managed_network {
                    super::network::ensure(db, ctx, w.id).await
                } else {
                    Ok(Some(
                        json!({ "managed_network": "not configured on this portal" }),
                    ))
                }
            }
            "dns-defaults" => {
                let provider = match *self.settings.dns {
                    Dns::None => "none",
                    Dns::Cloudflare(_) => "cloudflare",
                };
                Ok(Some(json!({ "dns_provider": provider })))
            }
            "management-pool" => {
                if let Some(id) = w.management_cluster_id {
                    return Ok(Some(json!({ "cluster": id })));
                }
                let chosen: Option<ManagementClusterId> = sqlx::query_scalar(
                    "SELECT c.id FROM management_clusters c
                     WHERE c.active AND ($1::uuid IS NULL OR c.id = $1)
                       AND CASE WHEN $2 THEN c.kind = 'root'
                                ELSE c.kind = 'kamaji' AND c.provider_type = $3 END
                       AND (SELECT count(*) FROM workspaces w WHERE w.management_cluster_id = c.id) < c.capacity
                     ORDER BY (SELECT count(*) FROM workspaces w WHERE w.management_cluster_id = c.id)::float / c.capacity, c.name
                     LIMIT 1",
                )
                .bind(w.pinned_cluster_id)
                .bind(w.cluster_kind)
                .bind(&w.provider_type)
                .fetch_optional(db)
                .await
                .map_err(StepError::retry)?;
                let Some(cluster) = chosen else {
                    return Err(StepError::fatal(format!(
                        "no management cluster has room for {} workspaces; an operator must add or activate one",
                        w.provider_type.as_deref().unwrap_or("these")
                    )));
                };
                sqlx::query(
                    "UPDATE workspaces SET management_cluster_id = $2, namespace = $3
                     WHERE id = $1 AND management_cluster_id IS NULL",
                )
                .bind(w.id)
                .bind(cluster)
                .bind(w.namespace())
                .execute(db)
                .await
                .map_err(StepError::retry)?;
                Ok(Some(json!({ "cluster": cluster })))
            }
            "namespace" => {
                let mgmt = management(platform, &w).await?;
                let namespaces: Api<Namespace> = Api::all(mgmt);
                let ns = w.namespace();
                namespaces
                    .patch(
                        &ns,
                        &apply(),
                        &Patch::Apply(json!({
                            "apiVersion": "v1", "kind": "Namespace",
                            "metadata": { "name": ns, "labels": {
                                "app.loopback.dev/workspace": w.id.to_string() } }
                        })),
                    )
                    .await
                    .map_err(kube_step)?;
                Ok(Some(json!({ "namespace": ns })))
            }
            "prerequisites" => {
                let mgmt = management(platform, &w).await?;
                self.install_phase(ctx, &mgmt, &w, true, &w.namespace())
                    .await
            }
            "control-plane" => {
                let mgmt = management(platform, &w).await?;
                let version = w
                    .version
                    .clone()
                    .ok_or_else(|| StepError::fatal("no version"))?;
                let mut sans = vec![];
                if let Some(name) = w.dns_name() {
                    sans.push(name);
                }
                let spec = control_plane::Spec {
                    name: &w.name,
                    namespace: &w.namespace(),
                    version: &version,
                    replicas: w.sizing.unwrap_or(Sizing::HighAvailable).replicas(),
                    cert_sans: sans,
                    oidc_issuer: &self.settings.oidc_issuer,
                    oidc_client_id: &w.id.to_string(),
                };
                let api: Api<DynamicObject> =
                    Api::namespaced_with(mgmt, &w.namespace(), &control_plane::resource());
                api.patch(&w.name, &apply(), &Patch::Apply(spec.object()))
                    .await
                    .map_err(kube_step)?;
                Ok(Some(
                    json!({ "tenant_control_plane": w.name, "replicas": spec.replicas }),
                ))
            }
            "admin-kubeconfig" => {
                let mgmt = management(platform, &w).await?;
                let started = Instant::now();
                let tcps: Api<DynamicObject> =
                    Api::namespaced_with(mgmt.clone(), &w.namespace(), &control_plane::resource());
                loop {
                    if let Some((_, admin)) = admin_kubeconfig(&mgmt, &w).await? {
                        return Ok(Some(json!({ "server": admin.server.as_str() })));
                    }
                    if started.elapsed() > self.settings.kubeconfig_timeout {
                        let state = tcps
                            .get_opt(&w.name)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|t| control_plane::state(&t))
                            .unwrap_or_else(|| "unknown".into());
                        return Err(StepError::retry(format!(
                            "no admin kubeconfig after {} s (control plane: {state})",
                            started.elapsed().as_secs()
                        )));
                    }
                    ctx.sleep(Duration::from_millis(500)).await?;
                }
            }
            "dns" => {
                let mgmt = management(platform, &w).await?;
                let (_, admin) = admin_kubeconfig(&mgmt, &w)
                    .await?
                    .ok_or_else(|| StepError::retry("the admin kubeconfig disappeared"))?;
                let name = w
                    .dns_name()
                    .ok_or_else(|| StepError::fatal("no management domain"))?;
                let record = match admin.address() {
                    Some(ip) => self.settings.dns.ensure_a(&name, ip).await.map_err(|e| {
                        if e.is_retryable() {
                            StepError::retry(&e)
                        } else {
                            StepError::fatal(&e)
                        }
                    })?,
                    None => None,
                };
                let endpoint = Endpoint {
                    dns_name: name.clone(),
                    port: admin.port(),
                    published: publishes(&self.settings.dns),
                };
                sqlx::query(
                    "UPDATE workspaces SET dns_name = $2, endpoint = $3, api_address = $4 WHERE id = $1",
                )
                .bind(w.id)
                .bind(&name)
                .bind(endpoint.url())
                .bind(admin.address().map(|a| a.to_string()))
                .execute(db)
                .await
                .map_err(StepError::retry)?;
                Ok(Some(
                    json!({ "name": name, "record": record, "endpoint": endpoint.url() }),
                ))
            }
            "api-health" => self.await_health(ctx, &w).await,
            "tenant-integrations" => {
                let mgmt = management(platform, &w).await?;
                let (tenant, _) = tenant(&mgmt, &w).await?;
                let api_key = w
                    .api_key_sealed
                    .as_ref()
                    .ok_or_else(|| StepError::fatal("the workspace has no API key"))
                    .and_then(|sealed| {
                        platform
                            .secrets()
                            .open(super::API_KEY_PURPOSE, sealed)
                            .map_err(StepError::fatal)
                    })
                    .and_then(|k| String::from_utf8(k).map_err(StepError::fatal))?;
                Api::<Namespace>::all(tenant.clone())
                    .patch(
                        INTEGRATION_NAMESPACE,
                        &apply(),
                        &Patch::Apply(json!({
                            "apiVersion": "v1", "kind": "Namespace",
                            "metadata": { "name": INTEGRATION_NAMESPACE }
                        })),
                    )
                    .await
                    .map_err(kube_step)?;
                Api::<Secret>::namespaced(tenant.clone(), INTEGRATION_NAMESPACE)
                    .patch(
                        "loopback-workspace",
                        &apply(),
                        &Patch::Apply(json!({
                            "apiVersion": "v1", "kind": "Secret",
                            "metadata": { "name": "loopback-workspace", "namespace": INTEGRATION_NAMESPACE },
                            "type": "Opaque",
                            "stringData": {
                                "apiKey": api_key,
                                "workspaceId": w.id.to_string(),
                                "portalUrl": self.settings.portal_url,
                            }
                        })),
                    )
                    .await
                    .map_err(kube_step)?;
                Api::<ClusterRoleBinding>::all(tenant)
                    .patch(
                        CLAIM_GROUP,
                        &apply(),
                        &Patch::Apply(json!({
                            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                            "metadata": { "name": CLAIM_GROUP },
                            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
                            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": CLAIM_GROUP }]
                        })),
                    )
                    .await
                    .map_err(kube_step)?;
                // Hetzner Cloud controller secrets need a bound provider
                // account with its token; providers are not bound yet.
                Ok(Some(json!({
                    "namespace": INTEGRATION_NAMESPACE,
                    "cluster_role_binding": CLAIM_GROUP,
                    "hcloud": if w.provider_type.as_deref() == Some("hetzner_cloud") {
                        "no Hetzner Cloud provider account bound to the workspace yet"
                    } else {
                        "not a Hetzner Cloud workspace"
                    },
                })))
            }
            "store-kubeconfig" => {
                let mgmt = management(platform, &w).await?;
                let (_, admin) = admin_kubeconfig(&mgmt, &w)
                    .await?
                    .ok_or_else(|| StepError::retry("the admin kubeconfig disappeared"))?;
                let endpoint = Endpoint {
                    dns_name: w
                        .dns_name()
                        .ok_or_else(|| StepError::fatal("no management domain"))?,
                    port: admin.port(),
                    published: publishes(&self.settings.dns),
                };
                let yaml = admin
                    .for_download(&w.name, &endpoint)
                    .map_err(StepError::fatal)?;
                let sealed = platform
                    .secrets()
                    .seal(super::KUBECONFIG_PURPOSE, yaml.as_bytes())
                    .map_err(StepError::fatal)?;
                sqlx::query("UPDATE workspaces SET kubeconfig = $2 WHERE id = $1")
                    .bind(w.id)
                    .bind(sealed)
                    .execute(db)
                    .await
                    .map_err(StepError::retry)?;
                Ok(None)
            }
            "applications" => {
                let mgmt = management(platform, &w).await?;
                let (tenant, _) = tenant(&mgmt, &w).await?;
                self.install_phase(ctx, &tenant, &w, false, "kube-system")
                    .await
            }
            "activate" => {
                sqlx::query(
                    "UPDATE workspaces SET state = 'active', failure_reason = NULL, updated_at = now()
                     WHERE id = $1 AND state = 'provisioning'",
                )
                .bind(w.id)
                .execute(db)
                .await
                .map_err(StepError::retry)?;
                Ok(None)
            }
            other => Err(StepError::fatal(format!("unknown step {other}"))),
        }
    }

    /// Installs the active applications of one phase, recording each
    /// deployment; the first failure stops provisioning (after cleanup).
    async fn install_phase(
        &self,
        ctx: &StepContext,
        client: &kube::Client,
        w: &Workspace,
        prerequisite: bool,
        namespace: &str,
    ) -> Result<Option<serde_json::Value>, StepError> {
        let db = self.platform.db();
        let apps = applications::phase(db, prerequisite)
            .await
            .map_err(StepError::retry)?;
        let mut installed = Vec::new();
        for app in apps {
            if ctx.is_cancelled() {
                return Err(StepError::Cancelled);
            }
            sqlx::query(
                "INSERT INTO application_deployments (workspace_id, application_id) VALUES ($1, $2)
                 ON CONFLICT (workspace_id, application_id) DO UPDATE
                 SET state = 'installing', message = NULL, started_at = now(), finished_at = NULL",
            )
            .bind(w.id)
            .bind(app.id)
            .execute(db)
            .await
            .map_err(StepError::retry)?;
            let outcome = applications::install(client, &app, namespace).await;
            let (state, message) = match &outcome {
                Ok(()) => ("installed", None),
                Err(e) => ("failed", Some(e.clone())),
            };
            sqlx::query(
                "UPDATE application_deployments SET state = $3::deployment_state, message = $4, finished_at = now()
                 WHERE workspace_id = $1 AND application_id = $2",
            )
            .bind(w.id)
            .bind(app.id)
            .bind(state)
            .bind(&message)
            .execute(db)
            .await
            .map_err(StepError::retry)?;
            if let Err(e) = outcome {
                return Err(StepError::fatal(e));
            }
            installed.push(format!("{} {}", app.name, app.version));
        }
        Ok(Some(json!({ "installed": installed })))
    }

    async fn await_health(
        &self,
        ctx: &StepContext,
        w: &Workspace,
    ) -> Result<Option<serde_json::Value>, StepError> {
        let mgmt = management(&self.platform, w).await?;
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        let mut warned = false;
        loop {
            let last = match tenant(&mgmt, w).await {
                Ok((client, _)) => match healthz(&client).await {
                    Ok(()) => {
                        return Ok(Some(json!({ "seconds": started.elapsed().as_secs_f64() })));
                    }
                    Err(e) => e,
                },
                Err(e) => e.to_string(),
            };
            let elapsed = started.elapsed();
            if elapsed > self.settings.health_timeout {
                let message = format!(
                    "the Kubernetes API did not become healthy within {} s: {last}",
                    self.settings.health_timeout.as_secs()
                );
                if self.settings.delete_on_late_failure {
                    super::mark_for_deletion(self.platform.db(), w.id, &message)
                        .await
                        .map_err(StepError::retry)?;
                }
                return Err(StepError::fatal(message));
            }
            if !warned && elapsed > Duration::from_secs(30) {
                warned = true;
                tracing::warn!(workspace = %w.id, seconds = elapsed.as_secs(), error = %last,
                    "the tenant API is slow to become healthy");
            }
            ctx.sleep(wait).await?;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

pub(crate) async fn healthz(client: &kube::Client) -> Result<(), String> {
    let request = http::Request::get("/healthz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(format!("/healthz said {body:?}")),
        Err(e) => Err(e.to_string()),
    }
}

impl Handler for ProvisionHandler {
    fn kind(&self) -> &'static str {
        Provision::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(self.step(ctx))
    }

    fn stopped<'a>(&'a self, input: &'a serde_json::Value, reason: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(task) = serde_json::from_value::<Provision>(input.clone()) else {
                return;
            };
            let reason = if reason == "cancelled" {
                "provisioning was cancelled"
            } else {
                reason
            };
            if let Err(e) = sqlx::query(
                "UPDATE workspaces SET state = 'failed', failure_reason = $2, updated_at = now()
                 WHERE id = $1 AND state = 'provisioning'",
            )
            .bind(task.workspace)
            .bind(reason)
            .execute(self.platform.db())
            .await
            {
                tracing::warn!(workspace = %task.workspace, error = %e, "could not record the failed provisioning");
            }
        })
    }
}

pub struct TeardownHandler {
    platform: Platform,
    settings: Arc<Settings>,
}

impl TeardownHandler {
    pub fn new(platform: Platform, settings: Arc<Settings>) -> Self {
        Self { platform, settings }
    }

    async fn step(&self, ctx: &StepContext) -> Result<Option<serde_json::Value>, StepError> {
        let task: Teardown = ctx.input()?;
        let platform = &self.platform;
        let Ok(w) = load(platform, task.workspace).await else {
            return Ok(Some(json!({ "skipped": "the workspace is gone" })));
        };
        let kubernetes = w.kind == WorkspaceKind::Kubernetes && w.management_cluster_id.is_some();
        match ctx.step() {
            "control-plane" if kubernetes => {
                let mgmt = management(platform, &w).await?;
                let api: Api<DynamicObject> =
                    Api::namespaced_with(mgmt, &w.namespace(), &control_plane::resource());
                gone(ctx, &api, &w.name).await?;
                Ok(None)
            }
            "prerequisites" if kubernetes => {
                let mgmt = management(platform, &w).await?;
                for app in applications::phase(platform.db(), true)
                    .await
                    .map_err(StepError::retry)?
                {
                    applications::uninstall(&mgmt, &app, &w.namespace())
                        .await
                        .map_err(StepError::retry)?;
                }
                Ok(None)
            }
            "namespace" if kubernetes => {
                let mgmt = management(platform, &w).await?;
                let api: Api<Namespace> = Api::all(mgmt);
                gone(ctx, &api, &w.namespace()).await?;
                Ok(None)
            }
            "dns" => {
                if let Some(name) = w.dns_name() {
                    self.settings
                        .dns
                        .remove(&name)
                        .await
                        .map_err(StepError::retry)?;
                }
                Ok(None)
            }
            "forget" => {
                let mut tx = platform.db().begin().await.map_err(StepError::retry)?;
                sqlx::query("DELETE FROM application_deployments WHERE workspace_id = $1")
                    .bind(w.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StepError::retry)?;
                sqlx::query(
                    "DELETE FROM role_bindings WHERE scope_kind = 'workspace' AND scope_id = $1",
                )
                .bind(w.id)
                .execute(&mut *tx)
                .await
                .map_err(StepError::retry)?;
                sqlx::query("DELETE FROM workspaces WHERE id = $1")
                    .bind(w.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StepError::retry)?;
                tx.commit().await.map_err(StepError::retry)?;
                Ok(None)
            }
            _ => Ok(Some(json!({ "skipped": "nothing was built for this" }))),
        }
    }
}

/// Deletes `name` and waits until it is gone.
async fn gone<K>(ctx: &StepContext, api: &Api<K>, name: &str) -> Result<(), StepError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(kube_step(e)),
    }
    for _ in 0..600 {
        if api.get_opt(name).await.map_err(kube_step)?.is_none() {
            return Ok(());
        }
        ctx.sleep(Duration::from_millis(500)).await?;
    }
    Err(StepError::retry(format!("{name} is still being deleted")))
}

impl Handler for TeardownHandler {
    fn kind(&self) -> &'static str {
        Teardown::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(self.step(ctx))
    }
}
