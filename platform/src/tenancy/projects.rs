//! Projects: groupings inside an organization and the parent of workspaces.

use protocol::ids::{OrganizationId, ProjectId};
use protocol::views::{Page, PageRequest, ProjectView};
use sqlx::PgPool;

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize, sql_grant};
use crate::error::{Error, Result};
use crate::tenancy::organizations::normalise_name;

const VIEW: &str = "SELECT p.id, p.organization_id, o.name AS organization_name, p.name,
        (SELECT count(*) FROM workspaces w WHERE w.project_id = p.id) AS workspace_count, p.created_at
    FROM projects p JOIN organizations o ON o.id = p.organization_id";

/// Projects the account may read: bound at organization scope or on the
/// project itself, through a role that grants `project.read`.
const VISIBLE: &str =
    "EXISTS (SELECT 1 FROM role_bindings rb LEFT JOIN roles r ON r.id = rb.role_id
        WHERE rb.account_id = $1 AND rb.organization_id = p.organization_id
          AND (rb.scope_kind = 'organization' OR rb.scope_id = p.id)
          AND (rb.builtin_role = ANY($2) OR $3 = ANY(r.permissions)))";

pub async fn create(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    name: &str,
) -> Result<ProjectView> {
    authorize(
        db,
        actor,
        Permission::ProjectCreate,
        Resource::Organization(org),
    )
    .await?;
    let name = normalise_name("name", name)?;
    let id = ProjectId::new();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO projects (id, organization_id, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(org)
        .bind(&name)
        .execute(&mut *tx)
        .await
        .map_err(Error::taken(
            "name",
            "a project with this name already exists in the organization",
        ))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("project.create", "project", id)
            .in_org(org)
            .details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, id).await
}

pub async fn get(db: &PgPool, actor: &Actor, id: ProjectId) -> Result<ProjectView> {
    authorize(db, actor, Permission::ProjectRead, Resource::Project(id)).await?;
    Ok(sqlx::query_as(&format!("{VIEW} WHERE p.id = $1"))
        .bind(id)
        .fetch_one(db)
        .await?)
}

/// The projects of one organization the caller may see, by name.
pub async fn list(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    page: PageRequest,
) -> Result<Page<ProjectView>> {
    // Members bound only to single projects find them in `list_all_mine`.
    authorize(
        db,
        actor,
        Permission::OrganizationRead,
        Resource::Organization(org),
    )
    .await?;
    let (roles, key) = sql_grant(Permission::ProjectRead);
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM projects p WHERE p.organization_id = $4 AND {VISIBLE}"
    ))
    .bind(actor.account_id)
    .bind(&roles)
    .bind(key)
    .bind(org)
    .fetch_one(db)
    .await?;
    let items = sqlx::query_as(&format!(
        "{VIEW} WHERE p.organization_id = $4 AND {VISIBLE} ORDER BY lower(p.name), p.id LIMIT $5 OFFSET $6"
    ))
    .bind(actor.account_id)
    .bind(&roles)
    .bind(key)
    .bind(org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items, total))
}

/// Every project the caller may see, across their organizations.
pub async fn list_all_mine(
    db: &PgPool,
    actor: &Actor,
    page: PageRequest,
) -> Result<Page<ProjectView>> {
    let (roles, key) = sql_grant(Permission::ProjectRead);
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM projects p WHERE {VISIBLE}"))
            .bind(actor.account_id)
            .bind(&roles)
            .bind(key)
            .fetch_one(db)
            .await?;
    let items = sqlx::query_as(&format!(
        "{VIEW} WHERE {VISIBLE} ORDER BY lower(o.name), lower(p.name), p.id LIMIT $4 OFFSET $5"
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

pub async fn rename(db: &PgPool, actor: &Actor, id: ProjectId, name: &str) -> Result<ProjectView> {
    let grant = authorize(db, actor, Permission::ProjectUpdate, Resource::Project(id)).await?;
    let name = normalise_name("name", name)?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE projects SET name = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&name)
        .execute(&mut *tx)
        .await
        .map_err(Error::taken(
            "name",
            "a project with this name already exists in the organization",
        ))?;
    let mut entry =
        Entry::new("project.rename", "project", id).details(serde_json::json!({ "name": name }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    get(db, actor, id).await
}

/// Deletes an empty project; refused while it still holds workspaces.
pub async fn delete(db: &PgPool, actor: &Actor, id: ProjectId) -> Result<()> {
    let grant = authorize(db, actor, Permission::ProjectDelete, Resource::Project(id)).await?;
    let mut tx = db.begin().await?;
    // Lock the project so no workspace appears between the check and the delete.
    let name: String = sqlx::query_scalar("SELECT name FROM projects WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let workspaces: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workspaces WHERE project_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if workspaces > 0 {
        return Err(Error::Conflict(format!(
            "the project still has {workspaces} workspace{}; delete {} first",
            if workspaces == 1 { "" } else { "s" },
            if workspaces == 1 { "it" } else { "them" }
        )));
    }
    // Bindings scoped to the project go with it.
    sqlx::query("DELETE FROM role_bindings WHERE scope_kind = 'project' AND scope_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mut entry =
        Entry::new("project.delete", "project", id).details(serde_json::json!({ "name": name }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(())
}
