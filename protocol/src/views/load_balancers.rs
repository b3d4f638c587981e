//! Load balancers as users see them: the product object's vocabulary shared
//! by the portal, the REST API and the backends.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{HostId, LoadBalancerId, OrganizationId, ProjectId, WorkspaceId};

/// What a listener speaks. TCP listeners forward connections; HTTP
/// listeners balance each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Tcp,
    Http,
}

/// How a new connection (TCP) or request (HTTP) picks a healthy target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    RoundRobin,
    LeastConnections,
}

/// How targets are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthProtocol {
    Tcp,
    Http,
}

/// A target's health as the backend's checks last saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetHealth {
    /// Not checked yet.
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

/// A port the load balancer accepts traffic on, and the port on each
/// target it forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Listener {
    pub protocol: ListenerProtocol,
    pub port: u16,
    pub target_port: u16,
}

/// Health check settings, named after the fields users know from Hetzner
/// Cloud and HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
    /// The target port probed; the first listener's target port when unset.
    pub port: Option<u16>,
    /// Request path for HTTP checks; a 2xx or 3xx answer is healthy.
    pub path: String,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    /// Consecutive successes before an unhealthy target takes traffic again.
    pub healthy_threshold: u32,
    /// Consecutive failures before a target is taken out.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            protocol: HealthProtocol::Tcp,
            port: None,
            path: "/".into(),
            interval_seconds: 15,
            timeout_seconds: 10,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

// ----- the product object -----

/// Where a load balancer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "server",
    derive(utoipa::ToSchema, sqlx::Type),
    sqlx(type_name = "load_balancer_state", rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerState {
    /// Saved; the backend has not run it yet.
    Pending,
    /// Running at the backend as last applied.
    Active,
    /// The last apply failed; `last_error` says why.
    Error,
    /// Being removed at the backend, then from the portal.
    Deleting,
}

impl LoadBalancerState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Error => "error",
            Self::Deleting => "deleting",
        }
    }
}

/// What traffic goes to: a host of the workspace (its current address) or a
/// fixed address (a node port on a machine the portal does not manage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetRef {
    Host {
        host: HostId,
    },
    Ip {
        #[cfg_attr(feature = "server", schema(value_type = String, format = "ip"))]
        address: IpAddr,
    },
}

/// A load balancer as created or changed (the whole desired state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NewLoadBalancer {
    /// A DNS label, unique in the project.
    pub name: String,
    pub listeners: Vec<Listener>,
    pub targets: Vec<TargetRef>,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub health: HealthCheck,
}

/// One target with its health on each target port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TargetView {
    pub target: TargetRef,
    /// The host name, or the address of an IP target.
    pub label: String,
    /// Where traffic goes now; `None` while a host has no address (or is
    /// being deleted).
    #[cfg_attr(feature = "server", schema(value_type = Option<String>, format = "ip"))]
    pub address: Option<IpAddr>,
    /// Health per target port, as the backend last reported it.
    #[cfg_attr(feature = "server", schema(value_type = Vec<Object>))]
    pub health: Vec<(u16, TargetHealth)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct LoadBalancerView {
    pub id: LoadBalancerId,
    pub name: String,
    pub organization: OrganizationId,
    pub project: ProjectId,
    /// Set for workspace load balancers; `None` at project scope.
    pub workspace: Option<WorkspaceId>,
    /// `local` or `hetzner_cloud`.
    pub backend: String,
    pub state: LoadBalancerState,
    /// Where clients connect, once the backend assigned it.
    pub address: Option<String>,
    pub listeners: Vec<Listener>,
    pub targets: Vec<TargetView>,
    pub algorithm: Algorithm,
    pub health: HealthCheck,
    /// The last drift the reconciler corrected, with when.
    pub drift: Option<String>,
    pub last_error: Option<String>,
    /// `namespace/name` of the Kubernetes Service, for load balancers made
    /// through the in-cluster API.
    pub service: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The in-cluster API's request body: the load balancer of one Service of
/// type LoadBalancer. Its name and scope follow from the Service and the
/// workspace API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ServiceLoadBalancer {
    /// One per Service port: `port` is the Service port, `target_port` its
    /// node port.
    pub listeners: Vec<Listener>,
    /// The nodes to balance over; empty means every host of the workspace
    /// as it is now (send the request again when nodes change).
    #[serde(default)]
    pub targets: Vec<TargetRef>,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub health: Option<HealthCheck>,
}

/// What the in-cluster API answers: enough for a controller to fill in
/// the Service's `status.loadBalancer.ingress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ServiceLoadBalancerStatus {
    pub id: LoadBalancerId,
    /// `namespace/name`.
    pub service: String,
    pub name: String,
    pub state: LoadBalancerState,
    pub address: Option<String>,
    pub listeners: Vec<Listener>,
    pub targets: Vec<TargetView>,
    pub last_error: Option<String>,
}
