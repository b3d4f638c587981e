//! Hetzner Cloud through its API v1: servers, their power, and where a
//! server type can be ordered.
//!
//! Creating converges rather than assumes: [`HetznerCloud::create_server`]
//! looks the name up first, and Hetzner keeps server names unique within a
//! project, so a retry after a timeout or a crash finds the server the
//! first attempt ordered instead of ordering a second one.
//!
//! Profile parameters read from [`CreateServer::parameters`]:
//! `server_type` (required), `location` (Hetzner chooses when absent) and
//! `image` (default `debian-12`).

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::{
    CreateServer, PowerAction, ProviderError, Server, ServerStatus, TIMEOUT, error_chain, excerpt,
};

pub const HETZNER_CLOUD_API: &str = "https://api.hetzner.cloud/v1/";

const DEFAULT_IMAGE: &str = "debian-12";
/// Hetzner's maximum `per_page`.
const PAGE_SIZE: u32 = 50;
/// A bound on following `next_page`, against a server that keeps answering
/// with one more page.
const MAX_PAGES: u32 = 100;
/// Request fields whose rejection means the compute profile, not the
/// request, is wrong.
const PROFILE_FIELDS: &[&str] = &["server_type", "location", "image", "datacenter"];

/// A client for one Hetzner Cloud project (its API token). Cheap to clone.
#[derive(Clone)]
pub struct HetznerCloud {
    http: reqwest::Client,
    base: Url,
    token: Arc<str>,
}

impl fmt::Debug for HetznerCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token must never reach a log.
        f.debug_struct("HetznerCloud")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct ServerView {
    id: u64,
    name: String,
    status: String,
    #[serde(default)]
    public_net: PublicNet,
}

#[derive(Debug, Default, Deserialize)]
struct PublicNet {
    ipv4: Option<Ipv4View>,
    ipv6: Option<Ipv6View>,
}

#[derive(Debug, Deserialize)]
struct Ipv4View {
    ip: Ipv4Addr,
}

#[derive(Debug, Deserialize)]
struct Ipv6View {
    /// The server's /64, e.g. `2001:db8:1234::/64`.
    ip: String,
}

#[derive(Debug, Deserialize)]
struct OneServer {
    server: ServerView,
}

#[derive(Debug, Deserialize)]
struct Servers {
    #[serde(default)]
    servers: Vec<ServerView>,
}

#[derive(Debug, Deserialize)]
struct ServerTypes {
    #[serde(default)]
    server_types: Vec<Named>,
}

#[derive(Debug, Deserialize)]
struct Named {
    id: u64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Datacenters {
    #[serde(default)]
    datacenters: Vec<DatacenterView>,
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct DatacenterView {
    name: String,
    location: LocationView,
    server_types: DatacenterServerTypes,
}

#[derive(Debug, Deserialize)]
struct LocationView {
    name: String,
}

#[derive(Debug, Deserialize)]
struct DatacenterServerTypes {
    #[serde(default)]
    available: Vec<u64>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    next_page: Option<u32>,
}

/// Hetzner's documented error object.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: String,
    message: String,
    details: Option<Value>,
}

/// One HTTP answer, whatever its status.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The reply when successful, else what its error object means.
    pub(crate) fn check(self) -> Result<Self, ProviderError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(classify(self.status, &self.body))
        }
    }

    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        parse_json(self, "Hetzner Cloud")
    }
}

