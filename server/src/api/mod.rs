//! The REST API at /api/v1: organizations, projects, members, invitations and
//! account API keys, for automation with an account API key
//! (`Authorization: Bearer lbk_…`). The OpenAPI document is generated from
//! these handlers and served at /api/v1/openapi.json.

mod error;
mod hosts;
mod keys;
mod load_balancers;
mod monitoring;
mod notifications;
mod tenancy;
mod workspaces;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::{Json, Router};
use platform::Platform;
use platform::authz::{Actor, RequestMeta};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ErrorBody};

#[derive(Clone)]
pub struct Api {
    platform: Platform,
}

impl Api {
    fn db(&self) -> &sqlx::PgPool {
        self.platform.db()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Loopback API", description = "Organizations, projects, members and API keys. Authenticate with an account API key: `Authorization: Bearer lbk_…`."),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lbk_…")
                    .build(),
            ),
        );
        // The in-cluster load balancer API takes the workspace API key
        // instead.
        components.add_security_scheme(
            "workspace_api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lbw_…")
                    .build(),
            ),
        );
    }
}

/// The REST routes and their OpenAPI document.
pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            tenancy::list_organizations,
            tenancy::create_organization
        ))
        .routes(routes!(
            tenancy::get_organization,
            tenancy::rename_organization
        ))
        .routes(routes!(tenancy::list_projects, tenancy::create_project))
        .routes(routes!(
            tenancy::get_project,
            tenancy::rename_project,
            tenancy::delete_project
        ))
        .routes(routes!(tenancy::list_members))
        .routes(routes!(tenancy::remove_member))
        .routes(routes!(tenancy::list_invitations, tenancy::invite))
        .routes(routes!(tenancy::revoke_invitation))
        .routes(routes!(
            workspaces::list_workspaces,
            workspaces::create_workspace
        ))
        .routes(routes!(
            workspaces::get_workspace,
            workspaces::delete_workspace
        ))
        .routes(routes!(hosts::list_hosts, hosts::order_host))
        .routes(routes!(hosts::get_host, hosts::delete_host))
        .routes(routes!(hosts::power_host))
        .routes(routes!(
            load_balancers::list_project_balancers,
            load_balancers::create_project_balancer
        ))
        .routes(routes!(
            load_balancers::list_workspace_balancers,
            load_balancers::create_workspace_balancer
        ))
        .routes(routes!(
            load_balancers::get_balancer,
            load_balancers::update_balancer,
            load_balancers::delete_balancer
        ))
        .routes(routes!(load_balancers::cluster_list))
        .routes(routes!(
            load_balancers::cluster_get,
            load_balancers::cluster_put,
            load_balancers::cluster_delete
        ))
        .routes(routes!(
            monitoring::list_project_monitors,
            monitoring::create_project_monitor
        ))
        .routes(routes!(
            monitoring::list_workspace_monitors,
            monitoring::create_workspace_monitor
        ))
        .routes(routes!(
            monitoring::get_monitor,
            monitoring::update_monitor,
            monitoring::delete_monitor
        ))
        .routes(routes!(monitoring::monitor_results))
        .routes(routes!(monitoring::monitor_series))
        .routes(routes!(monitoring::list_project_alerts))
        .routes(routes!(monitoring::get_alert))
        .routes(routes!(monitoring::acknowledge_alert))
        .routes(routes!(
            monitoring::list_silences,
            monitoring::create_silence
        ))
        .routes(routes!(monitoring::expire_silence))
        .routes(routes!(
            notifications::list_channels,
            notifications::create_channel
        ))
        .routes(routes!(
            notifications::update_channel,
            notifications::delete_channel
        ))
        .routes(routes!(notifications::test_channel))
        .routes(routes!(notifications::list_deliveries))
        .routes(routes!(notifications::retry_delivery))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
}

/// The API as a service to mount at /api/v1.
pub fn router(platform: Platform) -> Router {
    let (router, openapi) = routes().split_for_parts();
    let document = openapi.clone();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { Json(document.clone()) }),
        )
        .fallback(|| async { ApiError(platform::Error::NotFound) })
        .with_state(Api { platform })
}

/// The OpenAPI document, for tests and tooling.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The caller, authenticated by an account API key.
pub struct ApiActor(pub Actor);

impl FromRequestParts<Api> for ApiActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError(platform::Error::Unauthenticated))?;
        let meta = RequestMeta {
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(300).collect()),
        };
        Ok(ApiActor(
            platform::identity::api_keys::authenticate(api.db(), key.trim(), meta).await?,
        ))
    }
}

/// `?page=N`, 1-based; `per_page` up to 100.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

impl From<PageQuery> for protocol::views::PageRequest {
    fn from(q: PageQuery) -> Self {
        Self::new(
            q.page.unwrap_or(1),
            q.per_page.unwrap_or(Self::DEFAULT_PER_PAGE),
        )
    }
}
