//! Account API keys: automation acting as the account. A key is shown once,
//! stored as its SHA-256 digest, recognisable by its visible prefix, and
//! revocable; expired and revoked keys authenticate nothing.

use protocol::ids::{AccountId, ApiKeyId};
use protocol::views::{ApiKeyView, CreatedApiKey};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, RequestMeta};
use crate::crypto::{new_token, token_digest};
use crate::error::{Error, Result};

/// Every key starts with this, so secret scanners and people can spot one.
pub const KEY_PREFIX: &str = "lbk_";
/// How much of a key is shown in lists.
const VISIBLE: usize = KEY_PREFIX.len() + 8;

const COLUMNS: &str = "id, name, prefix, created_at, expires_at, last_used_at, revoked_at";

pub async fn create(
    db: &PgPool,
    actor: &Actor,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<CreatedApiKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Error::invalid(
            "name",
            "give the key a name of 1 to 64 characters, such as \"CI deploys\"",
        ));
    }
    if let Some(at) = expires_at
        && at <= OffsetDateTime::now_utc()
    {
        return Err(Error::invalid(
            "expires_at",
            "the expiry must be in the future",
        ));
    }
    let secret = format!("{KEY_PREFIX}{}", new_token());
    let mut tx = db.begin().await?;
    let key: ApiKeyView = sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(ApiKeyId::new())
    .bind(actor.account_id)
    .bind(name)
    .bind(&secret[..VISIBLE])
    .bind(token_digest(&secret))
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.api_key_create", "api_key", key.id)
            .details(serde_json::json!({ "name": key.name, "prefix": key.prefix })),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedApiKey { key, secret })
}

pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<ApiKeyView>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC"
    ))
    .bind(actor.account_id)
    .fetch_all(db)
    .await?)
}

pub async fn revoke(db: &PgPool, actor: &Actor, id: ApiKeyId) -> Result<()> {
    let mut tx = db.begin().await?;
    let revoked = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(actor.account_id)
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.api_key_revoke", "api_key", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The actor behind a bearer key, or `Unauthenticated`.
pub async fn authenticate(db: &PgPool, secret: &str, meta: RequestMeta) -> Result<Actor> {
    if !secret.starts_with(KEY_PREFIX) {
        return Err(Error::Unauthenticated);
    }
    let row: Option<(ApiKeyId, AccountId, String, bool)> = sqlx::query_as(
        "SELECT k.id, a.id, a.email, a.is_operator
         FROM api_keys k JOIN accounts a ON a.id = k.account_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())",
    )
    .bind(token_digest(secret))
    .fetch_optional(db)
    .await?;
    let (key_id, account_id, email, is_operator) = row.ok_or(Error::Unauthenticated)?;
    // A busy automation need not write on every call.
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(key_id)
    .execute(db)
    .await?;
    Ok(Actor {
        account_id,
        email,
        is_operator,
        api_key: Some(key_id),
        meta,
    })
}
