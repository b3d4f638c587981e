//! Alerts from synthetic results with controlled timestamps: pending until
//! the failure threshold and the for-duration are both met, one alert and
//! one notification per outage, grouping per monitor, resolution after the
//! success threshold, flapping that never fires stays quiet, repeats after
//! the repeat interval but not once acknowledged, silences and the
//! maintenance window hold notifications back, concurrent evaluations do
//! not fire twice, and another organization sees nothing.

mod support;

use std::time::Duration;

use platform::Error;
use platform::authz::Actor;
use platform::monitoring::{self, Recorded, Scope, Settings, alerts, notify};
use platform::tenancy::{organizations, projects};
use protocol::ids::{
    AlertId, MonitorId, NotificationChannelId, OrganizationId, ProjectId, WorkspaceId,
};
use protocol::views::monitoring::{
    AlertFilter, AlertState, ChannelConfig, HttpMethod, HttpProbe, NewChannel, NewCondition,
    NewMonitor, NewSilence, NotificationMessage, Operator, Parameter, ProbeOutcome, ProbeSpec,
    Severity, SourceRef,
};
use protocol::views::{PageRequest, Verification};
use sqlx::PgPool;
use support::{actor, operator, platform};
use time::OffsetDateTime;

struct World {
    db: PgPool,
    portal: platform::Platform,
    alice: Actor,
    org: OrganizationId,
    project: ProjectId,
    channel: NotificationChannelId,
}

async fn world(db: &PgPool) -> World {
    let portal = platform(db);
    portal.configure_monitoring(Settings {
        min_interval: Duration::from_secs(1),
    });
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
    // Deliveries never run here: only the queued rows are looked at.
    let channel = notify::create_channel(
        &portal,
        &alice,
        org.id,
        NewChannel {
            name: "hook".into(),
            config: ChannelConfig::Webhook {
                url: "http://127.0.0.1:9/hook".into(),
                secret: "a-signing-secret-of-some-length".into(),
            },
        },
    )
    .await
    .unwrap()
    .id;
    World {
        db: db.clone(),
        portal,
        alice,
        org: org.id,
        project,
        channel,
    }
}

fn down_condition(for_seconds: u32) -> NewCondition {
    NewCondition {
        for_seconds,
        ..NewCondition::down()
    }
}

fn slow_condition() -> NewCondition {
    NewCondition {
        parameter: Parameter::LatencyMs,
        operator: Operator::Gt,
        threshold: 500.0,
        for_seconds: 0,
        severity: Severity::Warning,
    }
}

fn new_monitor(w: &World, name: &str, conditions: Vec<NewCondition>) -> NewMonitor {
    NewMonitor {
        name: name.into(),
        probe: ProbeSpec::Http(HttpProbe {
            method: HttpMethod::Get,
            url: "http://127.0.0.1:9/health".into(),
            expected_status: None,
            body_contains: None,
            json: None,
            headers: vec![],
            body: None,
            timeout_ms: 1000,
            follow_redirects: false,
        }),
        interval_seconds: 10,
        sources: vec![SourceRef::Builtin],
        conditions,
        channels: vec![w.channel],
        failure_threshold: 3,
        success_threshold: 2,
        repeat_interval_seconds: 4 * 3600,
        public: false,
        maintenance_opt_in: false,
        paused: false,
    }
}

async fn create(w: &World, scope: Scope, new: NewMonitor) -> MonitorId {
    monitoring::create(&w.portal, &w.alice, scope, new)
        .await
        .unwrap()
        .id
}

/// A monitor of the project with the given conditions and thresholds.
async fn monitor(
    w: &World,
    name: &str,
    conditions: Vec<NewCondition>,
    failure_threshold: u32,
    success_threshold: u32,
) -> MonitorId {
    let new = NewMonitor {
        failure_threshold,
        success_threshold,
        ..new_monitor(w, name, conditions)
    };
    create(w, Scope::Project(w.project), new).await
}

/// Ten minutes ago plus `seconds`: results are fed in the past so that
/// "now" (notifications, silences) comes after all of them.
fn at(seconds: i64) -> OffsetDateTime {
    static BASE: std::sync::OnceLock<OffsetDateTime> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| {
        let ago = OffsetDateTime::now_utc() - time::Duration::minutes(10);
        ago.replace_nanosecond(0).unwrap()
    });
    *base + time::Duration::seconds(seconds)
}