impl HetznerCloud {
    /// `base` is normally [`HETZNER_CLOUD_API`]; tests point it at a fake.
    pub fn new(base: Url, token: &str) -> Result<Self, ProviderError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ProviderError::Unauthorized(
                "no Hetzner Cloud API token configured".into(),
            ));
        }
        Ok(Self {
            http: http_client()?,
            base: checked_base(base, "Hetzner Cloud")?,
            token: token.into(),
        })
    }

    /// Checks the token with the cheapest authenticated read there is.
    pub async fn test_connection(&self) -> Result<(), ProviderError> {
        self.send(Method::GET, &["locations"], &[], None)
            .await?
            .check()
            .map(|_| ())
    }

    /// Orders a server unless one of this name exists already; either way
    /// returns it. A new server starts as [`ServerStatus::Creating`] and is
    /// powered on once installed.
    pub async fn create_server(&self, spec: &CreateServer) -> Result<Server, ProviderError> {
        // Checked before anything is sent, so a bad profile never costs a
        // request.
        let order = order(spec)?;
        if let Some(existing) = self.find_by_name(&spec.name).await? {
            return Ok(existing);
        }
        let reply = self
            .send(Method::POST, &["servers"], &[], Some(order))
            .await?;
        if reply.status == StatusCode::CONFLICT && error_code(&reply.body) == "uniqueness_error" {
            // A concurrent attempt won the race for the name: its server is
            // the one asked for.
            if let Some(existing) = self.find_by_name(&spec.name).await? {
                return Ok(existing);
            }
        }
        let created: OneServer = reply.check()?.json()?;
        tracing::info!(server = created.server.id, name = %spec.name, "Hetzner Cloud created a server");
        Ok(created.server.into())
    }

    /// The server with this id; None when the project has no such server.
    pub async fn server(&self, id: &str) -> Result<Option<Server>, ProviderError> {
        // Hetzner's ids are numbers; anything else names no server.
        if !is_server_id(id) {
            return Ok(None);
        }
        let reply = self.send(Method::GET, &["servers", id], &[], None).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let found: OneServer = reply.check()?.json()?;
        Ok(Some(found.server.into()))
    }

    /// The server of this name, if any (names are unique per project).
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Server>, ProviderError> {
        let found: Servers = self
            .send(Method::GET, &["servers"], &[("name", name)], None)
            .await?
            .check()?
            .json()?;
        Ok(found
            .servers
            .into_iter()
            .find(|s| s.name == name)
            .map(Into::into))
    }

    /// Deletes the server; one already gone is the outcome wanted.
    pub async fn delete_server(&self, id: &str) -> Result<(), ProviderError> {
        if !is_server_id(id) {
            return Ok(());
        }
        let reply = self
            .send(Method::DELETE, &["servers", id], &[], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        reply.check().map(|_| ())
    }

    /// Powers on, cuts the power (`poweroff`, not an ACPI shutdown) or
    /// resets the server. Hetzner runs the action asynchronously: the
    /// status follows within seconds.
    pub async fn power(&self, id: &str, action: PowerAction) -> Result<(), ProviderError> {
        if !is_server_id(id) {
            return Err(ProviderError::Rejected(format!(
                "{id:?} is not a Hetzner Cloud server id"
            )));
        }
        let verb = match action {
            PowerAction::On => "poweron",
            PowerAction::Off => "poweroff",
            PowerAction::Reset => "reset",
        };
        self.send(Method::POST, &["servers", id, "actions", verb], &[], None)
            .await?
            .check()
            .map(|_| ())
    }

    /// Every datacenter with whether `server_type` can be ordered there
    /// now: `(datacenter name, location name, available)`.
    pub async fn availability(
        &self,
        server_type: &str,
    ) -> Result<Vec<(String, String, bool)>, ProviderError> {
        let type_id = self.server_type_id(server_type).await?;
        let per_page = PAGE_SIZE.to_string();
        let mut found = Vec::new();
        let mut page = 1u32;
        for _ in 0..MAX_PAGES {
            let page_text = page.to_string();
            let query = [
                ("page", page_text.as_str()),
                ("per_page", per_page.as_str()),
            ];
            let batch: Datacenters = self
                .send(Method::GET, &["datacenters"], &query, None)
                .await?
                .check()?
                .json()?;
            found.extend(batch.datacenters.into_iter().map(|dc| {
                let available = dc.server_types.available.contains(&type_id);
                (dc.name, dc.location.name, available)
            }));
            match batch
                .meta
                .and_then(|m| m.pagination)
                .and_then(|p| p.next_page)
            {
                Some(next) if next > page => page = next,
                _ => return Ok(found),
            }
        }
        Ok(found)
    }

    async fn server_type_id(&self, name: &str) -> Result<u64, ProviderError> {
        let found: ServerTypes = self
            .send(Method::GET, &["server_types"], &[("name", name)], None)
            .await?
            .check()?
            .json()?;
        found
            .server_types
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.id)
            .ok_or_else(|| {
                ProviderError::InvalidProfile(format!("Hetzner Cloud has no server type {name:?}"))
            })
    }

    /// One request to `{base}{path...}`; the answer is returned whatever its
    /// status, so callers can give 404 its own meaning. Also used by the
    /// load balancer backend (`loadbalancers::hetzner`), which shares the
    /// project token.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Reply, ProviderError> {
        let url = endpoint(&self.base, path, query)?;
        // bearer_auth marks the header sensitive, keeping it out of debug
        // output.
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&*self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = exchange(request, &method, &url).await?;
        tracing::debug!(%method, %url, status = %reply.status, "hetzner cloud");
        Ok(reply)
    }
}

impl From<ServerView> for Server {
    fn from(view: ServerView) -> Self {
        Server {
            id: view.id.to_string(),
            status: status(&view.status),
            name: view.name,
            ipv4: view.public_net.ipv4.map(|v| v.ip),
            ipv6: view.public_net.ipv6.map(|v| v.ip),
        }
    }
}

