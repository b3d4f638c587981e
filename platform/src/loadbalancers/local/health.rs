//! Health checks: one loop per target probing it on the balancer's
//! interval and moving it between Unknown, Healthy and Unhealthy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use protocol::views::load_balancers::{HealthProtocol, TargetHealth};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::pool::Target;

/// The check as run: the spec's settings with the port resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Probe {
    pub(super) protocol: HealthProtocol,
    pub(super) port: u16,
    pub(super) path: String,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) healthy_threshold: u32,
    pub(super) unhealthy_threshold: u32,
}

/// Consecutive results of one target's checks.
#[derive(Debug, Default)]
struct Streak {
    successes: u32,
    failures: u32,
}

impl Streak {
    /// The target's next state after one more result. The first success
    /// marks an unchecked target healthy (it takes traffic already); going
    /// down always takes `unhealthy_threshold` failures in a row, and coming
    /// back `healthy_threshold` successes.
    fn record(&mut self, ok: bool, now: TargetHealth, probe: &Probe) -> TargetHealth {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            match now {
                TargetHealth::Unknown => TargetHealth::Healthy,
                TargetHealth::Unhealthy if self.successes >= probe.healthy_threshold => {
                    TargetHealth::Healthy
                }
                other => other,
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.failures >= probe.unhealthy_threshold {
                TargetHealth::Unhealthy
            } else {
                now
            }
        }
    }
}

/// Probes `target` every interval until `stop`.
pub(super) async fn watch(target: Arc<Target>, probe: Arc<Probe>, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(probe.interval);
    // A slow probe postpones the next one rather than firing a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut streak = Streak::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            outcome = tokio::time::timeout(probe.timeout, check(target.address, &probe)) => outcome,
        };
        let result = outcome.unwrap_or_else(|_| {
            Err(format!(
                "no answer within {} s",
                probe.timeout.as_secs_f64()
            ))
        });
        let before = target.health();
        let after = streak.record(result.is_ok(), before, &probe);
        if after != before {
            target.set_health(after);
            match &result {
                Ok(()) => {
                    tracing::info!(target = %target.address, port = probe.port, "load balancer target is healthy")
                }
                Err(why) => {
                    tracing::warn!(target = %target.address, port = probe.port, %why, "load balancer target is unhealthy")
                }
            }
        }
    }
}

async fn check(address: IpAddr, probe: &Probe) -> Result<(), String> {
    let at = SocketAddr::new(address, probe.port);
    let stream = TcpStream::connect(at)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    match probe.protocol {
        HealthProtocol::Tcp => Ok(()),
        HealthProtocol::Http => http_check(stream, at, &probe.path).await,
    }
}

/// GET `path` on a fresh connection: 2xx and 3xx are healthy.
async fn http_check(stream: TcpStream, at: SocketAddr, path: &str) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, at.to_string())
        .header(hyper::header::USER_AGENT, "loopback-health-check")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("health check path {path:?}: {e}"))?;
    // The connection is driven here rather than in a task of its own, so a
    // target that never answers leaves nothing behind once the timeout drops
    // this future. With `Connection: close` the connection may finish in the
    // same poll that delivers the answer, so the answer is awaited after it.
    let send = sender.send_request(request);
    tokio::pin!(send);
    let response = tokio::select! {
        response = &mut send => response,
        _ = connection => send.await,
    }
    .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> Probe {
        Probe {
            protocol: HealthProtocol::Tcp,
            port: 80,
            path: "/".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }

    #[test]
    fn thresholds_move_a_target_between_states() {
        let probe = probe();
        let mut streak = Streak::default();
        let mut health = TargetHealth::Unknown;
        health = streak.record(true, health, &probe);
        assert_eq!(health, TargetHealth::Healthy);
        for expected in [
            TargetHealth::Healthy,
            TargetHealth::Healthy,
            TargetHealth::Unhealthy,
        ] {
            health = streak.record(false, health, &probe);
            assert_eq!(health, expected);
        }
        health = streak.record(true, health, &probe);
        assert_eq!(health, TargetHealth::Unhealthy);
        health = streak.record(false, health, &probe);
        health = streak.record(true, health, &probe);
        assert_eq!(health, TargetHealth::Unhealthy);
        health = streak.record(true, health, &probe);
        assert_eq!(health, TargetHealth::Healthy);
    }

    #[test]
    fn an_unchecked_target_goes_down_only_after_the_threshold() {
        let probe = probe();
        let mut streak = Streak::default();
        let mut health = TargetHealth::Unknown;
        health = streak.record(false, health, &probe);
        health = streak.record(false, health, &probe);
        assert_eq!(health, TargetHealth::Unknown);
        health = streak.record(false, health, &probe);
        assert_eq!(health, TargetHealth::Unhealthy);
    }
}
