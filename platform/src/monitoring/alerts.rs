//! Conditions → alerts: evaluation of written results, the alert lifecycle
//! (pending → firing → resolved), acknowledgements, silences, maintenance
//! windows and repeat notifications.

use protocol::ids::{AlertId, ProjectId, SilenceId};
use protocol::views::monitoring::{AlertDetail, AlertFilter, AlertView, NewSilence, SilenceView};
use protocol::views::{Page, PageRequest};

use super::{Recorded, Scope};
use crate::Platform;
use crate::authz::Actor;
use crate::error::Result;

/// Evaluates a written batch of results against their monitors'
/// conditions and moves alerts along; enqueues notifications.
pub(crate) async fn evaluate(platform: &Platform, batch: &[Recorded]) -> Result<()> {
    let _ = (platform, batch);
    todo!("H3: alerts::evaluate")
}

/// Repeats notifications of firing, unacknowledged alerts after the
/// monitor's repeat interval; releases alerts whose silence or maintenance
/// window ended.
pub fn reconciler(platform: Platform) -> crate::tasks::Reconciler {
    let _ = platform;
    todo!("H3: alerts::reconciler")
}

pub async fn list(
    platform: &Platform,
    actor: &Actor,
    scope: Scope,
    filter: AlertFilter,
    page: PageRequest,
) -> Result<Page<AlertView>> {
    let _ = (platform, actor, scope, filter, page);
    todo!("H3: alerts::list")
}

pub async fn get(platform: &Platform, actor: &Actor, id: AlertId) -> Result<AlertDetail> {
    let _ = (platform, actor, id);
    todo!("H3: alerts::get")
}

/// Acknowledges a firing alert: no more repeats; the comment is kept.
pub async fn acknowledge(
    platform: &Platform,
    actor: &Actor,
    id: AlertId,
    comment: &str,
) -> Result<AlertView> {
    let _ = (platform, actor, id, comment);
    todo!("H3: alerts::acknowledge")
}

pub async fn create_silence(
    platform: &Platform,
    actor: &Actor,
    project: ProjectId,
    new: NewSilence,
) -> Result<SilenceView> {
    let _ = (platform, actor, project, new);
    todo!("H3: alerts::create_silence")
}

/// Silences of the project, active first, then those that ended in the
/// last 7 days.
pub async fn list_silences(
    platform: &Platform,
    actor: &Actor,
    project: ProjectId,
) -> Result<Vec<SilenceView>> {
    let _ = (platform, actor, project);
    todo!("H3: alerts::list_silences")
}

/// Ends a silence now.
pub async fn expire_silence(platform: &Platform, actor: &Actor, id: SilenceId) -> Result<()> {
    let _ = (platform, actor, id);
    todo!("H3: alerts::expire_silence")
}
