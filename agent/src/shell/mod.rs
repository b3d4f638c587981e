//! PTY shell sessions that outlive the portal link.
//!
//! A session's output always goes into its ring buffer and, while a browser
//! is attached, also to the outbox of the connection that attached it. The
//! ring and the attachment sit behind one async lock held across the send,
//! so an attaching browser gets `ShellReady`, the replay and then live output
//! in order, and a slow link stalls the PTY reader (back-pressure) instead
//! of buffering without bound. When the link drops the send fails and the
//! session quietly carries on detached.

pub mod pty;
pub mod ring;

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use protocol::agent::{AgentMessage, ShellEnd, ShellFrame, ShellSessionId};
use tokio::io::unix::AsyncFd;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::link::{Link, Outbox, Outgoing};
use ring::{RING_CAPACITY, Ring};

/// Bytes read from the PTY per binary frame at most.
pub const CHUNK: usize = 32 * 1024;
/// Keystroke batches queued per session before the link reader waits.
const INPUT_QUEUE: usize = 256;
/// How long the link reader waits for a terminal that does not take input
/// before dropping it: every session's traffic waits meanwhile.
const INPUT_STALL: Duration = Duration::from_secs(5);
/// How long a hung-up shell gets before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// How long output may still drain after the shell exits; bounded because a
/// background job can keep the terminal open.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Ended sessions remembered, so a late `ShellAttach` (e.g. after a link
/// outage) learns that the shell ended instead of silently getting a new one.
const ENDED_REMEMBERED: usize = 256;

/// All shell sessions of this agent.
#[derive(Clone)]
pub struct Shells {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    program: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    live: HashMap<ShellSessionId, Arc<Session>>,
    ended: VecDeque<(ShellSessionId, Option<i32>, ShellEnd)>,
    supervisors: Vec<JoinHandle<()>>,
}

