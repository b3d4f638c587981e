//! Monitoring: objects that are probed on an interval from one or more
//! sources, the results, conditions that turn results into alerts, and the
//! notifications those alerts send.
//!
//! - [`engine`] claims due monitors from the database (once across
//!   replicas), runs their probes ([`probe`], or a host's agent) and writes
//!   the results in batches ([`results`]).
//! - [`alerts`] evaluates every written batch against the monitors'
//!   conditions: pending → firing → resolved, acknowledgements, silences,
//!   maintenance windows, repeats.
//! - [`notify`] holds the organization's notification channels and
//!   delivers notifications with retries.

pub mod alerts;
pub mod engine;
pub mod notify;
pub mod probe;
pub mod results;
mod validate;

use std::collections::HashMap;
use std::time::Duration;

use protocol::ids::{
    ConditionId, HostId, MonitorId, NotificationChannelId, OrganizationId, ProjectId, WorkspaceId,
};
use protocol::views::monitoring::{
    ConditionView, MonitorSeries, MonitorState, MonitorSummary, MonitorView, NewCondition,
    NewMonitor, Operator, Parameter, ProbeOutcome, ProbeSpec, PublicMonitor, ResultView, Severity,
    SourceRef, SourceView, StatusPage, TimeRange,
};
use protocol::views::{Page, PageRequest};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Grant, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// Results per sparkline.
const SPARKLINE: i64 = 30;

/// Where a monitoring object lives: a project or one of its workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Project(ProjectId),
    Workspace(WorkspaceId),
}

impl Scope {
    pub fn resource(self) -> Resource {
        match self {
            Self::Project(p) => Resource::Project(p),
            Self::Workspace(w) => Resource::Workspace(w),
        }
    }

    fn workspace(self) -> Option<WorkspaceId> {
        match self {
            Self::Workspace(w) => Some(w),
            Self::Project(_) => None,
        }
    }
}

/// Process-wide monitoring settings, set once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The shortest interval a monitor may have (10 s; tests lower it).
    pub min_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(u64::from(
                protocol::views::monitoring::MIN_INTERVAL_SECONDS,
            )),
        }
    }
}

/// One probe result from one source, as the engine hands it to
/// [`results`] and [`alerts`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub monitor: MonitorId,
    /// The agent's host; `None` for the portal's prober.
    pub source: Option<HostId>,
    /// When the probe started.
    pub at: OffsetDateTime,
    pub outcome: ProbeOutcome,
}

const VIEW: &str = "SELECT m.id, m.organization_id, m.project_id, m.workspace_id, m.name, m.probe,
        m.interval_seconds, m.sources, m.channels, m.failure_threshold, m.success_threshold,
        m.repeat_interval_seconds, m.public, m.maintenance_opt_in, m.paused, m.state,
        m.state_since, m.last_checked_at, m.last_latency_ms, m.last_error, m.created_at,
        m.updated_at,
        (SELECT count(*) FROM alerts a WHERE a.monitor_id = m.id AND a.state <> 'resolved')
            AS open_alerts
    FROM monitors m";

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: MonitorId,
    organization_id: OrganizationId,
    project_id: ProjectId,
    workspace_id: Option<WorkspaceId>,
    name: String,
    probe: Json<ProbeSpec>,
    interval_seconds: i32,
    sources: Json<Vec<SourceRef>>,
    channels: Vec<NotificationChannelId>,
    failure_threshold: i32,
    success_threshold: i32,
    repeat_interval_seconds: i32,
    public: bool,
    maintenance_opt_in: bool,
    paused: bool,
    state: MonitorState,
    state_since: Option<OffsetDateTime>,
    last_checked_at: Option<OffsetDateTime>,
    last_latency_ms: Option<f64>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    open_alerts: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ConditionRow {
    id: ConditionId,
    monitor_id: MonitorId,
    parameter: String,
    operator: String,
    threshold: f64,
    for_seconds: i32,
    severity: String,
    position: i32,
}

