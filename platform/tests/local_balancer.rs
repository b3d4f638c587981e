//! The `local` load-balancer backend with real traffic: two HTTP targets on
//! this machine behind a balancer, a target stopped and restarted while
//! requests keep flowing. No database needed.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use platform::loadbalancers::local::{LocalBalancerError, LocalBalancers};
use platform::loadbalancers::spec::BalancerSpec;
use protocol::ids::LoadBalancerId;
use protocol::views::load_balancers::{
    Algorithm, HealthCheck, HealthProtocol, Listener, ListenerProtocol, TargetHealth,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 2);
/// Health checks every second; two results in a row change a target.
const INTERVAL: Duration = Duration::from_secs(1);
const THRESHOLD: u32 = 2;
/// Scheduling slack on a busy two-core machine.
const MARGIN: Duration = Duration::from_millis(2500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP server answering its own name on every path, like a host
/// serving a web app; stopping it closes its listener and every connection,
/// as a process dying would.
struct Target {
    name: &'static str,
    at: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    fn start(name: &'static str, listener: TcpListener) -> Self {
        let at = listener.local_addr().expect("a bound listener");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(name, listener, stop.clone()));
        Self {
            name,
            at,
            stop,
            task,
        }
    }

    async fn stop(self) -> (&'static str, SocketAddr) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the target stops")
            .expect("the target's task");
        (self.name, self.at)
    }

    /// Starts again on the same address and port.
    async fn restart(name: &'static str, at: SocketAddr) -> Self {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match bind(at) {
                Ok(listener) => return Self::start(name, listener),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {at}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebinding {at}: {e}"),
            }
        }
    }
}

async fn serve(name: &'static str, listener: TcpListener, stop: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| async move {
                        let mut response = Response::new(Full::new(Bytes::from_static(name.as_bytes())));
                        if request.uri().path() == "/echo" {
                            // A protocol switch, like a WebSocket: after the
                            // 101 the connection echoes what it reads.
                            let upgrade = hyper::upgrade::on(&mut request);
                            tokio::spawn(async move {
                                if let Ok(upgraded) = upgrade.await {
                                    let mut io = TokioIo::new(upgraded);
                                    let mut buf = [0u8; 64];
                                    while let Ok(n) = io.read(&mut buf).await {
                                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            });
                            *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                            *response.body_mut() = Full::new(Bytes::new());
                            response.headers_mut().insert(hyper::header::CONNECTION, "upgrade".parse().expect("a header"));
                            response.headers_mut().insert(hyper::header::UPGRADE, "echo".parse().expect("a header"));
                        }
                        if request.uri().path() == "/down" {
                            *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        for (seen, header) in [
                            ("x-seen-forwarded-for", "x-forwarded-for"),
                            ("x-seen-forwarded-proto", "x-forwarded-proto"),
                        ] {
                            if let Some(value) = request.headers().get(header) {
                                response.headers_mut().insert(seen, value.clone());
                            }
                        }
                        Ok::<_, Infallible>(response)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        }
    }
    drop(listener);
    connections.shutdown().await;
}

fn bind(at: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(at)?;
    socket.listen(128)
}

/// Targets `a` on 127.0.1.1 and `b` on 127.0.1.2, on one port.
async fn two_targets() -> (Target, Target) {
    for _ in 0..20 {
        let a = bind(SocketAddr::from((A, 0))).expect("bind 127.0.1.1");
        let port = a.local_addr().expect("an address").port();
        if let Ok(b) = bind(SocketAddr::from((B, port))) {
            return (Target::start("a", a), Target::start("b", b));
        }
    }
    panic!("no port free on both 127.0.1.1 and 127.0.1.2");
}

/// A port nobody listens on at `address`.
fn free_port(address: Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((address, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spec(listeners: Vec<Listener>, port: u16, health: HealthProtocol) -> BalancerSpec {
    BalancerSpec {
        id: LoadBalancerId::new(),
        name: "test".into(),
        listeners,
        targets: vec![IpAddr::V4(A), IpAddr::V4(B)],
        algorithm: Algorithm::RoundRobin,
        health: HealthCheck {
            protocol: health,
            port: Some(port),
            path: "/healthz".into(),
            interval_seconds: INTERVAL.as_secs() as u32,
            timeout_seconds: 1,
            healthy_threshold: THRESHOLD,
            unhealthy_threshold: THRESHOLD,
        },
    }
}

fn http_listener(port: u16, target_port: u16) -> Listener {
    Listener {
        protocol: ListenerProtocol::Http,
        port,
        target_port,
    }
}

fn tcp_listener(port: u16, target_port: u16) -> Listener {
    Listener {
        protocol: ListenerProtocol::Tcp,
        port,
        target_port,
    }
}

fn health_of(balancers: &LocalBalancers, id: LoadBalancerId, target: Ipv4Addr) -> TargetHealth {
    let status = balancers.status(id).expect("the balancer exists");
    status
        .targets
        .iter()
        .find(|t| t.address == IpAddr::V4(target))
        .map_or(TargetHealth::Unknown, |t| t.health)
}

/// Waits until `target` shows `health`; returns when it did.
async fn wait_for(
    balancers: &LocalBalancers,
    id: LoadBalancerId,
    target: Ipv4Addr,
    health: TargetHealth,
    within: Duration,
) -> Instant {
    let started = Instant::now();
    loop {
        if health_of(balancers, id, target) == health {
            return Instant::now();
        }
        assert!(
            started.elapsed() < within,
            "{target} was not {health:?} within {within:?}: {:?}",
            balancers.status(id)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client that keeps connections alive (HTTP listeners balance per
/// request).
fn keep_alive_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a client")
}

/// A client that opens a new connection per request (TCP listeners balance
/// per connection).
fn one_shot_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client")
}

async fn get(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

async fn names(client: &reqwest::Client, url: &str, count: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(
            get(client, url)
                .await
                .expect("a request through the balancer"),
        );
    }
    names
}

fn assert_alternate(names: &[String]) {
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "requests should alternate: {names:?}");
    }
    for name in ["a", "b"] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} got nothing: {names:?}"
        );
    }
}

/// One request of a continuous stream.
struct Sent {
    started: Instant,
    answer: Result<String, String>,
}

/// Sends requests one after another until `stop` (at most a minute).
fn keep_requesting(
    client: reqwest::Client,
    url: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Vec<Sent>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        let until = Instant::now() + Duration::from_secs(60);
        while !stop.is_cancelled() && Instant::now() < until {
            let started = Instant::now();
            let answer = get(&client, &url).await;
            sent.push(Sent { started, answer });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    })
}

