//! The Hetzner Cloud load balancer backend against the fake Hetzner Cloud
//! API; no database needed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use fakes::hetzner_cloud::{FakeHetznerCloud, LbService, LbTarget, LbTargetKind};
use platform::loadbalancers::hetzner::{HetznerBalancers, OWNER_LABEL};
use platform::loadbalancers::spec::{BalancerSpec, TargetStatus};
use platform::providers::hetzner_cloud::HetznerCloud;
use platform::providers::{CreateServer, ProviderError};
use protocol::ids::LoadBalancerId;
use protocol::views::load_balancers::{
    Algorithm, HealthCheck, HealthProtocol, Listener, ListenerProtocol, TargetHealth,
};
use serde_json::{Value, json};
use url::Url;

const TOKEN: &str = "hcloud-test-token-0123456789";

async fn setup() -> (FakeHetznerCloud, HetznerBalancers) {
    let fake = FakeHetznerCloud::start(TOKEN).await;
    let balancers = balancers(&fake, TOKEN, None);
    (fake, balancers)
}

fn balancers(fake: &FakeHetznerCloud, token: &str, network: Option<i64>) -> HetznerBalancers {
    let cloud = HetznerCloud::new(fake.base_url(), token).unwrap();
    HetznerBalancers::new(cloud, "fsn1".into(), "lb11".into(), network)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn listener(protocol: ListenerProtocol, port: u16, target_port: u16) -> Listener {
    Listener {
        protocol,
        port,
        target_port,
    }
}

/// Two listeners (TCP 443 → 30443, HTTP 80 → 30080), two targets.
fn spec(name: &str) -> BalancerSpec {
    BalancerSpec {
        id: LoadBalancerId::new(),
        name: name.into(),
        listeners: vec![
            listener(ListenerProtocol::Tcp, 443, 30443),
            listener(ListenerProtocol::Http, 80, 30080),
        ],
        targets: vec![ip("192.0.2.10"), ip("192.0.2.11")],
        algorithm: Algorithm::RoundRobin,
        health: HealthCheck {
            protocol: HealthProtocol::Http,
            port: None,
            path: "/healthz".into(),
            ..HealthCheck::default()
        },
    }
}

fn id_of(backend_ref: &str) -> u64 {
    backend_ref.parse().unwrap()
}

fn ports(services: &[LbService]) -> BTreeMap<u16, (String, u16)> {
    services
        .iter()
        .map(|s| (s.listen_port, (s.protocol.clone(), s.destination_port)))
        .collect()
}

fn ip_targets(targets: &[LbTarget]) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = targets
        .iter()
        .filter_map(|t| match t.kind {
            LbTargetKind::Ip(ip) => Some(ip),
            LbTargetKind::Server { .. } => None,
        })
        .collect();
    found.sort();
    found
}

fn status(address: &str, port: u16, health: TargetHealth) -> TargetStatus {
    TargetStatus {
        address: ip(address),
        port,
        health,
    }
}

