//! Silences (project-wide or one monitor, until they end) and the
//! workspace maintenance window: both hold notifications back while alerts
//! still fire.

use std::collections::HashMap;

use protocol::ids::{MonitorId, ProjectId, SilenceId, WorkspaceId};
use protocol::views::monitoring::{NewSilence, SilenceView};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// The shortest and longest silence.
const MIN_SILENCE_SECONDS: u32 = 60;
const MAX_SILENCE_SECONDS: u32 = 30 * 24 * 3600;
pub(super) const MAX_COMMENT_CHARS: usize = 500;

/// SQL that holds, for the monitor `m` joined with its workspace `w`, while
/// notifications are held back at `$1` (a timestamptz). The lists of
/// candidates use it; the reason text comes from [`suppression`], which
/// asks the same question.
pub(super) const SUPPRESSED_AT_1: &str = "(EXISTS (SELECT 1 FROM monitor_silences s
        WHERE s.project_id = m.project_id AND (s.monitor_id IS NULL OR s.monitor_id = m.id)
          AND s.starts_at <= $1::timestamptz AND s.ends_at > $1::timestamptz)
    OR (m.maintenance_opt_in AND w.id IS NOT NULL
        AND w.maintenance_weekday = extract(dow FROM $1::timestamptz AT TIME ZONE 'UTC')
        AND w.maintenance_hour = extract(hour FROM $1::timestamptz AT TIME ZONE 'UTC')))";

/// Why notifications of each of `monitors` are held back at `at`;
/// monitors that notify normally are absent.
pub(super) async fn suppression(
    conn: &mut PgConnection,
    monitors: &[MonitorId],
    at: OffsetDateTime,
) -> Result<HashMap<MonitorId, String>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: MonitorId,
        silence_ends_at: Option<OffsetDateTime>,
        silence_comment: Option<String>,
        opt_in: bool,
        weekday: Option<i16>,
        hour: Option<i16>,
    }
    let ids: Vec<uuid::Uuid> = monitors.iter().map(|m| m.0).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT m.id, s.ends_at AS silence_ends_at, s.comment AS silence_comment,
                m.maintenance_opt_in AS opt_in,
                w.maintenance_weekday AS weekday, w.maintenance_hour AS hour
         FROM monitors m
         LEFT JOIN workspaces w ON w.id = m.workspace_id
         LEFT JOIN LATERAL (
             SELECT ends_at, comment FROM monitor_silences s
             WHERE s.project_id = m.project_id AND (s.monitor_id IS NULL OR s.monitor_id = m.id)
               AND s.starts_at <= $2 AND s.ends_at > $2
             ORDER BY s.ends_at DESC LIMIT 1) s ON true
         WHERE m.id = ANY($1)",
    )
    .bind(&ids)
    .bind(at)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let reason = match (row.silence_ends_at, row.silence_comment) {
                (Some(ends_at), comment) => Some(silenced_until(ends_at, comment.as_deref())),
                _ => match (row.opt_in, row.weekday, row.hour) {
                    (true, Some(weekday), Some(hour))
                        if in_maintenance_window(weekday, hour, at) =>
                    {
                        Some("maintenance window".to_string())
                    }
                    _ => None,
                },
            };
            reason.map(|r| (row.id, r))
        })
        .collect())
}

/// "silenced until 2026-11-23T22:00:00Z: deploying".
fn silenced_until(ends_at: OffsetDateTime, comment: Option<&str>) -> String {
    let until = ends_at
        .replace_nanosecond(0)
        .unwrap_or(ends_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ends_at.to_string());
    match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) => format!("silenced until {until}: {comment}"),
        None => format!("silenced until {until}"),
    }
}

/// A workspace's maintenance window: one hour a week, `weekday` counted
/// from Sunday = 0 (as the workspace page offers it and as PostgreSQL's
/// `dow`), `hour` in UTC.
pub fn in_maintenance_window(weekday: i16, hour: i16, at: OffsetDateTime) -> bool {
    let at = at.to_offset(time::UtcOffset::UTC);
    i16::from(at.weekday().number_days_from_sunday()) == weekday && i16::from(at.hour()) == hour
}

/// Where a monitor lives, for authorization: its workspace when it has one.
async fn monitor_scope(
    platform: &Platform,
    monitor: MonitorId,
) -> Result<Option<(ProjectId, Option<WorkspaceId>, String)>> {
    Ok(
        sqlx::query_as("SELECT project_id, workspace_id, name FROM monitors WHERE id = $1")
            .bind(monitor)
            .fetch_optional(platform.db())
            .await?,
    )
}

