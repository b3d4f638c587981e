//! The object store of one API server: JSON objects by group/resource,
//! namespace and name, a global resource version, and a change feed for
//! watches, the Kamaji controller and persistence.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::sync::{Notify, broadcast};

/// A resource type regardless of version: objects of every served version
/// share one collection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    fn parse(key: &str) -> Self {
        match key.split_once('/') {
            Some((group, resource)) => GroupResource::new(group, resource),
            None => GroupResource::new("", key),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group, self.resource)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub kind: EventType,
    pub gr: GroupResource,
    pub rv: u64,
    pub object: Arc<Value>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreError {
    NotFound,
    AlreadyExists,
    Conflict,
}

/// Everything a store holds, as persisted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub resource_version: u64,
    pub objects: BTreeMap<String, Vec<Value>>,
}

type Key = (String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<GroupResource, BTreeMap<Key, Value>>,
    history: VecDeque<Event>,
}

/// Events kept for watches that resume from a resource version.
const HISTORY: usize = 4096;

pub(crate) struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
    changed: Notify,
}

pub(crate) fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn key_of(obj: &Value) -> Key {
    (
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    )
}

fn metadata_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let root = obj.as_object_mut().expect("made an object above");
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("made an object above")
}

/// The parts of an object whose change bumps `metadata.generation`.
fn desired_state(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        for field in ["metadata", "status", "kind", "apiVersion"] {
            map.remove(field);
        }
    }
    copy
}

impl Store {
    pub fn new() -> Arc<Store> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Store {
            inner: Mutex::new(Inner::default()),
            events,
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notified after every change; persistence waits on it.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    fn publish(&self, inner: &mut Inner, kind: EventType, gr: &GroupResource, object: Value) {
        let event = Event {
            kind,
            gr: gr.clone(),
            rv: inner.rv,
            object: Arc::new(object),
        };
        if inner.history.len() >= HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(event.clone());
        let _ = self.events.send(event);
        self.changed.notify_one();
    }

    #[cfg(test)]
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, gr: &GroupResource, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(gr)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// Objects of one type, in one namespace or (None) all, sorted by
    /// namespace and name, with the store's resource version.
    pub fn list(&self, gr: &GroupResource, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .get(gr)
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, inner.rv)
    }

    /// Every object in a namespace, of every type.
    pub fn in_namespace(&self, namespace: &str) -> Vec<(GroupResource, String)> {
        let inner = self.lock();
        let mut found = Vec::new();
        for (gr, objects) in &inner.objects {
            for (ns, name) in objects.keys() {
                if ns == namespace {
                    found.push((gr.clone(), name.clone()));
                }
            }
        }
        found
    }

