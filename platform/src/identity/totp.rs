//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s steps, one
//! step of clock skew) and the single-use recovery codes that come with them.
//! Secrets are sealed at rest; each code is accepted at most once.

use protocol::ids::AccountId;
use protocol::views::TotpEnrollment;
use rand::Rng;
use sqlx::{PgConnection, PgPool};
use totp_rs::{Builder, Totp};

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, RequestMeta};
use crate::crypto::{SecretBox, token_digest};
use crate::error::{Error, Result};
use crate::identity::{Account, find, password, throttle};

const ISSUER: &str = "Loopback";
pub const RECOVERY_CODES: usize = 10;

fn purpose(account: AccountId) -> String {
    format!("account:{account}:totp")
}

fn totp(secret: Vec<u8>, account_name: &str) -> Result<Totp> {
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account_name)
        .build()
        .map_err(Error::internal)
}

fn now_secs() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// Starts (or restarts) enrolment: a new secret, not required at sign-in
/// until [`confirm`] has seen a code from it.
pub async fn begin(db: &PgPool, secrets: &SecretBox, actor: &Actor) -> Result<TotpEnrollment> {
    let confirmed: Option<bool> = sqlx::query_scalar(
        "SELECT confirmed_at IS NOT NULL FROM totp_credentials WHERE account_id = $1",
    )
    .bind(actor.account_id)
    .fetch_optional(db)
    .await?;
    if confirmed == Some(true) {
        return Err(Error::Conflict(
            "an authenticator app is already set up; turn it off first to replace it".into(),
        ));
    }
    let secret = random_secret();
    let t = totp(secret.clone(), &actor.email)?;
    let sealed = secrets
        .seal(&purpose(actor.account_id), &secret)
        .map_err(Error::internal)?;
    sqlx::query(
        "INSERT INTO totp_credentials (account_id, secret_sealed) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET secret_sealed = $2, confirmed_at = NULL, last_used_step = 0, created_at = now()",
    )
    .bind(actor.account_id)
    .bind(sealed)
    .execute(db)
    .await?;
    let otpauth_url = t.to_url().map_err(Error::internal)?;
    Ok(TotpEnrollment {
        secret: t.secret().to_base32(),
        qr_svg: qr_svg(&otpauth_url)?,
        otpauth_url,
    })
}

/// 160 bits, as RFC 4226 recommends. A plain function so the thread-local
/// generator never lives across an await.
fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill(&mut secret[..]);
    secret
}

