//! IONOS Cloud API v6 compute for one virtual datacenter: the datacenter,
//! its servers (list with `depth`, `offset` and `limit`; create with a boot
//! volume and NICs; show; delete), power actions and request status, with
//! IONOS's `{httpStatus, messages: [{errorCode, message}]}` error body.
//!
//! Provisioning is asynchronous as at IONOS: an order answers 202 with a
//! `Location` to its request status, and the server stays BUSY for
//! [`TRANSITION`] before it is AVAILABLE and RUNNING; power actions
//! likewise (a stopped server is INACTIVE and SHUTOFF).
//!
//! Not modelled: LANs (every LAN id is public and hands out an address),
//! volumes and NICs as resources of their own, labels, and contract limits
//! other than cores. The shapes are documented; the `errorCode`s and
//! `[VDC-…]` codes inside messages are illustrative.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use url::Url;

/// How long a server stays BUSY after an order or a power action.
pub const TRANSITION: Duration = Duration::from_millis(100);
/// The CPU families the fake datacenter offers.
pub const CPU_FAMILIES: &[&str] = &["INTEL_SKYLAKE", "INTEL_ICELAKE", "AMD_EPYC"];
pub const MAX_CORES: u64 = 62;
pub const MAX_RAM_MB: u64 = 230_400;

/// A server as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeServer {
    pub id: String,
    pub name: String,
    pub cores: u32,
    pub ram_mb: u32,
    pub cpu_family: String,
    /// `metadata.state`: BUSY, AVAILABLE or INACTIVE.
    pub state: String,
    /// `properties.vmState`: NOSTATE while first provisioned, then RUNNING
    /// or SHUTOFF.
    pub vm_state: String,
    pub volume: FakeVolume,
    /// The LAN of the server's NIC, when one was ordered.
    pub lan: Option<u32>,
    /// The NIC's address, handed out once provisioned.
    pub ipv4: Option<Ipv4Addr>,
}

/// The boot volume ordered with a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeVolume {
    pub name: String,
    pub size_gb: u32,
    pub r#type: String,
    pub image: Option<String>,
    pub image_alias: Option<String>,
    /// Base64, as sent.
    pub user_data: Option<String>,
    pub ssh_keys: Vec<String>,
    pub has_image_password: bool,
}

pub struct FakeIonos {
    shared: Arc<Shared>,
    server: crate::Serving,
}

struct Shared {
    token: String,
    datacenter_id: String,
    /// `http://127.0.0.1:PORT/cloudapi/v6`, for hrefs and `Location`.
    root: String,
    state: Mutex<DcState>,
}

struct DcState {
    servers: Vec<Entry>,
    next_id: u64,
    next_ip: u8,
    failures_left: usize,
    capacity: bool,
    core_limit: Option<u32>,
    /// The whole `Authorization` value a basic login must present.
    basic: Option<String>,
    requests: HashMap<String, Instant>,
}

struct Entry {
    server: FakeServer,
    /// While BUSY: when the pending change lands, and the (state, vmState)
    /// it lands on.
    pending: Option<(Instant, &'static str, &'static str)>,
}

impl Entry {
    fn settle(&mut self, now: Instant, next_ip: &mut u8) {
        let Some((at, state, vm_state)) = self.pending else {
            return;
        };
        if now < at {
            return;
        }
        self.pending = None;
        self.server.state = state.to_string();
        self.server.vm_state = vm_state.to_string();
        if self.server.lan.is_some() && self.server.ipv4.is_none() {
            *next_ip = next_ip.wrapping_add(1).max(10);
            self.server.ipv4 = Some(Ipv4Addr::new(192, 0, 2, *next_ip));
        }
    }
}

impl Shared {
    /// The state with every due transition applied.
    fn state(&self) -> MutexGuard<'_, DcState> {
        // A panicking test must not turn every later assertion into a
        // poison error.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let DcState {
            servers, next_ip, ..
        } = &mut *state;
        for entry in servers.iter_mut() {
            entry.settle(now, next_ip);
        }
        state
    }
}

