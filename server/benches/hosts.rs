//! Host figures, printed: the keystroke echo round trip through the shell
//! relay (browser → portal → agent → PTY and back) against the same echo
//! straight from a PTY in this process; `cat` of a 100 MB file through the
//! relay; and one portal's CPU and memory with 10,000 simulated agents
//! heartbeating every 10 s.
//!
//! Run with `scripts/bench hosts` (starts PostgreSQL, builds the portal and
//! `loopback-agent` in release).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use platform::tenancy::{organizations, projects};
use protocol::agent::{AgentMessage, HostFacts, PortalMessage, TerminalControl, TerminalEvent};
use protocol::views::{OrderedHost, ShellStart, Verification};
use serde_json::json;
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

#[path = "../tests/support/mod.rs"]
mod support;

/// Keystrokes timed per terminal, after [`ECHO_WARMUP`] untimed ones.
const ECHO_ROUNDS: usize = 2000;
const ECHO_WARMUP: usize = 200;
/// Characters typed before the line is cleared with Ctrl-U.
const CLEAR_EVERY: usize = 50;
/// The file `cat` prints: lines of 99 printable characters and a newline.
const CAT_BYTES: usize = 100_000_000;
const CAT_TIMEOUT: Duration = Duration::from_secs(120);
/// Times the file is printed per terminal; the median run is reported.
const CAT_RUNS: usize = 3;
/// Simulated agents, how many dial at once, and how long they get to.
const AGENTS: usize = 10_000;
const DIAL_CONCURRENCY: usize = 200;
const DIAL_PHASE: Duration = Duration::from_secs(300);
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the portal's CPU and memory are watched once all are connected.
const WINDOW: Duration = Duration::from_secs(60);
const TERM_COLS: u16 = 120;
const TERM_ROWS: u16 = 40;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The last `lines` lines of a log, for failure messages.
fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A terminal the bench types into: the browser's WebSocket to the relay,
/// or a PTY of its own.
// One of each exists per run; boxing the PTY buys nothing.
#[allow(clippy::large_enum_variant)]
enum Term {
    Relay(Box<Ws>),
    Direct(agent::shell::pty::Pty, Vec<u8>),
}

impl Term {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Term::Relay(ws) => ws
                .send(Message::Binary(bytes.to_vec().into()))
                .await
                .map_err(|e| format!("sending to the relay: {e}")),
            Term::Direct(pty, _) => agent::shell::pty::write_all(&pty.master, bytes)
                .await
                .map_err(|e| format!("writing to the PTY: {e}")),
        }
    }

    /// The next chunk of terminal output.
    async fn recv(&mut self) -> Result<Vec<u8>, String> {
        match self {
            Term::Relay(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => return Ok(bytes.into()),
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<TerminalEvent>(text.as_str()) {
                            Ok(TerminalEvent::Ready { .. }) => {}
                            _ => return Err(format!("the relay said {}", text.as_str())),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Err(format!("the relay closed the socket: {frame:?}"));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("reading from the relay: {e}")),
                    None => return Err("the relay's socket ended".into()),
                }
            },
            Term::Direct(pty, buf) => {
                let n = agent::shell::pty::read(&pty.master, buf)
                    .await
                    .map_err(|e| format!("reading the PTY: {e}"))?;
                if n == 0 {
                    return Err("the shell hung up".into());
                }
                Ok(buf[..n].to_vec())
            }
        }
    }

    async fn recv_by(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        tokio::time::timeout_at(deadline.into(), self.recv())
            .await
            .map_err(|_| "no terminal output before the deadline".to_string())?
    }

    /// Reads until the terminal has printed nothing for `quiet`.
    async fn drain(&mut self, quiet: Duration, deadline: Instant) -> Result<Vec<u8>, String> {
        let mut seen = Vec::new();
        loop {
            if Instant::now() > deadline {
                return Err(format!(
                    "the terminal never went quiet; last output: {:?}",
                    String::from_utf8_lossy(&seen[seen.len().saturating_sub(200)..])
                ));
            }
            match tokio::time::timeout(quiet, self.recv()).await {
                Err(_) => return Ok(seen),
                Ok(chunk) => seen.extend(chunk?),
            }
        }
    }
}

