//! The scheduler: claims due monitors, runs their probes from every source
//! and hands the results to the batched writer.
//!
//! Every ~200 ms the scheduler claims the monitors whose `next_run_at` has
//! come (`FOR NO KEY UPDATE SKIP LOCKED`, so two replicas never claim the
//! same row) and moves `next_run_at` to the monitor's next slot on its grid
//! in the same statement. The grid is `t ≡ offset(id) (mod interval)` with
//! the offset a stable hash of the id, Prometheus-style: monitors created
//! together spread evenly over the interval instead of firing at once, and
//! a restart (or another replica) continues the same schedule.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::ids::{HostId, MonitorId};
use protocol::views::monitoring::{ProbeOutcome, ProbeSpec, SourceRef};
use sqlx::types::Json;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Recorded;
use super::results::Writer;
use crate::Platform;

/// How often the scheduler looks for due monitors.
const TICK: Duration = Duration::from_millis(200);
/// Probes in flight in one process; due monitors beyond it wait in the
/// database (for this process's next tick or another replica).
const MAX_IN_FLIGHT: usize = 4096;
/// Rows claimed per statement.
const CLAIM_BATCH: usize = 1000;
/// Jitter samples kept for the percentiles.
const JITTER_SAMPLES: usize = 100_000;
/// Added to a probe's own timeout before the engine gives up on it, so the
/// probe can report its own (more precise) timeout first.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// What the engine did since it started, for benchmarks and diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub probes_started: u64,
    pub probes_in_flight: u64,
    pub results_written: u64,
    pub write_batches: u64,
    /// How late probes started against their scheduled time.
    pub jitter_p50_ms: f64,
    pub jitter_p99_ms: f64,
    pub jitter_max_ms: f64,
    /// Claimed runs skipped because the monitor's previous probe still ran.
    pub probes_skipped: u64,
    /// Batches the writer could not store (logged), and their results.
    pub write_failures: u64,
    pub results_dropped: u64,
    /// Seconds the writer spent in its database round trips.
    pub write_seconds: f64,
}

/// A running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    writer: Writer,
}

/// Counters shared by the scheduler, the probes and the writer.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) probes_started: AtomicU64,
    pub(crate) probes_in_flight: AtomicU64,
    pub(crate) probes_skipped: AtomicU64,
    pub(crate) results_written: AtomicU64,
    pub(crate) write_batches: AtomicU64,
    pub(crate) write_failures: AtomicU64,
    pub(crate) results_dropped: AtomicU64,
    pub(crate) write_micros: AtomicU64,
    jitter: Mutex<Jitter>,
    /// Monitors whose probe runs in this process now.
    running: Mutex<HashSet<MonitorId>>,
}

/// The most recent jitter samples (a ring) and the largest ever seen.
#[derive(Default)]
struct Jitter {
    samples: Vec<f32>,
    next: usize,
    max_ms: f64,
}

impl Jitter {
    fn record(&mut self, ms: f64) {
        if self.samples.len() < JITTER_SAMPLES {
            self.samples.push(ms as f32);
        } else {
            self.samples[self.next] = ms as f32;
        }
        self.next = (self.next + 1) % JITTER_SAMPLES;
        self.max_ms = self.max_ms.max(ms);
    }

    fn percentile(sorted: &[f32], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let index = ((sorted.len() - 1) as f64 * p).round() as usize;
        f64::from(sorted[index.min(sorted.len() - 1)])
    }
}

impl Engine {
    /// Starts the scheduler and the result writer; both stop at `shutdown`.
    pub fn spawn(platform: Platform, shutdown: CancellationToken) -> Engine {
        let shared = Arc::new(Shared::default());
        let writer = Writer::spawn(platform.clone(), shutdown.clone(), shared.clone());
        let engine = Engine {
            shared: shared.clone(),
            writer: writer.clone(),
        };
        let scheduler = Scheduler {
            platform,
            shared,
            writer,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            shutdown,
        };
        tokio::spawn(scheduler.run());
        engine
    }

    /// Hands `recorded` to the writer as a probe would (benchmarks of the
    /// write path). Waits while the writer's queue is full.
    pub async fn record(&self, recorded: Recorded) {
        self.writer.send(recorded).await;
    }

    /// Resolves once the engine stopped and its writer stored what it had.
    pub async fn stopped(&self) {
        self.writer.stopped().await;
    }

