//! Task engine figures, printed: no-op tasks per second with one and two
//! server processes, enqueue-to-start latency (NOTIFY wake-up), and the
//! database load of idle workers.
//!
//! Run with `scripts/bench tasks` (starts PostgreSQL, builds in release).

use std::time::{Duration, Instant};

use platform::tasks::diagnostics::Noop;
use platform::tasks::{self, Target};
use sqlx::PgPool;

#[path = "../tests/support/mod.rs"]
mod support;

const WORKERS: &str = "32";

async fn portals(url: &str, count: usize) -> Vec<support::Portal> {
    let mut started = Vec::new();
    for _ in 0..count {
        let mut p = support::Launch::with_database(url.to_string())
            .arg("--task-workers")
            .arg(WORKERS)
            .arg("--db-max-connections")
            .arg("12")
            .spawn();
        p.ready().await;
        started.push(p);
    }
    started
}

async fn succeeded(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM tasks WHERE state = 'succeeded'")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn throughput(processes: usize, n: usize) -> f64 {
    let url = support::fresh_database().await;
    let running = portals(&url, processes).await;
    let db = PgPool::connect(&url).await.unwrap();
    let enqueue_started = Instant::now();
    let mut tx = db.begin().await.unwrap();
    for _ in 0..n {
        tasks::enqueue(&mut tx, &Noop {}, Target::platform(), None)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let enqueued = enqueue_started.elapsed();
    let started = Instant::now();
    while succeeded(&db).await < n as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not done in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "no-op tasks, {processes} process(es) × {WORKERS} workers: {n} in {:.2} s = {rate:.0} tasks/s (enqueued in one transaction in {:.2} s)",
        took.as_secs_f64(),
        enqueued.as_secs_f64()
    );
    drop(running);
    rate
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    throughput(1, 10_000).await;
    throughput(2, 10_000).await;

    // Latency from enqueue to a worker starting the task, one at a time, with
    // idle workers between (they must be woken by the notification).
    let url = support::fresh_database().await;
    let _running = portals(&url, 1).await;
    let db = PgPool::connect(&url).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let samples = 300;
    for i in 0..samples {
        let mut tx = db.begin().await.unwrap();
        tasks::enqueue(&mut tx, &Noop {}, Target::platform(), None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10 + (i * 7) % 20)).await;
    }
    while succeeded(&db).await < samples as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 FROM tasks",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    latencies.sort_by(f64::total_cmp);
    println!(
        "enqueue-to-start latency ({samples} tasks, idle workers woken by NOTIFY): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // Idle load: transactions this database sees while nothing is queued.
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let commits = |db: PgPool, name: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
        )
        .bind(name)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    // Backends flush their statistics lazily (up to 10 s late), and
    // autovacuum visits the churned tables: let both settle first.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = commits(db.clone(), name.clone()).await;
    let window = Duration::from_secs(60);
    tokio::time::sleep(window).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = commits(db.clone(), name.clone()).await;
    let per_second = (after - before - 1) as f64 / window.as_secs_f64();
    println!(
        "idle database load: {per_second:.2} queries/s for one process with {WORKERS} idle workers ({:.3} per worker; poll fallback every 5 s)",
        per_second / WORKERS.parse::<f64>().unwrap()
    );
}