/// Stops `b` while requests flow, checks it is marked down in time and that
/// no request failed, then restarts it and checks traffic returns.
async fn stop_and_restore_b(
    balancers: &LocalBalancers,
    id: LoadBalancerId,
    b: Target,
    client: reqwest::Client,
    url: &str,
) -> Target {
    wait_for(balancers, id, B, TargetHealth::Healthy, INTERVAL + MARGIN).await;
    let stop = CancellationToken::new();
    let load = keep_requesting(client.clone(), url.to_owned(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped_at = Instant::now();
    let (name, at) = b.stop().await;
    let marked_at = wait_for(
        balancers,
        id,
        B,
        TargetHealth::Unhealthy,
        INTERVAL * THRESHOLD + MARGIN,
    )
    .await;
    println!(
        "b marked unhealthy {:.2} s after it stopped",
        (marked_at - stopped_at).as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let sent = tokio::time::timeout(Duration::from_secs(15), load)
        .await
        .expect("the load ends")
        .expect("the load task");
    let failed: Vec<_> = sent
        .iter()
        .filter_map(|s| s.answer.as_ref().err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed while b stopped: {failed:?}",
        failed.len(),
        sent.len()
    );
    let after_mark: Vec<_> = sent.iter().filter(|s| s.started > marked_at).collect();
    assert!(after_mark.len() >= 10, "too few requests after the mark");
    assert!(
        after_mark.iter().all(|s| s.answer.as_deref() == Ok("a")),
        "requests after b was marked down went elsewhere than a"
    );
    let during = sent
        .iter()
        .filter(|s| s.started > stopped_at && s.started <= marked_at)
        .count();
    println!(
        "{} requests, {during} between the stop and the mark, none failed",
        sent.len()
    );

    let b = Target::restart(name, at).await;
    wait_for(
        balancers,
        id,
        B,
        TargetHealth::Healthy,
        INTERVAL * THRESHOLD + MARGIN,
    )
    .await;
    let back = names(&client, url, 10).await;
    assert_alternate(&back);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_listener_alternates_and_survives_a_dead_target() {
    let lb = Ipv4Addr::new(127, 0, 2, 201);
    let balancers = LocalBalancers::new(lb..=lb);
    let (a, b) = two_targets().await;
    let port = free_port(lb);
    let spec = spec(
        vec![http_listener(port, a.at.port())],
        a.at.port(),
        HealthProtocol::Http,
    );
    let applied = balancers.apply(&spec).await.expect("applied");
    assert_eq!(applied.backend_ref, spec.id.to_string());
    assert!(applied.corrected.is_empty());
    assert_eq!(applied.status.address, Some(IpAddr::V4(lb)));
    assert_eq!(applied.status.targets.len(), 2);
    assert!(applied.status.targets.iter().all(|t| t.port == a.at.port()));
    assert_eq!(balancers.ids(), [spec.id]);

    let url = format!("http://{lb}:{port}/");
    let client = keep_alive_client();
    let first = names(&client, &url, 20).await;
    assert_alternate(&first);
    assert_eq!(first.iter().filter(|n| *n == "a").count(), 10);

    let response = client.get(&url).send().await.expect("a request");
    let headers = response.headers();
    assert!(
        headers
            .get("x-seen-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("127.")),
        "X-Forwarded-For reaches the target: {headers:?}"
    );
    assert_eq!(headers["x-seen-forwarded-proto"], "http");

    let b = stop_and_restore_b(&balancers, spec.id, b, client.clone(), &url).await;

    // Nothing healthy: 503, not a hang.
    a.stop().await;
    b.stop().await;
    wait_for(
        &balancers,
        spec.id,
        A,
        TargetHealth::Unhealthy,
        INTERVAL * THRESHOLD + MARGIN,
    )
    .await;
    wait_for(
        &balancers,
        spec.id,
        B,
        TargetHealth::Unhealthy,
        INTERVAL * THRESHOLD + MARGIN,
    )
    .await;
    let response = client.get(&url).send().await.expect("an answer");
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    balancers.remove(spec.id).await;
    assert!(balancers.status(spec.id).is_none());
    assert!(balancers.ids().is_empty());
    assert!(
        TcpStream::connect((lb, port)).await.is_err(),
        "the listener is closed after remove"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listener_alternates_and_survives_a_dead_target() {
    let lb = Ipv4Addr::new(127, 0, 2, 202);
    let balancers = LocalBalancers::new(lb..=lb);
    let (a, b) = two_targets().await;
    let port = free_port(lb);
    let spec = spec(
        vec![tcp_listener(port, a.at.port())],
        a.at.port(),
        HealthProtocol::Tcp,
    );
    balancers.apply(&spec).await.expect("applied");
    let url = format!("http://{lb}:{port}/");
    let client = one_shot_client();
    assert_alternate(&names(&client, &url, 10).await);

    let b = stop_and_restore_b(&balancers, spec.id, b, client, &url).await;
    balancers.shutdown().await;
    assert!(balancers.ids().is_empty());
    assert!(TcpStream::connect((lb, port)).await.is_err());
    a.stop().await;
    b.stop().await;
}

/// Reads from `stream` until one of the targets' names has arrived.
async fn read_name(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && !body.is_empty()
            {
                return body.to_owned();
            }
        }
    })
    .await
    .expect("an answer in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_prefers_the_idle_target() {
    let lb = Ipv4Addr::new(127, 0, 2, 203);
    let balancers = LocalBalancers::new(lb..=lb);
    let (a, b) = two_targets().await;
    let port = free_port(lb);
    let mut spec = spec(
        vec![tcp_listener(port, a.at.port())],
        a.at.port(),
        HealthProtocol::Tcp,
    );
    spec.algorithm = Algorithm::LeastConnections;
    balancers.apply(&spec).await.expect("applied");

    // One connection stays open (keep-alive) on whichever target it got.
    let mut held = TcpStream::connect((lb, port)).await.expect("connect");
    held.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let busy = read_name(&mut held).await;
    let idle = if busy == "a" { "b" } else { "a" };

    let client = one_shot_client();
    let url = format!("http://{lb}:{port}/");
    for _ in 0..6 {
        let name = get(&client, &url).await.expect("a request");
        assert_eq!(name, idle, "new connections go to the idle target");
        // The finished connection stops counting once both sides closed.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Both idle again: ties spread over both.
    assert_alternate(&names(&client, &url, 6).await);

    balancers.remove(spec.id).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_apply_in_place_and_keep_the_address() {
    // Two addresses: a second balancer must get the other one.
    let pool = Ipv4Addr::new(127, 0, 2, 204)..=Ipv4Addr::new(127, 0, 2, 205);
    let balancers = LocalBalancers::new(pool.clone());
    let (a, b) = two_targets().await;
    let mut spec = spec(Vec::new(), a.at.port(), HealthProtocol::Tcp);
    let applied = balancers.apply(&spec).await.expect("applied");
    let Some(IpAddr::V4(lb)) = applied.status.address else {
        panic!("an IPv4 address: {:?}", applied.status);
    };
    assert!(pool.contains(&lb));
    let other = if lb == *pool.start() {
        *pool.end()
    } else {
        *pool.start()
    };
    let http_port = free_port(lb);
    spec.listeners.push(http_listener(http_port, a.at.port()));
    let applied = balancers.apply(&spec).await.expect("a listener added");
    assert_eq!(applied.status.address, Some(IpAddr::V4(lb)));

    // A connection open before the update, through the listener that stays.
    let mut kept = TcpStream::connect((lb, http_port)).await.expect("connect");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    read_name(&mut kept).await;

    // Add a TCP listener, remove target b.
    let tcp_port = free_port(lb);
    spec.listeners.push(tcp_listener(tcp_port, a.at.port()));
    spec.targets.retain(|t| *t == IpAddr::V4(A));
    let applied = balancers.apply(&spec).await.expect("updated");
    assert!(applied.corrected.is_empty(), "{:?}", applied.corrected);
    assert_eq!(applied.status.address, Some(IpAddr::V4(lb)));
    assert_eq!(
        applied
            .status
            .targets
            .iter()
            .map(|t| t.address)
            .collect::<Vec<_>>(),
        [IpAddr::V4(A)],
        "one target on one target port (both listeners use the same)"
    );

    kept.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("the old connection is still open");
    assert_eq!(read_name(&mut kept).await, "a");
    let client = keep_alive_client();
    for name in names(&client, &format!("http://{lb}:{http_port}/"), 6).await {
        assert_eq!(name, "a");
    }
    let one_shot = one_shot_client();
    for name in names(&one_shot, &format!("http://{lb}:{tcp_port}/"), 4).await {
        assert_eq!(name, "a");
    }

    // Drop the HTTP listener again; the TCP one keeps going.
    spec.listeners.remove(0);
    let applied = balancers.apply(&spec).await.expect("updated again");
    assert_eq!(applied.status.address, Some(IpAddr::V4(lb)));
    assert!(TcpStream::connect((lb, http_port)).await.is_err());
    assert_eq!(
        get(&one_shot, &format!("http://{lb}:{tcp_port}/"))
            .await
            .as_deref(),
        Ok("a")
    );

    // Another balancer gets the other address; with both taken, a third
    // finds none.
    let mut second = spec.clone();
    second.id = LoadBalancerId::new();
    second.listeners.clear();
    let applied = balancers.apply(&second).await.expect("a second balancer");
    assert_eq!(applied.status.address, Some(IpAddr::V4(other)));
    let mut third = second.clone();
    third.id = LoadBalancerId::new();
    let e = balancers.apply(&third).await.expect_err("no address left");
    assert!(matches!(e, LocalBalancerError::AddressesExhausted), "{e}");
    // Removing one frees its address.
    balancers.remove(second.id).await;
    let applied = balancers.apply(&third).await.expect("the freed address");
    assert_eq!(applied.status.address, Some(IpAddr::V4(other)));

    // The same id keeps its address across applies.
    let applied = balancers.apply(&spec).await.expect("re-applied");
    assert_eq!(applied.status.address, Some(IpAddr::V4(lb)));
    balancers.shutdown().await;
    a.stop().await;
    b.stop().await;
}

/// Drops CAP_NET_BIND_SERVICE from the calling thread's effective set (a
/// root test run has it), so binding a privileged port fails as it would
/// for an unprivileged portal. Capabilities are per thread on Linux.
fn drop_bind_service_capability() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_BIND_SERVICE: u32 = 10;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data elements, as
    // capget(2) documents; pid 0 is this thread.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
            return false;
        }
        data[0].effective &= !(1 << CAP_NET_BIND_SERVICE);
        libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) == 0
    }
}

#[test]
fn bind_errors_are_clear() {
    let lb = Ipv4Addr::new(127, 0, 2, 206);
    let unprivileged_from: u16 =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1024);
    let outcome = std::thread::spawn(move || {
        assert!(drop_bind_service_capability(), "capset failed");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let balancers = LocalBalancers::new(lb..=lb);
            let mut privileged = spec(vec![http_listener(80, 8080)], 8080, HealthProtocol::Tcp);
            privileged.targets = vec![IpAddr::V4(A)];
            let privileged = balancers.apply(&privileged).await;
            // The failed balancer is not left behind half made.
            let left = balancers.ids();

            // A port somebody else holds.
            let holder = std::net::TcpListener::bind((lb, 0)).expect("bind");
            let held = holder.local_addr().expect("an address").port();
            let mut busy = spec(vec![tcp_listener(held, 8080)], 8080, HealthProtocol::Tcp);
            busy.targets = vec![IpAddr::V4(A)];
            let busy = balancers.apply(&busy).await;
            balancers.shutdown().await;
            (privileged.map(|_| ()), left, busy.map(|_| ()), held)
        })
    })
    .join()
    .expect("the bind test thread");
    let (privileged, left, busy, held) = outcome;
    if unprivileged_from > 80 {
        let e = privileged.expect_err("port 80 needs privileges");
        assert!(
            matches!(e, LocalBalancerError::Bind { port: 80, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "port 80 on 127.0.2.206: permission denied — ports below 1024 need privileges"
        );
    } else {
        eprintln!("this machine lets anyone bind port 80; skipping the privileged case");
    }
    assert!(
        left.is_empty(),
        "a failed new balancer is removed: {left:?}"
    );
    let e = busy.expect_err("the port is taken");
    assert_eq!(
        e.to_string(),
        format!("port {held} on 127.0.2.206: already in use")
    );
}

#[tokio::test]
async fn invalid_specs_are_refused_before_anything_starts() {
    let lb = Ipv4Addr::new(127, 0, 2, 207);
    let balancers = LocalBalancers::new(lb..=lb);
    let mut bad = spec(vec![http_listener(8080, 0)], 8080, HealthProtocol::Http);
    let e = balancers.apply(&bad).await.expect_err("target port 0");
    assert_eq!(
        e.to_string(),
        "listeners[0].target_port: must be 1 to 65535"
    );
    bad.listeners[0].target_port = 8080;
    bad.health.unhealthy_threshold = 0;
    let e = balancers.apply(&bad).await.expect_err("threshold 0");
    assert_eq!(
        e.to_string(),
        "health.unhealthy_threshold: must be at least 1"
    );
    assert!(balancers.ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_want_a_2xx_or_3xx_answer() {
    let lb = Ipv4Addr::new(127, 0, 2, 208);
    let balancers = LocalBalancers::new(lb..=lb);
    let (a, b) = two_targets().await;
    let port = free_port(lb);
    let mut spec = spec(
        vec![http_listener(port, a.at.port())],
        a.at.port(),
        HealthProtocol::Http,
    );
    // Both targets answer 503 on this path while serving everything else.
    spec.health.path = "/down".into();
    spec.health.unhealthy_threshold = 1;
    balancers.apply(&spec).await.expect("applied");
    for target in [A, B] {
        wait_for(
            &balancers,
            spec.id,
            target,
            TargetHealth::Unhealthy,
            INTERVAL + MARGIN,
        )
        .await;
    }
    let response = keep_alive_client()
        .get(format!("http://{lb}:{port}/"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    // Back to a healthy path: the same targets come back.
    spec.health.path = "/healthz".into();
    let applied = balancers.apply(&spec).await.expect("updated");
    assert!(applied.corrected.is_empty());
    for target in [A, B] {
        wait_for(
            &balancers,
            spec.id,
            target,
            TargetHealth::Healthy,
            INTERVAL * THRESHOLD + MARGIN,
        )
        .await;
    }
    assert_alternate(&names(&keep_alive_client(), &format!("http://{lb}:{port}/"), 4).await);
    balancers.shutdown().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_listeners_pass_protocol_upgrades_through() {
    let lb = Ipv4Addr::new(127, 0, 2, 209);
    let balancers = LocalBalancers::new(lb..=lb);
    let (a, b) = two_targets().await;
    let port = free_port(lb);
    let spec = spec(
        vec![http_listener(port, a.at.port())],
        a.at.port(),
        HealthProtocol::Tcp,
    );
    balancers.apply(&spec).await.expect("applied");
    let mut stream = TcpStream::connect((lb, port)).await.expect("connect");
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read");
            assert_eq!(n, 1, "closed early: {:?}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
    })
    .await
    .expect("a 101 in time");
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for word in [&b"ping"[..], b"pong"] {
        stream
            .write_all(word)
            .await
            .expect("write through the tunnel");
        let mut echoed = [0u8; 4];
        tokio::time::timeout(REQUEST_TIMEOUT, stream.read_exact(&mut echoed))
            .await
            .expect("an echo in time")
            .expect("read through the tunnel");
        assert_eq!(&echoed, word);
    }
    balancers.shutdown().await;
    a.stop().await;
    b.stop().await;
}
