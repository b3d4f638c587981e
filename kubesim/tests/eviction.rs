//! Pod eviction honours PodDisruptionBudgets.

mod common;

use k8s_openapi::api::{core::v1::Pod, policy::v1::PodDisruptionBudget};
use kube::{
    Api, Error,
    api::{EvictParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn blocked(result: Result<impl std::fmt::Debug, Error>) -> bool {
    match result {
        Err(Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
            true
        }
        Ok(_) => false,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test]
async fn eviction_respects_pod_disruption_budgets() {
    let sim = common::start().await;
    // kube retries 429 answers with a backoff that grows to minutes; a
    // drain wants to see the refusal at once.
    let mut config = common::client_config(&sim.kubeconfig()).await;
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    common::create_namespace(&client, "apps").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    for (name, app) in [("web-1", "web"), ("web-2", "web"), ("worker", "worker")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "apps");
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    budgets.create(&PostParams::default(), &pdb).await.unwrap();

    let evict = EvictParams::default();
    assert!(
        blocked(pods.evict("web-1", &evict).await),
        "minAvailable 2 of 2 blocks"
    );
    assert!(pods.get_opt("web-1").await.unwrap().is_some());

    // Pods no budget selects go.
    assert!(!blocked(pods.evict("worker", &evict).await));
    assert!(pods.get_opt("worker").await.unwrap().is_none());

    // A budget's status, when set, decides; each eviction uses one up.
    budgets
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}})),
        )
        .await
        .unwrap();
    assert!(!blocked(pods.evict("web-1", &evict).await));
    assert!(pods.get_opt("web-1").await.unwrap().is_none());
    assert!(
        blocked(pods.evict("web-2", &evict).await),
        "no disruptions left"
    );
    let status = budgets.get("web").await.unwrap().status.unwrap();
    assert_eq!(status.disruptions_allowed, 0);

    match pods.evict("ghost", &evict).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    sim.shutdown().await;
}
