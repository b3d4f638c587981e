//! The Hetzner Cloud and Robot clients against local fakes of their
//! documented APIs; no database needed.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use fakes::hetzner_cloud::FakeHetznerCloud;
use fakes::hetzner_robot::FakeHetznerRobot;
use platform::providers::hetzner_cloud::HetznerCloud;
use platform::providers::hetzner_robot::{HetznerRobot, ORDER_PREFIX};
use platform::providers::{CreateServer, PowerAction, ProviderError, Server, ServerStatus};
use url::Url;

const TOKEN: &str = "hcloud-test-token-0123456789";
const USER: &str = "#ws+test";
const PASSWORD: &str = "robot-password";

fn spec(name: &str, parameters: &[(&str, &str)]) -> CreateServer {
    CreateServer {
        name: name.into(),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        user_data: "#cloud-config\nruncmd: [agent]\n".into(),
        labels: BTreeMap::from([("loopback-host".into(), name.into())]),
    }
}

/// Polls `probe` until it yields a value; the fakes settle within 100 ms.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within 2 s");
}

/// A loopback URL nobody listens on.
async fn closed_port_url(path: &str) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Url::parse(&format!("http://{addr}{path}")).unwrap()
}

// Hetzner Cloud

async fn cloud() -> (FakeHetznerCloud, HetznerCloud) {
    let fake = FakeHetznerCloud::start(TOKEN).await;
    let client = HetznerCloud::new(fake.base_url(), TOKEN).unwrap();
    (fake, client)
}

fn cx22(name: &str) -> CreateServer {
    spec(name, &[("server_type", "cx22"), ("location", "fsn1")])
}

async fn cloud_status(client: &HetznerCloud, id: &str, wanted: ServerStatus) -> Server {
    eventually(&format!("server {id} reaching {wanted:?}"), || async {
        let server = client.server(id).await.unwrap().unwrap();
        (server.status == wanted).then_some(server)
    })
    .await
}

#[tokio::test]
async fn cloud_create_appears() {
    let (fake, client) = cloud().await;
    client.test_connection().await.unwrap();
    let created = client.create_server(&cx22("host-1")).await.unwrap();
    assert_eq!(created.name, "host-1");
    assert_eq!(created.status, ServerStatus::Creating);
    assert!(
        created.ipv4.is_some() && created.ipv6.is_some(),
        "{created:?}"
    );

    let stored = fake.servers();
    assert_eq!(stored.len(), 1);
    let server = &stored[0];
    assert_eq!(server.id.to_string(), created.id);
    assert_eq!(
        (server.server_type.as_str(), server.datacenter.as_str()),
        ("cx22", "fsn1-dc14")
    );
    assert_eq!(server.image, "debian-12");
    assert_eq!(server.user_data, "#cloud-config\nruncmd: [agent]\n");
    assert_eq!(
        server.labels.get("loopback-host").map(String::as_str),
        Some("host-1")
    );

    let running = cloud_status(&client, &created.id, ServerStatus::Running).await;
    assert_eq!(running.ipv4, created.ipv4);
}

#[tokio::test]
async fn cloud_create_twice_keeps_one_server() {
    let (fake, client) = cloud().await;
    let first = client.create_server(&cx22("host-1")).await.unwrap();
    let second = client.create_server(&cx22("host-1")).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(fake.servers().len(), 1);
}

#[tokio::test]
async fn cloud_server_lookup() {
    let (_fake, client) = cloud().await;
    let created = client.create_server(&cx22("host-1")).await.unwrap();
    let found = client.server(&created.id).await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.name.as_str()),
        (created.id.as_str(), "host-1")
    );
    let by_name = client.find_by_name("host-1").await.unwrap().unwrap();
    assert_eq!(by_name.id, created.id);
    assert_eq!(client.find_by_name("host-2").await.unwrap(), None);
    assert_eq!(client.server("99999999").await.unwrap(), None);
    assert_eq!(client.server("not-an-id").await.unwrap(), None);
}

