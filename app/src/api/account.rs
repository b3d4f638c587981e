//! The signed-in account's own settings: password, sessions, authenticator
//! app and recovery codes, passkeys, API keys.

use leptos::prelude::*;
use protocol::ids::{ApiKeyId, PasskeyId};
use protocol::views::{ApiKeyView, CreatedApiKey, PasskeyView, TotpEnrollment};
use serde::{Deserialize, Serialize};
use webauthn_rs_proto::{CreationChallengeResponse, RegisterPublicKeyCredential};

use crate::error::AppError;

#[server]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let epoch =
        platform::identity::change_password(ctx.db(), &actor, &current_password, &new_password)
            .await?;
    ctx.restamp(epoch).await
}

#[server]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    platform::identity::sign_out_everywhere(ctx.db(), &actor).await?;
    ctx.sign_out().await?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}

/// The security page in one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    pub totp_enabled: bool,
    pub recovery_codes_left: i64,
    pub passkeys: Vec<PasskeyView>,
}

#[server]
pub async fn security_overview() -> Result<Security, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let factors = platform::identity::second_factors(ctx.db(), actor.account_id).await?;
    Ok(Security {
        totp_enabled: factors.totp,
        recovery_codes_left: platform::identity::totp::remaining_recovery_codes(
            ctx.db(),
            actor.account_id,
        )
        .await?,
        passkeys: platform::identity::passkeys::list(ctx.db(), &actor).await?,
    })
}

#[server]
pub async fn totp_begin() -> Result<TotpEnrollment, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::totp::begin(ctx.db(), ctx.platform.secrets(), &actor).await?)
}

/// Confirms the authenticator with a first code; answers the recovery codes.
#[server]
pub async fn totp_confirm(code: String) -> Result<Vec<String>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::totp::confirm(ctx.db(), ctx.platform.secrets(), &actor, &code).await?)
}

#[server]
pub async fn totp_disable(current_password: String) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::totp::disable(ctx.db(), &actor, &current_password).await?)
}

#[server]
pub async fn recovery_codes_regenerate() -> Result<Vec<String>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::totp::regenerate_recovery_codes(ctx.db(), &actor).await?)
}

#[cfg(feature = "ssr")]
const PASSKEY_REGISTRATION: &str = "passkey_registration";

#[server]
pub async fn passkey_register_start() -> Result<CreationChallengeResponse, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let (challenge, state) =
        platform::identity::passkeys::start_registration(ctx.db(), ctx.platform.webauthn(), &actor)
            .await?;
    ctx.put(PASSKEY_REGISTRATION, &state).await?;
    Ok(challenge)
}

#[server(input = leptos::server_fn::codec::Json)]
pub async fn passkey_register_finish(
    name: String,
    credential: RegisterPublicKeyCredential,
) -> Result<PasskeyView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let state = ctx.take(PASSKEY_REGISTRATION).await?.ok_or_else(|| {
        AppError::invalid("passkey", "start again: this registration was already used")
    })?;
    Ok(platform::identity::passkeys::finish_registration(
        ctx.db(),
        ctx.platform.webauthn(),
        &actor,
        &name,
        &credential,
        &state,
    )
    .await?)
}

#[server]
pub async fn passkey_rename(id: PasskeyId, name: String) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::passkeys::rename(ctx.db(), &actor, id, &name).await?)
}

#[server]
pub async fn passkey_remove(id: PasskeyId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::passkeys::remove(ctx.db(), &actor, id).await?)
}

#[server]
pub async fn api_keys_list() -> Result<Vec<ApiKeyView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::api_keys::list(ctx.db(), &actor).await?)
}

/// `expires_in_days`: empty for a key that does not expire.
#[server]
pub async fn api_key_create(
    name: String,
    expires_in_days: String,
) -> Result<CreatedApiKey, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let expires_at = match expires_in_days.trim() {
        "" => None,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => {
                Some(time::OffsetDateTime::now_utc() + time::Duration::days(d))
            }
            _ => {
                return Err(AppError::invalid(
                    "expires_in_days",
                    "enter a number of days from 1 to 3650, or leave it empty",
                ));
            }
        },
    };
    Ok(platform::identity::api_keys::create(ctx.db(), &actor, &name, expires_at).await?)
}

#[server]
pub async fn api_key_revoke(id: ApiKeyId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::identity::api_keys::revoke(ctx.db(), &actor, id).await?)
}
