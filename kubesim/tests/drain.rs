//! What `kubectl drain` and the portal's drain need: graceful pod deletion,
//! live PodDisruptionBudgets, ReplicaSets and DaemonSets that keep their
//! pods on schedulable nodes, cordoning, and listing pods by node.

mod common;

use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet},
    core::v1::{Event, Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Client, Error,
    api::{DeleteParams, EvictParams, ListParams, PostParams, WatchEvent, WatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Pods start this long after they are bound to a node.
const DELAY: Duration = Duration::from_millis(400);

async fn start() -> (kubesim::Kubesim, Client) {
    let sim = kubesim::start(kubesim::Config {
        workload_delay: DELAY,
        ..common::config()
    })
    .await
    .expect("kubesim starts");
    // A drain wants a 429 at once, not kube's retries.
    let mut config = common::client_config(&sim.kubeconfig()).await;
    config.default_retry = false;
    let client = Client::try_from(config).expect("client builds");
    (sim, client)
}

fn object<K: DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("a valid object")
}

async fn create_node(client: &Client, name: &str, unschedulable: bool) {
    let node: Node = object(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": unschedulable},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }));
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("node created");
}

fn replica_set(name: &str, replicas: i32, grace: i64) -> ReplicaSet {
    object(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "containers": [{"name": "app", "image": "nginx"}],
                },
            },
        },
    }))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The active (not terminating) pods labelled `app=<app>`, sorted by name.
async fn active_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    let mut list: Vec<Pod> = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("pods listed")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    list.sort_by_key(name_of);
    list
}

