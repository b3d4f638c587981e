//! Monitoring as users see it: monitoring objects and their probes,
//! conditions, results, alerts, silences and notification channels. Shared
//! by the portal, the REST API and the host agent (which runs network
//! probes for agent-backed sources).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{
    AccountId, AlertId, ConditionId, HostId, MonitorId, NotificationChannelId, NotificationId,
    OrganizationId, ProjectId, SilenceId, WorkspaceId,
};

// ---------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl HttpMethod {
    pub const ALL: [HttpMethod; 7] = [
        Self::Get,
        Self::Head,
        Self::Post,
        Self::Put,
        Self::Patch,
        Self::Delete,
        Self::Options,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A value in the JSON response body, addressed by a JSONPath-like path
/// (`$.status`, `$.items[0].name`), that must equal `equals` (compared as
/// text: `true`, `42`, `ok`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct JsonExpectation {
    pub path: String,
    pub equals: String,
}

/// An HTTP(S) request and what its answer must look like to count as up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct HttpProbe {
    pub method: HttpMethod,
    pub url: String,
    /// The exact status expected; any 2xx or 3xx when unset.
    pub expected_status: Option<u16>,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    pub json: Option<JsonExpectation>,
    pub headers: Vec<Header>,
    /// Request body (POST, PUT, PATCH).
    pub body: Option<String>,
    pub timeout_ms: u32,
    pub follow_redirects: bool,
}

/// A TLS handshake: the leaf certificate's expiry, whether the chain is
/// trusted and whether it names the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TlsProbe {
    pub host: String,
    pub port: u16,
    /// The name sent as SNI and checked against the certificate; `host`
    /// when unset.
    pub server_name: Option<String>,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TcpProbe {
    pub host: String,
    pub port: u16,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
}

impl DnsRecordType {
    pub const ALL: [DnsRecordType; 6] = [
        Self::A,
        Self::Aaaa,
        Self::Cname,
        Self::Mx,
        Self::Txt,
        Self::Ns,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ns => "NS",
        }
    }
}

/// A DNS query: up when it answers and, if `expected` is set, one of the
/// answers contains it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DnsProbe {
    pub name: String,
    pub record_type: DnsRecordType,
    pub expected: Option<String>,
    /// `ip` or `ip:port`; the system's resolver when unset.
    pub nameserver: Option<String>,
    pub timeout_ms: u32,
}

/// A workspace's tenant cluster: API server `/healthz`, nodes not ready,
/// pods not running and deployments unavailable (in `namespace`, or all).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct KubernetesProbe {
    pub workspace: WorkspaceId,
    pub namespace: Option<String>,
    pub timeout_ms: u32,
}

/// A host's metrics as its agent reports them with every heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct HostProbe {
    pub host: HostId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MonitorKind {
    Http,
    Tls,
    Tcp,
    Dns,
    Kubernetes,
    Host,
}

impl MonitorKind {
    pub const ALL: [MonitorKind; 6] = [
        Self::Http,
        Self::Tls,
        Self::Tcp,
        Self::Dns,
        Self::Kubernetes,
        Self::Host,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tls => "tls",
            Self::Tcp => "tcp",
            Self::Dns => "dns",
            Self::Kubernetes => "kubernetes",
            Self::Host => "host",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Http => "HTTP(S)",
            Self::Tls => "TLS certificate",
            Self::Tcp => "TCP port",
            Self::Dns => "DNS record",
            Self::Kubernetes => "Kubernetes",
            Self::Host => "Host metrics",
        }
    }

    /// Network probes can run from any source; the others read what only
    /// the portal has (tenant clusters, heartbeats).
    pub fn runs_on_agents(self) -> bool {
        matches!(self, Self::Http | Self::Tls | Self::Tcp | Self::Dns)
    }

    /// The parameters a result of this kind carries, for condition forms.
    pub fn parameters(self) -> &'static [Parameter] {
        use Parameter::*;
        match self {
            Self::Http => &[Status, LatencyMs, HttpStatus],
            Self::Tls => &[Status, LatencyMs, DaysToExpiry, ChainValid, HostnameMatch],
            Self::Tcp => &[Status, LatencyMs],
            Self::Dns => &[Status, LatencyMs, Answers],
            Self::Kubernetes => &[
                Status,
                LatencyMs,
                NodesNotReady,
                PodsNotRunning,
                DeploymentsUnavailable,
            ],
            Self::Host => &[
                Status,
                CpuPercent,
                MemoryPercent,
                DiskPercent,
                Load1,
                AgentOnline,
            ],
        }
    }
}

