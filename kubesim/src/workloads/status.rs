//! The status the real workload controllers report, for a Deployment,
//! StatefulSet, DaemonSet or Job, healthy or failing.

use serde_json::{Value, json};

use crate::{
    store::{GroupResource, meta_str},
    workloads::failure::WorkloadFailure,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
    ];

    pub fn gr(self) -> GroupResource {
        match self {
            Kind::Deployment => GroupResource::new("apps", "deployments"),
            Kind::StatefulSet => GroupResource::new("apps", "statefulsets"),
            Kind::DaemonSet => GroupResource::new("apps", "daemonsets"),
            Kind::Job => GroupResource::new("batch", "jobs"),
        }
    }

    pub fn of(gr: &GroupResource) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.gr() == *gr)
    }
}

/// What a status depends on besides the object itself.
pub(crate) struct Context {
    pub failure: WorkloadFailure,
    /// Nodes a DaemonSet runs on.
    pub nodes: i64,
    pub now: String,
    /// A Job whose spec changed since it ran: it starts over rather than
    /// keeping its finished status.
    pub rerun: bool,
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Whether the controller has yet to act on the object's spec. Jobs report
/// no observed generation; one that has started counts as seen.
pub(crate) fn unobserved(kind: Kind, obj: &Value) -> bool {
    match kind {
        Kind::Job => obj.pointer("/status/startTime").is_none(),
        _ => {
            obj.pointer("/status/observedGeneration")
                .and_then(Value::as_i64)
                != Some(generation(obj))
        }
    }
}

pub(crate) fn desired(kind: Kind, obj: &Value, context: &Context) -> Value {
    match kind {
        Kind::Deployment => deployment(obj, context),
        Kind::StatefulSet => stateful_set(obj, context),
        Kind::DaemonSet => daemon_set(obj, context),
        Kind::Job => job(obj, context),
    }
}

fn int(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn healthy(context: &Context) -> bool {
    context.failure == WorkloadFailure::None
}

/// Like the pod-template-hash label: names the ReplicaSet or revision of
/// the current template, so it changes when the template does.
pub(crate) fn template_hash(obj: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let template = obj.pointer("/spec/template").cloned().unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in template.to_string().bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|i| {
            let index = (hash >> (i * 6)) as usize % ALPHABET.len();
            char::from(ALPHABET[index])
        })
        .collect()
}

struct Condition<'a> {
    kind: &'a str,
    status: &'a str,
    reason: &'a str,
    message: String,
}

/// The conditions as the controllers write them: an unchanged condition
/// keeps its timestamps, so rewriting the same status changes nothing.
fn conditions(obj: &Value, wanted: Vec<Condition<'_>>, now: &str, update_time: bool) -> Value {
    let old = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let conditions: Vec<Value> = wanted
        .into_iter()
        .map(|c| {
            let previous = old.iter().find(|o| o["type"] == c.kind);
            if let Some(previous) = previous
                && previous["status"] == c.status
                && previous["reason"] == c.reason
                && previous["message"] == c.message.as_str()
            {
                return previous.clone();
            }
            let transition = previous
                .filter(|p| p["status"] == c.status)
                .and_then(|p| p.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            let mut condition = json!({
                "type": c.kind,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": transition,
            });
            if update_time {
                condition["lastUpdateTime"] = json!(now);
            }
            condition
        })
        .collect();
    Value::Array(conditions)
}

fn deployment(obj: &Value, context: &Context) -> Value {
    let replicas = int(obj, "/spec/replicas", 1);
    let ready = if healthy(context) { replicas } else { 0 };
    let replica_set = format!("{}-{}", meta_str(obj, "name"), template_hash(obj));
    let wanted = if healthy(context) {
        vec![
            Condition {
                kind: "Available",
                status: "True",
                reason: "MinimumReplicasAvailable",
                message: "Deployment has minimum availability.".into(),
            },
            Condition {
                kind: "Progressing",
                status: "True",
                reason: "NewReplicaSetAvailable",
                message: format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
            },
        ]
    } else {
        vec![
            Condition {
                kind: "Available",
                status: "False",
                reason: "MinimumReplicasUnavailable",
                message: "Deployment does not have minimum availability.".into(),
            },
            Condition {
                kind: "Progressing",
                status: "True",
                reason: "ReplicaSetUpdated",
                message: format!("ReplicaSet \"{replica_set}\" is progressing."),
            },
        ]
    };
    json!({
        "observedGeneration": generation(obj),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": replicas - ready,
        "conditions": conditions(obj, wanted, &context.now, true),
    })
}

fn stateful_set(obj: &Value, context: &Context) -> Value {
    let replicas = int(obj, "/spec/replicas", 1);
    let ready = if healthy(context) { replicas } else { 0 };
    let revision = format!("{}-{}", meta_str(obj, "name"), template_hash(obj));
    json!({
        "observedGeneration": generation(obj),
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": replicas,
        "updatedReplicas": replicas,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    })
}

fn daemon_set(obj: &Value, context: &Context) -> Value {
    let nodes = context.nodes;
    let ready = if healthy(context) { nodes } else { 0 };
    json!({
        "observedGeneration": generation(obj),
        "desiredNumberScheduled": nodes,
        "currentNumberScheduled": nodes,
        "updatedNumberScheduled": nodes,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": nodes - ready,
    })
}

fn finished(obj: &Value) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
            })
        })
}

