//! Notifications waiting for, or done with, delivery: one row per channel,
//! written in the transaction of the change that sends it.

use protocol::ids::{MonitorId, NotificationChannelId, NotificationId, OrganizationId};
use protocol::views::monitoring::{DeliveryState, DeliveryView, NotificationMessage};
use protocol::views::{Page, PageRequest};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

const VIEW: &str = "SELECT n.id, n.channel_id, c.name AS channel_name, n.subject, n.state,
        n.attempts, n.next_attempt_at, n.last_error, n.created_at, n.delivered_at
    FROM notifications n JOIN notification_channels c ON c.id = n.channel_id";

#[derive(sqlx::FromRow)]
struct Row {
    id: NotificationId,
    channel_id: NotificationChannelId,
    channel_name: String,
    subject: String,
    state: DeliveryState,
    attempts: i32,
    next_attempt_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

impl From<Row> for DeliveryView {
    fn from(r: Row) -> Self {
        DeliveryView {
            id: r.id,
            channel: r.channel_id,
            channel_name: r.channel_name,
            subject: r.subject,
            state: r.state,
            attempts: u32::try_from(r.attempts).unwrap_or_default(),
            // Only pending deliveries have a next attempt.
            next_attempt_at: r
                .next_attempt_at
                .filter(|_| r.state == DeliveryState::Pending),
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        }
    }
}

/// Queues `message` for every channel in `channels` that belongs to
/// `organization`, in the caller's transaction. Returns how many were
/// queued. No authorization: callers are the alerting code, acting for
/// the monitor's configuration.
pub async fn enqueue(
    conn: &mut PgConnection,
    organization: OrganizationId,
    channels: &[NotificationChannelId],
    monitor: Option<MonitorId>,
    message: &NotificationMessage,
) -> Result<usize> {
    Ok(insert(conn, organization, channels, monitor, message)
        .await?
        .len())
}

/// Channels of other organizations (a stale or forged id on a monitor) are
/// skipped.
async fn insert(
    conn: &mut PgConnection,
    organization: OrganizationId,
    channels: &[NotificationChannelId],
    monitor: Option<MonitorId>,
    message: &NotificationMessage,
) -> Result<Vec<NotificationId>> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let mine: Vec<NotificationChannelId> = sqlx::query_scalar(
        "SELECT id FROM notification_channels
         WHERE organization_id = $1 AND id = ANY($2) ORDER BY id",
    )
    .bind(organization)
    .bind(channels)
    .fetch_all(&mut *conn)
    .await?;
    let subject = message.subject();
    let mut ids = Vec::with_capacity(mine.len());
    for channel in mine {
        let id = NotificationId::new();
        let mut message = message.clone();
        message.id = id;
        sqlx::query(
            "INSERT INTO notifications
                 (id, organization_id, channel_id, monitor_id, kind, subject, message)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(organization)
        .bind(channel)
        .bind(monitor)
        .bind(&message.kind)
        .bind(&subject)
        .bind(sqlx::types::Json(&message))
        .execute(&mut *conn)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn fetch(conn: &mut PgConnection, id: NotificationId) -> Result<DeliveryView> {
    let row: Row = sqlx::query_as(&format!("{VIEW} WHERE n.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(row.into())
}

/// Queues a test notification to the channel and returns its delivery.
pub async fn send_test(
    platform: &Platform,
    actor: &Actor,
    id: NotificationChannelId,
) -> Result<DeliveryView> {
    let db = platform.db();
    let organization = super::channels::manage(db, actor, id).await?;
    let message = NotificationMessage {
        id: NotificationId::new(),
        kind: "test".into(),
        organization,
        project: None,
        monitor: None,
        monitor_name: None,
        target: None,
        url: platform
            .public_url()
            .join(&format!("orgs/{organization}/notifications"))
            .ok()
            .map(String::from),
        alerts: Vec::new(),
        sent_at: OffsetDateTime::now_utc(),
    };
    let mut tx = db.begin().await?;
    let queued = insert(&mut tx, organization, &[id], None, &message).await?;
    let notification = *queued.first().ok_or(Error::NotFound)?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("notification_channel.test", "notification_channel", id)
            .in_org(organization)
            .details(serde_json::json!({ "notification": notification })),
    )
    .await?;
    let view = fetch(&mut tx, notification).await?;
    tx.commit().await?;
    Ok(view)
}

/// The organization's deliveries, newest first. Subjects name monitors of
/// every project, so this needs `notification.manage` like the channels'
/// other pages.
pub async fn deliveries(
    platform: &Platform,
    actor: &Actor,
    organization: OrganizationId,
    page: PageRequest,
) -> Result<Page<DeliveryView>> {
    let db = platform.db();
    authorize(
        db,
        actor,
        Permission::NotificationManage,
        Resource::Organization(organization),
    )
    .await?;
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE organization_id = $1")
            .bind(organization)
            .fetch_one(db)
            .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} WHERE n.organization_id = $1
         ORDER BY n.created_at DESC, n.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(organization)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(rows.into_iter().map(Into::into).collect(), total))
}

/// Tries a failed (or still pending) delivery again now.
pub async fn retry(platform: &Platform, actor: &Actor, id: NotificationId) -> Result<DeliveryView> {
    let db = platform.db();
    let (organization, channel): (OrganizationId, NotificationChannelId) =
        sqlx::query_as("SELECT organization_id, channel_id FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or(Error::NotFound)?;
    authorize(
        db,
        actor,
        Permission::NotificationManage,
        Resource::Organization(organization),
    )
    .await?;
    let mut tx = db.begin().await?;
    let state: DeliveryState =
        sqlx::query_scalar("SELECT state FROM notifications WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound)?;
    if state == DeliveryState::Delivered {
        return Err(Error::Conflict(
            "this notification was delivered already".into(),
        ));
    }
    sqlx::query(
        "UPDATE notifications SET state = 'pending', next_attempt_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("notification.retry", "notification", id)
            .in_org(organization)
            .details(serde_json::json!({ "channel": channel, "previous_state": state })),
    )
    .await?;
    let view = fetch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(view)
}
