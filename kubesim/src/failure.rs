//! Failures a tenant API server can be told to show.

use std::time::Duration;

use serde::Deserialize;

/// A fault injected into a tenant control plane (see [`crate::Kubesim::inject`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Failure {
    /// Behaves like a healthy Kamaji tenant.
    #[default]
    None,
    /// The tenant API server runs but `/healthz`, `/livez` and `/readyz`
    /// answer 500 forever; the TenantControlPlane stays `NotReady`.
    NeverHealthy,
    /// Provisioning takes this much longer, and every health probe of the
    /// tenant API server answers only after this long.
    Slow(Duration),
    /// The tenant API server answers 500 to every request. Kamaji still
    /// reports the control plane `Ready`: the caller has to notice.
    ServerErrors,
    /// The tenant API server never listens (connection refused), though the
    /// admin kubeconfig secret is created and the control plane reported
    /// `Ready`: a broken load balancer, say.
    Refused,
}

impl Failure {
    pub(crate) fn extra_delay(self) -> Duration {
        match self {
            Failure::Slow(delay) => delay,
            _ => Duration::ZERO,
        }
    }
}

/// The body of `PUT /kubesim/failures/{tenant}`.
#[derive(Debug, Deserialize)]
pub(crate) struct FailureRequest {
    failure: String,
    #[serde(default)]
    seconds: Option<f64>,
}

impl FailureRequest {
    pub fn into_failure(self) -> Option<Failure> {
        Some(match self.failure.as_str() {
            "none" => Failure::None,
            "never_healthy" => Failure::NeverHealthy,
            "slow" => Failure::Slow(Duration::from_secs_f64(
                self.seconds.unwrap_or(30.0).max(0.0),
            )),
            "server_errors" => Failure::ServerErrors,
            "refused" => Failure::Refused,
            _ => return None,
        })
    }
}

pub(crate) fn describe(failure: Failure) -> serde_json::Value {
    match failure {
        Failure::None => serde_json::json!({"failure": "none"}),
        Failure::NeverHealthy => serde_json::json!({"failure": "never_healthy"}),
        Failure::Slow(d) => serde_json::json!({"failure": "slow", "seconds": d.as_secs_f64()}),
        Failure::ServerErrors => serde_json::json!({"failure": "server_errors"}),
        Failure::Refused => serde_json::json!({"failure": "refused"}),
    }
}
