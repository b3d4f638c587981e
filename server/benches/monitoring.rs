//! Monitoring engine figures, printed: 5,000 HTTP monitors at a 30 s
//! interval probed by one engine against a local target, over three
//! intervals after a warm-up: the engine process's CPU and memory, probes
//! per second, start jitter (p50/p99/max) and sustained result writes; then
//! a burst of 100,000 results pushed straight through the batched writer.
//!
//! The target is this binary again in a child process
//! (`LOOPBACK_BENCH_TARGET=1`), so its CPU is not counted as the engine's.
//! PostgreSQL runs outside too (its CPU is shown with the rest of the
//! machine's).
//!
//! Run with `scripts/bench monitoring` (starts PostgreSQL, release build).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use platform::monitoring::Recorded;
use platform::monitoring::engine::{Engine, Stats};
use platform::tenancy::{organizations, projects};
use protocol::ids::MonitorId;
use protocol::views::monitoring::{HttpMethod, HttpProbe, ProbeOutcome, ProbeSpec};
use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

#[path = "../tests/support/mod.rs"]
mod support;

const MONITORS: usize = 5_000;
const INTERVAL_SECONDS: i32 = 30;
/// Time for the creation burst (all due at once) and one full cycle.
const WARMUP: Duration = Duration::from_secs(40);
/// Three intervals.
const WINDOW: Duration = Duration::from_secs(90);
const BURST: usize = 100_000;
const TARGET_ENV: &str = "LOOPBACK_BENCH_TARGET";

fn main() {
    if std::env::var_os(TARGET_ENV).is_some() {
        target();
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench());
}

/// The probed side: answers every GET with 200 and a small body.
fn target() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the target");
            println!("{}", listener.local_addr().expect("target address"));
            let app = axum::Router::new().fallback(|| async { "ok" });
            axum::serve(listener, app).await.expect("serve the target");
        });
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / ticks
}

/// A `Vm…` line of /proc/self/status, in MiB.
fn vm_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Busy and total jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(2.0, |n| n.get() as f64)
}

fn jitter_line(s: &Stats) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        s.jitter_p50_ms, s.jitter_p99_ms, s.jitter_max_ms
    )
}

