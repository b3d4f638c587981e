//! Notification channels and deliveries: webhooks signed and delivered
//! once to a local receiver that checks the signature, Slack and Teams
//! bodies in their shapes, email through the outbox, retries with backoff
//! and giving up, validation that names the field and writes nothing,
//! secrets sealed at rest, and tenants kept apart.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use platform::Error;
use platform::authz::{Actor, BuiltinRole};
use platform::monitoring::notify;
use platform::tenancy::members::{self, RoleSpec};
use platform::tenancy::organizations;
use protocol::ids::{AlertId, NotificationChannelId, NotificationId, OrganizationId};
use protocol::views::monitoring::{
    AlertState, ChannelConfig, ChannelKind, DeliveryState, NewChannel, NotificationMessage,
    NotifiedAlert, Severity,
};
use protocol::views::{PageRequest, Verification};
use sha2::Sha256;
use sqlx::PgPool;
use support::{actor, operator, platform, public_url};
use time::OffsetDateTime;

const SECRET: &str = "a-signing-secret-of-some-length";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A local HTTP receiver: records every request and answers with the
/// scripted statuses in turn, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Self, String) {
        let receiver = Receiver {
            got: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
        };
        let app = Router::new().fallback(answer).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, base)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn answer(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    receiver.got.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let status = receiver.script.lock().unwrap().pop_front().unwrap_or(200);
    (
        StatusCode::from_u16(status).unwrap(),
        if status == 200 {
            "ok"
        } else {
            "boom: receiver down"
        },
    )
}

/// Recomputes the signature the way a receiver would.
fn verify(secret: &str, received: &Received) {
    let header = received
        .headers
        .get("x-loopback-signature")
        .expect("signature header")
        .to_str()
        .unwrap();
    let hex_mac = header.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&received.body);
    mac.verify_slice(&hex::decode(hex_mac).unwrap())
        .expect("the signature verifies with the channel's secret");
}

struct Org {
    portal: platform::Platform,
    alice: Actor,
    org: OrganizationId,
}

