//! The `local` load-balancer backend: a real proxy inside the portal
//! process, for the demo and the tests. Each balancer gets an address of its
//! own from a pool (all of 127/8 is local on Linux), so listener ports never
//! collide between balancers. TCP listeners splice connections to a target;
//! HTTP listeners are an HTTP/1.1 reverse proxy that picks a target per
//! request. Per-target health checks take a dead target out of rotation,
//! and a request or connection that meets a target which died since its
//! last check is retried once on another, so clients do not see the gap.

mod health;
mod http;
mod pool;
mod tcp;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use protocol::ids::LoadBalancerId;
use protocol::views::load_balancers::{HealthProtocol, Listener, ListenerProtocol};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::spec::{Applied, BalancerSpec, BalancerStatus, TargetStatus};
use health::Probe;
use pool::Pool;

/// Where balancers take their addresses from unless told otherwise.
pub const DEFAULT_ADDRESSES: RangeInclusive<Ipv4Addr> =
    Ipv4Addr::new(127, 0, 2, 1)..=Ipv4Addr::new(127, 0, 2, 254);

/// How long the proxy waits for a target to accept a connection before
/// trying another.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors), so the loop does
/// not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long stopping waits for a task to let go of its socket.
const STOP_WAIT: Duration = Duration::from_secs(5);
const LISTEN_BACKLOG: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum LocalBalancerError {
    #[error("port {port} on {address}: {}", bind_reason(*port, source))]
    Bind {
        port: u16,
        address: IpAddr,
        source: std::io::Error,
    },
    #[error("every address of the local load balancers' pool is taken")]
    AddressesExhausted,
    /// The spec cannot run; `field` names it as in the spec
    /// (`listeners[1].port`, `health.interval_seconds`).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the local load balancers have been shut down")]
    ShutDown,
}

