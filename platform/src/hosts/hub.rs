//! The agents connected to this portal process, and the relay between them
//! and browsers.
//!
//! The server's WebSocket handler registers each authenticated agent here
//! and feeds its messages in; everything else (shell pages, host tasks,
//! updates) reaches an agent through the hub. Heartbeats are kept in memory
//! and written to the database in batches, so ten thousand agents cost a
//! few statements every couple of seconds rather than a thousand a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::BuildInfo;
use protocol::agent::{
    AgentMessage, CommandId, HostFacts, OutputStream, PortalMessage, ProbeId, ShellEnd, ShellFrame,
    ShellSessionId,
};
use protocol::ids::{AgentTokenId, HostId};
use protocol::views::monitoring::{ProbeOutcome, ProbeSpec};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Frames queued towards one agent before senders wait (back-pressure).
const OUTBOUND_QUEUE: usize = 256;
/// Output frames queued towards one browser before the agent's link waits.
const SHELL_QUEUE: usize = 256;
/// Output a command may collect for [`Hub::run_command`].
const MAX_COMMAND_OUTPUT: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HubError {
    #[error("the host's agent is not connected")]
    Offline,
    #[error("the agent's connection closed")]
    Disconnected,
    #[error("the command did not finish within {0} s")]
    Timeout(u64),
}

/// A frame on its way to an agent.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

/// What a browser attached to a shell receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEvent {
    Ready {
        reattached: bool,
    },
    Output(Vec<u8>),
    Closed {
        exit_code: Option<i32>,
        reason: ShellEnd,
    },
    Failed(String),
}

/// What a command's watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandEvent {
    Output {
        stream: OutputStream,
        data: String,
    },
    Exited {
        exit_code: Option<i32>,
        timed_out: bool,
        error: Option<String>,
    },
}

/// How a finished command went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutcome {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// One agent's live connection.
pub struct Link {
    pub host: HostId,
    pub token: AgentTokenId,
    conn: u64,
    outbound: mpsc::Sender<Outbound>,
    closed: CancellationToken,
    commands: Mutex<HashMap<CommandId, mpsc::UnboundedSender<CommandEvent>>>,
    shells: Mutex<HashMap<ShellSessionId, (u64, mpsc::Sender<ShellEvent>)>>,
    /// Probes sent to the agent and awaiting its result. Empty maps do not
    /// allocate, so idle agents cost nothing here.
    probes: Mutex<HashMap<ProbeId, oneshot::Sender<ProbeOutcome>>>,
}

impl Link {
    /// Cancelled when the hub wants this connection gone (revoked token,
    /// replaced by a newer connection of the same host).
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    async fn send(&self, message: &PortalMessage) -> Result<(), HubError> {
        let text = serde_json::to_string(message).map_err(|_| HubError::Disconnected)?;
        self.outbound
            .send(Outbound::Text(text))
            .await
            .map_err(|_| HubError::Disconnected)
    }

    fn try_send(&self, message: &PortalMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = self.outbound.try_send(Outbound::Text(text));
        }
    }
}

#[derive(Debug, Clone)]
struct Beat {
    facts: HostFacts,
    build: BuildInfo,
}

#[derive(Default)]
pub struct Hub {
    links: Mutex<HashMap<HostId, Arc<Link>>>,
    beats: Mutex<HashMap<HostId, Beat>>,
    gone: Mutex<Vec<HostId>>,
    /// Sessions that ended while no browser was attached, to record.
    ends: Mutex<Vec<(ShellSessionId, Option<i32>, ShellEnd)>>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these maps leaves plain data behind;
    // carry on with it rather than poisoning every later request.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Registers an authenticated agent. A connection the host already had
    /// is told to close: the newest one wins. Frames for the agent arrive on
    /// the returned receiver.
    pub fn connect(
        &self,
        host: HostId,
        token: AgentTokenId,
    ) -> (Arc<Link>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let link = Arc::new(Link {
            host,
            token,
            conn: self.next.fetch_add(1, Ordering::Relaxed),
            outbound: tx,
            closed: CancellationToken::new(),
            commands: Mutex::default(),
            shells: Mutex::default(),
            probes: Mutex::default(),
        });
        if let Some(old) = lock(&self.links).insert(host, link.clone()) {
            old.closed.cancel();
        }
        (link, rx)
    }

