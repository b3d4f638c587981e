//! The operator's catalog: Kubernetes versions customers may pick and the
//! management clusters that host tenant control planes.

use protocol::ids::{KubernetesVersionId, ManagementClusterId};
use protocol::views::{
    KubernetesVersionView, ManagementClusterKind, ManagementClusterView, NewManagementCluster,
    WorkspaceOptions,
};
use sqlx::PgPool;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// Compute provider types a management cluster may serve.
pub const PROVIDER_TYPES: &[&str] = &["hetzner_cloud", "hetzner_robot", "ionos_dcd", "local"];

const KUBECONFIG_PURPOSE: &str = "management-cluster.kubeconfig";

async fn operator(db: &PgPool, actor: &Actor) -> Result<()> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    Ok(())
}

/// `1.33.2`: three dot-separated numbers, an optional leading `v` dropped.
pub fn parse_version(raw: &str) -> Result<String> {
    let v = raw.trim().trim_start_matches('v');
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(v.to_string())
    } else {
        Err(Error::invalid(
            "version",
            "use major.minor.patch, e.g. 1.33.2",
        ))
    }
}

pub async fn versions(db: &PgPool, actor: &Actor) -> Result<Vec<KubernetesVersionView>> {
    operator(db, actor).await?;
    Ok(sqlx::query_as(
        "SELECT v.id, v.version, v.active,
             (SELECT count(*) FROM workspaces w WHERE w.kubernetes_version_id = v.id) AS workspaces
         FROM kubernetes_versions v
         ORDER BY string_to_array(v.version, '.')::int[] DESC",
    )
    .fetch_all(db)
    .await?)
}

pub async fn add_version(
    db: &PgPool,
    actor: &Actor,
    version: &str,
    active: bool,
) -> Result<KubernetesVersionId> {
    operator(db, actor).await?;
    let version = parse_version(version)?;
    let id = KubernetesVersionId::new();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO kubernetes_versions (id, version, active) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(&version)
        .bind(active)
        .execute(&mut *tx)
        .await
        .map_err(Error::taken(
            "version",
            "this version is already in the catalog",
        ))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("kubernetes_version.create", "kubernetes_version", id)
            .details(serde_json::json!({ "version": version, "active": active })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn set_version_active(
    db: &PgPool,
    actor: &Actor,
    id: KubernetesVersionId,
    active: bool,
) -> Result<()> {
    operator(db, actor).await?;
    crate::catalog::set_active(db, actor, crate::catalog::Entry::Version, id.0, active).await
}

const CLUSTER_VIEW: &str = "SELECT c.id, c.name, c.kind, c.provider_type, c.domain, c.server, c.active,
        c.capacity, (SELECT count(*) FROM workspaces w WHERE w.management_cluster_id = c.id) AS workspaces,
        c.server_version, c.check_error, c.checked_at
    FROM management_clusters c";

pub async fn clusters(db: &PgPool, actor: &Actor) -> Result<Vec<ManagementClusterView>> {
    operator(db, actor).await?;
    Ok(sqlx::query_as(&format!("{CLUSTER_VIEW} ORDER BY c.name"))
        .fetch_all(db)
        .await?)
}

fn parse_domain(raw: &str) -> Result<String> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 200
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(Error::invalid(
            "domain",
            "use a DNS domain such as mgmt.example.com",
        ))
    }
}

