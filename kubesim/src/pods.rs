//! Pods as the API server and the kubelet treat them: readiness, the
//! controller that owns them, and graceful deletion.

use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::store::{GroupResource, Store, meta_str};

/// The grace period when neither the request nor the pod names one.
pub(crate) const DEFAULT_GRACE_SECONDS: i64 = 30;

pub(crate) fn gr() -> GroupResource {
    GroupResource::new("", "pods")
}

pub(crate) fn nodes() -> GroupResource {
    GroupResource::new("", "nodes")
}

pub(crate) fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

pub(crate) fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub(crate) fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
}

/// Ready by its Ready condition; a pod whose status has no conditions (one a
/// test wrote by hand) is ready when Running.
pub(crate) fn is_ready(pod: &Value) -> bool {
    match condition(pod, "Ready") {
        Some(ready) => ready["status"] == "True",
        None => phase(pod) == "Running",
    }
}

/// A node takes pods unless its Ready condition says otherwise: nodes that
/// tests create often carry no status at all, and no kubelet writes one.
pub(crate) fn node_is_ready(node: &Value) -> bool {
    condition(node, "Ready").is_none_or(|ready| ready["status"] == "True")
}

pub(crate) fn node_is_unschedulable(node: &Value) -> bool {
    node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true)
}

/// The owner reference marked `controller: true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ControllerRef {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

pub(crate) fn controller_of(obj: &Value) -> Option<ControllerRef> {
    let owners = obj.pointer("/metadata/ownerReferences")?.as_array()?;
    let owner = owners.iter().find(|o| o["controller"] == true)?;
    Some(ControllerRef {
        kind: owner["kind"].as_str()?.to_string(),
        name: owner["name"].as_str()?.to_string(),
        uid: owner["uid"].as_str()?.to_string(),
    })
}

/// The owner reference a controller puts on what it creates.
pub(crate) fn owner_reference(api_version: &str, kind: &str, owner: &Value) -> Value {
    json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// RFC 3339 time `seconds` from now.
pub(crate) fn rfc3339_in(seconds: i64) -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    (now + time::Duration::seconds(seconds))
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Seconds from now until an RFC 3339 time (negative when past).
pub(crate) fn seconds_until(timestamp: &str) -> Option<f64> {
    let at = OffsetDateTime::parse(timestamp, &Rfc3339).ok()?;
    Some((at - OffsetDateTime::now_utc()).as_seconds_f64())
}

/// What deleting a pod did.
#[derive(Debug)]
pub(crate) enum Deletion {
    /// The pod is terminating: it goes once its grace period has passed.
    Terminating(Value),
    /// The pod is gone.
    Gone(Value),
}

impl Deletion {
    pub fn into_object(self) -> Value {
        match self {
            Deletion::Terminating(obj) | Deletion::Gone(obj) => obj,
        }
    }
}

/// The grace period a delete of `pod` gets, as the real API server works it
/// out: the requested one, else the pod's own, else 30 s; a pod no node ever
/// ran, or one that has finished, has nothing to stop and goes at once.
fn grace_for(pod: &Value, requested: Option<i64>) -> i64 {
    if node_name(pod).is_empty() || matches!(phase(pod), "Succeeded" | "Failed") {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0)
}

/// Deletes a pod gracefully: sets `metadata.deletionTimestamp` (the time it
/// will be gone) and `deletionGracePeriodSeconds`; the pod controllers
/// remove it when that time comes. Grace 0 removes it at once, and a shorter
/// grace shortens the wait of a pod already terminating. None when absent.
pub(crate) fn delete(
    store: &Store,
    namespace: &str,
    name: &str,
    requested: Option<i64>,
) -> Option<Deletion> {
    let pod = store.get(&gr(), namespace, name)?;
    let grace = grace_for(&pod, requested);
    if grace == 0 {
        return store.delete(&gr(), namespace, name).map(Deletion::Gone);
    }
    let current = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if is_terminating(&pod) && current.is_some_and(|current| current <= grace) {
        return Some(Deletion::Terminating(pod));
    }
    let uid = meta_str(&pod, "uid").to_string();
    let updated = store.update_with(&gr(), namespace, name, |pod| {
        if meta_str(pod, "uid") != uid {
            return;
        }
        pod["metadata"]["deletionTimestamp"] = json!(rfc3339_in(grace));
        pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    })?;
    Some(Deletion::Terminating(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_pod(grace: Option<i64>) -> Value {
        let mut pod = json!({
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"},
        });
        if let Some(grace) = grace {
            pod["spec"]["terminationGracePeriodSeconds"] = json!(grace);
        }
        pod
    }

    #[test]
    fn grace_periods_follow_the_request_then_the_pod() {
        assert_eq!(grace_for(&bound_pod(None), None), 30);
        assert_eq!(grace_for(&bound_pod(Some(5)), None), 5);
        assert_eq!(grace_for(&bound_pod(Some(5)), Some(2)), 2);
        let mut unbound = bound_pod(None);
        unbound["spec"]["nodeName"] = json!("");
        assert_eq!(grace_for(&unbound, Some(10)), 0);
        let mut finished = bound_pod(None);
        finished["status"]["phase"] = json!("Succeeded");
        assert_eq!(grace_for(&finished, None), 0);
    }

    #[test]
    fn deleting_marks_then_shortens_then_removes() {
        let store = Store::new();
        store.create(&gr(), bound_pod(Some(60))).unwrap();
        let Some(Deletion::Terminating(pod)) = delete(&store, "n", "p", None) else {
            panic!("graceful delete");
        };
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 60);
        assert!(is_terminating(&pod));
        // A longer grace changes nothing, a shorter one shortens it.
        delete(&store, "n", "p", Some(90));
        let pod = store.get(&gr(), "n", "p").unwrap();
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 60);
        delete(&store, "n", "p", Some(10));
        let pod = store.get(&gr(), "n", "p").unwrap();
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 10);
        assert!(matches!(
            delete(&store, "n", "p", Some(0)),
            Some(Deletion::Gone(_))
        ));
        assert!(store.get(&gr(), "n", "p").is_none());
        assert!(delete(&store, "n", "p", None).is_none());
    }

    #[test]
    fn readiness_reads_the_condition_before_the_phase() {
        let mut pod = bound_pod(None);
        assert!(is_ready(&pod));
        pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        assert!(!is_ready(&pod));
        assert!(node_is_ready(&json!({"metadata": {"name": "n"}})));
        assert!(!node_is_ready(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
        ));
    }
}
