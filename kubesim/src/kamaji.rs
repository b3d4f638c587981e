//! Kamaji's behaviour on the management server: every TenantControlPlane
//! gets a load-balancer Service, then (after the ready delay) a tenant API
//! server and the `<name>-admin-kubeconfig` Secret, with status reported the
//! way Kamaji reports it.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use base64::Engine;
use serde_json::{Value, json};
use tokio::{
    sync::{broadcast, mpsc},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    failure::Failure,
    kubeconfig::Kubeconfig,
    patch,
    persist::{self, TenantRecord},
    resources::KAMAJI_GROUP,
    server::DEFAULT_VERSION,
    store::{EventType, GroupResource, Store, meta_str, now_rfc3339},
    tenant::{TENANT_PORT, TenantServer},
};

/// Where a tenant control plane is in its life, as Kamaji's
/// `status.kubernetesResources.version.status` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantState {
    Provisioning,
    Ready,
    NotReady,
    Upgrading,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Provisioning => "Provisioning",
            TenantState::Ready => "Ready",
            TenantState::NotReady => "NotReady",
            TenantState::Upgrading => "Upgrading",
        }
    }
}

/// A tenant control plane as the simulator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    pub name: String,
    pub namespace: String,
    /// The tenant API server's address: where it listens, or (while
    /// provisioning, or with [`Failure::Refused`]) where it would.
    pub address: SocketAddr,
    pub state: TenantState,
    pub failure: Failure,
    /// Whether a tenant API server accepts connections.
    pub listening: bool,
}

fn tcp_resource() -> GroupResource {
    GroupResource::new(KAMAJI_GROUP, "tenantcontrolplanes")
}

fn secrets() -> GroupResource {
    GroupResource::new("", "secrets")
}

fn services() -> GroupResource {
    GroupResource::new("", "services")
}

enum Command {
    Inject(Failure),
    Spec(Arc<Value>),
    Delete,
    Shutdown,
}

struct Handle {
    uid: String,
    commands: mpsc::UnboundedSender<Command>,
    info: Arc<Mutex<TenantInfo>>,
    task: Option<JoinHandle<()>>,
}

/// Addresses held by the tenants of every simulator in this process (with
/// how many hold each), so parallel tests never share one.
static CLAIMED: Mutex<BTreeMap<IpAddr, usize>> = Mutex::new(BTreeMap::new());

#[derive(Default)]
struct Shared {
    /// By TenantControlPlane name; "*" for those without their own entry.
    failures: HashMap<String, Failure>,
    tenants: HashMap<(String, String), Handle>,
    stopping: bool,
}

pub(crate) struct Controller {
    store: Arc<Store>,
    ready_delay: Duration,
    workload_delay: Duration,
    addresses: Vec<IpAddr>,
    state_dir: Option<PathBuf>,
    runtime: tokio::runtime::Handle,
    shared: Mutex<Shared>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a panic
    // elsewhere is no reason to stop simulating.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Controller {
    pub fn new(
        store: Arc<Store>,
        settings: &crate::Kamaji,
        workload_delay: Duration,
        state_dir: Option<PathBuf>,
    ) -> Arc<Controller> {
        Arc::new(Controller {
            store,
            ready_delay: settings.ready_delay,
            workload_delay,
            addresses: settings.tenant_addresses.clone(),
            state_dir,
            runtime: tokio::runtime::Handle::current(),
            shared: Mutex::new(Shared::default()),
            watcher: Mutex::new(None),
        })
    }

    /// Starts reacting to TenantControlPlanes, including those already
    /// stored (restored from the state directory).
    pub fn start(self: &Arc<Self>) {
        let controller = self.clone();
        let task = self.runtime.spawn(async move { controller.watch().await });
        *lock(&self.watcher) = Some(task);
    }

