//! The drain task: one step per node, in order. Each step cordons its node
//! (and the nodes after it, as `kubectl drain` cordons every node first, so
//! that evicted pods do not land on a node about to be drained), plans
//! again, deletes finished pods, evicts the rest through the Eviction API
//! (retrying while a PodDisruptionBudget refuses) and waits until every pod
//! it evicted is gone or replaced. A step repeated after a restart does the
//! same again and keeps the deadline of its first attempt.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use kube::api::{Api, DeleteParams, ListParams};
use protocol::ids::WorkspaceId;
use protocol::views::drain::{DrainOptions, PodDisposition};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::plan::{self, Found};
use crate::Platform;
use crate::kubernetes::is_not_found;
use crate::tasks::{BoxFuture, Handler, StepContext, StepError, StepPlan, TaskSpec};

pub const KIND: &str = "node.drain";
/// Step names are this followed by the node's name.
pub const STEP_PREFIX: &str = "drain ";
/// How often a step looks whether its pods are gone.
const POLL: Duration = Duration::from_secs(1);
/// The first wait after a disruption budget refused; doubles up to
/// [`MAX_BUDGET_BACKOFF`]. `kubectl drain` waits 5 s each time.
const BUDGET_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BUDGET_BACKOFF: Duration = Duration::from_secs(5);

/// Drains `nodes` one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drain {
    pub workspace: WorkspaceId,
    pub nodes: Vec<String>,
    pub options: DrainOptions,
    /// Names this drain's task for [`crate::tasks::cancel_matching`].
    pub run: uuid::Uuid,
}

pub fn step_name(node: &str) -> String {
    format!("{STEP_PREFIX}{node}")
}

impl TaskSpec for Drain {
    const KIND: &'static str = KIND;

    fn title(&self) -> String {
        match self.nodes.as_slice() {
            [one] => format!("Drain node {one}"),
            many => format!("Drain {} nodes: {}", many.len(), many.join(", ")),
        }
    }

    fn plan(&self) -> Vec<StepPlan> {
        // The drain keeps its own deadline (from the first attempt); the
        // engine's per-attempt limit only catches a step that hangs.
        let attempt = Duration::from_secs(self.options.timeout_seconds) + Duration::from_secs(120);
        self.nodes
            .iter()
            .map(|n| {
                StepPlan::new(step_name(n))
                    .timeout(attempt)
                    .max_attempts(5)
                    .backoff(Duration::from_secs(2))
            })
            .collect()
    }
}

/// What a drain step records while it runs; `statuses` reads it back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// When the first attempt started: the timeout counts from here.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub started_at: Option<OffsetDateTime>,
    /// The disruption budget refusing an eviction, as of the last round.
    pub blocked_by: Option<String>,
    /// `namespace/name` of the pods still to go.
    pub remaining: Vec<String>,
}

pub struct DrainHandler {
    platform: Platform,
}

impl DrainHandler {
    pub fn new(platform: Platform) -> Self {
        Self { platform }
    }

    async fn step(&self, ctx: &StepContext) -> Result<Option<serde_json::Value>, StepError> {
        let input: Drain = ctx.input()?;
        let node = ctx
            .step()
            .strip_prefix(STEP_PREFIX)
            .ok_or_else(|| StepError::fatal(format!("unknown step {}", ctx.step())))?;
        let index = input
            .nodes
            .iter()
            .position(|n| n == node)
            .ok_or_else(|| StepError::fatal(format!("{node} is not among the task's nodes")))?;
        let client = crate::workspaces::pipeline::tenant_client_without_retry(
            &self.platform,
            input.workspace,
        )
        .await?;
        let started_at = match (ctx.attempt(), ctx.progress_data::<Progress>().await?) {
            (
                2..,
                Some(Progress {
                    started_at: Some(at),
                    ..
                }),
            ) => at,
            _ => OffsetDateTime::now_utc(),
        };
        let mut drain = NodeDrain {
            ctx,
            client,
            node,
            options: &input.options,
            started_at,
            recorded: None,
        };
        drain.record("cordoning", None, &[]).await?;
        drain.cordon(&input.nodes[index..]).await?;
        drain.run().await
    }
}

impl Handler for DrainHandler {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(self.step(ctx))
    }
}

/// A pod the step waits for.
struct Target {
    key: String,
    namespace: String,
    name: String,
    uid: String,
    /// Finished pods are deleted, the rest evicted.
    delete: bool,
    /// Evicted or deleted; now waiting for it to go.
    asked: bool,
}

struct NodeDrain<'a> {
    ctx: &'a StepContext,
    client: kube::Client,
    node: &'a str,
    options: &'a DrainOptions,
    started_at: OffsetDateTime,
    /// The note last recorded, to write only changes.
    recorded: Option<String>,
}

