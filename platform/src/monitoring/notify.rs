//! The organization's notification channels (email, signed webhook, Slack,
//! Teams) and the deliveries of notifications to them, retried with
//! backoff.

use protocol::ids::{MonitorId, NotificationChannelId, NotificationId, OrganizationId};
use protocol::views::monitoring::{ChannelView, DeliveryView, NewChannel, NotificationMessage};
use protocol::views::{Page, PageRequest};
use sqlx::PgConnection;

use crate::Platform;
use crate::authz::Actor;
use crate::error::Result;

/// Channels of the organization (anyone who can read the organization may
/// pick them for a monitor; changing them needs `notification.manage`).
pub async fn list_channels(
    platform: &Platform,
    actor: &Actor,
    organization: OrganizationId,
) -> Result<Vec<ChannelView>> {
    let _ = (platform, actor, organization);
    todo!("H4: notify::list_channels")
}

pub async fn create_channel(
    platform: &Platform,
    actor: &Actor,
    organization: OrganizationId,
    new: NewChannel,
) -> Result<ChannelView> {
    let _ = (platform, actor, organization, new);
    todo!("H4: notify::create_channel")
}

/// Replaces a channel's name and settings. A webhook secret left empty
/// keeps the stored one.
pub async fn update_channel(
    platform: &Platform,
    actor: &Actor,
    id: NotificationChannelId,
    new: NewChannel,
) -> Result<ChannelView> {
    let _ = (platform, actor, id, new);
    todo!("H4: notify::update_channel")
}

pub async fn delete_channel(
    platform: &Platform,
    actor: &Actor,
    id: NotificationChannelId,
) -> Result<()> {
    let _ = (platform, actor, id);
    todo!("H4: notify::delete_channel")
}

/// Queues a test notification to the channel and returns its delivery.
pub async fn send_test(
    platform: &Platform,
    actor: &Actor,
    id: NotificationChannelId,
) -> Result<DeliveryView> {
    let _ = (platform, actor, id);
    todo!("H4: notify::send_test")
}

/// The organization's deliveries, newest first.
pub async fn deliveries(
    platform: &Platform,
    actor: &Actor,
    organization: OrganizationId,
    page: PageRequest,
) -> Result<Page<DeliveryView>> {
    let _ = (platform, actor, organization, page);
    todo!("H4: notify::deliveries")
}

/// Tries a failed delivery again now.
pub async fn retry(platform: &Platform, actor: &Actor, id: NotificationId) -> Result<DeliveryView> {
    let _ = (platform, actor, id);
    todo!("H4: notify::retry")
}

/// Queues `message` for every channel in `channels` that belongs to
/// `organization`, in the caller's transaction. Returns how many were
/// queued.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    organization: OrganizationId,
    channels: &[NotificationChannelId],
    monitor: Option<MonitorId>,
    message: &NotificationMessage,
) -> Result<usize> {
    let _ = (conn, organization, channels, monitor, message);
    todo!("H4: notify::enqueue")
}

/// Delivers due notifications and schedules retries (backoff 5 s, 30 s,
/// 2 min, 10 min, 30 min; failed after the sixth attempt).
pub fn delivery(platform: Platform) -> crate::tasks::Reconciler {
    let _ = platform;
    todo!("H4: notify::delivery")
}
