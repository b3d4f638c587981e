//! Agent tokens: the workspace-scoped bearer secrets agents connect with.
//! Only their SHA-256 digest is stored; revoking one disconnects its agent
//! within seconds (a NOTIFY reaches every portal process at once, and each
//! process also re-checks its connections' tokens periodically).

use std::net::IpAddr;

use protocol::ids::{AccountId, AgentTokenId, HostId, WorkspaceId};
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission};
use crate::error::{Error, Result};
use crate::identity::throttle;

/// NOTIFY channel: an agent token was revoked. Payload: the token id.
pub const REVOKED_CHANNEL: &str = "loopback_agent_revoked";

/// Wrong tokens an address may present before it is locked out (doubling
/// lock, at most 15 minutes).
const PER_ADDRESS: throttle::Limit = throttle::Limit {
    free_failures: 10,
    max_lock: std::time::Duration::from_secs(15 * 60),
};

const PREFIX: &str = "lba_";

/// Who a valid token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentIdentity {
    pub token: AgentTokenId,
    pub host: HostId,
    pub workspace: WorkspaceId,
}

/// Issues a token for `host` in the caller's transaction; the secret is
/// returned once.
pub async fn issue(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    host: HostId,
    by: Option<AccountId>,
) -> Result<(AgentTokenId, String)> {
    let secret = format!("{PREFIX}{}", crate::crypto::new_token());
    let id = AgentTokenId::new();
    sqlx::query(
        "INSERT INTO agent_tokens (id, workspace_id, host_id, digest, prefix, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(workspace)
    .bind(host)
    .bind(crate::crypto::token_digest(&secret))
    .bind(&secret[..PREFIX.len() + 6])
    .bind(by)
    .execute(conn)
    .await?;
    Ok((id, secret))
}

fn address_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("agent:{ip}"),
        None => "agent:unknown".into(),
    }
}

/// Checks a presented token. Wrong ones count against the caller's address
/// and, past the limit, lock it out ([`Error::Throttled`]).
pub async fn authenticate(db: &PgPool, token: &str, ip: Option<IpAddr>) -> Result<AgentIdentity> {
    let key = address_key(ip);
    throttle::check(db, std::slice::from_ref(&key)).await?;
    let found: Option<(AgentTokenId, HostId, WorkspaceId, bool)> = sqlx::query_as(
        "UPDATE agent_tokens SET last_used_at = CASE WHEN revoked_at IS NULL THEN now() ELSE last_used_at END
         WHERE digest = $1
         RETURNING id, host_id, workspace_id, revoked_at IS NOT NULL",
    )
    .bind(crate::crypto::token_digest(token.trim()))
    .fetch_optional(db)
    .await?;
    match found {
        Some((token, host, workspace, false)) => Ok(AgentIdentity {
            token,
            host,
            workspace,
        }),
        // A revoked token was once real: its agent keeps retrying, which is
        // no guessing and must not lock out the other hosts behind the same
        // address.
        Some((_, _, _, true)) => Err(Error::Unauthenticated),
        None => {
            throttle::failure(db, &key, PER_ADDRESS).await?;
            Err(Error::Unauthenticated)
        }
    }
}

/// Revokes a host's token; its agent is disconnected.
pub async fn revoke(db: &PgPool, actor: &Actor, host: HostId, token: AgentTokenId) -> Result<()> {
    let grant = super::authorize_host(db, actor, Permission::HostCreate, host).await?;
    let mut tx = db.begin().await?;
    let revoked = sqlx::query(
        "UPDATE agent_tokens SET revoked_at = now(), revoked_by = $3
         WHERE id = $1 AND host_id = $2 AND revoked_at IS NULL",
    )
    .bind(token)
    .bind(host)
    .bind(actor.account_id)
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    let mut entry = Entry::new("host.token.revoke", "host", host)
        .details(serde_json::json!({ "token": token }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(REVOKED_CHANNEL)
        .bind(token.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Of `tokens`, those revoked (or deleted with their host) since.
pub async fn invalid_among(db: &PgPool, tokens: &[AgentTokenId]) -> Result<Vec<AgentTokenId>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let valid: std::collections::HashSet<AgentTokenId> =
        sqlx::query_scalar("SELECT id FROM agent_tokens WHERE id = ANY($1) AND revoked_at IS NULL")
            .bind(tokens)
            .fetch_all(db)
            .await?
            .into_iter()
            .collect();
    Ok(tokens
        .iter()
        .copied()
        .filter(|t| !valid.contains(t))
        .collect())
}
