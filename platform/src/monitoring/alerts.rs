//! Conditions → alerts: evaluation of written results, the alert lifecycle
//! (pending → firing → resolved), acknowledgements, silences, maintenance
//! windows and repeat notifications.
//!
//! - [`evaluate`] runs after every written batch (the engine's writer).
//! - [`reconciler`] handles what changes with time: repeats, and silences
//!   or maintenance windows that start or end while alerts fire.
//! - Lock order everywhere: a monitor's condition rows, then its alerts.

mod evaluate;
mod notice;
mod reconcile;
mod silences;

use protocol::ids::{
    AccountId, AlertId, ConditionId, MonitorId, OrganizationId, ProjectId, WorkspaceId,
};
use protocol::views::monitoring::{
    Acknowledgement, AlertDetail, AlertEvent, AlertFilter, AlertState, AlertView, Severity,
};
use protocol::views::{Page, PageRequest};
use sqlx::PgConnection;
use time::OffsetDateTime;

pub use evaluate::evaluate;
pub use reconcile::{reconcile, reconciler};
pub use silences::{create_silence, expire_silence, in_maintenance_window, list_silences};

use super::Scope;
use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

const VIEW: &str = "SELECT a.id, a.organization_id, a.project_id, a.workspace_id, a.monitor_id,
        m.name AS monitor_name, a.condition_id, a.summary, a.severity, a.state, a.value,
        a.started_at, a.fired_at, a.resolved_at, a.acknowledged_by,
        ack.email AS acknowledged_by_email, a.acknowledged_at, a.ack_comment, a.suppressed,
        a.last_notified_at, a.notifications
    FROM alerts a
    JOIN monitors m ON m.id = a.monitor_id
    LEFT JOIN accounts ack ON ack.id = a.acknowledged_by";

/// Filters shared by the count and the page: `$1` the scope's id, then
/// state, severity, monitor, acknowledged.
const FILTER: &str = "($2::alert_state IS NULL OR a.state = $2)
      AND ($3::text IS NULL OR a.severity = $3)
      AND ($4::uuid IS NULL OR a.monitor_id = $4)
      AND ($5::bool IS NULL OR (a.acknowledged_at IS NOT NULL) = $5)";

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: AlertId,
    organization_id: OrganizationId,
    project_id: ProjectId,
    workspace_id: Option<WorkspaceId>,
    monitor_id: MonitorId,
    monitor_name: String,
    condition_id: Option<ConditionId>,
    summary: String,
    severity: String,
    state: AlertState,
    value: Option<f64>,
    started_at: OffsetDateTime,
    fired_at: Option<OffsetDateTime>,
    resolved_at: Option<OffsetDateTime>,
    acknowledged_by: Option<AccountId>,
    acknowledged_by_email: Option<String>,
    acknowledged_at: Option<OffsetDateTime>,
    ack_comment: Option<String>,
    suppressed: Option<String>,
    last_notified_at: Option<OffsetDateTime>,
    notifications: i32,
}

impl From<AlertRow> for AlertView {
    fn from(r: AlertRow) -> Self {
        let acknowledgement = r.acknowledged_at.map(|at| Acknowledgement {
            by: r.acknowledged_by,
            by_email: r.acknowledged_by_email,
            at,
            comment: r.ack_comment.unwrap_or_default(),
        });
        Self {
            id: r.id,
            organization: r.organization_id,
            project: r.project_id,
            workspace: r.workspace_id,
            monitor: r.monitor_id,
            monitor_name: r.monitor_name,
            condition: r.condition_id,
            summary: r.summary,
            severity: Severity::from_key(&r.severity).unwrap_or_default(),
            state: r.state,
            value: r.value,
            started_at: r.started_at,
            fired_at: r.fired_at,
            resolved_at: r.resolved_at,
            acknowledgement,
            suppressed: r.suppressed,
            last_notified_at: r.last_notified_at,
            notifications: u32::try_from(r.notifications).unwrap_or(0),
        }
    }
}

/// Alerts of a project (its own monitors' and its workspaces') or of one
/// workspace, newest first.
pub async fn list(
    platform: &Platform,
    actor: &Actor,
    scope: Scope,
    filter: AlertFilter,
    page: PageRequest,
) -> Result<Page<AlertView>> {
    authorize(
        platform.db(),
        actor,
        Permission::MonitoringRead,
        scope.resource(),
    )
    .await?;
    let (column, id) = match scope {
        Scope::Project(p) => ("a.project_id", p.0),
        Scope::Workspace(w) => ("a.workspace_id", w.0),
    };
    let severity = filter.severity.map(Severity::key);
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM alerts a WHERE {column} = $1 AND {FILTER}"
    ))
    .bind(id)
    .bind(filter.state)
    .bind(severity)
    .bind(filter.monitor)
    .bind(filter.acknowledged)
    .fetch_one(platform.db())
    .await?;
    let rows: Vec<AlertRow> = sqlx::query_as(&format!(
        "{VIEW} WHERE {column} = $1 AND {FILTER}
         ORDER BY a.started_at DESC, a.id DESC LIMIT $6 OFFSET $7"
    ))
    .bind(id)
    .bind(filter.state)
    .bind(severity)
    .bind(filter.monitor)
    .bind(filter.acknowledged)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(platform.db())
    .await?;
    Ok(page.page_of(rows.into_iter().map(AlertView::from).collect(), total))
}

