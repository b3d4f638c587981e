//! One-off commands: `sh -c <command>` in its own process group, output
//! streamed in chunks as it arrives, the whole group killed on timeout.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use protocol::agent::{AgentMessage, CommandId, OutputStream};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Largest output chunk per message.
pub const CHUNK: usize = 16 * 1024;

/// How long output may still trickle in after the shell exits. Bounded
/// because a background process (`daemon &`) can hold the pipes open forever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs `command`, sending `CommandOutput` chunks to `output`, and returns
/// the `CommandExited` to report. A `timeout` of zero means no limit;
/// `stop` kills the command like a timeout does (the agent is shutting down).
pub async fn run(
    id: CommandId,
    command: &str,
    timeout: Duration,
    output: mpsc::Sender<AgentMessage>,
    stop: &CancellationToken,
) -> AgentMessage {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout also takes down what it started.
        .process_group(0)
        .kill_on_drop(true);
    for var in crate::update::INTERNAL_ENV {
        cmd.env_remove(var);
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => return exited(id, None, false, Some(format!("could not start sh: {err}"))),
    };
    let pid = child.id().and_then(|pid| i32::try_from(pid).ok());
    let mut readers: Vec<JoinHandle<()>> = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(pump(
            stdout,
            OutputStream::Stdout,
            id,
            output.clone(),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(pump(stderr, OutputStream::Stderr, id, output)));
    }

    enum End {
        Exited(std::io::Result<ExitStatus>),
        TimedOut,
        Stopped,
    }
    let limit = async {
        if timeout.is_zero() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(timeout).await;
    };
    let end = tokio::select! {
        status = child.wait() => End::Exited(status),
        () = limit => End::TimedOut,
        () = stop.cancelled() => End::Stopped,
    };
    if !matches!(end, End::Exited(_)) {
        // Still unreaped, so the group id cannot have been reused yet.
        if let Some(pid) = pid {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.wait().await;
    }

    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        for reader in &mut readers {
            let _ = reader.await;
        }
    })
    .await;
    if drained.is_err() {
        debug!(%id, "command output still open after exit; no longer reading it");
        for reader in &readers {
            reader.abort();
        }
    }

    match end {
        End::Exited(Ok(status)) => exited(id, exit_code(status), false, None),
        End::Exited(Err(err)) => exited(
            id,
            None,
            false,
            Some(format!("waiting for the command: {err}")),
        ),
        End::TimedOut => exited(id, None, true, None),
        End::Stopped => exited(id, None, false, Some("the agent stopped".into())),
    }
}

/// The exit code, or for a signal the shell's convention of 128 + signal.
pub(crate) fn exit_code(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|sig| 128 + sig))
}

fn exited(
    id: CommandId,
    exit_code: Option<i32>,
    timed_out: bool,
    error: Option<String>,
) -> AgentMessage {
    AgentMessage::CommandExited {
        id,
        exit_code,
        timed_out,
        error,
    }
}

async fn pump(
    mut reader: impl AsyncRead + Unpin,
    stream: OutputStream,
    id: CommandId,
    output: mpsc::Sender<AgentMessage>,
) {
    let mut buf = vec![0; CHUNK];
    let mut decoder = Utf8Chunks::default();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let data = decoder.push(&buf[..n]);
        // Keep reading when nobody listens, or the command blocks on a full pipe.
        if !data.is_empty() {
            let _ = output
                .send(AgentMessage::CommandOutput { id, stream, data })
                .await;
        }
    }
    let data = decoder.finish();
    if !data.is_empty() {
        let _ = output
            .send(AgentMessage::CommandOutput { id, stream, data })
            .await;
    }
}

/// Lossy UTF-8 decoding of a byte stream that holds back a character split
/// across two reads instead of turning both halves into U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let keep = incomplete_tail(&self.pending);
        let text = String::from_utf8_lossy(&self.pending[..self.pending.len() - keep]).into_owned();
        self.pending.drain(..self.pending.len() - keep);
        text
    }

    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// Length of a multi-byte character cut off at the end of `bytes`.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let needed = match byte {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_survive_chunk_boundaries() {
        let text = "grüße 🚀";
        let bytes = text.as_bytes();
        let mut decoder = Utf8Chunks::default();
        let mut out = String::new();
        for byte in bytes {
            out.push_str(&decoder.push(std::slice::from_ref(byte)));
        }
        out.push_str(&decoder.finish());
        assert_eq!(out, text);

        let mut decoder = Utf8Chunks::default();
        assert_eq!(decoder.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(decoder.push(b"\xe2\x82"), "");
        assert_eq!(decoder.finish(), "\u{fffd}");
    }
}
