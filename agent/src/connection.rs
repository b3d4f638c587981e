//! One portal connection: dial, wait for `Welcome`, then heartbeat, dispatch
//! the portal's messages and write through a single writer task until the
//! link drops. [`crate::run`] calls [`serve`] in a loop with [`Backoff`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use protocol::agent::{
    AgentMessage, CONNECT_PATH, PROTOCOL_HEADER, PortalMessage, ShellFrame, VERSION_HEADER,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};
use url::Url;

use crate::facts::CpuTimes;
use crate::link::{OUTBOX_CAPACITY, Outbox, Outgoing};
use crate::{Agent, AgentError, Config, TokenSource};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Dialling plus the TLS and WebSocket handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the portal has to send `Welcome` after the upgrade.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages written per flush when the outbox has a backlog.
const WRITE_BATCH: usize = 64;

/// Reconnection delays: `initial` doubling up to `max`, each with jitter;
/// back to `initial` after a connection that lasted `stable_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub stable_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            next: policy.initial,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next.min(self.policy.max);
        self.next = base.saturating_mul(2).min(self.policy.max);
        jitter(base)
    }

    pub(crate) fn max_delay(&mut self) -> Duration {
        self.next = self.policy.max;
        jitter(self.policy.max)
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.policy.initial;
    }
}

/// Between half and all of `base`, so a portal restart is not met by every
/// agent at the same instant.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(rand::random_range(0.5..=1.0))
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("reading the agent token from {path}: {source}")]
    Token {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the agent token is empty")]
    EmptyToken,
    #[error("the agent token is not a valid header value")]
    BadToken,
    #[error("the portal refused the agent token (HTTP {0})")]
    Refused(StatusCode),
    #[error("the portal answered HTTP {status}: {body}")]
    Http { status: StatusCode, body: String },
    #[error("connecting: {0}")]
    Handshake(#[source] Box<tungstenite::Error>),
    #[error("no answer from the portal within {0:?}")]
    Timeout(Duration),
    #[error("the portal sent {0} before Welcome")]
    NoWelcome(String),
    #[error("the portal closed the connection before Welcome")]
    ClosedBeforeWelcome,
    #[error("loading the system's root certificates found none")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Tls(#[source] rustls::Error),
    #[error(transparent)]
    Portal(#[from] AgentError),
}

/// The WebSocket URL for `portal`: scheme mapped to ws/wss, any path
/// prefix kept, [`CONNECT_PATH`] appended.
pub fn connect_url(portal: &Url) -> Result<Url, AgentError> {
    let scheme = match portal.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return Err(AgentError::PortalScheme(portal.clone())),
    };
    let mut url = portal.clone();
    url.set_scheme(scheme)
        .map_err(|()| AgentError::PortalScheme(portal.clone()))?;
    let path = format!("{}{CONNECT_PATH}", portal.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

fn read_token(source: &TokenSource) -> Result<String, ConnectError> {
    let token = match source {
        TokenSource::Value(token) => token.trim().to_owned(),
        TokenSource::File(path) => std::fs::read_to_string(path)
            .map_err(|source| ConnectError::Token {
                path: path.clone(),
                source,
            })?
            .trim()
            .to_owned(),
    };
    if token.is_empty() {
        return Err(ConnectError::EmptyToken);
    }
    Ok(token)
}

/// rustls on ring with the system's roots, for `wss` portals.
pub fn default_tls() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        debug!(%error, "skipping unreadable root certificates");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(ConnectError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ConnectError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn dial(config: &Config) -> Result<Socket, ConnectError> {
    let url = connect_url(&config.portal)?;
    let token = read_token(&config.token)?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| ConnectError::Handshake(Box::new(err)))?;
    let headers = request.headers_mut();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ConnectError::BadToken)?,
    );
    headers.insert(
        PROTOCOL_HEADER,
        HeaderValue::from(protocol::AGENT_PROTOCOL_VERSION),
    );
    headers.insert(VERSION_HEADER, HeaderValue::from_static(crate::VERSION));
    let connector = if url.scheme() == "wss" {
        let tls = match &config.tls {
            Some(tls) => tls.clone(),
            None => default_tls()?,
        };
        Some(Connector::Rustls(tls))
    } else {
        None
    };
    // Nagle off: keystrokes and echoes are tiny and latency-bound.
    let handshake =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Err(_) => Err(ConnectError::Timeout(CONNECT_TIMEOUT)),
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response)))
            if matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) =>
        {
            Err(ConnectError::Refused(response.status()))
        }
        // The portal explains refusals such as an unsupported protocol
        // version in the body; operators need to see that.
        Ok(Err(tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(|body| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
                .unwrap_or_default();
            Err(ConnectError::Http {
                status: response.status(),
                body,
            })
        }
        Ok(Err(err)) => Err(ConnectError::Handshake(Box::new(err))),
    }
}

