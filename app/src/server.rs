//! Server-side glue for server functions: the platform, the caller's
//! session, and who they are.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use platform::Platform;
use platform::authz::{Actor, RequestMeta};
use platform::identity::{self, Account};
use protocol::ids::AccountId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::error::AppError;

/// Time allowed between the password and the second factor.
const SECOND_FACTOR_WINDOW_MS: i64 = 10 * 60 * 1000;

const SIGNED_IN: &str = "signed_in";
const SECOND_FACTOR: &str = "second_factor";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SignedIn {
    account: AccountId,
    epoch: i32,
    /// Unix milliseconds.
    at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingSecondFactor {
    account: AccountId,
    /// Unix milliseconds.
    at_ms: i64,
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// The platform the server put into the request's context.
pub fn platform() -> Result<Platform, AppError> {
    leptos::prelude::use_context::<Platform>()
        .ok_or_else(|| AppError::internal("platform missing from the request context"))
}

/// The account signed in on `session`, if the session is still valid for
/// it (not past its lifetime, not signed out everywhere); an invalid
/// session is cleared. Also used by plain axum routes (live task updates).
pub async fn account_of(
    platform: &Platform,
    session: &Session,
) -> Result<Option<Account>, AppError> {
    let signed_in: Option<SignedIn> = session.get(SIGNED_IN).await.map_err(AppError::internal)?;
    let Some(signed_in) = signed_in else {
        return Ok(None);
    };
    let lifetime_ms = i64::try_from(platform.sessions().lifetime.as_millis()).unwrap_or(i64::MAX);
    if now_ms() - signed_in.at_ms > lifetime_ms {
        session.flush().await.map_err(AppError::internal)?;
        return Ok(None);
    }
    let account = identity::for_session(platform.db(), signed_in.account, signed_in.epoch).await?;
    if account.is_none() {
        // Signed out everywhere, password changed, or account gone.
        session.flush().await.map_err(AppError::internal)?;
    }
    Ok(account)
}

/// Everything a server function needs about its request.
pub struct Ctx {
    pub platform: Platform,
    pub session: Session,
    pub meta: RequestMeta,
}

pub async fn ctx() -> Result<Ctx, AppError> {
    let platform = platform()?;
    let session: Session = leptos_axum::extract().await.map_err(AppError::internal)?;
    let ip = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(addr)| addr.ip());
    let user_agent = leptos_axum::extract::<http::HeaderMap>()
        .await
        .ok()
        .and_then(|h| {
            h.get(http::header::USER_AGENT)?
                .to_str()
                .ok()
                .map(|s| s.chars().take(300).collect())
        });
    Ok(Ctx {
        platform,
        session,
        meta: RequestMeta { ip, user_agent },
    })
}

/// Shorthand: the context of a signed-in caller, or `Unauthenticated`.
pub async fn signed_in() -> Result<(Ctx, Actor), AppError> {
    let ctx = ctx().await?;
    let actor = ctx.actor().await?;
    Ok((ctx, actor))
}

impl Ctx {
    pub fn db(&self) -> &sqlx::PgPool {
        self.platform.db()
    }

    /// The signed-in account, if the session is still valid for it.
    pub async fn account(&self) -> Result<Option<Account>, AppError> {
        account_of(&self.platform, &self.session).await
    }

    pub async fn actor(&self) -> Result<Actor, AppError> {
        self.account()
            .await?
            .map(|a| a.actor(self.meta.clone()))
            .ok_or_else(|| AppError::Unauthenticated.answered())
    }

    /// Signs `account` in on a fresh session id (no fixation).
    pub async fn complete_sign_in(&self, account: &Account) -> Result<(), AppError> {
        self.session.cycle_id().await.map_err(AppError::internal)?;
        self.session
            .remove_value(SECOND_FACTOR)
            .await
            .map_err(AppError::internal)?;
        self.put(
            SIGNED_IN,
            &SignedIn {
                account: account.id,
                epoch: account.session_epoch,
                at_ms: now_ms(),
            },
        )
        .await
    }

    /// Keeps the current session valid after the account's epoch was raised
    /// by the caller themselves (password change).
    pub async fn restamp(&self, epoch: i32) -> Result<(), AppError> {
        if let Some(mut s) = self.get::<SignedIn>(SIGNED_IN).await? {
            s.epoch = epoch;
            self.put(SIGNED_IN, &s).await?;
        }
        Ok(())
    }

    /// The password was right; the second factor comes next.
    pub async fn begin_second_factor(&self, account: &Account) -> Result<(), AppError> {
        self.session.cycle_id().await.map_err(AppError::internal)?;
        self.put(
            SECOND_FACTOR,
            &PendingSecondFactor {
                account: account.id,
                at_ms: now_ms(),
            },
        )
        .await
    }

    /// The account whose password was just checked, if still in time.
    pub async fn pending_second_factor(&self) -> Result<AccountId, AppError> {
        match self.get::<PendingSecondFactor>(SECOND_FACTOR).await? {
            Some(p) if now_ms() - p.at_ms <= SECOND_FACTOR_WINDOW_MS => Ok(p.account),
            _ => Err(AppError::invalid(
                "code",
                "the sign-in took too long; enter your email and password again",
            )),
        }
    }

    pub async fn sign_out(&self) -> Result<(), AppError> {
        self.session.flush().await.map_err(AppError::internal)
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AppError> {
        self.session.get(key).await.map_err(AppError::internal)
    }

    pub async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), AppError> {
        self.session
            .insert(key, value)
            .await
            .map_err(AppError::internal)
    }

    /// Reads and removes: ceremony state is good for one attempt only.
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AppError> {
        self.session.remove(key).await.map_err(AppError::internal)
    }
}
