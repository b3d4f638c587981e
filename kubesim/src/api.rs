//! The REST handlers: one dispatcher that parses Kubernetes paths, then get,
//! list, watch, create, replace, patch, delete and eviction over the store.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{Query, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    defaults, discovery,
    error::{ApiError, ApiResult},
    eviction,
    failure::{self, Failure, FailureRequest},
    kamaji::Controller,
    openapi, patch, pods, protobuf,
    resources::{self, ResourceDef},
    selector::Filter,
    server::Hooks,
    store::{GroupResource, Store, StoreError, meta_str, now_rfc3339},
    table, watch as watches,
    workloads::{self, WorkloadFailureRequest},
};

pub(crate) struct ApiState {
    pub store: Arc<Store>,
    pub token: String,
    pub hooks: Arc<Hooks>,
    /// Set on the management server only: it serves `/kubesim/...`.
    pub kamaji: Option<Arc<Controller>>,
    pub shutdown: watch::Receiver<bool>,
    pub address: String,
}

const MAX_BODY: usize = 32 << 20;
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

struct Req {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("true" | "1"))
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn wants_table(&self) -> bool {
        self.header(header::ACCEPT).contains("as=Table")
    }

    fn content_type(&self) -> &str {
        self.header(header::CONTENT_TYPE)
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
    }

    fn dry_run(&self) -> bool {
        self.q("dryRun").is_some_and(|v| !v.is_empty())
    }
}

