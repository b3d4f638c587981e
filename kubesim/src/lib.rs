//! A simulated Kubernetes API server with Kamaji behaviour, for tests and the
//! local demo.
//!
//! [`start`] runs a real HTTPS server (its own CA) that speaks enough of the
//! Kubernetes REST API for kube-rs clients and `kubectl`. Creating a
//! `kamaji.clastix.io/v1alpha1` TenantControlPlane on it starts, after
//! [`Kamaji::ready_delay`], a tenant API server on a loopback address and
//! writes the `<name>-admin-kubeconfig` Secret pointing at it. Failures can
//! be injected per tenant with [`Kubesim::inject`] or
//! `PUT /kubesim/failures/{tenant}`.
//!
//! Every server also runs workload controllers: Deployments, StatefulSets,
//! DaemonSets and Jobs report ready (or complete) after
//! [`Config::workload_delay`], unless [`Kubesim::inject_workload`] or
//! `PUT /kubesim/workload-failures/{name}` says otherwise.
//!
//! Pods behave as `kubectl drain` needs: Deployments make a ReplicaSet,
//! ReplicaSets and DaemonSets make pods, the scheduler binds them to Ready,
//! uncordoned nodes (DaemonSet pods go on every node), and they run (Ready)
//! [`Config::workload_delay`] after being bound. Deleting or evicting a pod
//! is graceful (`deletionTimestamp`, gone after the grace period), and
//! eviction honours PodDisruptionBudgets, whose status is kept live.

mod api;
mod defaults;
mod discovery;
mod disruption;
mod error;
mod eviction;
mod failure;
mod kamaji;
mod kubeconfig;
mod openapi;
mod patch;
mod persist;
mod pods;
mod protobuf;
mod resources;
mod selector;
mod server;
mod store;
mod table;
mod tenant;
mod tls;
mod watch;
mod workloads;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

pub use error::Error;
pub use failure::Failure;
pub use kamaji::{TenantInfo, TenantState};
pub use workloads::WorkloadFailure;

use crate::{
    kamaji::Controller,
    kubeconfig::Kubeconfig,
    persist::{Identity, Persister},
    server::{Hooks, RunningServer, ServerSpec},
    store::Store,
    tls::Ca,
};

/// How to run the simulator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// When set, the CA, token and every object (tenants' too) are kept here
    /// and picked up again on the next start, tenant API servers included.
    pub state_dir: Option<PathBuf>,
    /// Further DNS names or IP addresses for the server certificate.
    pub extra_sans: Vec<String>,
    pub kamaji: Kamaji,
    /// Time from a Deployment, StatefulSet, DaemonSet or Job being created
    /// or changed to its status reporting it ready (or complete), and from a
    /// pod being bound to a node to it running Ready, on the management
    /// server and every tenant API server alike.
    pub workload_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            state_dir: None,
            extra_sans: Vec::new(),
            kamaji: Kamaji::default(),
            workload_delay: Duration::from_millis(300),
        }
    }
}

/// How the simulated Kamaji behaves.
#[derive(Clone, Debug)]
pub struct Kamaji {
    /// Time from a TenantControlPlane's creation to its admin kubeconfig
    /// secret and Ready status.
    pub ready_delay: Duration,
    /// Load-balancer addresses handed to tenants, in order. Each tenant API
    /// server listens on `<address>:6443`, or on another port of that
    /// address when 6443 is taken. On Linux all of 127.0.0.0/8 reaches the
    /// loopback interface, so these need no setup.
    pub tenant_addresses: Vec<IpAddr>,
}

impl Kamaji {
    /// `count` consecutive addresses from `first`.
    pub fn address_range(first: Ipv4Addr, count: u32) -> Vec<IpAddr> {
        let start = u32::from(first);
        (0..count)
            .filter_map(|i| start.checked_add(i))
            .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .collect()
    }
}

impl Default for Kamaji {
    fn default() -> Self {
        Kamaji {
            ready_delay: Duration::from_secs(2),
            tenant_addresses: Kamaji::address_range(Ipv4Addr::new(127, 1, 0, 1), 254),
        }
    }
}