fn job(obj: &Value, context: &Context) -> Value {
    let old = obj.get("status").cloned().unwrap_or(Value::Null);
    // A finished Job stays finished, whatever is injected later.
    if finished(obj) && !context.rerun {
        return old;
    }
    let start = match old.get("startTime") {
        Some(start) if !context.rerun => start.clone(),
        _ => json!(context.now),
    };
    let now = context.now.as_str();
    // Unfinished, so there is no earlier terminal condition to keep.
    let previous = &Value::Null;
    match context.failure {
        WorkloadFailure::None => json!({
            "startTime": start,
            "completionTime": now,
            "succeeded": int(obj, "/spec/completions", 1),
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": conditions(previous, vec![Condition {
                kind: "Complete",
                status: "True",
                reason: "CompletionsReached",
                message: "Reached expected number of succeeded pods".into(),
            }], now, false),
        }),
        WorkloadFailure::Stall => json!({
            "startTime": start,
            "active": int(obj, "/spec/parallelism", 1),
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }),
        WorkloadFailure::Fail => json!({
            "startTime": start,
            "failed": int(obj, "/spec/backoffLimit", 6) + 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": conditions(previous, vec![Condition {
                kind: "Failed",
                status: "True",
                reason: "BackoffLimitExceeded",
                message: "Job has reached the specified backoff limit".into(),
            }], now, false),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(failure: WorkloadFailure) -> Context {
        Context {
            failure,
            nodes: 3,
            now: "2025-01-01T00:00:00Z".into(),
            rerun: false,
        }
    }

    fn deployment_object() -> Value {
        json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a"}]}}},
        })
    }

    #[test]
    fn a_healthy_deployment_is_available() {
        let status = desired(
            Kind::Deployment,
            &deployment_object(),
            &context(WorkloadFailure::None),
        );
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(status["availableReplicas"], 2);
        assert_eq!(status["conditions"][0]["type"], "Available");
        assert_eq!(status["conditions"][0]["status"], "True");
        assert_eq!(status["conditions"][1]["reason"], "NewReplicaSetAvailable");
    }

    #[test]
    fn rewriting_the_same_status_changes_nothing() {
        let mut obj = deployment_object();
        obj["status"] = desired(Kind::Deployment, &obj, &context(WorkloadFailure::None));
        let mut later = context(WorkloadFailure::None);
        later.now = "2025-01-02T00:00:00Z".into();
        assert_eq!(desired(Kind::Deployment, &obj, &later), obj["status"]);
        assert!(!unobserved(Kind::Deployment, &obj));
    }

    #[test]
    fn a_stalled_deployment_has_nothing_ready() {
        let status = desired(
            Kind::Deployment,
            &deployment_object(),
            &context(WorkloadFailure::Fail),
        );
        assert_eq!(status["availableReplicas"], 0);
        assert_eq!(status["conditions"][0]["status"], "False");
    }

    #[test]
    fn daemon_sets_count_nodes() {
        let obj = json!({"metadata": {"name": "agent"}});
        let status = desired(Kind::DaemonSet, &obj, &context(WorkloadFailure::None));
        assert_eq!(status["numberReady"], 3);
        assert_eq!(status["desiredNumberScheduled"], 3);
    }

    #[test]
    fn jobs_complete_fail_and_stay_finished() {
        let mut obj = json!({"metadata": {"name": "migrate"}, "spec": {"backoffLimit": 2}});
        let failed = desired(Kind::Job, &obj, &context(WorkloadFailure::Fail));
        assert_eq!(failed["failed"], 3);
        assert_eq!(failed["conditions"][0]["reason"], "BackoffLimitExceeded");
        obj["status"] = failed.clone();
        assert_eq!(
            desired(Kind::Job, &obj, &context(WorkloadFailure::None)),
            failed
        );
        let mut rerun = context(WorkloadFailure::None);
        rerun.rerun = true;
        let complete = desired(Kind::Job, &obj, &rerun);
        assert_eq!(complete["succeeded"], 1);
        assert_eq!(complete["conditions"][0]["type"], "Complete");
        assert_eq!(complete["conditions"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn the_template_hash_follows_the_template() {
        let a = deployment_object();
        let mut b = deployment_object();
        b["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b");
        assert_eq!(template_hash(&a), template_hash(&a.clone()));
        assert_ne!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), 10);
    }
}
