//! Cordoning and draining the nodes of a Kubernetes workspace, with the
//! semantics of `kubectl drain` and the defaults users know from Rancher.
//! [`plan`] shows what a drain would do (and which pods block it) before
//! anything happens; [`start`] enqueues one `node.drain` task that drains
//! the chosen nodes one after another; [`statuses`] tells each node's state
//! from the tenant's cordons and the drain tasks' steps.

mod plan;
mod run;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use protocol::ids::{OrganizationId, TaskId, WorkspaceId};
use protocol::views::drain::{
    DrainOptions, DrainPlan, MAX_TIMEOUT_SECONDS, NodeDrainState, NodeDrainStatus,
};
use protocol::views::{StepState, TaskState, WorkspaceKind, WorkspaceState};
use serde_json::json;
use sqlx::PgConnection;

pub use plan::{MIRROR_ANNOTATION, classify};
pub use run::{Drain, DrainHandler, KIND, Progress};

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};
use crate::kubernetes::{KubeError, is_not_found};
use crate::tasks::{self, Target};

/// How long one call of this module may wait for the tenant API.
const TENANT_TIMEOUT: Duration = Duration::from_secs(20);

fn validate_options(options: &DrainOptions) -> Result<()> {
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&options.timeout_seconds) {
        return Err(Error::invalid(
            "timeout_seconds",
            format!("must be between 1 and {MAX_TIMEOUT_SECONDS} seconds (3 hours)"),
        ));
    }
    if !(-1..=i64::from(u32::MAX)).contains(&options.grace_period_seconds) {
        return Err(Error::invalid(
            "grace_period_seconds",
            "must be -1 (each pod's own grace period) or a number of seconds from 0",
        ));
    }
    Ok(())
}

fn validate_nodes(nodes: &[String]) -> Result<()> {
    if nodes.is_empty() {
        return Err(Error::invalid("nodes", "choose at least one node"));
    }
    let mut seen = BTreeSet::new();
    for node in nodes {
        if node.trim().is_empty() {
            return Err(Error::invalid("nodes", "node names cannot be empty"));
        }
        if !seen.insert(node.as_str()) {
            return Err(Error::invalid("nodes", format!("{node} is listed twice")));
        }
    }
    Ok(())
}

/// The workspace's organization, once `actor` may do `permission` to it
/// and it is an active Kubernetes workspace.
async fn authorized(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    permission: Permission,
) -> Result<Option<OrganizationId>> {
    let grant = authorize(
        platform.db(),
        actor,
        permission,
        Resource::Workspace(workspace),
    )
    .await?;
    let (kind, state): (WorkspaceKind, WorkspaceState) =
        sqlx::query_as("SELECT kind, state FROM workspaces WHERE id = $1")
            .bind(workspace)
            .fetch_optional(platform.db())
            .await?
            .ok_or(Error::NotFound)?;
    if kind != WorkspaceKind::Kubernetes {
        return Err(Error::Conflict(
            "this workspace has no Kubernetes cluster".into(),
        ));
    }
    if state != WorkspaceState::Active {
        return Err(Error::Conflict(format!(
            "the workspace is {}; its nodes can be managed once it is active",
            state.label()
        )));
    }
    Ok(grant.organization_id)
}

/// The tenant's admin client, without kube-rs' retries (see
/// [`crate::kubernetes::connect_without_retry`]).
async fn tenant(platform: &Platform, workspace: WorkspaceId) -> Result<kube::Client> {
    crate::workspaces::pipeline::tenant_client_without_retry(platform, workspace)
        .await
        .map_err(|e| unreachable(e.to_string()))
}

fn unreachable(why: impl std::fmt::Display) -> Error {
    Error::Conflict(format!("the cluster's API cannot be used right now: {why}"))
}

/// Runs a call against the tenant within [`TENANT_TIMEOUT`].
async fn within<T>(work: impl Future<Output = std::result::Result<T, kube::Error>>) -> Result<T> {
    match tokio::time::timeout(TENANT_TIMEOUT, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unreachable(KubeError::from(e))),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            TENANT_TIMEOUT.as_secs()
        ))),
    }
}

