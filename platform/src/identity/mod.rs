//! Accounts: sign-up, sign-in (password, then a second factor when one is
//! set up), password changes and resets, and the session epoch that "sign out
//! everywhere" raises.

pub mod api_keys;
pub mod passkeys;
pub mod password;
pub mod throttle;
pub mod totp;

use protocol::ids::{AccountId, SetupTokenId};
use protocol::views::AccountView;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};

use crate::audit::{self, By, Entry};
use crate::authz::{Actor, RequestMeta};
use crate::crypto::{new_token, token_digest};
use crate::error::{Error, Result};
use crate::mail;

/// How long browser sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Without requests.
    pub idle: std::time::Duration,
    /// After signing in, however active.
    pub lifetime: std::time::Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: std::time::Duration::from_secs(12 * 3600),
            lifetime: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// How long a password reset link works.
pub const RESET_LINK_TTL: Duration = Duration::hours(1);

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    pub is_operator: bool,
    pub session_epoch: i32,
    pub created_at: OffsetDateTime,
}

impl Account {
    /// The actor this account acts as in a request from `meta`.
    pub fn actor(&self, meta: RequestMeta) -> Actor {
        Actor {
            account_id: self.id,
            email: self.email.clone(),
            is_operator: self.is_operator,
            api_key: None,
            meta,
        }
    }
}

const ACCOUNT_COLUMNS: &str = "id, email, display_name, is_operator, session_epoch, created_at";

/// Lower-case, trimmed, and shaped like an address.
pub fn normalize_email(field: &str, raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
               && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(email)
    } else {
        Err(Error::invalid(
            field,
            "enter an email address such as name@example.com",
        ))
    }
}

fn normalize_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    match name.chars().count() {
        0 => Err(Error::invalid("display_name", "enter your name")),
        n if n > 100 => Err(Error::invalid("display_name", "use at most 100 characters")),
        _ => Ok(name.to_string()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignUp {
    pub email: String,
    pub display_name: String,
    pub password: String,
}

/// Creates an account. Nothing is written unless every field is valid.
pub async fn sign_up(db: &PgPool, input: SignUp, meta: &RequestMeta) -> Result<Account> {
    create_account(db, input, false, None, meta).await
}

/// Redeems the first-operator setup link: creates an operator account and
/// uses the link up, in one transaction.
pub async fn create_first_operator(
    db: &PgPool,
    setup_token: &str,
    input: SignUp,
    meta: &RequestMeta,
) -> Result<Account> {
    let grant = crate::setup::check(db, setup_token)
        .await
        .map_err(|e| Error::invalid("token", e.to_string()))?;
    create_account(db, input, true, Some(grant.id), meta).await
}

async fn create_account(
    db: &PgPool,
    input: SignUp,
    operator: bool,
    setup: Option<SetupTokenId>,
    meta: &RequestMeta,
) -> Result<Account> {
    let email = normalize_email("email", &input.email)?;
    let display_name = normalize_name(&input.display_name)?;
    password::check_policy("password", &input.password, &email)?;
    let hash = password::hash_blocking(input.password).await?;

    let mut tx = db.begin().await?;
    if let Some(token) = setup {
        // Claim the link first: of two concurrent redemptions only one wins.
        let claimed = sqlx::query(
            "UPDATE operator_setup_tokens SET used_at = now() WHERE id = $1 AND used_at IS NULL AND expires_at > now()",
        )
        .bind(token)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Err(Error::invalid("token", "this setup link was already used"));
        }
    }
    let account: Account = sqlx::query_as(&format!(
        "INSERT INTO accounts (id, email, display_name, password_hash, is_operator)
         VALUES ($1, $2, $3, $4, $5) RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(AccountId::new())
    .bind(&email)
    .bind(&display_name)
    .bind(&hash)
    .bind(operator)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::taken(
        "email",
        "an account with this email address already exists; sign in or reset your password",
    ))?;
    if let Some(token) = setup {
        sqlx::query("UPDATE operator_setup_tokens SET used_by = $2 WHERE id = $1")
            .bind(token)
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
    }
    let action = if operator {
        "operator.create"
    } else {
        "account.create"
    };
    audit::record(
        &mut tx,
        By::Account {
            id: account.id,
            email: &account.email,
            meta,
        },
        Entry::new(action, "account", account.id),
    )
    .await?;
    tx.commit().await?;
    Ok(account)
}

pub async fn find(db: &PgPool, id: AccountId) -> Result<Option<Account>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// The account behind a session, if the session is still valid for it.
pub async fn for_session(db: &PgPool, id: AccountId, epoch: i32) -> Result<Option<Account>> {
    Ok(find(db, id).await?.filter(|a| a.session_epoch == epoch))
}

pub async fn view(db: &PgPool, id: AccountId) -> Result<AccountView> {
    let row: Option<(AccountId, String, String, bool, OffsetDateTime, bool, i64)> = sqlx::query_as(
        "SELECT a.id, a.email, a.display_name, a.is_operator, a.created_at,
                EXISTS (SELECT 1 FROM totp_credentials t WHERE t.account_id = a.id AND t.confirmed_at IS NOT NULL),
                (SELECT count(*) FROM passkeys p WHERE p.account_id = a.id)
         FROM accounts a WHERE a.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let (id, email, display_name, is_operator, created_at, totp_enabled, passkeys) =
        row.ok_or(Error::NotFound)?;
    Ok(AccountView {
        id,
        email,
        display_name,
        is_operator,
        totp_enabled,
        passkeys,
        created_at,
    })
}

/// Which second factors an account has set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactors {
    pub totp: bool,
    pub passkey: bool,
}

impl SecondFactors {
    pub fn any(self) -> bool {
        self.totp || self.passkey
    }
}

pub async fn second_factors(db: &PgPool, id: AccountId) -> Result<SecondFactors> {
    let (totp, passkey): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE account_id = $1 AND confirmed_at IS NOT NULL),
                EXISTS (SELECT 1 FROM passkeys WHERE account_id = $1)",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok(SecondFactors { totp, passkey })
}

/// The outcome of a correct password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// No second factor: signed in.
    SignedIn(Account),
    /// The account has a second factor; the sign-in is not complete yet.
    SecondFactorNeeded(Account, SecondFactors),
}

