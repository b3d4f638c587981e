//! Signing up, in and out, second factors, password resets, and the first
//! operator. These are the only server functions callable without a session.

use leptos::prelude::*;
use protocol::views::AccountView;
use serde::{Deserialize, Serialize};
use webauthn_rs_proto::{PublicKeyCredential, RequestChallengeResponse};

use crate::error::AppError;

/// The signed-in account as every page sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub account: AccountView,
    pub pending_invitations: usize,
}

#[server]
pub async fn current_account() -> Result<Option<Me>, AppError> {
    let ctx = crate::server::ctx().await?;
    let Some(account) = ctx.account().await? else {
        return Ok(None);
    };
    let actor = account.actor(ctx.meta.clone());
    let pending_invitations = platform::tenancy::members::my_invitations(ctx.db(), &actor)
        .await?
        .len();
    Ok(Some(Me {
        account: platform::identity::view(ctx.db(), account.id).await?,
        pending_invitations,
    }))
}

/// Where to go after signing in: a local path only, never another site.
#[cfg(any(feature = "ssr", test))]
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

#[server]
pub async fn sign_up(
    email: String,
    display_name: String,
    password: String,
    next: String,
) -> Result<(), AppError> {
    let ctx = crate::server::ctx().await?;
    let input = platform::identity::SignUp {
        email,
        display_name,
        password,
    };
    let account = platform::identity::sign_up(ctx.db(), input, &ctx.meta).await?;
    platform::identity::record_sign_in(ctx.db(), &account, "sign_up", &ctx.meta).await?;
    ctx.complete_sign_in(&account).await?;
    leptos_axum::redirect(&safe_next(&next));
    Ok(())
}

/// What the second step of signing in offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorChoice {
    pub totp: bool,
    pub passkey: bool,
}

#[server]
pub async fn sign_in(
    email: String,
    password: String,
    next: String,
) -> Result<Option<SecondFactorChoice>, AppError> {
    use platform::identity::PasswordOutcome;
    let ctx = crate::server::ctx().await?;
    match platform::identity::sign_in_with_password(ctx.db(), &email, &password, &ctx.meta).await? {
        PasswordOutcome::SignedIn(account) => {
            ctx.complete_sign_in(&account).await?;
            leptos_axum::redirect(&safe_next(&next));
            Ok(None)
        }
        PasswordOutcome::SecondFactorNeeded(account, factors) => {
            ctx.begin_second_factor(&account).await?;
            Ok(Some(SecondFactorChoice {
                totp: factors.totp,
                passkey: factors.passkey,
            }))
        }
    }
}

/// Completes a sign-in with an authenticator code, or with a recovery code
/// when `recovery` is set.
#[server]
pub async fn sign_in_code(code: String, recovery: bool, next: String) -> Result<(), AppError> {
    use platform::identity::totp::{SecondFactorCode, sign_in};
    let ctx = crate::server::ctx().await?;
    let account_id = ctx.pending_second_factor().await?;
    let code = if recovery {
        SecondFactorCode::Recovery(&code)
    } else {
        SecondFactorCode::Totp(&code)
    };
    let account = sign_in(
        ctx.db(),
        ctx.platform.secrets(),
        account_id,
        code,
        &ctx.meta,
    )
    .await?;
    ctx.complete_sign_in(&account).await?;
    leptos_axum::redirect(&safe_next(&next));
    Ok(())
}

#[cfg(feature = "ssr")]
const PASSKEY_SIGN_IN: &str = "passkey_sign_in";

#[server]
pub async fn passkey_sign_in_start() -> Result<RequestChallengeResponse, AppError> {
    let ctx = crate::server::ctx().await?;
    let account = ctx.pending_second_factor().await?;
    let (challenge, state) =
        platform::identity::passkeys::start_sign_in(ctx.db(), ctx.platform.webauthn(), account)
            .await?;
    ctx.put(PASSKEY_SIGN_IN, &state).await?;
    Ok(challenge)
}

#[server(input = leptos::server_fn::codec::Json)]
pub async fn passkey_sign_in_finish(credential: PublicKeyCredential) -> Result<(), AppError> {
    let ctx = crate::server::ctx().await?;
    let account = ctx.pending_second_factor().await?;
    let state = ctx.take(PASSKEY_SIGN_IN).await?.ok_or_else(|| {
        AppError::invalid(
            "passkey",
            "start again: the passkey challenge was already used",
        )
    })?;
    let account = platform::identity::passkeys::finish_sign_in(
        ctx.db(),
        ctx.platform.webauthn(),
        account,
        &credential,
        &state,
        &ctx.meta,
    )
    .await?;
    ctx.complete_sign_in(&account).await
}

#[server]
pub async fn sign_out() -> Result<(), AppError> {
    let ctx = crate::server::ctx().await?;
    if let Some(account) = ctx.account().await? {
        let mut conn = ctx.db().acquire().await.map_err(AppError::internal)?;
        platform::audit::record(
            &mut conn,
            platform::audit::By::Actor(&account.actor(ctx.meta.clone())),
            platform::audit::Entry::new("account.sign_out", "account", account.id),
        )
        .await?;
    }
    ctx.sign_out().await?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}

#[server]
pub async fn request_password_reset(email: String) -> Result<(), AppError> {
    let ctx = crate::server::ctx().await?;
    platform::identity::request_password_reset(
        ctx.db(),
        ctx.platform.public_url(),
        &email,
        &ctx.meta,
    )
    .await?;
    Ok(())
}

#[server]
pub async fn reset_password(token: String, new_password: String) -> Result<(), AppError> {
    let ctx = crate::server::ctx().await?;
    platform::identity::reset_password(ctx.db(), &token, &new_password, &ctx.meta).await?;
    leptos_axum::redirect("/sign-in?reset=done");
    Ok(())
}

/// Checks a first-operator setup link; answers its expiry (RFC 3339).
#[server]
pub async fn check_setup_link(token: String) -> Result<String, AppError> {
    use platform::setup::{SetupError, check};
    use time::format_description::well_known::Rfc3339;
    let platform = crate::server::platform()?;
    match check(platform.db(), &token).await {
        Ok(grant) => grant
            .expires_at
            .format(&Rfc3339)
            .map_err(AppError::internal),
        Err(SetupError::Database) => Err(AppError::internal("setup link check failed")),
        Err(e) => Err(AppError::invalid("token", e.to_string())),
    }
}

#[server]
pub async fn create_operator(
    token: String,
    email: String,
    display_name: String,
    password: String,
) -> Result<(), AppError> {
    let ctx = crate::server::ctx().await?;
    let input = platform::identity::SignUp {
        email,
        display_name,
        password,
    };
    let account =
        platform::identity::create_first_operator(ctx.db(), &token, input, &ctx.meta).await?;
    ctx.complete_sign_in(&account).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/orgs/1"), "/orgs/1");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