/// How one eviction or deletion went.
enum Asked {
    /// Accepted, or the pod is gone or replaced already.
    Done,
    /// A disruption budget refuses for now; its name if the answer says.
    Refused(Option<String>),
    /// Worth another go (the API had trouble).
    Trouble(String),
}

impl NodeDrain<'_> {
    fn grace(&self) -> Option<i64> {
        (self.options.grace_period_seconds >= 0).then_some(self.options.grace_period_seconds)
    }

    fn deadline(&self) -> OffsetDateTime {
        self.started_at
            + time::Duration::seconds(
                i64::try_from(self.options.timeout_seconds).unwrap_or(i64::MAX),
            )
    }

    async fn record(
        &mut self,
        note: &str,
        blocked_by: Option<&str>,
        remaining: &[String],
    ) -> Result<(), StepError> {
        let data = Progress {
            started_at: Some(self.started_at),
            blocked_by: blocked_by.map(String::from),
            remaining: remaining.to_vec(),
        };
        let fingerprint = format!("{note}|{blocked_by:?}|{remaining:?}");
        if self.recorded.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        let data = serde_json::to_value(&data).map_err(StepError::fatal)?;
        self.ctx.progress(note, &data).await?;
        self.recorded = Some(fingerprint);
        Ok(())
    }

    /// Cordons `nodes` (this one first). This node must exist; later ones
    /// that vanished are left to their own steps.
    async fn cordon(&self, nodes: &[String]) -> Result<(), StepError> {
        let api = Api::<Node>::all(self.client.clone());
        for (i, node) in nodes.iter().enumerate() {
            match api.cordon(node).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) && i == 0 => {
                    return Err(StepError::fatal(format!(
                        "the node {node} no longer exists"
                    )));
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(kube_trouble(e)),
            }
        }
        Ok(())
    }

    async fn run(&mut self) -> Result<Option<serde_json::Value>, StepError> {
        let found = plan::inspect(&self.client, self.node, self.options)
            .await
            .map_err(kube_trouble)?;
        let blockers: Vec<String> = found
            .iter()
            .filter(|f| matches!(f.planned.disposition, PodDisposition::Block(_)))
            .map(|f| format!("{} ({})", f.planned.key(), f.planned.disposition))
            .collect();
        if !blockers.is_empty() {
            return Err(StepError::fatal(format!(
                "cannot drain {}: {}",
                self.node,
                blockers.join("; ")
            )));
        }
        let skipped = found
            .iter()
            .filter(|f| matches!(f.planned.disposition, PodDisposition::Skip(_)))
            .count();
        let mut targets: Vec<Target> = found.iter().filter_map(target).collect();
        let total = targets.len();
        let mut budget_backoff = BUDGET_BACKOFF;
        loop {
            if self.ctx.is_cancelled() {
                return Err(StepError::Cancelled);
            }
            let mut blocked_by: Option<String> = None;
            let mut refused = false;
            let mut trouble: Option<String> = None;
            for t in targets.iter_mut().filter(|t| !t.asked) {
                match self.ask(t).await {
                    Asked::Done => t.asked = true,
                    Asked::Refused(budget) => {
                        refused = true;
                        blocked_by = blocked_by.or(budget);
                    }
                    Asked::Trouble(why) => trouble = Some(why),
                }
            }
            // Gone: no pod with that uid on the node any more (deleted, or
            // replaced by one with the same name).
            let present = match self.uids_on_node().await {
                Ok(uids) => Some(uids),
                Err(e) => {
                    trouble = Some(e);
                    None
                }
            };
            if let Some(present) = &present {
                targets.retain(|t| present.contains(&t.uid));
            }
            let remaining: Vec<String> = targets.iter().map(|t| t.key.clone()).collect();
            if targets.is_empty() {
                let note = format!("drained: {total} pod(s) removed, {skipped} left in place");
                self.record(&note, None, &[]).await?;
                return Ok(Some(json!({ "removed": total, "left_in_place": skipped })));
            }
            let now = OffsetDateTime::now_utc();
            if now >= self.deadline() {
                let mut message = format!(
                    "timed out after {} s; remaining pods: {}",
                    self.options.timeout_seconds,
                    remaining.join(", ")
                );
                if let Some(budget) = &blocked_by {
                    message.push_str(&format!(
                        " (the disruption budget {budget} refused their eviction)"
                    ));
                }
                self.record(&message, blocked_by.as_deref(), &remaining)
                    .await?;
                return Err(StepError::Fatal(message));
            }
            let mut note = format!(
                "waiting for {} of {total} pod(s): {}",
                remaining.len(),
                remaining.join(", ")
            );
            if refused {
                note.push_str(&match &blocked_by {
                    Some(b) => format!("; the disruption budget {b} refuses evictions for now"),
                    None => "; evictions refused for now (429)".into(),
                });
            }
            if let Some(why) = &trouble {
                note.push_str(&format!("; the cluster answered: {why}"));
            }
            self.record(&note, blocked_by.as_deref(), &remaining)
                .await?;
            let wait = if refused {
                let wait = budget_backoff;
                budget_backoff = (budget_backoff * 2).min(MAX_BUDGET_BACKOFF);
                wait
            } else {
                budget_backoff = BUDGET_BACKOFF;
                POLL
            };
            let left = (self.deadline() - now).unsigned_abs();
            self.ctx.sleep(wait.min(left)).await?;
        }
    }

    async fn uids_on_node(&self) -> Result<BTreeSet<String>, String> {
        let pods = Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default().fields(&format!("spec.nodeName={}", self.node)))
            .await
            .map_err(|e| crate::kubernetes::KubeError::from(e).to_string())?;
        Ok(pods
            .items
            .into_iter()
            .filter_map(|p| p.metadata.uid)
            .collect())
    }

    async fn ask(&self, t: &Target) -> Asked {
        let result = if t.delete {
            let mut params = DeleteParams::default().preconditions(kube::api::Preconditions {
                uid: Some(t.uid.clone()),
                resource_version: None,
            });
            params.grace_period_seconds = self.grace().and_then(|g| u32::try_from(g).ok());
            Api::<Pod>::namespaced(self.client.clone(), &t.namespace)
                .delete(&t.name, &params)
                .await
                .map(|_| ())
        } else {
            evict(&self.client, &t.namespace, &t.name, &t.uid, self.grace()).await
        };
        match result {
            Ok(()) => Asked::Done,
            // Gone, or replaced by a pod with the same name (the uid
            // precondition failed).
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Asked::Done,
            Err(kube::Error::Api(s)) if s.code == 429 => Asked::Refused(budget_of(&s)),
            Err(e) => Asked::Trouble(crate::kubernetes::KubeError::from(e).to_string()),
        }
    }
}

