//! IONOS Cloud compute (the DCD) through Cloud API v6: servers in one
//! virtual datacenter, each with a boot volume from an image and, when the
//! profile names a LAN, a NIC on it.
//!
//! Creating converges rather than assumes: [`Ionos::create_server`] looks
//! the name up first, so a retry after a timeout or a crash finds the
//! server the first attempt ordered instead of ordering a second one.
//! IONOS accepts an order with 202 and provisions in the background; the
//! caller polls [`Ionos::server`] until it reports
//! [`ServerStatus::Running`].
//!
//! Profile parameters read from [`CreateServer::parameters`]:
//! `cores` and `ram_mb` (required), `disk_gb` (default 20), `cpu_family`,
//! `image` (an image UUID) or `image_alias` (default `debian:12`),
//! `disk_type` (default `SSD`), `lan` (the LAN id for the server's NIC; no
//! NIC, and so no address, without it) and `ssh_keys` (one per line).

use std::fmt;
use std::net::Ipv4Addr;

use base64::Engine as _;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::{
    CreateServer, PowerAction, ProviderError, Server, ServerStatus, TIMEOUT, error_chain, excerpt,
};

pub const IONOS_API: &str = "https://api.ionos.com/cloudapi/v6/";

const DEFAULT_IMAGE_ALIAS: &str = "debian:12";
const DEFAULT_DISK_TYPE: &str = "SSD";
const DEFAULT_DISK_GB: u32 = 20;
/// IONOS's own maximum for `limit` on collections.
const PAGE_SIZE: usize = 1000;
/// A bound on following `_links.next`, against a server that keeps
/// answering with the same page.
const MAX_PAGES: usize = 100;

/// How the client authenticates: an API token, or a DCD user's login.
#[derive(Clone, PartialEq, Eq)]
pub enum IonosAuth {
    Token(String),
    Basic { user: String, password: String },
}

impl fmt::Debug for IonosAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets must never reach a log; the user name may.
        match self {
            Self::Token(_) => f.write_str("Token(..)"),
            Self::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .finish_non_exhaustive(),
        }
    }
}

/// A client for one IONOS virtual datacenter. Cheap to clone.
#[derive(Clone)]
pub struct Ionos {
    http: reqwest::Client,
    base: Url,
    auth: IonosAuth,
    datacenter_id: String,
}

impl fmt::Debug for Ionos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ionos")
            .field("base", &self.base.as_str())
            .field("datacenter_id", &self.datacenter_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Collection<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    #[serde(rename = "_links")]
    links: Option<Links>,
}

#[derive(Debug, Deserialize)]
struct Links {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ServerView {
    id: String,
    metadata: Option<Metadata>,
    properties: Option<ServerProperties>,
    entities: Option<ServerEntities>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ServerProperties {
    name: Option<String>,
    #[serde(rename = "vmState")]
    vm_state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ServerEntities {
    nics: Option<Collection<NicView>>,
}

#[derive(Debug, Deserialize)]
struct NicView {
    properties: Option<NicProperties>,
}

#[derive(Debug, Deserialize)]
struct NicProperties {
    ips: Option<Vec<String>>,
    #[serde(rename = "ipv6Ips")]
    ipv6_ips: Option<Vec<String>>,
}

/// IONOS's documented error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    messages: Vec<ErrorMessage>,
}

#[derive(Debug, Deserialize)]
struct ErrorMessage {
    // Documented as a string, but nothing depends on its type.
    #[serde(rename = "errorCode")]
    error_code: Option<Value>,
    message: Option<String>,
}

/// One HTTP answer, whatever its status.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
    location: Option<String>,
}

impl Reply {
    fn check(self) -> Result<Self, ProviderError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(classify(self.status, &self.body))
        }
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::Unavailable(format!(
                "IONOS answered HTTP {} in a form we do not understand: {e}",
                self.status.as_u16()
            ))
        })
    }
}

