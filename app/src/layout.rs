//! The frame around every page: header, navigation, and the error boundary
//! that turns a failing page into a friendly message.

use leptos::prelude::*;
use leptos_router::components::A;

const NAV: [(&str, &str); 4] = [
    ("/organizations", "Organizations"),
    ("/projects", "Projects"),
    ("/workspaces", "Workspaces"),
    ("/admin", "Admin"),
];

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let menu_open = RwSignal::new(false);
    let nav_links = move || {
        NAV.into_iter()
            .map(|(href, label)| {
                view! {
                    <A
                        href=href
                        attr:class="rounded-md px-3 py-2 text-sm font-medium text-slate-300 hover:bg-slate-800 hover:text-white aria-[current=page]:bg-slate-800 aria-[current=page]:text-white"
                        on:click=move |_| menu_open.set(false)
                    >
                        {label}
                    </A>
                }
            })
            .collect_view()
    };

    view! {
        <div class="min-h-full">
            <header class="bg-slate-900">
                <div class="mx-auto flex h-16 max-w-7xl items-center justify-between px-4 sm:px-6 lg:px-8">
                    <div class="flex items-center gap-8">
                        <A href="/" attr:class="flex items-center gap-2 text-lg font-semibold text-white">
                            <span class="inline-block h-6 w-6 rounded-full border-4 border-sky-400"></span>
                            "Loopback"
                        </A>
                        <nav aria-label="Main" class="hidden gap-1 md:flex">{nav_links}</nav>
                    </div>
                    <div class="flex items-center gap-3">
                        <A
                            href="/sign-in"
                            attr:class="hidden rounded-md bg-sky-500 px-3 py-2 text-sm font-semibold text-white hover:bg-sky-400 md:inline-block"
                        >
                            "Sign in"
                        </A>
                        <button
                            type="button"
                            class="rounded-md p-2 text-slate-300 hover:bg-slate-800 hover:text-white md:hidden"
                            aria-controls="mobile-nav"
                            aria-expanded=move || menu_open.get().to_string()
                            on:click=move |_| menu_open.update(|open| *open = !*open)
                        >
                            <span class="sr-only">"Menu"</span>
                            <svg class="h-6 w-6" fill="none" viewBox="0 0 24 24" stroke="currentColor" stroke-width="1.5" aria-hidden="true">
                                <path stroke-linecap="round" stroke-linejoin="round" d="M3.75 6.75h16.5M3.75 12h16.5m-16.5 5.25h16.5" />
                            </svg>
                        </button>
                    </div>
                </div>
                <Show when=move || menu_open.get()>
                    <nav id="mobile-nav" aria-label="Mobile" class="flex flex-col gap-1 border-t border-slate-800 px-4 py-3 md:hidden">
                        {nav_links}
                        <A href="/sign-in" attr:class="rounded-md px-3 py-2 text-sm font-medium text-sky-300 hover:bg-slate-800">
                            "Sign in"
                        </A>
                    </nav>
                </Show>
            </header>
            <main class="mx-auto max-w-7xl px-4 py-8 sm:px-6 lg:px-8">
                <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>{children()}</ErrorBoundary>
            </main>
        </div>
    }
}

/// What a user sees when a page fails: an apology and a way on, never a
/// stack trace. The details go to the log.
#[component]
fn ErrorPanel(errors: ArcRwSignal<Errors>) -> impl IntoView {
    for (_, error) in errors.get_untracked().iter() {
        log_page_error(&error.to_string());
    }
    let messages = move || {
        errors
            .get()
            .into_iter()
            .map(|(_, e)| view! { <li>{e.to_string()}</li> })
            .collect_view()
    };
    view! {
        <section role="alert" class="rounded-lg border border-rose-200 bg-rose-50 p-6">
            <h1 class="text-lg font-semibold text-rose-900">"Something went wrong"</h1>
            <p class="mt-2 text-sm text-rose-800">
                "This page could not be shown. Try again in a moment; if it keeps happening, contact your operator."
            </p>
            <ul class="mt-3 list-disc pl-5 text-sm text-rose-800">{messages}</ul>
            <a href="/" class="mt-4 inline-block text-sm font-semibold text-rose-900 underline">"Back to the start page"</a>
        </section>
    }
}

fn log_page_error(message: &str) {
    #[cfg(feature = "ssr")]
    tracing::error!(error = %message, "page failed to render");
    #[cfg(not(feature = "ssr"))]
    leptos::logging::error!("page failed to render: {message}");
}