#[tokio::test]
async fn creating_builds_exactly_the_spec() {
    let (fake, balancers) = setup().await;
    let spec = spec("web");
    let applied = balancers.apply(&spec, None).await.unwrap();
    assert!(applied.corrected.is_empty(), "{:?}", applied.corrected);

    let all = fake.load_balancers();
    assert_eq!(all.len(), 1);
    let lb = &all[0];
    assert_eq!(applied.backend_ref, lb.id.to_string());
    assert_eq!(applied.status.address, Some(IpAddr::V4(lb.ipv4)));
    assert_eq!(lb.name, "web");
    assert_eq!(lb.location, "fsn1");
    assert_eq!(lb.load_balancer_type, "lb11");
    assert_eq!(lb.algorithm, "round_robin");
    assert_eq!(lb.labels.get(OWNER_LABEL), Some(&spec.id.to_string()));
    assert_eq!(
        ports(&lb.services),
        BTreeMap::from([
            (80, ("http".to_string(), 30080)),
            (443, ("tcp".to_string(), 30443)),
        ])
    );
    assert_eq!(
        ip_targets(&lb.targets),
        [ip("192.0.2.10"), ip("192.0.2.11")]
    );

    // The health check as the product defines it, probing the first
    // listener's target port.
    let check = &lb.services[0].health_check;
    assert_eq!(
        (
            check.protocol.as_str(),
            check.port,
            check.interval,
            check.timeout,
            check.retries
        ),
        ("http", 30443, 15, 10, 3)
    );
    let http = check.http.as_ref().unwrap();
    assert_eq!(http.path, "/healthz");
    assert_eq!(http.status_codes, ["2??", "3??"]);

    // Nothing checked yet: every target on every target port is unknown.
    assert_eq!(
        applied.status.targets,
        [
            status("192.0.2.10", 30080, TargetHealth::Unknown),
            status("192.0.2.10", 30443, TargetHealth::Unknown),
            status("192.0.2.11", 30080, TargetHealth::Unknown),
            status("192.0.2.11", 30443, TargetHealth::Unknown),
        ]
    );
    let commands: Vec<String> = fake
        .load_balancer_actions()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(commands, ["create_load_balancer"]);
}

#[tokio::test]
async fn applying_again_changes_nothing() {
    let (fake, balancers) = setup().await;
    let spec = spec("web");
    let first = balancers.apply(&spec, None).await.unwrap();
    let before = fake.load_balancers();
    let actions = fake.load_balancer_actions().len();

    let again = balancers
        .apply(&spec, Some(&first.backend_ref))
        .await
        .unwrap();
    assert_eq!(again.backend_ref, first.backend_ref);
    assert!(again.corrected.is_empty(), "{:?}", again.corrected);
    assert_eq!(again.status, first.status);
    assert_eq!(fake.load_balancers(), before);
    assert_eq!(fake.load_balancer_actions().len(), actions);
}

#[tokio::test]
async fn spec_changes_converge_with_actions() {
    let (fake, balancers) = setup().await;
    let mut spec = spec("web");
    let applied = balancers.apply(&spec, None).await.unwrap();
    let id = id_of(&applied.backend_ref);

    spec.listeners = vec![
        listener(ListenerProtocol::Http, 80, 31080),
        listener(ListenerProtocol::Tcp, 8443, 30443),
    ];
    spec.targets = vec![ip("192.0.2.11"), ip("192.0.2.12")];
    spec.algorithm = Algorithm::LeastConnections;
    spec.health.interval_seconds = 5;
    let changed = balancers
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    assert_eq!(changed.backend_ref, applied.backend_ref);

    let lb = fake.load_balancer(id).unwrap();
    assert_eq!(lb.algorithm, "least_connections");
    assert_eq!(
        ports(&lb.services),
        BTreeMap::from([
            (80, ("http".to_string(), 31080)),
            (8443, ("tcp".to_string(), 30443)),
        ])
    );
    assert!(
        lb.services
            .iter()
            .all(|s| s.health_check.interval == 5 && s.health_check.port == 31080)
    );
    assert_eq!(
        ip_targets(&lb.targets),
        [ip("192.0.2.11"), ip("192.0.2.12")]
    );

    let mut commands: Vec<String> = fake
        .load_balancer_actions()
        .into_iter()
        .skip(1)
        .map(|(_, c)| c)
        .collect();
    commands.sort();
    assert_eq!(
        commands,
        [
            "add_service",
            "add_target",
            "change_algorithm",
            "delete_service",
            "remove_target",
            "update_service",
        ]
    );
    let corrected = changed.corrected.join("\n");
    for expected in [
        "algorithm was round_robin instead of least_connections",
        "service on port 443 was not in the spec",
        "service on port 8443 was missing",
        "service on port 80 differed: target port 30080 instead of 31080, health check port 30443 instead of 31080, health check interval 15 instead of 5",
        "target 192.0.2.10 was not in the spec",
        "target 192.0.2.12 was missing",
    ] {
        assert!(
            corrected.contains(expected),
            "{expected:?} in:\n{corrected}"
        );
    }
    assert_eq!(changed.corrected.len(), 6, "{corrected}");
}