fn down(monitor: MonitorId, at: OffsetDateTime) -> Recorded {
    Recorded {
        monitor,
        source: None,
        at,
        outcome: ProbeOutcome {
            ok: false,
            latency_ms: Some(900.0),
            error: Some("expected 2xx, got 503".into()),
            ..ProbeOutcome::default()
        },
    }
}

fn up(monitor: MonitorId, at: OffsetDateTime) -> Recorded {
    Recorded {
        monitor,
        source: None,
        at,
        outcome: ProbeOutcome {
            ok: true,
            latency_ms: Some(12.0),
            ..ProbeOutcome::default()
        },
    }
}

async fn feed(w: &World, batch: &[Recorded]) {
    alerts::evaluate(&w.portal, batch).await.unwrap();
}

/// Queued notifications of the monitor, oldest first.
async fn notifications(db: &PgPool, monitor: MonitorId) -> Vec<NotificationMessage> {
    let rows: Vec<sqlx::types::Json<NotificationMessage>> = sqlx::query_scalar(
        "SELECT message FROM notifications WHERE monitor_id = $1 ORDER BY created_at, id",
    )
    .bind(monitor)
    .fetch_all(db)
    .await
    .unwrap();
    rows.into_iter().map(|j| j.0).collect()
}

fn kinds(messages: &[NotificationMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.kind.as_str()).collect()
}

#[derive(Debug, sqlx::FromRow)]
struct AlertRow {
    id: AlertId,
    state: AlertState,
    suppressed: Option<String>,
    notifications: i32,
}

