//! Building blocks shared by pages.

mod charts;
mod confirm;
mod forms;
mod pager;
mod session;

pub use charts::{LatencyChart, Sparkline, StateTimeline};
pub use confirm::ConfirmButton;
pub use forms::{Button, Field, FormError, Notice, Submit, error_of, field_error, use_live};
pub use pager::{Pager, page_from_query};
pub use session::{SignedIn, provide_me, use_me};

use leptos::prelude::*;

/// The heading block every page starts with.
#[component]
pub fn PageHeader(
    #[prop(into)] title: Signal<String>,
    #[prop(optional, into)] intro: Option<Signal<String>>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="mb-6 flex flex-wrap items-start justify-between gap-4">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                {intro.map(|i| view! { <p class="mt-1 max-w-2xl text-sm text-slate-600">{i}</p> })}
            </div>
            {children.map(|c| view! { <div class="flex items-center gap-2">{c()}</div> })}
        </div>
    }
}

/// A white card with an optional heading.
#[component]
pub fn Card(
    #[prop(optional, into)] title: Option<String>,
    #[prop(optional, into)] id: Option<String>,
    children: Children,
) -> impl IntoView {
    let heading_id = id.clone().map(|i| format!("{i}-heading"));
    let labelled_by = heading_id.clone();
    view! {
        <section id=id aria-labelledby=labelled_by class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
            {title.map(|t| view! { <h2 id=heading_id class="mb-4 text-base font-semibold">{t}</h2> })}
            {children()}
        </section>
    }
}

/// What a list shows when it has nothing in it.
#[component]
pub fn Empty(
    #[prop(into)] text: String,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    view! {
        <div class="rounded-lg border border-dashed border-slate-300 px-6 py-10 text-center">
            <p class="text-sm font-medium text-slate-900">{text}</p>
            {hint.map(|h| view! { <p class="mt-1 text-sm text-slate-500">{h}</p> })}
        </div>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="text-sm text-slate-500" role="status">"Loading…"</p> }
}

/// A small coloured label.
#[component]
pub fn Badge(#[prop(into)] text: String, #[prop(optional)] tone: Tone) -> impl IntoView {
    let class = match tone {
        Tone::Neutral => "bg-slate-100 text-slate-700",
        Tone::Good => "bg-emerald-100 text-emerald-800",
        Tone::Warn => "bg-amber-100 text-amber-800",
        Tone::Bad => "bg-rose-100 text-rose-800",
    };
    view! { <span class=format!("inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium {class}")>{text}</span> }
}

/// Whether a catalog entry is offered.
#[component]
pub fn ActiveBadge(active: bool) -> impl IntoView {
    view! {
        <Badge text=if active { "active" } else { "inactive" } tone=if active { Tone::Good } else { Tone::Neutral } />
    }
}

/// Switches a catalog entry on or off; `on_toggle` gets the new state.
#[component]
pub fn ActiveToggle(
    #[prop(into)] name: String,
    active: bool,
    on_toggle: impl Fn(bool) + Send + Sync + 'static,
) -> impl IntoView {
    let verb = if active { "Deactivate" } else { "Activate" };
    view! {
        <Button class=BUTTON_SECONDARY aria_label=format!("{verb} {name}") on_click=move || on_toggle(!active)>
            {verb}
        </Button>
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tone {
    #[default]
    Neutral,
    Good,
    Warn,
    Bad,
}

pub fn verification_tone(v: protocol::views::Verification) -> Tone {
    match v {
        protocol::views::Verification::Verified => Tone::Good,
        protocol::views::Verification::Pending => Tone::Warn,
        protocol::views::Verification::Rejected => Tone::Bad,
    }
}

/// Shows an error from a resource in place of its content.
#[component]
pub fn ErrorText(error: crate::error::AppError) -> impl IntoView {
    let text = match &error {
        crate::error::AppError::NotFound => {
            "Not found, or you do not have access to it.".to_string()
        }
        other => other.to_string(),
    };
    view! { <p role="alert" class="rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{text}</p> }
}

pub const BUTTON: &str = "inline-flex items-center justify-center rounded-md bg-sky-600 px-3 py-2 text-sm font-semibold text-white shadow-sm hover:bg-sky-500 focus:outline-none focus:ring-2 focus:ring-sky-400 focus:ring-offset-1 disabled:cursor-not-allowed disabled:opacity-50";
pub const BUTTON_SECONDARY: &str = "inline-flex items-center justify-center rounded-md border border-slate-300 bg-white px-3 py-2 text-sm font-medium text-slate-800 shadow-sm hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-sky-400 disabled:cursor-not-allowed disabled:opacity-50";
pub const BUTTON_DANGER: &str = "inline-flex items-center justify-center rounded-md bg-rose-600 px-3 py-2 text-sm font-semibold text-white shadow-sm hover:bg-rose-500 focus:outline-none focus:ring-2 focus:ring-rose-400 disabled:opacity-50";
pub const LINK: &str = "font-medium text-sky-700 hover:text-sky-600 hover:underline";
pub const INPUT: &str = "block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm placeholder:text-slate-400 focus:border-sky-500 focus:outline-none focus:ring-1 focus:ring-sky-500 aria-[invalid=true]:border-rose-500";
pub const TABLE: &str = "min-w-full divide-y divide-slate-200 text-sm";
pub const TH: &str =
    "px-3 py-2 text-left text-xs font-semibold uppercase tracking-wide text-slate-500";
pub const TD: &str = "px-3 py-2 align-top";
