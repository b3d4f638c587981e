//! HTTP listeners: an HTTP/1.1 reverse proxy that picks a target per
//! request over pooled keep-alive connections.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::pool::{Lease, Pool};
use super::{ACCEPT_BACKOFF, CONNECT_TIMEOUT};

/// Request bodies up to this size are read before forwarding so that a
/// request can be replayed on another target; larger or unsized bodies
/// stream and are not retried.
const REPLAYABLE_BODY: u64 = 64 * 1024;
/// Idle upstream keep-alive connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(30);

type UpstreamBody = Either<Full<Bytes>, Incoming>;
type DownstreamBody = Either<Leased, Full<Bytes>>;

/// The pooled connections of one balancer to its targets, shared by its
/// HTTP listeners.
pub(super) type Upstream = Client<HttpConnector, UpstreamBody>;

pub(super) fn upstream() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector)
}

/// What every request of one listener needs.
struct Proxy {
    pool: Arc<Pool>,
    upstream: Upstream,
    target_port: u16,
    stop: CancellationToken,
}

/// Accepts until `stop`; connections (and upgraded tunnels) end with it.
pub(super) async fn serve(
    listener: TcpListener,
    target_port: u16,
    pool: Arc<Pool>,
    upstream: Upstream,
    stop: CancellationToken,
) {
    let proxy = Arc::new(Proxy {
        pool,
        upstream,
        target_port,
        stop: stop.clone(),
    });
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(connection(proxy.clone(), stream, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "load balancer could not accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn connection(proxy: Arc<Proxy>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let stop = proxy.stop.clone();
    let service = hyper::service::service_fn(move |request| {
        let proxy = proxy.clone();
        async move { Ok::<_, Infallible>(forward(&proxy, peer.ip(), request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        // The timer bounds how long a client may take to send its headers.
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        _ = stop.cancelled() => {}
        served = connection => {
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "load balancer HTTP connection ended");
            }
        }
    }
}

/// A request body as far as retrying is concerned.
enum Payload {
    /// Read in full: can be sent again.
    Replayable(Bytes),
    /// Streams through once; `None` once sent.
    Streamed(Option<Incoming>),
}

impl Payload {
    async fn read(body: Incoming, headers: &HeaderMap) -> Result<Self, hyper::Error> {
        if body.is_end_stream() {
            return Ok(Payload::Replayable(Bytes::new()));
        }
        let small = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|length| length <= REPLAYABLE_BODY);
        if small {
            Ok(Payload::Replayable(body.collect().await?.to_bytes()))
        } else {
            Ok(Payload::Streamed(Some(body)))
        }
    }

    /// The body for the next attempt, if there can be one.
    fn attempt(&mut self) -> Option<UpstreamBody> {
        match self {
            Payload::Replayable(bytes) => Some(Either::Left(Full::new(bytes.clone()))),
            Payload::Streamed(body) => body.take().map(Either::Right),
        }
    }
}

async fn forward(
    proxy: &Proxy,
    client: IpAddr,
    mut request: Request<Incoming>,
) -> Response<DownstreamBody> {
    let upgrade = wants_upgrade(request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers, upgrade);
    // This proxy answered any `Expect: 100-continue` itself by reading on.
    headers.remove(header::EXPECT);
    add_forwarded(&mut headers, client);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let method = parts.method;
    let mut payload = match Payload::read(body, &headers).await {
        Ok(payload) => payload,
        Err(e) => {
            tracing::debug!(%client, error = %e, "load balancer could not read a request body");
            return plain(StatusCode::BAD_REQUEST, "could not read the request body\n");
        }
    };

    let mut avoid = None;
    loop {
        let Some(lease) = proxy.pool.pick(avoid) else {
            return match avoid {
                None => plain(StatusCode::SERVICE_UNAVAILABLE, "no healthy target\n"),
                Some(_) => plain(StatusCode::BAD_GATEWAY, "the target did not answer\n"),
            };
        };
        let Some(body) = payload.attempt() else {
            return plain(StatusCode::BAD_GATEWAY, "the target did not answer\n");
        };
        let at = SocketAddr::new(lease.address(), proxy.target_port);
        let upstream = match upstream_request(&method, at, &path, &headers, body) {
            Ok(upstream) => upstream,
            Err(e) => {
                tracing::debug!(%client, error = %e, "load balancer could not build a request");
                return plain(StatusCode::BAD_REQUEST, "bad request\n");
            }
        };
        match proxy.upstream.request(upstream).await {
            Ok(response) => return respond(response, lease, client_upgrade, &proxy.stop),
            Err(e) => {
                // No byte of an answer has reached the client, so one retry
                // elsewhere is invisible to it: always when the target was
                // never reached, otherwise only when repeating the request is
                // harmless.
                let retry = avoid.is_none()
                    && matches!(payload, Payload::Replayable(_))
                    && (e.is_connect() || idempotent(&method));
                tracing::debug!(target = %at, error = %e, retry, "load balancer target failed a request");
                if !retry {
                    return plain(StatusCode::BAD_GATEWAY, "the target did not answer\n");
                }
                avoid = Some(lease.address());
            }
        }
    }
}

fn upstream_request(
    method: &Method,
    at: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: UpstreamBody,
) -> Result<Request<UpstreamBody>, hyper::http::Error> {
    let uri = Uri::builder()
        .scheme("http")
        .authority(at.to_string())
        .path_and_query(path)
        .build()?;
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    // Upstream connections are always HTTP/1.1 keep-alive, whatever the
    // client spoke.
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers.clone();
    Ok(request)
}

fn respond(
    mut response: Response<Incoming>,
    lease: Lease,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    stop: &CancellationToken,
) -> Response<DownstreamBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(tunnel(
            client_upgrade,
            upstream_upgrade,
            lease,
            stop.clone(),
        ));
        // The 101 keeps its Connection and Upgrade headers.
        return response.map(|_| Either::Right(Full::new(Bytes::new())));
    }
    strip_hop_by_hop(response.headers_mut(), false);
    response.map(|body| {
        Either::Left(Leased {
            body,
            _lease: lease,
        })
    })
}

/// Relays an upgraded connection (WebSocket and the like) both ways.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    lease: Lease,
    stop: CancellationToken,
) {
    let relay = async {
        let (client, upstream) = tokio::try_join!(client, upstream)?;
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        // Either side hanging up ends the tunnel; that is not an error.
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        Ok::<(), hyper::Error>(())
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        relayed = relay => {
            if let Err(e) = relayed {
                tracing::debug!(target = %lease.address(), error = %e, "load balancer upgrade failed");
            }
        }
    }
}

