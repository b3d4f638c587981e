//! A Kubernetes workspace's cluster read live from its tenant API: the
//! summary of the Kubernetes tab, the nodes (with the portal host each runs
//! on) and the upgrade matrix from the operator's catalog.
//!
//! The summary is cached per workspace for a few seconds: several people
//! looking at one workspace, or one browser refreshing, ask the tenant once.
//! The nodes list is not cached, because it shows cordons and drains as they
//! happen.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, ListParams};
use protocol::ids::{HostId, WorkspaceId};
use protocol::views::kubernetes::{
    ApiHealth, ClusterEvent, ClusterNodes, ClusterSummary, NodeCounts, NodeHost, NodeResources,
    NodeView, PhaseCount, UpgradeKind, UpgradeMatrix, UpgradeTarget,
};
use protocol::views::{WorkspaceKind, WorkspaceState};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::Platform;
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

/// How long a summary is served from the cache.
pub const SUMMARY_TTL: Duration = Duration::from_secs(5);
/// How long the tenant API may take to answer everything one view needs.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How many Warning events the summary shows.
const RECENT_WARNINGS: usize = 10;
/// The label that names the portal host a node runs on (its id or name),
/// where the node name is not the host's name.
pub const HOST_LABEL: &str = "loopback.dev/host";

static SUMMARIES: LazyLock<Mutex<HashMap<WorkspaceId, (Instant, ClusterSummary)>>> =
    LazyLock::new(Default::default);

#[derive(sqlx::FromRow)]
struct Workspace {
    kind: WorkspaceKind,
    state: WorkspaceState,
    version: Option<String>,
}

async fn workspace(db: &PgPool, actor: &Actor, id: WorkspaceId) -> Result<Workspace> {
    authorize(
        db,
        actor,
        Permission::WorkspaceKubernetesRead,
        Resource::Workspace(id),
    )
    .await?;
    sqlx::query_as(
        "SELECT w.kind, w.state, v.version FROM workspaces w
         LEFT JOIN kubernetes_versions v ON v.id = w.kubernetes_version_id
         WHERE w.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)
}

/// Why the tenant cannot be asked, if it cannot.
fn unavailable(w: &Workspace) -> Option<ApiHealth> {
    if w.kind != WorkspaceKind::Kubernetes {
        Some(ApiHealth::NotKubernetes)
    } else if w.state != WorkspaceState::Active {
        Some(ApiHealth::NotReady {
            workspace_state: w.state.label().into(),
        })
    } else {
        None
    }
}

/// The tenant's admin client; any failure on the way (the management
/// cluster, Kamaji's secret, the tenant itself) reads as "unreachable".
/// Without kube-rs's retries: a page waiting on a struggling API server
/// should say so rather than wait minutes.
async fn tenant(platform: &Platform, id: WorkspaceId) -> std::result::Result<kube::Client, String> {
    crate::workspaces::pipeline::tenant_client_without_retry(platform, id)
        .await
        .map_err(|e| e.to_string())
}

/// Runs `read` against the tenant within [`READ_TIMEOUT`].
async fn read_tenant<T, F>(
    platform: &Platform,
    id: WorkspaceId,
    read: impl FnOnce(kube::Client) -> F,
) -> std::result::Result<T, String>
where
    F: Future<Output = std::result::Result<T, kube::Error>>,
{
    let work = async {
        let client = tenant(platform, id).await?;
        read(client).await.map_err(describe)
    };
    match tokio::time::timeout(READ_TIMEOUT, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {} s", READ_TIMEOUT.as_secs())),
    }
}

fn describe(e: kube::Error) -> String {
    super::KubeError::from(e).to_string()
}

