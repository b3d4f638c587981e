//! Cordoning and draining Kubernetes nodes, as users know it from `kubectl
//! drain` and Rancher: the options, the plan shown before anything happens,
//! and each node's state while and after it is drained.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;

/// The longest a drain may wait for one node's pods (three hours).
pub const MAX_TIMEOUT_SECONDS: u64 = 3 * 60 * 60;

/// How a drain treats the pods it finds; the defaults are Rancher's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DrainOptions {
    /// Leave pods of DaemonSets in place (their controller would put them
    /// back at once); off: such pods block the drain.
    pub ignore_daemonsets: bool,
    /// Evict pods with `emptyDir` volumes, losing that data; off: they block.
    pub delete_emptydir_data: bool,
    /// Delete pods no controller manages (they will not come back); off:
    /// they block.
    pub force: bool,
    /// Grace period given to each evicted pod; -1 keeps the pod's own.
    pub grace_period_seconds: i64,
    /// How long one node's pods may take to go, 1 s to 3 h.
    pub timeout_seconds: u64,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            ignore_daemonsets: true,
            delete_emptydir_data: false,
            force: false,
            grace_period_seconds: -1,
            timeout_seconds: 120,
        }
    }
}

/// Why a pod is left where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Managed by a DaemonSet and "ignore DaemonSets" is on.
    DaemonSet,
    /// A static pod's mirror: the kubelet owns it, the API cannot evict it.
    Mirror,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::DaemonSet => "managed by a DaemonSet; left in place",
            Self::Mirror => "static (mirror) pod; the kubelet owns it",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a pod stops the drain from starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// Has `emptyDir` data and "delete emptyDir data" is off.
    EmptyDir,
    /// No controller would recreate it and "force" is off.
    Unmanaged,
    /// Managed by a DaemonSet and "ignore DaemonSets" is off.
    DaemonSet,
}

impl BlockReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::EmptyDir => {
                "uses emptyDir storage whose data would be lost; choose \"delete emptyDir data\""
            }
            Self::Unmanaged => {
                "not managed by a controller, so it would not come back; choose \"force\""
            }
            Self::DaemonSet => {
                "managed by a DaemonSet, which would put it back; choose \"ignore DaemonSets\""
            }
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What a drain does with one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PodDisposition {
    /// Evicted through the Eviction API (disruption budgets apply).
    Evict,
    /// Already finished (Succeeded or Failed): deleted without blocking.
    Delete,
    Skip(SkipReason),
    Block(BlockReason),
}

impl PodDisposition {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Evict => "will be evicted",
            Self::Delete => "finished; will be deleted",
            Self::Skip(r) => r.describe(),
            Self::Block(r) => r.describe(),
        }
    }
}

impl fmt::Display for PodDisposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PlannedPod {
    pub namespace: String,
    pub name: String,
    /// The controlling owner as `Kind/name`, e.g. `ReplicaSet/web-abc`.
    pub owner: Option<String>,
    pub disposition: PodDisposition,
}

impl PlannedPod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NodeDrainPlan {
    pub node: String,
    pub pods: Vec<PlannedPod>,
}

impl NodeDrainPlan {
    /// The pods that stop this node's drain from starting.
    pub fn blockers(&self) -> impl Iterator<Item = &PlannedPod> {
        self.pods
            .iter()
            .filter(|p| matches!(p.disposition, PodDisposition::Block(_)))
    }
}

/// What draining the chosen nodes would do, before anything happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DrainPlan {
    pub nodes: Vec<NodeDrainPlan>,
}

impl DrainPlan {
    pub fn is_blocked(&self) -> bool {
        self.nodes.iter().any(|n| n.blockers().next().is_some())
    }

    /// "ns/pod (why); …" for every blocking pod, for error messages.
    pub fn describe_blockers(&self) -> String {
        self.nodes
            .iter()
            .flat_map(|n| n.blockers())
            .map(|p| format!("{} ({})", p.key(), p.disposition))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Where a node stands, as the nodes list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NodeDrainState {
    /// Schedulable.
    Active,
    /// Unschedulable, no drain running or finished since.
    Cordoned,
    Draining,
    /// The last drain succeeded and the node is still cordoned.
    Drained,
    /// The last drain failed or timed out and the node is still cordoned.
    Failed {
        reason: String,
    },
}

impl NodeDrainState {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Cordoned => "cordoned",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct NodeDrainStatus {
    pub node: String,
    pub state: NodeDrainState,
    /// The drain task running for this node or that last ended for it.
    pub task: Option<TaskId>,
    /// The PodDisruptionBudget refusing an eviction right now, while
    /// draining.
    pub blocked_by: Option<String>,
    /// `namespace/pod` still to go, while draining or after a failure.
    pub remaining: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rancher_s() {
        let o = DrainOptions::default();
        assert!(o.ignore_daemonsets && !o.delete_emptydir_data && !o.force);
        assert_eq!((o.grace_period_seconds, o.timeout_seconds), (-1, 120));
    }

    #[test]
    fn a_plan_is_blocked_by_any_blocking_pod() {
        let pod = |name: &str, disposition| PlannedPod {
            namespace: "default".into(),
            name: name.into(),
            owner: None,
            disposition,
        };
        let mut plan = DrainPlan {
            nodes: vec![NodeDrainPlan {
                node: "n1".into(),
                pods: vec![
                    pod("a", PodDisposition::Evict),
                    pod("b", PodDisposition::Skip(SkipReason::Mirror)),
                ],
            }],
        };
        assert!(!plan.is_blocked());
        plan.nodes[0]
            .pods
            .push(pod("c", PodDisposition::Block(BlockReason::EmptyDir)));
        assert!(plan.is_blocked());
        assert!(
            plan.describe_blockers()
                .starts_with("default/c (uses emptyDir")
        );
        let json = serde_json::to_string(&NodeDrainState::Failed { reason: "x".into() }).unwrap();
        assert_eq!(json, r#"{"state":"failed","reason":"x"}"#);
    }
}
