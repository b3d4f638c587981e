//! Hetzner Cloud API v1, the parts a host's lifecycle uses: servers (list
//! with the `name` filter, create, show, delete, power actions), server
//! types, locations and datacenters (with `server_types.available`), all
//! paginated with `meta.pagination`, and failures as the documented
//! `{"error": {"code", "message", "details"}}` object.
//!
//! Servers are `initializing` for [`TRANSITION`] after creation, then
//! `running`; power actions pass through `starting` or `stopping` the same
//! way. Time moves on whenever the fake is asked, no background task.
//!
//! Load balancers and their actions live in [`load_balancers`].
//!
//! Not modelled: server actions as resources (they are returned, not
//! stored), SSH keys and root passwords, networks, volumes, firewalls,
//! placement groups, and Hetzner's finer validation of names and labels.

mod load_balancers;

pub use load_balancers::{
    CloudLoadBalancer, LB_ACTION_TIME, LbHealthCheck, LbHealthHttp, LbService, LbTarget,
    LbTargetKind,
};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use url::Url;

/// How long a server stays in a passing state (`initializing`, `starting`,
/// `stopping`).
pub const TRANSITION: Duration = Duration::from_millis(100);

/// A server as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudServer {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub server_type: String,
    pub datacenter: String,
    pub image: String,
    pub ipv4: Ipv4Addr,
    /// The server's /64, as Hetzner reports it.
    pub ipv6_net: String,
    pub labels: BTreeMap<String, String>,
    pub user_data: String,
}

struct ServerType {
    id: u64,
    name: &'static str,
    cores: u32,
    memory: f64,
    disk: u32,
    cpu_type: &'static str,
    architecture: &'static str,
}

// One row per entry, read as a table.
#[rustfmt::skip]
const SERVER_TYPES: &[ServerType] = &[
    ServerType { id: 22, name: "cx22", cores: 2, memory: 4.0, disk: 40, cpu_type: "shared", architecture: "x86" },
    ServerType { id: 23, name: "cx32", cores: 4, memory: 8.0, disk: 80, cpu_type: "shared", architecture: "x86" },
    ServerType { id: 24, name: "cx42", cores: 8, memory: 16.0, disk: 160, cpu_type: "shared", architecture: "x86" },
    ServerType { id: 9, name: "cpx31", cores: 4, memory: 8.0, disk: 160, cpu_type: "shared", architecture: "x86" },
    ServerType { id: 45, name: "cax11", cores: 2, memory: 4.0, disk: 40, cpu_type: "shared", architecture: "arm" },
    ServerType { id: 96, name: "ccx13", cores: 2, memory: 8.0, disk: 80, cpu_type: "dedicated", architecture: "x86" },
];

struct Location {
    id: u64,
    name: &'static str,
    description: &'static str,
    country: &'static str,
    city: &'static str,
    latitude: f64,
    longitude: f64,
}

// One row per entry, read as a table.
#[rustfmt::skip]
const LOCATIONS: &[Location] = &[
    Location { id: 1, name: "fsn1", description: "Falkenstein DC Park 1", country: "DE", city: "Falkenstein", latitude: 50.47612, longitude: 12.370071 },
    Location { id: 2, name: "nbg1", description: "Nuremberg DC Park 1", country: "DE", city: "Nuremberg", latitude: 49.452102, longitude: 11.076665 },
    Location { id: 3, name: "hel1", description: "Helsinki DC Park 1", country: "FI", city: "Helsinki", latitude: 60.169855, longitude: 24.938379 },
];

struct Datacenter {
    id: u64,
    name: &'static str,
    description: &'static str,
    location: &'static str,
}

// One row per entry, read as a table.
#[rustfmt::skip]
const DATACENTERS: &[Datacenter] = &[
    Datacenter { id: 4, name: "fsn1-dc14", description: "Falkenstein 1 virtual DC 14", location: "fsn1" },
    Datacenter { id: 2, name: "nbg1-dc3", description: "Nuremberg 1 virtual DC 3", location: "nbg1" },
    Datacenter { id: 3, name: "hel1-dc2", description: "Helsinki 1 virtual DC 2", location: "hel1" },
];

/// (id, name, description)
const IMAGES: &[(u64, &str, &str)] = &[
    (114690387, "debian-12", "Debian 12"),
    (161547269, "ubuntu-24.04", "Ubuntu 24.04"),
    (67794396, "ubuntu-22.04", "Ubuntu 22.04"),
];

