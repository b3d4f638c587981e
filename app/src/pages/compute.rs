//! The operator's compute catalog: provider accounts (credentials checked
//! by a test connection before they are saved) and the profiles customers
//! order, with live Hetzner Cloud availability.

use leptos::prelude::*;
use leptos_meta::Title;
use protocol::views::{ProviderKind, display_time};

use crate::api::admin::*;
use crate::components::*;

#[component]
pub fn AdminCompute() -> impl IntoView {
    view! {
        <Title text="Compute · console" />
        <div class="space-y-6">
            <Providers />
            <Profiles />
            <AgentReleasesCard />
        </div>
    }
}

#[component]
fn Providers() -> impl IntoView {
    let create = ServerAction::<AdminCreateComputeProvider>::new();
    let toggle = ServerAction::<AdminSetComputeProviderActive>::new();
    let check = ServerAction::<AdminCheckComputeProvider>::new();
    let providers = Resource::new(
        move || {
            (
                create.version().get(),
                toggle.version().get(),
                check.version().get(),
            )
        },
        |_| admin_compute_providers(),
    );
    let create_error = error_of(create.value());
    let kind = RwSignal::new("hetzner_cloud".to_string());
    let needs = move |setting: &'static str| {
        ProviderKind::from_label(&kind.get()).is_some_and(|k| k.setting_names().contains(&setting))
    };
    view! {
        <Card title="Compute providers" id="providers">
            <Transition fallback=|| view! { <Loading /> }>
                {move || providers.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty text="No compute providers yet; add one below." /> }.into_any(),
                    Ok(list) => view! {
                        <table class=TABLE>
                            <thead><tr><th class=TH>"Name"</th><th class=TH>"Kind"</th><th class=TH>"Claimed by"</th><th class=TH>"Last check"</th><th class=TH>"State"</th><th class=TH><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {list.into_iter().map(|p| {
                                    let id = p.id;
                                    let active = p.active;
                                    let check_label = format!("Check {}", p.name);
                                    view! {
                                        <tr>
                                            <td class=TD>{p.name.clone()}</td>
                                            <td class=TD><code>{p.kind.label()}</code></td>
                                            <td class=TD>{p.organization.clone().unwrap_or_else(|| "pool".into())}</td>
                                            <td class=TD>{match (p.checked_at, p.check_error.clone()) {
                                                (Some(at), None) => format!("ok ({})", display_time(at)),
                                                (Some(at), Some(e)) => format!("failed: {e} ({})", display_time(at)),
                                                _ => "never".into(),
                                            }}</td>
                                            <td class=TD><ActiveBadge active /></td>
                                            <td class=TD><div class="flex gap-2">
                                                <Button class=BUTTON_SECONDARY aria_label=check_label on_click=move || { check.dispatch(AdminCheckComputeProvider { provider: id }); }>"Check"</Button>
                                                <ActiveToggle name=p.name.clone() active on_toggle=move |active| { toggle.dispatch(AdminSetComputeProviderActive { provider: id, active }); } />
                                            </div></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <h3 class="mt-6 text-sm font-semibold">"Add a compute provider"</h3>
            <ActionForm action=create attr:class="mt-2 grid gap-3 sm:grid-cols-2">
                <Field label="Name" name="name" required=true error=create_error />
                <div>
                    <label for="provider-kind" class="block text-sm font-medium text-slate-800">"Kind"</label>
                    <select id="provider-kind" name="kind" class=format!("mt-1 {INPUT}") on:change=move |ev| kind.set(event_target_value(&ev))>
                        {ProviderKind::ALL.into_iter().map(|k| view! { <option value=k.label()>{k.label()}</option> }).collect_view()}
                    </select>
                </div>
                <div hidden=move || !needs("base_url")>
                    <Field label="API base URL (optional)" name="base_url" placeholder="the provider's public API" error=create_error />
                </div>
                <div hidden=move || !needs("user")>
                    <Field label="Robot user" name="user" error=create_error />
                </div>
                <div hidden=move || !needs("datacenter_id")>
                    <Field label="Datacenter id" name="datacenter_id" error=create_error />
                </div>
                <div hidden=move || !needs("load_balancer_location")>
                    <Field label="Load balancer location (optional)" name="load_balancer_location" placeholder="fsn1" error=create_error />
                </div>
                <div hidden=move || !needs("load_balancer_type")>
                    <Field label="Load balancer type (optional)" name="load_balancer_type" placeholder="lb11" error=create_error />
                </div>
                <div hidden=move || !needs("load_balancer_network")>
                    <Field label="Load balancer network id (optional)" name="load_balancer_network" hint="Attach load balancers to this private network and reach targets there." error=create_error />
                </div>
                <div hidden=move || kind.get() == "local">
                    <Field label="API token or password" name="secret" kind="password" autocomplete="off" error=create_error
                        hint="Checked by a test connection, then stored encrypted; never shown again." />
                </div>
                <div class="sm:col-span-2"><Submit label="Test and save" pending=create.pending() class=BUTTON_SECONDARY /></div>
            </ActionForm>
            <FormError error=create_error fields=&["name", "base_url", "user", "datacenter_id", "load_balancer_location", "load_balancer_type", "load_balancer_network", "secret", "settings"] />
        </Card>
    }
}

#[component]
fn Profiles() -> impl IntoView {
    let create = ServerAction::<AdminCreateComputeProfile>::new();
    let toggle = ServerAction::<AdminSetComputeProfileActive>::new();
    let availability = ServerAction::<AdminProfileAvailability>::new();
    let profiles = Resource::new(
        move || (create.version().get(), toggle.version().get()),
        |_| admin_compute_profiles(),
    );
    let create_error = error_of(create.value());
    let availability_error = error_of(availability.value());
    view! {
        <Card title="Compute profiles" id="profiles">
            <Transition fallback=|| view! { <Loading /> }>
                {move || profiles.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty text="No compute profiles yet; add one below." /> }.into_any(),
                    Ok(list) => view! {
                        <table class=TABLE>
                            <thead><tr><th class=TH>"Profile"</th><th class=TH>"Provider"</th><th class=TH>"Size"</th><th class=TH>"Price / month"</th><th class=TH>"Parameters"</th><th class=TH>"State"</th><th class=TH><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {list.into_iter().map(|p| {
                                    let id = p.id;
                                    let active = p.active;
                                    let availability_label = format!("Availability of {}", p.name);
                                    let hetzner = p.provider_kind == ProviderKind::HetznerCloud;
                                    view! {
                                        <tr>
                                            <td class=TD>{p.name.clone()}</td>
                                            <td class=TD><code>{p.provider_kind.label()}</code></td>
                                            <td class=TD>{format!("{} vCPU, {} GB RAM, {} GB disk", p.cpu, p.ram_mb / 1024, p.disk_gb)}</td>
                                            <td class=TD>{format!("€{}.{:02}", p.price_cents / 100, p.price_cents % 100)}</td>
                                            <td class=TD><code class="text-xs">{p.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")}</code></td>
                                            <td class=TD><ActiveBadge active /></td>
                                            <td class=TD><div class="flex gap-2">
                                                {hetzner.then(|| view! {
                                                    <Button class=BUTTON_SECONDARY aria_label=availability_label on_click=move || { availability.dispatch(AdminProfileAvailability { profile: id }); }>"Availability"</Button>
                                                })}
                                                <ActiveToggle name=p.name.clone() active on_toggle=move |active| { toggle.dispatch(AdminSetComputeProfileActive { profile: id, active }); } />
                                            </div></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <FormError error=availability_error />
            {move || availability.value().get().and_then(Result::ok).map(|found| view! {
                <div class="mt-3 rounded-md border border-slate-200 p-3 text-sm" role="status">
                    <p class="font-medium">"Hetzner Cloud datacenters, live"</p>
                    <ul class="mt-1">
                        {found.into_iter().map(|a| view! {
                            <li>{format!("{} ({}): ", a.datacenter, a.location)}{if a.available { "available" } else { "not available" }}</li>
                        }).collect_view()}
                    </ul>
                </div>
            })}
            <h3 class="mt-6 text-sm font-semibold">"Add a compute profile"</h3>
            <ActionForm action=create attr:class="mt-2 grid gap-3 sm:grid-cols-3">
                <Field label="Name" name="name" required=true error=create_error />
                <div>
                    <label for="profile-provider" class="block text-sm font-medium text-slate-800">"Provider kind"</label>
                    <select id="profile-provider" name="provider_kind" class=format!("mt-1 {INPUT}")>
                        {ProviderKind::ALL.into_iter().map(|k| view! { <option value=k.label()>{k.label()}</option> }).collect_view()}
                    </select>
                </div>
                <Field label="vCPU" name="cpu" kind="number" value="2" required=true error=create_error />
                <Field label="RAM (MB)" name="ram_mb" kind="number" value="4096" required=true error=create_error />
                <Field label="Disk (GB)" name="disk_gb" kind="number" value="40" required=true error=create_error />
                <Field label="Price per month (cents)" name="price_cents" kind="number" value="599" required=true error=create_error />
                <div class="sm:col-span-3">
                    <label for="profile-parameters" class="block text-sm font-medium text-slate-800">"Provider parameters"</label>
                    <textarea id="profile-parameters" name="parameters" rows="2" class=format!("mt-1 font-mono {INPUT}") placeholder="server_type=cx22\nlocation=fsn1"></textarea>
                    {field_error(create_error, "parameters")}
                </div>
                <div><Submit label="Add profile" pending=create.pending() class=BUTTON_SECONDARY /></div>
            </ActionForm>
            <FormError error=create_error fields=&["name", "cpu", "ram_mb", "disk_gb", "price_cents", "parameters"] />
        </Card>
    }
}

/// The agent versions hosts update to, and publishing the binary this
/// portal bundles.
#[component]
fn AgentReleasesCard() -> impl IntoView {
    let publish = ServerAction::<crate::api::hosts::PublishBundledAgent>::new();
    let releases = Resource::new(
        move || publish.version().get(),
        |_| crate::api::hosts::agent_releases(),
    );
    let publish_error = error_of(publish.value());
    let published = Signal::derive(move || {
        publish.value().get().and_then(Result::ok).map(|r| {
            format!(
                "Published agent {}; hosts update to it when asked.",
                r.version
            )
        })
    });
    view! {
        <Card title="Agent releases" id="agent-releases">
            <Transition fallback=|| view! { <Loading /> }>
                {move || releases.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <Empty text="No agent releases yet." hint="Publish the bundled agent below; hosts update to the newest release." />
                    }.into_any(),
                    Ok(list) => view! {
                        <table class=TABLE data-testid="agent-releases">
                            <thead><tr><th class=TH>"Version"</th><th class=TH>"SHA-256"</th><th class=TH>"Size"</th><th class=TH>"Published"</th></tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {list.into_iter().map(|r| view! {
                                    <tr>
                                        <td class=TD>{r.version.clone()}</td>
                                        <td class=TD><code title=r.sha256.clone()>{format!("{}…", r.sha256.chars().take(12).collect::<String>())}</code></td>
                                        <td class=TD>{crate::pages::hosts::human_bytes(r.size_bytes)}</td>
                                        <td class=TD>{display_time(r.published_at)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <h3 class="mt-6 text-sm font-semibold">"Publish the bundled agent"</h3>
            <p class="mt-1 text-sm text-slate-600">"Publishes the agent binary this portal runs local hosts with under a version of your choosing."</p>
            <ActionForm action=publish attr:class="mt-2 grid gap-3 sm:grid-cols-3 sm:items-end">
                <Field label="Version" name="version" placeholder="0.2.0" required=true error=publish_error />
                <div><Submit label="Publish" pending=publish.pending() class=BUTTON_SECONDARY aria_label="Publish the bundled agent" /></div>
            </ActionForm>
            <div class="mt-2 space-y-2">
                <FormError error=publish_error fields=&["version"] />
                <Notice text=published />
            </div>
        </Card>
    }
}
