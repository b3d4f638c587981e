//! Stored results: the batched writer, the queries behind uptime,
//! sparklines and charts, and the rollup/retention reconciler.
//!
//! Raw results are kept 7 days; completed hours are rolled up into
//! `monitor_rollups` (kept 90 days). Queries over 30 days read the rollups
//! plus the raw results of the hours not rolled up yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protocol::ids::{HostId, MonitorId};
use protocol::views::monitoring::{
    MonitorSeries, MonitorState, Parameter, ProbeOutcome, RecentResult, ResultView, SeriesPoint,
    StateSpan, TimeRange, Uptime,
};
use protocol::views::{Page, PageRequest};
use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Recorded;
use super::engine::Shared;
use crate::Platform;
use crate::error::Result;
use crate::tasks::{ReconcileOutcome, Reconciler};

/// Results a flush writes at most.
const BATCH: usize = 1000;
/// How long a result waits for its batch to fill.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Results queued for the writer; probes wait when it is full.
const QUEUE: usize = 65_536;
/// Attempts at storing one batch before it is dropped (and logged).
const WRITE_ATTEMPTS: u32 = 3;
/// How long a stopping writer waits for probes still running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Buckets of a chart.
const BUCKETS: i64 = 120;

// ---------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------

/// The batched writer's queue. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Recorded>,
    done: CancellationToken,
    shared: Arc<Shared>,
}

impl Writer {
    pub(crate) fn spawn(
        platform: Platform,
        shutdown: CancellationToken,
        shared: Arc<Shared>,
    ) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let done = CancellationToken::new();
        tokio::spawn(write_loop(
            platform,
            rx,
            shutdown,
            done.clone(),
            shared.clone(),
        ));
        Writer { tx, done, shared }
    }

    /// Queues a result; waits while the queue is full.
    pub(crate) async fn send(&self, recorded: Recorded) {
        if self.tx.send(recorded).await.is_err() {
            // The writer stopped (shutdown): nothing stores it any more.
            self.shared.results_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) async fn stopped(&self) {
        self.done.cancelled().await;
    }
}

async fn write_loop(
    platform: Platform,
    mut rx: mpsc::Receiver<Recorded>,
    shutdown: CancellationToken,
    done: CancellationToken,
    shared: Arc<Shared>,
) {
    let mut batch: Vec<Recorded> = Vec::with_capacity(BATCH);
    let mut deadline = tokio::time::Instant::now();
    loop {
        let waiting = !batch.is_empty();
        let room = BATCH - batch.len();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            received = rx.recv_many(&mut batch, room) => {
                if received == 0 {
                    break;
                }
                if !waiting {
                    deadline = tokio::time::Instant::now() + FLUSH_EVERY;
                }
                if batch.len() >= BATCH {
                    flush(&platform, &shared, std::mem::take(&mut batch)).await;
                }
            }
            () = tokio::time::sleep_until(deadline), if waiting => {
                flush(&platform, &shared, std::mem::take(&mut batch)).await;
            }
        }
    }
    // Probes already started finish (each within its timeout): store what
    // they report, for a moment.
    let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    loop {
        let room = BATCH - batch.len();
        match tokio::time::timeout(Duration::from_millis(50), rx.recv_many(&mut batch, room)).await
        {
            Ok(0) => break,
            Ok(_) if batch.len() >= BATCH => {
                flush(&platform, &shared, std::mem::take(&mut batch)).await;
            }
            Ok(_) => {}
            Err(_) if shared.probes_in_flight.load(Ordering::Relaxed) == 0 && rx.is_empty() => {
                break;
            }
            Err(_) => {}
        }
        if tokio::time::Instant::now() >= grace {
            break;
        }
    }
    if !batch.is_empty() {
        flush(&platform, &shared, batch).await;
    }
    done.cancel();
}