pub struct FakeHetznerCloud {
    shared: Arc<Shared>,
    server: crate::Serving,
}

struct Shared {
    token: String,
    state: Mutex<CloudState>,
}

#[derive(Default)]
struct CloudState {
    servers: Vec<Entry>,
    next_id: u64,
    next_action: u64,
    /// By location name, or "*" for every location not named.
    capacity: HashMap<String, bool>,
    /// (datacenter, server type) pairs taken out of `available`.
    unavailable: HashSet<(String, String)>,
    server_limit: Option<usize>,
    injected: Option<Injected>,
    lb: load_balancers::LbState,
}

struct Entry {
    server: CloudServer,
    created: String,
    /// The status the server reaches, and when.
    settles: Option<(Instant, &'static str)>,
}

struct Injected {
    left: usize,
    status: StatusCode,
    code: String,
}

impl Shared {
    /// The state with every due transition applied.
    fn state(&self) -> MutexGuard<'_, CloudState> {
        // A panicking test must not turn every later assertion into a
        // poison error.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        for entry in &mut state.servers {
            if let Some((at, status)) = entry.settles
                && at <= now
            {
                entry.server.status = status.to_string();
                entry.settles = None;
            }
        }
        state
    }
}

impl CloudState {
    fn available(&self, dc: &Datacenter, server_type: &ServerType) -> bool {
        let capacity = self
            .capacity
            .get(dc.location)
            .or_else(|| self.capacity.get("*"))
            .copied()
            .unwrap_or(true);
        let pair = (dc.name.to_string(), server_type.name.to_string());
        capacity && !self.unavailable.contains(&pair)
    }

    fn action(&mut self, command: &str, server: u64) -> Value {
        self.next_action += 1;
        json!({
            "id": self.next_action,
            "command": command,
            "status": "running",
            "progress": 0,
            "started": rfc3339_now(),
            "finished": null,
            "resources": [{ "id": server, "type": "server" }],
            "error": null,
        })
    }
}

impl FakeHetznerCloud {
    /// Serves on a free loopback port until dropped; requests must carry
    /// `Authorization: Bearer {token}`.
    pub async fn start(token: &str) -> FakeHetznerCloud {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            state: Mutex::new(CloudState {
                next_id: 40_000_000,
                ..CloudState::default()
            }),
        });
        let app = load_balancers::routes(Router::new())
            .route("/v1/locations", get(locations))
            .route("/v1/server_types", get(server_types))
            .route("/v1/datacenters", get(datacenters))
            .route("/v1/servers", get(list_servers).post(create))
            .route("/v1/servers/{id}", get(show).delete(delete))
            .route("/v1/servers/{id}/actions/{action}", post(act))
            .fallback(|| async { fail(StatusCode::NOT_FOUND, "not_found", "not found") })
            .layer(middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let port = crate::Port::free("FakeHetznerCloud").await;
        FakeHetznerCloud {
            shared,
            server: port.serve(app),
        }
    }

    /// `http://127.0.0.1:PORT/v1/`, to use in place of
    /// `https://api.hetzner.cloud/v1/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/v1/", self.server.addr))
            .expect("a socket address makes a URL")
    }

    pub fn servers(&self) -> Vec<CloudServer> {
        self.shared
            .state()
            .servers
            .iter()
            .map(|e| e.server.clone())
            .collect()
    }

    /// Whether servers can be created in `location` ("*": every location
    /// not named otherwise). Without capacity, creating answers 412
    /// `resource_unavailable` and datacenters there list no server type as
    /// available.
    pub fn set_capacity(&self, location: &str, available: bool) {
        self.shared
            .state()
            .capacity
            .insert(location.to_string(), available);
    }

    /// Takes one server type in one datacenter out of (or back into)
    /// `server_types.available`.
    pub fn set_available(&self, datacenter: &str, server_type: &str, available: bool) {
        let pair = (datacenter.to_string(), server_type.to_string());
        let mut state = self.shared.state();
        if available {
            state.unavailable.remove(&pair);
        } else {
            state.unavailable.insert(pair);
        }
    }

    /// At `limit` servers, creating answers 403 `resource_limit_exceeded`.
    pub fn set_server_limit(&self, limit: usize) {
        self.shared.state().server_limit = Some(limit);
    }

    /// The next `n` requests answer `status` with the error `code`, before
    /// the token is checked (as Hetzner's rate limiter does).
    pub fn fail_next(&self, n: usize, status: u16, code: &str) {
        self.shared.state().injected = Some(Injected {
            left: n,
            status: StatusCode::from_u16(status).expect("an HTTP status code"),
            code: code.to_string(),
        });
    }
}

