//! The operator console: organization verification, the local mail outbox,
//! and the audit log of everything. Non-operators get "not found".

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use protocol::views::{OrganizationState, Verification, display_time};

use crate::api::admin::*;
use crate::components::*;
use crate::pages::orgs::AuditTable;

/// The console's header and tabs. The console's server functions answer
/// "not found" to everyone but operators; this tells such a visitor so.
#[component]
fn AdminHeader(current: &'static str) -> impl IntoView {
    let me = use_me();
    let tabs = [
        ("/admin", "Overview"),
        ("/admin/organizations", "Organizations"),
        ("/admin/kubernetes", "Kubernetes"),
        ("/admin/compute", "Compute"),
        ("/admin/tasks", "Tasks"),
        ("/admin/mail", "Mail"),
        ("/admin/audit", "Audit log"),
    ];
    view! {
        <PageHeader title="Operator console" />
        <Transition fallback=|| ()>
            {move || me.get().filter(|m| !m.account.is_operator).map(|_| view! {
                <p role="alert" class="mb-6 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">
                    "The operator console is for platform operators only."
                </p>
            })}
        </Transition>
        <nav aria-label="Console sections" class="mb-6 flex flex-wrap gap-4 border-b border-slate-200 text-sm">
            {tabs.into_iter().map(|(href, label)| {
                let active = href == current;
                view! {
                    <A href=href attr:aria-current=active.then_some("page")
                       attr:class=if active { "-mb-px border-b-2 border-sky-600 px-1 pb-2 font-medium text-sky-700" } else { "px-1 pb-2 text-slate-600 hover:text-slate-900" }>
                        {label}
                    </A>
                }
            }).collect_view()}
        </nav>
    }
}

#[component]
pub fn AdminPage() -> impl IntoView {
    view! {
        <Title text="Operator console" />
        <SignedIn>
            <AdminHeader current="/admin" />
            <AdminOverview />
        </SignedIn>
    }
}

#[component]
fn AdminOverview() -> impl IntoView {
    let pending = Resource::new(
        || (),
        |_| admin_organizations("pending".into(), String::new(), 1),
    );
    {
        view! {
            <div class="grid gap-6 sm:grid-cols-2">
                <Card title="Waiting for verification">
                    <Transition fallback=|| view! { <Loading /> }>
                        {move || pending.get().map(|r| match r {
                            Err(e) => view! { <ErrorText error=e /> }.into_any(),
                            Ok(p) => view! {
                                <p class="text-3xl font-semibold">{p.total}</p>
                                <A href="/admin/organizations?verification=pending" attr:class=LINK>"Review organizations"</A>
                            }.into_any(),
                        })}
                    </Transition>
                </Card>
                <Card title="Mail">
                    <p class="text-sm text-slate-600">"Without SMTP configured, mail the portal sends stays in the outbox."</p>
                    <A href="/admin/mail" attr:class=LINK>"Open the outbox"</A>
                </Card>
            </div>
        }
    }
}

#[component]
pub fn AdminOrganizationsPage() -> impl IntoView {
    view! {
        <Title text="Organizations · console" />
        <SignedIn>
            <AdminHeader current="/admin/organizations" />
            <AdminOrganizations />
        </SignedIn>
    }
}

