//! What a notification looks like on each kind of channel.

use hmac::{Hmac, Mac};
use protocol::views::monitoring::{AlertState, NotificationMessage, NotifiedAlert};
use serde_json::{Value, json};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;

/// The value of the `x-loopback-signature` header for `body`:
/// `sha256=<hex HMAC-SHA256(secret, body)>`. Receivers recompute it over the
/// raw body they got.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error case cannot happen.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn since(alert: &NotifiedAlert) -> String {
    alert
        .started_at
        .format(&Rfc3339)
        .unwrap_or_else(|_| alert.started_at.to_string())
}

fn value(alert: &NotifiedAlert) -> Option<String> {
    alert.value.map(|v| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        }
    })
}

/// "critical · firing since 2026-11-23T10:00:00Z · value 503".
fn alert_facts(alert: &NotifiedAlert) -> String {
    let mut facts = vec![alert.severity.key().to_string()];
    facts.push(match alert.state {
        AlertState::Resolved => match alert.resolved_at.and_then(|t| t.format(&Rfc3339).ok()) {
            Some(at) => format!("resolved at {at}"),
            None => "resolved".into(),
        },
        state => format!("{} since {}", state.key(), since(alert)),
    });
    if let Some(v) = value(alert) {
        facts.push(format!("value {v}"));
    }
    facts.join(" · ")
}

fn intro(message: &NotificationMessage) -> String {
    if message.kind == "test" {
        return "This is a test notification: the channel works.".into();
    }
    let mut line = match (&message.monitor_name, &message.target) {
        (Some(name), Some(target)) => format!("Monitor {name} ({target})"),
        (Some(name), None) => format!("Monitor {name}"),
        _ => "A monitor".into(),
    };
    line.push_str(match message.kind.as_str() {
        "resolved" => " recovered.",
        "repeat" => " is still alerting.",
        _ => " is alerting.",
    });
    line
}

/// Slack mrkdwn needs these three escaped in text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook body: `text` for notifications and clients
/// without blocks, blocks for the rest.
pub(super) fn slack(message: &NotificationMessage) -> Value {
    let subject = message.subject();
    let title = match &message.url {
        Some(url) => format!("*<{}|{}>*", url, slack_escape(&subject)),
        None => format!("*{}*", slack_escape(&subject)),
    };
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": format!("{title}\n{}", slack_escape(&intro(message))) }
    })];
    if !message.alerts.is_empty() {
        let lines: Vec<String> = message
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "• *{}* — {}",
                    slack_escape(&a.summary),
                    slack_escape(&alert_facts(a))
                )
            })
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": lines.join("\n") }
        }));
    }
    if let Some(url) = &message.url {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!("<{url}|Open in Loopback>") }]
        }));
    }
    json!({ "text": subject, "blocks": blocks })
}

/// A Teams (Workflows / incoming webhook) message with one Adaptive Card.
pub(super) fn teams(message: &NotificationMessage) -> Value {
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": message.subject(),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": true,
            "color": match message.kind.as_str() {
                "resolved" => "Good",
                "test" => "Default",
                _ => "Attention",
            }
        }),
        json!({ "type": "TextBlock", "text": intro(message), "wrap": true }),
    ];
    if !message.alerts.is_empty() {
        let facts: Vec<Value> = message
            .alerts
            .iter()
            .map(|a| json!({ "title": a.summary, "value": alert_facts(a) }))
            .collect();
        body.push(json!({ "type": "FactSet", "facts": facts }));
    }
    let actions: Vec<Value> = message
        .url
        .iter()
        .map(|url| json!({ "type": "Action.OpenUrl", "title": "Open in Loopback", "url": url }))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            }
        }]
    })
}

/// The plain-text email: subject, what happened, each alert, the link.
pub(super) fn email_body(message: &NotificationMessage) -> String {
    let mut text = format!("{}\n\n{}\n", message.subject(), intro(message));
    if !message.alerts.is_empty() {
        text.push_str("\nAlerts:\n");
        for alert in &message.alerts {
            text.push_str(&format!("- {}: {}\n", alert.summary, alert_facts(alert)));
        }
    }
    if let Some(url) = &message.url {
        text.push_str(&format!("\nOpen in Loopback: {url}\n"));
    }
    text.push_str("\n-- \nSent by Loopback monitoring.\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
