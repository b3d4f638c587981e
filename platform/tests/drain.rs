//! Cordoning and draining the nodes of a Kubernetes workspace against a
//! kubesim tenant: every `kubectl drain` rule (DaemonSet and mirror pods
//! left, emptyDir and unmanaged pods refused unless chosen, finished pods
//! deleted), evictions retried while a PodDisruptionBudget refuses, the
//! timeout, stopping, several nodes one after another, node states, the
//! audit log, and other tenants kept out.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use platform::Error;
use platform::authz::Actor;
use platform::kubernetes::{catalog, drain};
use platform::tasks::{Engine, EngineConfig};
use platform::tenancy::organizations;
use platform::workspaces::{self, Access, pipeline};
use protocol::ids::{TaskId, WorkspaceId};
use protocol::views::TaskState;
use protocol::views::drain::{
    BlockReason, DrainOptions, NodeDrainState, NodeDrainStatus, PodDisposition, SkipReason,
};
use serde_json::json;
use sqlx::PgPool;
use support::{actor, operator, platform};
use tokio_util::sync::CancellationToken;

const NS: &str = "apps";

struct Estate {
    portal: platform::Platform,
    alice: Actor,
    workspace: WorkspaceId,
    /// The tenant, as its admin.
    kube: kube::Client,
    sim: kubesim::Kubesim,
    engine_stop: CancellationToken,
    workers: tokio::task::JoinSet<()>,
}

impl Estate {
    async fn stop(mut self) {
        self.engine_stop.cancel();
        while self.workers.join_next().await.is_some() {}
        self.sim.shutdown().await;
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.kube.clone(), NS)
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.kube.clone())
    }

    async fn pod_names(&self, node: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .pods()
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        names
    }

    async fn cordoned(&self, node: &str) -> bool {
        self.nodes()
            .get(node)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }

    async fn status(&self, node: &str) -> NodeDrainStatus {
        drain::statuses(&self.portal, &self.alice, self.workspace)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.node == node)
            .unwrap_or_else(|| panic!("no status for {node}"))
    }

    /// Waits (bounded) until `node`'s status satisfies `want`.
    async fn until_status(
        &self,
        node: &str,
        within: Duration,
        want: impl Fn(&NodeDrainStatus) -> bool,
    ) -> NodeDrainStatus {
        let started = Instant::now();
        loop {
            let status = self.status(node).await;
            if want(&status) {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "{node} did not get there within {within:?}; last {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn until_finished(&self, task: TaskId, within: Duration) -> (TaskState, Option<String>) {
        let started = Instant::now();
        loop {
            let (state, error): (TaskState, Option<String>) =
                sqlx::query_as("SELECT state, error FROM tasks WHERE id = $1")
                    .bind(task)
                    .fetch_one(self.portal.db())
                    .await
                    .unwrap();
            if state.is_finished() {
                return (state, error);
            }
            assert!(
                started.elapsed() < within,
                "task {task} still {state:?} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A pod on `node`, Running (so budgets count it) and quick to stop.
    async fn pod(&self, name: &str, node: &str, extra: serde_json::Value) {
        let mut pod = json!({
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name.split('-').next().unwrap()}},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "app", "image": "nginx"}],
            },
        });
        merge(&mut pod, extra);
        let pod: Pod = serde_json::from_value(pod).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
        // Written by the kubelet in a real cluster; budgets only count
        // running, ready pods.
        if let Err(e) = self
            .pods()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "phase": pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Running".into()),
                    "conditions": [{"type": "Ready", "status": "True"}],
                }})),
            )
            .await
        {
            panic!("status of {name}: {e}");
        }
    }

    /// A pod of a ReplicaSet the test does not create (so no controller
    /// replaces or removes it).
    async fn replicated(&self, name: &str, node: &str, extra: serde_json::Value) {
        let mut owned = owner(
            "ReplicaSet",
            "web-7d9f",
            "11111111-1111-1111-1111-111111111111",
        );
        merge(&mut owned, extra);
        self.pod(name, node, owned).await;
    }

    async fn budget(&self, name: &str, min_available: i32) {
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NS},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}},
        }))
        .unwrap();
        Api::<PodDisruptionBudget>::namespaced(self.kube.clone(), NS)
            .create(&PostParams::default(), &pdb)
            .await
            .unwrap();
    }

    async fn relax_budget(&self, name: &str) {
        Api::<PodDisruptionBudget>::namespaced(self.kube.clone(), NS)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"minAvailable": 0}})),
            )
            .await
            .unwrap();
    }

    async fn audit(&self) -> Vec<String> {
        support::audit_actions(self.portal.db())
            .await
            .into_iter()
            .filter(|a| a.starts_with("node."))
            .collect()
    }
}

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

