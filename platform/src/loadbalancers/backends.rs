//! The backend a stored load balancer runs on, behind one face: apply a
//! spec, remove what runs.

use protocol::ids::{ComputeProviderId, LoadBalancerId};

use super::hetzner::HetznerBalancers;
use super::local::LocalBalancers;
use super::spec::{Applied, BalancerSpec};
use crate::Platform;
use crate::compute::providers::{self, Client};

/// Where new Hetzner Cloud load balancers go, their size and network, read
/// from the provider account's settings (`load_balancer_location`,
/// `load_balancer_type`, `load_balancer_network`); without them, Hetzner's
/// smallest type in its first location, on the public network only.
const HETZNER_LOCATION: &str = "fsn1";
const HETZNER_TYPE: &str = "lb11";

async fn hetzner_settings(
    platform: &Platform,
    provider: ComputeProviderId,
) -> Result<(String, String, Option<i64>), String> {
    let settings: Option<sqlx::types::Json<std::collections::BTreeMap<String, String>>> =
        sqlx::query_scalar("SELECT settings FROM compute_providers WHERE id = $1")
            .bind(provider)
            .fetch_optional(platform.db())
            .await
            .map_err(|e| format!("reading the provider's settings: {e}"))?;
    let settings = settings.map(|s| s.0).unwrap_or_default();
    let setting = |key: &str, default: &str| {
        settings
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
            .to_string()
    };
    let network = match settings.get("load_balancer_network").map(|v| v.trim()) {
        None | Some("") => None,
        Some(id) => Some(id.parse().map_err(|_| {
            format!("the provider setting load_balancer_network must be a Hetzner network id, not {id:?}")
        })?),
    };
    Ok((
        setting("load_balancer_location", HETZNER_LOCATION),
        setting("load_balancer_type", HETZNER_TYPE),
        network,
    ))
}

pub(crate) enum Backend {
    Local(LocalBalancers),
    Hetzner(HetznerBalancers),
}

impl Backend {
    /// The backend of a row: `backend` and its provider, as stored.
    pub(crate) async fn of(
        platform: &Platform,
        backend: &str,
        provider: Option<ComputeProviderId>,
    ) -> Result<Self, String> {
        match (backend, provider) {
            ("local", _) => platform
                .local_balancers()
                .cloned()
                .map(Self::Local)
                .ok_or_else(|| {
                    "the local load balancer backend is not enabled in this portal (start it with --local-load-balancers)".to_string()
                }),
            ("hetzner_cloud", Some(provider)) => match providers::client(platform, provider).await {
                Ok(Client::HetznerCloud(cloud)) => {
                    let (location, kind, network) = hetzner_settings(platform, provider).await?;
                    Ok(Self::Hetzner(HetznerBalancers::new(cloud, location, kind, network)))
                }
                Ok(_) => Err("the load balancer's provider is not a Hetzner Cloud account".into()),
                Err(e) => Err(format!("the Hetzner Cloud provider is not usable: {e}")),
            },
            ("hetzner_cloud", None) => {
                Err("the load balancer's Hetzner Cloud provider was removed".into())
            }
            (other, _) => Err(format!("unknown load balancer backend {other:?}")),
        }
    }

    /// Converges the backend to `spec`. `existing` is the stored backend
    /// reference; a local balancer that had one but no longer runs is
    /// reported as drift besides what the backend itself corrected.
    pub(crate) async fn apply(
        &self,
        spec: &BalancerSpec,
        existing: Option<&str>,
    ) -> Result<Applied, String> {
        match self {
            Self::Local(local) => {
                let was_running = local.status(spec.id).is_some();
                let mut applied = local.apply(spec).await.map_err(|e| e.to_string())?;
                if existing.is_some() && !was_running {
                    // It ran before (the row has a reference) but the
                    // process lost it: stopped behind the portal's back or
                    // the portal restarted.
                    applied
                        .corrected
                        .insert(0, "the load balancer was not running".into());
                }
                Ok(applied)
            }
            Self::Hetzner(hetzner) => hetzner
                .apply(spec, existing)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Removes the load balancer at the backend; one already gone is fine.
    pub(crate) async fn remove(
        &self,
        id: LoadBalancerId,
        backend_ref: Option<&str>,
    ) -> Result<(), String> {
        match self {
            Self::Local(local) => {
                local.remove(id).await;
                Ok(())
            }
            Self::Hetzner(hetzner) => match backend_ref {
                Some(reference) => hetzner.delete(reference).await.map_err(|e| e.to_string()),
                None => Ok(()),
            },
        }
    }
}
