//! Workspace DNS names against a local fake of Cloudflare's v4 API; no
//! database needed.

use std::net::IpAddr;

use fakes::cloudflare::{FakeCloudflare, Record};
use platform::dns::{Dns, DnsError};

const TOKEN: &str = "test-token-0123456789";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const NAME: &str = "ws-1.workspaces.example.com";

async fn fake() -> (FakeCloudflare, Dns) {
    let fake = FakeCloudflare::start(TOKEN, ZONE).await;
    let dns = dns_for(&fake, TOKEN);
    (fake, dns)
}

fn dns_for(fake: &FakeCloudflare, token: &str) -> Dns {
    Dns::from_config(
        "cloudflare",
        Some(&fake.base_url()),
        Some(token),
        Some(ZONE),
    )
    .unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn named<'a>(records: &'a [Record], name: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.name == name).collect()
}

#[tokio::test]
async fn ensure_a_creates_a_record() {
    let (fake, dns) = fake().await;
    let id = dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();

    let records = fake.records();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(Some(&record.id), id.as_ref());
    assert_eq!((record.r#type.as_str(), record.name.as_str()), ("A", NAME));
    assert_eq!(record.content, "192.0.2.10");
    assert_eq!(record.ttl, 60);
    assert!(!record.proxied);
}

#[tokio::test]
async fn ensure_a_twice_keeps_one_record() {
    let (fake, dns) = fake().await;
    let first = dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();
    // Another spelling of the same name must find the same record.
    let second = dns
        .ensure_a("WS-1.Workspaces.Example.com.", ip("192.0.2.10"))
        .await
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(fake.records().len(), 1);
}

#[tokio::test]
async fn ensure_a_updates_a_changed_address() {
    let (fake, dns) = fake().await;
    let first = dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();
    let second = dns.ensure_a(NAME, ip("192.0.2.20")).await.unwrap();

    assert_eq!(first, second, "the record is updated in place");
    let records = fake.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].content, "192.0.2.20");
}

#[tokio::test]
async fn ensure_a_collapses_duplicates_left_by_others() {
    let (fake, dns) = fake().await;
    let kept = fake.insert("A", NAME, "192.0.2.1");
    fake.insert("A", NAME, "192.0.2.2");
    fake.insert("A", "other.workspaces.example.com", "192.0.2.3");

    let id = dns.ensure_a(NAME, ip("192.0.2.9")).await.unwrap();

    assert_eq!(id, Some(kept));
    let records = fake.records();
    let mine = named(&records, NAME);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].content, "192.0.2.9");
    assert_eq!(records.len(), 2, "other names are left alone");
}

#[tokio::test]
async fn ipv6_addresses_get_aaaa_records() {
    let (fake, dns) = fake().await;
    dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();
    dns.ensure_a(NAME, ip("2001:db8::1")).await.unwrap();
    // The same address written differently is no change.
    dns.ensure_a(NAME, ip("2001:0db8:0:0::1")).await.unwrap();

    let records = fake.records();
    let mut kinds: Vec<_> = records
        .iter()
        .map(|r| (r.r#type.as_str(), r.content.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, [("A", "192.0.2.10"), ("AAAA", "2001:db8::1")]);
}

#[tokio::test]
async fn remove_deletes_every_record_of_the_name_and_is_idempotent() {
    let (fake, dns) = fake().await;
    dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();
    dns.ensure_a(NAME, ip("2001:db8::1")).await.unwrap();
    fake.insert("TXT", NAME, "\"hello\"");
    fake.insert("A", "other.workspaces.example.com", "192.0.2.3");

    dns.remove(NAME).await.unwrap();
    dns.remove(NAME).await.unwrap();

    let records = fake.records();
    assert!(named(&records, NAME).is_empty(), "{records:?}");
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn remove_reads_every_page() {
    let (fake, dns) = fake().await;
    for i in 0..230 {
        fake.insert("TXT", NAME, &format!("\"{i}\""));
    }
    dns.remove(NAME).await.unwrap();
    assert!(fake.records().is_empty());
}

#[tokio::test]
async fn wrong_token_is_an_authentication_error() {
    let (fake, _) = fake().await;
    let dns = dns_for(&fake, "not-the-token");

    let err = dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap_err();

    assert!(
        matches!(err, DnsError::Authentication { status: 403, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("Authentication error") && text.contains("10000"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-token"),
        "the token never appears in errors"
    );
    assert!(fake.records().is_empty());
}

#[tokio::test]
async fn unknown_zone_is_rejected_with_cloudflares_message() {
    let fake = FakeCloudflare::start(TOKEN, ZONE).await;
    let dns = Dns::from_config(
        "cloudflare",
        Some(&fake.base_url()),
        Some(TOKEN),
        Some("0000"),
    )
    .unwrap();

    let err = dns.remove(NAME).await.unwrap_err();

    assert!(
        matches!(err, DnsError::Rejected { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("7003"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retryable_and_a_retry_converges() {
    let (fake, dns) = fake().await;
    fake.fail_next(1);

    let err = dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap_err();
    assert!(
        matches!(err, DnsError::Unavailable { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());

    dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();
    dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap();
    assert_eq!(fake.records().len(), 1);
}

#[tokio::test]
async fn unreachable_provider_is_retryable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = url::Url::parse(&format!("http://127.0.0.1:{port}/client/v4/")).unwrap();
    let dns = Dns::from_config("cloudflare", Some(&base), Some(TOKEN), Some(ZONE)).unwrap();

    let err = dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap_err();
    assert!(matches!(err, DnsError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn dns_none_does_nothing_and_succeeds() {
    let dns = Dns::from_config("none", None, None, None).unwrap();
    assert_eq!(dns.ensure_a(NAME, ip("192.0.2.10")).await.unwrap(), None);
    dns.remove(NAME).await.unwrap();
}

#[test]
fn configuration_is_checked_and_the_token_is_not_printed() {
    let missing = Dns::from_config("cloudflare", None, None, Some(ZONE)).unwrap_err();
    assert!(missing.to_string().contains("token"), "{missing}");
    assert!(Dns::from_config("route53", None, None, None).is_err());
    let plain = url::Url::parse("http://api.example.com/client/v4/").unwrap();
    let err = Dns::from_config("cloudflare", Some(&plain), Some(TOKEN), Some(ZONE)).unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");

    let dns = Dns::from_config("cloudflare", None, Some(TOKEN), Some(ZONE)).unwrap();
    let debug = format!("{dns:?}");
    assert!(
        debug.contains("api.cloudflare.com") && !debug.contains(TOKEN),
        "{debug}"
    );
}
