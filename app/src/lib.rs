//! Loopback's browser portal: the shell, routes and pages.
//!
//! With the `ssr` feature this crate renders on the server and its server
//! functions call into `platform`; with `hydrate` the same components take
//! over in the browser.

pub mod api;
mod browser;
mod components;
pub mod error;
mod layout;
mod pages;
pub mod status;
mod terminal;

#[cfg(feature = "ssr")]
pub mod server;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::layout::Layout;
use crate::pages::*;

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
    components::provide_me();
    mark_hydrated();

    view! {
        <Stylesheet id="leptos" href="/pkg/loopback.css" />
        <Title formatter=|page: String| {
            if page.is_empty() { "Loopback".to_string() } else { format!("{page} · Loopback") }
        } />
        // Async rendering: a page is sent once its data is in, so a page that
        // finds the visitor signed out can still answer with a real redirect.
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async />
                    <Route path=path!("/sign-up") view=SignUpPage ssr=SsrMode::Async />
                    <Route path=path!("/forgot-password") view=ForgotPasswordPage ssr=SsrMode::Async />
                    <Route path=path!("/reset-password") view=ResetPasswordPage ssr=SsrMode::Async />
                    <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=path!("/account/security") view=SecurityPage ssr=SsrMode::Async />
                    <Route path=path!("/account/api-keys") view=ApiKeysPage ssr=SsrMode::Async />
                    <Route path=path!("/organizations") view=OrganizationsPage ssr=SsrMode::Async />
                    <Route path=path!("/orgs/:org") view=OrganizationPage ssr=SsrMode::Async />
                    <Route path=path!("/orgs/:org/members") view=MembersPage ssr=SsrMode::Async />
                    <Route path=path!("/orgs/:org/roles") view=RolesPage ssr=SsrMode::Async />
                    <Route path=path!("/orgs/:org/audit") view=AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/orgs/:org/settings") view=OrgSettingsPage ssr=SsrMode::Async />
                    <Route path=path!("/orgs/:org/notifications") view=NotificationsPage ssr=SsrMode::Async />
                    <Route path=path!("/projects") view=ProjectsPage ssr=SsrMode::Async />
                    <Route path=path!("/projects/:project") view=ProjectPage ssr=SsrMode::Async />
                    <Route path=path!("/projects/:project/alerts") view=AlertsPage ssr=SsrMode::Async />
                    <Route path=path!("/workspaces") view=WorkspacesPage ssr=SsrMode::Async />
                    <Route path=path!("/workspaces/:workspace") view=WorkspacePage ssr=SsrMode::Async />
                    <Route path=path!("/workspaces/:workspace/nodes") view=WorkspaceNodesPage ssr=SsrMode::Async />
                    <Route path=path!("/hosts/:host") view=HostPage ssr=SsrMode::Async />
                    <Route path=path!("/hosts/:host/shell") view=ShellPage ssr=SsrMode::Async />
                    <Route path=path!("/load-balancers/:lb") view=LoadBalancerPage ssr=SsrMode::Async />
                    <Route path=path!("/projects/:project/monitoring") view=MonitoringPage ssr=SsrMode::Async />
                    <Route path=path!("/monitors/:monitor") view=MonitorPage ssr=SsrMode::Async />
                    <Route path=path!("/status/:project") view=PublicStatusPage ssr=SsrMode::Async />
                    <Route path=path!("/tasks/:task") view=TaskPage ssr=SsrMode::Async />
                    <Route path=path!("/invitations/:token") view=InvitationPage ssr=SsrMode::Async />
                    <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/organizations") view=AdminOrganizationsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/mail") view=AdminMailPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/tasks") view=AdminTasksPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/kubernetes") view=AdminKubernetesPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/compute") view=AdminComputePage ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}

/// Takes over the server-rendered page in the browser.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    // A server function redirects after it changed the session or created
    // something new: load that page afresh rather than routing client-side, so
    // nothing of the previous state (or the previous user) stays on screen.
    // The hook can be set once; setting it before the router mounts wins.
    let _ =
        leptos::server_fn::redirect::set_redirect_hook(|location: &str| browser::go_to(location));
    leptos::mount::hydrate_body(App);
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