/// Times `ECHO_ROUNDS` single keystrokes from sending `a` to its echo, with
/// echo on as a shell prompt has it; the line is cleared every
/// `CLEAR_EVERY` characters.
async fn echo_round_trips(term: &mut Term) -> Result<Vec<Duration>, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    // The prompt (login scripts may take a moment).
    term.drain(Duration::from_millis(700), deadline).await?;
    let mut times = Vec::with_capacity(ECHO_ROUNDS);
    let mut on_line = 0;
    for round in 0..ECHO_WARMUP + ECHO_ROUNDS {
        if on_line == CLEAR_EVERY {
            term.send(&[0x15]).await?;
            term.drain(Duration::from_millis(30), deadline).await?;
            on_line = 0;
        }
        let started = Instant::now();
        term.send(b"a").await?;
        loop {
            let chunk = term.recv_by(deadline).await?;
            if chunk.contains(&b'a') {
                break;
            }
        }
        let took = started.elapsed();
        on_line += 1;
        if round >= ECHO_WARMUP {
            times.push(took);
        }
    }
    term.send(&[0x15]).await?;
    term.drain(Duration::from_millis(100), deadline).await?;
    times.sort();
    Ok(times)
}

/// Types `cat <file>` and reads until the marker printed after it arrives;
/// returns the bytes the terminal delivered and how long that took.
async fn cat_through(term: &mut Term, file: &Path) -> Result<(u64, Duration), String> {
    let deadline = Instant::now() + CAT_TIMEOUT;
    term.drain(Duration::from_millis(200), deadline).await?;
    // The echoed command line must not contain the marker itself.
    let command = format!("cat {}; echo __DONE$((6*7))__\r", file.display());
    let marker = b"__DONE42__";
    let started = Instant::now();
    term.send(command.as_bytes()).await?;
    let mut bytes = 0u64;
    let mut window: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let chunk = term.recv_by(deadline).await.map_err(|e| {
            format!(
                "cat: {e} ({bytes} bytes after {:.1} s)",
                started.elapsed().as_secs_f64()
            )
        })?;
        bytes += chunk.len() as u64;
        let keep = window.len().min(marker.len() - 1);
        window.drain(..window.len() - keep);
        window.extend_from_slice(&chunk);
        if window.windows(marker.len()).any(|w| w == marker) {
            break;
        }
    }
    let took = started.elapsed();
    term.drain(Duration::from_millis(200), deadline).await?;
    Ok((bytes, took))
}

/// 100 MB of printable lines (a base64-like alphabet from xorshift).
fn write_cat_file(path: &Path) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).expect("create the cat file"),
    );
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut line = [b'\n'; 100];
    for _ in 0..CAT_BYTES / line.len() {
        for byte in &mut line[..99] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = ALPHABET[(state & 63) as usize];
        }
        out.write_all(&line).expect("write the cat file");
    }
    out.flush().expect("write the cat file");
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is the first, so
    // utime and stime (fields 14 and 15) are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / ticks
}