/// Stores a batch (retrying briefly), then evaluates it against the
/// monitors' conditions. Never panics: failures are logged and counted.
async fn flush(platform: &Platform, shared: &Shared, batch: Vec<Recorded>) {
    let started = Instant::now();
    let mut attempt = 0;
    let stored = loop {
        attempt += 1;
        match write(platform.db(), &batch).await {
            Ok(()) => break true,
            Err(e) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, results = batch.len(), "storing monitoring results failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, results = batch.len(), "storing monitoring results failed; dropping the batch");
                break false;
            }
        }
    };
    shared.write_micros.fetch_add(
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let count = batch.len() as u64;
    if !stored {
        shared.write_failures.fetch_add(1, Ordering::Relaxed);
        shared.results_dropped.fetch_add(count, Ordering::Relaxed);
        return;
    }
    shared.results_written.fetch_add(count, Ordering::Relaxed);
    shared.write_batches.fetch_add(1, Ordering::Relaxed);
    // Its own task: a bug in evaluation must not take the writer down.
    let evaluating = {
        let platform = platform.clone();
        tokio::spawn(async move { super::alerts::evaluate(&platform, &batch).await })
    };
    match evaluating.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "evaluating monitoring results failed"),
        Err(e) => tracing::error!(error = %e, "evaluating monitoring results panicked"),
    }
}

/// The newest state of one monitor in a batch.
struct Latest {
    at: OffsetDateTime,
    up: bool,
    latency_ms: Option<f64>,
    error: Option<String>,
}

