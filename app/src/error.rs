//! The one error type every server function returns, shaped for the user.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The request never reached the function or its answer was unreadable.
    #[error("could not reach the portal: {0}")]
    Transport(String),
    /// Also the answer for resources of other organizations: their existence
    /// is not revealed.
    #[error("not found")]
    NotFound,
    #[error("sign in to continue")]
    Unauthenticated,
    /// Carries the permission key the caller lacks.
    #[error("your role does not include the {0} permission here")]
    Forbidden(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// Details stay in the server log under `reference`.
    #[error("something went wrong on our side (reference {reference})")]
    Internal { reference: String },
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
        .answered()
    }

    /// The HTTP status a server function answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Transport(_) => 502,
            Self::NotFound => 404,
            Self::Unauthenticated => 401,
            Self::Forbidden(_) => 403,
            Self::Invalid { .. } => 422,
            Self::Conflict(_) => 409,
            Self::Throttled { .. } => 429,
            Self::Internal { .. } => 500,
        }
    }

    /// Sets this error's status on the response of the server function
    /// being answered (on the server; a no-op elsewhere).
    pub fn answered(self) -> Self {
        #[cfg(feature = "ssr")]
        if let (Some(response), Ok(status)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(self.status()),
        ) {
            response.set_status(status);
        }
        self
    }

    /// The message for `field`, if this error is about that field.
    pub fn for_field(&self, field: &str) -> Option<String> {
        match self {
            Self::Invalid { field: f, message } if f == field => Some(message.clone()),
            _ => None,
        }
    }

    /// The message for the whole form: everything not tied to a field shown
    /// by the form itself.
    pub fn general(&self, form_fields: &[&str]) -> Option<String> {
        match self {
            Self::Invalid { field, .. } if form_fields.contains(&field.as_str()) => None,
            Self::Invalid { message, .. } => Some(message.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Logs `err` under a fresh reference and returns the user-facing error.
    #[cfg(feature = "ssr")]
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
        tracing::error!(%reference, error = %err, "internal error");
        Self::Internal { reference }.answered()
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl From<platform::Error> for AppError {
    fn from(e: platform::Error) -> Self {
        use platform::Error as E;
        match e {
            E::NotFound => Self::NotFound,
            E::Unauthenticated => Self::Unauthenticated,
            E::Forbidden(p) => Self::Forbidden(p.key().to_string()),
            E::Invalid { field, message } => Self::Invalid { field, message },
            E::Conflict(m) => Self::Conflict(m),
            e @ E::OrganizationNotUsable(_) => Self::Conflict(e.to_string()),
            E::Throttled { retry_after_secs } => Self::Throttled { retry_after_secs },
            e @ (E::Database(_) | E::Internal(_)) => Self::internal(e),
        }
        .answered()
    }
}
