//! `/setup?token=…`: the one-time link that makes the first operator.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::error::AppError;

#[server]
pub async fn check_setup_link(token: String) -> Result<String, AppError> {
    use platform::setup::{SetupError, check};
    use time::format_description::well_known::Rfc3339;

    let platform = crate::server::platform()?;
    match check(platform.db(), &token).await {
        Ok(grant) => grant
            .expires_at
            .format(&Rfc3339)
            .map_err(AppError::internal),
        Err(SetupError::Database) => Err(AppError::internal("setup link check failed")),
        Err(e) => Err(AppError::invalid("token", e.to_string())),
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let link = Resource::new(token, check_setup_link);

    view! {
        <Title text="Set up Loopback" />
        <div class="mx-auto max-w-md space-y-4">
            <h1 class="text-2xl font-semibold tracking-tight">"Set up Loopback"</h1>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Checking your setup link…"</p> }>
                {move || {
                    link.get()
                        .map(|result| match result {
                            Ok(expires_at) => {
                                view! {
                                    <div class="rounded-lg border border-emerald-200 bg-emerald-50 p-4 text-sm text-emerald-900">
                                        <p class="font-medium">"This setup link is valid."</p>
                                        <p class="mt-1">"It expires at " {expires_at} "."</p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(AppError::Invalid { message, .. }) => {
                                view! {
                                    <p role="alert" class="rounded-lg border border-rose-200 bg-rose-50 p-4 text-sm text-rose-800">{message}</p>
                                }
                                    .into_any()
                            }
                            Err(e) => {
                                view! {
                                    <p role="alert" class="rounded-lg border border-rose-200 bg-rose-50 p-4 text-sm text-rose-800">{e.to_string()}</p>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Suspense>
        </div>
    }
}
