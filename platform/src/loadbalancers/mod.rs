//! Load balancers: the product object at project or workspace scope, the
//! backends that run it and the reconciler between them.
//!
//! A load balancer is a row holding its desired state (listeners, targets,
//! algorithm, health check) and what its backend last reported. Saving one
//! checks everything first and writes the row and its audit entry in one
//! transaction; the change is then applied at once (`reconcile::apply_now`)
//! and kept applied by the [`reconciler`], which also corrects drift and
//! removes load balancers marked for deletion.
//!
//! The backend is chosen once, at creation: the organization's Hetzner
//! Cloud provider when it has one, else the in-process `local` backend when
//! the portal runs with it.

pub mod backends;
pub mod cluster_api;
pub mod hetzner;
pub mod local;
pub mod reconcile;
pub mod spec;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use protocol::ids::{
    ComputeProviderId, HostId, LoadBalancerId, OrganizationId, ProjectId, WorkspaceId,
};
use protocol::views::load_balancers::{
    Algorithm, HealthCheck, HealthProtocol, Listener, LoadBalancerState, LoadBalancerView,
    NewLoadBalancer, TargetHealth, TargetRef, TargetView,
};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Grant, Permission, Resource, authorize};
use crate::error::{Error, Result};

pub use reconcile::reconciler;

const MAX_LISTENERS: usize = 10;
const MAX_TARGETS: usize = 100;
const MAX_INTERVAL_SECONDS: u32 = 3600;
const MAX_THRESHOLD: u32 = 10;

/// Where a load balancer lives: a project (targets from any of its
/// workspaces) or one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Project(ProjectId),
    Workspace(WorkspaceId),
}

impl Scope {
    fn resource(self) -> Resource {
        match self {
            Self::Project(p) => Resource::Project(p),
            Self::Workspace(w) => Resource::Workspace(w),
        }
    }
}

/// Which backend runs a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackendChoice {
    Local,
    HetznerCloud(ComputeProviderId),
}

impl BackendChoice {
    fn key(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::HetznerCloud(_) => "hetzner_cloud",
        }
    }

    fn provider(self) -> Option<ComputeProviderId> {
        match self {
            Self::Local => None,
            Self::HetznerCloud(p) => Some(p),
        }
    }
}

/// One target on one port as the backend last reported it (stored as
/// `target_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredTarget {
    pub address: IpAddr,
    pub port: u16,
    pub health: TargetHealth,
}

