//! Runs a probe from the portal itself (the built-in source). Network
//! probes go through the `probes` crate, which the agent shares; Kubernetes
//! and host-metrics probes read what only the portal has.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use protocol::agent::HostFacts;
use protocol::ids::WorkspaceId;
use protocol::views::monitoring::{HostProbe, KubernetesProbe, Parameter, ProbeOutcome, ProbeSpec};
use protocol::views::{WorkspaceKind, WorkspaceState};
use sqlx::types::Json;

use crate::Platform;

/// How long a tenant client is reused. Building one reads Kamaji's secret
/// from the management cluster; a monitor every 10 s should not do that
/// each time, while a rotated kubeconfig is still picked up soon.
const TENANT_CLIENT_TTL: Duration = Duration::from_secs(60);

static TENANT_CLIENTS: LazyLock<Mutex<HashMap<WorkspaceId, (Instant, kube::Client)>>> =
    LazyLock::new(Default::default);

/// Runs `spec` once from the portal. Never fails: a probe that cannot run
/// is a failed result saying why.
pub async fn run_builtin(platform: &Platform, spec: &ProbeSpec) -> ProbeOutcome {
    match spec {
        ProbeSpec::Http(_) | ProbeSpec::Tls(_) | ProbeSpec::Tcp(_) | ProbeSpec::Dns(_) => {
            probes::run(spec).await
        }
        ProbeSpec::Kubernetes(probe) => {
            let limit = Duration::from_millis(u64::from(probe.timeout_ms.max(1)));
            match tokio::time::timeout(limit, kubernetes(platform, probe)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    forget_tenant(probe.workspace);
                    ProbeOutcome::failed(format!("timed out after {} ms", probe.timeout_ms))
                }
            }
        }
        ProbeSpec::Host(probe) => host(platform, probe).await,
    }
}

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

async fn kubernetes(platform: &Platform, probe: &KubernetesProbe) -> ProbeOutcome {
    let workspace: Option<(WorkspaceKind, WorkspaceState)> =
        match sqlx::query_as("SELECT kind, state FROM workspaces WHERE id = $1")
            .bind(probe.workspace)
            .fetch_optional(platform.db())
            .await
        {
            Ok(row) => row,
            Err(err) => return ProbeOutcome::failed(format!("reading the workspace: {err}")),
        };
    match workspace {
        None => return ProbeOutcome::failed("the workspace no longer exists"),
        Some((kind, _)) if kind != WorkspaceKind::Kubernetes => {
            return ProbeOutcome::failed("the workspace is not a Kubernetes workspace");
        }
        Some((_, state)) if state != WorkspaceState::Active => {
            return ProbeOutcome::failed("workspace is not active");
        }
        Some(_) => {}
    }
    let client = match tenant(platform, probe.workspace).await {
        Ok(client) => client,
        Err(error) => return ProbeOutcome::failed(format!("tenant API unreachable: {error}")),
    };
    let outcome = measure(client, probe.namespace.as_deref()).await;
    if !outcome.ok {
        // The next probe builds a fresh client: the address or credentials
        // may have changed.
        forget_tenant(probe.workspace);
    }
    outcome
}

async fn tenant(platform: &Platform, id: WorkspaceId) -> Result<kube::Client, String> {
    if let Some(client) = cached_tenant(id) {
        return Ok(client);
    }
    let client = crate::workspaces::pipeline::tenant_client_without_retry(platform, id)
        .await
        .map_err(|err| err.to_string())?;
    if let Ok(mut clients) = TENANT_CLIENTS.lock() {
        clients.retain(|_, (at, _)| at.elapsed() < TENANT_CLIENT_TTL);
        clients.insert(id, (Instant::now(), client.clone()));
    }
    Ok(client)
}

fn cached_tenant(id: WorkspaceId) -> Option<kube::Client> {
    let clients = TENANT_CLIENTS.lock().ok()?;
    clients
        .get(&id)
        .filter(|(at, _)| at.elapsed() < TENANT_CLIENT_TTL)
        .map(|(_, client)| client.clone())
}

fn forget_tenant(id: WorkspaceId) {
    if let Ok(mut clients) = TENANT_CLIENTS.lock() {
        clients.remove(&id);
    }
}

