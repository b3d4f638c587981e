//! Evaluation of written results against their monitors' conditions: the
//! counters on each condition and the alert lifecycle pending → firing →
//! resolved, with the notifications those changes send.

use std::collections::{BTreeMap, HashMap};

use protocol::ids::{AlertId, ConditionId, MonitorId};
use protocol::views::monitoring::{
    AlertState, NewCondition, NotifiedAlert, Operator, Parameter, Severity,
};
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::notice::{self, Kind, MONITOR_COLUMNS, MonitorInfo};
use super::silences::suppression;
use crate::Platform;
use crate::error::Result;
use crate::monitoring::Recorded;

/// Evaluates a written batch of results against their monitors'
/// conditions, moves alerts along and queues their notifications.
///
/// This is the engine's entry point (the writer calls it after every
/// flush); it is public so tests can feed synthetic batches. Results are
/// applied in `at` order per monitor; results of one monitor with the same
/// `at` (one run from several sources) count as one result that breaches
/// when any of them does. Condition rows are locked for the transaction,
/// so replicas evaluating the same monitor take turns.
pub async fn evaluate(platform: &Platform, batch: &[Recorded]) -> Result<()> {
    let mut by_monitor: BTreeMap<MonitorId, Vec<&Recorded>> = BTreeMap::new();
    for result in batch {
        by_monitor.entry(result.monitor).or_default().push(result);
    }
    for results in by_monitor.values_mut() {
        results.sort_by_key(|r| r.at);
    }
    if by_monitor.is_empty() {
        return Ok(());
    }
    // One transaction for the whole batch keeps the writer's cost per
    // flush low; when it fails, each monitor gets its own so one broken
    // monitor does not hold back the others.
    match evaluate_in_transaction(platform, &by_monitor).await {
        Ok(()) => Ok(()),
        Err(e) if by_monitor.len() > 1 => {
            tracing::warn!(error = %e, "evaluating the batch failed; evaluating monitor by monitor");
            let mut last = Ok(());
            for (monitor, results) in by_monitor {
                let one = BTreeMap::from([(monitor, results)]);
                if let Err(e) = evaluate_in_transaction(platform, &one).await {
                    tracing::warn!(%monitor, error = %e, "evaluating alerts failed");
                    last = Err(e);
                }
            }
            last
        }
        Err(e) => Err(e),
    }
}

#[derive(sqlx::FromRow)]
struct ConditionRow {
    id: ConditionId,
    monitor_id: MonitorId,
    position: i32,
    parameter: String,
    operator: String,
    threshold: f64,
    for_seconds: i32,
    severity: String,
    consecutive_breaches: i32,
    consecutive_passes: i32,
    breach_since: Option<OffsetDateTime>,
    last_value: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct OpenRow {
    id: AlertId,
    condition_id: ConditionId,
    state: AlertState,
    value: Option<f64>,
    started_at: OffsetDateTime,
    last_notified_at: Option<OffsetDateTime>,
}

/// An open (pending or firing) alert as evaluation sees it.
struct Open {
    id: AlertId,
    state: AlertState,
    value: Option<f64>,
    started_at: OffsetDateTime,
    /// Notified before this pass, or fired in it (and so about to be).
    notified: bool,
}

/// A condition with its counters, changed in memory and written back once.
struct Condition {
    id: ConditionId,
    rule: NewCondition,
    summary: String,
    breaches: i32,
    passes: i32,
    breach_since: Option<OffsetDateTime>,
    last_value: Option<f64>,
    changed: bool,
    alert: Option<Open>,
}

impl Condition {
    fn parse(row: ConditionRow, alert: Option<Open>) -> Option<Self> {
        let rule = NewCondition {
            parameter: Parameter::from_key(&row.parameter)?,
            operator: Operator::from_key(&row.operator)?,
            threshold: row.threshold,
            for_seconds: u32::try_from(row.for_seconds).unwrap_or(0),
            severity: Severity::from_key(&row.severity).unwrap_or_default(),
        };
        Some(Self {
            id: row.id,
            summary: rule.summary(),
            rule,
            breaches: row.consecutive_breaches,
            passes: row.consecutive_passes,
            breach_since: row.breach_since,
            last_value: row.last_value,
            changed: false,
            alert,
        })
    }