/// A response body that keeps its target counted as busy until the client
/// has it all (or goes away).
pub(super) struct Leased {
    body: Incoming,
    _lease: Lease,
}

impl Body for Leased {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<DownstreamBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether the request asks to switch protocols (`Connection: upgrade`).
fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the headers that describe one connection rather than the message
/// (RFC 9110 section 7.6.1), keeping `Connection: upgrade` and `Upgrade` when
/// an upgrade is being passed through.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let upgrade = headers.get(header::UPGRADE).cloned();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if let (true, Some(upgrade)) = (keep_upgrade, upgrade) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// `X-Forwarded-For` (appended to what earlier proxies said) and
/// `X-Forwarded-Proto`.
fn add_forwarded(headers: &mut HeaderMap, client: IpAddr) {
    const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    let earlier: Vec<&str> = headers
        .get_all(&FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client = client.to_canonical().to_string();
    let chain = if earlier.is_empty() {
        client.clone()
    } else {
        format!("{}, {client}", earlier.join(", "))
    };
    let value = HeaderValue::from_str(&chain)
        .or_else(|_| HeaderValue::from_str(&client))
        .ok();
    headers.remove(&FORWARDED_FOR);
    if let Some(value) = value {
        headers.insert(FORWARDED_FOR, value);
    }
    headers.insert(FORWARDED_PROTO, HeaderValue::from_static("http"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("example.test"));
        strip_hop_by_hop(&mut headers, false);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::HOST));
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&headers));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers[header::CONNECTION], "upgrade");
        assert_eq!(headers[header::UPGRADE], "websocket");
    }

    #[test]
    fn forwarded_for_appends_to_earlier_proxies() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        add_forwarded(&mut headers, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            headers["x-forwarded-for"],
            "203.0.113.7, 198.51.100.2, 127.0.0.1"
        );
        assert_eq!(headers["x-forwarded-proto"], "http");
    }
}
