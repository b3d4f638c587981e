//! The HTTP surface: health probes, metrics, the REST API, live task
//! updates, the Leptos app with its server functions, and static assets;
//! behind the session layer and the cross-site guard.

use std::time::Duration;

use app::{App, shell};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use platform::Platform;
use platform::db::Readiness;
use platform::tasks::{Engine, ReconcileOutcome, Reconciler};
use serde_json::json;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use crate::config::Settings;

#[derive(Clone)]
pub struct AppState {
    leptos: LeptosOptions,
    platform: Platform,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

pub fn router(
    settings: &Settings,
    platform: Platform,
    engine: Engine,
    store: PostgresStore,
) -> Router {
    let leptos = leptos_options(settings);
    let guard = crate::guard::Guard::new(&settings.public_url);
    let sessions = sessions(store, &settings.public_url, settings.sessions.idle);
    let api = crate::api::router(platform.clone());
    let live = crate::live::router(platform.clone(), engine, settings.metrics_token.clone());
    let agents = crate::agents::router(
        platform.clone(),
        crate::agents::AgentSettings {
            heartbeat_interval: settings.hosts.heartbeat_interval,
            bundled_binary: Some(settings.hosts.agent_bin.clone()),
        },
    );
    let shells = crate::shell::router(platform.clone(), settings.hosts.shell_idle_timeout);
    let downloads =
        crate::downloads::router(platform.clone(), settings.workspaces.oidc_issuer.clone());
    let state = AppState {
        leptos: leptos.clone(),
        platform: platform.clone(),
    };
    let context = move || provide_context(platform.clone());
    let routes = generate_route_list(App);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest_service("/api/v1", api)
        .merge(live)
        .merge(downloads)
        .merge(agents)
        .merge(shells)
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(guard, crate::guard::check))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Browser sessions in PostgreSQL: HttpOnly, SameSite=Lax, Secure on https,
/// ending after `idle` without requests (the absolute lifetime is checked by
/// the app).
fn sessions(
    store: PostgresStore,
    public_url: &url::Url,
    idle: Duration,
) -> SessionManagerLayer<PostgresStore> {
    SessionManagerLayer::new(store)
        .with_name("loopback_session")
        .with_secure(public_url.scheme() == "https")
        .with_same_site(SameSite::Lax)
        .with_http_only(true)
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            i64::try_from(idle.as_secs()).unwrap_or(i64::MAX),
        )))
}

/// Deletes expired sessions hourly, from one replica.
pub fn session_sweeper(store: PostgresStore) -> Reconciler {
    Reconciler::new(
        "sessions.expired",
        Duration::from_secs(3600),
        Duration::from_secs(120),
        move || {
            let store = store.clone();
            async move {
                store.delete_expired().await.map_err(|e| e.to_string())?;
                Ok(ReconcileOutcome::new("expired sessions deleted"))
            }
        },
    )
}

fn leptos_options(settings: &Settings) -> LeptosOptions {
    let site_root = settings.site_root.display().to_string();
    if !settings.site_root.join("pkg").join("loopback.js").is_file() {
        tracing::warn!(
            site_root,
            "the built site was not found; pages will not be interactive until `cargo leptos build` has run"
        );
    }
    LeptosOptions::builder()
        .output_name("loopback")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(settings.listen)
        .build()
}

/// The process is up and serving HTTP.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The portal can do its work: the database answers and the schema is current.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let check = tokio::time::timeout(
        Duration::from_secs(3),
        platform::db::readiness(state.platform.db()),
    )
    .await;
    match check {
        Ok(Readiness::Ready { migrations }) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "migrations": migrations })),
        ),
        Ok(Readiness::MigrationsPending { pending }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "not_ready", "reason": "migrations pending", "pending": pending }),
            ),
        ),
        Ok(Readiness::DatabaseUnreachable { reason }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "not_ready", "reason": format!("database unreachable: {reason}") }),
            ),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": "database did not answer within 3 s" })),
        ),
    }
}