fn bind_reason(port: u16, source: &std::io::Error) -> String {
    match source.kind() {
        std::io::ErrorKind::PermissionDenied if port < 1024 => {
            "permission denied — ports below 1024 need privileges".into()
        }
        std::io::ErrorKind::AddrInUse => "already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "this machine has no such address".into(),
        _ => {
            let text = source.to_string();
            // "Permission denied (os error 13)" → "permission denied (os error 13)"
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    }
}

/// All local load balancers of this portal process. Clone = shared handle.
#[derive(Clone)]
pub struct LocalBalancers {
    inner: Arc<Inner>,
}

struct Inner {
    first: u32,
    last: u32,
    balancers: StdMutex<HashMap<LoadBalancerId, Arc<Balancer>>>,
    /// Serialises apply, remove and shutdown, so two changes never race over
    /// one balancer's ports; holds whether `shutdown` has run.
    changes: tokio::sync::Mutex<bool>,
    /// Parent of every balancer's token: dropping the last handle stops all.
    root: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

struct Balancer {
    address: Ipv4Addr,
    pool: Arc<Pool>,
    upstream: http::Upstream,
    stop: CancellationToken,
    running: tokio::sync::Mutex<Running>,
    /// What `status` reports besides the pool; read without waiting on an
    /// apply in progress.
    view: StdMutex<View>,
}

#[derive(Default)]
struct View {
    listeners: Vec<Listener>,
    health_port: Option<u16>,
}

#[derive(Default)]
struct Running {
    listeners: HashMap<u16, (Listener, Task)>,
    probe: Option<Arc<Probe>>,
    checks: HashMap<IpAddr, Task>,
}

/// A spawned loop and the token that ends it.
struct Task {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl Task {
    fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(STOP_WAIT, self.handle).await;
    }
}

impl LocalBalancers {
    /// `addresses`: the pool each balancer takes its own listen address
    /// from, e.g. [`DEFAULT_ADDRESSES`].
    pub fn new(addresses: RangeInclusive<Ipv4Addr>) -> Self {
        Self {
            inner: Arc::new(Inner {
                first: u32::from(*addresses.start()),
                last: u32::from(*addresses.end()),
                balancers: StdMutex::new(HashMap::new()),
                changes: tokio::sync::Mutex::new(false),
                root: CancellationToken::new(),
            }),
        }
    }

    /// Creates or updates a balancer in place: listeners that did not
    /// change keep their connections; the address stays the same for the
    /// same id. A new balancer that fails to start is removed again; an
    /// existing one keeps what it could apply.
    pub async fn apply(&self, spec: &BalancerSpec) -> Result<Applied, LocalBalancerError> {
        validate(spec)?;
        let shut_down = self.inner.changes.lock().await;
        if *shut_down {
            return Err(LocalBalancerError::ShutDown);
        }
        let existing = self.balancers().get(&spec.id).cloned();
        let (balancer, created) = match existing {
            Some(balancer) => (balancer, false),
            None => (self.create(spec.id)?, true),
        };
        match balancer.converge(spec).await {
            Ok(corrected) => {
                if created {
                    tracing::info!(id = %spec.id, name = %spec.name, address = %balancer.address, "local load balancer started");
                }
                Ok(Applied {
                    backend_ref: spec.id.to_string(),
                    status: balancer.status(),
                    corrected,
                })
            }
            Err(e) => {
                if created {
                    self.balancers().remove(&spec.id);
                    balancer.shutdown().await;
                }
                Err(e)
            }
        }
    }

    /// Stops the balancer's listeners, connections and checks, and frees its
    /// address. Its ports are closed when this returns.
    pub async fn remove(&self, id: LoadBalancerId) {
        let _changes = self.inner.changes.lock().await;
        let removed = self.balancers().remove(&id);
        if let Some(balancer) = removed {
            balancer.shutdown().await;
            tracing::info!(%id, "local load balancer removed");
        }
    }

    pub fn status(&self, id: LoadBalancerId) -> Option<BalancerStatus> {
        let balancer = self.balancers().get(&id).cloned()?;
        Some(balancer.status())
    }

    pub fn ids(&self) -> Vec<LoadBalancerId> {
        self.balancers().keys().copied().collect()
    }

    /// Stops every balancer; later applies fail with
    /// [`LocalBalancerError::ShutDown`].
    pub async fn shutdown(&self) {
        let mut shut_down = self.inner.changes.lock().await;
        *shut_down = true;
        let all: Vec<_> = self.balancers().drain().map(|(_, b)| b).collect();
        for balancer in all {
            balancer.shutdown().await;
        }
    }

    fn balancers(&self) -> std::sync::MutexGuard<'_, HashMap<LoadBalancerId, Arc<Balancer>>> {
        self.inner
            .balancers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new, empty balancer. Its address is the first free one from a
    /// position derived from its id, so that after a portal restart the
    /// same balancer usually gets the same address again, whatever order
    /// the reconciler applies them in.
    fn create(&self, id: LoadBalancerId) -> Result<Arc<Balancer>, LocalBalancerError> {
        let mut balancers = self.balancers();
        let taken: HashSet<Ipv4Addr> = balancers.values().map(|b| b.address).collect();
        let (first, last) = (self.inner.first, self.inner.last);
        if first > last {
            return Err(LocalBalancerError::AddressesExhausted);
        }
        let size = u64::from(last - first) + 1;
        let start = (id.0.as_u128() % u128::from(size)) as u64;
        let address = (0..size)
            .map(|i| Ipv4Addr::from(first + ((start + i) % size) as u32))
            .find(|a| !taken.contains(a))
            .ok_or(LocalBalancerError::AddressesExhausted)?;
        let balancer = Arc::new(Balancer {
            address,
            pool: Arc::new(Pool::new()),
            upstream: http::upstream(),
            stop: self.inner.root.child_token(),
            running: tokio::sync::Mutex::new(Running::default()),
            view: StdMutex::new(View::default()),
        });
        balancers.insert(id, balancer.clone());
        Ok(balancer)
    }
}

impl Balancer {
    /// Brings the running listeners and checks to `spec`; returns the drift
    /// it corrected.
    async fn converge(&self, spec: &BalancerSpec) -> Result<Vec<String>, LocalBalancerError> {
        let mut running = self.running.lock().await;
        let mut corrected = Vec::new();
        self.pool.set_algorithm(spec.algorithm);
        self.pool.set_targets(&spec.targets);
        self.converge_checks(&mut running, spec, &mut corrected)
            .await;
        let listeners = self
            .converge_listeners(&mut running, spec, &mut corrected)
            .await;
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        view.listeners = spec
            .listeners
            .iter()
            .filter(|l| running.listeners.get(&l.port).is_some_and(|(r, _)| r == *l))
            .copied()
            .collect();
        view.health_port = running.probe.as_ref().map(|p| p.port);
        listeners.map(|()| corrected)
    }

    async fn converge_checks(
        &self,
        running: &mut Running,
        spec: &BalancerSpec,
        corrected: &mut Vec<String>,
    ) {
        let probe = probe_for(spec).map(Arc::new);
        if running.probe != probe {
            // New settings: every target's loop restarts with them; targets
            // keep the health they had.
            for (_, task) in running.checks.drain() {
                task.stop().await;
            }
            running.probe = probe.clone();
        }
        let targets = self.pool.targets();
        let gone: Vec<IpAddr> = running
            .checks
            .keys()
            .filter(|a| !targets.iter().any(|t| t.address == **a))
            .copied()
            .collect();
        for address in gone {
            if let Some(task) = running.checks.remove(&address) {
                task.stop().await;
            }
        }
        let Some(probe) = probe else {
            return;
        };
        for target in targets.iter() {
            if let Some(task) = running.checks.get(&target.address) {
                if task.is_running() {
                    continue;
                }
                corrected.push(format!(
                    "health checks of target {} were not running",
                    target.address
                ));
            }
            let stop = self.stop.child_token();
            let handle = tokio::spawn(health::watch(target.clone(), probe.clone(), stop.clone()));
            running.checks.insert(target.address, Task { stop, handle });
        }
    }

    async fn converge_listeners(
        &self,
        running: &mut Running,
        spec: &BalancerSpec,
        corrected: &mut Vec<String>,
    ) -> Result<(), LocalBalancerError> {
        // Listeners that went away or changed free their ports first.
        let stale: Vec<u16> = running
            .listeners
            .iter()
            .filter(|(port, (listener, _))| {
                !spec
                    .listeners
                    .iter()
                    .any(|l| l.port == **port && l == listener)
            })
            .map(|(port, _)| *port)
            .collect();
        for port in stale {
            if let Some((_, task)) = running.listeners.remove(&port) {
                task.stop().await;
            }
        }
        for listener in &spec.listeners {
            if let Some((_, task)) = running.listeners.get(&listener.port) {
                if task.is_running() {
                    continue;
                }
                corrected.push(format!("listener {} was not running", listener.port));
                if let Some((_, task)) = running.listeners.remove(&listener.port) {
                    task.stop().await;
                }
            }
            let socket = bind(self.address, listener.port)?;
            let stop = self.stop.child_token();
            let pool = self.pool.clone();
            let handle = match listener.protocol {
                ListenerProtocol::Tcp => {
                    tokio::spawn(tcp::serve(socket, listener.target_port, pool, stop.clone()))
                }
                ListenerProtocol::Http => tokio::spawn(http::serve(
                    socket,
                    listener.target_port,
                    pool,
                    self.upstream.clone(),
                    stop.clone(),
                )),
            };
            running
                .listeners
                .insert(listener.port, (*listener, Task { stop, handle }));
        }
        Ok(())
    }

    fn status(&self) -> BalancerStatus {
        let (mut ports, health_port) = {
            let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            let ports: Vec<u16> = view.listeners.iter().map(|l| l.target_port).collect();
            (ports, view.health_port)
        };
        // One entry per target and target port, in listener order.
        let mut seen = HashSet::new();
        ports.retain(|p| seen.insert(*p));
        if ports.is_empty() {
            // Without listeners a target is still shown, on the port it is
            // checked on (0: none).
            ports.push(health_port.unwrap_or(0));
        }
        let targets = self.pool.targets();
        BalancerStatus {
            address: Some(IpAddr::V4(self.address)),
            targets: ports
                .iter()
                .flat_map(|port| {
                    targets.iter().map(move |t| TargetStatus {
                        address: t.address,
                        port: *port,
                        health: t.health(),
                    })
                })
                .collect(),
        }
    }

    async fn shutdown(&self) {
        self.stop.cancel();
        let mut running = self.running.lock().await;
        for (_, (_, task)) in running.listeners.drain() {
            task.stop().await;
        }
        for (_, task) in running.checks.drain() {
            task.stop().await;
        }
    }
}

/// The check as run, or `None` when there is no port to probe (no listener
/// and no explicit port).
fn probe_for(spec: &BalancerSpec) -> Option<Probe> {
    let health = &spec.health;
    let port = health
        .port
        .or_else(|| spec.listeners.first().map(|l| l.target_port))?;
    Some(Probe {
        protocol: health.protocol,
        port,
        path: health.path.clone(),
        interval: Duration::from_secs(u64::from(health.interval_seconds)),
        timeout: Duration::from_secs(u64::from(health.timeout_seconds)),
        healthy_threshold: health.healthy_threshold,
        unhealthy_threshold: health.unhealthy_threshold,
    })
}

fn bind(address: Ipv4Addr, port: u16) -> Result<TcpListener, LocalBalancerError> {
    let error = |source| LocalBalancerError::Bind {
        port,
        address: IpAddr::V4(address),
        source,
    };
    let socket = TcpSocket::new_v4().map_err(error)?;
    // A port given up by a previous listener may still have connections in
    // TIME_WAIT; rebinding it must not fail because of them.
    socket.set_reuseaddr(true).map_err(error)?;
    socket
        .bind(SocketAddr::from((address, port)))
        .map_err(error)?;
    socket.listen(LISTEN_BACKLOG).map_err(error)
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LocalBalancerError {
    LocalBalancerError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn validate(spec: &BalancerSpec) -> Result<(), LocalBalancerError> {
    let mut ports = HashSet::new();
    for (i, listener) in spec.listeners.iter().enumerate() {
        if listener.port == 0 {
            return Err(invalid(
                format!("listeners[{i}].port"),
                "must be 1 to 65535",
            ));
        }
        if listener.target_port == 0 {
            return Err(invalid(
                format!("listeners[{i}].target_port"),
                "must be 1 to 65535",
            ));
        }
        if !ports.insert(listener.port) {
            return Err(invalid(
                format!("listeners[{i}].port"),
                format!("port {} is already used by another listener", listener.port),
            ));
        }
    }
    for (i, target) in spec.targets.iter().enumerate() {
        if target.is_unspecified() || target.is_multicast() {
            return Err(invalid(
                format!("targets[{i}]"),
                format!("{target} cannot be a target"),
            ));
        }
    }
    let health = &spec.health;
    if health.port == Some(0) {
        return Err(invalid("health.port", "must be 1 to 65535"));
    }
    for (field, value) in [
        ("health.interval_seconds", health.interval_seconds),
        ("health.timeout_seconds", health.timeout_seconds),
        ("health.healthy_threshold", health.healthy_threshold),
        ("health.unhealthy_threshold", health.unhealthy_threshold),
    ] {
        if value == 0 {
            return Err(invalid(field, "must be at least 1"));
        }
    }
    if health.protocol == HealthProtocol::Http
        && (!health.path.starts_with('/')
            || health
                .path
                .parse::<hyper::http::uri::PathAndQuery>()
                .is_err())
    {
        return Err(invalid(
            "health.path",
            format!("{:?} is not a request path starting with /", health.path),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::views::load_balancers::{Algorithm, HealthCheck};

    fn spec(listeners: Vec<Listener>) -> BalancerSpec {
        BalancerSpec {
            id: LoadBalancerId::new(),
            name: "unit".into(),
            listeners,
            targets: vec![IpAddr::from([127, 0, 1, 250])],
            algorithm: Algorithm::RoundRobin,
            health: HealthCheck::default(),
        }
    }

    /// A free port on `address`, found by binding port 0.
    fn free_port(address: Ipv4Addr) -> u16 {
        std::net::TcpListener::bind((address, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    #[tokio::test]
    async fn a_listener_that_died_is_restarted_and_reported() {
        let address = Ipv4Addr::new(127, 0, 2, 240);
        let balancers = LocalBalancers::new(address..=address);
        let port = free_port(address);
        let spec = spec(vec![Listener {
            protocol: ListenerProtocol::Tcp,
            port,
            target_port: 9,
        }]);
        let applied = balancers.apply(&spec).await.expect("applied");
        assert!(applied.corrected.is_empty());
        {
            let balancer = balancers
                .balancers()
                .get(&spec.id)
                .cloned()
                .expect("exists");
            let running = balancer.running.lock().await;
            let (_, task) = running.listeners.get(&port).expect("running");
            task.handle.abort();
        }
        // Give the abort a moment to land.
        for _ in 0..100 {
            let balancer = balancers
                .balancers()
                .get(&spec.id)
                .cloned()
                .expect("exists");
            if !balancer.running.lock().await.listeners[&port]
                .1
                .is_running()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let applied = balancers.apply(&spec).await.expect("applied again");
        assert_eq!(
            applied.corrected,
            [format!("listener {port} was not running")]
        );
        tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((address, port)),
        )
        .await
        .expect("connect in time")
        .expect("the listener is back");
        balancers.shutdown().await;
        assert!(matches!(
            balancers.apply(&spec).await,
            Err(LocalBalancerError::ShutDown)
        ));
    }

    #[test]
    fn invalid_specs_name_the_field() {
        let mut bad = spec(vec![
            Listener {
                protocol: ListenerProtocol::Http,
                port: 80,
                target_port: 8080,
            },
            Listener {
                protocol: ListenerProtocol::Tcp,
                port: 80,
                target_port: 8081,
            },
        ]);
        let e = validate(&bad).expect_err("duplicate port");
        assert_eq!(
            e.to_string(),
            "listeners[1].port: port 80 is already used by another listener"
        );
        bad.listeners.truncate(1);
        bad.health.interval_seconds = 0;
        assert_eq!(
            validate(&bad).expect_err("zero interval").to_string(),
            "health.interval_seconds: must be at least 1"
        );
        bad.health.interval_seconds = 1;
        bad.health.protocol = HealthProtocol::Http;
        bad.health.path = "healthz".into();
        assert!(
            validate(&bad)
                .expect_err("relative path")
                .to_string()
                .starts_with("health.path: ")
        );
    }

    #[test]
    fn bind_errors_say_why() {
        let denied = LocalBalancerError::Bind {
            port: 80,
            address: IpAddr::from([127, 0, 2, 3]),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            denied.to_string(),
            "port 80 on 127.0.2.3: permission denied — ports below 1024 need privileges"
        );
    }
}
