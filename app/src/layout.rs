//! The frame around every page: header, navigation that knows who is signed
//! in, and the error boundary that turns a failing page into a friendly
//! message.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::auth::{Me, SignOut};
use crate::components::use_me;

const NAV: [(&str, &str); 3] = [
    ("/organizations", "Organizations"),
    ("/projects", "Projects"),
    ("/workspaces", "Workspaces"),
];

const NAV_LINK: &str = "rounded-md px-3 py-2 text-sm font-medium text-slate-300 hover:bg-slate-800 hover:text-white aria-[current=page]:bg-slate-800 aria-[current=page]:text-white";

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let me = use_me().0;
    let menu_open = RwSignal::new(false);
    let live = crate::components::use_live();
    let signed_in = move || me.get().and_then(Result::ok).flatten();
    let is_operator = move || signed_in().is_some_and(|m| m.account.is_operator);
    let nav_links = move || {
        let mut links: Vec<(&str, &str)> = NAV.to_vec();
        if is_operator() {
            links.push(("/admin", "Admin"));
        }
        links
            .into_iter()
            .map(|(href, label)| {
                view! { <A href=href attr:class=NAV_LINK on:click=move |_| menu_open.set(false)>{label}</A> }
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
                        <nav aria-label="Main" class="hidden gap-1 md:flex">
                            <Transition fallback=|| ()>{nav_links}</Transition>
                        </nav>
                    </div>
                    <div class="flex items-center gap-3">
                        <Transition fallback=|| ()>
                            {move || match signed_in() {
                                Some(me) => view! { <AccountMenu me /> }.into_any(),
                                None => view! {
                                    <A href="/sign-in" attr:class="hidden rounded-md bg-sky-500 px-3 py-2 text-sm font-semibold text-white hover:bg-sky-400 md:inline-block">
                                        "Sign in"
                                    </A>
                                }.into_any(),
                            }}
                        </Transition>
                        <button
                            type="button"
                            class="rounded-md p-2 text-slate-300 hover:bg-slate-800 hover:text-white md:hidden"
                            aria-controls="mobile-nav"
                            disabled=move || !live.get()
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
                        {move || signed_in().is_none().then(|| view! {
                            <A href="/sign-in" attr:class="rounded-md px-3 py-2 text-sm font-medium text-sky-300 hover:bg-slate-800">"Sign in"</A>
                        })}
                    </nav>
                </Show>
            </header>
            <main class="mx-auto max-w-7xl px-4 py-8 sm:px-6 lg:px-8">
                <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>{children()}</ErrorBoundary>
            </main>
        </div>
    }
}

/// The signed-in account's menu: settings and signing out.
#[component]
fn AccountMenu(me: Me) -> impl IntoView {
    let open = RwSignal::new(false);
    let live = crate::components::use_live();
    let sign_out = ServerAction::<SignOut>::new();
    let item = "block w-full px-4 py-2 text-left text-sm text-slate-700 hover:bg-slate-100 focus:bg-slate-100 focus:outline-none";
    view! {
        <div class="relative" on:keydown=move |ev| if ev.key() == "Escape" { open.set(false) }>
            <button
                type="button"
                class="flex items-center gap-2 rounded-md px-3 py-2 text-sm font-medium text-slate-200 hover:bg-slate-800"
                aria-haspopup="menu"
                disabled=move || !live.get()
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                <span class="hidden sm:inline">{me.account.display_name.clone()}</span>
                {(me.pending_invitations > 0).then(|| view! {
                    <span class="rounded-full bg-amber-400 px-1.5 text-xs font-semibold text-slate-900" title="Pending invitations">
                        {me.pending_invitations}
                    </span>
                })}
                <span aria-hidden="true">"▾"</span>
                <span class="sr-only">"Account menu"</span>
            </button>
            <Show when=move || open.get()>
                <div role="menu" class="absolute right-0 z-10 mt-2 w-56 overflow-hidden rounded-md bg-white py-1 shadow-lg ring-1 ring-black/5">
                    <p class="truncate border-b border-slate-100 px-4 py-2 text-xs text-slate-500">{me.account.email.clone()}</p>
                    <A href="/account" attr:class=item attr:role="menuitem" on:click=move |_| open.set(false)>"Account"</A>
                    <A href="/account/security" attr:class=item attr:role="menuitem" on:click=move |_| open.set(false)>"Sign-in & security"</A>
                    <A href="/account/api-keys" attr:class=item attr:role="menuitem" on:click=move |_| open.set(false)>"API keys"</A>
                    <A href="/organizations" attr:class=item attr:role="menuitem" on:click=move |_| open.set(false)>"Invitations"</A>
                    <ActionForm action=sign_out>
                        <button type="submit" role="menuitem" class=item>"Sign out"</button>
                    </ActionForm>
                </div>
            </Show>
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