/// A running simulator. Clones share it.
#[derive(Clone)]
pub struct Kubesim {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    ca_pem: String,
    token: String,
    kubeconfig: String,
    controller: Arc<Controller>,
    running: Mutex<Option<(RunningServer, Option<Persister>)>>,
}

/// Starts the management API server (and, from the state directory, the
/// tenants it had).
pub async fn start(config: Config) -> Result<Kubesim, Error> {
    let store = Store::new();
    let state_file = config.state_dir.as_deref().map(persist::management_file);
    let saved = match &state_file {
        Some(file) => persist::load(file)?,
        None => None,
    };
    let identity = match saved {
        Some(state) => {
            store.restore(state.store);
            state.identity
        }
        None => {
            tenant::seed_namespaces(&store);
            Identity {
                ca: Ca::generate()?,
                token: tls::new_token(),
                tenant: None,
            }
        }
    };
    let listener = server::bind(SocketAddr::new(config.bind, config.port)).await?;
    let controller = Controller::new(
        store.clone(),
        &config.kamaji,
        config.workload_delay,
        config.state_dir.clone(),
    );
    let running = server::start(ServerSpec {
        listener,
        ca: identity.ca.clone(),
        sans: config.extra_sans.clone(),
        token: identity.token.clone(),
        store: store.clone(),
        hooks: Hooks::new(Failure::None, server::DEFAULT_VERSION),
        kamaji: Some(controller.clone()),
        workload_delay: config.workload_delay,
    })?;
    // A wildcard bind is reached through loopback.
    let host = if running.addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), running.addr.port())
    } else {
        running.addr
    };
    let url = format!("https://{host}");
    let kubeconfig = Kubeconfig {
        cluster: "kubesim",
        user: "kubesim-admin",
        context: "kubesim",
        server: &url,
        ca_pem: &identity.ca.cert_pem,
        token: &identity.token,
    }
    .render()?;
    let persister = state_file.map(|file| Persister::spawn(file, store.clone(), identity.clone()));
    controller.start();
    tracing::info!(%url, "kubesim listening");
    Ok(Kubesim {
        inner: Arc::new(Inner {
            url,
            ca_pem: identity.ca.cert_pem,
            token: identity.token,
            kubeconfig,
            controller,
            running: Mutex::new(Some((running, persister))),
        }),
    })
}

impl Kubesim {
    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// The CA certificate (PEM) the server's certificate chains to.
    pub fn ca_pem(&self) -> String {
        self.inner.ca_pem.clone()
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> String {
        self.inner.token.clone()
    }

    /// A kubeconfig (context "kubesim", current) for this server.
    pub fn kubeconfig(&self) -> String {
        self.inner.kubeconfig.clone()
    }

    /// Injects `failure` into the TenantControlPlane(s) called `tenant`,
    /// existing or created later; `"*"` sets the default for those created
    /// from now on.
    pub fn inject(&self, tenant: &str, failure: Failure) {
        self.inner.controller.inject(tenant, failure);
    }

    /// Makes the Deployments, StatefulSets, DaemonSets and Jobs called
    /// `name` misbehave, existing or created later, on this simulator's
    /// servers and its tenants'. The setting is process-wide (like the
    /// tenant address pool), so it reaches every simulator in the process:
    /// tests running in parallel should give their workloads unique names.
    pub fn inject_workload(&self, name: &str, failure: WorkloadFailure) {
        workloads::inject(name, failure);
    }

    /// Every tenant control plane, sorted by namespace and name.
    pub fn tenants(&self) -> Vec<TenantInfo> {
        self.inner.controller.tenants()
    }

    /// Stops every server and saves the state.
    pub async fn shutdown(self) {
        self.inner.controller.shutdown().await;
        let running = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((server, persister)) = running {
            server.stop().await;
            if let Some(persister) = persister {
                persister.finish().await;
            }
        }
    }
}
