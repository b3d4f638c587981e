//! The `local` provider: a "server" is a `loopback-agent` process on the
//! portal's own machine, in a directory of its own. It lets the demo and the
//! tests order, power and delete hosts, open shells and run commands with
//! nothing but this machine.
//!
//! Each host has a loopback address of its own (127.0.1.N, kept in its
//! directory), reported as the server's IPv4 and as its Kubernetes node's
//! InternalIP, so that services on two local hosts can use the same port
//! (all of 127/8 is local on Linux).
//!
//! Agents run in their own process group so that, like real machines, they
//! outlive a portal restart; an agent exits by itself once its token file is
//! gone, which is how deleting a host (or a test's data directory) ends it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use url::Url;

use super::{PowerAction, ProviderError, Server, ServerStatus};

/// Where local hosts live and what they run.
#[derive(Debug, Clone)]
pub struct LocalHosts {
    /// One directory per host below this.
    pub root: PathBuf,
    /// The `loopback-agent` binary.
    pub agent_bin: PathBuf,
    /// The portal URL agents dial.
    pub portal_url: Url,
}

const TOKEN_FILE: &str = "agent-token";
/// The host's own loopback address.
const ADDRESS_FILE: &str = "address";
/// Commands local hosts find first on their PATH.
const BIN_DIR: &str = "bin";

/// The local demo's `kubeadm`: a local host has no kubelet to run, so
/// `kubeadm join` registers the node with the tenant's API the way a
/// kubelet's TLS bootstrap would (authenticating with the bootstrap token)
/// and reports it Ready. Real hosts run the real kubeadm.
const KUBEADM_SHIM: &str = r#"#!/bin/sh
# Loopback local host: stand-in for `kubeadm join` (see the portal's
# platform/src/providers/local.rs).
set -eu
[ "${1:-}" = join ] || { echo "local hosts only support: kubeadm join" >&2; exit 1; }
shift
endpoint="$1"; shift
token=""; node="$(hostname)"
while [ $# -gt 0 ]; do
  case "$1" in
    --token) token="$2"; shift 2 ;;
    --node-name) node="$2"; shift 2 ;;
    *) shift ;;
  esac
done
[ -n "$token" ] || { echo "kubeadm join: --token is required" >&2; exit 1; }
api="https://$endpoint/api/v1/nodes"
auth="Authorization: Bearer $token"
body='{"apiVersion":"v1","kind":"Node","metadata":{"name":"'"$node"'","labels":{"kubernetes.io/hostname":"'"$node"'","kubernetes.io/os":"linux"}}}'
code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST -H "$auth" -H 'Content-Type: application/json' --data "$body" "$api")
case "$code" in
  200|201|409) ;;
  *) echo "kubeadm join: the API server answered $code" >&2; exit 1 ;;
esac
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ip=$(cat "$HOME/address" 2>/dev/null || echo 127.0.0.1)
status='{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":"'"$now"'","lastTransitionTime":"'"$now"'"}],"addresses":[{"type":"InternalIP","address":"'"$ip"'"},{"type":"Hostname","address":"'"$node"'"}],"nodeInfo":{"kubeletVersion":"v1.33.2","osImage":"loopback local host","kernelVersion":"'"$(uname -r)"'","architecture":"'"$(uname -m)"'","containerRuntimeVersion":"none","operatingSystem":"linux","kubeProxyVersion":"","machineID":"","systemUUID":"","bootID":""},"capacity":{"cpu":"1","memory":"1Gi","pods":"110"},"allocatable":{"cpu":"1","memory":"1Gi","pods":"110"}}}'
curl -sk -o /dev/null -X PATCH -H "$auth" -H 'Content-Type: application/merge-patch+json' --data "$status" "$api/$node/status"
echo "This node has joined the cluster: $node"
"#;
const PID_FILE: &str = "agent.pid";
const LOG_FILE: &str = "agent.log";