    /// Forgets the jitter samples so far (a benchmark's warm-up).
    pub fn reset_jitter(&self) {
        *lock(&self.shared.jitter) = Jitter::default();
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let (p50, p99, max) = {
            let jitter = s.jitter.lock().unwrap_or_else(|e| e.into_inner());
            let mut sorted = jitter.samples.clone();
            let max = jitter.max_ms;
            drop(jitter);
            sorted.sort_unstable_by(f32::total_cmp);
            (
                Jitter::percentile(&sorted, 0.5),
                Jitter::percentile(&sorted, 0.99),
                max,
            )
        };
        Stats {
            probes_started: s.probes_started.load(Ordering::Relaxed),
            probes_in_flight: s.probes_in_flight.load(Ordering::Relaxed),
            results_written: s.results_written.load(Ordering::Relaxed),
            write_batches: s.write_batches.load(Ordering::Relaxed),
            jitter_p50_ms: p50,
            jitter_p99_ms: p99,
            jitter_max_ms: max,
            probes_skipped: s.probes_skipped.load(Ordering::Relaxed),
            write_failures: s.write_failures.load(Ordering::Relaxed),
            results_dropped: s.results_dropped.load(Ordering::Relaxed),
            write_seconds: s.write_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A monitor run the scheduler claimed.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: MonitorId,
    probe: Json<ProbeSpec>,
    sources: Json<Vec<SourceRef>>,
    /// The slot this run belongs to.
    scheduled: OffsetDateTime,
    /// The database's clock when it was claimed: jitter is measured on one
    /// clock, whatever this machine's says.
    claimed_at: OffsetDateTime,
}

struct Scheduler {
    platform: Platform,
    shared: Arc<Shared>,
    writer: Writer,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl Scheduler {
    async fn run(self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.claim_due().await {
                tracing::warn!(error = %e, "monitoring scheduler could not claim due monitors");
            }
        }
    }

    /// Claims and starts due monitors until none are due or every permit
    /// is taken.
    async fn claim_due(&self) -> Result<(), sqlx::Error> {
        loop {
            let free = self.permits.available_permits().min(CLAIM_BATCH);
            if free == 0 || self.shutdown.is_cancelled() {
                return Ok(());
            }
            let min_interval =
                i64::try_from(self.platform.monitoring_settings().min_interval.as_secs())
                    .unwrap_or(i64::MAX)
                    .max(1);
            let claimed: Vec<Claimed> = sqlx::query_as(CLAIM)
                .bind(i64::try_from(free).unwrap_or(1))
                .bind(min_interval)
                .fetch_all(self.platform.db())
                .await?;
            let received = Instant::now();
            let count = claimed.len();
            for run in claimed {
                self.start(run, received);
            }
            if count < free {
                return Ok(());
            }
        }
    }

    fn start(&self, run: Claimed, received: Instant) {
        if !lock(&self.shared.running).insert(run.id) {
            self.shared.probes_skipped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(monitor = %run.id, "previous probe still running; skipping this slot");
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            // Only this loop takes permits, and it claimed no more than
            // were free.
            lock(&self.shared.running).remove(&run.id);
            return;
        };
        let guard = Running::new(self.shared.clone(), run.id);
        let platform = self.platform.clone();
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // On the database's clock, like the schedule and retention.
            let at = run.claimed_at + received.elapsed();
            let late = (at - run.scheduled).as_seconds_f64().max(0.0);
            guard.started(late * 1000.0);
            let spec = run.probe.0;
            let sources = run.sources.0;
            // A probe that started finishes at shutdown too (the writer
            // waits a moment for it): its target saw the request.
            let outcomes = probe_all(&platform, &spec, &sources).await;
            for (source, outcome) in outcomes {
                writer
                    .send(Recorded {
                        monitor: run.id,
                        source,
                        at,
                        outcome,
                    })
                    .await;
            }
        });
    }
}

/// Claims up to $1 due monitors and moves each to its next slot on its
/// grid, `t ≡ offset (mod interval)` in milliseconds with the offset a
/// stable hash of the id: the first slot at least half an interval after
/// now, so the run at creation (due at once) is not followed by another
/// moments later, and a late run skips a slot instead of catching up.
const CLAIM: &str = "
WITH due AS (
    SELECT id, next_run_at AS scheduled,
           greatest(interval_seconds, $2)::bigint * 1000 AS period
    FROM monitors
    WHERE NOT paused AND next_run_at <= now()
    ORDER BY next_run_at
    LIMIT $1
    FOR NO KEY UPDATE SKIP LOCKED
), slots AS (
    SELECT id, scheduled, period,
           (hashtextextended(id::text, 0) & 9223372036854775807) % period AS offset_ms,
           floor(extract(epoch FROM now()) * 1000)::bigint + period / 2 AS earliest_ms
    FROM due
)
UPDATE monitors m
SET next_run_at = to_timestamp(
        (s.earliest_ms + ((s.offset_ms - s.earliest_ms) % s.period + s.period) % s.period)::float8
        / 1000)