#[component]
fn AdminOrganizations() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let verification = RwSignal::new(
        query
            .read_untracked()
            .get("verification")
            .unwrap_or_default(),
    );
    let search = RwSignal::new(String::new());
    let page = page_from_query();
    let set_verification = ServerAction::<AdminSetVerification>::new();
    let set_state = ServerAction::<AdminSetState>::new();
    let set_limit = ServerAction::<crate::api::hosts::SetHostLimit>::new();
    let orgs = Resource::new(
        move || {
            (
                verification.get(),
                search.get(),
                page.get(),
                set_verification.version().get(),
                set_state.version().get(),
            )
        },
        |(v, s, p, _, _)| admin_organizations(v, s, p),
    );
    let error = Signal::derive(move || {
        set_verification
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| set_state.value().get().and_then(Result::err))
    });
    let limit_error = Signal::derive(move || {
        set_limit.value().get().and_then(Result::err).map(|e| {
            let message = e
                .for_field("host_limit")
                .or_else(|| e.for_field("limit"))
                .unwrap_or_else(|| e.to_string());
            format!("Host limit: {message}")
        })
    });
    let limit_saved = Signal::derive(move || {
        set_limit
            .value()
            .get()
            .and_then(Result::ok)
            .map(|()| "Host limit saved.".to_string())
    });
    view! {
        <Card>
            <div class="mb-4 flex flex-wrap gap-3">
                <div>
                    <label for="filter-verification" class="block text-xs font-medium text-slate-600">"Verification"</label>
                    <select id="filter-verification" class=format!("mt-1 {INPUT}") on:change=move |ev| verification.set(event_target_value(&ev))
                        prop:value=move || verification.get()>
                        <option value="">"any"</option>
                        <option value="pending">"pending"</option>
                        <option value="verified">"verified"</option>
                        <option value="rejected">"rejected"</option>
                    </select>
                </div>
                <div>
                    <label for="filter-search" class="block text-xs font-medium text-slate-600">"Name contains"</label>
                    <input id="filter-search" class=format!("mt-1 {INPUT}") on:change=move |ev| search.set(event_target_value(&ev)) />
                </div>
            </div>
            <FormError error />
            {move || limit_error.get().map(|m| view! { <p role="alert" class="rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{m}</p> })}
            <Notice text=limit_saved />
            <Transition fallback=|| view! { <Loading /> }>
                {move || orgs.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(p) if p.items.is_empty() => view! { <Empty text="No organizations match." /> }.into_any(),
                    Ok(p) => view! {
                        <table class=TABLE>
                            <thead><tr><th class=TH>"Organization"</th><th class=TH>"Created"</th><th class=TH>"Verification"</th><th class=TH>"State"</th><th class=TH>"Host limit"</th><th class=TH>"Actions"</th></tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {p.items.clone().into_iter().map(|o| {
                                    let id = o.id;
                                    let limit_label = format!("Host limit for {}", o.name);
                                    let limit_submit = format!("Set the host limit of {}", o.name);
                                    view! {
                                        <tr>
                                            <td class=TD>{o.name.clone()}</td>
                                            <td class=TD>{display_time(o.created_at)}</td>
                                            <td class=TD><Badge text=o.verification.label() tone=verification_tone(o.verification) /></td>
                                            <td class=TD>{match o.state { OrganizationState::Active => view! { <Badge text="active" tone=Tone::Good /> }, OrganizationState::Suspended => view! { <Badge text="suspended" tone=Tone::Bad /> } }}</td>
                                            <td class=TD>
                                                <ActionForm action=set_limit attr:class="flex items-center gap-2">
                                                    <input type="hidden" name="organization" value=id.to_string() />
                                                    <label for=format!("host-limit-{id}") class="sr-only">{limit_label}</label>
                                                    <input id=format!("host-limit-{id}") name="limit" type="number" min="0" value="20" required class=format!("w-20 {INPUT}") />
                                                    <Submit label="Set" pending=set_limit.pending() class=BUTTON_SECONDARY aria_label=limit_submit />
                                                </ActionForm>
                                            </td>
                                            <td class=TD>
                                                <div class="flex flex-wrap gap-2">
                                                    {(o.verification != Verification::Verified).then(|| view! {
                                                        <Button aria_label=format!("Verify {}", o.name)
                                                            on_click=move || { set_verification.dispatch(AdminSetVerification { org: id, verification: Verification::Verified, note: String::new() }); }>"Verify"</Button>
                                                    })}
                                                    {(o.verification == Verification::Pending).then(|| view! {
                                                        <ConfirmButton label="Reject" question=format!("Reject {}?", o.name) confirm_label="Reject"
                                                            on_confirm=move || { set_verification.dispatch(AdminSetVerification { org: id, verification: Verification::Rejected, note: String::new() }); } />
                                                    })}
                                                    {match o.state {
                                                        OrganizationState::Active => view! {
                                                            <ConfirmButton label="Suspend" question=format!("Suspend {}? Its members keep read access only.", o.name) confirm_label="Suspend"
                                                                on_confirm=move || { set_state.dispatch(AdminSetState { org: id, state: OrganizationState::Suspended, note: String::new() }); } />
                                                        }.into_any(),
                                                        OrganizationState::Suspended => view! {
                                                            <Button class=BUTTON_SECONDARY
                                                                on_click=move || { set_state.dispatch(AdminSetState { org: id, state: OrganizationState::Active, note: String::new() }); }>"Reactivate"</Button>
                                                        }.into_any(),
                                                    }}
                                                </div>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <Pager page=p.page pages=p.pages() total=p.total base="/admin/organizations" />
                    }.into_any(),
                })}
            </Transition>
        </Card>
    }
}

#[component]
pub fn AdminKubernetesPage() -> impl IntoView {
    view! {
        <SignedIn>
            <AdminHeader current="/admin/kubernetes" />
            <crate::pages::catalog::AdminKubernetes />
        </SignedIn>
    }
}

#[component]
pub fn AdminComputePage() -> impl IntoView {
    view! {
        <SignedIn>
            <AdminHeader current="/admin/compute" />
            <crate::pages::compute::AdminCompute />
        </SignedIn>
    }
}

#[component]
pub fn AdminTasksPage() -> impl IntoView {
    view! {
        <Title text="Tasks · console" />
        <SignedIn>
            <AdminHeader current="/admin/tasks" />
            <crate::pages::tasks::AdminTasks />
        </SignedIn>
    }
}

#[component]
pub fn AdminMailPage() -> impl IntoView {
    view! {
        <Title text="Mail · console" />
        <SignedIn>
            <AdminHeader current="/admin/mail" />
            <AdminMail />
        </SignedIn>
    }
}

#[component]
fn AdminMail() -> impl IntoView {
    let page = page_from_query();
    let mail = Resource::new(move || page.get(), admin_mail);
    {
        view! {
            <Transition fallback=|| view! { <Loading /> }>
                {move || mail.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(p) if p.items.is_empty() => view! { <Empty text="No mail yet." /> }.into_any(),
                    Ok(p) => view! {
                        <ul class="space-y-4">
                            {p.items.clone().into_iter().map(|m| view! {
                                <li class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" data-testid="mail">
                                    <div class="flex flex-wrap justify-between gap-2 text-sm">
                                        <p><span class="text-slate-500">"To "</span><span class="font-medium" data-testid="mail-to">{m.to_address.clone()}</span></p>
                                        <p class="text-slate-500">
                                            {display_time(m.created_at)}" · "
                                            {match (m.sent_at, &m.last_error) {
                                                (Some(_), _) => "sent".to_string(),
                                                (None, Some(err)) => format!("not sent yet ({} attempts): {err}", m.attempts),
                                                (None, None) => "kept in the outbox".to_string(),
                                            }}
                                        </p>
                                    </div>
                                    <p class="mt-1 font-medium">{m.subject.clone()}</p>
                                    <pre class="mt-2 whitespace-pre-wrap font-sans text-sm text-slate-700" data-testid="mail-body">{m.body.clone()}</pre>
                                </li>
                            }).collect_view()}
                        </ul>
                        <Pager page=p.page pages=p.pages() total=p.total base="/admin/mail" />
                    }.into_any(),
                })}
            </Transition>
        }
    }
}

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    view! {
        <Title text="Audit log · console" />
        <SignedIn>
            <AdminHeader current="/admin/audit" />
            <AdminAudit />
        </SignedIn>
    }
}

#[component]
fn AdminAudit() -> impl IntoView {
    let load = |f: crate::pages::orgs::AuditFilter| admin_audit(f.action, f.actor, f.before);
    view! { <AuditTable load /> }
}
