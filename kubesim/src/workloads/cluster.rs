//! The pod side of a cluster, which the real one spreads over the scheduler,
//! kubelets, the garbage collector and the disruption controller: pods get
//! bound to nodes, start (Running, Ready) after the workload delay, go when
//! their grace period has passed, follow their owners and nodes away, and
//! PodDisruptionBudgets report what they allow.
//!
//! Every change to pods, nodes, the workloads that make pods, or budgets
//! starts a pass over all of them; a pass writes only what differs, so the
//! events of its own writes lead to one more pass that finds nothing to do.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    sync::broadcast::error::{RecvError, TryRecvError},
    time::Instant,
};

use crate::{
    disruption,
    pods::{self, controller_of},
    store::{GroupResource, Store, meta_str, now_rfc3339},
    workloads::{
        failure::{self, WorkloadFailure},
        replication::{self, World, is_active, selects_node},
    },
};

fn events() -> GroupResource {
    GroupResource::new("", "events")
}

/// Changes to these start a pass.
fn relevant(gr: &GroupResource) -> bool {
    *gr == pods::gr()
        || *gr == pods::nodes()
        || *gr == replication::replica_sets()
        || *gr == replication::daemon_sets()
        || *gr == replication::deployments()
        || *gr == disruption::gr()
}

/// A FailedScheduling event already written for a pod.
struct Warning {
    namespace: String,
    name: String,
    message: String,
}

pub(crate) struct PodControllers {
    store: Arc<Store>,
    delay: Duration,
    /// When each bound pending pod (by uid) starts running.
    starts: HashMap<String, Instant>,
    /// When each terminating pod (by uid) goes, and the grace it was given.
    removals: HashMap<String, (i64, Instant)>,
    /// Owners and nodes seen in an earlier pass: what depended on one that
    /// has since gone is removed. Only these, so pods a test made with an
    /// owner reference to nothing stay.
    seen_owners: HashSet<String>,
    seen_nodes: HashSet<String>,
    warnings: HashMap<String, Warning>,
}

impl PodControllers {
    pub fn new(store: Arc<Store>, delay: Duration) -> PodControllers {
        PodControllers {
            store,
            delay,
            starts: HashMap::new(),
            removals: HashMap::new(),
            seen_owners: HashSet::new(),
            seen_nodes: HashSet::new(),
            warnings: HashMap::new(),
        }
    }

