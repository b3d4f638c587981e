//! Sending due notifications, with retries.
//!
//! A pass claims a few due rows (SKIP LOCKED, so replicas never take the
//! same one) and moves their next attempt on by the backoff *before*
//! sending: a process that dies mid-send retries after the backoff, not in
//! a tight loop. Each claimed row is then sent on its own, concurrently,
//! with a timeout, and its outcome written.

use std::sync::OnceLock;
use std::time::Duration;

use protocol::ids::{NotificationChannelId, NotificationId};
use protocol::views::monitoring::{ChannelConfig, NotificationMessage};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use tokio::task::JoinSet;

use crate::Platform;
use crate::error::{Error, Result};

use super::{channels, render};

/// Waits after the 1st … 5th failed attempt; the 6th failure gives up.
const BACKOFF_SECONDS: [i32; 5] = [5, 30, 120, 600, 1800];
const MAX_ATTEMPTS: i32 = BACKOFF_SECONDS.len() as i32 + 1;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: i64 = 20;
/// How much of a failing receiver's answer goes into `last_error`.
const ERROR_BODY_BYTES: usize = 200;

#[derive(sqlx::FromRow)]
struct Claimed {
    id: NotificationId,
    channel_id: NotificationChannelId,
    attempts: i32,
    message: sqlx::types::Json<NotificationMessage>,
    config: Vec<u8>,
}

/// One HTTP client for every delivery: connection reuse, and redirects off
/// so a receiver cannot bounce a signed body (or a token URL's request)
/// elsewhere.
fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .build()
        .map_err(Error::internal)?;
    Ok(CLIENT.get_or_init(|| client))
}

/// Delivers what is due, at most `batch` notifications. Returns how many
/// were delivered in this pass.
pub async fn deliver_due(platform: &Platform, batch: i64) -> Result<usize> {
    let backoff: Vec<i32> = BACKOFF_SECONDS.to_vec();
    let claimed: Vec<Claimed> = sqlx::query_as(
        "WITH due AS (
             SELECT id FROM notifications
             WHERE state = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT $1
             FOR UPDATE SKIP LOCKED
         )
         UPDATE notifications n
         SET attempts = n.attempts + 1,
             next_attempt_at = now() + make_interval(
                 secs => ($2::int4[])[least(n.attempts + 1, array_length($2::int4[], 1))])
         FROM due, notification_channels c
         WHERE n.id = due.id AND c.id = n.channel_id
         RETURNING n.id, n.channel_id, n.attempts, n.message, c.config",
    )
    .bind(batch)
    .bind(&backoff)
    .fetch_all(platform.db())
    .await?;
    let mut sends = JoinSet::new();
    for row in claimed {
        let platform = platform.clone();
        sends.spawn(async move {
            let id = row.id;
            match deliver_one(&platform, row).await {
                Ok(delivered) => delivered,
                Err(e) => {
                    tracing::warn!(notification = %id, error = %e, "recording a notification delivery failed");
                    false
                }
            }
        });
    }
    let mut delivered = 0;
    while let Some(joined) = sends.join_next().await {
        match joined {
            Ok(true) => delivered += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "a notification delivery task failed"),
        }
    }
    Ok(delivered)
}

/// Sends one claimed notification and records the outcome. Returns whether
/// it was delivered.
async fn deliver_one(platform: &Platform, row: Claimed) -> Result<bool> {
    let message = row.message.0;
    let config = match channels::open(platform, row.channel_id, &row.config) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(channel = %row.channel_id, error = %e, "notification channel settings do not open");
            fail(
                platform,
                row.id,
                row.attempts,
                "the channel's settings cannot be read; save the channel again",
            )
            .await?;
            return Ok(false);
        }
    };
    let outcome = match &config {
        ChannelConfig::Email { addresses } => {
            return email(platform, row.id, addresses, &message).await;
        }
        ChannelConfig::Webhook { url, secret } => match serde_json::to_vec(&message) {
            Ok(body) => {
                let request = client()?
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .header(
                        protocol::views::monitoring::SIGNATURE_HEADER,
                        render::signature(secret, &body),
                    )
                    .header("x-loopback-event", &message.kind)
                    .body(body);
                send(request).await
            }
            Err(e) => Err(format!("the message cannot be written as JSON: {e}")),
        },
        ChannelConfig::Slack { url } => send(json_post(url, &render::slack(&message))?).await,
        ChannelConfig::Teams { url } => send(json_post(url, &render::teams(&message))?).await,
    };
    match outcome {
        Ok(()) => {
            delivered(platform, row.id).await?;
            Ok(true)
        }
        Err(error) => {
            tracing::info!(notification = %row.id, attempt = row.attempts, %error, "notification delivery failed");
            fail(platform, row.id, row.attempts, &error).await?;
            Ok(false)
        }
    }
}