impl Shells {
    /// `link` receives `ShellClosed` for sessions that end while detached;
    /// `program` overrides the login shell (tests).
    pub fn new(link: Link, program: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                link,
                program,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the map half-updated (every update
        // is a single insert or remove), so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: ShellSessionId) -> Option<Arc<Session>> {
        self.state().live.get(&id).cloned()
    }

    /// Number of running sessions.
    pub fn len(&self) -> usize {
        self.state().live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `ShellAttach`: starts the session or reattaches to it, then streams
    /// its output to `outbox` until detached or the link drops.
    pub async fn attach(
        &self,
        id: ShellSessionId,
        cols: u16,
        rows: u16,
        idle_timeout: Duration,
        outbox: Outbox,
    ) {
        if let Some(session) = self.get(id) {
            session.set_idle_timeout(idle_timeout);
            if let Err(err) = pty::resize(session.master.get_ref(), cols, rows) {
                debug!(%id, error = %err, "resize on reattach failed");
            }
            session.attach(&outbox, true).await;
            return;
        }
        let ended = self
            .state()
            .ended
            .iter()
            .find(|(ended, _, _)| *ended == id)
            .map(|(_, code, reason)| (*code, *reason));
        if let Some((exit_code, reason)) = ended {
            let _ = outbox
                .send(Outgoing::Message(AgentMessage::ShellClosed {
                    session: id,
                    exit_code,
                    reason,
                }))
                .await;
            return;
        }
        let session = match self.spawn(id, cols, rows, idle_timeout) {
            Ok(session) => session,
            Err(err) => {
                warn!(%id, error = %err, "shell failed to start");
                let _ = outbox
                    .send(Outgoing::Message(AgentMessage::ShellFailed {
                        session: id,
                        error: err.to_string(),
                    }))
                    .await;
                return;
            }
        };
        session.attach(&outbox, false).await;
    }

    fn spawn(
        &self,
        id: ShellSessionId,
        cols: u16,
        rows: u16,
        idle_timeout: Duration,
    ) -> std::io::Result<Arc<Session>> {
        let pty::Pty { master, child } = pty::spawn(self.inner.program.as_deref(), cols, rows)?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| std::io::Error::other("the shell exited before it started"))?;
        info!(%id, %pid, "shell session started");
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        let session = Arc::new(Session {
            id,
            pid,
            master,
            input: input_tx,
            input_stalled: AtomicBool::new(false),
            output: tokio::sync::Mutex::new(Output {
                ring: Ring::new(RING_CAPACITY),
                attached: None,
            }),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            idle_timeout_ms: AtomicU64::new(millis(idle_timeout)),
            close: CancellationToken::new(),
        });
        let reader = tokio::spawn(pump_output(session.clone()));
        let writer = tokio::spawn(pump_input(session.clone(), input_rx));
        let supervisor = tokio::spawn(supervise(
            self.clone(),
            session.clone(),
            child,
            reader,
            writer,
        ));
        let mut state = self.state();
        state.supervisors.retain(|task| !task.is_finished());
        state.supervisors.push(supervisor);
        state.live.insert(id, session.clone());
        Ok(session)
    }

    /// `ShellDetach`: live output stops; the ring keeps filling.
    pub async fn detach(&self, id: ShellSessionId) {
        if let Some(session) = self.get(id) {
            session.output.lock().await.attached = None;
        }
    }

    /// The link is gone: every session carries on detached.
    pub async fn detach_all(&self) {
        let sessions: Vec<_> = self.state().live.values().cloned().collect();
        for session in sessions {
            session.output.lock().await.attached = None;
        }
    }

    pub fn resize(&self, id: ShellSessionId, cols: u16, rows: u16) -> std::io::Result<()> {
        match self.get(id) {
            Some(session) => pty::resize(session.master.get_ref(), cols, rows),
            None => Ok(()),
        }
    }

    /// Keystrokes for a session; dropped for unknown sessions (the shell
    /// may have just ended). A terminal that stops reading input holds up
    /// the caller for at most [`INPUT_STALL`]; after that its input is
    /// dropped until it reads again, so one stuck program cannot freeze the
    /// link for every other session.
    pub async fn input(&self, id: ShellSessionId, data: Bytes) {
        let Some(session) = self.get(id) else { return };
        let data = match session.input.try_send(data) {
            Ok(()) => {
                session.input_stalled.store(false, Ordering::Relaxed);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(data)) => data,
        };
        if session.input_stalled.load(Ordering::Relaxed) {
            return;
        }
        if tokio::time::timeout(INPUT_STALL, session.input.send(data))
            .await
            .is_err()
        {
            warn!(%id, "the terminal is not reading its input; dropping keystrokes");
            session.input_stalled.store(true, Ordering::Relaxed);
        }
    }

    /// `ShellClose`: kill the shell; `ShellClosed` follows once it is gone.
    pub fn close(&self, id: ShellSessionId) {
        if let Some(session) = self.get(id) {
            session.close.cancel();
        }
    }

    /// Ends every session and waits for them to be gone.
    pub async fn shutdown(&self) {
        let supervisors = {
            let mut state = self.state();
            for session in state.live.values() {
                session.close.cancel();
            }
            std::mem::take(&mut state.supervisors)
        };
        for supervisor in supervisors {
            let _ = supervisor.await;
        }
    }

    fn ended(&self, session: &Session, exit_code: Option<i32>, reason: ShellEnd) {
        let mut state = self.state();
        state.live.remove(&session.id);
        if state.ended.len() >= ENDED_REMEMBERED {
            state.ended.pop_front();
        }
        state.ended.push_back((session.id, exit_code, reason));
    }
}

struct Session {
    id: ShellSessionId,
    /// Also the process group: the shell leads its own session.
    pid: Pid,
    master: AsyncFd<OwnedFd>,
    input: mpsc::Sender<Bytes>,
    input_stalled: AtomicBool,
    output: tokio::sync::Mutex<Output>,
    started: Instant,
    last_activity_ms: AtomicU64,
    idle_timeout_ms: AtomicU64,
    /// Cancelled when the portal (or shutdown) ends the session.
    close: CancellationToken,
}

struct Output {
    ring: Ring,
    attached: Option<Outbox>,
}

impl Session {
    fn touch(&self) {
        self.last_activity_ms
            .store(millis(self.started.elapsed()), Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    fn set_idle_timeout(&self, timeout: Duration) {
        self.idle_timeout_ms
            .store(millis(timeout), Ordering::Relaxed);
    }

    /// Sends `ShellReady` and the replay, then publishes the outbox for live
    /// output, all under the output lock so nothing overtakes the replay.
    async fn attach(&self, outbox: &Outbox, reattached: bool) {
        let mut output = self.output.lock().await;
        let ready = Outgoing::Message(AgentMessage::ShellReady {
            session: self.id,
            reattached,
        });
        if outbox.send(ready).await.is_err() {
            return;
        }
        let (older, newer) = output.ring.as_slices();
        for part in [older, newer] {
            for chunk in part.chunks(CHUNK) {
                if outbox
                    .send(Outgoing::Frame(ShellFrame::encode(self.id, chunk)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        output.attached = Some(outbox.clone());
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// PTY → ring (+ attached link), until the terminal hangs up.
async fn pump_output(session: Arc<Session>) {
    loop {
        let mut frame = Vec::with_capacity(ShellFrame::HEADER + CHUNK);
        frame.extend_from_slice(session.id.0.as_bytes());
        frame.resize(ShellFrame::HEADER + CHUNK, 0);
        let n = match pty::read(&session.master, &mut frame[ShellFrame::HEADER..]).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) => {
                debug!(id = %session.id, error = %err, "reading the terminal failed");
                break;
            }
        };
        frame.truncate(ShellFrame::HEADER + n);
        session.touch();
        let mut output = session.output.lock().await;
        output.ring.push(&frame[ShellFrame::HEADER..]);
        if let Some(outbox) = &output.attached
            && outbox.send(Outgoing::Frame(frame)).await.is_err()
        {
            // The connection that attached us is gone; keep buffering.
            output.attached = None;
        }
    }
}

/// Link → PTY.
async fn pump_input(session: Arc<Session>, mut input: mpsc::Receiver<Bytes>) {
    while let Some(data) = input.recv().await {
        session.touch();
        if let Err(err) = pty::write_all(&session.master, &data).await {
            debug!(id = %session.id, error = %err, "writing to the terminal failed");
            break;
        }
    }
}

/// Resolves when the session has seen neither input nor output for its
/// idle timeout (zero: never).
async fn idle_expired(session: &Session) {
    loop {
        let timeout = Duration::from_millis(session.idle_timeout_ms.load(Ordering::Relaxed));
        let idle = session.idle_for();
        if !timeout.is_zero() && idle >= timeout {
            return;
        }
        // Re-check at least every second: a reattach may change the timeout.
        let wait = if timeout.is_zero() {
            Duration::from_secs(1)
        } else {
            (timeout - idle).min(Duration::from_secs(1))
        };
        tokio::time::sleep(wait).await;
    }
}

async fn supervise(
    shells: Shells,
    session: Arc<Session>,
    mut child: Child,
    mut reader: JoinHandle<()>,
    writer: JoinHandle<()>,
) {
    let id = session.id;
    let (status, reason) = tokio::select! {
        status = child.wait() => (status.ok(), ShellEnd::Exited),
        () = session.close.cancelled() => (None, ShellEnd::Closed),
        () = idle_expired(&session) => (None, ShellEnd::Idle),
    };
    let status = match status {
        Some(status) => Some(status),
        None => {
            // Hang up like a closed terminal window would; shells that
            // ignore it get SIGKILL. The shell is unreaped, so its group id
            // is still ours to signal.
            let _ = killpg(session.pid, Signal::SIGHUP);
            let _ = killpg(session.pid, Signal::SIGCONT);
            match tokio::time::timeout(KILL_GRACE, child.wait()).await {
                Ok(status) => status.ok(),
                Err(_) => {
                    let _ = killpg(session.pid, Signal::SIGKILL);
                    child.wait().await.ok()
                }
            }
        }
    };
    if tokio::time::timeout(DRAIN_GRACE, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    writer.abort();
    let exit_code = if reason == ShellEnd::Exited {
        status.and_then(crate::commands::exit_code)
    } else {
        None
    };
    info!(%id, ?reason, ?exit_code, "shell session ended");
    shells.ended(&session, exit_code, reason);
    let closed = AgentMessage::ShellClosed {
        session: id,
        exit_code,
        reason,
    };
    // After the output, on the same outbox, so the browser sees the last
    // lines before the end; detached sessions report on the live link.
    let attached = session.output.lock().await.attached.take();
    let delivered = match attached {
        Some(outbox) => outbox.send(Outgoing::Message(closed.clone())).await.is_ok(),
        None => false,
    };
    if !delivered {
        shells.inner.link.send(closed).await;
    }
}
