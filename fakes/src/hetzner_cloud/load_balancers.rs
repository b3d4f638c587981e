//! Hetzner Cloud load balancers: list (with the `name` filter), create,
//! show, delete, and the actions `add_service`, `update_service`,
//! `delete_service`, `add_target`, `remove_target`, `change_algorithm`,
//! `change_type` and `attach_to_network`, each answering an action object
//! that runs for [`LB_ACTION_TIME`] and can be read back at
//! `/load_balancers/actions/{id}`. While one of its actions runs a load
//! balancer is locked: another action (or deleting it) answers 409
//! `locked`, as Hetzner does.
//!
//! Targets are `ip` targets and `server` targets (of servers this fake
//! holds). Not modelled: `label_selector` targets, `https` services and
//! certificates, networks as resources (any network id is accepted),
//! detaching, protection, metrics, and renaming.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{
    Answer, CloudState, Fail, FakeHetznerCloud, Params, Shared, Shd, fail, invalid_field, location,
    location_view, named, paginated, rfc3339_now,
};

/// How long a load balancer action runs before it reports `success`.
pub const LB_ACTION_TIME: Duration = Duration::from_millis(30);

/// A load balancer as the fake stores it. Tests may change one behind the
/// client's back with [`FakeHetznerCloud::edit_load_balancer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudLoadBalancer {
    pub id: u64,
    pub name: String,
    pub load_balancer_type: String,
    pub location: String,
    /// `round_robin` or `least_connections`.
    pub algorithm: String,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    /// The network it was attached to at creation, and its address there.
    pub private_net: Option<(u64, Ipv4Addr)>,
    pub services: Vec<LbService>,
    pub targets: Vec<LbTarget>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbService {
    /// `tcp` or `http`.
    pub protocol: String,
    pub listen_port: u16,
    pub destination_port: u16,
    pub proxyprotocol: bool,
    pub health_check: LbHealthCheck,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbHealthCheck {
    /// `tcp` or `http`.
    pub protocol: String,
    pub port: u16,
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    /// Set exactly when `protocol` is `http`.
    pub http: Option<LbHealthHttp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbHealthHttp {
    pub domain: Option<String>,
    pub path: String,
    pub response: Option<String>,
    pub status_codes: Vec<String>,
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbTargetKind {
    Ip(IpAddr),
    Server { id: u64, use_private_ip: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbTarget {
    pub kind: LbTargetKind,
    /// By listen port; a service without an entry reports `unknown`.
    pub health: BTreeMap<u16, String>,
}

impl LbTarget {
    pub fn ip(ip: IpAddr) -> Self {
        Self {
            kind: LbTargetKind::Ip(ip),
            health: BTreeMap::new(),
        }
    }
}

struct LbType {
    id: u64,
    name: &'static str,
    max_connections: u32,
    max_services: usize,
    max_targets: usize,
    max_assigned_certificates: u32,
}

// One row per entry, read as a table.
#[rustfmt::skip]
const LB_TYPES: &[LbType] = &[
    LbType { id: 1, name: "lb11", max_connections: 10_000, max_services: 5, max_targets: 25, max_assigned_certificates: 10 },
    LbType { id: 2, name: "lb21", max_connections: 20_000, max_services: 15, max_targets: 75, max_assigned_certificates: 25 },
    LbType { id: 3, name: "lb31", max_connections: 40_000, max_services: 30, max_targets: 150, max_assigned_certificates: 50 },
];

fn lb_type(name: &str) -> Option<&'static LbType> {
    LB_TYPES.iter().find(|t| t.name == name)
}

/// The load balancer part of the fake's state.
#[derive(Default)]
pub(super) struct LbState {
    balancers: Vec<Stored>,
    created: u64,
    actions: Vec<LbAction>,
    limit: Option<usize>,
    /// Overrides [`LB_ACTION_TIME`].
    action_time: Option<Duration>,
}

struct Stored {
    lb: CloudLoadBalancer,
    created: String,
}

struct LbAction {
    id: u64,
    command: &'static str,
    balancer: u64,
    started: String,
    done: Instant,
}

impl LbState {
    fn index(&self, id: &str) -> Result<usize, Fail> {
        id.parse::<u64>()
            .ok()
            .and_then(|id| self.balancers.iter().position(|b| b.lb.id == id))
            .ok_or_else(|| {
                fail(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("load balancer with ID '{id}' not found"),
                )
            })
    }

    fn locked(&self, balancer: u64) -> bool {
        let now = Instant::now();
        self.actions
            .iter()
            .any(|a| a.balancer == balancer && a.done > now)
    }
}

impl CloudState {
    fn lb_action(&mut self, command: &'static str, balancer: u64) -> Value {
        self.next_action += 1;
        let action = LbAction {
            id: self.next_action,
            command,
            balancer,
            started: rfc3339_now(),
            done: Instant::now() + self.lb.action_time.unwrap_or(LB_ACTION_TIME),
        };
        let view = action_view(&action);
        self.lb.actions.push(action);
        view
    }

    /// Whether `ip` belongs to something Hetzner Cloud runs, which Hetzner
    /// refuses as an `ip` target.
    fn cloud_ip(&self, ip: IpAddr) -> bool {
        self.servers.iter().any(|e| IpAddr::V4(e.server.ipv4) == ip)
            || self
                .lb
                .balancers
                .iter()
                .any(|b| IpAddr::V4(b.lb.ipv4) == ip || IpAddr::V6(b.lb.ipv6) == ip)
    }
}

fn action_view(action: &LbAction) -> Value {
    let done = action.done <= Instant::now();
    json!({
        "id": action.id,
        "command": action.command,
        "status": if done { "success" } else { "running" },
        "progress": if done { 100 } else { 0 },
        "started": action.started,
        "finished": if done { json!(rfc3339_now()) } else { Value::Null },
        "resources": [{ "id": action.balancer, "type": "load_balancer" }],
        "error": null,
    })
}

impl FakeHetznerCloud {
    pub fn load_balancers(&self) -> Vec<CloudLoadBalancer> {
        self.shared
            .state()
            .lb
            .balancers
            .iter()
            .map(|b| b.lb.clone())
            .collect()
    }

    pub fn load_balancer(&self, id: u64) -> Option<CloudLoadBalancer> {
        self.load_balancers().into_iter().find(|lb| lb.id == id)
    }

    /// Changes a load balancer as someone in Hetzner's console would, with
    /// no action and no validation. Panics when there is no such load
    /// balancer (a mistake in the test).
    pub fn edit_load_balancer(&self, id: u64, edit: impl FnOnce(&mut CloudLoadBalancer)) {
        let mut state = self.shared.state();
        let stored = state
            .lb
            .balancers
            .iter_mut()
            .find(|b| b.lb.id == id)
            .unwrap_or_else(|| panic!("the fake holds no load balancer {id}"));
        edit(&mut stored.lb);
    }

    /// Sets what the health checks of the service on `listen_port` report
    /// for the `ip` target `target`: `healthy`, `unhealthy` or `unknown`.
    pub fn set_target_health(&self, id: u64, target: IpAddr, listen_port: u16, status: &str) {
        self.edit_load_balancer(id, |lb| {
            let found = lb
                .targets
                .iter_mut()
                .find(|t| t.kind == LbTargetKind::Ip(target))
                .unwrap_or_else(|| panic!("load balancer {id} has no target {target}"));
            found.health.insert(listen_port, status.to_string());
        });
    }

    /// At `limit` load balancers, creating answers 403
    /// `resource_limit_exceeded`.
    pub fn set_load_balancer_limit(&self, limit: usize) {
        self.shared.state().lb.limit = Some(limit);
    }

    /// How long load balancer actions started from now run (and lock
    /// their load balancer); [`LB_ACTION_TIME`] unless set.
    pub fn set_load_balancer_action_time(&self, time: Duration) {
        self.shared.state().lb.action_time = Some(time);
    }

    /// Every load balancer action so far, oldest first: (load balancer id,
    /// command).
    pub fn load_balancer_actions(&self) -> Vec<(u64, String)> {
        self.shared
            .state()
            .lb
            .actions
            .iter()
            .map(|a| (a.balancer, a.command.to_string()))
            .collect()
    }
}

pub(super) fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route("/v1/load_balancers", get(list).post(create))
        .route("/v1/load_balancers/actions/{id}", get(show_action))
        .route("/v1/load_balancers/{id}", get(show).delete(delete))
        .route("/v1/load_balancers/{id}/actions/{action}", post(act))
}

fn lb_type_view(t: &LbType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.name.to_ascii_uppercase(),
        "max_connections": t.max_connections,
        "max_services": t.max_services,
        "max_targets": t.max_targets,
        "max_assigned_certificates": t.max_assigned_certificates,
        "deprecated": null,
        "prices": [],
    })
}

fn service_view(s: &LbService) -> Value {
    let http = s.health_check.http.as_ref().map(|h| {
        json!({
            "domain": h.domain,
            "path": h.path,
            "response": h.response,
            "status_codes": h.status_codes,
            "tls": h.tls,
        })
    });
    let service_http = (s.protocol == "http").then(|| {
        json!({
            "cookie_name": "HCLBSTICKY",
            "cookie_lifetime": 300,
            "certificates": [],
            "redirect_http": false,
            "sticky_sessions": false,
        })
    });
    json!({
        "protocol": s.protocol,
        "listen_port": s.listen_port,
        "destination_port": s.destination_port,
        "proxyprotocol": s.proxyprotocol,
        "health_check": {
            "protocol": s.health_check.protocol,
            "port": s.health_check.port,
            "interval": s.health_check.interval,
            "timeout": s.health_check.timeout,
            "retries": s.health_check.retries,
            "http": http,
        },
        "http": service_http,
    })
}

fn target_view(t: &LbTarget, services: &[LbService]) -> Value {
    let health: Vec<Value> = services
        .iter()
        .map(|s| {
            let status = t
                .health
                .get(&s.listen_port)
                .map_or("unknown", String::as_str);
            json!({ "listen_port": s.listen_port, "status": status })
        })
        .collect();
    match &t.kind {
        LbTargetKind::Ip(ip) => json!({
            "type": "ip",
            "ip": { "ip": ip.to_string() },
            "health_status": health,
        }),
        LbTargetKind::Server { id, use_private_ip } => json!({
            "type": "server",
            "server": { "id": id },
            "use_private_ip": use_private_ip,
            "health_status": health,
        }),
    }
}

fn balancer_view(stored: &Stored) -> Value {
    let lb = &stored.lb;
    let private_net: Vec<Value> = lb
        .private_net
        .iter()
        .map(|(network, ip)| json!({ "network": network, "ip": ip.to_string() }))
        .collect();
    json!({
        "id": lb.id,
        "name": lb.name,
        "public_net": {
            "enabled": true,
            "ipv4": { "ip": lb.ipv4.to_string(),
                      "dns_ptr": format!("static.{}.clients.your-server.de", lb.ipv4) },
            "ipv6": { "ip": lb.ipv6.to_string(), "dns_ptr": null },
        },
        "private_net": private_net,
        "location": location(&lb.location).map(location_view),
        "load_balancer_type": lb_type(&lb.load_balancer_type).map(lb_type_view),
        "protection": { "delete": false },
        "labels": lb.labels,
        "targets": lb.targets.iter().map(|t| target_view(t, &lb.services)).collect::<Vec<_>>(),
        "services": lb.services.iter().map(service_view).collect::<Vec<_>>(),
        "algorithm": { "type": lb.algorithm },
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21_990_232_555_520u64,
        "created": stored.created,
    })
}

async fn list(State(shared): Shd, Query(q): Params) -> Answer {
    let state = shared.state();
    let wanted = named(&q);
    let items = state
        .lb
        .balancers
        .iter()
        .filter(|b| wanted(&b.lb.name))
        .map(balancer_view)
        .collect();
    paginated("load_balancers", items, &q)
}

async fn show(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let state = shared.state();
    let stored = &state.lb.balancers[state.lb.index(&id)?];
    Ok(Json(json!({ "load_balancer": balancer_view(stored) })).into_response())
}

async fn show_action(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let state = shared.state();
    let action = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.lb.actions.iter().find(|a| a.id == id))
        .ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("action with ID '{id}' not found"),
            )
        })?;
    Ok(Json(json!({ "action": action_view(action) })).into_response())
}