    /// The connection ended. Watchers of its commands and shells hear so.
    pub fn disconnect(&self, link: &Link) {
        let mut links = lock(&self.links);
        if links.get(&link.host).is_some_and(|l| l.conn == link.conn) {
            links.remove(&link.host);
            lock(&self.gone).push(link.host);
        }
        drop(links);
        lock(&link.commands).clear();
        lock(&link.shells).clear();
        // Dropping the senders tells waiting probes the agent went away.
        lock(&link.probes).clear();
    }

    pub fn is_connected(&self, host: HostId) -> bool {
        lock(&self.links).contains_key(&host)
    }

    pub fn connected(&self) -> usize {
        lock(&self.links).len()
    }

    fn link(&self, host: HostId) -> Result<Arc<Link>, HubError> {
        lock(&self.links)
            .get(&host)
            .cloned()
            .ok_or(HubError::Offline)
    }

    /// Closes every connection made with one of `tokens`.
    pub fn revoke(&self, tokens: &[AgentTokenId]) -> usize {
        let links = lock(&self.links);
        let mut closed = 0;
        for link in links.values().filter(|l| tokens.contains(&l.token)) {
            link.closed.cancel();
            closed += 1;
        }
        closed
    }

    /// The tokens of the connections this process holds.
    pub fn tokens(&self) -> Vec<AgentTokenId> {
        lock(&self.links).values().map(|l| l.token).collect()
    }

    /// Handles a text frame from `link`'s agent.
    pub async fn received(&self, link: &Link, message: AgentMessage) {
        match message {
            AgentMessage::Heartbeat { facts, build } => {
                lock(&self.beats).insert(link.host, Beat { facts, build });
            }
            AgentMessage::CommandOutput { id, stream, data } => {
                if let Some(tx) = lock(&link.commands).get(&id) {
                    let _ = tx.send(CommandEvent::Output { stream, data });
                }
            }
            AgentMessage::CommandExited {
                id,
                exit_code,
                timed_out,
                error,
            } => {
                if let Some(tx) = lock(&link.commands).remove(&id) {
                    let _ = tx.send(CommandEvent::Exited {
                        exit_code,
                        timed_out,
                        error,
                    });
                }
            }
            AgentMessage::ShellReady {
                session,
                reattached,
            } => {
                self.to_shell(link, session, ShellEvent::Ready { reattached })
                    .await;
            }
            AgentMessage::ShellFailed { session, error } => {
                self.to_shell(link, session, ShellEvent::Failed(error))
                    .await;
                lock(&link.shells).remove(&session);
            }
            AgentMessage::ShellClosed {
                session,
                exit_code,
                reason,
            } => {
                let delivered = self
                    .to_shell(link, session, ShellEvent::Closed { exit_code, reason })
                    .await;
                lock(&link.shells).remove(&session);
                if !delivered {
                    lock(&self.ends).push((session, exit_code, reason));
                }
            }
            AgentMessage::UpdateFailed { version, error } => {
                tracing::warn!(host = %link.host, %version, %error, "agent update failed; it keeps its version");
            }
            AgentMessage::ProbeResult { id, outcome } => {
                // No waiter: the probe timed out here already.
                if let Some(tx) = lock(&link.probes).remove(&id) {
                    let _ = tx.send(outcome);
                }
            }
        }
    }

    /// Handles a binary frame (shell output) from `link`'s agent. Waits when
    /// the browser is slow, which slows the agent's link in turn.
    pub async fn received_binary(&self, link: &Link, frame: &[u8]) {
        let Some(frame) = ShellFrame::decode(frame) else {
            return;
        };
        self.to_shell(link, frame.session, ShellEvent::Output(frame.data.to_vec()))
            .await;
    }

    /// Sessions that ended with no browser attached since the last call.
    pub fn take_ended(&self) -> Vec<(ShellSessionId, Option<i32>, ShellEnd)> {
        std::mem::take(&mut *lock(&self.ends))
    }

    /// Whether an attached browser took the event.
    async fn to_shell(&self, link: &Link, session: ShellSessionId, event: ShellEvent) -> bool {
        let tx = lock(&link.shells).get(&session).map(|(_, tx)| tx.clone());
        match tx {
            Some(tx) => tx.send(event).await.is_ok(),
            None => false,
        }
    }

