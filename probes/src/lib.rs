//! Network probes for monitoring: HTTP(S), TLS certificates, TCP ports and
//! DNS records. The portal's built-in source and every host agent run the
//! same code, so a monitor measures the same thing from each vantage point.
//!
//! [`run`] never panics and never fails: a probe that cannot run is a
//! failed [`ProbeOutcome`] saying why, and each probe is bounded by its own
//! `timeout_ms`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use protocol::views::monitoring::{ProbeOutcome, ProbeSpec};

mod dns;
mod http;
pub mod json_path;
mod tcp;
mod tls;

pub use http::Prober;

/// Runs `spec` once with the process-wide [`Prober`].
pub async fn run(spec: &ProbeSpec) -> ProbeOutcome {
    static PROBER: OnceLock<Prober> = OnceLock::new();
    PROBER.get_or_init(Prober::new).run(spec).await
}

impl Prober {
    /// Runs `spec` once with this prober's HTTP clients.
    pub async fn run(&self, spec: &ProbeSpec) -> ProbeOutcome {
        match spec {
            ProbeSpec::Http(probe) => self.http(probe).await,
            ProbeSpec::Tls(probe) => tls::run(probe).await,
            ProbeSpec::Tcp(probe) => tcp::run(probe).await,
            ProbeSpec::Dns(probe) => dns::run(probe).await,
            ProbeSpec::Kubernetes(_) => {
                ProbeOutcome::failed("a Kubernetes probe runs in the portal only")
            }
            ProbeSpec::Host(_) => {
                ProbeOutcome::failed("a host-metrics probe runs in the portal only")
            }
        }
    }
}

/// A probe's time limit; zero would fail every probe, so it means one
/// millisecond rather than "no limit".
fn limit(timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(timeout_ms.max(1)))
}

fn timed_out(timeout_ms: u32) -> ProbeOutcome {
    ProbeOutcome::failed(format!("timed out after {timeout_ms} ms"))
}

/// Milliseconds since `start`, with microsecond resolution.
fn elapsed_ms(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The message of an I/O error as people read it.
fn io_message(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset".to_owned(),
        ErrorKind::TimedOut => "connection timed out".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        _ => error.to_string(),
    }
}

/// Resolves `host:port` and connects to the first address that answers.
async fn connect(host: &str, port: u16) -> Result<tokio::net::TcpStream, String> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| format!("could not resolve {host}: {err}"))?
        .collect();
    let mut last = format!("could not resolve {host}");
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = io_message(&err),
        }
    }
    Err(last)
}
