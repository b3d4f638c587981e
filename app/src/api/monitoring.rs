//! Monitoring objects: the overview of a project or workspace, one
//! monitor's page (charts, results), the create/change form and the public
//! status page.
//!
//! The form travels as [`MonitorForm`]: every field as typed, so parsing
//! happens in one place ([`MonitorForm::parse`]) and every error names the
//! form field it is about. The condition rows travel nested
//! (`form[conditions][0][parameter]`), as `serde_qs` reads them; fields left
//! out take their defaults.

use leptos::prelude::*;
use protocol::ids::{HostId, MonitorId, NotificationChannelId, ProjectId, WorkspaceId};
use protocol::views::Page;
use protocol::views::monitoring::{
    ChannelView, DnsProbe, DnsRecordType, Header, HostProbe, HttpMethod, HttpProbe,
    JsonExpectation, KubernetesProbe, MonitorKind, MonitorSeries, MonitorSummary, MonitorView,
    NewCondition, NewMonitor, Operator, Parameter, ProbeSpec, ResultView, Severity, SourceRef,
    StatusPage, TcpProbe, TimeRange, TlsProbe, duration_label,
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The form fields that show their own error, in the order they appear.
pub const FORM_FIELDS: &[&str] = &[
    "name",
    "kind",
    "method",
    "url",
    "expected_status",
    "body_contains",
    "json_path",
    "json_equals",
    "headers",
    "timeout",
    "host",
    "port",
    "server_name",
    "dns_name",
    "record_type",
    "expected",
    "nameserver",
    "workspace",
    "namespace",
    "host_id",
    "interval",
    "sources",
    "conditions",
    "channels",
    "failure_threshold",
    "success_threshold",
    "repeat_interval",
];

/// The monitors of a project (its own and its workspaces') or of a
/// workspace, and whether the caller may change them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorsSection {
    pub items: Vec<MonitorSummary>,
    pub can_manage: bool,
}

/// One monitor's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorDetails {
    pub monitor: MonitorView,
    pub can_manage: bool,
}

/// What the form offers to choose from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorFormOptions {
    /// Whether the caller may create monitors here at all.
    pub can_manage: bool,
    /// Workspaces a Kubernetes monitor may watch.
    pub workspaces: Vec<(WorkspaceId, String)>,
    /// Hosts for host monitors and agent sources.
    pub hosts: Vec<(HostId, String)>,
    /// The organization's notification channels.
    pub channels: Vec<ChannelView>,
}

#[server]
pub async fn list_monitors(
    #[server(default)] project: Option<ProjectId>,
    #[server(default)] workspace: Option<WorkspaceId>,
) -> Result<MonitorsSection, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let scope = server::scope(project, workspace)?;
    let items = platform::monitoring::list(&ctx.platform, &actor, scope).await?;
    let can_manage = server::can_manage(ctx.db(), &actor, scope).await;
    Ok(MonitorsSection { items, can_manage })
}

#[server]
pub async fn get_monitor(monitor: MonitorId) -> Result<MonitorDetails, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let monitor = platform::monitoring::get(&ctx.platform, &actor, monitor).await?;
    let can_manage = server::can_manage(ctx.db(), &actor, server::scope_of(&monitor)).await;
    Ok(MonitorDetails {
        monitor,
        can_manage,
    })
}

/// The choices of the monitor form in a project or workspace. Parts the
/// caller may not read (hosts of a workspace, the organization's channels)
/// are left empty rather than failing the form.
#[server]
pub async fn get_monitor_form_options(
    #[server(default)] project: Option<ProjectId>,
    #[server(default)] workspace: Option<WorkspaceId>,
) -> Result<MonitorFormOptions, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let db = ctx.db();
    let scope = server::scope(project, workspace)?;
    let can_manage = server::can_manage(db, &actor, scope).await;
    let (project, workspaces) = match scope {
        platform::monitoring::Scope::Workspace(w) => {
            let w = platform::workspaces::get(db, &actor, w).await?;
            (w.project_id, vec![w])
        }
        platform::monitoring::Scope::Project(p) => {
            (p, platform::workspaces::list(db, &actor, p).await?)
        }
    };
    let mut hosts = Vec::new();
    for w in &workspaces {
        if let Ok(list) = platform::hosts::list(db, &actor, w.id).await {
            hosts.extend(list.into_iter().map(|h| (h.id, h.hostname)));
        }
    }
    let organization = platform::tenancy::projects::get(db, &actor, project)
        .await?
        .organization_id;
    let channels = platform::monitoring::notify::list_channels(&ctx.platform, &actor, organization)
        .await
        .unwrap_or_default();
    Ok(MonitorFormOptions {
        can_manage,
        workspaces: workspaces.into_iter().map(|w| (w.id, w.name)).collect(),
        hosts,
        channels,
    })
}

