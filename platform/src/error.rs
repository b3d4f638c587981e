//! What a platform operation can fail with, in terms a caller can act on.

use crate::authz::Permission;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Also the answer for resources the caller may not know about: another
    /// organization's things look exactly like things that do not exist.
    #[error("not found")]
    NotFound,
    #[error("your role does not include the {0} permission here")]
    Forbidden(Permission),
    #[error("sign in to continue")]
    Unauthenticated,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(
        "the organization is {0}; an operator must verify it (and it must be active) before it can run infrastructure"
    )]
    OrganizationNotUsable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }

    /// Maps a unique-constraint violation to a conflict with `message`.
    pub fn unique_violation_as(e: sqlx::Error, message: &str) -> Self {
        if is_unique_violation(&e) {
            Self::Conflict(message.to_string())
        } else {
            Self::Database(e)
        }
    }

    /// For `map_err` on an insert or update: a unique-constraint violation
    /// is the caller's choice of `field` being taken.
    pub fn taken(field: &'static str, message: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |e| {
            if is_unique_violation(&e) {
                Self::invalid(field, message)
            } else {
                Self::Database(e)
            }
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
