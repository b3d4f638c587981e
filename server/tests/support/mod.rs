//! Starts the real `loopback` binary for tests, each against its own fresh
//! database on the PostgreSQL that scripts/test provides in DATABASE_URL.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::Connection;
use url::Url;

pub mod local_portal;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_loopback")
}

/// A new, empty database on the test server; returns its URL.
pub async fn fresh_database() -> String {
    let admin = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at the test PostgreSQL (scripts/test sets it)");
    let name = format!("lb_bin_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = Url::parse(&admin).expect("DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loopback-{tag}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub struct Portal {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

pub struct Launch {
    database_url: Option<String>,
    data_dir: PathBuf,
    args: Vec<String>,
}

impl Launch {
    pub fn with_database(url: String) -> Self {
        Self {
            database_url: Some(url),
            data_dir: temp_dir("data"),
            args: Vec::new(),
        }
    }

    /// No DATABASE_URL: the portal runs its own PostgreSQL in `data_dir`.
    pub fn embedded(data_dir: &Path) -> Self {
        Self {
            database_url: None,
            data_dir: data_dir.to_path_buf(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn spawn(self) -> Portal {
        let addr = free_addr();
        let logs = temp_dir("logs");
        let stdout = logs.join("stdout");
        let stderr = logs.join("stderr");
        let mut cmd = Command::new(bin());
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env_remove("DATABASE_URL")
            .env_remove("LOOPBACK_SECRET_KEY")
            .env("LOOPBACK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        if let Some(url) = &self.database_url {
            cmd.env("DATABASE_URL", url);
        }
        let child = cmd.spawn().expect("start loopback");
        Portal {
            addr,
            data_dir: self.data_dir,
            child,
            stdout,
            stderr,
        }
    }
}

impl Portal {
    /// The portal's public URL: `localhost`, as the portal redirects pages
    /// requested under another name there.
    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    /// Waits until /readyz answers 200, or panics with the server's log.
    pub async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("portal exited early with {status}:\n{}", self.stderr());
            }
            if let Ok(r) = client.get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("portal not ready within 60 s:\n{}", self.stderr());
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal portal");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll portal").is_none()
    }

    /// Waits for the process to exit on its own.
    pub async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll portal") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("portal did not exit within {within:?}:\n{}", self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if self.is_running() {
            // Give it the chance to stop a private PostgreSQL it started.
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && self.is_running() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion with `args` and `env`; returns
/// (exit status, stdout, stderr).
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("LOOPBACK_SECRET_KEY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run loopback");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The `loopback_session=…` pair from a response's cookies, if it set one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("loopback_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// Calls a server function like the browser's fetch does.
pub async fn server_fn(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    cookie: Option<&str>,
    args: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client
        .post(format!("{base}/api/{name}"))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(args);
    if let Some(c) = cookie {
        request = request.header(reqwest::header::COOKIE, c);
    }
    request.send().await.expect("server function call")
}

/// Signs in with the test password; returns the session cookie.
pub async fn sign_in(client: &reqwest::Client, base: &str, email: &str) -> String {
    let response = server_fn(
        client,
        base,
        "sign_in",
        None,
        &[("email", email), ("password", PASSWORD), ("next", "/")],
    )
    .await;
    assert!(
        response.status().is_success(),
        "sign in {email}: {}",
        response.status()
    );
    session_cookie(&response).expect("session cookie")
}

/// Signs up through the portal; returns the session cookie.
pub async fn sign_up(client: &reqwest::Client, base: &str, email: &str) -> String {
    let response = server_fn(
        client,
        base,
        "sign_up",
        None,
        &[
            ("email", email),
            ("display_name", email),
            ("password", PASSWORD),
            ("next", "/"),
        ],
    )
    .await;
    assert!(
        response.status().is_success(),
        "sign up {email}: {}",
        response.status()
    );
    session_cookie(&response).expect("session cookie")
}

/// The signed-in account's email, or None.
pub async fn who(client: &reqwest::Client, base: &str, cookie: &str) -> Option<String> {
    let body: serde_json::Value = server_fn(client, base, "current_account", Some(cookie), &[])
        .await
        .json()
        .await
        .expect("json");
    body["account"]["email"].as_str().map(str::to_string)
}

/// An account signed up directly in the database, made an operator when
/// asked, as the actor platform calls take.
pub async fn signed_up(db: &sqlx::PgPool, email: &str, operator: bool) -> platform::authz::Actor {
    let account = platform::identity::sign_up(
        db,
        platform::identity::SignUp {
            email: email.into(),
            display_name: "Someone".into(),
            password: PASSWORD.into(),
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

/// The `loopback-agent` built next to the portal binary (cargo builds every
/// bin of the workspace for tests; scripts/bench builds it in release).
pub fn agent_bin() -> PathBuf {
    let bin = PathBuf::from(bin())
        .parent()
        .expect("the portal binary has a directory")
        .join("loopback-agent");
    assert!(
        bin.is_file(),
        "{} is missing: build it with cargo build -p agent (--release for benches)",
        bin.display()
    );
    bin
}