/// Registers a management cluster after proving its kubeconfig works.
pub async fn register_cluster(
    platform: &Platform,
    actor: &Actor,
    new: &NewManagementCluster,
) -> Result<ManagementClusterId> {
    let db = platform.db();
    operator(db, actor).await?;
    let name = crate::tenancy::organizations::normalise_name("name", &new.name)?;
    let domain = parse_domain(&new.domain)?;
    let provider_type = match new.provider_type.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) if PROVIDER_TYPES.contains(&p) => Some(p.to_string()),
        Some(_) => {
            return Err(Error::invalid(
                "provider_type",
                format!("choose one of {}", PROVIDER_TYPES.join(", ")),
            ));
        }
    };
    if new.kind == ManagementClusterKind::Kamaji && provider_type.is_none() {
        return Err(Error::invalid(
            "provider_type",
            "a Kamaji cluster serves one compute provider type; choose it",
        ));
    }
    if !(1..=100_000).contains(&new.capacity) {
        return Err(Error::invalid("capacity", "use 1 to 100000 workspaces"));
    }
    let client = super::connect(&new.kubeconfig)
        .await
        .map_err(|e| Error::invalid("kubeconfig", e.to_string()))?;
    let version = super::probe(&client)
        .await
        .map_err(|e| Error::invalid("kubeconfig", e.to_string()))?;
    let server = server_of(&new.kubeconfig).unwrap_or_default();
    let sealed = platform
        .secrets()
        .seal(KUBECONFIG_PURPOSE, new.kubeconfig.as_bytes())
        .map_err(Error::internal)?;
    let id = ManagementClusterId::new();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO management_clusters
             (id, name, kind, provider_type, domain, kubeconfig, server, capacity, server_version, checked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())",
    )
    .bind(id)
    .bind(&name)
    .bind(new.kind)
    .bind(&provider_type)
    .bind(&domain)
    .bind(&sealed)
    .bind(&server)
    .bind(new.capacity)
    .bind(&version)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken("name", "a management cluster with this name exists"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("management_cluster.create", "management_cluster", id).details(
            serde_json::json!({ "name": name, "kind": new.kind, "provider_type": provider_type,
                                 "domain": domain, "server": server }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The current context's server URL.
pub fn server_of(kubeconfig: &str) -> Option<String> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).ok()?;
    let context = kc.current_context.clone()?;
    let cluster = kc
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    kc.clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .clone()
}

pub async fn set_cluster_active(
    db: &PgPool,
    actor: &Actor,
    id: ManagementClusterId,
    active: bool,
) -> Result<()> {
    operator(db, actor).await?;
    crate::catalog::set_active(db, actor, crate::catalog::Entry::Cluster, id.0, active).await
}

/// Connects again and records the outcome.
pub async fn check_cluster(
    platform: &Platform,
    actor: &Actor,
    id: ManagementClusterId,
) -> Result<ManagementClusterView> {
    let db = platform.db();
    operator(db, actor).await?;
    let outcome = match cluster_client(platform, id).await {
        Ok(client) => super::probe(&client).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (version, error) = match outcome {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    sqlx::query(
        "UPDATE management_clusters SET checked_at = now(), check_error = $2,
             server_version = coalesce($3, server_version) WHERE id = $1",
    )
    .bind(id)
    .bind(&error)
    .bind(&version)
    .execute(db)
    .await?;
    Ok(sqlx::query_as(&format!("{CLUSTER_VIEW} WHERE c.id = $1"))
        .bind(id)
        .fetch_one(db)
        .await?)
}

/// The stored kubeconfig of a management cluster, opened.
pub async fn cluster_kubeconfig(platform: &Platform, id: ManagementClusterId) -> Result<String> {
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT kubeconfig FROM management_clusters WHERE id = $1")
            .bind(id)
            .fetch_optional(platform.db())
            .await?
            .ok_or(Error::NotFound)?;
    let plain = platform
        .secrets()
        .open(KUBECONFIG_PURPOSE, &sealed)
        .map_err(Error::internal)?;
    String::from_utf8(plain).map_err(Error::internal)
}

pub async fn cluster_client(platform: &Platform, id: ManagementClusterId) -> Result<kube::Client> {
    let kubeconfig = cluster_kubeconfig(platform, id).await?;
    super::connect(&kubeconfig).await.map_err(Error::internal)
}

/// What the create-workspace form offers the caller.
pub async fn workspace_options(db: &PgPool, actor: &Actor) -> Result<WorkspaceOptions> {
    let versions = sqlx::query_scalar(
        "SELECT version FROM kubernetes_versions WHERE active
         ORDER BY string_to_array(version, '.')::int[] DESC",
    )
    .fetch_all(db)
    .await?;
    let clusters: Vec<(ManagementClusterId, String, String)> = sqlx::query_as(
        "SELECT id, name, provider_type FROM management_clusters
         WHERE active AND kind = 'kamaji' AND provider_type IS NOT NULL ORDER BY name",
    )
    .fetch_all(db)
    .await?;
    let mut provider_types: Vec<String> = clusters.iter().map(|c| c.2.clone()).collect();
    provider_types.sort();
    provider_types.dedup();
    let operator = authorize(db, actor, Permission::PlatformCatalog, Resource::Platform)
        .await
        .is_ok();
    Ok(WorkspaceOptions {
        versions,
        provider_types,
        clusters,
        operator,
    })
}

/// The local demo: registers (or refreshes) the in-process kubesim as the
/// Kamaji cluster `local` for `local` compute, and offers a version when
/// the catalog has none.
pub async fn ensure_local(platform: &Platform, kubeconfig: &str) -> Result<()> {
    const LOCAL_VERSION: &str = "1.33.2";
    let db = platform.db();
    let server = server_of(kubeconfig).unwrap_or_default();
    let sealed = platform
        .secrets()
        .seal(KUBECONFIG_PURPOSE, kubeconfig.as_bytes())
        .map_err(Error::internal)?;
    let mut tx = db.begin().await?;
    let created: Option<ManagementClusterId> = sqlx::query_scalar(
        "INSERT INTO management_clusters (id, name, kind, provider_type, domain, kubeconfig, server, capacity)
         VALUES ($1, 'local', 'kamaji', 'local', 'loopback.localhost', $2, $3, 1000)
         ON CONFLICT (name) DO UPDATE SET kubeconfig = EXCLUDED.kubeconfig, server = EXCLUDED.server
         RETURNING CASE WHEN xmax = 0 THEN id END",
    )
    .bind(ManagementClusterId::new())
    .bind(&sealed)
    .bind(&server)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(id) = created {
        audit::record(
            &mut tx,
            By::System,
            Entry::new("management_cluster.create", "management_cluster", id).details(
                serde_json::json!({ "name": "local", "server": server, "local_demo": true }),
            ),
        )
        .await?;
    }
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM kubernetes_versions")
        .fetch_one(&mut *tx)
        .await?;
    if versions == 0 {
        let id = KubernetesVersionId::new();
        sqlx::query("INSERT INTO kubernetes_versions (id, version, active) VALUES ($1, $2, true)")
            .bind(id)
            .bind(LOCAL_VERSION)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            By::System,
            Entry::new("kubernetes_version.create", "kubernetes_version", id)
                .details(serde_json::json!({ "version": LOCAL_VERSION, "active": true })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
