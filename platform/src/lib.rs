//! Loopback's domain, server-side only.
//!
//! UI code and HTTP handlers stay thin: they authenticate, call one function
//! here, and map the result. Everything that touches the database lives here.

pub mod crypto;
pub mod db;
pub mod id;
pub mod setup;

use std::sync::Arc;

use sqlx::PgPool;
use time::OffsetDateTime;

pub use crypto::SecretBox;

/// Everything a request or a background job needs to reach the domain: the
/// database and the key that seals secrets at rest. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    db: PgPool,
    secrets: Arc<SecretBox>,
    started_at: OffsetDateTime,
}

impl Platform {
    pub fn new(db: PgPool, secrets: SecretBox) -> Self {
        Self {
            db,
            secrets: Arc::new(secrets),
            started_at: OffsetDateTime::now_utc(),
        }
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key material.
        f.debug_struct("Platform")
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}
