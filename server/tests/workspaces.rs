//! Provisioning survives its process: a portal killed outright in the middle
//! of a workspace's pipeline is replaced by another, and the workspace still
//! becomes active with no duplicate objects in the cluster or in DNS.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use platform::kubernetes::catalog;
use platform::tenancy::{organizations, projects};
use protocol::views::{
    ManagementClusterKind, NewManagementCluster, NewWorkspace, Verification, WorkspaceState,
};
use sqlx::PgPool;
use support::{Launch, fresh_database, temp_dir};

#[tokio::test]
async fn a_portal_killed_mid_pipeline_is_replaced_and_the_workspace_still_becomes_active() {
    let url = fresh_database().await;
    let sim = kubesim::start(kubesim::Config {
        kamaji: kubesim::Kamaji {
            ready_delay: Duration::from_secs(4),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dns = fakes::cloudflare::FakeCloudflare::start("cf-token", "zone1").await;
    let key_file = temp_dir("key").join("secret.key");
    let secrets = platform::SecretBox::load_or_create(&key_file).unwrap();
    let base = dns.base_url().to_string();
    let launch = || {
        Launch::with_database(url.clone())
            .arg("--secret-key-file")
            .arg(key_file.to_str().unwrap())
            .arg("--task-lease-secs")
            .arg("2")
            .arg("--task-poll-secs")
            .arg("1")
            .arg("--dns-provider")
            .arg("cloudflare")
            .arg("--cloudflare-api-url")
            .arg(&base)
            .arg("--cloudflare-token")
            .arg("cf-token")
            .arg("--cloudflare-zone-id")
            .arg("zone1")
            .spawn()
    };
    let mut first = launch();
    first.ready().await;

    let db = PgPool::connect(&url).await.unwrap();
    let portal = platform::Platform::new(
        db.clone(),
        secrets,
        url::Url::parse("http://localhost:3000").unwrap(),
        Default::default(),
    )
    .unwrap();
    let op = support::signed_up(&db, "op@example.com", true).await;
    catalog::add_version(&db, &op, "1.33.2", true)
        .await
        .unwrap();
    catalog::register_cluster(
        &portal,
        &op,
        &NewManagementCluster {
            name: "kubesim".into(),
            kind: ManagementClusterKind::Kamaji,
            provider_type: Some("local".into()),
            domain: "mgmt.example.com".into(),
            kubeconfig: sim.kubeconfig(),
            capacity: 10,
        },
    )
    .await
    .unwrap();
    let alice = support::signed_up(&db, "alice@example.com", false).await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();
    let created = platform::workspaces::create(
        &portal,
        &alice,
        project.id,
        &NewWorkspace::kubernetes("prod", "1.33.2", "local"),
    )
    .await
    .unwrap();
    let id = created.workspace.id;

    // Kill the portal while it waits for Kamaji's kubeconfig: the namespace
    // and the control plane exist, nothing after them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let step: Option<String> = sqlx::query_scalar(
            "SELECT s.state::text FROM tasks t JOIN task_steps s ON s.task_id = t.id
             WHERE t.workspace_id = $1 AND s.name = 'admin-kubeconfig'",
        )
        .bind(id)
        .fetch_optional(&db)
        .await
        .unwrap();
        if step.as_deref() == Some("running") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pipeline never reached the kubeconfig wait"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.signal(Signal::SIGKILL);
    first.exit_status(Duration::from_secs(10)).await;

    let mut second = launch();
    second.ready().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let state = loop {
        let state: WorkspaceState =
            sqlx::query_scalar("SELECT state FROM workspaces WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap();
        if state != WorkspaceState::Provisioning || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason: Option<String> =
        sqlx::query_scalar("SELECT failure_reason FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        state,
        WorkspaceState::Active,
        "{reason:?}\n{}",
        second.stderr()
    );
    let claims: i32 = sqlx::query_scalar("SELECT claims FROM tasks WHERE workspace_id = $1")
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(claims >= 2, "the second portal took the task over");
    assert_eq!(sim.tenants().len(), 1, "one tenant control plane");
    let name = format!("{id}.k8s.mgmt.example.com");
    assert_eq!(
        dns.records().iter().filter(|r| r.name == name).count(),
        1,
        "one DNS record"
    );
    second.signal(Signal::SIGTERM);
    second.exit_status(Duration::from_secs(30)).await;
    sim.shutdown().await;
}
