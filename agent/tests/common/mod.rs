//! Test helpers: temp directories and a fake portal (axum on 127.0.0.1:0)
//! that hands each agent connection to the test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protocol::agent::{AgentMessage, CONNECT_PATH, PortalMessage, ShellFrame, ShellSessionId};
use tokio::sync::mpsc;

/// Every wait in these tests is bounded by this unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(15);

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "loopback-agent-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[derive(Clone, Default)]
struct PortalState {
    connections: Option<mpsc::Sender<Connection>>,
    refuse: Arc<AtomicBool>,
    refusals: Arc<Mutex<Vec<Instant>>>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

/// A portal stand-in: `/agent/v1/connect` upgrades (or refuses with 401)
/// and `/files/{name}` serves downloads.
pub struct FakePortal {
    pub url: url::Url,
    pub connections: mpsc::Receiver<Connection>,
    state: PortalState,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePortal {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakePortal {
    pub async fn start() -> Self {
        let (tx, connections) = mpsc::channel(8);
        let state = PortalState {
            connections: Some(tx),
            ..PortalState::default()
        };
        let app = Router::new()
            .route(CONNECT_PATH, get(connect))
            .route("/files/{name}", get(file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}").parse().expect("url"),
            connections,
            state,
            server,
        }
    }

    pub fn refuse(&self, refuse: bool) {
        self.state.refuse.store(refuse, Ordering::SeqCst);
    }

    pub fn refusals(&self) -> Vec<Instant> {
        self.state.refusals.lock().expect("lock").clone()
    }

    /// Serves `data` at the returned URL.
    pub fn serve_file(&self, name: &str, data: Vec<u8>) -> String {
        self.state
            .files
            .lock()
            .expect("lock")
            .insert(name.to_owned(), data);
        format!("{}files/{name}", self.url)
    }

    /// The next agent connection, within [`WAIT`].
    pub async fn accept(&mut self) -> Connection {
        tokio::time::timeout(WAIT, self.connections.recv())
            .await
            .expect("the agent connects in time")
            .expect("server running")
    }
}

async fn connect(
    State(state): State<PortalState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if state.refuse.load(Ordering::SeqCst) {
        state.refusals.lock().expect("lock").push(Instant::now());
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(connections) = state.connections.clone() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    ws.on_upgrade(move |socket| async move {
        let _ = connections.send(Connection { headers, socket }).await;
    })
}

async fn file(State(state): State<PortalState>, UrlPath(name): UrlPath<String>) -> Response {
    match state.files.lock().expect("lock").get(&name) {
        Some(data) => data.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// What the agent sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Message(AgentMessage),
    Frame(ShellSessionId, Vec<u8>),
}

/// One agent connection, seen from the portal.
pub struct Connection {
    pub headers: HeaderMap,
    pub socket: WebSocket,
}

impl Connection {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub async fn send(&mut self, message: &PortalMessage) {
        let json = serde_json::to_string(message).expect("serialise");
        self.socket
            .send(Message::Text(json.into()))
            .await
            .expect("send to agent");
    }

    pub async fn send_input(&mut self, session: ShellSessionId, data: &[u8]) {
        self.socket
            .send(Message::Binary(ShellFrame::encode(session, data).into()))
            .await
            .expect("send input");
    }

    /// The next message or frame; `None` when the agent hung up.
    pub async fn recv(&mut self) -> Option<Incoming> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.recv())
                .await
                .expect("the agent sends something in time")?;
            match frame.ok()? {
                Message::Text(text) => {
                    let message = serde_json::from_str(text.as_str()).expect("an AgentMessage");
                    return Some(Incoming::Message(message));
                }
                Message::Binary(data) => {
                    let frame = ShellFrame::decode(&data).expect("a shell frame");
                    return Some(Incoming::Frame(frame.session, frame.data.to_vec()));
                }
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    /// Reads until `pick` returns something, skipping what it rejects.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&Incoming) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "expected message not received in time"
            );
            let incoming = self.recv().await.expect("agent still connected");
            if let Some(found) = pick(&incoming) {
                return found;
            }
        }
    }

    /// Collects shell output of `session` until it contains `needle`;
    /// returns everything collected.
    pub async fn output_until(&mut self, session: ShellSessionId, needle: &str) -> String {
        let mut seen = Vec::new();
        self.until(|incoming| {
            if let Incoming::Frame(id, data) = incoming
                && *id == session
            {
                seen.extend_from_slice(data);
                if String::from_utf8_lossy(&seen).contains(needle) {
                    return Some(());
                }
            }
            None
        })
        .await;
        String::from_utf8_lossy(&seen).into_owned()
    }
}
