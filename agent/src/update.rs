//! Self-update: download, verify, smoke-test, swap, restart, roll back.
//!
//! The new binary is staged next to the installed one (same filesystem, so
//! the final rename is atomic), the old one is kept as `<exe>.previous`, and
//! the new process is started with [`UPDATED_FROM_ENV`]. If it cannot reach
//! a portal within the rollback window it restores `.previous` and restarts
//! into it with [`ROLLED_BACK_FROM_ENV`], which makes the old binary report
//! `UpdateFailed` once it is connected again.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::agent::AgentMessage;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::Agent;

/// Set for a binary started by an update: the version it replaced.
pub const UPDATED_FROM_ENV: &str = "LOOPBACK_AGENT_UPDATED_FROM";
/// Set for a binary restored by a rollback: the version that failed.
pub const ROLLED_BACK_FROM_ENV: &str = "LOOPBACK_AGENT_ROLLED_BACK_FROM";
/// Overrides the rollback window in seconds (tests).
pub const ROLLBACK_SECS_ENV: &str = "LOOPBACK_AGENT_ROLLBACK_SECS";
/// The agent's own variables, kept out of shells and commands.
pub const INTERNAL_ENV: [&str; 3] = [UPDATED_FROM_ENV, ROLLED_BACK_FROM_ENV, ROLLBACK_SECS_ENV];

/// How long an updated binary has to be welcomed by a portal.
pub const DEFAULT_ROLLBACK: Duration = Duration::from_secs(60);
/// How long `<new> --version` may take.
pub const SMOKE_TEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Refuse downloads beyond this; an agent binary is a few tens of MB.
const MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("self-update is disabled for this agent")]
    Disabled,
    #[error("another update is in progress")]
    Busy,
    #[error("the expected SHA-256 is not 64 hex digits")]
    BadChecksum,
    #[error("downloading {url}: {source}")]
    Download { url: String, source: reqwest::Error },
    #[error("downloading {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the download exceeds {MAX_DOWNLOAD_BYTES} bytes")]
    TooLarge,
    #[error("SHA-256 mismatch: expected {expected}, downloaded {actual}")]
    Mismatch { expected: String, actual: String },
    #[error("the new binary failed its smoke test: {0}")]
    SmokeTest(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("no previous binary at {}", .0.display())]
    NoPrevious(PathBuf),
    #[error("cannot pass {0:?} to exec: it contains a NUL byte")]
    Nul(OsString),
    #[error("exec {}: {source}", path.display())]
    Exec { path: PathBuf, source: nix::Error },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UpdateError {
    let path = path.to_path_buf();
    move |source| UpdateError::Io {
        action,
        path,
        source,
    }
}

fn with_suffix(exe: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix);
    name.push(exe.file_name().unwrap_or(exe.as_os_str()));
    name.push(suffix);
    exe.with_file_name(name)
}

/// Where the replaced binary is kept: `<exe>.previous`.
pub fn previous_path(exe: &Path) -> PathBuf {
    with_suffix(exe, "", ".previous")
}

/// Where a download is staged: beside `exe`, so renaming it over `exe` is
/// atomic.
pub fn staging_path(exe: &Path) -> PathBuf {
    with_suffix(exe, ".", ".new")
}

/// Downloads `url` to `dest`, refusing it (and removing `dest`) unless its
/// SHA-256 is `sha256`.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    sha256: &str,
    dest: &Path,
) -> Result<(), UpdateError> {
    let expected = hex::decode(sha256.trim())
        .ok()
        .filter(|digest| digest.len() == 32)
        .ok_or(UpdateError::BadChecksum)?;
    let result = download_to(client, url, &expected, dest).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

async fn download_to(
    client: &reqwest::Client,
    url: &str,
    expected: &[u8],
    dest: &Path,
) -> Result<(), UpdateError> {
    let failed = |source| UpdateError::Download {
        url: url.to_owned(),
        source,
    };
    let mut response = client.get(url).send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(UpdateError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o700)
        .open(dest)
        .await
        .map_err(io_error("creating", dest))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        size += chunk.len() as u64;
        if size > MAX_DOWNLOAD_BYTES {
            return Err(UpdateError::TooLarge);
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(io_error("writing", dest))?;
    }
    file.sync_all().await.map_err(io_error("syncing", dest))?;
    drop(file);
    let actual = hasher.finalize();
    if actual.as_slice() != expected {
        return Err(UpdateError::Mismatch {
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        });
    }
    tokio::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(io_error("making executable", dest))?;
    Ok(())
}

/// Runs `<binary> --version`, which must exit 0 within `timeout`.
pub async fn smoke_test(binary: &Path, timeout: Duration) -> Result<(), UpdateError> {
    let mut attempts = 0;
    let mut child = loop {
        let spawned = tokio::process::Command::new(binary)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(child) => break child,
            // A process forked elsewhere in the agent while the download was
            // still open for writing holds that fd until it execs; wait it out.
            Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(UpdateError::SmokeTest(format!("cannot start it: {err}"))),
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(UpdateError::SmokeTest(format!("`--version` {status}"))),
        Ok(Err(err)) => Err(UpdateError::SmokeTest(err.to_string())),
        Err(_) => Err(UpdateError::SmokeTest(format!(
            "`--version` did not finish within {} s",
            timeout.as_secs()
        ))),
    }
}

/// Puts `new` in place of `exe`, keeping the old binary as
/// `<exe>.previous`. `exe` exists at every instant: the old one is linked
/// (or copied) aside first and the new one renamed over it.
pub fn install(new: &Path, exe: &Path) -> Result<(), UpdateError> {
    let previous = previous_path(exe);
    match std::fs::remove_file(&previous) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("removing", &previous)(err));
        }
        _ => {}
    }
    if std::fs::hard_link(exe, &previous).is_err() {
        std::fs::copy(exe, &previous).map_err(io_error("keeping a copy of", exe))?;
    }
    std::fs::rename(new, exe).map_err(io_error("moving the new binary to", exe))?;
    Ok(())
}

