//! Load balancers: the card on project and workspace pages (list and create
//! form) and one load balancer's page (address, listeners, target health
//! refreshed live, drift the reconciler corrected, change and delete).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use protocol::ids::{LoadBalancerId, ProjectId, WorkspaceId};
use protocol::views::load_balancers::{
    Algorithm, HealthProtocol, ListenerProtocol, LoadBalancerState, LoadBalancerView, TargetHealth,
};

use crate::api::load_balancers::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::hosts::Ticker;

fn state_tone(state: LoadBalancerState) -> Tone {
    match state {
        LoadBalancerState::Active => Tone::Good,
        LoadBalancerState::Error => Tone::Bad,
        LoadBalancerState::Pending | LoadBalancerState::Deleting => Tone::Warn,
    }
}

fn health_badge(health: TargetHealth) -> impl IntoView {
    let (text, tone) = match health {
        TargetHealth::Healthy => ("healthy", Tone::Good),
        TargetHealth::Unhealthy => ("unhealthy", Tone::Bad),
        TargetHealth::Unknown => ("unknown", Tone::Neutral),
    };
    view! { <span data-testid="target-health"><Badge text=text tone /></span> }
}

fn listener_label(l: &protocol::views::load_balancers::Listener) -> String {
    let protocol = match l.protocol {
        ListenerProtocol::Tcp => "TCP",
        ListenerProtocol::Http => "HTTP",
    };
    format!("{protocol} {} → {}", l.port, l.target_port)
}

fn algorithm_label(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RoundRobin => "round robin",
        Algorithm::LeastConnections => "least connections",
    }
}

fn settling(lb: &LoadBalancerView) -> bool {
    matches!(
        lb.state,
        LoadBalancerState::Pending | LoadBalancerState::Deleting
    ) || lb.address.is_none()
}

/// The load balancers of a project (`workspace` unset) or of a workspace.
#[component]
pub fn LoadBalancersCard(
    #[prop(into, default = Signal::stored(None))] project: Signal<Option<ProjectId>>,
    #[prop(into, default = Signal::stored(None))] workspace: Signal<Option<WorkspaceId>>,
) -> impl IntoView {
    let save = ServerAction::<SaveLoadBalancer>::new();
    let ticker = Ticker::new();
    let section = Resource::new(
        move || {
            (
                project.get(),
                workspace.get(),
                ticker.tick.get(),
                save.version().get(),
            )
        },
        |(project, workspace, ..)| async move {
            if project.is_none() && workspace.is_none() {
                return Err(AppError::NotFound);
            }
            list_load_balancers(project, workspace).await
        },
    );
    ticker
        .start(move || section.with(|s| matches!(s, Some(Ok(s)) if s.items.iter().any(settling))));
    let (open, set_open) = signal(false);
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            set_open.set(false);
        }
    });
    view! {
        <Card title="Load balancers" id="load-balancers">
            <div data-testid="load-balancers">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || section.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(s) => {
                            let can_manage = s.can_manage;
                            let hosts = s.hosts.clone();
                            view! {
                                <LoadBalancerTable items=s.items />
                                {can_manage.then(|| view! {
                                    <div class="mt-4">
                                        <Show when=move || open.get() fallback=move || view! {
                                            <button type="button" class=BUTTON_SECONDARY on:click=move |_| set_open.set(true)>
                                                "New load balancer"
                                            </button>
                                        }>
                                            <h3 class="text-sm font-semibold">"New load balancer"</h3>
                                            <LoadBalancerForm save project=project.get_untracked() workspace=workspace.get_untracked() existing=None hosts=hosts.clone() />
                                        </Show>
                                    </div>
                                })}
                                {(!can_manage).then(|| view! {
                                    <p class="mt-4 text-sm text-slate-600">"Your role here does not include managing load balancers (loadbalancer.manage)."</p>
                                })}
                            }.into_any()
                        }
                    })}
                </Transition>
            </div>
        </Card>
    }
}

