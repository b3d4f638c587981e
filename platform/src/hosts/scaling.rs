//! Scaling groups: a desired number of hosts of one profile. A reconciler
//! orders or deletes one host at a time per group until the group has what
//! it wants; while a host of the group is being ordered or deleted the group
//! waits, so a group never has more than one change in flight.

use protocol::ids::{ScalingGroupId, WorkspaceId};
use protocol::views::{HostState, NewScalingGroup, ScalingGroupView};
use sqlx::PgPool;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};
use crate::tasks::{ReconcileOutcome, Reconciler};

const MAX_DESIRED: i32 = 100;

const VIEW: &str = "SELECT g.id, g.workspace_id, g.name, g.profile_id, c.name AS profile, g.desired,
        (SELECT count(*) FROM hosts h WHERE h.scaling_group_id = g.id AND h.state <> 'deleting') AS current,
        g.status
    FROM scaling_groups g JOIN compute_profiles c ON c.id = g.profile_id";

fn check_desired(desired: i32) -> Result<()> {
    if (0..=MAX_DESIRED).contains(&desired) {
        Ok(())
    } else {
        Err(Error::invalid(
            "desired",
            format!("use a number from 0 to {MAX_DESIRED}"),
        ))
    }
}

pub async fn list(
    db: &PgPool,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<Vec<ScalingGroupView>> {
    authorize(
        db,
        actor,
        Permission::HostRead,
        Resource::Workspace(workspace),
    )
    .await?;
    Ok(
        sqlx::query_as(&format!("{VIEW} WHERE g.workspace_id = $1 ORDER BY g.name"))
            .bind(workspace)
            .fetch_all(db)
            .await?,
    )
}

pub async fn create(
    db: &PgPool,
    actor: &Actor,
    workspace: WorkspaceId,
    new: &NewScalingGroup,
) -> Result<ScalingGroupId> {
    let grant = authorize(
        db,
        actor,
        Permission::HostCreate,
        Resource::Workspace(workspace),
    )
    .await?;
    let name = new.name.trim();
    // Host names are derived from it: `<group>-<5 characters>`.
    if name.len() > 56 {
        return Err(Error::invalid("name", "use at most 56 characters"));
    }
    super::check_hostname(name).map_err(|_| {
        Error::invalid(
            "name",
            "use lowercase letters, digits and dashes, starting and ending with a letter or digit",
        )
    })?;
    check_desired(new.desired)?;
    let active: Option<bool> =
        sqlx::query_scalar("SELECT active FROM compute_profiles WHERE id = $1")
            .bind(new.compute_profile)
            .fetch_optional(db)
            .await?;
    if active != Some(true) {
        return Err(Error::invalid(
            "compute_profile",
            "choose an active compute profile",
        ));
    }
    let id = ScalingGroupId::new();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO scaling_groups (id, workspace_id, name, profile_id, desired)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(workspace)
    .bind(name)
    .bind(new.compute_profile)
    .bind(new.desired)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a scaling group with this name exists in the workspace",
    ))?;
    let mut entry = Entry::new("scaling_group.create", "scaling_group", id).details(
        serde_json::json!({ "name": name, "workspace": workspace, "compute_profile": new.compute_profile, "desired": new.desired }),
    );
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(id)
}

