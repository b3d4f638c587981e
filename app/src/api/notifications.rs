//! An organization's notification channels and the deliveries to them:
//! list, create/change (fields by kind), delete, test, retry.
//!
//! The form sends every kind's fields as text; only the chosen kind's are
//! read, and errors name the form field they are about.

use leptos::prelude::*;
use protocol::ids::{NotificationChannelId, NotificationId, OrganizationId};
use protocol::views::Page;
use protocol::views::monitoring::{
    ChannelConfig, ChannelKind, ChannelView, DeliveryView, NewChannel,
};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Deliveries shown per page.
pub const DELIVERIES_PER_PAGE: u32 = 20;

/// The channel form's fields.
pub const CHANNEL_FIELDS: &[&str] = &["name", "kind", "addresses", "url", "secret"];

/// The organization's channels and whether the caller may change them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelsSection {
    pub items: Vec<ChannelView>,
    pub can_manage: bool,
}

/// The channel form as typed. On a change, `url` and `secret` left empty
/// keep the stored ones (the form never shows them: they are secrets).
#[derive(Debug, Clone, Default)]
pub struct ChannelForm {
    pub name: String,
    pub kind: String,
    pub addresses: String,
    pub url: String,
    pub secret: String,
}

impl ChannelForm {
    /// The channel the form describes. `changing`: an existing channel, so
    /// empty URL and secret mean "keep".
    pub fn parse(&self, changing: bool) -> Result<NewChannel, AppError> {
        let kind = ChannelKind::from_key(self.kind.trim())
            .ok_or_else(|| AppError::invalid("kind", "choose email, webhook, Slack or Teams"))?;
        let url = self.url.trim().to_string();
        if url.is_empty() && !changing && kind != ChannelKind::Email {
            return Err(AppError::invalid("url", "give the URL to send to"));
        }
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(AppError::invalid(
                "url",
                "a URL starting with https:// or http://",
            ));
        }
        let config = match kind {
            ChannelKind::Email => {
                let addresses: Vec<String> = self
                    .addresses
                    .lines()
                    .flat_map(|l| l.split(','))
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect();
                if addresses.is_empty() {
                    return Err(AppError::invalid(
                        "addresses",
                        "give at least one email address, one per line",
                    ));
                }
                if let Some((i, bad)) = addresses
                    .iter()
                    .enumerate()
                    .find(|(_, a)| !looks_like_email(a))
                {
                    return Err(AppError::invalid(
                        "addresses",
                        format!("address {}: {bad:?} is not an email address", i + 1),
                    ));
                }
                ChannelConfig::Email { addresses }
            }
            ChannelKind::Webhook => {
                let secret = self.secret.trim().to_string();
                if secret.is_empty() && !changing {
                    return Err(AppError::invalid(
                        "secret",
                        "give a secret (or press Generate) to sign requests with",
                    ));
                }
                if !secret.is_empty() && secret.len() < 16 {
                    return Err(AppError::invalid("secret", "at least 16 characters"));
                }
                ChannelConfig::Webhook { url, secret }
            }
            ChannelKind::Slack => ChannelConfig::Slack { url },
            ChannelKind::Teams => ChannelConfig::Teams { url },
        };
        Ok(NewChannel {
            name: self.name.trim().to_string(),
            config,
        })
    }
}

fn looks_like_email(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !a.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The domain names fields of the JSON shape (`config.url`,
/// `config.addresses[1]`); the form has one field each.
pub fn channel_form_error(e: AppError) -> AppError {
    let AppError::Invalid { field, message } = &e else {
        return e;
    };
    let form_field = match field.as_str() {
        f if f.starts_with("config.addresses") || f == "addresses" => "addresses",
        "config.url" | "url" => "url",
        "config.secret" | "secret" => "secret",
        "config" | "config.kind" | "kind" => "kind",
        _ => return e,
    };
    AppError::invalid(form_field, message.clone())
}

#[server]
pub async fn list_notification_channels(
    organization: OrganizationId,
) -> Result<ChannelsSection, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let items =
        platform::monitoring::notify::list_channels(&ctx.platform, &actor, organization).await?;
    let can_manage = platform::authz::authorize(
        ctx.db(),
        &actor,
        platform::authz::Permission::NotificationManage,
        platform::authz::Resource::Organization(organization),
    )
    .await
    .is_ok();
    Ok(ChannelsSection { items, can_manage })
}

/// Creates a channel in `organization` (`channel` unset) or changes
/// `channel` to what the form says.
#[server]
pub async fn save_notification_channel(
    #[server(default)] organization: Option<OrganizationId>,
    #[server(default)] channel: Option<NotificationChannelId>,
    name: String,
    kind: String,
    #[server(default)] addresses: String,
    #[server(default)] url: String,
    #[server(default)] secret: String,
) -> Result<ChannelView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    let form = ChannelForm {
        name,
        kind,
        addresses,
        url,
        secret,
    };
    let saved = match (channel, organization) {
        (Some(id), _) => {
            let new = form.parse(true)?;
            platform::monitoring::notify::update_channel(&ctx.platform, &actor, id, new).await
        }
        (None, Some(org)) => {
            let new = form.parse(false)?;
            platform::monitoring::notify::create_channel(&ctx.platform, &actor, org, new).await
        }
        (None, None) => {
            return Err(AppError::invalid(
                "organization",
                "say which organization the channel belongs to",
            ));
        }
    };
    saved.map_err(|e| channel_form_error(AppError::from(e)))
}

