//! Pod eviction (`POST .../pods/{name}/eviction`), as `kubectl drain` and
//! the portal's node drain use it: a graceful delete, refused with 429 while
//! the pod's PodDisruptionBudget allows no disruption.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::{
    disruption,
    error::{ApiError, ApiResult},
    pods,
    store::{Store, meta_str},
};

/// Evictions check a budget and then mark the pod terminating; two at once
/// could both pass the check, so they take turns (the real API server gets
/// the same from the budget's resource version).
static EVICTIONS: Mutex<()> = Mutex::new(());

/// What the request asked for besides the pod: the Eviction's
/// `deleteOptions` (grace period, dry run, uid precondition).
#[derive(Debug, Default)]
pub(crate) struct EvictOptions {
    pub grace: Option<i64>,
    pub dry_run: bool,
    pub uid: Option<String>,
}

impl EvictOptions {
    /// From an Eviction body (which may be empty) and the query's dry run.
    pub fn from_body(body: Option<&Value>, dry_run: bool) -> EvictOptions {
        let options = body.and_then(|b| b.get("deleteOptions"));
        let field = |pointer: &str| options.and_then(|o| o.pointer(pointer));
        EvictOptions {
            grace: field("/gracePeriodSeconds").and_then(Value::as_i64),
            dry_run: dry_run
                || field("/dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|v| !v.is_empty()),
            uid: field("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from),
        }
    }
}

/// Pods a budget does not protect: finished or not yet running ones, and
/// those already on their way out.
fn ignores_budgets(pod: &Value) -> bool {
    matches!(pods::phase(pod), "Succeeded" | "Failed" | "Pending") || pods::is_terminating(pod)
}

/// Evicts (gracefully deletes) a pod unless the budget selecting it allows
/// no disruption now.
pub(crate) fn evict(
    store: &Store,
    namespace: &str,
    name: &str,
    options: &EvictOptions,
) -> ApiResult<()> {
    let _turn = EVICTIONS.lock().unwrap_or_else(|e| e.into_inner());
    let pod = store
        .get(&pods::gr(), namespace, name)
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    if options
        .uid
        .as_deref()
        .is_some_and(|uid| uid != meta_str(&pod, "uid"))
    {
        return Err(ApiError::conflict("pods", "", name));
    }
    if !ignores_budgets(&pod) {
        check_budgets(store, namespace, &pod)?;
    }
    if !options.dry_run {
        pods::delete(store, namespace, name, options.grace)
            .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    }
    Ok(())
}

fn check_budgets(store: &Store, namespace: &str, pod: &Value) -> ApiResult<()> {
    let budgets: Vec<Value> = store
        .list(&disruption::gr(), Some(namespace))
        .0
        .into_iter()
        .filter(|pdb| disruption::selector(pdb).is_some_and(|s| s.matches_labels(pod)))
        .collect();
    let pdb = match budgets.as_slice() {
        [] => return Ok(()),
        [pdb] => pdb,
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let (namespace_pods, _) = store.list(&pods::gr(), Some(namespace));
    let budget = disruption::assess(store, pdb, &namespace_pods);
    // An unready pod counts for nothing already: taking it away costs the
    // budget nothing as long as the healthy ones suffice.
    let always_allow_unhealthy =
        pdb.pointer("/spec/unhealthyPodEvictionPolicy") == Some(&json!("AlwaysAllow"));
    if !pods::is_ready(pod)
        && (always_allow_unhealthy || (budget.desired > 0 && budget.healthy >= budget.desired))
    {
        return Ok(());
    }
    if budget.allowed > 0 {
        return Ok(());
    }
    let pdb_name = meta_str(pdb, "name");
    Err(ApiError::too_many_requests(
        "Cannot evict pod as it would violate the pod's disruption budget.",
        json!([{
            "reason": "DisruptionBudget",
            "message": format!(
                "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                budget.desired, budget.healthy
            ),
        }]),
    ))
}