impl LocalHosts {
    fn dir(&self, id: &str) -> Result<PathBuf, ProviderError> {
        // Server ids are host names the portal validated; refuse anything that
        // could leave the root anyway.
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            || id.starts_with('.')
        {
            return Err(ProviderError::InvalidProfile(format!(
                "{id:?} is not a usable local host name"
            )));
        }
        Ok(self.root.join(id))
    }

    pub async fn test_connection(&self) -> Result<(), ProviderError> {
        let meta = tokio::fs::metadata(&self.agent_bin).await.map_err(|e| {
            ProviderError::Unavailable(format!(
                "the agent binary {} is not usable: {e}",
                self.agent_bin.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(ProviderError::Unavailable(format!(
                "{} is not a file",
                self.agent_bin.display()
            )));
        }
        Ok(())
    }

    /// Starts an agent for `name` with `token`. Idempotent: a running agent
    /// of that name is left as it is.
    pub async fn create_server(&self, name: &str, token: &str) -> Result<Server, ProviderError> {
        let dir = self.dir(name)?;
        if let Some(server) = self.server(name).await?
            && server.status == ServerStatus::Running
        {
            return Ok(server);
        }
        tokio::fs::create_dir_all(dir.join(BIN_DIR))
            .await
            .map_err(io_error)?;
        write_private(&dir.join(TOKEN_FILE), token).await?;
        let address = self.address(&dir).await?;
        let kubeadm = dir.join(BIN_DIR).join("kubeadm");
        tokio::fs::write(&kubeadm, KUBEADM_SHIM)
            .await
            .map_err(io_error)?;
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&kubeadm, std::fs::Permissions::from_mode(0o755))
                .await
                .map_err(io_error)?;
        }
        self.start(&dir).await?;
        Ok(describe(name, ServerStatus::Running, address))
    }

    pub async fn server(&self, id: &str) -> Result<Option<Server>, ProviderError> {
        let dir = self.dir(id)?;
        if !tokio::fs::try_exists(dir.join(TOKEN_FILE))
            .await
            .map_err(io_error)?
        {
            return Ok(None);
        }
        let status = if running_pid(&dir).await.is_some() {
            ServerStatus::Running
        } else {
            ServerStatus::Off
        };
        let address = self.address(&dir).await?;
        Ok(Some(describe(id, status, address)))
    }

    /// Stops the agent and removes its directory (token file included, so a
    /// process that escaped the signal exits on its next reconnect).
    pub async fn delete_server(&self, id: &str) -> Result<(), ProviderError> {
        let dir = self.dir(id)?;
        stop(&dir).await;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }

    pub async fn power(&self, id: &str, action: PowerAction) -> Result<(), ProviderError> {
        let dir = self.dir(id)?;
        if self.server(id).await?.is_none() {
            return Err(ProviderError::Rejected(format!("no local host {id}")));
        }
        match action {
            PowerAction::Off => stop(&dir).await,
            PowerAction::On => {
                if running_pid(&dir).await.is_none() {
                    self.start(&dir).await?;
                }
            }
            PowerAction::Reset => {
                stop(&dir).await;
                self.start(&dir).await?;
            }
        }
        Ok(())
    }

    /// Starts agents whose hosts should be on but whose process is gone (the
    /// machine rebooted). Returns how many were started.
    pub async fn boot(&self, names: &[String]) -> usize {
        let mut started = 0;
        for name in names {
            let Ok(dir) = self.dir(name) else { continue };
            if tokio::fs::try_exists(dir.join(TOKEN_FILE))
                .await
                .unwrap_or(false)
                && running_pid(&dir).await.is_none()
                && self.start(&dir).await.is_ok()
            {
                started += 1;
            }
        }
        started
    }

    /// The host's address: the one it was given, else the lowest free one
    /// (hosts made before addresses were handed out get one on first use).
    async fn address(&self, dir: &Path) -> Result<Ipv4Addr, ProviderError> {
        if let Some(address) = read_address(dir).await {
            return Ok(address);
        }
        // One allocation at a time in this process; hosts are ordered
        // through the portal, so no other process allocates here.
        static ALLOCATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _allocating = ALLOCATING.lock().await;
        let mut taken = std::collections::HashSet::new();
        let mut entries = tokio::fs::read_dir(&self.root).await.map_err(io_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
            if let Some(address) = read_address(&entry.path()).await {
                taken.insert(address);
            }
        }
        let address = host_addresses()
            .find(|a| !taken.contains(a))
            .ok_or_else(|| {
                ProviderError::Unavailable("every local host address is taken".into())
            })?;
        tokio::fs::write(dir.join(ADDRESS_FILE), address.to_string())
            .await
            .map_err(io_error)?;
        Ok(address)
    }

    async fn start(&self, dir: &Path) -> Result<(), ProviderError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))
            .map_err(io_error)?;
        let err_log = log.try_clone().map_err(io_error)?;
        let mut child = tokio::process::Command::new(&self.agent_bin)
            .arg("--portal")
            .arg(self.portal_url.as_str())
            .arg("--token-file")
            .arg(dir.join(TOKEN_FILE))
            .current_dir(dir)
            .env("HOME", dir)
            .env("PATH", path_with(&dir.join(BIN_DIR)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            // Its own process group: outlives the portal, and stops with
            // its shells when the host is powered off.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| {
                ProviderError::Unavailable(format!(
                    "cannot start {}: {e}",
                    self.agent_bin.display()
                ))
            })?;
        let pid = child
            .id()
            .ok_or_else(|| ProviderError::Unavailable("the agent exited at once".into()))?;
        tokio::fs::write(dir.join(PID_FILE), pid.to_string())
            .await
            .map_err(io_error)?;
        // Reap it when it exits so it does not linger as a zombie that still
        // looks alive.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }
}

