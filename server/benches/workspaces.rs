//! Workspace figures, printed: submit-to-active time against kubesim with
//! no Kamaji delay; 100 workspaces created at once; and the server render of
//! the workspace list page with 10,000 workspaces in one organization.
//!
//! Run with `scripts/bench workspaces` (starts PostgreSQL, builds in release).

use std::time::{Duration, Instant};

use platform::kubernetes::catalog;
use platform::tenancy::{organizations, projects};
use protocol::ids::{ProjectId, WorkspaceId};
use protocol::views::{
    ManagementClusterKind, NewManagementCluster, NewWorkspace, Verification, WorkspaceState,
};
use sqlx::PgPool;

#[path = "../tests/support/mod.rs"]
mod support;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn until_active(db: &PgPool, ids: &[WorkspaceId]) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workspaces WHERE id = ANY($1) AND state = 'active'",
        )
        .bind(ids)
        .fetch_one(db)
        .await
        .unwrap();
        if active == ids.len() as i64 {
            return;
        }
        let failed: Option<String> = sqlx::query_scalar(
            "SELECT failure_reason FROM workspaces WHERE id = ANY($1) AND state = 'failed' LIMIT 1",
        )
        .bind(ids)
        .fetch_optional(db)
        .await
        .unwrap()
        .flatten();
        assert!(failed.is_none(), "a workspace failed: {failed:?}");
        assert!(
            Instant::now() < deadline,
            "not all active within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let url = support::fresh_database().await;
    let sim = kubesim::start(kubesim::Config {
        kamaji: kubesim::Kamaji {
            ready_delay: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let key_file = support::temp_dir("key").join("secret.key");
    let secrets = platform::SecretBox::load_or_create(&key_file).unwrap();
    let mut portal_process = support::Launch::with_database(url.clone())
        .arg("--secret-key-file")
        .arg(key_file.to_str().unwrap())
        .arg("--drift-interval-secs")
        .arg("3600")
        .spawn();
    portal_process.ready().await;
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
            capacity: 100_000,
        },
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let base = portal_process.url("");
    let base = base.trim_end_matches('/');
    let cookie = support::sign_up(&client, base, "alice@example.com").await;
    let alice_id: protocol::ids::AccountId =
        sqlx::query_scalar("SELECT id FROM accounts WHERE email = 'alice@example.com'")
            .fetch_one(&db)
            .await
            .unwrap();
    let alice = platform::identity::find(&db, alice_id)
        .await
        .unwrap()
        .unwrap()
        .actor(Default::default());
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();
    let create = |name: String, project: ProjectId| {
        let (portal, alice) = (portal.clone(), alice.clone());
        async move {
            platform::workspaces::create(
                &portal,
                &alice,
                project,
                &NewWorkspace::kubernetes(name, "1.33.2", "local"),
            )
            .await
            .unwrap()
            .workspace
            .id
        }
    };

    // One at a time: submit to active.
    let mut times = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let id = create(format!("single-{i}"), project.id).await;
        until_active(&db, &[id]).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "submit to active, one workspace against kubesim (no Kamaji delay): p50 {:.0} ms, max {:.0} ms over {} workspaces",
        percentile(&times, 0.5),
        times[times.len() - 1],
        times.len()
    );

    // 100 at once.
    let batch = projects::create(&db, &alice, org.id, "Batch")
        .await
        .unwrap();
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(create(format!("batch-{i}"), batch.id).await);
    }
    let submitted = started.elapsed();
    until_active(&db, &ids).await;
    let state: Vec<WorkspaceState> =
        sqlx::query_scalar("SELECT state FROM workspaces WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(state.iter().all(|s| *s == WorkspaceState::Active));
    println!(
        "100 workspaces created at once: all active {:.1} s after the first submit (submitting took {:.1} s; {} tenant API servers running)",
        started.elapsed().as_secs_f64(),
        submitted.as_secs_f64(),
        sim.tenants().len()
    );

    // The list page with 10,000 workspaces in one organization.
    let big = projects::create(&db, &alice, org.id, "Big").await.unwrap();
    sqlx::query(
        "INSERT INTO workspaces (id, project_id, name, kind, state)
         SELECT gen_random_uuid(), $1, 'ws-' || lpad(i::text, 5, '0'), 'baremetal', 'active'
         FROM generate_series(1, 10000) AS i",
    )
    .bind(big.id)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("ANALYZE workspaces")
        .execute(&db)
        .await
        .unwrap();
    let pages = [1u32, 2, 250, 500];
    let mut samples = Vec::new();
    for round in 0..60 {
        for page in pages {
            let started = Instant::now();
            let response = client
                .get(format!("{base}/workspaces?page={page}"))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            let body = response.text().await.unwrap();
            if round >= 5 {
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            assert!(
                body.contains("href=\"/workspaces/"),
                "page {page} lists workspaces"
            );
        }
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "workspace list page, server render with 10,105 workspaces in one organization ({} requests over pages {pages:?}): p50 {:.2} ms, p99 {:.2} ms",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
    drop(portal_process);
    sim.shutdown().await;
}