impl ConditionRow {
    fn view(self) -> Option<ConditionView> {
        let condition = NewCondition {
            parameter: Parameter::from_key(&self.parameter)?,
            operator: Operator::from_key(&self.operator)?,
            threshold: self.threshold,
            for_seconds: u32::try_from(self.for_seconds).unwrap_or_default(),
            severity: Severity::from_key(&self.severity).unwrap_or_default(),
        };
        Some(ConditionView {
            id: self.id,
            summary: condition.summary(),
            condition,
        })
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or_default()
}

/// Views of `rows` with their conditions, source labels and uptime, in
/// three queries however many rows there are.
async fn views(db: &PgPool, rows: Vec<Row>) -> Result<Vec<MonitorView>> {
    let ids: Vec<MonitorId> = rows.iter().map(|r| r.id).collect();
    let conditions: Vec<ConditionRow> = sqlx::query_as(
        "SELECT id, monitor_id, parameter, operator, threshold, for_seconds, severity, position
         FROM monitor_conditions WHERE monitor_id = ANY($1) ORDER BY monitor_id, position",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    let mut by_monitor: HashMap<MonitorId, Vec<ConditionView>> = HashMap::new();
    for row in conditions {
        let monitor = row.monitor_id;
        if let Some(view) = row.view() {
            by_monitor.entry(monitor).or_default().push(view);
        }
    }
    let hosts: Vec<HostId> = rows
        .iter()
        .flat_map(|r| r.sources.0.iter())
        .filter_map(|s| match s {
            SourceRef::Agent { host } => Some(*host),
            SourceRef::Builtin => None,
        })
        .collect();
    let names: HashMap<HostId, String> = if hosts.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (HostId, String)>("SELECT id, hostname FROM hosts WHERE id = ANY($1)")
            .bind(&hosts)
            .fetch_all(db)
            .await?
            .into_iter()
            .collect()
    };
    let mut uptime = results::uptime(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let sources = row
                .sources
                .0
                .iter()
                .map(|source| SourceView {
                    source: *source,
                    label: source_label(*source, &names),
                })
                .collect();
            MonitorView {
                id: row.id,
                organization: row.organization_id,
                project: row.project_id,
                workspace: row.workspace_id,
                kind: row.probe.0.kind(),
                target: row.probe.0.target(),
                name: row.name,
                probe: row.probe.0,
                interval_seconds: count(row.interval_seconds),
                sources,
                conditions: by_monitor.remove(&row.id).unwrap_or_default(),
                channels: row.channels,
                failure_threshold: count(row.failure_threshold),
                success_threshold: count(row.success_threshold),
                repeat_interval_seconds: count(row.repeat_interval_seconds),
                public: row.public,
                maintenance_opt_in: row.maintenance_opt_in,
                paused: row.paused,
                state: row.state,
                state_since: row.state_since,
                last_checked_at: row.last_checked_at,
                last_latency_ms: row.last_latency_ms,
                last_error: row.last_error,
                uptime: uptime.remove(&row.id).unwrap_or_default(),
                open_alerts: u32::try_from(row.open_alerts).unwrap_or(u32::MAX),
                created_at: row.created_at,
                updated_at: row.updated_at,
            }
        })
        .collect())
}

fn source_label(source: SourceRef, hosts: &HashMap<HostId, String>) -> String {
    match source {
        SourceRef::Builtin => "Portal".into(),
        SourceRef::Agent { host } => hosts
            .get(&host)
            .cloned()
            .unwrap_or_else(|| "(deleted host)".into()),
    }
}

