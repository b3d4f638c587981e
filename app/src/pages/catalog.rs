//! The operator's Kubernetes catalog: versions customers may pick,
//! management clusters that host tenant control planes, and applications
//! installed into workspaces.

use leptos::prelude::*;
use leptos_meta::Title;
use protocol::views::{ApplicationSource, ManagementClusterKind, display_time};

use crate::api::admin::*;
use crate::components::*;

#[component]
pub fn AdminKubernetes() -> impl IntoView {
    view! {
        <Title text="Kubernetes · console" />
        <div class="space-y-6">
            <Versions />
            <Clusters />
            <Applications />
        </div>
    }
}

#[component]
fn Versions() -> impl IntoView {
    let add = ServerAction::<AdminAddVersion>::new();
    let toggle = ServerAction::<AdminSetVersionActive>::new();
    let versions = Resource::new(
        move || (add.version().get(), toggle.version().get()),
        |_| admin_versions(),
    );
    let add_error = error_of(add.value());
    let toggle_error = error_of(toggle.value());
    view! {
        <Card title="Kubernetes versions" id="versions">
            <Transition fallback=|| view! { <Loading /> }>
                {move || versions.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty text="No versions yet; add one below." /> }.into_any(),
                    Ok(list) => view! {
                        <table class=TABLE>
                            <thead><tr><th class=TH>"Version"</th><th class=TH>"State"</th><th class=TH>"Workspaces"</th><th class=TH><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {list.into_iter().map(|v| {
                                    let id = v.id;
                                    let active = v.active;
                                    view! {
                                        <tr>
                                            <td class=TD>{v.version.clone()}</td>
                                            <td class=TD><ActiveBadge active /></td>
                                            <td class=TD>{v.workspaces}</td>
                                            <td class=TD><ActiveToggle name=v.version.clone() active on_toggle=move |active| { toggle.dispatch(AdminSetVersionActive { version: id, active }); } /></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <FormError error=toggle_error />
            <ActionForm action=add attr:class="mt-4 flex flex-wrap items-end gap-3">
                <div><Field label="Add version" name="version" placeholder="1.33.2" required=true error=add_error /></div>
                <label class="flex items-center gap-2 text-sm"><input type="checkbox" name="active" value="on" checked />"Active"</label>
                <Submit label="Add version" pending=add.pending() class=BUTTON_SECONDARY />
            </ActionForm>
            <FormError error=add_error fields=&["version"] />
        </Card>
    }
}

#[component]
fn Clusters() -> impl IntoView {
    let register = ServerAction::<AdminRegisterCluster>::new();
    let toggle = ServerAction::<AdminSetClusterActive>::new();
    let check = ServerAction::<AdminCheckCluster>::new();
    let clusters = Resource::new(
        move || {
            (
                register.version().get(),
                toggle.version().get(),
                check.version().get(),
            )
        },
        |_| admin_clusters(),
    );
    let register_error = error_of(register.value());
    let toggle_error = error_of(toggle.value());
    view! {
        <Card title="Management clusters" id="clusters">
            <Transition fallback=|| view! { <Loading /> }>
                {move || clusters.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty text="No management clusters yet; register one below." /> }.into_any(),
                    Ok(list) => view! {
                        <div class="overflow-x-auto">
                        <table class=TABLE>
                            <thead><tr>
                                <th class=TH>"Name"</th><th class=TH>"Kind"</th><th class=TH>"Serves"</th><th class=TH>"Domain"</th>
                                <th class=TH>"Workspaces"</th><th class=TH>"Last check"</th><th class=TH>"State"</th><th class=TH><span class="sr-only">"Actions"</span></th>
                            </tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {list.into_iter().map(|c| {
                                    let id = c.id;
                                    let active = c.active;
                                    let check_label = format!("Check {}", c.name);
                                    view! {
                                        <tr>
                                            <td class=TD>{c.name.clone()}<p class="text-xs text-slate-500"><code>{c.server.clone()}</code></p></td>
                                            <td class=TD>{match c.kind { ManagementClusterKind::Kamaji => "Kamaji", ManagementClusterKind::Root => "root" }}</td>
                                            <td class=TD>{c.provider_type.clone().unwrap_or_else(|| "–".into())}</td>
                                            <td class=TD>{c.domain.clone()}</td>
                                            <td class=TD>{format!("{} of {}", c.workspaces, c.capacity)}</td>
                                            <td class=TD>{match (c.checked_at, c.check_error.clone(), c.server_version.clone()) {
                                                (Some(at), None, v) => format!("ok {} ({})", v.unwrap_or_default(), display_time(at)),
                                                (Some(at), Some(e), _) => format!("failed: {e} ({})", display_time(at)),
                                                _ => "never".into(),
                                            }}</td>
                                            <td class=TD><ActiveBadge active /></td>
                                            <td class=TD><div class="flex gap-2">
                                                <Button class=BUTTON_SECONDARY aria_label=check_label on_click=move || { check.dispatch(AdminCheckCluster { cluster: id }); }>"Check"</Button>
                                                <ActiveToggle name=c.name.clone() active on_toggle=move |active| { toggle.dispatch(AdminSetClusterActive { cluster: id, active }); } />
                                            </div></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                    }.into_any(),
                })}
            </Transition>
            <FormError error=toggle_error />
            <h3 class="mt-6 text-sm font-semibold">"Register a management cluster"</h3>
            <ActionForm action=register attr:class="mt-2 grid gap-3 sm:grid-cols-2">
                <Field label="Name" name="name" required=true error=register_error />
                <div>
                    <label for="cluster-kind" class="block text-sm font-medium text-slate-800">"Kind"</label>
                    <select id="cluster-kind" name="kind" class=format!("mt-1 {INPUT}")>
                        <option value="kamaji">"Kamaji"</option>
                        <option value="root">"Root"</option>
                    </select>
                </div>
                <div>
                    <label for="cluster-provider" class="block text-sm font-medium text-slate-800">"Compute provider it serves"</label>
                    <select id="cluster-provider" name="provider_type" class=format!("mt-1 {INPUT}")>
                        <option value="">"none"</option>
                        <option value="hetzner_cloud">"hetzner_cloud"</option>
                        <option value="hetzner_robot">"hetzner_robot"</option>
                        <option value="ionos_dcd">"ionos_dcd"</option>
                        <option value="local">"local"</option>
                    </select>
                    {field_error(register_error, "provider_type")}
                </div>
                <Field label="Management domain" name="domain" placeholder="mgmt.example.com" required=true error=register_error />
                <Field label="Capacity (workspaces)" name="capacity" kind="number" value="100" required=true error=register_error />
                <div class="sm:col-span-2">
                    <label for="cluster-kubeconfig" class="block text-sm font-medium text-slate-800">"Kubeconfig"</label>
                    <textarea id="cluster-kubeconfig" name="kubeconfig" rows="6" required class=format!("mt-1 font-mono {INPUT}")></textarea>
                    <p class="mt-1 text-xs text-slate-500">"Checked by connecting before it is saved; stored encrypted."</p>
                    {field_error(register_error, "kubeconfig")}
                </div>
                <div><Submit label="Register cluster" pending=register.pending() class=BUTTON_SECONDARY /></div>
            </ActionForm>
            <FormError error=register_error fields=&["name", "provider_type", "domain", "capacity", "kubeconfig"] />
        </Card>
    }
}

#[component]
fn Applications() -> impl IntoView {
    let add = ServerAction::<AdminAddApplication>::new();
    let toggle = ServerAction::<AdminSetApplicationActive>::new();
    let apps = Resource::new(
        move || (add.version().get(), toggle.version().get()),
        |_| admin_applications(),
    );
    let add_error = error_of(add.value());
    let source = RwSignal::new("manifests".to_string());
    view! {
        <Card title="Kubernetes applications" id="applications">
            <Transition fallback=|| view! { <Loading /> }>
                {move || apps.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <Empty text="No applications yet." /> }.into_any(),
                    Ok(list) => view! {
                        <table class=TABLE>
                            <thead><tr><th class=TH>"Application"</th><th class=TH>"Source"</th><th class=TH>"Phase"</th><th class=TH>"Order"</th><th class=TH>"Timeout"</th><th class=TH>"State"</th><th class=TH><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody class="divide-y divide-slate-100">
                                {list.into_iter().map(|a| {
                                    let id = a.id;
                                    let active = a.active;
                                    view! {
                                        <tr>
                                            <td class=TD>{format!("{} {}", a.name, a.version)}</td>
                                            <td class=TD>{match a.source { ApplicationSource::Manifests => "manifests".to_string(), ApplicationSource::Helm => a.chart.as_ref().map(|c| format!("helm {} {}", c.chart, c.version)).unwrap_or_default() }}</td>
                                            <td class=TD>{if a.prerequisite { "prerequisite" } else { "after the control plane" }}</td>
                                            <td class=TD>{a.position}</td>
                                            <td class=TD>{format!("{} s", a.install_timeout_secs)}</td>
                                            <td class=TD><ActiveBadge active /></td>
                                            <td class=TD><ActiveToggle name=a.name.clone() active on_toggle=move |active| { toggle.dispatch(AdminSetApplicationActive { application: id, active }); } /></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <h3 class="mt-6 text-sm font-semibold">"Add an application"</h3>
            <ActionForm action=add attr:class="mt-2 grid gap-3 sm:grid-cols-3">
                <Field label="Name" name="name" required=true error=add_error />
                <Field label="Version" name="version" required=true error=add_error />
                <div>
                    <label for="app-source" class="block text-sm font-medium text-slate-800">"Source"</label>
                    <select id="app-source" name="source" class=format!("mt-1 {INPUT}") on:change=move |ev| source.set(event_target_value(&ev))>
                        <option value="manifests">"Manifests (YAML)"</option>
                        <option value="helm">"Helm chart"</option>
                    </select>
                </div>
                <div class="sm:col-span-3" hidden=move || source.get() != "manifests">
                    <label for="app-manifests" class="block text-sm font-medium text-slate-800">"Manifests"</label>
                    <textarea id="app-manifests" name="manifests" rows="6" class=format!("mt-1 font-mono {INPUT}")></textarea>
                    {field_error(add_error, "manifests")}
                </div>
                <fieldset class="contents" hidden=move || source.get() != "helm" disabled=move || source.get() != "helm">
                    <Field label="Chart repository" name="chart_repository" placeholder="https://charts.example.com" error=add_error />
                    <Field label="Chart" name="chart_name" error=add_error />
                    <Field label="Chart version" name="chart_version" error=add_error />
                    <Field label="Namespace" name="chart_namespace" error=add_error />
                </fieldset>
                <Field label="Order" name="position" kind="number" value="0" required=true error=add_error />
                <Field label="Install timeout (s)" name="install_timeout_secs" kind="number" value="300" required=true error=add_error />
                <label class="flex items-center gap-2 text-sm"><input type="checkbox" name="prerequisite" value="on" />"Prerequisite (before the control plane)"</label>
                <div><Submit label="Add application" pending=add.pending() class=BUTTON_SECONDARY /></div>
            </ActionForm>
            <FormError error=add_error fields=&["name", "version", "manifests", "install_timeout_secs", "position"] />
        </Card>
    }
}
