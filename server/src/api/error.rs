//! API errors: `{ "error": { "code", "message", "field"? } }` with the status
//! that says what happened.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: not_found, unauthenticated, forbidden, invalid,
    /// conflict, throttled, internal.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The request field at fault, for `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError(pub platform::Error);

impl From<platform::Error> for ApiError {
    fn from(e: platform::Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use platform::Error as E;
        let (status, code, field) = match &self.0 {
            E::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            E::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", None),
            E::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            E::Invalid { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                Some(field.clone()),
            ),
            E::Conflict(_) | E::OrganizationNotUsable(_) => {
                (StatusCode::CONFLICT, "conflict", None)
            }
            E::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled", None),
            E::Database(_) | E::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let message = match &self.0 {
            E::Invalid { message, .. } => message.clone(),
            E::Database(_) | E::Internal(_) => {
                let reference = uuid::Uuid::now_v7().simple().to_string()[20..].to_string();
                tracing::error!(%reference, error = %self.0, "API request failed");
                format!("something went wrong on our side (reference {reference})")
            }
            E::Unauthenticated => {
                "send a valid account API key as `Authorization: Bearer lbk_…`".to_string()
            }
            other => other.to_string(),
        };
        (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message,
                    field,
                },
            }),
        )
            .into_response()
    }
}
