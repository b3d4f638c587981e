//! The agent against a fake portal over a real WebSocket.

mod common;

use std::time::{Duration, Instant};

use agent::{BackoffPolicy, CancellationToken, Config, Stopped, TokenSource};
use common::{FakePortal, Incoming, TempDir, WAIT, sha256_hex, write_script};
use protocol::agent::{
    AgentMessage, CommandId, OutputStream, PROTOCOL_HEADER, PortalMessage, ShellEnd,
    ShellSessionId, VERSION_HEADER,
};

fn fast_backoff() -> BackoffPolicy {
    BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(800),
        stable_after: Duration::from_secs(30),
    }
}

const WELCOME: PortalMessage = PortalMessage::Welcome {
    heartbeat_interval_secs: 1,
};

#[tokio::test]
async fn the_agent_serves_a_portal_and_survives_reconnects() {
    let mut portal = FakePortal::start().await;
    let dir = TempDir::new("e2e");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "  secret-token\n").expect("token");
    let mut config = Config::new(portal.url.clone(), TokenSource::File(token_file));
    config.backoff = fast_backoff();
    config.shell_program = Some("/bin/sh".into());
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(config, stop.clone()));

    // Handshake headers, then heartbeats every second with facts.
    let mut conn = portal.accept().await;
    assert_eq!(
        conn.header("authorization").as_deref(),
        Some("Bearer secret-token")
    );
    assert_eq!(
        conn.header(PROTOCOL_HEADER),
        Some(protocol::AGENT_PROTOCOL_VERSION.to_string())
    );
    assert_eq!(conn.header(VERSION_HEADER).as_deref(), Some(agent::VERSION));
    conn.send(&WELCOME).await;
    let started = Instant::now();
    for _ in 0..2 {
        let (facts, build) = conn
            .until(|incoming| match incoming {
                Incoming::Message(AgentMessage::Heartbeat { facts, build }) => {
                    Some((facts.clone(), build.clone()))
                }
                _ => None,
            })
            .await;
        assert!(!facts.hostname.is_empty());
        assert!(facts.memory_total_bytes > 0 && facts.cpus > 0);
        assert_eq!(build, agent::build_info());
    }
    let two = started.elapsed();
    assert!(
        two >= Duration::from_millis(800) && two < Duration::from_secs(4),
        "two heartbeats one interval apart, took {two:?}"
    );

    // A command streams its output, then its exit.
    let id = CommandId(uuid::Uuid::from_u128(42));
    conn.send(&PortalMessage::RunCommand {
        id,
        command: "echo out; echo err >&2; exit 4".into(),
        timeout_secs: 10,
    })
    .await;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let exit = conn
        .until(|incoming| match incoming {
            Incoming::Message(AgentMessage::CommandOutput {
                id: got,
                stream,
                data,
            }) if *got == id => {
                match stream {
                    OutputStream::Stdout => stdout.push_str(data),
                    OutputStream::Stderr => stderr.push_str(data),
                }
                None
            }
            Incoming::Message(exit @ AgentMessage::CommandExited { .. }) => Some(exit.clone()),
            _ => None,
        })
        .await;
    assert_eq!((stdout.as_str(), stderr.as_str()), ("out\n", "err\n"));
    assert_eq!(
        exit,
        AgentMessage::CommandExited {
            id,
            exit_code: Some(4),
            timed_out: false,
            error: None
        }
    );

    // A shell.
    let session = ShellSessionId(uuid::Uuid::from_u128(7));
    conn.send(&PortalMessage::ShellAttach {
        session,
        cols: 80,
        rows: 24,
        idle_timeout_secs: 600,
    })
    .await;
    conn.until(|incoming| {
        matches!(incoming, Incoming::Message(AgentMessage::ShellReady { session: s, reattached: false }) if *s == session)
            .then_some(())
    })
    .await;
    conn.send_input(session, b"echo hello-$((1+1))\n").await;
    conn.output_until(session, "hello-2").await;
    conn.send(&PortalMessage::ShellResize {
        session,
        cols: 132,
        rows: 43,
    })
    .await;

    // Without the agent's own update target, updates are refused.
    conn.send(&PortalMessage::Update {
        version: "9.9.9".into(),
        url: format!("{}files/none", portal.url),
        sha256: sha256_hex(b""),
    })
    .await;
    let error = conn
        .until(|incoming| match incoming {
            Incoming::Message(AgentMessage::UpdateFailed { version, error }) => {
                assert_eq!(version, "9.9.9");
                Some(error.clone())
            }
            _ => None,
        })
        .await;
    assert!(error.contains("disabled"), "{error}");

    // The portal goes away; the agent comes back and the shell is still
    // there, with what it printed while nobody watched.
    drop(conn);
    let dropped = Instant::now();
    let mut conn = portal.accept().await;
    assert!(dropped.elapsed() < Duration::from_secs(5));
    conn.send(&WELCOME).await;
    conn.send(&PortalMessage::ShellAttach {
        session,
        cols: 132,
        rows: 43,
        idle_timeout_secs: 600,
    })
    .await;
    conn.until(|incoming| {
        matches!(incoming, Incoming::Message(AgentMessage::ShellReady { session: s, reattached: true }) if *s == session)
            .then_some(())
    })
    .await;
    conn.output_until(session, "hello-2").await;
    conn.send_input(session, b"stty size; echo again-$((3*3))\n")
        .await;
    let out = conn.output_until(session, "again-9").await;
    assert!(out.contains("43 132"), "resize reached the terminal: {out}");

    // The token is refused (revoked): the agent keeps trying, at the max
    // backoff, and gets back in once it is accepted again.
    portal.refuse(true);
    drop(conn);
    let deadline = Instant::now() + WAIT;
    while portal.refusals().len() < 3 {
        assert!(Instant::now() < deadline, "the agent stopped retrying");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refusals = portal.refusals();
    for pair in refusals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(400),
            "refused agents back off at the max (half of it at least with jitter): {gap:?}"
        );
    }
    portal.refuse(false);
    let mut conn = portal.accept().await;
    conn.send(&WELCOME).await;
    conn.until(|incoming| {
        matches!(incoming, Incoming::Message(AgentMessage::Heartbeat { .. })).then_some(())
    })
    .await;

    // The portal closes the shell.
    conn.send(&PortalMessage::ShellAttach {
        session,
        cols: 80,
        rows: 24,
        idle_timeout_secs: 600,
    })
    .await;
    conn.send(&PortalMessage::ShellClose { session }).await;
    let closed = conn
        .until(|incoming| match incoming {
            Incoming::Message(closed @ AgentMessage::ShellClosed { .. }) => Some(closed.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        closed,
        AgentMessage::ShellClosed {
            session,
            exit_code: None,
            reason: ShellEnd::Closed
        }
    );

    stop.cancel();
    let stopped = tokio::time::timeout(WAIT, running)
        .await
        .expect("stops in time")
        .expect("task")
        .expect("runs");
    assert_eq!(stopped, Stopped::Shutdown);
}

#[tokio::test]
async fn an_update_is_verified_installed_and_reported_to_the_caller() {
    let mut portal = FakePortal::start().await;
    let dir = TempDir::new("e2e-update");
    let exe = dir.path().join("loopback-agent");
    write_script(&exe, "#!/bin/sh\necho old\n");
    let new = "#!/bin/sh\necho loopback-agent 9.9.9\n";
    let url = portal.serve_file("agent-9.9.9", new.as_bytes().to_vec());
    let mut config = Config::new(portal.url.clone(), TokenSource::Value("t".into()));
    config.backoff = fast_backoff();
    config.executable = Some(exe.clone());
    let running = tokio::spawn(agent::run(config, CancellationToken::new()));

    let mut conn = portal.accept().await;
    conn.send(&WELCOME).await;
    // A corrupted download is refused and the agent carries on.
    conn.send(&PortalMessage::Update {
        version: "9.9.9".into(),
        url: url.clone(),
        sha256: sha256_hex(b"not it"),
    })
    .await;
    let error = conn
        .until(|incoming| match incoming {
            Incoming::Message(AgentMessage::UpdateFailed { error, .. }) => Some(error.clone()),
            _ => None,
        })
        .await;
    assert!(error.contains("SHA-256 mismatch"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&exe).expect("read"),
        "#!/bin/sh\necho old\n"
    );

    conn.send(&PortalMessage::Update {
        version: "9.9.9".into(),
        url,
        sha256: sha256_hex(new.as_bytes()),
    })
    .await;
    let stopped = tokio::time::timeout(WAIT, running)
        .await
        .expect("restarts in time")
        .expect("task")
        .expect("runs");
    assert_eq!(
        stopped,
        Stopped::Updated {
            executable: exe.clone(),
            version: "9.9.9".into()
        }
    );
    assert_eq!(std::fs::read_to_string(&exe).expect("read"), new);
    assert_eq!(
        std::fs::read_to_string(agent::update::previous_path(&exe)).expect("read"),
        "#!/bin/sh\necho old\n"
    );
}

#[tokio::test]
async fn a_rolled_back_agent_reports_the_failed_update_after_its_first_heartbeat() {
    let mut portal = FakePortal::start().await;
    let mut config = Config::new(portal.url.clone(), TokenSource::Value("t".into()));
    config.initial_messages.push(AgentMessage::UpdateFailed {
        version: "9.9.9".into(),
        error: "rolled back".into(),
    });
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(config, stop.clone()));
    let mut conn = portal.accept().await;
    conn.send(&WELCOME).await;
    let first = conn.recv().await.expect("heartbeat");
    assert!(
        matches!(first, Incoming::Message(AgentMessage::Heartbeat { .. })),
        "{first:?}"
    );
    let second = conn.recv().await.expect("update failure");
    assert_eq!(
        second,
        Incoming::Message(AgentMessage::UpdateFailed {
            version: "9.9.9".into(),
            error: "rolled back".into()
        })
    );
    stop.cancel();
    let stopped = tokio::time::timeout(WAIT, running)
        .await
        .expect("stops")
        .expect("task")
        .expect("runs");
    assert_eq!(stopped, Stopped::Shutdown);
    // Nothing of the agent lingers: the link closes instead of heartbeating on.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while conn.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the connection outlived the agent");
}

