//! The IONOS compute client against a local fake of Cloud API v6; no
//! database needed.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use fakes::ionos::FakeIonos;
use platform::providers::ionos::{Ionos, IonosAuth};
use platform::providers::{CreateServer, PowerAction, ProviderError, Server, ServerStatus};
use url::Url;

const TOKEN: &str = "ionos-test-token-0123456789";
const DC: &str = "3f2a1c4e-8b7d-4e6f-9a0b-1c2d3e4f5a6b";

async fn fake() -> (FakeIonos, Ionos) {
    let fake = FakeIonos::start(TOKEN, DC).await;
    let ionos = client(&fake, IonosAuth::Token(TOKEN.into()));
    (fake, ionos)
}

fn client(fake: &FakeIonos, auth: IonosAuth) -> Ionos {
    Ionos::new(fake.base_url(), auth, DC).unwrap()
}

fn spec(name: &str, parameters: &[(&str, &str)]) -> CreateServer {
    CreateServer {
        name: name.into(),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        user_data: "#cloud-config\nruncmd: [echo hello]\n".into(),
        labels: BTreeMap::new(),
    }
}

fn small(name: &str) -> CreateServer {
    spec(
        name,
        &[
            ("cores", "2"),
            ("ram_mb", "4096"),
            ("disk_gb", "30"),
            ("cpu_family", "INTEL_SKYLAKE"),
            ("image_alias", "debian:12"),
            ("lan", "1"),
        ],
    )
}

