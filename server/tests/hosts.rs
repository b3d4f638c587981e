//! Hosts end to end with the real binaries: a portal with the `local`
//! provider orders a host over REST, the host's `loopback-agent` process
//! connects and heartbeats, and the host shows online. Revoking its token
//! disconnects it within seconds and keeps it out; wrong tokens are refused
//! and, past a limit, rate-limited.

mod support;

use std::time::{Duration, Instant};

use platform::tenancy::{organizations, projects};
use protocol::views::{HostDetails, OrderedHost, Verification};
use serde_json::json;
use sqlx::PgPool;
use support::{Launch, fresh_database};

async fn host(client: &reqwest::Client, base: &str, key: &str, id: &str) -> HostDetails {
    client
        .get(format!("{base}/api/v1/hosts/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A portal with local hosts (and, with `kubesim`, the local management
/// cluster), a verified organization and an API key for it.
struct Setup {
    portal: support::Portal,
    db: PgPool,
    alice: platform::authz::Actor,
    key: String,
    base: String,
    client: reqwest::Client,
    project: protocol::ids::ProjectId,
}

async fn setup(kubesim: bool) -> Setup {
    let url = fresh_database().await;
    let mut launch = Launch::with_database(url.clone())
        .arg("--local-hosts")
        .arg("--agent-bin")
        .arg(support::agent_bin().to_str().unwrap())
        .arg("--agent-heartbeat-secs")
        .arg("1");
    if kubesim {
        let port = support::free_addr().port().to_string();
        launch = launch
            .arg("--local-kubesim-port")
            .arg(&port)
            .arg("--local-kubesim-delay-ms")
            .arg("200");
    }
    let mut portal = launch.spawn();
    portal.ready().await;
    let base = portal.url("");
    let db = PgPool::connect(&url).await.unwrap();
    let op = support::signed_up(&db, "op@example.com", true).await;
    let alice = support::signed_up(&db, "alice@example.com", false).await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();
    let key = platform::identity::api_keys::create(&db, &alice, "automation", None)
        .await
        .unwrap()
        .secret;
    Setup {
        portal,
        db,
        alice,
        key,
        base,
        client: reqwest::Client::new(),
        project: project.id,
    }
}

impl Setup {
    /// Creates a workspace over REST and waits until it is active.
    async fn workspace(&self, body: serde_json::Value) -> String {
        let workspace: serde_json::Value = self
            .client
            .post(format!(
                "{}/api/v1/projects/{}/workspaces",
                self.base, self.project
            ))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = workspace["workspace"]["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state: String =
                sqlx::query_scalar("SELECT state::text FROM workspaces WHERE id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&self.db)
                    .await
                    .unwrap();
            if state == "active" {
                return id;
            }
            assert!(Instant::now() < deadline, "the workspace stayed {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Orders a host of the local profile and waits until it runs online.
    async fn running_host(&self, workspace: &str, hostname: &str) -> HostDetails {
        let profile: uuid::Uuid =
            sqlx::query_scalar("SELECT id FROM compute_profiles WHERE provider_kind = 'local'")
                .fetch_one(&self.db)
                .await
                .unwrap();
        let ordered: OrderedHost = self
            .client
            .post(format!("{}/api/v1/workspaces/{workspace}/hosts", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "hostname": hostname, "compute_profile": profile }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = ordered.host.to_string();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let details = host(&self.client, &self.base, &self.key, &id).await;
            if details.host.online && details.host.state == protocol::views::HostState::Running {
                return details;
            }
            assert!(
                Instant::now() < deadline,
                "the host never came online: {:?}\n{}",
                details.host,
                self.portal.stderr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn a_local_host_comes_online_and_a_revoked_token_cuts_its_agent_off() {
    let s = setup(false).await;
    let workspace_id = s
        .workspace(json!({ "name": "metal", "kind": "baremetal" }))
        .await;
    let online = s.running_host(&workspace_id, "box-1").await;
    let (db, alice, client, base, key, portal) =
        (&s.db, &s.alice, &s.client, &s.base, &s.key, &s.portal);
    let ordered_host = online.host.id;
    let id = ordered_host.to_string();
    let facts = online.facts.expect("the heartbeat carries facts");
    assert!(facts.memory_total_bytes > 0);
    assert!(!facts.kernel.is_empty());
    assert_eq!(online.tokens.len(), 1);

    // Revoke the token (as the host page does): the agent is cut off and
    // the host goes offline within seconds, and stays so.
    let token = online.tokens[0].id;
    let revoked_at = Instant::now();
    platform::hosts::tokens::revoke(db, alice, ordered_host, token)
        .await
        .unwrap();
    loop {
        let details = host(client, base, key, &id).await;
        if !details.host.online {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "the revoked agent is still online"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!host(client, base, key, &id).await.host.online);
    let log =
        std::fs::read_to_string(portal.data_dir.join("hosts/box-1/agent.log")).unwrap_or_default();
    assert!(
        log.contains("revoked") || log.contains("refused") || log.contains("401"),
        "the agent hears why: {log}"
    );

    // Wrong tokens: refused, then rate-limited.
    let mut statuses = Vec::new();
    for _ in 0..14 {
        let answer = client
            .get(format!("{base}/agent/v1/connect"))
            .header("x-loopback-agent-protocol", "1")
            .bearer_auth("lba_not-a-token")
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // Deleting the host stops its agent process and removes its directory.
    client
        .delete(format!("{base}/api/v1/hosts/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while portal.data_dir.join("hosts/box-1").exists() {
        assert!(Instant::now() < deadline, "the local host was not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    portal.signal(nix::sys::signal::Signal::SIGTERM);
}

#[tokio::test]
async fn a_local_host_joins_a_kubernetes_workspace_with_a_bootstrap_token() {
    let s = setup(true).await;
    let workspace_id = s
        .workspace(json!({
            "name": "kube", "kind": "kubernetes", "version": "1.33.2",
            "provider_type": "local", "sizing": "single_node",
        }))
        .await;
    let joined = s.running_host(&workspace_id, "node-1").await;
    // The order's join step ran `kubeadm join` on the host with a token it
    // created in the tenant, then saw the node registered.
    let task = joined.task.expect("the order task");
    let output: serde_json::Value = sqlx::query_scalar(
        "SELECT output FROM task_steps WHERE task_id = $1 AND name = 'join cluster'",
    )
    .bind(task)
    .fetch_one(&s.db)
    .await
    .unwrap();
    assert_eq!(output["node"], "node-1");
    s.portal.signal(nix::sys::signal::Signal::SIGTERM);
}
