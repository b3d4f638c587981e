//! Hosts: machines in a workspace, ordered from a compute provider, running
//! the Loopback agent.
//!
//! Ordering writes the host and its agent token and queues the
//! [`order::Order`] task in one transaction; the task provisions the server,
//! bootstraps the agent, waits for its first heartbeat and, in Kubernetes
//! workspaces, joins the node. Nothing is written when a check fails.

pub mod hub;
pub mod order;
pub mod releases;
pub mod scaling;
pub mod shell;
pub mod tokens;

use std::collections::BTreeMap;

use protocol::agent::HostFacts;
use protocol::ids::{
    ComputeProfileId, ComputeProviderId, HostId, OrganizationId, TaskId, WorkspaceId,
};
use protocol::views::{
    HostDetails, HostState, HostView, NewHost, OrderedHost, PowerRequest, PowerState, ProviderKind,
};
use sqlx::{PgConnection, PgPool};

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Grant, Permission, Resource, authorize};
use crate::error::{Error, Result};
use crate::providers::PowerAction;
use crate::tasks::{self, Target};

/// A host name as DNS and the providers accept it: one RFC 1123 label.
pub fn check_hostname(hostname: &str) -> Result<()> {
    let problem = if hostname.is_empty() {
        Some("give the host a name")
    } else if hostname.len() > 63 {
        Some("use at most 63 characters")
    } else if !hostname
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("use lowercase letters, digits and dashes only")
    } else if hostname.starts_with('-') || hostname.ends_with('-') {
        Some("start and end with a letter or digit")
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::invalid("hostname", message)),
        None => Ok(()),
    }
}

/// `n` random lowercase letters and digits (host name suffixes, kubeadm
/// token parts).
pub(crate) fn random_name(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

const VIEW: &str = "SELECT h.id, h.workspace_id, h.hostname, c.name AS profile, p.name AS provider,
        g.name AS scaling_group, h.state, h.error, h.power, h.public_ipv4, h.online, h.last_seen_at,
        h.agent_version, h.created_at
    FROM hosts h JOIN compute_profiles c ON c.id = h.profile_id
    LEFT JOIN compute_providers p ON p.id = h.provider_id
    LEFT JOIN scaling_groups g ON g.id = h.scaling_group_id";

#[derive(sqlx::FromRow)]
struct Row {
    id: HostId,
    workspace_id: WorkspaceId,
    hostname: String,
    profile: String,
    provider: Option<String>,
    scaling_group: Option<String>,
    state: HostState,
    error: Option<String>,
    power: PowerState,
    public_ipv4: Option<String>,
    online: bool,
    last_seen_at: Option<time::OffsetDateTime>,
    agent_version: Option<String>,
    created_at: time::OffsetDateTime,
}

impl From<Row> for HostView {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            workspace_id: r.workspace_id,
            hostname: r.hostname,
            profile: r.profile,
            provider: r.provider,
            scaling_group: r.scaling_group,
            state: r.state,
            error: r.error,
            power: r.power,
            public_ipv4: r.public_ipv4,
            online: r.online,
            last_seen_at: r.last_seen_at,
            agent_version: r.agent_version,
            created_at: r.created_at,
        }
    }
}

/// The workspace a host belongs to, or `NotFound`.
pub(crate) async fn workspace_of(db: &PgPool, host: HostId) -> Result<WorkspaceId> {
    sqlx::query_scalar("SELECT workspace_id FROM hosts WHERE id = $1")
        .bind(host)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound)
}

/// Authorizes `permission` on the host's workspace.
pub(crate) async fn authorize_host(
    db: &PgPool,
    actor: &Actor,
    permission: Permission,
    host: HostId,
) -> Result<Grant> {
    let workspace = workspace_of(db, host).await?;
    authorize(db, actor, permission, Resource::Workspace(workspace)).await
}

pub async fn list(db: &PgPool, actor: &Actor, workspace: WorkspaceId) -> Result<Vec<HostView>> {
    authorize(
        db,
        actor,
        Permission::HostRead,
        Resource::Workspace(workspace),
    )
    .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} WHERE h.workspace_id = $1 ORDER BY h.hostname"
    ))
    .bind(workspace)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn get(db: &PgPool, actor: &Actor, host: HostId) -> Result<HostView> {
    authorize_host(db, actor, Permission::HostRead, host).await?;
    view(db, host).await
}