/// The resource an alert is authorized against: its monitor's workspace
/// when it has one, else its project.
async fn alert_resource(platform: &Platform, id: AlertId) -> Result<Resource> {
    let row: Option<(ProjectId, Option<WorkspaceId>)> =
        sqlx::query_as("SELECT project_id, workspace_id FROM alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(platform.db())
            .await?;
    match row {
        Some((_, Some(workspace))) => Ok(Resource::Workspace(workspace)),
        Some((project, None)) => Ok(Resource::Project(project)),
        None => Err(Error::NotFound),
    }
}

async fn view(conn: &mut PgConnection, id: AlertId) -> Result<AlertView> {
    let row: Option<AlertRow> = sqlx::query_as(&format!("{VIEW} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(AlertView::from).ok_or(Error::NotFound)
}

/// One alert with its history, oldest entry first.
pub async fn get(platform: &Platform, actor: &Actor, id: AlertId) -> Result<AlertDetail> {
    let resource = alert_resource(platform, id).await?;
    authorize(platform.db(), actor, Permission::MonitoringRead, resource).await?;
    let mut conn = platform.db().acquire().await?;
    let alert = view(&mut conn, id).await?;
    let events: Vec<(OffsetDateTime, String, String)> = sqlx::query_as(
        "SELECT at, kind, detail FROM alert_events WHERE alert_id = $1 ORDER BY at, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(AlertDetail {
        alert,
        events: events
            .into_iter()
            .map(|(at, kind, detail)| AlertEvent { at, kind, detail })
            .collect(),
    })
}

/// Acknowledges a pending or firing alert: no more repeats; the comment is
/// kept.
pub async fn acknowledge(
    platform: &Platform,
    actor: &Actor,
    id: AlertId,
    comment: &str,
) -> Result<AlertView> {
    let resource = alert_resource(platform, id).await?;
    let grant = authorize(platform.db(), actor, Permission::MonitoringManage, resource).await?;
    let comment = comment.trim();
    if comment.is_empty() {
        return Err(Error::invalid("comment", "say what is being done about it"));
    }
    if comment.chars().count() > silences::MAX_COMMENT_CHARS {
        return Err(Error::invalid(
            "comment",
            format!("use at most {} characters", silences::MAX_COMMENT_CHARS),
        ));
    }
    let mut tx = platform.db().begin().await?;
    let state: Option<(AlertState, bool)> = sqlx::query_as(
        "SELECT state, acknowledged_at IS NOT NULL FROM alerts WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    match state {
        None => return Err(Error::NotFound),
        Some((AlertState::Resolved, _)) => {
            return Err(Error::Conflict(
                "the alert is resolved; only pending or firing alerts can be acknowledged".into(),
            ));
        }
        Some((_, true)) => {
            return Err(Error::Conflict("the alert is already acknowledged".into()));
        }
        Some(_) => {}
    }
    let now = OffsetDateTime::now_utc();
    sqlx::query(
        "UPDATE alerts SET acknowledged_by = $2, acknowledged_at = $3, ack_comment = $4
         WHERE id = $1",
    )
    .bind(id)
    .bind(actor.account_id)
    .bind(now)
    .bind(comment)
    .execute(&mut *tx)
    .await?;
    notice::record(
        &mut tx,
        id,
        now,
        "acknowledged",
        &format!("{}: {comment}", actor.email),
    )
    .await?;
    let mut entry = Entry::new("alert.acknowledge", "alert", id)
        .details(serde_json::json!({ "comment": comment }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    let alert = view(&mut tx, id).await?;
    tx.commit().await?;
    Ok(alert)
}

/// Resolves the monitor's open alerts without notifying anyone (history
/// `resolved` with `reason`) and starts its conditions' counting afresh;
/// for a monitor that is paused, changed or deleted, in the caller's
/// transaction.
pub(crate) async fn close_for_monitor(
    conn: &mut PgConnection,
    monitor: MonitorId,
    reason: &str,
) -> Result<()> {
    // Conditions before alerts, as evaluation locks them.
    sqlx::query(
        "UPDATE monitor_conditions SET consecutive_breaches = 0, consecutive_passes = 0,
             breach_since = NULL
         WHERE id IN (SELECT id FROM monitor_conditions WHERE monitor_id = $1
                      ORDER BY id FOR UPDATE)",
    )
    .bind(monitor)
    .execute(&mut *conn)
    .await?;
    let now = OffsetDateTime::now_utc();
    let closed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE alerts SET state = 'resolved', resolved_at = $2
         WHERE monitor_id = $1 AND state <> 'resolved' RETURNING id",
    )
    .bind(monitor)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    notice::record_many(conn, &closed, now, "resolved", reason).await
}