#[server]
pub async fn delete_notification_channel(channel: NotificationChannelId) -> Result<(), AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::notify::delete_channel(&ctx.platform, &actor, channel).await?)
}

/// Queues a test notification; the answer is its delivery, to follow.
#[server]
pub async fn send_test_notification(
    channel: NotificationChannelId,
) -> Result<DeliveryView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::notify::send_test(&ctx.platform, &actor, channel).await?)
}

/// The organization's deliveries, newest first.
#[server]
pub async fn list_notification_deliveries(
    organization: OrganizationId,
    #[server(default)] page: u32,
) -> Result<Page<DeliveryView>, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::notify::deliveries(
        &ctx.platform,
        &actor,
        organization,
        protocol::views::PageRequest::new(page, DELIVERIES_PER_PAGE),
    )
    .await?)
}

/// Tries a failed delivery again now.
#[server]
pub async fn retry_notification(notification: NotificationId) -> Result<DeliveryView, AppError> {
    let (ctx, actor) = crate::server::signed_in().await?;
    Ok(platform::monitoring::notify::retry(&ctx.platform, &actor, notification).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: &str) -> ChannelForm {
        ChannelForm {
            name: "ops".into(),
            kind: kind.into(),
            ..ChannelForm::default()
        }
    }

    #[test]
    fn email_addresses_one_per_line() {
        let new = ChannelForm {
            addresses: "a@example.com\n\n b@example.org , c@example.net\n".into(),
            ..form("email")
        }
        .parse(false)
        .unwrap();
        let ChannelConfig::Email { addresses } = new.config else {
            panic!("email")
        };
        assert_eq!(
            addresses,
            ["a@example.com", "b@example.org", "c@example.net"]
        );
        let e = ChannelForm {
            addresses: "a@example.com\nnope".into(),
            ..form("email")
        }
        .parse(false)
        .unwrap_err();
        assert!(e.for_field("addresses").unwrap().starts_with("address 2"));
        assert!(
            form("email")
                .parse(false)
                .unwrap_err()
                .for_field("addresses")
                .is_some()
        );
    }

    #[test]
    fn webhooks_need_url_and_secret_unless_kept() {
        let e = form("webhook").parse(false).unwrap_err();
        assert!(e.for_field("url").is_some());
        let e = ChannelForm {
            url: "https://hooks.example/x".into(),
            ..form("webhook")
        }
        .parse(false)
        .unwrap_err();
        assert!(e.for_field("secret").is_some());
        let kept = form("webhook").parse(true).unwrap();
        assert_eq!(
            kept.config,
            ChannelConfig::Webhook {
                url: String::new(),
                secret: String::new()
            }
        );
        let e = ChannelForm {
            url: "ftp://x".into(),
            ..form("slack")
        }
        .parse(false)
        .unwrap_err();
        assert!(e.for_field("url").is_some());
        assert!(
            form("pager")
                .parse(false)
                .unwrap_err()
                .for_field("kind")
                .is_some()
        );
    }

    #[test]
    fn domain_errors_land_on_form_fields() {
        let e = channel_form_error(AppError::invalid("config.addresses[0]", "bad"));
        assert_eq!(e.for_field("addresses").as_deref(), Some("bad"));
        let e = channel_form_error(AppError::invalid("config.url", "private address"));
        assert_eq!(e.for_field("url").as_deref(), Some("private address"));
        let e = channel_form_error(AppError::invalid("name", "taken"));
        assert_eq!(e.for_field("name").as_deref(), Some("taken"));
    }
}