#[component]
fn LoadBalancerTable(items: Vec<LoadBalancerView>) -> impl IntoView {
    if items.is_empty() {
        return view! {
            <Empty text="No load balancers yet" hint="A load balancer spreads TCP connections or HTTP requests over hosts or addresses and stops sending to targets that fail their health check." />
        }
        .into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <table class=TABLE>
                <thead><tr>
                    <th class=TH>"Name"</th><th class=TH>"State"</th><th class=TH>"Address"</th><th class=TH>"Listeners"</th>
                    <th class=TH>"Targets healthy"</th><th class=TH>"Backend"</th>
                </tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {items.into_iter().map(|lb| {
                        let total = lb.targets.len();
                        let healthy = lb.targets.iter()
                            .filter(|t| !t.health.is_empty() && t.health.iter().all(|(_, h)| *h == TargetHealth::Healthy))
                            .count();
                        view! {
                            <tr data-testid="load-balancer-row">
                                <td class=TD>
                                    <A href=format!("/load-balancers/{}", lb.id) attr:class=LINK>{lb.name.clone()}</A>
                                    {lb.service.clone().map(|s| view! { <p class="text-xs text-slate-500">{format!("Service {s}")}</p> })}
                                </td>
                                <td class=TD><Badge text=lb.state.label() tone=state_tone(lb.state) /></td>
                                <td class=TD><code>{lb.address.clone().unwrap_or_else(|| "–".into())}</code></td>
                                <td class=TD>{lb.listeners.iter().map(listener_label).collect::<Vec<_>>().join(", ")}</td>
                                <td class=TD>{format!("{healthy} / {total}")}</td>
                                <td class=TD>{lb.backend.clone()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

fn invalid(error: Signal<Option<AppError>>, field: &'static str) -> impl Fn() -> String {
    move || {
        error
            .get()
            .and_then(|e| e.for_field(field))
            .is_some()
            .to_string()
    }
}

/// The create form, or the change form when `existing` is given.
#[component]
fn LoadBalancerForm(
    save: ServerAction<SaveLoadBalancer>,
    project: Option<ProjectId>,
    workspace: Option<WorkspaceId>,
    existing: Option<LoadBalancerView>,
    hosts: Vec<String>,
) -> impl IntoView {
    let error = error_of(save.value());
    let prefix = if existing.is_some() {
        "edit-lb"
    } else {
        "new-lb"
    };
    let id = move |field: &str| format!("{prefix}-{field}");
    let health = existing
        .as_ref()
        .map(|lb| lb.health.clone())
        .unwrap_or_default();
    let name = existing
        .as_ref()
        .map(|lb| lb.name.clone())
        .unwrap_or_default();
    let listeners = existing
        .as_ref()
        .map(|lb| listeners_text(&lb.listeners))
        .unwrap_or_else(|| "http 80 8080".into());
    let targets = existing
        .as_ref()
        .map(|lb| {
            lb.targets
                .iter()
                .map(|t| t.label.clone())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let algorithm = existing.as_ref().map(|lb| lb.algorithm).unwrap_or_default();
    let hosts_hint = if hosts.is_empty() {
        "No hosts here yet: give IP addresses (e.g. node addresses for a NodePort), one per line."
            .to_string()
    } else {
        format!(
            "One per line: a host ({}) or an IP address.",
            hosts.join(", ")
        )
    };
    let lb_id = existing.as_ref().map(|lb| lb.id.to_string());
    let submit = if existing.is_some() {
        "Save changes"
    } else {
        "Create load balancer"
    };
    view! {
        <ActionForm action=save attr:class="mt-2 grid gap-4 sm:grid-cols-2" attr:data-testid=format!("{prefix}-form")>
            {project.map(|p| view! { <input type="hidden" name="project" value=p.to_string() /> })}
            {workspace.map(|w| view! { <input type="hidden" name="workspace" value=w.to_string() /> })}
            {lb_id.map(|l| view! { <input type="hidden" name="load_balancer" value=l /> })}
            <div>
                <label for=id("name") class="block text-sm font-medium text-slate-800">"Name"</label>
                <input id=id("name") name="name" required autocomplete="off" placeholder="web" value=name
                    readonly=existing.is_some() class=format!("mt-1 {INPUT}") aria-invalid=invalid(error, "name") />
                <p class="mt-1 text-xs text-slate-500">"Lowercase letters, digits and dashes; unique in the project."</p>
                {field_error(error, "name")}
            </div>
            <div>
                <label for=id("algorithm") class="block text-sm font-medium text-slate-800">"Algorithm"</label>
                <select id=id("algorithm") name="algorithm" class=format!("mt-1 {INPUT}")>
                    <option value="round_robin" selected=algorithm == Algorithm::RoundRobin>"Round robin"</option>
                    <option value="least_connections" selected=algorithm == Algorithm::LeastConnections>"Least connections"</option>
                </select>
                {field_error(error, "algorithm")}
            </div>
            <div>
                <label for=id("listeners") class="block text-sm font-medium text-slate-800">"Listeners"</label>
                <textarea id=id("listeners") name="listeners" rows="3" required class=format!("mt-1 font-mono {INPUT}")
                    aria-invalid=invalid(error, "listeners")>{listeners}</textarea>
                <p class="mt-1 text-xs text-slate-500">"One per line: protocol, port, target port — e.g. \"http 80 8080\" or \"tcp 5432\"."</p>
                {field_error(error, "listeners")}
            </div>
            <div>
                <label for=id("targets") class="block text-sm font-medium text-slate-800">"Targets"</label>
                <textarea id=id("targets") name="targets" rows="3" class=format!("mt-1 font-mono {INPUT}")
                    aria-invalid=invalid(error, "targets")>{targets}</textarea>
                <p class="mt-1 text-xs text-slate-500">{hosts_hint}</p>
                {field_error(error, "targets")}
            </div>
            <fieldset class="sm:col-span-2 grid gap-4 sm:grid-cols-4 rounded-md border border-slate-200 p-3">
                <legend class="px-1 text-sm font-medium text-slate-800">"Health check"</legend>
                <div>
                    <label for=id("health-protocol") class="block text-sm text-slate-700">"Protocol"</label>
                    <select id=id("health-protocol") name="health_protocol" class=format!("mt-1 {INPUT}")>
                        <option value="tcp" selected=health.protocol == HealthProtocol::Tcp>"TCP connect"</option>
                        <option value="http" selected=health.protocol == HealthProtocol::Http>"HTTP GET"</option>
                    </select>
                </div>
                <div>
                    <label for=id("health-path") class="block text-sm text-slate-700">"Path (HTTP)"</label>
                    <input id=id("health-path") name="health_path" value=health.path.clone() class=format!("mt-1 {INPUT}")
                        aria-invalid=invalid(error, "health_path") />
                    {field_error(error, "health_path")}
                </div>
                <div>
                    <label for=id("health-port") class="block text-sm text-slate-700">"Port"</label>
                    <input id=id("health-port") name="health_port" inputmode="numeric" placeholder="target port"
                        value=health.port.map(|p| p.to_string()).unwrap_or_default() class=format!("mt-1 {INPUT}")
                        aria-invalid=invalid(error, "health_port") />
                    {field_error(error, "health_port")}
                </div>
                <div>
                    <label for=id("health-interval") class="block text-sm text-slate-700">"Interval (s)"</label>
                    <input id=id("health-interval") name="health_interval" type="number" min="1" max="3600" required
                        value=health.interval_seconds.to_string() class=format!("mt-1 {INPUT}") aria-invalid=invalid(error, "health_interval") />
                    {field_error(error, "health_interval")}
                </div>
                <div>
                    <label for=id("health-timeout") class="block text-sm text-slate-700">"Timeout (s)"</label>
                    <input id=id("health-timeout") name="health_timeout" type="number" min="1" required
                        value=health.timeout_seconds.to_string() class=format!("mt-1 {INPUT}") aria-invalid=invalid(error, "health_timeout") />
                    {field_error(error, "health_timeout")}
                </div>
                <div>
                    <label for=id("healthy-threshold") class="block text-sm text-slate-700">"Healthy after"</label>
                    <input id=id("healthy-threshold") name="healthy_threshold" type="number" min="1" max="10" required
                        value=health.healthy_threshold.to_string() class=format!("mt-1 {INPUT}") aria-invalid=invalid(error, "healthy_threshold") />
                    {field_error(error, "healthy_threshold")}
                </div>
                <div>
                    <label for=id("unhealthy-threshold") class="block text-sm text-slate-700">"Unhealthy after"</label>
                    <input id=id("unhealthy-threshold") name="unhealthy_threshold" type="number" min="1" max="10" required
                        value=health.unhealthy_threshold.to_string() class=format!("mt-1 {INPUT}") aria-invalid=invalid(error, "unhealthy_threshold") />
                    {field_error(error, "unhealthy_threshold")}
                </div>
            </fieldset>
            <div class="sm:col-span-2"><Submit label=submit pending=save.pending() /></div>
        </ActionForm>
        <div class="mt-2"><FormError error fields=FORM_FIELDS /></div>
    }
}

#[component]
pub fn LoadBalancerPage() -> impl IntoView {
    view! {
        <SignedIn>
            <LoadBalancer />
        </SignedIn>
    }
}

#[component]
fn LoadBalancer() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("lb")
            .and_then(|s| s.parse::<LoadBalancerId>().ok())
    });
    let save = ServerAction::<SaveLoadBalancer>::new();
    let delete = ServerAction::<DeleteLoadBalancer>::new();
    let ticker = Ticker::new();
    let page = Resource::new(
        move || (id.get(), ticker.tick.get(), save.version().get()),
        |(id, ..)| async move { get_load_balancer(id.ok_or(AppError::NotFound)?).await },
    );
    // Target health changes on its own: keep the page current while it is open.
    ticker.start(move || page.with(|p| matches!(p, Some(Ok(_)))));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(()))) {
            navigate("/projects", Default::default());
        }
    });
    let delete_error = error_of(delete.value());
    let saved = Signal::derive(move || {
        matches!(save.value().get(), Some(Ok(_)))
            .then(|| "Saved. The load balancer is being updated.".to_string())
    });
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || page.get().map(|r| match r {
                Err(e) => view! { <ErrorText error=e /> }.into_any(),
                Ok(p) => {
                    let lb = p.lb.clone();
                    let lb_id = lb.id;
                    let editing = lb.clone();
                    let back = match lb.workspace {
                        Some(w) => format!("/workspaces/{w}#load-balancers"),
                        None => format!("/projects/{}#load-balancers", lb.project),
                    };
                    let question = format!("Delete load balancer {}? Clients using {} lose their connection.", lb.name, lb.address.clone().unwrap_or_else(|| "its address".into()));
                    view! {
                        <Title text=lb.name.clone() />
                        <p class="text-sm text-slate-500"><A href=back attr:class=LINK>{if lb.workspace.is_some() { "Workspace" } else { "Project" }}</A>" / load balancer"</p>
                        <PageHeader title=lb.name.clone() />
                        <div class="space-y-6">
                            <Card title="Overview">
                                <dl class="grid gap-4 text-sm sm:grid-cols-4">
                                    <div><dt class="text-slate-500">"State"</dt><dd data-testid="lb-state"><Badge text=lb.state.label() tone=state_tone(lb.state) /></dd></div>
                                    <div><dt class="text-slate-500">"Address"</dt><dd><code data-testid="lb-address">{lb.address.clone().unwrap_or_else(|| "being assigned…".into())}</code></dd></div>
                                    <div><dt class="text-slate-500">"Algorithm"</dt><dd>{algorithm_label(lb.algorithm)}</dd></div>
                                    <div><dt class="text-slate-500">"Backend"</dt><dd>{lb.backend.clone()}</dd></div>
                                    <div class="sm:col-span-2"><dt class="text-slate-500">"Listeners"</dt><dd>{lb.listeners.iter().map(listener_label).collect::<Vec<_>>().join(", ")}</dd></div>
                                    <div class="sm:col-span-2"><dt class="text-slate-500">"Health check"</dt><dd>{format!(
                                        "{} every {} s, timeout {} s; down after {} failures, up after {} successes",
                                        match lb.health.protocol { HealthProtocol::Tcp => "TCP connect".to_string(), HealthProtocol::Http => format!("HTTP GET {}", lb.health.path) },
                                        lb.health.interval_seconds, lb.health.timeout_seconds, lb.health.unhealthy_threshold, lb.health.healthy_threshold,
                                    )}</dd></div>
                                    {lb.service.clone().map(|s| view! { <div class="sm:col-span-2"><dt class="text-slate-500">"Kubernetes Service"</dt><dd><code>{s}</code></dd></div> })}
                                </dl>
                                {lb.last_error.clone().map(|e| view! {
                                    <p role="alert" class="mt-4 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{format!("The backend refused the last change: {e}")}</p>
                                })}
                                {lb.drift.clone().map(|d| view! {
                                    <p data-testid="lb-drift" class="mt-4 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">{format!("Drift corrected: {d}")}</p>
                                })}
                            </Card>
                            <Card title="Targets">
                                {if lb.targets.is_empty() {
                                    view! { <Empty text="No targets" hint="Add hosts or addresses below; until then every request is refused." /> }.into_any()
                                } else {
                                    view! {
                                        <table class=TABLE data-testid="lb-targets">
                                            <thead><tr><th class=TH>"Target"</th><th class=TH>"Address"</th><th class=TH>"Health per port"</th></tr></thead>
                                            <tbody class="divide-y divide-slate-100">
                                                {lb.targets.iter().map(|t| view! {
                                                    <tr data-testid="lb-target">
                                                        <td class=TD>{t.label.clone()}</td>
                                                        <td class=TD><code>{t.address.map(|a| a.to_string()).unwrap_or_else(|| "no address".into())}</code></td>
                                                        <td class=TD>
                                                            {if t.health.is_empty() {
                                                                view! { <span class="text-slate-500">"not checked yet"</span> }.into_any()
                                                            } else {
                                                                t.health.iter().map(|(port, h)| view! {
                                                                    <span class="mr-3 inline-flex items-center gap-1"><span class="text-slate-600">{format!("{port}:")}</span>{health_badge(*h)}</span>
                                                                }).collect_view().into_any()
                                                            }}
                                                        </td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                            </Card>
                            {p.can_manage.then(|| view! {
                                <Card title="Change">
                                    <Notice text=saved />
                                    <LoadBalancerForm save project=None workspace=None existing=Some(editing.clone()) hosts=p.hosts.clone() />
                                </Card>
                                <Card title="Delete">
                                    <FormError error=delete_error />
                                    <ConfirmButton label="Delete load balancer" question=question.clone() confirm_label="Delete"
                                        pending=delete.pending()
                                        on_confirm=move || { delete.dispatch(DeleteLoadBalancer { load_balancer: lb_id }); } />
                                </Card>
                            })}
                        </div>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
