//! A Kubernetes workspace's cluster: the summary, nodes with their drain
//! states, the upgrade matrix, and cordoning and draining nodes.

use leptos::prelude::*;
use protocol::ids::{TaskId, WorkspaceId};
use protocol::views::drain::{DrainOptions, DrainPlan, NodeDrainStatus};
use protocol::views::kubernetes::{ClusterNodes, ClusterSummary, UpgradeMatrix};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The nodes page: the nodes, where each drain stands, and whether the
/// caller may cordon and drain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodesPage {
    pub nodes: ClusterNodes,
    pub drains: Vec<NodeDrainStatus>,
    pub can_drain: bool,
    /// When the nodes were read, for their ages.
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: time::OffsetDateTime,
}

#[server]
pub async fn get_cluster_summary(workspace: WorkspaceId) -> Result<ClusterSummary, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::kubernetes::cluster::summary(&ctx.platform, &actor, workspace).await?)
}

#[server]
pub async fn get_upgrade_matrix(workspace: WorkspaceId) -> Result<UpgradeMatrix, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::kubernetes::cluster::upgrade_matrix(ctx.db(), &actor, workspace).await?)
}

#[server]
pub async fn get_workspace_nodes(workspace: WorkspaceId) -> Result<NodesPage, AppError> {
    use platform::authz::{Permission, Resource, authorize};
    let (ctx, actor) = crate::server::signed_in().await?;
    let nodes = platform::kubernetes::cluster::nodes(&ctx.platform, &actor, workspace).await?;
    // Drain states come from the tenant too: only worth asking when it
    // answered for the nodes.
    let drains = if nodes.health.is_healthy() {
        platform::kubernetes::drain::statuses(&ctx.platform, &actor, workspace).await?
    } else {
        Vec::new()
    };
    let can_drain = authorize(
        ctx.db(),
        &actor,
        Permission::NodeDrain,
        Resource::Workspace(workspace),
    )
    .await
    .is_ok();
    Ok(NodesPage {
        nodes,
        drains,
        can_drain,
        observed_at: time::OffsetDateTime::now_utc(),
    })
}

/// What draining `nodes` with `options` would do; changes nothing.
#[server]
pub async fn plan_drain(
    workspace: WorkspaceId,
    nodes: Vec<String>,
    options: DrainOptions,
) -> Result<DrainPlan, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(
        platform::kubernetes::drain::plan(&ctx.platform, &actor, workspace, &nodes, &options)
            .await?,
    )
}

/// Cordons and drains `nodes`, one after another, as a task.
#[server]
pub async fn start_drain(
    workspace: WorkspaceId,
    nodes: Vec<String>,
    options: DrainOptions,
) -> Result<TaskId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let task =
        platform::kubernetes::drain::start(&ctx.platform, &actor, workspace, &nodes, &options)
            .await?;
    platform::kubernetes::cluster::invalidate(workspace);
    Ok(task)
}

/// Stops a running drain; its nodes stay cordoned.
#[server]
pub async fn stop_drain(workspace: WorkspaceId, task: TaskId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    platform::kubernetes::drain::stop(&ctx.platform, &actor, workspace, task).await?;
    platform::kubernetes::cluster::invalidate(workspace);
    Ok(())
}

#[server]
pub async fn cordon_node(workspace: WorkspaceId, node: String) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    platform::kubernetes::drain::cordon(&ctx.platform, &actor, workspace, &node).await?;
    platform::kubernetes::cluster::invalidate(workspace);
    Ok(())
}

#[server]
pub async fn uncordon_node(workspace: WorkspaceId, node: String) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    platform::kubernetes::drain::uncordon(&ctx.platform, &actor, workspace, &node).await?;
    platform::kubernetes::cluster::invalidate(workspace);
    Ok(())
}
