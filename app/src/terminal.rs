//! The in-browser terminal: the project's own `wasm-bindgen` bindings for
//! xterm.js ([`xterm`]) and the client that relays it to a host's shell over
//! the portal's attach WebSocket ([`client`]).
//!
//! Only the browser runs a terminal. On the server (`ssr`) the same API
//! exists so the shell page compiles and renders, but it does nothing: the
//! page's effects, which start the terminal, never run there.
//!
//! The assets come from npm `@xterm/xterm`: `scripts/setup` copies
//! `lib/xterm.js` (UMD build, global `Terminal`) and `css/xterm.css` into
//! `public/vendor/xterm/`, which cargo-leptos copies into the site.

use leptos::html::Div;
use leptos::prelude::*;
use protocol::ids::HostId;

use crate::error::AppError;

#[cfg(feature = "hydrate")]
mod client;
#[cfg(feature = "hydrate")]
mod xterm;

/// Where the site serves xterm.js's UMD build.
pub const XTERM_JS: &str = "/vendor/xterm/xterm.js";
/// Where the site serves xterm.js's stylesheet.
pub const XTERM_CSS: &str = "/vendor/xterm/xterm.css";
/// Element ids of the `<script>` and `<link>` loading them, so the client
/// can tell whether they are on the page.
pub const XTERM_JS_ID: &str = "xterm-js";
pub const XTERM_CSS_ID: &str = "xterm-css";

/// Where a shell page stands. Only the browser's client moves it past
/// `Opening`.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// Asking the portal for a session (or finding this tab's session).
    #[default]
    Opening,
    /// No session: the portal refused (its message) or the terminal could
    /// not load.
    Failed(String),
    /// The WebSocket is being opened.
    Connecting,
    /// The shell runs; `reattached` when it is a session that ran before.
    Connected { reattached: bool },
    /// The link dropped; reconnecting to the same session with backoff.
    Reconnecting,
    /// "Close session" was pressed; waiting for the portal to confirm.
    Closing,
    /// The session is over; nothing reconnects.
    Ended {
        reason: String,
        exit_code: Option<i32>,
    },
}

impl Phase {
    /// The failure for a server function's error, worded as the other pages
    /// word it.
    pub fn failed(error: &AppError) -> Self {
        Self::Failed(match error {
            AppError::NotFound => "Not found, or you do not have access to it.".into(),
            other => other.to_string(),
        })
    }

    /// The status line shown in the page header.
    pub fn status(&self) -> String {
        match self {
            Self::Opening => "Opening shell…".into(),
            Self::Failed(_) => "Not connected".into(),
            Self::Connecting => "Connecting…".into(),
            Self::Connected { reattached: false } => "Connected".into(),
            Self::Connected { reattached: true } => {
                "Connected · Reattached to your running session".into()
            }
            Self::Reconnecting => "Disconnected — reconnecting…".into(),
            Self::Closing => "Closing session…".into(),
            Self::Ended { reason, exit_code } => match exit_code {
                Some(code) => format!("Session ended: {reason} (exit code {code})"),
                None => format!("Session ended: {reason}"),
            },
        }
    }

    /// Whether a session is open or being reopened (so it can be closed).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Self::Connecting | Self::Connected { .. } | Self::Reconnecting
        )
    }
}

/// The signals a running terminal reports into.
#[derive(Debug, Clone, Copy)]
pub struct ShellUi {
    pub phase: RwSignal<Phase>,
    /// From the session's [`protocol::views::ShellStart`].
    pub hostname: RwSignal<Option<String>>,
    /// The last [`protocol::agent::TerminalEvent::Error`], until the shell is
    /// ready again.
    pub error: RwSignal<Option<String>>,
}

impl ShellUi {
    pub fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Opening),
            hostname: RwSignal::new(None),
            error: RwSignal::new(None),
        }
    }
}

impl Default for ShellUi {
    fn default() -> Self {
        Self::new()
    }
}

/// A running terminal. Clones share it; [`ShellHandle::stop`] ends this
/// page's part (the shell on the host keeps running and can be reattached).
#[derive(Clone)]
pub struct ShellHandle {
    #[cfg(feature = "hydrate")]
    inner: send_wrapper::SendWrapper<std::rc::Rc<client::Shell>>,
}

impl ShellHandle {
    /// Ends the session on the host (`TerminalControl::Close`).
    pub fn close(&self) {
        #[cfg(feature = "hydrate")]
        client::Shell::close(&self.inner);
    }

    /// Gives the terminal the keyboard.
    pub fn focus(&self) {
        #[cfg(feature = "hydrate")]
        self.inner.focus();
    }

    /// Leaves: closes the WebSocket (the server detaches, the shell keeps
    /// running) and disposes of the terminal.
    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        self.inner.stop();
    }
}

/// Opens (or reattaches to) this tab's shell on `host` in `container`: finds
/// the session in `sessionStorage` or starts one with
/// [`crate::api::hosts::start_shell`], waits for xterm.js, mounts the
/// terminal and connects. Call it from an effect: on the server it does
/// nothing.
pub fn open_shell(host: HostId, container: NodeRef<Div>, ui: ShellUi) -> ShellHandle {
    #[cfg(feature = "hydrate")]
    {
        ShellHandle {
            inner: send_wrapper::SendWrapper::new(client::Shell::spawn(host, container, ui)),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (host, container, ui);
        ShellHandle {}
    }
}

/// Forgets this tab's session on `host`, so the next [`open_shell`] starts a
/// new one.
pub fn forget_session(host: HostId) {
    #[cfg(feature = "hydrate")]
    client::forget_start(host);
    #[cfg(not(feature = "hydrate"))]
    let _ = host;
}

/// The `sessionStorage` key holding this tab's [`protocol::views::ShellStart`]
/// for `host` as JSON.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn storage_key(host: HostId) -> String {
    format!("loopback.shell.{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_what_happens() {
        assert_eq!(Phase::Opening.status(), "Opening shell…");
        assert_eq!(
            Phase::Connected { reattached: true }.status(),
            "Connected · Reattached to your running session"
        );
        assert_eq!(
            Phase::Ended {
                reason: "exited".into(),
                exit_code: Some(3)
            }
            .status(),
            "Session ended: exited (exit code 3)"
        );
        assert!(Phase::Reconnecting.status().starts_with("Disconnected"));
        assert!(Phase::Reconnecting.is_live());
        assert!(!Phase::Closing.is_live());
    }
}
