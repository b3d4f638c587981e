//! kube-rs clients with typed k8s-openapi objects against the management
//! server: CRUD, patches, errors, selectors, watches, custom resources.

mod common;

use std::collections::BTreeMap;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Secret, Service},
    rbac::v1::ClusterRoleBinding,
};
use kube::{
    Api, Client, Error,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        PostParams, WatchEvent, WatchParams,
    },
};
use serde_json::{Value, json};

fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("valid object")
}

fn api_error(result: Result<impl std::fmt::Debug, Error>) -> (u16, String) {
    match result {
        Err(Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn setup() -> (kubesim::Kubesim, Client) {
    let sim = common::start().await;
    let client = common::client(&sim.kubeconfig()).await;
    common::create_namespace(&client, "team").await;
    (sim, client)
}

#[tokio::test]
async fn typed_objects_round_trip() {
    let (sim, client) = setup().await;
    let pp = PostParams::default();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    let secret = secrets
        .create(
            &pp,
            &object(json!({
                "metadata": {"name": "db", "labels": {"app": "db"}},
                "stringData": {"password": "hunter2"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.data.unwrap()["password"].0, b"hunter2");
    let meta = secret.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("team"));

    let services: Api<Service> = Api::namespaced(client.clone(), "team");
    let service = services
        .create(
            &pp,
            &object(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            })),
        )
        .await
        .unwrap();
    let spec = service.spec.unwrap();
    assert!(spec.cluster_ip.is_some());
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));

    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    bindings
        .create(
            &pp,
            &object(json!({
                "metadata": {"name": "team-admins"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "Group", "name": "team", "apiGroup": "rbac.authorization.k8s.io"}],
            })),
        )
        .await
        .unwrap();
    let binding = bindings.get("team-admins").await.unwrap();
    assert_eq!(binding.role_ref.name, "cluster-admin");

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        configmaps
            .create(
                &pp,
                &object(json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": name}})),
            )
            .await
            .unwrap();
    }
    let names = |list: Vec<ConfigMap>| -> Vec<String> {
        list.into_iter().filter_map(|c| c.metadata.name).collect()
    };
    let front = configmaps
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(names(front.items), ["a", "c"]);
    let not_front = configmaps
        .list(&ListParams::default().labels("tier!=front"))
        .await
        .unwrap();
    assert_eq!(names(not_front.items), ["b"]);
    let labelled = configmaps
        .list(&ListParams::default().labels("tier"))
        .await
        .unwrap();
    assert_eq!(labelled.items.len(), 3);
    let by_name = configmaps
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(by_name.items), ["b"]);
    let all_secrets: Api<Secret> = Api::all(client.clone());
    let everywhere = all_secrets
        .list(&ListParams::default().fields("metadata.namespace=team"))
        .await
        .unwrap();
    assert_eq!(everywhere.items.len(), 1);
    let paged = configmaps
        .list(&ListParams::default().limit(2))
        .await
        .unwrap();
    assert_eq!(paged.items.len(), 2);
    let rest = configmaps
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(paged.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(rest.items), ["c"]);

    sim.shutdown().await;
}

#[tokio::test]
async fn patches_merge_json_and_apply() {
    let (sim, client) = setup().await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    configmaps
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}})),
        )
        .await
        .unwrap();

    let merged = configmaps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"x": "y"}}, "data": {"a": null, "c": "3"}}),
            ),
        )
        .await
        .unwrap();
    let data = merged.data.unwrap();
    assert_eq!(
        data,
        BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
    );
    assert_eq!(merged.metadata.labels.unwrap()["x"], "y");

    let strategic = configmaps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"d": "4"}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.data.unwrap()["d"], "4");

    // kube's Patch::Json needs a feature the workspace leaves off: send it raw.
    let request = http::Request::patch("/api/v1/namespaces/team/configmaps/settings")
        .header("Content-Type", "application/json-patch+json")
        .body(
            serde_json::to_vec(&json!([
                {"op": "add", "path": "/data/e", "value": "5"},
                {"op": "replace", "path": "/data/b", "value": "two"},
                {"op": "remove", "path": "/data/c"},
            ]))
            .unwrap(),
        )
        .unwrap();
    let patched: ConfigMap = client.request(request).await.unwrap();
    let data = patched.data.unwrap();
    assert_eq!(
        (data["b"].as_str(), data.get("c"), data["e"].as_str()),
        ("two", None, "5")
    );

    let apply = PatchParams::apply("kubesim-test").force();
    let created = configmaps
        .patch(
            "applied",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied"}, "data": {"first": "1"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["first"], "1");
    let updated = configmaps
        .patch(
            "applied",
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied"}, "data": {"second": "2"},
            })),
        )
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["second"], "2");

    // Applying into a missing namespace fails like a create would.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let result = elsewhere
        .patch(
            "x",
            &apply,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            ),
        )
        .await;
    assert_eq!(api_error(result), (404, "NotFound".into()));

    sim.shutdown().await;
}

