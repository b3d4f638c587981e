//! The workspace page's hosts section: the hosts (refreshed every 2 s while
//! any is still settling, so a new host is seen going online), the order
//! form, and scaling groups.

use leptos::prelude::*;
use leptos_router::components::A;
use protocol::ids::WorkspaceId;
use protocol::views::{ComputeProfileView, HostView, ScalingGroupView};

use crate::api::hosts::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::hosts::{
    OnlineBadge, Ticker, host_state_tone, last_seen, price_per_month, profile_size, settling,
};

type SectionResource = Resource<Result<HostsSection, AppError>>;

/// The hosts and scaling groups of `workspace`.
#[component]
pub fn WorkspaceHostsCard(workspace: Signal<Option<WorkspaceId>>) -> impl IntoView {
    let order = ServerAction::<OrderHost>::new();
    let create_group = ServerAction::<CreateScalingGroup>::new();
    let set_desired = ServerAction::<SetScalingGroupDesired>::new();
    let delete_group = ServerAction::<DeleteScalingGroup>::new();
    let ticker = Ticker::new();
    let section: SectionResource = Resource::new(
        move || {
            (
                workspace.get(),
                ticker.tick.get(),
                order.version().get(),
                create_group.version().get(),
                set_desired.version().get(),
                delete_group.version().get(),
            )
        },
        |(w, ..)| async move { workspace_hosts(w.ok_or(AppError::NotFound)?).await },
    );
    ticker.start(move || {
        section.with(|s| {
            matches!(s, Some(Ok(s)) if s.hosts.iter().any(settling)
                || s.groups.iter().any(|g| g.current != i64::from(g.desired)))
        })
    });
    let loading = || view! { <p class="text-sm text-slate-500" role="status">"Loading hosts…"</p> };
    view! {
        <div class="mt-6 space-y-6" data-testid="hosts-section">
            <Card title="Hosts" id="hosts">
                <Transition fallback=loading>
                    <HostsTable section now=ticker.now />
                    <OrderHostForm workspace section order />
                </Transition>
            </Card>
            <Card title="Scaling groups" id="scaling-groups">
                <Transition fallback=loading>
                    <ScalingGroups section set_desired delete_group />
                    <NewScalingGroupForm workspace section create_group />
                </Transition>
            </Card>
        </div>
    }
}

/// A slice of the section once loaded; "not found" is left to the
/// workspace page, which says so already.
fn loaded<T: PartialEq + Send + Sync + 'static>(
    section: SectionResource,
    slice: impl Fn(&HostsSection) -> T + Send + Sync + 'static,
) -> Memo<Option<Result<T, AppError>>> {
    Memo::new(move |_| {
        section.with(|s| match s {
            None | Some(Err(AppError::NotFound)) => None,
            Some(Err(e)) => Some(Err(e.clone())),
            Some(Ok(s)) => Some(Ok(slice(s))),
        })
    })
}

