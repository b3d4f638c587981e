//! The Hetzner Robot webservice, the parts a host's lifecycle uses:
//! servers (list, show, rename, cancel), resets and the power button, the
//! product list, and server orders (transactions), behind HTTP basic auth,
//! with form-encoded POSTs and JSON answers in Robot's wrapping
//! (`[{"server": {...}}]`, `{"transaction": {...}}`). Failures use the
//! documented `{"error": {"status", "code", "message"}}` object, with
//! `missing`/`invalid` for `INVALID_INPUT` and `max_request`/`interval` for
//! `RATE_LIMIT_EXCEEDED`; an account without servers answers `GET /server`
//! with 404 `NOT_FOUND`, as Robot does.
//!
//! Orders are `in process` for [`TRANSITION`], then `ready` with a new
//! server (named "", as Robot delivers them). A server cancelled for "now"
//! stays listed, `cancelled: true`, for [`TRANSITION`], then disappears;
//! cancelling it again meanwhile answers 409 `CONFLICT`.
//!
//! Not documented by Hetzner, so modelled by assumption: an order of a
//! product out of stock answers 409 `PRODUCT_NOT_AVAILABLE`, and an order
//! beyond the account's limit 409 `ORDER_LIMIT_REACHED` (after Robot's
//! `*_LIMIT_REACHED` codes). Not modelled: SSH keys, installation, addons,
//! prices, market (auction) orders, withdrawing cancellations.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use url::Url;

use crate::hetzner_cloud::{rfc3339_now, today};

/// How long an order stays `in process`, and a cancelled server listed.
pub const TRANSITION: Duration = Duration::from_millis(100);

/// A dedicated server as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotServer {
    pub number: u64,
    pub name: String,
    pub product: String,
    pub dc: String,
    pub ipv4: Ipv4Addr,
    pub ipv6_net: String,
    pub cancelled: bool,
    /// Not visible through the API (Robot does not report it): flipped by
    /// each press of the power button.
    pub powered_on: bool,
    pub power_presses: u32,
    pub resets: u32,
}

/// A server order (transaction) as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotOrder {
    pub id: String,
    /// `in process`, `ready` or `cancelled`.
    pub status: String,
    pub product: String,
    pub location: String,
    pub server_number: Option<u64>,
}

struct Product {
    id: &'static str,
    name: &'static str,
    description: &'static [&'static str],
    locations: &'static [&'static str],
}

const PRODUCTS: &[Product] = &[
    Product {
        id: "EX44",
        name: "Dedicated Root Server EX44",
        description: &["Intel Core i5-13500", "64 GB DDR4", "2 x 512 GB NVMe SSD"],
        locations: &["FSN1", "NBG1", "HEL1"],
    },
    Product {
        id: "AX42",
        name: "Dedicated Root Server AX42",
        description: &[
            "AMD Ryzen 7 PRO 8700GE",
            "64 GB DDR5 ECC",
            "2 x 512 GB NVMe SSD",
        ],
        locations: &["FSN1", "NBG1", "HEL1"],
    },
    Product {
        id: "AX52",
        name: "Dedicated Root Server AX52",
        description: &["AMD Ryzen 7 7700", "64 GB DDR5", "2 x 1 TB NVMe SSD"],
        locations: &["FSN1", "NBG1"],
    },
];

fn datacenter(location: &str) -> String {
    match location {
        "FSN1" => "FSN1-DC14".into(),
        "NBG1" => "NBG1-DC3".into(),
        "HEL1" => "HEL1-DC2".into(),
        other => format!("{other}-DC1"),
    }
}

pub struct FakeHetznerRobot {
    shared: Arc<Shared>,
    server: crate::Serving,
}

struct Shared {
    /// `Basic base64(user:password)`, as the client must send it.
    authorization: String,
    state: Mutex<RobotState>,
}

#[derive(Default)]
struct RobotState {
    servers: Vec<ServerEntry>,
    orders: Vec<OrderEntry>,
    /// Units left per product; unlimited when absent.
    stock: HashMap<String, u32>,
    order_limit: Option<usize>,
    next_number: u64,
    next_order: u64,
    injected: Option<Injected>,
}

struct ServerEntry {
    server: RobotServer,
    /// Set by a cancellation for "now": when the server disappears.
    leaves_at: Option<Instant>,
}

struct OrderEntry {
    order: RobotOrder,
    date: String,
    ready_at: Instant,
}

struct Injected {
    left: usize,
    status: StatusCode,
    code: String,
}

impl Shared {
    /// The state with every due order delivered and cancellation done.
    fn state(&self) -> MutexGuard<'_, RobotState> {
        // A panicking test must not turn every later assertion into a
        // poison error.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.settle(Instant::now());
        state
    }
}

