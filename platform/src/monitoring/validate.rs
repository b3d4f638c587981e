//! Checks a [`NewMonitor`] before anything is written: first its shape
//! (no database), then what it refers to (workspaces, hosts, channels) in
//! the writing transaction. Every error names the form field.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use protocol::ids::{HostId, NotificationChannelId, OrganizationId, ProjectId, WorkspaceId};
use protocol::views::monitoring::{NewMonitor, Operator, Parameter, ProbeSpec, SourceRef};
use sqlx::PgConnection;

use super::{Scope, Settings};
use crate::error::{Error, Result};

/// A monitor that passed [`shape`]: trimmed and normalised.
pub(super) type Checked = NewMonitor;

const MAX_NAME: usize = 63;
const MAX_INTERVAL_SECONDS: u32 = 24 * 3600;
const MAX_TIMEOUT_MS: u32 = 60_000;
const MIN_TIMEOUT_MS: u32 = 100;
const MAX_SOURCES: usize = 10;
const MAX_CONDITIONS: usize = 20;
const MAX_CHANNELS: usize = 20;
const MAX_HEADERS: usize = 20;
const MAX_THRESHOLD: u32 = 100;
const MAX_FOR_SECONDS: u32 = 24 * 3600;
const MAX_REPEAT_SECONDS: u32 = 7 * 24 * 3600;
const MAX_BODY: usize = 64 * 1024;
const MAX_TEXT: usize = 1024;

fn trimmed(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn check_host(field: &str, host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(Error::invalid(field, "enter a host name or IP address"));
    }
    if host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(Error::invalid(
            field,
            "enter a host name or IP address, without scheme or path",
        ));
    }
    Ok(())
}

fn check_port(field: &str, port: u16) -> Result<()> {
    if port == 0 {
        return Err(Error::invalid(field, "use a port from 1 to 65535"));
    }
    Ok(())
}

fn check_timeout(timeout_ms: u32, interval_seconds: u32) -> Result<()> {
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(Error::invalid(
            "probe.timeout_ms",
            format!("use a timeout from {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS} ms"),
        ));
    }
    if u64::from(timeout_ms) > u64::from(interval_seconds) * 1000 {
        return Err(Error::invalid(
            "probe.timeout_ms",
            "the timeout must not be longer than the interval",
        ));
    }
    Ok(())
}