impl Ionos {
    /// `base` is normally [`IONOS_API`]; tests point it at a fake.
    pub fn new(base: Url, auth: IonosAuth, datacenter_id: &str) -> Result<Self, ProviderError> {
        let loopback = matches!(base.host(), Some(url::Host::Ipv4(a)) if a.is_loopback())
            || matches!(base.host(), Some(url::Host::Ipv6(a)) if a.is_loopback())
            || base.host_str() == Some("localhost");
        // Credentials travel in a header: plain HTTP only to a local fake.
        if !(base.scheme() == "https" || base.scheme() == "http" && loopback) {
            return Err(ProviderError::Rejected(format!(
                "IONOS base URL {base} must use https (http only on loopback)"
            )));
        }
        let datacenter_id = datacenter_id.trim();
        if datacenter_id.is_empty()
            || datacenter_id.len() > 64
            || !datacenter_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            return Err(ProviderError::Rejected(format!(
                "{datacenter_id:?} is not an IONOS datacenter id (a UUID)"
            )));
        }
        let missing = match &auth {
            IonosAuth::Token(token) => token.trim().is_empty(),
            IonosAuth::Basic { user, password } => user.trim().is_empty() || password.is_empty(),
        };
        if missing {
            return Err(ProviderError::Unauthorized(
                "no IONOS credentials configured".into(),
            ));
        }
        let auth = match auth {
            IonosAuth::Token(token) => IonosAuth::Token(token.trim().to_string()),
            basic => basic,
        };
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("loopback/", env!("CARGO_PKG_VERSION")))
            // The API does not redirect; following one could hand the
            // credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProviderError::Rejected(format!("HTTP client setup: {e}")))?;
        Ok(Self {
            http,
            base,
            auth,
            datacenter_id: datacenter_id.to_string(),
        })
    }

    pub fn datacenter_id(&self) -> &str {
        &self.datacenter_id
    }

    /// Checks the credentials and that they can see the datacenter.
    pub async fn test_connection(&self) -> Result<(), ProviderError> {
        let reply = self.send(Method::GET, &[], &[], None).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(self.datacenter_missing(&reply));
        }
        reply.check().map(|_| ())
    }

    /// Orders a server unless one of this name exists already; either way
    /// returns it. A new server starts as [`ServerStatus::Creating`].
    pub async fn create_server(&self, spec: &CreateServer) -> Result<Server, ProviderError> {
        // Checked before anything is sent, so a bad profile never costs a
        // request.
        let order = order(spec)?;
        if let Some(existing) = self.find_by_name(&spec.name).await? {
            return Ok(existing);
        }
        let reply = self
            .send(Method::POST, &["servers"], &[], Some(&order))
            .await?
            .check()?;
        let view: ServerView = reply.json()?;
        tracing::info!(
            server = %view.id,
            name = %spec.name,
            request = reply.location.as_deref().unwrap_or("-"),
            "IONOS accepted a server order"
        );
        Ok(view.into_server(&spec.name))
    }

    /// The server with this id; None when IONOS does not know it.
    pub async fn server(&self, id: &str) -> Result<Option<Server>, ProviderError> {
        let reply = self
            .send(Method::GET, &["servers", id], &[("depth", "2")], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let view: ServerView = reply.check()?.json()?;
        Ok(Some(view.into_server("")))
    }

    /// Deletes the server and its volumes; an unknown id is already the
    /// outcome wanted.
    pub async fn delete_server(&self, id: &str) -> Result<(), ProviderError> {
        // Without deleteVolumes the boot volume would stay, billed, in the
        // datacenter.
        let reply = self
            .send(
                Method::DELETE,
                &["servers", id],
                &[("deleteVolumes", "true")],
                None,
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        reply.check().map(|_| ())
    }

    /// Starts, stops (deallocating cores and RAM) or reboots the server.
    pub async fn power(&self, id: &str, action: PowerAction) -> Result<(), ProviderError> {
        let verb = match action {
            PowerAction::On => "start",
            PowerAction::Off => "stop",
            PowerAction::Reset => "reboot",
        };
        self.send(Method::POST, &["servers", id, verb], &[], None)
            .await?
            .check()
            .map(|_| ())
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Server>, ProviderError> {
        let limit = PAGE_SIZE.to_string();
        let mut offset = 0usize;
        for _ in 0..MAX_PAGES {
            let offset_text = offset.to_string();
            let query = [
                ("depth", "1"),
                ("offset", offset_text.as_str()),
                ("limit", limit.as_str()),
            ];
            let reply = self.send(Method::GET, &["servers"], &query, None).await?;
            if reply.status == StatusCode::NOT_FOUND {
                return Err(self.datacenter_missing(&reply));
            }
            let page: Collection<ServerView> = reply.check()?.json()?;
            let count = page.items.len();
            if let Some(found) = page.items.into_iter().find(|s| s.name() == Some(name)) {
                return Ok(Some(found.into_server(name)));
            }
            let more = page.links.and_then(|l| l.next).is_some();
            if count == 0 || !more {
                return Ok(None);
            }
            offset += count;
        }
        // Answering "not found" here could order a duplicate.
        Err(ProviderError::Rejected(format!(
            "datacenter {} lists more than {} servers; gave up looking for {name:?}",
            self.datacenter_id,
            MAX_PAGES * PAGE_SIZE
        )))
    }

    fn datacenter_missing(&self, reply: &Reply) -> ProviderError {
        ProviderError::Rejected(format!(
            "datacenter {} does not exist or these credentials cannot see it ({})",
            self.datacenter_id,
            describe(reply.status, &reply.body)
        ))
    }

    /// One request to `datacenters/{id}[/{path}...]`. Ok for every HTTP
    /// answer; only a missing answer is an error.
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, ProviderError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderError::Rejected(format!("{} cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(["datacenters", self.datacenter_id.as_str()])
            // Pushed as segments, so an odd id stays one path segment.
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }

        let request = self
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, "application/json");
        // reqwest marks both headers sensitive, keeping them out of its
        // debug output.
        let request = match &self.auth {
            IonosAuth::Token(token) => request.bearer_auth(token),
            IonosAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        let unreachable = |e: reqwest::Error| {
            ProviderError::Unreachable(format!("{method} {url}: {}", error_chain(&e)))
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(unreachable)?.to_vec();
        tracing::debug!(%method, %url, %status, "ionos");
        Ok(Reply {
            status,
            body,
            location,
        })
    }
}

impl ServerView {
    fn name(&self) -> Option<&str> {
        self.properties.as_ref()?.name.as_deref()
    }

    /// `fallback_name` covers answers that omit the properties.
    fn into_server(self, fallback_name: &str) -> Server {
        let state = self.metadata.and_then(|m| m.state);
        let (name, vm_state) = match self.properties {
            Some(p) => (p.name, p.vm_state),
            None => (None, None),
        };
        let nics: Vec<NicProperties> = self
            .entities
            .and_then(|e| e.nics)
            .map(|c| c.items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.properties)
            .collect();
        let ipv4 = nics
            .iter()
            .filter_map(|n| n.ips.as_ref()?.first())
            .find_map(|ip| ip.parse::<Ipv4Addr>().ok());
        let ipv6 = nics
            .iter()
            .find_map(|n| n.ipv6_ips.as_ref()?.first().cloned());
        Server {
            id: self.id,
            name: name.unwrap_or_else(|| fallback_name.to_string()),
            status: status(state.as_deref(), vm_state.as_deref()),
            ipv4,
            ipv6,
        }
    }
}

fn status(state: Option<&str>, vm_state: Option<&str>) -> ServerStatus {
    match (state, vm_state) {
        (Some("BUSY" | "DEPLOYING"), _) => ServerStatus::Creating,
        // A stopped server is INACTIVE (deallocated), not AVAILABLE.
        (_, Some("SHUTOFF" | "SHUTDOWN")) => ServerStatus::Off,
        (Some("AVAILABLE"), Some("RUNNING")) => ServerStatus::Running,
        (state, vm_state) => ServerStatus::Other(format!(
            "{}/{}",
            state.unwrap_or("unknown"),
            vm_state.unwrap_or("unknown")
        )),
    }
}

/// The request body for `POST datacenters/{id}/servers`.
fn order(spec: &CreateServer) -> Result<Value, ProviderError> {
    if spec.name.trim().is_empty() {
        return Err(ProviderError::Rejected("a server needs a name".into()));
    }
    let params = &spec.parameters;
    let text = |key: &str| params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let number = |key: &str| -> Result<Option<u32>, ProviderError> {
        text(key)
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ProviderError::InvalidProfile(format!(
                        "parameter {key} must be a whole number, not {v:?}"
                    ))
                })
            })
            .transpose()
    };
    let required = |key: &str| {
        number(key)?.ok_or_else(|| {
            ProviderError::InvalidProfile(format!("IONOS servers need the parameter {key}"))
        })
    };
    let cores = required("cores")?;
    let ram_mb = required("ram_mb")?;
    let disk_gb = number("disk_gb")?.unwrap_or(DEFAULT_DISK_GB);

    let mut properties = json!({ "name": spec.name, "cores": cores, "ram": ram_mb });
    if let Some(family) = text("cpu_family") {
        properties["cpuFamily"] = json!(family);
    }

    let mut volume = json!({
        "name": format!("{}-boot", spec.name),
        "size": disk_gb,
        "type": text("disk_type").unwrap_or(DEFAULT_DISK_TYPE),
        "userData": base64::engine::general_purpose::STANDARD.encode(&spec.user_data),
    });
    match text("image") {
        Some(image) => volume["image"] = json!(image),
        None => {
            volume["imageAlias"] = json!(text("image_alias").unwrap_or(DEFAULT_IMAGE_ALIAS));
        }
    }
    let ssh_keys: Vec<&str> = text("ssh_keys")
        .map(|keys| {
            keys.lines()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if ssh_keys.is_empty() {
        // IONOS refuses a public image with neither a password nor a key.
        // Nobody logs in with this one: the agent is the way in, so it is
        // random and forgotten.
        volume["imagePassword"] = json!(random_password());
    } else {
        volume["sshKeys"] = json!(ssh_keys);
    }

    let mut entities = json!({ "volumes": { "items": [{ "properties": volume }] } });
    if let Some(lan) = number("lan")? {
        entities["nics"] = json!({ "items": [{ "properties": {
            "name": format!("{}-nic", spec.name),
            "lan": lan,
            "dhcp": true,
        } }] });
    }
    Ok(json!({ "properties": properties, "entities": entities }))
}

fn random_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Maps an IONOS failure to what the host lifecycle needs to know, from
/// the status and, where statuses are shared, the wording of the message.
fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    let detail = describe(status, body);
    let words = message_words(body);
    let text = words.join(" ");
    let any = |phrases: &[&str]| phrases.iter().any(|p| text.contains(p));
    // IONOS reports contract limits as 403 or 422, and missing capacity as
    // 422 or 503: the words decide, before the status does.
    let quota = any(&[
        "resource limit",
        "resources limit",
        "quota",
        "limit exceeded",
        "limits exceeded",
        "exceeds the limit",
        "exceed the limit",
    ]);
    let capacity = any(&[
        "capacity",
        "insufficient resources",
        "not enough resources",
        "no resources available",
        "resources are not available",
        "resources not available",
    ]);
    let profile = words.iter().any(|w| {
        matches!(
            w.as_str(),
            "cores" | "core" | "ram" | "cpufamily" | "imagealias"
        )
    }) || text.contains("cpu family");
    match status.as_u16() {
        401 => ProviderError::Unauthorized(detail),
        429 => ProviderError::RateLimited(detail),
        400..=599 if quota => ProviderError::Quota(detail),
        400..=599 if capacity => ProviderError::NoCapacity(detail),
        403 => {
            ProviderError::Unauthorized(format!("{detail}; the user lacks a privilege this needs"))
        }
        400 | 422 if profile => ProviderError::InvalidProfile(detail),
        500..=599 => ProviderError::Unavailable(detail),
        _ => ProviderError::Rejected(detail),
    }
}

