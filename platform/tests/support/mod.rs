#![allow(dead_code)]

use platform::authz::{Actor, RequestMeta};
use platform::identity::{self, Account, SignUp};
use sqlx::PgPool;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn meta() -> RequestMeta {
    RequestMeta {
        ip: Some("192.0.2.10".parse().unwrap()),
        user_agent: Some("tests".into()),
    }
}

pub async fn account(db: &PgPool, email: &str) -> Account {
    identity::sign_up(
        db,
        SignUp {
            email: email.into(),
            display_name: email.split('@').next().unwrap().into(),
            password: PASSWORD.into(),
        },
        &meta(),
    )
    .await
    .expect("sign up")
}

pub async fn actor(db: &PgPool, email: &str) -> Actor {
    account(db, email).await.actor(meta())
}

pub async fn operator(db: &PgPool) -> Actor {
    let a = account(db, "operator@example.com").await;
    sqlx::query("UPDATE accounts SET is_operator = true WHERE id = $1")
        .bind(a.id)
        .execute(db)
        .await
        .unwrap();
    let mut actor = a.actor(meta());
    actor.is_operator = true;
    actor
}

pub async fn audit_actions(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log ORDER BY occurred_at, id")
        .fetch_all(db)
        .await
        .unwrap()
}

pub fn public_url() -> url::Url {
    url::Url::parse("http://localhost:3000").unwrap()
}

pub fn platform(db: &PgPool) -> platform::Platform {
    platform::Platform::new(
        db.clone(),
        platform::SecretBox::from_key([7; 32]),
        public_url(),
        platform::identity::SessionPolicy {
            idle: std::time::Duration::from_secs(3600),
            lifetime: std::time::Duration::from_secs(86_400),
        },
    )
    .unwrap()
}

/// A bare-metal workspace (no Kubernetes catalog needed).
pub async fn workspace(
    db: &PgPool,
    actor: &Actor,
    project: protocol::ids::ProjectId,
    name: &str,
) -> platform::Result<protocol::views::WorkspaceView> {
    platform::workspaces::create(
        &platform(db),
        actor,
        project,
        &protocol::views::NewWorkspace::baremetal(name),
    )
    .await
    .map(|c| c.workspace)
}

/// A kubesim whose Kamaji makes tenant control planes ready at once.
pub async fn instant_kubesim() -> kubesim::Kubesim {
    kubesim::start(kubesim::Config {
        kamaji: kubesim::Kamaji {
            ready_delay: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Provisioning settings for tests: no DNS, no managed network.
pub fn pipeline_settings() -> std::sync::Arc<platform::workspaces::pipeline::Settings> {
    std::sync::Arc::new(platform::workspaces::pipeline::Settings {
        oidc_issuer: "https://login.example.com".into(),
        dns: std::sync::Arc::new(platform::dns::Dns::None),
        kubeconfig_timeout: std::time::Duration::from_secs(20),
        health_timeout: std::time::Duration::from_secs(20),
        delete_on_late_failure: false,
        managed_network: false,
        portal_url: "http://localhost:3000".into(),
    })
}

/// Waits until provisioning made `workspace` active; panics if it failed.
pub async fn until_active(db: &PgPool, workspace: protocol::ids::WorkspaceId) {
    let started = std::time::Instant::now();
    loop {
        let state: protocol::views::WorkspaceState =
            sqlx::query_scalar("SELECT state FROM workspaces WHERE id = $1")
                .bind(workspace)
                .fetch_one(db)
                .await
                .unwrap();
        match state {
            protocol::views::WorkspaceState::Active => return,
            protocol::views::WorkspaceState::Initializing
            | protocol::views::WorkspaceState::Provisioning => {}
            other => panic!("the workspace became {other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Alice's verified organization with project "Web" and the Kubernetes
/// workspace "prod" on a kubesim management cluster.
pub struct KubernetesTenant {
    pub alice: Actor,
    pub organization: protocol::ids::OrganizationId,
    pub project: protocol::ids::ProjectId,
    pub workspace: protocol::ids::WorkspaceId,
}

/// Registers `sim` as the management cluster and creates a
/// [`KubernetesTenant`] on version 1.33.2, which the caller has added to the
/// catalog. Provisioning runs in the caller's task engine; the workspace is
/// returned as soon as it is created (see [`until_active`]).
pub async fn kubernetes_tenant(
    portal: &platform::Platform,
    op: &Actor,
    sim: &kubesim::Kubesim,
) -> KubernetesTenant {
    use protocol::views::{
        ManagementClusterKind, NewManagementCluster, NewWorkspace, Verification,
    };
    let db = portal.db();
    platform::kubernetes::catalog::register_cluster(
        portal,
        op,
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
    let alice = actor(db, "alice@example.com").await;
    let org = platform::tenancy::organizations::create(db, &alice, "Acme")
        .await
        .unwrap();
    platform::tenancy::organizations::set_verification(
        db,
        op,
        org.id,
        Verification::Verified,
        "ok",
    )
    .await
    .unwrap();
    let project = platform::tenancy::projects::create(db, &alice, org.id, "Web")
        .await
        .unwrap();
    let workspace = platform::workspaces::create(
        portal,
        &alice,
        project.id,
        &NewWorkspace::kubernetes("prod", "1.33.2", "local"),
    )
    .await
    .unwrap()
    .workspace
    .id;
    KubernetesTenant {
        alice,
        organization: org.id,
        project: project.id,
        workspace,
    }
}
