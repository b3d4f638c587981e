//! Form pieces: labelled inputs that show their own error, the form-wide
//! error, and a submit button that shows progress.

use leptos::prelude::*;

use super::{BUTTON, INPUT};
use crate::error::AppError;

/// The error of a server action's last answer, if it failed.
pub fn error_of<T, S>(value: S) -> Signal<Option<AppError>>
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    Signal::derive(move || value.get().and_then(Result::err))
}

/// The message under a hand-built input when the last answer's error names
/// `field`.
pub fn field_error(error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        error
            .get()
            .and_then(|e| e.for_field(field))
            .map(|m| view! { <p class="mt-1 text-sm text-rose-700">{m}</p> })
    }
}

/// A labelled input. Its error comes from `error` when the failure names
/// this field (`name`).
#[component]
pub fn Field(
    #[prop(into)] label: String,
    #[prop(into)] name: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional, into)] autocomplete: Option<&'static str>,
    #[prop(optional, into)] placeholder: Option<String>,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(optional, into)] value: Option<String>,
    #[prop(optional)] required: bool,
    #[prop(optional)] error: Option<Signal<Option<AppError>>>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let field = name.clone();
    let message = Signal::derive(move || {
        error
            .and_then(|e| e.get())
            .and_then(|e| e.for_field(&field))
    });
    let described_by = {
        let error_id = error_id.clone();
        let hint_id = hint_id.clone();
        let has_hint = hint.is_some();
        move || {
            let mut ids = Vec::new();
            if has_hint {
                ids.push(hint_id.clone());
            }
            if message.get().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div>
            <label for=id.clone() class="block text-sm font-medium text-slate-800">{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                placeholder=placeholder
                value=value
                required=required
                aria-invalid=move || message.get().is_some().to_string()
                aria-describedby=described_by
                class=format!("mt-1 {INPUT}")
            />
            {hint.map(|h| view! { <p id=hint_id class="mt-1 text-xs text-slate-500">{h}</p> })}
            {move || message.get().map(|m| view! { <p id=error_id.clone() class="mt-1 text-sm text-rose-700">{m}</p> })}
        </div>
    }
}

/// The error that belongs to the whole form: anything not about one of
/// `fields`.
#[component]
pub fn FormError(
    error: Signal<Option<AppError>>,
    #[prop(optional)] fields: &'static [&'static str],
) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.general(fields)).map(|m| {
            view! { <p role="alert" class="rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{m}</p> }
        })
    }
}

/// A success message.
#[component]
pub fn Notice(#[prop(into)] text: Signal<Option<String>>) -> impl IntoView {
    move || {
        text.get().map(|t| {
            view! { <p role="status" class="rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-800">{t}</p> }
        })
    }
}

/// True once the component that called it has hydrated: its event handlers
/// are attached. Server-rendered controls start disabled and come alive
/// here, so an early click is never silently lost.
pub fn use_live() -> Signal<bool> {
    let live = RwSignal::new(false);
    Effect::new(move |_| live.set(true));
    live.into()
}

#[component]
pub fn Submit(
    #[prop(into)] label: String,
    #[prop(optional, into)] pending: Signal<bool>,
    #[prop(optional)] class: Option<&'static str>,
    #[prop(optional, into)] aria_label: Option<String>,
) -> impl IntoView {
    let live = use_live();
    let busy = move || pending.get() || !live.get();
    view! {
        <button
            type="submit"
            class=class.unwrap_or(BUTTON)
            aria-label=aria_label
            disabled=busy
            aria-busy=move || pending.get().to_string()
        >
            {move || if pending.get() { "Working…".to_string() } else { label.clone() }}
        </button>
    }
}

/// A button that acts in the page (no form).
#[component]
pub fn Button(
    on_click: impl Fn() + Send + Sync + 'static,
    children: Children,
    #[prop(optional)] class: Option<&'static str>,
    #[prop(optional, into)] disabled: Signal<bool>,
    #[prop(optional, into)] aria_label: Option<String>,
) -> impl IntoView {
    let live = use_live();
    view! {
        <button
            type="button"
            class=class.unwrap_or(BUTTON)
            aria-label=aria_label
            disabled=move || disabled.get() || !live.get()
            on:click=move |_| on_click()
        >
            {children()}
        </button>
    }
}
