//! The operator's catalog entries that are switched on and off: Kubernetes
//! versions, management clusters, applications, compute providers and
//! profiles. One path, audit-logged; callers check `platform.catalog`.

use sqlx::PgPool;

use crate::audit::{self, By};
use crate::authz::Actor;
use crate::error::{Error, Result};

/// The catalog's entries that operators switch on and off.
#[derive(Debug, Clone, Copy)]
pub enum Entry {
    Version,
    Cluster,
    Application,
    ComputeProvider,
    ComputeProfile,
}

impl Entry {
    fn table(self) -> &'static str {
        match self {
            Self::Version => "kubernetes_versions",
            Self::Cluster => "management_clusters",
            Self::Application => "kubernetes_applications",
            Self::ComputeProvider => "compute_providers",
            Self::ComputeProfile => "compute_profiles",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Version => "kubernetes_version",
            Self::Cluster => "management_cluster",
            Self::Application => "application",
            Self::ComputeProvider => "compute_provider",
            Self::ComputeProfile => "compute_profile",
        }
    }
}

/// Activates or deactivates a catalog entry, audit-logged; the caller has
/// checked `platform.catalog`.
pub async fn set_active(
    db: &PgPool,
    actor: &Actor,
    entry: Entry,
    id: uuid::Uuid,
    active: bool,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let changed = sqlx::query(&format!(
        "UPDATE {} SET active = $2 WHERE id = $1",
        entry.table()
    ))
    .bind(id)
    .bind(active)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::NotFound);
    }
    let action = format!(
        "{}.{}",
        entry.kind(),
        if active { "activate" } else { "deactivate" }
    );
    audit::record(
        &mut tx,
        By::Actor(actor),
        audit::Entry::new(&action, entry.kind(), id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