#[component]
fn HostsTable(
    section: SectionResource,
    now: RwSignal<Option<time::OffsetDateTime>>,
) -> impl IntoView {
    let hosts = loaded(section, |s| s.hosts.clone());
    move || {
        hosts.get().map(|r| match r {
            Err(e) => view! { <ErrorText error=e /> }.into_any(),
            Ok(hosts) if hosts.is_empty() => view! {
                <Empty text="No hosts yet" hint="Order a host below, or create a scaling group that keeps a number of hosts running." />
            }.into_any(),
            Ok(hosts) => view! {
                <div class="overflow-x-auto">
                    <table class=TABLE data-testid="hosts">
                        <thead><tr>
                            <th class=TH>"Host"</th><th class=TH>"State"</th><th class=TH>"Agent"</th><th class=TH>"Profile"</th>
                            <th class=TH>"Provider"</th><th class=TH>"Public IP"</th><th class=TH>"Agent version"</th><th class=TH>"Scaling group"</th>
                        </tr></thead>
                        <tbody class="divide-y divide-slate-100">
                            {hosts.into_iter().map(|h: HostView| {
                                let seen = h.last_seen_at;
                                view! {
                                    <tr data-testid="host-row">
                                        <td class=TD><A href=format!("/hosts/{}", h.id) attr:class=LINK>{h.hostname.clone()}</A></td>
                                        <td class=TD>
                                            <span data-testid="host-state"><Badge text=h.state.label() tone=host_state_tone(h.state) /></span>
                                            {h.error.clone().filter(|_| h.state == protocol::views::HostState::Error).map(|e| view! {
                                                <p class="mt-1 max-w-xs text-xs text-rose-700">{e}</p>
                                            })}
                                        </td>
                                        <td class=TD>
                                            <OnlineBadge online=h.online />
                                            <p class="mt-1 text-xs text-slate-500">{move || last_seen(seen, now.get())}</p>
                                        </td>
                                        <td class=TD>{h.profile.clone()}</td>
                                        <td class=TD>{h.provider.clone().unwrap_or_else(|| "–".into())}</td>
                                        <td class=TD><code>{h.public_ipv4.clone().unwrap_or_else(|| "–".into())}</code></td>
                                        <td class=TD>{h.agent_version.clone().unwrap_or_else(|| "–".into())}</td>
                                        <td class=TD>{h.scaling_group.clone().unwrap_or_else(|| "–".into())}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any(),
        })
    }
}

/// What a host name may be, said before the server says it.
fn hostname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        None
    } else if name.len() > 63 {
        Some("Too long: at most 63 characters.")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("Use lowercase letters, digits and dashes only.")
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("Start and end with a letter or digit.")
    } else {
        None
    }
}

fn profile_option(p: &ComputeProfileView) -> String {
    format!(
        "{} — {} · {} · {}",
        p.name,
        profile_size(p),
        price_per_month(p.price_cents),
        p.provider_kind.label()
    )
}

#[component]
fn OrderHostForm(
    workspace: Signal<Option<WorkspaceId>>,
    section: SectionResource,
    order: ServerAction<OrderHost>,
) -> impl IntoView {
    let options = loaded(section, |s| {
        let profiles: Vec<ComputeProfileView> =
            s.profiles.iter().filter(|p| p.active).cloned().collect();
        (profiles, s.can_create)
    });
    let error = error_of(order.value());
    let typed = RwSignal::new(String::new());
    // The name of the last order sent: the answer carries ids only.
    let ordered_name = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(input) = order.input().get() {
            ordered_name.set(input.hostname);
        }
    });
    let workspace_value = move || workspace.get().map(|w| w.to_string()).unwrap_or_default();
    move || {
        options.get().and_then(Result::ok).map(|(profiles, can_create)| {
            if !can_create {
                return view! {
                    <p class="mt-4 text-sm text-slate-600">"Your role here does not include ordering hosts (host.create)."</p>
                }.into_any();
            }
            let no_profiles = profiles.is_empty();
            view! {
                <h3 class="mt-6 text-sm font-semibold">"Order a host"</h3>
                {move || order.value().get().and_then(Result::ok).map(|o| view! {
                    <p role="status" data-testid="host-ordered" class="mt-2 rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">
                        {format!("Ordered {}. ", ordered_name.get())}
                        <A href=format!("/tasks/{}", o.task) attr:class=LINK>"Follow the task"</A>
                        " · "
                        <A href=format!("/hosts/{}", o.host) attr:class=LINK>"Open the host"</A>
                    </p>
                })}
                {no_profiles.then(|| view! {
                    <p class="mt-2 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
                        "No compute profiles are available; ask an operator."
                    </p>
                })}
                <ActionForm action=order attr:class="mt-2 grid gap-4 sm:grid-cols-2">
                    <input type="hidden" name="workspace" value=workspace_value />
                    <div>
                        <label for="host-hostname" class="block text-sm font-medium text-slate-800">"Host name"</label>
                        <input id="host-hostname" name="hostname" required autocomplete="off" placeholder="web-1"
                            class=format!("mt-1 {INPUT}") aria-describedby="host-hostname-hint"
                            aria-invalid=move || error.get().and_then(|e| e.for_field("hostname")).is_some().to_string()
                            on:input=move |ev| typed.set(event_target_value(&ev)) />
                        <p id="host-hostname-hint" class="mt-1 text-xs text-slate-500">
                            {move || match hostname_problem(&typed.get()) {
                                Some(problem) => view! { <span class="text-amber-800">{problem}</span> }.into_any(),
                                None => "Lowercase letters, digits and dashes; at most 63 characters.".into_any(),
                            }}
                        </p>
                        {field_error(error, "hostname")}
                    </div>
                    <div>
                        <label for="host-profile" class="block text-sm font-medium text-slate-800">"Compute profile"</label>
                        <select id="host-profile" name="compute_profile" required class=format!("mt-1 {INPUT}") disabled=no_profiles>
                            {profiles.iter().map(|p| view! { <option value=p.id.to_string()>{profile_option(p)}</option> }).collect_view()}
                        </select>
                        {field_error(error, "compute_profile")}
                    </div>
                    <div class="sm:col-span-2">
                        <label for="host-metadata" class="block text-sm font-medium text-slate-800">"Metadata (optional)"</label>
                        <textarea id="host-metadata" name="metadata" rows="2" class=format!("mt-1 font-mono {INPUT}")
                            placeholder="role=web" aria-describedby="host-metadata-hint"></textarea>
                        <p id="host-metadata-hint" class="mt-1 text-xs text-slate-500">"One key=value per line."</p>
                        {field_error(error, "metadata")}
                    </div>
                    <div class="sm:col-span-2"><Submit label="Order host" pending=order.pending() /></div>
                </ActionForm>
                <div class="mt-2"><FormError error fields=&["hostname", "compute_profile", "metadata"] /></div>
            }.into_any()
        })
    }
}

#[component]
fn ScalingGroups(
    section: SectionResource,
    set_desired: ServerAction<SetScalingGroupDesired>,
    delete_group: ServerAction<DeleteScalingGroup>,
) -> impl IntoView {
    let groups = loaded(section, |s| (s.groups.clone(), s.can_create));
    let error = Signal::derive(move || {
        set_desired
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| delete_group.value().get().and_then(Result::err))
    });
    view! {
        <div class="mb-2"><FormError error /></div>
        {move || groups.get().map(|r| match r {
            Err(e) => view! { <ErrorText error=e /> }.into_any(),
            Ok((groups, _)) if groups.is_empty() => view! {
                <Empty text="No scaling groups" hint="A scaling group keeps a number of hosts of one profile; the portal orders or deletes hosts to match." />
            }.into_any(),
            Ok((groups, can_manage)) => view! {
                <div class="overflow-x-auto">
                    <table class=TABLE data-testid="scaling-groups">
                        <thead><tr>
                            <th class=TH>"Group"</th><th class=TH>"Profile"</th><th class=TH>"Hosts (current / desired)"</th><th class=TH>"Status"</th>
                            {can_manage.then(|| view! { <th class=TH><span class="sr-only">"Actions"</span></th> })}
                        </tr></thead>
                        <tbody class="divide-y divide-slate-100">
                            {groups.into_iter().map(|g: ScalingGroupView| {
                                let group = g.id;
                                let input_id = format!("group-desired-{}", g.id);
                                let desired_label = format!("Desired hosts in {}", g.name);
                                let set_label = format!("Set desired hosts in {}", g.name);
                                view! {
                                    <tr data-testid="scaling-group">
                                        <td class=TD>{g.name.clone()}</td>
                                        <td class=TD>{g.profile.clone()}</td>
                                        <td class=TD>{format!("{} / {}", g.current, g.desired)}</td>
                                        <td class=TD>{g.status.clone().unwrap_or_else(|| "–".into())}</td>
                                        {can_manage.then(|| view! {
                                            <td class=TD>
                                                <div class="flex flex-wrap items-center gap-2">
                                                    <ActionForm action=set_desired attr:class="flex items-center gap-2">
                                                        <input type="hidden" name="group" value=group.to_string() />
                                                        <label for=input_id.clone() class="sr-only">{desired_label}</label>
                                                        <input id=input_id.clone() name="desired" type="number" min="0" required
                                                            value=g.desired.to_string() class=format!("w-20 {INPUT}") />
                                                        <Submit label="Set" pending=set_desired.pending() class=BUTTON_SECONDARY
                                                            aria_label=set_label />
                                                    </ActionForm>
                                                    <ConfirmButton label="Delete"
                                                        question=format!("Delete scaling group {}? It must have no hosts left: set it to 0 first.", g.name)
                                                        confirm_label="Delete group" pending=delete_group.pending()
                                                        on_confirm=move || { delete_group.dispatch(DeleteScalingGroup { group }); } />
                                                </div>
                                            </td>
                                        })}
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any(),
        })}
    }
}

#[component]
fn NewScalingGroupForm(
    workspace: Signal<Option<WorkspaceId>>,
    section: SectionResource,
    create_group: ServerAction<CreateScalingGroup>,
) -> impl IntoView {
    let options = loaded(section, |s| {
        let profiles: Vec<ComputeProfileView> =
            s.profiles.iter().filter(|p| p.active).cloned().collect();
        (profiles, s.can_create)
    });
    let error = error_of(create_group.value());
    let workspace_value = move || workspace.get().map(|w| w.to_string()).unwrap_or_default();
    move || {
        options.get().and_then(Result::ok).filter(|(_, can_create)| *can_create).map(|(profiles, _)| {
            let no_profiles = profiles.is_empty();
            view! {
                <h3 class="mt-6 text-sm font-semibold">"New scaling group"</h3>
                <ActionForm action=create_group attr:class="mt-2 grid gap-4 sm:grid-cols-3 sm:items-start">
                    <input type="hidden" name="workspace" value=workspace_value />
                    <div>
                        <label for="group-name" class="block text-sm font-medium text-slate-800">"Name"</label>
                        <input id="group-name" name="name" required autocomplete="off" placeholder="workers"
                            class=format!("mt-1 {INPUT}") aria-describedby="group-name-hint" />
                        <p id="group-name-hint" class="mt-1 text-xs text-slate-500">"Hosts are named after it: name-xxxxx."</p>
                        {field_error(error, "name")}
                    </div>
                    <div>
                        <label for="group-profile" class="block text-sm font-medium text-slate-800">"Compute profile"</label>
                        <select id="group-profile" name="compute_profile" required class=format!("mt-1 {INPUT}") disabled=no_profiles>
                            {profiles.iter().map(|p| view! { <option value=p.id.to_string()>{profile_option(p)}</option> }).collect_view()}
                        </select>
                        {no_profiles.then(|| view! { <p class="mt-1 text-sm text-amber-800">"No compute profiles are available; ask an operator."</p> })}
                        {field_error(error, "compute_profile")}
                    </div>
                    <div>
                        <label for="group-desired" class="block text-sm font-medium text-slate-800">"Desired hosts"</label>
                        <input id="group-desired" name="desired" type="number" min="0" value="1" required class=format!("mt-1 {INPUT}") />
                        {field_error(error, "desired")}
                    </div>
                    <div class="sm:col-span-3"><Submit label="Create scaling group" pending=create_group.pending() class=BUTTON_SECONDARY /></div>
                </ActionForm>
                <div class="mt-2"><FormError error fields=&["name", "compute_profile", "desired"] /></div>
            }
        })
    }
}
