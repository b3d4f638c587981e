//! Hosts: ordering checks that write nothing on failure, the order task
//! against the Hetzner Cloud fake (provider errors become host states,
//! deleting deletes the server), agent tokens (wrong ones throttled,
//! revoked ones cut off), heartbeats through the hub, and scaling groups
//! converging one change at a time.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use platform::Error;
use platform::hosts::{self, scaling, tokens};
use platform::tasks::{Engine, EngineConfig};
use platform::tenancy::{organizations, projects};
use protocol::BuildInfo;
use protocol::agent::{AgentMessage, HostFacts};
use protocol::ids::{HostId, WorkspaceId};
use protocol::views::{
    HostState, NewComputeProfile, NewComputeProvider, NewHost, NewScalingGroup, ProviderKind,
    Verification,
};
use sqlx::PgPool;
use support::{actor, operator, platform};
use tokio_util::sync::CancellationToken;

struct Estate {
    portal: platform::Platform,
    op: platform::authz::Actor,
    alice: platform::authz::Actor,
    workspace: WorkspaceId,
    profile: protocol::ids::ComputeProfileId,
    fake: fakes::hetzner_cloud::FakeHetznerCloud,
    stop: CancellationToken,
    workers: tokio::task::JoinSet<()>,
}

impl Estate {
    async fn stop(mut self) {
        self.stop.cancel();
        while self.workers.join_next().await.is_some() {}
    }
}

async fn estate(db: &PgPool) -> Estate {
    let portal = platform(db);
    let op = operator(db).await;
    let fake = fakes::hetzner_cloud::FakeHetznerCloud::start("hc-token").await;
    platform::compute::providers::create(
        &portal,
        &op,
        &NewComputeProvider {
            name: "hcloud".into(),
            kind: ProviderKind::HetznerCloud,
            settings: BTreeMap::from([("base_url".into(), fake.base_url().to_string())]),
            secret: "hc-token".into(),
        },
    )
    .await
    .unwrap();
    let profile = platform::compute::profiles::create(
        db,
        &op,
        &NewComputeProfile {
            name: "cx22".into(),
            provider_kind: ProviderKind::HetznerCloud,
            cpu: 2,
            ram_mb: 4096,
            disk_gb: 40,
            price_cents: 451,
            parameters: BTreeMap::from([
                ("server_type".into(), "cx22".into()),
                ("location".into(), "fsn1".into()),
                ("image".into(), "debian-12".into()),
            ]),
        },
    )
    .await
    .unwrap();
    let alice = actor(db, "alice@example.com").await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    organizations::set_verification(db, &op, org.id, Verification::Verified, "ok")
        .await
        .unwrap();
    let project = projects::create(db, &alice, org.id, "Web").await.unwrap();
    let workspace = support::workspace(db, &alice, project.id, "metal")
        .await
        .unwrap();
    // Bare-metal workspaces have nothing to provision but the record.
    sqlx::query("UPDATE workspaces SET state = 'active' WHERE id = $1")
        .bind(workspace.id)
        .execute(db)
        .await
        .unwrap();
    let engine = Engine::new(
        db.clone(),
        EngineConfig {
            workers: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(100),
            replica: "test".into(),
        },
    )
    .handler(hosts::order::OrderHandler::new(portal.clone()))
    .handler(hosts::order::DeleteHandler::new(portal.clone()));
    let stop = CancellationToken::new();
    let workers = engine.start(stop.clone());
    Estate {
        portal,
        op,
        alice,
        workspace: workspace.id,
        profile,
        fake,
        stop,
        workers,
    }
}

fn new_host(name: &str, profile: protocol::ids::ComputeProfileId) -> NewHost {
    NewHost {
        hostname: name.into(),
        compute_profile: profile,
        metadata: BTreeMap::new(),
    }
}

