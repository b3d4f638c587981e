//! A state directory carries objects, credentials and tenants across a
//! restart.

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::json;

#[tokio::test]
async fn restart_keeps_objects_and_tenants() {
    let state_dir = std::env::temp_dir().join(format!("kubesim-state-{}", uuid::Uuid::now_v7()));
    let mut config = common::config();
    config.state_dir = Some(state_dir.clone());

    let sim = kubesim::start(config.clone()).await.unwrap();
    let token = sim.token();
    let client = common::client(&sim.kubeconfig()).await;
    common::create_namespace(&client, "tenants").await;
    let configmap: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "kept"}, "data": {"v": "1"}})).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "tenants")
        .create(&PostParams::default(), &configmap)
        .await
        .unwrap();
    common::create_tenant(&client, "tenants", "durable").await;
    let admin_conf = common::admin_conf(&client, "tenants", "durable").await;
    let tenant = common::client(&admin_conf).await;
    Api::<ConfigMap>::namespaced(tenant.clone(), "default")
        .create(&PostParams::default(), &configmap)
        .await
        .unwrap();
    let address_before = sim.tenants()[0].address;
    sim.shutdown().await;

    let sim = kubesim::start(config).await.unwrap();
    assert_eq!(sim.token(), token, "the token survives");
    let client = common::client(&sim.kubeconfig()).await;
    let kept = Api::<ConfigMap>::namespaced(client.clone(), "tenants")
        .get("kept")
        .await
        .unwrap();
    assert_eq!(kept.data.unwrap()["v"], "1");
    assert_eq!(
        common::tenant_status(&client, "tenants", "durable")
            .await
            .as_deref(),
        Some("Ready")
    );
    assert_eq!(sim.tenants()[0].address, address_before);

    // The old admin kubeconfig still works: same address, CA and token.
    let tenant = common::client(&admin_conf).await;
    let kept = Api::<ConfigMap>::namespaced(tenant.clone(), "default")
        .get("kept")
        .await
        .unwrap();
    assert_eq!(kept.metadata.name.as_deref(), Some("kept"));
    let namespaces = Api::<Namespace>::all(tenant)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(namespaces.items.len() >= 4);

    common::tcp_api(&client, "tenants")
        .delete("durable", &DeleteParams::default())
        .await
        .unwrap();
    let tenant_dir = state_dir.join("tenants").join("tenants");
    common::eventually("the tenant's state file to go", || async {
        let empty = std::fs::read_dir(&tenant_dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        empty.then_some(())
    })
    .await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
}
