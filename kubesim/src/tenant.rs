//! A tenant API server: a kubesim server with its own CA, token and store,
//! listening on the tenant's load-balancer address.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use serde_json::json;

use crate::{
    error::Error,
    failure::Failure,
    persist::{self, Identity, Persister, TenantRecord},
    resources::builtin_def,
    server::{self, Hooks, RunningServer, ServerSpec},
    store::Store,
    tls::{self, Ca},
};

pub(crate) const TENANT_PORT: u16 = 6443;

/// The namespaces a fresh cluster starts with.
pub(crate) fn seed_namespaces(store: &Store) {
    let Some(def) = builtin_def("", "namespaces") else {
        return;
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        let _ = store.create(&def.gr(), namespace);
    }
}

pub(crate) struct TenantServer {
    pub store: Arc<Store>,
    pub identity: Identity,
    pub hooks: Arc<Hooks>,
    running: Option<RunningServer>,
    persister: Option<Persister>,
    file: Option<PathBuf>,
}

/// Names rcgen accepts as DNS SANs (or IP addresses); anything else in
/// `certSANs` is skipped rather than failing the whole certificate.
fn usable_san(san: &str) -> bool {
    san.parse::<IpAddr>().is_ok()
        || (!san.is_empty()
            && san
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'*')))
}

impl TenantServer {
    /// A new tenant with a fresh CA and the standard namespaces.
    pub fn create(
        record: TenantRecord,
        failure: Failure,
        file: Option<PathBuf>,
    ) -> Result<TenantServer, Error> {
        let store = Store::new();
        seed_namespaces(&store);
        let identity = Identity {
            ca: Ca::generate()?,
            token: tls::new_token(),
            tenant: Some(record),
        };
        Ok(Self::assemble(store, identity, failure, file))
    }

    /// The tenant saved in `file`, if any.
    pub fn load(file: PathBuf, failure: Failure) -> Result<Option<TenantServer>, Error> {
        let Some(state) = persist::load(&file)? else {
            return Ok(None);
        };
        if state.identity.tenant.is_none() {
            return Ok(None);
        }
        let store = Store::new();
        store.restore(state.store);
        Ok(Some(Self::assemble(
            store,
            state.identity,
            failure,
            Some(file),
        )))
    }

    fn assemble(
        store: Arc<Store>,
        identity: Identity,
        failure: Failure,
        file: Option<PathBuf>,
    ) -> TenantServer {
        let version = identity
            .tenant
            .as_ref()
            .map_or(server::DEFAULT_VERSION.to_string(), |t| t.version.clone());
        let persister = file
            .clone()
            .map(|f| Persister::spawn(f, store.clone(), identity.clone()));
        TenantServer {
            hooks: Hooks::new(failure, &version),
            store,
            identity,
            running: None,
            persister,
            file,
        }
    }

    pub fn record(&self) -> Option<&TenantRecord> {
        self.identity.tenant.as_ref()
    }

    fn update_record(&mut self, change: impl FnOnce(&mut TenantRecord)) {
        if let Some(record) = self.identity.tenant.as_mut() {
            change(record);
            if let Some(persister) = &self.persister {
                persister.set_tenant(record.clone());
            }
        }
    }

    pub fn set_version(&mut self, version: &str) {
        self.hooks.set_version(version);
        self.update_record(|r| r.version = version.to_string());
    }

    pub fn listening(&self) -> bool {
        self.running.is_some()
    }

    /// The address clients use: where it listens, or would listen.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        if let Some(running) = &self.running {
            return Some(running.addr);
        }
        self.record().map(|r| SocketAddr::new(r.address, r.port))
    }

    /// Starts listening on the recorded address and port, or on a free port
    /// of that address when the port is taken.
    pub async fn listen(
        &mut self,
        sans: &[String],
        workload_delay: Duration,
    ) -> Result<SocketAddr, Error> {
        if let Some(running) = &self.running {
            return Ok(running.addr);
        }
        let Some(record) = self.record().cloned() else {
            return Err(Error::Bind {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                source: std::io::Error::other("tenant has no address"),
            });
        };
        let listener = match server::bind(SocketAddr::new(record.address, record.port)).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::info!(%error, "tenant port taken; using another");
                server::bind(SocketAddr::new(record.address, 0)).await?
            }
        };
        let sans: Vec<String> = sans.iter().filter(|s| usable_san(s)).cloned().collect();
        let running = server::start(ServerSpec {
            listener,
            ca: self.identity.ca.clone(),
            sans,
            token: self.identity.token.clone(),
            store: self.store.clone(),
            hooks: self.hooks.clone(),
            kamaji: None,
            workload_delay,
        })?;
        let addr = running.addr;
        self.running = Some(running);
        if addr.port() != record.port {
            self.update_record(|r| r.port = addr.port());
        }
        Ok(addr)
    }

    pub async fn stop_listening(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Stops and saves (simulator shutdown).
    pub async fn shutdown(mut self) {
        self.stop_listening().await;
        if let Some(persister) = self.persister.take() {
            persister.finish().await;
        }
    }

    /// Stops and forgets (TenantControlPlane deleted).
    pub async fn destroy(mut self) {
        self.stop_listening().await;
        if let Some(persister) = self.persister.take() {
            persister.abandon().await;
        }
        if let Some(file) = &self.file {
            persist::remove(file);
        }
    }
}