impl FakeIonos {
    /// Serves on a free loopback port until dropped, accepting `Bearer
    /// {token}` for the one datacenter `datacenter_id`.
    pub async fn start(token: &str, datacenter_id: &str) -> FakeIonos {
        let port = crate::Port::free("FakeIonos").await;
        let addr = port.addr;
        let shared = Arc::new(Shared {
            token: token.to_string(),
            datacenter_id: datacenter_id.to_string(),
            root: format!("http://{addr}/cloudapi/v6"),
            state: Mutex::new(DcState {
                servers: Vec::new(),
                next_id: 0,
                next_ip: 9,
                failures_left: 0,
                capacity: true,
                core_limit: None,
                basic: None,
                requests: HashMap::new(),
            }),
        });
        let app = Router::new()
            .route("/cloudapi/v6/datacenters/{dc}", get(datacenter))
            .route(
                "/cloudapi/v6/datacenters/{dc}/servers",
                get(list).post(create),
            )
            .route(
                "/cloudapi/v6/datacenters/{dc}/servers/{id}",
                get(show).delete(delete),
            )
            .route(
                "/cloudapi/v6/datacenters/{dc}/servers/{id}/{action}",
                post(power),
            )
            .route("/cloudapi/v6/requests/{id}/status", get(request_status))
            .fallback(|| async { not_found() })
            .layer(middleware::from_fn_with_state(shared.clone(), gate))
            .with_state(shared.clone());
        FakeIonos {
            shared,
            server: port.serve(app),
        }
    }

    /// `http://127.0.0.1:PORT/cloudapi/v6/`, to use in place of
    /// `https://api.ionos.com/cloudapi/v6/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/cloudapi/v6/", self.server.addr))
            .expect("a socket address makes a URL")
    }

    pub fn servers(&self) -> Vec<FakeServer> {
        self.shared
            .state()
            .servers
            .iter()
            .map(|e| e.server.clone())
            .collect()
    }

    /// Also accept HTTP basic authentication as this user.
    pub fn allow_basic(&self, user: &str, password: &str) {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.shared.state().basic = Some(format!("Basic {encoded}"));
    }

    /// With false, orders fail as when the location has no room for them.
    pub fn set_capacity(&self, available: bool) {
        self.shared.state().capacity = available;
    }

    /// The contract's core limit, across all servers of the datacenter.
    pub fn set_core_limit(&self, cores: u32) {
        self.shared.state().core_limit = Some(cores);
    }

    /// The next `n` requests answer 500 with an error body.
    pub fn fail_next(&self, n: usize) {
        self.shared.state().failures_left = n;
    }
}

type Shd = State<Arc<Shared>>;
type Answer = Result<Response, Fail>;

/// An IONOS error body with its HTTP status.
struct Fail(StatusCode, &'static str, String);

fn fail(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fail {
    Fail(status, code, message.into())
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let Fail(status, code, message) = self;
        let body = json!({
            "httpStatus": status.as_u16(),
            "messages": [{ "errorCode": code, "message": message }],
        });
        (status, Json(body)).into_response()
    }
}

fn not_found() -> Fail {
    fail(StatusCode::NOT_FOUND, "309", "Resource does not exist")
}

fn invalid(message: impl Into<String>) -> Fail {
    fail(StatusCode::UNPROCESSABLE_ENTITY, "100", message)
}

/// Injected failures first, then the credentials, as IONOS's gateway does
/// before routing.
async fn gate(State(shared): Shd, request: Request, next: Next) -> Answer {
    let basic = {
        let mut state = shared.state();
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "000",
                "[VDC-5-0] An unexpected error occurred",
            ));
        }
        state.basic.clone()
    };
    let bearer = format!("Bearer {}", shared.token);
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let accepted =
        presented == Some(bearer.as_str()) || (basic.is_some() && presented == basic.as_deref());
    if !accepted {
        return Err(fail(StatusCode::UNAUTHORIZED, "315", "Unauthorized"));
    }
    Ok(next.run(request).await)
}

fn datacenter_known(shared: &Shared, dc: &str) -> Result<(), Fail> {
    if dc == shared.datacenter_id {
        Ok(())
    } else {
        Err(not_found())
    }
}

