//! DNS names for workspaces: an address record per name, kept in Cloudflare
//! through its v4 API, or only recorded in our database (provider "none",
//! the local demo).
//!
//! Every operation converges rather than assumes: [`Dns::ensure_a`] and
//! [`Dns::remove`] read the zone first, so retrying after a timeout or a
//! crash never duplicates or loses a record.
//!
//! The HTTP client is reqwest (rustls on ring, the system trust store), like
//! every provider client.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use crate::providers::{error_chain, excerpt};

pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com/client/v4/";

/// Bounds every call, connect to last byte: a stuck provider must not hold
/// a task step past its lease.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Short, so a moved workspace resolves to its new address within a minute.
const TTL_SECONDS: u32 = 60;
const PAGE_SIZE: u32 = 100;
/// Cloudflare's error code for a record id it does not know.
const RECORD_DOES_NOT_EXIST: i64 = 81044;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS configuration: {0}")]
    Config(String),
    #[error("{0:?} is not a DNS name we can manage")]
    InvalidName(String),
    /// Final until an operator changes the token or its permissions.
    #[error(
        "Cloudflare refused authentication (HTTP {status}): {errors}; check the API token and that it may edit DNS in the zone"
    )]
    Authentication { status: u16, errors: ApiErrors },
    /// The provider understood the request and said no; repeating it will
    /// not help.
    #[error("Cloudflare rejected the request (HTTP {status}): {errors}")]
    Rejected { status: u16, errors: ApiErrors },
    /// The provider failed or is rate limiting us; try again later.
    #[error("Cloudflare is unavailable (HTTP {status}): {errors}")]
    Unavailable { status: u16, errors: ApiErrors },
    /// No answer at all: connection, TLS or timeout; try again later.
    #[error("Cloudflare is unreachable: {0}")]
    Unreachable(String),
    #[error("Cloudflare answered in a form we do not understand: {0}")]
    UnexpectedAnswer(String),
}

impl DnsError {
    /// Whether the same call may succeed later without anyone changing
    /// anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Unreachable(_))
    }
}

/// One entry of a Cloudflare envelope's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiErrors(pub Vec<ApiError>);

impl ApiErrors {
    pub fn codes(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().map(|e| e.code)
    }
}

impl fmt::Display for ApiErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no error details");
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&e.message)?;
            // Code 0 marks a failure that came without an envelope.
            if e.code != 0 {
                write!(f, " (code {})", e.code)?;
            }
        }
        Ok(())
    }
}

/// Where workspace names are published.
// One value per process, configured at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Dns {
    /// Names are only recorded by the caller; nothing is published.
    None,
    Cloudflare(Cloudflare),
}

impl Dns {
    pub fn from_config(
        provider: &str,
        base_url: Option<&Url>,
        token: Option<&str>,
        zone_id: Option<&str>,
    ) -> Result<Self, DnsError> {
        match provider {
            "none" => Ok(Self::None),
            "cloudflare" => {
                let base = match base_url {
                    Some(url) => url.clone(),
                    None => {
                        Url::parse(CLOUDFLARE_API).map_err(|e| DnsError::Config(e.to_string()))?
                    }
                };
                let token = token
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| DnsError::Config("Cloudflare needs an API token".into()))?;
                let zone_id = zone_id
                    .filter(|z| !z.trim().is_empty())
                    .ok_or_else(|| DnsError::Config("Cloudflare needs a zone id".into()))?;
                Ok(Self::Cloudflare(Cloudflare::new(base, token, zone_id)?))
            }
            other => Err(DnsError::Config(format!(
                "unknown DNS provider {other:?}; expected \"none\" or \"cloudflare\""
            ))),
        }
    }

    /// Creates or updates the A record `name` → `ip` (AAAA when `ip` is
    /// IPv6). An existing record of that type and name is updated when its
    /// address differs and left alone when equal; surplus ones are deleted.
    /// Returns the provider's record id (None for [`Dns::None`]).
    pub async fn ensure_a(&self, name: &str, ip: IpAddr) -> Result<Option<String>, DnsError> {
        let name = normalize(name)?;
        match self {
            Self::None => Ok(None),
            Self::Cloudflare(cf) => cf.ensure_address(&name, ip).await.map(Some),
        }
    }

    /// Deletes every record named `name`, of any type; absent is fine.
    pub async fn remove(&self, name: &str) -> Result<(), DnsError> {
        let name = normalize(name)?;
        match self {
            Self::None => Ok(()),
            Self::Cloudflare(cf) => cf.remove(&name).await,
        }
    }
}

