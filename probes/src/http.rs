//! HTTP(S): one request, judged by status, body text and a JSON value.

use std::error::Error as _;
use std::time::{Duration, Instant};

use protocol::views::monitoring::{HttpMethod, HttpProbe, Parameter, ProbeOutcome};
use reqwest::{Client, Method, redirect};

/// Body bytes kept for `body_contains` and JSON checks; the rest is read
/// (latency is the time to the full response) but dropped.
const MAX_BODY: usize = 1 << 20;
/// Redirects followed when a monitor asks for it, as browsers roughly do.
const MAX_REDIRECTS: usize = 10;

/// The HTTP clients probes share. Thousands of monitors go through the
/// same two connection pools instead of a client (and TLS setup) each.
pub struct Prober {
    direct: Result<Client, String>,
    following: Result<Client, String>,
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}

impl Prober {
    pub fn new() -> Self {
        Self {
            direct: client(redirect::Policy::none()),
            following: client(redirect::Policy::limited(MAX_REDIRECTS)),
        }
    }

    pub(crate) async fn http(&self, probe: &HttpProbe) -> ProbeOutcome {
        let client = if probe.follow_redirects {
            &self.following
        } else {
            &self.direct
        };
        let client = match client {
            Ok(client) => client,
            Err(error) => return ProbeOutcome::failed(error.clone()),
        };
        let limit = crate::limit(probe.timeout_ms);
        match tokio::time::timeout(limit, request(client, probe, limit)).await {
            Err(_) => crate::timed_out(probe.timeout_ms),
            Ok(outcome) => outcome,
        }
    }
}

fn client(policy: redirect::Policy) -> Result<Client, String> {
    Client::builder()
        .redirect(policy)
        .user_agent(concat!("Loopback-Monitor/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|err| format!("setting up the HTTP client: {err}"))
}

fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
    }
}

async fn request(client: &Client, probe: &HttpProbe, limit: Duration) -> ProbeOutcome {
    let start = Instant::now();
    let mut request = client
        .request(method(probe.method), probe.url.as_str())
        .timeout(limit);
    for header in &probe.headers {
        request = request.header(header.name.as_str(), header.value.as_str());
    }
    if let Some(body) = &probe.body {
        request = request.body(body.clone());
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return ProbeOutcome::failed(describe(&error, probe.timeout_ms)),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(error) => {
                return ProbeOutcome {
                    values: [(Parameter::HttpStatus, f64::from(status))].into(),
                    ..ProbeOutcome::failed(format!(
                        "reading the body: {}",
                        describe(&error, probe.timeout_ms)
                    ))
                };
            }
        }
    }
    let latency_ms = crate::elapsed_ms(start);
    let error = judge(probe, status, &body);
    ProbeOutcome {
        ok: error.is_none(),
        latency_ms: Some(latency_ms),
        values: [(Parameter::HttpStatus, f64::from(status))].into(),
        error,
    }
}

/// Why the answer does not count as up, if it does not.
fn judge(probe: &HttpProbe, status: u16, body: &[u8]) -> Option<String> {
    match probe.expected_status {
        Some(expected) if expected != status => {
            return Some(format!("expected status {expected}, got {status}"));
        }
        None if !(200..400).contains(&status) => {
            return Some(format!("expected a 2xx or 3xx status, got {status}"));
        }
        _ => {}
    }
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &probe.body_contains
        && !text.contains(needle.as_str())
    {
        return Some(format!("body does not contain {needle:?}"));
    }
    if let Some(json) = &probe.json {
        let steps = match crate::json_path::parse(&json.path) {
            Ok(steps) => steps,
            Err(error) => return Some(error),
        };
        let document: serde_json::Value = match serde_json::from_slice(body) {
            Ok(document) => document,
            Err(error) => return Some(format!("the body is not JSON: {error}")),
        };
        match crate::json_path::select(&document, &steps) {
            None => return Some(format!("{} is missing", json.path)),
            Some(value) => {
                let actual = crate::json_path::text(value);
                if actual != json.equals {
                    return Some(format!(
                        "{} is {actual:?}, expected {:?}",
                        json.path, json.equals
                    ));
                }
            }
        }
    }
    None
}

/// A request error as people read it: "connection refused", "timed out
/// after 2000 ms", "could not resolve example.invalid".
fn describe(error: &reqwest::Error, timeout_ms: u32) -> String {
    if error.is_timeout() {
        return format!("timed out after {timeout_ms} ms");
    }
    if error.is_redirect() {
        return format!("more than {MAX_REDIRECTS} redirects");
    }
    if error.is_builder() {
        return match error.url() {
            Some(url) => format!("invalid request for {url}: {}", innermost(error)),
            None => format!("invalid request: {}", innermost(error)),
        };
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return format!("timed out after {timeout_ms} ms");
            }
            // rustls reports certificate problems wrapped in an io::Error.
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return format!("TLS: {tls}");
            }
            return crate::io_message(io);
        }
        source = cause.source();
    }
    innermost(error)
}

/// The last cause in the chain: reqwest's own messages ("error sending
/// request") say little, hyper's and the OS's say what happened.
fn innermost(error: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    let message = last.to_string();
    if message.contains("dns error") || message.contains("failed to lookup address") {
        return match error.url().and_then(|u| u.host_str()) {
            Some(host) => format!("could not resolve {host}"),
            None => message,
        };
    }
    message
}