async fn alerts_of(db: &PgPool, monitor: MonitorId) -> Vec<AlertRow> {
    sqlx::query_as(
        "SELECT id, state, suppressed, notifications FROM alerts WHERE monitor_id = $1
         ORDER BY started_at, id",
    )
    .bind(monitor)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn events(w: &World, alert: AlertId) -> Vec<String> {
    alerts::get(&w.portal, &w.alice, alert)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn field(e: &Error) -> Option<&str> {
    match e {
        Error::Invalid { field, .. } => Some(field),
        _ => None,
    }
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn an_outage_fires_once_after_the_threshold_and_the_for_duration(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(60)], 3, 2).await;

    // Four failures over 30 s: the threshold is met but not the 60 s.
    feed(&w, &[down(m, at(0)), down(m, at(10))]).await;
    feed(&w, &[down(m, at(20)), down(m, at(30))]).await;
    let open = alerts_of(&db, m).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, AlertState::Pending);
    assert!(notifications(&db, m).await.is_empty());

    // 60 s after the first failure it fires, once.
    feed(&w, &[down(m, at(60))]).await;
    feed(&w, &[down(m, at(70)), down(m, at(80))]).await;
    let open = alerts_of(&db, m).await;
    assert_eq!(open.len(), 1, "one alert per condition");
    assert_eq!(open[0].state, AlertState::Firing);
    assert_eq!(open[0].notifications, 1);
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing"]);
    let message = &sent[0];
    assert_eq!(message.monitor, Some(m));
    assert_eq!(message.monitor_name.as_deref(), Some("api"));
    assert_eq!(message.organization, w.org);
    assert_eq!(message.project, Some(w.project));
    assert_eq!(
        message.target.as_deref(),
        Some("GET http://127.0.0.1:9/health")
    );
    assert_eq!(
        message.url.as_deref(),
        Some(format!("http://localhost:3000/monitors/{m}").as_str())
    );
    assert_eq!(message.alerts.len(), 1);
    assert_eq!(message.alerts[0].summary, "status is down for 1m");
    assert_eq!(message.alerts[0].state, AlertState::Firing);
    assert_eq!(message.alerts[0].started_at, at(0));
    assert_eq!(
        events(&w, open[0].id).await,
        ["pending", "firing", "notified"]
    );

    let view = alerts::get(&w.portal, &w.alice, open[0].id)
        .await
        .unwrap()
        .alert;
    assert_eq!(view.fired_at, Some(at(60)));
    assert_eq!(view.value, Some(0.0));
    assert_eq!(view.severity, Severity::Critical);
    assert!(view.last_notified_at.is_some());
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_failure_threshold_counts_consecutive_results(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 3, 2).await;
    feed(&w, &[down(m, at(0)), down(m, at(10))]).await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Pending);
    feed(&w, &[down(m, at(20))]).await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Firing);
    assert_eq!(kinds(&notifications(&db, m).await), ["firing"]);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn alerts_of_one_monitor_that_fire_together_go_out_together(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0), slow_condition()], 1, 1).await;
    feed(&w, &[down(m, at(0))]).await;
    let open = alerts_of(&db, m).await;
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|a| a.state == AlertState::Firing));
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing"], "one notification for both");
    let mut summaries: Vec<&str> = sent[0].alerts.iter().map(|a| a.summary.as_str()).collect();
    summaries.sort();
    assert_eq!(summaries, ["latency_ms > 500", "status is down"]);
    assert_eq!(sent[0].subject(), "[FIRING] api: status is down (+1 more)");

    // They recover together: one resolution for both.
    feed(&w, &[up(m, at(10))]).await;
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing", "resolved"]);
    assert_eq!(sent[1].alerts.len(), 2);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn recovery_resolves_after_the_success_threshold_and_notifies_once(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 1, 2).await;
    feed(&w, &[down(m, at(0))]).await;
    feed(&w, &[up(m, at(10))]).await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Firing);
    // A failure in between starts the count again.
    feed(&w, &[down(m, at(20)), up(m, at(30))]).await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Firing);
    feed(&w, &[up(m, at(40)), up(m, at(50))]).await;
    let all = alerts_of(&db, m).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, AlertState::Resolved);
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing", "resolved"]);
    assert_eq!(sent[1].alerts[0].state, AlertState::Resolved);
    assert_eq!(sent[1].alerts[0].resolved_at, Some(at(40)));
    let view = alerts::get(&w.portal, &w.alice, all[0].id).await.unwrap();
    assert_eq!(view.alert.resolved_at, Some(at(40)));
    assert_eq!(
        view.events
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        ["pending", "firing", "notified", "resolved", "notified"]
    );

    // More passing results change nothing.
    feed(&w, &[up(m, at(60))]).await;
    assert_eq!(notifications(&db, m).await.len(), 2);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn flapping_that_never_fires_closes_quietly(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 3, 2).await;
    feed(
        &w,
        &[
            down(m, at(0)),
            down(m, at(10)),
            up(m, at(20)),
            down(m, at(30)),
            up(m, at(40)),
            down(m, at(50)),
            down(m, at(60)),
            up(m, at(70)),
        ],
    )
    .await;
    let all = alerts_of(&db, m).await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|a| a.state == AlertState::Resolved));
    assert!(all.iter().all(|a| a.notifications == 0));
    assert!(notifications(&db, m).await.is_empty());
    let detail = alerts::get(&w.portal, &w.alice, all[0].id).await.unwrap();
    assert_eq!(
        detail
            .events
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        ["pending", "resolved"]
    );
    assert!(detail.events[1].detail.contains("before the alert fired"));
    assert!(detail.alert.fired_at.is_none());
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn results_out_of_order_in_a_batch_are_applied_in_time_order(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 2, 2).await;
    // In time order this is up, down, down: it fires.
    feed(&w, &[down(m, at(20)), up(m, at(0)), down(m, at(10))]).await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Firing);
}

/// Two sources of one run share its `at`: any of them down is a breach.
#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn one_source_down_in_a_run_counts_as_a_breach(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 2, 1).await;
    let other = protocol::ids::HostId::new();
    let from_agent = |r: Recorded| Recorded {
        source: Some(other),
        ..r
    };
    feed(
        &w,
        &[
            up(m, at(0)),
            from_agent(down(m, at(0))),
            from_agent(down(m, at(10))),
            up(m, at(10)),
        ],
    )
    .await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Firing);
}