type Shd = State<Arc<Shared>>;
type Answer = Result<Response, Fail>;
type Params = Query<HashMap<String, String>>;

/// The documented error object with its HTTP status.
struct Fail {
    status: StatusCode,
    code: String,
    message: String,
    details: Value,
}

fn fail(status: StatusCode, code: &str, message: impl Into<String>) -> Fail {
    Fail {
        status,
        code: code.to_string(),
        message: message.into(),
        details: json!({}),
    }
}

/// `invalid_input` naming the field, as Hetzner reports validation errors.
fn invalid_field(field: &str, message: impl Into<String>) -> Fail {
    let message = message.into();
    Fail {
        details: json!({ "fields": [{ "name": field, "messages": [message] }] }),
        ..fail(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("invalid input in field '{field}'"),
        )
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message, "details": self.details },
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            let headers = response.headers_mut();
            headers.insert("ratelimit-limit", 3600.into());
            headers.insert("ratelimit-remaining", 0.into());
            headers.insert("ratelimit-reset", 1.into());
        }
        response
    }
}

/// Injected failures first, then the token.
async fn gate(State(shared): Shd, request: Request, next: Next) -> Answer {
    {
        let mut state = shared.state();
        if let Some(injected) = state.injected.as_mut().filter(|i| i.left > 0) {
            injected.left -= 1;
            let message = format!("injected {} failure", injected.code);
            return Err(fail(injected.status, &injected.code.clone(), message));
        }
    }
    let expected = format!("Bearer {}", shared.token);
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unable to authenticate",
        ));
    }
    Ok(next.run(request).await)
}

/// One page of `items` under `key`, with the documented `meta.pagination`.
fn paginated(key: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Answer {
    let number =
        |key: &str, default: usize| q.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let page = number("page", 1).max(1);
    let per_page = number("per_page", 25).clamp(1, 50);
    let total = items.len();
    let last_page = total.div_ceil(per_page).max(1);
    let result: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let body = json!({
        key: result,
        "meta": { "pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": if page > 1 { json!(page - 1) } else { Value::Null },
            "next_page": if page < last_page { json!(page + 1) } else { Value::Null },
            "last_page": last_page,
            "total_entries": total,
        }},
    });
    Ok(Json(body).into_response())
}

fn named<'a>(q: &'a HashMap<String, String>) -> impl Fn(&str) -> bool + 'a {
    move |name| q.get("name").is_none_or(|wanted| wanted == name)
}

fn server_type_view(t: &ServerType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.name.to_ascii_uppercase(),
        "cores": t.cores,
        "memory": t.memory,
        "disk": t.disk,
        "storage_type": "local",
        "cpu_type": t.cpu_type,
        "architecture": t.architecture,
        "deprecated": false,
        "deprecation": null,
        "prices": [],
    })
}

fn location_view(l: &Location) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "description": l.description,
        "country": l.country,
        "city": l.city,
        "latitude": l.latitude,
        "longitude": l.longitude,
        "network_zone": "eu-central",
    })
}

fn location(name: &str) -> Option<&'static Location> {
    LOCATIONS.iter().find(|l| l.name == name)
}

fn datacenter_view(dc: &Datacenter, state: &CloudState) -> Value {
    let supported: Vec<u64> = SERVER_TYPES.iter().map(|t| t.id).collect();
    let available: Vec<u64> = SERVER_TYPES
        .iter()
        .filter(|t| state.available(dc, t))
        .map(|t| t.id)
        .collect();
    json!({
        "id": dc.id,
        "name": dc.name,
        "description": dc.description,
        "location": location(dc.location).map(location_view),
        "server_types": {
            "supported": supported,
            "available": available,
            "available_for_migration": available,
        },
    })
}

fn image_view(name: &str) -> Value {
    let Some(&(id, name, description)) = IMAGES.iter().find(|i| i.1 == name) else {
        return Value::Null;
    };
    json!({
        "id": id, "type": "system", "status": "available", "name": name,
        "description": description, "os_flavor": name.split('-').next(),
        "os_version": name.split('-').nth(1), "architecture": "x86",
        "rapid_deploy": true, "deprecated": null, "labels": {},
    })
}

