mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use agent::update::{self, UpdateError};
use agent::{CancellationToken, Config, Stopped, TokenSource};
use common::{FakePortal, TempDir, sha256_hex, write_script};

const OLD: &str = "#!/bin/sh\necho loopback-agent 0.1.0\n";
const NEW: &str = "#!/bin/sh\necho loopback-agent 9.9.9\n";
const BROKEN: &str = "#!/bin/sh\nexit 1\n";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

#[tokio::test]
async fn a_wrong_checksum_is_refused_and_nothing_is_replaced() {
    let portal = FakePortal::start().await;
    let dir = TempDir::new("update-mismatch");
    let exe = dir.path().join("loopback-agent");
    write_script(&exe, OLD);
    let url = portal.serve_file("agent", NEW.as_bytes().to_vec());

    let wrong = sha256_hex(b"something else");
    let err = update::fetch_and_install(&client(), &exe, &url, &wrong)
        .await
        .expect_err("mismatch refused");
    assert!(matches!(err, UpdateError::Mismatch { .. }), "{err}");
    assert_eq!(read(&exe), OLD);
    assert!(!update::staging_path(&exe).exists(), "staged file removed");
    assert!(!update::previous_path(&exe).exists());

    let err = update::fetch_and_install(&client(), &exe, &url, "not-hex")
        .await
        .expect_err("bad checksum refused");
    assert!(matches!(err, UpdateError::BadChecksum), "{err}");

    let missing = format!("{}files/missing", portal.url);
    let err = update::fetch_and_install(&client(), &exe, &missing, &sha256_hex(b""))
        .await
        .expect_err("404 refused");
    assert!(
        matches!(err, UpdateError::Status { status: 404, .. }),
        "{err}"
    );
    assert_eq!(read(&exe), OLD);
}

#[tokio::test]
async fn a_verified_binary_is_installed_and_the_old_one_kept() {
    let portal = FakePortal::start().await;
    let dir = TempDir::new("update-install");
    let exe = dir.path().join("loopback-agent");
    write_script(&exe, OLD);
    let url = portal.serve_file("agent", NEW.as_bytes().to_vec());

    update::fetch_and_install(
        &client(),
        &exe,
        &url,
        &sha256_hex(NEW.as_bytes()).to_uppercase(),
    )
    .await
    .expect("installed");
    assert_eq!(read(&exe), NEW);
    assert_eq!(read(&update::previous_path(&exe)), OLD);
    let mode = std::fs::metadata(&exe).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(!update::staging_path(&exe).exists());

    update::rollback(&exe).expect("rolled back");
    assert_eq!(read(&exe), OLD);
    assert!(!update::previous_path(&exe).exists());
    let err = update::rollback(&exe).expect_err("nothing left to restore");
    assert!(matches!(err, UpdateError::NoPrevious(_)), "{err}");
}

#[tokio::test]
async fn a_binary_failing_its_smoke_test_is_not_installed() {
    let portal = FakePortal::start().await;
    let dir = TempDir::new("update-smoke");
    let exe = dir.path().join("loopback-agent");
    write_script(&exe, OLD);
    let url = portal.serve_file("agent", BROKEN.as_bytes().to_vec());

    let err = update::fetch_and_install(&client(), &exe, &url, &sha256_hex(BROKEN.as_bytes()))
        .await
        .expect_err("smoke test fails");
    assert!(matches!(err, UpdateError::SmokeTest(_)), "{err}");
    assert_eq!(read(&exe), OLD);
    assert!(!update::staging_path(&exe).exists());
    assert!(!update::previous_path(&exe).exists());
}

#[tokio::test]
async fn the_smoke_test_has_a_time_limit() {
    let dir = TempDir::new("update-hang");
    let binary = dir.path().join("hangs");
    write_script(&binary, "#!/bin/sh\nsleep 30\n");
    let started = Instant::now();
    let err = update::smoke_test(&binary, Duration::from_millis(500))
        .await
        .expect_err("times out");
    assert!(matches!(err, UpdateError::SmokeTest(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn install_swaps_and_rollback_restores() {
    let dir = TempDir::new("update-swap");
    let exe = dir.path().join("agent");
    let new = dir.path().join("agent.download");
    std::fs::write(&exe, "v1").expect("write");
    std::fs::write(&new, "v2").expect("write");
    update::install(&new, &exe).expect("install");
    assert_eq!(read(&exe), "v2");
    assert_eq!(read(&update::previous_path(&exe)), "v1");
    assert!(!new.exists());

    // A second update replaces the kept binary with the one just running.
    std::fs::write(&new, "v3").expect("write");
    update::install(&new, &exe).expect("install");
    assert_eq!(read(&exe), "v3");
    assert_eq!(read(&update::previous_path(&exe)), "v2");

    update::rollback(&exe).expect("rollback");
    assert_eq!(read(&exe), "v2");
}

#[tokio::test]
async fn an_update_that_never_connects_rolls_back() {
    let dir = TempDir::new("update-rollback");
    let exe = dir.path().join("loopback-agent");
    std::fs::write(&exe, "new").expect("write");
    std::fs::write(update::previous_path(&exe), "old").expect("write");

    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut config = Config::new(
        format!("http://127.0.0.1:{port}").parse().expect("url"),
        TokenSource::Value("token".into()),
    );
    config.executable = Some(exe.clone());
    config.rollback_after = Some(Duration::from_millis(800));
    config.backoff.initial = Duration::from_millis(50);
    config.backoff.max = Duration::from_millis(200);

    let started = Instant::now();
    let stopped = tokio::time::timeout(
        Duration::from_secs(10),
        agent::run(config, CancellationToken::new()),
    )
    .await
    .expect("rolls back in time")
    .expect("runs");
    assert_eq!(
        stopped,
        Stopped::RolledBack {
            executable: exe.clone()
        }
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(read(&exe), "old");
}

#[tokio::test]
async fn a_welcomed_update_does_not_roll_back() {
    let mut portal = FakePortal::start().await;
    let dir = TempDir::new("update-welcomed");
    let exe = dir.path().join("loopback-agent");
    std::fs::write(&exe, "new").expect("write");
    std::fs::write(update::previous_path(&exe), "old").expect("write");
    let mut config = Config::new(portal.url.clone(), TokenSource::Value("token".into()));
    config.executable = Some(exe.clone());
    config.rollback_after = Some(Duration::from_millis(800));
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(config, stop.clone()));

    let mut conn = portal.accept().await;
    conn.send(&protocol::agent::PortalMessage::Welcome {
        heartbeat_interval_secs: 1,
    })
    .await;
    // Stay connected well past the rollback window.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        conn.recv().await.expect("still connected");
    }
    stop.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops in time")
        .expect("task")
        .expect("runs");
    assert_eq!(stopped, Stopped::Shutdown);
    assert_eq!(read(&exe), "new");
}
