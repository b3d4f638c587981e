//! TCP port: up when a connection is accepted.

use std::time::Instant;

use protocol::views::monitoring::{ProbeOutcome, TcpProbe};

pub(crate) async fn run(probe: &TcpProbe) -> ProbeOutcome {
    let start = Instant::now();
    match tokio::time::timeout(
        crate::limit(probe.timeout_ms),
        crate::connect(&probe.host, probe.port),
    )
    .await
    {
        Err(_) => crate::timed_out(probe.timeout_ms),
        Ok(Err(error)) => ProbeOutcome::failed(error),
        Ok(Ok(_stream)) => ProbeOutcome {
            ok: true,
            latency_ms: Some(crate::elapsed_ms(start)),
            ..ProbeOutcome::default()
        },
    }
}
