//! Backoff for failed sign-in and second-factor attempts, per account and per
//! client address. Kept in the database so every replica sees the same count.

use std::time::Duration;

use sqlx::PgPool;

use crate::error::{Error, Result};

/// How many failures a key may have before it is locked, and for how long at
/// most. The lock doubles with every failure past the threshold.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub free_failures: i32,
    pub max_lock: Duration,
}

pub const PER_ACCOUNT: Limit = Limit {
    free_failures: 5,
    max_lock: Duration::from_secs(15 * 60),
};
pub const PER_ADDRESS: Limit = Limit {
    free_failures: 20,
    max_lock: Duration::from_secs(15 * 60),
};
pub const SECOND_FACTOR: Limit = Limit {
    free_failures: 5,
    max_lock: Duration::from_secs(15 * 60),
};

/// Failures older than this no longer count.
const FORGET_AFTER: &str = "1 hour";

/// Refuses with the longest remaining lock among `keys`.
pub async fn check(db: &PgPool, keys: &[String]) -> Result<()> {
    let remaining: Option<f64> = sqlx::query_scalar(
        "SELECT max(EXTRACT(EPOCH FROM locked_until - now()))::float8
         FROM sign_in_throttle WHERE key = ANY($1) AND locked_until > now()",
    )
    .bind(keys)
    .fetch_one(db)
    .await?;
    match remaining {
        Some(secs) if secs > 0.0 => Err(Error::Throttled {
            retry_after_secs: secs.ceil() as u64,
        }),
        _ => Ok(()),
    }
}

/// Counts a failure against `key`; past the limit, locks it.
pub async fn failure(db: &PgPool, key: &str, limit: Limit) -> Result<()> {
    let max_lock = i64::try_from(limit.max_lock.as_secs()).unwrap_or(i64::MAX);
    sqlx::query(&format!(
        "INSERT INTO sign_in_throttle (key, failures, updated_at) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN sign_in_throttle.updated_at < now() - interval '{FORGET_AFTER}'
                             THEN 1 ELSE sign_in_throttle.failures + 1 END,
             updated_at = now()"
    ))
    .bind(key)
    .execute(db)
    .await?;
    sqlx::query(
        "UPDATE sign_in_throttle
         SET locked_until = now() + make_interval(secs => least($3::float8, power(2, failures - $2 - 1)))
         WHERE key = $1 AND failures > $2",
    )
    .bind(key)
    .bind(limit.free_failures)
    .bind(max_lock as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// A success clears the key's failures.
pub async fn success(db: &PgPool, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

pub fn account_key(email: &str) -> String {
    format!("account:{email}")
}

pub fn address_key(ip: Option<std::net::IpAddr>) -> Option<String> {
    ip.map(|ip| format!("ip:{ip}"))
}

pub fn second_factor_key(account: protocol::ids::AccountId) -> String {
    format!("2fa:{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrator = "crate::db::MIGRATOR")]
    async fn locks_after_free_failures_and_doubles(db: PgPool) {
        let key = "account:someone@example.com".to_string();
        for _ in 0..5 {
            failure(&db, &key, PER_ACCOUNT).await.unwrap();
            check(&db, std::slice::from_ref(&key)).await.unwrap();
        }
        failure(&db, &key, PER_ACCOUNT).await.unwrap();
        let Err(Error::Throttled { retry_after_secs }) =
            check(&db, std::slice::from_ref(&key)).await
        else {
            panic!("expected a lock after the sixth failure");
        };
        assert_eq!(retry_after_secs, 1);
        failure(&db, &key, PER_ACCOUNT).await.unwrap();
        failure(&db, &key, PER_ACCOUNT).await.unwrap();
        let Err(Error::Throttled { retry_after_secs }) =
            check(&db, std::slice::from_ref(&key)).await
        else {
            panic!("still locked");
        };
        assert_eq!(retry_after_secs, 4);

        success(&db, &key).await.unwrap();
        check(&db, &[key]).await.unwrap();
    }

    #[sqlx::test(migrator = "crate::db::MIGRATOR")]
    async fn lock_never_exceeds_the_maximum(db: PgPool) {
        let key = "ip:192.0.2.1";
        let limit = Limit {
            free_failures: 0,
            max_lock: Duration::from_secs(30),
        };
        for _ in 0..40 {
            failure(&db, key, limit).await.unwrap();
        }
        let Err(Error::Throttled { retry_after_secs }) = check(&db, &[key.to_string()]).await
        else {
            panic!("locked");
        };
        assert!(retry_after_secs <= 30, "{retry_after_secs}");
    }
}
