//! Workload controllers: applied Deployments, StatefulSets, DaemonSets and
//! Jobs report ready (or complete) after the workload delay, on the
//! management server and in tenants, unless a failure is injected.
//!
//! Injected workload failures are process-wide and keyed by name, so every
//! test here uses names of its own.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::Job,
};
use kube::{
    Api, Client, Error, Resource,
    api::{Patch, PatchParams},
};
use kubesim::WorkloadFailure;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

/// How long a healthy workload may take here: the 300 ms delay, plus room
/// for a busy machine.
const READY_WITHIN: Duration = Duration::from_secs(3);

/// Server-side apply, as the portal installs applications.
async fn apply<K>(api: &Api<K>, manifest: Value) -> K
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = manifest["metadata"]["name"]
        .as_str()
        .expect("manifest has a name")
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("kubesim-tests").force(),
        &Patch::Apply(&manifest),
    )
    .await
    .expect("server-side apply")
}

/// Polls `check` until it yields a value, failing after `limit`.
async fn within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn deployment(name: &str, replicas: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}

fn job(name: &str, backoff_limit: Option<i32>) -> Value {
    let mut manifest = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": "busybox"}],
                },
            },
        },
    });
    if let Some(limit) = backoff_limit {
        manifest["spec"]["backoffLimit"] = json!(limit);
    }
    manifest
}

/// The Deployment once its status shows `replicas` available for the
/// current generation.
async fn available(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    within(READY_WITHIN, "the deployment becomes available", || async {
        let deployment = api.get(name).await.ok()?;
        let generation = deployment.metadata.generation;
        let status = deployment.status.as_ref()?;
        let ready = status.observed_generation == generation
            && status.available_replicas == Some(replicas)
            && status.ready_replicas == Some(replicas);
        ready.then_some(deployment)
    })
    .await
}

fn condition<'a>(conditions: &'a [impl HasCondition], kind: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.kind() == kind)
        .map(HasCondition::status)
}

trait HasCondition {
    fn kind(&self) -> &str;
    fn status(&self) -> &str;
}

impl HasCondition for k8s_openapi::api::apps::v1::DeploymentCondition {
    fn kind(&self) -> &str {
        &self.type_
    }
    fn status(&self) -> &str {
        &self.status
    }
}

impl HasCondition for k8s_openapi::api::batch::v1::JobCondition {
    fn kind(&self) -> &str {
        &self.type_
    }
    fn status(&self) -> &str {
        &self.status
    }
}

async fn management() -> (kubesim::Kubesim, Client) {
    let sim = common::start().await;
    let client = common::client(&sim.kubeconfig()).await;
    (sim, client)
}

#[tokio::test]
async fn an_applied_deployment_becomes_available_and_follows_spec_changes() {
    let (sim, client) = management().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let applied = apply(&api, deployment("wl-web", 2, "nginx:1")).await;
    assert!(
        applied
            .status
            .as_ref()
            .is_none_or(|s| s.available_replicas.is_none()),
        "not available the moment it is applied"
    );

    let ready = available(&api, "wl-web", 2).await;
    let status = ready.status.expect("status");
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
    let conditions = status.conditions.expect("conditions");
    assert_eq!(condition(&conditions, "Available"), Some("True"));
    assert_eq!(condition(&conditions, "Progressing"), Some("True"));
    let progressing = conditions.iter().find(|c| c.type_ == "Progressing");
    assert_eq!(
        progressing.and_then(|c| c.reason.as_deref()),
        Some("NewReplicaSetAvailable")
    );

    let changed = apply(&api, deployment("wl-web", 3, "nginx:2")).await;
    assert_eq!(changed.metadata.generation, Some(2));
    let ready = available(&api, "wl-web", 3).await;
    assert_eq!(ready.status.and_then(|s| s.observed_generation), Some(2));
    sim.shutdown().await;
}

