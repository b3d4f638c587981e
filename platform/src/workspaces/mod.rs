//! Workspaces: creation checks and listing. Provisioning (management pool,
//! tenant control plane, kubeconfigs) is added by the workspace pipeline.

use protocol::ids::{ProjectId, WorkspaceId};
use protocol::views::{Page, PageRequest, WorkspaceKind, WorkspaceView};
use sqlx::PgPool;

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize, sql_grant};
use crate::error::{Error, Result};

pub async fn create(
    db: &PgPool,
    actor: &Actor,
    project: ProjectId,
    name: &str,
    kind: WorkspaceKind,
) -> Result<WorkspaceView> {
    let grant = authorize(
        db,
        actor,
        Permission::WorkspaceCreate,
        Resource::Project(project),
    )
    .await?;
    let name = protocol::names::workspace_name(name);
    if name.len() < 2 {
        return Err(Error::invalid(
            "name",
            "use at least 2 letters or digits, starting with a letter",
        ));
    }
    let id = WorkspaceId::new();
    let mut tx = db.begin().await?;
    let view: WorkspaceView = sqlx::query_as(
        "INSERT INTO workspaces (id, project_id, name, kind) VALUES ($1, $2, $3, $4)
         RETURNING id, project_id, name, kind, state, created_at",
    )
    .bind(id)
    .bind(project)
    .bind(&name)
    .bind(kind)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a workspace with this name already exists in the project",
    ))?;
    let mut entry = Entry::new("workspace.create", "workspace", id)
        .details(serde_json::json!({ "name": name, "kind": kind, "project": project }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(view)
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