    /// Attaches a browser to `session` on `host`: starts the shell or, when
    /// it runs already, reattaches and replays what it printed meanwhile. A
    /// browser attached before is cut off.
    pub async fn attach_shell(
        &self,
        host: HostId,
        session: ShellSessionId,
        cols: u16,
        rows: u16,
        idle_timeout: Duration,
    ) -> Result<ShellLink, HubError> {
        let link = self.link(host)?;
        let (tx, rx) = mpsc::channel(SHELL_QUEUE);
        let attachment = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&link.shells).insert(session, (attachment, tx));
        link.send(&PortalMessage::ShellAttach {
            session,
            cols,
            rows,
            idle_timeout_secs: idle_timeout.as_secs(),
        })
        .await?;
        Ok(ShellLink {
            link,
            session,
            attachment,
            events: rx,
            ended: false,
        })
    }

    /// Ends a session whether or not a browser is attached (an admin's
    /// "end session", or a revoked grant).
    pub async fn close_shell(&self, host: HostId, session: ShellSessionId) -> Result<(), HubError> {
        self.link(host)?
            .send(&PortalMessage::ShellClose { session })
            .await
    }

    /// Starts `command` on `host`; its output and exit arrive on the
    /// receiver.
    pub async fn start_command(
        &self,
        host: HostId,
        command: &str,
        timeout: Duration,
    ) -> Result<mpsc::UnboundedReceiver<CommandEvent>, HubError> {
        let link = self.link(host)?;
        let id = CommandId(uuid::Uuid::now_v7());
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&link.commands).insert(id, tx);
        let sent = link
            .send(&PortalMessage::RunCommand {
                id,
                command: command.to_string(),
                timeout_secs: timeout.as_secs().max(1),
            })
            .await;
        if let Err(e) = sent {
            lock(&link.commands).remove(&id);
            return Err(e);
        }
        Ok(rx)
    }

    /// Runs `command` on `host` and collects its output (up to 1 MiB per
    /// stream).
    pub async fn run_command(
        &self,
        host: HostId,
        command: &str,
        timeout: Duration,
    ) -> Result<CommandOutcome, HubError> {
        let mut events = self.start_command(host, command, timeout).await?;
        let mut stdout = String::new();
        let mut stderr = String::new();
        // The agent enforces the timeout; allow it a moment to report.
        let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .map_err(|_| HubError::Timeout(timeout.as_secs()))?
                .ok_or(HubError::Disconnected)?;
            match event {
                CommandEvent::Output { stream, data } => {
                    let buf = match stream {
                        OutputStream::Stdout => &mut stdout,
                        OutputStream::Stderr => &mut stderr,
                    };
                    if buf.len() < MAX_COMMAND_OUTPUT {
                        buf.push_str(&data);
                    }
                }
                CommandEvent::Exited {
                    exit_code,
                    timed_out,
                    error,
                } => {
                    return Ok(CommandOutcome {
                        exit_code,
                        timed_out,
                        error,
                        stdout,
                        stderr,
                    });
                }
            }
        }
    }

    /// Runs a network probe on `host`'s agent and waits up to `timeout` for
    /// its result. The agent bounds the probe by the spec's own timeout, so
    /// `timeout` should leave it a moment more to answer.
    pub async fn probe(
        &self,
        host: HostId,
        spec: &ProbeSpec,
        timeout: Duration,
    ) -> Result<ProbeOutcome, HubError> {
        let link = self.link(host)?;
        let id = ProbeId(uuid::Uuid::now_v7());
        let (tx, rx) = oneshot::channel();
        lock(&link.probes).insert(id, tx);
        // Removes the waiter however this ends, including when the caller
        // drops this future.
        let _pending = PendingProbe { link: &link, id };
        link.send(&PortalMessage::Probe {
            id,
            spec: spec.clone(),
        })
        .await?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(HubError::Timeout(timeout.as_secs())),
            Ok(Err(_)) => Err(HubError::Disconnected),
            Ok(Ok(outcome)) => Ok(outcome),
        }
    }

    /// Probes awaiting an agent's result, over all connections (for tests
    /// and metrics).
    pub fn pending_probes(&self) -> usize {
        lock(&self.links)
            .values()
            .map(|link| lock(&link.probes).len())
            .sum()
    }

    /// Sends a message to `host`'s agent (updates).
    pub async fn send(&self, host: HostId, message: &PortalMessage) -> Result<(), HubError> {
        self.link(host)?.send(message).await
    }

    /// Writes the heartbeats received since the last call, and marks hosts
    /// whose agent disconnected from this process offline. Called every
    /// couple of seconds by the server.
    pub async fn flush(&self, db: &PgPool) -> Result<usize, sqlx::Error> {
        let beats: Vec<(HostId, Beat)> = lock(&self.beats).drain().collect();
        let gone: Vec<HostId> = std::mem::take(&mut *lock(&self.gone));
        // A host may have reconnected since, or sent its last beat just
        // before it went: the link table decides.
        let (beats, gone) = {
            let links = lock(&self.links);
            let beats: Vec<(HostId, Beat)> = beats
                .into_iter()
                .filter(|(h, _)| links.contains_key(h))
                .collect();
            let gone: Vec<HostId> = gone
                .into_iter()
                .filter(|h| !links.contains_key(h))
                .collect();
            (beats, gone)
        };
        if !gone.is_empty() {
            sqlx::query("UPDATE hosts SET online = false, updated_at = now() WHERE id = ANY($1)")
                .bind(&gone)
                .execute(db)
                .await?;
        }
        if beats.is_empty() {
            return Ok(0);
        }
        let ids: Vec<HostId> = beats.iter().map(|(h, _)| *h).collect();
        let facts: Vec<serde_json::Value> = beats
            .iter()
            .map(|(_, b)| serde_json::to_value(&b.facts).unwrap_or_default())
            .collect();
        let versions: Vec<String> = beats.iter().map(|(_, b)| b.build.version.clone()).collect();
        sqlx::query(
            "UPDATE hosts h SET online = true, last_seen_at = now(), facts = b.facts,
                 agent_version = b.version
             FROM unnest($1::uuid[], $2::jsonb[], $3::text[]) AS b(id, facts, version)
             WHERE h.id = b.id",
        )
        .bind(&ids)
        .bind(&facts)
        .bind(&versions)
        .execute(db)
        .await?;
        Ok(beats.len())
    }
}