fn describe(name: &str, status: ServerStatus, address: Ipv4Addr) -> Server {
    Server {
        id: name.to_string(),
        name: name.to_string(),
        status,
        ipv4: Some(address),
        ipv6: None,
    }
}

/// Addresses local hosts get, in order: 127.0.1.2-254 (127.0.1.1 is often
/// the machine's own name in /etc/hosts), then 127.1.0.1 onwards.
fn host_addresses() -> impl Iterator<Item = Ipv4Addr> {
    let first = (u32::from(Ipv4Addr::new(127, 0, 1, 2))..=u32::from(Ipv4Addr::new(127, 0, 1, 254)))
        .map(Ipv4Addr::from);
    let more = (u32::from(Ipv4Addr::new(127, 1, 0, 1))
        ..=u32::from(Ipv4Addr::new(127, 1, 255, 254)))
        .map(Ipv4Addr::from);
    first.chain(more)
}

async fn read_address(dir: &Path) -> Option<Ipv4Addr> {
    tokio::fs::read_to_string(dir.join(ADDRESS_FILE))
        .await
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn path_with(first: &Path) -> std::ffi::OsString {
    let mut paths = vec![first.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

async fn write_private(path: &Path, contents: &str) -> Result<(), ProviderError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.to_path_buf();
    let contents = contents.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(contents.as_bytes())
    })
    .await
    .map_err(|e| ProviderError::Unavailable(e.to_string()))?
    .map_err(io_error)
}

/// The agent's pid when its process is alive (and not a zombie).
async fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = tokio::fs::read_to_string(dir.join(PID_FILE))
        .await
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = tokio::fs::read_to_string(format!("/proc/{pid}/stat"))
        .await
        .ok()?;
    // The state follows the parenthesised command name.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // The pid may have been reused by something else: check it is ours.
    let cwd = tokio::fs::read_link(format!("/proc/{pid}/cwd"))
        .await
        .ok()?;
    (cwd == dir).then_some(pid)
}

async fn stop(dir: &Path) {
    let Some(pid) = running_pid(dir).await else {
        return;
    };
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGTERM);
    for _ in 0..50 {
        if running_pid(dir).await.is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if running_pid(dir).await.is_some() {
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = tokio::fs::remove_file(dir.join(PID_FILE)).await;
}

fn io_error(e: std::io::Error) -> ProviderError {
    ProviderError::Unavailable(format!("local host: {e}"))
}