/// Checks email and password under per-account and per-address backoff.
/// Wrong email and wrong password answer alike and take equally long.
pub async fn sign_in_with_password(
    db: &PgPool,
    email: &str,
    password: &str,
    meta: &RequestMeta,
) -> Result<PasswordOutcome> {
    let email = email.trim().to_lowercase();
    let account_key = throttle::account_key(&email);
    let address_key = throttle::address_key(meta.ip);
    let mut keys = vec![account_key.clone()];
    keys.extend(address_key.clone());
    throttle::check(db, &keys).await?;

    let row: Option<(AccountId, String)> =
        sqlx::query_as("SELECT id, password_hash FROM accounts WHERE email = $1")
            .bind(&email)
            .fetch_optional(db)
            .await?;
    let stored = row
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| password::DECOY_HASH.clone());
    let correct = password::verify_blocking(password.to_string(), stored).await && row.is_some();
    if !correct {
        throttle::failure(db, &account_key, throttle::PER_ACCOUNT).await?;
        if let Some(key) = &address_key {
            throttle::failure(db, key, throttle::PER_ADDRESS).await?;
        }
        return Err(Error::invalid(
            "password",
            "the email address or password is not right",
        ));
    }
    throttle::success(db, &account_key).await?;
    let (id, _) = row.ok_or(Error::NotFound)?;
    let account = find(db, id).await?.ok_or(Error::NotFound)?;
    let factors = second_factors(db, id).await?;
    if factors.any() {
        Ok(PasswordOutcome::SecondFactorNeeded(account, factors))
    } else {
        record_sign_in(db, &account, "password", meta).await?;
        Ok(PasswordOutcome::SignedIn(account))
    }
}

/// Audits a completed sign-in.
pub async fn record_sign_in(
    db: &PgPool,
    account: &Account,
    method: &str,
    meta: &RequestMeta,
) -> Result<()> {
    let mut conn = db.acquire().await?;
    audit::record(
        &mut conn,
        By::Account {
            id: account.id,
            email: &account.email,
            meta,
        },
        Entry::new("account.sign_in", "account", account.id)
            .details(serde_json::json!({ "method": method })),
    )
    .await
}

/// Raises the session epoch: every session of the account ends. Returns the
/// new epoch for the caller to re-stamp its own session with, if it wants.
async fn bump_epoch(conn: &mut PgConnection, id: AccountId) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "UPDATE accounts SET session_epoch = session_epoch + 1, updated_at = now() WHERE id = $1 RETURNING session_epoch",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}

