//! Shell sessions on hosts: who opened which, when a browser is attached,
//! how it ended and how many bytes went each way. The bytes themselves are
//! relayed by [`super::hub`]; this is the record and its authorization.

use protocol::agent::ShellEnd;
use protocol::ids::{HostId, ShellSessionId};
use protocol::views::{HostState, ShellSessionView, ShellStart};
use sqlx::PgPool;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission};
use crate::error::{Error, Result};

/// Opens a session record for the caller; the browser attaches to it with
/// the returned reconnection token (shown once, stored hashed).
pub async fn start(platform: &Platform, actor: &Actor, host: HostId) -> Result<ShellStart> {
    let db = platform.db();
    let grant = super::authorize_host(db, actor, Permission::HostShell, host).await?;
    let (hostname, state, online, workspace, org): (
        String,
        HostState,
        bool,
        protocol::ids::WorkspaceId,
        protocol::ids::OrganizationId,
    ) = sqlx::query_as(
        "SELECT hostname, state, online, workspace_id, organization_id FROM hosts WHERE id = $1",
    )
    .bind(host)
    .fetch_one(db)
    .await?;
    if state == HostState::Deleting {
        return Err(Error::Conflict("the host is being deleted".into()));
    }
    if !online {
        return Err(Error::Conflict(
            "the host's agent is offline; a shell needs a connected agent".into(),
        ));
    }
    let token = crate::crypto::new_token();
    let session = ShellSessionId::new();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO shell_sessions (id, host_id, workspace_id, organization_id, account_id,
             account_email, reconnect_digest)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(session)
    .bind(host)
    .bind(workspace)
    .bind(org)
    .bind(actor.account_id)
    .bind(&actor.email)
    .bind(crate::crypto::token_digest(&token))
    .execute(&mut *tx)
    .await?;
    let mut entry = Entry::new("host.shell.start", "host", host)
        .details(serde_json::json!({ "session": session, "hostname": hostname }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    Ok(ShellStart {
        session,
        host,
        hostname,
        reconnect_token: token,
    })
}

/// Checks that `actor` may attach to `session` with `token`: still allowed
/// shells on the host, the session is theirs, not ended, and the token
/// matches.
pub async fn authorize_attach(
    db: &PgPool,
    actor: &Actor,
    host: HostId,
    session: ShellSessionId,
    token: &str,
) -> Result<()> {
    super::authorize_host(db, actor, Permission::HostShell, host).await?;
    let row: Option<(
        Option<protocol::ids::AccountId>,
        Vec<u8>,
        Option<time::OffsetDateTime>,
    )> = sqlx::query_as(
        "SELECT account_id, reconnect_digest, ended_at FROM shell_sessions
             WHERE id = $1 AND host_id = $2",
    )
    .bind(session)
    .bind(host)
    .fetch_optional(db)
    .await?;
    let Some((account, digest, ended)) = row else {
        return Err(Error::NotFound);
    };
    let token_ok: bool = {
        use sha2::Digest;
        // Constant-time enough: both sides are fixed-length digests, and
        // the token is 256 random bits.
        sha2::Sha256::digest(token.as_bytes()).as_slice() == digest.as_slice()
    };
    if account != Some(actor.account_id) || !token_ok {
        return Err(Error::NotFound);
    }
    if ended.is_some() {
        return Err(Error::Conflict("the session has ended".into()));
    }
    Ok(())
}

pub async fn attached(db: &PgPool, session: ShellSessionId) -> Result<()> {
    sqlx::query("UPDATE shell_sessions SET attached_at = now(), detached_at = NULL WHERE id = $1")
        .bind(session)
        .execute(db)
        .await?;
    Ok(())
}

/// The browser's link went away; the session may continue.
pub async fn detached(
    db: &PgPool,
    session: ShellSessionId,
    bytes_in: u64,
    bytes_out: u64,
) -> Result<()> {
    sqlx::query(
        "UPDATE shell_sessions SET detached_at = now(), bytes_in = bytes_in + $2,
             bytes_out = bytes_out + $3
         WHERE id = $1",
    )
    .bind(session)
    .bind(i64::try_from(bytes_in).unwrap_or(i64::MAX))
    .bind(i64::try_from(bytes_out).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(())
}

fn reason_label(reason: ShellEnd) -> &'static str {
    match reason {
        ShellEnd::Exited => "exited",
        ShellEnd::Closed => "closed",
        ShellEnd::Idle => "idle timeout",
    }
}

/// Records the end of a session (once) with its byte counts, audit-logged.
pub async fn ended(
    db: &PgPool,
    session: ShellSessionId,
    reason: ShellEnd,
    exit_code: Option<i32>,
    bytes: (u64, u64),
) -> Result<()> {
    let mut tx = db.begin().await?;
    let row: Option<(HostId, protocol::ids::OrganizationId, String, i64, i64)> = sqlx::query_as(
        "UPDATE shell_sessions SET ended_at = now(), end_reason = $2, exit_code = $3,
             detached_at = coalesce(detached_at, now()),
             bytes_in = bytes_in + $4, bytes_out = bytes_out + $5
         WHERE id = $1 AND ended_at IS NULL
         RETURNING host_id, organization_id, account_email, bytes_in, bytes_out",
    )
    .bind(session)
    .bind(reason_label(reason))
    .bind(exit_code)
    .bind(i64::try_from(bytes.0).unwrap_or(i64::MAX))
    .bind(i64::try_from(bytes.1).unwrap_or(i64::MAX))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((host, org, email, bytes_in, bytes_out)) = row else {
        return Ok(());
    };
    audit::record(
        &mut tx,
        By::System,
        Entry::new("host.shell.end", "host", host)
            .in_org(org)
            .details(serde_json::json!({
                "session": session, "account": email, "reason": reason_label(reason),
                "exit_code": exit_code, "bytes_in": bytes_in, "bytes_out": bytes_out,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn list_for_host(
    db: &PgPool,
    host: HostId,
    limit: i64,
) -> Result<Vec<ShellSessionView>> {
    Ok(sqlx::query_as(
        "SELECT id, host_id, account_email, started_at, ended_at,
             (ended_at IS NULL AND attached_at IS NOT NULL AND detached_at IS NULL) AS attached,
             end_reason, bytes_in, bytes_out
         FROM shell_sessions WHERE host_id = $1
         ORDER BY ended_at IS NOT NULL, started_at DESC LIMIT $2",
    )
    .bind(host)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Ends a session from the host's page. Ending your own needs `host.shell`;
/// ending someone else's needs `host.delete` (workspace admins).
pub async fn end(
    platform: &Platform,
    actor: &Actor,
    host: HostId,
    session: ShellSessionId,
) -> Result<()> {
    let db = platform.db();
    let owner: Option<Option<protocol::ids::AccountId>> = sqlx::query_scalar(
        "SELECT account_id FROM shell_sessions WHERE id = $1 AND host_id = $2 AND ended_at IS NULL",
    )
    .bind(session)
    .bind(host)
    .fetch_optional(db)
    .await?;
    let permission = match owner {
        Some(Some(account)) if account == actor.account_id => Permission::HostShell,
        _ => Permission::HostDelete,
    };
    let grant = super::authorize_host(db, actor, permission, host).await?;
    if owner.is_none() {
        return Err(Error::NotFound);
    }
    let mut tx = db.begin().await?;
    let mut entry = Entry::new("host.shell.terminate", "host", host)
        .details(serde_json::json!({ "session": session }));
    entry.organization_id = grant.organization_id;
    audit::record(&mut tx, By::Actor(actor), entry).await?;
    tx.commit().await?;
    // The agent answers ShellClosed, which records the end; when it is
    // offline the shell is gone with it, so record the end here.
    if platform.hub().close_shell(host, session).await.is_err() {
        ended(db, session, ShellEnd::Closed, None, (0, 0)).await?;
    }
    Ok(())
}

/// Records sessions that ended without a browser attached, and ends those
/// that can no longer be running: detached for longer than the idle timeout
/// allows, or never attached at all.
pub fn sweeper(platform: Platform, idle_timeout: std::time::Duration) -> crate::tasks::Reconciler {
    crate::tasks::Reconciler::new(
        "hosts.shell_sessions",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(30),
        move || {
            let platform = platform.clone();
            async move {
                let db = platform.db();
                let ended_now = platform.hub().take_ended();
                for (session, exit_code, reason) in &ended_now {
                    ended(db, *session, *reason, *exit_code, (0, 0))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let lost: Vec<ShellSessionId> = sqlx::query_scalar(
                    "SELECT id FROM shell_sessions WHERE ended_at IS NULL AND (
                         (detached_at IS NOT NULL AND detached_at < now() - make_interval(secs => $1))
                         OR (attached_at IS NULL AND started_at < now() - interval '10 minutes'))",
                )
                .bind(idle_timeout.as_secs_f64() + 60.0)
                .fetch_all(db)
                .await
                .map_err(|e| e.to_string())?;
                for session in &lost {
                    ended(db, *session, ShellEnd::Idle, None, (0, 0))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(crate::tasks::ReconcileOutcome::new(format!(
                    "{} ended on their hosts, {} lost",
                    ended_now.len(),
                    lost.len()
                )))
            }
        },
    )
}
