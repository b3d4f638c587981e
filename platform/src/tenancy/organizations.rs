//! Organizations: the tenant boundary. The creator becomes the owner;
//! operators verify (or reject) and may suspend them.

use protocol::ids::{OrganizationId, RoleBindingId};
use protocol::views::{OrganizationState, OrganizationView, Page, PageRequest, Verification};
use sqlx::PgPool;

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

pub(crate) fn normalise_name(field: &str, raw: &str) -> Result<String> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.chars().count() {
        0 | 1 => Err(Error::invalid(field, "use at least 2 characters")),
        n if n > 64 => Err(Error::invalid(field, "use at most 64 characters")),
        _ => Ok(name),
    }
}

/// Columns of `OrganizationView`, with the caller's org-scope roles as $1.
const VIEW: &str = "SELECT o.id, o.name, o.verification, o.state, o.created_at,
        coalesce(array(SELECT coalesce(rb.builtin_role, r.name) FROM role_bindings rb
                       LEFT JOIN roles r ON r.id = rb.role_id
                       WHERE rb.organization_id = o.id AND rb.account_id = $1 AND rb.scope_kind = 'organization'
                       ORDER BY 1), '{}') AS my_roles
    FROM organizations o";

pub async fn create(db: &PgPool, actor: &Actor, name: &str) -> Result<OrganizationView> {
    let name = normalise_name("name", name)?;
    let id = OrganizationId::new();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO organizations (id, name, created_by) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(&name)
        .bind(actor.account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO memberships (organization_id, account_id) VALUES ($1, $2)")
        .bind(id)
        .bind(actor.account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO role_bindings (id, organization_id, account_id, scope_kind, builtin_role)
         VALUES ($1, $2, $3, 'organization', 'owner')",
    )
    .bind(RoleBindingId::new())
    .bind(id)
    .bind(actor.account_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("organization.create", "organization", id)
            .in_org(id)
            .details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, id).await
}

pub async fn get(db: &PgPool, actor: &Actor, id: OrganizationId) -> Result<OrganizationView> {
    authorize(
        db,
        actor,
        Permission::OrganizationRead,
        Resource::Organization(id),
    )
    .await?;
    Ok(sqlx::query_as(&format!("{VIEW} WHERE o.id = $2"))
        .bind(actor.account_id)
        .bind(id)
        .fetch_one(db)
        .await?)
}

/// The organizations the caller is a member of.
pub async fn list_mine(
    db: &PgPool,
    actor: &Actor,
    page: PageRequest,
) -> Result<Page<OrganizationView>> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships WHERE account_id = $1")
        .bind(actor.account_id)
        .fetch_one(db)
        .await?;
    let items = sqlx::query_as(&format!(
        "{VIEW} WHERE o.id IN (SELECT organization_id FROM memberships WHERE account_id = $1)
         ORDER BY lower(o.name), o.id LIMIT $2 OFFSET $3"
    ))
    .bind(actor.account_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items, total))
}

pub async fn rename(
    db: &PgPool,
    actor: &Actor,
    id: OrganizationId,
    name: &str,
) -> Result<OrganizationView> {
    authorize(
        db,
        actor,
        Permission::OrganizationUpdate,
        Resource::Organization(id),
    )
    .await?;
    let name = normalise_name("name", name)?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE organizations SET name = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("organization.rename", "organization", id)
            .in_org(id)
            .details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    get(db, actor, id).await
}

// ----- operator console -----

/// Every organization, for operators, optionally narrowed by verification
/// state and a name search.
pub async fn list_all(
    db: &PgPool,
    actor: &Actor,
    verification: Option<Verification>,
    search: Option<&str>,
    page: PageRequest,
) -> Result<Page<OrganizationView>> {
    authorize(
        db,
        actor,
        Permission::PlatformOrganizations,
        Resource::Platform,
    )
    .await?;
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM organizations o
         WHERE ($1::organization_verification IS NULL OR o.verification = $1)
           AND ($2::text IS NULL OR o.name ILIKE '%' || $2 || '%')",
    )
    .bind(verification)
    .bind(search)
    .fetch_one(db)
    .await?;
    let items = sqlx::query_as(&format!(
        "{VIEW} WHERE ($2::organization_verification IS NULL OR o.verification = $2)
                  AND ($3::text IS NULL OR o.name ILIKE '%' || $3 || '%')
         ORDER BY o.created_at DESC, o.id LIMIT $4 OFFSET $5"
    ))
    .bind(actor.account_id)
    .bind(verification)
    .bind(search)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items, total))
}

pub async fn set_verification(
    db: &PgPool,
    actor: &Actor,
    id: OrganizationId,
    verification: Verification,
    note: &str,
) -> Result<()> {
    let change = OperatorChange {
        set: "verification = $2",
        action: "organization.verification",
        details: serde_json::json!({ "verification": verification, "note": note.trim() }),
    };
    change.apply(db, actor, id, verification).await
}

pub async fn set_state(
    db: &PgPool,
    actor: &Actor,
    id: OrganizationId,
    state: OrganizationState,
    note: &str,
) -> Result<()> {
    let change = OperatorChange {
        set: "state = $2",
        action: "organization.state",
        details: serde_json::json!({ "state": state, "note": note.trim() }),
    };
    change.apply(db, actor, id, state).await
}

/// An operator's change to one column of an organization, audited.
struct OperatorChange {
    set: &'static str,
    action: &'static str,
    details: serde_json::Value,
}

impl OperatorChange {
    async fn apply<V>(self, db: &PgPool, actor: &Actor, id: OrganizationId, value: V) -> Result<()>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        authorize(
            db,
            actor,
            Permission::PlatformOrganizations,
            Resource::Platform,
        )
        .await?;
        let mut tx = db.begin().await?;
        let changed = sqlx::query(&format!(
            "UPDATE organizations SET {}, updated_at = now() WHERE id = $1",
            self.set
        ))
        .bind(id)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        audit::record(
            &mut tx,
            By::Actor(actor),
            Entry::new(self.action, "organization", id)
                .in_org(id)
                .details(self.details),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