/// Hetzner answers 204 without a body: deleting a load balancer is not an
/// action.
async fn delete(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let mut state = shared.state();
    let at = state.lb.index(&id)?;
    if state.lb.locked(state.lb.balancers[at].lb.id) {
        return Err(locked());
    }
    state.lb.balancers.remove(at);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn locked() -> Fail {
    fail(
        StatusCode::CONFLICT,
        "locked",
        "the load balancer is locked by a running action",
    )
}

fn json_body(body: &Bytes) -> Result<Value, Fail> {
    serde_json::from_slice(body)
        .map_err(|_| fail(StatusCode::BAD_REQUEST, "json_error", "invalid JSON"))
}

fn present<'a>(input: &'a Value, key: &str) -> Option<&'a Value> {
    input.get(key).filter(|v| !v.is_null())
}

fn port(input: &Value, key: &str, field: &str) -> Result<Option<u16>, Fail> {
    match present(input, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| invalid_field(field, "must be a port between 1 and 65535")),
    }
}

fn positive(input: &Value, key: &str, field: &str) -> Result<Option<u32>, Fail> {
    match present(input, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| invalid_field(field, "must be a positive integer")),
    }
}

fn word<'a>(
    input: &'a Value,
    key: &str,
    field: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Fail> {
    match present(input, key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .filter(|w| allowed.contains(w))
            .map(Some)
            .ok_or_else(|| invalid_field(field, format!("must be one of {}", allowed.join(", ")))),
    }
}