/// What a monitoring object probes. Stored as JSON; sent to agents as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeSpec {
    Http(HttpProbe),
    Tls(TlsProbe),
    Tcp(TcpProbe),
    Dns(DnsProbe),
    Kubernetes(KubernetesProbe),
    Host(HostProbe),
}

impl ProbeSpec {
    pub fn kind(&self) -> MonitorKind {
        match self {
            Self::Http(_) => MonitorKind::Http,
            Self::Tls(_) => MonitorKind::Tls,
            Self::Tcp(_) => MonitorKind::Tcp,
            Self::Dns(_) => MonitorKind::Dns,
            Self::Kubernetes(_) => MonitorKind::Kubernetes,
            Self::Host(_) => MonitorKind::Host,
        }
    }

    /// A one-line description: the URL, `host:port`, the DNS name …
    pub fn target(&self) -> String {
        match self {
            Self::Http(p) => format!("{} {}", p.method.as_str(), p.url),
            Self::Tls(p) => format!("{}:{}", p.host, p.port),
            Self::Tcp(p) => format!("{}:{}", p.host, p.port),
            Self::Dns(p) => format!("{} {}", p.record_type.as_str(), p.name),
            Self::Kubernetes(p) => match &p.namespace {
                Some(ns) => format!("workspace {} namespace {ns}", p.workspace),
                None => format!("workspace {}", p.workspace),
            },
            Self::Host(p) => format!("host {}", p.host),
        }
    }
}

/// A measured quantity a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// 1 when the probe succeeded (up), 0 when it failed (down).
    Status,
    LatencyMs,
    HttpStatus,
    DaysToExpiry,
    /// 1 when the chain verifies against the trusted roots.
    ChainValid,
    /// 1 when the certificate names the host.
    HostnameMatch,
    /// Number of DNS answers.
    Answers,
    NodesNotReady,
    PodsNotRunning,
    DeploymentsUnavailable,
    CpuPercent,
    MemoryPercent,
    DiskPercent,
    Load1,
    /// 1 while the host's agent is connected.
    AgentOnline,
}

impl Parameter {
    pub const ALL: [Parameter; 15] = [
        Self::Status,
        Self::LatencyMs,
        Self::HttpStatus,
        Self::DaysToExpiry,
        Self::ChainValid,
        Self::HostnameMatch,
        Self::Answers,
        Self::NodesNotReady,
        Self::PodsNotRunning,
        Self::DeploymentsUnavailable,
        Self::CpuPercent,
        Self::MemoryPercent,
        Self::DiskPercent,
        Self::Load1,
        Self::AgentOnline,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::LatencyMs => "latency_ms",
            Self::HttpStatus => "http_status",
            Self::DaysToExpiry => "days_to_expiry",
            Self::ChainValid => "chain_valid",
            Self::HostnameMatch => "hostname_match",
            Self::Answers => "answers",
            Self::NodesNotReady => "nodes_not_ready",
            Self::PodsNotRunning => "pods_not_running",
            Self::DeploymentsUnavailable => "deployments_unavailable",
            Self::CpuPercent => "cpu_percent",
            Self::MemoryPercent => "memory_percent",
            Self::DiskPercent => "disk_percent",
            Self::Load1 => "load1",
            Self::AgentOnline => "agent_online",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// One probe's result from one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ProbeOutcome {
    pub ok: bool,
    pub latency_ms: Option<f64>,
    /// Every parameter the probe measured except `status` and
    /// `latency_ms` (which are `ok` and `latency_ms`).
    pub values: BTreeMap<Parameter, f64>,
    /// Why the probe failed, for people: "expected status 200, got 503".
    pub error: Option<String>,
}

impl ProbeOutcome {
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// The value a condition on `parameter` sees; `None` when this result
    /// did not measure it.
    pub fn value(&self, parameter: Parameter) -> Option<f64> {
        match parameter {
            Parameter::Status => Some(if self.ok { 1.0 } else { 0.0 }),
            Parameter::LatencyMs => self.latency_ms,
            other => self.values.get(&other).copied(),
        }
    }
}

/// Where a probe runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceRef {
    /// The portal's own prober.
    Builtin,
    /// A host's agent runs the probe (network probes only).
    Agent { host: HostId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SourceView {
    pub source: SourceRef,
    /// "Portal" or the host's name.
    pub label: String,
}

// ---------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Operator {
    pub const ALL: [Operator; 6] = [Self::Gt, Self::Ge, Self::Lt, Self::Le, Self::Eq, Self::Ne];

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
            Self::Eq => "eq",
            Self::Ne => "ne",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.key() == key)
    }

    /// Whether `value <op> threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            Self::Eq => (value - threshold).abs() < f64::EPSILON,
            Self::Ne => (value - threshold).abs() >= f64::EPSILON,
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    #[default]
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Self::Info, Self::Warning, Self::Critical];

    pub fn key(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// A condition as the user writes it: the alert fires when
/// `parameter operator threshold` holds for `for_seconds` (and for the
/// monitor's failure threshold of consecutive results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewCondition {
    pub parameter: Parameter,
    pub operator: Operator,
    pub threshold: f64,
    pub for_seconds: u32,
    pub severity: Severity,
}

