//! The controllers that make pods: Deployments own one ReplicaSet per pod
//! template, ReplicaSets keep `spec.replicas` pods, DaemonSets one pod on
//! every node. They act on a [`World`] read at the start of a pass; what
//! they write comes back as store events and starts the next pass.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::{
    api::random_suffix,
    pods::{self, controller_of, owner_reference},
    store::{GroupResource, Store, StoreError, meta_str},
    workloads::status::template_hash,
};

pub(crate) fn replica_sets() -> GroupResource {
    GroupResource::new("apps", "replicasets")
}

pub(crate) fn daemon_sets() -> GroupResource {
    GroupResource::new("apps", "daemonsets")
}

pub(crate) fn deployments() -> GroupResource {
    GroupResource::new("apps", "deployments")
}

/// Everything one pass of the pod controllers looks at, with the lookups
/// it needs indexed (a pass runs after every burst of changes).
pub(crate) struct World {
    pub nodes: Vec<Value>,
    pub pods: Vec<Value>,
    pub replica_sets: Vec<Value>,
    pub daemon_sets: Vec<Value>,
    pub deployments: Vec<Value>,
    node_index: HashMap<String, usize>,
    /// Pods (as indices) by their controller's uid.
    pods_by_owner: HashMap<String, Vec<usize>>,
    replica_set_index: HashMap<String, usize>,
    daemon_set_uids: HashSet<String>,
}

impl World {
    pub fn load(store: &Store) -> World {
        let all = |gr: GroupResource| store.list(&gr, None).0;
        let nodes = all(pods::nodes());
        let pods = all(pods::gr());
        let replica_sets = all(replica_sets());
        let daemon_sets = all(daemon_sets());
        let node_index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (meta_str(n, "name").to_string(), i))
            .collect();
        let mut pods_by_owner: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, pod) in pods.iter().enumerate() {
            if let Some(owner) = controller_of(pod) {
                pods_by_owner.entry(owner.uid).or_default().push(i);
            }
        }
        let replica_set_index = replica_sets
            .iter()
            .enumerate()
            .map(|(i, r)| (meta_str(r, "uid").to_string(), i))
            .collect();
        let daemon_set_uids = daemon_sets
            .iter()
            .map(|d| meta_str(d, "uid").to_string())
            .collect();
        World {
            nodes,
            pods,
            replica_sets,
            daemon_sets,
            deployments: all(deployments()),
            node_index,
            pods_by_owner,
            replica_set_index,
            daemon_set_uids,
        }
    }

    pub fn node(&self, name: &str) -> Option<&Value> {
        self.node_index.get(name).map(|i| &self.nodes[*i])
    }

    /// The pods whose controller is the object with `uid`.
    pub fn pods_of<'a>(&'a self, uid: &str) -> impl Iterator<Item = &'a Value> + 'a {
        self.pods_by_owner
            .get(uid)
            .into_iter()
            .flatten()
            .map(|i| &self.pods[*i])
    }

    /// The name failures are injected under for a pod's workload: its
    /// Deployment's, ReplicaSet's or DaemonSet's; None for other pods.
    pub fn workload_name(&self, pod: &Value) -> Option<String> {
        let owner = controller_of(pod)?;
        match owner.kind.as_str() {
            "DaemonSet" => self
                .daemon_set_uids
                .contains(&owner.uid)
                .then_some(owner.name),
            "ReplicaSet" => {
                let replica_set = &self.replica_sets[*self.replica_set_index.get(&owner.uid)?];
                Some(
                    controller_of(replica_set)
                        .filter(|d| d.kind == "Deployment")
                        .map_or(owner.name, |d| d.name),
                )
            }
            _ => None,
        }
    }
}

