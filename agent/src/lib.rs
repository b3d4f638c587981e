//! The Loopback host agent: dials out to the portal over a WebSocket, reports
//! heartbeats with host facts, runs commands, hosts PTY shell sessions that
//! survive a dropped portal link, and replaces itself on request.
//!
//! The binary is a thin wrapper around [`run`]; tests and the portal's
//! benchmarks run the same agent in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), agent::AgentError> {
//! let config = agent::Config::new(
//!     "http://127.0.0.1:3000".parse().expect("url"),
//!     agent::TokenSource::Value("agent-token".into()),
//! );
//! let stop = agent::CancellationToken::new();
//! let running = tokio::spawn(agent::run(config, stop.clone()));
//! // ... drive the portal ...
//! stop.cancel();
//! # let _ = running.await;
//! # Ok(()) }
//! ```

pub mod commands;
pub mod connection;
pub mod facts;
pub mod link;
pub mod shell;
pub mod update;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use protocol::BuildInfo;
use protocol::agent::AgentMessage;
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use url::Url;

pub use connection::BackoffPolicy;
/// Re-exported so callers of [`run`] need not depend on tokio-util.
pub use tokio_util::sync::CancellationToken;

/// The name the agent reports in its heartbeats.
pub const NAME: &str = "loopback-agent";
/// This build's version, reported in heartbeats and compared on update.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The build this agent reports.
pub fn build_info() -> BuildInfo {
    BuildInfo::new(NAME, VERSION)
}

/// Where the agent token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// Read (and trimmed) before every connection attempt, so replacing the
    /// file rotates the token without a restart.
    File(PathBuf),
    /// A token held in memory (tests, benchmarks).
    Value(String),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Portal base URL (http, https, ws or wss); a path prefix is kept.
    pub portal: Url,
    pub token: TokenSource,
    pub backoff: BackoffPolicy,
    /// TLS settings for `https`/`wss` portals. `None` uses the system's
    /// roots with rustls on ring; tests pass a config trusting their own CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The installed agent binary that `Update` replaces. `None` refuses
    /// updates, which is what in-process agents want.
    pub executable: Option<PathBuf>,
    /// Set when this process was started by a self-update: unless a portal
    /// welcomes it within this time, `<executable>.previous` is restored and
    /// [`run`] returns [`Stopped::RolledBack`].
    pub rollback_after: Option<Duration>,
    /// Sent once, right after the first heartbeat of the first connection
    /// (e.g. the `UpdateFailed` of a rolled-back update).
    pub initial_messages: Vec<AgentMessage>,
    /// The shell for PTY sessions; `None` is the user's login shell.
    pub shell_program: Option<PathBuf>,
}

impl Config {
    pub fn new(portal: Url, token: TokenSource) -> Self {
        Self {
            portal,
            token,
            backoff: BackoffPolicy::default(),
            tls: None,
            executable: None,
            rollback_after: None,
            initial_messages: Vec::new(),
            shell_program: None,
        }
    }
}

/// Why [`run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The cancellation token fired.
    Shutdown,
    /// A verified new binary now sits at `executable`; the caller restarts
    /// into it (see [`update::exec`]) and rolls back if that fails.
    Updated {
        executable: PathBuf,
        version: String,
    },
    /// This binary (started by an update) never reached the portal, so the
    /// previous one was restored at `executable`; the caller restarts into it.
    RolledBack { executable: PathBuf },
    /// The token file was removed: the agent is uninstalled (a deleted
    /// host), so it stops instead of knocking forever.
    Uninstalled,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("portal URL {0} must use http, https, ws or wss")]
    PortalScheme(Url),
}

/// State that outlives a single portal connection.
pub(crate) struct Agent {
    pub(crate) link: link::Link,
    pub(crate) shells: shell::Shells,
    pub(crate) executable: Option<PathBuf>,
    pub(crate) pending: std::sync::Mutex<Vec<AgentMessage>>,
    pub(crate) updating: AtomicBool,
    pub(crate) updated: mpsc::Sender<String>,
    /// Cancelled when [`run`] ends: stops commands and updates in flight.
    pub(crate) stop: CancellationToken,
}

