//! Agent releases: binaries operators publish, which hosts download at
//! install time and update to. Each is kept with its SHA-256 so agents can
//! verify what they fetched.

use protocol::agent::PortalMessage;
use protocol::ids::HostId;
use protocol::views::AgentReleaseView;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// Longest binary accepted (a static agent is a few megabytes).
const MAX_BINARY: usize = 128 << 20;

pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<AgentReleaseView>> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    Ok(sqlx::query_as(
        "SELECT version, sha256, length(content)::int8 AS size_bytes, published_at
         FROM agent_releases ORDER BY published_at DESC",
    )
    .fetch_all(db)
    .await?)
}

/// Publishes `binary` as `version` (operators).
pub async fn publish(
    db: &PgPool,
    actor: &Actor,
    version: &str,
    binary: &[u8],
) -> Result<AgentReleaseView> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    let version = version.trim();
    if version.is_empty()
        || version.len() > 40
        || !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
    {
        return Err(Error::invalid("version", "use a version such as 0.2.0"));
    }
    if binary.is_empty() || binary.len() > MAX_BINARY {
        return Err(Error::invalid(
            "binary",
            "give the agent binary (at most 128 MiB)",
        ));
    }
    if !binary.starts_with(b"\x7fELF") {
        return Err(Error::invalid("binary", "this is not a Linux executable"));
    }
    let sha256 = hex::encode(Sha256::digest(binary));
    let mut tx = db.begin().await?;
    let view: AgentReleaseView = sqlx::query_as(
        "INSERT INTO agent_releases (version, sha256, content, published_by) VALUES ($1, $2, $3, $4)
         RETURNING version, sha256, length(content)::int8 AS size_bytes, published_at",
    )
    .bind(version)
    .bind(&sha256)
    .bind(binary)
    .bind(actor.account_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::taken("version", "this version is published already"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("agent_release.publish", "agent_release", version)
            .details(serde_json::json!({ "sha256": sha256, "size": binary.len() })),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Publishes the agent binary this portal runs local hosts with (operators).
pub async fn publish_bundled(
    platform: &Platform,
    actor: &Actor,
    version: &str,
) -> Result<AgentReleaseView> {
    authorize(
        platform.db(),
        actor,
        Permission::PlatformCatalog,
        Resource::Platform,
    )
    .await?;
    let path = platform
        .local_hosts()
        .map(|l| l.agent_bin.clone())
        .ok_or_else(|| {
            Error::invalid(
                "version",
                "this portal has no bundled agent binary (start it with --local-hosts)",
            )
        })?;
    let binary = tokio::fs::read(&path)
        .await
        .map_err(|e| Error::invalid("version", format!("cannot read {}: {e}", path.display())))?;
    publish(platform.db(), actor, version, &binary).await
}

/// The newest release's version and binary, for installers.
pub async fn latest(db: &PgPool) -> Result<Option<(String, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT version, content FROM agent_releases ORDER BY published_at DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?)
}

pub async fn binary(db: &PgPool, version: &str) -> Result<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT content FROM agent_releases WHERE version = $1")
            .bind(version)
            .fetch_optional(db)
            .await?,
    )
}

/// Tells a host's agent to update to the newest release.
pub async fn update_host(platform: &Platform, actor: &Actor, host: HostId) -> Result<String> {
    let db = platform.db();
    let grant = super::authorize_host(db, actor, Permission::HostCreate, host).await?;
    let (version, sha256): (String, String) = sqlx::query_as(
        "SELECT version, sha256 FROM agent_releases ORDER BY published_at DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| Error::Conflict("no agent release is published yet".into()))?;
    let url = platform
        .public_url()
        .join(&format!("agent/v1/releases/{version}"))
        .map_err(Error::internal)?;
    platform
        .hub()
        .send(
            host,
            &PortalMessage::Update {
                version: version.clone(),
                url: url.to_string(),
                sha256,
            },
        )
        .await
        .map_err(|e| Error::Conflict(e.to_string()))?;
    let mut tx = db.begin().await?;
    let mut entry = Entry::new("host.agent.update", "host", host)
        .details(serde_json::json!({ "version": version }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(version)
}