    async fn watch(self: Arc<Self>) {
        let gr = tcp_resource();
        let (items, _, mut events) = self.store.list_and_subscribe(&gr);
        self.sync(&items);
        loop {
            match events.recv().await {
                Ok(event) if event.gr == gr => match event.kind {
                    EventType::Added | EventType::Modified => self.ensure(&event.object),
                    EventType::Deleted => self.forget(&event.object),
                },
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (items, _, fresh) = self.store.list_and_subscribe(&gr);
                    events = fresh;
                    self.sync(&items);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    fn sync(self: &Arc<Self>, items: &[Value]) {
        let present: HashSet<(String, String)> = items.iter().map(key_of).collect();
        let gone: Vec<(String, String)> = lock(&self.shared)
            .tenants
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for (namespace, name) in gone {
            self.forget(&json!({"metadata": {"namespace": namespace, "name": name}}));
        }
        for item in items {
            self.ensure(item);
        }
    }

    fn ensure(self: &Arc<Self>, tcp: &Value) {
        let key = key_of(tcp);
        let uid = meta_str(tcp, "uid").to_string();
        let mut shared = lock(&self.shared);
        if shared.stopping {
            return;
        }
        if let Some(handle) = shared.tenants.get(&key) {
            if handle.uid == uid {
                let _ = handle.commands.send(Command::Spec(Arc::new(tcp.clone())));
                return;
            }
            if let Some(old) = shared.tenants.remove(&key) {
                let _ = old.commands.send(Command::Delete);
            }
        }
        let failure = shared
            .failures
            .get(&key.1)
            .or_else(|| shared.failures.get("*"))
            .copied()
            .unwrap_or_default();
        let info = Arc::new(Mutex::new(TenantInfo {
            name: key.1.clone(),
            namespace: key.0.clone(),
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
            state: TenantState::Provisioning,
            failure,
            listening: false,
        }));
        let (commands, receiver) = mpsc::unbounded_channel();
        let tenant = Tenant {
            controller: self.clone(),
            namespace: key.0.clone(),
            name: key.1.clone(),
            uid: uid.clone(),
            address: IpAddr::from([127, 0, 0, 1]),
            failure,
            spec: TenantSpec::of(tcp),
            installed: None,
            server: None,
            info: info.clone(),
            preferred: preferred_address(tcp),
        };
        let task = self.runtime.spawn(tenant.run(receiver));
        shared.tenants.insert(
            key,
            Handle {
                uid,
                commands,
                info,
                task: Some(task),
            },
        );
    }

    fn forget(&self, tcp: &Value) {
        let key = key_of(tcp);
        let uid = meta_str(tcp, "uid");
        let mut shared = lock(&self.shared);
        let matches = shared
            .tenants
            .get(&key)
            .is_some_and(|h| uid.is_empty() || h.uid == uid);
        if matches && let Some(handle) = shared.tenants.remove(&key) {
            let _ = handle.commands.send(Command::Delete);
        }
    }

    /// Sets the failure for TenantControlPlanes called `tenant` (now and
    /// later ones), or with "*" the default for those created from now on.
    pub fn inject(&self, tenant: &str, failure: Failure) {
        let mut shared = lock(&self.shared);
        shared.failures.insert(tenant.to_string(), failure);
        for ((_, name), handle) in &shared.tenants {
            if name == tenant {
                let _ = handle.commands.send(Command::Inject(failure));
            }
        }
    }

    pub fn tenants(&self) -> Vec<TenantInfo> {
        let mut tenants: Vec<TenantInfo> = lock(&self.shared)
            .tenants
            .values()
            .map(|h| lock(&h.info).clone())
            .collect();
        tenants.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        tenants
    }

    /// Stops every tenant API server, keeping their state for a restart.
    pub async fn shutdown(&self) {
        if let Some(watcher) = lock(&self.watcher).take() {
            watcher.abort();
        }
        let handles: Vec<Handle> = {
            let mut shared = lock(&self.shared);
            shared.stopping = true;
            shared.tenants.drain().map(|(_, h)| h).collect()
        };
        for handle in &handles {
            let _ = handle.commands.send(Command::Shutdown);
        }
        for mut handle in handles {
            if let Some(task) = handle.task.take() {
                let _ = task.await;
            }
        }
    }

    /// Picks a load-balancer address: the preferred one when free, else the
    /// first free pool address whose port 6443 can be bound (a simulator in
    /// another process may use the same pool), else any free one, else the
    /// first (the tenant then listens on another port).
    fn allocate(&self, preferred: Option<IpAddr>) -> IpAddr {
        let mut claimed = lock(&CLAIMED);
        let free = |ip: &IpAddr| !claimed.contains_key(ip);
        let bindable = |ip: &IpAddr| std::net::TcpListener::bind((*ip, TENANT_PORT)).is_ok();
        let chosen = preferred
            .filter(|ip| free(ip))
            .or_else(|| {
                self.addresses
                    .iter()
                    .find(|ip| free(ip) && bindable(ip))
                    .copied()
            })
            .or_else(|| self.addresses.iter().find(|ip| free(ip)).copied())
            .or_else(|| self.addresses.first().copied())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        *claimed.entry(chosen).or_default() += 1;
        chosen
    }

    fn claim(&self, address: IpAddr) {
        *lock(&CLAIMED).entry(address).or_default() += 1;
    }

    fn release(&self, address: IpAddr) {
        let mut claimed = lock(&CLAIMED);
        if let Some(count) = claimed.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                claimed.remove(&address);
            }
        }
    }
}

fn key_of(tcp: &Value) -> (String, String) {
    (
        meta_str(tcp, "namespace").to_string(),
        meta_str(tcp, "name").to_string(),
    )
}

fn preferred_address(tcp: &Value) -> Option<IpAddr> {
    let endpoint = tcp.pointer("/status/controlPlaneEndpoint")?.as_str()?;
    endpoint
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| endpoint.parse::<IpAddr>())
        .ok()
}

