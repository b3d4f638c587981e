//! Organizations, projects, members, invitations, roles, audit and
//! workspaces, as the signed-in caller may see and change them.

use leptos::prelude::*;
use protocol::ids::{AccountId, InvitationId, OrganizationId, ProjectId, RoleBindingId, RoleId};
use protocol::views::{
    AuditView, BuiltinRoleView, InvitationView, MemberView, OrganizationView, Page, PermissionView,
    ProjectView, RoleView, WorkspaceView,
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
fn page(page: u32) -> protocol::views::PageRequest {
    protocol::views::PageRequest::new(page, protocol::views::PageRequest::DEFAULT_PER_PAGE)
}

// ----- organizations -----

#[server]
pub async fn list_organizations(page: u32) -> Result<Page<OrganizationView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::organizations::list_mine(ctx.db(), &actor, self::page(page)).await?)
}

#[server]
pub async fn create_organization(name: String) -> Result<OrganizationView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let org = platform::tenancy::organizations::create(ctx.db(), &actor, &name).await?;
    leptos_axum::redirect(&format!("/orgs/{}", org.id));
    Ok(org)
}

#[server]
pub async fn get_organization(org: OrganizationId) -> Result<OrganizationView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::organizations::get(ctx.db(), &actor, org).await?)
}

#[server]
pub async fn rename_organization(
    org: OrganizationId,
    name: String,
) -> Result<OrganizationView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::organizations::rename(ctx.db(), &actor, org, &name).await?)
}

// ----- projects -----

#[server]
pub async fn list_projects(org: OrganizationId, page: u32) -> Result<Page<ProjectView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::projects::list(ctx.db(), &actor, org, self::page(page)).await?)
}

#[server]
pub async fn list_my_projects(page: u32) -> Result<Page<ProjectView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::projects::list_all_mine(ctx.db(), &actor, self::page(page)).await?)
}

#[server]
pub async fn create_project(org: OrganizationId, name: String) -> Result<ProjectView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::projects::create(ctx.db(), &actor, org, &name).await?)
}

/// A project with what the caller may do there, so pages can offer only
/// what will work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPage {
    pub project: ProjectView,
    pub can_create_workspace: bool,
    pub can_update: bool,
    pub can_delete: bool,
}

#[server]
pub async fn get_project(project: ProjectId) -> Result<ProjectPage, AppError> {
    use platform::authz::{Permission, Resource, authorize};
    let (ctx, actor) = crate::server::signed_in().await?;
    let view = platform::tenancy::projects::get(ctx.db(), &actor, project).await?;
    let can = async |p| {
        authorize(ctx.db(), &actor, p, Resource::Project(project))
            .await
            .is_ok()
    };
    Ok(ProjectPage {
        can_create_workspace: can(Permission::WorkspaceCreate).await,
        can_update: can(Permission::ProjectUpdate).await,
        can_delete: can(Permission::ProjectDelete).await,
        project: view,
    })
}

#[server]
pub async fn rename_project(project: ProjectId, name: String) -> Result<ProjectView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::projects::rename(ctx.db(), &actor, project, &name).await?)
}

#[server]
pub async fn delete_project(project: ProjectId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let view = platform::tenancy::projects::get(ctx.db(), &actor, project).await?;
    platform::tenancy::projects::delete(ctx.db(), &actor, project).await?;
    leptos_axum::redirect(&format!("/orgs/{}", view.organization_id));
    Ok(())
}

// ----- workspaces -----

#[server]
pub async fn list_workspaces(project: ProjectId) -> Result<Vec<WorkspaceView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::workspaces::list(ctx.db(), &actor, project).await?)
}

#[server]
pub async fn list_my_workspaces(page: u32) -> Result<Page<WorkspaceView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::workspaces::list_all_mine(ctx.db(), &actor, self::page(page)).await?)
}

// ----- members, invitations, role bindings -----

#[server]
pub async fn list_members(org: OrganizationId) -> Result<Vec<MemberView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::list(ctx.db(), &actor, org).await?)
}

#[server]
pub async fn list_invitations(org: OrganizationId) -> Result<Vec<InvitationView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::list_invitations(ctx.db(), &actor, org).await?)
}

/// `role`: "owner", "admin", "member", "viewer" or "custom:<role id>".
#[server]
pub async fn invite_member(
    org: OrganizationId,
    email: String,
    role: String,
) -> Result<InvitationView, AppError> {
    use platform::tenancy::members::{RoleSpec, invite};
    let (ctx, actor) = crate::server::signed_in().await?;
    let role = RoleSpec::parse("role", &role)?;
    Ok(invite(
        ctx.db(),
        &actor,
        ctx.platform.public_url(),
        org,
        &email,
        role,
    )
    .await?)
}