async fn host_state(db: &PgPool, host: HostId) -> (HostState, Option<String>) {
    sqlx::query_as("SELECT state, error FROM hosts WHERE id = $1")
        .bind(host)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Waits (bounded) until the host reaches `want`.
async fn until_state(db: &PgPool, host: HostId, want: HostState) -> Option<String> {
    for _ in 0..200 {
        let (state, error) = host_state(db, host).await;
        if state == want {
            return error;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "host never reached {want:?}; it is {:?}",
        host_state(db, host).await
    );
}

/// Plays the agent: connects the host's token to the hub and sends one
/// heartbeat, written as the server's upkeep loop would.
async fn heartbeat(portal: &platform::Platform, host: HostId) {
    let token: protocol::ids::AgentTokenId =
        sqlx::query_scalar("SELECT id FROM agent_tokens WHERE host_id = $1 LIMIT 1")
            .bind(host)
            .fetch_one(portal.db())
            .await
            .unwrap();
    let (link, _outbound) = portal.hub().connect(host, token);
    portal
        .hub()
        .received(
            &link,
            AgentMessage::Heartbeat {
                facts: HostFacts {
                    hostname: "h".into(),
                    ..Default::default()
                },
                build: BuildInfo::new("loopback-agent", "9.9.9"),
            },
        )
        .await;
    portal.hub().flush(portal.db()).await.unwrap();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn bad_orders_name_the_field_and_write_nothing(db: PgPool) {
    let e = estate(&db).await;
    let order = |h: NewHost| {
        let (db, alice, ws) = (db.clone(), e.alice.clone(), e.workspace);
        async move { hosts::order(&db, &alice, ws, &h).await }
    };
    for bad in ["", "Web-1", "-web", "web_1", &"a".repeat(64)] {
        assert!(
            matches!(order(new_host(bad, e.profile)).await, Err(Error::Invalid { field, .. }) if field == "hostname"),
            "{bad:?}"
        );
    }
    let unknown = protocol::ids::ComputeProfileId::new();
    assert!(matches!(
        order(new_host("web-1", unknown)).await,
        Err(Error::Invalid { field, .. }) if field == "compute_profile"
    ));
    sqlx::query("UPDATE organizations SET host_limit = 0")
        .execute(&db)
        .await
        .unwrap();
    let limit = order(new_host("web-1", e.profile)).await.unwrap_err();
    assert!(limit.to_string().contains("limit of 0 hosts"), "{limit}");
    sqlx::query("UPDATE organizations SET host_limit = 20")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE compute_profiles SET active = false")
        .execute(&db)
        .await
        .unwrap();
    let inactive = order(new_host("web-1", e.profile)).await.unwrap_err();
    assert!(
        inactive.to_string().contains("no longer offered"),
        "{inactive}"
    );
    // Someone from another organization cannot even see the workspace.
    let mallory = actor(&db, "mallory@example.com").await;
    assert!(matches!(
        hosts::order(&db, &mallory, e.workspace, &new_host("web-1", e.profile)).await,
        Err(Error::NotFound)
    ));
    let written: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM agent_tokens),
             (SELECT count(*) FROM tasks WHERE kind = 'host.order')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(written, (0, 0, 0));
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn an_order_provisions_waits_for_the_agent_and_deleting_deletes_the_server(db: PgPool) {
    let e = estate(&db).await;
    // A provider hiccup is retried, not fatal.
    e.fake.fail_next(1, 503, "unavailable");
    let ordered = hosts::order(&db, &e.alice, e.workspace, &new_host("web-1", e.profile))
        .await
        .unwrap();
    until_state(&db, ordered.host, HostState::Bootstrapping).await;
    let servers = e.fake.servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].name, "web-1");
    // The agent's token reached the server in its cloud-init user data.
    assert!(
        servers[0].user_data.contains("lba_"),
        "{}",
        servers[0].user_data
    );

    heartbeat(&e.portal, ordered.host).await;
    until_state(&db, ordered.host, HostState::Running).await;
    let view = hosts::get(&db, &e.alice, ordered.host).await.unwrap();
    assert!(view.online);
    assert_eq!(view.agent_version.as_deref(), Some("9.9.9"));

    hosts::delete(&db, &e.alice, ordered.host).await.unwrap();
    for _ in 0..200 {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM hosts")
            .fetch_one(&db)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        e.fake.servers().is_empty(),
        "the server is deleted at the provider"
    );
    let actions = support::audit_actions(&db).await;
    assert!(actions.contains(&"host.create".to_string()));
    assert!(actions.contains(&"host.delete".to_string()));
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn provider_errors_end_in_a_host_error_with_the_providers_message(db: PgPool) {
    let e = estate(&db).await;

    e.fake.set_capacity("fsn1", false);
    let no_capacity = hosts::order(&db, &e.alice, e.workspace, &new_host("cap-1", e.profile))
        .await
        .unwrap();
    let error = until_state(&db, no_capacity.host, HostState::Error).await;
    assert!(error.unwrap_or_default().contains("no capacity"));
    e.fake.set_capacity("fsn1", true);

    e.fake.set_server_limit(0);
    let quota = hosts::order(&db, &e.alice, e.workspace, &new_host("quota-1", e.profile))
        .await
        .unwrap();
    let error = until_state(&db, quota.host, HostState::Error).await;
    assert!(error.unwrap_or_default().contains("limit"), "quota");
    e.fake.set_server_limit(100);

    let bad_profile = platform::compute::profiles::create(
        &db,
        &e.op,
        &NewComputeProfile {
            name: "no-such-type".into(),
            provider_kind: ProviderKind::HetznerCloud,
            cpu: 2,
            ram_mb: 4096,
            disk_gb: 40,
            price_cents: 1,
            parameters: BTreeMap::from([
                ("server_type".into(), "cx999".into()),
                ("location".into(), "fsn1".into()),
            ]),
        },
    )
    .await
    .unwrap();
    let invalid = hosts::order(&db, &e.alice, e.workspace, &new_host("bad-1", bad_profile))
        .await
        .unwrap();
    let error = until_state(&db, invalid.host, HostState::Error).await;
    assert!(
        error
            .unwrap_or_default()
            .contains("does not fit this provider"),
        "invalid profile"
    );
    assert!(e.fake.servers().is_empty());
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn wrong_tokens_are_refused_and_throttled_revoked_ones_cut_off(db: PgPool) {
    let e = estate(&db).await;
    let ordered = hosts::order(&db, &e.alice, e.workspace, &new_host("web-1", e.profile))
        .await
        .unwrap();
    until_state(&db, ordered.host, HostState::Bootstrapping).await;
    let ip = Some("127.0.0.9".parse().unwrap());
    let mut throttled = false;
    for _ in 0..15 {
        match tokens::authenticate(&db, "lba_wrong", ip).await {
            Err(Error::Unauthenticated) => {}
            Err(Error::Throttled { .. }) => {
                throttled = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(throttled, "wrong tokens from one address get locked out");

    // The real token, from the user data the provider got.
    let user_data = e.fake.servers()[0].user_data.clone();
    let token = user_data
        .split_whitespace()
        .find(|w| w.starts_with("lba_"))
        .unwrap()
        .to_string();
    let other_ip = Some("127.0.0.10".parse().unwrap());
    let identity = tokens::authenticate(&db, &token, other_ip).await.unwrap();
    assert_eq!(identity.host, ordered.host);
    let (link, _out) = e.portal.hub().connect(identity.host, identity.token);

    tokens::revoke(&db, &e.alice, ordered.host, identity.token)
        .await
        .unwrap();
    let invalid = tokens::invalid_among(&db, &e.portal.hub().tokens())
        .await
        .unwrap();
    assert_eq!(e.portal.hub().revoke(&invalid), 1);
    assert!(link.closed().is_cancelled(), "the agent's link is closed");
    assert!(matches!(
        tokens::authenticate(&db, &token, other_ip).await,
        Err(Error::Unauthenticated)
    ));
    // Another organization's member cannot revoke (or see) the token.
    let mallory = actor(&db, "mallory@example.com").await;
    assert!(matches!(
        tokens::revoke(&db, &mallory, ordered.host, identity.token).await,
        Err(Error::NotFound)
    ));
    e.stop().await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_scaling_group_converges_up_and_down_one_change_at_a_time(db: PgPool) {
    let e = estate(&db).await;
    let group = scaling::create(
        &db,
        &e.alice,
        e.workspace,
        &NewScalingGroup {
            name: "workers".into(),
            compute_profile: e.profile,
            desired: 2,
        },
    )
    .await
    .unwrap();
    let group_hosts = || async {
        sqlx::query_as::<_, (HostId, HostState)>(
            "SELECT id, state FROM hosts WHERE scaling_group_id = $1 ORDER BY created_at",
        )
        .bind(group)
        .fetch_all(&db)
        .await
        .unwrap()
    };
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 50, "the group never converged up");
        let changes = scaling::converge(&e.portal).await.unwrap();
        let hosts_now = group_hosts().await;
        let in_flight = hosts_now
            .iter()
            .filter(|(_, s)| *s != HostState::Running)
            .count();
        assert!(in_flight <= 1, "never more than one change in flight");
        if matches!(changes[0].1, scaling::Change::Converged) {
            break;
        }
        // Let ordered hosts' agents come up.
        for (host, state) in hosts_now {
            if state == HostState::Bootstrapping {
                heartbeat(&e.portal, host).await;
                until_state(&db, host, HostState::Running).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(group_hosts().await.len(), 2);
    assert_eq!(e.fake.servers().len(), 2);

    scaling::set_desired(&db, &e.alice, group, 0).await.unwrap();
    let mut passes = 0;
    loop {
        passes += 1;
        assert!(passes < 100, "the group never converged down");
        let changes = scaling::converge(&e.portal).await.unwrap();
        let deleting = group_hosts()
            .await
            .iter()
            .filter(|(_, s)| *s == HostState::Deleting)
            .count();
        assert!(deleting <= 1, "one deletion at a time");
        if matches!(changes[0].1, scaling::Change::Converged) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(group_hosts().await.is_empty());
    assert!(e.fake.servers().is_empty());
    scaling::delete(&db, &e.alice, group).await.unwrap();
    e.stop().await;
}