/// A service from a request; `base` supplies what an update leaves out.
fn parse_service(input: &Value, at: &str, base: Option<&LbService>) -> Result<LbService, Fail> {
    let field = |key: &str| format!("{at}{key}");
    if present(input, "protocol").and_then(Value::as_str) == Some("https") {
        return Err(invalid_field(
            &field("protocol"),
            "https needs certificates, which this fake does not model",
        ));
    }
    let protocol = word(input, "protocol", &field("protocol"), &["tcp", "http"])?
        .map(str::to_string)
        .or_else(|| base.map(|b| b.protocol.clone()))
        .ok_or_else(|| invalid_field(&field("protocol"), "is required"))?;
    // Hetzner fills in port 80 for http services.
    let http_default = (protocol == "http").then_some(80);
    let listen_port = port(input, "listen_port", &field("listen_port"))?
        .or(base.map(|b| b.listen_port))
        .or(http_default)
        .ok_or_else(|| invalid_field(&field("listen_port"), "is required for tcp services"))?;
    let destination_port = port(input, "destination_port", &field("destination_port"))?
        .or(base.map(|b| b.destination_port))
        .or(http_default)
        .ok_or_else(|| invalid_field(&field("destination_port"), "is required for tcp services"))?;
    let proxyprotocol = match present(input, "proxyprotocol") {
        None => base.is_some_and(|b| b.proxyprotocol),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid_field(&field("proxyprotocol"), "must be a boolean"))?,
    };
    let health_check = parse_check(
        present(input, "health_check").unwrap_or(&Value::Null),
        &field("health_check."),
        base.map(|b| &b.health_check),
        destination_port,
    )?;
    Ok(LbService {
        protocol,
        listen_port,
        destination_port,
        proxyprotocol,
        health_check,
    })
}

