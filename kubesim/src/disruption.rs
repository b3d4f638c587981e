//! PodDisruptionBudgets worked out as the disruption controller does, from
//! the pods as they are now: eviction decides with it, and the pod
//! controllers write it into each budget's status.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::{
    pods::{self, ControllerRef},
    selector::Selector,
    store::{GroupResource, Store, meta_str, now_rfc3339},
};

pub(crate) fn gr() -> GroupResource {
    GroupResource::new("policy", "poddisruptionbudgets")
}

/// A budget's numbers, as its status reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    pub expected: i64,
    pub desired: i64,
    pub healthy: i64,
    pub allowed: i64,
}

/// The budget's selector; None (an absent or broken selector) selects nothing.
pub(crate) fn selector(pdb: &Value) -> Option<Selector> {
    Selector::from_label_selector(pdb.pointer("/spec/selector")?)
}

/// An int-or-percentage of `total`, rounded up as the disruption controller does.
fn scaled(value: &Value, total: i64) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let percent: i64 = value.as_str()?.trim().strip_suffix('%')?.parse().ok()?;
    Some((percent * total + 99) / 100)
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The replicas a pod's controller wants, when it is one with a scale: a
/// ReplicaSet (its Deployment's, when a Deployment owns it) or a StatefulSet.
fn controller_scale(store: &Store, namespace: &str, owner: &ControllerRef) -> Option<i64> {
    let get = |group: &str, plural: &str, name: &str, uid: &str| {
        store
            .get(&GroupResource::new(group, plural), namespace, name)
            .filter(|obj| meta_str(obj, "uid") == uid)
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let replica_set = get("apps", "replicasets", &owner.name, &owner.uid)?;
            let deployment = pods::controller_of(&replica_set)
                .filter(|d| d.kind == "Deployment")
                .and_then(|d| get("apps", "deployments", &d.name, &d.uid));
            Some(replicas(deployment.as_ref().unwrap_or(&replica_set)))
        }
        "StatefulSet" => get("apps", "statefulsets", &owner.name, &owner.uid).map(|s| replicas(&s)),
        _ => None,
    }
}

/// How many pods the budget's pods' controllers want: their replicas where
/// known, one for each pod whose controller has no scale.
fn expected_scale(store: &Store, namespace: &str, selected: &[&Value]) -> i64 {
    let mut scales: HashMap<String, Option<i64>> = HashMap::new();
    let mut total = 0;
    for pod in selected {
        let Some(owner) = pods::controller_of(pod) else {
            total += 1;
            continue;
        };
        match scales.get(&owner.uid) {
            Some(Some(_)) => {}
            Some(None) => total += 1,
            None => {
                let scale = controller_scale(store, namespace, &owner);
                total += scale.unwrap_or(1);
                scales.insert(owner.uid, scale);
            }
        }
    }
    total
}

/// The budget's numbers given the pods of its namespace.
pub(crate) fn assess(store: &Store, pdb: &Value, namespace_pods: &[Value]) -> Budget {
    let selected: Vec<&Value> = match selector(pdb) {
        Some(selector) => namespace_pods
            .iter()
            .filter(|p| selector.matches_labels(p))
            .collect(),
        None => Vec::new(),
    };
    let healthy = selected
        .iter()
        .filter(|p| !pods::is_terminating(p) && pods::is_ready(p))
        .count() as i64;
    let namespace = meta_str(pdb, "namespace");
    let spec = &pdb["spec"];
    let (expected, desired) = if let Some(max) = spec.get("maxUnavailable").filter(|v| !v.is_null())
    {
        let expected = expected_scale(store, namespace, &selected);
        let max = scaled(max, expected).unwrap_or(0);
        (expected, (expected - max).max(0))
    } else if let Some(min) = spec.get("minAvailable").filter(|v| !v.is_null()) {
        if min.is_i64() {
            (selected.len() as i64, min.as_i64().unwrap_or(0))
        } else {
            let expected = expected_scale(store, namespace, &selected);
            (expected, scaled(min, expected).unwrap_or(expected))
        }
    } else {
        // Neither set: the API server defaults minAvailable to 1.
        (selected.len() as i64, 1)
    };
    Budget {
        expected,
        desired,
        healthy,
        allowed: (healthy - desired).max(0),
    }
}

/// The status the disruption controller writes for `budget`, keeping the
/// condition's transition time while its status holds.
pub(crate) fn status(pdb: &Value, budget: Budget) -> Value {
    let allowed = budget.allowed > 0;
    let (status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let generation = pdb
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let previous = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed"));
    let since = previous
        .filter(|c| c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now_rfc3339()));
    json!({
        "observedGeneration": generation,
        "disruptionsAllowed": budget.allowed,
        "currentHealthy": budget.healthy,
        "desiredHealthy": budget.desired,
        "expectedPods": budget.expected,
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": status,
            "reason": reason,
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": since,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, terminating: bool) -> Value {
        let mut pod = json!({
            "metadata": {"name": name, "namespace": "n", "labels": {"app": "web"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if terminating {
            pod["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
        }
        pod
    }

    fn pdb(spec: Value) -> Value {
        let mut pdb = json!({"metadata": {"name": "b", "namespace": "n"}, "spec": spec});
        pdb["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
        pdb
    }

    #[test]
    fn healthy_pods_are_ready_and_not_terminating() {
        let store = Store::new();
        let pods = vec![
            pod("a", true, false),
            pod("b", true, true),
            pod("c", false, false),
            pod("d", true, false),
        ];
        let budget = assess(&store, &pdb(json!({"minAvailable": 1})), &pods);
        assert_eq!(
            budget,
            Budget {
                expected: 4,
                desired: 1,
                healthy: 2,
                allowed: 1
            }
        );
        let budget = assess(&store, &pdb(json!({"maxUnavailable": "50%"})), &pods);
        assert_eq!((budget.expected, budget.desired, budget.allowed), (4, 2, 0));
        let budget = assess(&store, &pdb(json!({"minAvailable": "25%"})), &pods);
        assert_eq!((budget.desired, budget.allowed), (1, 1));
    }
}