fn check_probe(probe: ProbeSpec, interval_seconds: u32) -> Result<ProbeSpec> {
    Ok(match probe {
        ProbeSpec::Http(mut p) => {
            p.url = p.url.trim().to_string();
            let url = url::Url::parse(&p.url).map_err(|_| {
                Error::invalid(
                    "probe.url",
                    "enter a full URL, e.g. https://example.com/health",
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(Error::invalid(
                    "probe.url",
                    "use an http:// or https:// URL with a host",
                ));
            }
            if let Some(status) = p.expected_status
                && !(100..=599).contains(&status)
            {
                return Err(Error::invalid(
                    "probe.expected_status",
                    "use an HTTP status from 100 to 599",
                ));
            }
            p.body_contains = trimmed(p.body_contains);
            if p.body_contains.as_ref().is_some_and(|b| b.len() > MAX_TEXT) {
                return Err(Error::invalid(
                    "probe.body_contains",
                    format!("use at most {MAX_TEXT} characters"),
                ));
            }
            if let Some(json) = p.json.as_mut() {
                json.path = json.path.trim().to_string();
                if json.path.is_empty() {
                    p.json = None;
                } else if !json.path.starts_with('$') || json.path.len() > 256 {
                    return Err(Error::invalid(
                        "probe.json.path",
                        "write the path like $.status or $.items[0].name",
                    ));
                }
            }
            if p.headers.len() > MAX_HEADERS {
                return Err(Error::invalid(
                    "probe.headers",
                    format!("use at most {MAX_HEADERS} headers"),
                ));
            }
            for (i, header) in p.headers.iter_mut().enumerate() {
                header.name = header.name.trim().to_string();
                header.value = header.value.trim().to_string();
                if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
                    return Err(Error::invalid(
                        format!("probe.headers[{i}]"),
                        format!("\"{}\" is not a valid header name", header.name),
                    ));
                }
                if http::HeaderValue::from_str(&header.value).is_err() {
                    return Err(Error::invalid(
                        format!("probe.headers[{i}]"),
                        format!("the value of {} is not a valid header value", header.name),
                    ));
                }
            }
            if p.body.as_ref().is_some_and(|b| b.len() > MAX_BODY) {
                return Err(Error::invalid("probe.body", "use a body of at most 64 KiB"));
            }
            if p.body.as_ref().is_some_and(|b| b.is_empty()) {
                p.body = None;
            }
            check_timeout(p.timeout_ms, interval_seconds)?;
            ProbeSpec::Http(p)
        }
        ProbeSpec::Tls(mut p) => {
            p.host = p.host.trim().to_string();
            check_host("probe.host", &p.host)?;
            check_port("probe.port", p.port)?;
            p.server_name = trimmed(p.server_name);
            if let Some(name) = &p.server_name {
                check_host("probe.server_name", name)?;
            }
            check_timeout(p.timeout_ms, interval_seconds)?;
            ProbeSpec::Tls(p)
        }
        ProbeSpec::Tcp(mut p) => {
            p.host = p.host.trim().to_string();
            check_host("probe.host", &p.host)?;
            check_port("probe.port", p.port)?;
            check_timeout(p.timeout_ms, interval_seconds)?;
            ProbeSpec::Tcp(p)
        }
        ProbeSpec::Dns(mut p) => {
            p.name = p.name.trim().trim_end_matches('.').to_string();
            check_host("probe.name", &p.name)?;
            p.expected = trimmed(p.expected);
            p.nameserver = trimmed(p.nameserver);
            if let Some(ns) = &p.nameserver
                && ns.parse::<IpAddr>().is_err()
                && ns.parse::<SocketAddr>().is_err()
            {
                return Err(Error::invalid(
                    "probe.nameserver",
                    "enter an IP address, optionally with :port",
                ));
            }
            check_timeout(p.timeout_ms, interval_seconds)?;
            ProbeSpec::Dns(p)
        }
        ProbeSpec::Kubernetes(mut p) => {
            p.namespace = trimmed(p.namespace);
            if let Some(ns) = &p.namespace {
                // A namespace name follows the same RFC 1123 label rules.
                crate::hosts::check_hostname(ns).map_err(|e| match e {
                    Error::Invalid { message, .. } => Error::invalid("probe.namespace", message),
                    other => other,
                })?;
            }
            check_timeout(p.timeout_ms, interval_seconds)?;
            ProbeSpec::Kubernetes(p)
        }
        ProbeSpec::Host(p) => ProbeSpec::Host(p),
    })
}

/// Everything that needs no database.
pub(super) fn shape(new: NewMonitor, settings: Settings) -> Result<Checked> {
    let min_interval = u32::try_from(settings.min_interval.as_secs()).unwrap_or(u32::MAX);
    let name = new.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::invalid("name", "enter a name"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            format!("use at most {MAX_NAME} printable characters"),
        ));
    }
    if !(min_interval..=MAX_INTERVAL_SECONDS).contains(&new.interval_seconds) {
        return Err(Error::invalid(
            "interval_seconds",
            format!("use an interval from {min_interval} s to 24 h"),
        ));
    }
    let probe = check_probe(new.probe, new.interval_seconds)?;
    let kind = probe.kind();

    if new.sources.is_empty() {
        return Err(Error::invalid("sources", "choose at least one source"));
    }
    if new.sources.len() > MAX_SOURCES {
        return Err(Error::invalid(
            "sources",
            format!("use at most {MAX_SOURCES} sources"),
        ));
    }
    let mut seen = HashSet::new();
    for source in &new.sources {
        if !seen.insert(*source) {
            return Err(Error::invalid(
                "sources",
                "each source may appear only once",
            ));
        }
        if matches!(source, SourceRef::Agent { .. }) && !kind.runs_on_agents() {
            return Err(Error::invalid(
                "sources",
                format!("{} monitors run from the portal only", kind.label()),
            ));
        }
    }

    if new.conditions.len() > MAX_CONDITIONS {
        return Err(Error::invalid(
            "conditions",
            format!("use at most {MAX_CONDITIONS} conditions"),
        ));
    }
    for (i, c) in new.conditions.iter().enumerate() {
        if !kind.parameters().contains(&c.parameter) {
            return Err(Error::invalid(
                format!("conditions[{i}].parameter"),
                format!(
                    "{} monitors do not measure {}",
                    kind.label(),
                    c.parameter.key()
                ),
            ));
        }
        if !c.threshold.is_finite() {
            return Err(Error::invalid(
                format!("conditions[{i}].threshold"),
                "enter a number",
            ));
        }
        if c.parameter == Parameter::Status
            && (!matches!(c.operator, Operator::Eq | Operator::Ne)
                || !(c.threshold == 0.0 || c.threshold == 1.0))
        {
            return Err(Error::invalid(
                format!("conditions[{i}].threshold"),
                "status is 1 (up) or 0 (down); compare it with == or !=",
            ));
        }
        if c.for_seconds > MAX_FOR_SECONDS {
            return Err(Error::invalid(
                format!("conditions[{i}].for_seconds"),
                "use at most 24 h",
            ));
        }
    }

    if new.channels.len() > MAX_CHANNELS {
        return Err(Error::invalid(
            "channels",
            format!("use at most {MAX_CHANNELS} channels"),
        ));
    }
    let mut channels = new.channels;
    channels.sort();
    channels.dedup();

    if !(1..=MAX_THRESHOLD).contains(&new.failure_threshold) {
        return Err(Error::invalid(
            "failure_threshold",
            format!("use 1 to {MAX_THRESHOLD} results"),
        ));
    }
    if !(1..=MAX_THRESHOLD).contains(&new.success_threshold) {
        return Err(Error::invalid(
            "success_threshold",
            format!("use 1 to {MAX_THRESHOLD} results"),
        ));
    }
    if !(min_interval..=MAX_REPEAT_SECONDS).contains(&new.repeat_interval_seconds) {
        return Err(Error::invalid(
            "repeat_interval_seconds",
            format!("use {min_interval} s to 7 days"),
        ));
    }
    Ok(NewMonitor {
        name,
        probe,
        interval_seconds: new.interval_seconds,
        sources: new.sources,
        conditions: new.conditions,
        channels,
        failure_threshold: new.failure_threshold,
        success_threshold: new.success_threshold,
        repeat_interval_seconds: new.repeat_interval_seconds,
        public: new.public,
        maintenance_opt_in: new.maintenance_opt_in,
        paused: new.paused,
    })
}

