use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SignInPage() -> impl IntoView {
    view! {
        <Title text="Sign in" />
        <div class="mx-auto max-w-sm">
            <h1 class="text-2xl font-semibold tracking-tight">"Sign in"</h1>
            <p class="mt-2 text-sm text-slate-600">
                "Accounts are not available in this build yet. Operators set up the first account with the one-time link the portal prints when it starts."
            </p>
        </div>
    }
}
