//! A Kubernetes workspace's cluster as the portal reads it live from the
//! tenant API: the summary, the nodes and the versions it may move to.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::HostId;

/// Whether the portal could read the tenant cluster, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ApiHealth {
    /// The API server answered.
    Healthy,
    /// The workspace has a cluster but its API server did not answer.
    Unreachable { reason: String },
    /// The workspace is not active (yet, or any more): nothing to ask.
    NotReady { workspace_state: String },
    /// A bare-metal workspace has no Kubernetes API.
    NotKubernetes,
}

impl ApiHealth {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }

    /// A sentence for the UI when there is nothing to show.
    pub fn explain(&self) -> Option<String> {
        match self {
            Self::Healthy => None,
            Self::Unreachable { reason } => Some(format!(
                "The cluster's API server is not reachable: {reason}"
            )),
            Self::NotReady { workspace_state } => Some(format!(
                "The cluster can be read once the workspace is active (it is {workspace_state})."
            )),
            Self::NotKubernetes => Some("A bare-metal workspace has no Kubernetes cluster.".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NodeCounts {
    pub total: u32,
    pub ready: u32,
    /// Unschedulable (cordoned or drained).
    pub cordoned: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PhaseCount {
    /// `Running`, `Pending`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
    pub count: u32,
}

/// A Warning event, as `kubectl get events` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClusterEvent {
    pub namespace: String,
    /// `Kind/name` of the object the event is about.
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
}

/// The Kubernetes tab: how the cluster is doing, at `observed_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClusterSummary {
    pub health: ApiHealth,
    /// The API server's `gitVersion`, e.g. `v1.33.2`.
    pub version: Option<String>,
    pub nodes: NodeCounts,
    pub pods: Vec<PhaseCount>,
    pub namespaces: Vec<String>,
    /// The most recent Warning events, newest first.
    pub warnings: Vec<ClusterEvent>,
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
}

impl ClusterSummary {
    /// A summary that says only why there is nothing to show.
    pub fn unavailable(health: ApiHealth, observed_at: OffsetDateTime) -> Self {
        Self {
            health,
            version: None,
            nodes: NodeCounts::default(),
            pods: Vec::new(),
            namespaces: Vec::new(),
            warnings: Vec::new(),
            observed_at,
        }
    }
}

/// A node's capacity and what of it pods may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NodeResources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// The portal host a node runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NodeHost {
    pub id: HostId,
    pub hostname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NodeView {
    pub name: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// Cordoned: no new pods are scheduled here.
    pub unschedulable: bool,
    /// From `node-role.kubernetes.io/<role>` labels; empty for plain workers.
    pub roles: Vec<String>,
    pub kubelet_version: Option<String>,
    pub internal_ip: Option<String>,
    pub capacity: NodeResources,
    pub allocatable: NodeResources,
    /// Pods bound to the node that have not finished.
    pub pods: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    pub host: Option<NodeHost>,
}

/// The nodes page: the nodes, or why they could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClusterNodes {
    pub health: ApiHealth,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpgradeKind {
    /// A newer patch of the same minor version.
    Patch,
    /// The next minor version (Kubernetes upgrades one minor at a time).
    Minor,
}

impl UpgradeKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Patch => "patch",
            Self::Minor => "minor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct UpgradeTarget {
    pub version: String,
    pub kind: UpgradeKind,
}

/// Which active catalog versions the workspace may move to from `current`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct UpgradeMatrix {
    pub current: Option<String>,
    /// Newest first.
    pub targets: Vec<UpgradeTarget>,
}

/// `1.5 GiB`, `512 MiB`: binary units as `kubectl describe` thinks of them.
pub fn display_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 || value.fract() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `4`, `3.5`, `250m`: CPUs as Kubernetes writes them.
pub fn display_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else if millis >= 1000 {
        format!("{:.1}", millis as f64 / 1000.0)
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_kubectl() {
        assert_eq!(display_bytes(16 * 1024 * 1024 * 1024), "16 GiB");
        assert_eq!(display_bytes(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(display_bytes(512), "512 B");
        assert_eq!(display_cpu(4000), "4");
        assert_eq!(display_cpu(3500), "3.5");
        assert_eq!(display_cpu(250), "250m");
    }

    #[test]
    fn health_is_tagged_for_clients() {
        let json = serde_json::to_string(&ApiHealth::Unreachable {
            reason: "timed out".into(),
        })
        .unwrap();
        assert_eq!(json, r#"{"state":"unreachable","reason":"timed out"}"#);
        assert!(
            ApiHealth::Unreachable {
                reason: "timed out".into()
            }
            .explain()
            .unwrap()
            .starts_with("The cluster's API server is not reachable: timed out")
        );
    }
}