fn server_view(entry: &Entry, state: &CloudState) -> Value {
    let s = &entry.server;
    let server_type = SERVER_TYPES.iter().find(|t| t.name == s.server_type);
    let datacenter = DATACENTERS.iter().find(|d| d.name == s.datacenter);
    json!({
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "created": entry.created,
        "public_net": {
            "ipv4": { "id": s.id, "ip": s.ipv4.to_string(), "blocked": false,
                      "dns_ptr": format!("static.{}.clients.your-server.de", s.ipv4) },
            "ipv6": { "id": s.id, "ip": s.ipv6_net, "blocked": false, "dns_ptr": [] },
            "floating_ips": [],
            "firewalls": [],
        },
        "private_net": [],
        "server_type": server_type.map(server_type_view),
        "datacenter": datacenter.map(|d| datacenter_view(d, state)),
        "image": image_view(&s.image),
        "iso": null,
        "rescue_enabled": false,
        "locked": false,
        "backup_window": null,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21_990_232_555_520u64,
        "protection": { "delete": false, "rebuild": false },
        "labels": s.labels,
        "volumes": [],
        "load_balancers": [],
        "primary_disk_size": server_type.map_or(0, |t| t.disk),
        "placement_group": null,
    })
}

async fn locations(Query(q): Params) -> Answer {
    let wanted = named(&q);
    let items = LOCATIONS
        .iter()
        .filter(|l| wanted(l.name))
        .map(location_view)
        .collect();
    paginated("locations", items, &q)
}

async fn server_types(Query(q): Params) -> Answer {
    let wanted = named(&q);
    let items = SERVER_TYPES
        .iter()
        .filter(|t| wanted(t.name))
        .map(server_type_view)
        .collect();
    paginated("server_types", items, &q)
}

async fn datacenters(State(shared): Shd, Query(q): Params) -> Answer {
    let state = shared.state();
    let wanted = named(&q);
    let items = DATACENTERS
        .iter()
        .filter(|d| wanted(d.name))
        .map(|d| datacenter_view(d, &state))
        .collect();
    paginated("datacenters", items, &q)
}

async fn list_servers(State(shared): Shd, Query(q): Params) -> Answer {
    let state = shared.state();
    let wanted = named(&q);
    let items = state
        .servers
        .iter()
        .filter(|e| wanted(&e.server.name))
        .map(|e| server_view(e, &state))
        .collect();
    paginated("servers", items, &q)
}

/// What a create request asks for, validated as Hetzner validates it.
struct Order {
    name: String,
    server_type: &'static ServerType,
    image: String,
    location: Option<&'static Location>,
    labels: BTreeMap<String, String>,
    user_data: String,
    start: bool,
}

