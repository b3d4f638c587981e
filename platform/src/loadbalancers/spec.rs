//! What a backend is asked to run: a load balancer with every target
//! resolved to an address. The product object (hosts, node ports, scope) is
//! turned into this before a backend sees it, so backends know nothing of
//! workspaces or hosts.

use std::net::IpAddr;

use protocol::ids::LoadBalancerId;
use protocol::views::load_balancers::{Algorithm, HealthCheck, Listener, TargetHealth};

/// The desired state of one load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerSpec {
    pub id: LoadBalancerId,
    /// Unique per backend; Hetzner Cloud uses it as the load balancer's name.
    pub name: String,
    pub listeners: Vec<Listener>,
    /// Each target receives every listener's traffic on that listener's
    /// `target_port`.
    pub targets: Vec<IpAddr>,
    pub algorithm: Algorithm,
    pub health: HealthCheck,
}

/// One target as seen on one listener's target port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    pub address: IpAddr,
    pub port: u16,
    pub health: TargetHealth,
}

/// What a backend reports after applying or observing a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BalancerStatus {
    /// Where clients connect; `None` while the backend has not assigned one.
    pub address: Option<IpAddr>,
    pub targets: Vec<TargetStatus>,
}

/// The outcome of converging a backend to a spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The backend's own identifier (Hetzner Cloud's numeric id as a
    /// string; the local backend uses the load balancer id), kept on the row.
    pub backend_ref: String,
    pub status: BalancerStatus,
    /// Human-readable differences found between the backend and the spec and
    /// corrected by this apply (empty on creation and when nothing drifted),
    /// e.g. "listener 443 was missing", "target 10.0.0.5 was added by hand".
    pub corrected: Vec<String>,
}