#[tokio::test]
async fn drift_is_corrected_and_reported() {
    let (fake, balancers) = setup().await;
    let spec = spec("web");
    let applied = balancers.apply(&spec, None).await.unwrap();
    let id = id_of(&applied.backend_ref);
    let wanted = fake.load_balancer(id).unwrap();

    // A server target added in the console.
    let cloud = HetznerCloud::new(fake.base_url(), TOKEN).unwrap();
    let server = cloud
        .create_server(&CreateServer {
            name: "stray".into(),
            parameters: BTreeMap::from([("server_type".into(), "cx22".into())]),
            user_data: String::new(),
            labels: BTreeMap::new(),
        })
        .await
        .unwrap();
    let server_id: u64 = server.id.parse().unwrap();

    fake.edit_load_balancer(id, |lb| {
        lb.services.retain(|s| s.listen_port != 443);
        lb.services[0].health_check.retries = 1;
        lb.targets.push(LbTarget::ip(ip("192.0.2.99")));
        lb.targets.push(LbTarget {
            kind: LbTargetKind::Server {
                id: server_id,
                use_private_ip: false,
            },
            health: BTreeMap::new(),
        });
        lb.algorithm = "least_connections".into();
    });

    let fixed = balancers
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    let mut corrected = fixed.corrected.clone();
    corrected.sort();
    assert_eq!(
        corrected,
        [
            "algorithm was least_connections instead of round_robin".to_string(),
            "service on port 443 was missing".into(),
            "service on port 80 differed: health check retries 1 instead of 3".into(),
            "target 192.0.2.99 was not in the spec".into(),
            format!("target server {server_id} was not in the spec"),
        ]
    );
    let lb = fake.load_balancer(id).unwrap();
    assert_eq!(ports(&lb.services), ports(&wanted.services));
    assert_eq!(ip_targets(&lb.targets), ip_targets(&wanted.targets));
    assert_eq!(lb.targets.len(), 2);
    assert_eq!(lb.algorithm, "round_robin");

    // Corrected once, then quiet.
    let calm = balancers
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    assert!(calm.corrected.is_empty(), "{:?}", calm.corrected);
}

#[tokio::test]
async fn health_is_read_per_target_port() {
    let (fake, balancers) = setup().await;
    let spec = spec("web");
    let applied = balancers.apply(&spec, None).await.unwrap();
    let id = id_of(&applied.backend_ref);
    fake.set_target_health(id, ip("192.0.2.10"), 443, "healthy");
    fake.set_target_health(id, ip("192.0.2.10"), 80, "unhealthy");
    fake.set_target_health(id, ip("192.0.2.11"), 443, "healthy");

    let observed = balancers
        .observe(&applied.backend_ref)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(observed.address, applied.status.address);
    assert_eq!(
        observed.targets,
        [
            status("192.0.2.10", 30080, TargetHealth::Unhealthy),
            status("192.0.2.10", 30443, TargetHealth::Healthy),
            status("192.0.2.11", 30080, TargetHealth::Unknown),
            status("192.0.2.11", 30443, TargetHealth::Healthy),
        ]
    );
    // Apply reports the same.
    let again = balancers
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    assert_eq!(again.status, observed);
}