#[tokio::test]
async fn cloud_delete_twice_is_fine() {
    let (fake, client) = cloud().await;
    let created = client.create_server(&cx22("host-1")).await.unwrap();
    client.delete_server(&created.id).await.unwrap();
    client.delete_server(&created.id).await.unwrap();
    assert!(fake.servers().is_empty());
    assert_eq!(client.server(&created.id).await.unwrap(), None);
}

#[tokio::test]
async fn cloud_power_changes_status() {
    let (_fake, client) = cloud().await;
    let id = client.create_server(&cx22("host-1")).await.unwrap().id;
    cloud_status(&client, &id, ServerStatus::Running).await;

    client.power(&id, PowerAction::Off).await.unwrap();
    cloud_status(&client, &id, ServerStatus::Off).await;
    client.power(&id, PowerAction::On).await.unwrap();
    cloud_status(&client, &id, ServerStatus::Running).await;
    client.power(&id, PowerAction::Reset).await.unwrap();
    cloud_status(&client, &id, ServerStatus::Running).await;

    let err = client.power("99999999", PowerAction::On).await.unwrap_err();
    assert!(matches!(err, ProviderError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn cloud_wrong_token_is_unauthorized() {
    let fake = FakeHetznerCloud::start(TOKEN).await;
    let wrong = HetznerCloud::new(fake.base_url(), "wrong-token").unwrap();
    let err = wrong.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    let err = wrong.create_server(&cx22("host-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(fake.servers().is_empty());
}

#[tokio::test]
async fn cloud_no_capacity() {
    let (fake, client) = cloud().await;
    fake.set_capacity("fsn1", false);
    let err = client.create_server(&cx22("host-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NoCapacity(_)), "{err:?}");
    assert!(err.to_string().contains("resource_unavailable"), "{err}");
    // Elsewhere there is room.
    let elsewhere = spec("host-1", &[("server_type", "cx22"), ("location", "nbg1")]);
    client.create_server(&elsewhere).await.unwrap();
}

#[tokio::test]
async fn cloud_server_limit_is_quota() {
    let (fake, client) = cloud().await;
    fake.set_server_limit(1);
    client.create_server(&cx22("host-1")).await.unwrap();
    let err = client.create_server(&cx22("host-2")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Quota(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(fake.servers().len(), 1);
}

#[tokio::test]
async fn cloud_unknown_server_type_is_invalid_profile() {
    let (fake, client) = cloud().await;
    let err = client
        .create_server(&spec("host-1", &[("server_type", "cx999")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
    assert!(err.to_string().contains("server_type"), "{err}");
    let err = client
        .create_server(&spec("host-1", &[("location", "fsn1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
    assert!(fake.servers().is_empty());
}

#[tokio::test]
async fn cloud_server_error_is_retryable_unavailable() {
    let (fake, client) = cloud().await;
    fake.fail_next(1, 500, "service_error");
    let err = client.create_server(&cx22("host-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    // The retry succeeds.
    client.create_server(&cx22("host-1")).await.unwrap();
}

#[tokio::test]
async fn cloud_rate_limit_is_retryable() {
    let (fake, client) = cloud().await;
    fake.fail_next(1, 429, "rate_limit_exceeded");
    let err = client.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn cloud_unreachable_base_url() {
    let client = HetznerCloud::new(closed_port_url("/v1/").await, TOKEN).unwrap();
    let err = client.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[tokio::test]
async fn cloud_availability_lists_datacenters() {
    let (fake, client) = cloud().await;
    fake.set_capacity("hel1", false);
    fake.set_available("nbg1-dc3", "cx22", false);

    let mut found = client.availability("cx22").await.unwrap();
    found.sort();
    let expected = vec![
        ("fsn1-dc14".to_string(), "fsn1".to_string(), true),
        ("hel1-dc2".to_string(), "hel1".to_string(), false),
        ("nbg1-dc3".to_string(), "nbg1".to_string(), false),
    ];
    assert_eq!(found, expected);
    let cx32 = client.availability("cx32").await.unwrap();
    assert!(
        cx32.contains(&("nbg1-dc3".into(), "nbg1".into(), true)),
        "{cx32:?}"
    );

    let err = client.availability("cx999").await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
}

// Hetzner Robot

async fn robot() -> (FakeHetznerRobot, HetznerRobot) {
    let fake = FakeHetznerRobot::start(USER, PASSWORD).await;
    let client = HetznerRobot::new(fake.base_url(), USER, PASSWORD).unwrap();
    (fake, client)
}

fn ex44(name: &str) -> CreateServer {
    spec(name, &[("product", "EX44"), ("location", "FSN1")])
}

/// Orders and waits for delivery; returns the delivered server.
async fn delivered(client: &HetznerRobot, name: &str) -> Server {
    let order = client.create_server(&ex44(name)).await.unwrap();
    eventually(&format!("delivery of {}", order.id), || async {
        let server = client.server(&order.id).await.unwrap().unwrap();
        (server.status == ServerStatus::Running).then_some(server)
    })
    .await
}

#[tokio::test]
async fn robot_order_is_delivered() {
    let (fake, client) = robot().await;
    client.test_connection().await.unwrap();
    let order = client.create_server(&ex44("dedi-1")).await.unwrap();
    assert!(order.id.starts_with(ORDER_PREFIX), "{order:?}");
    assert_eq!(
        (order.name.as_str(), &order.status),
        ("dedi-1", &ServerStatus::Creating)
    );
    let orders = fake.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        (orders[0].product.as_str(), orders[0].location.as_str()),
        ("EX44", "FSN1")
    );

    let server = delivered(&client, "dedi-1").await;
    assert!(!server.id.starts_with(ORDER_PREFIX), "{server:?}");
    assert_eq!(server.name, "dedi-1");
    assert!(server.ipv4.is_some(), "{server:?}");
    let stored = fake.servers();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].number.to_string(), stored[0].name.as_str()),
        (server.id.clone(), "dedi-1")
    );
    assert_eq!(stored[0].dc, "FSN1-DC14");
}

#[tokio::test]
async fn robot_create_twice_orders_once() {
    let (fake, client) = robot().await;
    let first = client.create_server(&ex44("dedi-1")).await.unwrap();
    // While the order is in process, and from another client of the same
    // account.
    let again = HetznerRobot::new(fake.base_url(), USER, PASSWORD).unwrap();
    let second = again.create_server(&ex44("dedi-1")).await.unwrap();
    assert_eq!(first.id, second.id);

    // Once delivered, by the server's name.
    let server = delivered(&client, "dedi-1").await;
    let third = client.create_server(&ex44("dedi-1")).await.unwrap();
    assert_eq!(third.id, server.id);
    assert_eq!(fake.orders().len(), 1);
    assert_eq!(fake.servers().len(), 1);
}

#[tokio::test]
async fn robot_server_lookup() {
    let (_fake, client) = robot().await;
    let server = delivered(&client, "dedi-1").await;
    let found = client.server(&server.id).await.unwrap().unwrap();
    assert_eq!(found, server);
    let by_name = client.find_by_name("dedi-1").await.unwrap().unwrap();
    assert_eq!(by_name.id, server.id);
    assert_eq!(client.find_by_name("dedi-2").await.unwrap(), None);
    assert_eq!(client.server("1").await.unwrap(), None);
    assert_eq!(client.server("tx-B20990101-1-1").await.unwrap(), None);
    assert_eq!(client.server("not-an-id").await.unwrap(), None);
}

#[tokio::test]
async fn robot_delete_twice_is_fine() {
    let (fake, client) = robot().await;
    let server = delivered(&client, "dedi-1").await;
    client.delete_server(&server.id).await.unwrap();
    // Cancelled but still listed: a second cancellation is refused as a
    // conflict, which is the outcome wanted.
    client.delete_server(&server.id).await.unwrap();
    let cancelled = client.server(&server.id).await.unwrap();
    assert!(
        cancelled
            .as_ref()
            .is_none_or(|s| s.status == ServerStatus::Other("cancelled".into())),
        "{cancelled:?}"
    );
    assert_eq!(client.find_by_name("dedi-1").await.unwrap(), None);
    eventually("the cancelled server leaving", || async {
        client
            .server(&server.id)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    client.delete_server(&server.id).await.unwrap();
    assert!(fake.servers().is_empty());
}

#[tokio::test]
async fn robot_delete_of_a_pending_order_waits_for_delivery() {
    let (_fake, client) = robot().await;
    let order = client.create_server(&ex44("dedi-1")).await.unwrap();
    let err = client.delete_server(&order.id).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    // Once delivered, the order's id cancels the server it became.
    let server = delivered(&client, "dedi-1").await;
    client.delete_server(&order.id).await.unwrap();
    let cancelled = client.server(&server.id).await.unwrap();
    assert!(
        cancelled
            .as_ref()
            .is_none_or(|s| s.status != ServerStatus::Running),
        "{cancelled:?}"
    );
}

#[tokio::test]
async fn robot_power_presses_the_buttons() {
    let (fake, client) = robot().await;
    let server = delivered(&client, "dedi-1").await;
    // Robot reports no power state, so the fake's record is the witness.
    let power = |fake: &FakeHetznerRobot| {
        let s = fake.servers().remove(0);
        (s.powered_on, s.power_presses, s.resets)
    };
    assert_eq!(power(&fake), (true, 0, 0));
    client.power(&server.id, PowerAction::Off).await.unwrap();
    assert_eq!(power(&fake), (false, 1, 0));
    client.power(&server.id, PowerAction::On).await.unwrap();
    assert_eq!(power(&fake), (true, 2, 0));
    client.power(&server.id, PowerAction::Reset).await.unwrap();
    assert_eq!(power(&fake), (true, 2, 1));

    let err = client.power("1", PowerAction::Reset).await.unwrap_err();
    assert!(matches!(err, ProviderError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn robot_wrong_password_is_unauthorized() {
    let (fake, _client) = robot().await;
    let wrong = HetznerRobot::new(fake.base_url(), USER, "wrong-password").unwrap();
    let err = wrong.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    let err = wrong.create_server(&ex44("dedi-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(fake.orders().is_empty());
}

#[tokio::test]
async fn robot_out_of_stock_is_no_capacity() {
    let (fake, client) = robot().await;
    fake.set_stock("EX44", 0);
    let err = client.create_server(&ex44("dedi-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NoCapacity(_)), "{err:?}");
    assert!(err.to_string().contains("PRODUCT_NOT_AVAILABLE"), "{err}");
    assert!(fake.orders().is_empty());
}

#[tokio::test]
async fn robot_order_limit_is_quota() {
    let (fake, client) = robot().await;
    fake.set_order_limit(1);
    client.create_server(&ex44("dedi-1")).await.unwrap();
    let err = client.create_server(&ex44("dedi-2")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Quota(_)), "{err:?}");
    assert_eq!(fake.orders().len(), 1);
}

#[tokio::test]
async fn robot_unknown_product_is_invalid_profile() {
    let (fake, client) = robot().await;
    let err = client
        .create_server(&spec("dedi-1", &[("product", "ZZ99")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
    assert!(err.to_string().contains("product_id"), "{err}");
    let err = client
        .create_server(&spec(
            "dedi-1",
            &[("product", "AX52"), ("location", "HEL1")],
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
    let err = client
        .create_server(&spec("dedi-1", &[("location", "FSN1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
    assert!(fake.orders().is_empty());
}

#[tokio::test]
async fn robot_server_error_is_retryable_unavailable() {
    let (fake, client) = robot().await;
    fake.fail_next(1, 500, "INTERNAL_ERROR");
    let err = client.create_server(&ex44("dedi-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    client.create_server(&ex44("dedi-1")).await.unwrap();
    assert_eq!(fake.orders().len(), 1);
}

#[tokio::test]
async fn robot_rate_limit_is_retryable() {
    let (fake, client) = robot().await;
    fake.fail_next(1, 403, "RATE_LIMIT_EXCEEDED");
    let err = client.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("200 requests per 3600 s"), "{err}");
}

#[tokio::test]
async fn robot_unreachable_base_url() {
    let client = HetznerRobot::new(closed_port_url("/").await, USER, PASSWORD).unwrap();
    let err = client.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(PASSWORD), "{err}");
}