async fn plan_with(
    client: &kube::Client,
    nodes: &[String],
    options: &DrainOptions,
) -> Result<DrainPlan> {
    let api = Api::<Node>::all(client.clone());
    let mut plans = Vec::with_capacity(nodes.len());
    for node in nodes {
        let exists = within(api.get_opt(node)).await?.is_some();
        if !exists {
            return Err(Error::invalid(
                "nodes",
                format!("there is no node named {node} in this cluster"),
            ));
        }
        let found = within(plan::inspect(client, node, options)).await?;
        plans.push(plan::node_plan(node, &found));
    }
    Ok(DrainPlan { nodes: plans })
}

/// What draining `nodes` with `options` would do to each pod, and which
/// pods block it. Changes nothing (`node.drain`).
pub async fn plan(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    nodes: &[String],
    options: &DrainOptions,
) -> Result<DrainPlan> {
    authorized(platform, actor, workspace, Permission::NodeDrain).await?;
    validate_nodes(nodes)?;
    validate_options(options)?;
    let client = tenant(platform, workspace).await?;
    plan_with(&client, nodes, options).await
}

/// The nodes among `nodes` that a queued or running drain has yet to finish.
async fn busy(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    nodes: &[String],
) -> Result<Vec<String>> {
    let steps: Vec<String> = nodes.iter().map(|n| run::step_name(n)).collect();
    let busy: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT s.name FROM tasks t JOIN task_steps s ON s.task_id = t.id
         WHERE t.kind = $1 AND t.workspace_id = $2 AND t.state IN ('queued', 'running')
           AND s.state IN ('pending', 'running') AND s.name = ANY($3)
         ORDER BY s.name",
    )
    .bind(KIND)
    .bind(workspace)
    .bind(&steps)
    .fetch_all(conn)
    .await?;
    Ok(busy
        .into_iter()
        .filter_map(|s| s.strip_prefix(run::STEP_PREFIX).map(String::from))
        .collect())
}

/// Starts draining `nodes`, one after another, as one `node.drain` task.
/// Refuses when a pod blocks (naming each and why) or when a drain of one
/// of the nodes is under way.
pub async fn start(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    nodes: &[String],
    options: &DrainOptions,
) -> Result<TaskId> {
    let organization = authorized(platform, actor, workspace, Permission::NodeDrain).await?;
    validate_nodes(nodes)?;
    validate_options(options)?;
    let client = tenant(platform, workspace).await?;
    let planned = plan_with(&client, nodes, options).await?;
    if planned.is_blocked() {
        return Err(Error::Conflict(format!(
            "the drain would stop at these pods: {}",
            planned.describe_blockers()
        )));
    }
    let mut tx = platform.db().begin().await?;
    // Two starts for the same nodes take turns, so only one finds them free.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{KIND}:{workspace}"))
        .execute(&mut *tx)
        .await?;
    let taken = busy(&mut tx, workspace, nodes).await?;
    if !taken.is_empty() {
        return Err(Error::Conflict(format!(
            "a drain of {} is already under way; stop it or wait for it to finish",
            taken.join(", ")
        )));
    }
    let spec = Drain {
        workspace,
        nodes: nodes.to_vec(),
        options: *options,
        run: uuid::Uuid::now_v7(),
    };
    let task = tasks::enqueue(
        &mut tx,
        &spec,
        Target {
            organization,
            workspace: Some(workspace),
        },
        Some(actor.account_id),
    )
    .await?;
    let mut entry = Entry::new("node.drain", "workspace", workspace).details(json!({
        "nodes": nodes,
        "options": options,
        "task": task,
    }));
    entry.organization_id = organization;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(task)
}

