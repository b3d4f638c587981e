//! Monitoring objects as a product object: validation that names the field
//! and writes nothing, scopes and tenants kept apart, viewers reading only,
//! audit entries, and changes that close open alerts.

mod support;

use platform::Error;
use platform::authz::{Actor, BuiltinRole};
use platform::monitoring::{self, Scope};
use platform::tenancy::members::{self, RoleSpec};
use platform::tenancy::{organizations, projects};
use protocol::ids::{HostId, ProjectId, WorkspaceId};
use protocol::views::monitoring::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_REPEAT_INTERVAL_SECONDS, DEFAULT_SUCCESS_THRESHOLD,
    HostProbe, HttpMethod, HttpProbe, MonitorState, NewCondition, NewMonitor, Operator, Parameter,
    ProbeSpec, Severity, SourceRef, TcpProbe,
};
use sqlx::PgPool;
use support::{actor, audit_actions, platform, public_url};

struct Estate {
    portal: platform::Platform,
    alice: Actor,
    project: ProjectId,
    workspace: WorkspaceId,
    host: HostId,
}

async fn estate(db: &PgPool) -> Estate {
    let portal = platform(db);
    let alice = actor(db, "alice@example.com").await;
    let org = organizations::create(db, &alice, "Acme").await.unwrap();
    let project = projects::create(db, &alice, org.id, "Web")
        .await
        .unwrap()
        .id;
    // Creating workspaces needs a verified organization; monitoring does
    // not, so the workspace is written directly.
    let workspace = WorkspaceId::new();
    sqlx::query(
        "INSERT INTO workspaces (id, project_id, name, kind, state) VALUES ($1, $2, 'web', 'baremetal', 'active')",
    )
    .bind(workspace)
    .bind(project)
    .execute(db)
    .await
    .unwrap();
    let host = HostId::new();
    sqlx::query(
        "WITH profile AS (
             INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents)
             VALUES (gen_random_uuid(), 'p', 'local', 1, 512, 10, 0) RETURNING id)
         INSERT INTO hosts (id, organization_id, workspace_id, hostname, profile_id, state, online)
         SELECT $1, $3, $2, 'web-1', profile.id, 'running', true FROM profile",
    )
    .bind(host)
    .bind(workspace)
    .bind(org.id)
    .execute(db)
    .await
    .unwrap();
    Estate {
        portal,
        alice,
        project,
        workspace,
        host,
    }
}

fn http(name: &str) -> NewMonitor {
    NewMonitor {
        name: name.into(),
        probe: ProbeSpec::Http(HttpProbe {
            method: HttpMethod::Get,
            url: "http://127.0.0.1:9/health".into(),
            expected_status: Some(200),
            body_contains: None,
            json: None,
            headers: vec![],
            body: None,
            timeout_ms: 2000,
            follow_redirects: true,
        }),
        interval_seconds: 60,
        sources: vec![SourceRef::Builtin],
        conditions: vec![NewCondition::down()],
        channels: vec![],
        failure_threshold: DEFAULT_FAILURE_THRESHOLD,
        success_threshold: DEFAULT_SUCCESS_THRESHOLD,
        repeat_interval_seconds: DEFAULT_REPEAT_INTERVAL_SECONDS,
        public: false,
        maintenance_opt_in: false,
        paused: false,
    }
}

async fn monitors(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM monitors")
        .fetch_one(db)
        .await
        .unwrap()
}

