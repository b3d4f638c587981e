//! Creating workspaces: every precondition refuses with a clear message and
//! writes nothing; and the provisioning pipeline against kubesim (a real
//! HTTPS Kubernetes API with Kamaji behaviour) and a fake Cloudflare.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::Api;
use platform::Error;
use platform::authz::Actor;
use platform::dns::Dns;
use platform::kubernetes::catalog;
use platform::tasks::{Engine, EngineConfig};
use platform::tenancy::{organizations, projects};
use platform::workspaces::{self, Access, pipeline};
use protocol::ids::{ManagementClusterId, ProjectId, WorkspaceId};
use protocol::views::{
    ManagementClusterKind, NewManagementCluster, NewWorkspace, Verification, WorkspaceKind,
    WorkspaceState,
};
use sqlx::PgPool;
use support::{actor, operator, platform};
use tokio_util::sync::CancellationToken;

async fn verified_project(db: &PgPool, owner: &Actor) -> ProjectId {
    let org = organizations::create(db, owner, "Acme").await.unwrap();
    let verifier = support::account(db, &format!("verifier-{}@example.com", org.id)).await;
    sqlx::query("UPDATE accounts SET is_operator = true WHERE id = $1")
        .bind(verifier.id)
        .execute(db)
        .await
        .unwrap();
    let mut op = verifier.actor(support::meta());
    op.is_operator = true;
    organizations::set_verification(db, &op, org.id, Verification::Verified, "ok")
        .await
        .unwrap();
    projects::create(db, owner, org.id, "Web").await.unwrap().id
}

async fn counts(db: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT (SELECT count(*) FROM workspaces), (SELECT count(*) FROM tasks)")
        .fetch_one(db)
        .await
        .unwrap()
}

/// A catalog without connecting anywhere: preconditions only read it.
async fn catalog_rows(db: &PgPool) -> ManagementClusterId {
    sqlx::query("INSERT INTO kubernetes_versions (id, version, active) VALUES (gen_random_uuid(), '1.33.2', true), (gen_random_uuid(), '1.31.0', false)")
        .execute(db)
        .await
        .unwrap();
    let id = ManagementClusterId::new();
    sqlx::query(
        "INSERT INTO management_clusters (id, name, kind, provider_type, domain, kubeconfig, server)
         VALUES ($1, 'eu-1', 'kamaji', 'hetzner_cloud', 'eu.example.com', '\\x00', 'https://eu-1')",
    )
    .bind(id)
    .execute(db)
    .await
    .unwrap();
    id
}

