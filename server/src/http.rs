//! The HTTP surface: health probes, the Leptos app with its server functions,
//! and static assets.

use std::time::Duration;

use app::{App, shell};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use platform::Platform;
use platform::db::Readiness;
use serde_json::json;
use tower_http::trace::TraceLayer;

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

pub fn router(settings: &Settings, platform: Platform) -> Router {
    let leptos = leptos_options(settings);
    let state = AppState {
        leptos: leptos.clone(),
        platform: platform.clone(),
    };
    let context = move || provide_context(platform.clone());
    let routes = generate_route_list(App);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
