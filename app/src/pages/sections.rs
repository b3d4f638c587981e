//! The top-level sections. Each shows its empty state until its feature
//! lands; the navigation and URLs are already the final ones.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
fn Section(title: &'static str, intro: &'static str, empty: &'static str) -> impl IntoView {
    view! {
        <Title text=title />
        <div class="space-y-6">
            <div>
                <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
                <p class="mt-1 max-w-2xl text-sm text-slate-600">{intro}</p>
            </div>
            <div class="rounded-lg border border-dashed border-slate-300 bg-white px-6 py-12 text-center">
                <p class="text-sm font-medium text-slate-900">{empty}</p>
                <p class="mt-1 text-sm text-slate-500">"Sign in to see and manage them."</p>
            </div>
        </div>
    }
}

#[component]
pub fn OrganizationsPage() -> impl IntoView {
    view! {
        <Section
            title="Organizations"
            intro="An organization is your tenant: billing, verification and the boundary around all your data."
            empty="No organizations to show."
        />
    }
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    view! {
        <Section
            title="Projects"
            intro="Projects group workspaces, load balancers, DNS zones and monitoring inside an organization."
            empty="No projects to show."
        />
    }
}

#[component]
pub fn WorkspacesPage() -> impl IntoView {
    view! {
        <Section
            title="Workspaces"
            intro="A workspace is a dedicated Kubernetes cluster or a bare-metal space inside a project."
            empty="No workspaces to show."
        />
    }
}

#[component]
pub fn AdminPage() -> impl IntoView {
    view! {
        <Section
            title="Admin"
            intro="The operator console: organization verification, catalogs, management clusters and system tasks."
            empty="The operator console is for platform operators."
        />
    }
}