    pub async fn run(mut self) {
        let (_, _, mut changes) = self.store.list_and_subscribe(&pods::gr());
        let mut failures = failure::subscribe();
        let mut dirty = true;
        loop {
            if dirty {
                self.pass();
            }
            let next = self
                .starts
                .values()
                .chain(self.removals.values().map(|(_, at)| at))
                .min()
                .copied()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            dirty = tokio::select! {
                change = changes.recv() => match change {
                    Ok(event) => relevant(&event.gr),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => break,
                },
                changed = failures.recv() => match changed {
                    Ok(_) | Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(next) => true,
            };
            // One pass for a burst of changes.
            loop {
                match changes.try_recv() {
                    Ok(event) => dirty |= relevant(&event.gr),
                    Err(TryRecvError::Lagged(_)) => dirty = true,
                    Err(_) => break,
                }
            }
        }
    }

    fn pass(&mut self) {
        let world = World::load(&self.store);
        self.collect_garbage(&world);
        self.finish_terminations(&world);
        replication::reconcile_deployments(&self.store, &world);
        replication::reconcile_replica_sets(&self.store, &world);
        replication::reconcile_daemon_sets(&self.store, &world);
        self.schedule(&world);
        self.run_pods(&world);
        self.update_budgets(&world);
        self.forget_gone(&world);
    }

    /// Dependents of owners deleted since the last pass go (gracefully, as
    /// background propagation does), and so do pods of deleted nodes
    /// (at once, as the pod garbage collector does).
    fn collect_garbage(&mut self, world: &World) {
        let owners: HashSet<String> = world
            .replica_sets
            .iter()
            .chain(&world.daemon_sets)
            .chain(&world.deployments)
            .map(|o| meta_str(o, "uid").to_string())
            .collect();
        let orphaned = |obj: &Value| {
            controller_of(obj)
                .is_some_and(|c| self.seen_owners.contains(&c.uid) && !owners.contains(&c.uid))
        };
        for pod in world.pods.iter().filter(|p| orphaned(p)) {
            pods::delete(
                &self.store,
                meta_str(pod, "namespace"),
                meta_str(pod, "name"),
                None,
            );
        }
        for rs in world.replica_sets.iter().filter(|r| orphaned(r)) {
            self.store.delete(
                &replication::replica_sets(),
                meta_str(rs, "namespace"),
                meta_str(rs, "name"),
            );
        }
        self.seen_owners.extend(owners);

        let nodes: HashSet<String> = world
            .nodes
            .iter()
            .map(|n| meta_str(n, "name").to_string())
            .collect();
        for pod in &world.pods {
            let node = pods::node_name(pod);
            if self.seen_nodes.contains(node) && !nodes.contains(node) {
                self.store.delete(
                    &pods::gr(),
                    meta_str(pod, "namespace"),
                    meta_str(pod, "name"),
                );
            }
        }
        self.seen_nodes = nodes;
    }

    /// Removes terminating pods whose grace period has passed.
    fn finish_terminations(&mut self, world: &World) {
        let now = Instant::now();
        for pod in world.pods.iter().filter(|p| pods::is_terminating(p)) {
            let uid = meta_str(pod, "uid").to_string();
            let grace = pod
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .max(0);
            // The deletion timestamp is whole seconds, so it is only trusted
            // to shorten the wait (a pod restored from disk); a live delete
            // waits its full grace from when it was seen.
            let left = meta_str(pod, "deletionTimestamp");
            let left = pods::seconds_until(left).map_or(0.0, |s| s + 1.0);
            let fresh = now + Duration::from_secs_f64(left.clamp(0.0, grace as f64));
            let at = match self.removals.get(&uid) {
                Some((seen_grace, at)) if *seen_grace == grace => *at,
                Some((_, at)) => (*at).min(fresh),
                None => fresh,
            };
            if at > now {
                self.removals.insert(uid, (grace, at));
                continue;
            }
            // Done with, so its time no longer wakes the controllers.
            self.removals.remove(&uid);
            let namespace = meta_str(pod, "namespace");
            let name = meta_str(pod, "name");
            let current = self.store.get(&pods::gr(), namespace, name);
            if current.is_some_and(|c| meta_str(&c, "uid") == uid) {
                self.store.delete(&pods::gr(), namespace, name);
            }
        }
    }

    /// Binds pending pods to the schedulable Ready node with the fewest
    /// pods; a pod that fits nowhere stays Pending with a warning event.
    fn schedule(&mut self, world: &World) {
        let mut load: HashMap<&str, usize> = world
            .nodes
            .iter()
            .map(|n| (meta_str(n, "name"), 0))
            .collect();
        for pod in world.pods.iter().filter(|p| is_active(p)) {
            if let Some(count) = load.get_mut(pods::node_name(pod)) {
                *count += 1;
            }
        }
        for pod in world.pods.iter().filter(|p| needs_scheduling(p)) {
            let spec = &pod["spec"];
            let node = world
                .nodes
                .iter()
                .filter(|n| {
                    pods::node_is_ready(n)
                        && !pods::node_is_unschedulable(n)
                        && selects_node(spec, n)
                })
                .map(|n| meta_str(n, "name"))
                .min_by_key(|name| (load.get(name).copied().unwrap_or(0), *name));
            let Some(node) = node else {
                self.warn_unschedulable(world, pod);
                continue;
            };
            let uid = meta_str(pod, "uid");
            let bound = self.store.update_with(
                &pods::gr(),
                meta_str(pod, "namespace"),
                meta_str(pod, "name"),
                |pod| {
                    if meta_str(pod, "uid") != uid || !needs_scheduling(pod) {
                        return;
                    }
                    pod["spec"]["nodeName"] = json!(node);
                    pod["status"]["conditions"] = json!([condition("PodScheduled", true)]);
                },
            );
            if bound.is_some() {
                *load.entry(node).or_default() += 1;
            }
        }
    }

    fn warn_unschedulable(&mut self, world: &World, pod: &Value) {
        let total = world.nodes.len();
        let message = if total == 0 {
            "no nodes available to schedule pods".to_string()
        } else {
            let count =
                |test: &dyn Fn(&Value) -> bool| world.nodes.iter().filter(|n| test(n)).count();
            let mut reasons = Vec::new();
            let unschedulable = count(&pods::node_is_unschedulable);
            if unschedulable > 0 {
                reasons.push(format!("{unschedulable} node(s) were unschedulable"));
            }
            let not_ready = count(&|n| !pods::node_is_ready(n) && !pods::node_is_unschedulable(n));
            if not_ready > 0 {
                reasons.push(format!(
                    "{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"
                ));
            }
            let rest = total - unschedulable - not_ready;
            if rest > 0 {
                reasons.push(format!(
                    "{rest} node(s) didn't match Pod's node affinity/selector"
                ));
            }
            format!(
                "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
                reasons.join(", ")
            )
        };
        let uid = meta_str(pod, "uid").to_string();
        let namespace = meta_str(pod, "namespace");
        let pod_name = meta_str(pod, "name");
        let now = now_rfc3339();
        match self.warnings.get_mut(&uid) {
            Some(warning) if warning.message == message => {}
            Some(warning) => {
                let updated =
                    self.store
                        .update_with(&events(), &warning.namespace, &warning.name, |event| {
                            let count = event["count"].as_i64().unwrap_or(1);
                            event["count"] = json!(count + 1);
                            event["message"] = json!(message);
                            event["lastTimestamp"] = json!(now);
                        });
                if updated.is_some() {
                    warning.message = message;
                } else {
                    self.warnings.remove(&uid);
                }
            }
            None => {
                let name = format!("{pod_name}.{}", event_suffix());
                let event = json!({
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "namespace": namespace,
                        "name": pod_name,
                        "uid": uid,
                        "resourceVersion": meta_str(pod, "resourceVersion"),
                    },
                    "type": "Warning",
                    "reason": "FailedScheduling",
                    "message": message,
                    "source": {"component": "default-scheduler"},
                    "reportingComponent": "default-scheduler",
                    "reportingInstance": "default-scheduler-kubesim",
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                });
                if self.store.create(&events(), event).is_ok() {
                    self.warnings.insert(
                        uid,
                        Warning {
                            namespace: namespace.to_string(),
                            name,
                            message,
                        },
                    );
                }
            }
        }
        let reason = self
            .warnings
            .get(meta_str(pod, "uid"))
            .map(|w| w.message.clone());
        if let Some(message) = reason {
            let uid = meta_str(pod, "uid");
            self.store
                .update_with(&pods::gr(), namespace, pod_name, |pod| {
                    if meta_str(pod, "uid") != uid || !needs_scheduling(pod) {
                        return;
                    }
                    let mut scheduled = condition("PodScheduled", false);
                    scheduled["reason"] = json!("Unschedulable");
                    scheduled["message"] = json!(message);
                    let unchanged = pod
                        .pointer("/status/conditions/0")
                        .is_some_and(|c| c["message"] == scheduled["message"]);
                    if !unchanged {
                        pod["status"]["conditions"] = json!([scheduled]);
                    }
                });
        }
    }

