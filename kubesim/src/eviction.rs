//! Pod eviction, as `kubectl drain` and the portal's node drain use it:
//! refused with 429 while a PodDisruptionBudget allows no disruption.

use serde_json::{Value, json};

use crate::{
    error::{ApiError, ApiResult},
    selector::Selector,
    store::{GroupResource, Store, meta_str},
};

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

/// Evicts (deletes) a pod unless a budget selecting it allows no
/// disruption; an allowed eviction uses up one of the budget's allowed
/// disruptions when its status counts them.
pub(crate) fn evict(store: &Store, namespace: &str, name: &str, dry_run: bool) -> ApiResult<()> {
    let pod = store
        .get(&pods(), namespace, name)
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    let budgets = GroupResource::new("policy", "poddisruptionbudgets");
    let (pods, _) = store.list(&pods(), Some(namespace));
    for pdb in store.list(&budgets, Some(namespace)).0 {
        let Some(selector) = Selector::from_label_selector(&pdb["spec"]["selector"]) else {
            continue;
        };
        if !selector.matches_labels(&pod) {
            continue;
        }
        let healthy = pods.iter().filter(|p| selector.matches_labels(p)).count() as i64;
        let pdb_name = meta_str(&pdb, "name").to_string();
        match verdict(&pdb, healthy) {
            Verdict::Blocked { needs } => {
                return Err(ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    json!([{
                        "reason": "DisruptionBudget",
                        "message": format!("The disruption budget {pdb_name} needs {needs} healthy pods and has {healthy} currently"),
                    }]),
                ));
            }
            Verdict::Allowed { counted: true } if !dry_run => {
                store.update_with(&budgets, namespace, &pdb_name, |pdb| {
                    let left = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(1);
                    pdb["status"]["disruptionsAllowed"] = json!((left - 1).max(0));
                });
            }
            Verdict::Allowed { .. } => {}
        }
    }
    if !dry_run {
        store.delete(&self::pods(), namespace, name);
    }
    Ok(())
}

enum Verdict {
    Blocked {
        needs: i64,
    },
    /// `counted`: the budget's status tracks allowed disruptions.
    Allowed {
        counted: bool,
    },
}

/// An int-or-percentage of `total`, rounded up as the disruption controller does.
fn scaled(value: &Value, total: i64) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let percent: i64 = value.as_str()?.strip_suffix('%')?.parse().ok()?;
    Some((percent * total + 99) / 100)
}

fn verdict(pdb: &Value, healthy: i64) -> Verdict {
    if let Some(allowed) = pdb
        .pointer("/status/disruptionsAllowed")
        .and_then(Value::as_i64)
    {
        let needs = pdb
            .pointer("/status/desiredHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(healthy);
        return if allowed <= 0 {
            Verdict::Blocked { needs }
        } else {
            Verdict::Allowed { counted: true }
        };
    }
    if let Some(min) = pdb
        .pointer("/spec/minAvailable")
        .and_then(|v| scaled(v, healthy))
        && min >= healthy
    {
        return Verdict::Blocked { needs: min };
    }
    if let Some(max) = pdb
        .pointer("/spec/maxUnavailable")
        .and_then(|v| scaled(v, healthy))
        && max <= 0
    {
        return Verdict::Blocked { needs: healthy };
    }
    Verdict::Allowed { counted: false }
}
