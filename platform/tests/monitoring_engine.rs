//! The monitoring engine against a local HTTP target: results are written
//! at the monitor's interval and move the monitor's state; paused monitors
//! are not probed; two engines on one database (two replicas) never probe a
//! monitor twice in one slot; a restarted engine continues the schedule;
//! retention rolls completed hours up and deletes what is too old.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use platform::monitoring::engine::Engine;
use platform::monitoring::{self, Scope, Settings};
use platform::tenancy::{organizations, projects};
use protocol::ids::{MonitorId, ProjectId};
use protocol::views::PageRequest;
use protocol::views::monitoring::{
    HttpMethod, HttpProbe, MonitorState, NewMonitor, ProbeSpec, SourceRef, TimeRange,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// A local HTTP server that counts requests per path and answers with the
/// status set for the path (200 unless set).
#[derive(Clone, Default)]
struct Target {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    status: Arc<Mutex<HashMap<String, u16>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl Target {
    async fn start() -> Target {
        let target = Target::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *target.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let serving = target.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let target = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let path = req.uri().path().to_string();
                        *target.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let status = target.status.lock().unwrap().get(&path).copied();
                        async move {
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status.unwrap_or(200))
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        target
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.lock().unwrap().unwrap())
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn set_status(&self, path: &str, status: u16) {
        self.status.lock().unwrap().insert(path.into(), status);
    }
}

struct Estate {
    portal: platform::Platform,
    alice: platform::authz::Actor,
    project: ProjectId,
}

async fn estate(db: &PgPool) -> Estate {
    let portal = support::platform(db);
    portal.configure_monitoring(Settings {
        min_interval: Duration::from_secs(1),
    });
    let alice = support::actor(db, "alice@example.com").await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    let project = projects::create(db, &alice, org.id, "Web")
        .await
        .unwrap()
        .id;
    Estate {
        portal,
        alice,
        project,
    }
}

fn http_monitor(name: &str, url: String, paused: bool) -> NewMonitor {
    NewMonitor {
        name: name.into(),
        probe: ProbeSpec::Http(HttpProbe {
            method: HttpMethod::Get,
            url,
            expected_status: None,
            body_contains: None,
            json: None,
            headers: vec![],
            body: None,
            timeout_ms: 1000,
            follow_redirects: false,
        }),
        interval_seconds: 1,
        sources: vec![SourceRef::Builtin],
        conditions: vec![],
        channels: vec![],
        failure_threshold: 1,
        success_threshold: 1,
        repeat_interval_seconds: 3600,
        public: false,
        maintenance_opt_in: false,
        paused,
    }
}

async fn create(e: &Estate, name: &str, url: String, paused: bool) -> MonitorId {
    monitoring::create(
        &e.portal,
        &e.alice,
        Scope::Project(e.project),
        http_monitor(name, url, paused),
    )
    .await
    .unwrap()
    .id
}

async fn result_times(db: &PgPool, monitor: MonitorId) -> Vec<OffsetDateTime> {
    sqlx::query_scalar("SELECT at FROM monitor_results WHERE monitor_id = $1 ORDER BY at")
        .bind(monitor)
        .fetch_all(db)
        .await
        .unwrap()
}

/// No two runs of one monitor closer than half its (1 s) interval: each
/// slot ran once.
fn assert_once_per_slot(times: &[OffsetDateTime]) {
    for pair in times.windows(2) {
        let gap = (pair[1] - pair[0]).as_seconds_f64();
        assert!(gap > 0.5, "two runs {gap:.3} s apart: {times:?}");
    }
}

#[derive(sqlx::FromRow, Debug)]
struct Latest {
    state: MonitorState,
    state_since: Option<OffsetDateTime>,
    last_checked_at: Option<OffsetDateTime>,
    last_latency_ms: Option<f64>,
    last_error: Option<String>,
}

async fn latest(db: &PgPool, monitor: MonitorId) -> Latest {
    sqlx::query_as(
        "SELECT state, state_since, last_checked_at, last_latency_ms, last_error
         FROM monitors WHERE id = $1",
    )
    .bind(monitor)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Waits until `check` holds, up to `limit`.
async fn until<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn results_follow_the_interval_and_move_the_state(db: PgPool) {
    let e = estate(&db).await;
    let target = Target::start().await;
    let web = create(&e, "web", target.url("/web"), false).await;
    let paused = create(&e, "paused", target.url("/paused"), true).await;
    assert_eq!(latest(&db, web).await.state, MonitorState::Unknown);

    let stop = CancellationToken::new();
    let engine = Engine::spawn(e.portal.clone(), stop.clone());
    // The first run comes within a second of creation.
    until(Duration::from_secs(3), || async {
        latest(&db, web).await.state == MonitorState::Up
    })
    .await;
    let up = latest(&db, web).await;
    let up_since = up
        .state_since
        .expect("state_since set with the first result");
    assert!(up.last_checked_at.is_some());
    assert!(up.last_latency_ms.is_some_and(|l| l >= 0.0));
    assert_eq!(up.last_error, None);

    tokio::time::sleep(Duration::from_secs(4)).await;
    let times = result_times(&db, web).await;
    // 1 s interval over ~4.5 s (first run at creation, then on the grid).
    assert!(
        (4..=7).contains(&times.len()),
        "{} results: {times:?}",
        times.len()
    );
    assert_once_per_slot(&times);
    let still_up = latest(&db, web).await;
    assert_eq!(
        still_up.state_since,
        Some(up_since),
        "state_since moves only on change"
    );
    assert!(still_up.last_checked_at > up.last_checked_at);

    // Paused: never probed, nothing stored.
    assert_eq!(target.hits("/paused"), 0);
    assert!(result_times(&db, paused).await.is_empty());
    assert_eq!(latest(&db, paused).await.state, MonitorState::Unknown);

    // The target fails: the monitor goes down with the reason.
    target.set_status("/web", 503);
    until(Duration::from_secs(4), || async {
        latest(&db, web).await.state == MonitorState::Down
    })
    .await;
    let down = latest(&db, web).await;
    assert!(down.state_since.unwrap() > up_since);
    assert!(
        down.last_error
            .as_deref()
            .is_some_and(|e| e.contains("503")),
        "{down:?}"
    );
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM monitor_results WHERE monitor_id = $1 AND NOT ok AND error IS NOT NULL",
    )
    .bind(web)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(failed >= 1);

    // And recovers.
    target.set_status("/web", 200);
    until(Duration::from_secs(4), || async {
        latest(&db, web).await.state == MonitorState::Up
    })
    .await;
    let recovered = latest(&db, web).await;
    assert!(recovered.state_since.unwrap() > down.state_since.unwrap());
    assert_eq!(recovered.last_error, None);

    stop.cancel();
    engine.stopped().await;
    // Every request the target saw was stored.
    assert_eq!(target.hits("/web"), result_times(&db, web).await.len());
    let stats = engine.stats();
    assert!(stats.probes_started >= 6, "{stats:?}");
    assert_eq!(stats.results_dropped, 0, "{stats:?}");
    assert!(stats.jitter_p99_ms < 1000.0, "{stats:?}");
}

/// Two engines with their own platforms and pools (two replicas) on one
/// database.
#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn two_replicas_run_each_slot_once(db: PgPool) {
    let e = estate(&db).await;
    let target = Target::start().await;
    let mut monitors = Vec::new();
    for i in 0..20 {
        monitors.push((
            format!("/m{i}"),
            create(&e, &format!("m{i}"), target.url(&format!("/m{i}")), false).await,
        ));
    }
    let other_pool = sqlx::postgres::PgPoolOptions::new()
        .connect_with(db.connect_options().as_ref().clone())
        .await
        .unwrap();
    let other = support::platform(&other_pool);
    other.configure_monitoring(Settings {
        min_interval: Duration::from_secs(1),
    });
    let stop = CancellationToken::new();
    let a = Engine::spawn(e.portal.clone(), stop.clone());
    // Half a scheduler tick apart, so both find due monitors.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = Engine::spawn(other, stop.clone());
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    a.stopped().await;
    b.stopped().await;

    let (sa, sb) = (a.stats(), b.stats());
    assert!(
        sa.probes_started > 0 && sb.probes_started > 0,
        "both replicas probe: {sa:?} {sb:?}"
    );
    let mut total = 0;
    for (path, id) in &monitors {
        let times = result_times(&db, *id).await;
        assert!(
            (4..=7).contains(&times.len()),
            "{path}: {} results",
            times.len()
        );
        assert_once_per_slot(&times);
        // Every request the target saw is a stored result: no slot probed twice.
        assert_eq!(target.hits(path), times.len(), "{path}");
        total += times.len() as u64;
    }
    assert_eq!(sa.results_written + sb.results_written, total);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_restarted_engine_continues_the_schedule(db: PgPool) {
    let e = estate(&db).await;
    let target = Target::start().await;
    let web = create(&e, "web", target.url("/web"), false).await;

    let stop = CancellationToken::new();
    let first = Engine::spawn(e.portal.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.cancel();
    first.stopped().await;
    let before = result_times(&db, web).await;
    assert!(before.len() >= 2, "{before:?}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop = CancellationToken::new();
    let second = Engine::spawn(e.portal.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.cancel();
    second.stopped().await;
    let all = result_times(&db, web).await;
    assert!(all.len() >= before.len() + 2, "{before:?} then {all:?}");
    assert_once_per_slot(&all);
    // The first run after the restart is the slot due then, not a new
    // schedule: at most one interval (plus the scheduler's tick) later.
    let after = all[before.len()];
    let gap = (after - *before.last().unwrap()).as_seconds_f64();
    assert!(gap < 2.0, "{gap:.3} s between the runs around the restart");
    assert_eq!(second.stats().results_dropped, 0);
}

/// Hours ago, checks, failures, latency avg/min/max.
type RollupRow = (f64, i32, i32, Option<f64>, Option<f64>, Option<f64>);

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn retention_rolls_up_and_deletes(db: PgPool) {
    let e = estate(&db).await;
    let web = create(&e, "web", "http://127.0.0.1:9/".into(), true).await;
    // Raw results: 8 days old (deleted), and two completed hours.
    let insert = |hours_ago: f64, ok: bool, latency: f32| {
        let db = db.clone();
        async move {
            sqlx::query(
                "INSERT INTO monitor_results (monitor_id, at, ok, latency_ms, error)
                 VALUES ($1, date_trunc('hour', now()) - make_interval(secs => $2 * 3600), $3, $4,
                         CASE WHEN $3 THEN NULL ELSE 'down' END)",
            )
            .bind(web)
            .bind(hours_ago)
            .bind(ok)
            .bind(latency)
            .execute(&db)
            .await
            .unwrap();
        }
    };
    insert(8.0 * 24.0, true, 5.0).await;
    insert(8.0 * 24.0 - 0.5, true, 5.0).await;
    // Hour -3: three results, one failed.
    insert(2.9, true, 10.0).await;
    insert(2.5, true, 30.0).await;
    insert(2.1, false, 0.0).await;
    // Hour -2: two passing.
    insert(1.9, true, 20.0).await;
    insert(1.1, true, 40.0).await;
    // A rollup older than 90 days.
    sqlx::query(
        "INSERT INTO monitor_rollups (monitor_id, hour, checks, failures)
         VALUES ($1, date_trunc('hour', now() - interval '91 days'), 10, 0)",
    )
    .bind(web)
    .execute(&db)
    .await
    .unwrap();

    let retention = monitoring::results::retention(e.portal.clone());
    for _ in 0..2 {
        // Twice: the second run must change nothing (idempotent).
        assert!(
            platform::tasks::reconcile_once(&retention, &db, "test")
                .await
                .unwrap()
        );
        let rollups: Vec<RollupRow> = sqlx::query_as(
            "SELECT extract(epoch FROM date_trunc('hour', now()) - hour)::float8 / 3600,
                    checks, failures, latency_avg_ms, latency_min_ms, latency_max_ms
             FROM monitor_rollups WHERE monitor_id = $1 ORDER BY hour",
        )
        .bind(web)
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(
            rollups,
            vec![
                (3.0, 3, 1, Some(20.0), Some(10.0), Some(30.0)),
                (2.0, 2, 0, Some(30.0), Some(20.0), Some(40.0)),
            ]
        );
        let raw: i64 =
            sqlx::query_scalar("SELECT count(*) FROM monitor_results WHERE monitor_id = $1")
                .bind(web)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(
            raw, 5,
            "results older than 7 days are deleted, the rest kept"
        );
    }

    // Uptime reads the rollups (30 d) and the raw results (24 h).
    let view = monitoring::get(&e.portal, &e.alice, web).await.unwrap();
    let expected = 4.0 * 100.0 / 5.0;
    assert_eq!(view.uptime.day, Some(expected));
    assert_eq!(view.uptime.week, Some(expected));
    assert_eq!(view.uptime.month, Some(expected));
    // A result after the rolled hours counts once.
    insert(-0.0, false, 0.0).await;
    let view = monitoring::get(&e.portal, &e.alice, web).await.unwrap();
    let expected = 4.0 * 100.0 / 6.0;
    assert_eq!(view.uptime.month, Some(expected));
    assert_eq!(view.uptime.day, Some(expected));

    // Charts: 120 buckets from raw results (24 h) or rollups plus the
    // newest raw results (30 d); a bucket with a failure is down.
    for range in [TimeRange::Day, TimeRange::Month] {
        let series = monitoring::series(&e.portal, &e.alice, web, range)
            .await
            .unwrap();
        assert_eq!(series.points.len(), 120, "{range:?}");
        let checks: u32 = series.points.iter().map(|p| p.checks).sum();
        let failures: u32 = series.points.iter().map(|p| p.failures).sum();
        assert_eq!((checks, failures), (6, 2), "{range:?}");
        assert!(
            series.states.iter().any(|s| s.state == MonitorState::Down),
            "{range:?}: {:?}",
            series.states
        );
        assert_eq!(series.states.first().unwrap().from, series.from);
        assert_eq!(series.states.last().unwrap().to, series.to);
    }
    let page = monitoring::results(&e.portal, &e.alice, web, PageRequest::new(1, 4))
        .await
        .unwrap();
    assert_eq!(page.total, 6);
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.items[0].source, "Portal");
    assert!(!page.items[0].outcome.ok);
    assert!(
        page.items.windows(2).all(|w| w[0].at >= w[1].at),
        "newest first"
    );
}

/// Monitors created together spread over their interval instead of all
/// running in the same second after the first run.
#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn monitors_created_together_spread_over_the_interval(db: PgPool) {
    let e = estate(&db).await;
    let target = Target::start().await;
    for i in 0..100 {
        let mut new = http_monitor(&format!("m{i}"), target.url("/spread"), false);
        new.interval_seconds = 10;
        monitoring::create(&e.portal, &e.alice, Scope::Project(e.project), new)
            .await
            .unwrap();
    }
    let stop = CancellationToken::new();
    let engine = Engine::spawn(e.portal.clone(), stop.clone());
    until(Duration::from_secs(10), || async {
        target.hits("/spread") >= 100
    })
    .await;
    stop.cancel();
    engine.stopped().await;
    let seconds: Vec<f64> =
        sqlx::query_scalar("SELECT (extract(epoch FROM next_run_at) % 10)::float8 FROM monitors")
            .fetch_all(&db)
            .await
            .unwrap();
    let mut per_second = [0usize; 10];
    for s in &seconds {
        per_second[(*s as usize).min(9)] += 1;
    }
    // Ten per second on average; a stable hash stays well below all-at-once.
    assert!(per_second.iter().all(|n| *n <= 25), "{per_second:?}");
    assert_eq!(target.hits("/spread"), 100, "one run each at creation");
}
