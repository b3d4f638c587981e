//! Runs a probe from the portal itself (the built-in source). Network
//! probes go through the `probes` crate, which the agent shares; Kubernetes
//! and host-metrics probes read what only the portal has.

use protocol::views::monitoring::{ProbeOutcome, ProbeSpec};

use crate::Platform;

/// Runs `spec` once from the portal. Never fails: a probe that cannot run
/// is a failed result saying why.
pub async fn run_builtin(platform: &Platform, spec: &ProbeSpec) -> ProbeOutcome {
    let _ = (platform, spec);
    todo!("H1: probe::run_builtin")
}