#[tokio::test]
async fn deleted_load_balancers_are_gone() {
    let (fake, balancers) = setup().await;
    let applied = balancers.apply(&spec("web"), None).await.unwrap();
    balancers.delete(&applied.backend_ref).await.unwrap();
    assert!(fake.load_balancers().is_empty());
    assert_eq!(balancers.observe(&applied.backend_ref).await.unwrap(), None);
    // Gone already is the outcome wanted.
    balancers.delete(&applied.backend_ref).await.unwrap();
    balancers.delete("not-a-hetzner-id").await.unwrap();
    assert_eq!(balancers.observe("not-a-hetzner-id").await.unwrap(), None);
}

#[tokio::test]
async fn a_vanished_load_balancer_is_created_again() {
    let (fake, balancers) = setup().await;
    let spec = spec("web");
    let first = balancers.apply(&spec, None).await.unwrap();
    balancers.delete(&first.backend_ref).await.unwrap();
    let second = balancers
        .apply(&spec, Some(&first.backend_ref))
        .await
        .unwrap();
    assert_ne!(second.backend_ref, first.backend_ref);
    assert_eq!(fake.load_balancers().len(), 1);
}

#[tokio::test]
async fn a_lost_reference_finds_its_own_load_balancer_by_name() {
    let (fake, balancers) = setup().await;
    let mut spec = spec("web");
    let first = balancers.apply(&spec, None).await.unwrap();
    spec.targets.pop();
    // As after a crash between creating and recording the id.
    let again = balancers.apply(&spec, None).await.unwrap();
    assert_eq!(again.backend_ref, first.backend_ref);
    assert_eq!(again.corrected, ["target 192.0.2.11 was not in the spec"]);
    assert_eq!(fake.load_balancers().len(), 1);

    // The same name for another load balancer is someone else's.
    let stranger = BalancerSpec {
        id: LoadBalancerId::new(),
        ..spec.clone()
    };
    let err = balancers.apply(&stranger, None).await.unwrap_err();
    assert!(matches!(err, ProviderError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("\"web\""), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(fake.load_balancers().len(), 1);
}

#[tokio::test]
async fn a_running_action_is_waited_out() {
    let (fake, balancers) = setup().await;
    let spec = spec("web");
    let applied = balancers.apply(&spec, None).await.unwrap();
    // Someone else starts an action; Hetzner locks the load balancer
    // until it finishes.
    fake.set_load_balancer_action_time(Duration::from_millis(300));
    let started = raw(
        &fake,
        "POST",
        &format!(
            "load_balancers/{}/actions/change_algorithm",
            applied.backend_ref
        ),
        Some(json!({ "type": "least_connections" })),
    )
    .await;
    assert_eq!(started.0, 201, "{}", started.1);
    let fixed = balancers
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    assert_eq!(
        fixed.corrected,
        ["algorithm was least_connections instead of round_robin"]
    );
    assert_eq!(
        fake.load_balancer(id_of(&fixed.backend_ref))
            .unwrap()
            .algorithm,
        "round_robin"
    );
}

#[tokio::test]
async fn a_network_attaches_the_load_balancer_for_private_targets() {
    let (fake, public_only) = setup().await;
    let mut spec = spec("private");
    spec.targets = vec![ip("10.0.0.5"), ip("10.0.0.6")];

    // Without a network Hetzner cannot reach private addresses, and says so.
    let err = public_only.apply(&spec, None).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("load_balancer_not_attached_to_network") && text.contains("10.0.0.5"),
        "{text}"
    );
    assert!(fake.load_balancers().is_empty());

    let balancers = balancers(&fake, TOKEN, Some(4711));
    let applied = balancers.apply(&spec, None).await.unwrap();
    let lb = fake.load_balancer(id_of(&applied.backend_ref)).unwrap();
    assert_eq!(lb.private_net.map(|(network, _)| network), Some(4711));
    assert_eq!(ip_targets(&lb.targets), [ip("10.0.0.5"), ip("10.0.0.6")]);

    // Detached behind our back (as if made before the network was
    // configured): attached again.
    fake.edit_load_balancer(lb.id, |lb| lb.private_net = None);
    let fixed = balancers
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    assert_eq!(
        fixed.corrected,
        ["load balancer was not attached to network 4711"]
    );
}

#[tokio::test]
async fn a_changed_type_is_applied() {
    let (fake, small) = setup().await;
    let spec = spec("web");
    let applied = small.apply(&spec, None).await.unwrap();
    let cloud = HetznerCloud::new(fake.base_url(), TOKEN).unwrap();
    let larger = HetznerBalancers::new(cloud, "fsn1".into(), "lb21".into(), None);
    let changed = larger
        .apply(&spec, Some(&applied.backend_ref))
        .await
        .unwrap();
    assert_eq!(changed.corrected, ["type was lb11 instead of lb21"]);
    let lb = fake.load_balancer(id_of(&applied.backend_ref)).unwrap();
    assert_eq!(lb.load_balancer_type, "lb21");
}

// Errors

#[tokio::test]
async fn a_reached_limit_is_a_permanent_quota_error() {
    let (fake, balancers) = setup().await;
    fake.set_load_balancer_limit(1);
    balancers.apply(&spec("one"), None).await.unwrap();
    let err = balancers.apply(&spec("two"), None).await.unwrap_err();
    assert!(matches!(err, ProviderError::Quota(_)), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("resource_limit_exceeded") && text.contains("load balancer limit exceeded"),
        "{text}"
    );
    assert!(text.contains("creating load balancer \"two\""), "{text}");
}

#[tokio::test]
async fn too_many_services_for_the_type_is_a_quota_error() {
    let (_fake, balancers) = setup().await;
    let mut spec = spec("crowded");
    spec.listeners = (0..6)
        .map(|i| listener(ListenerProtocol::Tcp, 8000 + i, 30000 + i))
        .collect();
    let err = balancers.apply(&spec, None).await.unwrap_err();
    assert!(matches!(err, ProviderError::Quota(_)), "{err:?}");
    assert!(err.to_string().contains("lb11"), "{err}");
}

#[tokio::test]
async fn rate_limits_and_outages_are_retryable() {
    let (fake, balancers) = setup().await;
    fake.fail_next(1, 429, "rate_limit_exceeded");
    let err = balancers.apply(&spec("web"), None).await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited(_)), "{err:?}");
    assert!(err.is_retryable());

    fake.fail_next(1, 503, "maintenance");
    let err = balancers.observe("1").await.unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());

    // After the failures, the same apply succeeds.
    balancers.apply(&spec("web"), None).await.unwrap();
    assert_eq!(fake.load_balancers().len(), 1);
}

