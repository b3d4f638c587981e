//! The server binary as an operator meets it: configuration, health probes,
//! pages, bad settings, shutdown, and the private PostgreSQL.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nix::sys::signal::Signal;
use sqlx::{ConnectOptions, Connection};
use support::{Launch, fresh_database, run_to_exit, temp_dir};

#[tokio::test]
async fn serves_pages_health_and_readiness() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;
    let client = reqwest::Client::new();

    let health = client.get(portal.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let ready: serde_json::Value = client
        .get(portal.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["migrations"].as_u64().unwrap() >= 1);

    let home = client.get(portal.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains("Welcome to Loopback"));
    assert!(
        html.contains("/pkg/loopback.wasm"),
        "page loads the hydrate bundle"
    );

    let missing = client
        .get(portal.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("Page not found"));

    // The first start prints a one-time setup link and keeps it in a 0600 file.
    let stdout = portal.stdout();
    assert!(
        stdout.contains(&format!("Loopback is running at {}", portal.url(""))),
        "{stdout}"
    );
    let link_line = stdout
        .lines()
        .find(|l| l.contains("/setup?token="))
        .expect("setup link printed");
    let link_file = portal.data_dir.join("operator-setup-link");
    let saved = std::fs::read_to_string(&link_file).unwrap();
    assert_eq!(saved.trim(), link_line.trim());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&link_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let setup = client.get(link_line.trim()).send().await.unwrap();
    assert_eq!(setup.status(), 200);
    assert!(
        setup
            .text()
            .await
            .unwrap()
            .contains("This setup link is valid")
    );
    let forged = client
        .get(portal.url("/setup?token=forged"))
        .send()
        .await
        .unwrap();
    assert!(forged.text().await.unwrap().contains("not valid"));
}

#[tokio::test]
async fn readiness_fails_while_the_database_is_gone() {
    let url = fresh_database().await;
    let mut portal = Launch::with_database(url.clone()).spawn();
    portal.ready().await;

    // Drop the database out from under the running portal.
    let admin = std::env::var("DATABASE_URL").unwrap();
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();

    let client = reqwest::Client::new();
    let health = client.get(portal.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process itself is still up");
    let ready = client.get(portal.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
}

#[test]
fn help_documents_every_option() {
    let (status, stdout, _) = run_to_exit(&["--help"], &[]);
    assert!(status.success());
    for option in [
        "--listen",
        "--database-url",
        "--data-dir",
        "--secret-key-file",
        "--public-url",
        "--log-format",
        "DATABASE_URL",
        "LOOPBACK_SECRET_KEY",
    ] {
        assert!(stdout.contains(option), "--help lacks {option}:\n{stdout}");
    }
}

/// Asserts a failed start: non-zero exit and exactly one `error:` line that
/// contains every `needle`, and no panic or backtrace.
fn assert_clear_failure(args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let (status, _, stderr) = run_to_exit(args, env);
    assert!(!status.success(), "expected failure for {args:?}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{:?} lacks {needle:?}",
            errors[0]
        );
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn unparseable_database_url_is_named() {
    let dir = temp_dir("cfg");
    assert_clear_failure(
        &["--data-dir", dir.to_str().unwrap()],
        &[("DATABASE_URL", "postgres://user@host:notaport/db")],
        &[
            "DATABASE_URL",
            "postgres://user:password@host:port/database",
        ],
    );
}

#[test]
fn port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = temp_dir("cfg");
    assert_clear_failure(
        &["--listen", &addr, "--data-dir", dir.to_str().unwrap()],
        &[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")],
        &[&addr, "already in use", "--listen"],
    );
}

#[test]
fn unwritable_data_dir_is_named() {
    // /proc refuses new entries even to root.
    assert_clear_failure(
        &["--data-dir", "/proc/loopback-data"],
        &[],
        &["/proc/loopback-data", "--data-dir"],
    );
}

#[test]
fn missing_initdb_is_named() {
    let dir = temp_dir("cfg");
    let empty = temp_dir("no-postgres");
    assert_clear_failure(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--postgres-bin-dir",
            empty.to_str().unwrap(),
        ],
        &[],
        &["initdb", "DATABASE_URL"],
    );
}

#[test]
fn unreachable_database_is_named() {
    let dir = temp_dir("cfg");
    let closed = support::free_addr();
    assert_clear_failure(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        &[("DATABASE_URL", &format!("postgres://nobody@{closed}/none"))],
        &["cannot connect to PostgreSQL", "DATABASE_URL"],
    );
}

#[tokio::test]
async fn json_logs_on_request() {
    let mut portal = Launch::with_database(fresh_database().await)
        .arg("--log-format")
        .arg("json")
        .spawn();
    portal.ready().await;
    portal.signal(Signal::SIGTERM);
    assert!(portal.exit_status(Duration::from_secs(20)).await.success());
    let stderr = portal.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{line}"
        );
    }
}

/// A request whose body is still arriving when SIGTERM comes in is served to
/// the end; only then does the process exit, with success.
#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let mut portal = Launch::with_database(fresh_database().await).spawn();
    portal.ready().await;

    let addr = portal.addr;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let body = b"x=1";
    write!(
        stream,
        "POST /api/portal_status HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..1]).unwrap();
    stream.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    portal.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(portal.is_running(), "must wait for the open request");
    // New connections are no longer accepted.
    assert!(reqwest::get(portal.url("/healthz")).await.is_err());

    stream.write_all(&body[1..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"database\""), "{response}");

    assert!(portal.exit_status(Duration::from_secs(20)).await.success());
}

/// Without DATABASE_URL the portal runs its own PostgreSQL in the data dir,
/// stops it on SIGINT (Ctrl-C), and finds everything again on the next start.
#[tokio::test]
async fn private_postgres_keeps_data_and_stops_cleanly() {
    let data = temp_dir("embedded");
    let socket_db = || {
        sqlx::postgres::PgConnectOptions::new()
            .socket(data.join("run"))
            .username("loopback")
            .database("loopback")
    };

    let mut first = Launch::embedded(&data).spawn();
    first.ready().await;
    let key_before = std::fs::read_to_string(data.join("secret.key")).unwrap();
    let mut conn = socket_db().connect().await.unwrap();
    sqlx::query("CREATE TABLE kept_marker (note text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept_marker VALUES ('still here')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    first.signal(Signal::SIGINT);
    assert!(first.exit_status(Duration::from_secs(30)).await.success());
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "PostgreSQL must be stopped with the portal"
    );
    assert!(first.stderr().contains("private PostgreSQL stopped"));

    let mut second = Launch::embedded(&data).spawn();
    second.ready().await;
    let mut conn = socket_db().connect().await.unwrap();
    let note: String = sqlx::query_scalar("SELECT note FROM kept_marker")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(note, "still here");
    conn.close().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(data.join("secret.key")).unwrap(),
        key_before
    );
    assert!(
        !second.stderr().contains("initialising"),
        "the cluster is reused"
    );

    second.signal(Signal::SIGINT);
    assert!(second.exit_status(Duration::from_secs(30)).await.success());
    std::fs::remove_dir_all(&data).ok();
}