pub(crate) async fn view(db: &PgPool, host: HostId) -> Result<HostView> {
    let row: Row = sqlx::query_as(&format!("{VIEW} WHERE h.id = $1"))
        .bind(host)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(row.into())
}

pub async fn details(db: &PgPool, actor: &Actor, host: HostId) -> Result<HostDetails> {
    let grant = authorize_host(db, actor, Permission::HostRead, host).await?;
    let view = view(db, host).await?;
    #[allow(clippy::type_complexity)]
    let (workspace_name, server_id, private_ipv4, metadata, facts): (
        String,
        Option<String>,
        Option<String>,
        sqlx::types::Json<BTreeMap<String, String>>,
        Option<sqlx::types::Json<HostFacts>>,
    ) = sqlx::query_as(
        "SELECT w.name, h.server_id, h.private_ipv4, h.metadata, h.facts
         FROM hosts h JOIN workspaces w ON w.id = h.workspace_id WHERE h.id = $1",
    )
    .bind(host)
    .fetch_one(db)
    .await?;
    let tokens = sqlx::query_as(
        "SELECT id, prefix, created_at, last_used_at, revoked_at FROM agent_tokens
         WHERE host_id = $1 ORDER BY created_at DESC",
    )
    .bind(host)
    .fetch_all(db)
    .await?;
    let sessions = shell::list_for_host(db, host, 20).await?;
    let task: Option<TaskId> = sqlx::query_scalar(
        "SELECT t.id FROM tasks t
         WHERE t.input->>'host' = $1::text AND t.kind = ANY($2)
         ORDER BY t.created_at DESC LIMIT 1",
    )
    .bind(host.to_string())
    .bind([order::Order::KIND_NAME, order::Delete::KIND_NAME])
    .fetch_optional(db)
    .await?;
    Ok(HostDetails {
        host: view,
        workspace_name,
        organization_id: grant
            .organization_id
            .ok_or_else(|| Error::internal("a host's grant has an organization"))?,
        server_id,
        private_ipv4,
        metadata: metadata.0,
        facts: facts.map(|f| f.0),
        tokens,
        sessions,
        task,
    })
}

/// The provider account hosts of `kind` are ordered from for `org`: one the
/// organization claimed, else a pool account.
async fn provider_for(
    conn: &mut PgConnection,
    kind: ProviderKind,
    org: OrganizationId,
) -> Result<Option<ComputeProviderId>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM compute_providers
         WHERE kind = $1 AND active AND (organization_id = $2 OR organization_id IS NULL)
         ORDER BY organization_id IS NULL, created_at LIMIT 1",
    )
    .bind(kind)
    .bind(org)
    .fetch_optional(conn)
    .await?)
}

/// Orders a host: checks everything, then writes the host, its agent token
/// and the order task together.
pub async fn order(
    db: &PgPool,
    actor: &Actor,
    workspace: WorkspaceId,
    new: &NewHost,
) -> Result<OrderedHost> {
    let grant = authorize(
        db,
        actor,
        Permission::HostCreate,
        Resource::Workspace(workspace),
    )
    .await?;
    let org = grant
        .organization_id
        .ok_or_else(|| Error::internal("a workspace grant has an organization"))?;
    let hostname = new.hostname.trim().to_string();
    check_hostname(&hostname)?;
    crate::workspaces::check_metadata(&new.metadata)?;
    let mut tx = db.begin().await?;
    let created = place_order(
        &mut tx,
        PlaceOrder {
            org,
            workspace,
            hostname: &hostname,
            profile: new.compute_profile,
            metadata: &new.metadata,
            scaling_group: None,
            by: Some(actor.account_id),
        },
    )
    .await?;
    let mut entry = Entry::new("host.create", "host", created.host).details(serde_json::json!({
        "hostname": hostname, "workspace": workspace, "compute_profile": new.compute_profile,
        "metadata": new.metadata,
    }));
    entry.organization_id = Some(org);
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(created)
}