impl NewCondition {
    /// "status is down": the condition every new monitor starts with.
    pub fn down() -> Self {
        Self {
            parameter: Parameter::Status,
            operator: Operator::Eq,
            threshold: 0.0,
            for_seconds: 0,
            severity: Severity::Critical,
        }
    }

    /// "latency_ms > 500 for 3m", "status is down".
    pub fn summary(&self) -> String {
        let test = match (self.parameter, self.operator) {
            (Parameter::Status, Operator::Eq) if self.threshold == 0.0 => "status is down".into(),
            (Parameter::Status, Operator::Eq) => "status is up".into(),
            (Parameter::Status, Operator::Ne) if self.threshold == 0.0 => "status is up".into(),
            (Parameter::Status, Operator::Ne) => "status is down".into(),
            (p, op) => format!("{} {} {}", p.key(), op.symbol(), self.threshold),
        };
        if self.for_seconds == 0 {
            test
        } else {
            format!("{test} for {}", duration_label(self.for_seconds))
        }
    }
}

/// `90` → "90s", `180` → "3m", `7200` → "2h".
pub fn duration_label(seconds: u32) -> String {
    if seconds >= 3600 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ConditionView {
    pub id: ConditionId,
    #[serde(flatten)]
    pub condition: NewCondition,
    pub summary: String,
}

// ---------------------------------------------------------------------------
// Monitoring objects
// ---------------------------------------------------------------------------

pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL_SECONDS: u32 = 4 * 3600;
pub const DEFAULT_INTERVAL_SECONDS: u32 = 60;
pub const MIN_INTERVAL_SECONDS: u32 = 10;

/// A monitoring object as created or changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewMonitor {
    pub name: String,
    pub probe: ProbeSpec,
    pub interval_seconds: u32,
    /// At least one; `[Builtin]` by default.
    pub sources: Vec<SourceRef>,
    pub conditions: Vec<NewCondition>,
    /// Channels of the organization notified when alerts fire and resolve.
    pub channels: Vec<NotificationChannelId>,
    /// Consecutive breaching results before an alert fires.
    pub failure_threshold: u32,
    /// Consecutive passing results before a firing alert resolves.
    pub success_threshold: u32,
    pub repeat_interval_seconds: u32,
    /// Shown on the project's public status page.
    pub public: bool,
    /// No notifications while the workspace is in its maintenance window.
    pub maintenance_opt_in: bool,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema, sqlx::Type),
    sqlx(type_name = "monitor_state", rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum MonitorState {
    /// No result yet.
    #[default]
    Unknown,
    Up,
    Down,
}

/// Uptime percentages (0–100); `None` without results in the range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Uptime {
    pub day: Option<f64>,
    pub week: Option<f64>,
    pub month: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MonitorView {
    pub id: MonitorId,
    pub organization: OrganizationId,
    pub project: ProjectId,
    pub workspace: Option<WorkspaceId>,
    pub name: String,
    pub kind: MonitorKind,
    pub probe: ProbeSpec,
    /// The probe in one line (`GET https://…`).
    pub target: String,
    pub interval_seconds: u32,
    pub sources: Vec<SourceView>,
    pub conditions: Vec<ConditionView>,
    pub channels: Vec<NotificationChannelId>,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub repeat_interval_seconds: u32,
    pub public: bool,
    pub maintenance_opt_in: bool,
    pub paused: bool,
    pub state: MonitorState,
    #[serde(with = "time::serde::rfc3339::option")]
    pub state_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub uptime: Uptime,
    /// Alerts pending or firing now.
    pub open_alerts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl MonitorView {
    /// The form's starting values for changing this monitor.
    pub fn to_new(&self) -> NewMonitor {
        NewMonitor {
            name: self.name.clone(),
            probe: self.probe.clone(),
            interval_seconds: self.interval_seconds,
            sources: self.sources.iter().map(|s| s.source).collect(),
            conditions: self
                .conditions
                .iter()
                .map(|c| c.condition.clone())
                .collect(),
            channels: self.channels.clone(),
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            repeat_interval_seconds: self.repeat_interval_seconds,
            public: self.public,
            maintenance_opt_in: self.maintenance_opt_in,
            paused: self.paused,
        }
    }
}

/// A row of the monitoring overview: the view plus a sparkline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MonitorSummary {
    pub monitor: MonitorView,
    /// Latency of the most recent results, oldest first (`None` for a
    /// failed result), for the sparkline.
    pub recent: Vec<RecentResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecentResult {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub ok: bool,
    pub latency_ms: Option<f64>,
}

// ---------------------------------------------------------------------------
// Results over time (charts)
// ---------------------------------------------------------------------------

/// The time ranges the object page offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimeRange {
    Hour,
    SixHours,
    #[default]
    Day,
    Week,
    Month,
}

impl TimeRange {
    pub const ALL: [TimeRange; 5] = [
        Self::Hour,
        Self::SixHours,
        Self::Day,
        Self::Week,
        Self::Month,
    ];

    pub fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3600,
            Self::SixHours => 6 * 3600,
            Self::Day => 24 * 3600,
            Self::Week => 7 * 24 * 3600,
            Self::Month => 30 * 24 * 3600,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::SixHours => "6h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::SixHours => "6h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }
}

