//! The real `loopback-agent` binary: restarts after an update, rollback,
//! signals and logging. Each test runs a copy in a temp directory, since
//! updates replace the executable they run from.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{FakePortal, TempDir, WAIT, sha256_hex, write_script};
use protocol::agent::PortalMessage;
use tokio::process::{Child, Command};

fn install_copy(dir: &Path) -> PathBuf {
    let exe = dir.join("loopback-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_loopback-agent"), &exe).expect("copy the agent binary");
    exe
}

fn token_file(dir: &Path) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, "token\n").expect("token");
    path
}

fn start(exe: &Path, portal: &str, token: &Path, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(exe);
    cmd.arg("--portal")
        .arg(portal)
        .arg("--token-file")
        .arg(token)
        .env("RUST_LOG", "info")
        .env_remove(agent::update::UPDATED_FROM_ENV)
        .env_remove(agent::update::ROLLED_BACK_FROM_ENV)
        .env_remove(agent::update::ROLLBACK_SECS_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.spawn().expect("start the agent")
}

async fn exits(child: Child) -> (std::process::ExitStatus, String) {
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the agent exits in time")
        .expect("wait");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn dead_port() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn an_update_restarts_into_the_new_binary_with_the_same_arguments() {
    let mut portal = FakePortal::start().await;
    let dir = TempDir::new("bin-update");
    let exe = install_copy(dir.path());
    let original = std::fs::read(&exe).expect("read");
    let token = token_file(dir.path());
    let marker = dir.path().join("marker");
    let new = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = --version ]; then echo loopback-agent 9.9.9; exit 0; fi\n\
         echo \"from=$LOOPBACK_AGENT_UPDATED_FROM args=$*\" > {}\n",
        marker.display()
    );
    let url = portal.serve_file("agent", new.clone().into_bytes());
    let portal_url = portal.url.to_string();
    let child = start(&exe, &portal_url, &token, &[]);

    let mut conn = portal.accept().await;
    conn.send(&PortalMessage::Welcome {
        heartbeat_interval_secs: 1,
    })
    .await;
    conn.send(&PortalMessage::Update {
        version: "9.9.9".into(),
        url,
        sha256: sha256_hex(new.as_bytes()),
    })
    .await;
    let (status, stderr) = exits(child).await;
    assert!(status.success(), "{status}: {stderr}");
    let marker = std::fs::read_to_string(&marker).expect("the new binary ran");
    assert_eq!(
        marker.trim(),
        format!(
            "from={} args=--portal {portal_url} --token-file {}",
            agent::VERSION,
            token.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&exe).expect("read"), new);
    assert!(std::fs::read(agent::update::previous_path(&exe)).expect("read") == original);
}

#[tokio::test]
async fn an_update_that_cannot_reach_the_portal_restores_and_restarts_the_previous_binary() {
    let dir = TempDir::new("bin-rollback");
    let exe = install_copy(dir.path());
    let token = token_file(dir.path());
    let marker = dir.path().join("marker");
    let previous = format!(
        "#!/bin/sh\n\
         echo \"failed=$LOOPBACK_AGENT_ROLLED_BACK_FROM updated=$LOOPBACK_AGENT_UPDATED_FROM\" > {}\n",
        marker.display()
    );
    write_script(&agent::update::previous_path(&exe), &previous);

    let child = start(
        &exe,
        &dead_port(),
        &token,
        &[
            (agent::update::UPDATED_FROM_ENV, "0.0.1"),
            (agent::update::ROLLBACK_SECS_ENV, "1"),
        ],
    );
    let (status, stderr) = exits(child).await;
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(
        std::fs::read_to_string(&marker)
            .expect("the previous binary ran")
            .trim(),
        format!("failed={} updated=", agent::VERSION)
    );
    assert_eq!(std::fs::read_to_string(&exe).expect("read"), previous);
    assert!(!agent::update::previous_path(&exe).exists());
}

#[tokio::test]
async fn a_refused_token_is_logged_and_sigterm_stops_the_agent() {
    let portal = FakePortal::start().await;
    portal.refuse(true);
    let dir = TempDir::new("bin-refused");
    let exe = install_copy(dir.path());
    let token = token_file(dir.path());
    let child = start(&exe, portal.url.as_str(), &token, &[]);
    let deadline = std::time::Instant::now() + WAIT;
    while portal.refusals().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no connection attempt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let (status, stderr) = exits(child).await;
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("agent token refused; it may have been revoked"),
        "{stderr}"
    );
    assert_eq!(
        portal.refusals().len(),
        1,
        "refused agents wait the max backoff"
    );
}
