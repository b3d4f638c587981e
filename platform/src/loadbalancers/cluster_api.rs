//! The in-cluster integration: a component in the tenant cluster (holding
//! the workspace API key the provisioning pipeline placed there) creates,
//! changes and deletes the load balancer of each Service of type
//! LoadBalancer and reads back its address.
//!
//! A workspace API key is not an account: it reaches only the load
//! balancers its workspace made through this API, keyed by the Service's
//! `namespace/name`. Its changes are audited as the system acting for the
//! workspace, with the key's visible prefix.

use protocol::ids::{LoadBalancerId, OrganizationId, ProjectId, WorkspaceId};
use protocol::views::load_balancers::{
    LoadBalancerView, NewLoadBalancer, ServiceLoadBalancer, ServiceLoadBalancerStatus, TargetRef,
};
use sqlx::PgPool;

use super::{Placement, Scope};
use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::crypto::token_digest;
use crate::error::{Error, Result};

/// Every workspace API key starts with this.
pub const KEY_PREFIX: &str = "lbw_";

/// A caller authenticated by a workspace API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceKey {
    pub workspace: WorkspaceId,
    pub project: ProjectId,
    pub organization: OrganizationId,
    /// The key's visible prefix, for the audit log.
    pub prefix: String,
}

/// The workspace behind a bearer key, or `Unauthenticated`. Keys of
/// workspaces being deleted authenticate nothing.
pub async fn authenticate(db: &PgPool, secret: &str) -> Result<WorkspaceKey> {
    if !secret.starts_with(KEY_PREFIX) {
        return Err(Error::Unauthenticated);
    }
    let row: Option<(WorkspaceId, ProjectId, OrganizationId, Option<String>)> = sqlx::query_as(
        "SELECT w.id, w.project_id, p.organization_id, w.api_key_prefix
         FROM workspaces w JOIN projects p ON p.id = w.project_id
         WHERE w.api_key_prefix = $1 AND w.api_key_hash = $2 AND w.state <> 'deleting'",
    )
    // The prefix is indexed; the digest decides.
    .bind(secret.get(..12).unwrap_or(secret))
    .bind(token_digest(secret))
    .fetch_optional(db)
    .await?;
    let (workspace, project, organization, prefix) = row.ok_or(Error::Unauthenticated)?;
    Ok(WorkspaceKey {
        workspace,
        project,
        organization,
        prefix: prefix.unwrap_or_default(),
    })
}

/// A Service's `namespace/name`, checked as Kubernetes names.
pub fn service_key(namespace: &str, name: &str) -> Result<String> {
    for (field, value) in [("namespace", namespace), ("name", name)] {
        let ok = !value.is_empty()
            && value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-');
        if !ok {
            return Err(Error::invalid(
                field,
                "use a Kubernetes name: up to 63 lowercase letters, digits and dashes",
            ));
        }
    }
    Ok(format!("{namespace}/{name}"))
}

/// The load balancer's name in the portal: derived from the Service, with
/// a short digest so different Services never collide after shortening.
fn balancer_name(workspace: WorkspaceId, service: &str) -> String {
    let digest = hex::encode(token_digest(&format!("{workspace}/{service}")));
    let base: String = service
        .chars()
        .map(|c| if c == '/' { '-' } else { c })
        .take(50)
        .collect();
    format!("{}-{}", base.trim_end_matches('-'), &digest[..8])
}

fn status(view: LoadBalancerView) -> ServiceLoadBalancerStatus {
    ServiceLoadBalancerStatus {
        id: view.id,
        service: view.service.unwrap_or_default(),
        name: view.name,
        state: view.state,
        address: view.address,
        listeners: view.listeners,
        targets: view.targets,
        last_error: view.last_error,
    }
}

async fn find(db: &PgPool, key: &WorkspaceKey, service: &str) -> Result<Option<LoadBalancerId>> {
    Ok(
        sqlx::query_scalar(
            "SELECT id FROM load_balancers WHERE workspace_id = $1 AND service = $2",
        )
        .bind(key.workspace)
        .bind(service)
        .fetch_optional(db)
        .await?,
    )
}

/// The workspace's in-cluster load balancers.
pub async fn list(
    platform: &Platform,
    key: &WorkspaceKey,
) -> Result<Vec<ServiceLoadBalancerStatus>> {
    let rows: Vec<super::Row> = sqlx::query_as(&format!(
        "{} WHERE l.workspace_id = $1 AND l.service IS NOT NULL ORDER BY l.service",
        super::VIEW
    ))
    .bind(key.workspace)
    .fetch_all(platform.db())
    .await?;
    Ok(super::views(platform, rows)
        .await?
        .into_iter()
        .map(status)
        .collect())
}