impl RobotState {
    fn settle(&mut self, now: Instant) {
        self.servers
            .retain(|e| e.leaves_at.is_none_or(|at| at > now));
        let due: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                self.orders[i].order.status == "in process" && self.orders[i].ready_at <= now
            })
            .collect();
        for i in due {
            let number = self.deliver(i);
            let order = &mut self.orders[i].order;
            order.status = "ready".into();
            order.server_number = Some(number);
        }
    }

    fn deliver(&mut self, order: usize) -> u64 {
        self.next_number += 1;
        let number = self.next_number;
        let order = &self.orders[order].order;
        let server = RobotServer {
            number,
            name: String::new(),
            product: order.product.clone(),
            dc: datacenter(&order.location),
            // Documentation ranges (RFC 5737, RFC 3849).
            ipv4: Ipv4Addr::from(
                u32::from(Ipv4Addr::new(203, 0, 113, 0)) + (number % 250) as u32 + 1,
            ),
            ipv6_net: format!("2001:db8:{:x}::", number & 0xffff),
            cancelled: false,
            powered_on: true,
            power_presses: 0,
            resets: 0,
        };
        self.servers.push(ServerEntry {
            server,
            leaves_at: None,
        });
        number
    }

    fn index(&self, number: &str) -> Result<usize, Fail> {
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| self.servers.iter().position(|e| e.server.number == n))
            .ok_or_else(|| {
                fail(
                    StatusCode::NOT_FOUND,
                    "SERVER_NOT_FOUND",
                    "Server not found",
                )
            })
    }
}

