//! The backend a stored load balancer runs on, behind one face: apply a
//! spec, remove what runs.

use protocol::ids::{ComputeProviderId, LoadBalancerId};

use super::hetzner::HetznerBalancers;
use super::local::LocalBalancers;
use super::spec::{Applied, BalancerSpec};
use crate::Platform;
use crate::compute::providers::{self, Client};

/// Where new Hetzner Cloud load balancers go and their size. Compute
/// provider settings have no place for these yet; these are Hetzner's
/// smallest type in its first location.
const HETZNER_LOCATION: &str = "fsn1";
const HETZNER_TYPE: &str = "lb11";

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
                Ok(Client::HetznerCloud(cloud)) => Ok(Self::Hetzner(HetznerBalancers::new(
                    cloud,
                    HETZNER_LOCATION.into(),
                    HETZNER_TYPE.into(),
                    None,
                ))),
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