pub(crate) struct PlaceOrder<'a> {
    pub org: OrganizationId,
    pub workspace: WorkspaceId,
    pub hostname: &'a str,
    pub profile: ComputeProfileId,
    pub metadata: &'a BTreeMap<String, String>,
    pub scaling_group: Option<protocol::ids::ScalingGroupId>,
    pub by: Option<protocol::ids::AccountId>,
}

/// The checks and writes of an order, in the caller's transaction (scaling
/// groups order the same way).
pub(crate) async fn place_order(
    tx: &mut PgConnection,
    order: PlaceOrder<'_>,
) -> Result<OrderedHost> {
    let workspace_state: String =
        sqlx::query_scalar("SELECT state::text FROM workspaces WHERE id = $1")
            .bind(order.workspace)
            .fetch_one(&mut *tx)
            .await?;
    if workspace_state != "active" {
        return Err(Error::Conflict(format!(
            "the workspace is {workspace_state}; hosts can be ordered once it is active"
        )));
    }
    let profile: Option<(ProviderKind, bool)> =
        sqlx::query_as("SELECT provider_kind, active FROM compute_profiles WHERE id = $1")
            .bind(order.profile)
            .fetch_optional(&mut *tx)
            .await?;
    let kind = match profile {
        None => return Err(Error::invalid("compute_profile", "no such compute profile")),
        Some((_, false)) => {
            return Err(Error::invalid(
                "compute_profile",
                "this compute profile is no longer offered; choose an active one",
            ));
        }
        Some((kind, true)) => kind,
    };
    let provider = provider_for(&mut *tx, kind, order.org).await?.ok_or_else(|| {
        Error::invalid(
            "compute_profile",
            format!(
                "no {} provider is available for this organization; choose another profile or ask an operator",
                kind.label()
            ),
        )
    })?;
    // Serialise orders per organization so two at once cannot both pass
    // the limit.
    let limit: i32 =
        sqlx::query_scalar("SELECT host_limit FROM organizations WHERE id = $1 FOR UPDATE")
            .bind(order.org)
            .fetch_one(&mut *tx)
            .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM hosts WHERE organization_id = $1")
        .bind(order.org)
        .fetch_one(&mut *tx)
        .await?;
    if count >= i64::from(limit) {
        return Err(Error::invalid(
            "compute_profile",
            format!(
                "the organization has reached its limit of {limit} hosts; delete a host or ask an operator to raise the limit"
            ),
        ));
    }
    let host = HostId::new();
    sqlx::query(
        "INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, provider_id,
             scaling_group_id, metadata, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(host)
    .bind(order.org)
    .bind(order.workspace)
    .bind(order.hostname)
    .bind(order.profile)
    .bind(provider)
    .bind(order.scaling_group)
    .bind(sqlx::types::Json(order.metadata))
    .bind(order.by)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken(
        "hostname",
        "a host with this name exists in the workspace",
    ))?;
    let task = tasks::enqueue(
        &mut *tx,
        &order::Order { host },
        Target {
            organization: Some(order.org),
            workspace: Some(order.workspace),
        },
        order.by,
    )
    .await?;
    Ok(OrderedHost { host, task })
}

/// Starts deleting a host: a task deletes the server at the provider, then
/// the record.
pub async fn delete(db: &PgPool, actor: &Actor, host: HostId) -> Result<TaskId> {
    let grant = authorize_host(db, actor, Permission::HostDelete, host).await?;
    let mut tx = db.begin().await?;
    let task = start_delete(&mut tx, host, Some(actor.account_id)).await?;
    let mut entry = Entry::new("host.delete", "host", host);
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(task)
}

