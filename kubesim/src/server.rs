//! One simulated API server: a TLS listener serving the REST API over a
//! store. The management server and every tenant are instances of it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::Router;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    api::{self, ApiState},
    error::Error,
    failure::Failure,
    kamaji::Controller,
    store::Store,
    tls::{Ca, TlsListener},
    workloads::Workloads,
};

pub(crate) const DEFAULT_VERSION: &str = "v1.33.0";

/// Behaviour that changes while a server runs: the injected failure and the
/// Kubernetes version it reports.
#[derive(Debug)]
pub(crate) struct Hooks {
    failure: Mutex<Failure>,
    version: Mutex<String>,
}

impl Hooks {
    pub fn new(failure: Failure, version: &str) -> Arc<Hooks> {
        Arc::new(Hooks {
            failure: Mutex::new(failure),
            version: Mutex::new(version.to_string()),
        })
    }

    pub fn failure(&self) -> Failure {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_failure(&self, failure: Failure) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
    }

    pub fn version(&self) -> String {
        self.version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_version(&self, version: &str) {
        *self.version.lock().unwrap_or_else(|e| e.into_inner()) = version.to_string();
    }
}

pub(crate) struct ServerSpec {
    pub listener: TcpListener,
    pub ca: Ca,
    pub sans: Vec<String>,
    pub token: String,
    pub store: Arc<Store>,
    pub hooks: Arc<Hooks>,
    pub kamaji: Option<Arc<Controller>>,
    /// How long workloads take to become ready (see [`crate::Config`]).
    pub workload_delay: Duration,
}

pub(crate) struct RunningServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    workloads: Workloads,
}

/// How long open requests (watches, mostly) get to finish on stop.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

pub(crate) fn start(spec: ServerSpec) -> Result<RunningServer, Error> {
    let addr = spec.listener.local_addr().map_err(|source| Error::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let mut sans = spec.sans;
    sans.extend([
        addr.ip().to_string(),
        "localhost".into(),
        "127.0.0.1".into(),
    ]);
    let acceptor = spec.ca.issue(&sans)?.acceptor()?;
    let listener =
        TlsListener::new(spec.listener, acceptor).map_err(|source| Error::Bind { addr, source })?;
    let (stop, stopped) = watch::channel(false);
    let workloads = Workloads::start(spec.store.clone(), spec.workload_delay);
    let state = Arc::new(ApiState {
        store: spec.store,
        token: spec.token,
        hooks: spec.hooks,
        kamaji: spec.kamaji,
        shutdown: stopped.clone(),
        address: addr.to_string(),
    });
    let router = Router::new().fallback(api::dispatch).with_state(state);
    let mut stopped = stopped;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(%error, %addr, "API server stopped");
        }
    });
    Ok(RunningServer {
        addr,
        stop,
        task,
        workloads,
    })
}

impl RunningServer {
    /// Stops listening at once (new connections are refused) and gives open
    /// requests a moment to finish.
    pub async fn stop(self) {
        // Nothing acts on a server nobody can reach.
        drop(self.workloads);
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }
}