fn qr_svg(data: &str) -> Result<String> {
    use qrcode::QrCode;
    use qrcode::render::svg;
    let code = QrCode::new(data.as_bytes()).map_err(Error::internal)?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Checks `code` against the account's secret and, if right and never used
/// before, records its step so it cannot be replayed. `confirmed_only`
/// ignores secrets still being enrolled.
async fn accept_code(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    account: AccountId,
    email: &str,
    code: &str,
    confirmed_only: bool,
) -> Result<bool> {
    let row: Option<(Vec<u8>, i64, bool)> = sqlx::query_as(
        "SELECT secret_sealed, last_used_step, confirmed_at IS NOT NULL
         FROM totp_credentials WHERE account_id = $1 FOR UPDATE",
    )
    .bind(account)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((sealed, last_step, confirmed)) = row else {
        return Ok(false);
    };
    if confirmed_only && !confirmed {
        return Ok(false);
    }
    let secret = secrets
        .open(&purpose(account), &sealed)
        .map_err(Error::internal)?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = totp(secret, email)?.check(&code, now_secs()) else {
        return Ok(false);
    };
    let step = i64::try_from(step).map_err(Error::internal)?;
    if step <= last_step {
        return Ok(false);
    }
    sqlx::query("UPDATE totp_credentials SET last_used_step = $2 WHERE account_id = $1")
        .bind(account)
        .bind(step)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Finishes enrolment with a first code; returns the recovery codes, shown
/// once.
pub async fn confirm(
    db: &PgPool,
    secrets: &SecretBox,
    actor: &Actor,
    code: &str,
) -> Result<Vec<String>> {
    let mut tx = db.begin().await?;
    if !accept_code(
        &mut tx,
        secrets,
        actor.account_id,
        &actor.email,
        code,
        false,
    )
    .await?
    {
        return Err(Error::invalid(
            "code",
            "that code is not right; check the time on your device and try the next one",
        ));
    }
    sqlx::query("UPDATE totp_credentials SET confirmed_at = now() WHERE account_id = $1")
        .bind(actor.account_id)
        .execute(&mut *tx)
        .await?;
    let codes = replace_recovery_codes(&mut tx, actor.account_id).await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.totp_enable", "account", actor.account_id),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// Turns TOTP off after re-checking the password; recovery codes go too.
pub async fn disable(db: &PgPool, actor: &Actor, current_password: &str) -> Result<()> {
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
        .bind(actor.account_id)
        .fetch_one(db)
        .await?;
    if !password::verify_blocking(current_password.to_string(), stored).await {
        return Err(Error::invalid(
            "current_password",
            "this is not your current password",
        ));
    }
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM totp_credentials WHERE account_id = $1")
        .bind(actor.account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
        .bind(actor.account_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.totp_disable", "account", actor.account_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn regenerate_recovery_codes(db: &PgPool, actor: &Actor) -> Result<Vec<String>> {
    let enabled: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE account_id = $1 AND confirmed_at IS NOT NULL)",
    )
    .bind(actor.account_id)
    .fetch_one(db)
    .await?;
    if !enabled {
        return Err(Error::Conflict("set up an authenticator app first".into()));
    }
    let mut tx = db.begin().await?;
    let codes = replace_recovery_codes(&mut tx, actor.account_id).await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new(
            "account.recovery_codes_regenerate",
            "account",
            actor.account_id,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

pub async fn remaining_recovery_codes(db: &PgPool, account: AccountId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL",
    )
    .bind(account)
    .fetch_one(db)
    .await?)
}

/// Ten codes of 16 base32 characters (80 bits each), grouped for reading.
async fn replace_recovery_codes(
    conn: &mut PgConnection,
    account: AccountId,
) -> Result<Vec<String>> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let codes: Vec<String> = {
        let mut rng = rand::rng();
        (0..RECOVERY_CODES)
            .map(|_| {
                let raw: String = (0..16)
                    .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                    .collect();
                format!(
                    "{}-{}-{}-{}",
                    &raw[0..4],
                    &raw[4..8],
                    &raw[8..12],
                    &raw[12..16]
                )
            })
            .collect()
    };
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
        .bind(account)
        .execute(&mut *conn)
        .await?;
    for code in &codes {
        sqlx::query("INSERT INTO recovery_codes (id, account_id, code_hash) VALUES ($1, $2, $3)")
            .bind(uuid::Uuid::now_v7())
            .bind(account)
            .bind(token_digest(&normalise_recovery_code(code)))
            .execute(&mut *conn)
            .await?;
    }
    Ok(codes)
}

fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What the user typed at the second step of signing in.
#[derive(Debug, Clone)]
pub enum SecondFactorCode<'a> {
    Totp(&'a str),
    Recovery(&'a str),
}

/// Completes a sign-in with an authenticator code or a recovery code, under
/// the second-factor backoff.
pub async fn sign_in(
    db: &PgPool,
    secrets: &SecretBox,
    account: AccountId,
    code: SecondFactorCode<'_>,
    meta: &RequestMeta,
) -> Result<Account> {
    let key = throttle::second_factor_key(account);
    throttle::check(db, std::slice::from_ref(&key)).await?;
    let found = find(db, account).await?.ok_or(Error::NotFound)?;
    let mut tx = db.begin().await?;
    let (accepted, method, field) = match code {
        SecondFactorCode::Totp(code) => (
            accept_code(&mut tx, secrets, account, &found.email, code, true).await?,
            "totp",
            "code",
        ),
        SecondFactorCode::Recovery(code) => {
            let used = sqlx::query(
                "UPDATE recovery_codes SET used_at = now()
                 WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(account)
            .bind(token_digest(&normalise_recovery_code(code)))
            .execute(&mut *tx)
            .await?;
            (used.rows_affected() == 1, "recovery_code", "recovery_code")
        }
    };
    if !accepted {
        drop(tx);
        throttle::failure(db, &key, throttle::SECOND_FACTOR).await?;
        return Err(Error::invalid(field, "that code is not right"));
    }
    tx.commit().await?;
    throttle::success(db, &key).await?;
    super::record_sign_in(db, &found, method, meta).await?;
    Ok(found)
}

/// The current code for a base32 secret; for tests that play authenticator.
pub fn current_code(secret_base32: &str) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).ok()?;
    let t = Builder::new().with_secret(secret).build().ok()?;
    Some(t.generate(now_secs()).to_string())
}
