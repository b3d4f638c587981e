//! Helpers shared by the integration tests; each test binary uses a subset.
#![allow(dead_code)]

use std::{future::Future, net::Ipv4Addr, time::Duration};

use base64::Engine;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use rand::Rng;
use serde_json::json;

/// A simulator config for tests: no ready delay, and a small address pool
/// of its own so parallel tests never meet on a tenant address.
pub fn config() -> kubesim::Config {
    let mut rng = rand::rng();
    let first = Ipv4Addr::new(127, rng.random_range(2..=250), rng.random_range(0..=255), 1);
    kubesim::Config {
        kamaji: kubesim::Kamaji {
            ready_delay: Duration::ZERO,
            tenant_addresses: kubesim::Kamaji::address_range(first, 8),
        },
        ..Default::default()
    }
}

pub async fn start() -> kubesim::Kubesim {
    kubesim::start(config()).await.expect("kubesim starts")
}

/// A kube-rs client for a kubeconfig, verifying TLS against its CA.
pub async fn client(kubeconfig: &str) -> Client {
    Client::try_from(client_config(kubeconfig).await).expect("client builds")
}

pub async fn client_config(kubeconfig: &str) -> kube::Config {
    let kubeconfig = Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads")
}

/// Polls `check` until it yields a value (10 s at most).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn tcp_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kamaji.clastix.io", "v1alpha1", "TenantControlPlane"),
        "tenantcontrolplanes",
    )
}

pub fn tcp_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &tcp_resource())
}

/// A TenantControlPlane as the portal creates it.
pub fn tenant_control_plane(name: &str, version: &str) -> DynamicObject {
    let mut tcp = DynamicObject::new(name, &tcp_resource());
    tcp.data = json!({
        "spec": {
            "controlPlane": {
                "deployment": {"replicas": 2},
                "service": {"serviceType": "LoadBalancer"},
            },
            "kubernetes": {"version": version, "kubelet": {"cgroupfs": "systemd"}},
            "networkProfile": {"port": 6443, "certSANs": [format!("{name}.example.test")]},
            "addons": {"coreDNS": {}, "kubeProxy": {}},
        },
    });
    tcp
}

pub async fn create_namespace(client: &Client, name: &str) {
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
}

pub async fn create_tenant(client: &Client, namespace: &str, name: &str) {
    tcp_api(client, namespace)
        .create(
            &PostParams::default(),
            &tenant_control_plane(name, "v1.33.0"),
        )
        .await
        .expect("TenantControlPlane created");
}

/// Waits for Kamaji's admin kubeconfig secret and returns `admin.conf`.
pub async fn admin_conf(client: &Client, namespace: &str, name: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret_name = format!("{name}-admin-kubeconfig");
    let secret = eventually("the admin kubeconfig secret", || async {
        secrets.get_opt(&secret_name).await.expect("secret lookup")
    })
    .await;
    let data = secret.data.expect("secret data");
    String::from_utf8(data["admin.conf"].0.clone()).expect("admin.conf is text")
}

/// Status string Kamaji reports for a TenantControlPlane.
pub async fn tenant_status(client: &Client, namespace: &str, name: &str) -> Option<String> {
    let tcp = tcp_api(client, namespace).get(name).await.ok()?;
    tcp.data
        .pointer("/status/kubernetesResources/version/status")
        .and_then(|s| s.as_str())
        .map(String::from)
}

pub fn decode_base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// Evicts a pod with a policy/v1 Eviction body of its own: kube-rs 5's
/// `EvictParams` sends its delete options as `delete_options`, a field the
/// API server (and kubesim) ignores, so a grace period or dry run must be
/// sent this way.
pub async fn evict(
    client: &Client,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
    dry_run: bool,
) -> Result<serde_json::Value, kube::Error> {
    let mut options = json!({});
    if let Some(grace) = grace {
        options["gracePeriodSeconds"] = json!(grace);
    }
    if dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
        "deleteOptions": options,
    });
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction"
    ))
    .header("Content-Type", "application/json")
    .body(serde_json::to_vec(&body).expect("eviction body"))
    .expect("eviction request");
    client.request(request).await
}