/// The Kubernetes tab: API health, version, nodes, pods by phase,
/// namespaces and recent warnings (`workspace.kubernetes.read`).
pub async fn summary(
    platform: &Platform,
    actor: &Actor,
    id: WorkspaceId,
) -> Result<ClusterSummary> {
    let w = workspace(platform.db(), actor, id).await?;
    let now = OffsetDateTime::now_utc();
    if let Some(health) = unavailable(&w) {
        return Ok(ClusterSummary::unavailable(health, now));
    }
    if let Some(cached) = cached(id) {
        return Ok(cached);
    }
    let read = read_tenant(platform, id, |client| async move {
        let version = client.apiserver_version().await?.git_version;
        let (node_api, pod_api, namespace_api) = (
            Api::<Node>::all(client.clone()),
            Api::<Pod>::all(client.clone()),
            Api::<Namespace>::all(client.clone()),
        );
        let all = ListParams::default();
        let (nodes, pods, namespaces) = tokio::try_join!(
            node_api.list(&all),
            pod_api.list(&all),
            namespace_api.list(&all),
        )?;
        // Events are a nicety: a cluster that cannot list them is still
        // healthy.
        let events = Api::<Event>::all(client)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        Ok((version, nodes.items, pods.items, namespaces.items, events))
    })
    .await;
    let summary = match read {
        Err(reason) => ClusterSummary::unavailable(ApiHealth::Unreachable { reason }, now),
        Ok((version, nodes, pods, namespaces, events)) => ClusterSummary {
            health: ApiHealth::Healthy,
            version: Some(version),
            nodes: count_nodes(&nodes),
            pods: pods_by_phase(&pods),
            namespaces: {
                let mut names: Vec<String> = namespaces
                    .into_iter()
                    .filter_map(|n| n.metadata.name)
                    .collect();
                names.sort();
                names
            },
            warnings: recent_warnings(events),
            observed_at: now,
        },
    };
    remember(id, &summary);
    Ok(summary)
}

fn cached(id: WorkspaceId) -> Option<ClusterSummary> {
    let cache = SUMMARIES.lock().ok()?;
    cache
        .get(&id)
        .filter(|(at, _)| at.elapsed() < SUMMARY_TTL)
        .map(|(_, s)| s.clone())
}

fn remember(id: WorkspaceId, summary: &ClusterSummary) {
    if let Ok(mut cache) = SUMMARIES.lock() {
        // Expired entries go whenever a new one comes, so the cache holds
        // only the workspaces looked at in the last few seconds.
        cache.retain(|_, (at, _)| at.elapsed() < SUMMARY_TTL);
        cache.insert(id, (Instant::now(), summary.clone()));
    }
}

/// Forgets the cached summary, after the portal itself changed the
/// cluster (a cordon, a drain).
pub fn invalidate(id: WorkspaceId) {
    if let Ok(mut cache) = SUMMARIES.lock() {
        cache.remove(&id);
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn is_unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn count_nodes(nodes: &[Node]) -> NodeCounts {
    NodeCounts {
        total: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
        ready: count(nodes.iter().filter(|n| is_ready(n))),
        cordoned: count(nodes.iter().filter(|n| is_unschedulable(n))),
    }
}

fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

/// Pods by phase, in the order a lifecycle goes.
fn pods_by_phase(pods: &[Pod]) -> Vec<PhaseCount> {
    const ORDER: [&str; 5] = ["Running", "Pending", "Succeeded", "Failed", "Unknown"];
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for pod in pods {
        *counts.entry(phase(pod)).or_default() += 1;
    }
    let rank = |p: &str| ORDER.iter().position(|o| *o == p).unwrap_or(ORDER.len());
    let mut out: Vec<PhaseCount> = counts
        .into_iter()
        .map(|(phase, count)| PhaseCount {
            phase: phase.to_string(),
            count,
        })
        .collect();
    out.sort_by_key(|p| rank(&p.phase));
    out
}

fn timestamp(t: &k8s_openapi::jiff::Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.as_second()).ok()
}

fn recent_warnings(events: Vec<Event>) -> Vec<ClusterEvent> {
    let mut warnings: Vec<ClusterEvent> = events
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| {
            let last_seen = e
                .last_timestamp
                .as_ref()
                .map(|t| &t.0)
                .or(e.event_time.as_ref().map(|t| &t.0))
                .or(e.first_timestamp.as_ref().map(|t| &t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| &t.0))
                .and_then(timestamp);
            let o = &e.involved_object;
            ClusterEvent {
                namespace: e
                    .metadata
                    .namespace
                    .clone()
                    .or_else(|| o.namespace.clone())
                    .unwrap_or_default(),
                object: format!(
                    "{}/{}",
                    o.kind.as_deref().unwrap_or("Object"),
                    o.name.as_deref().unwrap_or("?")
                ),
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
                count: e.count.and_then(|c| u32::try_from(c).ok()).unwrap_or(1),
                last_seen,
            }
        })
        .collect();
    warnings.sort_by_key(|w| std::cmp::Reverse(w.last_seen));
    warnings.truncate(RECENT_WARNINGS);
    warnings
}