/// The parts of a TenantControlPlane's spec the simulation acts on.
#[derive(Clone, Debug, PartialEq)]
struct TenantSpec {
    generation: i64,
    version: String,
    replicas: i64,
    cert_sans: Vec<String>,
}

impl TenantSpec {
    fn of(tcp: &Value) -> TenantSpec {
        let version = tcp
            .pointer("/spec/kubernetes/version")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_VERSION);
        let version = if version.starts_with('v') {
            version.to_string()
        } else {
            format!("v{version}")
        };
        TenantSpec {
            generation: tcp
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            version,
            replicas: tcp
                .pointer("/spec/controlPlane/deployment/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(2),
            cert_sans: tcp
                .pointer("/spec/networkProfile/certSANs")
                .and_then(Value::as_array)
                .map(|sans| {
                    sans.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One TenantControlPlane's simulation, run as a task that owns its tenant
/// API server and takes commands from the controller.
struct Tenant {
    controller: Arc<Controller>,
    namespace: String,
    name: String,
    uid: String,
    address: IpAddr,
    failure: Failure,
    spec: TenantSpec,
    /// The version running, once provisioned.
    installed: Option<String>,
    server: Option<TenantServer>,
    info: Arc<Mutex<TenantInfo>>,
    preferred: Option<IpAddr>,
}

impl Tenant {
    fn store(&self) -> &Store {
        &self.controller.store
    }

    fn file(&self) -> Option<PathBuf> {
        self.controller
            .state_dir
            .as_deref()
            .map(|dir| persist::tenant_file(dir, &self.namespace, &self.name, &self.uid))
    }

    fn secret_name(&self) -> String {
        format!("{}-admin-kubeconfig", self.name)
    }

    fn delay(&self) -> Duration {
        self.controller.ready_delay + self.failure.extra_delay()
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut deadline = if self.restore() {
            self.settle().await;
            None
        } else {
            self.begin();
            Some(Instant::now() + self.delay())
        };
        loop {
            let command = match deadline {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {
                        deadline = None;
                        self.settle().await;
                        continue;
                    }
                    command = commands.recv() => command,
                },
                None => commands.recv().await,
            };
            match command {
                Some(Command::Inject(failure)) => {
                    let previous = self.failure;
                    self.failure = failure;
                    lock(&self.info).failure = failure;
                    match deadline {
                        Some(at) => {
                            deadline = Some(
                                at + failure.extra_delay().saturating_sub(previous.extra_delay()),
                            );
                        }
                        None => self.settle().await,
                    }
                }
                Some(Command::Spec(tcp)) => {
                    let spec = TenantSpec::of(&tcp);
                    if spec.generation == self.spec.generation {
                        continue;
                    }
                    let upgrading = self
                        .installed
                        .as_ref()
                        .is_some_and(|installed| *installed != spec.version);
                    self.spec = spec;
                    if upgrading {
                        self.report(TenantState::Upgrading);
                        deadline = Some(Instant::now() + self.delay());
                    } else if deadline.is_none() {
                        self.settle().await;
                    }
                }
                Some(Command::Delete) | None => {
                    self.teardown().await;
                    break;
                }
                Some(Command::Shutdown) => {
                    if let Some(server) = self.server.take() {
                        server.shutdown().await;
                    }
                    self.controller.release(self.address);
                    break;
                }
            }
        }
    }

    /// Picks up a tenant saved by an earlier run; false when there is none.
    fn restore(&mut self) -> bool {
        if let Some(file) = self.file() {
            match TenantServer::load(file, self.failure) {
                Ok(Some(server)) => {
                    if let Some(record) = server.record() {
                        self.address = record.address;
                        self.installed = Some(record.version.clone());
                        self.controller.claim(record.address);
                        self.server = Some(server);
                        return true;
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, tenant = %self.name, "cannot restore tenant"),
            }
        }
        self.address = self.controller.allocate(self.preferred);
        false
    }

    fn set_info(&self, state: TenantState) {
        let mut info = lock(&self.info);
        info.state = state;
        info.failure = self.failure;
        info.address = self.endpoint();
        info.listening = self.server.as_ref().is_some_and(TenantServer::listening);
    }

    fn endpoint(&self) -> SocketAddr {
        self.server
            .as_ref()
            .and_then(TenantServer::endpoint)
            .unwrap_or(SocketAddr::new(self.address, TENANT_PORT))
    }

    /// What Kamaji does at once: status Provisioning and the Service.
    fn begin(&self) {
        self.write_service();
        self.report(TenantState::Provisioning);
    }

    /// Brings the tenant to what its spec and failure ask for: a tenant API
    /// server (listening unless Refused), the admin kubeconfig secret, and
    /// status Ready (NotReady when never healthy).
    async fn settle(&mut self) {
        if self.server.is_none() {
            let record = TenantRecord {
                uid: self.uid.clone(),
                address: self.address,
                port: TENANT_PORT,
                version: self.spec.version.clone(),
            };
            match TenantServer::create(record, self.failure, self.file()) {
                Ok(server) => self.server = Some(server),
                Err(error) => {
                    tracing::warn!(%error, tenant = %self.name, "cannot create tenant API server");
                    self.report(TenantState::NotReady);
                    return;
                }
            }
        }
        let sans = self.sans();
        let (failure, version) = (self.failure, self.spec.version.clone());
        let mut healthy = failure != Failure::NeverHealthy;
        if let Some(server) = self.server.as_mut() {
            server.hooks.set_failure(failure);
            server.set_version(&version);
            if failure == Failure::Refused {
                server.stop_listening().await;
            } else if let Err(error) = server.listen(&sans, self.controller.workload_delay).await {
                tracing::warn!(%error, tenant = %self.name, "tenant API server cannot listen");
                healthy = false;
            }
        }
        self.installed = Some(version);
        self.write_secret();
        self.write_service();
        self.report(if healthy {
            TenantState::Ready
        } else {
            TenantState::NotReady
        });
    }

    fn sans(&self) -> Vec<String> {
        let (name, ns) = (&self.name, &self.namespace);
        let mut sans = self.spec.cert_sans.clone();
        sans.extend([
            self.address.to_string(),
            format!("{name}.{ns}.svc"),
            format!("{name}.{ns}.svc.cluster.local"),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
        ]);
        sans
    }

    fn owner(&self) -> Value {
        json!([{
            "apiVersion": format!("{KAMAJI_GROUP}/v1alpha1"),
            "kind": "TenantControlPlane",
            "name": self.name,
            "uid": self.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }])
    }

    fn owned(&self, obj: &Value) -> bool {
        obj.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == self.uid.as_str()))
    }

    fn write_service(&self) {
        let port = self.endpoint().port();
        let cluster_ip = match self.address {
            IpAddr::V4(v4) => {
                let [_, _, c, d] = v4.octets();
                format!("10.96.{c}.{d}")
            }
            IpAddr::V6(_) => "10.96.0.1".to_string(),
        };
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"kamaji.clastix.io/name": self.name},
                "ownerReferences": self.owner(),
            },
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": cluster_ip,
                "clusterIPs": [cluster_ip],
                "selector": {"kamaji.clastix.io/name": self.name},
                "ports": [{"name": "kube-apiserver", "port": port, "targetPort": port, "protocol": "TCP"}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": self.address.to_string()}]}},
        });
        self.store().upsert(&services(), service);
    }

