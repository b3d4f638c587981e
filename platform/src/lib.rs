//! Loopback's domain, server-side only.
//!
//! UI code and HTTP handlers stay thin: they authenticate, call one function
//! here, and map the result. Everything that touches the database lives here,
//! and every function acting for a caller asks [`authz::authorize`] first.

pub mod audit;
pub mod authz;
pub mod catalog;
pub mod compute;
pub mod crypto;
pub mod db;
pub mod dns;
pub mod error;
pub mod hosts;
pub mod identity;
pub mod kubernetes;
pub mod loadbalancers;
pub mod mail;
pub mod monitoring;
pub mod providers;
pub mod setup;
pub mod tasks;
pub mod tenancy;
pub mod workspaces;

use std::sync::Arc;

use sqlx::PgPool;
use time::OffsetDateTime;
use url::Url;
use webauthn_rs::Webauthn;

pub use crypto::SecretBox;
pub use error::{Error, Result};

/// Everything a request or a background job needs to reach the domain. Cheap
/// to clone.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgPool,
    secrets: SecretBox,
    public_url: Url,
    webauthn: Webauthn,
    sessions: identity::SessionPolicy,
    started_at: OffsetDateTime,
    hub: hosts::hub::Hub,
    local_hosts: std::sync::OnceLock<providers::local::LocalHosts>,
    local_balancers: std::sync::OnceLock<loadbalancers::local::LocalBalancers>,
    monitoring: std::sync::OnceLock<monitoring::Settings>,
}

impl Platform {
    pub fn new(
        db: PgPool,
        secrets: SecretBox,
        public_url: Url,
        sessions: identity::SessionPolicy,
    ) -> Result<Self> {
        let webauthn = identity::passkeys::relying_party(&public_url)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                secrets,
                public_url,
                webauthn,
                sessions,
                started_at: OffsetDateTime::now_utc(),
                hub: hosts::hub::Hub::default(),
                local_hosts: std::sync::OnceLock::new(),
                local_balancers: std::sync::OnceLock::new(),
                monitoring: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn sessions(&self) -> identity::SessionPolicy {
        self.inner.sessions
    }

    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    pub fn public_url(&self) -> &Url {
        &self.inner.public_url
    }

    pub fn webauthn(&self) -> &Webauthn {
        &self.inner.webauthn
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.inner.started_at
    }

    /// The agents connected to this process.
    pub fn hub(&self) -> &hosts::hub::Hub {
        &self.inner.hub
    }

    /// Enables the `local` compute provider (set once, at start-up).
    pub fn enable_local_hosts(&self, local: providers::local::LocalHosts) {
        let _ = self.inner.local_hosts.set(local);
    }

    pub fn local_hosts(&self) -> Option<&providers::local::LocalHosts> {
        self.inner.local_hosts.get()
    }

    /// Enables the `local` load balancer backend (set once, at start-up).
    pub fn enable_local_balancers(&self, local: loadbalancers::local::LocalBalancers) {
        let _ = self.inner.local_balancers.set(local);
    }

    pub fn local_balancers(&self) -> Option<&loadbalancers::local::LocalBalancers> {
        self.inner.local_balancers.get()
    }

    /// Sets the monitoring settings (once, at start-up; tests lower the
    /// minimum interval).
    pub fn configure_monitoring(&self, settings: monitoring::Settings) {
        let _ = self.inner.monitoring.set(settings);
    }

    pub fn monitoring_settings(&self) -> monitoring::Settings {
        self.inner.monitoring.get().copied().unwrap_or_default()
    }
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key material.
        f.debug_struct("Platform")
            .field("public_url", &self.inner.public_url.as_str())
            .field("started_at", &self.inner.started_at)
            .finish_non_exhaustive()
    }
}
