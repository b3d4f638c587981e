//! Organizations: the list, and each organization's overview, members,
//! roles, audit log and settings.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use protocol::ids::OrganizationId;
use protocol::views::{MemberView, OrganizationView, RoleRef, Verification, display_time};

use crate::api::tenancy::*;
use crate::components::*;

/// The `:org` path parameter.
pub(crate) fn org_param() -> Memo<Option<OrganizationId>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("org").and_then(|s| s.parse().ok()))
}

#[component]
pub fn OrganizationsPage() -> impl IntoView {
    view! {
        <Title text="Organizations" />
        <SignedIn>
            <Organizations />
        </SignedIn>
    }
}

#[component]
fn Organizations() -> impl IntoView {
    let page = page_from_query();
    let create = ServerAction::<CreateOrganization>::new();
    let respond = ServerAction::<RespondInvitation>::new();
    let orgs = Resource::new(
        move || (page.get(), respond.version().get()),
        |(p, _)| list_organizations(p),
    );
    let invitations = Resource::new(move || respond.version().get(), |_| my_invitations());
    let error = error_of(create.value());
    view! {
        <PageHeader title="Organizations" intro="Your tenants. Each organization has its own members, projects and infrastructure." />
        <div class="space-y-6">
            <Transition fallback=|| ()>
                {move || invitations.get().and_then(Result::ok).filter(|l| !l.is_empty()).map(|list| view! {
                    <Card title="Invitations for you" id="invitations">
                        <ul class="divide-y divide-slate-100">
                            {list.into_iter().map(|i| view! {
                                <li class="flex flex-wrap items-center justify-between gap-3 py-3 text-sm">
                                    <span>
                                        <span class="font-medium">{i.organization_name.clone()}</span>
                                        {format!(" invites you as {}", i.role.name())}
                                        {i.invited_by.clone().map(|by| format!(" (from {by})"))}
                                    </span>
                                    <span class="flex gap-2">
                                        <ActionForm action=respond>
                                            <input type="hidden" name="invitation" value=i.id.to_string() />
                                            <input type="hidden" name="accept" value="true" />
                                            <Submit label=format!("Accept {}", i.organization_name) />
                                        </ActionForm>
                                        <ActionForm action=respond>
                                            <input type="hidden" name="invitation" value=i.id.to_string() />
                                            <input type="hidden" name="accept" value="false" />
                                            <Submit label="Decline" class=BUTTON_SECONDARY />
                                        </ActionForm>
                                    </span>
                                </li>
                            }).collect_view()}
                        </ul>
                    </Card>
                })}
            </Transition>
            <Card title="Your organizations">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || orgs.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! { <Empty text="You are not in any organization yet." hint="Create one below, or accept an invitation." /> }.into_any(),
                        Ok(p) => {
                            let pages = p.pages();
                            view! {
                                <ul class="divide-y divide-slate-100">
                                    {p.items.into_iter().map(|o| view! { <OrganizationRow org=o /> }).collect_view()}
                                </ul>
                                <Pager page=p.page pages=pages total=p.total base="/organizations" />
                            }.into_any()
                        }
                    })}
                </Transition>
            </Card>
            <Card title="New organization">
                <ActionForm action=create attr:class="flex flex-wrap items-end gap-3">
                    <div class="grow"><Field label="Name" name="name" placeholder="Acme Inc." required=true error=error /></div>
                    <Submit label="Create organization" pending=create.pending() />
                </ActionForm>
                <FormError error fields=&["name"] />
                <p class="mt-2 text-xs text-slate-500">"New organizations are reviewed by an operator before they can run infrastructure."</p>
            </Card>
        </div>
    }
}

#[component]
fn OrganizationRow(org: OrganizationView) -> impl IntoView {
    view! {
        <li class="flex flex-wrap items-center justify-between gap-2 py-3">
            <A href=format!("/orgs/{}", org.id) attr:class=LINK>{org.name.clone()}</A>
            <span class="flex gap-2">
                <Badge text=org.verification.label() tone=verification_tone(org.verification) />
                {(org.state == protocol::views::OrganizationState::Suspended).then(|| view! { <Badge text="suspended" tone=Tone::Bad /> })}
                {org.my_roles.iter().map(|r| view! { <Badge text=r.clone() /> }).collect_view()}
            </span>
        </li>
    }
}

