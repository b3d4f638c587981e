//! Two request checks in front of everything:
//! - state-changing requests from another site are refused (CSRF): a foreign
//!   `Origin`, or `Sec-Fetch-Site: cross-site`, gets 403;
//! - pages requested under another host name are redirected to the public
//!   URL, so cookies, passkeys and the origin check all see one site.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use url::Url;

#[derive(Debug, Clone)]
pub struct Guard {
    /// "http://localhost:3000"
    origin: String,
    /// "localhost:3000", as browsers send it in `Host`.
    host: String,
}

impl Guard {
    pub fn new(public_url: &Url) -> Arc<Self> {
        let origin = public_url.origin().ascii_serialization();
        let host = match (public_url.host_str(), public_url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        Arc::new(Self { origin, host })
    }

    /// Why a state-changing request must be refused, if it must.
    fn cross_site(&self, headers: &HeaderMap) -> Option<&'static str> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            return (origin.as_bytes() != self.origin.as_bytes())
                .then_some("the request came from another site");
        }
        match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            Some(b"cross-site") => Some("the request came from another site"),
            _ => None,
        }
    }

    /// Where a page request should go instead, if its host is not ours.
    fn canonical(&self, request: &Request) -> Option<String> {
        let path = request.uri().path();
        let exempt = [
            "/healthz", "/readyz", "/metrics", "/api/", "/agent/", "/pkg/",
        ];
        if self.host.is_empty()
            || exempt
                .iter()
                .any(|p| path == p.trim_end_matches('/') || path.starts_with(p))
        {
            return None;
        }
        let host = request.headers().get(header::HOST)?.to_str().ok()?;
        if host.eq_ignore_ascii_case(&self.host) {
            return None;
        }
        let rest = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        Some(format!("{}{rest}", self.origin))
    }
}

pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    // A WebSocket opens with a GET but then carries keystrokes into a
    // shell: it gets the cross-site check too.
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let safe = !upgrade
        && matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
    if safe {
        if let Some(to) = guard.canonical(&request) {
            return Redirect::permanent(&to).into_response();
        }
    } else if let Some(reason) = guard.cross_site(request.headers()) {
        tracing::warn!(path = %request.uri().path(), origin = ?request.headers().get(header::ORIGIN), "refused cross-site request");
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "error": { "code": "cross_site", "message": format!("refused: {reason}") } })),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn guard() -> Arc<Guard> {
        Guard::new(&Url::parse("http://localhost:3000").unwrap())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn foreign_origins_are_cross_site() {
        let g = guard();
        assert!(
            g.cross_site(&headers(&[("origin", "http://localhost:3000")]))
                .is_none()
        );
        assert!(
            g.cross_site(&headers(&[("origin", "https://evil.example")]))
                .is_some()
        );
        assert!(
            g.cross_site(&headers(&[("origin", "http://localhost:3001")]))
                .is_some()
        );
        assert!(g.cross_site(&headers(&[("origin", "null")])).is_some());
        assert!(
            g.cross_site(&headers(&[("sec-fetch-site", "cross-site")]))
                .is_some()
        );
        assert!(
            g.cross_site(&headers(&[("sec-fetch-site", "same-origin")]))
                .is_none()
        );
        // Non-browser clients (curl, API automation) send neither.
        assert!(g.cross_site(&headers(&[])).is_none());
    }

    #[test]
    fn pages_under_other_hosts_redirect_but_probes_do_not() {
        let g = guard();
        let req = |path: &str, host: &'static str| {
            Request::builder()
                .uri(path)
                .header(header::HOST, host)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(
            g.canonical(&req("/orgs?page=2", "127.0.0.1:3000"))
                .as_deref(),
            Some("http://localhost:3000/orgs?page=2")
        );
        assert_eq!(g.canonical(&req("/", "LOCALHOST:3000")), None);
        assert_eq!(g.canonical(&req("/readyz", "127.0.0.1:3000")), None);
        assert_eq!(g.canonical(&req("/api/v1/organizations", "10.0.0.1")), None);
    }
}