#[tokio::test]
async fn eviction_is_graceful_and_watchers_see_it() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", false).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = object(json!({
        "metadata": {"name": "slow", "labels": {"app": "slow"}},
        "spec": {
            "nodeName": "node-a",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "nginx"}],
        },
    }));
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let version = created.metadata.resource_version.clone().unwrap();
    let mut events = pods
        .watch(
            &WatchParams::default().fields("metadata.name=slow"),
            &version,
        )
        .await
        .unwrap()
        .boxed();

    let evicted_at = Instant::now();
    pods.evict("slow", &EvictParams::default()).await.unwrap();
    let terminating = pods.get("slow").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(1));

    let mut saw_terminating = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.try_next())
            .await
            .expect("the pod goes within 10 s")
            .unwrap()
            .expect("the watch stays open");
        match event {
            WatchEvent::Modified(pod) if pod.metadata.deletion_timestamp.is_some() => {
                saw_terminating = true;
            }
            WatchEvent::Deleted(_) => break,
            _ => {}
        }
    }
    assert!(
        saw_terminating,
        "MODIFIED with a deletionTimestamp came first"
    );
    let waited = evicted_at.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "gone only after its grace period, not after {waited:?}"
    );
    assert!(pods.get_opt("slow").await.unwrap().is_none());

    // DELETE: a shorter grace shortens a termination; 0 ends it at once.
    let pod: Pod = object(json!({
        "metadata": {"name": "long"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]},
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let deleted = pods
        .delete("long", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the terminating pod is returned");
    assert_eq!(deleted.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "long",
        &DeleteParams {
            grace_period_seconds: Some(5),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    let pod = pods.get("long").await.unwrap();
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(5));
    pods.delete("long", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("long").await.unwrap().is_none());
    match pods.delete("long", &DeleteParams::default()).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    sim.shutdown().await;
}

/// The browser test's scenario: two pods of a ReplicaSet on node-a, a
/// budget that needs one of them, node-a cordoned and drained.
#[tokio::test]
async fn a_budget_blocks_until_the_replacement_is_ready_elsewhere() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", false).await;
    // Cordoned first, so both pods land on node-a.
    create_node(&client, "node-b", true).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = sets
        .create(&PostParams::default(), &replica_set("web", 2, 1))
        .await
        .unwrap();
    let rs_uid = rs.metadata.uid.clone().unwrap();
    let started = common::eventually("both pods are ready", || async {
        let active = active_pods(&pods, "web").await;
        (active.len() == 2 && active.iter().all(is_ready)).then_some(active)
    })
    .await;
    for pod in &started {
        assert_eq!(node_of(pod), "node-a");
        assert!(name_of(pod).starts_with("web-") && name_of(pod).len() == 9);
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("ReplicaSet", "web", rs_uid.as_str())
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
    }
    let status = common::eventually("the replica set reports them", || async {
        let status = sets.get("web").await.ok()?.status?;
        (status.ready_replicas == Some(2)).then_some(status)
    })
    .await;
    assert_eq!((status.replicas, status.available_replicas), (2, Some(2)));

    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pdb: PodDisruptionBudget = object(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }));
    budgets.create(&PostParams::default(), &pdb).await.unwrap();
    common::eventually("the budget allows one disruption", || async {
        let status = budgets.get("web").await.ok()?.status?;
        (status.disruptions_allowed == 1
            && status.current_healthy == 2
            && status.desired_healthy == 1
            && status.expected_pods == 2)
            .then_some(())
    })
    .await;

    nodes.uncordon("node-b").await.unwrap();
    let cordoned = nodes.cordon("node-a").await.unwrap();
    assert_eq!(cordoned.spec.unwrap().unschedulable, Some(true));

    let (first, second) = (name_of(&started[0]), name_of(&started[1]));
    pods.evict(&first, &EvictParams::default()).await.unwrap();
    match pods.evict(&second, &EvictParams::default()).await {
        Err(Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
            let cause = &status.details.expect("details").causes[0];
            assert_eq!(cause.reason, "DisruptionBudget");
            assert_eq!(
                cause.message,
                "The disruption budget web needs 1 healthy pods and has 1 currently"
            );
        }
        other => panic!("the second eviction must wait, got {other:?}"),
    }

    let replacement = common::eventually("a replacement is ready on node-b", || async {
        active_pods(&pods, "web")
            .await
            .into_iter()
            .find(|p| name_of(p) != second && is_ready(p))
    })
    .await;
    assert_eq!(node_of(&replacement), "node-b");
    assert_ne!(name_of(&replacement), first);
    let old_uids: Vec<_> = started.iter().map(|p| p.metadata.uid.clone()).collect();
    assert!(!old_uids.contains(&replacement.metadata.uid));

    pods.evict(&second, &EvictParams::default()).await.unwrap();
    let settled = common::eventually("both replacements run on node-b", || async {
        let active = active_pods(&pods, "web").await;
        (active.len() == 2 && active.iter().all(|p| is_ready(p) && node_of(p) == "node-b"))
            .then_some(active)
    })
    .await;
    assert_eq!(settled.len(), 2);
    common::eventually("the evicted pods are gone after their grace", || async {
        let all = pods
            .list(&ListParams::default().fields("spec.nodeName=node-a"))
            .await
            .ok()?;
        all.items.is_empty().then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn pods_wait_pending_for_a_schedulable_node() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", true).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &replica_set("stuck", 1, 1))
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let warning = common::eventually("a FailedScheduling warning", || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.involved_object.kind.as_deref(), Some("Pod"));
    assert!(
        warning
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("0/1 nodes are available: 1 node(s) were unschedulable")),
        "{warning:?}"
    );
    assert!(warning.last_timestamp.is_some());
    let pending = active_pods(&pods, "stuck").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(node_of(&pending[0]), "");
    assert_eq!(
        pending[0].status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );

    Api::<Node>::all(client.clone())
        .uncordon("node-a")
        .await
        .unwrap();
    let running = common::eventually("the pod runs once the node is uncordoned", || async {
        active_pods(&pods, "stuck").await.into_iter().find(is_ready)
    })
    .await;
    assert_eq!(node_of(&running), "node-a");
    assert_eq!(running.metadata.uid, pending[0].metadata.uid);
    sim.shutdown().await;
}

#[tokio::test]
async fn replica_sets_replace_deleted_pods_and_take_theirs_along() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", false).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &replica_set("solo", 1, 30))
        .await
        .unwrap();
    let first = common::eventually("the pod exists", || async {
        active_pods(&pods, "solo").await.into_iter().next()
    })
    .await;
    pods.delete(&name_of(&first), &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let second = common::eventually("a replacement with a new uid", || async {
        active_pods(&pods, "solo")
            .await
            .into_iter()
            .find(|p| p.metadata.uid != first.metadata.uid)
    })
    .await;
    assert_ne!(name_of(&second), name_of(&first));

    // Scaling down removes a pod (gracefully).
    let mut scaled = sets.get("solo").await.unwrap();
    scaled.spec.as_mut().unwrap().replicas = Some(0);
    sets.replace("solo", &PostParams::default(), &scaled)
        .await
        .unwrap();
    common::eventually("the pod terminates", || async {
        active_pods(&pods, "solo").await.is_empty().then_some(())
    })
    .await;

    // Deleting a ReplicaSet deletes its pods.
    let mut scaled = sets.get("solo").await.unwrap();
    scaled.spec.as_mut().unwrap().replicas = Some(2);
    sets.replace("solo", &PostParams::default(), &scaled)
        .await
        .unwrap();
    common::eventually("two pods again", || async {
        (active_pods(&pods, "solo").await.len() == 2).then_some(())
    })
    .await;
    sets.delete("solo", &DeleteParams::default()).await.unwrap();
    common::eventually("its pods terminate", || async {
        active_pods(&pods, "solo").await.is_empty().then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn daemon_sets_run_a_pod_on_every_node() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", false).await;
    create_node(&client, "node-b", true).await;
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let ds: DaemonSet = object(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent"}]},
            },
        },
    }));
    daemon_sets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let running = common::eventually("a ready pod on each node", || async {
        let active = active_pods(&pods, "agent").await;
        (active.len() == 2 && active.iter().all(is_ready)).then_some(active)
    })
    .await;
    let mut nodes: Vec<&str> = running.iter().map(node_of).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, ["node-a", "node-b"], "the cordoned node-b too");
    for pod in &running {
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("DaemonSet", Some(true))
        );
    }
    common::eventually("the daemon set status counts the nodes", || async {
        let status = daemon_sets.get("agent").await.ok()?.status?;
        (status.desired_number_scheduled == 2 && status.number_ready == 2).then_some(())
    })
    .await;

    Api::<Node>::all(client.clone())
        .delete("node-b", &DeleteParams::default())
        .await
        .unwrap();
    common::eventually("the pod of the deleted node goes", || async {
        let all = pods
            .list(&ListParams::default().labels("app=agent"))
            .await
            .ok()?;
        (all.items.len() == 1 && node_of(&all.items[0]) == "node-a").then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn pods_list_by_node_namespace_and_phase() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", false).await;
    create_node(&client, "node-b", false).await;
    common::create_namespace(&client, "other").await;
    for (namespace, name, node, phase) in [
        ("default", "a1", "node-a", "Running"),
        ("default", "a2", "node-a", "Succeeded"),
        ("other", "a3", "node-a", "Running"),
        ("default", "b1", "node-b", "Running"),
    ] {
        let pod: Pod = object(json!({
            "metadata": {"name": name, "annotations": {"kubernetes.io/config.mirror": "x"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": phase},
        }));
        Api::<Pod>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }
    let names = |list: kube::core::ObjectList<Pod>| {
        let mut names: Vec<String> = list.items.iter().map(name_of).collect();
        names.sort();
        names
    };
    let all: Api<Pod> = Api::all(client.clone());
    let on_a = all
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .unwrap();
    assert_eq!(names(on_a), ["a1", "a2", "a3"]);
    let live = all
        .list(&ListParams::default().fields("spec.nodeName=node-a,status.phase!=Succeeded"))
        .await
        .unwrap();
    assert_eq!(names(live), ["a1", "a3"]);
    let other = all
        .list(&ListParams::default().fields("spec.nodeName=node-a,metadata.namespace=other"))
        .await
        .unwrap();
    assert_eq!(names(other), ["a3"]);

    // Mirror pods evict like any other.
    common::evict(&client, "default", "a1", Some(0), false)
        .await
        .unwrap();
    assert!(
        Api::<Pod>::namespaced(client.clone(), "default")
            .get_opt("a1")
            .await
            .unwrap()
            .is_none()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn deployments_own_a_replica_set_and_its_pods() {
    let (sim, client) = start().await;
    create_node(&client, "node-a", false).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = object(json!({
        "metadata": {"name": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [{"name": "app", "image": "shop:1"}]},
            },
        },
    }));
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = common::eventually("two ready pods", || async {
        let active = active_pods(&pods, "shop").await;
        (active.len() == 2 && active.iter().all(is_ready)).then_some(active)
    })
    .await;
    let owner = &running[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ReplicaSet");
    assert!(owner.name.starts_with("shop-"));
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .get(&owner.name)
        .await
        .unwrap();
    let rs_owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (rs_owner.kind.as_str(), rs_owner.uid.as_str()),
        ("Deployment", created.metadata.uid.as_deref().unwrap())
    );
    // The Deployment's status names the same ReplicaSet.
    let deployment = common::eventually("the deployment is available", || async {
        let deployment = deployments.get("shop").await.ok()?;
        (deployment.status.as_ref()?.available_replicas == Some(2)).then_some(deployment)
    })
    .await;
    let conditions = deployment.status.unwrap().conditions.unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert!(
        progressing
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&format!("\"{}\"", owner.name))),
        "{progressing:?}"
    );
    sim.shutdown().await;
}