fn target(f: &Found) -> Option<Target> {
    let delete = match f.planned.disposition {
        PodDisposition::Evict => false,
        PodDisposition::Delete => true,
        PodDisposition::Skip(_) | PodDisposition::Block(_) => return None,
    };
    Some(Target {
        key: f.planned.key(),
        namespace: f.planned.namespace.clone(),
        name: f.planned.name.clone(),
        uid: f.uid(),
        delete,
        asked: false,
    })
}

/// Evicts through policy/v1. Not kube-rs' `Api::evict`: it sends the
/// delete options under `delete_options`, which API servers ignore, so the
/// grace period would be lost.
async fn evict(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: &str,
    grace: Option<i64>,
) -> Result<(), kube::Error> {
    let eviction = Eviction {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        delete_options: Some(DeleteOptions {
            grace_period_seconds: grace,
            preconditions: Some(Preconditions {
                uid: Some(uid.into()),
                resource_version: None,
            }),
            ..Default::default()
        }),
    };
    let body = serde_json::to_vec(&eviction).map_err(kube::Error::SerdeError)?;
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction"
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(body)
    .map_err(kube::Error::HttpError)?;
    client
        .request::<kube::core::Status>(request)
        .await
        .map(|_| ())
}

/// The budget a 429 names: its cause reads "The disruption budget <name>
/// needs N healthy pods and has M currently".
fn budget_of(status: &kube::core::Status) -> Option<String> {
    status
        .details
        .as_ref()?
        .causes
        .iter()
        .filter(|c| c.reason == "DisruptionBudget")
        .find_map(|c| {
            c.message
                .strip_prefix("The disruption budget ")?
                .split_whitespace()
                .next()
                .map(String::from)
        })
}

fn kube_trouble(e: kube::Error) -> StepError {
    StepError::retry(crate::kubernetes::KubeError::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusing_budget_is_read_from_the_cause() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 429, "reason": "TooManyRequests",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "details": {"causes": [{"reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]},
        }))
        .unwrap();
        assert_eq!(budget_of(&status).as_deref(), Some("web"));
        let throttled: kube::core::Status =
            serde_json::from_value(json!({"code": 429, "message": "slow down"})).unwrap();
        assert_eq!(budget_of(&throttled), None);
    }

    #[test]
    fn one_step_per_node_in_order() {
        let drain = Drain {
            workspace: WorkspaceId(uuid::Uuid::nil()),
            nodes: vec!["b".into(), "a".into()],
            options: DrainOptions::default(),
            run: uuid::Uuid::nil(),
        };
        let names: Vec<String> = drain.plan().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["drain b", "drain a"]);
        assert_eq!(drain.title(), "Drain 2 nodes: b, a");
    }
}