/// Results in one bucket of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// The bucket's start.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub checks: u32,
    pub failures: u32,
    pub latency_avg_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
}

/// A stretch of time in one state, for the state timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StateSpan {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub state: MonitorState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MonitorSeries {
    pub range: TimeRange,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Equal buckets covering `from..to`, oldest first (empty buckets have
    /// `checks == 0`).
    pub points: Vec<SeriesPoint>,
    pub states: Vec<StateSpan>,
}

/// One stored result, newest first on the object page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ResultView {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// "Portal" or the host's name.
    pub source: String,
    pub outcome: ProbeOutcome,
}

// ---------------------------------------------------------------------------
// Alerts and silences
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema, sqlx::Type),
    sqlx(type_name = "alert_state", rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Breaching, but not for long enough yet.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn key(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        [Self::Pending, Self::Firing, Self::Resolved]
            .into_iter()
            .find(|s| s.key() == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Acknowledgement {
    pub by: Option<AccountId>,
    /// The account's email, when it still exists.
    pub by_email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AlertView {
    pub id: AlertId,
    pub organization: OrganizationId,
    pub project: ProjectId,
    pub workspace: Option<WorkspaceId>,
    pub monitor: MonitorId,
    pub monitor_name: String,
    /// `None` when the condition was changed or removed since.
    pub condition: Option<ConditionId>,
    /// The condition as it read when the alert started.
    pub summary: String,
    pub severity: Severity,
    pub state: AlertState,
    /// The last value that breached (or passed, once resolved).
    pub value: Option<f64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub fired_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub acknowledgement: Option<Acknowledgement>,
    /// Why notifications are held back right now: "silenced until …",
    /// "maintenance window".
    pub suppressed: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_notified_at: Option<OffsetDateTime>,
    pub notifications: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `pending`, `firing`, `notified`, `repeated`, `suppressed`,
    /// `acknowledged`, `resolved`.
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AlertDetail {
    pub alert: AlertView,
    pub events: Vec<AlertEvent>,
}

/// Filters of the alerts page; everything unset means all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub severity: Option<Severity>,
    pub monitor: Option<MonitorId>,
    pub acknowledged: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewSilence {
    /// One monitor, or every monitor of the project when unset.
    pub monitor: Option<MonitorId>,
    /// How long from now, at most 30 days.
    pub duration_seconds: u32,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SilenceView {
    pub id: SilenceId,
    pub project: ProjectId,
    pub monitor: Option<MonitorId>,
    pub monitor_name: Option<String>,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub created_by_email: Option<String>,
    /// Still in force.
    pub active: bool,
}

// ---------------------------------------------------------------------------
// Notification channels
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Email,
    Webhook,
    Slack,
    Teams,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [Self::Email, Self::Webhook, Self::Slack, Self::Teams];

    pub fn key(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Teams => "teams",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "Email",
            Self::Webhook => "Webhook (JSON, signed)",
            Self::Slack => "Slack incoming webhook",
            Self::Teams => "Microsoft Teams webhook",
        }
    }
}

/// A channel's settings as entered. Stored sealed: webhook URLs carry
/// tokens, and the webhook secret signs every request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelConfig {
    Email {
        addresses: Vec<String>,
    },
    /// JSON POSTs signed with HMAC-SHA256 of the body under `secret`, sent
    /// as `X-Loopback-Signature: sha256=<hex>`.
    Webhook {
        url: String,
        secret: String,
    },
    Slack {
        url: String,
    },
    Teams {
        url: String,
    },
}

impl ChannelConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Email { .. } => ChannelKind::Email,
            Self::Webhook { .. } => ChannelKind::Webhook,
            Self::Slack { .. } => ChannelKind::Slack,
            Self::Teams { .. } => ChannelKind::Teams,
        }
    }
}

