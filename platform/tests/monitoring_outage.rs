//! End to end, in real time: the engine probes a local HTTP target that
//! breaks and recovers; the alert fires once after the for-duration and a
//! local webhook receiver gets one signed notification, a repeat after the
//! repeat interval, and the resolution; a silence then holds back a second
//! outage.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use platform::monitoring::engine::Engine;
use platform::monitoring::{self, Scope, Settings, alerts, notify};
use platform::tenancy::{organizations, projects};
use protocol::ids::MonitorId;
use protocol::views::Verification;
use protocol::views::monitoring::{
    AlertState, ChannelConfig, HttpMethod, HttpProbe, NewChannel, NewCondition, NewMonitor,
    NewSilence, NotificationMessage, ProbeSpec, SIGNATURE_HEADER, SourceRef,
};
use sha2::Sha256;
use sqlx::PgPool;
use support::{actor, operator, platform};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "outage-test-signing-secret";

/// A target whose health the test switches.
async fn target(healthy: Arc<AtomicBool>) -> String {
    async fn health(State(healthy): State<Arc<AtomicBool>>) -> (StatusCode, &'static str) {
        if healthy.load(Ordering::SeqCst) {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "broken")
        }
    }
    let app = Router::new()
        .route("/health", get(health))
        .with_state(healthy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Webhook bodies received, each checked against its signature.
type Received = Arc<Mutex<Vec<NotificationMessage>>>;

async fn receiver() -> (Received, String) {
    async fn hook(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("sha256="))
            .and_then(|v| hex::decode(v).ok());
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let Some(signature) = signature else {
            return StatusCode::UNAUTHORIZED;
        };
        if mac.verify_slice(&signature).is_err() {
            return StatusCode::UNAUTHORIZED;
        }
        got.lock()
            .unwrap()
            .push(serde_json::from_slice(&body).expect("the body is a NotificationMessage"));
        StatusCode::NO_CONTENT
    }
    let got = Received::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

fn kinds(got: &Received) -> Vec<String> {
    got.lock().unwrap().iter().map(|m| m.kind.clone()).collect()
}

/// Polls `ready` every 100 ms until it holds; panics after `limit`.
async fn until<F, Fut>(what: &str, limit: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !ready().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alert_states(db: &PgPool, monitor: MonitorId) -> Vec<(AlertState, Option<String>)> {
    sqlx::query_as("SELECT state, suppressed FROM alerts WHERE monitor_id = $1 ORDER BY started_at")
        .bind(monitor)
        .fetch_all(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn an_outage_alerts_once_repeats_resolves_and_a_silence_holds_the_next_back(db: PgPool) {
    let portal = platform(&db);
    portal.configure_monitoring(Settings {
        min_interval: Duration::from_secs(1),
    });
    let op = operator(&db).await;
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web")
        .await
        .unwrap()
        .id;
    let healthy = Arc::new(AtomicBool::new(true));
    let url = target(healthy.clone()).await;
    let (got, hook_url) = receiver().await;
    let channel = notify::create_channel(
        &portal,
        &alice,
        org.id,
        NewChannel {
            name: "hook".into(),
            config: ChannelConfig::Webhook {
                url: hook_url,
                secret: SECRET.into(),
            },
        },
    )
    .await
    .unwrap()
    .id;
    let monitor = monitoring::create(
        &portal,
        &alice,
        Scope::Project(project),
        NewMonitor {
            name: "api".into(),
            probe: ProbeSpec::Http(HttpProbe {
                method: HttpMethod::Get,
                url,
                expected_status: None,
                body_contains: None,
                json: None,
                headers: vec![],
                body: None,
                timeout_ms: 800,
                follow_redirects: false,
            }),
            interval_seconds: 1,
            sources: vec![SourceRef::Builtin],
            conditions: vec![NewCondition {
                for_seconds: 3,
                ..NewCondition::down()
            }],
            channels: vec![channel],
            failure_threshold: 3,
            success_threshold: 2,
            repeat_interval_seconds: 5,
            public: false,
            maintenance_opt_in: false,
            paused: false,
        },
    )
    .await
    .unwrap()
    .id;

    let stop = CancellationToken::new();
    let engine = Engine::spawn(portal.clone(), stop.clone());
    // The reconcilers as the server runs them, but four times a second.
    let background = {
        let (portal, db, stop) = (portal.clone(), db.clone(), stop.clone());
        tokio::spawn(async move {
            let repeats = alerts::reconciler(portal.clone());
            let delivery = notify::delivery(portal.clone());
            while !stop.is_cancelled() {
                platform::tasks::reconcile_once(&repeats, &db, "test")
                    .await
                    .unwrap();
                platform::tasks::reconcile_once(&delivery, &db, "test")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let state = |db: PgPool| async move {
        sqlx::query_scalar::<_, String>("SELECT state::text FROM monitors WHERE id = $1")
            .bind(monitor)
            .fetch_one(&db)
            .await
            .unwrap()
    };
    until("the monitor to be up", Duration::from_secs(10), || {
        let db = db.clone();
        async move { state(db).await == "up" }
    })
    .await;
    assert!(alert_states(&db, monitor).await.is_empty());

    // Outage: one alert, one signed webhook, not before the for-duration.
    healthy.store(false, Ordering::SeqCst);
    let broken_at = Instant::now();
    until("the firing webhook", Duration::from_secs(15), || {
        let got = got.clone();
        async move { !got.lock().unwrap().is_empty() }
    })
    .await;
    let fired_after = broken_at.elapsed();
    assert!(
        fired_after >= Duration::from_secs(3),
        "fired after {fired_after:?}, before the for-duration"
    );
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, "firing");
        assert_eq!(got[0].monitor, Some(monitor));
        assert_eq!(got[0].alerts.len(), 1);
        assert_eq!(got[0].alerts[0].summary, "status is down for 3s");
    }
    assert_eq!(
        alert_states(&db, monitor).await,
        [(AlertState::Firing, None)]
    );

    // Still down: the repeat after five seconds, and only then.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(kinds(&got), ["firing"]);
    until("the repeat webhook", Duration::from_secs(6), || {
        let got = got.clone();
        async move { got.lock().unwrap().len() >= 2 }
    })
    .await;
    assert_eq!(kinds(&got), ["firing", "repeat"]);

    // Recovery: resolved after two passing results, and said so.
    healthy.store(true, Ordering::SeqCst);
    until("the resolution webhook", Duration::from_secs(8), || {
        let got = got.clone();
        async move { got.lock().unwrap().len() >= 3 }
    })
    .await;
    assert_eq!(kinds(&got), ["firing", "repeat", "resolved"]);
    assert_eq!(got.lock().unwrap()[2].alerts[0].state, AlertState::Resolved);
    assert_eq!(
        alert_states(&db, monitor).await,
        [(AlertState::Resolved, None)],
        "exactly one alert for the outage"
    );

    // A silence, then a second outage: it fires, shows why it is quiet,
    // and nothing is sent.
    alerts::create_silence(
        &portal,
        &alice,
        project,
        NewSilence {
            monitor: None,
            duration_seconds: 600,
            comment: "planned work".into(),
        },
    )
    .await
    .unwrap();
    healthy.store(false, Ordering::SeqCst);
    until("the second alert to fire", Duration::from_secs(15), || {
        let db = db.clone();
        async move {
            alert_states(&db, monitor)
                .await
                .iter()
                .any(|(s, _)| *s == AlertState::Firing)
        }
    })
    .await;
    let second = alert_states(&db, monitor).await;
    assert!(
        second[1]
            .1
            .as_deref()
            .is_some_and(|s| s.ends_with(": planned work")),
        "{second:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kinds(&got), ["firing", "repeat", "resolved"]);

    stop.cancel();
    engine.stopped().await;
    background.await.unwrap();
}