pub(crate) async fn start_delete(
    tx: &mut PgConnection,
    host: HostId,
    by: Option<protocol::ids::AccountId>,
) -> Result<TaskId> {
    let (state, org, workspace): (HostState, OrganizationId, WorkspaceId) = sqlx::query_as(
        "SELECT state, organization_id, workspace_id FROM hosts WHERE id = $1 FOR UPDATE",
    )
    .bind(host)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if state == HostState::Deleting {
        return Err(Error::Conflict("the host is already being deleted".into()));
    }
    // An order still running would race the deletion; it stops at its next
    // step when cancelled.
    tasks::cancel_matching(&mut *tx, order::Order::KIND_NAME, "host", &host.to_string()).await?;
    sqlx::query("UPDATE hosts SET state = 'deleting', updated_at = now() WHERE id = $1")
        .bind(host)
        .execute(&mut *tx)
        .await?;
    // The agent must not linger connected to a host being deleted.
    let revoked: Vec<protocol::ids::AgentTokenId> = sqlx::query_scalar(
        "UPDATE agent_tokens SET revoked_at = now() WHERE host_id = $1 AND revoked_at IS NULL
         RETURNING id",
    )
    .bind(host)
    .fetch_all(&mut *tx)
    .await?;
    for token in revoked {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(tokens::REVOKED_CHANNEL)
            .bind(token.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tasks::enqueue(
        &mut *tx,
        &order::Delete { host },
        Target {
            organization: Some(org),
            workspace: Some(workspace),
        },
        by,
    )
    .await
}

/// Powers a host on or off, or resets it, through its provider.
pub async fn power(
    platform: &Platform,
    actor: &Actor,
    host: HostId,
    request: PowerRequest,
) -> Result<HostView> {
    let db = platform.db();
    let grant = authorize_host(db, actor, Permission::HostPower, host).await?;
    let (provider, server_id, state): (Option<ComputeProviderId>, Option<String>, HostState) =
        sqlx::query_as("SELECT provider_id, server_id, state FROM hosts WHERE id = $1")
            .bind(host)
            .fetch_one(db)
            .await?;
    let (Some(provider), Some(server_id)) = (provider, server_id) else {
        return Err(Error::Conflict(
            "the host has no server at a provider yet".into(),
        ));
    };
    if state == HostState::Deleting {
        return Err(Error::Conflict("the host is being deleted".into()));
    }
    let client = crate::compute::providers::client(platform, provider).await?;
    let action = match request {
        PowerRequest::On => PowerAction::On,
        PowerRequest::Off => PowerAction::Off,
        PowerRequest::Reset => PowerAction::Reset,
    };
    let outcome = client.power(&server_id, action).await;
    let mut tx = db.begin().await?;
    let mut entry = Entry::new("host.power", "host", host).details(serde_json::json!({
        "action": request.label(),
        "error": outcome.as_ref().err().map(|e| e.to_string()),
    }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    if outcome.is_ok() {
        let power = match request {
            PowerRequest::Off => PowerState::Off,
            PowerRequest::On | PowerRequest::Reset => PowerState::On,
        };
        sqlx::query("UPDATE hosts SET power = $2, updated_at = now() WHERE id = $1")
            .bind(host)
            .bind(power)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    outcome.map_err(|e| Error::Conflict(format!("the provider refused: {e}")))?;
    view(db, host).await
}

/// Operators: how many hosts an organization may have.
pub async fn set_host_limit(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    limit: i32,
) -> Result<()> {
    authorize(
        db,
        actor,
        Permission::PlatformOrganizations,
        Resource::Platform,
    )
    .await?;
    if !(0..=10_000).contains(&limit) {
        return Err(Error::invalid("host_limit", "use a number from 0 to 10000"));
    }
    let mut tx = db.begin().await?;
    let updated = sqlx::query("UPDATE organizations SET host_limit = $2 WHERE id = $1")
        .bind(org)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("organization.host_limit", "organization", org)
            .in_org(org)
            .details(serde_json::json!({ "host_limit": limit })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Hosts whose last heartbeat is too old are offline, whichever process
/// their agent was connected to (that process may have died).
pub fn offline_sweeper(db: PgPool, after: std::time::Duration) -> tasks::Reconciler {
    tasks::Reconciler::new(
        "hosts.offline",
        std::time::Duration::from_secs(15),
        std::time::Duration::from_secs(10),
        move || {
            let db = db.clone();
            async move {
                let marked = sqlx::query(
                    "UPDATE hosts SET online = false, updated_at = now()
                     WHERE online AND last_seen_at < now() - make_interval(secs => $1)",
                )
                .bind(after.as_secs_f64())
                .execute(&db)
                .await
                .map_err(|e| e.to_string())?
                .rows_affected();
                Ok(tasks::ReconcileOutcome::new(format!(
                    "{marked} hosts marked offline"
                )))
            }
        },
    )
}
