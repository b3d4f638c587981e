//! Custom roles: an organization's own named sets of permission keys, beside
//! the built-in owner, admin, member and viewer.

use protocol::ids::{OrganizationId, RoleId};
use protocol::views::{BuiltinRoleView, PermissionView, RoleView};
use sqlx::PgPool;

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, BuiltinRole, Level, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// Every permission key with its description: the "Roles" page.
pub fn catalogue() -> (Vec<PermissionView>, Vec<BuiltinRoleView>) {
    let level = |l: Level| match l {
        Level::Platform => "platform",
        Level::Organization => "organization",
        Level::Project => "project",
        Level::Workspace => "workspace",
    };
    let permissions = Permission::ALL
        .iter()
        .map(|p| PermissionView {
            key: p.key().into(),
            description: p.description().into(),
            level: level(p.level()).into(),
        })
        .collect();
    let roles = BuiltinRole::ALL
        .into_iter()
        .map(|r| BuiltinRoleView {
            key: r.key().into(),
            description: r.description().into(),
            permissions: r
                .permissions()
                .iter()
                .map(|p| p.key().to_string())
                .collect(),
        })
        .collect();
    (permissions, roles)
}

struct Checked {
    name: String,
    description: String,
    keys: Vec<String>,
}

fn check(name: &str, description: &str, keys: &[String]) -> Result<Checked> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() < 2 || name.chars().count() > 40 {
        return Err(Error::invalid("name", "use 2 to 40 characters"));
    }
    if BuiltinRole::ALL
        .iter()
        .any(|r| r.key().eq_ignore_ascii_case(&name))
    {
        return Err(Error::invalid(
            "name",
            "this name belongs to a built-in role",
        ));
    }
    let description = description.trim();
    if description.chars().count() > 200 {
        return Err(Error::invalid("description", "use at most 200 characters"));
    }
    let mut checked = Vec::new();
    for key in keys {
        match Permission::from_key(key.trim()) {
            Some(p) if p.level() != Level::Platform => checked.push(p.key().to_string()),
            _ => {
                return Err(Error::invalid(
                    "permissions",
                    format!("{key:?} is not a permission key"),
                ));
            }
        }
    }
    checked.sort();
    checked.dedup();
    if checked.is_empty() {
        return Err(Error::invalid(
            "permissions",
            "choose at least one permission",
        ));
    }
    Ok(Checked {
        name,
        description: description.to_string(),
        keys: checked,
    })
}

pub async fn list(db: &PgPool, actor: &Actor, org: OrganizationId) -> Result<Vec<RoleView>> {
    authorize(
        db,
        actor,
        Permission::MemberRead,
        Resource::Organization(org),
    )
    .await?;
    let rows: Vec<(RoleId, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT id, name, description, permissions FROM roles WHERE organization_id = $1 ORDER BY lower(name)",
    )
    .bind(org)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, description, permissions)| RoleView {
            id,
            name,
            description,
            permissions,
        })
        .collect())
}

pub async fn create(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    name: &str,
    description: &str,
    keys: &[String],
) -> Result<RoleView> {
    authorize(
        db,
        actor,
        Permission::RoleManage,
        Resource::Organization(org),
    )
    .await?;
    let c = check(name, description, keys)?;
    let id = RoleId::new();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO roles (id, organization_id, name, description, permissions) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(org)
        .bind(&c.name)
        .bind(&c.description)
        .bind(&c.keys)
        .execute(&mut *tx)
        .await
        .map_err(Error::taken("name", "a role with this name already exists"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("role.create", "role", id)
            .in_org(org)
            .details(serde_json::json!({ "name": c.name, "permissions": c.keys })),
    )
    .await?;
    tx.commit().await?;
    Ok(RoleView {
        id,
        name: c.name,
        description: c.description,
        permissions: c.keys,
    })
}

pub async fn update(
    db: &PgPool,
    actor: &Actor,
    org: OrganizationId,
    id: RoleId,
    name: &str,
    description: &str,
    keys: &[String],
) -> Result<RoleView> {
    authorize(
        db,
        actor,
        Permission::RoleManage,
        Resource::Organization(org),
    )
    .await?;
    let c = check(name, description, keys)?;
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE roles SET name = $3, description = $4, permissions = $5, updated_at = now()
         WHERE id = $1 AND organization_id = $2",
    )
    .bind(id)
    .bind(org)
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.keys)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken("name", "a role with this name already exists"))?;
    if changed.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("role.update", "role", id)
            .in_org(org)
            .details(serde_json::json!({ "name": c.name, "permissions": c.keys })),
    )
    .await?;
    tx.commit().await?;
    Ok(RoleView {
        id,
        name: c.name,
        description: c.description,
        permissions: c.keys,
    })
}

/// Deletes a role; its bindings go with it.
pub async fn delete(db: &PgPool, actor: &Actor, org: OrganizationId, id: RoleId) -> Result<()> {
    authorize(
        db,
        actor,
        Permission::RoleManage,
        Resource::Organization(org),
    )
    .await?;
    let mut tx = db.begin().await?;
    let bindings: i64 = sqlx::query_scalar("SELECT count(*) FROM role_bindings WHERE role_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let name: Option<String> = sqlx::query_scalar(
        "DELETE FROM roles WHERE id = $1 AND organization_id = $2 RETURNING name",
    )
    .bind(id)
    .bind(org)
    .fetch_optional(&mut *tx)
    .await?;
    let name = name.ok_or(Error::NotFound)?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("role.delete", "role", id)
            .in_org(org)
            .details(serde_json::json!({ "name": name, "bindings_removed": bindings })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
