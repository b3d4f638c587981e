//! The agent ⇄ portal protocol, and the browser ⇄ portal terminal protocol.
//!
//! The agent dials `GET /agent/v1/connect` with `Authorization: Bearer
//! <agent token>` and the header [`PROTOCOL_HEADER`]. Control messages are
//! JSON text frames ([`AgentMessage`] up, [`PortalMessage`] down); shell bytes
//! travel as binary frames framed by [`ShellFrame`] so a megabyte of `cat`
//! output is never base64-encoded.
//!
//! The browser's terminal opens `GET /api/v1/hosts/{host}/shell/{session}/attach`
//! with the session's reconnection token; binary frames carry the terminal's
//! bytes unchanged both ways, text frames carry [`TerminalControl`] and
//! [`TerminalEvent`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::BuildInfo;
pub use crate::ids::{CommandId, ProbeId, ShellSessionId};
use crate::views::monitoring::{ProbeOutcome, ProbeSpec};

/// Header the agent sends with its protocol version ([`crate::AGENT_PROTOCOL_VERSION`]).
pub const PROTOCOL_HEADER: &str = "x-loopback-agent-protocol";
/// Header the agent sends with its build version.
pub const VERSION_HEADER: &str = "x-loopback-agent-version";
/// The path agents connect to.
pub const CONNECT_PATH: &str = "/agent/v1/connect";

/// What the agent knows about its machine, sent with every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    /// `PRETTY_NAME` from os-release, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub uptime_secs: u64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    pub cpus: u32,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// The root filesystem.
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
    /// Busy share of all CPUs since the previous heartbeat (0–100); absent
    /// from agents before monitoring and in the first heartbeat.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
}

/// Agent → portal control messages (JSON text frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Heartbeat {
        facts: HostFacts,
        build: BuildInfo,
    },
    /// A chunk of a running command's output.
    CommandOutput {
        id: CommandId,
        stream: OutputStream,
        /// Lossy UTF-8: commands are for humans and for logs.
        data: String,
    },
    /// The command ended. `exit_code` is `None` when it was killed (timeout)
    /// or could not start (`error` says why).
    CommandExited {
        id: CommandId,
        exit_code: Option<i32>,
        timed_out: bool,
        error: Option<String>,
    },
    /// A PTY runs for the session (new, or reattached: the buffered output
    /// follows as binary frames).
    ShellReady {
        session: ShellSessionId,
        reattached: bool,
    },
    /// The shell could not start or the session is unknown.
    ShellFailed {
        session: ShellSessionId,
        error: String,
    },
    /// The shell ended (exited, closed, or idle too long).
    ShellClosed {
        session: ShellSessionId,
        exit_code: Option<i32>,
        reason: ShellEnd,
    },
    /// Result of an [`PortalMessage::Update`]: the agent reports before it
    /// restarts into the new binary, and the new binary reports its version
    /// in its first heartbeat.
    UpdateFailed {
        version: String,
        error: String,
    },
    /// The result of a [`PortalMessage::Probe`].
    ProbeResult {
        id: ProbeId,
        outcome: ProbeOutcome,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShellEnd {
    /// The shell process exited by itself (`exit`).
    Exited,
    /// The portal asked to close it (the user, or an admin).
    Closed,
    /// No input or output for the idle timeout.
    Idle,
}

/// Portal → agent control messages (JSON text frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PortalMessage {
    /// First message after the upgrade.
    Welcome { heartbeat_interval_secs: u64 },
    /// Run `sh -c <command>`; output streams back, then `CommandExited`.
    RunCommand {
        id: CommandId,
        command: String,
        timeout_secs: u64,
    },
    /// Start a PTY for `session` with the login shell, or reattach to the
    /// running one: the agent then replays the output it buffered while no
    /// browser was attached.
    ShellAttach {
        session: ShellSessionId,
        cols: u16,
        rows: u16,
        idle_timeout_secs: u64,
    },
    /// The browser went away; keep the shell running and buffer its output.
    ShellDetach { session: ShellSessionId },
    ShellResize {
        session: ShellSessionId,
        cols: u16,
        rows: u16,
    },
    /// End the session: hang up the PTY and kill the shell.
    ShellClose { session: ShellSessionId },
    /// Replace the agent binary with `version` from `url`, if its SHA-256
    /// matches; roll back when the new binary does not start.
    Update {
        version: String,
        url: String,
        sha256: String,
    },
    /// Run a network probe (HTTP, TLS, TCP, DNS) for an agent-backed
    /// monitoring source and answer with `ProbeResult`.
    Probe { id: ProbeId, spec: ProbeSpec },
}

/// Shell bytes on the agent link: the 16-byte session id, then the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellFrame<'a> {
    pub session: ShellSessionId,
    pub data: &'a [u8],
}

impl<'a> ShellFrame<'a> {
    pub const HEADER: usize = 16;

    pub fn encode(session: ShellSessionId, data: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(Self::HEADER + data.len());
        frame.extend_from_slice(session.0.as_bytes());
        frame.extend_from_slice(data);
        frame
    }

    /// `None` for a frame too short to carry a session id.
    pub fn decode(frame: &'a [u8]) -> Option<Self> {
        let (id, data) = frame.split_at_checked(Self::HEADER)?;
        let id: [u8; 16] = id.try_into().ok()?;
        Some(Self {
            session: ShellSessionId(Uuid::from_bytes(id)),
            data,
        })
    }
}

/// Browser → portal terminal control (JSON text frames). Keystrokes are
/// binary frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalControl {
    Resize {
        cols: u16,
        rows: u16,
    },
    /// End the session (the "Close" button), not just this browser's link.
    Close,
}

/// Portal → browser terminal events (JSON text frames). Output is binary
/// frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalEvent {
    /// The shell runs; `reattached` when this is an existing session.
    Ready { reattached: bool },
    /// The session ended; the page shows why and stops reconnecting.
    Ended {
        reason: String,
        exit_code: Option<i32>,
    },
    /// Something went wrong (host offline, session unknown).
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_frames_round_trip_and_refuse_short_input() {
        let session = ShellSessionId(Uuid::from_u128(0x1234));
        let frame = ShellFrame::encode(session, b"hello");
        let back = ShellFrame::decode(&frame).expect("decodes");
        assert_eq!(back.session, session);
        assert_eq!(back.data, b"hello");
        assert!(ShellFrame::decode(&frame[..10]).is_none());
        let empty = ShellFrame::encode(session, b"");
        assert_eq!(ShellFrame::decode(&empty).map(|f| f.data.len()), Some(0));
    }

    #[test]
    fn messages_are_tagged_by_type() {
        let msg = PortalMessage::ShellResize {
            session: ShellSessionId(Uuid::nil()),
            cols: 80,
            rows: 24,
        };
        let json = serde_json::to_string(&msg).expect("serialises");
        assert!(json.starts_with(r#"{"type":"shell_resize""#), "{json}");
        let control: TerminalControl =
            serde_json::from_str(r#"{"type":"resize","cols":100,"rows":30}"#).expect("parses");
        assert_eq!(
            control,
            TerminalControl::Resize {
                cols: 100,
                rows: 30
            }
        );
    }
}