/// The header carrying a webhook's signature.
pub const SIGNATURE_HEADER: &str = "x-loopback-signature";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewChannel {
    pub name: String,
    pub config: ChannelConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ChannelView {
    pub id: NotificationChannelId,
    pub organization: OrganizationId,
    pub name: String,
    pub kind: ChannelKind,
    /// Where it sends, without secrets: the addresses, or the URL's host.
    pub destination: String,
    /// Deliveries that failed for good in the last 7 days.
    pub failed_recently: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema, sqlx::Type),
    sqlx(type_name = "notification_state", rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt or for a retry.
    Pending,
    Delivered,
    /// Gave up after the last retry.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: NotificationId,
    pub channel: NotificationChannelId,
    pub channel_name: String,
    /// "[FIRING] api: status is down", "Test notification".
    pub subject: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

/// What one notification says: the webhook's JSON body, and what the Slack,
/// Teams and email renderings are made from. Alerts of one monitor that
/// change together travel in one notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NotificationMessage {
    pub id: NotificationId,
    /// `firing`, `resolved`, `repeat` or `test`.
    pub kind: String,
    pub organization: OrganizationId,
    pub project: Option<ProjectId>,
    pub monitor: Option<MonitorId>,
    pub monitor_name: Option<String>,
    pub target: Option<String>,
    /// The object page in the portal.
    pub url: Option<String>,
    pub alerts: Vec<NotifiedAlert>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

impl NotificationMessage {
    /// "[FIRING] api: status is down (+1 more)".
    pub fn subject(&self) -> String {
        if self.kind == "test" {
            return "Test notification from Loopback".into();
        }
        let label = match self.kind.as_str() {
            "resolved" => "RESOLVED",
            "repeat" => "FIRING, still",
            _ => "FIRING",
        };
        let name = self.monitor_name.as_deref().unwrap_or("monitor");
        match self.alerts.as_slice() {
            [] => format!("[{label}] {name}"),
            [one] => format!("[{label}] {name}: {}", one.summary),
            [first, rest @ ..] => {
                format!("[{label}] {name}: {} (+{} more)", first.summary, rest.len())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NotifiedAlert {
    pub id: AlertId,
    pub summary: String,
    pub severity: Severity,
    pub state: AlertState,
    pub value: Option<f64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

// ---------------------------------------------------------------------------
// Public status page
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StatusPage {
    pub project_name: String,
    pub monitors: Vec<PublicMonitor>,
}

/// Only what the owner chose to show: name, state, uptime, recent results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PublicMonitor {
    pub name: String,
    pub state: MonitorState,
    pub uptime: Uptime,
    pub recent: Vec<RecentResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_summaries_read_like_rules() {
        assert_eq!(NewCondition::down().summary(), "status is down");
        let slow = NewCondition {
            parameter: Parameter::LatencyMs,
            operator: Operator::Gt,
            threshold: 500.0,
            for_seconds: 180,
            severity: Severity::Warning,
        };
        assert_eq!(slow.summary(), "latency_ms > 500 for 3m");
    }

    #[test]
    fn probe_specs_round_trip_as_tagged_json() {
        let spec = ProbeSpec::Tcp(TcpProbe {
            host: "127.0.0.1".into(),
            port: 80,
            timeout_ms: 1000,
        });
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["kind"], "tcp");
        assert_eq!(serde_json::from_value::<ProbeSpec>(json).unwrap(), spec);
    }

    #[test]
    fn outcome_values_cover_status_and_latency() {
        let mut outcome = ProbeOutcome {
            ok: true,
            latency_ms: Some(12.0),
            ..ProbeOutcome::default()
        };
        outcome.values.insert(Parameter::HttpStatus, 200.0);
        assert_eq!(outcome.value(Parameter::Status), Some(1.0));
        assert_eq!(outcome.value(Parameter::LatencyMs), Some(12.0));
        assert_eq!(outcome.value(Parameter::HttpStatus), Some(200.0));
        assert_eq!(outcome.value(Parameter::DaysToExpiry), None);
    }
}
