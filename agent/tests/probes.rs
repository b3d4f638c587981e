//! Agent-backed monitoring: the agent runs the probes the portal sends and
//! answers each with its result; heartbeats carry CPU usage from the
//! second one on.

mod common;

use std::time::Duration;

use agent::{CancellationToken, Config, TokenSource};
use common::{FakePortal, Incoming};
use protocol::agent::{AgentMessage, PortalMessage, ProbeId};
use protocol::views::monitoring::{ProbeOutcome, ProbeSpec, TcpProbe, TlsProbe};

fn tcp(port: u16) -> ProbeSpec {
    ProbeSpec::Tcp(TcpProbe {
        host: "127.0.0.1".into(),
        port,
        timeout_ms: 1000,
    })
}

#[tokio::test]
async fn probes_are_answered_each_on_their_own_and_heartbeats_carry_cpu() {
    let mut portal = FakePortal::start().await;
    let config = Config::new(portal.url.clone(), TokenSource::Value("t".into()));
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(config, stop.clone()));
    let mut conn = portal.accept().await;
    conn.send(&PortalMessage::Welcome {
        heartbeat_interval_secs: 1,
    })
    .await;

    let mut cpu = Vec::new();
    for _ in 0..2 {
        let facts = conn
            .until(|incoming| match incoming {
                Incoming::Message(AgentMessage::Heartbeat { facts, .. }) => Some(facts.clone()),
                _ => None,
            })
            .await;
        cpu.push(facts.cpu_percent);
    }
    assert_eq!(cpu[0], None, "no earlier sample for the first heartbeat");
    assert!(
        cpu[1].is_some_and(|c| (0.0..=100.0).contains(&c)),
        "{cpu:?}"
    );

    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    // A port that accepts and never speaks TLS: its probe runs into its
    // timeout while the quick one answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let slow = ProbeId(uuid::Uuid::from_u128(1));
    let quick = ProbeId(uuid::Uuid::from_u128(2));
    conn.send(&PortalMessage::Probe {
        id: slow,
        spec: ProbeSpec::Tls(TlsProbe {
            host: "127.0.0.1".into(),
            port: silent_port,
            server_name: None,
            timeout_ms: 1500,
        }),
    })
    .await;
    conn.send(&PortalMessage::Probe {
        id: quick,
        spec: tcp(open_port),
    })
    .await;
    let mut answers: Vec<(ProbeId, ProbeOutcome)> = Vec::new();
    while answers.len() < 2 {
        let answer = conn
            .until(|incoming| match incoming {
                Incoming::Message(AgentMessage::ProbeResult { id, outcome }) => {
                    Some((*id, outcome.clone()))
                }
                _ => None,
            })
            .await;
        answers.push(answer);
    }
    assert_eq!(
        answers[0].0, quick,
        "the quick probe does not wait for the slow one"
    );
    assert!(answers[0].1.ok, "{answers:?}");
    assert_eq!(answers[1].0, slow);
    assert_eq!(
        answers[1].1.error.as_deref(),
        Some("timed out after 1500 ms")
    );

    // Portal-only kinds are refused with a reason, not ignored.
    let host = ProbeId(uuid::Uuid::from_u128(3));
    conn.send(&PortalMessage::Probe {
        id: host,
        spec: ProbeSpec::Host(protocol::views::monitoring::HostProbe {
            host: protocol::ids::HostId(uuid::Uuid::from_u128(9)),
        }),
    })
    .await;
    let refused = conn
        .until(|incoming| match incoming {
            Incoming::Message(AgentMessage::ProbeResult { id, outcome }) if *id == host => {
                Some(outcome.clone())
            }
            _ => None,
        })
        .await;
    assert!(!refused.ok);
    assert!(refused.error.is_some_and(|e| e.contains("portal only")));

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
    drop((open, silent));
}