/// `/healthz` first (its latency is the probe's), then nodes, pods and
/// deployments. Up when the API server says it is healthy; the counts are
/// for conditions ("pods_not_running > 0 for 5 minutes").
async fn measure(client: kube::Client, namespace: Option<&str>) -> ProbeOutcome {
    let start = Instant::now();
    let healthz = http::Request::get("/healthz").body(Vec::new());
    let health = match healthz {
        Ok(request) => client.request_text(request).await,
        Err(err) => return ProbeOutcome::failed(format!("building the /healthz request: {err}")),
    };
    let latency_ms = (start.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    match health {
        Ok(body) if body.trim() == "ok" => {}
        Ok(body) => {
            return ProbeOutcome {
                latency_ms: Some(latency_ms),
                ..ProbeOutcome::failed(format!("/healthz answered {:?}", clip(&body)))
            };
        }
        Err(err) => {
            return ProbeOutcome {
                latency_ms: Some(latency_ms),
                ..ProbeOutcome::failed(format!(
                    "/healthz: {}",
                    crate::kubernetes::KubeError::from(err)
                ))
            };
        }
    }

    let (pods, deployments): (Api<Pod>, Api<Deployment>) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let nodes: Api<Node> = Api::all(client);
    let all = ListParams::default();
    let listed = tokio::try_join!(nodes.list(&all), pods.list(&all), deployments.list(&all));
    let (nodes, pods, deployments) = match listed {
        Ok(lists) => lists,
        Err(err) => {
            return ProbeOutcome {
                latency_ms: Some(latency_ms),
                ..ProbeOutcome::failed(format!(
                    "listing nodes, pods and deployments: {}",
                    crate::kubernetes::KubeError::from(err)
                ))
            };
        }
    };
    let count = |n: usize| n as f64;
    let values = BTreeMap::from([
        (
            Parameter::NodesNotReady,
            count(nodes.items.iter().filter(|n| !node_ready(n)).count()),
        ),
        (
            Parameter::PodsNotRunning,
            count(pods.items.iter().filter(|p| !pod_running(p)).count()),
        ),
        (
            Parameter::DeploymentsUnavailable,
            count(
                deployments
                    .items
                    .iter()
                    .filter(|d| deployment_unavailable(d))
                    .count(),
            ),
        ),
    ]);
    ProbeOutcome {
        ok: true,
        latency_ms: Some(latency_ms),
        values,
        error: None,
    }
}

fn clip(text: &str) -> String {
    text.trim().chars().take(200).collect()
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Running or finished successfully (a completed Job's pod is fine).
fn pod_running(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running" | "Succeeded")
    )
}

fn deployment_unavailable(deployment: &Deployment) -> bool {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.as_ref();
    let unavailable = status.and_then(|s| s.unavailable_replicas).unwrap_or(0);
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    unavailable > 0 || available < desired
}

// ---------------------------------------------------------------------------
// Host metrics
// ---------------------------------------------------------------------------

/// The host's latest heartbeat as the hub last wrote it. `online` is the
/// database's view, so it holds whichever portal replica the agent is
/// connected to.
async fn host(platform: &Platform, probe: &HostProbe) -> ProbeOutcome {
    let row: Option<(String, bool, Option<Json<HostFacts>>)> =
        match sqlx::query_as("SELECT hostname, online, facts FROM hosts WHERE id = $1")
            .bind(probe.host)
            .fetch_optional(platform.db())
            .await
        {
            Ok(row) => row,
            Err(err) => return ProbeOutcome::failed(format!("reading the host: {err}")),
        };
    let Some((hostname, online, facts)) = row else {
        return ProbeOutcome::failed("the host no longer exists");
    };
    // A heartbeat not flushed yet (the first seconds of a connection) still
    // counts: this process holds the link.
    let online = online || platform.hub().is_connected(probe.host);
    host_outcome(&hostname, online, facts.map(|f| f.0).as_ref())
}

fn host_outcome(hostname: &str, online: bool, facts: Option<&HostFacts>) -> ProbeOutcome {
    let mut values = BTreeMap::from([(Parameter::AgentOnline, if online { 1.0 } else { 0.0 })]);
    if let Some(facts) = facts {
        let percent_used = |total: u64, available: u64| {
            (total > 0).then(|| {
                let used = 1.0 - available.min(total) as f64 / total as f64;
                (used * 1000.0).round() / 10.0
            })
        };
        let metrics = [
            (Parameter::CpuPercent, facts.cpu_percent),
            (
                Parameter::MemoryPercent,
                percent_used(facts.memory_total_bytes, facts.memory_available_bytes),
            ),
            (
                Parameter::DiskPercent,
                percent_used(facts.disk_total_bytes, facts.disk_available_bytes),
            ),
            (Parameter::Load1, Some(facts.load[0])),
        ];
        values.extend(
            metrics
                .into_iter()
                .filter_map(|(p, v)| v.filter(|v| v.is_finite()).map(|v| (p, v))),
        );
    }
    ProbeOutcome {
        ok: online,
        latency_ms: None,
        values,
        error: (!online).then(|| format!("the agent of {hostname} is offline")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_metrics_from_facts() {
        let host = "web-1";
        let facts = HostFacts {
            load: [0.5, 0.4, 0.3],
            memory_total_bytes: 1000,
            memory_available_bytes: 250,
            disk_total_bytes: 200,
            disk_available_bytes: 150,
            cpu_percent: Some(12.5),
            ..HostFacts::default()
        };
        let up = host_outcome(host, true, Some(&facts));
        assert!(up.ok);
        assert_eq!(up.value(Parameter::MemoryPercent), Some(75.0));
        assert_eq!(up.value(Parameter::DiskPercent), Some(25.0));
        assert_eq!(up.value(Parameter::CpuPercent), Some(12.5));
        assert_eq!(up.value(Parameter::Load1), Some(0.5));
        assert_eq!(up.value(Parameter::AgentOnline), Some(1.0));

        let first_beat = HostFacts {
            cpu_percent: None,
            ..facts
        };
        assert_eq!(
            host_outcome(host, true, Some(&first_beat)).value(Parameter::CpuPercent),
            None
        );
        let down = host_outcome(host, false, None);
        assert!(!down.ok);
        assert_eq!(down.value(Parameter::AgentOnline), Some(0.0));
        assert_eq!(down.value(Parameter::MemoryPercent), None);
    }
}
