use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent::link::{Link, Outgoing};
use agent::shell::Shells;
use protocol::agent::{AgentMessage, ShellEnd, ShellFrame, ShellSessionId};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

fn session(n: u128) -> ShellSessionId {
    ShellSessionId(uuid::Uuid::from_u128(n))
}

fn shells() -> Shells {
    Shells::new(Link::new(), Some(PathBuf::from("/bin/sh")))
}

/// A stand-in for one connection's outbox.
struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    rx: mpsc::Receiver<Outgoing>,
}

impl Outbox {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel(64);
        Self { tx, rx }
    }

    async fn next(&mut self) -> Outgoing {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("something sent in time")
            .expect("outbox open")
    }

    async fn message(&mut self) -> AgentMessage {
        loop {
            if let Outgoing::Message(message) = self.next().await {
                return message;
            }
        }
    }

    /// Output of `id` until `needle` shows up; everything collected.
    async fn output_until(&mut self, id: ShellSessionId, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in {:?}",
                String::from_utf8_lossy(&seen)
            );
            match self.next().await {
                Outgoing::Frame(frame) => {
                    let frame = ShellFrame::decode(&frame).expect("frame");
                    assert_eq!(frame.session, id);
                    seen.extend_from_slice(frame.data);
                }
                Outgoing::Message(message) => panic!("unexpected {message:?}"),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Everything already queued, without waiting.
    fn drain(&mut self) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while let Ok(item) = self.rx.try_recv() {
            out.push(item);
        }
        out
    }
}

async fn input(shells: &Shells, id: ShellSessionId, text: &str) {
    shells
        .input(id, bytes::Bytes::copy_from_slice(text.as_bytes()))
        .await;
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.trim().chars().next())
        })
        .is_some_and(|state| state != 'Z')
}

#[tokio::test]
async fn a_session_runs_detaches_replays_and_closes() {
    let shells = shells();
    let id = session(1);
    let mut first = Outbox::new();
    shells
        .attach(id, 80, 24, Duration::ZERO, first.tx.clone())
        .await;
    assert_eq!(
        first.message().await,
        AgentMessage::ShellReady {
            session: id,
            reattached: false
        }
    );
    input(&shells, id, "echo hello-$((1+1))\n").await;
    first.output_until(id, "hello-2").await;

    shells.resize(id, 120, 40).expect("resize");
    input(&shells, id, "stty size; echo pid-$$-end-$((0+1))\n").await;
    let out = first.output_until(id, "-end-1").await;
    assert!(out.contains("40 120"), "{out}");
    let pid: u32 = out
        .rsplit("pid-")
        .next()
        .and_then(|rest| rest.split("-end-1").next())
        .and_then(|pid| pid.parse().ok())
        .expect("shell pid");
    assert!(pid_alive(pid));

    // Output produced while detached goes only to the ring.
    shells.detach(id).await;
    first.drain();
    input(&shells, id, "echo away-$((2+3))\n").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        first.drain().is_empty(),
        "a detached session must not send live output"
    );

    let mut second = Outbox::new();
    shells
        .attach(id, 100, 30, Duration::ZERO, second.tx.clone())
        .await;
    assert_eq!(
        second.message().await,
        AgentMessage::ShellReady {
            session: id,
            reattached: true
        }
    );
    let replay = second.output_until(id, "away-5").await;
    assert!(
        replay.contains("hello-2"),
        "the replay holds earlier output too"
    );

    shells.close(id);
    let closed = second.message().await;
    assert_eq!(
        closed,
        AgentMessage::ShellClosed {
            session: id,
            exit_code: None,
            reason: ShellEnd::Closed
        }
    );
    assert!(shells.is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "shell {pid} still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A late attach learns that the session is over instead of getting a
    // fresh shell under the old id.
    let mut late = Outbox::new();
    shells
        .attach(id, 80, 24, Duration::ZERO, late.tx.clone())
        .await;
    assert_eq!(late.message().await, closed);
    assert!(shells.is_empty());
}

#[tokio::test]
async fn a_shell_that_exits_reports_its_code() {
    let shells = shells();
    let id = session(2);
    let mut outbox = Outbox::new();
    shells
        .attach(id, 80, 24, Duration::ZERO, outbox.tx.clone())
        .await;
    input(&shells, id, "exit 7\n").await;
    let closed = loop {
        if let Outgoing::Message(message) = outbox.next().await
            && matches!(message, AgentMessage::ShellClosed { .. })
        {
            break message;
        }
    };
    assert_eq!(
        closed,
        AgentMessage::ShellClosed {
            session: id,
            exit_code: Some(7),
            reason: ShellEnd::Exited
        }
    );
    assert!(shells.is_empty());
}