/// A `Vm…` line of /proc/<pid>/status, in bytes.
fn vm(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Busy and total jiffies of the whole machine (/proc/stat).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Cores the whole machine kept busy since `since` (from [`machine_jiffies`]).
fn machine_busy_since(since: (u64, u64)) -> f64 {
    let now = machine_jiffies();
    (now.0 - since.0) as f64 / (now.1 - since.1).max(1) as f64 * cores()
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(2.0, |n| n.get() as f64)
}

fn open_files(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// What the simulated agents have been through.
#[derive(Default)]
struct Fleet {
    connected: AtomicUsize,
    live: AtomicUsize,
    gave_up: AtomicUsize,
    dropped: AtomicUsize,
    heartbeats: AtomicU64,
    failures: Mutex<BTreeMap<String, usize>>,
}

impl Fleet {
    fn failed(&self, why: String) {
        let why: String = why.chars().take(120).collect();
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(why)
            .or_default() += 1;
    }
}

/// One simulated agent: dials with its token, heartbeats on `Welcome` and
/// then every 10 s from a phase of its own, until `stop`.
async fn simulated_agent(
    n: usize,
    url: Arc<str>,
    dial: Arc<tokio::sync::Semaphore>,
    fleet: Arc<Fleet>,
    stop: CancellationToken,
) {
    let heartbeat: Utf8Bytes = serde_json::to_string(&AgentMessage::Heartbeat {
        facts: HostFacts {
            hostname: format!("sim-{n:05}"),
            os: "Bench Linux".into(),
            kernel: "6.1.0-bench".into(),
            arch: std::env::consts::ARCH.into(),
            uptime_secs: 3600,
            load: [0.1, 0.1, 0.1],
            cpus: 2,
            memory_total_bytes: 4 << 30,
            memory_available_bytes: 3 << 30,
            disk_total_bytes: 40 << 30,
            disk_available_bytes: 30 << 30,
            cpu_percent: Some(5.0),
        },
        build: agent::build_info(),
    })
    .expect("a heartbeat serialises")
    .into();
    // Small buffers: ten thousand of these live in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws = None;
    for attempt in 0..5 {
        if stop.is_cancelled() {
            return;
        }
        let Ok(_permit) = dial.acquire().await else {
            return;
        };
        let mut request = url.as_ref().into_client_request().expect("a ws URL");
        let headers = request.headers_mut();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer lba_bench_{n}")).expect("a header"),
        );
        headers.insert(
            protocol::agent::PROTOCOL_HEADER,
            HeaderValue::from(protocol::AGENT_PROTOCOL_VERSION),
        );
        let dialled = tokio::time::timeout(Duration::from_secs(30), async {
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
            // Welcome, then the first heartbeat.
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<PortalMessage>(text.as_str()) {
                            Ok(PortalMessage::Welcome { .. }) => break,
                            _ => return Err(format!("not a welcome: {}", text.as_str())),
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        return Err("closed before the welcome".to_string());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("before the welcome: {e}")),
                }
            }
            socket
                .send(Message::Text(heartbeat.clone()))
                .await
                .map_err(|e| format!("first heartbeat: {e}"))?;
            Ok::<_, String>(socket)
        })
        .await
        .unwrap_or_else(|_| Err("no welcome within 30 s".into()));
        match dialled {
            Ok(socket) => {
                ws = Some(socket);
                break;
            }
            Err(why) => {
                fleet.failed(why);
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
        }
    }
    let Some(mut ws) = ws else {
        fleet.gave_up.fetch_add(1, Ordering::Relaxed);
        return;
    };
    fleet.heartbeats.fetch_add(1, Ordering::Relaxed);
    fleet.connected.fetch_add(1, Ordering::Relaxed);
    fleet.live.fetch_add(1, Ordering::Relaxed);
    // Spread the periodic beats over the interval (golden-ratio phases).
    let phase = (n as f64 * 0.618_033_988_75).fract();
    let mut next = tokio::time::Instant::now() + HEARTBEAT.mul_f64(phase);
    let dropped = loop {
        tokio::select! {
            () = stop.cancelled() => break false,
            () = tokio::time::sleep_until(next) => {
                if ws.send(Message::Text(heartbeat.clone())).await.is_err() {
                    break true;
                }
                fleet.heartbeats.fetch_add(1, Ordering::Relaxed);
                next += HEARTBEAT;
            }
            message = ws.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
                Some(Ok(_)) => {}
            },
        }
    };
    fleet.live.fetch_sub(1, Ordering::Relaxed);
    if dropped {
        fleet.dropped.fetch_add(1, Ordering::Relaxed);
    }
    let _ = ws.close(None).await;
}

struct ShellFigures {
    relay_echo: Vec<Duration>,
    /// Cores the machine kept busy while the echoes were timed.
    relay_busy: f64,
    direct_busy: f64,
    direct_echo: Vec<Duration>,
    relay_cat: Vec<(u64, Duration)>,
    direct_cat: Vec<(u64, Duration)>,
}

struct FleetFigures {
    connected: usize,
    dial_time: Duration,
    online: i64,
    live_after: usize,
    dropped: usize,
    cores: f64,
    rss_max: u64,
    rss_peak: u64,
    /// Before any agent connected.
    rss_idle: u64,
    bench_cores: f64,
    bench_rss: u64,
    machine_busy: f64,
    portal_fds: usize,
    failures: BTreeMap<String, usize>,
}