#[server]
pub async fn load_monitor_series(
    monitor: MonitorId,
    range: TimeRange,
) -> Result<MonitorSeries, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::series(&ctx.platform, &actor, monitor, range).await?)
}

/// Stored results, newest first, 20 to a page (`page` is 1-based).
#[server]
pub async fn list_monitor_results(
    monitor: MonitorId,
    page: u32,
) -> Result<Page<ResultView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let request = protocol::views::PageRequest::new(
        page.max(1),
        protocol::views::PageRequest::DEFAULT_PER_PAGE,
    );
    Ok(platform::monitoring::results(&ctx.platform, &actor, monitor, request).await?)
}

/// Creates a monitor (`monitor` unset) in the project or workspace given,
/// or changes `monitor` to what the form says.
#[server]
pub async fn save_monitor(
    #[server(default)] project: Option<ProjectId>,
    #[server(default)] workspace: Option<WorkspaceId>,
    #[server(default)] monitor: Option<MonitorId>,
    form: MonitorForm,
) -> Result<MonitorId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let new = form.parse()?;
    let saved = match monitor {
        Some(id) => platform::monitoring::update(&ctx.platform, &actor, id, new).await,
        None => {
            let scope = server::scope(project, workspace)?;
            platform::monitoring::create(&ctx.platform, &actor, scope, new).await
        }
    };
    Ok(saved.map_err(|e| form_error(AppError::from(e)))?.id)
}

/// Pauses (no probes, no alerts) or resumes a monitor.
#[server]
pub async fn pause_monitor(monitor: MonitorId, paused: bool) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let view = platform::monitoring::get(&ctx.platform, &actor, monitor).await?;
    let mut new = view.to_new();
    new.paused = paused;
    platform::monitoring::update(&ctx.platform, &actor, monitor, new).await?;
    Ok(())
}

#[server]
pub async fn delete_monitor(monitor: MonitorId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::delete(&ctx.platform, &actor, monitor).await?)
}

/// The project's public status page; needs no sign-in.
#[server]
pub async fn get_status_page(project: ProjectId) -> Result<StatusPage, AppError> {
    let platform = crate::server::platform()?;
    Ok(platform::monitoring::status_page(&platform, project).await?)
}

#[cfg(feature = "ssr")]
mod server {
    use platform::authz::{Actor, Permission, authorize};
    use platform::monitoring::Scope;
    use protocol::ids::{ProjectId, WorkspaceId};
    use protocol::views::monitoring::MonitorView;
    use sqlx::PgPool;

    use crate::error::AppError;

    pub fn scope(
        project: Option<ProjectId>,
        workspace: Option<WorkspaceId>,
    ) -> Result<Scope, AppError> {
        match (project, workspace) {
            (_, Some(w)) => Ok(Scope::Workspace(w)),
            (Some(p), None) => Ok(Scope::Project(p)),
            (None, None) => Err(AppError::invalid(
                "project",
                "say which project or workspace the monitor belongs to",
            )),
        }
    }

    pub fn scope_of(monitor: &MonitorView) -> Scope {
        match monitor.workspace {
            Some(w) => Scope::Workspace(w),
            None => Scope::Project(monitor.project),
        }
    }

    pub async fn can_manage(db: &PgPool, actor: &Actor, scope: Scope) -> bool {
        authorize(db, actor, Permission::MonitoringManage, scope.resource())
            .await
            .is_ok()
    }
}

