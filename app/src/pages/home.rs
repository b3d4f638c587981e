use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::components::{BUTTON, BUTTON_SECONDARY, use_me};
use crate::status::{DatabaseState, StatusReport, human_duration, portal_status};

#[component]
pub fn HomePage() -> impl IntoView {
    let me = use_me().0;
    view! {
        <Title text="Overview" />
        <div class="space-y-8">
            <Transition fallback=|| ()>
                {move || me.get().map(|r| match r.ok().flatten() {
                    Some(me) => view! {
                        <div>
                            <h1 class="text-2xl font-semibold tracking-tight">{format!("Welcome, {}", me.account.display_name)}</h1>
                            <p class="mt-1 text-sm text-slate-600">"Pick up where you left off."</p>
                            {(me.pending_invitations > 0).then(|| view! {
                                <p class="mt-4 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
                                    {format!("You have {} pending invitation{}. ", me.pending_invitations, if me.pending_invitations == 1 { "" } else { "s" })}
                                    <A href="/organizations" attr:class="font-semibold underline">"Review"</A>
                                </p>
                            })}
                        </div>
                    }.into_any(),
                    None => view! {
                        <div>
                            <h1 class="text-2xl font-semibold tracking-tight">"Welcome to Loopback"</h1>
                            <p class="mt-1 max-w-2xl text-sm text-slate-600">
                                "Create organizations and projects, get Kubernetes or bare-metal workspaces, order hosts and reach them from your browser."
                            </p>
                            <div class="mt-4 flex gap-3">
                                <A href="/sign-up" attr:class=BUTTON>"Create an account"</A>
                                <A href="/sign-in" attr:class=BUTTON_SECONDARY>"Sign in"</A>
                            </div>
                        </div>
                    }.into_any(),
                })}
            </Transition>

            <PortalStatus />

            <section aria-labelledby="next-heading">
                <h2 id="next-heading" class="text-base font-semibold">"Where to go next"</h2>
                <ul class="mt-3 grid gap-4 sm:grid-cols-3">
                    <NextStep href="/organizations" title="Organizations" text="Your tenants: members, roles, verification." />
                    <NextStep href="/projects" title="Projects" text="Group workspaces, load balancers and monitoring." />
                    <NextStep href="/workspaces" title="Workspaces" text="Kubernetes clusters and bare-metal spaces." />
                </ul>
            </section>
        </div>
    }
}

#[component]
fn PortalStatus() -> impl IntoView {
    let checks = RwSignal::new(0u32);
    let status = Resource::new(move || checks.get(), |_| portal_status());
    let checking = RwSignal::new(false);
    let live = crate::components::use_live();
    view! {
        <section aria-labelledby="status-heading" class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
            <div class="flex items-center justify-between gap-4">
                <h2 id="status-heading" class="text-base font-semibold">"Portal status"</h2>
                <button
                    type="button"
                    class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium hover:bg-slate-50 disabled:cursor-wait disabled:opacity-60"
                    disabled=move || checking.get() || !live.get()
                    on:click=move |_| checks.update(|n| *n += 1)
                >
                    {move || if checking.get() { "Checking…" } else { "Check again" }}
                </button>
            </div>
            <Transition fallback=|| view! { <p class="mt-4 text-sm text-slate-500">"Checking…"</p> } set_pending=checking>
                {move || {
                    status.get().map(|result| match result {
                        Ok(s) => view! { <StatusDetails status=s /> }.into_any(),
                        Err(e) => view! { <p role="alert" class="mt-4 text-sm text-rose-700">{e.to_string()}</p> }.into_any(),
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn StatusDetails(status: StatusReport) -> impl IntoView {
    let (db_class, db_text) = match status.database {
        DatabaseState::Ready { migrations } => (
            "text-emerald-700",
            format!("reachable, schema up to date ({migrations} migrations)"),
        ),
        DatabaseState::MigrationsPending { pending } => (
            "text-amber-700",
            format!("reachable, {pending} migrations pending"),
        ),
        DatabaseState::Unreachable => ("text-rose-700", "unreachable".to_string()),
    };
    view! {
        <dl class="mt-4 grid grid-cols-1 gap-4 text-sm sm:grid-cols-4">
            <div>
                <dt class="text-slate-500">"Database"</dt>
                <dd data-testid="database-state" class=format!("mt-1 font-medium {db_class}")>{db_text}</dd>
            </div>
            <div>
                <dt class="text-slate-500">"Version"</dt>
                <dd class="mt-1 font-medium">{status.version}</dd>
            </div>
            <div>
                <dt class="text-slate-500">"Up for"</dt>
                <dd class="mt-1 font-medium">{human_duration(status.uptime_seconds)}</dd>
            </div>
            <div>
                <dt class="text-slate-500">"Checked"</dt>
                <dd data-testid="checked-at" class="mt-1 font-medium">
                    <time datetime=status.checked_at.clone()>{status.checked_at.clone()}</time>
                </dd>
            </div>
        </dl>
    }
}

#[component]
fn NextStep(href: &'static str, title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <li>
            <A href=href attr:class="block h-full rounded-lg border border-slate-200 bg-white p-4 shadow-sm hover:border-sky-400 focus:outline-none focus:ring-2 focus:ring-sky-400">
                <span class="font-medium">{title}</span>
                <span class="mt-1 block text-sm text-slate-600">{text}</span>
            </A>
        </li>
    }
}