pub async fn get(
    platform: &Platform,
    key: &WorkspaceKey,
    namespace: &str,
    name: &str,
) -> Result<ServiceLoadBalancerStatus> {
    let service = service_key(namespace, name)?;
    let id = find(platform.db(), key, &service)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(status(super::view(platform, id).await?))
}

/// Creates or updates the Service's load balancer (idempotent); `true`
/// when it was created.
pub async fn put(
    platform: &Platform,
    key: &WorkspaceKey,
    namespace: &str,
    name: &str,
    body: &ServiceLoadBalancer,
) -> Result<(bool, ServiceLoadBalancerStatus)> {
    let db = platform.db();
    let service = service_key(namespace, name)?;
    let usable: Option<(String, String)> =
        sqlx::query_as("SELECT verification::text, state::text FROM organizations WHERE id = $1")
            .bind(key.organization)
            .fetch_optional(db)
            .await?;
    match usable {
        Some((verification, _)) if verification != "verified" => {
            return Err(Error::OrganizationNotUsable(format!(
                "{verification} verification"
            )));
        }
        Some((_, state)) if state != "active" => return Err(Error::OrganizationNotUsable(state)),
        Some(_) => {}
        None => return Err(Error::Unauthenticated),
    }
    let targets = if body.targets.is_empty() {
        // Every host of the workspace as it is now.
        let hosts: Vec<protocol::ids::HostId> = sqlx::query_scalar(
            "SELECT id FROM hosts WHERE workspace_id = $1 AND state <> 'deleting' ORDER BY hostname",
        )
        .bind(key.workspace)
        .fetch_all(db)
        .await?;
        hosts
            .into_iter()
            .map(|host| TargetRef::Host { host })
            .collect()
    } else {
        body.targets.clone()
    };
    let new = NewLoadBalancer {
        name: balancer_name(key.workspace, &service),
        listeners: body.listeners.clone(),
        targets,
        algorithm: body.algorithm,
        health: body.health.clone().unwrap_or_default(),
    };
    let desired = super::check_shape(&new)?;
    let scope = Scope::Workspace(key.workspace);
    let mut tx = db.begin().await?;
    // Two requests for one Service at once: the second waits and updates.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("loadbalancer-service:{}:{service}", key.workspace))
        .execute(&mut *tx)
        .await?;
    super::check_targets(&mut tx, scope, &desired.targets).await?;
    let existing = find_in(&mut tx, key, &service).await?;
    let (id, action, created) = match existing {
        Some(id) => {
            super::store(&mut tx, id, &desired).await?;
            (id, "loadbalancer.update", false)
        }
        None => {
            let backend = super::choose_backend(platform, &mut tx, key.organization).await?;
            let id = super::insert(
                &mut tx,
                &Placement {
                    org: key.organization,
                    project: key.project,
                    workspace: Some(key.workspace),
                    backend,
                    service: Some(service.clone()),
                    by: None,
                },
                &desired,
            )
            .await?;
            (id, "loadbalancer.create", true)
        }
    };
    let mut details = super::audit_details(&desired);
    details["service"] = service.clone().into();
    details["workspace"] = serde_json::json!(key.workspace);
    details["via"] = "workspace_api_key".into();
    details["key_prefix"] = key.prefix.clone().into();
    audit::record(
        &mut tx,
        By::System,
        Entry::new(action, "load_balancer", id)
            .in_org(key.organization)
            .details(details),
    )
    .await?;
    tx.commit().await?;
    super::reconcile::apply_now(platform, id).await;
    Ok((created, status(super::view(platform, id).await?)))
}

async fn find_in(
    conn: &mut sqlx::PgConnection,
    key: &WorkspaceKey,
    service: &str,
) -> Result<Option<LoadBalancerId>> {
    Ok(
        sqlx::query_scalar(
            "SELECT id FROM load_balancers WHERE workspace_id = $1 AND service = $2",
        )
        .bind(key.workspace)
        .bind(service)
        .fetch_optional(conn)
        .await?,
    )
}

/// Deletes the Service's load balancer; `NotFound` when it has none.
pub async fn delete(
    platform: &Platform,
    key: &WorkspaceKey,
    namespace: &str,
    name: &str,
) -> Result<()> {
    let db = platform.db();
    let service = service_key(namespace, name)?;
    let mut tx = db.begin().await?;
    let id = find_in(&mut tx, key, &service)
        .await?
        .ok_or(Error::NotFound)?;
    // Deleting twice is the outcome wanted, not a conflict.
    if super::mark_deleting(&mut tx, id).await? {
        audit::record(
            &mut tx,
            By::System,
            Entry::new("loadbalancer.delete", "load_balancer", id)
                .in_org(key.organization)
                .details(serde_json::json!({
                    "service": service, "workspace": key.workspace,
                    "via": "workspace_api_key", "key_prefix": key.prefix,
                })),
        )
        .await?;
    }
    tx.commit().await?;
    super::reconcile::apply_now(platform, id).await;
    Ok(())
}
