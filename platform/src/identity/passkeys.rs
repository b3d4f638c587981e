//! WebAuthn passkeys as a second factor: register several, name and remove
//! them, and complete a sign-in with one. The ceremony state between the two
//! halves of each ceremony lives server-side, in the caller's session.

use protocol::ids::{AccountId, PasskeyId};
use protocol::views::PasskeyView;
use sqlx::PgPool;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, RequestMeta};
use crate::error::{Error, Result};
use crate::identity::{Account, find, throttle};

/// The relying party for the portal's public URL: passkeys bind to its host.
pub fn relying_party(public_url: &url::Url) -> Result<Webauthn> {
    let host = public_url
        .host_str()
        .ok_or_else(|| Error::internal("the public URL has no host"))?;
    webauthn_rs::WebauthnBuilder::new(host, public_url)
        .and_then(|b| b.rp_name("Loopback").build())
        .map_err(|e| {
            Error::internal(format!(
                "WebAuthn cannot work with the public URL {public_url}: {e}"
            ))
        })
}

fn normalise_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    match name.chars().count() {
        0 => Err(Error::invalid(
            "name",
            "give the passkey a name, such as \"Work laptop\"",
        )),
        n if n > 64 => Err(Error::invalid("name", "use at most 64 characters")),
        _ => Ok(name.to_string()),
    }
}

async fn stored(db: &PgPool, account: AccountId) -> Result<Vec<(PasskeyId, Passkey)>> {
    let rows: Vec<(PasskeyId, serde_json::Value)> = sqlx::query_as(
        "SELECT id, credential FROM passkeys WHERE account_id = $1 ORDER BY created_at",
    )
    .bind(account)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(id, json)| {
            serde_json::from_value(json)
                .map(|p| (id, p))
                .map_err(Error::internal)
        })
        .collect()
}

pub async fn start_registration(
    db: &PgPool,
    webauthn: &Webauthn,
    actor: &Actor,
) -> Result<(CreationChallengeResponse, PasskeyRegistration)> {
    let existing = stored(db, actor.account_id).await?;
    let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
    webauthn
        .start_passkey_registration(
            actor.account_id.0,
            &actor.email,
            &actor.email,
            Some(exclude),
        )
        .map_err(Error::internal)
}

pub async fn finish_registration(
    db: &PgPool,
    webauthn: &Webauthn,
    actor: &Actor,
    name: &str,
    credential: &RegisterPublicKeyCredential,
    state: &PasskeyRegistration,
) -> Result<PasskeyView> {
    let name = normalise_name(name)?;
    let passkey = webauthn
        .finish_passkey_registration(credential, state)
        .map_err(|e| {
            Error::invalid(
                "passkey",
                format!("the browser's answer was not accepted ({e}); try again"),
            )
        })?;
    let mut tx = db.begin().await?;
    let view: PasskeyView = sqlx::query_as(
        "INSERT INTO passkeys (id, account_id, name, credential_id, credential)
         VALUES ($1, $2, $3, $4, $5) RETURNING id, name, created_at, last_used_at",
    )
    .bind(PasskeyId::new())
    .bind(actor.account_id)
    .bind(&name)
    .bind(passkey.cred_id().to_vec())
    .bind(serde_json::to_value(&passkey).map_err(Error::internal)?)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| Error::unique_violation_as(e, "this passkey is already registered"))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.passkey_add", "passkey", view.id)
            .details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<PasskeyView>> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at, last_used_at FROM passkeys WHERE account_id = $1 ORDER BY created_at",
    )
    .bind(actor.account_id)
    .fetch_all(db)
    .await?)
}

pub async fn rename(db: &PgPool, actor: &Actor, id: PasskeyId, name: &str) -> Result<()> {
    let name = normalise_name(name)?;
    let mut tx = db.begin().await?;
    let changed = sqlx::query("UPDATE passkeys SET name = $3 WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(actor.account_id)
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    if changed.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.passkey_rename", "passkey", id)
            .details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn remove(db: &PgPool, actor: &Actor, id: PasskeyId) -> Result<()> {
    let mut tx = db.begin().await?;
    let removed = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(actor.account_id)
        .execute(&mut *tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.passkey_remove", "passkey", id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Challenges the account's passkeys at the second step of signing in.
pub async fn start_sign_in(
    db: &PgPool,
    webauthn: &Webauthn,
    account: AccountId,
) -> Result<(RequestChallengeResponse, PasskeyAuthentication)> {
    let keys: Vec<Passkey> = stored(db, account)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if keys.is_empty() {
        return Err(Error::Conflict("this account has no passkey".into()));
    }
    webauthn
        .start_passkey_authentication(&keys)
        .map_err(Error::internal)
}

pub async fn finish_sign_in(
    db: &PgPool,
    webauthn: &Webauthn,
    account: AccountId,
    credential: &PublicKeyCredential,
    state: &PasskeyAuthentication,
    meta: &RequestMeta,
) -> Result<Account> {
    let key = throttle::second_factor_key(account);
    throttle::check(db, std::slice::from_ref(&key)).await?;
    let result = match webauthn.finish_passkey_authentication(credential, state) {
        Ok(result) => result,
        Err(e) => {
            throttle::failure(db, &key, throttle::SECOND_FACTOR).await?;
            return Err(Error::invalid(
                "passkey",
                format!("the passkey was not accepted ({e})"),
            ));
        }
    };
    // Keep the signature counter and backup state current.
    for (id, mut passkey) in stored(db, account).await? {
        if passkey.cred_id() == result.cred_id() {
            passkey.update_credential(&result);
            sqlx::query("UPDATE passkeys SET credential = $2, last_used_at = now() WHERE id = $1")
                .bind(id)
                .bind(serde_json::to_value(&passkey).map_err(Error::internal)?)
                .execute(db)
                .await?;
        }
    }
    throttle::success(db, &key).await?;
    let found = find(db, account).await?.ok_or(Error::NotFound)?;
    super::record_sign_in(db, &found, "passkey", meta).await?;
    Ok(found)
}