async fn workspace_of(db: &PgPool, group: ScalingGroupId) -> Result<WorkspaceId> {
    sqlx::query_scalar("SELECT workspace_id FROM scaling_groups WHERE id = $1")
        .bind(group)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn set_desired(
    db: &PgPool,
    actor: &Actor,
    group: ScalingGroupId,
    desired: i32,
) -> Result<()> {
    let workspace = workspace_of(db, group).await?;
    let grant = authorize(
        db,
        actor,
        Permission::HostCreate,
        Resource::Workspace(workspace),
    )
    .await?;
    check_desired(desired)?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE scaling_groups SET desired = $2, updated_at = now() WHERE id = $1")
        .bind(group)
        .bind(desired)
        .execute(&mut *tx)
        .await?;
    let mut entry = Entry::new("scaling_group.update", "scaling_group", group)
        .details(serde_json::json!({ "desired": desired }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes an empty group (scale it to 0 first).
pub async fn delete(db: &PgPool, actor: &Actor, group: ScalingGroupId) -> Result<()> {
    let workspace = workspace_of(db, group).await?;
    let grant = authorize(
        db,
        actor,
        Permission::HostDelete,
        Resource::Workspace(workspace),
    )
    .await?;
    let mut tx = db.begin().await?;
    let hosts: i64 = sqlx::query_scalar("SELECT count(*) FROM hosts WHERE scaling_group_id = $1")
        .bind(group)
        .fetch_one(&mut *tx)
        .await?;
    if hosts > 0 {
        return Err(Error::Conflict(format!(
            "the group still has {hosts} hosts; set its desired count to 0 and wait for them to go"
        )));
    }
    sqlx::query("DELETE FROM scaling_groups WHERE id = $1")
        .bind(group)
        .execute(&mut *tx)
        .await?;
    let mut entry = Entry::new("scaling_group.delete", "scaling_group", group);
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Group {
    id: ScalingGroupId,
    workspace_id: WorkspaceId,
    organization_id: protocol::ids::OrganizationId,
    name: String,
    profile_id: protocol::ids::ComputeProfileId,
    desired: i32,
}

/// What one pass did to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Ordered(protocol::ids::HostId),
    Deleting(protocol::ids::HostId),
    Waiting,
    Converged,
    Failed(String),
}

/// One pass over every group: at most one change per group.
pub async fn converge(platform: &Platform) -> Result<Vec<(ScalingGroupId, Change)>> {
    let db = platform.db();
    let groups: Vec<Group> = sqlx::query_as(
        "SELECT g.id, g.workspace_id, p.organization_id, g.name, g.profile_id, g.desired
         FROM scaling_groups g JOIN workspaces w ON w.id = g.workspace_id
         JOIN projects p ON p.id = w.project_id
         WHERE w.state = 'active' ORDER BY g.id",
    )
    .fetch_all(db)
    .await?;
    let mut changes = Vec::with_capacity(groups.len());
    for group in groups {
        let change = match converge_one(db, &group).await {
            Ok(change) => change,
            Err(e) => Change::Failed(e.to_string()),
        };
        let status = match &change {
            Change::Ordered(_) => "ordering a host".to_string(),
            Change::Deleting(_) => "removing a host".to_string(),
            Change::Waiting => "waiting for a host change to finish".to_string(),
            Change::Converged => "converged".to_string(),
            Change::Failed(e) => format!("cannot converge: {e}"),
        };
        sqlx::query("UPDATE scaling_groups SET status = $2 WHERE id = $1")
            .bind(group.id)
            .bind(status)
            .execute(db)
            .await?;
        changes.push((group.id, change));
    }
    Ok(changes)
}

async fn converge_one(db: &PgPool, group: &Group) -> Result<Change> {
    let mut tx = db.begin().await?;
    // Two replicas must not both act on a group.
    sqlx::query("SELECT 1 FROM scaling_groups WHERE id = $1 FOR UPDATE")
        .bind(group.id)
        .execute(&mut *tx)
        .await?;
    let hosts: Vec<(protocol::ids::HostId, HostState)> = sqlx::query_as(
        "SELECT id, state FROM hosts WHERE scaling_group_id = $1
         ORDER BY state = 'error' DESC, created_at DESC",
    )
    .bind(group.id)
    .fetch_all(&mut *tx)
    .await?;
    let in_flight = hosts.iter().any(|(_, s)| {
        matches!(
            s,
            HostState::Provisioning
                | HostState::Bootstrapping
                | HostState::Joining
                | HostState::Deleting
        )
    });
    if in_flight {
        return Ok(Change::Waiting);
    }
    let current = i32::try_from(hosts.len()).unwrap_or(i32::MAX);
    let change = if current < group.desired {
        let suffix = super::random_name(5);
        let hostname = format!("{}-{suffix}", group.name);
        let ordered = super::place_order(
            &mut tx,
            super::PlaceOrder {
                org: group.organization_id,
                workspace: group.workspace_id,
                hostname: &hostname,
                profile: group.profile_id,
                metadata: &Default::default(),
                scaling_group: Some(group.id),
                by: None,
            },
        )
        .await?;
        audit::record(
            &mut tx,
            By::System,
            Entry::new("host.create", "host", ordered.host)
                .in_org(group.organization_id)
                .details(serde_json::json!({ "hostname": hostname, "scaling_group": group.id })),
        )
        .await?;
        Change::Ordered(ordered.host)
    } else if current > group.desired {
        // Hosts in error go first, then the newest.
        let (victim, _) = hosts[0];
        super::start_delete(&mut tx, victim, None).await?;
        audit::record(
            &mut tx,
            By::System,
            Entry::new("host.delete", "host", victim)
                .in_org(group.organization_id)
                .details(serde_json::json!({ "scaling_group": group.id })),
        )
        .await?;
        Change::Deleting(victim)
    } else {
        Change::Converged
    };
    tx.commit().await?;
    Ok(change)
}

pub fn reconciler(platform: Platform, interval: std::time::Duration) -> Reconciler {
    Reconciler::new(
        "hosts.scaling_groups",
        interval,
        std::time::Duration::from_secs(60),
        move || {
            let platform = platform.clone();
            async move {
                let changes = converge(&platform).await.map_err(|e| e.to_string())?;
                let acted = changes
                    .iter()
                    .filter(|(_, c)| matches!(c, Change::Ordered(_) | Change::Deleting(_)))
                    .count();
                Ok(ReconcileOutcome::new(format!(
                    "{} groups, {acted} changes",
                    changes.len()
                )))
            }
        },
    )
}