#[tokio::test]
async fn stateful_sets_and_daemon_sets_become_ready() {
    let (sim, client) = management().await;
    let stateful_sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    apply(
        &stateful_sets,
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "wl-db"},
            "spec": {
                "replicas": 3,
                "serviceName": "wl-db",
                "selector": {"matchLabels": {"app": "wl-db"}},
                "template": {
                    "metadata": {"labels": {"app": "wl-db"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres"}]},
                },
            },
        }),
    )
    .await;
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client, "kube-system");
    apply(
        &daemon_sets,
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "wl-agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "wl-agent"}},
                "template": {
                    "metadata": {"labels": {"app": "wl-agent"}},
                    "spec": {"containers": [{"name": "agent", "image": "agent"}]},
                },
            },
        }),
    )
    .await;

    within(READY_WITHIN, "the stateful set becomes ready", || async {
        let status = stateful_sets.get("wl-db").await.ok()?.status?;
        (status.ready_replicas == Some(3)
            && status.current_replicas == Some(3)
            && status.updated_replicas == Some(3))
        .then_some(())
    })
    .await;
    // No Nodes in this cluster: a DaemonSet then counts one.
    within(READY_WITHIN, "the daemon set becomes ready", || async {
        let status = daemon_sets.get("wl-agent").await.ok()?.status?;
        (status.desired_number_scheduled == 1 && status.number_ready == 1).then_some(())
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_job_completes() {
    let (sim, client) = management().await;
    let api: Api<Job> = Api::namespaced(client, "default");
    apply(&api, job("wl-migrate", None)).await;
    let status = within(READY_WITHIN, "the job completes", || async {
        let status = api.get("wl-migrate").await.ok()?.status?;
        let conditions = status.conditions.as_deref()?;
        (condition(conditions, "Complete") == Some("True")).then_some(status)
    })
    .await;
    assert_eq!(status.succeeded, Some(1));
    assert!(status.start_time.is_some());
    assert!(status.completion_time.is_some());
    assert_eq!(status.failed, None);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_job_injected_to_fail_exceeds_its_backoff_limit() {
    let (sim, client) = management().await;
    sim.inject_workload("wl-doomed", WorkloadFailure::Fail);
    let api: Api<Job> = Api::namespaced(client, "default");
    apply(&api, job("wl-doomed", Some(2))).await;
    let status = within(READY_WITHIN, "the job fails", || async {
        let status = api.get("wl-doomed").await.ok()?.status?;
        let conditions = status.conditions.as_deref()?;
        (condition(conditions, "Failed") == Some("True")).then_some(status)
    })
    .await;
    assert!(status.failed.is_some_and(|failed| failed > 2));
    let conditions = status.conditions.expect("conditions");
    let failed = conditions.iter().find(|c| c.type_ == "Failed");
    assert_eq!(
        failed.and_then(|c| c.reason.as_deref()),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(condition(&conditions, "Complete"), None);
    sim.inject_workload("wl-doomed", WorkloadFailure::None);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stalled_deployment_stays_unavailable_until_released() {
    let (sim, client) = management().await;
    sim.inject_workload("wl-stuck", WorkloadFailure::Stall);
    let api: Api<Deployment> = Api::namespaced(client, "default");
    apply(&api, deployment("wl-stuck", 2, "nginx:1")).await;

    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let deployment = api.get("wl-stuck").await.unwrap();
        let status = deployment.status.unwrap_or_default();
        assert!(
            status.available_replicas.unwrap_or(0) == 0 && status.ready_replicas.unwrap_or(0) == 0,
            "a stalled deployment has nothing ready: {status:?}"
        );
        let conditions = status.conditions.unwrap_or_default();
        assert_ne!(condition(&conditions, "Available"), Some("True"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    sim.inject_workload("wl-stuck", WorkloadFailure::None);
    available(&api, "wl-stuck", 2).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn workloads_become_ready_inside_a_tenant_api_server() {
    let (sim, client) = management().await;
    common::create_namespace(&client, "tenants").await;
    common::create_tenant(&client, "tenants", "wl-tenant").await;
    let admin_conf = common::admin_conf(&client, "tenants", "wl-tenant").await;
    let tenant = common::client(&admin_conf).await;

    let api: Api<Deployment> = Api::namespaced(tenant.clone(), "default");
    apply(&api, deployment("wl-tenant-web", 2, "nginx:1")).await;
    available(&api, "wl-tenant-web", 2).await;

    // The management handle reaches into the tenant.
    sim.inject_workload("wl-tenant-job", WorkloadFailure::Fail);
    let jobs: Api<Job> = Api::namespaced(tenant, "default");
    apply(&jobs, job("wl-tenant-job", None)).await;
    let status = within(READY_WITHIN, "the tenant's job fails", || async {
        let status = jobs.get("wl-tenant-job").await.ok()?.status?;
        let conditions = status.conditions.as_deref()?;
        (condition(conditions, "Failed") == Some("True")).then_some(status)
    })
    .await;
    assert_eq!(status.failed, Some(7));
    sim.inject_workload("wl-tenant-job", WorkloadFailure::None);
    sim.shutdown().await;
}

#[tokio::test]
async fn workload_failures_can_be_injected_over_http() {
    let (sim, client) = management().await;
    let request = http::Request::put("/kubesim/workload-failures/wl-remote")
        .header("Content-Type", "application/json")
        .body(br#"{"failure":"stall"}"#.to_vec())
        .unwrap();
    let answer: Value = client.request(request).await.unwrap();
    assert_eq!(answer, json!({"name": "wl-remote", "failure": "stall"}));

    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    apply(&api, job("wl-remote", None)).await;
    let status = within(READY_WITHIN, "the job starts", || async {
        api.get("wl-remote").await.ok()?.status
    })
    .await;
    assert_eq!(status.active, Some(1));
    assert_eq!(status.conditions, None);

    let request = http::Request::put("/kubesim/workload-failures/wl-remote")
        .body(br#"{"failure":"none"}"#.to_vec())
        .unwrap();
    let _: Value = client.request(request).await.unwrap();
    within(READY_WITHIN, "the released job completes", || async {
        let status = api.get("wl-remote").await.ok()?.status?;
        (status.succeeded == Some(1)).then_some(())
    })
    .await;

    let request = http::Request::put("/kubesim/workload-failures/wl-remote")
        .body(br#"{"failure":"explode"}"#.to_vec())
        .unwrap();
    match client.request::<Value>(request).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 400),
        other => panic!("expected 400, got {other:?}"),
    }
    sim.shutdown().await;
}