// ---------------------------------------------------------------------------
// The form
// ---------------------------------------------------------------------------

/// One row of the conditions editor, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditionForm {
    pub parameter: String,
    pub operator: String,
    pub threshold: String,
    /// A duration: `0`, `90s`, `3m`, `1h`.
    pub for_seconds: String,
    pub severity: String,
}

impl ConditionForm {
    pub fn from_condition(c: &NewCondition) -> Self {
        Self {
            parameter: c.parameter.key().into(),
            operator: c.operator.key().into(),
            threshold: number_text(c.threshold),
            for_seconds: duration_label(c.for_seconds),
            severity: c.severity.key().into(),
        }
    }

    fn parse(&self, row: usize, kind: MonitorKind) -> Result<NewCondition, AppError> {
        let bad = |why: String| AppError::invalid("conditions", format!("row {}: {why}", row + 1));
        let parameter = Parameter::from_key(&self.parameter)
            .filter(|p| kind.parameters().contains(p))
            .ok_or_else(|| {
                bad(format!(
                    "choose a parameter a {} monitor measures",
                    kind.label()
                ))
            })?;
        let operator =
            Operator::from_key(&self.operator).ok_or_else(|| bad("choose an operator".into()))?;
        let threshold = self
            .threshold
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .ok_or_else(|| bad("the threshold is a number".into()))?;
        let for_seconds = parse_duration(&self.for_seconds)
            .ok_or_else(|| bad("\"for\" is a duration such as 0, 90s, 3m or 1h".into()))?;
        let severity =
            Severity::from_key(&self.severity).ok_or_else(|| bad("choose a severity".into()))?;
        Ok(NewCondition {
            parameter,
            operator,
            threshold,
            for_seconds,
            severity,
        })
    }
}

/// The monitor form as typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorForm {
    pub name: String,
    /// [`MonitorKind::key`].
    pub kind: String,
    // HTTP
    pub method: String,
    pub url: String,
    pub expected_status: String,
    pub body_contains: String,
    pub json_path: String,
    pub json_equals: String,
    /// `Name: value`, one per line.
    pub headers: String,
    pub follow_redirects: bool,
    /// Seconds, for every network kind.
    pub timeout: String,
    // TLS and TCP
    pub host: String,
    pub port: String,
    pub server_name: String,
    // DNS
    pub dns_name: String,
    pub record_type: String,
    pub expected: String,
    pub nameserver: String,
    // Kubernetes
    pub workspace: Option<WorkspaceId>,
    pub namespace: String,
    // Host
    pub host_id: Option<HostId>,
    /// Seconds.
    pub interval: String,
    pub portal_source: bool,
    pub agent_hosts: Vec<HostId>,
    /// An empty list travels as nothing at all: it must read back as no
    /// conditions, not as the form's default row.
    #[serde(default)]
    pub conditions: Vec<ConditionForm>,
    pub channels: Vec<NotificationChannelId>,
    pub failure_threshold: String,
    pub success_threshold: String,
    /// A duration: `4h`, `30m`.
    pub repeat_interval: String,
    pub public: bool,
    pub maintenance_opt_in: bool,
    pub paused: bool,
}

impl Default for MonitorForm {
    fn default() -> Self {
        use protocol::views::monitoring::{
            DEFAULT_FAILURE_THRESHOLD, DEFAULT_INTERVAL_SECONDS, DEFAULT_REPEAT_INTERVAL_SECONDS,
            DEFAULT_SUCCESS_THRESHOLD,
        };
        Self {
            name: String::new(),
            kind: MonitorKind::Http.key().into(),
            method: HttpMethod::Get.as_str().into(),
            url: String::new(),
            expected_status: String::new(),
            body_contains: String::new(),
            json_path: String::new(),
            json_equals: String::new(),
            headers: String::new(),
            follow_redirects: true,
            timeout: "10".into(),
            host: String::new(),
            port: String::new(),
            server_name: String::new(),
            dns_name: String::new(),
            record_type: DnsRecordType::A.as_str().into(),
            expected: String::new(),
            nameserver: String::new(),
            workspace: None,
            namespace: String::new(),
            host_id: None,
            interval: DEFAULT_INTERVAL_SECONDS.to_string(),
            portal_source: true,
            agent_hosts: Vec::new(),
            conditions: vec![ConditionForm::from_condition(&NewCondition::down())],
            channels: Vec::new(),
            failure_threshold: DEFAULT_FAILURE_THRESHOLD.to_string(),
            success_threshold: DEFAULT_SUCCESS_THRESHOLD.to_string(),
            repeat_interval: duration_label(DEFAULT_REPEAT_INTERVAL_SECONDS),
            public: false,
            maintenance_opt_in: false,
            paused: false,
        }
    }
}