fn json_post(url: &str, body: &serde_json::Value) -> Result<reqwest::RequestBuilder> {
    Ok(client()?
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).map_err(Error::internal)?))
}

/// 2xx is delivered; anything else is a failure described for people.
async fn send(request: reqwest::RequestBuilder) -> std::result::Result<(), String> {
    let response = request
        .header(USER_AGENT, "Loopback")
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    let head = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]);
    let head = head.trim();
    Err(if head.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {head}", status.as_u16())
    })
}

/// "connection refused", "timed out after 10 s", or the innermost cause.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("timed out after {} s", SEND_TIMEOUT.as_secs());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut innermost = error.to_string();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => {
                    return format!("timed out after {} s", SEND_TIMEOUT.as_secs());
                }
                _ => {}
            }
        }
        innermost = e.to_string();
        source = e.source();
    }
    if error.is_connect() {
        format!("could not connect: {innermost}")
    } else {
        innermost
    }
}

/// Email is delivered once it is in the outbox: one mail per address, in
/// the same transaction that marks the notification delivered, so a crash
/// cannot mail twice.
async fn email(
    platform: &Platform,
    id: NotificationId,
    addresses: &[String],
    message: &NotificationMessage,
) -> Result<bool> {
    let subject = message.subject();
    let body = render::email_body(message);
    let mut tx = platform.db().begin().await?;
    let still_pending: Option<NotificationId> = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE id = $1 AND state = 'pending' FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if still_pending.is_none() {
        return Ok(false);
    }
    for address in addresses {
        crate::mail::enqueue(&mut tx, address, &subject, &body).await?;
    }
    mark_delivered(&mut tx, id).await?;
    tx.commit().await?;
    Ok(true)
}

async fn delivered(platform: &Platform, id: NotificationId) -> Result<()> {
    let mut conn = platform.db().acquire().await?;
    mark_delivered(&mut conn, id).await
}

async fn mark_delivered(conn: &mut sqlx::PgConnection, id: NotificationId) -> Result<()> {
    sqlx::query(
        "UPDATE notifications
         SET state = 'delivered', delivered_at = now(), next_attempt_at = NULL, last_error = NULL
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps the backoff set when the row was claimed, or gives up after the
/// last attempt.
async fn fail(platform: &Platform, id: NotificationId, attempts: i32, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE notifications
         SET last_error = $2,
             state = CASE WHEN $3 THEN 'failed'::notification_state ELSE state END,
             next_attempt_at = CASE WHEN $3 THEN NULL ELSE next_attempt_at END
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(error)
    .bind(attempts >= MAX_ATTEMPTS)
    .execute(platform.db())
    .await?;
    Ok(())
}

/// Delivers due notifications every second and schedules retries (backoff
/// 5 s, 30 s, 2 min, 10 min, 30 min; failed after the sixth attempt).
pub fn delivery(platform: Platform) -> crate::tasks::Reconciler {
    crate::tasks::Reconciler::new(
        "notification-delivery",
        Duration::from_secs(1),
        // A pass waits for its slowest send.
        SEND_TIMEOUT * 3,
        move || {
            let platform = platform.clone();
            async move {
                let delivered = deliver_due(&platform, BATCH)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(crate::tasks::ReconcileOutcome::new(format!(
                    "delivered {delivered}"
                )))
            }
        },
    )
}