#[server]
pub async fn revoke_invitation(
    org: OrganizationId,
    invitation: InvitationId,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::revoke_invitation(ctx.db(), &actor, org, invitation).await?)
}

#[server]
pub async fn remove_member(org: OrganizationId, account: AccountId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    platform::tenancy::members::remove(ctx.db(), &actor, org, account).await?;
    if account == actor.account_id {
        leptos_axum::redirect("/organizations");
    }
    Ok(())
}

/// `scope`: "organization", "project:<id>" or "workspace:<id>".
#[server]
pub async fn bind_role(
    org: OrganizationId,
    account: AccountId,
    scope: String,
    role: String,
) -> Result<(), AppError> {
    use platform::tenancy::members::{RoleSpec, Scope, bind};
    let (ctx, actor) = crate::server::signed_in().await?;
    let scope = match scope.split_once(':') {
        None if scope == "organization" => Scope::Organization,
        Some(("project", id)) => Scope::Project(
            id.parse()
                .map_err(|_| AppError::invalid("scope", "choose where the role applies"))?,
        ),
        Some(("workspace", id)) => Scope::Workspace(
            id.parse()
                .map_err(|_| AppError::invalid("scope", "choose where the role applies"))?,
        ),
        _ => return Err(AppError::invalid("scope", "choose where the role applies")),
    };
    let role = RoleSpec::parse("role", &role)?;
    bind(ctx.db(), &actor, org, account, scope, role).await?;
    Ok(())
}

#[server]
pub async fn unbind_role(org: OrganizationId, binding: RoleBindingId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::unbind(ctx.db(), &actor, org, binding).await?)
}

#[server]
pub async fn my_invitations() -> Result<Vec<InvitationView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::my_invitations(ctx.db(), &actor).await?)
}

#[server]
pub async fn invitation_for_link(token: String) -> Result<InvitationView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::invitation_for_link(ctx.db(), &actor, &token).await?)
}

#[server]
pub async fn respond_invitation(invitation: InvitationId, accept: bool) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::members::respond(ctx.db(), &actor, invitation, accept).await?)
}

// ----- roles -----

/// Every permission key and the built-in roles: public reference data.
#[server]
pub async fn permission_catalogue() -> Result<(Vec<PermissionView>, Vec<BuiltinRoleView>), AppError>
{
    Ok(platform::tenancy::roles::catalogue())
}

#[server]
pub async fn list_roles(org: OrganizationId) -> Result<Vec<RoleView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::roles::list(ctx.db(), &actor, org).await?)
}

/// `permissions`: keys separated by commas or whitespace.
#[server]
pub async fn create_role(
    org: OrganizationId,
    name: String,
    description: String,
    permissions: String,
) -> Result<RoleView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let keys = split_keys(&permissions);
    Ok(platform::tenancy::roles::create(ctx.db(), &actor, org, &name, &description, &keys).await?)
}

#[server]
pub async fn update_role(
    org: OrganizationId,
    role: RoleId,
    name: String,
    description: String,
    permissions: String,
) -> Result<RoleView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let keys = split_keys(&permissions);
    Ok(
        platform::tenancy::roles::update(ctx.db(), &actor, org, role, &name, &description, &keys)
            .await?,
    )
}

#[server]
pub async fn delete_role(org: OrganizationId, role: RoleId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::tenancy::roles::delete(ctx.db(), &actor, org, role).await?)
}

#[cfg(feature = "ssr")]
fn split_keys(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

// ----- audit -----

/// `before`: RFC 3339 time of the oldest entry already shown (next page).
#[server]
pub async fn audit_log(
    org: OrganizationId,
    action: String,
    actor_email: String,
    before: String,
) -> Result<Vec<AuditView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let filter = audit_filter(action, actor_email, &before)?;
    Ok(platform::audit::for_organization(ctx.db(), &actor, org, &filter).await?)
}

#[cfg(feature = "ssr")]
pub(crate) fn audit_filter(
    action: String,
    actor: String,
    before: &str,
) -> Result<platform::audit::Filter, AppError> {
    use time::format_description::well_known::Rfc3339;
    let before = match before.trim() {
        "" => None,
        t => Some(
            time::OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|_| AppError::invalid("before", "not a time"))?,
        ),
    };
    Ok(platform::audit::Filter {
        action: Some(action).filter(|s| !s.trim().is_empty()),
        actor: Some(actor).filter(|s| !s.trim().is_empty()),
        before,
        ..Default::default()
    })
}