fn status(word: &str) -> ServerStatus {
    match word {
        "initializing" | "starting" => ServerStatus::Creating,
        "running" => ServerStatus::Running,
        "off" | "stopping" => ServerStatus::Off,
        other => ServerStatus::Other(other.to_string()),
    }
}

fn is_server_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// The documented `POST /servers` body for this spec.
fn order(spec: &CreateServer) -> Result<Value, ProviderError> {
    if spec.name.trim().is_empty() {
        return Err(ProviderError::Rejected("a server needs a name".into()));
    }
    let parameter = |name: &str| {
        spec.parameters
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let server_type = parameter("server_type").ok_or_else(|| {
        ProviderError::InvalidProfile("the compute profile names no server_type".into())
    })?;
    let mut body = json!({
        "name": spec.name,
        "server_type": server_type,
        "image": parameter("image").unwrap_or(DEFAULT_IMAGE),
        "user_data": spec.user_data,
        "labels": spec.labels,
        "start_after_create": true,
    });
    if let Some(location) = parameter("location") {
        body["location"] = json!(location);
    }
    Ok(body)
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error.code)
        .unwrap_or_default()
}

/// Maps a failed answer to what it means for a host's lifecycle: the
/// documented error code decides, the status only when the code says
/// nothing we know.
fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        // Failures from a proxy in front of the API come without the error
        // object.
        return by_status(status)(format!("HTTP {}: {}", status.as_u16(), excerpt(body)));
    };
    let detail = format!("HTTP {} {}: {}", status.as_u16(), error.code, error.message);
    let about_profile = mentions_profile(&error);
    let variant: fn(String) -> ProviderError = match error.code.as_str() {
        "resource_unavailable" | "placement_error" => ProviderError::NoCapacity,
        "resource_limit_exceeded" | "limit_exceeded" => ProviderError::Quota,
        "rate_limit_exceeded" => ProviderError::RateLimited,
        "unauthorized" | "forbidden" | "token_readonly" => ProviderError::Unauthorized,
        "invalid_input" | "not_found" if about_profile => ProviderError::InvalidProfile,
        _ => by_status(status),
    };
    variant(detail)
}

fn by_status(status: StatusCode) -> fn(String) -> ProviderError {
    match status.as_u16() {
        401 | 403 => ProviderError::Unauthorized,
        429 => ProviderError::RateLimited,
        500..=599 => ProviderError::Unavailable,
        _ => ProviderError::Rejected,
    }
}