#[tokio::test]
async fn an_idle_session_is_ended() {
    let shells = shells();
    let id = session(3);
    let mut outbox = Outbox::new();
    let started = Instant::now();
    shells
        .attach(id, 80, 24, Duration::from_secs(1), outbox.tx.clone())
        .await;
    let closed = loop {
        if let Outgoing::Message(message) = outbox.next().await
            && matches!(message, AgentMessage::ShellClosed { .. })
        {
            break message;
        }
    };
    assert_eq!(
        closed,
        AgentMessage::ShellClosed {
            session: id,
            exit_code: None,
            reason: ShellEnd::Idle
        }
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_shell_that_cannot_start_fails() {
    let shells = Shells::new(Link::new(), Some(PathBuf::from("/nonexistent/shell")));
    let id = session(4);
    let mut outbox = Outbox::new();
    shells
        .attach(id, 80, 24, Duration::ZERO, outbox.tx.clone())
        .await;
    match outbox.message().await {
        AgentMessage::ShellFailed { session, error } => {
            assert_eq!(session, id);
            assert!(error.contains("/nonexistent/shell"), "{error}");
        }
        other => panic!("expected ShellFailed, got {other:?}"),
    }
    assert!(shells.is_empty());
}

#[tokio::test]
async fn a_session_ending_while_detached_reports_on_the_link() {
    let link = Link::new();
    let (tx, mut rx) = mpsc::channel(16);
    let shells = Shells::new(link.clone(), Some(PathBuf::from("/bin/sh")));
    let id = session(5);
    let outbox = Outbox::new();
    shells
        .attach(id, 80, 24, Duration::ZERO, outbox.tx.clone())
        .await;
    shells.detach(id).await;
    link.set(Some(tx));
    input(&shells, id, "exit 3\n").await;
    let closed = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(
        closed,
        Outgoing::Message(AgentMessage::ShellClosed {
            session: id,
            exit_code: Some(3),
            reason: ShellEnd::Exited
        })
    );
    drop(outbox);
}

#[tokio::test]
async fn bulk_output_arrives_whole_and_the_ring_keeps_the_tail() {
    const BYTES: usize = 20_000_000;
    let shells = shells();
    let id = session(6);
    let mut outbox = Outbox::new();
    shells
        .attach(id, 80, 24, Duration::ZERO, outbox.tx.clone())
        .await;
    assert!(matches!(
        outbox.message().await,
        AgentMessage::ShellReady { .. }
    ));
    let started = Instant::now();
    // NUL bytes pass the terminal unchanged and appear nowhere else.
    input(
        &shells,
        id,
        &format!("head -c {BYTES} /dev/zero; echo; echo done-$((6*7))\n"),
    )
    .await;
    let mut zeros = 0;
    let mut frames = 0;
    let mut tail = Vec::new();
    while !String::from_utf8_lossy(&tail).contains("done-42") {
        assert!(started.elapsed() < Duration::from_secs(60), "too slow");
        if let Outgoing::Frame(frame) = outbox.next().await {
            let frame = ShellFrame::decode(&frame).expect("frame");
            frames += 1;
            zeros += frame.data.iter().filter(|b| **b == 0).count();
            tail.extend_from_slice(frame.data);
            let keep = tail.len().saturating_sub(64);
            tail.drain(..keep);
        }
    }
    let took = started.elapsed();
    assert_eq!(zeros, BYTES);
    eprintln!(
        "{BYTES} bytes in {frames} frames, {took:?}: {:.0} MB/s",
        BYTES as f64 / took.as_secs_f64() / 1e6
    );
    assert!(frames < BYTES / 1024, "output must travel in large chunks");

    // A reattach replays only the last 256 KiB.
    let mut again = Outbox::new();
    shells.detach(id).await;
    shells
        .attach(id, 80, 24, Duration::ZERO, again.tx.clone())
        .await;
    let mut replayed = 0;
    for item in again.drain() {
        if let Outgoing::Frame(frame) = item {
            replayed += frame.len() - ShellFrame::HEADER;
        }
    }
    assert_eq!(replayed, agent::shell::ring::RING_CAPACITY);
    shells.shutdown().await;
    assert!(shells.is_empty());
}
