//! Hosts over REST: order (the same checks and task as the portal), list
//! per workspace, read, power, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::hosts;
use protocol::ids::{HostId, TaskId, WorkspaceId};
use protocol::views::{HostDetails, HostView, NewHost, OrderedHost, PowerRequest};
use serde::{Deserialize, Serialize};

use super::{Api, ApiActor, ApiError, ErrorBody};

/// Orders a host; follow the returned task at /tasks/{task}.
#[utoipa::path(post, path = "/workspaces/{workspace}/hosts", tag = "hosts",
    params(("workspace" = WorkspaceId, Path)), request_body = NewHost,
    responses((status = 202, body = OrderedHost), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn order_host(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
    Json(body): Json<NewHost>,
) -> Result<(StatusCode, Json<OrderedHost>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(hosts::order(api.db(), &actor, workspace, &body).await?),
    ))
}

#[utoipa::path(get, path = "/workspaces/{workspace}/hosts", tag = "hosts",
    params(("workspace" = WorkspaceId, Path)),
    responses((status = 200, body = [HostView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_hosts(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
) -> Result<Json<Vec<HostView>>, ApiError> {
    Ok(Json(hosts::list(api.db(), &actor, workspace).await?))
}

#[utoipa::path(get, path = "/hosts/{host}", tag = "hosts",
    params(("host" = HostId, Path)),
    responses((status = 200, body = HostDetails), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_host(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(host): Path<HostId>,
) -> Result<Json<HostDetails>, ApiError> {
    Ok(Json(hosts::details(api.db(), &actor, host).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletingHost {
    /// The deletion task.
    pub task: TaskId,
}

/// Starts deleting a host and its server at the provider.
#[utoipa::path(delete, path = "/hosts/{host}", tag = "hosts",
    params(("host" = HostId, Path)),
    responses((status = 202, body = DeletingHost), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_host(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(host): Path<HostId>,
) -> Result<(StatusCode, Json<DeletingHost>), ApiError> {
    let task = hosts::delete(api.db(), &actor, host).await?;
    Ok((StatusCode::ACCEPTED, Json(DeletingHost { task })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Power {
    pub action: PowerRequest,
}

/// Powers a host on or off, or resets it, through its provider.
#[utoipa::path(post, path = "/hosts/{host}/power", tag = "hosts",
    params(("host" = HostId, Path)), request_body = Power,
    responses((status = 200, body = HostView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn power_host(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(host): Path<HostId>,
    Json(body): Json<Power>,
) -> Result<Json<HostView>, ApiError> {
    Ok(Json(
        hosts::power(&api.platform, &actor, host, body.action).await?,
    ))
}