pub async fn create_silence(
    platform: &Platform,
    actor: &Actor,
    project: ProjectId,
    new: NewSilence,
) -> Result<SilenceView> {
    // A silence of one workspace's monitor is that workspace's business; a
    // project-wide one needs the project.
    let (resource, monitor_name) = match new.monitor {
        None => (Resource::Project(project), None),
        Some(monitor) => match monitor_scope(platform, monitor).await? {
            Some((p, workspace, name)) if p == project => (
                workspace.map_or(Resource::Project(project), Resource::Workspace),
                Some(name),
            ),
            _ => {
                // A foreign project answers "not found" before the monitor
                // is judged, so nothing is learnt about either.
                authorize(
                    platform.db(),
                    actor,
                    Permission::MonitoringManage,
                    Resource::Project(project),
                )
                .await?;
                return Err(Error::invalid(
                    "monitor",
                    "choose a monitor of this project",
                ));
            }
        },
    };
    let grant = authorize(platform.db(), actor, Permission::MonitoringManage, resource).await?;
    if !(MIN_SILENCE_SECONDS..=MAX_SILENCE_SECONDS).contains(&new.duration_seconds) {
        return Err(Error::invalid(
            "duration_seconds",
            "silence for at least a minute and at most 30 days",
        ));
    }
    let comment = new.comment.trim();
    if comment.is_empty() {
        return Err(Error::invalid(
            "comment",
            "say why (for the people who see the alert)",
        ));
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(Error::invalid(
            "comment",
            format!("use at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let id = SilenceId::new();
    let now = OffsetDateTime::now_utc();
    let ends_at = now + time::Duration::seconds(i64::from(new.duration_seconds));
    let mut tx = platform.db().begin().await?;
    sqlx::query(
        "INSERT INTO monitor_silences (id, organization_id, project_id, monitor_id, comment,
                                       starts_at, ends_at, created_by)
         SELECT $1, p.organization_id, p.id, $3, $4, $5, $6, $7 FROM projects p WHERE p.id = $2",
    )
    .bind(id)
    .bind(project)
    .bind(new.monitor)
    .bind(comment)
    .bind(now)
    .bind(ends_at)
    .bind(actor.account_id)
    .execute(&mut *tx)
    .await?;
    let mut entry =
        Entry::new("silence.create", "monitor_silence", id).details(serde_json::json!({
            "project": project,
            "monitor": new.monitor,
            "duration_seconds": new.duration_seconds,
            "comment": comment,
        }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(SilenceView {
        id,
        project,
        monitor: new.monitor,
        monitor_name,
        comment: comment.to_string(),
        starts_at: now,
        ends_at,
        created_by_email: Some(actor.email.clone()),
        active: true,
    })
}

#[derive(sqlx::FromRow)]
struct SilenceRow {
    id: SilenceId,
    project_id: ProjectId,
    monitor_id: Option<MonitorId>,
    monitor_name: Option<String>,
    comment: String,
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    created_by_email: Option<String>,
    active: bool,
}

impl From<SilenceRow> for SilenceView {
    fn from(r: SilenceRow) -> Self {
        Self {
            id: r.id,
            project: r.project_id,
            monitor: r.monitor_id,
            monitor_name: r.monitor_name,
            comment: r.comment,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            created_by_email: r.created_by_email,
            active: r.active,
        }
    }
}

/// Silences of the project, active first, then those that ended in the
/// last 7 days.
pub async fn list_silences(
    platform: &Platform,
    actor: &Actor,
    project: ProjectId,
) -> Result<Vec<SilenceView>> {
    authorize(
        platform.db(),
        actor,
        Permission::MonitoringRead,
        Resource::Project(project),
    )
    .await?;
    let rows: Vec<SilenceRow> = sqlx::query_as(
        "SELECT s.id, s.project_id, s.monitor_id, m.name AS monitor_name, s.comment,
                s.starts_at, s.ends_at, a.email AS created_by_email,
                (s.starts_at <= now() AND s.ends_at > now()) AS active
         FROM monitor_silences s
         LEFT JOIN monitors m ON m.id = s.monitor_id
         LEFT JOIN accounts a ON a.id = s.created_by
         WHERE s.project_id = $1 AND s.ends_at > now() - interval '7 days'
         ORDER BY (s.starts_at <= now() AND s.ends_at > now()) DESC, s.ends_at DESC, s.id",
    )
    .bind(project)
    .fetch_all(platform.db())
    .await?;
    Ok(rows.into_iter().map(SilenceView::from).collect())
}

/// Ends a silence now. A silence that already ended stays as it was.
pub async fn expire_silence(platform: &Platform, actor: &Actor, id: SilenceId) -> Result<()> {
    let row: Option<(ProjectId, Option<MonitorId>)> =
        sqlx::query_as("SELECT project_id, monitor_id FROM monitor_silences WHERE id = $1")
            .bind(id)
            .fetch_optional(platform.db())
            .await?;
    let Some((project, monitor)) = row else {
        return Err(Error::NotFound);
    };
    let resource = match monitor {
        Some(monitor) => match monitor_scope(platform, monitor).await? {
            Some((_, Some(workspace), _)) => Resource::Workspace(workspace),
            _ => Resource::Project(project),
        },
        None => Resource::Project(project),
    };
    let grant = authorize(platform.db(), actor, Permission::MonitoringManage, resource).await?;
    let mut tx = platform.db().begin().await?;
    let ended = sqlx::query(
        "UPDATE monitor_silences SET ends_at = now() WHERE id = $1 AND ends_at > now()",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if ended.rows_affected() == 0 {
        return Ok(());
    }
    let mut entry = Entry::new("silence.expire", "monitor_silence", id)
        .details(serde_json::json!({ "project": project, "monitor": monitor }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maintenance_window_is_one_utc_hour_a_week() {
        // 2026-11-23 is a Monday (1 counted from Sunday).
        let at = time::macros::datetime!(2026-11-23 03:30 UTC);
        assert!(in_maintenance_window(1, 3, at));
        assert!(!in_maintenance_window(1, 4, at));
        assert!(!in_maintenance_window(2, 3, at));
        let elsewhere = time::macros::datetime!(2026-11-23 05:30 +02:00);
        assert!(in_maintenance_window(1, 3, elsewhere));
    }

    #[test]
    fn silence_reasons_name_the_end_and_the_comment() {
        let ends = time::macros::datetime!(2026-11-23 22:00:00.123 UTC);
        assert_eq!(
            silenced_until(ends, Some("deploying")),
            "silenced until 2026-11-23T22:00:00Z: deploying"
        );
        assert_eq!(
            silenced_until(ends, None),
            "silenced until 2026-11-23T22:00:00Z"
        );
    }
}