async fn bench() {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(TARGET_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the target process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("target stdout"))
        .read_line(&mut line)
        .expect("target address");
    let target = line.trim().to_string();

    let url = support::fresh_database().await;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap();
    platform::db::migrate(&db).await.unwrap();
    let portal = platform::Platform::new(
        db.clone(),
        platform::SecretBox::from_key([7; 32]),
        url::Url::parse("http://localhost:3000").unwrap(),
        Default::default(),
    )
    .unwrap();
    let ids = monitors(&db, &target).await;

    let stop = CancellationToken::new();
    let started = Instant::now();
    let engine = Engine::spawn(portal.clone(), stop.clone());
    // The first cycle: every monitor is due at once (created together),
    // then they spread over the interval.
    tokio::time::sleep(Duration::from_secs(u64::from(
        INTERVAL_SECONDS.unsigned_abs(),
    )))
    .await;
    let first = engine.stats();
    println!(
        "first cycle ({MONITORS} monitors due at once): {} probes, jitter {}",
        first.probes_started,
        jitter_line(&first)
    );
    tokio::time::sleep(WARMUP.saturating_sub(started.elapsed())).await;

    engine.reset_jitter();
    let before = engine.stats();
    let cpu_before = cpu_seconds();
    let machine_before = machine_jiffies();
    let window_started = Instant::now();
    let mut rss_peak: f64 = 0.0;
    while window_started.elapsed() < WINDOW {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_peak = rss_peak.max(vm_mib("VmRSS:"));
    }
    let seconds = window_started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu_before) / seconds;
    let machine_after = machine_jiffies();
    let machine = (machine_after.0 - machine_before.0) as f64
        / (machine_after.1 - machine_before.1).max(1) as f64
        * cores();
    let after = engine.stats();
    let probes = (after.probes_started - before.probes_started) as f64 / seconds;
    let written = (after.results_written - before.results_written) as f64 / seconds;
    let batches = after.write_batches - before.write_batches;
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_results WHERE NOT ok")
        .fetch_one(&db)
        .await
        .unwrap();
    println!(
        "steady state over {seconds:.0} s ({MONITORS} HTTP monitors every {INTERVAL_SECONDS} s):"
    );
    println!(
        "  engine process CPU {cpu:.3} cores; whole machine {machine:.2} of {:.0} cores (PostgreSQL, target and others included)",
        cores()
    );
    println!("  RSS {:.1} MiB (peak {rss_peak:.1} MiB)", vm_mib("VmRSS:"));
    println!(
        "  probes {probes:.1}/s (expected {:.1}/s), skipped (still running) {}, in flight now {}",
        MONITORS as f64 / f64::from(INTERVAL_SECONDS),
        after.probes_skipped,
        after.probes_in_flight
    );
    println!("  jitter {}", jitter_line(&after));
    println!(
        "  results written {written:.1} rows/s in {batches} batches ({:.1} rows/batch), failed results stored {failed}, dropped {}",
        (after.results_written - before.results_written) as f64 / batches.max(1) as f64,
        after.results_dropped
    );
    stop.cancel();
    engine.stopped().await;

    // The writer alone: no probes (all paused), results pushed as fast as
    // the queue takes them.
    sqlx::query("UPDATE monitors SET paused = true")
        .execute(&db)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let engine = Engine::spawn(portal.clone(), stop.clone());
    let at = OffsetDateTime::now_utc();
    let burst_started = Instant::now();
    let cpu_before = cpu_seconds();
    for i in 0..BURST {
        engine
            .record(Recorded {
                monitor: ids[i % ids.len()],
                source: None,
                at: at + time::Duration::milliseconds((i / ids.len()) as i64),
                outcome: ProbeOutcome {
                    ok: i % 50 != 0,
                    latency_ms: Some(1.0 + (i % 100) as f64),
                    ..ProbeOutcome::default()
                },
            })
            .await;
    }
    while engine.stats().results_written + engine.stats().results_dropped < BURST as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = burst_started.elapsed().as_secs_f64();
    let burst = engine.stats();
    println!(
        "writer burst: {BURST} results in {took:.2} s = {:.0} rows/s ({} batches, {:.2} s in database round trips, {} dropped), engine process CPU {:.2} cores",
        BURST as f64 / took,
        burst.write_batches,
        burst.write_seconds,
        burst.results_dropped,
        (cpu_seconds() - cpu_before) / took
    );
    stop.cancel();
    engine.stopped().await;
    let _ = child.kill();
    let _ = child.wait();
}

/// Inserts the monitors as `monitoring::create` would (all due now), each
/// with the default "status is down" condition, in one statement each.
async fn monitors(db: &PgPool, target: &str) -> Vec<MonitorId> {
    let alice = support::signed_up(db, "alice@example.com", false).await;
    let org = organizations::create(db, &alice, "Bench").await.unwrap();
    let project = projects::create(db, &alice, org.id, "Monitors")
        .await
        .unwrap()
        .id;
    let ids: Vec<MonitorId> = (0..MONITORS).map(|_| MonitorId::new()).collect();
    let names: Vec<String> = (0..MONITORS).map(|i| format!("m{i}")).collect();
    let probes: Vec<Json<ProbeSpec>> = (0..MONITORS)
        .map(|i| {
            Json(ProbeSpec::Http(HttpProbe {
                method: HttpMethod::Get,
                url: format!("http://{target}/m{i}"),
                expected_status: None,
                body_contains: None,
                json: None,
                headers: vec![],
                body: None,
                timeout_ms: 5000,
                follow_redirects: false,
            }))
        })
        .collect();
    sqlx::query(
        r#"INSERT INTO monitors (id, organization_id, project_id, name, kind, probe,
               interval_seconds, sources, failure_threshold, success_threshold,
               repeat_interval_seconds, next_run_at)
           SELECT id, $4, $5, name, 'http', probe, $6, '[{"type":"builtin"}]', 3, 2, 14400, now()
           FROM UNNEST($1::uuid[], $2::text[], $3::jsonb[]) AS m(id, name, probe)"#,
    )
    .bind(ids.iter().map(|m| m.0).collect::<Vec<_>>())
    .bind(&names)
    .bind(&probes)
    .bind(org.id)
    .bind(project)
    .bind(INTERVAL_SECONDS)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO monitor_conditions (id, monitor_id, position, parameter, operator, threshold,
             for_seconds, severity)
         SELECT gen_random_uuid(), id, 0, 'status', 'eq', 0, 0, 'critical' FROM monitors",
    )
    .execute(db)
    .await
    .unwrap();
    ids
}