    /// Whether one run breaches and the value it saw; `None` when no result
    /// of the run measured the parameter (ignored, except for `status`,
    /// where not knowing counts as down).
    fn judge(&self, run: &[&Recorded]) -> Option<(bool, Option<f64>)> {
        let mut seen: Option<(bool, Option<f64>)> = None;
        for result in run {
            let judged = match result.outcome.value(self.rule.parameter) {
                Some(v) => (self.rule.operator.holds(v, self.rule.threshold), Some(v)),
                None if self.rule.parameter == Parameter::Status => (true, None),
                None => continue,
            };
            seen = match seen {
                // A breach from any source wins: any source down is down.
                Some((true, _)) => seen,
                _ => Some(judged),
            };
        }
        seen
    }
}

/// Alerts that changed in one pass over one monitor, for its notifications.
#[derive(Default)]
struct Changes {
    fired: Vec<NotifiedAlert>,
    /// Resolved alerts whose firing was (or is being) notified.
    resolved: Vec<NotifiedAlert>,
}

async fn evaluate_in_transaction(
    platform: &Platform,
    by_monitor: &BTreeMap<MonitorId, Vec<&Recorded>>,
) -> Result<()> {
    let ids: Vec<uuid::Uuid> = by_monitor.keys().map(|m| m.0).collect();
    let mut tx = platform.db().begin().await?;
    // Conditions first, in one fixed order, so transactions over
    // overlapping monitors queue behind each other instead of deadlocking;
    // alerts are only locked after their conditions, everywhere.
    let rows: Vec<ConditionRow> = sqlx::query_as(
        "SELECT id, monitor_id, position, parameter, operator, threshold, for_seconds, severity,
                consecutive_breaches, consecutive_passes, breach_since, last_value
         FROM monitor_conditions WHERE monitor_id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let monitors: Vec<MonitorInfo> = sqlx::query_as(&format!(
        "SELECT {MONITOR_COLUMNS} FROM monitors m WHERE m.id = ANY($1)"
    ))
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let condition_ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id.0).collect();
    let open: Vec<OpenRow> = sqlx::query_as(
        "SELECT id, condition_id, state, value, started_at, last_notified_at FROM alerts
         WHERE condition_id = ANY($1) AND state <> 'resolved' FOR UPDATE",
    )
    .bind(&condition_ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut open: HashMap<ConditionId, Open> = open
        .into_iter()
        .map(|a| {
            (
                a.condition_id,
                Open {
                    id: a.id,
                    state: a.state,
                    value: a.value,
                    started_at: a.started_at,
                    notified: a.last_notified_at.is_some(),
                },
            )
        })
        .collect();
    let mut conditions: BTreeMap<MonitorId, Vec<(i32, Condition)>> = BTreeMap::new();
    for row in rows {
        let (monitor, position, id) = (row.monitor_id, row.position, row.id);
        let alert = open.remove(&id);
        match Condition::parse(row, alert) {
            Some(c) => conditions.entry(monitor).or_default().push((position, c)),
            None => tracing::warn!(condition = %id, "skipping a condition that does not parse"),
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut written = Vec::new();
    for monitor in &monitors {
        let (Some(results), Some(conds)) =
            (by_monitor.get(&monitor.id), conditions.get_mut(&monitor.id))
        else {
            continue;
        };
        if monitor.paused {
            continue;
        }
        conds.sort_by_key(|(position, _)| *position);
        let mut changes = Changes::default();
        for run in results.chunk_by(|a, b| a.at == b.at) {
            let at = run[0].at;
            for (_, condition) in conds.iter_mut() {
                step(&mut tx, monitor, condition, run, at, now, &mut changes).await?;
            }
        }
        announce(&mut tx, platform, monitor, changes, now).await?;
        written.extend(conds.drain(..).map(|(_, c)| c).filter(|c| c.changed));
    }
    write_counters(&mut tx, &written).await?;
    tx.commit().await?;
    Ok(())
}

/// Applies one run to one condition and moves its alert along. The
/// alert's times are the results' (`at`); its history is stamped with the
/// evaluation's `now`, like the notifications that follow, so it reads in
/// the order things happened here.
async fn step(
    conn: &mut PgConnection,
    monitor: &MonitorInfo,
    c: &mut Condition,
    run: &[&Recorded],
    at: OffsetDateTime,
    now: OffsetDateTime,
    changes: &mut Changes,
) -> Result<()> {
    let Some((breach, value)) = c.judge(run) else {
        return Ok(());
    };
    c.changed = true;
    if value.is_some() {
        c.last_value = value;
    }
    if !breach {
        c.passes = c.passes.saturating_add(1);
        c.breaches = 0;
        c.breach_since = None;
        let Some(alert) = &c.alert else {
            return Ok(());
        };
        match alert.state {
            AlertState::Pending => {
                let detail = "the breach ended before the alert fired";
                close(conn, alert.id, at, now, value, detail).await?;
                c.alert = None;
            }
            AlertState::Firing if c.passes >= monitor.success_threshold => {
                let detail = format!("{} passing result(s) in a row", c.passes);
                close(conn, alert.id, at, now, value, &detail).await?;
                if alert.notified {
                    changes.resolved.push(NotifiedAlert {
                        id: alert.id,
                        summary: c.summary.clone(),
                        severity: c.rule.severity,
                        state: AlertState::Resolved,
                        value: value.or(alert.value),
                        started_at: alert.started_at,
                        resolved_at: Some(at),
                    });
                }
                c.alert = None;
            }
            AlertState::Firing | AlertState::Resolved => {}
        }
        return Ok(());
    }
    c.breaches = c.breaches.saturating_add(1);
    c.passes = 0;
    let since = *c.breach_since.get_or_insert(at);
    let alert = match c.alert.take() {
        Some(alert) => {
            if value.is_some() && value != alert.value {
                sqlx::query("UPDATE alerts SET value = $2 WHERE id = $1")
                    .bind(alert.id)
                    .bind(value)
                    .execute(&mut *conn)
                    .await?;
            }
            Open {
                value: value.or(alert.value),
                ..alert
            }
        }
        None => open_pending(conn, monitor, c, since, now, value).await?,
    };
    let due = (at - since).whole_seconds() >= i64::from(c.rule.for_seconds);
    let alert =
        if alert.state == AlertState::Pending && c.breaches >= monitor.failure_threshold && due {
            sqlx::query("UPDATE alerts SET state = 'firing', fired_at = $2 WHERE id = $1")
                .bind(alert.id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            let detail = format!(
                "{} breaching result(s) in a row since {}",
                c.breaches,
                rfc3339(since)
            );
            notice::record(conn, alert.id, now, "firing", &detail).await?;
            changes.fired.push(NotifiedAlert {
                id: alert.id,
                summary: c.summary.clone(),
                severity: c.rule.severity,
                state: AlertState::Firing,
                value: alert.value,
                started_at: alert.started_at,
                resolved_at: None,
            });
            Open {
                state: AlertState::Firing,
                notified: true,
                ..alert
            }
        } else {
            alert
        };
    c.alert = Some(alert);
    Ok(())
}

async fn open_pending(
    conn: &mut PgConnection,
    monitor: &MonitorInfo,
    c: &Condition,
    since: OffsetDateTime,
    now: OffsetDateTime,
    value: Option<f64>,
) -> Result<Open> {
    let id = AlertId::new();
    sqlx::query(
        "INSERT INTO alerts (id, organization_id, project_id, workspace_id, monitor_id,
                             condition_id, summary, severity, state, value, started_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)",
    )
    .bind(id)
    .bind(monitor.organization_id)
    .bind(monitor.project_id)
    .bind(monitor.workspace_id)
    .bind(monitor.id)
    .bind(c.id)
    .bind(&c.summary)
    .bind(c.rule.severity.key())
    .bind(value)
    .bind(since)
    .execute(&mut *conn)
    .await?;
    let detail = match value {
        Some(v) => format!("{}: value {v}", c.summary),
        None => format!("{}: not measured", c.summary),
    };
    notice::record(conn, id, now, "pending", &detail).await?;
    Ok(Open {
        id,
        state: AlertState::Pending,
        value,
        started_at: since,
        notified: false,
    })
}

async fn close(
    conn: &mut PgConnection,
    alert: AlertId,
    at: OffsetDateTime,
    now: OffsetDateTime,
    value: Option<f64>,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE alerts SET state = 'resolved', resolved_at = $2, value = coalesce($3, value)
         WHERE id = $1",
    )
    .bind(alert)
    .bind(at)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    notice::record(conn, alert, now, "resolved", detail).await
}

/// Sends what changed for one monitor in this pass: one notification for
/// the alerts that fired, one for those that resolved; or, while the
/// monitor is silenced or in its maintenance window, marks them suppressed.
async fn announce(
    conn: &mut PgConnection,
    platform: &Platform,
    monitor: &MonitorInfo,
    changes: Changes,
    now: OffsetDateTime,
) -> Result<()> {
    if changes.fired.is_empty() && changes.resolved.is_empty() {
        return Ok(());
    }
    let reason = suppression(conn, &[monitor.id], now)
        .await?
        .remove(&monitor.id);
    if let Some(reason) = reason {
        let fired: Vec<uuid::Uuid> = changes.fired.iter().map(|a| a.id.0).collect();
        sqlx::query("UPDATE alerts SET suppressed = $2 WHERE id = ANY($1) AND state = 'firing'")
            .bind(&fired)
            .bind(&reason)
            .execute(&mut *conn)
            .await?;
        notice::record_many(conn, &fired, now, "suppressed", &reason).await?;
        let resolved: Vec<uuid::Uuid> = changes.resolved.iter().map(|a| a.id.0).collect();
        let detail = format!("resolution not sent: {reason}");
        return notice::record_many(conn, &resolved, now, "suppressed", &detail).await;
    }
    notice::send(conn, platform, monitor, Kind::Firing, changes.fired, now).await?;
    notice::send(
        conn,
        platform,
        monitor,
        Kind::Resolved,
        changes.resolved,
        now,
    )
    .await
}

async fn write_counters(conn: &mut PgConnection, conditions: &[Condition]) -> Result<()> {
    if conditions.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = conditions.iter().map(|c| c.id.0).collect();
    let breaches: Vec<i32> = conditions.iter().map(|c| c.breaches).collect();
    let passes: Vec<i32> = conditions.iter().map(|c| c.passes).collect();
    let since: Vec<Option<OffsetDateTime>> = conditions.iter().map(|c| c.breach_since).collect();
    let values: Vec<Option<f64>> = conditions.iter().map(|c| c.last_value).collect();
    sqlx::query(
        "UPDATE monitor_conditions c SET consecutive_breaches = u.breaches,
             consecutive_passes = u.passes, breach_since = u.since, last_value = u.value
         FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::timestamptz[], $5::float8[])
              AS u(id, breaches, passes, since, value)
         WHERE c.id = u.id",
    )
    .bind(&ids)
    .bind(&breaches)
    .bind(&passes)
    .bind(&since)
    .bind(&values)
    .execute(conn)
    .await?;
    Ok(())
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
