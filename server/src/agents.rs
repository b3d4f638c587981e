//! Where agents connect: `GET /agent/v1/connect` upgrades to a WebSocket
//! after the bearer token checks out, then frames flow between the agent
//! and [`platform::hosts::hub`]. Also the agent binary downloads that
//! cloud-init and self-updates fetch, and the background work that keeps
//! the hub honest (heartbeat batches, revoked tokens).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use platform::Platform;
use platform::hosts::hub::{Link, Outbound};
use platform::hosts::tokens;
use protocol::agent::{AgentMessage, PROTOCOL_HEADER, PortalMessage};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

/// Agent settings the portal hands out.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub heartbeat_interval: Duration,
    /// The agent binary served to installers when no release is published.
    pub bundled_binary: Option<PathBuf>,
}

#[derive(Clone)]
struct Agents {
    platform: Platform,
    settings: Arc<AgentSettings>,
}

pub fn router(platform: Platform, settings: AgentSettings) -> Router<crate::http::AppState> {
    Router::new()
        .route(protocol::agent::CONNECT_PATH, get(connect))
        .route("/agent/v1/binary", get(latest_binary))
        .route("/agent/v1/releases/{version}", get(release_binary))
        .with_state(Agents {
            platform,
            settings: Arc::new(settings),
        })
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

async fn connect(
    State(agents): State<Agents>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    // Checked after authentication, so a plain request learns nothing.
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let version = headers
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if version != Some(protocol::AGENT_PROTOCOL_VERSION) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "this portal speaks agent protocol {}; update the agent",
                protocol::AGENT_PROTOCOL_VERSION
            ),
        );
    }
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refuse(StatusCode::UNAUTHORIZED, "missing agent token");
    };
    let identity = match tokens::authenticate(agents.platform.db(), token, Some(addr.ip())).await {
        Ok(identity) => identity,
        Err(platform::Error::Throttled { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "too many wrong agent tokens from this address\n",
            )
                .into_response();
        }
        Err(platform::Error::Unauthenticated) => {
            tracing::warn!(%addr, "agent presented an unknown or revoked token");
            return refuse(StatusCode::UNAUTHORIZED, "unknown or revoked agent token");
        }
        Err(e) => {
            tracing::error!(error = %e, "agent authentication failed");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // Thousands of mostly idle agents stay connected per process; tungstenite's
    // default 128 KiB read buffer per socket would dominate the portal's memory
    // (about 1.3 GiB at 10,000 agents). Agent messages are small, so a 4 KiB
    // buffer that grows for the occasional large frame is enough.
    upgrade
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(1 << 20)
        .on_upgrade(move |socket| {
            let link = agents.platform.hub().connect(identity.host, identity.token);
            serve(agents, socket, link)
        })
}

async fn serve(
    agents: Agents,
    socket: WebSocket,
    (link, mut outbound): (Arc<Link>, tokio::sync::mpsc::Receiver<Outbound>),
) {
    let hub = agents.platform.hub();
    tracing::info!(host = %link.host, "agent connected");
    let (mut sink, mut stream) = socket.split();
    let welcome = serde_json::to_string(&PortalMessage::Welcome {
        heartbeat_interval_secs: agents.settings.heartbeat_interval.as_secs().max(1),
    })
    .unwrap_or_default();
    let closed = link.closed().clone();
    let writer = async {
        if sink.send(Message::Text(welcome.into())).await.is_err() {
            return;
        }
        loop {
            let frame = tokio::select! {
                () = closed.cancelled() => break,
                frame = outbound.recv() => frame,
            };
            let message = match frame {
                Some(Outbound::Text(text)) => Message::Text(text.into()),
                Some(Outbound::Binary(bytes)) => Message::Binary(bytes.into()),
                None => break,
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let silence = agents.settings.heartbeat_interval * 3;
    let reader = async {
        loop {
            let next = tokio::select! {
                () = closed.cancelled() => break,
                next = tokio::time::timeout(silence, stream.next()) => next,
            };
            let message = match next {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(_)) | None) => break,
                Err(_) => {
                    tracing::warn!(host = %link.host, "agent silent for three heartbeat intervals; dropping it");
                    break;
                }
            };
            match message {
                Message::Text(text) => match serde_json::from_str::<AgentMessage>(text.as_str()) {
                    Ok(message) => hub.received(&link, message).await,
                    Err(e) => {
                        tracing::warn!(host = %link.host, error = %e, "unreadable agent message")
                    }
                },
                Message::Binary(bytes) => hub.received_binary(&link, &bytes).await,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        closed.cancel();
    };
    tokio::join!(writer, reader);
    hub.disconnect(&link);
    tracing::info!(host = %link.host, "agent disconnected");
}

fn binary_response(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"loopback-agent\"",
            ),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// The newest published agent, else the one this portal was built with.
async fn latest_binary(State(agents): State<Agents>) -> Response {
    match platform::hosts::releases::latest(agents.platform.db()).await {
        Ok(Some((_, binary))) => return binary_response(binary),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "reading the agent release failed");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    }
    let Some(path) = &agents.settings.bundled_binary else {
        return refuse(StatusCode::NOT_FOUND, "no agent release is published");
    };
    match tokio::fs::read(path).await {
        Ok(bytes) => binary_response(bytes),
        Err(_) => refuse(StatusCode::NOT_FOUND, "no agent release is published"),
    }
}

async fn release_binary(State(agents): State<Agents>, Path(version): Path<String>) -> Response {
    match platform::hosts::releases::binary(agents.platform.db(), &version).await {
        Ok(Some(binary)) => binary_response(binary),
        Ok(None) => refuse(StatusCode::NOT_FOUND, "no such agent release"),
        Err(e) => {
            tracing::error!(error = %e, "reading the agent release failed");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}

/// Keeps the hub and the database in step: heartbeats are written every
/// two seconds; a revoked token's agent is cut off as soon as the NOTIFY
/// arrives, and every ten seconds the connected tokens are checked again
/// in case a notification was missed.
pub fn spawn_upkeep(platform: Platform, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener = match PgListener::connect_with(platform.db()).await {
            Ok(mut l) => match l.listen(tokens::REVOKED_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for revoked agent tokens; checking every 10 s instead");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for revoked agent tokens; checking every 10 s instead");
                None
            }
        };
        let mut flush = tokio::time::interval(Duration::from_secs(2));
        let mut recheck = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = flush.tick() => {
                    if let Err(e) = platform.hub().flush(platform.db()).await {
                        tracing::warn!(error = %e, "writing agent heartbeats failed");
                    }
                }
                _ = recheck.tick() => {
                    let connected = platform.hub().tokens();
                    match tokens::invalid_among(platform.db(), &connected).await {
                        Ok(invalid) if !invalid.is_empty() => {
                            let closed = platform.hub().revoke(&invalid);
                            tracing::info!(closed, "disconnected agents whose token was revoked");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "checking agent tokens failed"),
                    }
                }
                notification = recv(&mut listener) => {
                    if let Some(token) = notification.and_then(|p| p.parse().ok()) {
                        let closed = platform.hub().revoke(&[token]);
                        if closed > 0 {
                            tracing::info!(%token, "agent token revoked; disconnected its agent");
                        }
                    }
                }
            }
        }
        // Last heartbeats, and offline marks for this process's agents.
        let _ = platform.hub().flush(platform.db()).await;
    })
}

async fn recv(listener: &mut Option<PgListener>) -> Option<String> {
    match listener {
        Some(l) => match l.recv().await {
            Ok(n) => Some(n.payload().to_string()),
            Err(e) => {
                tracing::warn!(error = %e, "lost the revoked-token listener");
                *listener = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}