fn parse_check(
    input: &Value,
    at: &str,
    base: Option<&LbHealthCheck>,
    destination_port: u16,
) -> Result<LbHealthCheck, Fail> {
    let field = |key: &str| format!("{at}{key}");
    let protocol = word(input, "protocol", &field("protocol"), &["tcp", "http"])?
        .map(str::to_string)
        .or_else(|| base.map(|b| b.protocol.clone()))
        .unwrap_or_else(|| "tcp".into());
    let http = if protocol == "http" {
        let given = present(input, "http").unwrap_or(&Value::Null);
        let before = base.and_then(|b| b.http.as_ref());
        let text = |key: &str| {
            present(given, key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let status_codes = match present(given, "status_codes") {
            None => before.map_or_else(
                || vec!["2??".to_string(), "3??".to_string()],
                |b| b.status_codes.clone(),
            ),
            Some(codes) => parse_status_codes(codes, &field("http.status_codes"))?,
        };
        let path = text("path")
            .or_else(|| before.map(|b| b.path.clone()))
            .unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            return Err(invalid_field(&field("http.path"), "must start with /"));
        }
        Some(LbHealthHttp {
            domain: text("domain").or_else(|| before.and_then(|b| b.domain.clone())),
            path,
            response: text("response").or_else(|| before.and_then(|b| b.response.clone())),
            status_codes,
            tls: present(given, "tls")
                .and_then(Value::as_bool)
                .or(before.map(|b| b.tls))
                .unwrap_or(false),
        })
    } else {
        None
    };
    let retries = match present(input, "retries") {
        None => base.map_or(3, |b| b.retries),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid_field(&field("retries"), "must be a non-negative integer"))?,
    };
    Ok(LbHealthCheck {
        port: port(input, "port", &field("port"))?
            .or(base.map(|b| b.port))
            .unwrap_or(destination_port),
        interval: positive(input, "interval", &field("interval"))?
            .or(base.map(|b| b.interval))
            .unwrap_or(15),
        timeout: positive(input, "timeout", &field("timeout"))?
            .or(base.map(|b| b.timeout))
            .unwrap_or(10),
        retries,
        protocol,
        http,
    })
}

