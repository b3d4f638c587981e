//! Channel settings: validated, sealed at rest (webhook URLs of Slack and
//! Teams carry tokens, webhook secrets sign requests), listed without
//! secrets.

use std::net::IpAddr;

use protocol::ids::{NotificationChannelId, OrganizationId};
use protocol::views::monitoring::{ChannelConfig, ChannelKind, ChannelView, NewChannel};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use url::Url;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};

const MAX_NAME_CHARS: usize = 63;
const MAX_ADDRESSES: usize = 10;
const MIN_SECRET_CHARS: usize = 16;

/// Columns of `ChannelView`; "failed recently" counts deliveries created in
/// the last 7 days that gave up.
const VIEW: &str = "SELECT c.id, c.organization_id, c.name, c.kind, c.destination, c.created_at,
        (SELECT count(*) FROM notifications n
         WHERE n.channel_id = c.id AND n.state = 'failed'
           AND n.created_at > now() - interval '7 days') AS failed_recently
    FROM notification_channels c";

#[derive(sqlx::FromRow)]
struct Row {
    id: NotificationChannelId,
    organization_id: OrganizationId,
    name: String,
    kind: String,
    destination: String,
    created_at: OffsetDateTime,
    failed_recently: i64,
}

impl TryFrom<Row> for ChannelView {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self> {
        Ok(ChannelView {
            id: r.id,
            organization: r.organization_id,
            name: r.name,
            kind: ChannelKind::from_key(&r.kind)
                .ok_or_else(|| Error::internal(format!("unknown channel kind {:?}", r.kind)))?,
            destination: r.destination,
            failed_recently: u32::try_from(r.failed_recently).unwrap_or(u32::MAX),
            created_at: r.created_at,
        })
    }
}

/// The sealed config is bound to its channel, so a ciphertext copied into
/// another row does not open there.
fn purpose(id: NotificationChannelId) -> String {
    format!("notification_channel:{id}:config")
}

pub(super) fn seal(
    platform: &Platform,
    id: NotificationChannelId,
    config: &ChannelConfig,
) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(config).map_err(Error::internal)?;
    platform
        .secrets()
        .seal(&purpose(id), &json)
        .map_err(Error::internal)
}

pub(super) fn open(
    platform: &Platform,
    id: NotificationChannelId,
    sealed: &[u8],
) -> Result<ChannelConfig> {
    let json = platform
        .secrets()
        .open(&purpose(id), sealed)
        .map_err(Error::internal)?;
    serde_json::from_slice(&json).map_err(Error::internal)
}

/// Channels of the organization (anyone who can read the organization may
/// pick them for a monitor; changing them needs `notification.manage`).
pub async fn list_channels(
    platform: &Platform,
    actor: &Actor,
    organization: OrganizationId,
) -> Result<Vec<ChannelView>> {
    let db = platform.db();
    authorize(
        db,
        actor,
        Permission::OrganizationRead,
        Resource::Organization(organization),
    )
    .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{VIEW} WHERE c.organization_id = $1 ORDER BY lower(c.name), c.id"
    ))
    .bind(organization)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub async fn create_channel(
    platform: &Platform,
    actor: &Actor,
    organization: OrganizationId,
    new: NewChannel,
) -> Result<ChannelView> {
    let db = platform.db();
    authorize(
        db,
        actor,
        Permission::NotificationManage,
        Resource::Organization(organization),
    )
    .await?;
    let name = normalise_name(&new.name)?;
    let config = validate(new.config)?;
    let destination = destination(&config)?;
    let id = NotificationChannelId::new();
    let sealed = seal(platform, id, &config)?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO notification_channels
             (id, organization_id, name, kind, config, destination, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(organization)
    .bind(&name)
    .bind(config.kind().key())
    .bind(&sealed)
    .bind(&destination)
    .bind(actor.account_id)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a notification channel with this name exists in the organization",
    ))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("notification_channel.create", "notification_channel", id)
            .in_org(organization)
            .details(details(&name, &config, &destination)),
    )
    .await?;
    let view = fetch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(view)
}

