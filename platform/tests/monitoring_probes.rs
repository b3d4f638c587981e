//! The built-in source's portal-only probes (a Kubernetes workspace's
//! tenant, a host's heartbeat metrics) and agent-backed probes through the
//! hub, with a stand-in agent on the hub's link.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use platform::hosts::hub::{HubError, Outbound};
use platform::kubernetes::catalog;
use platform::monitoring::probe::run_builtin;
use platform::tasks::{Engine, EngineConfig};
use platform::tenancy::{organizations, projects};
use platform::workspaces::{self, Access, pipeline};
use protocol::BuildInfo;
use protocol::agent::{AgentMessage, HostFacts, PortalMessage};
use protocol::ids::{AgentTokenId, HostId, OrganizationId, WorkspaceId};
use protocol::views::Verification;
use protocol::views::monitoring::{
    HostProbe, KubernetesProbe, Parameter, ProbeOutcome, ProbeSpec, TcpProbe,
};
use serde_json::json;
use sqlx::PgPool;
use support::{actor, operator, platform};
use tokio_util::sync::CancellationToken;

const NS: &str = "monitored";

async fn create<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

fn node(name: &str, ready: bool) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    })
}

fn kubernetes(workspace: WorkspaceId, namespace: Option<&str>) -> ProbeSpec {
    ProbeSpec::Kubernetes(KubernetesProbe {
        workspace,
        namespace: namespace.map(str::to_owned),
        timeout_ms: 5000,
    })
}

