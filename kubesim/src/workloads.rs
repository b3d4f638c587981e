//! The workload controllers of every simulated API server: Deployments,
//! StatefulSets, DaemonSets and Jobs report, after the workload delay, the
//! status their real controllers would once the pods run (or, with a
//! [`WorkloadFailure`] injected, once they do not).

mod cluster;
mod failure;
mod replication;
mod status;

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::Value;
use tokio::{
    sync::broadcast::{self, error::RecvError},
    task::JoinHandle,
    time::Instant,
};

pub use failure::WorkloadFailure;
pub(crate) use failure::{WorkloadFailureRequest, inject};

use crate::store::{Event, EventType, GroupResource, Store, meta_str, now_rfc3339};
use status::{Context, Kind};

fn nodes() -> GroupResource {
    GroupResource::new("", "nodes")
}

/// The controllers of one API server; they stop when this is dropped.
pub(crate) struct Workloads {
    task: JoinHandle<()>,
    pods: JoinHandle<()>,
}

impl Workloads {
    /// Starts acting on the store's workloads, those already stored too.
    pub fn start(store: Arc<Store>, delay: Duration) -> Workloads {
        let pods = cluster::PodControllers::new(store.clone(), delay);
        let reconciler = Reconciler {
            store,
            delay,
            pending: HashMap::new(),
            job_generations: HashMap::new(),
        };
        Workloads {
            task: tokio::spawn(reconciler.run()),
            pods: tokio::spawn(pods.run()),
        }
    }
}

impl Drop for Workloads {
    fn drop(&mut self) {
        self.task.abort();
        self.pods.abort();
    }
}

type Key = (Kind, String, String);

struct Pending {
    at: Instant,
    /// Write the status even when the spec was already observed: the
    /// injected failure or the node count changed.
    force: bool,
}

struct Reconciler {
    store: Arc<Store>,
    delay: Duration,
    pending: HashMap<Key, Pending>,
    /// The generation each Job (by uid) last ran at, since Jobs report no
    /// observed generation of their own.
    job_generations: HashMap<String, i64>,
}

impl Reconciler {
    async fn run(mut self) {
        // Subscribed before listing, so no change falls in between.
        let mut failures = failure::subscribe();
        let mut events = self.resync();
        loop {
            // Far enough to mean "nothing due"; select! needs some future.
            let next = self
                .pending
                .values()
                .map(|p| p.at)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.observe(&event),
                    Err(RecvError::Lagged(_)) => events = self.resync(),
                    Err(RecvError::Closed) => break,
                },
                changed = failures.recv() => match changed {
                    Ok(name) => self.redo(|_, obj| meta_str(obj, "name") == name),
                    Err(RecvError::Lagged(_)) => self.redo(|_, _| true),
                    Err(RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(next) => self.due(),
            }
        }
    }

    /// Subscribes to the store and schedules every workload not yet acted on.
    fn resync(&mut self) -> broadcast::Receiver<Event> {
        let (_, _, events) = self.store.list_and_subscribe(&Kind::Deployment.gr());
        for kind in Kind::ALL {
            for obj in self.store.list(&kind.gr(), None).0 {
                if self.needs_work(kind, &obj) {
                    self.schedule(key(kind, &obj), false);
                }
            }
        }
        events
    }

    fn observe(&mut self, event: &Event) {
        if event.gr == nodes() && event.kind != EventType::Modified {
            self.redo(|kind, _| kind == Kind::DaemonSet);
            return;
        }
        let Some(kind) = Kind::of(&event.gr) else {
            return;
        };
        let obj = event.object.as_ref();
        match event.kind {
            EventType::Added | EventType::Modified => {
                if self.needs_work(kind, obj) {
                    self.schedule(key(kind, obj), false);
                }
            }
            EventType::Deleted => {
                self.pending.remove(&key(kind, obj));
                self.job_generations.remove(meta_str(obj, "uid"));
            }
        }
    }

    fn needs_work(&self, kind: Kind, obj: &Value) -> bool {
        status::unobserved(kind, obj) || self.rerun(kind, obj)
    }

    fn rerun(&self, kind: Kind, obj: &Value) -> bool {
        kind == Kind::Job
            && self
                .job_generations
                .get(meta_str(obj, "uid"))
                .is_some_and(|ran| *ran != status::generation(obj))
    }

    /// Schedules the workloads `matches` picks, whatever their status says.
    fn redo(&mut self, matches: impl Fn(Kind, &Value) -> bool) {
        for kind in Kind::ALL {
            for obj in self.store.list(&kind.gr(), None).0 {
                if matches(kind, &obj) {
                    self.schedule(key(kind, &obj), true);
                }
            }
        }
    }

    /// A workload already waiting keeps its time: its pods started then.
    fn schedule(&mut self, key: Key, force: bool) {
        let at = Instant::now() + self.delay;
        let pending = self.pending.entry(key).or_insert(Pending { at, force });
        pending.force |= force;
    }

    fn due(&mut self) {
        let now = Instant::now();
        let due: Vec<(Key, bool)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.at <= now)
            .map(|(k, p)| (k.clone(), p.force))
            .collect();
        for (key, force) in due {
            self.pending.remove(&key);
            self.reconcile(&key, force);
        }
    }

    fn reconcile(&mut self, (kind, namespace, name): &Key, force: bool) {
        let kind = *kind;
        let nodes = match kind {
            Kind::DaemonSet => self.store.list(&nodes(), None).0.len().max(1),
            _ => 0,
        };
        let mut ran = None;
        self.store.update_with(&kind.gr(), namespace, name, |obj| {
            if !force && !self.needs_work(kind, obj) {
                return;
            }
            let context = Context {
                failure: failure::failure_of(name),
                nodes: i64::try_from(nodes).unwrap_or(i64::MAX),
                now: now_rfc3339(),
                rerun: self.rerun(kind, obj),
            };
            obj["status"] = status::desired(kind, obj, &context);
            ran = Some((meta_str(obj, "uid").to_string(), status::generation(obj)));
        });
        if kind == Kind::Job
            && let Some((uid, generation)) = ran
        {
            self.job_generations.insert(uid, generation);
        }
    }
}

fn key(kind: Kind, obj: &Value) -> Key {
    (
        kind,
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    )
}