/// A client for one Cloudflare zone. Cheap to clone.
#[derive(Clone)]
pub struct Cloudflare {
    http: reqwest::Client,
    base: Url,
    token: Arc<str>,
    zone_id: String,
}

impl fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token must never reach a log.
        f.debug_struct("Cloudflare")
            .field("base", &self.base.as_str())
            .field("zone_id", &self.zone_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    // The documented answer to DELETE carries only `result`.
    success: Option<bool>,
    #[serde(default)]
    errors: Vec<ApiError>,
    result: Option<T>,
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    page: Option<u32>,
    total_pages: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct RecordView {
    id: String,
    content: String,
}

impl Cloudflare {
    pub fn new(base: Url, token: &str, zone_id: &str) -> Result<Self, DnsError> {
        let loopback = matches!(base.host(), Some(url::Host::Ipv4(a)) if a.is_loopback())
            || matches!(base.host(), Some(url::Host::Ipv6(a)) if a.is_loopback())
            || base.host_str() == Some("localhost");
        // The token travels in a header: plain HTTP only to a local fake.
        if !(base.scheme() == "https" || base.scheme() == "http" && loopback) {
            return Err(DnsError::Config(format!(
                "Cloudflare base URL {base} must use https (http only on loopback)"
            )));
        }
        if !zone_id.chars().all(|c| c.is_ascii_alphanumeric()) || zone_id.len() > 32 {
            return Err(DnsError::Config(format!(
                "{zone_id:?} is not a Cloudflare zone id (up to 32 letters and digits)"
            )));
        }
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }

        // The system trust store (reqwest's native roots), not compiled-in
        // roots: egress proxies that re-sign TLS are trusted through it.
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("loopback/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                DnsError::Config(format!("TLS setup (is ca-certificates installed?): {e}"))
            })?;
        Ok(Self {
            http,
            base,
            token: token.trim().into(),
            zone_id: zone_id.to_string(),
        })
    }

    async fn ensure_address(&self, name: &str, ip: IpAddr) -> Result<String, DnsError> {
        let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
        let existing = self.list(Some(kind), name).await?;
        let Some((keep, surplus)) = existing.split_first() else {
            let body = json!({
                "type": kind, "name": name, "content": ip.to_string(),
                "ttl": TTL_SECONDS, "proxied": false,
            });
            let created: RecordView = self.call(Method::POST, &[], &[], Some(body)).await?;
            return Ok(created.id);
        };
        // Left over from an earlier race or a manual edit: one name, one
        // address.
        for extra in surplus {
            self.delete(&extra.id).await?;
        }
        // Compare addresses, not text: "::1" and "0:0::1" are the same.
        if keep.content.parse::<IpAddr>().ok() != Some(ip) {
            let body = json!({ "content": ip.to_string(), "ttl": TTL_SECONDS, "proxied": false });
            let _: RecordView = self
                .call(Method::PATCH, &[&keep.id], &[], Some(body))
                .await?;
        }
        Ok(keep.id.clone())
    }

    async fn remove(&self, name: &str) -> Result<(), DnsError> {
        for record in self.list(None, name).await? {
            self.delete(&record.id).await?;
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), DnsError> {
        match self
            .call::<serde_json::Value>(Method::DELETE, &[id], &[], None)
            .await
        {
            // Someone else deleted it first: the outcome we wanted.
            Err(DnsError::Rejected {
                status: 404,
                errors,
            }) if errors.codes().any(|c| c == RECORD_DOES_NOT_EXIST) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Every record with exactly this name (and type), across all pages;
    /// read completely before anything is changed so deletions cannot shift
    /// later pages.
    async fn list(&self, kind: Option<&str>, name: &str) -> Result<Vec<RecordView>, DnsError> {
        let mut records = Vec::new();
        let mut page = 1u32;
        loop {
            let page_text = page.to_string();
            let per_page = PAGE_SIZE.to_string();
            let mut query = vec![
                ("name", name),
                ("page", page_text.as_str()),
                ("per_page", per_page.as_str()),
            ];
            if let Some(kind) = kind {
                query.push(("type", kind));
            }
            let envelope: Envelope<Vec<RecordView>> =
                self.send(Method::GET, &[], &query, None).await?;
            let batch = envelope.result.unwrap_or_default();
            let total_pages = envelope
                .result_info
                .as_ref()
                .and_then(|i| i.total_pages)
                .unwrap_or(1);
            let empty = batch.is_empty();
            records.extend(batch);
            if empty || page >= total_pages {
                return Ok(records);
            }
            page = envelope
                .result_info
                .and_then(|i| i.page)
                .unwrap_or(page)
                .max(page)
                + 1;
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        record: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<T, DnsError> {
        self.send(method, record, query, body)
            .await?
            .result
            .ok_or_else(|| DnsError::UnexpectedAnswer("the answer has no result".into()))
    }

    /// One request to `zones/{zone}/dns_records[/{record}]`, its envelope
    /// checked.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        record: &[&str],
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<Envelope<T>, DnsError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| DnsError::Config(format!("{} cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(["zones", self.zone_id.as_str(), "dns_records"])
            // Pushed as a segment, so an odd id from the provider stays one
            // path segment.
            .extend(record);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }

        let mut bearer = HeaderValue::try_from(format!("Bearer {}", self.token)).map_err(|_| {
            DnsError::Config("the API token has characters a header cannot carry".into())
        })?;
        bearer.set_sensitive(true);
        let mut request = self
            .http
            .request(method.clone(), url.as_str())
            .header(AUTHORIZATION, bearer)
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| {
            let what = if e.is_timeout() {
                format!("no answer within {TIMEOUT:?}")
            } else {
                error_chain(&e)
            };
            DnsError::Unreachable(format!("{method} {url}: {what}"))
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;

        tracing::debug!(%method, %url, %status, "cloudflare");
        interpret(status, &bytes)
    }
}

fn interpret<T: DeserializeOwned>(
    status: StatusCode,
    bytes: &[u8],
) -> Result<Envelope<T>, DnsError> {
    let code = status.as_u16();
    if status.is_success() {
        let envelope: Envelope<T> = serde_json::from_slice(bytes)
            .map_err(|e| DnsError::UnexpectedAnswer(format!("HTTP {code}: {e}")))?;
        if envelope.success == Some(false) {
            return Err(DnsError::Rejected {
                status: code,
                errors: ApiErrors(envelope.errors),
            });
        }
        return Ok(envelope);
    }
    // Failures may come from Cloudflare's edge as HTML rather than an
    // envelope; keep a short excerpt so the error still says something.
    let errors = match serde_json::from_slice::<Envelope<serde_json::Value>>(bytes) {
        Ok(envelope) if !envelope.errors.is_empty() => ApiErrors(envelope.errors),
        _ => ApiErrors(vec![ApiError {
            code: 0,
            message: excerpt(bytes),
        }]),
    };
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DnsError::Authentication {
            status: code,
            errors,
        },
        StatusCode::TOO_MANY_REQUESTS => DnsError::Unavailable {
            status: code,
            errors,
        },
        s if s.is_server_error() => DnsError::Unavailable {
            status: code,
            errors,
        },
        _ => DnsError::Rejected {
            status: code,
            errors,
        },
    })
}

/// Names compare case-insensitively and Cloudflare answers without the root
/// dot, so one spelling is used for both looking up and creating.
fn normalize(name: &str) -> Result<String, DnsError> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
        });
    if valid {
        Ok(name)
    } else {
        Err(DnsError::InvalidName(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("WS1.Example.com.").unwrap(), "ws1.example.com");
        assert!(normalize("").is_err());
        assert!(normalize("a..b").is_err());
        assert!(normalize("a/b.example.com").is_err());
    }

    #[test]
    fn html_failures_still_explain_themselves() {
        let err =
            interpret::<serde_json::Value>(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>")
                .unwrap_err();
        assert!(err.is_retryable());
        assert!(err.to_string().contains("bad gateway"), "{err}");
    }
}