FROM slots s
WHERE m.id = s.id
RETURNING m.id, m.probe, m.sources, s.scheduled, now() AS claimed_at";

/// Runs the probe from every source at once; one outcome per source.
async fn probe_all(
    platform: &Platform,
    spec: &ProbeSpec,
    sources: &[SourceRef],
) -> Vec<(Option<HostId>, ProbeOutcome)> {
    let timeout = probe_timeout(spec);
    if let [source] = sources {
        return vec![probe_one(platform.clone(), spec.clone(), *source, timeout).await];
    }
    // Several sources: each its own task, so a slow one delays no other.
    let mut set = tokio::task::JoinSet::new();
    for (i, source) in sources.iter().enumerate() {
        let run = probe_one(platform.clone(), spec.clone(), *source, timeout);
        set.spawn(async move { (i, run.await) });
    }
    let mut outcomes: Vec<Option<(Option<HostId>, ProbeOutcome)>> = vec![None; sources.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, outcome)) => outcomes[i] = Some(outcome),
            Err(e) => tracing::warn!(error = %e, "a monitoring probe panicked"),
        }
    }
    outcomes.into_iter().flatten().collect()
}

async fn probe_one(
    platform: Platform,
    spec: ProbeSpec,
    source: SourceRef,
    timeout: Duration,
) -> (Option<HostId>, ProbeOutcome) {
    match source {
        SourceRef::Builtin => {
            let outcome =
                tokio::time::timeout(timeout, super::probe::run_builtin(&platform, &spec))
                    .await
                    .unwrap_or_else(|_| {
                        ProbeOutcome::failed(format!("no answer within {} ms", timeout.as_millis()))
                    });
            (None, outcome)
        }
        SourceRef::Agent { host } => (
            Some(host),
            agent_probe(&platform, host, &spec, timeout).await,
        ),
    }
}

/// Asks the host's agent to run the probe. Errors do not repeat the host:
/// the stored result's source names it.
async fn agent_probe(
    platform: &Platform,
    host: HostId,
    spec: &ProbeSpec,
    timeout: Duration,
) -> ProbeOutcome {
    use crate::hosts::hub::HubError;
    match platform.hub().probe(host, spec, timeout).await {
        Ok(outcome) => outcome,
        Err(HubError::Offline) => ProbeOutcome::failed("the agent is offline"),
        Err(HubError::Disconnected) => {
            ProbeOutcome::failed("the agent disconnected during the probe")
        }
        Err(HubError::Timeout(_)) => ProbeOutcome::failed(format!(
            "the agent did not answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// How long the engine waits for one probe.
fn probe_timeout(spec: &ProbeSpec) -> Duration {
    let ms = match spec {
        ProbeSpec::Http(p) => p.timeout_ms,
        ProbeSpec::Tls(p) => p.timeout_ms,
        ProbeSpec::Tcp(p) => p.timeout_ms,
        ProbeSpec::Dns(p) => p.timeout_ms,
        ProbeSpec::Kubernetes(p) => p.timeout_ms,
        ProbeSpec::Host(_) => 10_000,
    };
    Duration::from_millis(u64::from(ms.max(1))) + TIMEOUT_GRACE
}

/// Marks a monitor as running here until dropped (also when the probe
/// panicked).
struct Running {
    shared: Arc<Shared>,
    monitor: MonitorId,
}

impl Running {
    fn new(shared: Arc<Shared>, monitor: MonitorId) -> Self {
        shared.probes_in_flight.fetch_add(1, Ordering::Relaxed);
        Self { shared, monitor }
    }

    /// The probe starts `late_ms` after its slot.
    fn started(&self, late_ms: f64) {
        self.shared.probes_started.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.jitter).record(late_ms);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.probes_in_flight.fetch_sub(1, Ordering::Relaxed);
        lock(&self.shared.running).remove(&self.monitor);
    }
}

/// A poisoned lock only means a probe panicked while holding it; the data
/// (a set, counters) is still sound.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
