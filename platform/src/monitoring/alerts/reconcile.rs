//! What changes with time rather than with results: repeat notifications
//! of alerts that keep firing, and silences or maintenance windows that
//! start or end while an alert fires.

use std::time::Duration;

use protocol::ids::{AlertId, MonitorId};
use protocol::views::monitoring::{AlertState, NotifiedAlert, Severity};
use time::OffsetDateTime;

use super::notice::{self, Kind, MONITOR_COLUMNS, MonitorInfo};
use super::silences::{SUPPRESSED_AT_1, suppression};
use crate::Platform;
use crate::error::Result;
use crate::tasks::{ReconcileOutcome, Reconciler};

/// Monitors handled per run; the rest wait for the next second.
const BATCH: i64 = 200;

/// Repeats notifications of firing, unacknowledged alerts after the
/// monitor's repeat interval; releases alerts whose silence or maintenance
/// window ended and holds back those of monitors a silence or window now
/// covers. Runs every second; the query behind it only finds monitors with
/// something to do.
pub fn reconciler(platform: Platform) -> Reconciler {
    Reconciler::new(
        "monitoring.alerts",
        Duration::from_secs(1),
        Duration::from_secs(30),
        move || {
            let platform = platform.clone();
            async move {
                reconcile(&platform)
                    .await
                    .map(ReconcileOutcome::new)
                    .map_err(|e| e.to_string())
            }
        },
    )
}

/// One run of [`reconciler`] (public for tests, which call it instead of
/// waiting for the loop).
pub async fn reconcile(platform: &Platform) -> Result<String> {
    let now = OffsetDateTime::now_utc();
    let due: Vec<MonitorId> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT a.monitor_id FROM alerts a
         JOIN monitors m ON m.id = a.monitor_id
         LEFT JOIN workspaces w ON w.id = m.workspace_id
         WHERE a.state = 'firing' AND NOT m.paused AND (
             (a.acknowledged_at IS NULL AND a.suppressed IS NULL AND a.last_notified_at
                 + make_interval(secs => m.repeat_interval_seconds) <= $1::timestamptz)
             OR ((a.suppressed IS NOT NULL) <> {SUPPRESSED_AT_1})
             OR (a.last_notified_at IS NULL AND a.suppressed IS NULL))
         LIMIT $2"
    ))
    .bind(now)
    .bind(BATCH)
    .fetch_all(platform.db())
    .await?;
    let mut done = Tally::default();
    for monitor in due {
        match reconcile_monitor(platform, monitor, now).await {
            Ok(tally) => done.add(tally),
            Err(e) => tracing::warn!(%monitor, error = %e, "reconciling alerts failed"),
        }
    }
    Ok(format!(
        "{} repeated, {} released, {} suppressed",
        done.repeated, done.released, done.suppressed
    ))
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    repeated: usize,
    released: usize,
    suppressed: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.repeated += other.repeated;
        self.released += other.released;
        self.suppressed += other.suppressed;
    }
}

#[derive(sqlx::FromRow)]
struct FiringRow {
    id: AlertId,
    summary: String,
    severity: String,
    value: Option<f64>,
    started_at: OffsetDateTime,
    acknowledged: bool,
    suppressed: Option<String>,
    last_notified_at: Option<OffsetDateTime>,
    repeat_interval_seconds: i32,
}

impl FiringRow {
    fn notified(&self) -> NotifiedAlert {
        NotifiedAlert {
            id: self.id,
            summary: self.summary.clone(),
            severity: Severity::from_key(&self.severity).unwrap_or_default(),
            state: AlertState::Firing,
            value: self.value,
            started_at: self.started_at,
            resolved_at: None,
        }
    }
}

async fn reconcile_monitor(
    platform: &Platform,
    monitor: MonitorId,
    now: OffsetDateTime,
) -> Result<Tally> {
    let mut tx = platform.db().begin().await?;
    // Alerts an evaluation holds are skipped: it is changing them, and the
    // next run sees what it left.
    let alerts: Vec<FiringRow> = sqlx::query_as(
        "SELECT a.id, a.summary, a.severity, a.value, a.started_at,
                a.acknowledged_at IS NOT NULL AS acknowledged, a.suppressed, a.last_notified_at,
                m.repeat_interval_seconds
         FROM alerts a JOIN monitors m ON m.id = a.monitor_id
         WHERE a.monitor_id = $1 AND a.state = 'firing'
         ORDER BY a.started_at, a.id
         FOR UPDATE OF a SKIP LOCKED",
    )
    .bind(monitor)
    .fetch_all(&mut *tx)
    .await?;
    let info: Option<MonitorInfo> = sqlx::query_as(&format!(
        "SELECT {MONITOR_COLUMNS} FROM monitors m WHERE m.id = $1"
    ))
    .bind(monitor)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(info) = info else {
        return Ok(Tally::default());
    };
    let reason = suppression(&mut tx, &[monitor], now)
        .await?
        .remove(&monitor);
    let mut tally = Tally::default();
    let (mut release, mut repeat) = (Vec::new(), Vec::new());
    for alert in &alerts {
        match (&reason, &alert.suppressed) {
            (Some(reason), Some(shown)) if reason == shown => {}
            (Some(reason), shown) => {
                sqlx::query("UPDATE alerts SET suppressed = $2 WHERE id = $1")
                    .bind(alert.id)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?;
                // A silence that was changed only updates the text; the
                // history says when holding back began.
                if shown.is_none() {
                    notice::record(&mut tx, alert.id, now, "suppressed", reason).await?;
                    tally.suppressed += 1;
                }
            }
            (None, Some(_)) => {
                // Acknowledged alerts that were already notified stay
                // quiet; everything else was held back and goes out now.
                if alert.acknowledged && alert.last_notified_at.is_some() {
                    sqlx::query("UPDATE alerts SET suppressed = NULL WHERE id = $1")
                        .bind(alert.id)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    release.push(alert.notified());
                }
                tally.released += 1;
            }
            (None, None) => match alert.last_notified_at {
                None => release.push(alert.notified()),
                Some(last)
                    if !alert.acknowledged
                        && last
                            + time::Duration::seconds(i64::from(alert.repeat_interval_seconds))
                            <= now =>
                {
                    repeat.push(alert.notified());
                }
                Some(_) => {}
            },
        }
    }
    tally.repeated = repeat.len();
    notice::send(&mut tx, platform, &info, Kind::Firing, release, now).await?;
    notice::send(&mut tx, platform, &info, Kind::Repeat, repeat, now).await?;
    tx.commit().await?;
    Ok(tally)
}
