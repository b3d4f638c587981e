//! Periodic reconcilers: loops that compare desired state with the world and
//! act. Every replica runs the loop, but a run only happens while holding a
//! PostgreSQL advisory lock named after the reconciler, so exactly one
//! replica runs each at a time. Each run is bounded by a timeout, logged, and
//! recorded in `reconciler_runs`.

use std::sync::Arc;
use std::time::Duration;

use protocol::ids::TaskId;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::engine::BoxFuture;

/// What a run did, for the log and the runs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileOutcome {
    pub message: String,
}

impl ReconcileOutcome {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

type RunFn = Arc<dyn Fn() -> BoxFuture<'static, Result<ReconcileOutcome, String>> + Send + Sync>;

#[derive(Clone)]
pub struct Reconciler {
    pub name: &'static str,
    pub interval: Duration,
    pub timeout: Duration,
    run: RunFn,
}

impl Reconciler {
    pub fn new<F, Fut>(name: &'static str, interval: Duration, timeout: Duration, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ReconcileOutcome, String>> + Send + 'static,
    {
        Self {
            name,
            interval,
            timeout,
            run: Arc::new(move || Box::pin(run())),
        }
    }
}

pub(crate) async fn run(
    reconciler: Reconciler,
    db: PgPool,
    replica: String,
    stop: CancellationToken,
) {
    // Every reconciler starts with the process; spread their first runs
    // over up to two seconds so they do not all ask the pool for a lock
    // connection and a working connection at the same moment.
    let spread = reconciler.interval.min(Duration::from_secs(2));
    let first = spread.mul_f64(rand::random::<f64>());
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + first, reconciler.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = run_once(&reconciler, &db, &replica).await {
            tracing::warn!(reconciler = reconciler.name, error = %e, "reconciler run could not be coordinated");
        }
    }
}

/// One run if this replica gets the lock; `Ok(false)` when another holds it.
pub async fn run_once(
    reconciler: &Reconciler,
    db: &PgPool,
    replica: &str,
) -> Result<bool, sqlx::Error> {
    let key = format!("reconciler:{}", reconciler.name);
    // Advisory locks belong to a session: lock and unlock on one connection.
    let mut conn = db.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(&key)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(false);
    }
    let started_at = OffsetDateTime::now_utc();
    let result = tokio::time::timeout(reconciler.timeout, (reconciler.run)()).await;
    let finished_at = OffsetDateTime::now_utc();
    let (outcome, message) = match result {
        Ok(Ok(done)) => ("succeeded", done.message),
        Ok(Err(error)) => ("failed", error),
        Err(_) => (
            "timed_out",
            format!("stopped after {:?}", reconciler.timeout),
        ),
    };
    let seconds = (finished_at - started_at).as_seconds_f64();
    match outcome {
        "succeeded" => tracing::debug!(
            reconciler = reconciler.name,
            seconds,
            message,
            "reconciler ran"
        ),
        _ => tracing::warn!(
            reconciler = reconciler.name,
            seconds,
            outcome,
            message,
            "reconciler run did not succeed"
        ),
    }
    let recorded = sqlx::query(
        "INSERT INTO reconciler_runs (id, name, replica, started_at, finished_at, outcome, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(TaskId::new().0)
    .bind(reconciler.name)
    .bind(replica)
    .bind(started_at)
    .bind(finished_at)
    .bind(outcome)
    .bind(&message)
    .execute(&mut *conn)
    .await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // Never hand a connection that may still hold the lock back to the
        // pool: closing the session releases it.
        conn.detach();
    }
    recorded?;
    Ok(true)
}

/// Keeps a day of reconciler runs.
pub fn prune_runs(db: PgPool) -> Reconciler {
    Reconciler::new(
        "reconciler_runs.prune",
        Duration::from_secs(3600),
        Duration::from_secs(60),
        move || {
            let db = db.clone();
            async move {
                let deleted = sqlx::query(
                    "DELETE FROM reconciler_runs WHERE started_at < now() - interval '1 day'",
                )
                .execute(&db)
                .await
                .map_err(|e| e.to_string())?;
                Ok(ReconcileOutcome::new(format!(
                    "deleted {} old runs",
                    deleted.rows_affected()
                )))
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Two replicas (two pools: two sessions) race for one reconciler: runs
    /// never overlap, and when one replica stops the other carries on.
    #[sqlx::test(migrator = "crate::db::MIGRATOR")]
    async fn one_replica_at_a_time(pool: sqlx::PgPool) {
        let active = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let reconciler = {
            let (active, overlaps) = (active.clone(), overlaps.clone());
            Reconciler::new(
                "test.exclusive",
                Duration::from_millis(20),
                Duration::from_secs(5),
                move || {
                    let (active, overlaps) = (active.clone(), overlaps.clone());
                    async move {
                        if active.fetch_add(1, Ordering::SeqCst) > 0 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        active.fetch_sub(1, Ordering::SeqCst);
                        Ok(ReconcileOutcome::new("ok"))
                    }
                },
            )
        };
        let other = sqlx::postgres::PgPoolOptions::new()
            .connect_with(pool.connect_options().as_ref().clone())
            .await
            .unwrap();
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let a = tokio::spawn(run(
            reconciler.clone(),
            pool.clone(),
            "a".into(),
            stop_a.clone(),
        ));
        let b = tokio::spawn(run(reconciler, other, "b".into(), stop_b.clone()));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stop_a.cancel();
        a.await.unwrap();
        let a_stopped = OffsetDateTime::now_utc();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop_b.cancel();
        b.await.unwrap();

        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        let runs: Vec<(String, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
            "SELECT replica, started_at, finished_at FROM reconciler_runs WHERE name = 'test.exclusive' ORDER BY started_at",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(runs.len() >= 10, "{} runs", runs.len());
        for pair in runs.windows(2) {
            assert!(
                pair[1].1 >= pair[0].2,
                "run at {} began before the previous ended",
                pair[1].1
            );
        }
        let after: Vec<&str> = runs
            .iter()
            .filter(|r| r.1 > a_stopped)
            .map(|r| r.0.as_str())
            .collect();
        assert!(
            !after.is_empty() && after.iter().all(|r| *r == "b"),
            "b carried on alone: {after:?}"
        );
    }

    #[sqlx::test(migrator = "crate::db::MIGRATOR")]
    async fn runs_are_bounded_and_failures_recorded(pool: sqlx::PgPool) {
        let slow = Reconciler::new(
            "test.slow",
            Duration::from_secs(60),
            Duration::from_millis(50),
            || async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(ReconcileOutcome::new("never"))
            },
        );
        let failing = Reconciler::new(
            "test.failing",
            Duration::from_secs(60),
            Duration::from_secs(1),
            || async { Err("the cloud is down".to_string()) },
        );
        assert!(run_once(&slow, &pool, "a").await.unwrap());
        assert!(run_once(&failing, &pool, "a").await.unwrap());
        let outcomes: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT name, outcome, message FROM reconciler_runs ORDER BY name")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(outcomes[0].0, "test.failing");
        assert_eq!(outcomes[0].1, "failed");
        assert_eq!(outcomes[0].2.as_deref(), Some("the cloud is down"));
        assert_eq!(outcomes[1].1, "timed_out");
        // The lock was released: the next run can take it.
        assert!(run_once(&failing, &pool, "b").await.unwrap());
    }
}
