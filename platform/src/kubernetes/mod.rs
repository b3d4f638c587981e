//! Talking to Kubernetes: management clusters (where Kamaji runs tenant
//! control planes) and tenants, through kube-rs clients built from stored,
//! sealed kubeconfigs; the operator's catalog of versions, management
//! clusters and applications.

pub mod applications;
pub mod catalog;
pub mod cluster;
pub mod control_plane;
pub mod drain;
pub mod kubeconfig;

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why a cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("the kubeconfig is not valid: {0}")]
    Kubeconfig(String),
    #[error("could not reach the cluster: {0}")]
    Unreachable(String),
    #[error("the cluster refused: {0}")]
    Api(String),
}

impl From<kube::Error> for KubeError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Self::Api(format!("{} ({})", status.message, status.code)),
            other => Self::Unreachable(other.to_string()),
        }
    }
}

/// A client for the cluster a kubeconfig (YAML) describes, using its
/// current context. TLS is verified against the kubeconfig's CA.
pub async fn connect(kubeconfig: &str) -> Result<kube::Client, KubeError> {
    client(kubeconfig, true).await
}

/// Like [`connect`], but 429, 503 and 504 answers come back at once instead
/// of being retried inside kube-rs (up to 15 times, waiting minutes): for
/// callers that retry themselves and show why (a drain names the disruption
/// budget that refuses an eviction).
pub async fn connect_without_retry(kubeconfig: &str) -> Result<kube::Client, KubeError> {
    client(kubeconfig, false).await
}

async fn client(kubeconfig: &str, retry: bool) -> Result<kube::Client, KubeError> {
    let parsed =
        Kubeconfig::from_yaml(kubeconfig).map_err(|e| KubeError::Kubeconfig(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeError::Kubeconfig(e.to_string()))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    config.default_retry = retry;
    kube::Client::try_from(config).map_err(|e| KubeError::Kubeconfig(e.to_string()))
}

/// The server's version string (`v1.33.0`), proving the credentials work.
pub async fn probe(client: &kube::Client) -> Result<String, KubeError> {
    Ok(client.apiserver_version().await?.git_version)
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
