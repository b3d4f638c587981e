//! A destructive action that asks first: the first press reveals a
//! confirmation with the consequences spelled out; only the second acts.

use std::sync::Arc;

use leptos::prelude::*;

use super::{BUTTON_DANGER, BUTTON_SECONDARY};

#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    #[prop(into)] confirm_label: String,
    on_confirm: impl Fn() + Send + Sync + 'static,
    #[prop(optional, into)] pending: Signal<bool>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let on_confirm = Arc::new(on_confirm);
    let live = super::forms::use_live();
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                let label = label.clone();
                view! {
                    <button type="button" class=BUTTON_SECONDARY disabled=move || !live.get() on:click=move |_| asking.set(true)>{label}</button>
                }
            }
        >
            <div role="alertdialog" aria-label=question.clone() class="inline-flex flex-wrap items-center gap-2 rounded-md border border-rose-200 bg-rose-50 p-2">
                <span class="text-sm text-rose-900">{question.clone()}</span>
                <button
                    type="button"
                    class=BUTTON_DANGER
                    disabled=move || pending.get()
                    on:click={
                        let on_confirm = on_confirm.clone();
                        move |_| {
                            on_confirm();
                            asking.set(false);
                        }
                    }
                >
                    {confirm_label.clone()}
                </button>
                <button type="button" class=BUTTON_SECONDARY on:click=move |_| asking.set(false)>"Cancel"</button>
            </div>
        </Show>
    }
}