/// `1.5` → "1.5", `3.0` → "3".
fn number_text(n: f64) -> String {
    format!("{n}")
}

fn ms_to_seconds(ms: u32) -> String {
    number_text(f64::from(ms) / 1000.0)
}

impl MonitorForm {
    /// The form's starting values for changing `m`.
    pub fn from_new(m: &NewMonitor) -> Self {
        let mut form = Self {
            name: m.name.clone(),
            kind: m.probe.kind().key().into(),
            interval: m.interval_seconds.to_string(),
            portal_source: m.sources.contains(&SourceRef::Builtin),
            agent_hosts: m
                .sources
                .iter()
                .filter_map(|s| match s {
                    SourceRef::Agent { host } => Some(*host),
                    SourceRef::Builtin => None,
                })
                .collect(),
            conditions: m
                .conditions
                .iter()
                .map(ConditionForm::from_condition)
                .collect(),
            channels: m.channels.clone(),
            failure_threshold: m.failure_threshold.to_string(),
            success_threshold: m.success_threshold.to_string(),
            repeat_interval: duration_label(m.repeat_interval_seconds),
            public: m.public,
            maintenance_opt_in: m.maintenance_opt_in,
            paused: m.paused,
            ..Self::default()
        };
        match &m.probe {
            ProbeSpec::Http(p) => {
                form.method = p.method.as_str().into();
                form.url = p.url.clone();
                form.expected_status = p.expected_status.map(|s| s.to_string()).unwrap_or_default();
                form.body_contains = p.body_contains.clone().unwrap_or_default();
                if let Some(j) = &p.json {
                    form.json_path = j.path.clone();
                    form.json_equals = j.equals.clone();
                }
                form.headers = p
                    .headers
                    .iter()
                    .map(|h| format!("{}: {}", h.name, h.value))
                    .collect::<Vec<_>>()
                    .join("\n");
                form.follow_redirects = p.follow_redirects;
                form.timeout = ms_to_seconds(p.timeout_ms);
            }
            ProbeSpec::Tls(p) => {
                form.host = p.host.clone();
                form.port = p.port.to_string();
                form.server_name = p.server_name.clone().unwrap_or_default();
                form.timeout = ms_to_seconds(p.timeout_ms);
            }
            ProbeSpec::Tcp(p) => {
                form.host = p.host.clone();
                form.port = p.port.to_string();
                form.timeout = ms_to_seconds(p.timeout_ms);
            }
            ProbeSpec::Dns(p) => {
                form.dns_name = p.name.clone();
                form.record_type = p.record_type.as_str().into();
                form.expected = p.expected.clone().unwrap_or_default();
                form.nameserver = p.nameserver.clone().unwrap_or_default();
                form.timeout = ms_to_seconds(p.timeout_ms);
            }
            ProbeSpec::Kubernetes(p) => {
                form.workspace = Some(p.workspace);
                form.namespace = p.namespace.clone().unwrap_or_default();
                form.timeout = ms_to_seconds(p.timeout_ms);
            }
            ProbeSpec::Host(p) => form.host_id = Some(p.host),
        }
        form
    }