pub(crate) async fn dispatch(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::bad_request("the request body could not be read").into_response();
        }
    };
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        body,
    };
    handle(&state, &req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn ok(value: &Value) -> Response {
    json_response(StatusCode::OK, value)
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(state: &ApiState, req: &Req) -> ApiResult<Response> {
    let failure = state.hooks.failure();
    if failure == Failure::ServerErrors {
        return Err(ApiError::internal(
            "simulated failure: this API server answers every request with an error",
        ));
    }
    let path = req.path.trim_end_matches('/');
    let probe = ["/healthz", "/livez", "/readyz"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if probe {
        return Ok(health(failure).await);
    }
    if path == "/version" {
        return Ok(ok(&version_document(&state.hooks.version())));
    }
    authenticate(state, &req.headers)?;
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let defs = || resources::all(&state.store);
    match segments.as_slice() {
        ["kubesim", rest @ ..] => admin(state, req, rest),
        ["openapi", rest @ ..] => get_only(req, openapi::document(&defs(), rest)),
        ["api"] => get_only(req, Some(discovery::api_versions(&state.address))),
        ["api", version] => get_only(req, discovery::resource_list(&defs(), "", version)),
        ["api", version, rest @ ..] => resource(state, req, "", version, rest),
        ["apis"] => get_only(req, Some(discovery::group_list(&defs()))),
        ["apis", group] => get_only(req, discovery::group(&defs(), group)),
        ["apis", group, version] => {
            get_only(req, discovery::resource_list(&defs(), group, version))
        }
        ["apis", group, version, rest @ ..] => resource(state, req, group, version, rest),
        _ => Err(ApiError::no_route()),
    }
}

fn get_only(req: &Req, document: Option<Value>) -> ApiResult<Response> {
    if req.method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    document.map(|d| ok(&d)).ok_or_else(ApiError::no_route)
}

fn authenticate(state: &ApiState, headers: &HeaderMap) -> ApiResult<()> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if token == state.token => Ok(()),
        Some(token) if bootstrap_token_valid(&state.store, token) => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

/// The bootstrap-token authenticator (`kubeadm join`): `<id>.<secret>`
/// matches Secret `kube-system/bootstrap-token-<id>` of type
/// `bootstrap.kubernetes.io/token` that allows authentication and has not
/// expired. kubesim grants it what it grants everyone: there is no RBAC.
fn bootstrap_token_valid(store: &Store, token: &str) -> bool {
    use base64::Engine;
    let Some((id, secret)) = token.split_once('.') else {
        return false;
    };
    let Some(object) = store.get(
        &GroupResource::new("", "secrets"),
        "kube-system",
        &format!("bootstrap-token-{id}"),
    ) else {
        return false;
    };
    if object["type"] != "bootstrap.kubernetes.io/token" {
        return false;
    }
    let field = |name: &str| -> Option<String> {
        let encoded = object["data"][name].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    let expired = field("expiration").is_some_and(|at| {
        time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
            .map_or(true, |at| at < time::OffsetDateTime::now_utc())
    });
    field("token-secret").as_deref() == Some(secret)
        && field("usage-bootstrap-authentication").as_deref() == Some("true")
        && !expired
}

async fn health(failure: Failure) -> Response {
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match failure {
        Failure::NeverHealthy => (
            StatusCode::INTERNAL_SERVER_ERROR,
            text,
            "[-]etcd failed: reason withheld\nhealthz check failed\n",
        )
            .into_response(),
        Failure::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (text, "ok").into_response()
        }
        _ => (text, "ok").into_response(),
    }
}

fn version_document(version: &str) -> Value {
    let git_version = if version.starts_with('v') {
        version.to_string()
    } else {
        format!("v{version}")
    };
    let mut parts = git_version.trim_start_matches('v').split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "kubesim",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/kubesim/...`: failure injection and tenant listing for the demo.
fn admin(state: &ApiState, req: &Req, rest: &[&str]) -> ApiResult<Response> {
    let controller = state.kamaji.as_ref().ok_or_else(ApiError::no_route)?;
    match (&req.method, rest) {
        (&Method::PUT, ["failures", tenant]) => {
            let request: FailureRequest = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("invalid failure request: {e}")))?;
            let failure = request.into_failure().ok_or_else(|| {
                ApiError::bad_request(
                    "failure must be one of none, never_healthy, slow, server_errors, refused",
                )
            })?;
            controller.inject(tenant, failure);
            let mut answer = failure::describe(failure);
            answer["tenant"] = json!(tenant);
            Ok(ok(&answer))
        }
        (&Method::PUT, ["workload-failures", name]) => {
            let request: WorkloadFailureRequest = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("invalid failure request: {e}")))?;
            let failure = request
                .into_failure()
                .ok_or_else(|| ApiError::bad_request("failure must be one of none, stall, fail"))?;
            workloads::inject(name, failure);
            Ok(ok(&json!({"name": name, "failure": failure.as_str()})))
        }
        (&Method::GET, ["tenants"]) => {
            let tenants: Vec<Value> = controller
                .tenants()
                .into_iter()
                .map(|t| {
                    let mut entry = failure::describe(t.failure);
                    entry["name"] = json!(t.name);
                    entry["namespace"] = json!(t.namespace);
                    entry["address"] = json!(t.address.to_string());
                    entry["state"] = json!(t.state.as_str());
                    entry
                })
                .collect();
            Ok(ok(&json!({"tenants": tenants})))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// Parses a request body: JSON, or YAML (server-side apply, kubectl).
fn decode(body: &Bytes) -> ApiResult<Value> {
    if body.starts_with(b"k8s\0") {
        return protobuf::decode(body).map_err(ApiError::unsupported_media_type);
    }
    serde_json::from_slice(body).or_else(|json_error| {
        serde_yaml::from_slice(body).map_err(|_| {
            ApiError::bad_request(format!(
                "the request body is not valid JSON or YAML: {json_error}"
            ))
        })
    })
}

fn resource(
    state: &ApiState,
    req: &Req,
    group: &str,
    version: &str,
    rest: &[&str],
) -> ApiResult<Response> {
    let defs = resources::all(&state.store);
    let find = |plural: &str| {
        defs.iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
    };
    // "namespaces/x/secrets" lists secrets in x; "namespaces/x/status" is a
    // subresource of namespace x.
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, ..] if find(plural).is_some_and(|d| d.namespaced) => {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_route()),
    };
    let def = find(plural).ok_or_else(ApiError::no_route)?.clone();
    if (def.namespaced && namespace.is_none() && name.is_some())
        || (!def.namespaced && namespace.is_some())
    {
        return Err(ApiError::no_route());
    }
    let ctx = Ctx {
        state,
        req,
        gr: def.gr(),
        def,
        namespace,
    };
    let all_namespaces = ctx.def.namespaced && ctx.namespace.is_none();
    match (&req.method, name, sub) {
        (&Method::GET, None, None) => ctx.list(),
        (&Method::POST, None, None) if !all_namespaces => ctx.create(),
        (&Method::DELETE, None, None) if !all_namespaces => ctx.delete_collection(),
        (&Method::GET, Some(name), None | Some("status")) => ctx.get(name),
        (&Method::PUT, Some(name), None) => ctx.update(name, false),
        (&Method::PUT, Some(name), Some("status")) if ctx.def.status => ctx.update(name, true),
        (&Method::PATCH, Some(name), None) => ctx.patch(name, false),
        (&Method::PATCH, Some(name), Some("status")) if ctx.def.status => ctx.patch(name, true),
        (&Method::DELETE, Some(name), None) => ctx.delete(name),
        (&Method::POST, Some(name), Some("eviction"))
            if ctx.def.group.is_empty() && ctx.def.plural == "pods" =>
        {
            let body = decode(&req.body).ok();
            let options = eviction::EvictOptions::from_body(body.as_ref(), req.dry_run());
            eviction::evict(&state.store, ctx.ns(), name, &options)?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        (_, _, Some(_)) => Err(ApiError::no_route()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

struct Ctx<'a> {
    state: &'a ApiState,
    req: &'a Req,
    def: ResourceDef,
    gr: GroupResource,
    namespace: Option<String>,
}

fn namespaces() -> GroupResource {
    GroupResource::new("", "namespaces")
}

const NAME_SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| NAME_SUFFIX_CHARS[rng.random_range(0..NAME_SUFFIX_CHARS.len())] as char)
        .collect()
}

impl Ctx<'_> {
    fn store(&self) -> &Store {
        &self.state.store
    }

    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// Objects as served at the requested version.
    fn present(&self, mut obj: Value) -> Value {
        obj["apiVersion"] = json!(self.def.api_version());
        obj["kind"] = json!(self.def.kind);
        obj
    }

    fn store_error(&self, error: StoreError, name: &str) -> ApiError {
        let (plural, group) = (&self.def.plural, &self.def.group);
        match error {
            StoreError::NotFound => ApiError::not_found(plural, group, name),
            StoreError::AlreadyExists => ApiError::already_exists(plural, group, name),
            StoreError::Conflict => ApiError::conflict(plural, group, name),
        }
    }

    fn current(&self, name: &str) -> ApiResult<Value> {
        self.store()
            .get(&self.gr, self.ns(), name)
            .ok_or_else(|| ApiError::not_found(&self.def.plural, &self.def.group, name))
    }

    fn filter(&self) -> ApiResult<Filter> {
        Filter::new(self.req.q("labelSelector"), self.req.q("fieldSelector"))
    }

    fn require_namespace(&self) -> ApiResult<()> {
        match &self.namespace {
            Some(ns) if self.store().get(&namespaces(), "", ns).is_none() => {
                Err(ApiError::not_found("namespaces", "", ns))
            }
            _ => Ok(()),
        }
    }

    /// Checks and completes an incoming object: kind, apiVersion, namespace
    /// and name must agree with the request.
    fn prepare(&self, mut obj: Value, url_name: Option<&str>) -> ApiResult<Value> {
        let Some(map) = obj.as_object() else {
            return Err(ApiError::bad_request("the request body must be an object"));
        };
        // Defaults index into these; anything but an object is a bad body.
        for field in ["metadata", "spec", "status"] {
            if map
                .get(field)
                .is_some_and(|v| !v.is_null() && !v.is_object())
            {
                return Err(ApiError::bad_request(format!("{field} must be an object")));
            }
        }
        if let Some(kind) = map.get("kind").and_then(Value::as_str)
            && !kind.is_empty()
            && kind != self.def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the object kind {kind} does not match the resource {}",
                self.def.plural
            )));
        }
        obj["apiVersion"] = json!(self.def.api_version());
        obj["kind"] = json!(self.def.kind);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let body_ns = meta_str(&obj, "namespace").to_string();
        match &self.namespace {
            Some(ns) if !body_ns.is_empty() && &body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            Some(ns) => obj["metadata"]["namespace"] = json!(ns),
            None => {
                if let Some(meta) = obj["metadata"].as_object_mut() {
                    meta.remove("namespace");
                }
            }
        }
        let body_name = meta_str(&obj, "name").to_string();
        let name = match url_name {
            Some(url_name) if !body_name.is_empty() && body_name != url_name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
                )));
            }
            Some(url_name) => url_name.to_string(),
            None if !body_name.is_empty() => body_name,
            None => match meta_str(&obj, "generateName") {
                "" => {
                    return Err(ApiError::invalid(
                        &self.def.kind,
                        "",
                        "metadata.name",
                        "name or generateName is required",
                    ));
                }
                prefix => format!("{prefix}{}", random_suffix()),
            },
        };
        defaults::validate_name(&self.def, &name)?;
        obj["metadata"]["name"] = json!(name);
        Ok(obj)
    }

    /// Keeps the stored status on main-resource writes, and everything but
    /// the status on `/status` writes.
    fn split_status(&self, current: &Value, mut new: Value, status_only: bool) -> Value {
        let take_status = |target: &mut Value, from: &Value| match from.get("status") {
            Some(status) => target["status"] = status.clone(),
            None => {
                if let Some(map) = target.as_object_mut() {
                    map.remove("status");
                }
            }
        };
        if status_only {
            let mut out = current.clone();
            take_status(&mut out, &new);
            if let Some(rv) = new.pointer("/metadata/resourceVersion") {
                out["metadata"]["resourceVersion"] = rv.clone();
            }
            out
        } else {
            if self.def.status {
                take_status(&mut new, current);
            }
            new
        }
    }

    fn list(&self) -> ApiResult<Response> {
        let filter = self.filter()?;
        if self.req.flag("watch") {
            return Ok(self.watch(filter));
        }
        let (items, rv) = self.store().list(&self.gr, self.namespace.as_deref());
        let items: Vec<Value> = items
            .into_iter()
            .filter(|o| filter.matches(o))
            .map(|o| self.present(o))
            .collect();
        let offset: usize = self
            .req
            .q("continue")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let limit: Option<usize> = self
            .req
            .q("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0);
        let total = items.len();
        let start = offset.min(total);
        let end = limit.map_or(total, |l| (start + l).min(total));
        let page = items[start..end].to_vec();
        if self.req.wants_table() {
            let include = self
                .req
                .q("includeObject")
                .unwrap_or("PartialObjectMetadata");
            return Ok(ok(&table::render(
                &self.def,
                &page,
                &rv.to_string(),
                include,
            )));
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if end < total {
            metadata["continue"] = json!(end.to_string());
            metadata["remainingItemCount"] = json!(total - end);
        }
        Ok(ok(&json!({
            "kind": format!("{}List", self.def.kind),
            "apiVersion": self.def.api_version(),
            "metadata": metadata,
            "items": page,
        })))
    }

    fn watch(&self, filter: Filter) -> Response {
        let timeout = self
            .req
            .q("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
        let resource_version = self
            .req
            .q("resourceVersion")
            .and_then(|rv| rv.parse::<u64>().ok())
            .filter(|rv| *rv > 0);
        let request = watches::WatchRequest {
            namespace: self.namespace.clone(),
            filter,
            resource_version,
            send_initial_events: self.req.flag("sendInitialEvents"),
            timeout,
            table: self.req.wants_table().then(|| {
                self.req
                    .q("includeObject")
                    .unwrap_or("PartialObjectMetadata")
                    .to_string()
            }),
        };
        watches::respond(
            &self.state.store,
            &self.def,
            request,
            self.state.shutdown.clone(),
        )
    }

    fn get(&self, name: &str) -> ApiResult<Response> {
        let obj = self.present(self.current(name)?);
        if self.req.wants_table() {
            let rv = meta_str(&obj, "resourceVersion").to_string();
            let include = self
                .req
                .q("includeObject")
                .unwrap_or("PartialObjectMetadata");
            return Ok(ok(&table::render(&self.def, &[obj], &rv, include)));
        }
        Ok(ok(&obj))
    }

    fn create(&self) -> ApiResult<Response> {
        let obj = self.prepare(decode(&self.req.body)?, None)?;
        self.insert(obj)
    }

    fn insert(&self, mut obj: Value) -> ApiResult<Response> {
        self.require_namespace()?;
        defaults::apply(&self.def, &mut obj, true)?;
        if self.req.dry_run() {
            return Ok(json_response(StatusCode::CREATED, &obj));
        }
        let name = meta_str(&obj, "name").to_string();
        let created = self
            .store()
            .create(&self.gr, obj)
            .map_err(|e| self.store_error(e, &name))?;
        Ok(json_response(StatusCode::CREATED, &self.present(created)))
    }

    fn update(&self, name: &str, status_only: bool) -> ApiResult<Response> {
        let current = self.current(name)?;
        let new = self.prepare(decode(&self.req.body)?, Some(name))?;
        let expected = meta_str(&new, "resourceVersion").to_string();
        let new = self.split_status(&current, new, status_only);
        self.commit(new, &expected)
    }

    fn patch(&self, name: &str, status_only: bool) -> ApiResult<Response> {
        let content_type = self.req.content_type();
        let apply = content_type == "application/apply-patch+yaml";
        let body = decode(&self.req.body)?;
        let Some(current) = self.store().get(&self.gr, self.ns(), name) else {
            if apply && !status_only {
                return self.insert(self.prepare(body, Some(name))?);
            }
            return Err(ApiError::not_found(&self.def.plural, &self.def.group, name));
        };
        let patched = match content_type {
            "application/json-patch+json" => patch::json_patch(&current, &body)?,
            "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/apply-patch+yaml" => {
                let mut doc = current.clone();
                patch::merge(&mut doc, &body);
                doc
            }
            other => {
                return Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format ({other:?}); accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
                )));
            }
        };
        // A patch that sets metadata.resourceVersion makes it a precondition.
        let current_rv = meta_str(&current, "resourceVersion");
        let patched_rv = meta_str(&patched, "resourceVersion");
        let expected = if patched_rv != current_rv {
            patched_rv.to_string()
        } else {
            String::new()
        };
        let new = self.prepare(patched, Some(name))?;
        let new = self.split_status(&current, new, status_only);
        self.commit(new, &expected)
    }

    fn commit(&self, mut obj: Value, expected_rv: &str) -> ApiResult<Response> {
        defaults::apply(&self.def, &mut obj, false)?;
        if self.req.dry_run() {
            return Ok(ok(&obj));
        }
        let name = meta_str(&obj, "name").to_string();
        let expected = (!expected_rv.is_empty()).then_some(expected_rv);
        let stored = self
            .store()
            .replace(&self.gr, obj, expected)
            .map_err(|e| self.store_error(e, &name))?;
        Ok(ok(&self.present(stored)))
    }

    fn delete(&self, name: &str) -> ApiResult<Response> {
        let current = self.current(name)?;
        let mut dry_run = self.req.dry_run();
        if let Ok(options) = decode(&self.req.body) {
            // kube-rs sends DeleteParams' dryRun in the body.
            dry_run |= options["dryRun"].as_array().is_some_and(|v| !v.is_empty());
            for field in ["resourceVersion", "uid"] {
                let wanted = options
                    .pointer(&format!("/preconditions/{field}"))
                    .and_then(Value::as_str);
                if wanted.is_some_and(|w| w != meta_str(&current, field)) {
                    return Err(ApiError::conflict(&self.def.plural, &self.def.group, name));
                }
            }
        }
        if dry_run {
            return Ok(ok(&self.present(current)));
        }
        let deleted = self.remove(name)?;
        Ok(ok(&self.present(deleted)))
    }

    /// Deletes one object and what depends on it: a namespace's contents, a
    /// CRD's custom objects.
    fn remove(&self, name: &str) -> ApiResult<Value> {
        let store = self.store();
        match (self.def.group.as_str(), self.def.plural.as_str()) {
            ("", "namespaces") => {
                for (gr, object) in store.in_namespace(name) {
                    store.delete(&gr, name, &object);
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                if let Some(crd) = store.get(&self.gr, "", name) {
                    let group = crd
                        .pointer("/spec/group")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let plural = crd
                        .pointer("/spec/names/plural")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let gr = GroupResource::new(group, plural);
                    for obj in store.list(&gr, None).0 {
                        store.delete(&gr, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
                    }
                }
            }
            _ => {}
        }
        if self.is_pods() {
            return pods::delete(store, self.ns(), name, self.grace_period())
                .map(pods::Deletion::into_object)
                .ok_or_else(|| ApiError::not_found(&self.def.plural, &self.def.group, name));
        }
        let mut deleted = store
            .delete(&self.gr, self.ns(), name)
            .ok_or_else(|| ApiError::not_found(&self.def.plural, &self.def.group, name))?;
        if self.def.group.is_empty() && self.def.plural == "namespaces" {
            deleted["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            deleted["status"]["phase"] = json!("Terminating");
        }
        Ok(deleted)
    }

    fn is_pods(&self) -> bool {
        self.def.group.is_empty() && self.def.plural == "pods"
    }

    /// A delete's `gracePeriodSeconds`, from the query or the DeleteOptions
    /// body (kube-rs sends the body, kubectl both).
    fn grace_period(&self) -> Option<i64> {
        if let Some(grace) = self.req.q("gracePeriodSeconds") {
            return grace.parse().ok();
        }
        decode(&self.req.body)
            .ok()?
            .get("gracePeriodSeconds")?
            .as_i64()
    }

    fn delete_collection(&self) -> ApiResult<Response> {
        let filter = self.filter()?;
        let (items, rv) = self.store().list(&self.gr, self.namespace.as_deref());
        let mut deleted = Vec::new();
        for obj in items.into_iter().filter(|o| filter.matches(o)) {
            if self.req.dry_run() {
                deleted.push(self.present(obj));
            } else if let Ok(gone) = self.remove(meta_str(&obj, "name")) {
                deleted.push(self.present(gone));
            }
        }
        Ok(ok(&json!({
            "kind": format!("{}List", self.def.kind),
            "apiVersion": self.def.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": deleted,
        })))
    }
}
