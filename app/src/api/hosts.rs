//! Hosts: ordering, power, deletion, agent tokens, scaling groups and shell
//! sessions.

use leptos::prelude::*;
use protocol::ids::{AgentTokenId, HostId, ScalingGroupId, ShellSessionId, TaskId, WorkspaceId};
use protocol::views::{
    ComputeProfileView, HostDetails, HostView, OrderedHost, ScalingGroupView, ShellStart,
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A workspace's hosts section: hosts, groups, orderable profiles and what
/// the caller may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostsSection {
    pub hosts: Vec<HostView>,
    pub groups: Vec<ScalingGroupView>,
    pub profiles: Vec<ComputeProfileView>,
    pub can_create: bool,
}

#[server]
pub async fn workspace_hosts(workspace: WorkspaceId) -> Result<HostsSection, AppError> {
    use platform::authz::{Permission, Resource, authorize};
    let (ctx, actor) = crate::server::signed_in().await?;
    let db = ctx.db();
    let hosts = platform::hosts::list(db, &actor, workspace).await?;
    let groups = platform::hosts::scaling::list(db, &actor, workspace).await?;
    let profiles = platform::compute::profiles::for_workspace(db, &actor, workspace).await?;
    let can_create = authorize(
        db,
        &actor,
        Permission::HostCreate,
        Resource::Workspace(workspace),
    )
    .await
    .is_ok();
    Ok(HostsSection {
        hosts,
        groups,
        profiles,
        can_create,
    })
}

#[server]
pub async fn order_host(
    workspace: WorkspaceId,
    hostname: String,
    compute_profile: String,
    #[server(default)] metadata: Option<String>,
) -> Result<OrderedHost, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let compute_profile = compute_profile
        .parse()
        .map_err(|_| AppError::invalid("compute_profile", "choose a compute profile"))?;
    let metadata = crate::api::workspaces::parse_metadata(metadata.as_deref().unwrap_or(""))?;
    let new = protocol::views::NewHost {
        hostname,
        compute_profile,
        metadata,
    };
    Ok(platform::hosts::order(ctx.db(), &actor, workspace, &new).await?)
}

/// A host's page: details and what the caller may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPageData {
    pub details: HostDetails,
    pub can_shell: bool,
    pub can_power: bool,
    pub can_delete: bool,
    pub can_manage: bool,
}

#[server]
pub async fn get_host(host: HostId) -> Result<HostPageData, AppError> {
    use platform::authz::{Permission, Resource, authorize};
    let (ctx, actor) = crate::server::signed_in().await?;
    let db = ctx.db();
    let details = platform::hosts::details(db, &actor, host).await?;
    let workspace = Resource::Workspace(details.host.workspace_id);
    let can = |p| {
        let (db, actor) = (db.clone(), actor.clone());
        async move { authorize(&db, &actor, p, workspace).await.is_ok() }
    };
    Ok(HostPageData {
        can_shell: can(Permission::HostShell).await,
        can_power: can(Permission::HostPower).await,
        can_delete: can(Permission::HostDelete).await,
        can_manage: can(Permission::HostCreate).await,
        details,
    })
}

#[server]
pub async fn delete_host(host: HostId) -> Result<TaskId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::delete(ctx.db(), &actor, host).await?)
}

/// `action`: on, off or reset.
#[server]
pub async fn power_host(host: HostId, action: String) -> Result<HostView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let action = protocol::views::PowerRequest::from_label(&action)
        .ok_or_else(|| AppError::invalid("action", "choose on, off or reset"))?;
    Ok(platform::hosts::power(&ctx.platform, &actor, host, action).await?)
}

#[server]
pub async fn revoke_agent_token(host: HostId, token: AgentTokenId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::tokens::revoke(ctx.db(), &actor, host, token).await?)
}

#[server]
pub async fn update_agent(host: HostId) -> Result<String, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::releases::update_host(&ctx.platform, &actor, host).await?)
}

/// Opens a shell session on `host` (`host.shell`, audit-logged). The terminal
/// page then attaches over WebSocket at
/// `/api/v1/hosts/{host}/shell/{session}/attach?token={reconnect_token}`.
#[server]
pub async fn start_shell(host: HostId) -> Result<ShellStart, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::shell::start(&ctx.platform, &actor, host).await?)
}

/// Ends a shell session (yours, or anyone's with `host.delete`).
#[server]
pub async fn end_shell(host: HostId, session: ShellSessionId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::shell::end(&ctx.platform, &actor, host, session).await?)
}

#[server]
pub async fn create_scaling_group(
    workspace: WorkspaceId,
    name: String,
    compute_profile: String,
    desired: i32,
) -> Result<ScalingGroupId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let compute_profile = compute_profile
        .parse()
        .map_err(|_| AppError::invalid("compute_profile", "choose a compute profile"))?;
    let new = protocol::views::NewScalingGroup {
        name,
        compute_profile,
        desired,
    };
    Ok(platform::hosts::scaling::create(ctx.db(), &actor, workspace, &new).await?)
}

#[server]
pub async fn set_scaling_group_desired(
    group: ScalingGroupId,
    desired: i32,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::scaling::set_desired(ctx.db(), &actor, group, desired).await?)
}

#[server]
pub async fn delete_scaling_group(group: ScalingGroupId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::scaling::delete(ctx.db(), &actor, group).await?)
}

#[server]
pub async fn agent_releases() -> Result<Vec<protocol::views::AgentReleaseView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::releases::list(ctx.db(), &actor).await?)
}

/// Operators: publish the agent binary this portal runs local hosts with
/// (the build next to it) as `version`.
#[server]
pub async fn publish_bundled_agent(
    version: String,
) -> Result<protocol::views::AgentReleaseView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::releases::publish_bundled(&ctx.platform, &actor, &version).await?)
}

#[server]
pub async fn set_host_limit(
    organization: protocol::ids::OrganizationId,
    limit: i32,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::hosts::set_host_limit(ctx.db(), &actor, organization, limit).await?)
}
