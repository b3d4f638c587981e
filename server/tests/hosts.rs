//! Hosts end to end with the real binaries: a portal with the `local`
//! provider orders a host over REST, the host's `loopback-agent` process
//! connects and heartbeats, and the host shows online. Revoking its token
//! disconnects it within seconds and keeps it out; wrong tokens are refused
//! and, past a limit, rate-limited.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use platform::tenancy::{organizations, projects};
use protocol::views::{HostDetails, OrderedHost, Verification};
use serde_json::json;
use sqlx::PgPool;
use support::{Launch, fresh_database};

fn agent_bin() -> PathBuf {
    let bin = PathBuf::from(support::bin())
        .parent()
        .expect("the portal binary has a directory")
        .join("loopback-agent");
    assert!(
        bin.is_file(),
        "{} is missing: cargo test --bins builds it",
        bin.display()
    );
    bin
}

async fn signed_up(db: &PgPool, email: &str, operator: bool) -> platform::authz::Actor {
    let account = platform::identity::sign_up(
        db,
        platform::identity::SignUp {
            email: email.into(),
            display_name: "Someone".into(),
            password: support::PASSWORD.into(),
        },
        &Default::default(),
    )
    .await
    .unwrap();
    if operator {
        sqlx::query("UPDATE accounts SET is_operator = true WHERE id = $1")
            .bind(account.id)
            .execute(db)
            .await
            .unwrap();
    }
    let mut actor = account.actor(Default::default());
    actor.is_operator = operator;
    actor
}

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

#[tokio::test]
async fn a_local_host_comes_online_and_a_revoked_token_cuts_its_agent_off() {
    let url = fresh_database().await;
    let mut portal = Launch::with_database(url.clone())
        .arg("--local-hosts")
        .arg("--agent-bin")
        .arg(agent_bin().to_str().unwrap())
        .arg("--agent-heartbeat-secs")
        .arg("1")
        .spawn();
    portal.ready().await;
    let base = portal.url("");
    let db = PgPool::connect(&url).await.unwrap();

    let op = signed_up(&db, "op@example.com", true).await;
    let alice = signed_up(&db, "alice@example.com", false).await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();
    let key = platform::identity::api_keys::create(&db, &alice, "automation", None)
        .await
        .unwrap()
        .secret;
    let client = reqwest::Client::new();
    let workspace: serde_json::Value = client
        .post(format!("{base}/api/v1/projects/{}/workspaces", project.id))
        .bearer_auth(&key)
        .json(&json!({ "name": "metal", "kind": "baremetal" }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let workspace_id = workspace["workspace"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: String =
            sqlx::query_scalar("SELECT state::text FROM workspaces WHERE id = $1::uuid")
                .bind(&workspace_id)
                .fetch_one(&db)
                .await
                .unwrap();
        if state == "active" {
            break;
        }
        assert!(Instant::now() < deadline, "the workspace stayed {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let profile: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM compute_profiles WHERE provider_kind = 'local'")
            .fetch_one(&db)
            .await
            .unwrap();

    let ordered: OrderedHost = client
        .post(format!("{base}/api/v1/workspaces/{workspace_id}/hosts"))
        .bearer_auth(&key)
        .json(&json!({ "hostname": "box-1", "compute_profile": profile }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = ordered.host.to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let online = loop {
        let details = host(&client, &base, &key, &id).await;
        if details.host.online && details.host.state == protocol::views::HostState::Running {
            break details;
        }
        assert!(
            Instant::now() < deadline,
            "the host never came online: {:?}\n{}",
            details.host,
            portal.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let facts = online.facts.expect("the heartbeat carries facts");
    assert!(facts.memory_total_bytes > 0);
    assert!(!facts.kernel.is_empty());
    assert_eq!(online.tokens.len(), 1);

    // Revoke the token (as the host page does): the agent is cut off and
    // the host goes offline within seconds, and stays so.
    let token = online.tokens[0].id;
    let revoked_at = Instant::now();
    platform::hosts::tokens::revoke(&db, &alice, ordered.host, token)
        .await
        .unwrap();
    loop {
        let details = host(&client, &base, &key, &id).await;
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
    assert!(!host(&client, &base, &key, &id).await.host.online);
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
        .bearer_auth(&key)
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