async fn datacenter(State(shared): Shd, Path(dc): Path<String>) -> Answer {
    datacenter_known(&shared, &dc)?;
    let architectures: Vec<Value> = CPU_FAMILIES
        .iter()
        .map(|family| {
            json!({
                "cpuFamily": family,
                "maxCores": MAX_CORES,
                "maxRam": MAX_RAM_MB,
                "vendor": if family.starts_with("AMD") { "AuthenticAMD" } else { "GenuineIntel" },
            })
        })
        .collect();
    Ok(Json(json!({
        "id": dc,
        "type": "datacenter",
        "href": format!("{}/datacenters/{dc}", shared.root),
        "metadata": { "state": "AVAILABLE" },
        "properties": {
            "name": "loopback",
            "location": "de/fra",
            "version": 1,
            "features": ["cloud-init"],
            "secAuthProtection": false,
            "cpuArchitecture": architectures,
        },
    }))
    .into_response())
}

fn depth(q: &HashMap<String, String>) -> u32 {
    q.get("depth").and_then(|d| d.parse().ok()).unwrap_or(0)
}

fn href(shared: &Shared, id: &str) -> String {
    format!(
        "{}/datacenters/{}/servers/{id}",
        shared.root, shared.datacenter_id
    )
}

/// A server at `depth`: its properties and metadata always (as for a
/// single GET), its NICs' details from depth 1.
fn view(shared: &Shared, entry: &Entry, depth: u32) -> Value {
    let s = &entry.server;
    let href = href(shared, &s.id);
    let state = if entry.pending.is_some() {
        "BUSY"
    } else {
        s.state.as_str()
    };
    let nics: Vec<Value> = s
        .lan
        .iter()
        .map(|lan| {
            let nic_id = format!("{}-nic", s.id);
            let mut nic = json!({
                "id": nic_id,
                "type": "nic",
                "href": format!("{href}/nics/{nic_id}"),
            });
            if depth >= 1 {
                let ips: Vec<String> = s.ipv4.iter().map(|ip| ip.to_string()).collect();
                nic["properties"] = json!({
                    "name": format!("{}-nic", s.name),
                    "lan": lan,
                    "dhcp": true,
                    "ips": ips,
                    "ipv6Ips": [],
                });
            }
            nic
        })
        .collect();
    json!({
        "id": s.id,
        "type": "server",
        "href": href,
        "metadata": { "state": state },
        "properties": {
            "name": s.name,
            "cores": s.cores,
            "ram": s.ram_mb,
            "cpuFamily": s.cpu_family,
            "vmState": s.vm_state,
            "type": "ENTERPRISE",
            "availabilityZone": "AUTO",
        },
        "entities": {
            "nics": { "id": format!("{}/nics", s.id), "type": "collection", "href": format!("{href}/nics"), "items": nics },
        },
    })
}

async fn list(
    State(shared): Shd,
    Path(dc): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    datacenter_known(&shared, &dc)?;
    let depth = depth(&q);
    let number =
        |key: &str, default: usize| q.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let offset = number("offset", 0);
    let limit = number("limit", 1000).clamp(1, 10_000);
    let state = shared.state();
    let total = state.servers.len();
    let items: Vec<Value> = state
        .servers
        .iter()
        .skip(offset)
        .take(limit)
        .map(|entry| {
            if depth == 0 {
                let s = &entry.server;
                json!({ "id": s.id, "type": "server", "href": href(&shared, &s.id) })
            } else {
                view(&shared, entry, depth - 1)
            }
        })
        .collect();
    let collection = format!("{}/datacenters/{dc}/servers", shared.root);
    let mut links = json!({ "self": collection });
    if offset + limit < total {
        links["next"] = json!(format!(
            "{collection}?offset={}&limit={limit}",
            offset + limit
        ));
    }
    Ok(Json(json!({
        "id": format!("{dc}/servers"),
        "type": "collection",
        "href": collection,
        "items": items,
        "offset": offset,
        "limit": limit,
        "_links": links,
    }))
    .into_response())
}

