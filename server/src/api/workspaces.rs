//! Workspaces over REST: create (the same checks and pipeline as the
//! portal), read, list per project, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::workspaces;
use protocol::ids::{ProjectId, TaskId, WorkspaceId};
use protocol::views::{CreatedWorkspace, NewWorkspace, WorkspaceDetails, WorkspaceView};
use serde::Serialize;

use super::{Api, ApiActor, ApiError, ErrorBody};

/// Creates a workspace and queues its provisioning; the response carries
/// the workspace API key, shown once.
#[utoipa::path(post, path = "/projects/{project}/workspaces", tag = "workspaces",
    params(("project" = ProjectId, Path)), request_body = NewWorkspace,
    responses((status = 201, body = CreatedWorkspace), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_workspace(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
    Json(body): Json<NewWorkspace>,
) -> Result<(StatusCode, Json<CreatedWorkspace>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(workspaces::create(&api.platform, &actor, project, &body).await?),
    ))
}

#[utoipa::path(get, path = "/projects/{project}/workspaces", tag = "workspaces",
    params(("project" = ProjectId, Path)),
    responses((status = 200, body = [WorkspaceView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_workspaces(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
) -> Result<Json<Vec<WorkspaceView>>, ApiError> {
    Ok(Json(workspaces::list(api.db(), &actor, project).await?))
}

#[utoipa::path(get, path = "/workspaces/{workspace}", tag = "workspaces",
    params(("workspace" = WorkspaceId, Path)),
    responses((status = 200, body = WorkspaceDetails), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_workspace(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
) -> Result<Json<WorkspaceDetails>, ApiError> {
    Ok(Json(
        workspaces::details(api.db(), &actor, workspace).await?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleting {
    /// The teardown task; follow it at /tasks/{task}.
    pub task: TaskId,
}

/// Starts deleting a workspace; answers with the teardown task.
#[utoipa::path(delete, path = "/workspaces/{workspace}", tag = "workspaces",
    params(("workspace" = WorkspaceId, Path)),
    responses((status = 202, body = Deleting), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_workspace(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(workspace): Path<WorkspaceId>,
) -> Result<(StatusCode, Json<Deleting>), ApiError> {
    let task = workspaces::delete(api.db(), &actor, workspace).await?;
    Ok((StatusCode::ACCEPTED, Json(Deleting { task })))
}
