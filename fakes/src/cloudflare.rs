//! Cloudflare's v4 DNS records API for one zone: list (with `type`, `name`
//! and `content` filters and pagination), create, show, patch, put, delete,
//! all wrapped in Cloudflare's `{success, errors, messages, result}`
//! envelope.
//!
//! Not modelled: the zone's own name (Cloudflare appends it to names that
//! are not fully qualified; here names are stored as given), record types'
//! finer rules, and rate limits.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

/// A DNS record as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub r#type: String,
    pub name: String,
    pub content: String,
    pub ttl: u32,
    pub proxied: bool,
}

pub struct FakeCloudflare {
    shared: Arc<Shared>,
    server: crate::Serving,
}

struct Shared {
    token: String,
    zone_id: String,
    state: Mutex<ZoneState>,
}

#[derive(Default)]
struct ZoneState {
    records: Vec<Record>,
    next_id: u64,
    failures_left: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ZoneState> {
        // A panicking test must not turn every later assertion into a
        // poison error.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FakeCloudflare {
    /// Serves on a free loopback port until dropped.
    pub async fn start(token: &str, zone_id: &str) -> FakeCloudflare {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            zone_id: zone_id.to_string(),
            state: Mutex::new(ZoneState::default()),
        });
        let app = Router::new()
            .route(
                "/client/v4/zones/{zone}/dns_records",
                get(list).post(create),
            )
            .route(
                "/client/v4/zones/{zone}/dns_records/{id}",
                get(show).patch(patch).put(put).delete(delete),
            )
            .fallback(|| async { fail(StatusCode::BAD_REQUEST, 7000, "No route for that URI") })
            .layer(middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let port = crate::Port::free("FakeCloudflare").await;
        FakeCloudflare {
            shared,
            server: port.serve(app),
        }
    }

    /// `http://127.0.0.1:PORT/client/v4/`, to use in place of
    /// `https://api.cloudflare.com/client/v4/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/client/v4/", self.server.addr))
            .expect("a socket address makes a URL")
    }

    pub fn records(&self) -> Vec<Record> {
        self.shared.state().records.clone()
    }

    /// The next `n` requests answer 500 with an error envelope.
    pub fn fail_next(&self, n: usize) {
        self.shared.state().failures_left = n;
    }

    /// Adds a record directly, bypassing validation, for arranging states
    /// the code under test did not create (duplicates, stale addresses).
    pub fn insert(&self, r#type: &str, name: &str, content: &str) -> String {
        let mut state = self.shared.state();
        let id = next_id(&mut state);
        state.records.push(Record {
            id: id.clone(),
            r#type: r#type.to_string(),
            name: name.to_string(),
            content: content.to_string(),
            ttl: 1,
            proxied: false,
        });
        id
    }
}

type Shd = State<Arc<Shared>>;
type Answer = Result<Response, Fail>;

/// An error envelope with its HTTP status.
struct Fail(StatusCode, u32, String);

fn fail(status: StatusCode, code: u32, message: impl Into<String>) -> Fail {
    Fail(status, code, message.into())
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let Fail(status, code, message) = self;
        let body = json!({
            "success": false,
            "errors": [{ "code": code, "message": message }],
            "messages": [],
            "result": null,
        });
        (status, Json(body)).into_response()
    }
}

/// Injected failures first, then the token, as Cloudflare's edge does
/// before routing.
async fn gate(State(shared): Shd, request: Request, next: Next) -> Answer {
    {
        let mut state = shared.state();
        if state.failures_left > 0 {
            state.failures_left -= 1;
            // Cloudflare documents no code for its own failures.
            return Err(fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                10001,
                "Internal server error",
            ));
        }
    }
    let expected = format!("Bearer {}", shared.token);
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return Err(fail(StatusCode::FORBIDDEN, 10000, "Authentication error"));
    }
    Ok(next.run(request).await)
}

fn ok(result: Value, result_info: Option<Value>) -> Answer {
    let mut body = json!({ "success": true, "errors": [], "messages": [], "result": result });
    if let Some(info) = result_info {
        body["result_info"] = info;
    }
    Ok(Json(body).into_response())
}

fn zone(shared: &Shared, zone: &str) -> Result<(), Fail> {
    if zone == shared.zone_id {
        return Ok(());
    }
    let message = format!(
        "Could not route to /zones/{zone}/dns_records, perhaps your object identifier is invalid?"
    );
    Err(fail(StatusCode::NOT_FOUND, 7003, message))
}

fn view(shared: &Shared, record: &Record) -> Value {
    let mut value = json!(record);
    value["zone_id"] = json!(shared.zone_id);
    value["proxiable"] = json!(true);
    value["comment"] = Value::Null;
    value["tags"] = json!([]);
    value["meta"] = json!({});
    value
}