    fn write_secret(&self) {
        let Some(server) = &self.server else {
            return;
        };
        let endpoint = self.endpoint();
        let user = "kubernetes-admin";
        let context = format!("{user}@{}", self.name);
        let render = |url: &str| {
            Kubeconfig {
                cluster: &self.name,
                user,
                context: &context,
                server: url,
                ca_pem: &server.identity.ca.cert_pem,
                token: &server.identity.token,
            }
            .render()
        };
        let public = render(&format!("https://{endpoint}"));
        let internal = render(&format!(
            "https://{}.{}.svc:{}",
            self.name,
            self.namespace,
            endpoint.port()
        ));
        let (public, internal) = match (public, internal) {
            (Ok(public), Ok(internal)) => (public, internal),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot render tenant kubeconfig");
                return;
            }
        };
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.secret_name(),
                "namespace": self.namespace,
                "labels": {
                    "kamaji.clastix.io/name": self.name,
                    "kamaji.clastix.io/component": "admin-kubeconfig",
                },
                "ownerReferences": self.owner(),
            },
            "type": "Opaque",
            "data": {"admin.conf": encode(&public), "admin.svc": encode(&internal)},
        });
        self.store().upsert(&secrets(), secret);
    }

    /// Writes Kamaji's status for `state` into the TenantControlPlane.
    fn report(&self, state: TenantState) {
        self.set_info(state);
        let endpoint = self.endpoint();
        let ready = matches!(state, TenantState::Ready | TenantState::Upgrading);
        let replicas = self.spec.replicas;
        let ready_replicas = if ready { replicas } else { 0 };
        let now = now_rfc3339();
        let kubeconfig = if self.installed.is_some() {
            json!({"admin": {"secretName": self.secret_name(), "lastUpdate": now}})
        } else {
            json!({})
        };
        let status = json!({
            "observedGeneration": self.spec.generation,
            "controlPlaneEndpoint": endpoint.to_string(),
            "kubeconfig": kubeconfig,
            "storage": {"driver": "etcd", "dataStoreName": "default"},
            "kubernetesResources": {
                "version": {"version": self.installed, "status": state.as_str()},
                "deployment": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "selector": format!("kamaji.clastix.io/name={}", self.name),
                    "replicas": replicas,
                    "readyReplicas": ready_replicas,
                    "availableReplicas": ready_replicas,
                    "updatedReplicas": ready_replicas,
                    "lastUpdate": now,
                },
                "service": {
                    "name": self.name,
                    "namespace": self.namespace,
                    "port": endpoint.port(),
                    "loadBalancer": {"ingress": [{"ip": self.address.to_string()}]},
                },
            },
        });
        let uid = self.uid.clone();
        self.store()
            .update_with(&tcp_resource(), &self.namespace, &self.name, |tcp| {
                if meta_str(tcp, "uid") == uid {
                    patch::merge(&mut tcp["status"], &status);
                }
            });
    }

    /// What Kamaji does when the control plane is deleted.
    async fn teardown(&mut self) {
        match self.server.take() {
            Some(server) => server.destroy().await,
            None => {
                if let Some(file) = self.file() {
                    persist::remove(&file);
                }
            }
        }
        for (gr, name) in [
            (secrets(), self.secret_name()),
            (services(), self.name.clone()),
        ] {
            if let Some(obj) = self.store().get(&gr, &self.namespace, &name)
                && self.owned(&obj)
            {
                self.store().delete(&gr, &self.namespace, &name);
            }
        }
        self.controller.release(self.address);
    }
}
