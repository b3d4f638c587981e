//! What changes while you watch: a task's progress as server-sent events,
//! and the Prometheus metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use platform::Platform;
use platform::authz::{Actor, RequestMeta};
use platform::tasks::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use protocol::ids::TaskId;
use protocol::views::TaskView;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

#[derive(Clone)]
struct Live {
    platform: Platform,
    engine: Engine,
    metrics: Arc<Metrics>,
    metrics_token: Option<String>,
}

pub fn router(
    platform: Platform,
    engine: Engine,
    metrics_token: Option<String>,
) -> Router<crate::http::AppState> {
    let live = Live {
        platform,
        engine,
        metrics: Arc::new(Metrics::new()),
        metrics_token,
    };
    Router::new()
        .route("/api/tasks/{task}/events", get(task_events))
        .route("/metrics", get(metrics))
        .with_state(live)
}

pub(crate) async fn actor(
    platform: &Platform,
    session: &Session,
    ip: SocketAddr,
    headers: &HeaderMap,
) -> Result<Actor, Response> {
    let meta = RequestMeta {
        ip: Some(ip.ip()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    match app::server::account_of(platform, session).await {
        Ok(Some(account)) => Ok(account.actor(meta)),
        Ok(None) => Err(StatusCode::UNAUTHORIZED.into_response()),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

/// The task as JSON now, then again whenever it changes, until it finishes.
async fn task_events(
    State(live): State<Live>,
    Path(task): Path<TaskId>,
    session: Session,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    let actor = actor(&live.platform, &session, ip, &headers).await?;
    let first = platform::tasks::get(live.platform.db(), &actor, task)
        .await
        .map_err(|e| match e {
            platform::Error::NotFound => StatusCode::NOT_FOUND.into_response(),
            _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        })?;
    // Subscribe before the first read is sent, so no change falls between.
    let changes = live.engine.progress();
    let state = Watch {
        live,
        actor,
        task,
        changes,
        last: Some(first.clone()),
        pending: Some(first),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut w| async move {
        if w.done {
            return None;
        }
        let view = match w.pending.take() {
            Some(view) => view,
            None => w.next_change().await?,
        };
        w.done = view.state.is_finished();
        let event = Event::default()
            .event("task")
            .json_data(&view)
            .unwrap_or_default();
        Some((Ok(event), w))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Watch {
    live: Live,
    actor: Actor,
    task: TaskId,
    changes: tokio::sync::broadcast::Receiver<TaskId>,
    pending: Option<TaskView>,
    /// What was last sent, to send only changes.
    last: Option<TaskView>,
    done: bool,
}

/// How often a watcher re-reads a task run by another process.
const REREAD: Duration = Duration::from_millis(300);

impl Watch {
    /// Waits until the task looks different, and returns it. Changes made
    /// by this process are announced at once; others show up on a re-read.
    async fn next_change(&mut self) -> Option<TaskView> {
        loop {
            let woken = tokio::time::timeout(REREAD, async {
                loop {
                    match self.changes.recv().await {
                        Ok(id) if id == self.task => return true,
                        Ok(_) => continue,
                        // Missed some: re-read to be safe.
                        Err(RecvError::Lagged(_)) => return true,
                        Err(RecvError::Closed) => return false,
                    }
                }
            })
            .await;
            if woken == Ok(false) {
                return None;
            }
            let view = platform::tasks::get(self.live.platform.db(), &self.actor, self.task)
                .await
                .ok()?;
            if self.last.as_ref() != Some(&view) {
                self.last = Some(view.clone());
                return Some(view);
            }
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    kind: String,
    outcome: String,
}

struct Metrics {
    registry: Registry,
    queued: Family<KindLabel, Gauge>,
    running: Gauge,
    failed: Gauge,
    durations: Family<OutcomeLabels, Histogram>,
    /// Serialises scrapes: each drains the engine's observations.
    scrape: Mutex<()>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("loopback");
        let queued = Family::<KindLabel, Gauge>::default();
        let running = Gauge::default();
        let failed = Gauge::default();
        let durations = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ])
        });
        registry.register(
            "tasks_queued",
            "Tasks waiting to run, by kind",
            queued.clone(),
        );
        registry.register(
            "tasks_running",
            "Tasks being run by any replica",
            running.clone(),
        );
        registry.register(
            "tasks_failed",
            "Tasks that failed and were not retried",
            failed.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Time from claim to end of tasks finished by this replica",
            durations.clone(),
        );
        Self {
            registry,
            queued,
            running,
            failed,
            durations,
            scrape: Mutex::new(()),
        }
    }
}

async fn metrics(State(live): State<Live>, headers: HeaderMap) -> Response {
    if let Some(token) = &live.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let figures = match platform::tasks::queue_figures(live.platform.db()).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: queue figures unavailable");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let m = &live.metrics;
    let Ok(_guard) = m.scrape.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    m.queued.clear();
    for (kind, count) in figures.queued {
        m.queued.get_or_create(&KindLabel { kind }).set(count);
    }
    m.running.set(figures.running);
    m.failed.set(figures.failed);
    for o in live.engine.take_observations() {
        m.durations
            .get_or_create(&OutcomeLabels {
                kind: o.kind.to_string(),
                outcome: o.outcome.to_string(),
            })
            .observe(o.seconds);
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &m.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