/// Pods counted as running or about to: neither terminating nor finished.
pub(crate) fn is_active(pod: &Value) -> bool {
    !pods::is_terminating(pod) && !matches!(pods::phase(pod), "Succeeded" | "Failed")
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

/// Whether a node's labels satisfy a pod spec's `nodeSelector`.
pub(crate) fn selects_node(pod_spec: &Value, node: &Value) -> bool {
    let Some(wanted) = pod_spec.get("nodeSelector").and_then(Value::as_object) else {
        return true;
    };
    wanted.iter().all(|(key, value)| {
        node.pointer("/metadata/labels").and_then(|l| l.get(key)) == Some(value)
    })
}

/// Tolerations the DaemonSet controller adds, so its pods run on nodes
/// that are cordoned or in trouble.
fn daemon_tolerations(spec: &mut Value) {
    let standard = [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in standard {
        if !tolerations.iter().any(|t| t["key"] == key) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    spec["tolerations"] = json!(tolerations);
}

/// Creates a pod from `owner`'s template, named `<owner>-<5 characters>`.
fn create_pod(store: &Store, owner: &Value, kind: &str, node: Option<&str>) {
    let owner_name = meta_str(owner, "name");
    let template = owner.pointer("/spec/template").cloned().unwrap_or_default();
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if !spec.is_object() {
        spec = json!({});
    }
    for (field, default) in [
        ("restartPolicy", json!("Always")),
        (
            "terminationGracePeriodSeconds",
            json!(pods::DEFAULT_GRACE_SECONDS),
        ),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if spec.get(field).is_none_or(Value::is_null) {
            spec[field] = default;
        }
    }
    if kind == "DaemonSet" {
        daemon_tolerations(&mut spec);
    }
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    let mut metadata = json!({
        "namespace": meta_str(owner, "namespace"),
        "generateName": format!("{owner_name}-"),
        "ownerReferences": owner_reference("apps/v1", kind, owner),
    });
    for field in ["labels", "annotations"] {
        if let Some(value) = template.pointer(&format!("/metadata/{field}")) {
            metadata[field] = value.clone();
        }
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending"},
    });
    // A clash with an existing name is unlikely; try a few suffixes.
    for _ in 0..5 {
        pod["metadata"]["name"] = json!(format!("{owner_name}-{}", random_suffix()));
        match store.create(&pods::gr(), pod.clone()) {
            Err(StoreError::AlreadyExists) => continue,
            _ => return,
        }
    }
}

/// The order the ReplicaSet controller removes surplus pods in: unbound
/// before bound, pending before running, unready before ready, newest first.
fn removal_rank(pod: &Value) -> (bool, bool, bool, std::cmp::Reverse<String>) {
    (
        !pods::node_name(pod).is_empty(),
        pods::phase(pod) == "Running",
        pods::is_ready(pod),
        std::cmp::Reverse(meta_str(pod, "creationTimestamp").to_string()),
    )
}

/// Every Deployment has one ReplicaSet for its current template,
/// `<deployment>-<pod-template-hash>`, at the Deployment's replicas; its
/// other ReplicaSets scale to zero.
pub(crate) fn reconcile_deployments(store: &Store, world: &World) {
    for deployment in world
        .deployments
        .iter()
        .filter(|d| !pods::is_terminating(d))
    {
        let (namespace, name, uid) = (
            meta_str(deployment, "namespace"),
            meta_str(deployment, "name"),
            meta_str(deployment, "uid"),
        );
        let hash = template_hash(deployment);
        let current = format!("{name}-{hash}");
        let want = replicas(deployment);
        let owned: Vec<&Value> = world
            .replica_sets
            .iter()
            .filter(|r| controller_of(r).is_some_and(|c| c.uid == uid))
            .collect();
        for old in owned.iter().filter(|r| meta_str(r, "name") != current) {
            if replicas(old) != 0 {
                store.update_with(&replica_sets(), namespace, meta_str(old, "name"), |rs| {
                    rs["spec"]["replicas"] = json!(0);
                });
            }
        }
        let existing = world
            .replica_sets
            .iter()
            .find(|r| meta_str(r, "namespace") == namespace && meta_str(r, "name") == current);
        match existing {
            Some(rs) if controller_of(rs).is_some_and(|c| c.uid == uid) => {
                if replicas(rs) != want {
                    store.update_with(&replica_sets(), namespace, &current, |rs| {
                        rs["spec"]["replicas"] = json!(want);
                    });
                }
            }
            // Someone else's ReplicaSet of that name: leave it be.
            Some(_) => {}
            None => {
                let revision = owned
                    .iter()
                    .filter_map(|r| {
                        r.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                            .and_then(Value::as_str)
                            .and_then(|v| v.parse::<i64>().ok())
                    })
                    .max()
                    .unwrap_or(0)
                    + 1;
                let mut template = deployment
                    .pointer("/spec/template")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = deployment
                    .pointer("/spec/selector")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let replica_set = json!({
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": current,
                        "namespace": namespace,
                        "labels": template["metadata"]["labels"].clone(),
                        "annotations": {
                            "deployment.kubernetes.io/revision": revision.to_string(),
                            "deployment.kubernetes.io/desired-replicas": want.to_string(),
                        },
                        "ownerReferences": owner_reference("apps/v1", "Deployment", deployment),
                    },
                    "spec": {"replicas": want, "selector": selector, "template": template},
                });
                let _ = store.create(&replica_sets(), replica_set);
            }
        }
    }
}

/// Keeps each ReplicaSet at `spec.replicas` active pods and reports them.
/// A terminating pod no longer counts, so its replacement starts at once.
pub(crate) fn reconcile_replica_sets(store: &Store, world: &World) {
    for rs in world
        .replica_sets
        .iter()
        .filter(|r| !pods::is_terminating(r))
    {
        let (namespace, name, uid) = (
            meta_str(rs, "namespace"),
            meta_str(rs, "name"),
            meta_str(rs, "uid"),
        );
        let mut active: Vec<&Value> = world.pods_of(uid).filter(|p| is_active(p)).collect();
        let want = usize::try_from(replicas(rs)).unwrap_or(0);
        for _ in active.len()..want {
            create_pod(store, rs, "ReplicaSet", None);
        }
        if active.len() > want {
            active.sort_by_key(|p| removal_rank(p));
            for surplus in &active[..active.len() - want] {
                pods::delete(store, namespace, meta_str(surplus, "name"), None);
            }
        }
        let ready = active.iter().filter(|p| pods::is_ready(p)).count();
        let generation = rs
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": active.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": generation,
        });
        if rs.get("status") != Some(&status) {
            store.update_with(&replica_sets(), namespace, name, |rs| {
                rs["status"] = status;
            });
        }
    }
}

