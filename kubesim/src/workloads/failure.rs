//! Failures injected into workloads, by object name, for every simulator in
//! the process: a test holding only the management [`crate::Kubesim`] can
//! then reach objects inside tenant API servers. Parallel tests in one
//! process share the registry, so each should use names of its own.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex, MutexGuard},
};

use serde::Deserialize;
use tokio::sync::broadcast;

/// How a workload misbehaves (see [`crate::Kubesim::inject_workload`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkloadFailure {
    /// Becomes ready after the workload delay, as a healthy cluster would.
    #[default]
    None,
    /// Never becomes ready: the status reports the pods but none ready, and
    /// a Job stays active.
    Stall,
    /// A Job fails with `BackoffLimitExceeded`; other workloads stall, since
    /// their controllers never give up.
    Fail,
}

impl WorkloadFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadFailure::None => "none",
            WorkloadFailure::Stall => "stall",
            WorkloadFailure::Fail => "fail",
        }
    }
}

/// The body of `PUT /kubesim/workload-failures/{name}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WorkloadFailureRequest {
    failure: String,
}

impl WorkloadFailureRequest {
    pub fn into_failure(self) -> Option<WorkloadFailure> {
        Some(match self.failure.as_str() {
            "none" => WorkloadFailure::None,
            "stall" => WorkloadFailure::Stall,
            "fail" => WorkloadFailure::Fail,
            _ => return None,
        })
    }
}

struct Registry {
    failures: Mutex<HashMap<String, WorkloadFailure>>,
    /// Names whose failure changed, so running controllers redo those
    /// workloads instead of waiting for their next spec change.
    changes: broadcast::Sender<String>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    failures: Mutex::new(HashMap::new()),
    changes: broadcast::channel(256).0,
});

fn failures() -> MutexGuard<'static, HashMap<String, WorkloadFailure>> {
    // Each critical section is one insert, remove or lookup.
    REGISTRY.failures.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn inject(name: &str, failure: WorkloadFailure) {
    match failure {
        WorkloadFailure::None => failures().remove(name),
        _ => failures().insert(name.to_string(), failure),
    };
    let _ = REGISTRY.changes.send(name.to_string());
}

pub(crate) fn failure_of(name: &str) -> WorkloadFailure {
    failures().get(name).copied().unwrap_or_default()
}

pub(crate) fn subscribe() -> broadcast::Receiver<String> {
    REGISTRY.changes.subscribe()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let parse = |text: &str| {
            serde_json::from_str::<WorkloadFailureRequest>(text)
                .ok()
                .and_then(WorkloadFailureRequest::into_failure)
        };
        assert_eq!(
            parse(r#"{"failure":"stall"}"#),
            Some(WorkloadFailure::Stall)
        );
        assert_eq!(parse(r#"{"failure":"fail"}"#), Some(WorkloadFailure::Fail));
        assert_eq!(parse(r#"{"failure":"none"}"#), Some(WorkloadFailure::None));
        assert_eq!(parse(r#"{"failure":"boom"}"#), None);
    }

    #[test]
    fn injection_is_by_name() {
        inject("failure-unit-test-job", WorkloadFailure::Fail);
        assert_eq!(failure_of("failure-unit-test-job"), WorkloadFailure::Fail);
        inject("failure-unit-test-job", WorkloadFailure::None);
        assert_eq!(failure_of("failure-unit-test-job"), WorkloadFailure::None);
    }
}
