//! The Kubernetes tab against a kubesim tenant: the summary (and its brief
//! cache), the nodes with their portal hosts, the upgrade matrix, an API
//! server that stops answering, bare-metal workspaces, and other tenants
//! kept out.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, PostParams};
use platform::Error;
use platform::kubernetes::{catalog, cluster};
use platform::tasks::{Engine, EngineConfig};
use platform::workspaces::{self, Access, pipeline};
use protocol::ids::HostId;
use protocol::views::NewWorkspace;
use protocol::views::kubernetes::{ApiHealth, UpgradeKind};
use serde_json::json;
use sqlx::PgPool;
use support::{actor, operator, platform};
use tokio_util::sync::CancellationToken;

const NS: &str = "shop";

async fn create<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

fn node(
    name: &str,
    ready: bool,
    unschedulable: bool,
    labels: serde_json::Value,
) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
            "capacity": {"cpu": "4", "memory": "8Gi"},
            "allocatable": {"cpu": "3800m", "memory": "7680Mi"},
            "nodeInfo": {"kubeletVersion": "v1.33.2"},
        },
    })
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_kubernetes_tab_reads_the_tenant_live(db: PgPool) {
    let portal = platform(&db);
    let sim = support::instant_kubesim().await;
    let settings = support::pipeline_settings();
    let engine = Engine::new(
        db.clone(),
        EngineConfig {
            workers: 2,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            replica: "test".into(),
        },
    )
    .handler(pipeline::ProvisionHandler::new(portal.clone(), settings));
    let engine_stop = CancellationToken::new();
    let mut workers = engine.start(engine_stop.clone());

    let op = operator(&db).await;
    for (version, active) in [
        ("1.33.2", true),
        ("1.33.5", true),
        ("1.33.9", false),
        ("1.34.1", true),
        ("1.35.0", true),
    ] {
        catalog::add_version(&db, &op, version, active)
            .await
            .unwrap();
    }
    let support::KubernetesTenant {
        alice,
        organization,
        project,
        workspace,
    } = support::kubernetes_tenant(&portal, &op, &sim).await;

    // Before the cluster exists there is nothing to ask, and it says so.
    let early = cluster::summary(&portal, &alice, workspace).await.unwrap();
    assert!(
        matches!(
            early.health,
            ApiHealth::NotReady { .. } | ApiHealth::Healthy
        ),
        "{early:?}"
    );
    support::until_active(&db, workspace).await;

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
    let nodes: Api<Node> = Api::all(kube.clone());
    create(
        &nodes,
        node(
            "web-1",
            true,
            false,
            json!({"node-role.kubernetes.io/control-plane": ""}),
        ),
    )
    .await;
    create(&nodes, node("web-2", false, true, json!({}))).await;
    let edge = HostId::new();
    create(
        &nodes,
        node(
            "ip-10-0-0-9",
            true,
            false,
            json!({"loopback.dev/host": edge.to_string()}),
        ),
    )
    .await;
    // Hosts of the workspace: one named like its node, one the label names.
    for (id, hostname) in [(HostId::new(), "web-1"), (edge, "edge-9")] {
        sqlx::query(
            "WITH profile AS (
                 INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents)
                 VALUES (gen_random_uuid(), $3, 'local', 1, 512, 10, 0) RETURNING id)
             INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, state, online)
             SELECT $1, $4, $2, $3, id, 'running', true FROM profile",
        )
        .bind(id)
        .bind(workspace)
        .bind(hostname)
        .bind(organization)
        .execute(&db)
        .await
        .unwrap();
    }
    create(
        &Api::<Namespace>::all(kube.clone()),
        json!({"metadata": {"name": NS}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), NS);
    create(
        &pods,
        json!({
            "metadata": {"name": "cart"},
            "spec": {"nodeName": "web-1", "containers": [{"name": "c", "image": "nginx"}]},
        }),
    )
    .await;
    create(
        &Api::<Event>::namespaced(kube.clone(), NS),
        json!({
            "metadata": {"name": "cart.1"},
            "involvedObject": {"kind": "Pod", "name": "cart", "namespace": NS},
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "type": "Warning",
            "count": 3,
        }),
    )
    .await;

    cluster::invalidate(workspace);
    let summary = cluster::summary(&portal, &alice, workspace).await.unwrap();
    assert_eq!(summary.health, ApiHealth::Healthy);
    assert!(
        summary
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with('v'))
    );
    assert_eq!(
        (
            summary.nodes.total,
            summary.nodes.ready,
            summary.nodes.cordoned
        ),
        (3, 2, 1)
    );
    assert!(summary.namespaces.iter().any(|n| n == NS));
    assert!(summary.pods.iter().map(|p| p.count).sum::<u32>() >= 1);
    let warning = summary
        .warnings
        .iter()
        .find(|w| w.reason == "BackOff")
        .unwrap_or_else(|| panic!("no BackOff warning in {:?}", summary.warnings));
    assert_eq!((warning.object.as_str(), warning.count), ("Pod/cart", 3));

    // Served from the cache for a few seconds; forgotten on request.
    create(&nodes, node("web-3", true, false, json!({}))).await;
    let cached = cluster::summary(&portal, &alice, workspace).await.unwrap();
    assert_eq!(cached.nodes.total, 3);
    cluster::invalidate(workspace);
    let fresh = cluster::summary(&portal, &alice, workspace).await.unwrap();
    assert_eq!(fresh.nodes.total, 4);

    // The nodes, uncached, with their hosts.
    let list = cluster::nodes(&portal, &alice, workspace).await.unwrap();
    assert_eq!(list.health, ApiHealth::Healthy);
    let names: Vec<&str> = list.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["ip-10-0-0-9", "web-1", "web-2", "web-3"]);
    let by = |name: &str| list.nodes.iter().find(|n| n.name == name).unwrap();
    let web1 = by("web-1");
    assert!(web1.ready && !web1.unschedulable);
    assert_eq!(web1.roles, ["control-plane"]);
    assert_eq!(web1.kubelet_version.as_deref(), Some("v1.33.2"));
    assert_eq!(web1.internal_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(
        (web1.capacity.cpu_millis, web1.allocatable.cpu_millis),
        (4000, 3800)
    );
    assert_eq!(web1.allocatable.memory_bytes, 7680 * 1024 * 1024);
    assert_eq!(web1.pods, 1);
    assert!(web1.created_at.is_some());
    assert_eq!(
        web1.host.as_ref().map(|h| h.hostname.as_str()),
        Some("web-1")
    );
    assert_eq!(by("ip-10-0-0-9").host.as_ref().map(|h| h.id), Some(edge));
    let web2 = by("web-2");
    assert!(!web2.ready && web2.unschedulable && web2.host.is_none());

    // One minor at a time, only active versions, never down.
    let matrix = cluster::upgrade_matrix(&db, &alice, workspace)
        .await
        .unwrap();
    assert_eq!(matrix.current.as_deref(), Some("1.33.2"));
    let targets: Vec<(&str, UpgradeKind)> = matrix
        .targets
        .iter()
        .map(|t| (t.version.as_str(), t.kind))
        .collect();
    assert_eq!(
        targets,
        [
            ("1.34.1", UpgradeKind::Minor),
            ("1.33.5", UpgradeKind::Patch)
        ]
    );

    // Another organization does not learn the workspace exists.
    let mallory = actor(&db, "mallory@example.com").await;
    assert!(matches!(
        cluster::summary(&portal, &mallory, workspace).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        cluster::nodes(&portal, &mallory, workspace).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        cluster::upgrade_matrix(&db, &mallory, workspace).await,
        Err(Error::NotFound)
    ));

    // A bare-metal workspace has no cluster to read.
    let metal = workspaces::create(&portal, &alice, project, &NewWorkspace::baremetal("metal"))
        .await
        .unwrap()
        .workspace
        .id;
    let none = cluster::summary(&portal, &alice, metal).await.unwrap();
    assert_eq!(none.health, ApiHealth::NotKubernetes);
    assert!(
        cluster::upgrade_matrix(&db, &alice, metal)
            .await
            .unwrap()
            .targets
            .is_empty()
    );

    // An API server that stops answering is reported, quickly, not raised.
    sim.inject("prod", kubesim::Failure::ServerErrors);
    cluster::invalidate(workspace);
    let started = Instant::now();
    let down = cluster::summary(&portal, &alice, workspace).await.unwrap();
    let reason = match &down.health {
        ApiHealth::Unreachable { reason } => reason.clone(),
        other => panic!("expected unreachable, got {other:?}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert!(
        down.health
            .explain()
            .unwrap()
            .starts_with("The cluster's API server is not reachable: "),
        "{reason}"
    );
    let unreachable = cluster::nodes(&portal, &alice, workspace).await.unwrap();
    assert!(matches!(unreachable.health, ApiHealth::Unreachable { .. }));
    assert!(unreachable.nodes.is_empty());

    engine_stop.cancel();
    while workers.join_next().await.is_some() {}
    sim.shutdown().await;
}