#[tokio::test]
async fn errors_are_kubernetes_status_objects() {
    let (sim, client) = setup().await;
    let pp = PostParams::default();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let cm: ConfigMap = object(json!({"metadata": {"name": "one"}, "data": {"v": "1"}}));
    let stored = configmaps.create(&pp, &cm).await.unwrap();

    assert_eq!(
        api_error(configmaps.create(&pp, &cm).await),
        (409, "AlreadyExists".into())
    );
    assert_eq!(
        api_error(configmaps.get("nope").await),
        (404, "NotFound".into())
    );
    assert!(configmaps.get_opt("nope").await.unwrap().is_none());

    // A replace based on an old resourceVersion conflicts.
    let mut first = stored.clone();
    first.data = Some(BTreeMap::from([("v".into(), "2".into())]));
    configmaps.replace("one", &pp, &first).await.unwrap();
    let mut stale = stored.clone();
    stale.data = Some(BTreeMap::from([("v".into(), "3".into())]));
    assert_eq!(
        api_error(configmaps.replace("one", &pp, &stale).await),
        (409, "Conflict".into())
    );

    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    assert_eq!(
        api_error(elsewhere.create(&pp, &cm).await),
        (404, "NotFound".into())
    );

    let invalid: ConfigMap = object(json!({"metadata": {"name": "Not_Valid"}}));
    assert_eq!(
        api_error(configmaps.create(&pp, &invalid).await),
        (422, "Invalid".into())
    );

    let deleted = configmaps
        .delete("one", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_left());
    assert_eq!(
        api_error(configmaps.get("one").await),
        (404, "NotFound".into())
    );
    assert_eq!(
        api_error(configmaps.delete("one", &DeleteParams::default()).await),
        (404, "NotFound".into())
    );

    let mut wrong = sim.kubeconfig();
    wrong = wrong.replace(&sim.token(), "not-the-token");
    let stranger = common::client(&wrong).await;
    let namespaces: Api<Namespace> = Api::all(stranger);
    assert_eq!(
        api_error(namespaces.list(&ListParams::default()).await),
        (401, "Unauthorized".into())
    );

    sim.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    let (sim, client) = setup().await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    configmaps
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "doomed"}})),
        )
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    common::eventually("namespace gone", || async {
        namespaces
            .get_opt("team")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let all: Api<ConfigMap> = Api::all(client.clone());
    let left = all
        .list(&ListParams::default().fields("metadata.namespace=team"))
        .await
        .unwrap();
    assert!(left.items.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_streams_existing_and_new_objects() {
    let (sim, client) = setup().await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    configmaps
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "before"}})),
        )
        .await
        .unwrap();
    let list = configmaps.list(&ListParams::default()).await.unwrap();
    let from = list.metadata.resource_version.unwrap();

    let stream = configmaps
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .unwrap();
    let mut stream = stream.boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("before"))
    );

    let resumed = configmaps
        .watch(&WatchParams::default().timeout(10), &from)
        .await
        .unwrap();
    let mut resumed = resumed.boxed();
    configmaps
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "after"}})),
        )
        .await
        .unwrap();
    for events in [&mut stream, &mut resumed] {
        let next = events.try_next().await.unwrap().unwrap();
        assert!(
            matches!(next, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("after"))
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn custom_resource_definitions_become_servable() {
    let (sim, client) = setup().await;
    let crds = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let mut crd = DynamicObject::new("widgets.example.com", &crds);
    crd.data = json!({
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object"}},
                          "subresources": {"status": {}}}],
        },
    });
    Api::<DynamicObject>::all_with(client.clone(), &crds)
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();

    let request = http::Request::get("/apis/example.com/v1")
        .body(Vec::new())
        .unwrap();
    let resources: Value = client.request(request).await.unwrap();
    assert_eq!(resources["resources"][0]["name"], "widgets");
    let request = http::Request::get("/apis").body(Vec::new()).unwrap();
    let groups: Value = client.request(request).await.unwrap();
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in [
        "apps",
        "kamaji.clastix.io",
        "example.com",
        "policy",
        "rbac.authorization.k8s.io",
    ] {
        assert!(
            group_names.contains(&group),
            "{group} missing from {group_names:?}"
        );
    }

    let widgets_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "team", &widgets_resource);
    let mut widget = DynamicObject::new("w1", &widgets_resource);
    widget.data = json!({"spec": {"size": 3}});
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ok": true}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["ok"], true);
    assert_eq!(
        status.data["spec"]["size"], 3,
        "status writes leave the spec alone"
    );
    let listed = widgets.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    sim.shutdown().await;
}
