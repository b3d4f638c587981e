//! Hosts end to end with the real binaries: a portal with the `local`
//! provider orders a host over REST, the host's `loopback-agent` process
//! connects and heartbeats, and the host shows online. Revoking its token
//! disconnects it within seconds and keeps it out; wrong tokens are refused
//! and, past a limit, rate-limited.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::local_portal::{self, LocalPortal};

/// A portal with local hosts and, with `kubesim`, the local management
/// cluster.
async fn setup(kubesim: bool) -> LocalPortal {
    local_portal::start(|launch| {
        if kubesim {
            let port = support::free_addr().port().to_string();
            launch
                .arg("--local-kubesim-port")
                .arg(&port)
                .arg("--local-kubesim-delay-ms")
                .arg("200")
        } else {
            launch
        }
    })
    .await
}

#[tokio::test]
async fn a_local_host_comes_online_and_a_revoked_token_cuts_its_agent_off() {
    let s = setup(false).await;
    let (workspace_id, _) = s
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
        let details = s.host(&id).await;
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
    assert!(!s.host(&id).await.host.online);
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
    let (workspace_id, _) = s
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