#[tokio::test]
async fn bulk_shell_output_crosses_the_link_whole() {
    const BYTES: usize = 20_000_000;
    let mut portal = FakePortal::start().await;
    let mut config = Config::new(portal.url.clone(), TokenSource::Value("t".into()));
    config.shell_program = Some("/bin/sh".into());
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(config, stop.clone()));
    let mut conn = portal.accept().await;
    conn.send(&WELCOME).await;
    let session = ShellSessionId(uuid::Uuid::from_u128(9));
    conn.send(&PortalMessage::ShellAttach {
        session,
        cols: 80,
        rows: 24,
        idle_timeout_secs: 0,
    })
    .await;
    let started = Instant::now();
    conn.send_input(
        session,
        format!("head -c {BYTES} /dev/zero; echo; echo done-$((6*7))\n").as_bytes(),
    )
    .await;
    let mut zeros = 0;
    let mut tail = Vec::new();
    conn.until(|incoming| {
        if let Incoming::Frame(id, data) = incoming
            && *id == session
        {
            zeros += data.iter().filter(|b| **b == 0).count();
            tail.extend_from_slice(data);
            let keep = tail.len().saturating_sub(64);
            tail.drain(..keep);
            return String::from_utf8_lossy(&tail)
                .contains("done-42")
                .then_some(());
        }
        None
    })
    .await;
    let took = started.elapsed();
    assert_eq!(zeros, BYTES);
    eprintln!(
        "{BYTES} bytes over the link in {took:?}: {:.0} MB/s",
        BYTES as f64 / took.as_secs_f64() / 1e6
    );
    stop.cancel();
    let _ = tokio::time::timeout(WAIT, running).await.expect("stops");
}