async fn view(db: &PgPool, id: MonitorId) -> Result<MonitorView> {
    let row: Row = sqlx::query_as(&format!("{VIEW} WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound)?;
    views(db, vec![row]).await?.pop().ok_or(Error::NotFound)
}

/// Authorizes `permission` on the monitor's scope; `NotFound` for monitors
/// the caller may not know about.
pub(crate) async fn authorize_monitor(
    db: &PgPool,
    actor: &Actor,
    permission: Permission,
    id: MonitorId,
) -> Result<(Grant, Scope)> {
    let scope: Option<(ProjectId, Option<WorkspaceId>)> =
        sqlx::query_as("SELECT project_id, workspace_id FROM monitors WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    let scope = match scope.ok_or(Error::NotFound)? {
        (_, Some(workspace)) => Scope::Workspace(workspace),
        (project, None) => Scope::Project(project),
    };
    let grant = authorize(db, actor, permission, scope.resource()).await?;
    Ok((grant, scope))
}

/// Monitors of a project (its own and its workspaces') or of one
/// workspace, with sparklines.
pub async fn list(platform: &Platform, actor: &Actor, scope: Scope) -> Result<Vec<MonitorSummary>> {
    let db = platform.db();
    authorize(db, actor, Permission::MonitoringRead, scope.resource()).await?;
    let rows: Vec<Row> = match scope {
        Scope::Project(project) => {
            sqlx::query_as(&format!(
                "{VIEW} WHERE m.project_id = $1 ORDER BY m.workspace_id NULLS FIRST, m.name"
            ))
            .bind(project)
            .fetch_all(db)
            .await?
        }
        Scope::Workspace(workspace) => {
            sqlx::query_as(&format!("{VIEW} WHERE m.workspace_id = $1 ORDER BY m.name"))
                .bind(workspace)
                .fetch_all(db)
                .await?
        }
    };
    let ids: Vec<MonitorId> = rows.iter().map(|r| r.id).collect();
    let mut recent = results::recent(db, &ids, SPARKLINE).await?;
    Ok(views(db, rows)
        .await?
        .into_iter()
        .map(|monitor| MonitorSummary {
            recent: recent.remove(&monitor.id).unwrap_or_default(),
            monitor,
        })
        .collect())
}

pub async fn get(platform: &Platform, actor: &Actor, id: MonitorId) -> Result<MonitorView> {
    authorize_monitor(platform.db(), actor, Permission::MonitoringRead, id).await?;
    view(platform.db(), id).await
}

/// Checks everything, writes the monitor, its conditions and the audit
/// entry in one transaction; the first probe runs within a second.
pub async fn create(
    platform: &Platform,
    actor: &Actor,
    scope: Scope,
    new: NewMonitor,
) -> Result<MonitorView> {
    let db = platform.db();
    let grant = authorize(db, actor, Permission::MonitoringManage, scope.resource()).await?;
    let org = grant
        .organization_id
        .ok_or_else(|| Error::internal("a project grant has an organization"))?;
    let project = grant
        .project_id
        .ok_or_else(|| Error::internal("a project grant has a project"))?;
    let checked = validate::shape(new, platform.monitoring_settings())?;
    let mut tx = db.begin().await?;
    validate::references(&mut tx, org, project, scope, &checked).await?;
    let id = MonitorId::new();
    sqlx::query(
        "INSERT INTO monitors (id, organization_id, project_id, workspace_id, name, kind, probe,
            interval_seconds, sources, channels, failure_threshold, success_threshold,
            repeat_interval_seconds, public, maintenance_opt_in, paused, next_run_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now(), $17)",
    )
    .bind(id)
    .bind(org)
    .bind(project)
    .bind(scope.workspace())
    .bind(&checked.name)
    .bind(checked.probe.kind().key())
    .bind(Json(&checked.probe))
    .bind(as_i32(checked.interval_seconds))
    .bind(Json(&checked.sources))
    .bind(&checked.channels)
    .bind(as_i32(checked.failure_threshold))
    .bind(as_i32(checked.success_threshold))
    .bind(as_i32(checked.repeat_interval_seconds))
    .bind(checked.public)
    .bind(checked.maintenance_opt_in)
    .bind(checked.paused)
    .bind(actor.account_id)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken("name", "a monitor with this name already exists in the project"))?;
    insert_conditions(&mut tx, id, &checked.conditions).await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("monitor.create", "monitor", id)
            .in_org(org)
            .details(audit_details(&checked, project, scope.workspace())),
    )
    .await?;
    tx.commit().await?;
    view(db, id).await
}