/// One transaction: the rows, then the monitors' latest state.
async fn write(db: &PgPool, batch: &[Recorded]) -> Result<(), sqlx::Error> {
    let n = batch.len();
    let mut monitors = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    let mut sources: Vec<Option<uuid::Uuid>> = Vec::with_capacity(n);
    let mut oks = Vec::with_capacity(n);
    let mut latencies: Vec<Option<f32>> = Vec::with_capacity(n);
    let mut values: Vec<Option<Json<&BTreeMap<Parameter, f64>>>> = Vec::with_capacity(n);
    let mut errors: Vec<Option<&str>> = Vec::with_capacity(n);
    // Newest run per monitor; all sources of one run share its `at`, and
    // any source down makes the monitor down.
    let mut latest: BTreeMap<MonitorId, Latest> = BTreeMap::new();
    for r in batch {
        monitors.push(r.monitor.0);
        ats.push(r.at);
        sources.push(r.source.map(|h: HostId| h.0));
        oks.push(r.outcome.ok);
        latencies.push(r.outcome.latency_ms.map(|l| l as f32));
        values.push((!r.outcome.values.is_empty()).then_some(Json(&r.outcome.values)));
        errors.push(r.outcome.error.as_deref());
        let entry = latest.entry(r.monitor).or_insert_with(|| Latest {
            at: r.at,
            up: true,
            latency_ms: None,
            error: None,
        });
        if r.at > entry.at {
            *entry = Latest {
                at: r.at,
                up: true,
                latency_ms: None,
                error: None,
            };
        }
        if r.at == entry.at {
            entry.up &= r.outcome.ok;
            entry.latency_ms = entry.latency_ms.or(r.outcome.latency_ms);
            if !r.outcome.ok && entry.error.is_none() {
                entry.error = Some(r.outcome.error.clone().unwrap_or_else(|| "down".into()));
            }
        }
    }
    let ids: Vec<uuid::Uuid> = latest.keys().map(|m| m.0).collect();
    let mut tx = db.begin().await?;
    // In id order: two writers (replicas) touching the same monitors wait
    // for each other instead of deadlocking.
    sqlx::query("SELECT 1 FROM monitors WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    // The join skips results of monitors deleted meanwhile.
    sqlx::query(
        r#"INSERT INTO monitor_results (monitor_id, at, source, ok, latency_ms, "values", error)
           SELECT r.* FROM UNNEST($1::uuid[], $2::timestamptz[], $3::uuid[], $4::bool[],
                                  $5::real[], $6::jsonb[], $7::text[])
                  AS r(monitor_id, at, source, ok, latency_ms, "values", error)
           JOIN monitors m ON m.id = r.monitor_id"#,
    )
    .bind(&monitors)
    .bind(&ats)
    .bind(&sources)
    .bind(&oks)
    .bind(&latencies)
    .bind(&values)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;
    let mut up = Vec::with_capacity(ids.len());
    let mut at = Vec::with_capacity(ids.len());
    let mut latency = Vec::with_capacity(ids.len());
    let mut error = Vec::with_capacity(ids.len());
    for l in latest.values() {
        up.push(l.up);
        at.push(l.at);
        latency.push(l.latency_ms);
        error.push(l.error.as_deref());
    }
    // A source of the same run that already reported down keeps the
    // monitor down (sources of one run may land in different batches).
    sqlx::query(
        "WITH u AS (
             SELECT * FROM UNNEST($1::uuid[], $2::bool[], $3::timestamptz[], $4::float8[], $5::text[])
                 AS u(id, up, at, latency, error)
         ), n AS (
             SELECT m.id, u.at, u.latency,
                    CASE WHEN u.up AND NOT (m.last_checked_at = u.at AND m.state = 'down')
                         THEN 'up'::monitor_state ELSE 'down'::monitor_state END AS state,
                    CASE WHEN m.last_checked_at = u.at AND m.state = 'down' AND u.up
                         THEN m.last_error ELSE u.error END AS error
             FROM monitors m JOIN u ON u.id = m.id
             WHERE m.last_checked_at IS NULL OR m.last_checked_at <= u.at
         )
         UPDATE monitors m
         SET state = n.state,
             state_since = CASE WHEN m.state = n.state THEN m.state_since ELSE n.at END,
             last_checked_at = n.at,
             last_latency_ms = n.latency,
             last_error = n.error
         FROM n WHERE m.id = n.id",
    )
    .bind(&ids)
    .bind(&up)
    .bind(&at)
    .bind(&latency)
    .bind(&error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

fn percent(checks: i64, failures: i64) -> Option<f64> {
    (checks > 0).then(|| (checks - failures) as f64 * 100.0 / checks as f64)
}

/// Uptime over 24 h, 7 d and 30 d for each monitor (absent: no results).
/// The day counts raw results; week and month count whole hours from the
/// rollups plus the raw results of the hours not rolled up yet.
pub(crate) async fn uptime(
    db: &PgPool,
    monitors: &[MonitorId],
) -> Result<HashMap<MonitorId, Uptime>> {
    if monitors.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<uuid::Uuid> = monitors.iter().map(|m| m.0).collect();
    type Row = (MonitorId, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH ids AS (SELECT DISTINCT unnest($1::uuid[]) AS id),
         rolled AS (
             SELECT r.monitor_id,
                    max(r.hour) + interval '1 hour' AS upto,
                    sum(r.checks) FILTER (WHERE r.hour >= date_trunc('hour', now() - interval '7 days'))::int8 AS week_checks,
                    sum(r.failures) FILTER (WHERE r.hour >= date_trunc('hour', now() - interval '7 days'))::int8 AS week_failures,
                    sum(r.checks)::int8 AS month_checks,
                    sum(r.failures)::int8 AS month_failures
             FROM monitor_rollups r JOIN ids ON ids.id = r.monitor_id
             WHERE r.hour >= date_trunc('hour', now() - interval '30 days')
             GROUP BY r.monitor_id
         ),
         raw AS (
             SELECT ids.id AS monitor_id,
                    count(*) FILTER (WHERE x.at >= now() - interval '24 hours') AS day_checks,
                    count(*) FILTER (WHERE x.at >= now() - interval '24 hours' AND NOT x.ok) AS day_failures,
                    count(*) AS late_checks,
                    count(*) FILTER (WHERE NOT x.ok) AS late_failures,
                    count(*) FILTER (WHERE x.at >= r.upto OR r.upto IS NULL) AS new_checks,
                    count(*) FILTER (WHERE (x.at >= r.upto OR r.upto IS NULL) AND NOT x.ok) AS new_failures
             FROM ids
             LEFT JOIN rolled r ON r.monitor_id = ids.id
             JOIN monitor_results x ON x.monitor_id = ids.id
                 AND x.at >= least(now() - interval '24 hours', coalesce(r.upto, now() - interval '30 days'))
             GROUP BY ids.id
         )
         SELECT ids.id,
                coalesce(raw.day_checks, 0), coalesce(raw.day_failures, 0),
                coalesce(rolled.week_checks, 0) + coalesce(raw.new_checks, 0),
                coalesce(rolled.week_failures, 0) + coalesce(raw.new_failures, 0),
                coalesce(rolled.month_checks, 0) + coalesce(raw.new_checks, 0),
                coalesce(rolled.month_failures, 0) + coalesce(raw.new_failures, 0)
         FROM ids
         LEFT JOIN rolled ON rolled.monitor_id = ids.id
         LEFT JOIN raw ON raw.monitor_id = ids.id",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.5 > 0)
        .map(|(id, dc, df, wc, wf, mc, mf)| {
            (
                id,
                Uptime {
                    day: percent(dc, df),
                    week: percent(wc, wf),
                    month: percent(mc, mf),
                },
            )
        })
        .collect())
}

/// The last `n` results of each monitor, oldest first.
pub(crate) async fn recent(
    db: &PgPool,
    monitors: &[MonitorId],
    n: i64,
) -> Result<HashMap<MonitorId, Vec<RecentResult>>> {
    if monitors.is_empty() || n <= 0 {
        return Ok(HashMap::new());
    }
    let ids: Vec<uuid::Uuid> = monitors.iter().map(|m| m.0).collect();
    let rows: Vec<(MonitorId, OffsetDateTime, bool, Option<f32>)> = sqlx::query_as(
        "SELECT m.id, r.at, r.ok, r.latency_ms
         FROM (SELECT DISTINCT unnest($1::uuid[]) AS id) m
         CROSS JOIN LATERAL (
             SELECT at, ok, latency_ms FROM monitor_results
             WHERE monitor_id = m.id ORDER BY at DESC LIMIT $2
         ) r
         ORDER BY m.id, r.at",
    )
    .bind(&ids)
    .bind(n)
    .fetch_all(db)
    .await?;
    let mut out: HashMap<MonitorId, Vec<RecentResult>> = HashMap::new();
    for (id, at, ok, latency) in rows {
        out.entry(id).or_default().push(RecentResult {
            at,
            ok,
            latency_ms: if ok { latency.map(f64::from) } else { None },
        });
    }
    Ok(out)
}

/// Latency and failures in [`BUCKETS`] equal buckets over `range` ending at
/// `now`, and the state timeline: a bucket with failures is down, one with
/// only passing results up, one without results unknown.
pub(crate) async fn series(
    db: &PgPool,
    monitor: MonitorId,
    range: TimeRange,
    now: OffsetDateTime,
) -> Result<MonitorSeries> {
    let from = now - time::Duration::seconds(range.seconds());
    let bucket_seconds = range.seconds() / BUCKETS;
    type Row = (i32, i64, i64, Option<f64>, Option<f64>);
    let rows: Vec<Row> = if range.seconds() <= TimeRange::Week.seconds() {
        sqlx::query_as(
            "SELECT floor(extract(epoch FROM at - $2) / $3)::int4 AS b,
                    count(*), count(*) FILTER (WHERE NOT ok),
                    avg(latency_ms) FILTER (WHERE ok)::float8,
                    max(latency_ms) FILTER (WHERE ok)::float8
             FROM monitor_results
             WHERE monitor_id = $1 AND at >= $2 AND at < $4
             GROUP BY b",
        )
        .bind(monitor)
        .bind(from)
        .bind(bucket_seconds as f64)
        .bind(now)
        .fetch_all(db)
        .await?
    } else {
        // Whole hours from the rollups, the rest from raw results.
        sqlx::query_as(
            "WITH rolled AS (
                 SELECT hour AS at, checks::int8 AS checks, failures::int8 AS failures,
                        latency_avg_ms AS avg, latency_max_ms AS mx
                 FROM monitor_rollups
                 WHERE monitor_id = $1 AND hour >= date_trunc('hour', $2::timestamptz) AND hour < $4
             ), upto AS (
                 SELECT coalesce(max(at) + interval '1 hour', $2::timestamptz) AS t FROM rolled
             ), raw AS (
                 SELECT date_trunc('hour', r.at) AS at, count(*) AS checks,
                        count(*) FILTER (WHERE NOT r.ok) AS failures,
                        avg(r.latency_ms) FILTER (WHERE r.ok)::float8 AS avg,
                        max(r.latency_ms) FILTER (WHERE r.ok)::float8 AS mx
                 FROM monitor_results r, upto
                 WHERE r.monitor_id = $1 AND r.at >= upto.t AND r.at < $4
                 GROUP BY 1
             ), hours AS (
                 SELECT * FROM rolled UNION ALL SELECT * FROM raw
             )
             SELECT greatest(floor(extract(epoch FROM at - $2) / $3), 0)::int4 AS b,
                    sum(checks)::int8, sum(failures)::int8,
                    sum(avg * (checks - failures)) / nullif(sum(checks - failures) FILTER (WHERE avg IS NOT NULL), 0),
                    max(mx)
             FROM hours GROUP BY b",
        )
        .bind(monitor)
        .bind(from)
        .bind(bucket_seconds as f64)
        .bind(now)
        .fetch_all(db)
        .await?
    };
    let mut points: Vec<SeriesPoint> = (0..BUCKETS)
        .map(|i| SeriesPoint {
            at: from + time::Duration::seconds(i * bucket_seconds),
            checks: 0,
            failures: 0,
            latency_avg_ms: None,
            latency_max_ms: None,
        })
        .collect();
    for (b, checks, failures, avg, max) in rows {
        let Some(point) = usize::try_from(b).ok().and_then(|b| points.get_mut(b)) else {
            continue;
        };
        point.checks = point
            .checks
            .saturating_add(u32::try_from(checks).unwrap_or(u32::MAX));
        point.failures = point
            .failures
            .saturating_add(u32::try_from(failures).unwrap_or(u32::MAX));
        point.latency_avg_ms = avg;
        point.latency_max_ms = max;
    }
    let states = state_spans(&points, bucket_seconds, now);
    Ok(MonitorSeries {
        range,
        from,
        to: now,
        points,
        states,
    })
}

/// Consecutive buckets of one state, merged.
fn state_spans(points: &[SeriesPoint], bucket_seconds: i64, to: OffsetDateTime) -> Vec<StateSpan> {
    let mut spans: Vec<StateSpan> = Vec::new();
    for p in points {
        let state = if p.checks == 0 {
            MonitorState::Unknown
        } else if p.failures > 0 {
            MonitorState::Down
        } else {
            MonitorState::Up
        };
        let end = (p.at + time::Duration::seconds(bucket_seconds)).min(to);
        match spans.last_mut() {
            Some(last) if last.state == state => last.to = end,
            _ => spans.push(StateSpan {
                from: p.at,
                to: end,
                state,
            }),
        }
    }
    spans
}

/// Stored results, newest first; the source is "Portal" or the host's
/// name.
pub(crate) async fn page(
    db: &PgPool,
    monitor: MonitorId,
    page: PageRequest,
) -> Result<Page<ResultView>> {
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM monitor_results WHERE monitor_id = $1")
            .bind(monitor)
            .fetch_one(db)
            .await?;
    type Row = (
        OffsetDateTime,
        Option<HostId>,
        Option<String>,
        bool,
        Option<f32>,
        Option<Json<BTreeMap<Parameter, f64>>>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT r.at, r.source, h.hostname, r.ok, r.latency_ms, r."values", r.error
           FROM monitor_results r LEFT JOIN hosts h ON h.id = r.source
           WHERE r.monitor_id = $1
           ORDER BY r.at DESC, r.source NULLS FIRST
           LIMIT $2 OFFSET $3"#,
    )
    .bind(monitor)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    let items = rows
        .into_iter()
        .map(
            |(at, source, hostname, ok, latency, values, error)| ResultView {
                at,
                source: match (source, hostname) {
                    (None, _) => "Portal".to_string(),
                    (Some(_), Some(name)) => name,
                    (Some(host), None) => format!("deleted host {host}"),
                },
                outcome: ProbeOutcome {
                    ok,
                    latency_ms: latency.map(f64::from),
                    values: values.map(|v| v.0).unwrap_or_default(),
                    error,
                },
            },
        )
        .collect();
    Ok(page.page_of(items, total))
}

// ---------------------------------------------------------------------------
// Rollups and retention
// ---------------------------------------------------------------------------

/// Raw rows deleted per statement, so retention never holds long locks.
const DELETE_CHUNK: i64 = 10_000;

/// Every 5 minutes: rolls completed hours into `monitor_rollups` (again
/// for the last rolled hour, which may have received late results), deletes
/// raw results older than 7 days and rollups older than 90 days.
pub fn retention(platform: Platform) -> Reconciler {
    Reconciler::new(
        "monitoring.retention",
        Duration::from_secs(300),
        Duration::from_secs(240),
        move || {
            let db = platform.db().clone();
            async move { retain(&db).await.map_err(|e| e.to_string()) }
        },
    )
}

async fn retain(db: &PgPool) -> Result<ReconcileOutcome, sqlx::Error> {
    // From the hour before the last rolled one (late results), at most 7
    // days back (older raw results are gone), up to the current hour.
    let hours: Vec<OffsetDateTime> = sqlx::query_scalar(
        "SELECT generate_series(
                    greatest(coalesce((SELECT max(hour) FROM monitor_rollups) - interval '1 hour',
                                      date_trunc('hour', now() - interval '7 days')),
                             date_trunc('hour', now() - interval '7 days')),
                    date_trunc('hour', now()) - interval '1 hour',
                    interval '1 hour')",
    )
    .fetch_all(db)
    .await?;
    let mut rolled = 0;
    for hour in &hours {
        rolled += sqlx::query(
            "INSERT INTO monitor_rollups
                 (monitor_id, hour, checks, failures, latency_avg_ms, latency_min_ms, latency_max_ms)
             SELECT r.monitor_id, $1, count(*), count(*) FILTER (WHERE NOT r.ok),
                    avg(r.latency_ms) FILTER (WHERE r.ok), min(r.latency_ms) FILTER (WHERE r.ok),
                    max(r.latency_ms) FILTER (WHERE r.ok)
             FROM monitor_results r JOIN monitors m ON m.id = r.monitor_id
             WHERE r.at >= $1 AND r.at < $1 + interval '1 hour'
             GROUP BY r.monitor_id
             ON CONFLICT (monitor_id, hour) DO UPDATE
             SET checks = EXCLUDED.checks, failures = EXCLUDED.failures,
                 latency_avg_ms = EXCLUDED.latency_avg_ms,
                 latency_min_ms = EXCLUDED.latency_min_ms,
                 latency_max_ms = EXCLUDED.latency_max_ms",
        )
        .bind(hour)
        .execute(db)
        .await?
        .rows_affected();
    }
    let mut deleted = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM monitor_results WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM monitor_results WHERE at < now() - interval '7 days' LIMIT $1))",
        )
        .bind(DELETE_CHUNK)
        .execute(db)
        .await?
        .rows_affected();
        deleted += n;
        if n < DELETE_CHUNK as u64 {
            break;
        }
    }
    let mut expired = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM monitor_rollups WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM monitor_rollups WHERE hour < now() - interval '90 days' LIMIT $1))",
        )
        .bind(DELETE_CHUNK)
        .execute(db)
        .await?
        .rows_affected();
        expired += n;
        if n < DELETE_CHUNK as u64 {
            break;
        }
    }
    Ok(ReconcileOutcome::new(format!(
        "rolled up {} hours ({rolled} monitor-hours); deleted {deleted} raw results and {expired} rollups",
        hours.len()
    )))
}