struct PendingProbe<'a> {
    link: &'a Link,
    id: ProbeId,
}

impl Drop for PendingProbe<'_> {
    fn drop(&mut self) {
        let mut probes = lock(&self.link.probes);
        probes.remove(&self.id);
        // Give a burst's memory back once it is over.
        if probes.is_empty() && probes.capacity() > 64 {
            probes.shrink_to_fit();
        }
    }
}

/// A browser's attachment to a shell session. Dropping it detaches: the
/// shell keeps running on the host and buffers its output.
pub struct ShellLink {
    link: Arc<Link>,
    session: ShellSessionId,
    attachment: u64,
    events: mpsc::Receiver<ShellEvent>,
    ended: bool,
}

impl ShellLink {
    /// The next event; `None` once the agent's link is gone or another
    /// browser took the session over.
    pub async fn next(&mut self) -> Option<ShellEvent> {
        let event = self.events.recv().await;
        if matches!(
            event,
            Some(ShellEvent::Closed { .. } | ShellEvent::Failed(_))
        ) {
            self.ended = true;
        }
        event
    }

    /// Keystrokes (or pasted text) for the shell.
    pub async fn input(&self, data: &[u8]) -> Result<(), HubError> {
        self.link
            .outbound
            .send(Outbound::Binary(ShellFrame::encode(self.session, data)))
            .await
            .map_err(|_| HubError::Disconnected)
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), HubError> {
        self.link
            .send(&PortalMessage::ShellResize {
                session: self.session,
                cols,
                rows,
            })
            .await
    }

    /// Ends the session on the host.
    pub async fn close(&self) -> Result<(), HubError> {
        self.link
            .send(&PortalMessage::ShellClose {
                session: self.session,
            })
            .await
    }

    /// Whether the agent's connection is being closed.
    pub fn agent_closed(&self) -> &CancellationToken {
        &self.link.closed
    }
}

impl Drop for ShellLink {
    fn drop(&mut self) {
        let mut shells = lock(&self.link.shells);
        let ours = shells
            .get(&self.session)
            .is_some_and(|(attachment, _)| *attachment == self.attachment);
        if ours {
            shells.remove(&self.session);
            drop(shells);
            if !self.ended {
                self.link.try_send(&PortalMessage::ShellDetach {
                    session: self.session,
                });
            }
        }
    }
}