fn field(e: &Error) -> Option<&str> {
    match e {
        Error::Invalid { field, .. } => Some(field),
        _ => None,
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn every_precondition_refuses_and_nothing_is_created(db: PgPool) {
    let alice = actor(&db, "alice@example.com").await;
    let portal = platform(&db);
    let cluster = catalog_rows(&db).await;
    let org = organizations::create(&db, &alice, "Pending Ltd")
        .await
        .unwrap();
    let pending_project = projects::create(&db, &alice, org.id, "Pending")
        .await
        .unwrap()
        .id;
    let project = verified_project(&db, &alice).await;
    let good = NewWorkspace::kubernetes("prod", "1.33.2", "hetzner_cloud");

    // The organization is not verified.
    let e = workspaces::create(&portal, &alice, pending_project, &good)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::OrganizationNotUsable(_)), "{e:?}");
    // Someone without workspace.create (another tenant: not even found).
    let mallory = actor(&db, "mallory@example.com").await;
    let e = workspaces::create(&portal, &mallory, project, &good)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound), "{e:?}");
    // Unknown and inactive versions.
    for version in ["1.99.0", "1.31.0", ""] {
        let new = NewWorkspace {
            version: Some(version.into()),
            ..good.clone()
        };
        let e = workspaces::create(&portal, &alice, project, &new)
            .await
            .unwrap_err();
        assert_eq!(field(&e), Some("version"), "{version}: {e:?}");
    }
    // No management pool for the provider.
    let new = NewWorkspace {
        provider_type: Some("ionos_dcd".into()),
        ..good.clone()
    };
    let e = workspaces::create(&portal, &alice, project, &new)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("ionos_dcd")),
        "{e:?}"
    );
    // A pinned cluster that does not exist, or serves another provider.
    let new = NewWorkspace {
        management_cluster: Some(ManagementClusterId::new()),
        ..good.clone()
    };
    let e = workspaces::create(&portal, &alice, project, &new)
        .await
        .unwrap_err();
    assert_eq!(field(&e), Some("management_cluster"));
    sqlx::query("INSERT INTO management_clusters (id, name, kind, provider_type, domain, kubeconfig, server) VALUES (gen_random_uuid(), 'io-1', 'kamaji', 'ionos_dcd', 'io.example.com', '\\x00', 'https://io-1')")
        .execute(&db).await.unwrap();
    let io: ManagementClusterId =
        sqlx::query_scalar("SELECT id FROM management_clusters WHERE name = 'io-1'")
            .fetch_one(&db)
            .await
            .unwrap();
    let new = NewWorkspace {
        management_cluster: Some(io),
        ..good.clone()
    };
    let e = workspaces::create(&portal, &alice, project, &new)
        .await
        .unwrap_err();
    assert_eq!(field(&e), Some("management_cluster"));
    // An inactive pinned cluster.
    sqlx::query("UPDATE management_clusters SET active = false WHERE id = $1")
        .bind(cluster)
        .execute(&db)
        .await
        .unwrap();
    let new = NewWorkspace {
        management_cluster: Some(cluster),
        ..good.clone()
    };
    let e = workspaces::create(&portal, &alice, project, &new)
        .await
        .unwrap_err();
    assert_eq!(field(&e), Some("management_cluster"));
    let e = workspaces::create(&portal, &alice, project, &good)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "no active pool: {e:?}");
    sqlx::query("UPDATE management_clusters SET active = true WHERE id = $1")
        .bind(cluster)
        .execute(&db)
        .await
        .unwrap();
    // The cluster-kind path is for operators.
    let new = NewWorkspace {
        cluster_kind: true,
        ..good.clone()
    };
    let e = workspaces::create(&portal, &alice, project, &new)
        .await
        .unwrap_err();
    assert_eq!(field(&e), Some("cluster_kind"));
    // Names and metadata.
    let new = NewWorkspace {
        name: "!!".into(),
        ..good.clone()
    };
    assert_eq!(
        field(
            &workspaces::create(&portal, &alice, project, &new)
                .await
                .unwrap_err()
        ),
        Some("name")
    );
    let mut new = good.clone();
    new.metadata.insert("bad key".into(), "x".into());
    assert_eq!(
        field(
            &workspaces::create(&portal, &alice, project, &new)
                .await
                .unwrap_err()
        ),
        Some("metadata")
    );

    assert_eq!(counts(&db).await, (0, 0), "nothing is half-created");

    // And with everything right: the workspace, its task, its API key.
    let created = workspaces::create(
        &portal,
        &alice,
        project,
        &NewWorkspace {
            name: "Prod EU!".into(),
            ..good.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(created.workspace.name, "prod-eu");
    assert_eq!(created.workspace.state, WorkspaceState::Provisioning);
    assert!(created.api_key.starts_with("lbw_"));
    let (hash, sealed): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT api_key_hash, api_key_sealed FROM workspaces WHERE id = $1")
            .bind(created.workspace.id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(hash, platform::crypto::token_digest(&created.api_key));
    assert!(
        !sealed
            .windows(created.api_key.len())
            .any(|w| w == created.api_key.as_bytes()),
        "the key is not stored in clear"
    );
    assert_eq!(counts(&db).await, (1, 1));
    let duplicate = workspaces::create(
        &portal,
        &alice,
        project,
        &NewWorkspace {
            name: "prod-eu".into(),
            ..good.clone()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field(&duplicate), Some("name"));
    assert_eq!(counts(&db).await, (1, 1));
}

// ----- the pipeline against kubesim -----

struct Estate {
    portal: platform::Platform,
    /// An operator who registered kubesim and version 1.33.2.
    op: Actor,
    /// Owner of a verified organization with `project`.
    alice: Actor,
    project: ProjectId,
    sim: kubesim::Kubesim,
    dns: fakes::cloudflare::FakeCloudflare,
    engine_stop: CancellationToken,
    workers: tokio::task::JoinSet<()>,
}

async fn estate(db: &PgPool, kamaji: kubesim::Kamaji, health_timeout: Duration) -> Estate {
    estate_with(db, kamaji, health_timeout, false, None).await
}

async fn estate_with(
    db: &PgPool,
    kamaji: kubesim::Kamaji,
    health_timeout: Duration,
    delete_on_late_failure: bool,
    managed_network: Option<platform::workspaces::network::Pool>,
) -> Estate {
    let portal = platform(db);
    let sim = kubesim::start(kubesim::Config {
        kamaji,
        ..Default::default()
    })
    .await
    .unwrap();
    let dns = fakes::cloudflare::FakeCloudflare::start("cf-token", "zone1").await;
    let settings = Arc::new(pipeline::Settings {
        oidc_issuer: "https://login.example.com".into(),
        dns: Arc::new(
            Dns::from_config(
                "cloudflare",
                Some(&dns.base_url()),
                Some("cf-token"),
                Some("zone1"),
            )
            .unwrap(),
        ),
        kubeconfig_timeout: Duration::from_secs(20),
        health_timeout,
        delete_on_late_failure,
        managed_network: managed_network.is_some(),
        portal_url: "http://localhost:3000".into(),
    });
    let engine = Engine::new(
        db.clone(),
        EngineConfig {
            workers: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            replica: "test".into(),
        },
    )
    .handler(pipeline::ProvisionHandler::new(
        portal.clone(),
        settings.clone(),
    ))
    .handler(pipeline::TeardownHandler::new(portal.clone(), settings));
    let engine = match managed_network {
        Some(pool) => engine.handler(platform::workspaces::network::CreateNetworkHandler::new(
            db.clone(),
            pool,
        )),
        None => engine,
    };
    let engine_stop = CancellationToken::new();
    let workers = engine.start(engine_stop.clone());
    let op = operator(db).await;
    let alice = actor(db, "alice@example.com").await;
    let project = verified_project(db, &alice).await;
    let e = Estate {
        portal,
        op,
        alice,
        project,
        sim,
        dns,
        engine_stop,
        workers,
    };
    registered(&e).await;
    e
}

impl Estate {
    async fn stop(mut self) {
        self.engine_stop.cancel();
        while self.workers.join_next().await.is_some() {}
        self.sim.shutdown().await;
    }
}

/// Kamaji without its delay.
fn instant() -> kubesim::Kamaji {
    kubesim::Kamaji {
        ready_delay: Duration::ZERO,
        ..Default::default()
    }
}

async fn registered(e: &Estate) -> ManagementClusterId {
    let op = &e.op;
    catalog::add_version(e.portal.db(), op, "1.33.2", true)
        .await
        .unwrap();
    catalog::register_cluster(
        &e.portal,
        op,
        &NewManagementCluster {
            name: "kubesim".into(),
            kind: ManagementClusterKind::Kamaji,
            provider_type: Some("local".into()),
            domain: "mgmt.example.com".into(),
            kubeconfig: e.sim.kubeconfig(),
            capacity: 10,
        },
    )
    .await
    .unwrap()
}

async fn state_of(db: &PgPool, id: WorkspaceId) -> Option<(WorkspaceState, Option<String>)> {
    sqlx::query_as("SELECT state, failure_reason FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
        .unwrap()
}

async fn settle(
    db: &PgPool,
    id: WorkspaceId,
    within: Duration,
) -> Option<(WorkspaceState, Option<String>)> {
    let started = Instant::now();
    loop {
        let state = state_of(db, id).await;
        if !matches!(
            state,
            Some((WorkspaceState::Provisioning | WorkspaceState::Deleting, _))
        ) || started.elapsed() > within
        {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_workspace_is_provisioned_used_and_deleted_without_leftovers(db: PgPool) {
    let e = estate(&db, instant(), Duration::from_secs(20)).await;
    let (alice, project) = (e.alice.clone(), e.project);
    let created = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::kubernetes("prod", "1.33.2", "local"),
    )
    .await
    .unwrap();
    let id = created.workspace.id;
    let (state, reason) = settle(&db, id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(state, WorkspaceState::Active, "{reason:?}");

    // The management side: the namespace and the tenant control plane.
    let mgmt = platform::kubernetes::connect(&e.sim.kubeconfig())
        .await
        .unwrap();
    let ns = format!("k8s-w-{id}");
    assert!(
        Api::<Namespace>::all(mgmt.clone())
            .get_opt(&ns)
            .await
            .unwrap()
            .is_some()
    );
    let tenants = e.sim.tenants();
    assert_eq!(tenants.len(), 1);
    // DNS: one record for the workspace name, pointing at the tenant.
    let dns_name = format!("{id}.k8s.mgmt.example.com");
    let records: Vec<_> = e
        .dns
        .records()
        .into_iter()
        .filter(|r| r.name == dns_name)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");

    // The admin kubeconfig works with TLS verification, and the tenant holds
    // the integration namespace, its secret and the OIDC binding.
    let details = workspaces::details(&db, &alice, id).await.unwrap();
    assert!(
        details
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with(&format!("https://{dns_name}:"))),
        "{:?}",
        details.endpoint
    );
    let (_, admin) = workspaces::kubeconfig(
        &e.portal,
        &alice,
        id,
        Access::Admin,
        "https://login.example.com",
    )
    .await
    .unwrap();
    // Cloudflare publishes the name, which does not resolve here: reach the
    // address the record holds, checking the name in TLS.
    let address = &records[0].content;
    let local = admin.replace(
        &format!("https://{dns_name}:"),
        &format!("https://{address}:"),
    );
    let mut kc: serde_json::Value = serde_yaml::from_str(&local).unwrap();
    kc["clusters"][0]["cluster"]["tls-server-name"] = serde_json::json!(dns_name);
    let tenant = platform::kubernetes::connect(&serde_yaml::to_string(&kc).unwrap())
        .await
        .unwrap();
    assert!(
        Api::<Namespace>::all(tenant.clone())
            .get_opt(pipeline::INTEGRATION_NAMESPACE)
            .await
            .unwrap()
            .is_some()
    );
    let secret = Api::<Secret>::namespaced(tenant.clone(), pipeline::INTEGRATION_NAMESPACE)
        .get("loopback-workspace")
        .await
        .unwrap();
    let key = secret.data.unwrap()["apiKey"].0.clone();
    assert_eq!(String::from_utf8(key).unwrap(), created.api_key);
    let binding = Api::<ClusterRoleBinding>::all(tenant)
        .get(pipeline::CLAIM_GROUP)
        .await
        .unwrap();
    assert_eq!(binding.role_ref.name, "cluster-admin");
    let (_, oidc) = workspaces::kubeconfig(
        &e.portal,
        &alice,
        id,
        Access::Oidc,
        "https://login.example.com",
    )
    .await
    .unwrap();
    assert!(
        oidc.contains("oidc-login") && oidc.contains(&format!("--oidc-client-id={id}")),
        "{oidc}"
    );

    // Deleting leaves nothing behind.
    workspaces::delete(&db, &alice, id).await.unwrap();
    let started = Instant::now();
    while state_of(&db, id).await.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "teardown did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        Api::<Namespace>::all(mgmt)
            .get_opt(&ns)
            .await
            .unwrap()
            .is_none()
    );
    assert!(e.sim.tenants().is_empty());
    assert!(e.dns.records().iter().all(|r| r.name != dns_name));
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn an_api_that_never_becomes_healthy_fails_the_workspace(db: PgPool) {
    let e = estate(&db, instant(), Duration::from_secs(2)).await;
    let (alice, project) = (e.alice.clone(), e.project);
    e.sim.inject("*", kubesim::Failure::NeverHealthy);
    let created = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::kubernetes("sick", "1.33.2", "local"),
    )
    .await
    .unwrap();
    let (state, reason) = settle(&db, created.workspace.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(state, WorkspaceState::Failed);
    assert!(
        reason
            .unwrap_or_default()
            .contains("did not become healthy")
    );
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn bare_metal_workspaces_skip_kubernetes(db: PgPool) {
    let e = estate(&db, kubesim::Kamaji::default(), Duration::from_secs(5)).await;
    let (alice, project) = (e.alice.clone(), e.project);
    let created = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::baremetal("metal"),
    )
    .await
    .unwrap();
    assert_eq!(created.workspace.kind, WorkspaceKind::Baremetal);
    let (state, _) = settle(&db, created.workspace.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(state, WorkspaceState::Active);
    assert!(e.sim.tenants().is_empty());
    e.stop().await;
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: registry.example.com/{name}:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-settings
data:
  level: info
"
    )
}

async fn add_app(e: &Estate, op: &Actor, name: &str, prerequisite: bool, timeout: i32) {
    platform::kubernetes::applications::add(
        e.portal.db(),
        op,
        &protocol::views::NewApplication {
            name: name.into(),
            version: "1.0.0".into(),
            source: protocol::views::ApplicationSource::Manifests,
            manifests: Some(deployment(name)),
            chart: None,
            prerequisite,
            position: 0,
            install_timeout_secs: timeout,
        },
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn catalog_applications_install_before_and_after_the_control_plane(db: PgPool) {
    let e = estate(&db, instant(), Duration::from_secs(20)).await;
    let (op, alice, project) = (e.op.clone(), e.alice.clone(), e.project);
    add_app(&e, &op, "pre-konnectivity", true, 30).await;
    add_app(&e, &op, "post-metrics", false, 30).await;
    let id = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::kubernetes("apps", "1.33.2", "local"),
    )
    .await
    .unwrap()
    .workspace
    .id;
    let (state, reason) = settle(&db, id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(state, WorkspaceState::Active, "{reason:?}");
    let deployments: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.name, d.state::text FROM application_deployments d JOIN kubernetes_applications a ON a.id = d.application_id
         WHERE d.workspace_id = $1 ORDER BY a.name",
    )
    .bind(id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        deployments,
        vec![
            ("post-metrics".into(), "installed".into()),
            ("pre-konnectivity".into(), "installed".into())
        ]
    );
    // The prerequisite runs in the workspace's management namespace.
    let mgmt = platform::kubernetes::connect(&e.sim.kubeconfig())
        .await
        .unwrap();
    let pre: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(mgmt, &format!("k8s-w-{id}"));
    assert!(pre.get_opt("pre-konnectivity").await.unwrap().is_some());
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_prerequisite_that_times_out_is_cleaned_up_and_fails_the_workspace(db: PgPool) {
    let e = estate(&db, instant(), Duration::from_secs(20)).await;
    let (op, alice, project) = (e.op.clone(), e.alice.clone(), e.project);
    e.sim
        .inject_workload("pre-stuck", kubesim::WorkloadFailure::Stall);
    add_app(&e, &op, "pre-stuck", true, 2).await;
    let id = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::kubernetes("stuck", "1.33.2", "local"),
    )
    .await
    .unwrap()
    .workspace
    .id;
    let (state, reason) = settle(&db, id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(state, WorkspaceState::Failed);
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("pre-stuck")
            && reason.contains("not ready within 2 s")
            && reason.contains("removed"),
        "{reason}"
    );
    let record: String = sqlx::query_scalar(
        "SELECT state::text FROM application_deployments WHERE workspace_id = $1",
    )
    .bind(id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(record, "failed");
    // What the install started is gone, and no control plane was made.
    let mgmt = platform::kubernetes::connect(&e.sim.kubeconfig())
        .await
        .unwrap();
    let ns = format!("k8s-w-{id}");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(mgmt.clone(), &ns);
    assert!(deployments.get_opt("pre-stuck").await.unwrap().is_none());
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(mgmt, &ns);
    assert!(maps.get_opt("pre-stuck-settings").await.unwrap().is_none());
    assert!(e.sim.tenants().is_empty());
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn with_the_deletion_policy_a_late_failure_tears_the_workspace_down(db: PgPool) {
    let e = estate_with(&db, instant(), Duration::from_secs(2), true, None).await;
    let (alice, project) = (e.alice.clone(), e.project);
    e.sim.inject("doomed", kubesim::Failure::NeverHealthy);
    let id = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::kubernetes("doomed", "1.33.2", "local"),
    )
    .await
    .unwrap()
    .workspace
    .id;
    // Marked for deletion with the reason, then removed with all it built:
    // the provisioning task failed, then the teardown ran.
    let started = Instant::now();
    while let Some((state, _)) = state_of(&db, id).await {
        assert_ne!(state, WorkspaceState::Active);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tasks: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT kind, state::text, error FROM tasks WHERE input->>'workspace' = $1 ORDER BY created_at",
    )
    .bind(id.to_string())
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(
        (tasks[0].0.as_str(), tasks[0].1.as_str()),
        ("workspace.provision", "failed")
    );
    assert!(
        tasks[0]
            .2
            .as_deref()
            .unwrap_or("")
            .contains("did not become healthy")
    );
    assert_eq!(
        (tasks[1].0.as_str(), tasks[1].1.as_str()),
        ("workspace.teardown", "succeeded")
    );
    assert!(e.sim.tenants().is_empty());
    assert!(e.dns.records().is_empty());
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn drift_shows_when_a_tenant_api_stops_answering(db: PgPool) {
    let e = estate(&db, instant(), Duration::from_secs(20)).await;
    let (alice, project) = (e.alice.clone(), e.project);
    let id = workspaces::create(
        &e.portal,
        &alice,
        project,
        &NewWorkspace::kubernetes("drifty", "1.33.2", "local"),
    )
    .await
    .unwrap()
    .workspace
    .id;
    let (state, _) = settle(&db, id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(state, WorkspaceState::Active);
    workspaces::health::check_batch(&e.portal).await.unwrap();
    let before = workspaces::details(&db, &alice, id).await.unwrap().health;
    assert_eq!(before.as_deref(), Some("healthy"));
    e.sim.inject("drifty", kubesim::Failure::ServerErrors);
    sqlx::query("UPDATE workspaces SET health_checked_at = NULL WHERE id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    workspaces::health::check_batch(&e.portal).await.unwrap();
    let after = workspaces::details(&db, &alice, id).await.unwrap();
    assert!(after.health_checked_at.is_some());
    assert!(
        after
            .health
            .as_deref()
            .is_some_and(|h| h.starts_with("API unhealthy")),
        "before: {before:?}, after: {:?}",
        after.health
    );
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_managed_network_is_made_by_its_own_task_first(db: PgPool) {
    let pool = platform::workspaces::network::Pool::parse("10.64.0.0/12", 20).unwrap();
    let e = estate_with(&db, instant(), Duration::from_secs(20), false, Some(pool)).await;
    let (alice, project) = (e.alice.clone(), e.project);
    let mut ids = Vec::new();
    for new in [
        NewWorkspace::kubernetes("net-a", "1.33.2", "local"),
        NewWorkspace::baremetal("net-b"),
    ] {
        ids.push(
            workspaces::create(&e.portal, &alice, project, &new)
                .await
                .unwrap()
                .workspace
                .id,
        );
    }
    for id in &ids {
        let (state, reason) = settle(&db, *id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(state, WorkspaceState::Active, "{reason:?}");
    }
    let networks: Vec<String> = sqlx::query_scalar(
        "SELECT cidr FROM networks WHERE workspace_id = ANY($1) AND state = 'ready' ORDER BY cidr",
    )
    .bind(&ids)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(networks, vec!["10.64.0.0/20", "10.64.16.0/20"]);
    let network_tasks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks WHERE kind = 'network.create' AND state = 'succeeded'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(network_tasks, 2);
    e.stop().await;
}