/// Runs the agent until `shutdown` fires, an update is installed, or a
/// failed update is rolled back. Connection failures are retried forever.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Stopped, AgentError> {
    connection::connect_url(&config.portal)?;
    let link = link::Link::new();
    let (updated_tx, mut updated_rx) = mpsc::channel(1);
    let stop = shutdown.child_token();
    let agent = Arc::new(Agent {
        shells: shell::Shells::new(link.clone(), config.shell_program.clone()),
        link,
        executable: config.executable.clone(),
        pending: std::sync::Mutex::new(config.initial_messages.clone()),
        updating: AtomicBool::new(false),
        updated: updated_tx,
        stop: stop.clone(),
    });
    let welcomed = AtomicBool::new(false);
    let mut backoff = connection::Backoff::new(config.backoff);

    let mut rollback_armed = config.rollback_after.is_some();
    let rollback_watch = async {
        tokio::time::sleep(config.rollback_after.unwrap_or(Duration::MAX)).await;
        // Once any portal has welcomed this binary the update counts as good;
        // a later outage is the network's fault, not the binary's.
        if welcomed.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(rollback_watch);

    let stopped = loop {
        let wait = tokio::select! {
            () = shutdown.cancelled() => break Stopped::Shutdown,
            Some(version) = updated_rx.recv() => {
                break updated(&config, version);
            }
            () = &mut rollback_watch, if rollback_armed => {
                match roll_back(&config) {
                    Some(stopped) => break stopped,
                    None => { rollback_armed = false; continue; }
                }
            }
            outcome = connection::serve(&agent, &config, &welcomed) => match outcome {
                Ok(connected) => {
                    if connected > config.backoff.stable_after {
                        backoff.reset();
                    }
                    let wait = backoff.next_delay();
                    info!(lasted = ?connected, retry_in = ?wait, "portal connection closed; reconnecting");
                    wait
                }
                Err(connection::ConnectError::Refused(status)) => {
                    let wait = backoff.max_delay();
                    error!(%status, retry_in = ?wait, "agent token refused; it may have been revoked");
                    wait
                }
                Err(connection::ConnectError::Token { source, path })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    info!(path = %path.display(), "the token file was removed; stopping");
                    break Stopped::Uninstalled;
                }
                Err(err) => {
                    let wait = backoff.next_delay();
                    warn!(error = %err, retry_in = ?wait, "portal connection failed");
                    wait
                }
            },
        };
        tokio::select! {
            () = shutdown.cancelled() => break Stopped::Shutdown,
            Some(version) = updated_rx.recv() => break updated(&config, version),
            () = &mut rollback_watch, if rollback_armed => {
                match roll_back(&config) {
                    Some(stopped) => break stopped,
                    None => rollback_armed = false,
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    };
    stop.cancel();
    agent.shells.shutdown().await;
    Ok(stopped)
}

fn updated(config: &Config, version: String) -> Stopped {
    match &config.executable {
        Some(executable) => Stopped::Updated {
            executable: executable.clone(),
            version,
        },
        // Updates are refused without an executable, so this cannot happen;
        // keep running rather than panic if it somehow does.
        None => Stopped::Shutdown,
    }
}

/// Restores the previous binary; `None` when there is nothing to restore,
/// in which case the agent keeps running as it is.
fn roll_back(config: &Config) -> Option<Stopped> {
    let executable = config.executable.as_ref()?;
    error!(
        "no portal accepted this agent within the rollback window; restoring the previous binary"
    );
    match update::rollback(executable) {
        Ok(()) => Some(Stopped::RolledBack {
            executable: executable.clone(),
        }),
        Err(err) => {
            error!(error = %err, "rollback failed; keeping this binary");
            None
        }
    }
}