async fn set_last_notified_back(db: &PgPool, monitor: MonitorId, seconds: i64) {
    sqlx::query(
        "UPDATE alerts SET last_notified_at = now() - make_interval(secs => $2)
         WHERE monitor_id = $1",
    )
    .bind(monitor)
    .bind(seconds as f64)
    .execute(db)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn firing_alerts_repeat_after_the_interval_until_acknowledged(db: PgPool) {
    let w = world(&db).await;
    let new = NewMonitor {
        failure_threshold: 1,
        repeat_interval_seconds: 600,
        ..new_monitor(&w, "api", vec![down_condition(0), slow_condition()])
    };
    let m = create(&w, Scope::Project(w.project), new).await;
    feed(&w, &[down(m, at(0))]).await;
    alerts::reconcile(&w.portal).await.unwrap();
    assert_eq!(
        kinds(&notifications(&db, m).await),
        ["firing"],
        "not due yet"
    );

    set_last_notified_back(&db, m, 601).await;
    alerts::reconcile(&w.portal).await.unwrap();
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing", "repeat"]);
    assert_eq!(
        sent[1].alerts.len(),
        2,
        "one repeat for the monitor's alerts"
    );
    assert!(sent[1].subject().starts_with("[FIRING, still] api"));
    let open = alerts_of(&db, m).await;
    assert!(open.iter().all(|a| a.notifications == 2));
    assert_eq!(events(&w, open[0].id).await.last().unwrap(), "repeated");
    // Just repeated: not again at once.
    alerts::reconcile(&w.portal).await.unwrap();
    assert_eq!(notifications(&db, m).await.len(), 2);

    // Acknowledged alerts stay quiet; the other one still repeats.
    let acked = alerts::acknowledge(&w.portal, &w.alice, open[0].id, "  looking into it ")
        .await
        .unwrap();
    let ack = acked.acknowledgement.unwrap();
    assert_eq!(ack.comment, "looking into it");
    assert_eq!(ack.by_email.as_deref(), Some("alice@example.com"));
    set_last_notified_back(&db, m, 601).await;
    alerts::reconcile(&w.portal).await.unwrap();
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing", "repeat", "repeat"]);
    assert_eq!(sent[2].alerts.len(), 1);
    assert_eq!(sent[2].alerts[0].id, open[1].id);

    // Acknowledging the other too: nothing repeats any more.
    alerts::acknowledge(&w.portal, &w.alice, open[1].id, "same")
        .await
        .unwrap();
    set_last_notified_back(&db, m, 601).await;
    alerts::reconcile(&w.portal).await.unwrap();
    assert_eq!(notifications(&db, m).await.len(), 3);
    assert!(
        events(&w, open[0].id)
            .await
            .contains(&"acknowledged".to_string())
    );
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn acknowledging_needs_a_comment_and_an_open_alert(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 1, 1).await;
    feed(&w, &[down(m, at(0))]).await;
    let alert = alerts_of(&db, m).await[0].id;
    let before = support::audit_actions(&db).await;
    let e = alerts::acknowledge(&w.portal, &w.alice, alert, "   ")
        .await
        .unwrap_err();
    assert_eq!(field(&e), Some("comment"));
    let e = alerts::acknowledge(&w.portal, &w.alice, alert, &"x".repeat(501))
        .await
        .unwrap_err();
    assert_eq!(field(&e), Some("comment"));
    assert_eq!(support::audit_actions(&db).await, before, "nothing written");

    alerts::acknowledge(&w.portal, &w.alice, alert, &"x".repeat(500))
        .await
        .unwrap();
    assert!(matches!(
        alerts::acknowledge(&w.portal, &w.alice, alert, "again").await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        support::audit_actions(&db).await.last().unwrap(),
        "alert.acknowledge"
    );

    feed(&w, &[up(m, at(10))]).await;
    let m2 = monitor(&w, "web", vec![down_condition(0)], 1, 1).await;
    feed(&w, &[down(m2, at(0)), up(m2, at(10))]).await;
    let resolved = alerts_of(&db, m2).await[0].id;
    assert!(matches!(
        alerts::acknowledge(&w.portal, &w.alice, resolved, "late").await,
        Err(Error::Conflict(_))
    ));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn a_silence_holds_notifications_back_until_it_is_expired(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 1, 1).await;
    let silence = alerts::create_silence(
        &w.portal,
        &w.alice,
        w.project,
        NewSilence {
            monitor: Some(m),
            duration_seconds: 3600,
            comment: "deploying".into(),
        },
    )
    .await
    .unwrap();
    assert!(silence.active);
    assert_eq!(silence.monitor_name.as_deref(), Some("api"));

    feed(&w, &[down(m, at(0))]).await;
    let open = alerts_of(&db, m).await;
    assert_eq!(open[0].state, AlertState::Firing, "it still fires");
    let reason = open[0].suppressed.clone().unwrap();
    assert!(
        reason.starts_with("silenced until ") && reason.ends_with("Z: deploying"),
        "{reason}"
    );
    assert!(notifications(&db, m).await.is_empty());
    assert_eq!(
        events(&w, open[0].id).await,
        ["pending", "firing", "suppressed"]
    );
    // Still silenced: the reconciler leaves it alone.
    alerts::reconcile(&w.portal).await.unwrap();
    assert!(notifications(&db, m).await.is_empty());

    let listed = alerts::list_silences(&w.portal, &w.alice, w.project)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].active);

    alerts::expire_silence(&w.portal, &w.alice, silence.id)
        .await
        .unwrap();
    alerts::reconcile(&w.portal).await.unwrap();
    let sent = notifications(&db, m).await;
    assert_eq!(kinds(&sent), ["firing"], "notified once the silence ended");
    let open = alerts_of(&db, m).await;
    assert_eq!(open[0].suppressed, None);
    assert_eq!(open[0].notifications, 1);
    let listed = alerts::list_silences(&w.portal, &w.alice, w.project)
        .await
        .unwrap();
    assert!(!listed[0].active);
    let actions = support::audit_actions(&db).await;
    assert!(actions.contains(&"silence.create".to_string()));
    assert!(actions.contains(&"silence.expire".to_string()));

    // A project-wide silence that starts while the alert fires: the next
    // run marks it; the resolution is held back too.
    alerts::create_silence(
        &w.portal,
        &w.alice,
        w.project,
        NewSilence {
            monitor: None,
            duration_seconds: 600,
            comment: "maintenance of everything".into(),
        },
    )
    .await
    .unwrap();
    alerts::reconcile(&w.portal).await.unwrap();
    let open = alerts_of(&db, m).await;
    assert!(
        open[0]
            .suppressed
            .as_deref()
            .unwrap()
            .ends_with(": maintenance of everything")
    );
    feed(&w, &[up(m, at(10))]).await;
    assert_eq!(alerts_of(&db, m).await[0].state, AlertState::Resolved);
    assert_eq!(kinds(&notifications(&db, m).await), ["firing"]);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn silences_are_checked(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 1, 1).await;
    let silence = |duration_seconds: u32, comment: &str| NewSilence {
        monitor: Some(m),
        duration_seconds,
        comment: comment.into(),
    };
    for (new, expected) in [
        (silence(59, "short"), "duration_seconds"),
        (silence(30 * 86_400 + 1, "long"), "duration_seconds"),
        (silence(3600, "  "), "comment"),
        (silence(3600, &"x".repeat(501)), "comment"),
    ] {
        let e = alerts::create_silence(&w.portal, &w.alice, w.project, new)
            .await
            .unwrap_err();
        assert_eq!(field(&e), Some(expected));
    }
    let other_project = projects::create(&db, &w.alice, w.org, "Other")
        .await
        .unwrap()
        .id;
    let e = alerts::create_silence(&w.portal, &w.alice, other_project, silence(3600, "x"))
        .await
        .unwrap_err();
    assert_eq!(
        field(&e),
        Some("monitor"),
        "the monitor must be in the project"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM monitor_silences")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

async fn baremetal_workspace(w: &World, name: &str) -> WorkspaceId {
    support::workspace(&w.db, &w.alice, w.project, name)
        .await
        .unwrap()
        .id
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn the_maintenance_window_holds_back_monitors_that_opted_in(db: PgPool) {
    let w = world(&db).await;
    let workspace = baremetal_workspace(&w, "shop").await;
    // Keep clear of an hour's end so the window is still on when checked.
    let mut now = OffsetDateTime::now_utc();
    if now.minute() == 59 && now.second() >= 55 {
        tokio::time::sleep(Duration::from_secs(6)).await;
        now = OffsetDateTime::now_utc();
    }
    sqlx::query(
        "UPDATE workspaces SET maintenance_weekday = $2, maintenance_hour = $3 WHERE id = $1",
    )
    .bind(workspace)
    .bind(i16::from(now.weekday().number_days_from_sunday()))
    .bind(i16::from(now.hour()))
    .execute(&db)
    .await
    .unwrap();
    let opted_in = create(
        &w,
        Scope::Workspace(workspace),
        NewMonitor {
            failure_threshold: 1,
            maintenance_opt_in: true,
            ..new_monitor(&w, "opted-in", vec![down_condition(0)])
        },
    )
    .await;
    let not_opted = create(
        &w,
        Scope::Workspace(workspace),
        NewMonitor {
            failure_threshold: 1,
            ..new_monitor(&w, "not-opted", vec![down_condition(0)])
        },
    )
    .await;
    feed(&w, &[down(opted_in, at(0)), down(not_opted, at(0))]).await;
    let held = alerts_of(&db, opted_in).await;
    assert_eq!(held[0].state, AlertState::Firing);
    assert_eq!(held[0].suppressed.as_deref(), Some("maintenance window"));
    assert!(notifications(&db, opted_in).await.is_empty());
    assert_eq!(kinds(&notifications(&db, not_opted).await), ["firing"]);

    // The window moves away (as when the hour ends): notified then.
    sqlx::query("UPDATE workspaces SET maintenance_hour = ($2 + 1) % 24 WHERE id = $1")
        .bind(workspace)
        .bind(i32::from(now.hour()))
        .execute(&db)
        .await
        .unwrap();
    alerts::reconcile(&w.portal).await.unwrap();
    assert_eq!(kinds(&notifications(&db, opted_in).await), ["firing"]);

    // The workspace scope lists only its own alerts.
    let listed = alerts::list(
        &w.portal,
        &w.alice,
        Scope::Workspace(workspace),
        AlertFilter::default(),
        PageRequest::new(1, 20),
    )
    .await
    .unwrap();
    assert_eq!(listed.total, 2);
    assert!(listed.items.iter().all(|a| a.workspace == Some(workspace)));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn concurrent_evaluations_of_one_batch_fire_once(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0), slow_condition()], 3, 2).await;
    let batch = [down(m, at(0)), down(m, at(10)), down(m, at(20))];
    let other = platform(&db);
    let (a, b) = tokio::join!(
        alerts::evaluate(&w.portal, &batch),
        alerts::evaluate(&other, &batch)
    );
    a.unwrap();
    b.unwrap();
    let all = alerts_of(&db, m).await;
    assert_eq!(all.len(), 2, "one alert per condition");
    assert!(all.iter().all(|a| a.state == AlertState::Firing));
    assert!(all.iter().all(|a| a.notifications == 1));
    assert_eq!(kinds(&notifications(&db, m).await), ["firing"]);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn lists_filter_and_page_newest_first(db: PgPool) {
    let w = world(&db).await;
    let api = monitor(&w, "api", vec![down_condition(0), slow_condition()], 1, 1).await;
    let web = monitor(&w, "web", vec![down_condition(0)], 3, 1).await;
    feed(&w, &[down(api, at(0)), down(web, at(5))]).await;
    let list = |filter: AlertFilter, page: PageRequest| {
        alerts::list(&w.portal, &w.alice, Scope::Project(w.project), filter, page)
    };
    let all = list(AlertFilter::default(), PageRequest::new(1, 20))
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0].monitor_name, "web", "newest first");
    let firing = list(
        AlertFilter {
            state: Some(AlertState::Firing),
            ..AlertFilter::default()
        },
        PageRequest::new(1, 20),
    )
    .await
    .unwrap();
    assert_eq!(firing.total, 2);
    let warnings = list(
        AlertFilter {
            severity: Some(Severity::Warning),
            ..AlertFilter::default()
        },
        PageRequest::new(1, 20),
    )
    .await
    .unwrap();
    assert_eq!(warnings.total, 1);
    assert_eq!(warnings.items[0].summary, "latency_ms > 500");
    let of_web = list(
        AlertFilter {
            monitor: Some(web),
            ..AlertFilter::default()
        },
        PageRequest::new(1, 20),
    )
    .await
    .unwrap();
    assert_eq!(of_web.total, 1);
    assert_eq!(of_web.items[0].state, AlertState::Pending);
    alerts::acknowledge(&w.portal, &w.alice, of_web.items[0].id, "known")
        .await
        .unwrap();
    let acked = list(
        AlertFilter {
            acknowledged: Some(true),
            ..AlertFilter::default()
        },
        PageRequest::new(1, 20),
    )
    .await
    .unwrap();
    assert_eq!(acked.total, 1);
    let page = list(AlertFilter::default(), PageRequest::new(2, 2))
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len()), (3, 1));
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn pausing_a_monitor_closes_its_alerts_without_notifying(db: PgPool) {
    let w = world(&db).await;
    let new = NewMonitor {
        failure_threshold: 1,
        ..new_monitor(&w, "api", vec![down_condition(0)])
    };
    let m = create(&w, Scope::Project(w.project), new.clone()).await;
    feed(&w, &[down(m, at(0))]).await;
    monitoring::update(
        &w.portal,
        &w.alice,
        m,
        NewMonitor {
            paused: true,
            ..new
        },
    )
    .await
    .unwrap();
    let all = alerts_of(&db, m).await;
    assert_eq!(all[0].state, AlertState::Resolved);
    assert_eq!(kinds(&notifications(&db, m).await), ["firing"]);
    let detail = alerts::get(&w.portal, &w.alice, all[0].id).await.unwrap();
    assert_eq!(
        detail.events.last().unwrap().detail,
        "the monitor was paused"
    );
    // Results that still arrive for a paused monitor change nothing.
    feed(&w, &[down(m, at(10))]).await;
    assert_eq!(alerts_of(&db, m).await.len(), 1);
}

