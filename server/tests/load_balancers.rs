//! Load balancers end to end with the real binaries: a portal with local
//! hosts and the local load balancer backend orders two hosts (each gets
//! its own 127.0.1.N), an HTTP server answers on each host's address, and
//! a load balancer made over REST alternates between them. Stopping one
//! server takes it out within the health check's interval × threshold
//! without a single failed request; restarting it brings traffic back.
//! The in-cluster API answers only workspace API keys, each for its own
//! workspace.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use protocol::views::load_balancers::{LoadBalancerView, TargetHealth};
use serde_json::json;
use support::local_portal::{self, LocalPortal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> LocalPortal {
    local_portal::start(|launch| {
        launch
            .arg("--local-load-balancers")
            .arg("--load-balancer-interval-secs")
            .arg("1")
    })
    .await
}

/// A bare-metal workspace, active; returns its id and API key.
async fn workspace(s: &LocalPortal, name: &str) -> (String, String) {
    s.workspace(json!({ "name": name, "kind": "baremetal" }))
        .await
}

async fn balancer(s: &LocalPortal, id: &str) -> LoadBalancerView {
    s.client
        .get(format!("{}/api/v1/load-balancers/{id}", s.base))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A minimal HTTP server on a host's address answering its host name, one
/// request per connection: stopping it (aborting the task) leaves nothing
/// that still answers.
fn serve_hostname(listener: tokio::net::TcpListener, name: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let name = name.clone();
            connections.spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

async fn bind(address: IpAddr, port: u16) -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(SocketAddr::new(address, port)).unwrap();
    socket.listen(128).unwrap()
}

/// One request through the load balancer: the answering host's name.
async fn ask(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

fn health_of(view: &LoadBalancerView, label: &str) -> Vec<TargetHealth> {
    view.targets
        .iter()
        .find(|t| t.label == label)
        .map(|t| t.health.iter().map(|(_, h)| *h).collect())
        .unwrap_or_default()
}

/// Waits until `label`'s health is `want` on every port; returns how long
/// it took.
async fn wait_health(
    s: &LocalPortal,
    id: &str,
    label: &str,
    want: TargetHealth,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let view = balancer(s, id).await;
        let health = health_of(&view, label);
        if !health.is_empty() && health.iter().all(|h| *h == want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{label} did not become {want:?} within {within:?}: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_local_load_balancer_alternates_and_fails_over_without_errors() {
    let s = setup().await;
    let (workspace, _) = workspace(&s, "web").await;
    let one = s.running_host(&workspace, "web-1").await;
    let two = s.running_host(&workspace, "web-2").await;
    let ip = |h: &protocol::views::HostDetails| -> IpAddr {
        h.host.public_ipv4.as_deref().unwrap().parse().unwrap()
    };
    let (ip1, ip2) = (ip(&one), ip(&two));
    assert_ne!(ip1, ip2, "each local host has an address of its own");
    assert!(ip1.to_string().starts_with("127.0.1."), "{ip1}");

    // The same port on both hosts: possible only with their own addresses.
    let port = std::net::TcpListener::bind((ip1, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server1 = serve_hostname(bind(ip1, port).await, "web-1".into());
    let server2 = serve_hostname(bind(ip2, port).await, "web-2".into());

    let listen_port = support::free_addr().port();
    let created = s
        .client
        .post(format!(
            "{}/api/v1/workspaces/{workspace}/load-balancers",
            s.base
        ))
        .bearer_auth(&s.key)
        .json(&json!({
            "name": "front",
            "listeners": [{ "protocol": "http", "port": listen_port, "target_port": port }],
            "targets": [
                { "kind": "host", "host": one.host.id },
                { "kind": "host", "host": two.host.id },
            ],
            "algorithm": "round_robin",
            "health": {
                "protocol": "http", "port": null, "path": "/",
                "interval_seconds": 1, "timeout_seconds": 1,
                "healthy_threshold": 1, "unhealthy_threshold": 2,
            },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let view: LoadBalancerView = created.json().await.unwrap();
    let id = view.id.to_string();
    let address = view.address.clone().expect("the address shows at once");
    assert!(address.starts_with("127.0.2."), "{address}");
    assert_eq!(view.backend, "local");
    let url = format!("http://{address}:{listen_port}/");

    wait_health(
        &s,
        &id,
        "web-1",
        TargetHealth::Healthy,
        Duration::from_secs(10),
    )
    .await;
    wait_health(
        &s,
        &id,
        "web-2",
        TargetHealth::Healthy,
        Duration::from_secs(10),
    )
    .await;

    // Requests alternate.
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(ask(&client, &url).await.unwrap());
    }
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin alternates: {answers:?}");
    }

    // Stop web-1's server: from that moment no request fails, and its
    // health shows it down within interval × threshold (+ margin).
    server1.abort();
    let _ = server1.await;
    let stopped = Instant::now();
    let checker = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while stopped.elapsed() < Duration::from_secs(5) {
                answers.push(ask(&client, &url).await);
            }
            answers
        })
    };
    let took = wait_health(
        &s,
        &id,
        "web-1",
        TargetHealth::Unhealthy,
        Duration::from_secs(5),
    )
    .await;
    let during = checker.await.unwrap();
    let failed: Vec<_> = during.iter().filter(|a| a.is_err()).collect();
    assert!(
        failed.is_empty(),
        "requests failed during failover: {failed:?}"
    );
    assert!(during.len() > 10, "only {} requests", during.len());
    assert!(
        during
            .iter()
            .rev()
            .take(5)
            .all(|a| a.as_deref() == Ok("web-2")),
        "only web-2 answers once web-1 is down"
    );
    println!(
        "web-1 marked unhealthy {:.2} s after its server stopped; {} requests meanwhile, none failed",
        took.as_secs_f64(),
        during.len()
    );
    for _ in 0..6 {
        assert_eq!(ask(&client, &url).await.unwrap(), "web-2");
    }

    // Restore it: traffic returns and alternates again.
    let server1 = serve_hostname(bind(ip1, port).await, "web-1".into());
    let took = wait_health(
        &s,
        &id,
        "web-1",
        TargetHealth::Healthy,
        Duration::from_secs(5),
    )
    .await;
    println!(
        "web-1 healthy again {:.2} s after restarting",
        took.as_secs_f64()
    );
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(ask(&client, &url).await.unwrap());
    }
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "alternating again: {answers:?}");
    }

    server1.abort();
    server2.abort();
    s.stop();
}

#[tokio::test]
async fn the_in_cluster_api_answers_only_the_workspace_key_of_its_workspace() {
    let s = setup().await;
    let (shop, shop_key) = workspace(&s, "shop").await;
    let (_other, other_key) = workspace(&s, "other").await;
    let node = s.running_host(&shop, "node-1").await;
    let lbs = format!("{}/api/v1/cluster/load-balancers", s.base);
    let frontend = format!("{lbs}/shop/frontend");
    let listen_port = support::free_addr().port();
    let body = json!({
        "listeners": [{ "protocol": "tcp", "port": listen_port, "target_port": 30080 }],
    });

    let put = s
        .client
        .put(&frontend)
        .bearer_auth(&shop_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "{:?}", put.text().await);
    let status: serde_json::Value = put.json().await.unwrap();
    assert_eq!(status["service"], "shop/frontend");
    let address = status["address"].as_str().expect("an address").to_string();
    assert_eq!(status["targets"][0]["label"], "node-1");
    assert_eq!(
        status["targets"][0]["address"],
        node.host.public_ipv4.clone().unwrap()
    );
    // Idempotent.
    let again = s
        .client
        .put(&frontend)
        .bearer_auth(&shop_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let read: serde_json::Value = s
        .client
        .get(&frontend)
        .bearer_auth(&shop_key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["address"], address.as_str());
    assert_eq!(read["id"], status["id"]);

    // Another workspace's key does not find it, and lists nothing.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let answer = s
            .client
            .request(method.clone(), &frontend)
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            404,
            "{method} with another workspace's key"
        );
    }
    let listed: Vec<serde_json::Value> = s
        .client
        .get(&lbs)
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());

    // Account credentials are not workspace keys.
    let cookie = support::sign_in(&s.client, &s.base, "alice@example.com").await;
    let by_cookie = s
        .client
        .get(&frontend)
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 401, "a session is refused");
    let by_account = s
        .client
        .put(&frontend)
        .bearer_auth(&s.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_account.status(), 401, "an account API key is refused");

    // The account sees it in the workspace, with its Service.
    let views: Vec<LoadBalancerView> = s
        .client
        .get(format!(
            "{}/api/v1/workspaces/{shop}/load-balancers",
            s.base
        ))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].service.as_deref(), Some("shop/frontend"));

    // Its own key deletes it.
    let deleted = s
        .client
        .delete(&frontend)
        .bearer_auth(&shop_key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = s
            .client
            .get(&frontend)
            .bearer_auth(&shop_key)
            .send()
            .await
            .unwrap();
        if answer.status() == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still there: {}",
            answer.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop();
}
