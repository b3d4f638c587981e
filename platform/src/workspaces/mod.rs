//! Workspaces: creation checks, listing, settings and kubeconfig downloads.
//! Provisioning and deletion run as system tasks (`pipeline`); the drift
//! reconciler (`health`) compares active workspaces with their tenants.

pub mod health;
pub mod network;
pub mod pipeline;

use std::collections::BTreeMap;

use protocol::ids::{ManagementClusterId, ProjectId, TaskId, WorkspaceId};
use protocol::views::{
    CreatedWorkspace, NewWorkspace, Page, PageRequest, Sizing, WorkspaceDetails, WorkspaceKind,
    WorkspaceState, WorkspaceView,
};
use sqlx::PgPool;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize, sql_grant};
use crate::error::{Error, Result};
use crate::tasks::{self, Target};

/// Sealing purposes of a workspace's secrets.
pub(crate) const KUBECONFIG_PURPOSE: &str = "workspace.kubeconfig";
pub(crate) const API_KEY_PURPOSE: &str = "workspace.api-key";

const MAX_METADATA: usize = 32;

pub(crate) fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<()> {
    if metadata.len() > MAX_METADATA {
        return Err(Error::invalid(
            "metadata",
            format!("use at most {MAX_METADATA} entries"),
        ));
    }
    for (key, value) in metadata {
        let ok_key = !key.is_empty()
            && key.len() <= 63
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if !ok_key {
            return Err(Error::invalid(
                "metadata",
                format!("key {key:?}: use 1-63 letters, digits, - _ . /"),
            ));
        }
        if value.len() > 256 {
            return Err(Error::invalid(
                "metadata",
                format!("the value of {key} is longer than 256 characters"),
            ));
        }
    }
    Ok(())
}

/// The Kubernetes choices, checked against the catalog.
struct KubernetesChoice {
    version_id: protocol::ids::KubernetesVersionId,
    provider_type: Option<String>,
    pinned: Option<ManagementClusterId>,
    sizing: Sizing,
}

async fn check_kubernetes(
    db: &PgPool,
    actor: &Actor,
    new: &NewWorkspace,
) -> Result<KubernetesChoice> {
    let version = new
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid("version", "choose a Kubernetes version"))?;
    let version = version.trim_start_matches('v');
    let version_id =
        sqlx::query_scalar("SELECT id FROM kubernetes_versions WHERE version = $1 AND active")
            .bind(version)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "version",
                    format!("Kubernetes {version} is not offered here; choose an active version"),
                )
            })?;
    if new.cluster_kind {
        authorize(db, actor, Permission::PlatformCatalog, Resource::Platform)
            .await
            .map_err(|_| {
                Error::invalid(
                    "cluster_kind",
                    "only operators may create cluster-kind workspaces",
                )
            })?;
        let roots: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM management_clusters WHERE active AND kind = 'root'",
        )
        .fetch_one(db)
        .await?;
        if roots == 0 {
            return Err(Error::Conflict(
                "no active root management cluster can host cluster-kind workspaces".into(),
            ));
        }
        return Ok(KubernetesChoice {
            version_id,
            provider_type: new.provider_type.clone().filter(|p| !p.is_empty()),
            pinned: None,
            sizing: new.sizing.unwrap_or(Sizing::HighAvailable),
        });
    }
    let provider_type = new
        .provider_type
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::invalid("provider_type", "choose where worker capacity comes from"))?
        .to_string();
    if let Some(pinned) = new.management_cluster {
        let ok: Option<Option<String>> = sqlx::query_scalar(
            "SELECT provider_type FROM management_clusters
             WHERE id = $1 AND active AND kind = 'kamaji' AND provider_type IS NOT NULL",
        )
        .bind(pinned)
        .fetch_optional(db)
        .await?;
        match ok {
            Some(Some(p)) if p == provider_type => {}
            Some(Some(p)) => {
                return Err(Error::invalid(
                    "management_cluster",
                    format!("that cluster serves {p} workspaces, not {provider_type}"),
                ));
            }
            _ => {
                return Err(Error::invalid(
                    "management_cluster",
                    "choose an active Kamaji cluster with a compute provider binding",
                ));
            }
        }
    } else {
        let pool: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM management_clusters c
             WHERE c.active AND c.kind = 'kamaji' AND c.provider_type = $1
               AND (SELECT count(*) FROM workspaces w WHERE w.management_cluster_id = c.id) < c.capacity",
        )
        .bind(&provider_type)
        .fetch_one(db)
        .await?;
        if pool == 0 {
            return Err(Error::Conflict(format!(
                "no management cluster has room for {provider_type} workspaces; an operator must add or activate one"
            )));
        }
    }
    Ok(KubernetesChoice {
        version_id,
        provider_type: Some(provider_type),
        pinned: new.management_cluster,
        sizing: new.sizing.unwrap_or(Sizing::HighAvailable),
    })
}

