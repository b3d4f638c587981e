//! Passwords: the policy a new password must meet, and argon2id hashing.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// Checks a new password; the error names the `field` the form uses.
pub fn check_policy(field: &str, password: &str, email: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Error::invalid(
            field,
            format!("use at least {MIN_LENGTH} characters"),
        ));
    }
    if length > MAX_LENGTH {
        return Err(Error::invalid(
            field,
            format!("use at most {MAX_LENGTH} characters"),
        ));
    }
    if is_common(password) {
        return Err(Error::invalid(
            field,
            "this password appears in lists of leaked passwords; choose something less predictable",
        ));
    }
    let lower = password.to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
    if lower == email.to_lowercase() || (local_part.len() >= 4 && lower.contains(&local_part)) {
        return Err(Error::invalid(
            field,
            "do not use your email address in your password",
        ));
    }
    Ok(())
}

/// In the list itself, or a listed word with a short suffix of digits and
/// symbols ("sunshine2024!").
fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON.contains(lower.as_str()) {
        return true;
    }
    let stem = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    let suffix_len = lower.len() - stem.len();
    suffix_len > 0 && suffix_len <= 5 && stem.len() >= 4 && COMMON.contains(stem)
}

/// argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's
/// recommendation). CPU-heavy: call from a blocking thread.
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(Error::internal)
}

pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A valid hash of a random password, verified against when an email is
/// unknown so that sign-in takes as long as for a real account.
pub static DECOY_HASH: LazyLock<String> =
    LazyLock::new(|| hash(&crate::crypto::new_token()).unwrap_or_default());

pub async fn hash_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(Error::internal)?
}

pub async fn verify_blocking(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_message(r: Result<()>) -> String {
        match r {
            Err(Error::Invalid { field, message }) => format!("{field}: {message}"),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn short_common_and_personal_passwords_are_refused() {
        assert!(
            field_message(check_policy("password", "short", "a@b.c"))
                .starts_with("password: use at least")
        );
        assert!(field_message(check_policy("password", "password123", "a@b.c")).contains("leaked"));
        assert!(
            field_message(check_policy("password", "Sunshine2024!", "a@b.c")).contains("leaked")
        );
        assert!(
            field_message(check_policy(
                "password",
                "alice.smith-rocks",
                "alice.smith@example.com"
            ))
            .contains("email")
        );
        assert!(check_policy("password", "correct horse battery", "a@b.c").is_ok());
    }

    #[test]
    fn list_is_loaded() {
        assert!(COMMON.len() > 29_000);
        assert!(COMMON.contains("dragon"));
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salted");
    }
}