/// The workspaces, hosts and channels `checked` names exist in the
/// monitor's scope (another tenant's look like missing ones).
pub(super) async fn references(
    conn: &mut PgConnection,
    org: OrganizationId,
    project: ProjectId,
    scope: Scope,
    checked: &Checked,
) -> Result<()> {
    match &checked.probe {
        ProbeSpec::Kubernetes(p) => {
            let kind: Option<String> = sqlx::query_scalar(
                "SELECT kind::text FROM workspaces WHERE id = $1 AND project_id = $2",
            )
            .bind(p.workspace)
            .bind(project)
            .fetch_optional(&mut *conn)
            .await?;
            let in_scope = scope.workspace().is_none_or(|w| w == p.workspace);
            match kind {
                Some(kind) if in_scope && kind == "kubernetes" => {}
                Some(_) if in_scope => {
                    return Err(Error::invalid(
                        "probe.workspace",
                        "choose a Kubernetes workspace",
                    ));
                }
                _ => {
                    return Err(Error::invalid(
                        "probe.workspace",
                        "choose a workspace of this project",
                    ));
                }
            }
        }
        ProbeSpec::Host(p)
            if !hosts_in_scope(conn, project, scope, &[p.host])
                .await?
                .contains(&p.host) =>
        {
            return Err(Error::invalid("probe.host", "choose a host of this scope"));
        }
        _ => {}
    }
    let agents: Vec<HostId> = checked
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceRef::Agent { host } => Some(*host),
            SourceRef::Builtin => None,
        })
        .collect();
    if !agents.is_empty() {
        let found = hosts_in_scope(conn, project, scope, &agents).await?;
        if agents.iter().any(|h| !found.contains(h)) {
            return Err(Error::invalid(
                "sources",
                "agent sources must be hosts of this scope",
            ));
        }
    }
    if !checked.channels.is_empty() {
        let found: Vec<NotificationChannelId> = sqlx::query_scalar(
            "SELECT id FROM notification_channels WHERE id = ANY($1) AND organization_id = $2",
        )
        .bind(&checked.channels)
        .bind(org)
        .fetch_all(&mut *conn)
        .await?;
        if found.len() != checked.channels.len() {
            return Err(Error::invalid(
                "channels",
                "choose notification channels of this organization",
            ));
        }
    }
    Ok(())
}

