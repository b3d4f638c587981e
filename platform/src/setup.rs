//! The first operator: until a platform operator exists, every start issues a
//! one-time setup link (and revokes the previous one). Redeeming it is the
//! only way to become the first operator, so no default password ever exists.

use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

use crate::crypto::{new_token, token_digest};

pub use protocol::ids::SetupTokenId;

/// How long a setup link stays valid.
pub const SETUP_LINK_TTL: Duration = Duration::hours(24);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("this setup link is not valid; restart the portal to get a new one")]
    Invalid,
    #[error("this setup link has expired; restart the portal to get a new one")]
    Expired,
    #[error("this setup link was already used")]
    Used,
    #[error("database error")]
    Database,
}

impl From<sqlx::Error> for SetupError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "setup token query failed");
        Self::Database
    }
}

/// A freshly issued setup link token, shown once.
#[derive(Debug, Clone)]
pub struct IssuedSetupToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

const OPERATOR_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM accounts WHERE is_operator)";

/// Whether a platform operator account exists.
pub async fn operator_exists(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(OPERATOR_EXISTS).fetch_one(pool).await
}

/// Issues a new setup token unless an operator exists. Unused older tokens
/// are revoked so that only the most recently printed link works.
pub async fn issue_if_needed(pool: &PgPool) -> Result<Option<IssuedSetupToken>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Serialise concurrent starts of several replicas on one database.
    sqlx::query("LOCK TABLE operator_setup_tokens IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let exists: bool = sqlx::query_scalar(OPERATOR_EXISTS)
        .fetch_one(&mut *tx)
        .await?;
    if exists {
        tx.commit().await?;
        return Ok(None);
    }
    sqlx::query("DELETE FROM operator_setup_tokens WHERE used_at IS NULL")
        .execute(&mut *tx)
        .await?;
    let token = new_token();
    let expires_at = OffsetDateTime::now_utc() + SETUP_LINK_TTL;
    sqlx::query(
        "INSERT INTO operator_setup_tokens (id, token_hash, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(SetupTokenId::new())
    .bind(token_digest(&token))
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(IssuedSetupToken { token, expires_at }))
}

/// A setup link that may still be redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupGrant {
    pub id: SetupTokenId,
    pub expires_at: OffsetDateTime,
}

/// Checks a setup link token without using it up.
pub async fn check(pool: &PgPool, token: &str) -> Result<SetupGrant, SetupError> {
    let row: Option<(SetupTokenId, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
        "SELECT id, expires_at, used_at FROM operator_setup_tokens WHERE token_hash = $1",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await?;
    match row {
        None => Err(SetupError::Invalid),
        Some((_, _, Some(_))) => Err(SetupError::Used),
        Some((_, expires_at, None)) if expires_at <= OffsetDateTime::now_utc() => {
            Err(SetupError::Expired)
        }
        Some((id, expires_at, None)) => Ok(SetupGrant { id, expires_at }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrator = "crate::db::MIGRATOR")]
    async fn each_start_replaces_the_previous_link(pool: PgPool) {
        let first = issue_if_needed(&pool).await.unwrap().expect("issued");
        assert!(check(&pool, &first.token).await.is_ok());
        let second = issue_if_needed(&pool).await.unwrap().expect("issued again");
        assert_eq!(check(&pool, &first.token).await, Err(SetupError::Invalid));
        assert!(check(&pool, &second.token).await.is_ok());
        assert!(!operator_exists(&pool).await.unwrap());
    }

    #[sqlx::test(migrator = "crate::db::MIGRATOR")]
    async fn unknown_expired_and_used_links_are_refused(pool: PgPool) {
        assert_eq!(check(&pool, "made-up").await, Err(SetupError::Invalid));

        let issued = issue_if_needed(&pool).await.unwrap().unwrap();
        sqlx::query("UPDATE operator_setup_tokens SET expires_at = now() - interval '1 second'")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(check(&pool, &issued.token).await, Err(SetupError::Expired));

        let issued = issue_if_needed(&pool).await.unwrap().unwrap();
        sqlx::query("UPDATE operator_setup_tokens SET used_at = now()")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(check(&pool, &issued.token).await, Err(SetupError::Used));
    }
}
