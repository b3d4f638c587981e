//! Load balancers as a product object: validation that names the field and
//! writes nothing, tenants and scopes kept apart (accounts and workspace
//! API keys), the backend chosen at creation, and the reconciler applying,
//! correcting drift (local and Hetzner Cloud) and bringing local balancers
//! back on their addresses after a restart.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use platform::Error;
use platform::authz::{Actor, BuiltinRole};
use platform::loadbalancers::local::LocalBalancers;
use platform::loadbalancers::reconcile::{self, Outcome};
use platform::loadbalancers::{self, Scope, cluster_api};
use platform::tenancy::members::{self, RoleSpec};
use platform::tenancy::{organizations, projects};
use protocol::ids::{HostId, LoadBalancerId, ProjectId, WorkspaceId};
use protocol::views::load_balancers::{
    HealthCheck, HealthProtocol, Listener, ListenerProtocol, LoadBalancerState, NewLoadBalancer,
    ServiceLoadBalancer, TargetRef,
};
use protocol::views::{NewComputeProvider, ProviderKind, Verification};
use sqlx::PgPool;
use support::{actor, operator, platform, public_url};

struct Estate {
    portal: platform::Platform,
    alice: Actor,
    project: ProjectId,
    /// Two workspaces of Alice's project, with their API keys.
    web: (WorkspaceId, String),
    db_ws: (WorkspaceId, String),
    /// A host in each.
    web_host: HostId,
    db_host: HostId,
}

/// A verified organization of Alice's with one project, two workspaces and
/// a host in each; the local backend on `addresses` unless `local` is off.
async fn estate(db: &PgPool, addresses: Option<RangeInclusive<Ipv4Addr>>) -> Estate {
    let portal = platform(db);
    if let Some(addresses) = addresses {
        portal.enable_local_balancers(LocalBalancers::new(addresses));
    }
    let op = operator(db).await;
    let alice = actor(db, "alice@example.com").await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    organizations::set_verification(db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(db, &alice, org.id, "Web")
        .await
        .unwrap()
        .id;
    let mut workspaces = Vec::new();
    for name in ["web", "data"] {
        let created = platform::workspaces::create(
            &portal,
            &alice,
            project,
            &protocol::views::NewWorkspace::baremetal(name),
        )
        .await
        .unwrap();
        workspaces.push((created.workspace.id, created.api_key));
    }
    let web_host = host(db, workspaces[0].0, "web-1", "127.0.1.201").await;
    let db_host = host(db, workspaces[1].0, "db-1", "127.0.1.202").await;
    let mut workspaces = workspaces.into_iter();
    Estate {
        portal,
        alice,
        project,
        web: workspaces.next().unwrap(),
        db_ws: workspaces.next().unwrap(),
        web_host,
        db_host,
    }
}

/// A running host, written directly (ordering is tested elsewhere).
async fn host(db: &PgPool, workspace: WorkspaceId, name: &str, ip: &str) -> HostId {
    let id = HostId::new();
    sqlx::query(
        "WITH profile AS (
             INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents)
             VALUES (gen_random_uuid(), $3 || '-profile', 'local', 1, 512, 10, 0) RETURNING id)
         INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, state, online, public_ipv4)
         SELECT $1, p.organization_id, $2, $3, profile.id, 'running', true, $4
         FROM profile, workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $2",
    )
    .bind(id)
    .bind(workspace)
    .bind(name)
    .bind(ip)
    .execute(db)
    .await
    .unwrap();
    id
}

fn listener(protocol: ListenerProtocol, port: u16, target_port: u16) -> Listener {
    Listener {
        protocol,
        port,
        target_port,
    }
}