    /// Stores a new object, filling uid, resourceVersion, generation and
    /// creationTimestamp.
    pub fn create(&self, gr: &GroupResource, mut obj: Value) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = key_of(&obj);
        if inner.objects.get(gr).is_some_and(|m| m.contains_key(&key)) {
            return Err(StoreError::AlreadyExists);
        }
        inner.rv += 1;
        let rv = inner.rv;
        let meta = metadata_mut(&mut obj);
        meta.insert("uid".into(), json!(uuid::Uuid::now_v7().to_string()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("generation".into(), json!(1));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if key.0.is_empty() {
            meta.remove("namespace");
        }
        inner
            .objects
            .entry(gr.clone())
            .or_default()
            .insert(key, obj.clone());
        self.publish(&mut inner, EventType::Added, gr, obj.clone());
        Ok(obj)
    }

    /// Replaces a stored object. `expected_rv` is the caller's precondition;
    /// identity fields of the stored object win over the new one's.
    pub fn replace(
        &self,
        gr: &GroupResource,
        obj: Value,
        expected_rv: Option<&str>,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        self.replace_locked(&mut inner, gr, obj, expected_rv)
    }

    fn replace_locked(
        &self,
        inner: &mut Inner,
        gr: &GroupResource,
        mut obj: Value,
        expected_rv: Option<&str>,
    ) -> Result<Value, StoreError> {
        let key = key_of(&obj);
        let Some(old) = inner.objects.get(gr).and_then(|m| m.get(&key)) else {
            return Err(StoreError::NotFound);
        };
        let old_rv = meta_str(old, "resourceVersion").to_string();
        if expected_rv.is_some_and(|rv| !rv.is_empty() && rv != old_rv) {
            return Err(StoreError::Conflict);
        }
        let old_generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if desired_state(old) == desired_state(&obj) {
            old_generation
        } else {
            old_generation + 1
        };
        let meta = metadata_mut(&mut obj);
        for field in ["uid", "creationTimestamp"] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(value) => meta.insert(field.into(), value.clone()),
                None => meta.remove(field),
            };
        }
        meta.insert("generation".into(), json!(generation));
        meta.insert("resourceVersion".into(), json!(old_rv));
        if key.0.is_empty() {
            meta.remove("namespace");
        }
        // An update that changes nothing keeps the resource version, as the
        // real API server does; controllers rely on that to settle.
        if *old == obj {
            return Ok(obj);
        }
        inner.rv += 1;
        let rv = inner.rv;
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        inner
            .objects
            .entry(gr.clone())
            .or_default()
            .insert(key, obj.clone());
        self.publish(inner, EventType::Modified, gr, obj.clone());
        Ok(obj)
    }

    /// Changes a stored object in place (for the simulator's own controllers,
    /// which need no precondition). Returns the stored result.
    pub fn update_with(
        &self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let mut inner = self.lock();
        let mut obj = inner
            .objects
            .get(gr)?
            .get(&(namespace.to_string(), name.to_string()))?
            .clone();
        change(&mut obj);
        self.replace_locked(&mut inner, gr, obj, None).ok()
    }

    /// Creates the object or, when it exists, replaces it.
    pub fn upsert(&self, gr: &GroupResource, obj: Value) -> Value {
        let mut inner = self.lock();
        let exists = inner
            .objects
            .get(gr)
            .is_some_and(|m| m.contains_key(&key_of(&obj)));
        if exists && let Ok(stored) = self.replace_locked(&mut inner, gr, obj.clone(), None) {
            return stored;
        }
        drop(inner);
        self.create(gr, obj.clone()).unwrap_or(obj)
    }

    pub fn delete(&self, gr: &GroupResource, namespace: &str, name: &str) -> Option<Value> {
        let mut inner = self.lock();
        let mut obj = inner
            .objects
            .get_mut(gr)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        inner.rv += 1;
        let rv = inner.rv;
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.publish(&mut inner, EventType::Deleted, gr, obj.clone());
        Some(obj)
    }

    /// The recorded changes of `gr` after resource version `since` (None
    /// when the history no longer reaches back that far), and a subscription
    /// to later ones; both under one lock, so nothing falls between them.
    pub fn changes_since(
        &self,
        gr: &GroupResource,
        since: u64,
    ) -> (Option<Vec<Event>>, broadcast::Receiver<Event>) {
        let inner = self.lock();
        let receiver = self.events.subscribe();
        let covered = since >= inner.rv
            || inner
                .history
                .front()
                .is_some_and(|first| first.rv <= since + 1);
        let backlog = covered.then(|| {
            inner
                .history
                .iter()
                .filter(|e| e.rv > since && &e.gr == gr)
                .cloned()
                .collect()
        });
        (backlog, receiver)
    }

    /// Lists a type and subscribes to its changes under one lock.
    pub fn list_and_subscribe(
        &self,
        gr: &GroupResource,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Event>) {
        let inner = self.lock();
        let receiver = self.events.subscribe();
        let items = inner
            .objects
            .get(gr)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        (items, inner.rv, receiver)
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            resource_version: inner.rv,
            objects: inner
                .objects
                .iter()
                .filter(|(_, m)| !m.is_empty())
                .map(|(gr, m)| (gr.to_string(), m.values().cloned().collect()))
                .collect(),
        }
    }

    pub fn restore(&self, snapshot: Snapshot) {
        let mut inner = self.lock();
        inner.rv = snapshot.resource_version;
        inner.objects.clear();
        inner.history.clear();
        for (key, objects) in snapshot.objects {
            let collection = inner.objects.entry(GroupResource::parse(&key)).or_default();
            for obj in objects {
                collection.insert(key_of(&obj), obj);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> GroupResource {
        GroupResource::new("", "secrets")
    }

    #[test]
    fn create_replace_delete_bump_versions() {
        let store = Store::new();
        let created = store
            .create(
                &secrets(),
                json!({"metadata": {"name": "a", "namespace": "n"}, "data": {}}),
            )
            .unwrap();
        assert_eq!(meta_str(&created, "resourceVersion"), "1");
        assert_eq!(
            store.create(&secrets(), created.clone()),
            Err(StoreError::AlreadyExists)
        );
        let mut changed = created.clone();
        changed["data"] = json!({"k": "dg=="});
        let replaced = store
            .replace(&secrets(), changed.clone(), Some("1"))
            .unwrap();
        assert_eq!(meta_str(&replaced, "resourceVersion"), "2");
        assert_eq!(replaced["metadata"]["generation"], 2);
        assert_eq!(
            store.replace(&secrets(), changed, Some("1")),
            Err(StoreError::Conflict)
        );
        let same = store.replace(&secrets(), replaced.clone(), None).unwrap();
        assert_eq!(meta_str(&same, "resourceVersion"), "2");
        assert!(store.delete(&secrets(), "n", "a").is_some());
        assert!(store.get(&secrets(), "n", "a").is_none());
        assert_eq!(store.resource_version(), 3);
    }

    #[test]
    fn snapshot_round_trips() {
        let store = Store::new();
        store
            .create(
                &GroupResource::new("apps", "deployments"),
                json!({"metadata": {"name": "d", "namespace": "n"}}),
            )
            .unwrap();
        let copy = Store::new();
        copy.restore(store.snapshot());
        assert!(
            copy.get(&GroupResource::new("apps", "deployments"), "n", "d")
                .is_some()
        );
        assert_eq!(copy.resource_version(), 1);
    }
}
