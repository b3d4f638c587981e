//! Organizations, projects, members and invitations over REST.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform::tenancy::members::{self, RoleSpec};
use platform::tenancy::{organizations, projects};
use protocol::ids::{AccountId, InvitationId, OrganizationId, ProjectId};
use protocol::views::{InvitationView, MemberView, OrganizationView, Page, ProjectView};
use serde::Deserialize;

use super::{Api, ApiActor, ApiError, ErrorBody, PageQuery};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NameBody {
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InviteBody {
    pub email: String,
    /// "owner", "admin", "member", "viewer" or "custom:<role id>".
    pub role: String,
}

/// The organizations the caller is a member of.
#[utoipa::path(get, path = "/organizations", tag = "organizations", params(PageQuery),
    responses((status = 200, body = Page<OrganizationView>), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_organizations(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<OrganizationView>>, ApiError> {
    Ok(Json(
        organizations::list_mine(api.db(), &actor, q.into()).await?,
    ))
}

/// Creates an organization; the caller becomes its owner. It starts pending
/// verification by an operator.
#[utoipa::path(post, path = "/organizations", tag = "organizations", request_body = NameBody,
    responses((status = 201, body = OrganizationView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_organization(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Json(body): Json<NameBody>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(organizations::create(api.db(), &actor, &body.name).await?),
    ))
}

#[utoipa::path(get, path = "/organizations/{org}", tag = "organizations", params(("org" = OrganizationId, Path)),
    responses((status = 200, body = OrganizationView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_organization(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
) -> Result<Json<OrganizationView>, ApiError> {
    Ok(Json(organizations::get(api.db(), &actor, org).await?))
}

#[utoipa::path(patch, path = "/organizations/{org}", tag = "organizations", params(("org" = OrganizationId, Path)), request_body = NameBody,
    responses((status = 200, body = OrganizationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rename_organization(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
    Json(body): Json<NameBody>,
) -> Result<Json<OrganizationView>, ApiError> {
    Ok(Json(
        organizations::rename(api.db(), &actor, org, &body.name).await?,
    ))
}

#[utoipa::path(get, path = "/organizations/{org}/projects", tag = "projects", params(("org" = OrganizationId, Path), PageQuery),
    responses((status = 200, body = Page<ProjectView>), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_projects(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<ProjectView>>, ApiError> {
    Ok(Json(projects::list(api.db(), &actor, org, q.into()).await?))
}

#[utoipa::path(post, path = "/organizations/{org}/projects", tag = "projects", params(("org" = OrganizationId, Path)), request_body = NameBody,
    responses((status = 201, body = ProjectView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_project(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
    Json(body): Json<NameBody>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(projects::create(api.db(), &actor, org, &body.name).await?),
    ))
}

#[utoipa::path(get, path = "/projects/{project}", tag = "projects", params(("project" = ProjectId, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_project(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(projects::get(api.db(), &actor, project).await?))
}

#[utoipa::path(patch, path = "/projects/{project}", tag = "projects", params(("project" = ProjectId, Path)), request_body = NameBody,
    responses((status = 200, body = ProjectView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rename_project(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
    Json(body): Json<NameBody>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(
        projects::rename(api.db(), &actor, project, &body.name).await?,
    ))
}

/// Deletes a project; refused (409) while it still holds workspaces.
#[utoipa::path(delete, path = "/projects/{project}", tag = "projects", params(("project" = ProjectId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_project(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(project): Path<ProjectId>,
) -> Result<StatusCode, ApiError> {
    projects::delete(api.db(), &actor, project).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/organizations/{org}/members", tag = "members", params(("org" = OrganizationId, Path)),
    responses((status = 200, body = Vec<MemberView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_members(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    Ok(Json(members::list(api.db(), &actor, org).await?))
}

/// Removes a member, or leaves when `account` is the caller. The last owner
/// stays (409).
#[utoipa::path(delete, path = "/organizations/{org}/members/{account}", tag = "members",
    params(("org" = OrganizationId, Path), ("account" = AccountId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn remove_member(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path((org, account)): Path<(OrganizationId, AccountId)>,
) -> Result<StatusCode, ApiError> {
    members::remove(api.db(), &actor, org, account).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/organizations/{org}/invitations", tag = "members", params(("org" = OrganizationId, Path)),
    responses((status = 200, body = Vec<InvitationView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_invitations(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    Ok(Json(
        members::list_invitations(api.db(), &actor, org).await?,
    ))
}

/// Invites someone by email; they get a link to accept.
#[utoipa::path(post, path = "/organizations/{org}/invitations", tag = "members", params(("org" = OrganizationId, Path)), request_body = InviteBody,
    responses((status = 201, body = InvitationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn invite(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
    Json(body): Json<InviteBody>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    let role = RoleSpec::parse("role", &body.role)?;
    let view = members::invite(
        api.db(),
        &actor,
        api.platform.public_url(),
        org,
        &body.email,
        role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/organizations/{org}/invitations/{invitation}", tag = "members",
    params(("org" = OrganizationId, Path), ("invitation" = InvitationId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke_invitation(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path((org, invitation)): Path<(OrganizationId, InvitationId)>,
) -> Result<StatusCode, ApiError> {
    members::revoke_invitation(api.db(), &actor, org, invitation).await?;
    Ok(StatusCode::NO_CONTENT)
}