fn field<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn create_list_change_and_delete(db: PgPool) {
    let e = estate(&db).await;
    let p = &e.portal;
    let created = monitoring::create(p, &e.alice, Scope::Project(e.project), http("api"))
        .await
        .unwrap();
    assert_eq!(created.state, MonitorState::Unknown);
    assert_eq!(created.target, "GET http://127.0.0.1:9/health");
    assert_eq!(created.conditions[0].summary, "status is down");
    assert_eq!(created.sources[0].label, "Portal");

    // A workspace monitor shows in the project's list and the workspace's.
    let mut host = http("host metrics");
    host.probe = ProbeSpec::Host(HostProbe { host: e.host });
    host.conditions = vec![NewCondition {
        parameter: Parameter::CpuPercent,
        operator: Operator::Gt,
        threshold: 90.0,
        for_seconds: 300,
        severity: Severity::Warning,
    }];
    let on_host = monitoring::create(p, &e.alice, Scope::Workspace(e.workspace), host)
        .await
        .unwrap();
    assert_eq!(on_host.conditions[0].summary, "cpu_percent > 90 for 5m");
    let in_project = monitoring::list(p, &e.alice, Scope::Project(e.project))
        .await
        .unwrap();
    assert_eq!(in_project.len(), 2);
    let in_workspace = monitoring::list(p, &e.alice, Scope::Workspace(e.workspace))
        .await
        .unwrap();
    assert_eq!(in_workspace.len(), 1);
    assert_eq!(in_workspace[0].monitor.name, "host metrics");

    // Changing the conditions closes the open alert (without notifying).
    sqlx::query(
        "INSERT INTO alerts (id, organization_id, project_id, monitor_id, condition_id, summary,
             severity, state, started_at, fired_at)
         SELECT gen_random_uuid(), m.organization_id, m.project_id, m.id, c.id, 'status is down',
             'critical', 'firing', now(), now()
         FROM monitors m JOIN monitor_conditions c ON c.monitor_id = m.id WHERE m.id = $1",
    )
    .bind(created.id)
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        monitoring::get(p, &e.alice, created.id)
            .await
            .unwrap()
            .open_alerts,
        1
    );
    let mut changed = created.to_new();
    changed.conditions.push(NewCondition {
        parameter: Parameter::LatencyMs,
        operator: Operator::Gt,
        threshold: 500.0,
        for_seconds: 180,
        severity: Severity::Warning,
    });
    let changed = monitoring::update(p, &e.alice, created.id, changed)
        .await
        .unwrap();
    assert_eq!(changed.open_alerts, 0);
    assert_eq!(changed.conditions.len(), 2);
    let closed: (String, Option<i64>) = sqlx::query_as(
        "SELECT a.state::text, (SELECT count(*) FROM alert_events e WHERE e.alert_id = a.id)
         FROM alerts a WHERE a.monitor_id = $1",
    )
    .bind(created.id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(closed, ("resolved".into(), Some(1)));
    let notified: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(notified, 0);

    // Names are unique per project.
    assert_eq!(
        field(monitoring::create(p, &e.alice, Scope::Project(e.project), http("api")).await),
        "name"
    );

    monitoring::delete(p, &e.alice, created.id).await.unwrap();
    assert!(matches!(
        monitoring::get(p, &e.alice, created.id).await,
        Err(Error::NotFound)
    ));
    let actions = audit_actions(&db).await;
    for action in ["monitor.create", "monitor.update", "monitor.delete"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn bad_input_names_the_field_and_writes_nothing(db: PgPool) {
    let e = estate(&db).await;
    let p = &e.portal;
    let scope = Scope::Project(e.project);
    let cases: Vec<(NewMonitor, &str)> = vec![
        (
            NewMonitor {
                name: "  ".into(),
                ..http("x")
            },
            "name",
        ),
        (
            NewMonitor {
                interval_seconds: 3,
                ..http("x")
            },
            "interval_seconds",
        ),
        (
            NewMonitor {
                sources: vec![],
                ..http("x")
            },
            "sources",
        ),
        (
            NewMonitor {
                // A host of no workspace of this project.
                sources: vec![SourceRef::Agent {
                    host: HostId::new(),
                }],
                ..http("x")
            },
            "sources",
        ),
        (
            NewMonitor {
                probe: ProbeSpec::Host(HostProbe {
                    host: HostId::new(),
                }),
                conditions: vec![],
                ..http("x")
            },
            "probe.host",
        ),
        (
            NewMonitor {
                probe: ProbeSpec::Tcp(TcpProbe {
                    host: "db internal".into(),
                    port: 5432,
                    timeout_ms: 1000,
                }),
                conditions: vec![],
                ..http("x")
            },
            "probe.host",
        ),
        (
            NewMonitor {
                channels: vec![protocol::ids::NotificationChannelId::new()],
                ..http("x")
            },
            "channels",
        ),
        (
            NewMonitor {
                repeat_interval_seconds: 1,
                ..http("x")
            },
            "repeat_interval_seconds",
        ),
    ];
    for (monitor, expected) in cases {
        assert_eq!(
            field(monitoring::create(p, &e.alice, scope, monitor).await),
            expected
        );
    }
    assert_eq!(monitors(&db).await, 0);
    let conditions: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_conditions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(conditions, 0);
    // A bad change leaves the monitor as it was.
    let created = monitoring::create(p, &e.alice, scope, http("api"))
        .await
        .unwrap();
    let mut bad = created.to_new();
    bad.failure_threshold = 0;
    bad.name = "renamed".into();
    assert_eq!(
        field(monitoring::update(p, &e.alice, created.id, bad).await),
        "failure_threshold"
    );
    assert_eq!(
        monitoring::get(p, &e.alice, created.id).await.unwrap().name,
        "api"
    );
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn other_tenants_see_nothing_and_viewers_change_nothing(db: PgPool) {
    let e = estate(&db).await;
    let p = &e.portal;
    let created = monitoring::create(p, &e.alice, Scope::Workspace(e.workspace), http("api"))
        .await
        .unwrap();
    let mallory = actor(&db, "mallory@example.com").await;
    organizations::create(&db, &mallory, "Evil").await.unwrap();
    assert!(matches!(
        monitoring::get(p, &mallory, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        monitoring::list(p, &mallory, Scope::Project(e.project)).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        monitoring::update(p, &mallory, created.id, http("mine")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        monitoring::delete(p, &mallory, created.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        monitoring::create(p, &mallory, Scope::Project(e.project), http("planted")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        monitoring::results(p, &mallory, created.id, Default::default()).await,
        Err(Error::NotFound)
    ));

    let vic = actor(&db, "vic@example.com").await;
    let org: protocol::ids::OrganizationId =
        sqlx::query_scalar("SELECT organization_id FROM projects WHERE id = $1")
            .bind(e.project)
            .fetch_one(&db)
            .await
            .unwrap();
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
        monitoring::get(p, &vic, created.id).await.unwrap().name,
        "api"
    );
    assert!(matches!(
        monitoring::update(p, &vic, created.id, http("renamed")).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        monitoring::delete(p, &vic, created.id).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        monitoring::create(p, &vic, Scope::Project(e.project), http("more")).await,
        Err(Error::Forbidden(_))
    ));
    assert_eq!(monitors(&db).await, 1);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_status_page_shows_only_public_monitors(db: PgPool) {
    let e = estate(&db).await;
    let p = &e.portal;
    let scope = Scope::Project(e.project);
    monitoring::create(p, &e.alice, scope, http("internal"))
        .await
        .unwrap();
    assert!(matches!(
        monitoring::status_page(p, e.project).await,
        Err(Error::NotFound)
    ));
    monitoring::create(
        p,
        &e.alice,
        scope,
        NewMonitor {
            public: true,
            ..http("website")
        },
    )
    .await
    .unwrap();
    let page = monitoring::status_page(p, e.project).await.unwrap();
    assert_eq!(page.project_name, "Web");
    let names: Vec<&str> = page.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["website"]);
}