/// The messages of an error body as lower-case words, so that "ram" does
/// not match inside "parameter".
fn message_words(body: &[u8]) -> Vec<String> {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return Vec::new();
    };
    parsed
        .messages
        .iter()
        .filter_map(|m| m.message.as_deref())
        .flat_map(|m| m.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// "IONOS answered HTTP 422: message (errorCode 100); ...", or an excerpt
/// of a body that is not IONOS's error shape (a proxy's HTML page).
fn describe(status: StatusCode, body: &[u8]) -> String {
    let messages: Vec<String> = serde_json::from_slice::<ErrorBody>(body)
        .map(|parsed| {
            parsed
                .messages
                .into_iter()
                .filter_map(|m| {
                    let message = m.message?;
                    Some(match m.error_code {
                        Some(Value::String(code)) => format!("{message} (errorCode {code})"),
                        Some(Value::Number(code)) => format!("{message} (errorCode {code})"),
                        _ => message,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let detail = if messages.is_empty() {
        excerpt(body)
    } else {
        messages.join("; ")
    };
    format!("IONOS answered HTTP {}: {detail}", status.as_u16())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn error(status: u16, message: &str) -> ProviderError {
        let body = json!({
            "httpStatus": status,
            "messages": [{ "errorCode": "200", "message": message }],
        });
        classify(
            StatusCode::from_u16(status).unwrap(),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn failures_are_classified_by_status_and_wording() {
        assert!(matches!(
            error(401, "Unauthorized"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            error(403, "[VDC-1-1] Access denied"),
            ProviderError::Unauthorized(_)
        ));
        assert!(matches!(
            error(403, "[VDC-14-1] Resource limit exceeded: cores"),
            ProviderError::Quota(_)
        ));
        assert!(matches!(
            error(422, "The request would exceed the quota for RAM"),
            ProviderError::Quota(_)
        ));
        assert!(matches!(
            error(503, "Insufficient resources available in the location"),
            ProviderError::NoCapacity(_)
        ));
        assert!(matches!(
            error(
                422,
                "[VDC-5-1] Not enough capacity for cpuFamily INTEL_ICELAKE"
            ),
            ProviderError::NoCapacity(_)
        ));
        assert!(matches!(
            error(422, "[VDC-7-1] Attribute 'cores' must be between 1 and 62"),
            ProviderError::InvalidProfile(_)
        ));
        assert!(matches!(
            error(422, "[VDC-7-2] The cpu family FOO is not supported here"),
            ProviderError::InvalidProfile(_)
        ));
        // "ram" inside another word is not about RAM.
        assert!(matches!(
            error(422, "[VDC-7-3] Unknown parameter 'flavour'"),
            ProviderError::Rejected(_)
        ));
        assert!(matches!(
            error(429, "Too many requests"),
            ProviderError::RateLimited(_)
        ));
        assert!(matches!(
            error(500, "[VDC-5-0] An unexpected error occurred"),
            ProviderError::Unavailable(_)
        ));
        let html = classify(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(html.is_retryable());
        assert!(html.to_string().contains("bad gateway"), "{html}");
    }

    #[test]
    fn messages_keep_ionos_wording_and_code() {
        let err = error(422, "[VDC-7-1] Attribute 'cores' must be between 1 and 62");
        let text = err.to_string();
        assert!(text.contains("HTTP 422"), "{text}");
        assert!(
            text.contains("must be between 1 and 62 (errorCode 200)"),
            "{text}"
        );
    }

    #[test]
    fn status_follows_state_and_vm_state() {
        assert_eq!(status(Some("BUSY"), None), ServerStatus::Creating);
        assert_eq!(
            status(Some("AVAILABLE"), Some("RUNNING")),
            ServerStatus::Running
        );
        assert_eq!(status(Some("INACTIVE"), Some("SHUTOFF")), ServerStatus::Off);
        assert_eq!(
            status(Some("AVAILABLE"), Some("SHUTDOWN")),
            ServerStatus::Off
        );
        assert_eq!(
            status(Some("FAILED"), Some("CRASHED")),
            ServerStatus::Other("FAILED/CRASHED".into())
        );
    }

    fn spec(parameters: &[(&str, &str)]) -> CreateServer {
        CreateServer {
            name: "host-1".into(),
            parameters: parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user_data: "#cloud-config\n".into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn orders_follow_the_documented_shape() {
        let body = order(&spec(&[
            ("cores", "2"),
            ("ram_mb", "4096"),
            ("cpu_family", "INTEL_SKYLAKE"),
            ("lan", "1"),
        ]))
        .unwrap();
        assert_eq!(body["properties"]["cores"], 2);
        assert_eq!(body["properties"]["ram"], 4096);
        assert_eq!(body["properties"]["cpuFamily"], "INTEL_SKYLAKE");
        let volume = &body["entities"]["volumes"]["items"][0]["properties"];
        assert_eq!(volume["imageAlias"], "debian:12");
        assert_eq!(volume["size"], 20);
        assert_eq!(volume["type"], "SSD");
        assert_eq!(volume["userData"], "I2Nsb3VkLWNvbmZpZwo=");
        assert_eq!(volume["imagePassword"].as_str().unwrap().len(), 32);
        assert_eq!(body["entities"]["nics"]["items"][0]["properties"]["lan"], 1);
    }

    #[test]
    fn orders_need_cores_and_ram() {
        assert!(matches!(
            order(&spec(&[("cores", "2")])),
            Err(ProviderError::InvalidProfile(_))
        ));
        assert!(matches!(
            order(&spec(&[("cores", "two"), ("ram_mb", "4096")])),
            Err(ProviderError::InvalidProfile(_))
        ));
    }

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let ionos = Ionos::new(
            Url::parse(IONOS_API).unwrap(),
            IonosAuth::Basic {
                user: "ops@example.com".into(),
                password: "hunter2-secret".into(),
            },
            "00000000-0000-0000-0000-000000000001",
        )
        .unwrap();
        let text = format!("{ionos:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{:?}", IonosAuth::Token("tok-secret".into())).contains("secret"));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let auth = IonosAuth::Token("t".into());
        let dc = "00000000-0000-0000-0000-000000000001";
        assert!(
            Ionos::new(
                Url::parse("http://api.ionos.com/").unwrap(),
                auth.clone(),
                dc
            )
            .is_err()
        );
        assert!(Ionos::new(Url::parse("http://127.0.0.1:9/").unwrap(), auth.clone(), dc).is_ok());
        assert!(Ionos::new(Url::parse(IONOS_API).unwrap(), auth, "../x").is_err());
    }
}