    /// The monitor the form describes; errors name the form field.
    pub fn parse(&self) -> Result<NewMonitor, AppError> {
        let kind = MonitorKind::from_key(&self.kind)
            .ok_or_else(|| AppError::invalid("kind", "choose what to monitor"))?;
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err(AppError::invalid("name", "give the monitor a name"));
        }
        let probe = self.probe(kind)?;
        let interval_seconds = whole(&self.interval, "interval")?;
        let mut sources = Vec::new();
        if self.portal_source || !kind.runs_on_agents() {
            sources.push(SourceRef::Builtin);
        }
        if kind.runs_on_agents() {
            for host in &self.agent_hosts {
                let source = SourceRef::Agent { host: *host };
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
        }
        if sources.is_empty() {
            return Err(AppError::invalid(
                "sources",
                "choose the portal or at least one host to probe from",
            ));
        }
        let conditions = self
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| c.parse(i, kind))
            .collect::<Result<Vec<_>, _>>()?;
        let repeat_interval_seconds = parse_duration(&self.repeat_interval)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                AppError::invalid("repeat_interval", "a duration such as 30m, 4h or 3600")
            })?;
        let mut channels = self.channels.clone();
        channels.dedup();
        Ok(NewMonitor {
            name,
            probe,
            interval_seconds,
            sources,
            conditions,
            channels,
            failure_threshold: whole(&self.failure_threshold, "failure_threshold")?,
            success_threshold: whole(&self.success_threshold, "success_threshold")?,
            repeat_interval_seconds,
            public: self.public,
            maintenance_opt_in: self.maintenance_opt_in,
            paused: self.paused,
        })
    }

    fn timeout_ms(&self) -> Result<u32, AppError> {
        self.timeout
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 600.0)
            .map(|s| (s * 1000.0).round() as u32)
            .ok_or_else(|| AppError::invalid("timeout", "seconds, more than 0 and at most 600"))
    }

    fn port(&self) -> Result<u16, AppError> {
        self.port
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| AppError::invalid("port", "a port from 1 to 65535"))
    }

    fn probe(&self, kind: MonitorKind) -> Result<ProbeSpec, AppError> {
        Ok(match kind {
            MonitorKind::Http => {
                let method = HttpMethod::ALL
                    .into_iter()
                    .find(|m| m.as_str() == self.method)
                    .ok_or_else(|| AppError::invalid("method", "choose a method"))?;
                let url = self.url.trim().to_string();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(AppError::invalid(
                        "url",
                        "a URL starting with http:// or https://",
                    ));
                }
                let expected_status = match self.expected_status.trim() {
                    "" => None,
                    s => Some(
                        s.parse::<u16>()
                            .ok()
                            .filter(|s| (100..=599).contains(s))
                            .ok_or_else(|| {
                                AppError::invalid(
                                    "expected_status",
                                    "a status from 100 to 599, or empty for any 2xx or 3xx",
                                )
                            })?,
                    ),
                };
                let json = match (self.json_path.trim(), self.json_equals.trim()) {
                    ("", "") => None,
                    ("", _) => {
                        return Err(AppError::invalid(
                            "json_path",
                            "give the path of the value, e.g. $.status",
                        ));
                    }
                    (path, _) if !path.starts_with('$') => {
                        return Err(AppError::invalid(
                            "json_path",
                            "a path starting with $, e.g. $.status",
                        ));
                    }
                    (path, equals) => Some(JsonExpectation {
                        path: path.into(),
                        equals: equals.into(),
                    }),
                };
                ProbeSpec::Http(HttpProbe {
                    method,
                    url,
                    expected_status,
                    body_contains: non_empty(&self.body_contains),
                    json,
                    headers: parse_headers(&self.headers)?,
                    body: None,
                    timeout_ms: self.timeout_ms()?,
                    follow_redirects: self.follow_redirects,
                })
            }
            MonitorKind::Tls => ProbeSpec::Tls(TlsProbe {
                host: required(&self.host, "host", "give the host name or address")?,
                port: self.port()?,
                server_name: non_empty(&self.server_name),
                timeout_ms: self.timeout_ms()?,
            }),
            MonitorKind::Tcp => ProbeSpec::Tcp(TcpProbe {
                host: required(&self.host, "host", "give the host name or address")?,
                port: self.port()?,
                timeout_ms: self.timeout_ms()?,
            }),
            MonitorKind::Dns => ProbeSpec::Dns(DnsProbe {
                name: required(&self.dns_name, "dns_name", "give the name to look up")?,
                record_type: DnsRecordType::ALL
                    .into_iter()
                    .find(|t| t.as_str() == self.record_type)
                    .ok_or_else(|| AppError::invalid("record_type", "choose a record type"))?,
                expected: non_empty(&self.expected),
                nameserver: non_empty(&self.nameserver),
                timeout_ms: self.timeout_ms()?,
            }),
            MonitorKind::Kubernetes => ProbeSpec::Kubernetes(KubernetesProbe {
                workspace: self
                    .workspace
                    .ok_or_else(|| AppError::invalid("workspace", "choose a workspace"))?,
                namespace: non_empty(&self.namespace),
                timeout_ms: self.timeout_ms()?,
            }),
            MonitorKind::Host => ProbeSpec::Host(HostProbe {
                host: self
                    .host_id
                    .ok_or_else(|| AppError::invalid("host_id", "choose a host"))?,
            }),
        })
    }
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn required(text: &str, field: &'static str, why: &str) -> Result<String, AppError> {
    non_empty(text).ok_or_else(|| AppError::invalid(field, why))
}