async fn org(db: &PgPool) -> Org {
    let portal = platform(db);
    let op = operator(db).await;
    let alice = actor(db, "alice@example.com").await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    organizations::set_verification(db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    Org {
        portal,
        alice,
        org: org.id,
    }
}

fn webhook(name: &str, url: &str) -> NewChannel {
    NewChannel {
        name: name.into(),
        config: ChannelConfig::Webhook {
            url: url.into(),
            secret: SECRET.into(),
        },
    }
}

async fn channel(o: &Org, new: NewChannel) -> NotificationChannelId {
    notify::create_channel(&o.portal, &o.alice, o.org, new)
        .await
        .unwrap()
        .id
}

fn firing(org: OrganizationId) -> NotificationMessage {
    let started = OffsetDateTime::now_utc() - time::Duration::minutes(3);
    NotificationMessage {
        id: NotificationId::new(),
        kind: "firing".into(),
        organization: org,
        project: None,
        monitor: None,
        monitor_name: Some("api".into()),
        target: Some("https://api.example.com/health".into()),
        url: Some("http://localhost:3000/projects/p/monitors/m".into()),
        alerts: vec![
            NotifiedAlert {
                id: AlertId::new(),
                summary: "status is down".into(),
                severity: Severity::Critical,
                state: AlertState::Firing,
                value: Some(0.0),
                started_at: started,
                resolved_at: None,
            },
            NotifiedAlert {
                id: AlertId::new(),
                summary: "latency_ms > 500".into(),
                severity: Severity::Warning,
                state: AlertState::Firing,
                value: Some(812.5),
                started_at: started,
                resolved_at: None,
            },
        ],
        sent_at: OffsetDateTime::now_utc(),
    }
}

async fn enqueue(
    db: &PgPool,
    org: OrganizationId,
    channels: &[NotificationChannelId],
    message: &NotificationMessage,
) -> usize {
    let mut conn = db.acquire().await.unwrap();
    notify::enqueue(&mut conn, org, channels, None, message)
        .await
        .unwrap()
}

/// Makes every pending delivery due now, instead of waiting out the
/// backoff.
async fn make_due(db: &PgPool) {
    sqlx::query("UPDATE notifications SET next_attempt_at = now() WHERE state = 'pending'")
        .execute(db)
        .await
        .unwrap();
}

async fn delivery(o: &Org, id: NotificationId) -> protocol::views::monitoring::DeliveryView {
    notify::deliveries(&o.portal, &o.alice, o.org, PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|d| d.id == id)
        .expect("the delivery is listed")
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_webhook_is_signed_and_delivered_once(db: PgPool) {
    let o = org(&db).await;
    let (receiver, base) = Receiver::start(&[]).await;
    let hook = channel(&o, webhook("ops hook", &format!("{base}/hook"))).await;

    let test = notify::send_test(&o.portal, &o.alice, hook).await.unwrap();
    assert_eq!(test.state, DeliveryState::Pending);
    assert_eq!(test.subject, "Test notification from Loopback");
    assert_eq!(test.channel_name, "ops hook");
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 1);
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);

    let got = receiver.got();
    assert_eq!(got.len(), 1, "delivered exactly once");
    let request = &got[0];
    assert_eq!(request.path, "/hook");
    verify(SECRET, request);
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["x-loopback-event"], "test");
    assert_eq!(request.headers["user-agent"], "Loopback");
    let message: NotificationMessage = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(message.id, test.id, "the body names its delivery");
    assert_eq!(message.kind, "test");
    assert_eq!(message.organization, o.org);
    assert!(message.alerts.is_empty());

    let done = delivery(&o, test.id).await;
    assert_eq!(done.state, DeliveryState::Delivered);
    assert_eq!(done.attempts, 1);
    assert!(done.delivered_at.is_some());
    assert_eq!(done.next_attempt_at, None);

    // A grouped firing notification: one body carrying both alerts; a
    // channel of another organization named alongside is ignored.
    let mallory = actor(&db, "mallory@example.com").await;
    let theirs = organizations::create(&db, &mallory, "Mallory")
        .await
        .unwrap();
    let foreign = notify::create_channel(
        &o.portal,
        &mallory,
        theirs.id,
        webhook("theirs", &format!("{base}/theirs")),
    )
    .await
    .unwrap()
    .id;
    let sent = firing(o.org);
    assert_eq!(enqueue(&db, o.org, &[hook, foreign], &sent).await, 1);
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 1);
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    verify(SECRET, &got[1]);
    assert_eq!(got[1].headers["x-loopback-event"], "firing");
    let body: NotificationMessage = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body.alerts, sent.alerts);
    assert_ne!(body.id, sent.id, "each delivery gets its own id");
    let page = notify::deliveries(&o.portal, &o.alice, o.org, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items[0].id, body.id, "newest first");
    assert_eq!(
        page.items[0].subject,
        "[FIRING] api: status is down (+1 more)"
    );

    let actions = support::audit_actions(&db).await;
    assert!(actions.contains(&"notification_channel.create".to_string()));
    assert!(actions.contains(&"notification_channel.test".to_string()));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn slack_and_teams_get_their_own_shapes(db: PgPool) {
    let o = org(&db).await;
    let (receiver, base) = Receiver::start(&[]).await;
    let slack = channel(
        &o,
        NewChannel {
            name: "slack".into(),
            config: ChannelConfig::Slack {
                url: format!("{base}/services/T000/B000/slack-token"),
            },
        },
    )
    .await;
    let teams = channel(
        &o,
        NewChannel {
            name: "teams".into(),
            config: ChannelConfig::Teams {
                url: format!("{base}/workflows/teams-token"),
            },
        },
    )
    .await;
    let sent = firing(o.org);
    assert_eq!(enqueue(&db, o.org, &[slack, teams], &sent).await, 2);
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 2);
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    let body = |prefix: &str| -> serde_json::Value {
        let r = got.iter().find(|r| r.path.starts_with(prefix)).unwrap();
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(r.headers.get("x-loopback-signature").is_none());
        serde_json::from_slice(&r.body).unwrap()
    };

    let slack = body("/services/");
    assert_eq!(slack["text"], sent.subject());
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
    let title = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        title.contains("<http://localhost:3000/projects/p/monitors/m|"),
        "{title}"
    );
    let alerts = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(alerts.contains("status is down") && alerts.contains("critical"));
    assert!(alerts.contains("latency_ms &gt; 500"), "escaped: {alerts}");

    let teams = body("/workflows/");
    assert_eq!(teams["type"], "message");
    let attachment = &teams["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(attachment["contentUrl"].is_null());
    let card = &attachment["content"];
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(card["body"][0]["text"], sent.subject());
    let facts = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "FactSet")
        .unwrap();
    assert_eq!(facts["facts"].as_array().unwrap().len(), 2);
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(
        card["actions"][0]["url"],
        "http://localhost:3000/projects/p/monitors/m"
    );
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn email_goes_to_the_outbox_once_per_address(db: PgPool) {
    let o = org(&db).await;
    let mail = notify::create_channel(
        &o.portal,
        &o.alice,
        o.org,
        NewChannel {
            name: "on call".into(),
            config: ChannelConfig::Email {
                addresses: vec![" Ops@Example.com".into(), "lead@example.com".into()],
            },
        },
    )
    .await
    .unwrap();
    assert_eq!(mail.kind, ChannelKind::Email);
    assert_eq!(mail.destination, "ops@example.com, lead@example.com");
    let sent = firing(o.org);
    assert_eq!(enqueue(&db, o.org, &[mail.id], &sent).await, 1);
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 1);
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);
    let mails: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT to_address, subject, body FROM outbox_emails
         WHERE subject LIKE '[FIRING]%' ORDER BY to_address",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        mails.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["lead@example.com", "ops@example.com"]
    );
    for (_, subject, body) in &mails {
        assert_eq!(subject, &sent.subject());
        assert!(body.contains("status is down: critical"), "{body}");
        assert!(body.contains("value 812.500"), "{body}");
        assert!(body.contains("since "), "{body}");
        assert!(
            body.contains("http://localhost:3000/projects/p/monitors/m"),
            "{body}"
        );
    }
    let page = notify::deliveries(&o.portal, &o.alice, o.org, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items[0].state, DeliveryState::Delivered);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn failures_back_off_and_then_deliver(db: PgPool) {
    let o = org(&db).await;
    let (receiver, base) = Receiver::start(&[500, 500]).await;
    let hook = channel(&o, webhook("flaky", &format!("{base}/hook"))).await;
    let test = notify::send_test(&o.portal, &o.alice, hook).await.unwrap();

    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);
    let first = delivery(&o, test.id).await;
    assert_eq!(first.state, DeliveryState::Pending);
    assert_eq!(first.attempts, 1);
    assert_eq!(
        first.last_error.as_deref(),
        Some("HTTP 500: boom: receiver down")
    );
    let wait = first.next_attempt_at.unwrap() - OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(3) && wait <= time::Duration::seconds(5),
        "first retry after 5 s: {wait}"
    );
    // Not due yet: nothing is sent.
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);
    assert_eq!(receiver.got().len(), 1);

    make_due(&db).await;
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);
    let second = delivery(&o, test.id).await;
    assert_eq!(second.attempts, 2);
    let wait = second.next_attempt_at.unwrap() - OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(25) && wait <= time::Duration::seconds(30),
        "second retry after 30 s: {wait}"
    );

    make_due(&db).await;
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 1);
    let done = delivery(&o, test.id).await;
    assert_eq!(done.state, DeliveryState::Delivered);
    assert_eq!(done.attempts, 3);
    assert_eq!(done.last_error, None);
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    for request in &got {
        verify(SECRET, request);
    }
    assert_eq!(got[0].body, got[2].body, "a retry sends the same message");
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_delivery_fails_after_the_sixth_attempt_and_can_be_retried(db: PgPool) {
    let o = org(&db).await;
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let hook = channel(&o, webhook("gone", &format!("http://{closed}/hook"))).await;
    let test = notify::send_test(&o.portal, &o.alice, hook).await.unwrap();
    for attempt in 1..=6u32 {
        make_due(&db).await;
        assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);
        let now = delivery(&o, test.id).await;
        assert_eq!(now.attempts, attempt);
        assert_eq!(now.last_error.as_deref(), Some("connection refused"));
        let expected = if attempt < 6 {
            DeliveryState::Pending
        } else {
            DeliveryState::Failed
        };
        assert_eq!(now.state, expected, "after attempt {attempt}");
    }
    let failed = delivery(&o, test.id).await;
    assert_eq!(failed.next_attempt_at, None);
    make_due(&db).await;
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 0);
    assert_eq!(delivery(&o, test.id).await.attempts, 6, "no more attempts");
    let channels = notify::list_channels(&o.portal, &o.alice, o.org)
        .await
        .unwrap();
    assert_eq!(channels[0].failed_recently, 1);

    let retried = notify::retry(&o.portal, &o.alice, test.id).await.unwrap();
    assert_eq!(retried.state, DeliveryState::Pending);
    assert!(retried.next_attempt_at.unwrap() <= OffsetDateTime::now_utc());
    assert!(
        support::audit_actions(&db)
            .await
            .contains(&"notification.retry".to_string())
    );
}

