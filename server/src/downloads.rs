//! Files the browser downloads: workspace kubeconfigs. Session-authorised
//! like the pages; each download is audit-logged by the platform.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::Platform;
use platform::workspaces::Access;
use protocol::ids::WorkspaceId;
use tower_sessions::Session;

#[derive(Clone)]
struct Downloads {
    platform: Platform,
    oidc_issuer: String,
}

pub fn router(platform: Platform, oidc_issuer: String) -> Router<crate::http::AppState> {
    Router::new()
        .route(
            "/api/workspaces/{workspace}/kubeconfig/{access}",
            get(kubeconfig),
        )
        .with_state(Downloads {
            platform,
            oidc_issuer,
        })
}

async fn kubeconfig(
    State(d): State<Downloads>,
    Path((workspace, access)): Path<(WorkspaceId, String)>,
    session: Session,
    ConnectInfo(ip): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let access = match access.as_str() {
        "admin" => Access::Admin,
        "oidc" => Access::Oidc,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let actor = match crate::live::actor(&d.platform, &session, ip, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    match platform::workspaces::kubeconfig(&d.platform, &actor, workspace, access, &d.oidc_issuer)
        .await
    {
        Ok((file, yaml)) => {
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/yaml"),
                    ),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                yaml,
            )
                .into_response()
        }
        Err(e) => {
            let status = match &e {
                platform::Error::NotFound => StatusCode::NOT_FOUND,
                platform::Error::Forbidden(_) => StatusCode::FORBIDDEN,
                platform::Error::Unauthenticated => StatusCode::UNAUTHORIZED,
                platform::Error::Conflict(_) | platform::Error::OrganizationNotUsable(_) => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(error = %e, "kubeconfig download failed");
                return (status, "the kubeconfig could not be produced").into_response();
            }
            (status, e.to_string()).into_response()
        }
    }
}
