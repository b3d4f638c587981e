//! Pod eviction honours PodDisruptionBudgets, which the simulator works out
//! from the pods as they are, like the disruption controller.

mod common;

use k8s_openapi::api::{
    core::v1::{Node, Pod},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Error,
    api::{EvictParams, PostParams},
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
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "node-1"}})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    for (name, app) in [
        ("web-1", "web"),
        ("web-2", "web"),
        ("web-3", "web"),
        ("worker", "worker"),
    ] {
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

    // The kubelet starts the pods after the workload delay; the budget's
    // status follows.
    let status = common::eventually("the budget counts three healthy pods", || async {
        let status = budgets.get("web").await.ok()?.status?;
        (status.current_healthy == 3).then_some(status)
    })
    .await;
    assert_eq!(
        (
            status.desired_healthy,
            status.expected_pods,
            status.disruptions_allowed
        ),
        (2, 3, 1)
    );

    // Pods no budget selects go.
    assert!(!blocked(
        common::evict(&client, "apps", "worker", Some(0), false).await
    ));
    assert!(pods.get_opt("worker").await.unwrap().is_none());

    assert!(!blocked(
        common::evict(&client, "apps", "web-1", Some(0), false).await
    ));
    assert!(pods.get_opt("web-1").await.unwrap().is_none());
    // kube-rs's own evict, as the portal calls it.
    match pods.evict("web-2", &EvictParams::default()).await {
        Err(Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
            let details = status.details.expect("details");
            assert_eq!(details.causes[0].reason, "DisruptionBudget");
            assert_eq!(
                details.causes[0].message,
                "The disruption budget web needs 2 healthy pods and has 2 currently"
            );
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(pods.get_opt("web-2").await.unwrap().is_some());
    common::eventually("the budget allows no disruption", || async {
        let status = budgets.get("web").await.ok()?.status?;
        (status.disruptions_allowed == 0 && status.current_healthy == 2).then_some(())
    })
    .await;

    // Dry runs check without evicting.
    assert!(blocked(
        common::evict(&client, "apps", "web-3", None, true).await
    ));
    let mut budget = budgets.get("web").await.unwrap();
    budget.spec.as_mut().unwrap().min_available =
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1));
    budgets
        .replace("web", &PostParams::default(), &budget)
        .await
        .unwrap();
    common::evict(&client, "apps", "web-3", None, true)
        .await
        .expect("a dry run passes once the budget allows it");
    let web3 = pods.get("web-3").await.unwrap();
    assert!(web3.metadata.deletion_timestamp.is_none(), "dry run only");

    match pods.evict("ghost", &EvictParams::default()).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    sim.shutdown().await;
}