fn owner(kind: &str, name: &str, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [{
        "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true,
    }]}})
}

fn nodes(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Quick options: the pods' own (1 s) grace period, a short timeout.
fn quick(timeout_seconds: u64) -> DrainOptions {
    DrainOptions {
        timeout_seconds,
        ..DrainOptions::default()
    }
}

/// A portal process's task engine, running drains.
fn engine(portal: &platform::Platform, replica: &str) -> Engine {
    Engine::new(
        portal.db().clone(),
        EngineConfig {
            workers: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            replica: replica.into(),
        },
    )
    .handler(drain::DrainHandler::new(portal.clone()))
}

async fn estate(db: &PgPool) -> Estate {
    let portal = platform(db);
    let sim = support::instant_kubesim().await;
    let settings = support::pipeline_settings();
    let engine =
        engine(&portal, "test").handler(pipeline::ProvisionHandler::new(portal.clone(), settings));
    let engine_stop = CancellationToken::new();
    let workers = engine.start(engine_stop.clone());

    let op = operator(db).await;
    catalog::add_version(db, &op, "1.33.2", true).await.unwrap();
    let support::KubernetesTenant {
        alice, workspace, ..
    } = support::kubernetes_tenant(&portal, &op, &sim).await;
    support::until_active(db, workspace).await;
    // Without a DNS provider the admin kubeconfig names the tenant's address.
    let (_, admin) = workspaces::kubeconfig(
        &portal,
        &alice,
        workspace,
        Access::Admin,
        "https://login.example.com",
    )
    .await
    .unwrap();
    let kube = platform::kubernetes::connect_without_retry(&admin)
        .await
        .unwrap();
    for name in ["n1", "n2", "n3"] {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        Api::<Node>::all(kube.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
    }
    let ns = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(kube.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    Estate {
        portal,
        alice,
        workspace,
        kube,
        sim,
        engine_stop,
        workers,
    }
}

fn conflict(e: Error) -> String {
    match e {
        Error::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn field(e: &Error) -> Option<&str> {
    match e {
        Error::Invalid { field, .. } => Some(field),
        _ => None,
    }
}

/// A pod of a DaemonSet that exists: the one its controller put on `node`,
/// or (where kubesim runs no DaemonSet controller) one made to look so.
async fn daemonset_pod(e: &Estate, node: &str) -> String {
    let sets: Api<DaemonSet> = Api::namespaced(e.kube.clone(), NS);
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "agent", "image": "agent"}],
                },
            },
        },
    }))
    .unwrap();
    let ds = sets.create(&PostParams::default(), &ds).await.unwrap();
    let uid = ds.metadata.uid.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let mine = e
            .pods()
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            });
        if let Some(pod) = mine {
            return pod.metadata.name.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name = format!("agent-{node}");
    e.pod(&name, node, owner("DaemonSet", "agent", &uid)).await;
    name
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_plan_follows_kubectl_drain_and_blocking_pods_stop_the_start(db: PgPool) {
    let e = estate(&db).await;
    let (portal, alice, ws) = (&e.portal, &e.alice, e.workspace);
    let agent = daemonset_pod(&e, "n1").await;
    e.pod(
        "static-etcd",
        "n1",
        json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}}),
    )
    .await;
    e.replicated("web-1", "n1", json!({})).await;
    e.replicated(
        "cache-1",
        "n1",
        json!({"spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}}),
    )
    .await;
    // Its own grace period is long; the drain's option overrides it.
    e.replicated(
        "slow-1",
        "n1",
        json!({"spec": {"terminationGracePeriodSeconds": 300}}),
    )
    .await;
    e.pod("debug-1", "n1", json!({})).await;
    e.pod("job-1", "n1", json!({"status": {"phase": "Succeeded"}}))
        .await;
    e.pod(
        "orphan-1",
        "n1",
        owner("DaemonSet", "gone", "22222222-2222-2222-2222-222222222222"),
    )
    .await;

    // Validation names the field; unknown nodes too.
    let bad = DrainOptions {
        timeout_seconds: 10_801,
        ..DrainOptions::default()
    };
    let err = drain::start(portal, alice, ws, &nodes(&["n1"]), &bad)
        .await
        .unwrap_err();
    assert_eq!(field(&err), Some("timeout_seconds"), "{err:?}");
    let bad = DrainOptions {
        grace_period_seconds: -2,
        ..DrainOptions::default()
    };
    let err = drain::start(portal, alice, ws, &nodes(&["n1"]), &bad)
        .await
        .unwrap_err();
    assert_eq!(field(&err), Some("grace_period_seconds"), "{err:?}");
    let err = drain::plan(portal, alice, ws, &nodes(&["n9"]), &DrainOptions::default())
        .await
        .unwrap_err();
    assert_eq!(field(&err), Some("nodes"), "{err:?}");

    // The defaults: DaemonSet and mirror pods stay, finished pods go, and
    // emptyDir data, an unmanaged pod and an orphaned DaemonSet pod block.
    let plan = drain::plan(portal, alice, ws, &nodes(&["n1"]), &DrainOptions::default())
        .await
        .unwrap();
    let of = |name: &str| {
        plan.nodes[0]
            .pods
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} not in {plan:?}"))
            .clone()
    };
    assert_eq!(
        of(&agent).disposition,
        PodDisposition::Skip(SkipReason::DaemonSet)
    );
    assert_eq!(of(&agent).owner.as_deref(), Some("DaemonSet/agent"));
    assert_eq!(
        of("static-etcd").disposition,
        PodDisposition::Skip(SkipReason::Mirror)
    );
    assert_eq!(of("web-1").disposition, PodDisposition::Evict);
    assert_eq!(of("web-1").owner.as_deref(), Some("ReplicaSet/web-7d9f"));
    assert_eq!(
        of("cache-1").disposition,
        PodDisposition::Block(BlockReason::EmptyDir)
    );
    assert_eq!(
        of("debug-1").disposition,
        PodDisposition::Block(BlockReason::Unmanaged)
    );
    assert_eq!(of("job-1").disposition, PodDisposition::Delete);
    assert_eq!(
        of("orphan-1").disposition,
        PodDisposition::Block(BlockReason::Unmanaged)
    );
    assert!(plan.is_blocked());
    let blockers: Vec<&str> = plan.nodes[0].blockers().map(|p| p.name.as_str()).collect();
    assert_eq!(blockers, ["cache-1", "debug-1", "orphan-1"]);

    // Not ignoring DaemonSets makes their pods block too.
    let strict = DrainOptions {
        ignore_daemonsets: false,
        ..DrainOptions::default()
    };
    let plan = drain::plan(portal, alice, ws, &nodes(&["n1"]), &strict)
        .await
        .unwrap();
    assert!(
        plan.nodes[0]
            .pods
            .iter()
            .any(|p| p.name == agent
                && p.disposition == PodDisposition::Block(BlockReason::DaemonSet))
    );

    // Starting refuses, naming each blocking pod and why; nothing changed.
    let message = conflict(
        drain::start(portal, alice, ws, &nodes(&["n1"]), &DrainOptions::default())
            .await
            .unwrap_err(),
    );
    for expected in [
        "apps/cache-1 (uses emptyDir",
        "apps/debug-1 (not managed",
        "apps/orphan-1",
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    assert!(!e.cordoned("n1").await);
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE kind = 'node.drain'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(tasks, 0);

    // Deleting emptyDir data alone still leaves the unmanaged pods.
    let data = DrainOptions {
        delete_emptydir_data: true,
        ..quick(30)
    };
    let message = conflict(
        drain::start(portal, alice, ws, &nodes(&["n1"]), &data)
            .await
            .unwrap_err(),
    );
    assert!(
        !message.contains("cache-1") && message.contains("debug-1"),
        "{message}"
    );

    // With both chosen the drain runs: everything goes but the DaemonSet
    // and mirror pods.
    let all = DrainOptions {
        force: true,
        grace_period_seconds: 0,
        ..data
    };
    let task = drain::start(portal, alice, ws, &nodes(&["n1"]), &all)
        .await
        .unwrap();
    let (state, error) = e.until_finished(task, Duration::from_secs(30)).await;
    assert_eq!(state, TaskState::Succeeded, "{error:?}");
    assert_eq!(e.pod_names("n1").await, [agent.as_str(), "static-etcd"]);
    assert!(e.cordoned("n1").await);
    let status = e.status("n1").await;
    assert_eq!(status.state, NodeDrainState::Drained);
    assert_eq!(status.task, Some(task));

    // Uncordoning makes it active again.
    drain::uncordon(portal, alice, ws, "n1").await.unwrap();
    assert!(!e.cordoned("n1").await);
    assert_eq!(e.status("n1").await.state, NodeDrainState::Active);
    drain::cordon(portal, alice, ws, "n2").await.unwrap();
    assert_eq!(e.status("n2").await.state, NodeDrainState::Cordoned);
    assert_eq!(
        field(&drain::cordon(portal, alice, ws, "n9").await.unwrap_err()),
        Some("node")
    );
    assert_eq!(
        e.audit().await,
        ["node.drain", "node.uncordon", "node.cordon"]
    );
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn budgets_hold_evictions_until_they_allow_and_nodes_go_one_after_another(db: PgPool) {
    let e = estate(&db).await;
    let (portal, alice, ws) = (&e.portal, &e.alice, e.workspace);
    e.replicated("web-1", "n1", json!({})).await;
    e.replicated("web-2", "n1", json!({})).await;
    e.replicated("api-1", "n2", json!({})).await;
    e.budget("web", 2).await;

    let task = drain::start(portal, alice, ws, &nodes(&["n1", "n2"]), &quick(60))
        .await
        .unwrap();
    // A second drain of these nodes is refused while this one runs.
    let message = conflict(
        drain::start(portal, alice, ws, &nodes(&["n2"]), &quick(60))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("n2"), "{message}");

    // The budget refuses (429): the drain waits, naming it.
    let blocked = e
        .until_status("n1", Duration::from_secs(20), |s| s.blocked_by.is_some())
        .await;
    assert_eq!(blocked.state, NodeDrainState::Draining);
    assert_eq!(blocked.blocked_by.as_deref(), Some("web"));
    assert_eq!(blocked.remaining, ["apps/web-1", "apps/web-2"]);
    assert_eq!(blocked.task, Some(task));
    // Like kubectl, every node is cordoned first; n2's pods wait their turn.
    assert!(e.cordoned("n2").await);
    assert_eq!(e.pod_names("n2").await, ["api-1"]);
    assert_eq!(e.status("n2").await.state, NodeDrainState::Cordoned);
    let progress: Option<String> = sqlx::query_scalar(
        "SELECT progress FROM task_steps WHERE task_id = $1 AND name = 'drain n1'",
    )
    .bind(task)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        progress
            .as_deref()
            .is_some_and(|p| p.contains("disruption budget web")),
        "{progress:?}"
    );
    // Uncordoning a node being drained is refused.
    conflict(drain::uncordon(portal, alice, ws, "n1").await.unwrap_err());

    // Still refused a few seconds later; then the budget allows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(e.pod_names("n1").await.len(), 2);
    e.relax_budget("web").await;
    let (state, error) = e.until_finished(task, Duration::from_secs(30)).await;
    assert_eq!(state, TaskState::Succeeded, "{error:?}");
    assert!(e.pod_names("n1").await.is_empty());
    assert!(e.pod_names("n2").await.is_empty());

    // One after another: n2's step started after n1's finished.
    let (n1_done, n2_started): (time::OffsetDateTime, time::OffsetDateTime) = sqlx::query_as(
        "SELECT (SELECT finished_at FROM task_steps WHERE task_id = $1 AND name = 'drain n1'),
                (SELECT started_at FROM task_steps WHERE task_id = $1 AND name = 'drain n2')",
    )
    .bind(task)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(n1_done <= n2_started);
    for node in ["n1", "n2"] {
        let status = e.status(node).await;
        assert_eq!(status.state, NodeDrainState::Drained, "{node}");
        assert!(status.blocked_by.is_none() && status.remaining.is_empty());
    }
    assert_eq!(e.status("n3").await.state, NodeDrainState::Active);
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_drain_that_times_out_fails_naming_the_remaining_pods(db: PgPool) {
    let e = estate(&db).await;
    let (portal, alice, ws) = (&e.portal, &e.alice, e.workspace);
    e.replicated("web-1", "n1", json!({})).await;
    e.replicated("other-1", "n1", json!({})).await;
    e.budget("web", 1).await;

    let started = Instant::now();
    let task = drain::start(portal, alice, ws, &nodes(&["n1"]), &quick(3))
        .await
        .unwrap();
    let (state, error) = e.until_finished(task, Duration::from_secs(20)).await;
    assert_eq!(state, TaskState::Failed);
    let error = error.unwrap();
    assert!(
        error.starts_with("timed out after 3 s; remaining pods: apps/web-1"),
        "{error}"
    );
    assert!(error.contains("disruption budget web"), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    // The pod the budget protects stays; the other went; the node stays
    // cordoned and shows the failure.
    assert_eq!(e.pod_names("n1").await, ["web-1"]);
    assert!(e.cordoned("n1").await);
    let status = e.status("n1").await;
    match &status.state {
        NodeDrainState::Failed { reason } => assert!(reason.contains("apps/web-1"), "{reason}"),
        other => panic!("expected failed, got {other:?}"),
    }
    assert_eq!(status.remaining, ["apps/web-1"]);
    // Draining it again is allowed now; uncordoning clears the failure.
    drain::uncordon(portal, alice, ws, "n1").await.unwrap();
    assert_eq!(e.status("n1").await.state, NodeDrainState::Active);
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_stopped_drain_ends_promptly_and_leaves_the_node_cordoned(db: PgPool) {
    let e = estate(&db).await;
    let (portal, alice, ws) = (&e.portal, &e.alice, e.workspace);
    e.replicated("web-1", "n1", json!({})).await;
    e.budget("web", 1).await;
    let task = drain::start(portal, alice, ws, &nodes(&["n1"]), &quick(600))
        .await
        .unwrap();
    e.until_status("n1", Duration::from_secs(20), |s| s.blocked_by.is_some())
        .await;
    let asked = Instant::now();
    drain::stop(portal, alice, ws, task).await.unwrap();
    let (state, _) = e.until_finished(task, Duration::from_secs(10)).await;
    assert_eq!(state, TaskState::Cancelled);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        asked.elapsed()
    );
    assert!(e.cordoned("n1").await);
    assert_eq!(e.pod_names("n1").await, ["web-1"]);
    let status = e.status("n1").await;
    assert_eq!(status.state, NodeDrainState::Cordoned);
    // Stopping again: it has finished.
    conflict(drain::stop(portal, alice, ws, task).await.unwrap_err());
    assert_eq!(e.audit().await, ["node.drain", "node.drain_stop"]);
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn other_tenants_and_viewers_cannot_drain(db: PgPool) {
    let e = estate(&db).await;
    let (portal, alice, ws) = (&e.portal, &e.alice, e.workspace);
    e.replicated("web-1", "n1", json!({})).await;
    e.budget("web", 1).await;
    let task = drain::start(portal, alice, ws, &nodes(&["n1"]), &quick(600))
        .await
        .unwrap();

    let mallory = actor(&db, "mallory@example.com").await;
    organizations::create(&db, &mallory, "Evil").await.unwrap();
    let n1 = nodes(&["n1"]);
    let options = DrainOptions::default();
    let hidden = |r: Result<(), Error>| assert!(matches!(r, Err(Error::NotFound)), "{r:?}");
    hidden(
        drain::plan(portal, &mallory, ws, &n1, &options)
            .await
            .map(|_| ()),
    );
    hidden(
        drain::start(portal, &mallory, ws, &n1, &options)
            .await
            .map(|_| ()),
    );
    hidden(drain::stop(portal, &mallory, ws, task).await);
    hidden(drain::cordon(portal, &mallory, ws, "n2").await);
    hidden(drain::uncordon(portal, &mallory, ws, "n1").await);
    hidden(drain::statuses(portal, &mallory, ws).await.map(|_| ()));

    // A viewer of alice's organization sees the states but changes nothing.
    let invitation = platform::tenancy::members::invite(
        &db,
        alice,
        &support::public_url(),
        sqlx::query_scalar(
            "SELECT p.organization_id FROM workspaces w JOIN projects p ON p.id = w.project_id
             WHERE w.id = $1",
        )
        .bind(ws)
        .fetch_one(&db)
        .await
        .unwrap(),
        "vic@example.com",
        platform::tenancy::members::RoleSpec::parse("role", "viewer").unwrap(),
    )
    .await
    .unwrap();
    let vic = actor(&db, "vic@example.com").await;
    platform::tenancy::members::respond(&db, &vic, invitation.id, true)
        .await
        .unwrap();
    assert_eq!(drain::statuses(portal, &vic, ws).await.unwrap().len(), 3);
    let forbidden = |r: Result<(), Error>| assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    forbidden(
        drain::plan(portal, &vic, ws, &n1, &options)
            .await
            .map(|_| ()),
    );
    forbidden(
        drain::start(portal, &vic, ws, &n1, &options)
            .await
            .map(|_| ()),
    );
    forbidden(drain::stop(portal, &vic, ws, task).await);
    forbidden(drain::cordon(portal, &vic, ws, "n2").await);

    // Only drain tasks of this workspace can be stopped here.
    let provision: TaskId =
        sqlx::query_scalar("SELECT id FROM tasks WHERE kind = 'workspace.provision'")
            .fetch_one(&db)
            .await
            .unwrap();
    hidden(drain::stop(portal, alice, ws, provision).await);
    hidden(drain::stop(portal, alice, ws, TaskId::new()).await);
    // The drain is untouched by all that.
    assert_eq!(e.status("n1").await.state, NodeDrainState::Draining);
    drain::stop(portal, alice, ws, task).await.unwrap();
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_drain_resumed_by_another_process_keeps_its_deadline(db: PgPool) {
    let mut e = estate(&db).await;
    let (portal, alice, ws) = (e.portal.clone(), e.alice.clone(), e.workspace);
    e.replicated("web-1", "n1", json!({})).await;
    e.budget("web", 1).await;
    let started = Instant::now();
    let task = drain::start(&portal, &alice, ws, &nodes(&["n1"]), &quick(8))
        .await
        .unwrap();
    e.until_status("n1", Duration::from_secs(20), |s| s.blocked_by.is_some())
        .await;
    // The portal process stops (handing the task back) and another starts
    // a few seconds later.
    e.engine_stop.cancel();
    while e.workers.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(3)).await;
    e.engine_stop = CancellationToken::new();
    e.workers = engine(&portal, "other").start(e.engine_stop.clone());

    let (state, error) = e.until_finished(task, Duration::from_secs(30)).await;
    assert_eq!(state, TaskState::Failed);
    assert!(
        error
            .as_deref()
            .is_some_and(|m| m.starts_with("timed out after 8 s")),
        "{error:?}"
    );
    // Counted from the first attempt, not from the resumption.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(11), "took {took:?}");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM task_steps WHERE task_id = $1")
        .bind(task)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    assert!(e.cordoned("n1").await);
    e.stop().await;
}