/// Header and tabs shared by an organization's pages.
#[component]
pub(crate) fn OrgFrame(current: &'static str) -> impl IntoView {
    let org = org_param();
    let details = Resource::new(
        move || org.get(),
        |id| async move {
            match id {
                Some(id) => get_organization(id).await,
                None => Err(crate::error::AppError::NotFound),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <Loading /> }>
            {move || Suspend::new(async move {
                match details.await {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(o) => {
                        let base = format!("/orgs/{}", o.id);
                        let tabs = [("", "Overview"), ("/members", "Members"), ("/roles", "Roles"), ("/audit", "Audit log"), ("/notifications", "Notifications"), ("/settings", "Settings")];
                        view! {
                            <Title text=o.name.clone() />
                            <PageHeader title=o.name.clone()>
                                <Badge text=o.verification.label() tone=verification_tone(o.verification) />
                                {(o.state == protocol::views::OrganizationState::Suspended).then(|| view! { <Badge text="suspended" tone=Tone::Bad /> })}
                            </PageHeader>
                            {(o.verification != Verification::Verified).then(|| view! {
                                <p class="mb-6 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
                                    {match o.verification {
                                        Verification::Rejected => "An operator rejected this organization. You can still read it, but not run infrastructure; contact your operator.",
                                        _ => "An operator has not verified this organization yet. Until then you can set it up, but not create workspaces or hosts.",
                                    }}
                                </p>
                            })}
                            <nav aria-label="Organization sections" class="mb-6 flex flex-wrap gap-4 border-b border-slate-200 text-sm">
                                {tabs.into_iter().map(|(suffix, label)| {
                                    let active = suffix == current;
                                    view! {
                                        <A href=format!("{base}{suffix}") attr:aria-current=active.then_some("page")
                                           attr:class=if active { "-mb-px border-b-2 border-sky-600 px-1 pb-2 font-medium text-sky-700" } else { "px-1 pb-2 text-slate-600 hover:text-slate-900" }>
                                            {label}
                                        </A>
                                    }
                                }).collect_view()}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn OrganizationPage() -> impl IntoView {
    view! {
        <SignedIn>
            <OrgFrame current="" />
            <OrgProjects />
        </SignedIn>
    }
}

#[component]
fn OrgProjects() -> impl IntoView {
    let org = org_param();
    let page = page_from_query();
    let create = ServerAction::<CreateProject>::new();
    let projects = Resource::new(
        move || (org.get(), page.get(), create.version().get()),
        |(org, page, _)| async move {
            match org {
                Some(org) => list_projects(org, page).await,
                None => Err(crate::error::AppError::NotFound),
            }
        },
    );
    let error = error_of(create.value());
    view! {
        <div class="space-y-6">
            <Card title="Projects" id="projects">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || projects.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! { <Empty text="No projects yet." hint="Projects hold workspaces, load balancers and monitoring." /> }.into_any(),
                        Ok(p) => {
                            let base = org.get().map(|o| format!("/orgs/{o}")).unwrap_or_default();
                            let pages = p.pages();
                            view! {
                                <ul class="divide-y divide-slate-100">
                                    {p.items.into_iter().map(|pr| view! {
                                        <li class="flex items-center justify-between py-3 text-sm">
                                            <A href=format!("/projects/{}", pr.id) attr:class=LINK>{pr.name.clone()}</A>
                                            <span class="text-slate-500">{format!("{} workspace{}", pr.workspace_count, if pr.workspace_count == 1 { "" } else { "s" })}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                                <Pager page=p.page pages=pages total=p.total base=base />
                            }.into_any()
                        }
                    })}
                </Transition>
            </Card>
            <Card title="New project">
                <ActionForm action=create attr:class="flex flex-wrap items-end gap-3">
                    <input type="hidden" name="org" value=move || org.get().map(|o| o.to_string()).unwrap_or_default() />
                    <div class="grow"><Field label="Project name" name="name" placeholder="Web shop" required=true error=error /></div>
                    <Submit label="Create project" pending=create.pending() />
                </ActionForm>
                <div class="mt-2"><FormError error fields=&["name"] /></div>
            </Card>
        </div>
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    view! {
        <SignedIn>
            <OrgFrame current="/members" />
            <Members />
        </SignedIn>
    }
}

fn role_options(custom: &[protocol::views::RoleView]) -> Vec<(String, String)> {
    let mut options: Vec<(String, String)> = ["viewer", "member", "admin", "owner"]
        .into_iter()
        .map(|r| (r.to_string(), r.to_string()))
        .collect();
    options.extend(
        custom
            .iter()
            .map(|r| (format!("custom:{}", r.id), r.name.clone())),
    );
    options
}

#[component]
fn Members() -> impl IntoView {
    let org = org_param();
    let invite = ServerAction::<InviteMember>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let bind = ServerAction::<BindRole>::new();
    let unbind = ServerAction::<UnbindRole>::new();
    let changes = move || {
        (
            invite.version().get(),
            revoke.version().get(),
            remove.version().get(),
            bind.version().get(),
            unbind.version().get(),
        )
    };
    let data = Resource::new(
        move || (org.get(), changes()),
        |(org, _)| async move {
            let org = org.ok_or(crate::error::AppError::NotFound)?;
            Ok::<_, crate::error::AppError>((
                list_members(org).await?,
                list_invitations(org).await?,
                list_roles(org).await?,
                list_projects(org, 1).await?,
            ))
        },
    );
    let invite_error = error_of(invite.value());
    let action_error = Signal::derive(move || {
        let failed = |r: Option<Result<(), crate::error::AppError>>| r.and_then(Result::err);
        failed(remove.value().get())
            .or_else(|| failed(bind.value().get()))
            .or_else(|| failed(unbind.value().get()))
            .or_else(|| failed(revoke.value().get()))
    });
    // The data resource already tracks the organization; rows read it as is.
    let org_value = move || {
        org.get_untracked()
            .map(|o| o.to_string())
            .unwrap_or_default()
    };

    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <ErrorText error=e /> }.into_any(),
                Ok((members, invitations, roles, projects)) => {
                    let options = role_options(&roles);
                    let options_for_bind = options.clone();
                    view! {
                        <div class="space-y-6">
                            <FormError error=action_error />
                            <Card title="Members" id="members">
                                <ul class="divide-y divide-slate-100">
                                    {members.into_iter().map(|m| view! {
                                        <MemberRow member=m options=options_for_bind.clone() projects=projects.items.iter().map(|p| (p.id.to_string(), p.name.clone())).collect() org=org_value() bind unbind remove />
                                    }).collect_view()}
                                </ul>
                            </Card>
                            <Card title="Invite someone" id="invite">
                                <ActionForm action=invite attr:class="grid gap-3 sm:grid-cols-3 sm:items-end">
                                    <input type="hidden" name="org" value=org_value() />
                                    <Field label="Email" name="email" kind="email" required=true error=invite_error />
                                    <div>
                                        <label for="invite-role" class="block text-sm font-medium text-slate-800">"Role"</label>
                                        <select id="invite-role" name="role" class=format!("mt-1 {INPUT}")>
                                            {options.iter().map(|(value, label)| view! { <option value=value.clone()>{label.clone()}</option> }).collect_view()}
                                        </select>
                                    </div>
                                    <div><Submit label="Send invitation" pending=invite.pending() /></div>
                                </ActionForm>
                                <div class="mt-2"><FormError error=invite_error fields=&["email"] /></div>
                                {move || invite.value().get().and_then(Result::ok).map(|i| view! {
                                    <p role="status" class="mt-2 text-sm text-emerald-800">{format!("Invitation sent to {}.", i.email)}</p>
                                })}
                            </Card>
                            <Card title="Pending invitations">
                                {if invitations.is_empty() {
                                    view! { <Empty text="No pending invitations." /> }.into_any()
                                } else {
                                    view! {
                                        <ul class="divide-y divide-slate-100">
                                            {invitations.into_iter().map(|i| {
                                                let org = i.organization_id;
                                                let id = i.id;
                                                view! {
                                                    <li class="flex flex-wrap items-center justify-between gap-2 py-3 text-sm">
                                                        <span>{format!("{} as {} · expires {}", i.email, i.role.name(), display_time(i.expires_at))}</span>
                                                        <ConfirmButton label="Revoke" question=format!("Revoke the invitation for {}?", i.email) confirm_label="Revoke"
                                                            on_confirm=move || { revoke.dispatch(RevokeInvitation { org, invitation: id }); } />
                                                    </li>
                                                }
                                            }).collect_view()}
                                        </ul>
                                    }.into_any()
                                }}
                            </Card>
                        </div>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn MemberRow(
    member: MemberView,
    options: Vec<(String, String)>,
    projects: Vec<(String, String)>,
    org: String,
    bind: ServerAction<BindRole>,
    unbind: ServerAction<UnbindRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let org_id: Option<OrganizationId> = org.parse().ok();
    let account = member.account_id;
    let select_id = format!("bind-role-{}", member.account_id);
    let scope_id = format!("bind-scope-{}", member.account_id);
    view! {
        <li class="space-y-2 py-4 text-sm">
            <div class="flex flex-wrap items-center justify-between gap-2">
                <div>
                    <p class="font-medium">{member.display_name.clone()}</p>
                    <p class="text-slate-500">{member.email.clone()}</p>
                </div>
                {org_id.map(|org| view! {
                    <ConfirmButton label="Remove" question=format!("Remove {} from the organization?", member.email) confirm_label="Remove"
                        on_confirm=move || { remove.dispatch(RemoveMember { org, account }); } />
                })}
            </div>
            <ul class="flex flex-wrap gap-2">
                {member.bindings.iter().map(|b| {
                    let binding = b.id;
                    let label = match &b.role { RoleRef::Builtin(k) => k.clone(), RoleRef::Custom { name, .. } => name.clone() };
                    view! {
                        <li class="inline-flex items-center gap-1 rounded-full bg-slate-100 px-2 py-0.5">
                            <span>{format!("{label} · {}", b.scope.name)}</span>
                            {org_id.map(|org| view! {
                                <Button class="text-slate-500 hover:text-rose-700" aria_label=format!("Remove role {label} on {}", b.scope.name)
                                    on_click=move || { unbind.dispatch(UnbindRole { org, binding }); }>"×"</Button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <ActionForm action=bind attr:class="flex flex-wrap items-end gap-2">
                <input type="hidden" name="org" value=org.clone() />
                <input type="hidden" name="account" value=member.account_id.to_string() />
                <label class="sr-only" for=select_id.clone()>"Role to add"</label>
                <select id=select_id name="role" class="rounded-md border border-slate-300 px-2 py-1 text-sm">
                    {options.into_iter().map(|(value, label)| view! { <option value=value>{label}</option> }).collect_view()}
                </select>
                <label class="sr-only" for=scope_id.clone()>"Where"</label>
                <select id=scope_id name="scope" class="rounded-md border border-slate-300 px-2 py-1 text-sm">
                    <option value="organization">"whole organization"</option>
                    {projects.into_iter().map(|(id, name)| view! { <option value=format!("project:{id}")>{format!("project {name}")}</option> }).collect_view()}
                </select>
                <Submit label="Add role" class=BUTTON_SECONDARY />
            </ActionForm>
        </li>
    }
}

#[component]
pub fn RolesPage() -> impl IntoView {
    view! {
        <SignedIn>
            <OrgFrame current="/roles" />
            <Roles />
        </SignedIn>
    }
}

#[component]
fn Roles() -> impl IntoView {
    let org = org_param();
    let create = ServerAction::<CreateRole>::new();
    let delete = ServerAction::<DeleteRole>::new();
    let catalogue = Resource::new(|| (), |_| permission_catalogue());
    let custom = Resource::new(
        move || (org.get(), create.version().get(), delete.version().get()),
        |(org, _, _)| async move { list_roles(org.ok_or(crate::error::AppError::NotFound)?).await },
    );
    let chosen = RwSignal::new(BTreeSet::<String>::new());
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let error = error_of(create.value());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(org) = org.get_untracked() {
            create.dispatch(CreateRole {
                org,
                name: name.get_untracked(),
                description: description.get_untracked(),
                permissions: chosen
                    .get_untracked()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
    };
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(_))) {
            chosen.set(BTreeSet::new());
            name.set(String::new());
            description.set(String::new());
        }
    });

    view! {
        <div class="space-y-6">
            <Card title="Custom roles" id="custom-roles">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || custom.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <Empty text="No custom roles." hint="Built-in roles cover most needs; define your own below." /> }.into_any(),
                        Ok(list) => view! {
                            <ul class="divide-y divide-slate-100">
                                {list.into_iter().map(|r| {
                                    let id = r.id;
                                    view! {
                                        <li class="flex flex-wrap items-start justify-between gap-2 py-3 text-sm">
                                            <div>
                                                <p class="font-medium">{r.name.clone()}</p>
                                                <p class="text-slate-500">{r.description.clone()}</p>
                                                <p class="mt-1 font-mono text-xs text-slate-600">{r.permissions.join(", ")}</p>
                                            </div>
                                            {org.get().map(|org| view! {
                                                <ConfirmButton label="Delete" question=format!("Delete role {}? Everyone holding it loses it.", r.name) confirm_label="Delete"
                                                    on_confirm=move || { delete.dispatch(DeleteRole { org, role: id }); } />
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Transition>
            </Card>
            <Card title="New custom role">
                <form class="space-y-4" on:submit=submit>
                    <div class="grid gap-4 sm:grid-cols-2">
                        <div>
                            <label for="role-name" class="block text-sm font-medium">"Name"</label>
                            <input id="role-name" required class=format!("mt-1 {INPUT}") prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                            {move || error.get().and_then(|e| e.for_field("name")).map(|m| view! { <p class="mt-1 text-sm text-rose-700">{m}</p> })}
                        </div>
                        <div>
                            <label for="role-description" class="block text-sm font-medium">"Description"</label>
                            <input id="role-description" class=format!("mt-1 {INPUT}") prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev)) />
                        </div>
                    </div>
                    <fieldset>
                        <legend class="text-sm font-medium">"Permissions"</legend>
                        <Transition fallback=|| view! { <Loading /> }>
                            {move || catalogue.get().and_then(Result::ok).map(|(permissions, _)| view! {
                                <div class="mt-2 grid gap-1 sm:grid-cols-2">
                                    {permissions.into_iter().filter(|p| p.level != "platform").map(|p| {
                                        let key = p.key.clone();
                                        let key_for_check = p.key.clone();
                                        view! {
                                            <label class="flex items-start gap-2 text-sm">
                                                <input type="checkbox" class="mt-1"
                                                    prop:checked=move || chosen.get().contains(&key_for_check)
                                                    on:change=move |ev| {
                                                        let on = event_target_checked(&ev);
                                                        chosen.update(|c| { if on { c.insert(key.clone()); } else { c.remove(&key); } });
                                                    } />
                                                <span><code class="text-xs">{p.key.clone()}</code><br/><span class="text-slate-500">{p.description.clone()}</span></span>
                                            </label>
                                        }
                                    }).collect_view()}
                                </div>
                            })}
                        </Transition>
                        {move || error.get().and_then(|e| e.for_field("permissions")).map(|m| view! { <p class="mt-1 text-sm text-rose-700">{m}</p> })}
                    </fieldset>
                    <FormError error fields=&["name", "permissions"] />
                    <Submit label="Create role" pending=create.pending() />
                </form>
            </Card>
            <Card title="Built-in roles and permission keys" id="catalogue">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || catalogue.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok((permissions, builtin)) => view! {
                            <div class="space-y-6">
                                <ul class="grid gap-3 sm:grid-cols-2">
                                    {builtin.into_iter().map(|b| view! {
                                        <li class="rounded-md border border-slate-200 p-3 text-sm">
                                            <p class="font-medium capitalize">{b.key.clone()}</p>
                                            <p class="text-slate-600">{b.description.clone()}</p>
                                            <p class="mt-1 text-xs text-slate-500">{format!("{} permissions", b.permissions.len())}</p>
                                        </li>
                                    }).collect_view()}
                                </ul>
                                <div class="overflow-x-auto">
                                    <table class=TABLE>
                                        <thead><tr><th class=TH>"Key"</th><th class=TH>"Applies to"</th><th class=TH>"Allows"</th></tr></thead>
                                        <tbody class="divide-y divide-slate-100">
                                            {permissions.into_iter().map(|p| view! {
                                                <tr><td class=TD><code>{p.key}</code></td><td class=TD>{p.level}</td><td class=TD>{p.description}</td></tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            </div>
                        }.into_any(),
                    })}
                </Transition>
            </Card>
        </div>
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    view! {
        <SignedIn>
            <OrgFrame current="/audit" />
            <OrgAudit />
        </SignedIn>
    }
}

#[component]
fn OrgAudit() -> impl IntoView {
    let org = org_param();
    let source = move |filter: AuditFilter| async move {
        audit_log(
            org.get_untracked()
                .ok_or(crate::error::AppError::NotFound)?,
            filter.action,
            filter.actor,
            filter.before,
        )
        .await
    };
    view! { <AuditTable load=source /> }
}

/// The filters of an audit view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuditFilter {
    pub action: String,
    pub actor: String,
    pub before: String,
}

/// A filterable audit log table with "older entries" paging; `load` fetches
/// one page for a filter.
#[component]
pub(crate) fn AuditTable<F, Fut>(load: F) -> impl IntoView
where
    F: Fn(AuditFilter) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<
            Output = Result<Vec<protocol::views::AuditView>, crate::error::AppError>,
        > + Send
        + 'static,
{
    let action = RwSignal::new(String::new());
    let actor = RwSignal::new(String::new());
    let before = RwSignal::new(String::new());
    let filter = Memo::new(move |_| AuditFilter {
        action: action.get(),
        actor: actor.get(),
        before: before.get(),
    });
    let entries = Resource::new(move || filter.get(), load);
    view! {
        <Card title="Audit log" id="audit">
            <div class="mb-4 flex flex-wrap gap-3">
                <div>
                    <label for="audit-action" class="block text-xs font-medium text-slate-600">"Action starts with"</label>
                    <input id="audit-action" placeholder="project." class=format!("mt-1 {INPUT}") on:change=move |ev| { before.set(String::new()); action.set(event_target_value(&ev)); } />
                </div>
                <div>
                    <label for="audit-actor" class="block text-xs font-medium text-slate-600">"Actor email contains"</label>
                    <input id="audit-actor" class=format!("mt-1 {INPUT}") on:change=move |ev| { before.set(String::new()); actor.set(event_target_value(&ev)); } />
                </div>
            </div>
            <Transition fallback=|| view! { <Loading /> }>
                {move || entries.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty text="No entries match." /> }.into_any(),
                    Ok(list) => {
                        let oldest = list.last().and_then(|e| e.occurred_at.format(&time::format_description::well_known::Rfc3339).ok());
                        view! {
                            <div class="overflow-x-auto">
                                <table class=TABLE>
                                    <thead><tr><th class=TH>"When"</th><th class=TH>"Who"</th><th class=TH>"Action"</th><th class=TH>"Target"</th><th class=TH>"From"</th></tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {list.into_iter().map(|e| view! {
                                            <tr>
                                                <td class=TD>{display_time(e.occurred_at)}</td>
                                                <td class=TD>{e.actor_email.clone().unwrap_or_else(|| "system".into())}{e.via_api_key.then_some(" (API key)")}</td>
                                                <td class=TD><code>{e.action.clone()}</code><p class="max-w-xs truncate font-mono text-xs text-slate-500" title=e.details.clone()>{e.details.clone()}</p></td>
                                                <td class=TD>{format!("{} {}", e.target_kind, e.target_id.clone().unwrap_or_default())}</td>
                                                <td class=TD><span title=e.user_agent.clone().unwrap_or_default()>{e.ip.clone().unwrap_or_default()}</span></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <div class="mt-4 flex gap-2">
                                {(!before.get().is_empty()).then(|| view! { <Button class=BUTTON_SECONDARY on_click=move || before.set(String::new())>"Newest"</Button> })}
                                {oldest.map(|t| view! { <Button class=BUTTON_SECONDARY on_click=move || before.set(t.clone())>"Older entries"</Button> })}
                            </div>
                        }.into_any()
                    }
                })}
            </Transition>
        </Card>
    }
}

#[component]
pub fn OrgSettingsPage() -> impl IntoView {
    view! {
        <SignedIn>
            <OrgFrame current="/settings" />
            <OrgSettings />
        </SignedIn>
    }
}

#[component]
fn OrgSettings() -> impl IntoView {
    let me = use_me();
    let org = org_param();
    let rename = ServerAction::<RenameOrganization>::new();
    let leave = ServerAction::<RemoveMember>::new();
    let error = error_of(rename.value());
    let leave_error = error_of(leave.value());
    let renamed = Signal::derive(move || {
        rename
            .value()
            .get()
            .and_then(Result::ok)
            .map(|o| format!("Renamed to {}.", o.name))
    });
    view! {
        <div class="grid gap-6 lg:grid-cols-2">
            <Card title="Name">
                <ActionForm action=rename attr:class="space-y-3">
                    <input type="hidden" name="org" value=move || org.get().map(|o| o.to_string()).unwrap_or_default() />
                    <Notice text=renamed />
                    <Field label="Organization name" name="name" required=true error=error />
                    <FormError error fields=&["name"] />
                    <Submit label="Rename" pending=rename.pending() />
                </ActionForm>
            </Card>
            <Card title="Leave">
                <p class="mb-4 text-sm text-slate-600">"You lose access to everything in this organization. The last owner cannot leave."</p>
                <FormError error=leave_error />
                <Transition fallback=|| ()>
                    {move || org.get().zip(me.get()).map(|(org, me)| {
                        let account = me.account.id;
                        view! {
                            <ConfirmButton label="Leave organization" question="Leave this organization?" confirm_label="Leave"
                                on_confirm=move || { leave.dispatch(RemoveMember { org, account }); } pending=leave.pending() />
                        }
                    })}
                </Transition>
            </Card>
        </div>
    }
}
