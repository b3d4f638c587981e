//! Workspaces: the create form (with the Kubernetes choices the catalog
//! offers), and the workspace page with its provisioning live, endpoint,
//! kubeconfig downloads, settings and task history.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use protocol::ids::{ProjectId, WorkspaceId};
use protocol::views::{TaskView, WorkspaceKind, WorkspaceState, display_time};

use crate::api::workspaces::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::tasks::{LiveTask, WorkspaceTasks};

pub fn state_tone(state: WorkspaceState) -> Tone {
    match state {
        WorkspaceState::Active => Tone::Good,
        WorkspaceState::Failed => Tone::Bad,
        WorkspaceState::Initializing | WorkspaceState::Provisioning | WorkspaceState::Deleting => {
            Tone::Warn
        }
    }
}

pub fn kind_label(kind: WorkspaceKind) -> &'static str {
    match kind {
        WorkspaceKind::Kubernetes => "Kubernetes",
        WorkspaceKind::Baremetal => "Bare metal",
    }
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The create form; after creating, shows the workspace API key once.
#[component]
pub fn NewWorkspaceForm(
    project: ProjectId,
    action: ServerAction<CreateWorkspace>,
) -> impl IntoView {
    let options = Resource::new(|| (), |_| get_workspace_options());
    let error = error_of(action.value());
    let name_preview = RwSignal::new(String::new());
    let kind = RwSignal::new("kubernetes".to_string());
    let created = move || action.value().get().and_then(Result::ok);
    view! {
        {move || created().map(|c| view! {
            <div role="status" class="mb-4 rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">
                <p class="font-medium">"Workspace "{c.workspace.name.clone()}" is being provisioned."</p>
                <p class="mt-1">"Its API key, shown only now (in-cluster integrations use it):"</p>
                <code class="mt-1 block break-all rounded bg-white p-2" data-testid="workspace-api-key">{c.api_key.clone()}</code>
                <A href=format!("/workspaces/{}", c.workspace.id) attr:class=LINK>"Follow the provisioning"</A>
            </div>
        })}
        <ActionForm action attr:class="grid gap-4 sm:grid-cols-2">
            <input type="hidden" name="project" value=project.to_string() />
            <div>
                <label for="field-name" class="block text-sm font-medium text-slate-800">"Name"</label>
                <input id="field-name" name="name" required class=format!("mt-1 {INPUT}")
                    aria-describedby="workspace-name-preview"
                    on:input=move |ev| name_preview.set(event_target_value(&ev)) />
                <p id="workspace-name-preview" class="mt-1 text-xs text-slate-500">
                    {move || {
                        let n = protocol::names::workspace_name(&name_preview.get());
                        if n.is_empty() { "Lowercase letters, digits and dashes.".to_string() } else { format!("Will be created as {n}") }
                    }}
                </p>
                {field_error(error, "name")}
            </div>
            <div>
                <label for="workspace-kind" class="block text-sm font-medium text-slate-800">"Type"</label>
                <select id="workspace-kind" name="kind" class=format!("mt-1 {INPUT}")
                    on:change=move |ev| kind.set(event_target_value(&ev))>
                    <option value="kubernetes">"Kubernetes"</option>
                    <option value="baremetal">"Bare metal"</option>
                </select>
            </div>
            <Transition fallback=|| view! { <Loading /> }>
                {move || options.get().map(|r| match r {
                    Err(e) => view! { <div class="sm:col-span-2"><ErrorText error=e /></div> }.into_any(),
                    Ok(o) => {
                        let no_versions = o.versions.is_empty();
                        let no_pool = o.provider_types.is_empty();
                        view! {
                            <fieldset class="contents" disabled=move || kind.get() != "kubernetes" hidden=move || kind.get() != "kubernetes">
                                <div>
                                    <label for="workspace-version" class="block text-sm font-medium text-slate-800">"Kubernetes version"</label>
                                    <select id="workspace-version" name="version" class=format!("mt-1 {INPUT}")>
                                        {o.versions.iter().map(|v| view! { <option value=v.clone()>{v.clone()}</option> }).collect_view()}
                                    </select>
                                    {no_versions.then(|| view! { <p class="mt-1 text-sm text-amber-800">"No version is offered yet; an operator must activate one."</p> })}
                                    {field_error(error, "version")}
                                </div>
                                <div>
                                    <label for="workspace-provider" class="block text-sm font-medium text-slate-800">"Compute provider"</label>
                                    <select id="workspace-provider" name="provider_type" class=format!("mt-1 {INPUT}")>
                                        {o.provider_types.iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                                    </select>
                                    {no_pool.then(|| view! { <p class="mt-1 text-sm text-amber-800">"No management cluster serves any compute provider yet."</p> })}
                                    {field_error(error, "provider_type")}
                                </div>
                                <div>
                                    <label for="workspace-sizing" class="block text-sm font-medium text-slate-800">"Control plane"</label>
                                    <select id="workspace-sizing" name="sizing" class=format!("mt-1 {INPUT}")>
                                        <option value="high_available">"High available (3 replicas)"</option>
                                        <option value="single_node">"Single node (1 replica)"</option>
                                    </select>
                                </div>
                                <div>
                                    <label for="workspace-cluster" class="block text-sm font-medium text-slate-800">"Management cluster (advanced)"</label>
                                    <select id="workspace-cluster" name="management_cluster" class=format!("mt-1 {INPUT}")>
                                        <option value="">"Choose automatically"</option>
                                        {o.clusters.iter().map(|(id, name, provider)| view! {
                                            <option value=id.to_string()>{format!("{name} ({provider})")}</option>
                                        }).collect_view()}
                                    </select>
                                    {field_error(error, "management_cluster")}
                                </div>
                                <label class="flex items-center gap-2 text-sm text-slate-800">
                                    <input type="checkbox" name="ingress" value="on" />"Seed an NGINX ingress controller"
                                </label>
                                {o.operator.then(|| view! {
                                    <label class="flex items-center gap-2 text-sm text-slate-800">
                                        <input type="checkbox" name="cluster_kind" value="on" />"Cluster kind (root cluster, operators only)"
                                    </label>
                                })}
                            </fieldset>
                        }.into_any()
                    }
                })}
            </Transition>
            <div class="sm:col-span-2">
                <label for="workspace-metadata" class="block text-sm font-medium text-slate-800">"Metadata (optional)"</label>
                <textarea id="workspace-metadata" name="metadata" rows="2" class=format!("mt-1 {INPUT}") placeholder="cost-center=4711"></textarea>
                <p class="mt-1 text-xs text-slate-500">"One key=value per line."</p>
                {field_error(error, "metadata")}
            </div>
            <div class="sm:col-span-2"><Submit label="Create workspace" pending=action.pending() /></div>
        </ActionForm>
        <div class="mt-2"><FormError error fields=&["name", "version", "provider_type", "management_cluster", "metadata"] /></div>
    }
}

#[component]
pub fn WorkspacePage() -> impl IntoView {
    view! {
        <SignedIn>
            <Workspace />
        </SignedIn>
    }
}

#[component]
fn Workspace() -> impl IntoView {
    let params = use_params_map();
    let id = Signal::derive(move || {
        params
            .read()
            .get("workspace")
            .and_then(|s| s.parse::<WorkspaceId>().ok())
    });
    // Re-read the workspace whenever its task moves on.
    let progress = RwSignal::new(0usize);
    let maintenance = ServerAction::<UpdateMaintenance>::new();
    let delete = ServerAction::<DeleteWorkspace>::new();
    let page = Resource::new(
        move || {
            (
                id.get(),
                progress.get(),
                maintenance.version().get(),
                delete.version().get(),
            )
        },
        |(id, ..)| async move { get_workspace_details(id.ok_or(AppError::NotFound)?).await },
    );
    let on_change = Callback::new(move |t: TaskView| {
        let done = t
            .steps
            .iter()
            .filter(|s| s.state == protocol::views::StepState::Succeeded)
            .count()
            + usize::from(t.state.is_finished());
        if done != progress.get_untracked() {
            progress.set(done);
        }
    });
    let maintenance_error = error_of(maintenance.value());
    let delete_error = error_of(delete.value());
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || page.get().map(|r| match r {
                Err(e) => view! { <ErrorText error=e /> }.into_any(),
                Ok(p) => {
                    let w = p.details.clone();
                    let workspace_id = w.id;
                    let delete_question = format!("Delete workspace {}? Its cluster and everything in it are removed. This cannot be undone.", w.name);
                    view! {
                        <Title text=w.name.clone() />
                        <p class="text-sm text-slate-500"><A href=format!("/projects/{}", w.project_id) attr:class=LINK>"Project"</A>" / workspace"</p>
                        <PageHeader title=w.name.clone()>
                            <Badge text=kind_label(w.kind) />
                            <span data-testid="workspace-state"><Badge text=w.state.label() tone=state_tone(w.state) /></span>
                        </PageHeader>
                        {w.failure_reason.clone().map(|r| view! {
                            <p role="alert" class="mb-4 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{r}</p>
                        })}
                        <div class="grid gap-6 lg:grid-cols-2">
                            <Card title="Overview">
                                <dl class="grid grid-cols-2 gap-3 text-sm">
                                    {w.kubernetes_version.clone().map(|v| view! { <div><dt class="text-slate-500">"Kubernetes"</dt><dd>{v}</dd></div> })}
                                    {w.provider_type.clone().map(|v| view! { <div><dt class="text-slate-500">"Compute provider"</dt><dd>{v}</dd></div> })}
                                    {w.sizing.map(|s| view! { <div><dt class="text-slate-500">"Control plane"</dt><dd>{match s { protocol::views::Sizing::HighAvailable => "high available (3)", protocol::views::Sizing::SingleNode => "single node (1)" }}</dd></div> })}
                                    {w.management_cluster.clone().map(|v| view! { <div><dt class="text-slate-500">"Management cluster"</dt><dd>{v}</dd></div> })}
                                    {w.network.clone().map(|n| view! { <div><dt class="text-slate-500">"Network"</dt><dd><code>{n}</code></dd></div> })}
                                    <div class="col-span-2"><dt class="text-slate-500">"API endpoint"</dt><dd data-testid="workspace-endpoint"><code>{w.endpoint.clone().unwrap_or_else(|| "not yet known".into())}</code></dd></div>
                                    <div><dt class="text-slate-500">"Health"</dt><dd>{match (w.health.clone(), w.health_checked_at) {
                                        (Some(h), Some(at)) => format!("{h} (checked {})", display_time(at)),
                                        _ => "not checked yet".into(),
                                    }}</dd></div>
                                    <div><dt class="text-slate-500">"Created"</dt><dd>{display_time(w.created_at)}</dd></div>
                                    <div><dt class="text-slate-500">"API key"</dt><dd><code>{w.api_key_prefix.clone().map(|p| format!("{p}…")).unwrap_or_default()}</code></dd></div>
                                    {(!w.metadata.is_empty()).then(|| view! {
                                        <div class="col-span-2"><dt class="text-slate-500">"Metadata"</dt><dd>
                                            {w.metadata.iter().map(|(k, v)| view! { <span class="mr-2 inline-block rounded bg-slate-100 px-2 py-0.5 font-mono text-xs">{format!("{k}={v}")}</span> }).collect_view()}
                                        </dd></div>
                                    })}
                                </dl>
                            </Card>
                            {(w.kind == WorkspaceKind::Kubernetes).then(|| view! {
                                <Card title="Access">
                                    <dl class="mb-4 grid grid-cols-2 gap-3 text-sm">
                                        <div><dt class="text-slate-500">"OIDC login"</dt><dd>{if w.oidc_enabled { "enabled" } else { "disabled" }}</dd></div>
                                        <div><dt class="text-slate-500">"Session lifetime"</dt><dd>{format!("{} h", w.session_lifetime_mins / 60)}</dd></div>
                                    </dl>
                                    {if !w.has_kubeconfig {
                                        view! { <p class="text-sm text-slate-600">"Kubeconfigs are available once the workspace is active."</p> }.into_any()
                                    } else {
                                        view! {
                                            <div class="space-y-4 text-sm">
                                                {p.can_oidc_kubeconfig.then(|| view! {
                                                    <div>
                                                        <a href=format!("/api/workspaces/{workspace_id}/kubeconfig/oidc") class=BUTTON_SECONDARY download>"Download OIDC kubeconfig"</a>
                                                        <p class="mt-1 text-slate-600">"Signs you in through your identity provider. Needs the kubelogin plugin: "<code>"kubectl krew install oidc-login"</code>"."</p>
                                                    </div>
                                                })}
                                                {p.can_admin_kubeconfig.then(|| view! {
                                                    <div class="rounded-md border border-amber-200 bg-amber-50 p-3">
                                                        <p class="mb-2 text-amber-900">"Break-glass: the admin kubeconfig is cluster-admin for anyone who holds it. Every download is recorded in the audit log."</p>
                                                        <a href=format!("/api/workspaces/{workspace_id}/kubeconfig/admin") class=BUTTON_SECONDARY download>"Download admin kubeconfig"</a>
                                                    </div>
                                                })}
                                            </div>
                                        }.into_any()
                                    }}
                                </Card>
                            })}
                        </div>
                        {p.latest_task.map(|task| view! {
                            <section class="mt-6" aria-label="Current task">
                                <LiveTask id=Signal::derive(move || Some(task)) embedded=true on_change />
                            </section>
                        })}
                        <div class="mt-6 grid gap-6 lg:grid-cols-2">
                            <Card title="Maintenance">
                                <ActionForm action=maintenance attr:class="grid gap-3 sm:grid-cols-3 sm:items-end">
                                    <input type="hidden" name="workspace" value=workspace_id.to_string() />
                                    <div>
                                        <label for="maintenance-weekday" class="block text-sm font-medium text-slate-800">"Weekday"</label>
                                        <select id="maintenance-weekday" name="weekday" class=format!("mt-1 {INPUT}") disabled=!p.can_maintenance>
                                            {WEEKDAYS.iter().enumerate().map(|(i, d)| view! {
                                                <option value=i.to_string() selected=i as i16 == w.maintenance_weekday>{*d}</option>
                                            }).collect_view()}
                                        </select>
                                    </div>
                                    <div>
                                        <label for="maintenance-hour" class="block text-sm font-medium text-slate-800">"Hour (UTC)"</label>
                                        <input id="maintenance-hour" name="hour" type="number" min="0" max="23" value=w.maintenance_hour.to_string()
                                            class=format!("mt-1 {INPUT}") disabled=!p.can_maintenance />
                                    </div>
                                    <label class="flex items-center gap-2 text-sm">
                                        <input type="checkbox" name="auto_patch" value="on" checked=w.auto_patch disabled=!p.can_maintenance />"Automatic patching"
                                    </label>
                                    {p.can_maintenance.then(|| view! { <div><Submit label="Save" pending=maintenance.pending() class=BUTTON_SECONDARY /></div> })}
                                </ActionForm>
                                <FormError error=maintenance_error />
                            </Card>
                            {(p.can_delete && w.state != WorkspaceState::Deleting).then(|| view! {
                                <Card title="Delete workspace">
                                    <p class="mb-3 text-sm text-slate-600">"Removes the cluster, its DNS name and everything provisioning built."</p>
                                    <FormError error=delete_error />
                                    <ConfirmButton label="Delete workspace" question=delete_question.clone() confirm_label="Delete"
                                        on_confirm=move || { delete.dispatch(DeleteWorkspace { workspace: workspace_id }); } pending=delete.pending() />
                                </Card>
                            })}
                        </div>
                    }.into_any()
                }
            })}
        </Transition>
        <crate::pages::workspace_kubernetes::KubernetesSection workspace=id />
        <crate::pages::workspace_hosts::WorkspaceHostsCard workspace=id />
        <div class="mt-6"><crate::pages::load_balancers::LoadBalancersCard workspace=id /></div>
        <div class="mt-6"><crate::pages::monitoring::MonitoringCard workspace=id /></div>
        <div class="mt-6"><WorkspaceTasks id refresh=progress /></div>
    }
}