async fn hosts_in_scope(
    conn: &mut PgConnection,
    project: ProjectId,
    scope: Scope,
    hosts: &[HostId],
) -> Result<Vec<HostId>> {
    let workspace: Option<WorkspaceId> = scope.workspace();
    Ok(sqlx::query_scalar(
        "SELECT h.id FROM hosts h JOIN workspaces w ON w.id = h.workspace_id
         WHERE h.id = ANY($1) AND w.project_id = $2 AND ($3::uuid IS NULL OR w.id = $3)
           AND h.state <> 'deleting'",
    )
    .bind(hosts)
    .bind(project)
    .bind(workspace)
    .fetch_all(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::views::monitoring::{
        DEFAULT_FAILURE_THRESHOLD, DEFAULT_REPEAT_INTERVAL_SECONDS, DEFAULT_SUCCESS_THRESHOLD,
        HttpMethod, HttpProbe, NewCondition, TcpProbe,
    };

    fn http(url: &str) -> NewMonitor {
        NewMonitor {
            name: " api ".into(),
            probe: ProbeSpec::Http(HttpProbe {
                method: HttpMethod::Get,
                url: url.into(),
                expected_status: None,
                body_contains: None,
                json: None,
                headers: vec![],
                body: None,
                timeout_ms: 5000,
                follow_redirects: true,
            }),
            interval_seconds: 60,
            sources: vec![SourceRef::Builtin],
            conditions: vec![NewCondition::down()],
            channels: vec![],
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            repeat_interval_seconds: DEFAULT_REPEAT_INTERVAL_SECONDS,
            public: false,
            maintenance_opt_in: false,
            paused: false,
        }
    }

    fn field(r: Result<Checked>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn a_good_monitor_is_trimmed() {
        let checked = shape(http("https://example.com/health"), Settings::default()).unwrap();
        assert_eq!(checked.name, "api");
    }

    #[test]
    fn errors_name_the_field() {
        let s = Settings::default();
        assert_eq!(field(shape(http("example.com"), s)), "probe.url");
        assert_eq!(field(shape(http("ftp://example.com"), s)), "probe.url");
        let mut m = http("https://example.com");
        m.interval_seconds = 5;
        assert_eq!(field(shape(m, s)), "interval_seconds");
        let mut m = http("https://example.com");
        m.sources.clear();
        assert_eq!(field(shape(m, s)), "sources");
        let mut m = http("https://example.com");
        m.conditions[0].parameter = Parameter::CpuPercent;
        assert_eq!(field(shape(m, s)), "conditions[0].parameter");
        let mut m = http("https://example.com");
        m.conditions[0].threshold = 3.0;
        assert_eq!(field(shape(m, s)), "conditions[0].threshold");
        let mut m = http("https://example.com");
        m.failure_threshold = 0;
        assert_eq!(field(shape(m, s)), "failure_threshold");
        let mut m = http("https://example.com");
        if let ProbeSpec::Http(p) = &mut m.probe {
            p.timeout_ms = 61_000;
        }
        assert_eq!(field(shape(m, s)), "probe.timeout_ms");
        let mut m = http("https://example.com");
        m.probe = ProbeSpec::Tcp(TcpProbe {
            host: "db.internal".into(),
            port: 0,
            timeout_ms: 1000,
        });
        assert_eq!(field(shape(m, s)), "probe.port");
    }
}