#[tokio::test]
async fn an_unreachable_api_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = Url::parse(&format!("http://{addr}/v1/")).unwrap();
    let cloud = HetznerCloud::new(base, TOKEN).unwrap();
    let balancers = HetznerBalancers::new(cloud, "fsn1".into(), "lb11".into(), None);
    let err = balancers.observe("42").await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_refused_token_is_unauthorized() {
    let fake = FakeHetznerCloud::start(TOKEN).await;
    let balancers = balancers(&fake, "someone-elses-token", None);
    let err = balancers.apply(&spec("web"), None).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("unable to authenticate"), "{err}");
}

#[tokio::test]
async fn configuration_hetzner_refuses_is_permanent_and_explained() {
    let fake = FakeHetznerCloud::start(TOKEN).await;
    let cloud = HetznerCloud::new(fake.base_url(), TOKEN).unwrap();
    let bad_type = HetznerBalancers::new(cloud.clone(), "fsn1".into(), "lb99".into(), None);
    let err = bad_type.apply(&spec("web"), None).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("load_balancer_type"), "{err}");

    let bad_place = HetznerBalancers::new(cloud, "mars1".into(), "lb11".into(), None);
    let err = bad_place.apply(&spec("web"), None).await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("location"), "{err}");
    assert!(fake.load_balancers().is_empty());
}

