//! State files: each server's CA, token and objects as one JSON file,
//! rewritten shortly after changes and once more on shutdown.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{sync::Notify, task::JoinHandle};

use crate::{
    error::Error,
    store::{Snapshot, Store},
    tls::Ca,
};

/// Where and as what a tenant API server was running.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TenantRecord {
    pub uid: String,
    pub address: IpAddr,
    pub port: u16,
    pub version: String,
}

/// What identifies a server across restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub ca: Ca,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerState {
    #[serde(flatten)]
    pub identity: Identity,
    pub store: Snapshot,
}

pub(crate) fn management_file(state_dir: &Path) -> PathBuf {
    state_dir.join("kubesim.json")
}

/// Named by uid too, so a control plane deleted and created again under
/// the same name never meets its predecessor's file.
pub(crate) fn tenant_file(state_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    state_dir
        .join("tenants")
        .join(namespace)
        .join(format!("{name}.{uid}.json"))
}

pub(crate) fn load(path: &Path) -> Result<Option<ServerState>, Error> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::State {
                path: path.into(),
                source,
            });
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| Error::Corrupt {
            path: path.into(),
            source,
        })
}

/// Writes through a temporary file so a crash never leaves half a state.
fn save(path: &Path, state: &ServerState) -> Result<(), Error> {
    let io = |source| Error::State {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_vec_pretty(state).map_err(|source| Error::Corrupt {
        path: path.into(),
        source,
    })?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

pub(crate) fn remove(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, path = %path.display(), "cannot remove state file");
    }
}

/// Coalesces bursts of changes into one write.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Keeps one server's state file current.
pub(crate) struct Persister {
    identity: Arc<Mutex<Identity>>,
    wake: Arc<Notify>,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

fn write(path: &Path, store: &Store, identity: &Mutex<Identity>) {
    let identity = identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let state = ServerState {
        identity,
        store: store.snapshot(),
    };
    if let Err(error) = save(path, &state) {
        tracing::warn!(%error, "cannot save kubesim state");
    }
}

impl Persister {
    pub fn spawn(path: PathBuf, store: Arc<Store>, identity: Identity) -> Persister {
        let identity = Arc::new(Mutex::new(identity));
        let wake = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn({
            let (identity, wake, stop) = (identity.clone(), wake.clone(), stop.clone());
            async move {
                write(&path, &store, &identity);
                loop {
                    tokio::select! {
                        _ = store.changed().notified() => {}
                        _ = wake.notified() => {}
                        _ = stop.notified() => break,
                    }
                    tokio::time::sleep(DEBOUNCE).await;
                    write(&path, &store, &identity);
                }
                write(&path, &store, &identity);
            }
        });
        Persister {
            identity,
            wake,
            stop,
            task,
        }
    }

    pub fn set_tenant(&self, record: TenantRecord) {
        self.identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tenant = Some(record);
        self.wake.notify_one();
    }

    /// Writes a last time and stops.
    pub async fn finish(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }

    /// Stops without writing again (the state is being deleted).
    pub async fn abandon(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
