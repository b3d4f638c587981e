//! The in-browser terminal for a host: `/hosts/:host/shell`.
//!
//! The server renders the frame (header, status "Opening shell…", the dark
//! terminal area); in the browser an effect finds this tab's session in
//! `sessionStorage` (`loopback.shell.<host>`) or starts one, and
//! [`crate::terminal`] runs xterm.js over the attach WebSocket.

use leptos::html::Div;
use leptos::prelude::*;
use leptos_meta::{Script, Stylesheet, Title};
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use protocol::ids::HostId;

use crate::components::*;
use crate::error::AppError;
use crate::terminal::{self, Phase, ShellHandle, ShellUi};

#[component]
pub fn ShellPage() -> impl IntoView {
    let params = use_params_map();
    let raw_host = move || params.read().get("host").unwrap_or_default();
    let host = Signal::derive(move || raw_host().parse::<HostId>().ok());
    let ui = ShellUi::new();
    let container = NodeRef::<Div>::new();
    let handle = StoredValue::new(None::<ShellHandle>);
    // Bumped by "Start a new session": the effect runs again.
    let attempt = RwSignal::new(0u32);

    // Effects run in the browser only, after hydration.
    Effect::new(move |_| {
        attempt.track();
        let Some(host) = host.get() else {
            ui.phase.set(Phase::failed(&AppError::NotFound));
            return;
        };
        let shell = terminal::open_shell(host, container, ui);
        handle.set_value(Some(shell.clone()));
        on_cleanup(move || shell.stop());
    });

    let new_session = move || {
        if let Some(host) = host.get_untracked() {
            terminal::forget_session(host);
        }
        ui.phase.set(Phase::Opening);
        ui.error.set(None);
        attempt.update(|n| *n += 1);
    };
    let close = move || handle.with_value(|h| h.as_ref().map(ShellHandle::close));
    let focus = move |_| {
        handle.with_value(|h| h.as_ref().map(ShellHandle::focus));
    };

    let phase = move || ui.phase.get();
    let title = move || match ui.hostname.get() {
        Some(name) => format!("Shell on {name}"),
        None => "Shell".to_string(),
    };
    let dot = move || match phase() {
        Phase::Connected { .. } => "bg-emerald-500",
        Phase::Failed(_) | Phase::Ended { .. } => "bg-rose-500",
        Phase::Reconnecting | Phase::Closing => "bg-amber-500",
        Phase::Opening | Phase::Connecting => "bg-slate-400",
    };
    let failure = move || match phase() {
        Phase::Failed(error) => Some(error),
        _ => None,
    };

    view! {
        <Title text=title />
        <Stylesheet id=terminal::XTERM_CSS_ID href=terminal::XTERM_CSS />
        <Script id=terminal::XTERM_JS_ID src=terminal::XTERM_JS />
        <SignedIn>
            <p class="text-sm text-slate-500">
                <A href=move || format!("/hosts/{}", raw_host()) attr:class=LINK>"← Back to the host"</A>
            </p>
            <PageHeader title=Signal::derive(title)>
                <span class="flex items-center gap-2 text-sm text-slate-700">
                    <span class=move || format!("inline-block h-2.5 w-2.5 rounded-full {}", dot()) aria-hidden="true"></span>
                    <span data-testid="shell-status" role="status" aria-live="polite">{move || phase().status()}</span>
                </span>
                {move || phase().is_live().then(|| view! {
                    <button type="button" class=BUTTON_SECONDARY on:click=move |_| { close(); }>
                        "Close session"
                    </button>
                })}
                {move || {
                    let label = match phase() {
                        Phase::Failed(_) => "Try again",
                        Phase::Ended { .. } | Phase::Reconnecting => "Start a new session",
                        _ => return None,
                    };
                    Some(view! {
                        <button type="button" class=BUTTON on:click=move |_| new_session()>{label}</button>
                    })
                }}
            </PageHeader>
            {move || failure().map(|error| view! {
                <p role="alert" data-testid="shell-failure" class="mb-4 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{error}</p>
            })}
            {move || ui.error.get().map(|message| view! {
                <p role="alert" data-testid="shell-error" class="mb-4 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{message}</p>
            })}
            {move || matches!(phase(), Phase::Reconnecting).then(|| view! {
                <p class="mb-4 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
                    "The connection to the host dropped. Your shell keeps running there; this page reconnects to it by itself."
                </p>
            })}
            {move || match phase() {
                Phase::Ended { .. } => Some(view! {
                    <p class="mb-4 rounded-md border border-slate-200 bg-white p-3 text-sm text-slate-700">
                        "This shell session is over. Its last output stays below; start a new session to keep working."
                    </p>
                }),
                _ => None,
            }}
            // Hidden, not removed, on failure: xterm.js mounts into it.
            <div class:hidden=move || matches!(phase(), Phase::Failed(_))>
                <div
                    data-testid="terminal"
                    class="h-[70vh] min-h-64 overflow-hidden rounded-lg bg-slate-950 p-2 shadow-inner ring-1 ring-slate-800"
                    on:click=focus
                >
                    <div node_ref=container class="relative h-full w-full overflow-hidden"></div>
                </div>
                <p class="mt-2 text-xs text-slate-500">
                    "Ctrl-C goes to the shell. To copy, select text and use the right-click menu; paste with your browser's paste shortcut. The session keeps running if you reload this page or lose the connection."
                </p>
            </div>
        </SignedIn>
    }
}