fn hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn parse_order(body: &Bytes) -> Result<Order, Fail> {
    let input: Value = serde_json::from_slice(body)
        .map_err(|_| fail(StatusCode::BAD_REQUEST, "json_error", "invalid JSON"))?;
    let text = |key: &str| input.get(key).and_then(Value::as_str);
    let name = text("name").ok_or_else(|| invalid_field("name", "is required"))?;
    if !hostname(name) {
        return Err(invalid_field("name", "must be a valid hostname"));
    }
    let type_name =
        text("server_type").ok_or_else(|| invalid_field("server_type", "is required"))?;
    let server_type = SERVER_TYPES
        .iter()
        .find(|t| t.name == type_name)
        .ok_or_else(|| {
            invalid_field("server_type", format!("server type {type_name} not found"))
        })?;
    let image = text("image").ok_or_else(|| invalid_field("image", "is required"))?;
    if !IMAGES.iter().any(|i| i.1 == image) {
        return Err(invalid_field("image", format!("image {image} not found")));
    }
    let location = match text("location") {
        Some(l) => Some(
            location(l)
                .ok_or_else(|| invalid_field("location", format!("location {l} not found")))?,
        ),
        None => None,
    };
    let labels = match input.get("labels") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(labels) => serde_json::from_value(labels.clone())
            .map_err(|_| invalid_field("labels", "must map keys to string values"))?,
    };
    Ok(Order {
        name: name.to_string(),
        server_type,
        image: image.to_string(),
        location,
        labels,
        user_data: text("user_data").unwrap_or_default().to_string(),
        start: input
            .get("start_after_create")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

async fn create(State(shared): Shd, body: Bytes) -> Answer {
    let order = parse_order(&body)?;
    let mut state = shared.state();
    if state.servers.iter().any(|e| e.server.name == order.name) {
        return Err(Fail {
            details: json!({ "fields": [{ "name": "name", "messages": ["is already used"] }] }),
            ..fail(
                StatusCode::CONFLICT,
                "uniqueness_error",
                "server name is already used",
            )
        });
    }
    if state
        .server_limit
        .is_some_and(|limit| state.servers.len() >= limit)
    {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "resource_limit_exceeded",
            "server limit exceeded",
        ));
    }
    let datacenter = DATACENTERS
        .iter()
        .filter(|dc| order.location.is_none_or(|l| l.name == dc.location))
        .find(|dc| state.available(dc, order.server_type))
        .ok_or_else(|| {
            let place = order.location.map_or("any location", |l| l.name);
            fail(
                StatusCode::PRECONDITION_FAILED,
                "resource_unavailable",
                format!(
                    "server type {} is unavailable in {place}",
                    order.server_type.name
                ),
            )
        })?;
    state.next_id += 1;
    let id = state.next_id;
    let after = if order.start { "running" } else { "off" };
    let entry = Entry {
        server: CloudServer {
            id,
            name: order.name,
            status: "initializing".into(),
            server_type: order.server_type.name.into(),
            datacenter: datacenter.name.into(),
            image: order.image,
            // Documentation ranges (RFC 5737, RFC 3849).
            ipv4: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 51, 100, 0)) + (id % 250) as u32 + 1),
            ipv6_net: format!("2001:db8:{:x}::/64", id & 0xffff),
            labels: order.labels,
            user_data: order.user_data,
        },
        created: rfc3339_now(),
        settles: Some((Instant::now() + TRANSITION, after)),
    };
    let view = server_view(&entry, &state);
    state.servers.push(entry);
    let action = state.action("create_server", id);
    let next_actions = if order.start {
        vec![state.action("start_server", id)]
    } else {
        Vec::new()
    };
    let body = json!({
        "server": view,
        "action": action,
        "next_actions": next_actions,
        "root_password": null,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn index(state: &CloudState, id: &str) -> Result<usize, Fail> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| state.servers.iter().position(|e| e.server.id == id))
        .ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("server with ID '{id}' not found"),
            )
        })
}

async fn show(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let state = shared.state();
    let entry = &state.servers[index(&state, &id)?];
    Ok(Json(json!({ "server": server_view(entry, &state) })).into_response())
}

async fn delete(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let mut state = shared.state();
    let at = index(&state, &id)?;
    let removed = state.servers.remove(at);
    let action = state.action("delete_server", removed.server.id);
    Ok(Json(json!({ "action": action })).into_response())
}

async fn act(State(shared): Shd, Path((id, action)): Path<(String, String)>) -> Answer {
    // (command, passing status, final status)
    let (command, passing, after) = match action.as_str() {
        "poweron" => ("start_server", "starting", "running"),
        "poweroff" => ("stop_server", "stopping", "off"),
        "shutdown" => ("shutdown_server", "stopping", "off"),
        "reset" => ("reset_server", "starting", "running"),
        "reboot" => ("reboot_server", "starting", "running"),
        _ => return Err(fail(StatusCode::NOT_FOUND, "not_found", "not found")),
    };
    let mut state = shared.state();
    let at = index(&state, &id)?;
    let entry = &mut state.servers[at];
    entry.server.status = passing.to_string();
    entry.settles = Some((Instant::now() + TRANSITION, after));
    let server = entry.server.id;
    let action = state.action(command, server);
    Ok((StatusCode::CREATED, Json(json!({ "action": action }))).into_response())
}

/// `YYYY-MM-DDTHH:MM:SS+00:00`, as Hetzner writes times.
pub(crate) fn rfc3339_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (date, rest) = (seconds / 86_400, seconds % 86_400);
    format!(
        "{}T{:02}:{:02}:{:02}+00:00",
        civil_date(date),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Today's date, `YYYY-MM-DD` (UTC).
pub(crate) fn today() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(seconds / 86_400)
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's
/// civil_from_days), so the fakes need no date library.
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
    }
}
