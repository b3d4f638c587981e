//! Load balancers over REST, in two families:
//!
//! - for automation with an account API key (`lbk_…`): project and
//!   workspace load balancers, with the same checks as the portal;
//! - the in-cluster API under `/cluster/load-balancers`, for a component in
//!   the tenant cluster holding the workspace API key (`lbw_…`): one load
//!   balancer per Service of type LoadBalancer, keyed by its namespace and
//!   name, in that key's workspace only. Sessions and account keys are not
//!   accepted there.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use platform::loadbalancers::{self, Scope, cluster_api};
use protocol::ids::{LoadBalancerId, ProjectId, WorkspaceId};
use protocol::views::load_balancers::{
    LoadBalancerView, NewLoadBalancer, ServiceLoadBalancer, ServiceLoadBalancerStatus,
};

use super::{Api, ApiActor, ApiError, ErrorBody};

#[utoipa::path(get, path = "/projects/{project}/load-balancers", tag = "load balancers",
    description = "The project's load balancers, its workspaces' included.",
    params(("project" = ProjectId, Path)),
    responses((status = 200, body = [LoadBalancerView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_project_balancers(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
) -> Result<Json<Vec<LoadBalancerView>>, ApiError> {
    Ok(Json(
        loadbalancers::list(&api.platform, &actor, Scope::Project(project)).await?,
    ))
}

/// Creates a project load balancer; its targets may be hosts of any of the
/// project's workspaces.
#[utoipa::path(post, path = "/projects/{project}/load-balancers", tag = "load balancers",
    params(("project" = ProjectId, Path)), request_body = NewLoadBalancer,
    responses((status = 201, body = LoadBalancerView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_project_balancer(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
    Json(body): Json<NewLoadBalancer>,
) -> Result<(StatusCode, Json<LoadBalancerView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(loadbalancers::create(&api.platform, &actor, Scope::Project(project), &body).await?),
    ))
}

#[utoipa::path(get, path = "/workspaces/{workspace}/load-balancers", tag = "load balancers",
    params(("workspace" = WorkspaceId, Path)),
    responses((status = 200, body = [LoadBalancerView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_workspace_balancers(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
) -> Result<Json<Vec<LoadBalancerView>>, ApiError> {
    Ok(Json(
        loadbalancers::list(&api.platform, &actor, Scope::Workspace(workspace)).await?,
    ))
}

/// Creates a workspace load balancer; its targets may be the workspace's
/// hosts or addresses.
#[utoipa::path(post, path = "/workspaces/{workspace}/load-balancers", tag = "load balancers",
    params(("workspace" = WorkspaceId, Path)), request_body = NewLoadBalancer,
    responses((status = 201, body = LoadBalancerView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_workspace_balancer(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
    Json(body): Json<NewLoadBalancer>,
) -> Result<(StatusCode, Json<LoadBalancerView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            loadbalancers::create(&api.platform, &actor, Scope::Workspace(workspace), &body)
                .await?,
        ),
    ))
}

#[utoipa::path(get, path = "/load-balancers/{load_balancer}", tag = "load balancers",
    params(("load_balancer" = LoadBalancerId, Path)),
    responses((status = 200, body = LoadBalancerView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_balancer(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<LoadBalancerId>,
) -> Result<Json<LoadBalancerView>, ApiError> {
    Ok(Json(loadbalancers::get(&api.platform, &actor, id).await?))
}

/// Replaces the load balancer's listeners, targets, algorithm and health
/// check (and name); applied at once.
#[utoipa::path(put, path = "/load-balancers/{load_balancer}", tag = "load balancers",
    params(("load_balancer" = LoadBalancerId, Path)), request_body = NewLoadBalancer,
    responses((status = 200, body = LoadBalancerView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_balancer(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<LoadBalancerId>,
    Json(body): Json<NewLoadBalancer>,
) -> Result<Json<LoadBalancerView>, ApiError> {
    Ok(Json(
        loadbalancers::update(&api.platform, &actor, id, &body).await?,
    ))
}

/// Deletes the load balancer at its backend, then the record.
#[utoipa::path(delete, path = "/load-balancers/{load_balancer}", tag = "load balancers",
    params(("load_balancer" = LoadBalancerId, Path)),
    responses((status = 202), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_balancer(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<LoadBalancerId>,
) -> Result<StatusCode, ApiError> {
    loadbalancers::delete(&api.platform, &actor, id).await?;
    Ok(StatusCode::ACCEPTED)
}

// ----- the in-cluster API -----

/// The caller of the in-cluster API: a workspace API key.
pub struct WorkspaceCaller(pub cluster_api::WorkspaceKey);

impl FromRequestParts<Api> for WorkspaceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError(platform::Error::Unauthenticated))?;
        match cluster_api::authenticate(api.db(), key.trim()).await {
            Ok(key) => Ok(Self(key)),
            Err(e) => {
                if matches!(e, platform::Error::Unauthenticated) {
                    let ip = parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip());
                    tracing::info!(?ip, "in-cluster API call without a valid workspace API key");
                }
                Err(ApiError(e))
            }
        }
    }
}

/// The workspace's load balancers made through this API.
#[utoipa::path(get, path = "/cluster/load-balancers", tag = "in-cluster",
    responses((status = 200, body = [ServiceLoadBalancerStatus]), (status = 401, body = ErrorBody)),
    security(("workspace_api_key" = [])))]
pub async fn cluster_list(
    State(api): State<Api>,
    WorkspaceCaller(key): WorkspaceCaller,
) -> Result<Json<Vec<ServiceLoadBalancerStatus>>, ApiError> {
    Ok(Json(cluster_api::list(&api.platform, &key).await?))
}

/// The Service's load balancer: state and address.
#[utoipa::path(get, path = "/cluster/load-balancers/{namespace}/{name}", tag = "in-cluster",
    params(("namespace" = String, Path), ("name" = String, Path, description = "The Service's name")),
    responses((status = 200, body = ServiceLoadBalancerStatus), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("workspace_api_key" = [])))]
pub async fn cluster_get(
    State(api): State<Api>,
    WorkspaceCaller(key): WorkspaceCaller,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<ServiceLoadBalancerStatus>, ApiError> {
    Ok(Json(
        cluster_api::get(&api.platform, &key, &namespace, &name).await?,
    ))
}

/// Creates or updates the Service's load balancer (idempotent): 201 when
/// created, 200 when it existed. Read the address from the answer, or
/// again with GET while it is pending.
#[utoipa::path(put, path = "/cluster/load-balancers/{namespace}/{name}", tag = "in-cluster",
    params(("namespace" = String, Path), ("name" = String, Path, description = "The Service's name")),
    request_body = ServiceLoadBalancer,
    responses((status = 200, body = ServiceLoadBalancerStatus), (status = 201, body = ServiceLoadBalancerStatus),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("workspace_api_key" = [])))]
pub async fn cluster_put(
    State(api): State<Api>,
    WorkspaceCaller(key): WorkspaceCaller,
    Path((namespace, name)): Path<(String, String)>,
    Json(body): Json<ServiceLoadBalancer>,
) -> Result<(StatusCode, Json<ServiceLoadBalancerStatus>), ApiError> {
    let (created, status) = cluster_api::put(&api.platform, &key, &namespace, &name, &body).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(status)))
}

/// Deletes the Service's load balancer.
#[utoipa::path(delete, path = "/cluster/load-balancers/{namespace}/{name}", tag = "in-cluster",
    params(("namespace" = String, Path), ("name" = String, Path, description = "The Service's name")),
    responses((status = 202), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("workspace_api_key" = [])))]
pub async fn cluster_delete(
    State(api): State<Api>,
    WorkspaceCaller(key): WorkspaceCaller,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    cluster_api::delete(&api.platform, &key, &namespace, &name).await?;
    Ok(StatusCode::ACCEPTED)
}