/// Three characters each, digits or `?` wildcards ("200", "2??").
fn parse_status_codes(codes: &Value, field: &str) -> Result<Vec<String>, Fail> {
    let bad = || {
        invalid_field(
            field,
            "must be a list of status codes such as \"200\" or \"2??\"",
        )
    };
    let list = codes.as_array().ok_or_else(bad)?;
    list.iter()
        .map(|c| {
            c.as_str()
                .filter(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_digit() || ch == '?'))
                .map(str::to_string)
                .ok_or_else(bad)
        })
        .collect()
}

fn parse_target(input: &Value, at: &str, state: &CloudState) -> Result<LbTargetKind, Fail> {
    let field = |key: &str| format!("{at}{key}");
    match present(input, "type").and_then(Value::as_str) {
        Some("ip") => present(input, "ip")
            .and_then(|ip| present(ip, "ip"))
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .map(LbTargetKind::Ip)
            .ok_or_else(|| invalid_field(&field("ip.ip"), "must be an IP address")),
        Some("server") => {
            let id = present(input, "server")
                .and_then(|s| present(s, "id"))
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid_field(&field("server.id"), "is required"))?;
            if !state.servers.iter().any(|e| e.server.id == id) {
                return Err(invalid_field(
                    &field("server.id"),
                    format!("server {id} not found"),
                ));
            }
            let use_private_ip = present(input, "use_private_ip")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Ok(LbTargetKind::Server { id, use_private_ip })
        }
        Some("label_selector") => Err(invalid_field(
            &field("type"),
            "label_selector targets are not modelled by this fake",
        )),
        _ => Err(invalid_field(
            &field("type"),
            "must be server, label_selector or ip",
        )),
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// The checks Hetzner makes before a target joins a load balancer.
fn admit_target(
    state: &CloudState,
    kind: &LbTargetKind,
    attached: bool,
    existing: &[LbTarget],
) -> Result<(), Fail> {
    if existing.iter().any(|t| t.kind == *kind) {
        return Err(fail(
            StatusCode::CONFLICT,
            "target_already_defined",
            "the load balancer target you are trying to define is already defined",
        ));
    }
    match *kind {
        LbTargetKind::Ip(ip) if state.cloud_ip(ip) => Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cloud_resource_ip_not_allowed",
            format!("IP {ip} belongs to a Hetzner Cloud resource"),
        )),
        LbTargetKind::Ip(ip) if is_private(ip) && !attached => Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "load_balancer_not_attached_to_network",
            format!("the load balancer is not attached to a network, so it cannot reach {ip}"),
        )),
        LbTargetKind::Server {
            use_private_ip: true,
            ..
        } if !attached => Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "load_balancer_not_attached_to_network",
            "use_private_ip needs the load balancer attached to a network",
        )),
        _ => Ok(()),
    }
}