fn invalid_field(result: platform::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn invalid_channels_name_the_field_and_write_nothing(db: PgPool) {
    let o = org(&db).await;
    let email = |addresses: Vec<String>| ChannelConfig::Email { addresses };
    let url = |url: &str| ChannelConfig::Slack { url: url.into() };
    let cases: Vec<(&str, NewChannel)> = vec![
        (
            "name",
            NewChannel {
                name: "  ".into(),
                config: email(vec!["a@example.com".into()]),
            },
        ),
        (
            "name",
            NewChannel {
                name: "x".repeat(64),
                config: email(vec!["a@example.com".into()]),
            },
        ),
        (
            "config.addresses",
            NewChannel {
                name: "mail".into(),
                config: email(vec![]),
            },
        ),
        (
            "config.addresses",
            NewChannel {
                name: "mail".into(),
                config: email(vec!["a@example.com".into(), "not an address".into()]),
            },
        ),
        (
            "config.addresses",
            NewChannel {
                name: "mail".into(),
                config: email((0..11).map(|i| format!("p{i}@example.com")).collect()),
            },
        ),
        (
            "config.url",
            NewChannel {
                name: "hook".into(),
                config: url("http://hooks.example.com/x"),
            },
        ),
        (
            "config.url",
            NewChannel {
                name: "hook".into(),
                config: url("ftp://hooks.example.com/x"),
            },
        ),
        (
            "config.url",
            NewChannel {
                name: "hook".into(),
                config: url("hooks.example.com/x"),
            },
        ),
        (
            "config.secret",
            NewChannel {
                name: "hook".into(),
                config: ChannelConfig::Webhook {
                    url: "https://hooks.example.com/x".into(),
                    secret: "too-short".into(),
                },
            },
        ),
    ];
    for (field, new) in cases {
        let what = format!("{new:?}");
        assert_eq!(
            invalid_field(notify::create_channel(&o.portal, &o.alice, o.org, new).await),
            field,
            "{what}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_channels")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert!(
        !support::audit_actions(&db)
            .await
            .iter()
            .any(|a| a.starts_with("notification_channel."))
    );

    // A taken name, and a bad edit, change nothing either.
    let first = channel(&o, webhook("ops", "https://hooks.example.com/a")).await;
    assert_eq!(
        invalid_field(
            notify::create_channel(
                &o.portal,
                &o.alice,
                o.org,
                webhook("ops", "https://hooks.example.com/b")
            )
            .await
        ),
        "name"
    );
    assert_eq!(
        invalid_field(
            notify::update_channel(
                &o.portal,
                &o.alice,
                first,
                webhook("ops", "http://hooks.example.com/b")
            )
            .await
        ),
        "config.url"
    );
    let channels = notify::list_channels(&o.portal, &o.alice, o.org)
        .await
        .unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].destination, "https://hooks.example.com");
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn secrets_are_sealed_and_kept_on_blank_edits(db: PgPool) {
    let o = org(&db).await;
    let (receiver, base) = Receiver::start(&[]).await;
    let slack_url = "https://hooks.slack.com/services/T000/B000/SlackTokenXYZ";
    let slack = notify::create_channel(
        &o.portal,
        &o.alice,
        o.org,
        NewChannel {
            name: "slack".into(),
            config: ChannelConfig::Slack {
                url: slack_url.into(),
            },
        },
    )
    .await
    .unwrap();
    assert_eq!(slack.destination, "https://hooks.slack.com");
    let hook_url = format!("{base}/hook");
    let hook = channel(&o, webhook("hook", &hook_url)).await;

    let stored: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT config, destination FROM notification_channels")
            .fetch_all(&db)
            .await
            .unwrap();
    for (sealed, destination) in &stored {
        let text = String::from_utf8_lossy(sealed);
        for secret in [SECRET, "SlackTokenXYZ", "hooks.slack.com", &hook_url] {
            assert!(!text.contains(secret), "{secret} stored in clear");
            assert!(!destination.contains("Token"));
        }
    }

    // Blank secret and URL keep the stored ones; the name changes.
    let renamed = notify::update_channel(
        &o.portal,
        &o.alice,
        hook,
        NewChannel {
            name: "signed hook".into(),
            config: ChannelConfig::Webhook {
                url: String::new(),
                secret: String::new(),
            },
        },
    )
    .await
    .unwrap();
    assert_eq!(renamed.name, "signed hook");
    notify::update_channel(
        &o.portal,
        &o.alice,
        slack.id,
        NewChannel {
            name: "slack".into(),
            config: ChannelConfig::Slack { url: " ".into() },
        },
    )
    .await
    .unwrap();
    notify::send_test(&o.portal, &o.alice, hook).await.unwrap();
    assert_eq!(notify::deliver_due(&o.portal, 10).await.unwrap(), 1);
    verify(SECRET, &receiver.got()[0]);

    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details::text FROM audit_log WHERE action LIKE 'notification_channel.%'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(details.len(), 5, "create ×2, update ×2, test");
    for d in details {
        for secret in [SECRET, "SlackTokenXYZ", "/services/", &hook_url] {
            assert!(!d.contains(secret), "audit details reveal {secret}: {d}");
        }
    }

    notify::delete_channel(&o.portal, &o.alice, slack.id)
        .await
        .unwrap();
    assert_eq!(
        notify::list_channels(&o.portal, &o.alice, o.org)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        support::audit_actions(&db)
            .await
            .contains(&"notification_channel.delete".to_string())
    );
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn other_tenants_get_not_found_and_viewers_change_nothing(db: PgPool) {
    let o = org(&db).await;
    let hook = channel(&o, webhook("ops", "https://hooks.example.com/a")).await;
    let test = notify::send_test(&o.portal, &o.alice, hook).await.unwrap();
    let p = &o.portal;

    let mallory = actor(&db, "mallory@example.com").await;
    organizations::create(&db, &mallory, "Mallory")
        .await
        .unwrap();
    let edit = webhook("hacked", "https://evil.example.com/x");
    let not_found = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::NotFound)), "{what}: {r:?}");
    };
    not_found(
        notify::list_channels(p, &mallory, o.org).await.map(drop),
        "list",
    );
    not_found(
        notify::create_channel(p, &mallory, o.org, edit.clone())
            .await
            .map(drop),
        "create",
    );
    not_found(
        notify::update_channel(p, &mallory, hook, edit.clone())
            .await
            .map(drop),
        "update",
    );
    not_found(notify::delete_channel(p, &mallory, hook).await, "delete");
    not_found(notify::send_test(p, &mallory, hook).await.map(drop), "test");
    not_found(
        notify::deliveries(p, &mallory, o.org, PageRequest::default())
            .await
            .map(drop),
        "deliveries",
    );
    not_found(notify::retry(p, &mallory, test.id).await.map(drop), "retry");

    // A viewer of the organization sees the channels, changes nothing.
    let vic = actor(&db, "vic@example.com").await;
    let invitation = members::invite(
        &db,
        &o.alice,
        &public_url(),
        o.org,
        "vic@example.com",
        RoleSpec::Builtin(BuiltinRole::Viewer),
    )
    .await
    .unwrap();
    members::respond(&db, &vic, invitation.id, true)
        .await
        .unwrap();
    assert_eq!(
        notify::list_channels(p, &vic, o.org).await.unwrap().len(),
        1
    );
    let forbidden = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::Forbidden(_))), "{what}: {r:?}");
    };
    forbidden(
        notify::create_channel(p, &vic, o.org, edit.clone())
            .await
            .map(drop),
        "create",
    );
    forbidden(
        notify::update_channel(p, &vic, hook, edit.clone())
            .await
            .map(drop),
        "update",
    );
    forbidden(notify::delete_channel(p, &vic, hook).await, "delete");
    forbidden(notify::send_test(p, &vic, hook).await.map(drop), "test");
    forbidden(notify::retry(p, &vic, test.id).await.map(drop), "retry");
    let names: Vec<String> = notify::list_channels(p, &o.alice, o.org)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["ops"]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}
