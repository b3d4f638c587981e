//! Outgoing email: written to an outbox table in the transaction of the change
//! that sends it, delivered afterwards by SMTP when configured. Without SMTP
//! (the local demo) mail stays in the outbox, where operators read it at
//! /admin/mail.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use protocol::ids::EmailId;
use protocol::views::{EmailView, Page, PageRequest};
use sqlx::{PgConnection, PgPool};

use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

pub async fn enqueue(
    conn: &mut PgConnection,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<EmailId> {
    let id = EmailId::new();
    sqlx::query(
        "INSERT INTO outbox_emails (id, to_address, subject, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(to)
    .bind(subject)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The outbox, newest first, for operators.
pub async fn list(db: &PgPool, actor: &Actor, page: PageRequest) -> Result<Page<EmailView>> {
    authorize(db, actor, Permission::PlatformMail, Resource::Platform).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_emails")
        .fetch_one(db)
        .await?;
    let items = sqlx::query_as(
        "SELECT id, to_address, subject, body, created_at, sent_at, attempts, last_error
         FROM outbox_emails ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db)
    .await?;
    Ok(page.page_of(items, total))
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error(
        "--smtp-url is not usable ({0}); expected smtps://user:password@host, smtp://user:password@host:587?tls=required or smtp://host:25"
    )]
    Url(String),
    #[error("--mail-from {0:?} is not an address such as \"Loopback <portal@example.com>\"")]
    From(String),
}

/// Delivers the outbox over SMTP.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(smtp_url: &str, from: &str) -> Result<Self, MailConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| MailConfigError::Url(e.to_string()))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|_| MailConfigError::From(from.to_string()))?;
        Ok(Self { transport, from })
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> std::result::Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_string())
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Sends what is due, at most `batch` messages; failures back off
/// exponentially (1 min, 2, 4 … up to 6 h). Returns how many were sent.
/// Rows are claimed with SKIP LOCKED so replicas never send twice.
pub async fn deliver_due(db: &PgPool, mailer: &Mailer, batch: i64) -> Result<usize> {
    let mut tx = db.begin().await?;
    let due: Vec<(EmailId, String, String, String, i32)> = sqlx::query_as(
        "SELECT id, to_address, subject, body, attempts FROM outbox_emails
         WHERE sent_at IS NULL AND next_attempt_at <= now()
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    let mut sent = 0;
    for (id, to, subject, body, attempts) in due {
        match mailer.send(&to, &subject, &body).await {
            Ok(()) => {
                sqlx::query("UPDATE outbox_emails SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sent += 1;
            }
            Err(error) => {
                tracing::warn!(email = %id, %error, "mail delivery failed; will retry");
                let backoff_minutes = 2f64.powi(attempts.min(9)).min(360.0);
                sqlx::query(
                    "UPDATE outbox_emails SET attempts = attempts + 1, last_error = $2,
                         next_attempt_at = now() + make_interval(mins => $3::float8)
                     WHERE id = $1",
                )
                .bind(id)
                .bind(error)
                .bind(backoff_minutes)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(sent)
}

/// Delivers the outbox every two seconds, from one replica at a time.
pub fn delivery(db: PgPool, mailer: Mailer) -> crate::tasks::Reconciler {
    crate::tasks::Reconciler::new(
        "mail.outbox",
        Duration::from_secs(2),
        Duration::from_secs(120),
        move || {
            let (db, mailer) = (db.clone(), mailer.clone());
            async move {
                let sent = deliver_due(&db, &mailer, 50)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(crate::tasks::ReconcileOutcome::new(format!("sent {sent}")))
            }
        },
    )
}

impl From<MailConfigError> for Error {
    fn from(e: MailConfigError) -> Self {
        Error::Internal(e.to_string())
    }
}