/// Replaces a channel's name and settings. A webhook secret left empty
/// keeps the stored one, as does an empty URL (the form cannot show the
/// stored URL: Slack and Teams URLs carry tokens).
pub async fn update_channel(
    platform: &Platform,
    actor: &Actor,
    id: NotificationChannelId,
    new: NewChannel,
) -> Result<ChannelView> {
    let db = platform.db();
    let organization = manage(db, actor, id).await?;
    let name = normalise_name(&new.name)?;
    let mut tx = db.begin().await?;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT config FROM notification_channels WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound)?;
    // Settings that no longer open (a changed portal key) can still be
    // replaced in full.
    let stored = open(platform, id, &sealed).ok();
    let config = match &stored {
        Some(stored) => validate(keep_blanks(new.config, stored))?,
        None => validate(new.config)?,
    };
    let destination = destination(&config)?;
    let sealed = seal(platform, id, &config)?;
    sqlx::query(
        "UPDATE notification_channels
         SET name = $2, kind = $3, config = $4, destination = $5, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&name)
    .bind(config.kind().key())
    .bind(&sealed)
    .bind(&destination)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a notification channel with this name exists in the organization",
    ))?;
    let mut details = details(&name, &config, &destination);
    if let (
        Some(ChannelConfig::Webhook { secret: old, .. }),
        ChannelConfig::Webhook { secret: new, .. },
    ) = (stored.as_ref(), &config)
    {
        details["secret_changed"] = serde_json::Value::Bool(old != new);
    }
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("notification_channel.update", "notification_channel", id)
            .in_org(organization)
            .details(details),
    )
    .await?;
    let view = fetch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn delete_channel(
    platform: &Platform,
    actor: &Actor,
    id: NotificationChannelId,
) -> Result<()> {
    let db = platform.db();
    let organization = manage(db, actor, id).await?;
    let mut tx = db.begin().await?;
    let (name, kind, destination): (String, String, String) = sqlx::query_as(
        "DELETE FROM notification_channels WHERE id = $1 RETURNING name, kind, destination",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    // Monitors keep plain ids; drop the dangling one so their channel lists
    // stay truthful.
    sqlx::query(
        "UPDATE monitors SET channels = array_remove(channels, $1)
         WHERE organization_id = $2 AND $1 = ANY(channels)",
    )
    .bind(id)
    .bind(organization)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("notification_channel.delete", "notification_channel", id)
            .in_org(organization)
            .details(serde_json::json!({ "name": name, "kind": kind, "destination": destination })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Authorizes `notification.manage` on the channel's organization; a
/// channel the caller cannot see does not exist.
pub(super) async fn manage(
    db: &PgPool,
    actor: &Actor,
    id: NotificationChannelId,
) -> Result<OrganizationId> {
    let organization: OrganizationId =
        sqlx::query_scalar("SELECT organization_id FROM notification_channels WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or(Error::NotFound)?;
    authorize(
        db,
        actor,
        Permission::NotificationManage,
        Resource::Organization(organization),
    )
    .await?;
    Ok(organization)
}

async fn fetch(conn: &mut PgConnection, id: NotificationChannelId) -> Result<ChannelView> {
    let row: Row = sqlx::query_as(&format!("{VIEW} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)?;
    row.try_into()
}

/// What the audit log may hold: never the secret or a full URL.
fn details(name: &str, config: &ChannelConfig, destination: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "kind": config.kind().key(),
        "destination": destination,
    })
}

fn normalise_name(raw: &str) -> Result<String> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.chars().count() {
        0 => Err(Error::invalid("name", "enter a name")),
        n if n > MAX_NAME_CHARS => Err(Error::invalid(
            "name",
            format!("use at most {MAX_NAME_CHARS} characters"),
        )),
        _ => Ok(name),
    }
}

/// Blank secret-bearing fields of an edit take the stored values, as long
/// as the kind stays the same.
fn keep_blanks(new: ChannelConfig, stored: &ChannelConfig) -> ChannelConfig {
    let keep = |entered: String, stored: &str| {
        if entered.trim().is_empty() {
            stored.to_string()
        } else {
            entered
        }
    };
    match (new, stored) {
        (
            ChannelConfig::Webhook { url, secret },
            ChannelConfig::Webhook {
                url: old_url,
                secret: old_secret,
            },
        ) => ChannelConfig::Webhook {
            url: keep(url, old_url),
            secret: if secret.is_empty() {
                old_secret.clone()
            } else {
                secret
            },
        },
        (ChannelConfig::Slack { url }, ChannelConfig::Slack { url: old }) => ChannelConfig::Slack {
            url: keep(url, old),
        },
        (ChannelConfig::Teams { url }, ChannelConfig::Teams { url: old }) => ChannelConfig::Teams {
            url: keep(url, old),
        },
        (new, _) => new,
    }
}

/// Checks and normalises a channel's settings; errors name the field.
pub(super) fn validate(config: ChannelConfig) -> Result<ChannelConfig> {
    Ok(match config {
        ChannelConfig::Email { addresses } => {
            let mut clean: Vec<String> = Vec::new();
            for raw in addresses.iter().filter(|a| !a.trim().is_empty()) {
                let address =
                    crate::identity::normalize_email("config.addresses", raw).map_err(|_| {
                        Error::invalid(
                            "config.addresses",
                            format!(
                                "{:?} is not an email address such as name@example.com",
                                raw.trim()
                            ),
                        )
                    })?;
                if !clean.contains(&address) {
                    clean.push(address);
                }
            }
            if clean.is_empty() {
                return Err(Error::invalid(
                    "config.addresses",
                    "enter at least one email address",
                ));
            }
            if clean.len() > MAX_ADDRESSES {
                return Err(Error::invalid(
                    "config.addresses",
                    format!("use at most {MAX_ADDRESSES} addresses"),
                ));
            }
            ChannelConfig::Email { addresses: clean }
        }
        ChannelConfig::Webhook { url, secret } => {
            let url = check_url(&url)?;
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(Error::invalid(
                    "config.secret",
                    format!("use at least {MIN_SECRET_CHARS} characters"),
                ));
            }
            ChannelConfig::Webhook { url, secret }
        }
        ChannelConfig::Slack { url } => ChannelConfig::Slack {
            url: check_url(&url)?,
        },
        ChannelConfig::Teams { url } => ChannelConfig::Teams {
            url: check_url(&url)?,
        },
    })
}

/// http(s) with a host; plain http only to this machine (local receivers),
/// since the body and, for Slack and Teams, the URL's token would travel in
/// clear.
fn check_url(raw: &str) -> Result<String> {
    let field = "config.url";
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::invalid(field, "enter the URL to send to"));
    }
    let url = Url::parse(raw).map_err(|e| {
        Error::invalid(
            field,
            format!("not a URL such as https://example.com/hook ({e})"),
        )
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::invalid(field, "the URL needs a host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(Error::invalid(
                field,
                "use https (plain http is allowed only to localhost)",
            ));
        }
        other => {
            return Err(Error::invalid(
                field,
                format!("use an https URL, not {other}:"),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            field,
            "put credentials in the secret, not in the URL",
        ));
    }
    Ok(url.to_string())
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where a channel sends, safe to show: the addresses, or the URL's scheme
/// and host (paths of Slack and Teams URLs are tokens).
fn destination(config: &ChannelConfig) -> Result<String> {
    match config {
        ChannelConfig::Email { addresses } => Ok(addresses.join(", ")),
        ChannelConfig::Webhook { url, .. }
        | ChannelConfig::Slack { url }
        | ChannelConfig::Teams { url } => {
            let url = Url::parse(url).map_err(|e| Error::invalid("config.url", e.to_string()))?;
            let host = url.host_str().unwrap_or_default();
            Ok(match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_https_except_to_this_machine() {
        assert!(check_url("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://[::1]:9000/").is_ok());
        for bad in [
            "http://example.com/hook",
            "ftp://example.com",
            "hook",
            "https://",
            "",
        ] {
            match check_url(bad) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "config.url", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn destinations_hide_tokens() {
        let slack = ChannelConfig::Slack {
            url: "https://hooks.slack.com/services/T000/B000/XXXX".into(),
        };
        assert_eq!(destination(&slack).unwrap(), "https://hooks.slack.com");
    }

    #[test]
    fn blank_secrets_keep_the_stored_ones() {
        let stored = ChannelConfig::Webhook {
            url: "https://example.com/a".into(),
            secret: "0123456789abcdef".into(),
        };
        let kept = keep_blanks(
            ChannelConfig::Webhook {
                url: String::new(),
                secret: String::new(),
            },
            &stored,
        );
        assert_eq!(kept, stored);
    }
}