/// Every node with its status, resources, pod count and portal host
/// (`workspace.kubernetes.read`).
pub async fn nodes(platform: &Platform, actor: &Actor, id: WorkspaceId) -> Result<ClusterNodes> {
    let db = platform.db();
    let w = workspace(db, actor, id).await?;
    if let Some(health) = unavailable(&w) {
        return Ok(ClusterNodes {
            health,
            nodes: Vec::new(),
        });
    }
    let read = read_tenant(platform, id, |client| async move {
        let (node_api, pod_api) = (Api::<Node>::all(client.clone()), Api::<Pod>::all(client));
        let all = ListParams::default();
        tokio::try_join!(node_api.list(&all), pod_api.list(&all))
    })
    .await;
    let (nodes, pods) = match read {
        Ok((nodes, pods)) => (nodes.items, pods.items),
        Err(reason) => {
            return Ok(ClusterNodes {
                health: ApiHealth::Unreachable { reason },
                nodes: Vec::new(),
            });
        }
    };
    let hosts: Vec<(HostId, String)> =
        sqlx::query_as("SELECT id, hostname FROM hosts WHERE workspace_id = $1")
            .bind(id)
            .fetch_all(db)
            .await?;
    let mut per_node: HashMap<&str, u32> = HashMap::new();
    for pod in &pods {
        let finished = matches!(phase(pod), "Succeeded" | "Failed");
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && !finished
        {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut views: Vec<NodeView> = nodes
        .iter()
        .map(|n| node_view(n, &per_node, &hosts))
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterNodes {
        health: ApiHealth::Healthy,
        nodes: views,
    })
}

fn node_view(node: &Node, pods: &HashMap<&str, u32>, hosts: &[(HostId, String)]) -> NodeView {
    let name = node.metadata.name.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let status = node.status.as_ref();
    let resources = |list: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        let get = |key: &str| {
            list.and_then(|l| l.get(key))
                .and_then(|q| parse_quantity(&q.0))
        };
        NodeResources {
            cpu_millis: get("cpu").map(|c| (c * 1000.0).round() as u64).unwrap_or(0),
            memory_bytes: get("memory").map(|m| m.round() as u64).unwrap_or(0),
        }
    };
    NodeView {
        ready: is_ready(node),
        unschedulable: is_unschedulable(node),
        roles: roles(&labels),
        kubelet_version: status
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .filter(|v| !v.is_empty()),
        internal_ip: status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone()),
        capacity: resources(status.and_then(|s| s.capacity.as_ref())),
        allocatable: resources(status.and_then(|s| s.allocatable.as_ref())),
        pods: pods.get(name.as_str()).copied().unwrap_or(0),
        created_at: node
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(|t| timestamp(&t.0)),
        host: host_of(&name, labels.get(HOST_LABEL).map(String::as_str), hosts),
        name,
    }
}

fn roles(labels: &BTreeMap<String, String>) -> Vec<String> {
    let mut roles: Vec<String> = labels
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(role) = labels.get("kubernetes.io/role")
        && !roles.contains(role)
    {
        roles.push(role.clone());
    }
    roles.sort();
    roles
}

/// The workspace host a node runs on: the one the `loopback.dev/host` label
/// names (by id or name), else the one named like the node (hosts join
/// under their host name).
fn host_of(node: &str, label: Option<&str>, hosts: &[(HostId, String)]) -> Option<NodeHost> {
    let by = |want: &str| {
        hosts
            .iter()
            .find(|(id, name)| name == want || id.to_string() == want)
    };
    label
        .and_then(by)
        .or_else(|| hosts.iter().find(|(_, name)| name == node))
        .map(|(id, hostname)| NodeHost {
            id: *id,
            hostname: hostname.clone(),
        })
}

/// A Kubernetes quantity (`3800m`, `16Gi`, `1e3`, `500M`) in base units.
pub fn parse_quantity(raw: &str) -> Option<f64> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(raw.len());
    let (number, suffix) = raw.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * factor)
}