#[sqlx::test(migrator = "platform::db::MIGRATOR")]
async fn another_organization_sees_nothing(db: PgPool) {
    let w = world(&db).await;
    let m = monitor(&w, "api", vec![down_condition(0)], 1, 1).await;
    feed(&w, &[down(m, at(0))]).await;
    let alert = alerts_of(&db, m).await[0].id;
    let silence = alerts::create_silence(
        &w.portal,
        &w.alice,
        w.project,
        NewSilence {
            monitor: None,
            duration_seconds: 600,
            comment: "x".into(),
        },
    )
    .await
    .unwrap();

    let mallory = actor(&db, "mallory@example.com").await;
    let theirs = organizations::create(&db, &mallory, "Evil").await.unwrap();
    let their_project = projects::create(&db, &mallory, theirs.id, "Evil")
        .await
        .unwrap()
        .id;
    let not_found = |r: Result<(), Error>| assert!(matches!(r, Err(Error::NotFound)), "{r:?}");
    not_found(
        alerts::list(
            &w.portal,
            &mallory,
            Scope::Project(w.project),
            AlertFilter::default(),
            PageRequest::new(1, 20),
        )
        .await
        .map(|_| ()),
    );
    not_found(alerts::get(&w.portal, &mallory, alert).await.map(|_| ()));
    not_found(
        alerts::acknowledge(&w.portal, &mallory, alert, "mine now")
            .await
            .map(|_| ()),
    );
    not_found(
        alerts::create_silence(
            &w.portal,
            &mallory,
            w.project,
            NewSilence {
                monitor: Some(m),
                duration_seconds: 600,
                comment: "x".into(),
            },
        )
        .await
        .map(|_| ()),
    );
    not_found(
        alerts::list_silences(&w.portal, &mallory, w.project)
            .await
            .map(|_| ()),
    );
    not_found(alerts::expire_silence(&w.portal, &mallory, silence.id).await);
    // Their own project with our monitor: not theirs to silence.
    let e = alerts::create_silence(
        &w.portal,
        &mallory,
        their_project,
        NewSilence {
            monitor: Some(m),
            duration_seconds: 600,
            comment: "x".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(field(&e), Some("monitor"));
    let listed = alerts::list(
        &w.portal,
        &mallory,
        Scope::Project(their_project),
        AlertFilter::default(),
        PageRequest::new(1, 20),
    )
    .await
    .unwrap();
    assert_eq!(listed.total, 0);
    // Nothing of ours changed.
    let view = alerts::get(&w.portal, &w.alice, alert).await.unwrap().alert;
    assert!(view.acknowledgement.is_none());
    assert!(
        alerts::list_silences(&w.portal, &w.alice, w.project)
            .await
            .unwrap()[0]
            .active
    );
}