/// Stops a drain; its nodes stay cordoned.
pub async fn stop(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    task: TaskId,
) -> Result<()> {
    let grant = authorize(
        platform.db(),
        actor,
        Permission::NodeDrain,
        Resource::Workspace(workspace),
    )
    .await?;
    let mut tx = platform.db().begin().await?;
    let found: Option<(sqlx::types::Json<Drain>, TaskState)> = sqlx::query_as(
        "SELECT input, state FROM tasks WHERE id = $1 AND kind = $2 AND workspace_id = $3
         FOR UPDATE",
    )
    .bind(task)
    .bind(KIND)
    .bind(workspace)
    .fetch_optional(&mut *tx)
    .await?;
    let (drain, state) = found.ok_or(Error::NotFound)?;
    if state.is_finished() {
        return Err(Error::Conflict(format!(
            "the drain has already {}",
            state.label()
        )));
    }
    tasks::cancel_matching(&mut tx, KIND, "run", &drain.run.to_string()).await?;
    let mut entry = Entry::new("node.drain_stop", "workspace", workspace).details(json!({
        "nodes": drain.nodes,
        "task": task,
    }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

async fn set_unschedulable(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    node: &str,
    unschedulable: bool,
) -> Result<()> {
    let organization = authorized(platform, actor, workspace, Permission::NodeDrain).await?;
    if node.trim().is_empty() {
        return Err(Error::invalid("node", "choose a node"));
    }
    if !unschedulable {
        let mut conn = platform.db().acquire().await?;
        if !busy(&mut conn, workspace, &[node.to_string()])
            .await?
            .is_empty()
        {
            return Err(Error::Conflict(format!(
                "{node} is being drained; stop the drain before uncordoning it"
            )));
        }
    }
    let api = Api::<Node>::all(tenant(platform, workspace).await?);
    let changed = if unschedulable {
        tokio::time::timeout(TENANT_TIMEOUT, api.cordon(node)).await
    } else {
        tokio::time::timeout(TENANT_TIMEOUT, api.uncordon(node)).await
    };
    match changed {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if is_not_found(&e) => {
            return Err(Error::invalid(
                "node",
                format!("there is no node named {node} in this cluster"),
            ));
        }
        Ok(Err(e)) => return Err(unreachable(KubeError::from(e))),
        Err(_) => return Err(unreachable("no answer in time")),
    }
    let action = if unschedulable {
        "node.cordon"
    } else {
        "node.uncordon"
    };
    let mut tx = platform.db().begin().await?;
    let mut entry = Entry::new(action, "workspace", workspace).details(json!({ "node": node }));
    entry.organization_id = organization;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks `node` unschedulable; its pods stay.
pub async fn cordon(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    node: &str,
) -> Result<()> {
    set_unschedulable(platform, actor, workspace, node, true).await
}

/// Lets pods be scheduled on `node` again. Refused while a drain of it runs.
pub async fn uncordon(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
    node: &str,
) -> Result<()> {
    set_unschedulable(platform, actor, workspace, node, false).await
}

/// The latest drain step of one node.
#[derive(sqlx::FromRow)]
struct LastDrain {
    name: String,
    task_id: TaskId,
    task_state: TaskState,
    state: StepState,
    attempts: i32,
    message: Option<String>,
    progress_data: Option<sqlx::types::Json<Progress>>,
}

/// Every node of the tenant with its drain state
/// (`workspace.kubernetes.read`).
pub async fn statuses(
    platform: &Platform,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<Vec<NodeDrainStatus>> {
    authorized(
        platform,
        actor,
        workspace,
        Permission::WorkspaceKubernetesRead,
    )
    .await?;
    let client = tenant(platform, workspace).await?;
    let nodes = within(Api::<Node>::all(client).list(&ListParams::default()))
        .await?
        .items;
    // Per node, the step of the newest drain task that names it, unless it
    // ended before the node was last uncordoned through the portal.
    let last: Vec<LastDrain> = sqlx::query_as(
        "SELECT DISTINCT ON (s.name) s.name, t.id AS task_id, t.state AS task_state, s.state,
             s.attempts, s.message, s.progress_data
         FROM tasks t JOIN task_steps s ON s.task_id = t.id
         WHERE t.kind = $1 AND t.workspace_id = $2 AND s.name LIKE $3 || '%'
           AND (s.finished_at IS NULL OR s.finished_at > coalesce(
                 (SELECT max(a.occurred_at) FROM audit_log a
                  WHERE a.action = 'node.uncordon' AND a.target_id = $2::text
                    AND a.details->>'node' = substr(s.name, length($3) + 1)),
                 '-infinity'))
         ORDER BY s.name, t.created_at DESC, t.id DESC",
    )
    .bind(KIND)
    .bind(workspace)
    .bind(run::STEP_PREFIX)
    .fetch_all(platform.db())
    .await?;
    let mut last: HashMap<String, LastDrain> = last
        .into_iter()
        .filter_map(|d| {
            d.name
                .strip_prefix(run::STEP_PREFIX)
                .map(String::from)
                .map(|n| (n, d))
        })
        .collect();
    let mut statuses: Vec<NodeDrainStatus> = nodes
        .into_iter()
        .filter_map(|n| n.metadata.name.clone().map(|name| (name, n)))
        .map(|(name, node)| {
            let cordoned = node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            status_of(name.clone(), cordoned, last.remove(&name))
        })
        .collect();
    statuses.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(statuses)
}

fn status_of(node: String, cordoned: bool, last: Option<LastDrain>) -> NodeDrainStatus {
    let idle = if cordoned {
        NodeDrainState::Cordoned
    } else {
        NodeDrainState::Active
    };
    let mut status = NodeDrainStatus {
        node,
        state: idle.clone(),
        task: None,
        blocked_by: None,
        remaining: Vec::new(),
    };
    let Some(last) = last else {
        return status;
    };
    let progress = last.progress_data.map(|p| p.0).unwrap_or_default();
    let active = matches!(last.task_state, TaskState::Queued | TaskState::Running);
    status.task = Some(last.task_id);
    status.state = match last.state {
        // Running, or waiting to retry after trouble.
        StepState::Running => NodeDrainState::Draining,
        StepState::Pending if active && last.attempts > 0 => NodeDrainState::Draining,
        StepState::Succeeded if cordoned => NodeDrainState::Drained,
        StepState::Failed if cordoned => NodeDrainState::Failed {
            reason: last.message.unwrap_or_else(|| "the drain failed".into()),
        },
        _ => idle,
    };
    match status.state {
        NodeDrainState::Draining => {
            status.blocked_by = progress.blocked_by;
            status.remaining = progress.remaining;
        }
        NodeDrainState::Failed { .. } => status.remaining = progress.remaining,
        _ => {}
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_by_field() {
        let field = |o: DrainOptions| match validate_options(&o) {
            Err(Error::Invalid { field, .. }) => Some(field),
            _ => None,
        };
        let ok = DrainOptions::default();
        assert_eq!(field(ok), None);
        for t in [0, MAX_TIMEOUT_SECONDS + 1] {
            let o = DrainOptions {
                timeout_seconds: t,
                ..ok
            };
            assert_eq!(field(o).as_deref(), Some("timeout_seconds"));
        }
        for g in [-2, i64::from(u32::MAX) + 1] {
            let o = DrainOptions {
                grace_period_seconds: g,
                ..ok
            };
            assert_eq!(field(o).as_deref(), Some("grace_period_seconds"), "{g}");
        }
        for g in [-1, 0, 30] {
            let o = DrainOptions {
                grace_period_seconds: g,
                timeout_seconds: MAX_TIMEOUT_SECONDS,
                ..ok
            };
            assert_eq!(field(o), None);
        }
        assert!(validate_nodes(&[]).is_err());
        assert!(validate_nodes(&["a".into(), "a".into()]).is_err());
        assert!(validate_nodes(&["a".into(), "b".into()]).is_ok());
    }

    #[test]
    fn a_failed_drain_shows_only_while_the_node_stays_cordoned() {
        let last = |state| LastDrain {
            name: "drain n1".into(),
            task_id: TaskId(uuid::Uuid::nil()),
            task_state: TaskState::Failed,
            state,
            attempts: 1,
            message: Some("timed out after 5 s; remaining pods: a/b".into()),
            progress_data: Some(sqlx::types::Json(Progress {
                started_at: None,
                blocked_by: None,
                remaining: vec!["a/b".into()],
            })),
        };
        let s = status_of("n1".into(), true, Some(last(StepState::Failed)));
        assert_eq!(s.state.label(), "failed");
        assert_eq!(s.remaining, ["a/b"]);
        let s = status_of("n1".into(), false, Some(last(StepState::Failed)));
        assert_eq!(s.state, NodeDrainState::Active);
        let s = status_of("n1".into(), true, Some(last(StepState::Cancelled)));
        assert_eq!(s.state, NodeDrainState::Cordoned);
        assert_eq!(
            status_of("n1".into(), false, None).state,
            NodeDrainState::Active
        );
    }
}