fn whole(text: &str, field: &'static str) -> Result<u32, AppError> {
    text.trim()
        .parse()
        .map_err(|_| AppError::invalid(field, "a whole number"))
}

/// `Name: value` per line; blank lines are skipped.
pub fn parse_headers(text: &str) -> Result<Vec<Header>, AppError> {
    let mut headers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(AppError::invalid(
                "headers",
                format!("line {}: write \"Name: value\"", i + 1),
            ));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(AppError::invalid(
                "headers",
                format!(
                    "line {}: a header name is letters, digits and dashes",
                    i + 1
                ),
            ));
        }
        headers.push(Header {
            name: name.into(),
            value: value.trim().into(),
        });
    }
    Ok(headers)
}

/// `90`, `90s`, `3m`, `4h`, `1d` → seconds; the inverse of
/// [`duration_label`].
pub fn parse_duration(text: &str) -> Option<u32> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let n: u32 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// An error from the domain, moved onto the form field it is about: the
/// domain names fields of [`NewMonitor`]'s JSON shape (`probe.url`,
/// `conditions[1].threshold`), the form has its own names.
pub fn form_error(e: AppError) -> AppError {
    let AppError::Invalid { field, message } = &e else {
        return e;
    };
    let row = |f: &str| -> Option<usize> {
        let start = f.find('[')? + 1;
        let end = f[start..].find(']')? + start;
        f[start..end].parse().ok()
    };
    let form_field = match field.as_str() {
        f if f.starts_with("conditions") => {
            let message = match row(f) {
                Some(n) => format!("row {}: {message}", n + 1),
                None => message.clone(),
            };
            return AppError::invalid("conditions", message);
        }
        f if f.starts_with("sources") => "sources",
        f if f.starts_with("channels") => "channels",
        "interval_seconds" => "interval",
        "repeat_interval_seconds" => "repeat_interval",
        "probe.timeout_ms" => "timeout",
        "probe.name" => "dns_name",
        "probe.record_type" => "record_type",
        "probe.host" => "host",
        "probe.port" => "port",
        "probe.url" => "url",
        "probe.method" => "method",
        "probe.expected_status" => "expected_status",
        "probe.server_name" => "server_name",
        "probe.expected" => "expected",
        "probe.nameserver" => "nameserver",
        "probe.namespace" => "namespace",
        "probe.workspace" => "workspace",
        f if f.starts_with("probe.json") => "json_path",
        f if f.starts_with("probe.headers") => "headers",
        f if f.starts_with("probe.body") => "body_contains",
        // A host probe's host is chosen from a list.
        f if f.starts_with("probe") && f.contains("host") => "host_id",
        _ => return e,
    };
    AppError::invalid(form_field, message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_form() -> MonitorForm {
        MonitorForm {
            name: "api".into(),
            url: "http://127.0.0.1:8080/health".into(),
            ..MonitorForm::default()
        }
    }

    #[test]
    fn defaults_make_a_monitor_with_the_down_condition() {
        let new = http_form().parse().unwrap();
        assert_eq!(new.conditions, vec![NewCondition::down()]);
        assert_eq!(new.interval_seconds, 60);
        assert_eq!(new.sources, vec![SourceRef::Builtin]);
        assert_eq!((new.failure_threshold, new.success_threshold), (3, 2));
        assert_eq!(new.repeat_interval_seconds, 4 * 3600);
        let ProbeSpec::Http(p) = &new.probe else {
            panic!("{:?}", new.probe)
        };
        assert_eq!(p.timeout_ms, 10_000);
        assert!(p.follow_redirects);
    }

    #[test]
    fn forms_round_trip_through_new_monitor() {
        let mut form = http_form();
        form.headers = "Accept: application/json\nX-Token: a:b".into();
        form.json_path = "$.status".into();
        form.json_equals = "ok".into();
        form.expected_status = "200".into();
        form.conditions.push(ConditionForm {
            parameter: "latency_ms".into(),
            operator: "gt".into(),
            threshold: "500".into(),
            for_seconds: "3m".into(),
            severity: "warning".into(),
        });
        let new = form.parse().unwrap();
        assert_eq!(new.conditions[1].for_seconds, 180);
        let ProbeSpec::Http(p) = &new.probe else {
            panic!()
        };
        assert_eq!(p.headers[1].value, "a:b");
        assert_eq!(MonitorForm::from_new(&new).parse().unwrap(), new);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(MonitorForm, &str)> = vec![
            (
                MonitorForm {
                    name: " ".into(),
                    ..http_form()
                },
                "name",
            ),
            (
                MonitorForm {
                    url: "ftp://x".into(),
                    ..http_form()
                },
                "url",
            ),
            (
                MonitorForm {
                    headers: "nocolon".into(),
                    ..http_form()
                },
                "headers",
            ),
            (
                MonitorForm {
                    timeout: "0".into(),
                    ..http_form()
                },
                "timeout",
            ),
            (
                MonitorForm {
                    interval: "soon".into(),
                    ..http_form()
                },
                "interval",
            ),
            (
                MonitorForm {
                    kind: "tcp".into(),
                    host: "db".into(),
                    port: "70000".into(),
                    ..http_form()
                },
                "port",
            ),
            (
                MonitorForm {
                    portal_source: false,
                    ..http_form()
                },
                "sources",
            ),
            (
                MonitorForm {
                    kind: "host".into(),
                    ..http_form()
                },
                "host_id",
            ),
            (
                MonitorForm {
                    repeat_interval: "often".into(),
                    ..http_form()
                },
                "repeat_interval",
            ),
        ];
        for (form, field) in cases {
            let e = form.parse().unwrap_err();
            assert!(e.for_field(field).is_some(), "{field}: {e:?}");
        }
        let mut form = http_form();
        form.conditions[0].parameter = "cpu_percent".into();
        let e = form.parse().unwrap_err();
        assert!(e.for_field("conditions").unwrap().starts_with("row 1"));
    }

    #[test]
    fn durations_parse_like_they_print() {
        for s in [0, 45, 90, 180, 3600, 4 * 3600, 86_400] {
            assert_eq!(parse_duration(&duration_label(s)), Some(s));
        }
        assert_eq!(parse_duration("4 h"), Some(4 * 3600));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn domain_errors_land_on_form_fields() {
        let e = form_error(AppError::invalid("conditions[1].threshold", "too big"));
        assert_eq!(e.for_field("conditions").as_deref(), Some("row 2: too big"));
        let e = form_error(AppError::invalid("interval_seconds", "at least 10 s"));
        assert_eq!(e.for_field("interval").as_deref(), Some("at least 10 s"));
        let e = form_error(AppError::invalid("probe.url", "bad"));
        assert!(e.for_field("url").is_some());
        let e = form_error(AppError::invalid("name", "taken"));
        assert!(e.for_field("name").is_some());
    }
}
