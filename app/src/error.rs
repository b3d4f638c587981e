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
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
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
    }

    /// Logs `err` under a fresh reference and returns the user-facing error.
    #[cfg(feature = "ssr")]
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
        tracing::error!(%reference, error = %err, "internal error");
        Self::Internal { reference }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport(value.to_string())
    }
}