/// Probes until `done` holds for the outcome (bounded).
async fn probe_until(
    portal: &platform::Platform,
    spec: &ProbeSpec,
    done: impl Fn(&ProbeOutcome) -> bool,
) -> ProbeOutcome {
    let started = Instant::now();
    loop {
        let outcome = run_builtin(portal, spec).await;
        if done(&outcome) {
            return outcome;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reached: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_kubernetes_probe_reads_the_tenant(db: PgPool) {
    let portal = platform(&db);
    let sim = support::instant_kubesim().await;
    let engine = Engine::new(
        db.clone(),
        EngineConfig {
            workers: 2,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            replica: "test".into(),
        },
    )
    .handler(pipeline::ProvisionHandler::new(
        portal.clone(),
        support::pipeline_settings(),
    ));
    let stop = CancellationToken::new();
    let mut workers = engine.start(stop.clone());

    let op = operator(&db).await;
    catalog::add_version(&db, &op, "1.33.2", true)
        .await
        .unwrap();
    let support::KubernetesTenant {
        alice, workspace, ..
    } = support::kubernetes_tenant(&portal, &op, &sim).await;

    // Not active yet (or just now): no tenant to ask.
    let early = run_builtin(&portal, &kubernetes(workspace, None)).await;
    if !early.ok {
        assert!(early.error.is_some(), "{early:?}");
    }
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
    create(&nodes, node("mon-ready", true)).await;
    create(&nodes, node("mon-broken", false)).await;
    create(
        &Api::<Namespace>::all(kube.clone()),
        json!({"metadata": {"name": NS}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), NS);
    for name in ["mon-fine", "mon-crashed"] {
        create(
            &pods,
            json!({
                "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            }),
        )
        .await;
    }
    for (name, phase) in [("mon-fine", "Running"), ("mon-crashed", "Failed")] {
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
    }
    // A deployment whose pods never become available.
    sim.inject_workload("mon-stalled", kubesim::WorkloadFailure::Stall);
    create(
        &Api::<Deployment>::namespaced(kube.clone(), NS),
        json!({
            "metadata": {"name": "mon-stalled"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "mon-stalled"}},
                "template": {
                    "metadata": {"labels": {"app": "mon-stalled"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        }),
    )
    .await;

    let scoped = probe_until(&portal, &kubernetes(workspace, Some(NS)), |o| {
        o.value(Parameter::DeploymentsUnavailable) == Some(1.0)
    })
    .await;
    assert!(scoped.ok, "{scoped:?}");
    assert!(scoped.latency_ms.is_some_and(|l| l > 0.0));
    assert_eq!(scoped.value(Parameter::NodesNotReady), Some(1.0));
    // The failed pod, plus whatever the stalled deployment's pods are doing.
    let not_running = scoped.value(Parameter::PodsNotRunning).unwrap();
    assert!(not_running >= 1.0, "{scoped:?}");

    let everywhere = run_builtin(&portal, &kubernetes(workspace, None)).await;
    assert!(everywhere.ok, "{everywhere:?}");
    assert!(everywhere.value(Parameter::PodsNotRunning).unwrap() >= not_running);
    assert!(everywhere.value(Parameter::DeploymentsUnavailable).unwrap() >= 1.0);

    // An API server that stops answering health checks is down.
    // kubesim knows the tenant by the workspace's name.
    sim.inject("prod", kubesim::Failure::ServerErrors);
    let down = probe_until(&portal, &kubernetes(workspace, None), |o| !o.ok).await;
    assert!(
        down.error
            .as_deref()
            .is_some_and(|e| e.contains("/healthz")),
        "{down:?}"
    );

    // A workspace that is not active is not asked.
    sqlx::query("UPDATE workspaces SET state = 'failed' WHERE id = $1")
        .bind(workspace)
        .execute(&db)
        .await
        .unwrap();
    let inactive = run_builtin(&portal, &kubernetes(workspace, None)).await;
    assert_eq!(inactive.error.as_deref(), Some("workspace is not active"));

    stop.cancel();
    while workers.join_next().await.is_some() {}
}

/// A host row of `workspace` (no provider involved).
async fn host(db: &PgPool, org: OrganizationId, workspace: WorkspaceId, name: &str) -> HostId {
    let id = HostId::new();
    sqlx::query(
        "WITH profile AS (
             INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents)
             VALUES (gen_random_uuid(), $3, 'local', 1, 512, 10, 0) RETURNING id)
         INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, state)
         SELECT $1, $4, $2, $3, id, 'running' FROM profile",
    )
    .bind(id)
    .bind(workspace)
    .bind(name)
    .bind(org)
    .execute(db)
    .await
    .unwrap();
    id
}

async fn estate(db: &PgPool) -> (platform::Platform, HostId) {
    let portal = platform(db);
    let op = operator(db).await;
    let alice = actor(db, "alice@example.com").await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    organizations::set_verification(db, &op, org.id, Verification::Verified, "ok")
        .await
        .unwrap();
    let project = projects::create(db, &alice, org.id, "Web").await.unwrap();
    let workspace = support::workspace(db, &alice, project.id, "metal")
        .await
        .unwrap();
    let id = host(db, org.id, workspace.id, "web-1").await;
    (portal, id)
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_host_probe_reads_the_latest_heartbeat(db: PgPool) {
    let (portal, id) = estate(&db).await;
    let spec = ProbeSpec::Host(HostProbe { host: id });

    let never = run_builtin(&portal, &spec).await;
    assert!(!never.ok);
    assert_eq!(never.value(Parameter::AgentOnline), Some(0.0));
    assert_eq!(never.value(Parameter::CpuPercent), None);
    assert_eq!(
        never.error.as_deref(),
        Some("the agent of web-1 is offline")
    );

    let (link, _outbound) = portal.hub().connect(id, AgentTokenId::new());
    portal
        .hub()
        .received(
            &link,
            AgentMessage::Heartbeat {
                facts: HostFacts {
                    hostname: "web-1".into(),
                    load: [1.25, 1.0, 0.5],
                    cpus: 2,
                    memory_total_bytes: 8 << 30,
                    memory_available_bytes: 2 << 30,
                    disk_total_bytes: 100 << 30,
                    disk_available_bytes: 60 << 30,
                    cpu_percent: Some(42.5),
                    ..Default::default()
                },
                build: BuildInfo::new("loopback-agent", "9.9.9"),
            },
        )
        .await;
    portal.hub().flush(portal.db()).await.unwrap();

    let up = run_builtin(&portal, &spec).await;
    assert!(up.ok, "{up:?}");
    assert_eq!(up.error, None);
    assert_eq!(up.value(Parameter::AgentOnline), Some(1.0));
    assert_eq!(up.value(Parameter::CpuPercent), Some(42.5));
    assert_eq!(up.value(Parameter::MemoryPercent), Some(75.0));
    assert_eq!(up.value(Parameter::DiskPercent), Some(40.0));
    assert_eq!(up.value(Parameter::Load1), Some(1.25));

    portal.hub().disconnect(&link);
    portal.hub().flush(portal.db()).await.unwrap();
    let gone = run_builtin(&portal, &spec).await;
    assert!(!gone.ok);
    assert_eq!(gone.value(Parameter::AgentOnline), Some(0.0));
    // The last metrics are still shown, for context.
    assert_eq!(gone.value(Parameter::CpuPercent), Some(42.5));

    let missing = run_builtin(
        &portal,
        &ProbeSpec::Host(HostProbe {
            host: HostId::new(),
        }),
    )
    .await;
    assert_eq!(missing.error.as_deref(), Some("the host no longer exists"));
}

fn tcp(port: u16) -> ProbeSpec {
    ProbeSpec::Tcp(TcpProbe {
        host: "127.0.0.1".into(),
        port,
        timeout_ms: 1000,
    })
}

/// Plays an agent on the hub's link: answers each probe by running it,
/// unless `answer` is false.
fn stand_in_agent(
    portal: &platform::Platform,
    host: HostId,
    answer: bool,
) -> std::sync::Arc<platform::hosts::hub::Link> {
    let (link, mut outbound) = portal.hub().connect(host, AgentTokenId::new());
    let hub_portal = portal.clone();
    let agent_link = link.clone();
    tokio::spawn(async move {
        while let Some(frame) = outbound.recv().await {
            let Outbound::Text(text) = frame else {
                continue;
            };
            let Ok(PortalMessage::Probe { id, spec }) = serde_json::from_str(&text) else {
                continue;
            };
            if answer {
                let outcome = probes::run(&spec).await;
                hub_portal
                    .hub()
                    .received(&agent_link, AgentMessage::ProbeResult { id, outcome })
                    .await;
            }
        }
    });
    link
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_hub_relays_probes_to_agents_and_gives_up_cleanly(db: PgPool) {
    let portal = platform(&db);
    let hub = portal.hub();
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();

    let offline = HostId::new();
    assert_eq!(
        hub.probe(offline, &tcp(port), Duration::from_secs(1)).await,
        Err(HubError::Offline)
    );

    let answering = HostId::new();
    let _link = stand_in_agent(&portal, answering, true);
    let outcome = hub
        .probe(answering, &tcp(port), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(outcome.ok, "{outcome:?}");
    // Many at once share the link and each gets its own answer.
    let mut many = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let portal = portal.clone();
        let spec = tcp(port);
        many.spawn(async move {
            portal
                .hub()
                .probe(answering, &spec, Duration::from_secs(5))
                .await
        });
    }
    while let Some(result) = many.join_next().await {
        assert!(result.unwrap().unwrap().ok);
    }
    assert_eq!(hub.pending_probes(), 0);

    let silent = HostId::new();
    let silent_link = stand_in_agent(&portal, silent, false);
    let started = Instant::now();
    assert_eq!(
        hub.probe(silent, &tcp(port), Duration::from_millis(300))
            .await,
        Err(HubError::Timeout(0))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        hub.pending_probes(),
        0,
        "a timed-out probe leaves nothing behind"
    );

    // The agent goes away while a probe waits.
    let spec = tcp(port);
    let waiting = hub.probe(silent, &spec, Duration::from_secs(10));
    let drop_link = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub.disconnect(&silent_link);
    };
    let (result, ()) = tokio::join!(waiting, drop_link);
    assert_eq!(result, Err(HubError::Disconnected));
    assert_eq!(hub.pending_probes(), 0);
}
