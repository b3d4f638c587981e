//! Which pods a drain evicts, deletes, leaves or refuses to touch: the
//! filters of `kubectl drain`, applied in its order, the first that keeps a
//! pod deciding.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams};
use protocol::views::drain::{
    BlockReason, DrainOptions, NodeDrainPlan, PlannedPod, PodDisposition, SkipReason,
};

/// The annotation the kubelet puts on the API's copy of a static pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The owner reference that manages the pod, if one does.
pub fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn has_empty_dir(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()))
}

/// What a drain with `options` does with `pod`. `daemonset_exists`: whether
/// the DaemonSet controlling the pod (if one does) still exists; an orphan
/// counts as unmanaged.
pub fn classify(pod: &Pod, options: &DrainOptions, daemonset_exists: bool) -> PodDisposition {
    let finished = is_finished(pod);
    let controller = controller_of(pod);
    if controller.is_some_and(|c| c.kind == "DaemonSet") && !finished {
        if !daemonset_exists {
            if !options.force {
                return PodDisposition::Block(BlockReason::Unmanaged);
            }
        } else if options.ignore_daemonsets {
            return PodDisposition::Skip(SkipReason::DaemonSet);
        } else {
            return PodDisposition::Block(BlockReason::DaemonSet);
        }
    }
    if is_mirror(pod) {
        return PodDisposition::Skip(SkipReason::Mirror);
    }
    if finished {
        return PodDisposition::Delete;
    }
    if has_empty_dir(pod) && !options.delete_emptydir_data {
        return PodDisposition::Block(BlockReason::EmptyDir);
    }
    if controller.is_none() && !options.force {
        return PodDisposition::Block(BlockReason::Unmanaged);
    }
    PodDisposition::Evict
}

/// A pod on the node with what the drain does with it.
pub struct Found {
    pub pod: Pod,
    pub planned: PlannedPod,
}

impl Found {
    pub fn uid(&self) -> String {
        self.pod.metadata.uid.clone().unwrap_or_default()
    }
}

/// The node's pods, classified. Read-only.
pub async fn inspect(
    client: &kube::Client,
    node: &str,
    options: &DrainOptions,
) -> Result<Vec<Found>, kube::Error> {
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?
        .items;
    // One lookup per DaemonSet, not per pod.
    let mut daemonsets: HashMap<(String, String), bool> = HashMap::new();
    for pod in &pods {
        if let Some(c) = controller_of(pod).filter(|c| c.kind == "DaemonSet") {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let key = (namespace, c.name.clone());
            if let Entry::Vacant(slot) = daemonsets.entry(key) {
                let (namespace, name) = slot.key();
                let exists = Api::<DaemonSet>::namespaced(client.clone(), namespace)
                    .get_opt(name)
                    .await?
                    .is_some();
                slot.insert(exists);
            }
        }
    }
    let mut found: Vec<Found> = pods
        .into_iter()
        .map(|pod| {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let controller = controller_of(&pod);
            let exists = controller
                .map(|c| {
                    daemonsets
                        .get(&(namespace.clone(), c.name.clone()))
                        .copied()
                        .unwrap_or(true)
                })
                .unwrap_or(true);
            let planned = PlannedPod {
                owner: controller.map(|c| format!("{}/{}", c.kind, c.name)),
                name: pod.metadata.name.clone().unwrap_or_default(),
                disposition: classify(&pod, options, exists),
                namespace,
            };
            Found { pod, planned }
        })
        .collect();
    found.sort_by(|a, b| {
        (&a.planned.namespace, &a.planned.name).cmp(&(&b.planned.namespace, &b.planned.name))
    });
    Ok(found)
}

pub fn node_plan(node: &str, found: &[Found]) -> NodeDrainPlan {
    NodeDrainPlan {
        node: node.to_string(),
        pods: found.iter().map(|f| f.planned.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        let mut base = json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running"},
        });
        merge(&mut base, value);
        serde_json::from_value(base).unwrap()
    }

    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, p) => *b = p,
        }
    }

    fn owned(kind: &str) -> serde_json::Value {
        json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": "x", "uid": "u", "controller": true}]}})
    }

    const EMPTY_DIR: &str = r#"{"spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}}"#;

    fn with(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
        merge(&mut a, b);
        a
    }

    #[test]
    fn kubectl_drain_rules() {
        use BlockReason as B;
        use PodDisposition::*;
        use SkipReason as S;
        let defaults = DrainOptions::default();
        let all = DrainOptions {
            ignore_daemonsets: false,
            delete_emptydir_data: true,
            force: true,
            ..defaults
        };
        let no_ds = DrainOptions {
            ignore_daemonsets: false,
            ..defaults
        };
        let empty_dir: serde_json::Value = serde_json::from_str(EMPTY_DIR).unwrap();
        let cases = [
            ("replicated", owned("ReplicaSet"), defaults, true, Evict),
            ("unmanaged", json!({}), defaults, true, Block(B::Unmanaged)),
            ("unmanaged, force", json!({}), all, true, Evict),
            (
                "owner without controller flag",
                json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ReplicaSet", "name": "x", "uid": "u"}]}}),
                defaults,
                true,
                Block(B::Unmanaged),
            ),
            (
                "daemonset",
                owned("DaemonSet"),
                defaults,
                true,
                Skip(S::DaemonSet),
            ),
            (
                "daemonset, not ignored",
                owned("DaemonSet"),
                no_ds,
                true,
                Block(B::DaemonSet),
            ),
            (
                "orphaned daemonset pod",
                owned("DaemonSet"),
                defaults,
                false,
                Block(B::Unmanaged),
            ),
            (
                "orphaned daemonset pod, force",
                owned("DaemonSet"),
                all,
                false,
                Evict,
            ),
            (
                "finished daemonset pod",
                with(
                    owned("DaemonSet"),
                    json!({"status": {"phase": "Succeeded"}}),
                ),
                no_ds,
                true,
                Delete,
            ),
            (
                "mirror",
                json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "abc"}}}),
                defaults,
                true,
                Skip(S::Mirror),
            ),
            (
                "mirror with emptyDir",
                with(
                    json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "abc"}}}),
                    empty_dir.clone(),
                ),
                defaults,
                true,
                Skip(S::Mirror),
            ),
            (
                "daemonset with emptyDir",
                with(owned("DaemonSet"), empty_dir.clone()),
                defaults,
                true,
                Skip(S::DaemonSet),
            ),
            (
                "emptyDir",
                with(owned("ReplicaSet"), empty_dir.clone()),
                defaults,
                true,
                Block(B::EmptyDir),
            ),
            (
                "emptyDir, delete",
                with(owned("ReplicaSet"), empty_dir.clone()),
                all,
                true,
                Evict,
            ),
            (
                "unmanaged with emptyDir: emptyDir first",
                empty_dir.clone(),
                defaults,
                true,
                Block(B::EmptyDir),
            ),
            (
                "unmanaged with emptyDir, delete data only",
                empty_dir.clone(),
                DrainOptions {
                    delete_emptydir_data: true,
                    ..defaults
                },
                true,
                Block(B::Unmanaged),
            ),
            (
                "finished unmanaged pod with emptyDir",
                with(empty_dir.clone(), json!({"status": {"phase": "Failed"}})),
                defaults,
                true,
                Delete,
            ),
        ];
        for (what, patch, options, exists, want) in cases {
            assert_eq!(classify(&pod(patch), &options, exists), want, "{what}");
        }
    }
}
