//! The PostgreSQL pool, migrations and readiness.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens a pool and checks that the server answers.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, DbError> {
    let target = describe(&options);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|source| DbError::Connect { target, source })
}

/// Where a connection goes, without credentials, for error messages.
pub fn describe(options: &PgConnectOptions) -> String {
    let host = options.get_host();
    let database = options.get_database().unwrap_or("(default database)");
    if host.starts_with('/') {
        format!("socket {host}, database {database}")
    } else {
        format!("{host}:{}, database {database}", options.get_port())
    }
}

pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether the portal can serve: the database answers and every migration
/// this build knows has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready { migrations: usize },
    DatabaseUnreachable { reason: String },
    MigrationsPending { pending: Vec<i64> },
}

pub async fn readiness(pool: &PgPool) -> Readiness {
    let applied: Result<Vec<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await;
    let applied: BTreeSet<i64> = match applied {
        Ok(rows) => rows.into_iter().collect(),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => BTreeSet::new(),
        Err(e) => {
            return Readiness::DatabaseUnreachable {
                reason: e.to_string(),
            };
        }
    };
    let pending: Vec<i64> = MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if pending.is_empty() {
        Readiness::Ready {
            migrations: MIGRATOR.iter().count(),
        }
    } else {
        Readiness::MigrationsPending { pending }
    }
}

/// The server's version string, e.g. "PostgreSQL 15.18 (Debian …)".
pub async fn server_version(pool: &PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT version()").fetch_one(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrations = false)]
    async fn fresh_database_reports_every_migration_pending(pool: PgPool) {
        match readiness(&pool).await {
            Readiness::MigrationsPending { pending } => {
                assert_eq!(pending.len(), MIGRATOR.iter().count());
            }
            other => panic!("expected pending migrations, got {other:?}"),
        }
        migrate(&pool).await.unwrap();
        assert_eq!(
            readiness(&pool).await,
            Readiness::Ready {
                migrations: MIGRATOR.iter().count()
            }
        );
    }

    #[sqlx::test(migrations = false)]
    async fn closed_pool_reports_unreachable(pool: PgPool) {
        pool.close().await;
        assert!(matches!(
            readiness(&pool).await,
            Readiness::DatabaseUnreachable { .. }
        ));
    }

    #[test]
    fn describe_hides_credentials() {
        let opts: PgConnectOptions = "postgres://alice:hunter2@db.example:5433/portal"
            .parse()
            .unwrap();
        let d = describe(&opts);
        assert_eq!(d, "db.example:5433, database portal");
        assert!(!d.contains("hunter2"));
    }
}