/// One pod of each DaemonSet on every node its template selects, cordoned
/// ones included; pods on nodes that are gone are removed at once. A node
/// whose pod is still terminating gets its new one once the old is gone.
pub(crate) fn reconcile_daemon_sets(store: &Store, world: &World) {
    for ds in world
        .daemon_sets
        .iter()
        .filter(|d| !pods::is_terminating(d))
    {
        let (namespace, uid) = (meta_str(ds, "namespace"), meta_str(ds, "uid"));
        let pod_spec = ds
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or_default();
        let owned: Vec<&Value> = world.pods_of(uid).collect();
        let mut wanted_nodes = HashSet::new();
        for node in world.nodes.iter().filter(|n| selects_node(&pod_spec, n)) {
            let node_name = meta_str(node, "name");
            wanted_nodes.insert(node_name);
            let on_node: Vec<&&Value> = owned
                .iter()
                .filter(|p| pods::node_name(p) == node_name)
                .collect();
            if on_node.is_empty() {
                create_pod(store, ds, "DaemonSet", Some(node_name));
            }
            let mut running: Vec<&&Value> = on_node.into_iter().filter(|p| is_active(p)).collect();
            if running.len() > 1 {
                running.sort_by_key(|p| removal_rank(p));
                for surplus in &running[..running.len() - 1] {
                    pods::delete(store, namespace, meta_str(surplus, "name"), None);
                }
            }
        }
        for stray in owned
            .iter()
            .filter(|p| !wanted_nodes.contains(pods::node_name(p)))
        {
            let node_gone = world.node(pods::node_name(stray)).is_none();
            pods::delete(
                store,
                namespace,
                meta_str(stray, "name"),
                node_gone.then_some(0),
            );
        }
    }
}
