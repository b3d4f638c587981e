//! An agent-backed monitoring source end to end: a real `loopback-agent`
//! process on a local host runs the HTTP probe the portal's monitoring
//! engine sends it, and the result is stored under that host, next to the
//! built-in source's.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use platform::monitoring::{self, Scope, Settings};
use protocol::ids::HostId;
use protocol::views::monitoring::{
    HttpMethod, HttpProbe, JsonExpectation, NewCondition, NewMonitor, ProbeSpec, SourceRef,
};
use serde_json::json;
use support::local_portal;

/// A target only reachable on this machine, so a result from the agent
/// proves the agent (a local host) made the request.
async fn target() -> String {
    let app = Router::new().route(
        "/health",
        get(|| async { ([("content-type", "application/json")], r#"{"status":"ok"}"#) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/health")
}

/// A stored result: source, ok, error, values as JSON text.
type Stored = (Option<uuid::Uuid>, bool, Option<String>, Option<String>);

#[tokio::test]
async fn a_hosts_agent_runs_http_probes_for_its_monitors() {
    let s = local_portal::start(|launch| launch.arg("--monitoring-min-interval-seconds").arg("1"))
        .await;
    let (workspace, _) = s
        .workspace(json!({ "name": "metal", "kind": "baremetal" }))
        .await;
    let host: HostId = s.running_host(&workspace, "probe-1").await.host.id;

    // A handle on the same database to create the monitor with; the
    // portal process's engine picks it up.
    let portal = platform::Platform::new(
        s.db.clone(),
        platform::SecretBox::from_key([9; 32]),
        url::Url::parse(&s.base).unwrap(),
        platform::identity::SessionPolicy {
            idle: Duration::from_secs(3600),
            lifetime: Duration::from_secs(86_400),
        },
    )
    .unwrap();
    portal.configure_monitoring(Settings {
        min_interval: Duration::from_secs(1),
    });
    let url = target().await;
    let monitor = monitoring::create(
        &portal,
        &s.alice,
        Scope::Project(s.project),
        NewMonitor {
            name: "health".into(),
            probe: ProbeSpec::Http(HttpProbe {
                method: HttpMethod::Get,
                url,
                expected_status: Some(200),
                body_contains: None,
                json: Some(JsonExpectation {
                    path: "$.status".into(),
                    equals: "ok".into(),
                }),
                headers: Vec::new(),
                body: None,
                timeout_ms: 1000,
                follow_redirects: false,
            }),
            interval_seconds: 1,
            sources: vec![SourceRef::Agent { host }, SourceRef::Builtin],
            conditions: vec![NewCondition::down()],
            channels: Vec::new(),
            failure_threshold: 3,
            success_threshold: 2,
            repeat_interval_seconds: 4 * 3600,
            public: false,
            maintenance_opt_in: false,
            paused: false,
        },
    )
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let (from_agent, from_portal) = loop {
        let rows: Vec<Stored> = sqlx::query_as(
            "SELECT source, ok, error, \"values\"::text FROM monitor_results
             WHERE monitor_id = $1 ORDER BY at",
        )
        .bind(monitor.id)
        .fetch_all(&s.db)
        .await
        .unwrap();
        let agent = rows.iter().find(|r| r.0 == Some(host.0)).cloned();
        let builtin = rows.iter().find(|r| r.0.is_none()).cloned();
        if let (Some(agent), Some(builtin)) = (agent, builtin) {
            break (agent, builtin);
        }
        assert!(
            Instant::now() < deadline,
            "no results from both sources: {rows:?}\n{}",
            s.portal.stderr()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(from_agent.1, "the agent's probe failed: {from_agent:?}");
    assert_eq!(from_agent.2, None);
    assert!(
        from_agent.3.as_deref().is_some_and(|v| v.contains("200")),
        "the agent reports the HTTP status: {from_agent:?}"
    );
    assert!(from_portal.1, "the built-in probe failed: {from_portal:?}");
    s.stop();
}
