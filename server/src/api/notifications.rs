//! Notification channels and their deliveries over REST, for automation
//! with an account API key. Channel settings go in whole; secrets never
//! come back out (the answer shows the destination without tokens).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform::monitoring::notify;
use protocol::ids::{NotificationChannelId, NotificationId, OrganizationId};
use protocol::views::Page;
use protocol::views::monitoring::{ChannelView, DeliveryView, NewChannel};

use super::{Api, ApiActor, ApiError, ErrorBody, PageQuery};

/// The organization's notification channels.
#[utoipa::path(get, path = "/organizations/{org}/notification-channels", tag = "notifications",
    params(("org" = OrganizationId, Path)),
    responses((status = 200, body = [ChannelView]), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_channels(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    Ok(Json(
        notify::list_channels(&api.platform, &actor, org).await?,
    ))
}

/// Creates a channel: email addresses, a signed JSON webhook (https, secret
/// of at least 16 characters), or a Slack or Teams incoming webhook URL.
#[utoipa::path(post, path = "/organizations/{org}/notification-channels", tag = "notifications",
    params(("org" = OrganizationId, Path)), request_body = NewChannel,
    responses((status = 201, body = ChannelView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_channel(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
    Json(body): Json<NewChannel>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(notify::create_channel(&api.platform, &actor, org, body).await?),
    ))
}

/// Replaces the channel's name and settings. An empty webhook secret or
/// URL keeps the stored one.
#[utoipa::path(put, path = "/notification-channels/{channel}", tag = "notifications",
    params(("channel" = NotificationChannelId, Path)), request_body = NewChannel,
    responses((status = 200, body = ChannelView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_channel(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<NotificationChannelId>,
    Json(body): Json<NewChannel>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(
        notify::update_channel(&api.platform, &actor, id, body).await?,
    ))
}

/// Deletes the channel and its delivery history; monitors stop using it.
#[utoipa::path(delete, path = "/notification-channels/{channel}", tag = "notifications",
    params(("channel" = NotificationChannelId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_channel(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<NotificationChannelId>,
) -> Result<StatusCode, ApiError> {
    notify::delete_channel(&api.platform, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a test notification to the channel; follow it in the deliveries.
#[utoipa::path(post, path = "/notification-channels/{channel}/test", tag = "notifications",
    params(("channel" = NotificationChannelId, Path)),
    responses((status = 202, body = DeliveryView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn test_channel(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<NotificationChannelId>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(notify::send_test(&api.platform, &actor, id).await?),
    ))
}

/// The organization's notification deliveries, newest first, with their
/// attempts and last error.
#[utoipa::path(get, path = "/organizations/{org}/notifications", tag = "notifications",
    params(("org" = OrganizationId, Path), PageQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_deliveries(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(org): Path<OrganizationId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    Ok(Json(
        notify::deliveries(&api.platform, &actor, org, q.into()).await?,
    ))
}

/// Tries a failed (or waiting) delivery again now.
#[utoipa::path(post, path = "/notifications/{notification}/retry", tag = "notifications",
    params(("notification" = NotificationId, Path)),
    responses((status = 202, body = DeliveryView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn retry_delivery(
    State(api): State<Api>,
    ApiActor(actor): ApiActor,
    Path(id): Path<NotificationId>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(notify::retry(&api.platform, &actor, id).await?),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_routes_are_documented() {
        let doc = serde_json::to_value(super::super::openapi()).unwrap();
        for (path, method) in [
            ("/organizations/{org}/notification-channels", "get"),
            ("/organizations/{org}/notification-channels", "post"),
            ("/notification-channels/{channel}", "put"),
            ("/notification-channels/{channel}", "delete"),
            ("/notification-channels/{channel}/test", "post"),
            ("/organizations/{org}/notifications", "get"),
            ("/notifications/{notification}/retry", "post"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is documented"
            );
        }
        assert!(doc["components"]["schemas"]["ChannelConfig"].is_object());
    }
}
