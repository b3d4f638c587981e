//! Compute providers: clients for the APIs servers come from (Hetzner
//! Cloud, Hetzner Robot, IONOS DCD). Each is a reqwest client against the
//! provider's documented API with a configurable base URL; tests point them
//! at the fakes in the `fakes` crate.

pub mod hetzner_cloud;
pub mod hetzner_robot;
pub mod ionos;
pub mod local;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What a provider call failed with, in the terms a host's lifecycle needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider refused the credentials: {0}")]
    Unauthorized(String),
    #[error("the provider has no capacity for this server right now: {0}")]
    NoCapacity(String),
    #[error("the compute profile does not fit this provider: {0}")]
    InvalidProfile(String),
    #[error("a limit at the provider is reached: {0}")]
    Quota(String),
    #[error("the provider rate-limited the request: {0}")]
    RateLimited(String),
    #[error("the provider failed: {0}")]
    Unavailable(String),
    #[error("could not reach the provider: {0}")]
    Unreachable(String),
    #[error("the provider rejected the request: {0}")]
    Rejected(String),
}

impl ProviderError {
    /// Worth another attempt later (the provider's own trouble, not ours).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited(_) | Self::Unavailable(_) | Self::Unreachable(_)
        )
    }
}

/// A server as the portal sees it, whichever provider runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The provider's id (numeric for Hetzner, a UUID for IONOS).
    pub id: String,
    pub name: String,
    pub status: ServerStatus,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    /// Being created or starting.
    Creating,
    Running,
    Off,
    /// The provider's own word for anything else.
    Other(String),
}

/// What ordering a server asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateServer {
    /// Also the idempotency key: a server of this name is not created twice.
    pub name: String,
    /// Provider parameters from the compute profile (`server_type`,
    /// `location`, `cores`, `ram_mb`, `product`, ...).
    pub parameters: BTreeMap<String, String>,
    /// Cloud-init user data that installs and starts the agent.
    pub user_data: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    Reset,
}

/// Per-request timeout of every provider client.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The start of an answer's body, for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".into();
    }
    text.chars().take(200).collect()
}

/// reqwest's top-level errors say little ("error sending request"); the
/// cause is further down the chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