/// Creates a workspace and queues its provisioning. Nothing is written when
/// a check fails.
pub async fn create(
    platform: &Platform,
    actor: &Actor,
    project: ProjectId,
    new: &NewWorkspace,
) -> Result<CreatedWorkspace> {
    let db = platform.db();
    let grant = authorize(
        db,
        actor,
        Permission::WorkspaceCreate,
        Resource::Project(project),
    )
    .await?;
    let name = protocol::names::workspace_name(&new.name);
    if name.len() < 2 {
        return Err(Error::invalid(
            "name",
            "use at least 2 letters or digits, starting with a letter",
        ));
    }
    check_metadata(&new.metadata)?;
    let choice = match new.kind {
        WorkspaceKind::Kubernetes => Some(check_kubernetes(db, actor, new).await?),
        WorkspaceKind::Baremetal => None,
    };
    let id = WorkspaceId::new();
    let api_key = format!("lbw_{}", crate::crypto::new_token());
    let api_key_sealed = platform
        .secrets()
        .seal(API_KEY_PURPOSE, api_key.as_bytes())
        .map_err(Error::internal)?;
    let mut tx = db.begin().await?;
    let view: WorkspaceView = sqlx::query_as(
        "INSERT INTO workspaces (id, project_id, name, kind, state, metadata, kubernetes_version_id,
             provider_type, ingress, sizing, cluster_kind, pinned_cluster_id,
             api_key_hash, api_key_sealed, api_key_prefix)
         VALUES ($1, $2, $3, $4, 'provisioning', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING id, project_id, name, kind, state, created_at",
    )
    .bind(id)
    .bind(project)
    .bind(&name)
    .bind(new.kind)
    .bind(sqlx::types::Json(&new.metadata))
    .bind(choice.as_ref().map(|c| c.version_id))
    .bind(choice.as_ref().and_then(|c| c.provider_type.clone()))
    .bind(new.ingress && choice.is_some())
    .bind(choice.as_ref().map(|c| c.sizing))
    .bind(new.cluster_kind && choice.is_some())
    .bind(choice.as_ref().and_then(|c| c.pinned))
    .bind(crate::crypto::token_digest(&api_key))
    .bind(&api_key_sealed)
    .bind(&api_key[..12])
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a workspace with this name already exists in the project",
    ))?;
    let mut entry = Entry::new("workspace.create", "workspace", id).details(serde_json::json!({
        "name": name, "kind": new.kind, "project": project, "version": new.version,
        "provider_type": new.provider_type, "sizing": new.sizing, "metadata": new.metadata,
    }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    let task = tasks::enqueue(
        &mut tx,
        &pipeline::Provision {
            workspace: id,
            kind: new.kind,
        },
        Target {
            organization: grant.organization_id,
            workspace: Some(id),
        },
        Some(actor.account_id),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedWorkspace {
        workspace: view,
        api_key,
        task,
    })
}

/// Starts deleting a workspace: a task tears down what provisioning built,
/// then removes the record.
pub async fn delete(db: &PgPool, actor: &Actor, id: WorkspaceId) -> Result<TaskId> {
    let grant = authorize(
        db,
        actor,
        Permission::WorkspaceDelete,
        Resource::Workspace(id),
    )
    .await?;
    let mut tx = db.begin().await?;
    let (name, state): (String, WorkspaceState) =
        sqlx::query_as("SELECT name, state FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if state == WorkspaceState::Deleting {
        return Err(Error::Conflict(
            "the workspace is already being deleted".into(),
        ));
    }
    // Provisioning in flight would race the teardown: cancel it first.
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks WHERE workspace_id = $1 AND kind = $2 AND state IN ('queued', 'running')",
    )
    .bind(id)
    .bind(<pipeline::Provision as tasks::TaskSpec>::KIND)
    .fetch_one(&mut *tx)
    .await?;
    if running > 0 {
        return Err(Error::Conflict(
            "provisioning is still running; cancel its task first, then delete".into(),
        ));
    }
    sqlx::query("UPDATE workspaces SET state = 'deleting', updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mut entry = Entry::new("workspace.delete", "workspace", id)
        .details(serde_json::json!({ "name": name }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    let task = tasks::enqueue(
        &mut tx,
        &pipeline::Teardown { workspace: id },
        Target {
            organization: grant.organization_id,
            workspace: Some(id),
        },
        Some(actor.account_id),
    )
    .await?;
    tx.commit().await?;
    Ok(task)
}

const DETAILS: &str =
    "SELECT w.id, w.project_id, p.organization_id, w.name, w.kind, w.state, w.metadata,
        v.version AS kubernetes_version, w.provider_type, w.ingress, w.sizing,
        c.name AS management_cluster, w.namespace,
        (SELECT n.cidr FROM networks n WHERE n.workspace_id = w.id) AS network, w.endpoint, w.dns_name,
        w.kubeconfig IS NOT NULL AS has_kubeconfig, w.api_key_prefix, w.oidc_enabled,
        w.session_lifetime_mins, w.maintenance_weekday, w.maintenance_hour, w.auto_patch,
        w.failure_reason, w.health, w.health_checked_at, w.created_at
    FROM workspaces w JOIN projects p ON p.id = w.project_id
    LEFT JOIN kubernetes_versions v ON v.id = w.kubernetes_version_id
    LEFT JOIN management_clusters c ON c.id = w.management_cluster_id";

pub async fn details(db: &PgPool, actor: &Actor, id: WorkspaceId) -> Result<WorkspaceDetails> {
    authorize(
        db,
        actor,
        Permission::WorkspaceRead,
        Resource::Workspace(id),
    )
    .await?;
    Ok(sqlx::query_as(&format!("{DETAILS} WHERE w.id = $1"))
        .bind(id)
        .fetch_one(db)
        .await?)
}

/// Maintenance window and automatic patching.
pub async fn update_maintenance(
    db: &PgPool,
    actor: &Actor,
    id: WorkspaceId,
    weekday: i16,
    hour: i16,
    auto_patch: bool,
) -> Result<()> {
    let grant = authorize(
        db,
        actor,
        Permission::WorkspaceMaintenanceUpdate,
        Resource::Workspace(id),
    )
    .await?;
    if !(0..=6).contains(&weekday) {
        return Err(Error::invalid("weekday", "choose a day of the week"));
    }
    if !(0..=23).contains(&hour) {
        return Err(Error::invalid("hour", "use an hour from 0 to 23 (UTC)"));
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE workspaces SET maintenance_weekday = $2, maintenance_hour = $3, auto_patch = $4,
             updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(weekday)
    .bind(hour)
    .bind(auto_patch)
    .execute(&mut *tx)
    .await?;
    let mut entry = Entry::new("workspace.maintenance.update", "workspace", id)
        .details(serde_json::json!({ "weekday": weekday, "hour": hour, "auto_patch": auto_patch }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Which kubeconfig to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Cluster-admin credentials: break-glass.
    Admin,
    /// Interactive login through the identity provider (kubelogin).
    Oidc,
}

/// A kubeconfig for the workspace: (file name, YAML).
pub async fn kubeconfig(
    platform: &Platform,
    actor: &Actor,
    id: WorkspaceId,
    access: Access,
    oidc_issuer: &str,
) -> Result<(String, String)> {
    let db = platform.db();
    let permission = match access {
        Access::Admin => Permission::WorkspaceKubeconfigAdmin,
        Access::Oidc => Permission::WorkspaceKubeconfigOidc,
    };
    let grant = authorize(db, actor, permission, Resource::Workspace(id)).await?;
    let (name, sealed): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT name, kubeconfig FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
    let sealed = sealed.ok_or_else(|| {
        Error::Conflict("the workspace has no Kubernetes API yet; wait until it is active".into())
    })?;
    let admin = String::from_utf8(
        platform
            .secrets()
            .open(KUBECONFIG_PURPOSE, &sealed)
            .map_err(Error::internal)?,
    )
    .map_err(Error::internal)?;
    let (file, yaml, action) = match access {
        Access::Admin => (
            format!("{name}-admin.kubeconfig"),
            admin,
            "workspace.kubeconfig.admin",
        ),
        Access::Oidc => {
            let yaml =
                crate::kubernetes::kubeconfig::oidc(&admin, &name, &id.to_string(), oidc_issuer)
                    .map_err(Error::internal)?;
            (
                format!("{name}-oidc.kubeconfig"),
                yaml,
                "workspace.kubeconfig.oidc",
            )
        }
    };
    let mut tx = db.begin().await?;
    let mut entry = Entry::new(action, "workspace", id);
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok((file, yaml))
}

/// Workspaces the account ($1) may read: bound at organization scope, on the
/// project or on the workspace, through a role that grants `workspace.read`
/// (built-in roles $2, key $3).
const VISIBLE: &str =
    "EXISTS (SELECT 1 FROM role_bindings rb LEFT JOIN roles r ON r.id = rb.role_id
        WHERE rb.account_id = $1 AND rb.organization_id = p.organization_id
          AND (rb.scope_kind = 'organization' OR rb.scope_id = p.id OR rb.scope_id = w.id)
          AND (rb.builtin_role = ANY($2) OR $3 = ANY(r.permissions)))";

const VIEW: &str = "SELECT w.id, w.project_id, w.name, w.kind, w.state, w.created_at
    FROM workspaces w JOIN projects p ON p.id = w.project_id";

pub async fn get(db: &PgPool, actor: &Actor, id: WorkspaceId) -> Result<WorkspaceView> {
    authorize(
        db,
        actor,
        Permission::WorkspaceRead,
        Resource::Workspace(id),
    )
    .await?;
    Ok(sqlx::query_as(&format!("{VIEW} WHERE w.id = $1"))
        .bind(id)
        .fetch_one(db)
        .await?)
}

/// The project's workspaces the caller may see.
pub async fn list(db: &PgPool, actor: &Actor, project: ProjectId) -> Result<Vec<WorkspaceView>> {
    authorize(
        db,
        actor,
        Permission::ProjectRead,
        Resource::Project(project),
    )
    .await?;
    let (roles, key) = sql_grant(Permission::WorkspaceRead);
    Ok(sqlx::query_as(&format!(
        "{VIEW} WHERE w.project_id = $4 AND {VISIBLE} ORDER BY w.name"
    ))
    .bind(actor.account_id)
    .bind(&roles)
    .bind(key)
    .bind(project)
    .fetch_all(db)
    .await?)
}

/// Every workspace the caller may see, across organizations.
pub async fn list_all_mine(
    db: &PgPool,
    actor: &Actor,
    page: PageRequest,
) -> Result<Page<WorkspaceView>> {
    let (roles, key) = sql_grant(Permission::WorkspaceRead);
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE {VISIBLE}"
    ))
    .bind(actor.account_id)
    .bind(&roles)
    .bind(key)
    .fetch_one(db)
    .await?;
    let items = sqlx::query_as(&format!(
        "{VIEW} WHERE {VISIBLE} ORDER BY w.name, w.id LIMIT $4 OFFSET $5"
    ))
    .bind(actor.account_id)
    .bind(&roles)
    .bind(key)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items, total))
}

/// A workspace whose provisioning failed late: marked for deletion, with
/// the reason kept, and its teardown queued.
pub(crate) async fn mark_for_deletion(
    db: &PgPool,
    id: WorkspaceId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let org: Option<protocol::ids::OrganizationId> = sqlx::query_scalar(
        "UPDATE workspaces w SET state = 'deleting', failure_reason = $2, updated_at = now()
         FROM projects p WHERE w.id = $1 AND p.id = w.project_id AND w.state = 'provisioning'
         RETURNING p.organization_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(org) = org {
        tasks::enqueue(
            &mut tx,
            &pipeline::Teardown { workspace: id },
            Target {
                organization: Some(org),
                workspace: Some(id),
            },
            None,
        )
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    }
    tx.commit().await
}