/// Which active catalog versions the workspace may move to: newer patches
/// of its minor, and the next minor (`workspace.kubernetes.read`).
pub async fn upgrade_matrix(db: &PgPool, actor: &Actor, id: WorkspaceId) -> Result<UpgradeMatrix> {
    let w = workspace(db, actor, id).await?;
    let Some(current) = w.version.filter(|_| w.kind == WorkspaceKind::Kubernetes) else {
        return Ok(UpgradeMatrix {
            current: None,
            targets: Vec::new(),
        });
    };
    let active: Vec<String> =
        sqlx::query_scalar("SELECT version FROM kubernetes_versions WHERE active")
            .fetch_all(db)
            .await?;
    Ok(UpgradeMatrix {
        targets: upgrade_targets(&current, &active),
        current: Some(current),
    })
}

fn numbers(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let out = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    parts.next().is_none().then_some(out)
}

/// The versions of `available` one may move to from `current`, newest
/// first: Kubernetes skips no minor version, so only the next minor
/// qualifies; never a downgrade.
pub fn upgrade_targets(current: &str, available: &[String]) -> Vec<UpgradeTarget> {
    let Some((major, minor, patch)) = numbers(current) else {
        return Vec::new();
    };
    let mut targets: Vec<((u32, u32, u32), UpgradeTarget)> = available
        .iter()
        .filter_map(|v| {
            let n = numbers(v)?;
            let kind = match n {
                (ma, mi, p) if ma == major && mi == minor && p > patch => UpgradeKind::Patch,
                (ma, mi, _) if ma == major && mi == minor + 1 => UpgradeKind::Minor,
                _ => return None,
            };
            Some((
                n,
                UpgradeTarget {
                    version: v.trim_start_matches('v').to_string(),
                    kind,
                },
            ))
        })
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.0));
    targets.dedup_by(|a, b| a.0 == b.0);
    targets.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_quantity("4"), Some(4.0));
        assert_eq!(
            parse_quantity("3800m").map(|c| (c * 1000.0).round()),
            Some(3800.0)
        );
        assert_eq!(
            parse_quantity("16Gi"),
            Some(16.0 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(parse_quantity("16393216Ki"), Some(16_393_216.0 * 1024.0));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("0.5"), Some(0.5));
        assert_eq!(parse_quantity("12Qi"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn upgrades_go_one_minor_at_a_time_and_never_down() {
        let catalog: Vec<String> = [
            "1.32.9", "1.33.1", "1.33.2", "1.33.4", "1.34.0", "1.34.2", "1.35.0", "2.34.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let targets = upgrade_targets("1.33.2", &catalog);
        let seen: Vec<(&str, UpgradeKind)> = targets
            .iter()
            .map(|t| (t.version.as_str(), t.kind))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("1.34.2", UpgradeKind::Minor),
                ("1.34.0", UpgradeKind::Minor),
                ("1.33.4", UpgradeKind::Patch),
            ]
        );
        assert!(upgrade_targets("1.35.0", &catalog).is_empty());
        assert!(upgrade_targets("not a version", &catalog).is_empty());
    }

    #[test]
    fn nodes_map_to_hosts_by_label_then_name() {
        let a = HostId::new();
        let b = HostId::new();
        let hosts = vec![(a, "edge-1".to_string()), (b, "edge-2".to_string())];
        assert_eq!(host_of("edge-1", None, &hosts).map(|h| h.id), Some(a));
        assert_eq!(
            host_of("node-x", Some("edge-2"), &hosts).map(|h| h.id),
            Some(b)
        );
        assert_eq!(
            host_of("node-x", Some(&b.to_string()), &hosts).map(|h| h.hostname),
            Some("edge-2".to_string())
        );
        // A label naming nobody falls back to the node name.
        assert_eq!(
            host_of("edge-1", Some("gone"), &hosts).map(|h| h.id),
            Some(a)
        );
        assert_eq!(host_of("node-x", None, &hosts), None);
    }

    #[test]
    fn roles_come_from_role_labels() {
        let labels: BTreeMap<String, String> = [
            ("node-role.kubernetes.io/control-plane", ""),
            ("node-role.kubernetes.io/worker", ""),
            ("kubernetes.io/hostname", "n1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(roles(&labels), vec!["control-plane", "worker"]);
    }
}
