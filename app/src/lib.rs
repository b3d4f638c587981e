//! Loopback's browser portal: the shell, routes and pages.
//!
//! With the `ssr` feature this crate renders on the server and its server
//! functions call into `platform`; with `hydrate` the same components take
//! over in the browser.

pub mod error;
mod layout;
mod pages;
pub mod status;

#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::layout::Layout;
use crate::pages::{
    AdminPage, HomePage, NotFound, OrganizationsPage, ProjectsPage, SetupPage, SignInPage,
    WorkspacesPage,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="h-full text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    mark_hydrated();

    view! {
        <Stylesheet id="leptos" href="/pkg/loopback.css" />
        <Title formatter=|page: String| {
            if page.is_empty() { "Loopback".to_string() } else { format!("{page} · Loopback") }
        } />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("") view=HomePage />
                    <Route path=path!("/organizations") view=OrganizationsPage />
                    <Route path=path!("/projects") view=ProjectsPage />
                    <Route path=path!("/workspaces") view=WorkspacesPage />
                    <Route path=path!("/admin") view=AdminPage />
                    <Route path=path!("/sign-in") view=SignInPage />
                    <Route path=path!("/setup") view=SetupPage />
                </Routes>
            </Layout>
        </Router>
    }
}

/// Effects only run in the browser, after hydration: the body's
/// `data-hydrated` attribute tells browser tests (and curious users) that the
/// page has become interactive.
fn mark_hydrated() {
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