pub async fn sign_out_everywhere(db: &PgPool, actor: &Actor) -> Result<()> {
    let mut tx = db.begin().await?;
    bump_epoch(&mut tx, actor.account_id).await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.sign_out_everywhere", "account", actor.account_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the password after checking the current one. Other sessions end;
/// the returned epoch keeps the caller's own session valid.
pub async fn change_password(db: &PgPool, actor: &Actor, current: &str, new: &str) -> Result<i32> {
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
        .bind(actor.account_id)
        .fetch_one(db)
        .await?;
    if !password::verify_blocking(current.to_string(), stored).await {
        return Err(Error::invalid(
            "current_password",
            "this is not your current password",
        ));
    }
    if current == new {
        return Err(Error::invalid(
            "new_password",
            "choose a password different from the current one",
        ));
    }
    password::check_policy("new_password", new, &actor.email)?;
    let hash = password::hash_blocking(new.to_string()).await?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(actor.account_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    let epoch = bump_epoch(&mut tx, actor.account_id).await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("account.password_change", "account", actor.account_id),
    )
    .await?;
    tx.commit().await?;
    Ok(epoch)
}

/// Mails a one-time reset link when the address belongs to an account. The
/// answer is the same either way, so it reveals nothing.
pub async fn request_password_reset(
    db: &PgPool,
    public_url: &url::Url,
    email: &str,
    meta: &RequestMeta,
) -> Result<()> {
    let email = normalize_email("email", email)?;
    let reset_key = format!("reset:{email}");
    throttle::check(db, std::slice::from_ref(&reset_key)).await?;
    throttle::failure(
        db,
        &reset_key,
        throttle::Limit {
            free_failures: 5,
            max_lock: std::time::Duration::from_secs(3600),
        },
    )
    .await?;
    let Some(account) = sqlx::query_as::<_, Account>(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"
    ))
    .bind(&email)
    .fetch_optional(db)
    .await?
    else {
        return Ok(());
    };
    let token = new_token();
    let link = format!(
        "{}/reset-password?token={token}",
        public_url.as_str().trim_end_matches('/')
    );
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO password_reset_tokens (id, account_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(uuid::Uuid::now_v7())
        .bind(account.id)
        .bind(token_digest(&token))
        .bind(OffsetDateTime::now_utc() + RESET_LINK_TTL)
        .execute(&mut *tx)
        .await?;
    mail::enqueue(
        &mut tx,
        &account.email,
        "Reset your Loopback password",
        &format!(
            "Hello {},\n\nsomeone (hopefully you) asked to reset the password of your Loopback account.\n\
             Open this link within an hour to choose a new one:\n\n{link}\n\n\
             If you did not ask for this, ignore this message; your password stays as it is.\n",
            account.display_name
        ),
    )
    .await?;
    audit::record(
        &mut tx,
        By::Account {
            id: account.id,
            email: &account.email,
            meta,
        },
        Entry::new("account.password_reset_request", "account", account.id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password with a reset link; every session of the account ends
/// and its sign-in backoff is cleared.
pub async fn reset_password(
    db: &PgPool,
    token: &str,
    new: &str,
    meta: &RequestMeta,
) -> Result<Account> {
    let row: Option<(uuid::Uuid, AccountId, OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
        "SELECT id, account_id, expires_at, used_at FROM password_reset_tokens WHERE token_hash = $1",
    )
    .bind(token_digest(token))
    .fetch_optional(db)
    .await?;
    let (token_id, account_id) = match row {
        None => {
            return Err(Error::invalid(
                "token",
                "this reset link is not valid; ask for a new one",
            ));
        }
        Some((_, _, _, Some(_))) => {
            return Err(Error::invalid(
                "token",
                "this reset link was already used; ask for a new one",
            ));
        }
        Some((_, _, expires, None)) if expires <= OffsetDateTime::now_utc() => {
            return Err(Error::invalid(
                "token",
                "this reset link has expired; ask for a new one",
            ));
        }
        Some((id, account, _, None)) => (id, account),
    };
    let account = find(db, account_id).await?.ok_or(Error::NotFound)?;
    password::check_policy("new_password", new, &account.email)?;
    let hash = password::hash_blocking(new.to_string()).await?;
    let mut tx = db.begin().await?;
    let claimed = sqlx::query(
        "UPDATE password_reset_tokens SET used_at = now() WHERE id = $1 AND used_at IS NULL",
    )
    .bind(token_id)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(Error::invalid(
            "token",
            "this reset link was already used; ask for a new one",
        ));
    }
    sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(account.id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    bump_epoch(&mut tx, account.id).await?;
    audit::record(
        &mut tx,
        By::Account {
            id: account.id,
            email: &account.email,
            meta,
        },
        Entry::new("account.password_reset", "account", account.id),
    )
    .await?;
    tx.commit().await?;
    throttle::success(db, &throttle::account_key(&account.email)).await?;
    find(db, account.id).await?.ok_or(Error::NotFound)
}