/// Restores `<exe>.previous` over `exe`.
pub fn rollback(exe: &Path) -> Result<(), UpdateError> {
    let previous = previous_path(exe);
    if !previous.exists() {
        return Err(UpdateError::NoPrevious(previous));
    }
    std::fs::rename(&previous, exe).map_err(io_error("restoring", exe))
}

/// Downloads, verifies, smoke-tests and installs a new binary over `exe`.
/// On any failure `exe` is untouched and the staged file removed.
pub async fn fetch_and_install(
    client: &reqwest::Client,
    exe: &Path,
    url: &str,
    sha256: &str,
) -> Result<(), UpdateError> {
    let staged = staging_path(exe);
    download(client, url, sha256, &staged).await?;
    let installed = match smoke_test(&staged, SMOKE_TEST_TIMEOUT).await {
        Ok(()) => install(&staged, exe),
        Err(err) => Err(err),
    };
    if installed.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    installed
}

/// Replaces this process with `exe`, same arguments, with the agent's own
/// variables cleared and `set` added. Returns only if exec failed.
pub fn exec(exe: &Path, args: &[OsString], set: &[(&str, &str)]) -> UpdateError {
    match exec_inner(exe, args, set) {
        Ok(never) => match never {},
        Err(err) => err,
    }
}

fn exec_inner(
    exe: &Path,
    args: &[OsString],
    set: &[(&str, &str)],
) -> Result<std::convert::Infallible, UpdateError> {
    let c_string = |value: OsString| {
        CString::new(value.as_bytes()).map_err(|_| UpdateError::Nul(value.clone()))
    };
    let path = c_string(exe.as_os_str().to_owned())?;
    let argv = args
        .iter()
        .map(|arg| c_string(arg.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if INTERNAL_ENV.iter().any(|internal| key == *internal) {
            continue;
        }
        let mut pair = key;
        pair.push("=");
        pair.push(value);
        env.push(c_string(pair)?);
    }
    for (key, value) in set {
        env.push(c_string(OsString::from(format!("{key}={value}")))?);
    }
    nix::unistd::execve(&path, &argv, &env).map_err(|source| UpdateError::Exec {
        path: exe.to_path_buf(),
        source,
    })
}

/// Handles `Update` for a running agent: refuses what it cannot do, else
/// works in the background and either reports `UpdateFailed` or tells
/// [`crate::run`] to return [`crate::Stopped::Updated`].
pub(crate) fn start(agent: &Arc<Agent>, version: String, url: String, sha256: String) {
    if version == crate::VERSION {
        info!(%version, "asked to update to the running version; nothing to do");
        return;
    }
    let refused = match &agent.executable {
        None => Some(UpdateError::Disabled),
        Some(_) if agent.updating.swap(true, Ordering::SeqCst) => Some(UpdateError::Busy),
        Some(_) => None,
    };
    let agent = agent.clone();
    tokio::spawn(async move {
        let failed = |error: UpdateError| AgentMessage::UpdateFailed {
            version: version.clone(),
            error: error.to_string(),
        };
        if let Some(error) = refused {
            warn!(%version, %error, "update refused");
            agent.link.send(failed(error)).await;
            return;
        }
        let Some(exe) = agent.executable.clone() else {
            return;
        };
        info!(%version, %url, "updating the agent");
        let result = tokio::select! {
            () = agent.stop.cancelled() => return,
            result = async {
                let client = reqwest::Client::builder()
                    .timeout(DOWNLOAD_TIMEOUT)
                    .build()
                    .map_err(|source| UpdateError::Download { url: url.clone(), source })?;
                fetch_and_install(&client, &exe, &url, &sha256).await
            } => result,
        };
        match result {
            Ok(()) => {
                info!(%version, exe = %exe.display(), "new agent binary installed; restarting");
                let _ = agent.updated.send(version).await;
            }
            Err(error) => {
                warn!(%version, %error, "update failed");
                agent.updating.store(false, Ordering::SeqCst);
                agent.link.send(failed(error)).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_sit_next_to_the_executable() {
        let exe = Path::new("/usr/local/bin/loopback-agent");
        assert_eq!(
            previous_path(exe),
            Path::new("/usr/local/bin/loopback-agent.previous")
        );
        assert_eq!(
            staging_path(exe),
            Path::new("/usr/local/bin/.loopback-agent.new")
        );
    }
}