/// Parts 1 and 2: a local host ordered over REST, a shell attached like the
/// browser does, and the same measurements on a PTY in this process.
async fn shells(url: &str, db: &PgPool, cat_file: &Path) -> ShellFigures {
    let mut portal = support::Launch::with_database(url.to_string())
        .arg("--local-hosts")
        .arg("--agent-bin")
        .arg(support::agent_bin().to_str().unwrap())
        .spawn();
    portal.ready().await;
    let base = portal.url("");
    let base = base.trim_end_matches('/').to_string();

    let op = support::signed_up(db, "op@example.com", true).await;
    let alice = support::signed_up(db, "alice@example.com", false).await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    organizations::set_verification(db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(db, &alice, org.id, "Web").await.unwrap();
    let key = platform::identity::api_keys::create(db, &alice, "bench", None)
        .await
        .unwrap()
        .secret;
    let client = reqwest::Client::new();
    let cookie = support::sign_in(&client, &base, "alice@example.com").await;
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
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state: String =
            sqlx::query_scalar("SELECT state::text FROM workspaces WHERE id = $1::uuid")
                .bind(&workspace_id)
                .fetch_one(db)
                .await
                .unwrap();
        if state == "active" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the workspace stayed {state}:\n{}",
            tail(&portal.stderr(), 50)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let profile: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM compute_profiles WHERE provider_kind = 'local'")
            .fetch_one(db)
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
    let host = ordered.host;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (online, state): (bool, String) =
            sqlx::query_as("SELECT online, state::text FROM hosts WHERE id = $1")
                .bind(host)
                .fetch_one(db)
                .await
                .unwrap();
        if online && state == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the local host never came online ({state}, online {online})\nportal:\n{}\nagent:\n{}",
            tail(&portal.stderr(), 50),
            std::fs::read_to_string(portal.data_dir.join("hosts/box-1/agent.log"))
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The shell, as the terminal page opens it.
    let started = support::server_fn(
        &client,
        &base,
        "start_shell",
        Some(&cookie),
        &[("host", &host.to_string())],
    )
    .await;
    assert!(
        started.status().is_success(),
        "start_shell: {}",
        started.status()
    );
    let shell: ShellStart = started.json().await.unwrap();
    let mut attach = url::Url::parse(&format!(
        "ws://localhost:{}/api/v1/hosts/{host}/shell/{}/attach",
        portal.addr.port(),
        shell.session
    ))
    .unwrap();
    attach
        .query_pairs_mut()
        .append_pair("token", &shell.reconnect_token)
        .append_pair("cols", &TERM_COLS.to_string())
        .append_pair("rows", &TERM_ROWS.to_string());
    let mut request = attach.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    request.headers_mut().insert(
        header::ORIGIN,
        HeaderValue::from_str(&format!("http://localhost:{}", portal.addr.port())).unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .unwrap_or_else(|e| panic!("attach: {e}\n{}", tail(&portal.stderr(), 50)));
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message.map_err(|e| e.to_string())? {
                return match serde_json::from_str::<TerminalEvent>(text.as_str()) {
                    Ok(TerminalEvent::Ready { .. }) => Ok(()),
                    _ => Err(text.as_str().to_string()),
                };
            }
        }
        Err("the socket closed".to_string())
    })
    .await;
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!(
            "the shell did not start: {e}\n{}",
            tail(&portal.stderr(), 50)
        ),
        Err(_) => panic!("no Ready within 30 s\n{}", tail(&portal.stderr(), 50)),
    }
    let mut relay = Term::Relay(Box::new(ws));
    let machine = machine_jiffies();
    let relay_echo = echo_round_trips(&mut relay)
        .await
        .unwrap_or_else(|e| panic!("relay echo: {e}\n{}", tail(&portal.stderr(), 50)));
    let relay_busy = machine_busy_since(machine);
    let mut relay_cat = Vec::new();
    for _ in 0..CAT_RUNS {
        relay_cat.push(
            cat_through(&mut relay, cat_file)
                .await
                .unwrap_or_else(|e| panic!("relay cat: {e}\n{}", tail(&portal.stderr(), 50))),
        );
    }
    if let Term::Relay(ws) = &mut relay {
        let close = serde_json::to_string(&TerminalControl::Close).unwrap();
        let _ = ws.send(Message::Text(close.into())).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(message)) = ws.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    drop(relay);

    // The same on a PTY of this process: the shell the agent starts (the
    // login shell), with no relay in between.
    let pty = agent::shell::pty::spawn(None, TERM_COLS, TERM_ROWS).expect("a PTY");
    let mut direct = Term::Direct(pty, vec![0; agent::shell::CHUNK]);
    let machine = machine_jiffies();
    let direct_echo = echo_round_trips(&mut direct)
        .await
        .unwrap_or_else(|e| panic!("direct echo: {e}"));
    let direct_busy = machine_busy_since(machine);
    let mut direct_cat = Vec::new();
    for _ in 0..CAT_RUNS {
        direct_cat.push(
            cat_through(&mut direct, cat_file)
                .await
                .unwrap_or_else(|e| panic!("direct cat: {e}")),
        );
    }
    if let Term::Direct(mut pty, _) = direct {
        let _ = pty.child.start_kill();
        let _ = pty.child.wait().await;
    }

    // Deleting the host stops its agent process.
    client
        .delete(format!("{base}/api/v1/hosts/{host}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while portal.data_dir.join("hosts/box-1").exists() {
        assert!(
            Instant::now() < deadline,
            "the local host was not removed:\n{}",
            tail(&portal.stderr(), 50)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(portal);
    ShellFigures {
        relay_echo,
        relay_busy,
        direct_busy,
        direct_echo,
        relay_cat,
        direct_cat,
    }
}

/// Part 3: ten thousand hosts with tokens, a portal, and an agent
/// connection for each from this process.
async fn fleet(url: &str, db: &PgPool) -> FleetFigures {
    let (org, workspace): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT p.organization_id, w.id FROM workspaces w JOIN projects p ON p.id = w.project_id
             WHERE w.name = 'metal'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let profile: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM compute_profiles WHERE provider_kind = 'local'")
            .fetch_one(db)
            .await
            .unwrap();
    let names: Vec<String> = (0..AGENTS).map(|n| format!("sim-{n:05}")).collect();
    let digests: Vec<Vec<u8>> = (0..AGENTS)
        .map(|n| platform::crypto::token_digest(&format!("lba_bench_{n}")))
        .collect();
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, state)
         SELECT gen_random_uuid(), $1, $2, name, $3, 'running' FROM unnest($4::text[]) AS name",
    )
    .bind(org)
    .bind(workspace)
    .bind(profile)
    .bind(&names)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO agent_tokens (id, workspace_id, host_id, digest, prefix)
         SELECT gen_random_uuid(), h.workspace_id, h.id, t.digest, 'lba_bench'
         FROM unnest($2::text[], $3::bytea[]) AS t(name, digest)
         JOIN hosts h ON h.workspace_id = $1 AND h.hostname = t.name",
    )
    .bind(workspace)
    .bind(&names)
    .bind(&digests)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("ANALYZE hosts").execute(db).await.unwrap();
    sqlx::query("ANALYZE agent_tokens")
        .execute(db)
        .await
        .unwrap();
    println!(
        "seeded {AGENTS} hosts with agent tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut portal = support::Launch::with_database(url.to_string())
        .arg("--agent-heartbeat-secs")
        .arg(&HEARTBEAT.as_secs().to_string())
        .spawn();
    portal.ready().await;
    let pid = portal.pid().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = vm(&pid, "VmRSS:");
    let connect: Arc<str> = format!(
        "ws://127.0.0.1:{}{}",
        portal.addr.port(),
        protocol::agent::CONNECT_PATH
    )
    .into();
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;

    let fleet = Arc::new(Fleet::default());
    let dial = Arc::new(tokio::sync::Semaphore::new(DIAL_CONCURRENCY));
    let stop = CancellationToken::new();
    let dial_started = Instant::now();
    let agents: Vec<_> = (0..AGENTS)
        .map(|n| {
            tokio::spawn(simulated_agent(
                n,
                connect.clone(),
                dial.clone(),
                fleet.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let mut last_report = Instant::now();
    loop {
        let connected = fleet.connected.load(Ordering::Relaxed);
        let gave_up = fleet.gave_up.load(Ordering::Relaxed);
        if connected + gave_up >= AGENTS || dial_started.elapsed() > DIAL_PHASE {
            break;
        }
        if !portal.is_running() {
            panic!("the portal exited:\n{}", tail(&portal.stderr(), 80));
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "  … {connected} agents connected after {:.0} s",
                dial_started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dial_time = dial_started.elapsed();
    let connected = fleet.connected.load(Ordering::Relaxed);
    println!(
        "{connected} of {AGENTS} simulated agents connected in {:.1} s ({} gave up)",
        dial_time.as_secs_f64(),
        fleet.gave_up.load(Ordering::Relaxed)
    );

    // Every agent beats at least once more and the portal writes it.
    tokio::time::sleep(HEARTBEAT + Duration::from_secs(3)).await;
    let live_before = fleet.live.load(Ordering::Relaxed);
    let beats_before = fleet.heartbeats.load(Ordering::Relaxed);
    let window_started = Instant::now();
    let portal_cpu = cpu_seconds(&pid, ticks);
    let bench_cpu = cpu_seconds("self", ticks);
    let machine = machine_jiffies();
    let mut rss_max = 0;
    while window_started.elapsed() < WINDOW {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            portal.is_running(),
            "the portal exited:\n{}",
            tail(&portal.stderr(), 80)
        );
        rss_max = rss_max.max(vm(&pid, "VmRSS:"));
    }
    let wall = window_started.elapsed().as_secs_f64();
    let cores = (cpu_seconds(&pid, ticks) - portal_cpu) / wall;
    let bench_cores = (cpu_seconds("self", ticks) - bench_cpu) / wall;
    let machine_busy = machine_busy_since(machine);
    let rss_peak = vm(&pid, "VmHWM:");
    let bench_rss = vm("self", "VmRSS:");
    let portal_fds = open_files(&pid);
    let live_after = fleet.live.load(Ordering::Relaxed);
    let beats = fleet.heartbeats.load(Ordering::Relaxed) - beats_before;
    println!(
        "watched the portal for {wall:.0} s: {live_before} → {live_after} live connections, {beats} heartbeats sent ({:.0}/s)",
        beats as f64 / wall
    );
    let online: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hosts WHERE online AND hostname LIKE 'sim-%'")
            .fetch_one(db)
            .await
            .unwrap();

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(agents)).await;
    drop(portal);
    let failures = std::mem::take(&mut *fleet.failures.lock().unwrap_or_else(|e| e.into_inner()));
    FleetFigures {
        connected,
        dial_time,
        online,
        live_after,
        dropped: fleet.dropped.load(Ordering::Relaxed),
        cores,
        rss_max,
        rss_peak,
        rss_idle,
        bench_cores,
        bench_rss,
        machine_busy,
        portal_fds,
        failures,
    }
}

/// Room for ten thousand sockets here and in the portal (which inherits
/// the limit).
fn raise_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(soft, _)| soft)
}

/// MB/s (10^6 bytes) of each run, sorted.
fn rates(runs: &[(u64, Duration)]) -> Vec<f64> {
    let mut rates: Vec<f64> = runs
        .iter()
        .map(|(bytes, took)| *bytes as f64 / 1e6 / took.as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates
}

fn listed(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|r| format!("{r:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

#[tokio::main]
async fn main() {
    let files = raise_file_limit();
    assert!(
        files as usize > AGENTS + 1000,
        "the open file limit ({files}) leaves no room for {AGENTS} connections"
    );
    let url = support::fresh_database().await;
    let db = PgPool::connect(&url).await.unwrap();
    platform::db::migrate(&db).await.unwrap();
    let scratch = support::temp_dir("bench-hosts");
    let cat_file = scratch.join("cat.txt");
    write_cat_file(&cat_file);

    // 1 and 2. The shell relay.
    let shell = shells(&url, &db, &cat_file).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (relay50, relay99) = (
        percentile(&shell.relay_echo, 0.5),
        percentile(&shell.relay_echo, 0.99),
    );
    let (direct50, direct99) = (
        percentile(&shell.direct_echo, 0.5),
        percentile(&shell.direct_echo, 0.99),
    );
    println!(
        "keystroke echo through the relay (browser → portal → agent → PTY → back, {ECHO_ROUNDS} keystrokes): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (machine busy meanwhile: {:.2} of {} cores)",
        ms(relay50),
        ms(relay99),
        ms(shell.relay_echo[shell.relay_echo.len() - 1]),
        shell.relay_busy,
        cores()
    );
    println!(
        "keystroke echo straight from a PTY in this process (same shell): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (machine busy meanwhile: {:.2} of {} cores)",
        ms(direct50),
        ms(direct99),
        ms(shell.direct_echo[shell.direct_echo.len() - 1]),
        shell.direct_busy,
        cores()
    );
    let relay_rates = rates(&shell.relay_cat);
    let direct_rates = rates(&shell.direct_cat);
    println!(
        "cat of a 100 MB file through the relay ({} bytes reach the browser, CRLF line ends): {} MB/s over {CAT_RUNS} runs; straight from a PTY: {} MB/s",
        shell.relay_cat[0].0,
        listed(&relay_rates),
        listed(&direct_rates)
    );

    // 3. Ten thousand agents.
    let fleet = fleet(&url, &db).await;
    if !fleet.failures.is_empty() {
        println!("connection failures (retried up to 5 times):");
        for (why, count) in &fleet.failures {
            println!("  {count} × {why}");
        }
    }

    let added50 = ms(relay50) - ms(direct50);
    let added99 = ms(relay99) - ms(direct99);
    let relay_mb_s = relay_rates[relay_rates.len() / 2];
    let rss_mib = fleet.rss_max as f64 / (1 << 20) as f64;
    println!();
    println!("== hosts: summary ==");
    println!(
        "shell echo, relay: p50 {:.3} ms, p99 {:.3} ms; direct PTY: p50 {:.3} ms, p99 {:.3} ms",
        ms(relay50),
        ms(relay99),
        ms(direct50),
        ms(direct99)
    );
    println!(
        "added by the relay: p50 {added50:.3} ms, p99 {added99:.3} ms (goal p99 < 2 ms: {})",
        verdict(added99 < 2.0)
    );
    println!(
        "cat 100 MB through the relay: {relay_mb_s:.1} MB/s, median of {CAT_RUNS} (goal ≥ 50 MB/s: {}); direct PTY {:.1} MB/s",
        verdict(relay_mb_s >= 50.0),
        direct_rates[direct_rates.len() / 2]
    );
    println!(
        "{} of {AGENTS} agents connected in {:.1} s; {} still connected after the window ({} dropped), {} hosts online in the database",
        fleet.connected,
        fleet.dial_time.as_secs_f64(),
        fleet.live_after,
        fleet.dropped,
        fleet.online
    );
    println!(
        "portal with them, heartbeat every {} s, over {} s: {:.3} cores (goal < 0.5: {}), RSS max {rss_mib:.0} MiB (goal < 1024 MiB: {}), peak RSS {:.0} MiB, {} open files",
        HEARTBEAT.as_secs(),
        WINDOW.as_secs(),
        fleet.cores,
        verdict(fleet.cores < 0.5),
        verdict(rss_mib < 1024.0),
        fleet.rss_peak as f64 / (1 << 20) as f64,
        fleet.portal_fds
    );
    println!(
        "portal RSS before the agents: {:.0} MiB, so about {:.0} KiB per connected agent",
        fleet.rss_idle as f64 / (1 << 20) as f64,
        fleet.rss_max.saturating_sub(fleet.rss_idle) as f64
            / 1024.0
            / fleet.connected.max(1) as f64
    );
    println!(
        "meanwhile this bench process (the agents' side, 4 KiB read buffers) used {:.3} cores and {:.0} MiB, and the whole machine {:.2} of its {} cores",
        fleet.bench_cores,
        fleet.bench_rss as f64 / (1 << 20) as f64,
        fleet.machine_busy,
        cores()
    );

    db.close().await;
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(&std::env::var("DATABASE_URL").unwrap())
            .await
            .unwrap();
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}