fn too_many(what: &str, t: &LbType, max: usize) -> Fail {
    fail(
        StatusCode::FORBIDDEN,
        "resource_limit_exceeded",
        format!("load balancer type {} allows at most {max} {what}", t.name),
    )
}

async fn create(State(shared): Shd, body: Bytes) -> Answer {
    let input = json_body(&body)?;
    let mut state = shared.state();
    let text = |key: &str| present(&input, key).and_then(Value::as_str);
    let name = text("name").ok_or_else(|| invalid_field("name", "is required"))?;
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(invalid_field(
            "name",
            "must be 1 to 63 letters, digits, '-', '_' or '.'",
        ));
    }
    let type_name = text("load_balancer_type")
        .ok_or_else(|| invalid_field("load_balancer_type", "is required"))?;
    let kind = lb_type(type_name).ok_or_else(|| {
        invalid_field(
            "load_balancer_type",
            format!("load balancer type {type_name} not found"),
        )
    })?;
    let place = match (text("location"), text("network_zone")) {
        (Some(l), _) => location(l)
            .ok_or_else(|| invalid_field("location", format!("location {l} not found")))?,
        (None, Some("eu-central")) => &super::LOCATIONS[0],
        (None, Some(zone)) => {
            return Err(invalid_field(
                "network_zone",
                format!("network zone {zone} not found"),
            ));
        }
        (None, None) => {
            return Err(invalid_field(
                "location",
                "one of location and network_zone is required",
            ));
        }
    };
    let algorithm = match present(&input, "algorithm") {
        None => "round_robin",
        Some(a) => word(
            a,
            "type",
            "algorithm.type",
            &["round_robin", "least_connections"],
        )?
        .unwrap_or("round_robin"),
    };
    let network = match present(&input, "network") {
        None => None,
        Some(n) => Some(
            n.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid_field("network", "must be a network ID"))?,
        ),
    };
    let labels: BTreeMap<String, String> = match present(&input, "labels") {
        None => BTreeMap::new(),
        Some(labels) => serde_json::from_value(labels.clone())
            .map_err(|_| invalid_field("labels", "must map keys to string values"))?,
    };
    let mut services: Vec<LbService> = Vec::new();
    for (i, s) in present(&input, "services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let service = parse_service(s, &format!("services[{i}]."), None)?;
        if services
            .iter()
            .any(|o| o.listen_port == service.listen_port)
        {
            return Err(invalid_field(
                &format!("services[{i}].listen_port"),
                format!(
                    "listen port {} is used by another service",
                    service.listen_port
                ),
            ));
        }
        services.push(service);
    }
    let mut targets: Vec<LbTarget> = Vec::new();
    for (i, t) in present(&input, "targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kind = parse_target(t, &format!("targets[{i}]."), &state)?;
        if targets.iter().any(|o| o.kind == kind) {
            return Err(invalid_field(
                &format!("targets[{i}]"),
                "the same target is given twice",
            ));
        }
        admit_target(&state, &kind, network.is_some(), &[])?;
        targets.push(LbTarget {
            kind,
            health: BTreeMap::new(),
        });
    }
    if services.len() > kind.max_services {
        return Err(too_many("services", kind, kind.max_services));
    }
    if targets.len() > kind.max_targets {
        return Err(too_many("targets", kind, kind.max_targets));
    }
    if state.lb.balancers.iter().any(|b| b.lb.name == name) {
        return Err(super::Fail {
            details: json!({ "fields": [{ "name": "name", "messages": ["is already used"] }] }),
            ..fail(
                StatusCode::CONFLICT,
                "uniqueness_error",
                "load balancer name is already used",
            )
        });
    }
    if state
        .lb
        .limit
        .is_some_and(|limit| state.lb.balancers.len() >= limit)
    {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "resource_limit_exceeded",
            "load balancer limit exceeded",
        ));
    }
    state.lb.created += 1;
    let n = state.lb.created;
    let id = 1_200_000 + n;
    let host = u8::try_from(n % 250).unwrap_or(0) + 1;
    let lb = CloudLoadBalancer {
        id,
        name: name.to_string(),
        load_balancer_type: kind.name.to_string(),
        location: place.name.to_string(),
        algorithm: algorithm.to_string(),
        // Documentation ranges (RFC 5737, RFC 3849), apart from the
        // servers' 198.51.100.0/24.
        ipv4: Ipv4Addr::new(203, 0, 113, host),
        ipv6: Ipv6Addr::new(0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, u16::from(host)),
        private_net: network.map(|net| (net, Ipv4Addr::new(10, 0, 255, host))),
        services,
        targets,
        labels,
    };
    let stored = Stored {
        lb,
        created: rfc3339_now(),
    };
    let view = balancer_view(&stored);
    state.lb.balancers.push(stored);
    let action = state.lb_action("create_load_balancer", id);
    let body = json!({ "load_balancer": view, "action": action });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn act(
    State(shared): Shd,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let input = json_body(&body)?;
    let mut state = shared.state();
    let at = state.lb.index(&id)?;
    let balancer = state.lb.balancers[at].lb.id;
    let command: &'static str = match action.as_str() {
        "add_service" => "add_service",
        "update_service" => "update_service",
        "delete_service" => "delete_service",
        "add_target" => "add_target",
        "remove_target" => "remove_target",
        "change_algorithm" => "change_algorithm",
        "change_type" => "change_type",
        "attach_to_network" => "attach_to_network",
        _ => return Err(fail(StatusCode::NOT_FOUND, "not_found", "not found")),
    };
    if state.lb.locked(balancer) {
        return Err(locked());
    }
    // Validated against a copy, so a refused action changes nothing.
    let mut lb = state.lb.balancers[at].lb.clone();
    let kind = lb_type(&lb.load_balancer_type).unwrap_or(&LB_TYPES[0]);
    match command {
        "add_service" => {
            let service = parse_service(&input, "", None)?;
            if lb
                .services
                .iter()
                .any(|s| s.listen_port == service.listen_port)
            {
                return Err(fail(
                    StatusCode::PRECONDITION_FAILED,
                    "source_port_already_used",
                    format!(
                        "listen port {} is already used by a service",
                        service.listen_port
                    ),
                ));
            }
            if lb.services.len() >= kind.max_services {
                return Err(too_many("services", kind, kind.max_services));
            }
            lb.services.push(service);
        }
        "update_service" | "delete_service" => {
            let listen_port = port(&input, "listen_port", "listen_port")?
                .ok_or_else(|| invalid_field("listen_port", "is required"))?;
            let i = lb
                .services
                .iter()
                .position(|s| s.listen_port == listen_port)
                .ok_or_else(|| {
                    invalid_field(
                        "listen_port",
                        format!("no service listens on port {listen_port}"),
                    )
                })?;
            if command == "delete_service" {
                lb.services.remove(i);
            } else {
                lb.services[i] = parse_service(&input, "", Some(&lb.services[i]))?;
            }
        }
        "add_target" => {
            let target = parse_target(&input, "", &state)?;
            admit_target(&state, &target, lb.private_net.is_some(), &lb.targets)?;
            if lb.targets.len() >= kind.max_targets {
                return Err(too_many("targets", kind, kind.max_targets));
            }
            lb.targets.push(LbTarget {
                kind: target,
                health: BTreeMap::new(),
            });
        }
        "remove_target" => {
            let target = parse_target(&input, "", &state)?;
            let i = lb
                .targets
                .iter()
                .position(|t| t.kind == target)
                .ok_or_else(|| invalid_field("type", "the load balancer has no such target"))?;
            lb.targets.remove(i);
        }
        "change_algorithm" => {
            lb.algorithm = word(
                &input,
                "type",
                "type",
                &["round_robin", "least_connections"],
            )?
            .ok_or_else(|| invalid_field("type", "is required"))?
            .to_string();
        }
        "attach_to_network" => {
            let network = present(&input, "network")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid_field("network", "must be a network ID"))?;
            if lb.private_net.is_some() {
                return Err(fail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "load_balancer_already_attached",
                    "the load balancer is already attached to a network",
                ));
            }
            let host = u8::try_from(lb.id % 250).unwrap_or(0) + 1;
            lb.private_net = Some((network, Ipv4Addr::new(10, 0, 255, host)));
        }
        _ => {
            let wanted = present(&input, "load_balancer_type")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_field("load_balancer_type", "is required"))?;
            let new = lb_type(wanted).ok_or_else(|| {
                invalid_field(
                    "load_balancer_type",
                    format!("load balancer type {wanted} not found"),
                )
            })?;
            if lb.services.len() > new.max_services {
                return Err(too_many("services", new, new.max_services));
            }
            if lb.targets.len() > new.max_targets {
                return Err(too_many("targets", new, new.max_targets));
            }
            lb.load_balancer_type = new.name.to_string();
        }
    }
    state.lb.balancers[at].lb = lb;
    let action = state.lb_action(command, balancer);
    Ok((StatusCode::CREATED, Json(json!({ "action": action }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(result: Result<T, Fail>) -> T {
        result.unwrap_or_else(|f| panic!("{}: {}", f.code, f.message))
    }

    #[test]
    fn services_fill_in_hetzner_defaults() {
        let service = ok(parse_service(&json!({ "protocol": "http" }), "", None));
        assert_eq!((service.listen_port, service.destination_port), (80, 80));
        assert_eq!(service.health_check.protocol, "tcp");
        assert_eq!(service.health_check.port, 80);
        let tcp = parse_service(&json!({ "protocol": "tcp", "listen_port": 443 }), "", None);
        assert!(tcp.is_err());
        let bad = json!({ "protocol": "tcp", "listen_port": 70000, "destination_port": 1 });
        assert!(parse_service(&bad, "", None).is_err());
    }

    #[test]
    fn updates_keep_what_they_leave_out() {
        let base = ok(parse_service(
            &json!({ "protocol": "tcp", "listen_port": 443, "destination_port": 8443,
                     "health_check": { "protocol": "http", "http": { "path": "/healthz" } } }),
            "",
            None,
        ));
        let updated = ok(parse_service(
            &json!({ "listen_port": 443, "destination_port": 9443 }),
            "",
            Some(&base),
        ));
        assert_eq!(updated.destination_port, 9443);
        assert_eq!(updated.health_check.http.unwrap().path, "/healthz");
    }

    #[test]
    fn status_codes_are_three_characters() {
        assert!(parse_status_codes(&json!(["2??", "301"]), "f").is_ok());
        assert!(parse_status_codes(&json!(["2xx"]), "f").is_err());
        assert!(parse_status_codes(&json!("200"), "f").is_err());
    }
}
