//! Watches: newline-delimited JSON events, first the current state (or the
//! recorded changes since a resource version), then live changes until the
//! timeout or server shutdown.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tokio::{
    sync::{broadcast, watch},
    time::Instant,
};

use crate::{
    resources::ResourceDef,
    selector::Filter,
    store::{Event, GroupResource, Store, meta_str},
    table,
};

pub(crate) struct WatchRequest {
    pub namespace: Option<String>,
    pub filter: Filter,
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub timeout: Duration,
    /// `kubectl get -w` wants each object as a Table row; the value is the
    /// `includeObject` choice.
    pub table: Option<String>,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn expired() -> Bytes {
    line(
        "ERROR",
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410,
        }),
    )
}

struct Stream {
    def: ResourceDef,
    table: Option<String>,
    pending: VecDeque<Bytes>,
    events: broadcast::Receiver<Event>,
    gr: GroupResource,
    namespace: Option<String>,
    filter: Filter,
    deadline: Instant,
    shutdown: watch::Receiver<bool>,
    finished: bool,
}

impl Stream {
    fn event(&self, kind: &str, object: &Value) -> Bytes {
        match &self.table {
            Some(include) => {
                let rv = meta_str(object, "resourceVersion");
                line(
                    kind,
                    &table::render(&self.def, std::slice::from_ref(object), rv, include),
                )
            }
            None => line(kind, object),
        }
    }

    fn wants(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta_str(object, "namespace") == ns)
            && self.filter.matches(object)
    }

    async fn next(&mut self) -> Option<Bytes> {
        if let Some(line) = self.pending.pop_front() {
            return Some(line);
        }
        if self.finished || *self.shutdown.borrow() {
            return None;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = self.shutdown.changed() => return None,
                received = self.events.recv() => match received {
                    Ok(event) if event.gr == self.gr && self.wants(&event.object) => {
                        return Some(self.event(event.kind.as_str(), &event.object));
                    }
                    Ok(_) => {}
                    // The client re-lists on Expired, which is what a watcher
                    // that fell behind needs.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.finished = true;
                        return Some(expired());
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

pub(crate) fn respond(
    store: &Arc<Store>,
    def: &ResourceDef,
    request: WatchRequest,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let gr = def.gr();
    let resume = request
        .resource_version
        .filter(|_| !request.send_initial_events);
    let mut pending = Vec::new();
    let mut finished = false;
    let events = match resume {
        Some(since) => {
            let (backlog, events) = store.changes_since(&gr, since);
            match backlog {
                Some(backlog) => pending.extend(
                    backlog
                        .into_iter()
                        .map(|e| (e.kind.as_str(), e.object.as_ref().clone())),
                ),
                None => finished = true,
            }
            events
        }
        None => {
            let (items, rv, events) = store.list_and_subscribe(&gr);
            pending.extend(items.into_iter().map(|o| ("ADDED", o)));
            if request.send_initial_events {
                let bookmark = json!({
                    "kind": def.kind,
                    "apiVersion": def.api_version(),
                    "metadata": {
                        "resourceVersion": rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                });
                pending.push(("BOOKMARK", bookmark));
            }
            events
        }
    };
    let mut stream = Stream {
        def: def.clone(),
        table: request.table,
        pending: VecDeque::new(),
        events,
        gr,
        namespace: request.namespace,
        filter: request.filter,
        deadline: Instant::now() + request.timeout,
        shutdown,
        finished,
    };
    for (kind, object) in pending {
        if kind == "BOOKMARK" {
            stream.pending.push_back(line(kind, &object));
        } else if stream.wants(&object) {
            let event = stream.event(kind, &object);
            stream.pending.push_back(event);
        }
    }
    if finished {
        stream.pending.push_back(expired());
    }
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        let line = stream.next().await?;
        Some((Ok::<_, Infallible>(line), stream))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}
