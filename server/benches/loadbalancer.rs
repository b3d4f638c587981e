//! Local load balancer figures: requests per second and latency of the
//! `local` backend's HTTP and TCP listeners on loopback, against hitting the
//! target directly, measured side by side with `wrk` (Debian's package;
//! scripts/setup installs it).
//!
//! The target (a small fixed response from axum), the balancer and wrk all
//! run on this machine and share its cores, so the proxy's cost shows both
//! as added latency and as CPU taken from the target and wrk.
//!
//! Run with `scripts/bench lb` (a release build; no database needed).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use platform::loadbalancers::local::LocalBalancers;
use platform::loadbalancers::spec::BalancerSpec;
use protocol::ids::LoadBalancerId;
use protocol::views::load_balancers::{
    Algorithm, HealthCheck, HealthProtocol, Listener, ListenerProtocol,
};

const TARGET: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 100);
const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 250);
const BODY: &str = "hello from the target\n";
const THREADS: &str = "1";
const CONNECTIONS: &str = "32";
const DURATION: &str = "10s";
const WARMUP: &str = "2s";
/// Each way is measured this many times, interleaved with the others.
const ROUNDS: usize = 2;

/// What one wrk run reported.
#[derive(Debug, Clone, Default)]
struct Run {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Socket errors and non-2xx/3xx answers, as wrk words them.
    errors: Vec<String>,
}

/// "293.00us", "1.02ms", "1.50s" → milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|n| n * factor)
}

fn parse_wrk(output: &str) -> Result<Run, String> {
    let mut run = Run::default();
    let (mut p50, mut p99, mut rps) = (None, None, None);
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("50%") {
            p50 = duration_ms(rest);
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = duration_ms(rest);
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse::<f64>().ok();
        } else if line.starts_with("Socket errors:") || line.starts_with("Non-2xx or 3xx") {
            run.errors.push(line.to_owned());
        }
    }
    match (p50, p99, rps) {
        (Some(p50), Some(p99), Some(rps)) => {
            run.p50_ms = p50;
            run.p99_ms = p99;
            run.requests_per_second = rps;
            Ok(run)
        }
        _ => Err(format!("could not read wrk's output:\n{output}")),
    }
}

async fn wrk(url: &str, duration: &str) -> Run {
    let output = tokio::process::Command::new("wrk")
        .args([
            "-t",
            THREADS,
            "-c",
            CONNECTIONS,
            "-d",
            duration,
            "--latency",
            url,
        ])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running wrk: {e} (scripts/setup installs Debian's wrk)"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_wrk(&stdout).unwrap_or_else(|e| panic!("{e}"))
}

fn mean(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
}

fn free_port(address: Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((address, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::main]
async fn main() {
    if let Err(e) = std::process::Command::new("wrk")
        .arg("-v")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        panic!("wrk is missing ({e}): run scripts/setup, which installs Debian's wrk");
    }

    // The target: one small fixed answer.
    let target = tokio::net::TcpListener::bind((TARGET, 0))
        .await
        .expect("bind the target");
    let target_port = target.local_addr().expect("an address").port();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { BODY }));
    tokio::spawn(async move {
        axum::serve(target, app).await.expect("the target serves");
    });

    // The balancer in front of it, one listener of each kind.
    let balancers = LocalBalancers::new(BALANCER..=BALANCER);
    let http_port = free_port(BALANCER);
    let tcp_port = free_port(BALANCER);
    let spec = BalancerSpec {
        id: LoadBalancerId::new(),
        name: "bench".into(),
        listeners: vec![
            Listener {
                protocol: ListenerProtocol::Http,
                port: http_port,
                target_port,
            },
            Listener {
                protocol: ListenerProtocol::Tcp,
                port: tcp_port,
                target_port,
            },
        ],
        targets: vec![IpAddr::V4(TARGET)],
        algorithm: Algorithm::RoundRobin,
        health: HealthCheck {
            protocol: HealthProtocol::Http,
            port: None,
            path: "/".into(),
            interval_seconds: 5,
            timeout_seconds: 2,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        },
    };
    balancers.apply(&spec).await.expect("the balancer starts");

    let ways = [
        (
            "direct to the target",
            format!("http://{}/", SocketAddr::from((TARGET, target_port))),
        ),
        (
            "through the HTTP listener",
            format!("http://{}/", SocketAddr::from((BALANCER, http_port))),
        ),
        (
            "through the TCP listener",
            format!("http://{}/", SocketAddr::from((BALANCER, tcp_port))),
        ),
    ];
    println!(
        "wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION} --latency, {ROUNDS} rounds interleaved, after a {WARMUP} warm-up each; {} cores shared by wrk, the target and the balancer",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (_, url) in &ways {
        wrk(url, WARMUP).await;
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); ways.len()];
    for round in 1..=ROUNDS {
        for (i, (name, url)) in ways.iter().enumerate() {
            let run = wrk(url, DURATION).await;
            println!(
                "round {round}, {name}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms{}",
                run.requests_per_second,
                run.p50_ms,
                run.p99_ms,
                if run.errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", run.errors.join("; "))
                }
            );
            runs[i].push(run);
        }
    }
    let status = balancers.status(spec.id).expect("the balancer");
    balancers.shutdown().await;

    println!();
    println!("== lb: summary (mean of {ROUNDS} rounds) ==");
    let direct_rps = mean(&runs[0], |r| r.requests_per_second);
    let direct_p50 = mean(&runs[0], |r| r.p50_ms);
    let direct_p99 = mean(&runs[0], |r| r.p99_ms);
    for (i, (name, _)) in ways.iter().enumerate() {
        let rps = mean(&runs[i], |r| r.requests_per_second);
        let p50 = mean(&runs[i], |r| r.p50_ms);
        let p99 = mean(&runs[i], |r| r.p99_ms);
        let compared = if i == 0 {
            String::new()
        } else {
            format!(
                "; {:.0}% of direct req/s, added p50 {:.3} ms, added p99 {:.3} ms",
                rps / direct_rps * 100.0,
                p50 - direct_p50,
                p99 - direct_p99
            )
        };
        println!("{name}: {rps:.0} req/s, p50 {p50:.3} ms, p99 {p99:.3} ms{compared}");
    }
    let errors: usize = runs.iter().flatten().map(|r| r.errors.len()).sum();
    println!(
        "wrk reported {} (target health afterwards: {:?})",
        if errors == 0 {
            "no socket errors and no non-2xx answers".to_string()
        } else {
            format!("{errors} runs with errors, see above")
        },
        status.targets.first().map(|t| t.health)
    );
}
