//! The scheduler: claims due monitors, runs their probes from every source
//! and hands the results to the batched writer.

use tokio_util::sync::CancellationToken;

use crate::Platform;

/// What the engine did since it started, for benchmarks and diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub probes_started: u64,
    pub probes_in_flight: u64,
    pub results_written: u64,
    pub write_batches: u64,
    /// How late probes started against their scheduled time.
    pub jitter_p50_ms: f64,
    pub jitter_p99_ms: f64,
    pub jitter_max_ms: f64,
}

/// A running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {}

impl Engine {
    /// Starts the scheduler and the result writer; both stop at `shutdown`.
    pub fn spawn(platform: Platform, shutdown: CancellationToken) -> Engine {
        let _ = (platform, shutdown);
        todo!("H2: engine::spawn")
    }

    pub fn stats(&self) -> Stats {
        todo!("H2: engine::stats")
    }
}