fn next_id(state: &mut ZoneState) -> String {
    state.next_id += 1;
    // Cloudflare's ids are 32 hex digits.
    format!("{:032x}", state.next_id)
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn list(
    State(shared): Shd,
    Path(z): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    zone(&shared, &z)?;
    let filter = |key: &str| q.get(key).or_else(|| q.get(&format!("{key}.exact")));
    let (kind, name, content) = (
        filter("type"),
        filter("name").map(|n| normalize(n)),
        filter("content"),
    );
    let number =
        |key: &str, default: usize| q.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let page = number("page", 1).max(1);
    let per_page = number("per_page", 100).clamp(1, 5_000_000);
    let matching: Vec<Value> = shared
        .state()
        .records
        .iter()
        .filter(|r| kind.is_none_or(|k| r.r#type.eq_ignore_ascii_case(k)))
        .filter(|r| name.as_ref().is_none_or(|n| &r.name == n))
        .filter(|r| content.is_none_or(|c| r.content.eq_ignore_ascii_case(c)))
        .map(|r| view(&shared, r))
        .collect();
    let total = matching.len();
    let result: Vec<Value> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let info = json!({
        "page": page, "per_page": per_page, "count": result.len(),
        "total_count": total, "total_pages": total.div_ceil(per_page),
    });
    ok(json!(result), Some(info))
}

#[derive(Deserialize)]
struct Input {
    r#type: Option<String>,
    name: Option<String>,
    content: Option<String>,
    ttl: Option<u32>,
    proxied: Option<bool>,
}

fn parse(body: &Bytes) -> Result<Input, Fail> {
    serde_json::from_slice(body)
        .map_err(|_| fail(StatusCode::BAD_REQUEST, 9207, "Request body is invalid."))
}

/// Cloudflare's own checks that the fake reproduces, then uniqueness.
fn admit(state: &ZoneState, record: &Record) -> Result<(), Fail> {
    let invalid = |message: &str| {
        Err(fail(
            StatusCode::BAD_REQUEST,
            1004,
            format!("DNS Validation Error: {message}"),
        ))
    };
    match record.r#type.as_str() {
        "A" if record.content.parse::<Ipv4Addr>().is_err() => {
            return invalid("content must be an IPv4 address");
        }
        "AAAA" if record.content.parse::<Ipv6Addr>().is_err() => {
            return invalid("content must be an IPv6 address");
        }
        _ => {}
    }
    if record.name.is_empty() || !(record.ttl == 1 || (30..=86_400).contains(&record.ttl)) {
        return invalid("a name and a ttl of 1 or 30..86400 are required");
    }
    let duplicate = state.records.iter().any(|r| {
        r.id != record.id
            && r.r#type == record.r#type
            && r.name == record.name
            && r.content == record.content
    });
    if duplicate {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            81057,
            "Record already exists.",
        ));
    }
    Ok(())
}

fn required(input: Input, id: String) -> Result<Record, Fail> {
    let (Some(kind), Some(name), Some(content)) = (input.r#type, input.name, input.content) else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            1004,
            "DNS Validation Error: type, name and content are required",
        ));
    };
    Ok(Record {
        id,
        r#type: kind.to_ascii_uppercase(),
        name: normalize(&name),
        content,
        ttl: input.ttl.unwrap_or(1),
        proxied: input.proxied.unwrap_or(false),
    })
}

async fn create(State(shared): Shd, Path(z): Path<String>, body: Bytes) -> Answer {
    zone(&shared, &z)?;
    let record = required(parse(&body)?, String::new())?;
    let mut state = shared.state();
    admit(&state, &record)?;
    let record = Record {
        id: next_id(&mut state),
        ..record
    };
    state.records.push(record.clone());
    ok(view(&shared, &record), None)
}

/// Runs `change` on the record `id`, then validates and stores the result.
fn modify(
    shared: &Shared,
    z: &str,
    id: &str,
    change: impl FnOnce(&Record) -> Result<Record, Fail>,
) -> Answer {
    zone(shared, z)?;
    let mut state = shared.state();
    let Some(index) = state.records.iter().position(|r| r.id == id) else {
        return Err(fail(StatusCode::NOT_FOUND, 81044, "Record does not exist."));
    };
    let record = change(&state.records[index])?;
    admit(&state, &record)?;
    state.records[index] = record.clone();
    ok(view(shared, &record), None)
}

async fn show(State(shared): Shd, Path((z, id)): Path<(String, String)>) -> Answer {
    modify(&shared, &z, &id, |r| Ok(r.clone()))
}

async fn patch(State(shared): Shd, Path((z, id)): Path<(String, String)>, body: Bytes) -> Answer {
    let input = parse(&body)?;
    modify(&shared, &z, &id, |r| {
        Ok(Record {
            id: r.id.clone(),
            r#type: input
                .r#type
                .map_or_else(|| r.r#type.clone(), |t| t.to_ascii_uppercase()),
            name: input.name.map_or_else(|| r.name.clone(), |n| normalize(&n)),
            content: input.content.unwrap_or_else(|| r.content.clone()),
            ttl: input.ttl.unwrap_or(r.ttl),
            proxied: input.proxied.unwrap_or(r.proxied),
        })
    })
}

async fn put(State(shared): Shd, Path((z, id)): Path<(String, String)>, body: Bytes) -> Answer {
    let input = parse(&body)?;
    modify(&shared, &z, &id, |r| required(input, r.id.clone()))
}

async fn delete(State(shared): Shd, Path((z, id)): Path<(String, String)>) -> Answer {
    zone(&shared, &z)?;
    let mut state = shared.state();
    let before = state.records.len();
    state.records.retain(|r| r.id != id);
    if state.records.len() == before {
        return Err(fail(StatusCode::NOT_FOUND, 81044, "Record does not exist."));
    }
    // The documented answer carries only the id, no envelope fields.
    Ok(Json(json!({ "result": { "id": id } })).into_response())
}