const VIEW: &str =
    "SELECT l.id, l.organization_id, l.project_id, l.workspace_id, l.name, l.backend,
        l.provider_id, l.backend_ref, l.state, l.address, l.listeners, l.targets, l.algorithm,
        l.health, l.target_status, l.drift, l.drift_at, l.last_error, l.service, l.reconciled_at,
        l.created_at, l.updated_at
    FROM load_balancers l";

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Row {
    pub id: LoadBalancerId,
    pub organization_id: OrganizationId,
    pub project_id: ProjectId,
    pub workspace_id: Option<WorkspaceId>,
    pub name: String,
    pub backend: String,
    pub provider_id: Option<ComputeProviderId>,
    pub backend_ref: Option<String>,
    pub state: LoadBalancerState,
    pub address: Option<String>,
    pub listeners: Json<Vec<Listener>>,
    pub targets: Json<Vec<TargetRef>>,
    pub algorithm: Json<Algorithm>,
    pub health: Json<HealthCheck>,
    pub target_status: Json<Vec<StoredTarget>>,
    pub drift: Option<String>,
    pub drift_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub service: Option<String>,
    pub reconciled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A target host as the reconciler and the views need it.
#[derive(Debug, Clone)]
pub(crate) struct TargetHost {
    pub hostname: String,
    /// `None` while the host has no address or is being deleted: it takes
    /// no traffic.
    pub address: Option<IpAddr>,
}

/// The hosts `targets` name, by id; hosts that no longer exist are absent.
pub(crate) async fn target_hosts(
    db: &PgPool,
    targets: impl IntoIterator<Item = TargetRef>,
) -> Result<HashMap<HostId, TargetHost>> {
    let ids: Vec<HostId> = targets
        .into_iter()
        .filter_map(|t| match t {
            TargetRef::Host { host } => Some(host),
            TargetRef::Ip { .. } => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(HostId, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT id, hostname, public_ipv4, state = 'deleting' FROM hosts WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, hostname, ipv4, deleting)| {
            let address = if deleting {
                None
            } else {
                ipv4.and_then(|a| a.parse().ok())
            };
            (id, TargetHost { hostname, address })
        })
        .collect())
}

/// The address traffic for `target` goes to now.
pub(crate) fn resolve(target: TargetRef, hosts: &HashMap<HostId, TargetHost>) -> Option<IpAddr> {
    match target {
        TargetRef::Ip { address } => Some(address),
        TargetRef::Host { host } => hosts.get(&host).and_then(|h| h.address),
    }
}

impl Row {
    /// The view, with target health from `live` (the local backend's
    /// current status) when given, else as last stored.
    fn view(
        self,
        hosts: &HashMap<HostId, TargetHost>,
        live: Option<spec::BalancerStatus>,
    ) -> LoadBalancerView {
        let (statuses, address) = match live {
            Some(status) => (
                status
                    .targets
                    .iter()
                    .map(|t| StoredTarget {
                        address: t.address,
                        port: t.port,
                        health: t.health,
                    })
                    .collect(),
                status.address.map(|a| a.to_string()).or(self.address),
            ),
            None => (self.target_status.0, self.address),
        };
        let targets = self
            .targets
            .0
            .iter()
            .map(|target| {
                let address = resolve(*target, hosts);
                let label = match target {
                    TargetRef::Ip { address } => address.to_string(),
                    TargetRef::Host { host } => hosts
                        .get(host)
                        .map(|h| h.hostname.clone())
                        .unwrap_or_else(|| "(deleted host)".into()),
                };
                let health = address
                    .map(|a| {
                        statuses
                            .iter()
                            .filter(|s| s.address == a)
                            .map(|s| (s.port, s.health))
                            .collect()
                    })
                    .unwrap_or_default();
                TargetView {
                    target: *target,
                    label,
                    address,
                    health,
                }
            })
            .collect();
        let drift = match (self.drift, self.drift_at) {
            (Some(drift), Some(at)) => Some(format!(
                "{drift} (corrected {})",
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            )),
            (drift, _) => drift,
        };
        LoadBalancerView {
            id: self.id,
            name: self.name,
            organization: self.organization_id,
            project: self.project_id,
            workspace: self.workspace_id,
            backend: self.backend,
            state: self.state,
            address,
            listeners: self.listeners.0,
            targets,
            algorithm: self.algorithm.0,
            health: self.health.0,
            drift,
            last_error: self.last_error,
            service: self.service,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Views of `rows`, resolving all their hosts in one query.
pub(crate) async fn views(platform: &Platform, rows: Vec<Row>) -> Result<Vec<LoadBalancerView>> {
    let hosts = target_hosts(
        platform.db(),
        rows.iter().flat_map(|r| r.targets.0.iter().copied()),
    )
    .await?;
    let local = platform.local_balancers();
    Ok(rows
        .into_iter()
        .map(|row| {
            let live = match (row.backend.as_str(), local) {
                ("local", Some(local)) if row.state != LoadBalancerState::Deleting => {
                    local.status(row.id)
                }
                _ => None,
            };
            row.view(&hosts, live)
        })
        .collect())
}

pub(crate) async fn row(db: &PgPool, id: LoadBalancerId) -> Result<Row> {
    sqlx::query_as(&format!("{VIEW} WHERE l.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound)
}

pub(crate) async fn view(platform: &Platform, id: LoadBalancerId) -> Result<LoadBalancerView> {
    let row = row(platform.db(), id).await?;
    views(platform, vec![row])
        .await?
        .pop()
        .ok_or(Error::NotFound)
}

/// Authorizes `permission` on the load balancer's scope; `NotFound` for
/// load balancers the caller may not know about.
async fn authorize_balancer(
    db: &PgPool,
    actor: &Actor,
    permission: Permission,
    id: LoadBalancerId,
) -> Result<(Grant, Scope)> {
    let scope: Option<(ProjectId, Option<WorkspaceId>)> =
        sqlx::query_as("SELECT project_id, workspace_id FROM load_balancers WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    let scope = match scope.ok_or(Error::NotFound)? {
        (_, Some(workspace)) => Scope::Workspace(workspace),
        (project, None) => Scope::Project(project),
    };
    let grant = authorize(db, actor, permission, scope.resource()).await?;
    Ok((grant, scope))
}

/// Load balancers of a workspace, or of a project (its own and those of
/// its workspaces).
pub async fn list(
    platform: &Platform,
    actor: &Actor,
    scope: Scope,
) -> Result<Vec<LoadBalancerView>> {
    let db = platform.db();
    authorize(db, actor, Permission::LoadBalancerRead, scope.resource()).await?;
    let rows: Vec<Row> = match scope {
        Scope::Project(project) => {
            sqlx::query_as(&format!(
                "{VIEW} WHERE l.project_id = $1 ORDER BY l.workspace_id NULLS FIRST, l.name"
            ))
            .bind(project)
            .fetch_all(db)
            .await?
        }
        Scope::Workspace(workspace) => {
            sqlx::query_as(&format!("{VIEW} WHERE l.workspace_id = $1 ORDER BY l.name"))
                .bind(workspace)
                .fetch_all(db)
                .await?
        }
    };
    views(platform, rows).await
}

pub async fn get(
    platform: &Platform,
    actor: &Actor,
    id: LoadBalancerId,
) -> Result<LoadBalancerView> {
    authorize_balancer(platform.db(), actor, Permission::LoadBalancerRead, id).await?;
    view(platform, id).await
}

/// The checked form of a [`NewLoadBalancer`].
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub name: String,
    pub listeners: Vec<Listener>,
    pub targets: Vec<TargetRef>,
    pub algorithm: Algorithm,
    pub health: HealthCheck,
}

/// Checks everything that needs no database.
pub(crate) fn check_shape(new: &NewLoadBalancer) -> Result<Desired> {
    let name = new.name.trim().to_string();
    crate::hosts::check_hostname(&name).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("name", message),
        other => other,
    })?;
    if new.listeners.is_empty() {
        return Err(Error::invalid("listeners", "add at least one listener"));
    }
    if new.listeners.len() > MAX_LISTENERS {
        return Err(Error::invalid(
            "listeners",
            format!("use at most {MAX_LISTENERS} listeners"),
        ));
    }
    let mut ports = HashSet::new();
    for (i, listener) in new.listeners.iter().enumerate() {
        if listener.port == 0 {
            return Err(Error::invalid(
                format!("listeners[{i}].port"),
                "use a port from 1 to 65535",
            ));
        }
        if listener.target_port == 0 {
            return Err(Error::invalid(
                format!("listeners[{i}].target_port"),
                "use a port from 1 to 65535",
            ));
        }
        if !ports.insert(listener.port) {
            return Err(Error::invalid(
                format!("listeners[{i}].port"),
                format!("port {} is already used by another listener", listener.port),
            ));
        }
    }
    if new.targets.len() > MAX_TARGETS {
        return Err(Error::invalid(
            "targets",
            format!("use at most {MAX_TARGETS} targets"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, target) in new.targets.iter().enumerate() {
        if let TargetRef::Ip { address } = target
            && !is_unicast(*address)
        {
            return Err(Error::invalid(
                format!("targets[{i}].address"),
                format!("{address} is not a unicast address"),
            ));
        }
        if !seen.insert(*target) {
            return Err(Error::invalid(
                format!("targets[{i}]"),
                "this target is listed twice",
            ));
        }
    }
    check_health(&new.health)?;
    Ok(Desired {
        name,
        listeners: new.listeners.clone(),
        targets: new.targets.clone(),
        algorithm: new.algorithm,
        health: new.health.clone(),
    })
}

fn is_unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

fn check_health(health: &HealthCheck) -> Result<()> {
    if health.port == Some(0) {
        return Err(Error::invalid("health.port", "use a port from 1 to 65535"));
    }
    if !(1..=MAX_INTERVAL_SECONDS).contains(&health.interval_seconds) {
        return Err(Error::invalid(
            "health.interval_seconds",
            format!("use 1 to {MAX_INTERVAL_SECONDS} seconds"),
        ));
    }
    // A check may take the whole interval, but not longer: the next one
    // would start before it ended.
    if health.timeout_seconds == 0 || health.timeout_seconds > health.interval_seconds {
        return Err(Error::invalid(
            "health.timeout_seconds",
            "use at least 1 second and at most the interval",
        ));
    }
    for (field, value) in [
        ("health.healthy_threshold", health.healthy_threshold),
        ("health.unhealthy_threshold", health.unhealthy_threshold),
    ] {
        if !(1..=MAX_THRESHOLD).contains(&value) {
            return Err(Error::invalid(
                field,
                format!("use 1 to {MAX_THRESHOLD} checks"),
            ));
        }
    }
    if health.protocol == HealthProtocol::Http {
        let path = &health.path;
        let usable = path.starts_with('/')
            && path.len() <= 255
            && path.bytes().all(|b| b.is_ascii_graphic());
        if !usable {
            return Err(Error::invalid(
                "health.path",
                "use a request path starting with /, without spaces, such as /healthz",
            ));
        }
    }
    Ok(())
}

/// Checks that every host target belongs to the scope.
pub(crate) async fn check_targets(
    conn: &mut PgConnection,
    scope: Scope,
    targets: &[TargetRef],
) -> Result<()> {
    let hosts: Vec<HostId> = targets
        .iter()
        .filter_map(|t| match t {
            TargetRef::Host { host } => Some(*host),
            TargetRef::Ip { .. } => None,
        })
        .collect();
    if hosts.is_empty() {
        return Ok(());
    }
    let found: Vec<HostId> = match scope {
        Scope::Workspace(workspace) => {
            sqlx::query_scalar("SELECT id FROM hosts WHERE id = ANY($1) AND workspace_id = $2")
                .bind(&hosts)
                .bind(workspace)
                .fetch_all(&mut *conn)
                .await?
        }
        Scope::Project(project) => {
            sqlx::query_scalar(
                "SELECT h.id FROM hosts h JOIN workspaces w ON w.id = h.workspace_id
                 WHERE h.id = ANY($1) AND w.project_id = $2",
            )
            .bind(&hosts)
            .bind(project)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    for (i, target) in targets.iter().enumerate() {
        if let TargetRef::Host { host } = target
            && !found.contains(host)
        {
            let place = match scope {
                Scope::Workspace(_) => "this workspace",
                Scope::Project(_) => "this project's workspaces",
            };
            return Err(Error::invalid(
                format!("targets[{i}].host"),
                format!("no such host in {place}"),
            ));
        }
    }
    Ok(())
}

/// The backend a new load balancer of `org` runs on.
pub(crate) async fn choose_backend(
    platform: &Platform,
    conn: &mut PgConnection,
    org: OrganizationId,
) -> Result<BackendChoice> {
    let hetzner: Option<ComputeProviderId> = sqlx::query_scalar(
        "SELECT id FROM compute_providers
         WHERE kind = 'hetzner_cloud' AND active AND (organization_id = $1 OR organization_id IS NULL)
         ORDER BY organization_id IS NULL, created_at LIMIT 1",
    )
    .bind(org)
    .fetch_optional(&mut *conn)
    .await?;
    match (hetzner, platform.local_balancers()) {
        (Some(provider), _) => Ok(BackendChoice::HetznerCloud(provider)),
        (None, Some(_)) => Ok(BackendChoice::Local),
        (None, None) => Err(Error::Conflict(
            "no load balancer backend is available for this organization".into(),
        )),
    }
}

/// Where a new row goes and who asked.
pub(crate) struct Placement {
    pub org: OrganizationId,
    pub project: ProjectId,
    pub workspace: Option<WorkspaceId>,
    pub backend: BackendChoice,
    pub service: Option<String>,
    pub by: Option<protocol::ids::AccountId>,
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    place: &Placement,
    desired: &Desired,
) -> Result<LoadBalancerId> {
    let id = LoadBalancerId::new();
    sqlx::query(
        "INSERT INTO load_balancers (id, organization_id, project_id, workspace_id, name, backend,
             provider_id, listeners, targets, algorithm, health, service, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(place.org)
    .bind(place.project)
    .bind(place.workspace)
    .bind(&desired.name)
    .bind(place.backend.key())
    .bind(place.backend.provider())
    .bind(Json(&desired.listeners))
    .bind(Json(&desired.targets))
    .bind(Json(desired.algorithm))
    .bind(Json(&desired.health))
    .bind(&place.service)
    .bind(place.by)
    .execute(&mut *conn)
    .await
    .map_err(Error::taken(
        "name",
        "a load balancer with this name exists in the project",
    ))?;
    Ok(id)
}

/// Writes the new desired state; refuses load balancers being deleted.
pub(crate) async fn store(
    conn: &mut PgConnection,
    id: LoadBalancerId,
    desired: &Desired,
) -> Result<()> {
    let state: LoadBalancerState =
        sqlx::query_scalar("SELECT state FROM load_balancers WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(Error::NotFound)?;
    if state == LoadBalancerState::Deleting {
        return Err(Error::Conflict("the load balancer is being deleted".into()));
    }
    sqlx::query(
        "UPDATE load_balancers SET name = $2, listeners = $3, targets = $4, algorithm = $5,
             health = $6, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&desired.name)
    .bind(Json(&desired.listeners))
    .bind(Json(&desired.targets))
    .bind(Json(desired.algorithm))
    .bind(Json(&desired.health))
    .execute(&mut *conn)
    .await
    .map_err(Error::taken(
        "name",
        "a load balancer with this name exists in the project",
    ))?;
    Ok(())
}

/// Marks a load balancer for deletion; the reconciler removes it at the
/// backend, then the row. `false` when it already was.
pub(crate) async fn mark_deleting(conn: &mut PgConnection, id: LoadBalancerId) -> Result<bool> {
    let marked = sqlx::query(
        "UPDATE load_balancers SET state = 'deleting', updated_at = now()
         WHERE id = $1 AND state <> 'deleting'",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(marked > 0)
}

pub(crate) fn audit_details(desired: &Desired) -> serde_json::Value {
    serde_json::json!({
        "name": desired.name,
        "listeners": desired.listeners,
        "targets": desired.targets,
        "algorithm": desired.algorithm,
        "health": desired.health,
    })
}

/// Creates a load balancer and applies it.
pub async fn create(
    platform: &Platform,
    actor: &Actor,
    scope: Scope,
    new: &NewLoadBalancer,
) -> Result<LoadBalancerView> {
    let db = platform.db();
    let grant = authorize(db, actor, Permission::LoadBalancerManage, scope.resource()).await?;
    let org = grant
        .organization_id
        .ok_or_else(|| Error::internal("a project grant has an organization"))?;
    let project = grant
        .project_id
        .ok_or_else(|| Error::internal("a project grant has a project"))?;
    let desired = check_shape(new)?;
    let mut tx = db.begin().await?;
    check_targets(&mut tx, scope, &desired.targets).await?;
    let backend = choose_backend(platform, &mut tx, org).await?;
    let workspace = match scope {
        Scope::Workspace(w) => Some(w),
        Scope::Project(_) => None,
    };
    let id = insert(
        &mut tx,
        &Placement {
            org,
            project,
            workspace,
            backend,
            service: None,
            by: Some(actor.account_id),
        },
        &desired,
    )
    .await?;
    let mut details = audit_details(&desired);
    details["backend"] = backend.key().into();
    details["project"] = serde_json::json!(project);
    details["workspace"] = serde_json::json!(workspace);
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("loadbalancer.create", "load_balancer", id)
            .in_org(org)
            .details(details),
    )
    .await?;
    tx.commit().await?;
    reconcile::apply_now(platform, id).await;
    view(platform, id).await
}

/// Replaces a load balancer's desired state and applies it.
pub async fn update(
    platform: &Platform,
    actor: &Actor,
    id: LoadBalancerId,
    new: &NewLoadBalancer,
) -> Result<LoadBalancerView> {
    let db = platform.db();
    let (grant, scope) = authorize_balancer(db, actor, Permission::LoadBalancerManage, id).await?;
    let desired = check_shape(new)?;
    let mut tx = db.begin().await?;
    check_targets(&mut tx, scope, &desired.targets).await?;
    store(&mut tx, id, &desired).await?;
    let mut entry =
        Entry::new("loadbalancer.update", "load_balancer", id).details(audit_details(&desired));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    reconcile::apply_now(platform, id).await;
    view(platform, id).await
}

/// Deletes a load balancer: at the backend first, then the record.
pub async fn delete(platform: &Platform, actor: &Actor, id: LoadBalancerId) -> Result<()> {
    let db = platform.db();
    let (grant, _) = authorize_balancer(db, actor, Permission::LoadBalancerManage, id).await?;
    let mut tx = db.begin().await?;
    if !mark_deleting(&mut tx, id).await? {
        return Err(Error::Conflict(
            "the load balancer is already being deleted".into(),
        ));
    }
    let mut entry = Entry::new("loadbalancer.delete", "load_balancer", id);
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    reconcile::apply_now(platform, id).await;
    Ok(())
}

/// How often the reconciler runs by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
