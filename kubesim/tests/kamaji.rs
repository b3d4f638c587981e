//! Kamaji behaviour: TenantControlPlanes get a Service, an admin kubeconfig
//! and a tenant API server; deletion removes them; failures show.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::{
    Api, Client, Error,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use kubesim::{Failure, TenantState};
use serde_json::json;

async fn management() -> (kubesim::Kubesim, Client) {
    let sim = common::start().await;
    let client = common::client(&sim.kubeconfig()).await;
    common::create_namespace(&client, "tenants").await;
    (sim, client)
}

fn is_refused(error: &Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = current.source();
    }
    format!("{error:?}").contains("Connection refused")
}

/// A fresh client per check, so no pooled connection hides a closed port.
async fn tenant_namespaces(admin_conf: &str) -> Result<Vec<String>, Error> {
    let client = common::client(admin_conf).await;
    let list = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

#[tokio::test]
async fn tenant_control_plane_lifecycle() {
    let (sim, client) = management().await;
    common::create_tenant(&client, "tenants", "acme").await;

    let admin_conf = common::admin_conf(&client, "tenants", "acme").await;
    let names = tenant_namespaces(&admin_conf).await.unwrap();
    for expected in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let tcp = common::tcp_api(&client, "tenants")
        .get("acme")
        .await
        .unwrap();
    let status = &tcp.data["status"];
    assert_eq!(status["kubernetesResources"]["version"]["status"], "Ready");
    assert_eq!(
        status["kubernetesResources"]["version"]["version"],
        "v1.33.0"
    );
    assert_eq!(
        status["kubernetesResources"]["deployment"]["readyReplicas"],
        2
    );
    assert_eq!(
        status["kubeconfig"]["admin"]["secretName"],
        "acme-admin-kubeconfig"
    );
    let endpoint = status["controlPlaneEndpoint"].as_str().unwrap().to_string();
    assert!(
        admin_conf.contains(&format!("https://{endpoint}")),
        "{admin_conf}"
    );

    let info = sim.tenants();
    assert_eq!(info.len(), 1);
    assert_eq!(
        (info[0].name.as_str(), info[0].namespace.as_str()),
        ("acme", "tenants")
    );
    assert_eq!(info[0].state, TenantState::Ready);
    assert_eq!(info[0].address.to_string(), endpoint);
    assert!(info[0].listening);

    let service = Api::<Service>::namespaced(client.clone(), "tenants")
        .get("acme")
        .await
        .unwrap();
    assert_eq!(service.spec.unwrap().type_.as_deref(), Some("LoadBalancer"));
    let ingress = service
        .status
        .unwrap()
        .load_balancer
        .unwrap()
        .ingress
        .unwrap();
    assert_eq!(
        Some(ingress[0].ip.clone().unwrap()),
        endpoint.split(':').next().map(String::from)
    );

    let secret = Api::<Secret>::namespaced(client.clone(), "tenants")
        .get("acme-admin-kubeconfig")
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert!(secret.data.unwrap().contains_key("admin.svc"));

    // The tenant's version follows spec.kubernetes.version.
    common::tcp_api(&client, "tenants")
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"kubernetes": {"version": "v1.33.2"}}})),
        )
        .await
        .unwrap();
    let tenant = common::client(&admin_conf).await;
    common::eventually("the upgrade", || async {
        let version = tenant.apiserver_version().await.ok()?;
        (version.git_version == "v1.33.2").then_some(())
    })
    .await;

    common::tcp_api(&client, "tenants")
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    let error = common::eventually("the tenant API server to stop", || async {
        tenant_namespaces(&admin_conf).await.err()
    })
    .await;
    assert!(
        is_refused(&error),
        "expected connection refused, got {error:?}"
    );
    common::eventually("secret and service removed", || async {
        let secret = Api::<Secret>::namespaced(client.clone(), "tenants")
            .get_opt("acme-admin-kubeconfig")
            .await
            .unwrap();
        let service = Api::<Service>::namespaced(client.clone(), "tenants")
            .get_opt("acme")
            .await
            .unwrap();
        (secret.is_none() && service.is_none()).then_some(())
    })
    .await;
    assert!(sim.tenants().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_the_namespace_stops_its_tenants() {
    let (sim, client) = management().await;
    common::create_tenant(&client, "tenants", "gone").await;
    let admin_conf = common::admin_conf(&client, "tenants", "gone").await;
    tenant_namespaces(&admin_conf).await.unwrap();
    Api::<Namespace>::all(client.clone())
        .delete("tenants", &DeleteParams::default())
        .await
        .unwrap();
    let error = common::eventually("the tenant API server to stop", || async {
        tenant_namespaces(&admin_conf).await.err()
    })
    .await;
    assert!(is_refused(&error), "{error:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn provisioning_waits_for_the_ready_delay() {
    let mut config = common::config();
    config.kamaji.ready_delay = Duration::from_millis(600);
    let sim = kubesim::start(config).await.unwrap();
    let client = common::client(&sim.kubeconfig()).await;
    common::create_namespace(&client, "tenants").await;
    let started = Instant::now();
    common::create_tenant(&client, "tenants", "patient").await;
    let status = common::eventually("Provisioning", || {
        common::tenant_status(&client, "tenants", "patient")
    })
    .await;
    assert_eq!(status, "Provisioning");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "tenants");
    assert!(
        secrets
            .get_opt("patient-admin-kubeconfig")
            .await
            .unwrap()
            .is_none()
    );
    common::admin_conf(&client, "tenants", "patient").await;
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        common::tenant_status(&client, "tenants", "patient")
            .await
            .as_deref(),
        Some("Ready")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn never_healthy_tenants_stay_not_ready() {
    let (sim, client) = management().await;
    sim.inject("sick", Failure::NeverHealthy);
    common::create_tenant(&client, "tenants", "sick").await;
    let admin_conf = common::admin_conf(&client, "tenants", "sick").await;
    let status = common::eventually("a settled status", || async {
        common::tenant_status(&client, "tenants", "sick")
            .await
            .filter(|s| s != "Provisioning")
    })
    .await;
    assert_eq!(status, "NotReady");
    let tenant = common::client(&admin_conf).await;
    let request = http::Request::get("/healthz").body(Vec::new()).unwrap();
    match tenant.request_text(request).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 500),
        other => panic!("expected a failing /healthz, got {other:?}"),
    }
    assert_eq!(sim.tenants()[0].state, TenantState::NotReady);

    // Lifting the failure makes it healthy.
    sim.inject("sick", Failure::None);
    common::eventually("Ready", || async {
        let status = common::tenant_status(&client, "tenants", "sick").await?;
        (status == "Ready").then_some(())
    })
    .await;
    let request = http::Request::get("/healthz").body(Vec::new()).unwrap();
    assert_eq!(tenant.request_text(request).await.unwrap(), "ok");
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_tenants_take_longer_and_answer_health_checks_late() {
    let (sim, client) = management().await;
    let delay = Duration::from_millis(500);
    sim.inject("*", Failure::Slow(delay));
    let started = Instant::now();
    common::create_tenant(&client, "tenants", "sloth").await;
    let admin_conf = common::admin_conf(&client, "tenants", "sloth").await;
    assert!(
        started.elapsed() >= delay,
        "ready after {:?}",
        started.elapsed()
    );
    let tenant = common::client(&admin_conf).await;
    let asked = Instant::now();
    let request = http::Request::get("/healthz").body(Vec::new()).unwrap();
    assert_eq!(tenant.request_text(request).await.unwrap(), "ok");
    assert!(asked.elapsed() >= delay);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_answer_500_to_everything() {
    let (sim, client) = management().await;
    sim.inject("broken", Failure::ServerErrors);
    common::create_tenant(&client, "tenants", "broken").await;
    let admin_conf = common::admin_conf(&client, "tenants", "broken").await;
    match tenant_namespaces(&admin_conf).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 500),
        other => panic!("expected a 500, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_tenants_never_listen() {
    let (sim, client) = management().await;
    sim.inject("unreachable", Failure::Refused);
    common::create_tenant(&client, "tenants", "unreachable").await;
    let admin_conf = common::admin_conf(&client, "tenants", "unreachable").await;
    let error = tenant_namespaces(&admin_conf).await.unwrap_err();
    assert!(is_refused(&error), "{error:?}");
    assert!(!sim.tenants()[0].listening);

    sim.inject("unreachable", Failure::None);
    common::eventually("the tenant to listen", || async {
        tenant_namespaces(&admin_conf).await.ok()
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn failures_can_be_injected_over_http() {
    let (sim, client) = management().await;
    common::create_tenant(&client, "tenants", "remote").await;
    let admin_conf = common::admin_conf(&client, "tenants", "remote").await;
    tenant_namespaces(&admin_conf).await.unwrap();

    let request = http::Request::put("/kubesim/failures/remote")
        .header("Content-Type", "application/json")
        .body(br#"{"failure":"server_errors"}"#.to_vec())
        .unwrap();
    let answer: serde_json::Value = client.request(request).await.unwrap();
    assert_eq!(answer["failure"], "server_errors");
    common::eventually("errors", || async {
        tenant_namespaces(&admin_conf).await.err()
    })
    .await;

    let request = http::Request::put("/kubesim/failures/remote")
        .body(br#"{"failure":"slow","seconds":0.2}"#.to_vec())
        .unwrap();
    let _: serde_json::Value = client.request(request).await.unwrap();
    assert_eq!(
        sim.tenants()[0].failure,
        Failure::Slow(Duration::from_millis(200))
    );

    let request = http::Request::put("/kubesim/failures/remote")
        .body(br#"{"failure":"explode"}"#.to_vec())
        .unwrap();
    match client.request::<serde_json::Value>(request).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 400),
        other => panic!("expected 400, got {other:?}"),
    }
    sim.shutdown().await;
}