/// Polls until the server reports `status`, for at most two seconds.
async fn wait_for(ionos: &Ionos, id: &str, status: ServerStatus) -> Server {
    for _ in 0..100 {
        let server = ionos.server(id).await.unwrap().expect("the server exists");
        if server.status == status {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server {id} never became {status:?}");
}

#[tokio::test]
async fn test_connection_checks_credentials_and_datacenter() {
    let (fake, ionos) = fake().await;
    ionos.test_connection().await.unwrap();

    let other = Ionos::new(
        fake.base_url(),
        IonosAuth::Token(TOKEN.into()),
        "00000000-0000-4000-8000-000000000000",
    )
    .unwrap();
    match other.test_connection().await {
        Err(ProviderError::Rejected(message)) => {
            assert!(
                message.contains("00000000-0000-4000-8000-000000000000"),
                "{message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn create_orders_a_server_that_becomes_running() {
    let (fake, ionos) = fake().await;
    let created = ionos.create_server(&small("host-1")).await.unwrap();
    assert_eq!(created.name, "host-1");
    assert_eq!(created.status, ServerStatus::Creating);

    let running = wait_for(&ionos, &created.id, ServerStatus::Running).await;
    assert_eq!(running.name, "host-1");

    let servers = fake.servers();
    assert_eq!(servers.len(), 1);
    let server = &servers[0];
    assert_eq!(server.id, created.id);
    assert_eq!((server.cores, server.ram_mb), (2, 4096));
    assert_eq!(server.cpu_family, "INTEL_SKYLAKE");
    assert_eq!(server.volume.size_gb, 30);
    assert_eq!(server.volume.r#type, "SSD");
    assert_eq!(server.volume.image_alias.as_deref(), Some("debian:12"));
    assert!(server.volume.has_image_password);
    let user_data = base64::engine::general_purpose::STANDARD
        .decode(server.volume.user_data.as_deref().unwrap())
        .unwrap();
    assert_eq!(user_data, b"#cloud-config\nruncmd: [echo hello]\n");
}

#[tokio::test]
async fn create_twice_orders_one_server() {
    let (fake, ionos) = fake().await;
    let first = ionos.create_server(&small("host-1")).await.unwrap();
    let second = ionos.create_server(&small("host-1")).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(fake.servers().len(), 1);

    // Another name is another server.
    let other = ionos.create_server(&small("host-2")).await.unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(fake.servers().len(), 2);
}

#[tokio::test]
async fn lookup_reports_the_nic_address() {
    let (fake, ionos) = fake().await;
    let created = ionos.create_server(&small("host-1")).await.unwrap();
    let running = wait_for(&ionos, &created.id, ServerStatus::Running).await;

    let expected = fake.servers()[0].ipv4.expect("the NIC got an address");
    assert_eq!(running.ipv4, Some(expected));
    assert_eq!(running.ipv6, None);

    assert_eq!(
        ionos
            .server("00000000-0000-4000-8000-00000000ffff")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn delete_twice_is_fine() {
    let (fake, ionos) = fake().await;
    let created = ionos.create_server(&small("host-1")).await.unwrap();
    ionos.delete_server(&created.id).await.unwrap();
    assert!(fake.servers().is_empty());
    ionos.delete_server(&created.id).await.unwrap();
    assert_eq!(ionos.server(&created.id).await.unwrap(), None);
}

#[tokio::test]
async fn power_stop_and_start() {
    let (fake, ionos) = fake().await;
    let created = ionos.create_server(&small("host-1")).await.unwrap();
    wait_for(&ionos, &created.id, ServerStatus::Running).await;

    ionos.power(&created.id, PowerAction::Off).await.unwrap();
    wait_for(&ionos, &created.id, ServerStatus::Off).await;
    assert_eq!(fake.servers()[0].vm_state, "SHUTOFF");

    ionos.power(&created.id, PowerAction::On).await.unwrap();
    wait_for(&ionos, &created.id, ServerStatus::Running).await;

    ionos.power(&created.id, PowerAction::Reset).await.unwrap();
    wait_for(&ionos, &created.id, ServerStatus::Running).await;
    assert_eq!(fake.servers()[0].vm_state, "RUNNING");
}

#[tokio::test]
async fn wrong_token_is_unauthorized() {
    let (fake, _) = fake().await;
    let ionos = client(&fake, IonosAuth::Token("not-the-token".into()));
    let err = ionos.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    let err = ionos.create_server(&small("host-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(fake.servers().is_empty());
}

#[tokio::test]
async fn no_capacity_is_reported_as_such() {
    let (fake, ionos) = fake().await;
    fake.set_capacity(false);
    let err = ionos.create_server(&small("host-1")).await.unwrap_err();
    match &err {
        ProviderError::NoCapacity(message) => {
            assert!(message.contains("Insufficient resources"), "{message}");
        }
        other => panic!("expected NoCapacity, got {other:?}"),
    }
    assert!(fake.servers().is_empty());

    fake.set_capacity(true);
    ionos.create_server(&small("host-1")).await.unwrap();
}

#[tokio::test]
async fn core_limit_is_a_quota() {
    let (fake, ionos) = fake().await;
    fake.set_core_limit(3);
    ionos.create_server(&small("host-1")).await.unwrap();
    let err = ionos.create_server(&small("host-2")).await.unwrap_err();
    match &err {
        ProviderError::Quota(message) => {
            assert!(message.contains("Resource limit"), "{message}");
        }
        other => panic!("expected Quota, got {other:?}"),
    }
    assert_eq!(fake.servers().len(), 1);
}

#[tokio::test]
async fn invalid_profiles_are_refused() {
    let (fake, ionos) = fake().await;
    let family = spec(
        "host-1",
        &[
            ("cores", "2"),
            ("ram_mb", "4096"),
            ("cpu_family", "PENTIUM_II"),
        ],
    );
    let err = ionos.create_server(&family).await.unwrap_err();
    match &err {
        ProviderError::InvalidProfile(message) => {
            assert!(message.contains("PENTIUM_II"), "{message}");
        }
        other => panic!("expected InvalidProfile, got {other:?}"),
    }

    let cores = spec("host-1", &[("cores", "500"), ("ram_mb", "4096")]);
    let err = ionos.create_server(&cores).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");

    // Caught before anything is sent.
    let missing = spec("host-1", &[("cores", "2")]);
    let err = ionos.create_server(&missing).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidProfile(_)), "{err:?}");
    assert!(fake.servers().is_empty());
}

#[tokio::test]
async fn server_errors_are_unavailable_and_retryable() {
    let (fake, ionos) = fake().await;
    fake.fail_next(1);
    let err = ionos.create_server(&small("host-1")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("unexpected error"), "{err}");

    ionos.create_server(&small("host-1")).await.unwrap();
    assert_eq!(fake.servers().len(), 1);
}

#[tokio::test]
async fn unreachable_base_is_unreachable() {
    // Bound and dropped: nothing listens there any more.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = Url::parse(&format!("http://127.0.0.1:{port}/cloudapi/v6/")).unwrap();
    let ionos = Ionos::new(base, IonosAuth::Token(TOKEN.into()), DC).unwrap();
    let err = ionos.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn basic_auth_works_too() {
    let (fake, _) = fake().await;
    fake.allow_basic("ops@example.com", "correct horse");
    let ionos = client(
        &fake,
        IonosAuth::Basic {
            user: "ops@example.com".into(),
            password: "correct horse".into(),
        },
    );
    ionos.test_connection().await.unwrap();
    let created = ionos.create_server(&small("host-1")).await.unwrap();
    wait_for(&ionos, &created.id, ServerStatus::Running).await;

    let wrong = client(
        &fake,
        IonosAuth::Basic {
            user: "ops@example.com".into(),
            password: "wrong".into(),
        },
    );
    let err = wrong.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
}
