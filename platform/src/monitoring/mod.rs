//! Monitoring: objects that are probed on an interval from one or more
//! sources, the results, conditions that turn results into alerts, and the
//! notifications those alerts send.
//!
//! - [`engine`] claims due monitors from the database (once across
//!   replicas), runs their probes ([`probe`], or a host's agent) and writes
//!   the results in batches ([`results`]).
//! - [`alerts`] evaluates every written batch against the monitors'
//!   conditions: pending → firing → resolved, acknowledgements, silences,
//!   maintenance windows, repeats.
//! - [`notify`] holds the organization's notification channels and
//!   delivers notifications with retries.

pub mod alerts;
pub mod engine;
pub mod notify;
pub mod probe;
pub mod results;

use std::time::Duration;

use protocol::ids::{HostId, MonitorId, ProjectId, WorkspaceId};
use protocol::views::monitoring::{
    MonitorSeries, MonitorSummary, MonitorView, NewMonitor, ProbeOutcome, ResultView, StatusPage,
    TimeRange,
};
use protocol::views::{Page, PageRequest};
use time::OffsetDateTime;

use crate::Platform;
use crate::authz::{Actor, Resource};
use crate::error::Result;

/// Where a monitoring object lives: a project or one of its workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Project(ProjectId),
    Workspace(WorkspaceId),
}

impl Scope {
    pub fn resource(self) -> Resource {
        match self {
            Self::Project(p) => Resource::Project(p),
            Self::Workspace(w) => Resource::Workspace(w),
        }
    }
}

/// Process-wide monitoring settings, set once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The shortest interval a monitor may have (10 s; tests lower it).
    pub min_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(u64::from(
                protocol::views::monitoring::MIN_INTERVAL_SECONDS,
            )),
        }
    }
}

/// One probe result from one source, as the engine hands it to
/// [`results`] and [`alerts`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub monitor: MonitorId,
    /// The agent's host; `None` for the portal's prober.
    pub source: Option<HostId>,
    /// When the probe started.
    pub at: OffsetDateTime,
    pub outcome: ProbeOutcome,
}

/// Monitors of a project (its own and its workspaces') or of one
/// workspace, with sparklines.
pub async fn list(platform: &Platform, actor: &Actor, scope: Scope) -> Result<Vec<MonitorSummary>> {
    let _ = (platform, actor, scope);
    todo!("lead: monitoring::list")
}

pub async fn get(platform: &Platform, actor: &Actor, id: MonitorId) -> Result<MonitorView> {
    let _ = (platform, actor, id);
    todo!("lead: monitoring::get")
}

/// Checks everything, writes the monitor, its conditions and the audit
/// entry in one transaction; the first probe runs within a second.
pub async fn create(
    platform: &Platform,
    actor: &Actor,
    scope: Scope,
    new: NewMonitor,
) -> Result<MonitorView> {
    let _ = (platform, actor, scope, new);
    todo!("lead: monitoring::create")
}

/// Replaces the monitor's settings and conditions. Open alerts of
/// conditions that changed are resolved.
pub async fn update(
    platform: &Platform,
    actor: &Actor,
    id: MonitorId,
    new: NewMonitor,
) -> Result<MonitorView> {
    let _ = (platform, actor, id, new);
    todo!("lead: monitoring::update")
}

pub async fn delete(platform: &Platform, actor: &Actor, id: MonitorId) -> Result<()> {
    let _ = (platform, actor, id);
    todo!("lead: monitoring::delete")
}

/// Latency and failures in equal buckets over `range`, and the state
/// timeline, for the object page's charts.
pub async fn series(
    platform: &Platform,
    actor: &Actor,
    id: MonitorId,
    range: TimeRange,
) -> Result<MonitorSeries> {
    let _ = (platform, actor, id, range);
    todo!("lead: monitoring::series")
}

/// Stored results, newest first.
pub async fn results(
    platform: &Platform,
    actor: &Actor,
    id: MonitorId,
    page: PageRequest,
) -> Result<Page<ResultView>> {
    let _ = (platform, actor, id, page);
    todo!("lead: monitoring::results")
}

/// The project's public status page: only monitors marked public; `NotFound`
/// when there are none. Needs no sign-in.
pub async fn status_page(platform: &Platform, project: ProjectId) -> Result<StatusPage> {
    let _ = (platform, project);
    todo!("lead: monitoring::status_page")
}
