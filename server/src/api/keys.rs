//! The caller's own API keys over REST.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform::identity::api_keys;
use protocol::ids::ApiKeyId;
use protocol::views::{ApiKeyView, CreatedApiKey};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Api, ApiActor, ApiError, ErrorBody};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateKeyBody {
    pub name: String,
    /// RFC 3339; omit for a key that does not expire.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

#[utoipa::path(get, path = "/account/api-keys", tag = "api keys",
    responses((status = 200, body = Vec<ApiKeyView>), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_keys(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json(api_keys::list(api.db(), &actor).await?))
}

/// Creates a key; the secret is in this response only.
#[utoipa::path(post, path = "/account/api-keys", tag = "api keys", request_body = CreateKeyBody,
    responses((status = 201, body = CreatedApiKey), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_key(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Json(body): Json<CreateKeyBody>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(api_keys::create(api.db(), &actor, &body.name, body.expires_at).await?),
    ))
}

#[utoipa::path(delete, path = "/account/api-keys/{key}", tag = "api keys", params(("key" = ApiKeyId, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke_key(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(key): Path<ApiKeyId>,
) -> Result<StatusCode, ApiError> {
    api_keys::revoke(api.db(), &actor, key).await?;
    Ok(StatusCode::NO_CONTENT)
}
