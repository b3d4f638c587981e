//! The browser's side of a shell: `GET /api/v1/hosts/{host}/shell/{session}/attach`
//! upgrades to a WebSocket for a signed-in account holding `host.shell` and
//! the session's reconnection token. Keystrokes and output pass through as
//! binary frames; resize and close are JSON text frames. Dropping the socket
//! only detaches: the shell keeps running and a later attach replays what it
//! printed meanwhile.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use platform::Platform;
use platform::hosts::hub::{HubError, ShellEvent};
use platform::hosts::shell;
use protocol::agent::{ShellEnd, TerminalControl, TerminalEvent};
use protocol::ids::{HostId, ShellSessionId};
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Clone)]
struct Shells {
    platform: Platform,
    idle_timeout: Duration,
}

pub fn router(platform: Platform, idle_timeout: Duration) -> Router<crate::http::AppState> {
    Router::new()
        .route("/api/v1/hosts/{host}/shell/{session}/attach", get(attach))
        .with_state(Shells {
            platform,
            idle_timeout,
        })
}

#[derive(Deserialize)]
struct AttachQuery {
    token: String,
    #[serde(default = "default_cols")]
    cols: u16,
    #[serde(default = "default_rows")]
    rows: u16,
}

fn default_cols() -> u16 {
    80
}

fn default_rows() -> u16 {
    24
}

async fn attach(
    State(shells): State<Shells>,
    Path((host, session)): Path<(HostId, ShellSessionId)>,
    Query(query): Query<AttachQuery>,
    session_cookie: Session,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    // Checked after authentication, so a plain request learns nothing.
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let actor = match crate::live::actor(&shells.platform, &session_cookie, addr, &headers).await {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    if let Err(e) =
        shell::authorize_attach(shells.platform.db(), &actor, host, session, &query.token).await
    {
        return crate::api::ApiError(e).into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let cols = query.cols.clamp(10, 1000);
    let rows = query.rows.clamp(5, 500);
    upgrade.on_upgrade(move |socket| relay(shells, socket, host, session, cols, rows))
}

fn event(event: &TerminalEvent) -> Message {
    Message::Text(serde_json::to_string(event).unwrap_or_default().into())
}

async fn relay(
    shells: Shells,
    mut socket: WebSocket,
    host: HostId,
    session: ShellSessionId,
    cols: u16,
    rows: u16,
) {
    let db = shells.platform.db().clone();
    let mut link = match shells
        .platform
        .hub()
        .attach_shell(host, session, cols, rows, shells.idle_timeout)
        .await
    {
        Ok(link) => link,
        Err(e) => {
            let message = match e {
                HubError::Offline => {
                    "the host's agent is not connected; try again when it is online".to_string()
                }
                other => other.to_string(),
            };
            let _ = socket.send(event(&TerminalEvent::Error { message })).await;
            let _ = socket.close().await;
            return;
        }
    };
    let _ = shell::attached(&db, session).await;
    let (mut sink, mut stream) = socket.split();
    let mut bytes_in: u64 = 0;
    let mut bytes_out: u64 = 0;
    let agent_closed = link.agent_closed().clone();
    // How the session ended, when it did.
    let mut end: Option<(ShellEnd, Option<i32>)> = None;
    loop {
        tokio::select! {
            () = agent_closed.cancelled() => {
                let _ = sink.send(event(&TerminalEvent::Error {
                    message: "the host's agent disconnected; reconnecting when it is back".into(),
                })).await;
                break;
            }
            from_agent = link.next() => match from_agent {
                Some(ShellEvent::Output(bytes)) => {
                    bytes_out += bytes.len() as u64;
                    if sink.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                Some(ShellEvent::Ready { reattached }) => {
                    if sink.send(event(&TerminalEvent::Ready { reattached })).await.is_err() {
                        break;
                    }
                }
                Some(ShellEvent::Closed { exit_code, reason }) => {
                    let label = match reason {
                        ShellEnd::Exited => "the shell exited",
                        ShellEnd::Closed => "the session was closed",
                        ShellEnd::Idle => "the session was idle for too long",
                    };
                    let _ = sink.send(event(&TerminalEvent::Ended { reason: label.into(), exit_code })).await;
                    end = Some((reason, exit_code));
                    break;
                }
                Some(ShellEvent::Failed(message)) => {
                    let _ = sink.send(event(&TerminalEvent::Error { message: format!("the shell could not start: {message}") })).await;
                    end = Some((ShellEnd::Exited, None));
                    break;
                }
                None => {
                    // The agent's link is gone or another tab took over.
                    let _ = sink.send(event(&TerminalEvent::Error {
                        message: "this session was attached elsewhere or the agent went away".into(),
                    })).await;
                    break;
                }
            },
            from_browser = stream.next() => match from_browser {
                Some(Ok(Message::Binary(bytes))) => {
                    bytes_in += bytes.len() as u64;
                    if link.input(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<TerminalControl>(text.as_str()) {
                    Ok(TerminalControl::Resize { cols, rows }) => {
                        let _ = link.resize(cols.clamp(10, 1000), rows.clamp(5, 500)).await;
                    }
                    Ok(TerminalControl::Close) => {
                        let _ = link.close().await;
                    }
                    Err(_) => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink.close().await;
    match end {
        Some((reason, exit_code)) => {
            if let Err(e) =
                shell::ended(&db, session, reason, exit_code, (bytes_in, bytes_out)).await
            {
                tracing::warn!(error = %e, %session, "recording the end of a shell session failed");
            }
        }
        None => {
            if let Err(e) = shell::detached(&db, session, bytes_in, bytes_out).await {
                tracing::warn!(error = %e, %session, "recording a shell detach failed");
            }
        }
    }
    // Dropping the link detaches (the agent keeps the shell running).
    drop(link);
}