#[tokio::test]
async fn a_bad_spec_costs_no_request() {
    let (fake, balancers) = setup().await;
    let mut spec = spec("web");
    spec.listeners[1].port = 443;
    fake.fail_next(1, 500, "should_not_be_reached");
    let err = balancers.apply(&spec, None).await.unwrap_err();
    assert!(matches!(err, ProviderError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("listeners[1].port"), "{err}");
    // The injected failure is still waiting: nothing was sent.
    let err = balancers.observe("1").await.unwrap_err();
    assert!(err.to_string().contains("should_not_be_reached"), "{err}");
}

// The fake's own validation, in Hetzner's error shape.

async fn raw(
    fake: &FakeHetznerCloud,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = fake.base_url().join(path).unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn service(listen_port: u64, destination_port: u64) -> Value {
    json!({ "protocol": "tcp", "listen_port": listen_port, "destination_port": destination_port,
            "proxyprotocol": false })
}

#[tokio::test]
async fn the_fake_validates_like_hetzner() {
    let fake = FakeHetznerCloud::start(TOKEN).await;
    fake.set_load_balancer_action_time(Duration::from_millis(400));
    let create = |name: &str, services: Vec<Value>| {
        json!({ "name": name, "load_balancer_type": "lb11", "location": "nbg1",
                "services": services })
    };

    let (code, body) = raw(
        &fake,
        "POST",
        "load_balancers",
        Some(create("a", vec![service(0, 80)])),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(
        body["error"]["details"]["fields"][0]["name"],
        "services[0].listen_port"
    );

    let twice = create("a", vec![service(443, 80), service(443, 81)]);
    let (code, body) = raw(&fake, "POST", "load_balancers", Some(twice)).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], "invalid_input");

    let (code, body) = raw(
        &fake,
        "POST",
        "load_balancers",
        Some(create("a", vec![service(443, 80)])),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let id = body["load_balancer"]["id"].as_u64().unwrap();
    assert_eq!(body["action"]["command"], "create_load_balancer");
    let body_action_id = body["action"]["id"].as_u64().unwrap();
    assert_eq!(body["load_balancer"]["location"]["name"], "nbg1");
    assert_eq!(
        body["load_balancer"]["load_balancer_type"]["max_services"],
        5
    );
    assert!(body["load_balancer"]["public_net"]["ipv4"]["ip"].is_string());

    let (code, body) = raw(&fake, "POST", "load_balancers", Some(create("a", vec![]))).await;
    assert_eq!(code, 409);
    assert_eq!(body["error"]["code"], "uniqueness_error");

    // Locked while the create action runs, then free.
    let add = format!("load_balancers/{id}/actions/add_service");
    let (code, body) = raw(&fake, "POST", &add, Some(service(443, 90))).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("locked"))
    );
    let action = body_action_id;
    let (_, running) = raw(
        &fake,
        "GET",
        &format!("load_balancers/actions/{action}"),
        None,
    )
    .await;
    assert_eq!(running["action"]["status"], "running");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, done) = raw(
        &fake,
        "GET",
        &format!("load_balancers/actions/{action}"),
        None,
    )
    .await;
    assert_eq!(done["action"]["status"], "success");
    let (code, body) = raw(&fake, "POST", &add, Some(service(443, 90))).await;
    assert_eq!(code, 412);
    assert_eq!(body["error"]["code"], "source_port_already_used");

    let (code, body) = raw(&fake, "GET", "load_balancers?name=a", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["load_balancers"].as_array().unwrap().len(), 1);
    let (_, body) = raw(&fake, "GET", "load_balancers?name=b", None).await;
    assert!(body["load_balancers"].as_array().unwrap().is_empty());

    let (code, _) = raw(&fake, "DELETE", &format!("load_balancers/{id}"), None).await;
    assert_eq!(code, 204);
    let (code, body) = raw(&fake, "GET", &format!("load_balancers/{id}"), None).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}