    /// What the kubelets do: a pending pod bound to an existing node runs
    /// (Ready) once the workload delay has passed since it was first seen
    /// bound; pods of a workload with an injected failure run unready.
    fn run_pods(&mut self, world: &World) {
        let now = Instant::now();
        // Pods still waiting to start: only their times may wake the
        // controllers, or a time already past would wake them forever.
        let mut waiting = HashSet::new();
        for pod in world.pods.iter().filter(|p| !pods::is_terminating(p)) {
            let Some(node) = world.node(pods::node_name(pod)) else {
                continue;
            };
            let workload = world.workload_name(pod);
            let healthy = workload
                .as_deref()
                .is_none_or(|name| failure::failure_of(name) == WorkloadFailure::None);
            let uid = meta_str(pod, "uid").to_string();
            let (namespace, name) = (meta_str(pod, "namespace"), meta_str(pod, "name"));
            match pods::phase(pod) {
                "Pending" | "" => {
                    let at = *self.starts.entry(uid.clone()).or_insert(now + self.delay);
                    if at > now {
                        waiting.insert(uid);
                        continue;
                    }
                    let host_ip = node_ip(node);
                    self.store.update_with(&pods::gr(), namespace, name, |pod| {
                        if meta_str(pod, "uid") != uid || pods::is_terminating(pod) {
                            return;
                        }
                        pod["status"] = running_status(pod, &host_ip, healthy);
                    });
                }
                // Only pods of the simulator's own controllers follow
                // injected failures; other running pods are left as written.
                "Running" if workload.is_some() && pods::is_ready(pod) != healthy => {
                    self.store.update_with(&pods::gr(), namespace, name, |pod| {
                        if meta_str(pod, "uid") == uid {
                            set_readiness(pod, healthy);
                        }
                    });
                }
                _ => {}
            }
        }
        self.starts.retain(|uid, _| waiting.contains(uid));
    }

