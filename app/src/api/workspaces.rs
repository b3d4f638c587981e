//! Workspaces: what the create form offers, creating, the workspace page,
//! maintenance settings and deletion.
// Server functions behind HTML forms take one argument per form field; the
// generated client functions repeat that list, so the lint cannot be
// silenced per function.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use protocol::ids::{ProjectId, TaskId, WorkspaceId};
use protocol::views::{CreatedWorkspace, WorkspaceDetails, WorkspaceKind, WorkspaceOptions};

use crate::error::AppError;

#[server]
pub async fn get_workspace_options() -> Result<WorkspaceOptions, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::kubernetes::catalog::workspace_options(ctx.db(), &actor).await?)
}

/// `key=value` lines.
pub fn parse_metadata(text: &str) -> Result<std::collections::BTreeMap<String, String>, AppError> {
    let mut out = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            AppError::invalid("metadata", format!("line {}: write key=value", i + 1))
        })?;
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

/// The create form. Kubernetes fields are ignored for bare-metal
/// workspaces; `ingress` and `cluster_kind` are checkboxes.
#[server]
pub async fn create_workspace(
    project: ProjectId,
    name: String,
    kind: WorkspaceKind,
    #[server(default)] version: Option<String>,
    #[server(default)] provider_type: Option<String>,
    #[server(default)] management_cluster: Option<String>,
    #[server(default)] sizing: Option<String>,
    #[server(default)] ingress: Option<String>,
    #[server(default)] cluster_kind: Option<String>,
    #[server(default)] metadata: Option<String>,
) -> Result<CreatedWorkspace, AppError> {
    let (_ctx, actor) = crate::server::signed_in().await?;
    let management_cluster = match management_cluster.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<protocol::ids::ManagementClusterId>()
                .map_err(|_| {
                    AppError::invalid("management_cluster", "choose a cluster from the list")
                })?,
        ),
    };
    let sizing = match sizing.as_deref() {
        None | Some("") | Some("high_available") => Some(protocol::views::Sizing::HighAvailable),
        Some("single_node") => Some(protocol::views::Sizing::SingleNode),
        Some(_) => {
            return Err(AppError::invalid(
                "sizing",
                "choose high available or single node",
            ));
        }
    };
    let new = protocol::views::NewWorkspace {
        name,
        kind,
        metadata: parse_metadata(metadata.as_deref().unwrap_or(""))?,
        version: version.filter(|v| !v.is_empty()),
        ingress: ingress.is_some(),
        provider_type: provider_type.filter(|p| !p.is_empty()),
        management_cluster,
        sizing: (kind == WorkspaceKind::Kubernetes)
            .then_some(sizing)
            .flatten(),
        cluster_kind: cluster_kind.is_some(),
    };
    let platform = crate::server::platform()?;
    Ok(platform::workspaces::create(&platform, &actor, project, &new).await?)
}

#[server]
pub async fn get_workspace_details(
    workspace: WorkspaceId,
) -> Result<WorkspaceDetailsPage, AppError> {
    use platform::authz::{Permission, Resource, authorize};
    let (ctx, actor) = crate::server::signed_in().await?;
    let details = platform::workspaces::details(ctx.db(), &actor, workspace).await?;
    let can = |p| {
        let (db, actor) = (ctx.db().clone(), actor.clone());
        async move {
            authorize(&db, &actor, p, Resource::Workspace(workspace))
                .await
                .is_ok()
        }
    };
    let latest_task: Option<TaskId> = sqlx::query_scalar(
        // The workspace's own pipeline (provisioning or teardown), not the
        // tasks it waits for.
        "SELECT id FROM tasks WHERE workspace_id = $1
         ORDER BY kind LIKE 'workspace.%' DESC, created_at DESC LIMIT 1",
    )
    .bind(workspace)
    .fetch_optional(ctx.db())
    .await
    .map_err(|e| AppError::from(platform::Error::from(e)))?;
    Ok(WorkspaceDetailsPage {
        details,
        latest_task,
        can_admin_kubeconfig: can(Permission::WorkspaceKubeconfigAdmin).await,
        can_oidc_kubeconfig: can(Permission::WorkspaceKubeconfigOidc).await,
        can_maintenance: can(Permission::WorkspaceMaintenanceUpdate).await,
        can_delete: can(Permission::WorkspaceDelete).await,
    })
}

/// The workspace page: details and what the caller may do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceDetailsPage {
    pub details: WorkspaceDetails,
    pub latest_task: Option<TaskId>,
    pub can_admin_kubeconfig: bool,
    pub can_oidc_kubeconfig: bool,
    pub can_maintenance: bool,
    pub can_delete: bool,
}

#[server]
pub async fn update_maintenance(
    workspace: WorkspaceId,
    weekday: i16,
    hour: i16,
    #[server(default)] auto_patch: Option<String>,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::workspaces::update_maintenance(
        ctx.db(),
        &actor,
        workspace,
        weekday,
        hour,
        auto_patch.is_some(),
    )
    .await?)
}

#[server]
pub async fn delete_workspace(workspace: WorkspaceId) -> Result<TaskId, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::workspaces::delete(ctx.db(), &actor, workspace).await?)
}