/// Replaces the monitor's settings and conditions. Open alerts are closed
/// (without notifying) when the conditions change or the monitor is paused.
pub async fn update(
    platform: &Platform,
    actor: &Actor,
    id: MonitorId,
    new: NewMonitor,
) -> Result<MonitorView> {
    let db = platform.db();
    let (grant, scope) = authorize_monitor(db, actor, Permission::MonitoringManage, id).await?;
    let org = grant
        .organization_id
        .ok_or_else(|| Error::internal("a project grant has an organization"))?;
    let project = grant
        .project_id
        .ok_or_else(|| Error::internal("a project grant has a project"))?;
    let checked = validate::shape(new, platform.monitoring_settings())?;
    let mut tx = db.begin().await?;
    validate::references(&mut tx, org, project, scope, &checked).await?;
    let before = current_conditions(&mut tx, id).await?;
    let was_paused: bool =
        sqlx::query_scalar("SELECT paused FROM monitors WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    // A changed probe or interval starts over at once; otherwise the
    // schedule keeps its place.
    sqlx::query(
        "UPDATE monitors SET name = $2, kind = $3, probe = $4, interval_seconds = $5,
            sources = $6, channels = $7, failure_threshold = $8, success_threshold = $9,
            repeat_interval_seconds = $10, public = $11, maintenance_opt_in = $12, paused = $13,
            next_run_at = CASE WHEN probe <> $4 OR interval_seconds <> $5 OR sources <> $6
                               OR (paused AND NOT $13)
                          THEN now() ELSE next_run_at END,
            state = CASE WHEN probe <> $4 THEN 'unknown'::monitor_state ELSE state END,
            state_since = CASE WHEN probe <> $4 THEN NULL ELSE state_since END,
            updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&checked.name)
    .bind(checked.probe.kind().key())
    .bind(Json(&checked.probe))
    .bind(as_i32(checked.interval_seconds))
    .bind(Json(&checked.sources))
    .bind(&checked.channels)
    .bind(as_i32(checked.failure_threshold))
    .bind(as_i32(checked.success_threshold))
    .bind(as_i32(checked.repeat_interval_seconds))
    .bind(checked.public)
    .bind(checked.maintenance_opt_in)
    .bind(checked.paused)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a monitor with this name already exists in the project",
    ))?;
    if before != checked.conditions {
        alerts::close_for_monitor(&mut tx, id, "the monitor's conditions changed").await?;
        sqlx::query("DELETE FROM monitor_conditions WHERE monitor_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_conditions(&mut tx, id, &checked.conditions).await?;
    } else if checked.paused && !was_paused {
        alerts::close_for_monitor(&mut tx, id, "the monitor was paused").await?;
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("monitor.update", "monitor", id)
            .in_org(org)
            .details(audit_details(&checked, project, scope.workspace())),
    )
    .await?;
    tx.commit().await?;
    view(db, id).await
}