/// A free port on `address`.
fn free_port(address: Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((address, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn new_balancer(name: &str, port: u16, targets: Vec<TargetRef>) -> NewLoadBalancer {
    NewLoadBalancer {
        name: name.into(),
        listeners: vec![listener(ListenerProtocol::Http, port, 8080)],
        targets,
        algorithm: Default::default(),
        health: HealthCheck {
            protocol: HealthProtocol::Http,
            port: None,
            path: "/".into(),
            interval_seconds: 1,
            timeout_seconds: 1,
            healthy_threshold: 1,
            unhealthy_threshold: 2,
        },
    }
}

/// A change that makes a valid load balancer invalid.
type Change = Box<dyn Fn(&mut NewLoadBalancer)>;

fn field_of(e: Error) -> String {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

async fn count(db: &PgPool) -> (i64, i64) {
    let rows = sqlx::query_scalar("SELECT count(*) FROM load_balancers")
        .fetch_one(db)
        .await
        .unwrap();
    let audits =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'loadbalancer.%'")
            .fetch_one(db)
            .await
            .unwrap();
    (rows, audits)
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn invalid_load_balancers_name_the_field_and_write_nothing(db: PgPool) {
    let e = estate(&db, Some(addresses(10))).await;
    let scope = Scope::Workspace(e.web.0);
    let good = new_balancer("front", 8000, vec![TargetRef::Host { host: e.web_host }]);
    let ip = |a: &str| TargetRef::Ip {
        address: a.parse().unwrap(),
    };
    let cases: Vec<(&str, Change)> = vec![
        ("name", Box::new(|n| n.name = "Not A Label".into())),
        ("name", Box::new(|n| n.name = String::new())),
        ("listeners", Box::new(|n| n.listeners.clear())),
        (
            "listeners",
            Box::new(|n| {
                n.listeners = (1..=11)
                    .map(|p| listener(ListenerProtocol::Tcp, p, 80))
                    .collect()
            }),
        ),
        ("listeners[0].port", Box::new(|n| n.listeners[0].port = 0)),
        (
            "listeners[0].target_port",
            Box::new(|n| n.listeners[0].target_port = 0),
        ),
        (
            "listeners[1].port",
            Box::new(|n| {
                n.listeners
                    .push(listener(ListenerProtocol::Tcp, 8000, 9000))
            }),
        ),
        (
            "targets[1].address",
            Box::new(move |n| n.targets.push(ip("224.0.0.1"))),
        ),
        (
            "targets[0].address",
            Box::new(move |n| n.targets = vec![ip("0.0.0.0")]),
        ),
        (
            "targets[1]",
            Box::new(move |n| n.targets = vec![ip("192.0.2.1"), ip("192.0.2.1")]),
        ),
        (
            "health.interval_seconds",
            Box::new(|n| n.health.interval_seconds = 0),
        ),
        (
            "health.interval_seconds",
            Box::new(|n| n.health.interval_seconds = 3601),
        ),
        (
            "health.timeout_seconds",
            Box::new(|n| {
                n.health.interval_seconds = 5;
                n.health.timeout_seconds = 6
            }),
        ),
        (
            "health.timeout_seconds",
            Box::new(|n| n.health.timeout_seconds = 0),
        ),
        (
            "health.healthy_threshold",
            Box::new(|n| n.health.healthy_threshold = 0),
        ),
        (
            "health.unhealthy_threshold",
            Box::new(|n| n.health.unhealthy_threshold = 11),
        ),
        (
            "health.path",
            Box::new(|n| n.health.path = "healthz".into()),
        ),
        ("health.port", Box::new(|n| n.health.port = Some(0))),
    ];
    for (field, change) in &cases {
        let mut new = good.clone();
        change(&mut new);
        let error = loadbalancers::create(&e.portal, &e.alice, scope, &new)
            .await
            .expect_err(field);
        assert_eq!(field_of(error), *field, "{new:?}");
    }
    // A host of another workspace is not a target of this one's.
    let foreign = new_balancer("front", 8000, vec![TargetRef::Host { host: e.db_host }]);
    let error = loadbalancers::create(&e.portal, &e.alice, scope, &foreign)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "targets[0].host");
    assert_eq!(count(&db).await, (0, 0), "nothing was written");

    // Names are unique per project, across its workspaces.
    loadbalancers::create(&e.portal, &e.alice, scope, &good)
        .await
        .unwrap();
    let error = loadbalancers::create(&e.portal, &e.alice, Scope::Workspace(e.db_ws.0), &{
        let mut n = good.clone();
        n.targets.clear();
        n
    })
    .await
    .unwrap_err();
    assert_eq!(field_of(error), "name");
    // An update that fails changes nothing.
    let created = loadbalancers::list(&e.portal, &e.alice, scope)
        .await
        .unwrap()
        .remove(0);
    let mut bad = good.clone();
    bad.listeners[0].port = 0;
    let error = loadbalancers::update(&e.portal, &e.alice, created.id, &bad)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "listeners[0].port");
    let after = loadbalancers::get(&e.portal, &e.alice, created.id)
        .await
        .unwrap();
    assert_eq!(after.listeners, good.listeners);
    assert_eq!(count(&db).await, (1, 1));
    shutdown(&e.portal).await;
}

/// A small, distinct slice of the local pool per test, so tests running
/// at once never share an address.
fn addresses(first: u8) -> RangeInclusive<Ipv4Addr> {
    Ipv4Addr::new(127, 0, 2, first)..=Ipv4Addr::new(127, 0, 2, first + 9)
}

async fn shutdown(portal: &platform::Platform) {
    if let Some(local) = portal.local_balancers() {
        local.shutdown().await;
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn other_tenants_and_viewers_are_refused(db: PgPool) {
    let e = estate(&db, Some(addresses(30))).await;
    let created = loadbalancers::create(
        &e.portal,
        &e.alice,
        Scope::Workspace(e.web.0),
        &new_balancer("front", free_port(Ipv4Addr::new(127, 0, 2, 30)), vec![]),
    )
    .await
    .unwrap();
    let mallory = actor(&db, "mallory@example.com").await;
    let op = operator_of(&db).await;
    let theirs = organizations::create(&db, &mallory, "Mallory")
        .await
        .unwrap();
    organizations::set_verification(&db, &op, theirs.id, Verification::Verified, "")
        .await
        .unwrap();
    let p = &e.portal;
    let update = new_balancer("hacked", 9999, vec![]);
    assert!(matches!(
        loadbalancers::get(p, &mallory, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        loadbalancers::update(p, &mallory, created.id, &update).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        loadbalancers::delete(p, &mallory, created.id).await,
        Err(Error::NotFound)
    ));
    for scope in [Scope::Workspace(e.web.0), Scope::Project(e.project)] {
        assert!(matches!(
            loadbalancers::list(p, &mallory, scope).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            loadbalancers::create(p, &mallory, scope, &update).await,
            Err(Error::NotFound)
        ));
    }
    // A viewer sees, but changes nothing.
    let vic = actor(&db, "vic@example.com").await;
    let org = created.organization;
    let invitation = members::invite(
        &db,
        &e.alice,
        &public_url(),
        org,
        "vic@example.com",
        RoleSpec::Builtin(BuiltinRole::Viewer),
    )
    .await
    .unwrap();
    members::respond(&db, &vic, invitation.id, true)
        .await
        .unwrap();
    assert_eq!(
        loadbalancers::get(p, &vic, created.id).await.unwrap().name,
        "front"
    );
    assert!(matches!(
        loadbalancers::update(p, &vic, created.id, &update).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        loadbalancers::delete(p, &vic, created.id).await,
        Err(Error::Forbidden(_))
    ));
    let still = loadbalancers::get(p, &e.alice, created.id).await.unwrap();
    assert_eq!(still.name, "front");
    assert_ne!(still.state, LoadBalancerState::Deleting);
    shutdown(p).await;
}

async fn operator_of(db: &PgPool) -> Actor {
    let id: protocol::ids::AccountId =
        sqlx::query_scalar("SELECT id FROM accounts WHERE is_operator LIMIT 1")
            .fetch_one(db)
            .await
            .unwrap();
    let mut actor = platform::identity::find(db, id)
        .await
        .unwrap()
        .unwrap()
        .actor(support::meta());
    actor.is_operator = true;
    actor
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn project_balancers_reach_every_workspace_and_workspace_ones_only_theirs(db: PgPool) {
    let e = estate(&db, Some(addresses(50))).await;
    let p = &e.portal;
    let address = Ipv4Addr::new(127, 0, 2, 50);
    let both = vec![
        TargetRef::Host { host: e.web_host },
        TargetRef::Host { host: e.db_host },
    ];
    let project = loadbalancers::create(
        p,
        &e.alice,
        Scope::Project(e.project),
        &new_balancer("shared", free_port(address), both.clone()),
    )
    .await
    .unwrap();
    assert_eq!(project.workspace, None);
    assert_eq!(project.backend, "local");
    assert_eq!(project.targets.len(), 2);
    assert_eq!(project.targets[0].label, "web-1");
    assert_eq!(
        project.targets[1].address,
        Some("127.0.1.202".parse().unwrap())
    );
    assert!(project.address.is_some(), "applied at once: {project:?}");
    assert_eq!(project.state, LoadBalancerState::Active);
    let error = loadbalancers::create(
        p,
        &e.alice,
        Scope::Workspace(e.web.0),
        &new_balancer("web-only", free_port(address), both),
    )
    .await
    .unwrap_err();
    assert_eq!(field_of(error), "targets[1].host");
    let web = loadbalancers::create(
        p,
        &e.alice,
        Scope::Workspace(e.web.0),
        &new_balancer(
            "web-only",
            free_port(address),
            vec![TargetRef::Host { host: e.web_host }],
        ),
    )
    .await
    .unwrap();
    assert_eq!(web.workspace, Some(e.web.0));
    let names = |list: Vec<protocol::views::load_balancers::LoadBalancerView>| {
        list.into_iter().map(|l| l.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            loadbalancers::list(p, &e.alice, Scope::Project(e.project))
                .await
                .unwrap()
        ),
        ["shared", "web-only"]
    );
    assert_eq!(
        names(
            loadbalancers::list(p, &e.alice, Scope::Workspace(e.web.0))
                .await
                .unwrap()
        ),
        ["web-only"]
    );
    assert!(
        loadbalancers::list(p, &e.alice, Scope::Workspace(e.db_ws.0))
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting removes it at the backend and then the record.
    loadbalancers::delete(p, &e.alice, web.id).await.unwrap();
    assert!(matches!(
        loadbalancers::get(p, &e.alice, web.id).await,
        Err(Error::NotFound)
    ));
    assert!(!p.local_balancers().unwrap().ids().contains(&web.id));
    let actions = support::audit_actions(&db).await;
    assert!(actions.contains(&"loadbalancer.create".to_string()));
    assert!(actions.contains(&"loadbalancer.delete".to_string()));
    shutdown(p).await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_workspace_api_key_reaches_only_its_workspace(db: PgPool) {
    let e = estate(&db, Some(addresses(70))).await;
    let p = &e.portal;
    let web_key = cluster_api::authenticate(&db, &e.web.1).await.unwrap();
    let db_key = cluster_api::authenticate(&db, &e.db_ws.1).await.unwrap();
    assert_eq!(web_key.workspace, e.web.0);
    let body = ServiceLoadBalancer {
        listeners: vec![listener(
            ListenerProtocol::Tcp,
            free_port(Ipv4Addr::new(127, 0, 2, 70)),
            30080,
        )],
        targets: vec![],
        algorithm: Default::default(),
        health: None,
    };
    let (created, status) = cluster_api::put(p, &web_key, "shop", "frontend", &body)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(status.service, "shop/frontend");
    assert!(status.address.is_some(), "{status:?}");
    // Empty targets: every host of the workspace.
    assert_eq!(status.targets.len(), 1);
    assert_eq!(
        status.targets[0].target,
        TargetRef::Host { host: e.web_host }
    );
    // Idempotent: the same request updates the same load balancer.
    let (again, same) = cluster_api::put(p, &web_key, "shop", "frontend", &body)
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(same.id, status.id);
    assert_eq!(same.address, status.address);

    // The other workspace's key finds nothing of it.
    assert!(matches!(
        cluster_api::get(p, &db_key, "shop", "frontend").await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        cluster_api::delete(p, &db_key, "shop", "frontend").await,
        Err(Error::NotFound)
    ));
    assert!(cluster_api::list(p, &db_key).await.unwrap().is_empty());
    // ...and cannot target the web workspace's hosts.
    let poach = ServiceLoadBalancer {
        targets: vec![TargetRef::Host { host: e.web_host }],
        ..body.clone()
    };
    let error = cluster_api::put(p, &db_key, "shop", "frontend", &poach)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "targets[0].host");
    assert_eq!(cluster_api::list(p, &web_key).await.unwrap().len(), 1);

    // Other secrets are not workspace keys.
    let account_key = platform::identity::api_keys::create(&db, &e.alice, "ci", None)
        .await
        .unwrap()
        .secret;
    for secret in [account_key.as_str(), "lbw_forged", "", "Bearer x"] {
        assert!(matches!(
            cluster_api::authenticate(&db, secret).await,
            Err(Error::Unauthenticated)
        ));
    }
    // Bad Service names name the field.
    let error = cluster_api::put(p, &web_key, "Shop", "x", &body)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "namespace");

    // The audit log attributes the workspace.
    let details: serde_json::Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'loadbalancer.create' AND actor_email IS NULL",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(details["workspace"], serde_json::json!(e.web.0));
    assert_eq!(details["via"], "workspace_api_key");
    assert_eq!(details["service"], "shop/frontend");

    // Its own key deletes it; the account view saw it all along.
    let seen = loadbalancers::get(p, &e.alice, status.id).await.unwrap();
    assert_eq!(seen.service.as_deref(), Some("shop/frontend"));
    cluster_api::delete(p, &web_key, "shop", "frontend")
        .await
        .unwrap();
    assert!(cluster_api::list(p, &web_key).await.unwrap().is_empty());
    shutdown(p).await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn local_drift_is_corrected_and_balancers_keep_their_addresses(db: PgPool) {
    let e = estate(&db, Some(addresses(90))).await;
    let p = &e.portal;
    let first = Ipv4Addr::new(127, 0, 2, 90);
    let mut created = Vec::new();
    for name in ["one", "two", "three"] {
        created.push(
            loadbalancers::create(
                p,
                &e.alice,
                Scope::Workspace(e.web.0),
                &new_balancer(
                    name,
                    free_port(first),
                    vec![TargetRef::Host { host: e.web_host }],
                ),
            )
            .await
            .unwrap(),
        );
    }
    let address = |i: usize| created[i].address.clone().unwrap();
    let distinct: std::collections::HashSet<String> = (0..3).map(address).collect();
    assert_eq!(distinct.len(), 3, "each has an address of its own");

    // Stopped behind the portal's back: the next pass starts it again, on
    // its address, and says so.
    let local = p.local_balancers().unwrap().clone();
    local.remove(created[1].id).await;
    let outcomes = reconcile::converge(p).await.unwrap();
    let two = outcomes
        .iter()
        .find(|(id, _)| *id == created[1].id)
        .unwrap();
    assert!(
        matches!(&two.1, Outcome::Applied { corrected } if corrected[0].contains("not running")),
        "{outcomes:?}"
    );
    let view = loadbalancers::get(p, &e.alice, created[1].id)
        .await
        .unwrap();
    assert_eq!(view.address, Some(address(1)));
    assert!(
        view.drift
            .as_deref()
            .unwrap_or_default()
            .contains("not running"),
        "{view:?}"
    );
    assert!(
        support::audit_actions(&db)
            .await
            .contains(&"loadbalancer.drift_corrected".to_string())
    );

    // A restart (a new process: nothing runs): each comes back where it
    // was on the first pass.
    local.shutdown().await;
    let restarted = platform(&db);
    restarted.enable_local_balancers(LocalBalancers::new(addresses(90)));
    reconcile::converge(&restarted).await.unwrap();
    for before in &created {
        let view = loadbalancers::get(&restarted, &e.alice, before.id)
            .await
            .unwrap();
        assert_eq!(view.address, before.address, "{view:?}");
        assert_eq!(view.state, LoadBalancerState::Active);
        let status = restarted
            .local_balancers()
            .unwrap()
            .status(before.id)
            .unwrap();
        assert_eq!(status.address.map(|a| a.to_string()), before.address);
    }
    assert_eq!(restarted.local_balancers().unwrap().ids().len(), 3);
    shutdown(&restarted).await;
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn hetzner_cloud_is_chosen_when_the_organization_has_it_and_drift_is_corrected(db: PgPool) {
    // The local backend is on too: Hetzner Cloud still wins.
    let e = estate(&db, Some(addresses(110))).await;
    let p = &e.portal;
    let op = operator_of(&db).await;
    let fake = fakes::hetzner_cloud::FakeHetznerCloud::start("hc-token").await;
    platform::compute::providers::create(
        p,
        &op,
        &NewComputeProvider {
            name: "hcloud".into(),
            kind: ProviderKind::HetznerCloud,
            settings: BTreeMap::from([
                ("base_url".into(), fake.base_url().to_string()),
                ("load_balancer_location".into(), "nbg1".into()),
                ("load_balancer_type".into(), "lb21".into()),
            ]),
            secret: "hc-token".into(),
        },
    )
    .await
    .unwrap();
    let created = loadbalancers::create(
        p,
        &e.alice,
        Scope::Project(e.project),
        &new_balancer("edge", 80, vec![TargetRef::Host { host: e.web_host }]),
    )
    .await
    .unwrap();
    assert_eq!(created.backend, "hetzner_cloud");
    let applied = until_applied(p, created.id).await;
    assert!(applied.is_empty(), "{applied:?}");
    let view = loadbalancers::get(p, &e.alice, created.id).await.unwrap();
    assert_eq!(view.state, LoadBalancerState::Active, "{view:?}");
    let cloud = fake.load_balancers();
    assert_eq!(cloud.len(), 1);
    assert_eq!(
        (
            cloud[0].location.as_str(),
            cloud[0].load_balancer_type.as_str()
        ),
        ("nbg1", "lb21"),
        "placed as the provider's settings say"
    );
    assert_eq!(view.address, Some(cloud[0].ipv4.to_string()));
    assert_eq!(cloud[0].services.len(), 1);

    // Someone deletes the service in the Hetzner console.
    fake.edit_load_balancer(cloud[0].id, |lb| lb.services.clear());
    let corrected = until_applied(p, created.id).await;
    assert!(!corrected.is_empty(), "the drift was seen");
    assert_eq!(fake.load_balancers()[0].services.len(), 1, "and corrected");
    let view = loadbalancers::get(p, &e.alice, created.id).await.unwrap();
    assert!(view.drift.is_some(), "{view:?}");

    // Deleting deletes it at Hetzner.
    loadbalancers::delete(p, &e.alice, created.id)
        .await
        .unwrap();
    for _ in 0..100 {
        if reconcile::converge(p)
            .await
            .unwrap()
            .iter()
            .all(|(id, _)| *id != created.id)
            && fake.load_balancers().is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(fake.load_balancers().is_empty());
    assert!(matches!(
        loadbalancers::get(p, &e.alice, created.id).await,
        Err(Error::NotFound)
    ));
    shutdown(p).await;
}

/// Runs passes until one applied `id` (the prompt apply may hold it
/// briefly); returns the drift it corrected.
async fn until_applied(portal: &platform::Platform, id: LoadBalancerId) -> Vec<String> {
    for _ in 0..200 {
        let outcomes = reconcile::converge(portal).await.unwrap();
        match outcomes.into_iter().find(|(i, _)| *i == id).map(|(_, o)| o) {
            Some(Outcome::Applied { corrected }) => return corrected,
            Some(Outcome::Failed(e)) => panic!("apply failed: {e}"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("{id} was never applied")
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn without_a_backend_creation_says_so(db: PgPool) {
    let e = estate(&db, None).await;
    let error = loadbalancers::create(
        &e.portal,
        &e.alice,
        Scope::Workspace(e.web.0),
        &new_balancer("front", 80, vec![]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::Conflict(m) if m == "no load balancer backend is available for this organization"),
        "{error:?}"
    );
    assert_eq!(count(&db).await, (0, 0));
}