async fn wait_for_welcome(stream: &mut SplitStream<Socket>) -> Result<Duration, ConnectError> {
    let welcome = async {
        while let Some(frame) = stream.next().await {
            match frame.map_err(|err| ConnectError::Handshake(Box::new(err)))? {
                Message::Text(text) => {
                    return match serde_json::from_str::<PortalMessage>(&text) {
                        Ok(PortalMessage::Welcome {
                            heartbeat_interval_secs,
                        }) => Ok(Duration::from_secs(heartbeat_interval_secs.max(1))),
                        _ => Err(ConnectError::NoWelcome(format!("{:.80}", text.as_str()))),
                    };
                }
                Message::Binary(_) => return Err(ConnectError::NoWelcome("a binary frame".into())),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        Err(ConnectError::ClosedBeforeWelcome)
    };
    tokio::time::timeout(WELCOME_TIMEOUT, welcome)
        .await
        .map_err(|_| ConnectError::Timeout(WELCOME_TIMEOUT))?
}

/// Runs one connection. `Ok` carries how long it was up after `Welcome`;
/// errors are failures to get that far.
pub(crate) async fn serve(
    agent: &Arc<Agent>,
    config: &Config,
    welcomed: &AtomicBool,
) -> Result<Duration, ConnectError> {
    let socket = dial(config).await?;
    let (sink, mut stream) = socket.split();
    let interval = wait_for_welcome(&mut stream).await?;
    welcomed.store(true, Ordering::SeqCst);
    let connected = Instant::now();
    info!(portal = %config.portal, heartbeat = ?interval, "connected to the portal");

    let (outbox, queue) = mpsc::channel(OUTBOX_CAPACITY);
    let mut writer = tokio::spawn(write_loop(sink, queue, interval));
    let mut guard = Teardown {
        agent,
        tasks: vec![writer.abort_handle()],
    };
    // The portal hears a heartbeat first, then queued results (a rollback's
    // UpdateFailed); only then does the rest of the agent see the link.
    let mut cpu = None;
    let mut opening = vec![heartbeat(&mut cpu).await];
    opening.append(&mut agent.pending.lock().unwrap_or_else(|p| p.into_inner()));
    for message in opening {
        // A failed send means the writer already died; the select below
        // reports why.
        let _ = outbox.send(Outgoing::Message(message)).await;
    }
    agent.link.set(Some(outbox.clone()));
    let heartbeats = tokio::spawn(heartbeat_loop(outbox.clone(), interval, cpu));
    guard.tasks.push(heartbeats.abort_handle());

    let reason = tokio::select! {
        reason = read_loop(agent, &mut stream, &outbox, interval) => reason,
        written = &mut writer => match written {
            Ok(Ok(())) => "the writer stopped".to_owned(),
            Ok(Err(err)) => format!("writing: {err}"),
            Err(err) => format!("writer task: {err}"),
        },
    };
    info!(%reason, "portal connection ended");

    drop(guard);
    // Dropping the writer's queue is what fails the sends of PTY readers
    // still holding this connection's outbox; wait until it is gone.
    let _ = writer.await;
    agent.shells.detach_all().await;
    Ok(connected.elapsed())
}

/// Ends a connection's tasks and withdraws its outbox, also when [`serve`]
/// is dropped mid-connection (shutdown, update): spawned tasks would
/// otherwise keep the socket open and heartbeating after `run` returned.
struct Teardown<'a> {
    agent: &'a Agent,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        self.agent.link.set(None);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A heartbeat with this machine's facts. CPU usage is the busy share
/// since the previous heartbeat's sample in `cpu` (none on the first).
async fn heartbeat(cpu: &mut Option<CpuTimes>) -> AgentMessage {
    let (mut facts, sample) =
        tokio::task::spawn_blocking(|| (crate::facts::collect(), CpuTimes::sample()))
            .await
            .unwrap_or_default();
    facts.cpu_percent = match (&sample, cpu.as_ref()) {
        (Some(now), Some(earlier)) => now.busy_percent_since(earlier),
        _ => None,
    };
    *cpu = sample;
    AgentMessage::Heartbeat {
        facts,
        build: crate::build_info(),
    }
}

/// Heartbeats after the opening one, every `interval`.
async fn heartbeat_loop(outbox: Outbox, interval: Duration, mut cpu: Option<CpuTimes>) {
    let start = tokio::time::Instant::now() + interval;
    let mut ticks = tokio::time::interval_at(start, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if outbox
            .send(Outgoing::Message(heartbeat(&mut cpu).await))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads until the link ends; returns why it ended.
async fn read_loop(
    agent: &Arc<Agent>,
    stream: &mut SplitStream<Socket>,
    outbox: &Outbox,
    interval: Duration,
) -> String {
    // The writer pings every interval; a healthy portal answers, so this
    // long without any frame means the path to it is dead.
    let silence_limit = interval * 3 + Duration::from_secs(5);
    loop {
        let frame = match tokio::time::timeout(silence_limit, stream.next()).await {
            Err(_) => return format!("nothing from the portal for {silence_limit:?}"),
            Ok(None) => return "the portal closed the connection".to_owned(),
            Ok(Some(Err(err))) => return format!("reading: {err}"),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(text) => match serde_json::from_str::<PortalMessage>(&text) {
                Ok(message) => dispatch(agent, outbox, message).await,
                // A newer portal may send messages this agent does not know.
                Err(err) => warn!(error = %err, "ignoring an unreadable portal message"),
            },
            Message::Binary(data) => shell_input(agent, data).await,
            Message::Close(frame) => {
                return match frame {
                    Some(frame) => format!(
                        "the portal closed the connection: {}",
                        frame.reason.as_str()
                    ),
                    None => "the portal closed the connection".to_owned(),
                };
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

async fn shell_input(agent: &Agent, data: Bytes) {
    let Some(frame) = ShellFrame::decode(&data) else {
        warn!("ignoring a binary frame too short for a session id");
        return;
    };
    let session = frame.session;
    agent
        .shells
        .input(session, data.slice(ShellFrame::HEADER..))
        .await;
}

async fn dispatch(agent: &Arc<Agent>, outbox: &Outbox, message: PortalMessage) {
    match message {
        PortalMessage::Welcome { .. } => debug!("ignoring a repeated Welcome"),
        PortalMessage::RunCommand {
            id,
            command,
            timeout_secs,
        } => {
            let agent = agent.clone();
            tokio::spawn(async move {
                let (output, mut chunks) = mpsc::channel(16);
                let forward = async {
                    while let Some(chunk) = chunks.recv().await {
                        // Output produced while the link is down is lost;
                        // the exit status is not.
                        agent.link.send(chunk).await;
                    }
                };
                let run = crate::commands::run(
                    id,
                    &command,
                    Duration::from_secs(timeout_secs),
                    output,
                    &agent.stop,
                );
                let (exited, ()) = tokio::join!(run, forward);
                agent.link.send_when_connected(exited, &agent.stop).await;
            });
        }
        PortalMessage::ShellAttach {
            session,
            cols,
            rows,
            idle_timeout_secs,
        } => {
            agent
                .shells
                .attach(
                    session,
                    cols,
                    rows,
                    Duration::from_secs(idle_timeout_secs),
                    outbox.clone(),
                )
                .await;
        }
        PortalMessage::ShellDetach { session } => agent.shells.detach(session).await,
        PortalMessage::ShellResize {
            session,
            cols,
            rows,
        } => {
            if let Err(err) = agent.shells.resize(session, cols, rows) {
                debug!(%session, error = %err, "resize failed");
            }
        }
        PortalMessage::ShellClose { session } => agent.shells.close(session),
        PortalMessage::Update {
            version,
            url,
            sha256,
        } => crate::update::start(agent, version, url, sha256),
        PortalMessage::Probe { id, spec } => {
            let agent = agent.clone();
            // Each probe is its own task bounded by its own timeout, so a
            // slow target never holds up the link or other probes. A result
            // for a link that dropped meanwhile is worthless to the portal
            // (it stopped waiting), so it is not kept for the next one.
            tokio::spawn(async move {
                let outcome = probes::run(&spec).await;
                agent
                    .link
                    .send(AgentMessage::ProbeResult { id, outcome })
                    .await;
            });
        }
    }
}

async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut queue: mpsc::Receiver<Outgoing>,
    ping_every: Duration,
) -> Result<(), tungstenite::Error> {
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = queue.recv() => {
                let Some(first) = next else { break };
                sink.feed(encode(first)).await?;
                // Drain a backlog into one flush instead of a syscall per frame.
                for _ in 1..WRITE_BATCH {
                    match queue.try_recv() {
                        Ok(more) => sink.feed(encode(more)).await?,
                        Err(_) => break,
                    }
                }
                sink.flush().await?;
            }
            _ = pings.tick() => sink.send(Message::Ping(Bytes::new())).await?,
        }
    }
    let _ = sink.close().await;
    Ok(())
}

fn encode(outgoing: Outgoing) -> Message {
    match outgoing {
        Outgoing::Message(message) => match serde_json::to_string(&message) {
            Ok(json) => Message::text(json),
            // Our own message types always serialise; should one ever not,
            // a ping keeps the stream well-formed.
            Err(_) => Message::Ping(Bytes::new()),
        },
        Outgoing::Frame(frame) => Message::binary(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_url_maps_schemes_and_keeps_prefixes() {
        let url = |s: &str| connect_url(&s.parse().expect("url")).map(|u| u.to_string());
        assert_eq!(
            url("https://portal.example.com").ok().as_deref(),
            Some("wss://portal.example.com/agent/v1/connect")
        );
        assert_eq!(
            url("http://127.0.0.1:3000/").ok().as_deref(),
            Some("ws://127.0.0.1:3000/agent/v1/connect")
        );
        assert_eq!(
            url("https://example.com/loopback/?x=1").ok().as_deref(),
            Some("wss://example.com/loopback/agent/v1/connect")
        );
        assert!(url("ftp://example.com").is_err());
    }

    #[test]
    fn backoff_doubles_to_the_max_with_jitter_and_resets() {
        let policy = BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
        };
        let mut backoff = Backoff::new(policy);
        let bases = [1, 2, 4, 8, 16, 30, 30];
        for base in bases {
            let delay = backoff.next_delay();
            let base = Duration::from_secs(base);
            assert!(delay >= base / 2 && delay <= base, "{delay:?} for {base:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
        let refused = backoff.max_delay();
        assert!(refused >= Duration::from_secs(15));
        assert!(backoff.next_delay() >= Duration::from_secs(15));
    }

    #[test]
    fn tokens_are_trimmed_and_must_not_be_empty() {
        assert_eq!(
            read_token(&TokenSource::Value(" abc\n".into()))
                .ok()
                .as_deref(),
            Some("abc")
        );
        assert!(matches!(
            read_token(&TokenSource::Value("\n".into())),
            Err(ConnectError::EmptyToken)
        ));
        assert!(matches!(
            read_token(&TokenSource::File("/nonexistent/token".into())),
            Err(ConnectError::Token { .. })
        ));
    }
}