pub async fn delete(platform: &Platform, actor: &Actor, id: MonitorId) -> Result<()> {
    let db = platform.db();
    let (grant, _) = authorize_monitor(db, actor, Permission::MonitoringManage, id).await?;
    let mut tx = db.begin().await?;
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM monitors WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or(Error::NotFound)?;
    let mut entry =
        Entry::new("monitor.delete", "monitor", id).details(serde_json::json!({ "name": name }));
    if let Some(org) = grant.organization_id {
        entry = entry.in_org(org);
    }
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Latency and failures in equal buckets over `range`, and the state
/// timeline, for the object page's charts.
pub async fn series(
    platform: &Platform,
    actor: &Actor,
    id: MonitorId,
    range: TimeRange,
) -> Result<MonitorSeries> {
    authorize_monitor(platform.db(), actor, Permission::MonitoringRead, id).await?;
    results::series(platform.db(), id, range, OffsetDateTime::now_utc()).await
}

/// Stored results, newest first.
pub async fn results(
    platform: &Platform,
    actor: &Actor,
    id: MonitorId,
    page: PageRequest,
) -> Result<Page<ResultView>> {
    authorize_monitor(platform.db(), actor, Permission::MonitoringRead, id).await?;
    results::page(platform.db(), id, page).await
}

/// The project's public status page: only monitors marked public; `NotFound`
/// when there are none. Needs no sign-in.
pub async fn status_page(platform: &Platform, project: ProjectId) -> Result<StatusPage> {
    let db = platform.db();
    let rows: Vec<(MonitorId, String, MonitorState, String)> = sqlx::query_as(
        "SELECT m.id, m.name, m.state, p.name FROM monitors m JOIN projects p ON p.id = m.project_id
         WHERE m.project_id = $1 AND m.public ORDER BY m.name",
    )
    .bind(project)
    .fetch_all(db)
    .await?;
    let Some(project_name) = rows.first().map(|r| r.3.clone()) else {
        return Err(Error::NotFound);
    };
    let ids: Vec<MonitorId> = rows.iter().map(|r| r.0).collect();
    let mut uptime = results::uptime(db, &ids).await?;
    let mut recent = results::recent(db, &ids, SPARKLINE * 3).await?;
    Ok(StatusPage {
        project_name,
        monitors: rows
            .into_iter()
            .map(|(id, name, state, _)| PublicMonitor {
                name,
                state,
                uptime: uptime.remove(&id).unwrap_or_default(),
                recent: recent.remove(&id).unwrap_or_default(),
            })
            .collect(),
    })
}

fn as_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn insert_conditions(
    conn: &mut PgConnection,
    monitor: MonitorId,
    conditions: &[NewCondition],
) -> Result<()> {
    for (position, c) in conditions.iter().enumerate() {
        sqlx::query(
            "INSERT INTO monitor_conditions (id, monitor_id, position, parameter, operator,
                threshold, for_seconds, severity)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ConditionId::new())
        .bind(monitor)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(c.parameter.key())
        .bind(c.operator.key())
        .bind(c.threshold)
        .bind(as_i32(c.for_seconds))
        .bind(c.severity.key())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn current_conditions(
    conn: &mut PgConnection,
    monitor: MonitorId,
) -> Result<Vec<NewCondition>> {
    // Locked in id order, as evaluation locks them, so the two cannot
    // deadlock; compared in position order.
    let mut rows: Vec<(i32, ConditionRow)> = sqlx::query_as::<_, ConditionRow>(
        "SELECT id, monitor_id, parameter, operator, threshold, for_seconds, severity, position
         FROM monitor_conditions WHERE monitor_id = $1 ORDER BY id FOR UPDATE",
    )
    .bind(monitor)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| (row.position, row))
    .collect();
    rows.sort_by_key(|(position, _)| *position);
    Ok(rows
        .into_iter()
        .filter_map(|(_, row)| row.view())
        .map(|v| v.condition)
        .collect())
}

/// What the audit log keeps of a monitor: everything but header values and
/// request bodies, which may carry credentials.
fn audit_details(
    checked: &validate::Checked,
    project: ProjectId,
    workspace: Option<WorkspaceId>,
) -> serde_json::Value {
    serde_json::json!({
        "name": checked.name,
        "project": project,
        "workspace": workspace,
        "kind": checked.probe.kind().key(),
        "target": checked.probe.target(),
        "interval_seconds": checked.interval_seconds,
        "sources": checked.sources,
        "conditions": checked.conditions.iter().map(NewCondition::summary).collect::<Vec<_>>(),
        "channels": checked.channels,
        "paused": checked.paused,
        "public": checked.public,
    })
}