/// What an order asks for, checked as IONOS checks it.
fn parse_order(body: &Bytes) -> Result<(FakeServer, u64), Fail> {
    let body: Value = serde_json::from_slice(body).map_err(|_| {
        fail(
            StatusCode::BAD_REQUEST,
            "100",
            "[(root)] The request body is not valid JSON",
        )
    })?;
    let props = &body["properties"];
    let name = props["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(invalid(
            "[VDC-7-1] Attribute 'name' of the server is mandatory",
        ));
    }
    let cores = props["cores"]
        .as_u64()
        .ok_or_else(|| invalid("[VDC-7-2] Attribute 'cores' of the server is mandatory"))?;
    if !(1..=MAX_CORES).contains(&cores) {
        return Err(invalid(format!(
            "[VDC-7-3] Attribute 'cores' must be between 1 and {MAX_CORES}, not {cores}"
        )));
    }
    let ram = props["ram"]
        .as_u64()
        .ok_or_else(|| invalid("[VDC-7-4] Attribute 'ram' of the server is mandatory"))?;
    if !(256..=MAX_RAM_MB).contains(&ram) || ram % 256 != 0 {
        return Err(invalid(format!(
            "[VDC-7-5] Attribute 'ram' must be a multiple of 256 between 256 and {MAX_RAM_MB} MB, not {ram}"
        )));
    }
    let cpu_family = match props.get("cpuFamily").and_then(Value::as_str) {
        None => CPU_FAMILIES[0].to_string(),
        Some(family) if CPU_FAMILIES.contains(&family) => family.to_string(),
        Some(family) => {
            return Err(invalid(format!(
                "[VDC-7-6] cpuFamily '{family}' is not offered in this datacenter; choose one of {}",
                CPU_FAMILIES.join(", ")
            )));
        }
    };

    let volumes = body["entities"]["volumes"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let [volume] = volumes.as_slice() else {
        return Err(invalid(
            "[VDC-7-7] The fake takes exactly one volume with a server",
        ));
    };
    let v = &volume["properties"];
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let size_gb = v["size"]
        .as_u64()
        .filter(|s| (1..=4096).contains(s))
        .ok_or_else(|| invalid("[VDC-7-8] Attribute 'size' of the volume must be 1 to 4096"))?;
    let (image, image_alias) = (text("image"), text("imageAlias"));
    if image.is_none() && image_alias.is_none() {
        return Err(invalid(
            "[VDC-7-9] A boot volume needs 'image' or 'imageAlias'",
        ));
    }
    let ssh_keys: Vec<String> = v["sshKeys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let has_image_password = text("imagePassword").is_some_and(|p| p.len() >= 8);
    if ssh_keys.is_empty() && !has_image_password {
        return Err(invalid(
            "[VDC-7-10] Passwords/SSH keys are mandatory for public images",
        ));
    }
    let volume_type = text("type").unwrap_or_else(|| "HDD".into());
    if !["HDD", "SSD", "SSD Standard", "SSD Premium"].contains(&volume_type.as_str()) {
        return Err(invalid(format!(
            "[VDC-7-11] Volume type '{volume_type}' is not valid"
        )));
    }
    let lan = match body["entities"]["nics"]["items"].as_array() {
        None => None,
        Some(nics) => match nics.as_slice() {
            [] => None,
            [nic] => Some(
                nic["properties"]["lan"]
                    .as_u64()
                    .and_then(|l| u32::try_from(l).ok())
                    .filter(|l| *l > 0)
                    .ok_or_else(|| invalid("[VDC-7-12] Attribute 'lan' of the NIC is mandatory"))?,
            ),
            _ => return Err(invalid("[VDC-7-13] The fake takes at most one NIC")),
        },
    };

    let server = FakeServer {
        id: String::new(),
        name,
        // Both checked against ranges above.
        cores: cores as u32,
        ram_mb: ram as u32,
        cpu_family,
        state: "BUSY".into(),
        vm_state: "NOSTATE".into(),
        volume: FakeVolume {
            name: text("name").unwrap_or_default(),
            size_gb: size_gb as u32,
            r#type: volume_type,
            image,
            image_alias,
            user_data: text("userData"),
            ssh_keys,
            has_image_password,
        },
        lan,
        ipv4: None,
    };
    Ok((server, cores))
}

fn next_uuid(state: &mut DcState, kind: u16) -> String {
    state.next_id += 1;
    // UUID-shaped, as IONOS ids are; the kind keeps servers and requests
    // apart.
    format!(
        "{:08x}-{kind:04x}-4000-8000-{:012x}",
        0x10a0_5000u32, state.next_id
    )
}

/// 202 with the request's status URL, as IONOS answers every change.
fn accepted(shared: &Shared, state: &mut DcState, body: Option<Value>) -> Response {
    let request = next_uuid(state, 0xbeef);
    state
        .requests
        .insert(request.clone(), Instant::now() + TRANSITION);
    let location = format!("{}/requests/{request}/status", shared.root);
    let mut response = match body {
        Some(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

async fn create(State(shared): Shd, Path(dc): Path<String>, body: Bytes) -> Answer {
    datacenter_known(&shared, &dc)?;
    let (server, cores) = parse_order(&body)?;
    let mut state = shared.state();
    if let Some(limit) = state.core_limit {
        let used: u64 = state
            .servers
            .iter()
            .map(|e| u64::from(e.server.cores))
            .sum();
        if used + cores > u64::from(limit) {
            return Err(fail(
                StatusCode::FORBIDDEN,
                "332",
                format!(
                    "[VDC-14-1] Resource limit exceeded: the contract allows {limit} cores, {used} are in use and {cores} more were requested"
                ),
            ));
        }
    }
    if !state.capacity {
        return Err(invalid(format!(
            "[VDC-5-1902] Insufficient resources available in location de/fra for {cores} cores of cpuFamily {}; try again later or choose another CPU family",
            server.cpu_family
        )));
    }
    let id = next_uuid(&mut state, 0x5e7f);
    let entry = Entry {
        server: FakeServer { id, ..server },
        pending: Some((Instant::now() + TRANSITION, "AVAILABLE", "RUNNING")),
    };
    let body = view(&shared, &entry, 0);
    state.servers.push(entry);
    Ok(accepted(&shared, &mut state, Some(body)))
}

async fn show(
    State(shared): Shd,
    Path((dc, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    datacenter_known(&shared, &dc)?;
    let state = shared.state();
    let entry = state
        .servers
        .iter()
        .find(|e| e.server.id == id)
        .ok_or_else(not_found)?;
    Ok(Json(view(&shared, entry, depth(&q).saturating_sub(1))).into_response())
}

async fn delete(State(shared): Shd, Path((dc, id)): Path<(String, String)>) -> Answer {
    datacenter_known(&shared, &dc)?;
    let mut state = shared.state();
    let before = state.servers.len();
    state.servers.retain(|e| e.server.id != id);
    if state.servers.len() == before {
        return Err(not_found());
    }
    Ok(accepted(&shared, &mut state, None))
}

async fn power(
    State(shared): Shd,
    Path((dc, id, action)): Path<(String, String, String)>,
) -> Answer {
    datacenter_known(&shared, &dc)?;
    let target = match action.as_str() {
        "start" | "reboot" => ("AVAILABLE", "RUNNING"),
        "stop" => ("INACTIVE", "SHUTOFF"),
        _ => return Err(not_found()),
    };
    let mut state = shared.state();
    let entry = state
        .servers
        .iter_mut()
        .find(|e| e.server.id == id)
        .ok_or_else(not_found)?;
    entry.server.state = "BUSY".into();
    entry.pending = Some((Instant::now() + TRANSITION, target.0, target.1));
    Ok(accepted(&shared, &mut state, None))
}

async fn request_status(State(shared): Shd, Path(id): Path<String>) -> Answer {
    let state = shared.state();
    let done_at = state.requests.get(&id).ok_or_else(not_found)?;
    let status = if Instant::now() >= *done_at {
        "DONE"
    } else {
        "RUNNING"
    };
    Ok(Json(json!({
        "id": id,
        "type": "request-status",
        "href": format!("{}/requests/{id}/status", shared.root),
        "metadata": { "status": status, "message": "", "targets": [] },
    }))
    .into_response())
}

/// Standard base64 with padding, enough to compare a basic login without
/// another dependency.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