impl FakeHetznerRobot {
    /// Serves on a free loopback port until dropped; requests must carry
    /// basic auth for `user` and `password`.
    pub async fn start(user: &str, password: &str) -> FakeHetznerRobot {
        let shared = Arc::new(Shared {
            authorization: format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            state: Mutex::new(RobotState {
                next_number: 2_000_000,
                ..RobotState::default()
            }),
        });
        let app = Router::new()
            .route("/server", get(list_servers))
            .route("/server/{number}", get(show).post(rename))
            .route("/server/{number}/cancellation", post(cancel))
            .route("/reset/{number}", post(reset))
            .route("/order/server/product", get(products))
            .route("/order/server/transaction", get(list_orders).post(order))
            .route("/order/server/transaction/{id}", get(show_order))
            .fallback(|| async { fail(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found") })
            .layer(middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        let port = crate::Port::free("FakeHetznerRobot").await;
        FakeHetznerRobot {
            shared,
            server: port.serve(app),
        }
    }

    /// `http://127.0.0.1:PORT/`, to use in place of
    /// `https://robot-ws.your-server.de/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.server.addr)).expect("a socket address makes a URL")
    }

    pub fn servers(&self) -> Vec<RobotServer> {
        self.shared
            .state()
            .servers
            .iter()
            .map(|e| e.server.clone())
            .collect()
    }

    pub fn orders(&self) -> Vec<RobotOrder> {
        self.shared
            .state()
            .orders
            .iter()
            .map(|e| e.order.clone())
            .collect()
    }

    /// `units` more orders of `product` succeed; at 0, ordering answers 409
    /// `PRODUCT_NOT_AVAILABLE`.
    pub fn set_stock(&self, product: &str, units: u32) {
        self.shared.state().stock.insert(product.to_string(), units);
    }

    /// With `limit` servers and open orders, ordering answers 409
    /// `ORDER_LIMIT_REACHED`.
    pub fn set_order_limit(&self, limit: usize) {
        self.shared.state().order_limit = Some(limit);
    }

    /// The next `n` requests answer `status` with the error `code`, before
    /// the credentials are checked.
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

/// The documented error object with its HTTP status.
struct Fail {
    status: StatusCode,
    code: String,
    message: String,
    extra: Value,
}

fn fail(status: StatusCode, code: &str, message: impl Into<String>) -> Fail {
    Fail {
        status,
        code: code.to_string(),
        message: message.into(),
        extra: json!({}),
    }
}

/// `INVALID_INPUT` with the documented `missing` and `invalid` lists.
fn invalid_input(missing: &[&str], invalid: &[&str]) -> Fail {
    let list = |fields: &[&str]| {
        if fields.is_empty() {
            Value::Null
        } else {
            json!(fields)
        }
    };
    Fail {
        extra: json!({ "missing": list(missing), "invalid": list(invalid) }),
        ..fail(StatusCode::BAD_REQUEST, "INVALID_INPUT", "invalid input")
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let mut error = json!({
            "status": self.status.as_u16(), "code": self.code, "message": self.message,
        });
        if let (Some(error), Some(extra)) = (error.as_object_mut(), self.extra.as_object()) {
            error.extend(extra.clone());
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

/// Injected failures first, then the credentials.
async fn gate(State(shared): Shd, request: Request, next: Next) -> Answer {
    {
        let mut state = shared.state();
        if let Some(injected) = state.injected.as_mut().filter(|i| i.left > 0) {
            injected.left -= 1;
            let mut failure = fail(injected.status, &injected.code, "injected failure");
            if injected.code == "RATE_LIMIT_EXCEEDED" {
                failure.message = "rate limit exceeded".into();
                failure.extra = json!({ "max_request": 200, "interval": 3600 });
            }
            return Err(failure);
        }
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(shared.authorization.as_str()) {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Unauthorized",
        ));
    }
    Ok(next.run(request).await)
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn ok(body: Value) -> Answer {
    Ok(Json(body).into_response())
}

/// A server as `GET /server` lists it; `GET /server/{number}` adds the
/// flags.
fn server_view(s: &RobotServer, detailed: bool) -> Value {
    let mut view = json!({
        "server_ip": s.ipv4.to_string(),
        "server_ipv6_net": s.ipv6_net,
        "server_number": s.number,
        "server_name": s.name,
        "product": s.product,
        "dc": s.dc,
        "traffic": "unlimited",
        "status": "ready",
        "cancelled": s.cancelled,
        "paid_until": today(),
        "ip": [s.ipv4.to_string()],
        "subnet": [{ "ip": s.ipv6_net, "mask": "64" }],
    });
    if detailed {
        let flags = json!({
            "reset": true, "rescue": true, "vnc": true, "windows": false, "plesk": false,
            "cpanel": false, "wol": true, "hot_swap": false, "linked_storagebox": null,
        });
        if let (Some(view), Some(flags)) = (view.as_object_mut(), flags.as_object()) {
            view.extend(flags.clone());
        }
    }
    view
}

fn order_view(entry: &OrderEntry, state: &RobotState) -> Value {
    let o = &entry.order;
    let product = PRODUCTS.iter().find(|p| p.id == o.product);
    let server_ip = o
        .server_number
        .and_then(|n| state.servers.iter().find(|e| e.server.number == n))
        .map(|e| e.server.ipv4.to_string());
    json!({
        "id": o.id,
        "date": entry.date,
        "status": o.status,
        "server_number": o.server_number,
        "server_ip": server_ip,
        "authorized_key": [],
        "host_key": [],
        "comment": null,
        "product": {
            "id": o.product,
            "name": product.map(|p| p.name),
            "description": product.map(|p| p.description),
            "traffic": "unlimited",
            "dist": "Rescue system",
            "arch": 64,
            "lang": "en",
            "location": o.location,
        },
        "addons": [],
    })
}

async fn list_servers(State(shared): Shd) -> Answer {
    let state = shared.state();
    if state.servers.is_empty() {
        return Err(fail(StatusCode::NOT_FOUND, "NOT_FOUND", "No servers found"));
    }
    let list: Vec<Value> = state
        .servers
        .iter()
        .map(|e| json!({ "server": server_view(&e.server, false) }))
        .collect();
    ok(json!(list))
}

async fn show(State(shared): Shd, Path(number): Path<String>) -> Answer {
    let state = shared.state();
    let entry = &state.servers[state.index(&number)?];
    ok(json!({ "server": server_view(&entry.server, true) }))
}

async fn rename(State(shared): Shd, Path(number): Path<String>, body: Bytes) -> Answer {
    let input = form(&body);
    let Some(name) = input.get("server_name") else {
        return Err(invalid_input(&["server_name"], &[]));
    };
    let mut state = shared.state();
    let at = state.index(&number)?;
    let server = &mut state.servers[at].server;
    server.name = name.clone();
    ok(json!({ "server": server_view(server, true) }))
}

async fn cancel(State(shared): Shd, Path(number): Path<String>, body: Bytes) -> Answer {
    let input = form(&body);
    let Some(date) = input.get("cancellation_date") else {
        return Err(invalid_input(&["cancellation_date"], &[]));
    };
    let today = today();
    let immediate = date == "now" || *date == today;
    let later = date.len() == 10 && date.as_str() > today.as_str();
    if !(immediate || later) {
        return Err(invalid_input(&[], &["cancellation_date"]));
    }
    let mut state = shared.state();
    let at = state.index(&number)?;
    let entry = &mut state.servers[at];
    if entry.server.cancelled {
        return Err(fail(
            StatusCode::CONFLICT,
            "CONFLICT",
            "The server is already cancelled",
        ));
    }
    entry.server.cancelled = true;
    if immediate {
        entry.leaves_at = Some(Instant::now() + TRANSITION);
    }
    let s = &entry.server;
    ok(json!({ "cancellation": {
        "server_ip": s.ipv4.to_string(),
        "server_ipv6_net": s.ipv6_net,
        "server_number": s.number,
        "server_name": s.name,
        "earliest_cancellation_date": today,
        "cancelled": true,
        "reservation_possible": false,
        "reserved": false,
        "cancellation_date": if immediate { today.clone() } else { date.clone() },
        "cancellation_reason": null,
    }}))
}

async fn reset(State(shared): Shd, Path(number): Path<String>, body: Bytes) -> Answer {
    let input = form(&body);
    let Some(kind) = input.get("type") else {
        return Err(invalid_input(&["type"], &[]));
    };
    let mut state = shared.state();
    let at = state.index(&number)?;
    let server = &mut state.servers[at].server;
    match kind.as_str() {
        "sw" | "hw" | "man" => {
            server.resets += 1;
            server.powered_on = true;
        }
        "power" => {
            server.power_presses += 1;
            server.powered_on = !server.powered_on;
        }
        "power_long" => {
            server.power_presses += 1;
            server.powered_on = false;
        }
        _ => return Err(invalid_input(&[], &["type"])),
    }
    ok(json!({ "reset": {
        "server_ip": server.ipv4.to_string(),
        "server_ipv6_net": server.ipv6_net,
        "server_number": server.number,
        "type": kind,
    }}))
}

async fn products() -> Answer {
    let list: Vec<Value> = PRODUCTS
        .iter()
        .map(|p| {
            json!({ "product": {
                "id": p.id, "name": p.name, "description": p.description,
                "traffic": "unlimited", "dist": ["Rescue system"], "arch": [64],
                "lang": ["en"], "location": p.locations, "prices": [],
                "orderable_addons": [],
            }})
        })
        .collect();
    ok(json!(list))
}

async fn list_orders(State(shared): Shd) -> Answer {
    let state = shared.state();
    if state.orders.is_empty() {
        return Err(fail(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No transactions found",
        ));
    }
    let list: Vec<Value> = state
        .orders
        .iter()
        .map(|e| json!({ "transaction": order_view(e, &state) }))
        .collect();
    ok(json!(list))
}

async fn show_order(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let state = shared.state();
    let entry = state
        .orders
        .iter()
        .find(|e| e.order.id == id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, "NOT_FOUND", "Transaction not found"))?;
    ok(json!({ "transaction": order_view(entry, &state) }))
}

async fn order(State(shared): Shd, body: Bytes) -> Answer {
    let input = form(&body);
    let Some(product_id) = input.get("product_id") else {
        return Err(invalid_input(&["product_id"], &[]));
    };
    let product = PRODUCTS
        .iter()
        .find(|p| p.id == product_id)
        .ok_or_else(|| invalid_input(&[], &["product_id"]))?;
    let location = match input.get("location") {
        Some(l) if product.locations.contains(&l.as_str()) => l.clone(),
        Some(_) => return Err(invalid_input(&[], &["location"])),
        None => product.locations[0].to_string(),
    };
    let test = input.get("test").is_some_and(|t| t == "true");
    let mut state = shared.state();
    let open = state.servers.len()
        + state
            .orders
            .iter()
            .filter(|e| e.order.status == "in process")
            .count();
    if !test && state.order_limit.is_some_and(|limit| open >= limit) {
        return Err(fail(
            StatusCode::CONFLICT,
            "ORDER_LIMIT_REACHED",
            "The maximum number of servers for this account is reached",
        ));
    }
    if !test && let Some(units) = state.stock.get_mut(product.id) {
        if *units == 0 {
            return Err(fail(
                StatusCode::CONFLICT,
                "PRODUCT_NOT_AVAILABLE",
                format!("{} is not available at the moment", product.id),
            ));
        }
        *units -= 1;
    }
    state.next_order += 1;
    let date = rfc3339_now();
    let entry = OrderEntry {
        order: RobotOrder {
            id: format!(
                "B{}-{}-{}",
                today().replace('-', ""),
                340_000 + state.next_order,
                250_000 + state.next_order
            ),
            // A test order is answered like a real one, but cancelled.
            status: if test { "cancelled" } else { "in process" }.into(),
            product: product.id.into(),
            location,
            server_number: None,
        },
        date,
        ready_at: Instant::now() + TRANSITION,
    };
    let view = order_view(&entry, &state);
    state.orders.push(entry);
    Ok((StatusCode::CREATED, Json(json!({ "transaction": view }))).into_response())
}

/// Standard base64 with padding, so the fake needs no codec library.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }
}
