//! Compute profiles: the server SKUs customers order (CPU, RAM, disk, a
//! monthly price, the provider's parameters), a global catalog operators
//! keep; organizations may have their own price for a profile.

use std::collections::BTreeMap;

use protocol::ids::{ComputeProfileId, OrganizationId, WorkspaceId};
use protocol::views::{Availability, ComputeProfileView, NewComputeProfile, ProviderKind};
use sqlx::PgPool;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

#[derive(sqlx::FromRow)]
struct Row {
    id: ComputeProfileId,
    name: String,
    provider_kind: ProviderKind,
    cpu: i32,
    ram_mb: i32,
    disk_gb: i32,
    price_cents: i32,
    parameters: sqlx::types::Json<BTreeMap<String, String>>,
    active: bool,
}

impl From<Row> for ComputeProfileView {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            provider_kind: r.provider_kind,
            cpu: r.cpu,
            ram_mb: r.ram_mb,
            disk_gb: r.disk_gb,
            price_cents: r.price_cents,
            parameters: r.parameters.0,
            active: r.active,
        }
    }
}

/// The parameters each provider needs from a profile.
fn required_parameters(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::HetznerCloud => &["server_type"],
        ProviderKind::HetznerRobot => &["product"],
        ProviderKind::IonosDcd => &[],
        ProviderKind::Local => &[],
    }
}

/// Every profile, for operators.
pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<ComputeProfileView>> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents, parameters, active
         FROM compute_profiles ORDER BY provider_kind, price_cents, name",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The active profiles a workspace may order, at its organization's prices.
pub async fn for_workspace(
    db: &PgPool,
    actor: &Actor,
    workspace: WorkspaceId,
) -> Result<Vec<ComputeProfileView>> {
    let grant = authorize(
        db,
        actor,
        Permission::HostRead,
        Resource::Workspace(workspace),
    )
    .await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.id, c.name, c.provider_kind, c.cpu, c.ram_mb, c.disk_gb,
             coalesce(pp.price_cents, c.price_cents) AS price_cents, c.parameters, c.active
         FROM compute_profiles c
         LEFT JOIN profile_prices pp ON pp.profile_id = c.id AND pp.organization_id = $1
         WHERE c.active ORDER BY c.provider_kind, 7, c.name",
    )
    .bind(grant.organization_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn create(
    db: &PgPool,
    actor: &Actor,
    new: &NewComputeProfile,
) -> Result<ComputeProfileId> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    let name = crate::tenancy::organizations::normalise_name("name", &new.name)?;
    for (field, value, max) in [
        ("cpu", new.cpu, 512),
        ("ram_mb", new.ram_mb, 16 * 1024 * 1024),
        ("disk_gb", new.disk_gb, 1024 * 1024),
    ] {
        if !(1..=max).contains(&value) {
            return Err(Error::invalid(field, format!("use 1 to {max}")));
        }
    }
    if new.price_cents < 0 {
        return Err(Error::invalid("price_cents", "a price cannot be negative"));
    }
    for needed in required_parameters(new.provider_kind) {
        if new
            .parameters
            .get(*needed)
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(Error::invalid(
                "parameters",
                format!("{} profiles need {needed}", new.provider_kind.label()),
            ));
        }
    }
    let id = ComputeProfileId::new();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents, parameters)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(&name)
    .bind(new.provider_kind)
    .bind(new.cpu)
    .bind(new.ram_mb)
    .bind(new.disk_gb)
    .bind(new.price_cents)
    .bind(sqlx::types::Json(&new.parameters))
    .execute(&mut *tx)
    .await
    .map_err(Error::taken("name", "a compute profile with this name exists"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("compute_profile.create", "compute_profile", id)
            .details(serde_json::to_value(new).map_err(Error::internal)?),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn set_active(
    db: &PgPool,
    actor: &Actor,
    id: ComputeProfileId,
    active: bool,
) -> Result<()> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    crate::catalog::set_active(
        db,
        actor,
        crate::catalog::Entry::ComputeProfile,
        id.0,
        active,
    )
    .await
}

/// An organization's agreed price for a profile; `None` removes it.
pub async fn set_price(
    db: &PgPool,
    actor: &Actor,
    organization: OrganizationId,
    profile: ComputeProfileId,
    price_cents: Option<i32>,
) -> Result<()> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    if price_cents.is_some_and(|p| p < 0) {
        return Err(Error::invalid("price_cents", "a price cannot be negative"));
    }
    let mut tx = db.begin().await?;
    match price_cents {
        Some(price) => {
            sqlx::query(
                "INSERT INTO profile_prices (organization_id, profile_id, price_cents) VALUES ($1, $2, $3)
                 ON CONFLICT (organization_id, profile_id) DO UPDATE SET price_cents = EXCLUDED.price_cents",
            )
            .bind(organization)
            .bind(profile)
            .bind(price)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("23503") => Error::NotFound,
                _ => Error::Database(e),
            })?;
        }
        None => {
            sqlx::query(
                "DELETE FROM profile_prices WHERE organization_id = $1 AND profile_id = $2",
            )
            .bind(organization)
            .bind(profile)
            .execute(&mut *tx)
            .await?;
        }
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("compute_profile.price", "compute_profile", profile)
            .in_org(organization)
            .details(serde_json::json!({ "price_cents": price_cents })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Where a Hetzner Cloud profile's server type can be created right now,
/// asked live of the first active Hetzner Cloud provider.
pub async fn availability(
    platform: &Platform,
    actor: &Actor,
    profile: ComputeProfileId,
) -> Result<Vec<Availability>> {
    let db = platform.db();
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    let (kind, parameters): (ProviderKind, sqlx::types::Json<BTreeMap<String, String>>) =
        sqlx::query_as("SELECT provider_kind, parameters FROM compute_profiles WHERE id = $1")
            .bind(profile)
            .fetch_optional(db)
            .await?
            .ok_or(Error::NotFound)?;
    if kind != ProviderKind::HetznerCloud {
        return Ok(Vec::new());
    }
    let server_type = parameters.0.get("server_type").cloned().unwrap_or_default();
    let provider: Option<protocol::ids::ComputeProviderId> = sqlx::query_scalar(
        "SELECT id FROM compute_providers WHERE kind = 'hetzner_cloud' AND active ORDER BY name LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    let Some(provider) = provider else {
        return Err(Error::Conflict(
            "no active Hetzner Cloud provider to ask for availability".into(),
        ));
    };
    let super::providers::Client::HetznerCloud(client) =
        super::providers::client(platform, provider).await?
    else {
        return Ok(Vec::new());
    };
    let found = client
        .availability(&server_type)
        .await
        .map_err(|e| Error::Conflict(e.to_string()))?;
    Ok(found
        .into_iter()
        .map(|(datacenter, location, available)| Availability {
            datacenter,
            location,
            available,
        })
        .collect())
}