    fn update_budgets(&self, world: &World) {
        let (budgets, _) = self.store.list(&disruption::gr(), None);
        let mut by_namespace: HashMap<&str, Vec<Value>> = HashMap::new();
        for pod in &world.pods {
            by_namespace
                .entry(meta_str(pod, "namespace"))
                .or_default()
                .push(pod.clone());
        }
        for pdb in &budgets {
            let namespace = meta_str(pdb, "namespace");
            let in_namespace = by_namespace
                .get(namespace)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let budget = disruption::assess(&self.store, pdb, in_namespace);
            let status = disruption::status(pdb, budget);
            if pdb.get("status") != Some(&status) {
                self.store.update_with(
                    &disruption::gr(),
                    namespace,
                    meta_str(pdb, "name"),
                    |pdb| {
                        pdb["status"] = status;
                    },
                );
            }
        }
    }

    /// Drops the timers and warnings of pods that are gone.
    fn forget_gone(&mut self, world: &World) {
        let uids: HashSet<&str> = world.pods.iter().map(|p| meta_str(p, "uid")).collect();
        self.removals.retain(|uid, _| uids.contains(uid.as_str()));
        self.warnings.retain(|uid, _| uids.contains(uid.as_str()));
    }
}

fn needs_scheduling(pod: &Value) -> bool {
    let scheduler = pod
        .pointer("/spec/schedulerName")
        .and_then(Value::as_str)
        .unwrap_or("default-scheduler");
    is_active(pod)
        && pods::node_name(pod).is_empty()
        && matches!(pods::phase(pod), "Pending" | "")
        && scheduler == "default-scheduler"
}

fn condition(kind: &str, status: bool) -> Value {
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": now_rfc3339(),
    })
}

fn event_suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

fn node_ip(node: &Value) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .unwrap_or("10.0.0.1")
        .to_string()
}

fn pod_ip() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "10.244.{}.{}",
        rng.random_range(0..=255),
        rng.random_range(2..=254)
    )
}

/// The status a kubelet reports once a pod's containers run.
fn running_status(pod: &Value, host_ip: &str, ready: bool) -> Value {
    let now = now_rfc3339();
    let ip = pod_ip();
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "containerID": format!("containerd://{}", event_suffix()),
                        "ready": ready,
                        "started": true,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", true),
            condition("Initialized", true),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", true),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "qosClass": "BestEffort",
        "containerStatuses": containers,
    });
    if !ready {
        for c in status["conditions"].as_array_mut().into_iter().flatten() {
            if c["status"] == "False" {
                c["reason"] = json!("ContainersNotReady");
            }
        }
    }
    status
}

/// Sets the Ready and ContainersReady conditions and the containers'
/// readiness of a pod.
fn set_readiness(pod: &mut Value, ready: bool) {
    let status = &mut pod["status"];
    if let Some(conditions) = status["conditions"].as_array_mut() {
        for c in conditions
            .iter_mut()
            .filter(|c| c["type"] == "Ready" || c["type"] == "ContainersReady")
        {
            *c = condition(c["type"].as_str().unwrap_or("Ready"), ready);
            if !ready {
                c["reason"] = json!("ContainersNotReady");
            }
        }
    }
    if let Some(containers) = status["containerStatuses"].as_array_mut() {
        for c in containers {
            c["ready"] = json!(ready);
        }
    }
}