/// Whether the error is about a field the compute profile supplies: named
/// in `details.fields` (invalid_input) or in the message (not_found).
fn mentions_profile(error: &ApiError) -> bool {
    let fields = error
        .details
        .as_ref()
        .and_then(|d| d.get("fields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("name").and_then(Value::as_str));
    let message = error.message.to_ascii_lowercase().replace(' ', "_");
    fields
        .chain(
            PROFILE_FIELDS
                .iter()
                .copied()
                .filter(|f| message.contains(f)),
        )
        .any(|f| PROFILE_FIELDS.contains(&f))
}

// Shared with `hetzner_robot`: both speak plain HTTP APIs the same way.

/// Requires https (http only to a local fake, as credentials travel in a
/// header) and a trailing slash, so paths extend the base rather than
/// replace its last segment.
pub(super) fn checked_base(mut base: Url, provider: &str) -> Result<Url, ProviderError> {
    let loopback = matches!(base.host(), Some(url::Host::Ipv4(a)) if a.is_loopback())
        || matches!(base.host(), Some(url::Host::Ipv6(a)) if a.is_loopback())
        || base.host_str() == Some("localhost");
    if !(base.scheme() == "https" || base.scheme() == "http" && loopback) {
        return Err(ProviderError::Rejected(format!(
            "{provider} base URL {base} must use https (http only on loopback)"
        )));
    }
    if base.cannot_be_a_base() {
        return Err(ProviderError::Rejected(format!(
            "{provider} base URL {base} cannot be a base URL"
        )));
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

pub(super) fn http_client() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("loopback/", env!("CARGO_PKG_VERSION")))
        // The APIs do not redirect; following one could hand the
        // credentials to another host.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProviderError::Rejected(format!("HTTP client setup: {e}")))
}

/// `base` extended by `path`, each part one segment (so an odd id cannot
/// reach another endpoint), with `query`.
pub(super) fn endpoint(
    base: &Url,
    path: &[&str],
    query: &[(&str, &str)],
) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| ProviderError::Rejected(format!("{base} cannot be a base URL")))?
        .pop_if_empty()
        .extend(path);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// Sends the request and reads the whole answer within [`TIMEOUT`].
pub(super) async fn exchange(
    request: reqwest::RequestBuilder,
    method: &Method,
    url: &Url,
) -> Result<Reply, ProviderError> {
    let unreachable = |e: reqwest::Error| {
        let why = if e.is_timeout() {
            format!("no answer within {TIMEOUT:?}")
        } else {
            error_chain(&e)
        };
        ProviderError::Unreachable(format!("{method} {url}: {why}"))
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?.to_vec();
    Ok(Reply { status, body })
}

pub(super) fn parse_json<T: DeserializeOwned>(
    reply: &Reply,
    provider: &str,
) -> Result<T, ProviderError> {
    serde_json::from_slice(&reply.body).map_err(|e| {
        ProviderError::Unavailable(format!(
            "{provider} answered HTTP {} in a form we do not understand: {e}",
            reply.status.as_u16()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn error(status: u16, body: Value) -> ProviderError {
        classify(
            StatusCode::from_u16(status).unwrap(),
            body.to_string().as_bytes(),
        )
    }

    fn hetzner(code: &str, message: &str) -> Value {
        json!({ "error": { "code": code, "message": message, "details": {} } })
    }

    #[test]
    fn documented_codes_decide_before_the_status() {
        let cases = [
            (412, "resource_unavailable", "NoCapacity"),
            (422, "placement_error", "NoCapacity"),
            (403, "resource_limit_exceeded", "Quota"),
            (429, "rate_limit_exceeded", "RateLimited"),
            (401, "unauthorized", "Unauthorized"),
            (403, "forbidden", "Unauthorized"),
            (503, "maintenance", "Unavailable"),
            (409, "conflict", "Rejected"),
        ];
        for (status, code, expected) in cases {
            let err = error(status, hetzner(code, "words"));
            assert!(format!("{err:?}").starts_with(expected), "{code}: {err:?}");
            assert!(err.to_string().contains("words"), "{err}");
        }
    }

    #[test]
    fn invalid_input_about_the_profile_is_an_invalid_profile() {
        let body = json!({ "error": {
            "code": "invalid_input",
            "message": "invalid input in field 'server_type'",
            "details": { "fields": [{ "name": "server_type", "messages": ["not found"] }] },
        }});
        assert!(matches!(error(400, body), ProviderError::InvalidProfile(_)));
        let other = json!({ "error": {
            "code": "invalid_input",
            "message": "invalid input in field 'name'",
            "details": { "fields": [{ "name": "name", "messages": ["invalid"] }] },
        }});
        assert!(matches!(error(400, other), ProviderError::Rejected(_)));
        let missing_type = hetzner("not_found", "server type not found");
        assert!(matches!(
            error(404, missing_type),
            ProviderError::InvalidProfile(_)
        ));
    }

    #[test]
    fn failures_without_the_error_object_still_explain_themselves() {
        let err = classify(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("bad gateway"), "{err}");
    }

    #[test]
    fn status_follows_hetzner_words() {
        assert_eq!(status("initializing"), ServerStatus::Creating);
        assert_eq!(status("starting"), ServerStatus::Creating);
        assert_eq!(status("running"), ServerStatus::Running);
        assert_eq!(status("stopping"), ServerStatus::Off);
        assert_eq!(status("off"), ServerStatus::Off);
        assert_eq!(
            status("rebuilding"),
            ServerStatus::Other("rebuilding".into())
        );
    }

    #[test]
    fn orders_follow_the_documented_shape() {
        let spec = CreateServer {
            name: "host-1".into(),
            parameters: BTreeMap::from([("server_type".into(), "cx22".into())]),
            user_data: "#cloud-config\n".into(),
            labels: BTreeMap::from([("loopback/host".into(), "1".into())]),
        };
        let body = order(&spec).unwrap();
        assert_eq!(body["server_type"], "cx22");
        assert_eq!(body["image"], DEFAULT_IMAGE);
        assert_eq!(body["start_after_create"], true);
        assert!(body.get("location").is_none());
        let no_type = CreateServer {
            parameters: BTreeMap::new(),
            ..spec
        };
        assert!(matches!(
            order(&no_type),
            Err(ProviderError::InvalidProfile(_))
        ));
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let client =
            HetznerCloud::new(Url::parse("https://api.example.test/v1").unwrap(), "s3cret")
                .unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(client.base.as_str(), "https://api.example.test/v1/");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let remote = Url::parse("http://api.example.test/v1/").unwrap();
        assert!(HetznerCloud::new(remote, "t").is_err());
        let local = Url::parse("http://127.0.0.1:9/v1/").unwrap();
        assert!(HetznerCloud::new(local, "t").is_ok());
    }
}
