//! Turning alert changes into notifications: one message per monitor and
//! kind, so alerts that change together travel together, and the
//! bookkeeping on the alerts that were sent.

use protocol::ids::{
    AlertId, MonitorId, NotificationChannelId, NotificationId, OrganizationId, ProjectId,
    WorkspaceId,
};
use protocol::views::monitoring::{NotificationMessage, NotifiedAlert, ProbeSpec};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Platform;
use crate::error::Result;

/// What a notification says about its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Firing,
    Resolved,
    Repeat,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Repeat => "repeat",
        }
    }

    /// The history entry each alert gets once the notification is queued.
    fn event(self) -> &'static str {
        match self {
            Self::Firing | Self::Resolved => "notified",
            Self::Repeat => "repeated",
        }
    }
}

/// What a notification needs to know about the monitor.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct MonitorInfo {
    pub id: MonitorId,
    pub organization_id: OrganizationId,
    pub project_id: ProjectId,
    pub workspace_id: Option<WorkspaceId>,
    pub name: String,
    pub probe: serde_json::Value,
    pub channels: Vec<uuid::Uuid>,
    pub failure_threshold: i32,
    pub success_threshold: i32,
    pub paused: bool,
}

/// Columns of [`MonitorInfo`], for `SELECT {MONITOR_COLUMNS} FROM monitors m`.
pub(super) const MONITOR_COLUMNS: &str = "m.id, m.organization_id, m.project_id, m.workspace_id, \
     m.name, m.probe, m.channels, m.failure_threshold, m.success_threshold, m.paused";

impl MonitorInfo {
    fn target(&self) -> Option<String> {
        serde_json::from_value::<ProbeSpec>(self.probe.clone())
            .ok()
            .map(|p| p.target())
    }

    fn channels(&self) -> Vec<NotificationChannelId> {
        self.channels
            .iter()
            .copied()
            .map(NotificationChannelId)
            .collect()
    }
}

/// Queues one notification of `kind` about `alerts` to the monitor's
/// channels, in the caller's transaction, and records on each alert that
/// it was notified (which also ends any suppression it showed).
pub(super) async fn send(
    conn: &mut PgConnection,
    platform: &Platform,
    monitor: &MonitorInfo,
    kind: Kind,
    alerts: Vec<NotifiedAlert>,
    now: OffsetDateTime,
) -> Result<()> {
    if alerts.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = alerts.iter().map(|a| a.id.0).collect();
    let message = NotificationMessage {
        id: NotificationId::new(),
        kind: kind.key().to_string(),
        organization: monitor.organization_id,
        project: Some(monitor.project_id),
        monitor: Some(monitor.id),
        monitor_name: Some(monitor.name.clone()),
        target: monitor.target(),
        url: platform
            .public_url()
            .join(&format!("/monitors/{}", monitor.id))
            .ok()
            .map(String::from),
        alerts,
        sent_at: now,
    };
    let queued = super::super::notify::enqueue(
        conn,
        monitor.organization_id,
        &monitor.channels(),
        Some(monitor.id),
        &message,
    )
    .await?;
    sqlx::query(
        "UPDATE alerts SET notifications = notifications + 1, last_notified_at = $2,
             suppressed = NULL
         WHERE id = ANY($1)",
    )
    .bind(&ids)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let detail = format!("{} notification queued for {queued} channel(s)", kind.key());
    record_many(conn, &ids, now, kind.event(), &detail).await
}

/// One history entry on each of `alerts`.
pub(super) async fn record_many(
    conn: &mut PgConnection,
    alerts: &[uuid::Uuid],
    at: OffsetDateTime,
    kind: &str,
    detail: &str,
) -> Result<()> {
    if alerts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO alert_events (alert_id, at, kind, detail)
         SELECT id, $2, $3, $4 FROM unnest($1::uuid[]) AS id",
    )
    .bind(alerts)
    .bind(at)
    .bind(kind)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// One history entry on one alert.
pub(super) async fn record(
    conn: &mut PgConnection,
    alert: AlertId,
    at: OffsetDateTime,
    kind: &str,
    detail: &str,
) -> Result<()> {
    record_many(conn, &[alert.0], at, kind, detail).await
}
