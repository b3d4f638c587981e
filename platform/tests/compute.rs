//! Compute providers and profiles: credentials checked by a test connection
//! against the providers' fakes before anything is saved, stored sealed;
//! profiles validated; organizations' prices; live Hetzner availability.

mod support;

use std::collections::BTreeMap;

use platform::Error;
use platform::compute::{profiles, providers};
use platform::tenancy::{organizations, projects};
use protocol::views::{NewComputeProfile, NewComputeProvider, ProviderKind, Verification};
use sqlx::PgPool;
use support::{actor, operator, platform};

fn hetzner(name: &str, base: &url::Url, token: &str) -> NewComputeProvider {
    NewComputeProvider {
        name: name.into(),
        kind: ProviderKind::HetznerCloud,
        settings: BTreeMap::from([("base_url".to_string(), base.to_string())]),
        secret: token.into(),
    }
}

fn profile(name: &str, kind: ProviderKind, parameters: &[(&str, &str)]) -> NewComputeProfile {
    NewComputeProfile {
        name: name.into(),
        provider_kind: kind,
        cpu: 2,
        ram_mb: 4096,
        disk_gb: 40,
        price_cents: 599,
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn providers_are_saved_only_after_a_working_test_connection(db: PgPool) {
    let portal = platform(&db);
    let op = operator(&db).await;
    let fake = fakes::hetzner_cloud::FakeHetznerCloud::start("good-token").await;

    let e = providers::create(
        &portal,
        &op,
        &hetzner("hcloud", &fake.base_url(), "bad-token"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, message } if field == "secret" && message.contains("credentials")),
        "{e:?}"
    );
    let mut unknown = hetzner("hcloud", &fake.base_url(), "good-token");
    unknown.settings.insert("datacenter_id".into(), "x".into());
    assert!(matches!(
        providers::create(&portal, &op, &unknown).await,
        Err(Error::Invalid { field, .. }) if field == "settings"
    ));
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM compute_providers")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 0, "nothing saved");

    let id = providers::create(
        &portal,
        &op,
        &hetzner("hcloud", &fake.base_url(), "good-token"),
    )
    .await
    .unwrap();
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT credentials FROM compute_providers WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        !sealed.windows(10).any(|w| w == b"good-token"),
        "the token is sealed"
    );
    let listed = providers::list(&db, &op).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].check_error.is_none());
    assert_eq!(providers::check(&portal, &op, id).await.unwrap(), None);

    // Other provider kinds go through their own clients.
    let ionos =
        fakes::ionos::FakeIonos::start("ionos-token", "3f0a36b2-5c8a-4a39-9c5e-7f1a7b2d4e10").await;
    providers::create(
        &portal,
        &op,
        &NewComputeProvider {
            name: "ionos".into(),
            kind: ProviderKind::IonosDcd,
            settings: BTreeMap::from([
                ("base_url".to_string(), ionos.base_url().to_string()),
                (
                    "datacenter_id".to_string(),
                    "3f0a36b2-5c8a-4a39-9c5e-7f1a7b2d4e10".to_string(),
                ),
            ]),
            secret: "ionos-token".into(),
        },
    )
    .await
    .unwrap();
    let robot = fakes::hetzner_robot::FakeHetznerRobot::start("robot-user", "robot-pass").await;
    providers::create(
        &portal,
        &op,
        &NewComputeProvider {
            name: "robot".into(),
            kind: ProviderKind::HetznerRobot,
            settings: BTreeMap::from([
                ("base_url".to_string(), robot.base_url().to_string()),
                ("user".to_string(), "robot-user".to_string()),
            ]),
            secret: "robot-pass".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(count().await, 3);

    // Only operators.
    let alice = actor(&db, "alice@example.com").await;
    assert!(matches!(
        providers::list(&db, &alice).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        providers::create(
            &portal,
            &alice,
            &hetzner("mine", &fake.base_url(), "good-token")
        )
        .await,
        Err(Error::NotFound)
    ));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn profiles_are_validated_priced_per_organization_and_show_availability(db: PgPool) {
    let portal = platform(&db);
    let op = operator(&db).await;

    let e = profiles::create(&db, &op, &profile("cx22", ProviderKind::HetznerCloud, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "parameters"),
        "{e:?}"
    );
    let mut tiny = profile("tiny", ProviderKind::Local, &[]);
    tiny.cpu = 0;
    assert!(matches!(
        profiles::create(&db, &op, &tiny).await,
        Err(Error::Invalid { field, .. }) if field == "cpu"
    ));
    let cx22 = profiles::create(
        &db,
        &op,
        &profile(
            "cx22",
            ProviderKind::HetznerCloud,
            &[("server_type", "cx22")],
        ),
    )
    .await
    .unwrap();
    let local = profiles::create(&db, &op, &profile("local-small", ProviderKind::Local, &[]))
        .await
        .unwrap();

    // Alice's workspace sees the active profiles at her organization's price.
    let alice = actor(&db, "alice@example.com").await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();
    let ws = support::workspace(&db, &alice, project.id, "metal")
        .await
        .unwrap();
    profiles::set_price(&db, &op, org.id, cx22, Some(450))
        .await
        .unwrap();
    profiles::set_active(&db, &op, local, false).await.unwrap();
    let offered = profiles::for_workspace(&db, &alice, ws.id).await.unwrap();
    assert_eq!(offered.len(), 1);
    assert_eq!(
        (offered[0].name.as_str(), offered[0].price_cents),
        ("cx22", 450)
    );
    let mallory = actor(&db, "mallory@example.com").await;
    assert!(matches!(
        profiles::for_workspace(&db, &mallory, ws.id).await,
        Err(Error::NotFound)
    ));

    // Live availability, from the active Hetzner Cloud provider.
    assert!(matches!(
        profiles::availability(&portal, &op, cx22).await,
        Err(Error::Conflict(_))
    ));
    let fake = fakes::hetzner_cloud::FakeHetznerCloud::start("token").await;
    providers::create(&portal, &op, &hetzner("hcloud", &fake.base_url(), "token"))
        .await
        .unwrap();
    fake.set_available("nbg1-dc3", "cx22", false);
    let found = profiles::availability(&portal, &op, cx22).await.unwrap();
    assert!(
        found
            .iter()
            .any(|a| a.datacenter == "nbg1-dc3" && !a.available),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|a| a.datacenter == "fsn1-dc14" && a.available),
        "{found:?}"
    );
}
