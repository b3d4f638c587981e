//! A Kubernetes workspace's cluster in the portal: the Kubernetes section of
//! the workspace page (API health, version, nodes, pods, namespaces, recent
//! warnings, upgrade matrix) and the nodes page, where nodes are cordoned
//! and drained with a plan shown before anything happens and the drain
//! followed live.

use std::collections::BTreeSet;

use leptos::html::Dialog;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use protocol::ids::WorkspaceId;
use protocol::views::display_time;
use protocol::views::drain::{
    DrainOptions, DrainPlan, MAX_TIMEOUT_SECONDS, NodeDrainState, NodeDrainStatus, PodDisposition,
};
use protocol::views::kubernetes::{
    ApiHealth, ClusterSummary, NodeView, UpgradeKind, UpgradeMatrix, display_bytes, display_cpu,
};
use time::OffsetDateTime;

use crate::api::kubernetes::*;
use crate::components::*;
use crate::error::AppError;

fn workspace_param() -> Signal<Option<WorkspaceId>> {
    let params = use_params_map();
    Signal::derive(move || {
        params
            .read()
            .get("workspace")
            .and_then(|s| s.parse::<WorkspaceId>().ok())
    })
}

/// Bumps `tick` every `seconds` while `busy` says so, in the browser only;
/// stops when the component goes away.
fn poll_while(seconds: u64, busy: impl Fn() -> bool + 'static, tick: RwSignal<u64>) {
    let flag = StoredValue::new(false);
    Effect::new(move |_| flag.set_value(busy()));
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let beat = move || {
                if flag.try_get_value().unwrap_or(false) {
                    tick.update(|t| *t += 1);
                }
            };
            if let Ok(handle) =
                set_interval_with_handle(beat, std::time::Duration::from_secs(seconds))
            {
                on_cleanup(move || handle.clear());
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (seconds, tick, flag);
    });
}

/// `45s`, `12m`, `3h`, `5d`: ages as `kubectl get` prints them.
fn age(from: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let Some(from) = from else {
        return "–".into();
    };
    let s = (now - from).whole_seconds().max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

// ----- the section on the workspace page -----

/// The Kubernetes section of a workspace page; nothing for bare-metal
/// workspaces or callers without `workspace.kubernetes.read`.
#[component]
pub fn KubernetesSection(workspace: Signal<Option<WorkspaceId>>) -> impl IntoView {
    let refresh = RwSignal::new(0u64);
    let summary = Resource::new(
        move || (workspace.get(), refresh.get()),
        |(w, _)| async move { get_cluster_summary(w.ok_or(AppError::NotFound)?).await },
    );
    // A workspace still being built is looked at again until its cluster
    // can be read.
    poll_while(
        3,
        move || {
            summary.with(
                |s| matches!(s, Some(Ok(s)) if matches!(s.health, ApiHealth::NotReady { .. })),
            )
        },
        refresh,
    );
    let matrix = Resource::new(
        move || workspace.get(),
        |w| async move { get_upgrade_matrix(w.ok_or(AppError::NotFound)?).await },
    );
    view! {
        <Transition fallback=|| view! {
            <p class="mt-6 text-sm text-slate-500" role="status">"Reading the cluster…"</p>
        }>
            {move || summary.get().map(|r| match r {
                // The workspace page says "not found" already; a role without
                // the key simply has no Kubernetes section.
                Err(AppError::NotFound | AppError::Forbidden(_)) => ().into_any(),
                Ok(s) if s.health == ApiHealth::NotKubernetes => ().into_any(),
                Err(e) => view! {
                    <div class="mt-6"><Card title="Kubernetes" id="kubernetes"><ErrorText error=e /></Card></div>
                }.into_any(),
                Ok(s) => {
                    let nodes_href = workspace
                        .get_untracked()
                        .map(|w| format!("/workspaces/{w}/nodes"))
                        .unwrap_or_default();
                    view! {
                        <div class="mt-6" data-testid="kubernetes-section">
                            <Card title="Kubernetes" id="kubernetes">
                                <SummaryBody summary=s nodes_href />
                                <div class="mt-4 flex flex-wrap items-center gap-3">
                                    <Button class=BUTTON_SECONDARY on_click=move || refresh.update(|r| *r += 1)>"Refresh"</Button>
                                </div>
                                <UpgradeMatrixView matrix />
                            </Card>
                        </div>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

fn health_badge(health: &ApiHealth) -> impl IntoView + use<> {
    let (text, tone) = match health {
        ApiHealth::Healthy => ("healthy", Tone::Good),
        ApiHealth::Unreachable { .. } => ("unreachable", Tone::Bad),
        ApiHealth::NotReady { .. } => ("not ready", Tone::Warn),
        ApiHealth::NotKubernetes => ("none", Tone::Neutral),
    };
    view! { <span data-testid="cluster-health"><Badge text=text tone /></span> }
}

#[component]
fn SummaryBody(summary: ClusterSummary, nodes_href: String) -> impl IntoView {
    let s = summary;
    let problem = s.health.explain().map(|text| {
        let tone = if matches!(s.health, ApiHealth::Unreachable { .. }) {
            "border-rose-200 bg-rose-50 text-rose-800"
        } else {
            "border-amber-200 bg-amber-50 text-amber-900"
        };
        view! {
            <p role="alert" data-testid="cluster-problem" class=format!("mb-4 rounded-md border p-3 text-sm {tone}")>{text}</p>
        }
    });
    let healthy = s.health.is_healthy();
    view! {
        {problem}
        <dl class="grid grid-cols-2 gap-4 text-sm sm:grid-cols-4">
            <div><dt class="text-slate-500">"API server"</dt><dd class="mt-1">{health_badge(&s.health)}</dd></div>
            <div><dt class="text-slate-500">"Version"</dt><dd class="mt-1" data-testid="cluster-version">{s.version.clone().unwrap_or_else(|| "–".into())}</dd></div>
            <div>
                <dt class="text-slate-500">"Nodes"</dt>
                <dd class="mt-1" data-testid="node-count">
                    {if healthy {
                        let cordoned = (s.nodes.cordoned > 0).then(|| format!(" · {} cordoned", s.nodes.cordoned));
                        format!("{} of {} ready{}", s.nodes.ready, s.nodes.total, cordoned.unwrap_or_default())
                    } else {
                        "–".into()
                    }}
                </dd>
                <dd class="mt-1"><A href=nodes_href attr:class=LINK attr:data-testid="nodes-link">"Nodes and drains →"</A></dd>
            </div>
            <div>
                <dt class="text-slate-500">"Pods"</dt>
                <dd class="mt-1 flex flex-wrap gap-1" data-testid="pod-phases">
                    {if s.pods.is_empty() {
                        view! { <span class="text-slate-500">{if healthy { "none" } else { "–" }}</span> }.into_any()
                    } else {
                        s.pods.iter().map(|p| {
                            let tone = match p.phase.as_str() {
                                "Running" | "Succeeded" => Tone::Good,
                                "Pending" => Tone::Warn,
                                "Failed" => Tone::Bad,
                                _ => Tone::Neutral,
                            };
                            view! { <Badge text=format!("{} {}", p.count, p.phase) tone /> }
                        }).collect_view().into_any()
                    }}
                </dd>
            </div>
        </dl>
        {healthy.then(|| view! {
            <div class="mt-4 text-sm">
                <h3 class="font-semibold">{format!("Namespaces ({})", s.namespaces.len())}</h3>
                <p class="mt-1 flex flex-wrap gap-1">
                    {s.namespaces.iter().map(|n| view! {
                        <span class="inline-block rounded bg-slate-100 px-2 py-0.5 font-mono text-xs">{n.clone()}</span>
                    }).collect_view()}
                </p>
            </div>
            <div class="mt-4 text-sm">
                <h3 class="mb-2 font-semibold">"Recent warnings"</h3>
                {if s.warnings.is_empty() {
                    view! { <p class="text-slate-500">"No warning events."</p> }.into_any()
                } else {
                    view! {
                        <div class="overflow-x-auto">
                            <table class=TABLE data-testid="cluster-warnings">
                                <thead><tr>
                                    <th class=TH>"Object"</th><th class=TH>"Reason"</th><th class=TH>"Message"</th>
                                    <th class=TH>"Count"</th><th class=TH>"Last seen"</th>
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {s.warnings.iter().map(|e| view! {
                                        <tr>
                                            <td class=TD><code>{if e.namespace.is_empty() { e.object.clone() } else { format!("{}/{}", e.namespace, e.object) }}</code></td>
                                            <td class=TD>{e.reason.clone()}</td>
                                            <td class=TD>{e.message.clone()}</td>
                                            <td class=TD>{e.count}</td>
                                            <td class=TD>{e.last_seen.map(display_time).unwrap_or_else(|| "–".into())}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
            </div>
        })}
        <p class="mt-3 text-xs text-slate-500">{format!("Read {}", display_time(s.observed_at))}</p>
    }
}

#[component]
fn UpgradeMatrixView(matrix: Resource<Result<UpgradeMatrix, AppError>>) -> impl IntoView {
    view! {
        <div class="mt-6 text-sm">
            <h3 class="mb-2 font-semibold">"Upgrade matrix"</h3>
            <Transition fallback=|| view! { <Loading /> }>
                {move || matrix.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(m) if m.current.is_none() => view! {
                        <p class="text-slate-500">"The workspace's version is not known."</p>
                    }.into_any(),
                    Ok(m) if m.targets.is_empty() => view! {
                        <p class="text-slate-600" data-testid="upgrade-none">
                            {format!("{} is the newest version the catalog offers this workspace.", m.current.unwrap_or_default())}
                        </p>
                    }.into_any(),
                    Ok(m) => view! {
                        <p class="text-slate-600">
                            {format!("From {} the workspace may move to (one minor version at a time):", m.current.unwrap_or_default())}
                        </p>
                        <ul class="mt-2 flex flex-wrap gap-2">
                            {m.targets.into_iter().map(|t| view! {
                                <li data-testid="upgrade-target" class="inline-flex items-center gap-1 rounded border border-slate-200 px-2 py-1">
                                    <span class="font-mono">{t.version}</span>
                                    <Badge text=t.kind.label() tone=if t.kind == UpgradeKind::Minor { Tone::Warn } else { Tone::Good } />
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Transition>
        </div>
    }
}

// ----- the nodes page -----

type NodesResource = Resource<Result<NodesPage, AppError>>;

#[component]
pub fn WorkspaceNodesPage() -> impl IntoView {
    view! {
        <SignedIn>
            <Nodes />
        </SignedIn>
    }
}

fn drain_tone(state: &NodeDrainState) -> Tone {
    match state {
        NodeDrainState::Active => Tone::Good,
        NodeDrainState::Cordoned | NodeDrainState::Draining => Tone::Warn,
        NodeDrainState::Drained => Tone::Neutral,
        NodeDrainState::Failed { .. } => Tone::Bad,
    }
}

/// Where a node stands: the drain engine's word if it has one, else the
/// node's own cordon.
fn status_of(node: &NodeView, drains: &[NodeDrainStatus]) -> NodeDrainStatus {
    drains
        .iter()
        .find(|d| d.node == node.name)
        .cloned()
        .unwrap_or_else(|| NodeDrainStatus {
            node: node.name.clone(),
            state: if node.unschedulable {
                NodeDrainState::Cordoned
            } else {
                NodeDrainState::Active
            },
            task: None,
            blocked_by: None,
            remaining: Vec::new(),
        })
}

#[component]
fn Nodes() -> impl IntoView {
    let workspace = workspace_param();
    let tick = RwSignal::new(0u64);
    let cordon = ServerAction::<CordonNode>::new();
    let uncordon = ServerAction::<UncordonNode>::new();
    let start = ServerAction::<StartDrain>::new();
    let stop = ServerAction::<StopDrain>::new();
    let page: NodesResource = Resource::new(
        move || {
            (
                workspace.get(),
                tick.get(),
                cordon.version().get(),
                uncordon.version().get(),
                start.version().get(),
                stop.version().get(),
            )
        },
        |(w, ..)| async move { get_workspace_nodes(w.ok_or(AppError::NotFound)?).await },
    );
    // A drain just started or stopped may not show as such at once: keep
    // looking for a few beats after any action, and as long as one runs.
    let grace = RwSignal::new(0u32);
    Effect::new(move |previous: Option<()>| {
        let _ = (
            start.version().get(),
            stop.version().get(),
            cordon.version().get(),
            uncordon.version().get(),
        );
        if previous.is_some() {
            grace.set(5);
        }
    });
    poll_while(
        1,
        move || {
            let draining = page.with(|p| {
                matches!(p, Some(Ok(p)) if p.drains.iter().any(|d| d.state == NodeDrainState::Draining))
            });
            draining || grace.get() > 0
        },
        tick,
    );
    Effect::new(move |_| {
        tick.track();
        grace.update(|g| *g = g.saturating_sub(1));
    });

    let selected = RwSignal::new(BTreeSet::<String>::new());
    let dialog_nodes = RwSignal::new(None::<Vec<String>>);
    let action_error = Signal::derive(move || {
        [
            cordon.value().get().and_then(Result::err),
            uncordon.value().get().and_then(Result::err),
            stop.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .next()
    });
    // A drain that started: clear the choice.
    Effect::new(move |_| {
        if let Some(Ok(_)) = start.value().get() {
            selected.set(BTreeSet::new());
        }
    });
    let back = move || {
        workspace
            .get()
            .map(|w| format!("/workspaces/{w}"))
            .unwrap_or_default()
    };

    view! {
        <Title text="Nodes" />
        <p class="text-sm text-slate-500"><A href=back attr:class=LINK>"Workspace"</A>" / nodes"</p>
        <PageHeader title="Nodes" intro="Every node of the cluster, read live. Cordon a node to stop new pods landing on it; drain it to move its pods elsewhere first." />
        <div class="mb-4"><FormError error=action_error /></div>
        <Transition fallback=|| view! { <p class="text-sm text-slate-500" role="status">"Loading nodes…"</p> }>
            {move || page.get().map(|r| match r {
                Err(e) => view! { <ErrorText error=e /> }.into_any(),
                Ok(p) => match p.nodes.health.explain() {
                    Some(problem) => view! {
                        <p role="alert" data-testid="cluster-problem" class="rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{problem}</p>
                    }.into_any(),
                    None if p.nodes.nodes.is_empty() => view! {
                        <Empty text="No nodes yet" hint="Nodes appear here once hosts join the cluster; order hosts on the workspace page." />
                    }.into_any(),
                    None => view! {
                        <NodesTable page=p selected dialog_nodes cordon uncordon stop workspace />
                    }.into_any(),
                },
            })}
        </Transition>
        <DrainDialog workspace nodes=dialog_nodes start />
    }
}

#[component]
fn NodesTable(
    page: NodesPage,
    selected: RwSignal<BTreeSet<String>>,
    dialog_nodes: RwSignal<Option<Vec<String>>>,
    cordon: ServerAction<CordonNode>,
    uncordon: ServerAction<UncordonNode>,
    stop: ServerAction<StopDrain>,
    workspace: Signal<Option<WorkspaceId>>,
) -> impl IntoView {
    let can_drain = page.can_drain;
    let now = page.observed_at;
    let names: Vec<String> = page.nodes.nodes.iter().map(|n| n.name.clone()).collect();
    let all_names = names.clone();
    let all_selected = move || {
        let count = selected.with(|s| all_names.iter().filter(|n| s.contains(*n)).count());
        count > 0 && count == all_names.len()
    };
    let pick_all = move |on: bool| {
        selected.set(if on {
            names.iter().cloned().collect()
        } else {
            BTreeSet::new()
        });
    };
    let count = move || selected.with(BTreeSet::len);
    let busy = Signal::derive(move || {
        cordon.pending().get() || uncordon.pending().get() || stop.pending().get()
    });
    view! {
        {can_drain.then(|| view! {
            <div class="mb-3 flex flex-wrap items-center gap-3">
                <Button
                    attr:data-testid="drain-selected"
                    disabled=Signal::derive(move || count() == 0)
                    on_click=move || dialog_nodes.set(Some(selected.get_untracked().into_iter().collect()))
                >
                    {move || match count() {
                        0 => "Drain…".to_string(),
                        1 => "Drain 1 node…".to_string(),
                        n => format!("Drain {n} nodes…"),
                    }}
                </Button>
                <span class="text-sm text-slate-500">"Several nodes are drained one after another."</span>
            </div>
        })}
        {(!can_drain).then(|| view! {
            <p class="mb-3 text-sm text-slate-600">"Your role here does not include cordoning and draining nodes (node.drain)."</p>
        })}
        <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
            <table class=TABLE data-testid="nodes">
                <thead><tr>
                    <th class=TH>
                        <input type="checkbox" aria-label="Select all nodes" disabled=!can_drain
                            prop:checked=all_selected
                            on:change=move |ev| pick_all(event_target_checked(&ev)) />
                    </th>
                    <th class=TH>"Node"</th><th class=TH>"State"</th><th class=TH>"Kubelet"</th><th class=TH>"Internal IP"</th>
                    <th class=TH>"CPU (allocatable / capacity)"</th><th class=TH>"Memory (allocatable / capacity)"</th>
                    <th class=TH>"Pods"</th><th class=TH>"Age"</th><th class=TH>"Host"</th>
                    <th class=TH><span class="sr-only">"Actions"</span></th>
                </tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {page.nodes.nodes.iter().map(|n| {
                        let status = status_of(n, &page.drains);
                        view! {
                            <NodeRow node=n.clone() status can_drain now selected dialog_nodes cordon uncordon stop workspace busy />
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn NodeRow(
    node: NodeView,
    status: NodeDrainStatus,
    can_drain: bool,
    now: OffsetDateTime,
    selected: RwSignal<BTreeSet<String>>,
    dialog_nodes: RwSignal<Option<Vec<String>>>,
    cordon: ServerAction<CordonNode>,
    uncordon: ServerAction<UncordonNode>,
    stop: ServerAction<StopDrain>,
    workspace: Signal<Option<WorkspaceId>>,
    busy: Signal<bool>,
) -> impl IntoView {
    let name = node.name.clone();
    let draining = status.state == NodeDrainState::Draining;
    let checked = {
        let name = name.clone();
        move || selected.with(|s| s.contains(&name))
    };
    let toggle = {
        let name = name.clone();
        move |on: bool| {
            selected.update(|s| {
                if on {
                    s.insert(name.clone());
                } else {
                    s.remove(&name);
                }
            })
        }
    };
    let detail = match &status.state {
        NodeDrainState::Draining => {
            let blocked = status.blocked_by.clone().map(|pdb| view! {
                <p data-testid="drain-blocked" class="mt-1 text-xs text-amber-800">{format!("Blocked by PodDisruptionBudget {pdb}")}</p>
            });
            let remaining = (!status.remaining.is_empty()).then(|| view! {
                <p data-testid="drain-remaining" class="mt-1 max-w-xs text-xs text-slate-600">
                    {format!("{} to go: {}", plural(status.remaining.len(), "pod"), status.remaining.join(", "))}
                </p>
            });
            view! { {blocked}{remaining} }.into_any()
        }
        NodeDrainState::Failed { reason } => view! {
            <p data-testid="drain-failed" class="mt-1 max-w-xs text-xs text-rose-700">{reason.clone()}</p>
            {(!status.remaining.is_empty()).then(|| view! {
                <p class="mt-1 max-w-xs text-xs text-slate-600">{format!("Left: {}", status.remaining.join(", "))}</p>
            })}
        }.into_any(),
        _ => ().into_any(),
    };
    let task_link = status.task.map(|t| {
        view! {
            <A href=format!("/tasks/{t}") attr:class=format!("text-xs {LINK}")>"Task"</A>
        }
    });
    let actions = can_drain.then(|| {
        let node_name = name.clone();
        let cordon_button = if draining {
            ().into_any()
        } else if node.unschedulable {
            let n = node_name.clone();
            view! {
                <Button class=BUTTON_SECONDARY disabled=busy aria_label=format!("Uncordon {node_name}")
                    on_click=move || {
                        if let Some(w) = workspace.get_untracked() {
                            uncordon.dispatch(UncordonNode { workspace: w, node: n.clone() });
                        }
                    }>"Uncordon"</Button>
            }.into_any()
        } else {
            let n = node_name.clone();
            view! {
                <Button class=BUTTON_SECONDARY disabled=busy aria_label=format!("Cordon {node_name}")
                    on_click=move || {
                        if let Some(w) = workspace.get_untracked() {
                            cordon.dispatch(CordonNode { workspace: w, node: n.clone() });
                        }
                    }>"Cordon"</Button>
            }.into_any()
        };
        let drain_or_stop = match (draining, status.task) {
            (true, Some(task)) => view! {
                <Button class=BUTTON_DANGER disabled=busy attr:data-testid="drain-stop" aria_label=format!("Stop draining {node_name}")
                    on_click=move || {
                        if let Some(w) = workspace.get_untracked() {
                            stop.dispatch(StopDrain { workspace: w, task });
                        }
                    }>"Stop"</Button>
            }.into_any(),
            (true, None) => ().into_any(),
            (false, _) => {
                let n = node_name.clone();
                view! {
                    <Button class=BUTTON_SECONDARY aria_label=format!("Drain {node_name}…")
                        on_click=move || dialog_nodes.set(Some(vec![n.clone()]))>"Drain…"</Button>
                }.into_any()
            }
        };
        view! { <div class="flex flex-wrap gap-2">{cordon_button}{drain_or_stop}</div> }
    });
    let roles = if node.roles.is_empty() {
        "worker".to_string()
    } else {
        node.roles.join(", ")
    };
    view! {
        <tr data-testid="node-row" data-node=name.clone()>
            <td class=TD>
                <input type="checkbox" aria-label=format!("Select {name}") disabled=!can_drain
                    prop:checked=checked on:change=move |ev| toggle(event_target_checked(&ev)) />
            </td>
            <td class=TD>
                <span class="whitespace-nowrap font-medium">{name.clone()}</span>
                <p class="text-xs text-slate-500">{roles}</p>
            </td>
            <td class=TD>
                <div class="flex flex-wrap items-center gap-1">
                    <span data-testid="node-state"><Badge text=status.state.label() tone=drain_tone(&status.state) /></span>
                    {if node.ready {
                        view! { <Badge text="Ready" tone=Tone::Good /> }.into_any()
                    } else {
                        view! { <Badge text="NotReady" tone=Tone::Bad /> }.into_any()
                    }}
                    {task_link}
                </div>
                {detail}
            </td>
            <td class=TD>{node.kubelet_version.clone().unwrap_or_else(|| "–".into())}</td>
            <td class=TD><code>{node.internal_ip.clone().unwrap_or_else(|| "–".into())}</code></td>
            <td class=TD>{format!("{} / {}", display_cpu(node.allocatable.cpu_millis), display_cpu(node.capacity.cpu_millis))}</td>
            <td class=TD>{format!("{} / {}", display_bytes(node.allocatable.memory_bytes), display_bytes(node.capacity.memory_bytes))}</td>
            <td class=TD>{node.pods}</td>
            <td class=TD>{age(node.created_at, now)}</td>
            <td class=TD>
                {match node.host.clone() {
                    Some(h) => view! { <A href=format!("/hosts/{}", h.id) attr:class=LINK>{h.hostname}</A> }.into_any(),
                    None => view! { <span class="text-slate-500">"–"</span> }.into_any(),
                }}
            </td>
            <td class=TD>{actions}</td>
        </tr>
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

// ----- the drain dialog -----

/// What the dialog's fields say, or which field is wrong.
fn read_options(
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
    force: bool,
    grace: &str,
    timeout: &str,
) -> Result<DrainOptions, (&'static str, String)> {
    let grace_period_seconds: i64 = grace.trim().parse().ok().filter(|g| *g >= -1).ok_or((
        "grace",
        "Use -1 (each pod's own grace period) or a number of seconds.".to_string(),
    ))?;
    let timeout_seconds: u64 = timeout
        .trim()
        .parse()
        .ok()
        .filter(|t| (1..=MAX_TIMEOUT_SECONDS).contains(t))
        .ok_or((
            "timeout",
            format!("Use 1 to {MAX_TIMEOUT_SECONDS} seconds (3 hours)."),
        ))?;
    Ok(DrainOptions {
        ignore_daemonsets,
        delete_emptydir_data,
        force,
        grace_period_seconds,
        timeout_seconds,
    })
}

#[component]
fn DrainDialog(
    workspace: Signal<Option<WorkspaceId>>,
    nodes: RwSignal<Option<Vec<String>>>,
    start: ServerAction<StartDrain>,
) -> impl IntoView {
    let dialog = NodeRef::<Dialog>::new();
    let plan = ServerAction::<PlanDrain>::new();
    let defaults = DrainOptions::default();
    let ignore_daemonsets = RwSignal::new(defaults.ignore_daemonsets);
    let delete_emptydir_data = RwSignal::new(defaults.delete_emptydir_data);
    let force = RwSignal::new(defaults.force);
    let grace = RwSignal::new(defaults.grace_period_seconds.to_string());
    let timeout = RwSignal::new(defaults.timeout_seconds.to_string());
    let options = Memo::new(move |_| {
        read_options(
            ignore_daemonsets.get(),
            delete_emptydir_data.get(),
            force.get(),
            &grace.get(),
            &timeout.get(),
        )
    });
    // The nodes and options the shown plan was made for: a plan for other
    // choices does not permit draining.
    let checked_for = RwSignal::new(None::<(Vec<String>, DrainOptions)>);
    let current = Signal::derive(move || {
        let nodes = nodes.get()?;
        let options = options.get().ok()?;
        Some((nodes, options))
    });
    let fresh_plan = Signal::derive(move || {
        let for_current = checked_for.get().is_some() && checked_for.get() == current.get();
        if !for_current || plan.pending().get() {
            return None;
        }
        plan.value().get().and_then(Result::ok)
    });
    let stale =
        Signal::derive(move || checked_for.get().is_some() && checked_for.get() != current.get());
    let can_confirm = Signal::derive(move || {
        fresh_plan.get().is_some_and(|p: DrainPlan| !p.is_blocked()) && !start.pending().get()
    });

    // Opening resets the dialog to Rancher's defaults; closing (Escape
    // included) forgets the nodes.
    Effect::new(move |_| {
        let open = nodes.with(Option::is_some);
        let Some(el) = dialog.get() else { return };
        if open {
            let defaults = DrainOptions::default();
            ignore_daemonsets.set(defaults.ignore_daemonsets);
            delete_emptydir_data.set(defaults.delete_emptydir_data);
            force.set(defaults.force);
            grace.set(defaults.grace_period_seconds.to_string());
            timeout.set(defaults.timeout_seconds.to_string());
            checked_for.set(None);
            plan.value().set(None);
            start.value().set(None);
            if !el.open() {
                let _ = el.show_modal();
            }
        } else if el.open() {
            el.close();
        }
    });
    // Started: the dialog's work is done.
    Effect::new(move |_| {
        if let Some(Ok(_)) = start.value().get() {
            nodes.set(None);
        }
    });

    let check = move || {
        let (Some(w), Some((n, o))) = (workspace.get_untracked(), current.get_untracked()) else {
            return;
        };
        checked_for.set(Some((n.clone(), o)));
        plan.dispatch(PlanDrain {
            workspace: w,
            nodes: n,
            options: o,
        });
    };
    let confirm = move || {
        let (Some(w), Some((n, o))) = (workspace.get_untracked(), current.get_untracked()) else {
            return;
        };
        start.dispatch(StartDrain {
            workspace: w,
            nodes: n,
            options: o,
        });
    };
    let field_error = move |field: &'static str| {
        move || {
            options
                .get()
                .err()
                .filter(|(f, _)| *f == field)
                .map(|(_, m)| {
                    view! { <p class="mt-1 text-sm text-rose-700">{m}</p> }
                })
        }
    };
    let title = move || match nodes.get() {
        Some(n) if n.len() == 1 => format!("Drain {}", n[0]),
        Some(n) => format!("Drain {} nodes", n.len()),
        None => "Drain".into(),
    };
    let plan_error = error_of(plan.value());
    let start_error = error_of(start.value());

    view! {
        <dialog node_ref=dialog aria-labelledby="drain-title" data-testid="drain-dialog"
            class="m-auto w-full max-w-3xl rounded-lg border border-slate-200 p-0 shadow-xl backdrop:bg-slate-900/40"
            on:close=move |_| nodes.set(None)>
            <div class="max-h-[85vh] overflow-y-auto p-6">
                <h2 id="drain-title" class="text-lg font-semibold">{title}</h2>
                <p class="mt-1 text-sm text-slate-600">
                    "Cordons each node, then evicts its pods, honouring PodDisruptionBudgets. Nodes are drained one after another and stay cordoned afterwards."
                </p>
                <p class="mt-1 text-sm text-slate-600">{move || nodes.get().map(|n| n.join(", ")).unwrap_or_default()}</p>
                <fieldset class="mt-4 grid gap-3 sm:grid-cols-2">
                    <legend class="sr-only">"Drain options"</legend>
                    <label class="flex items-start gap-2 text-sm">
                        <input type="checkbox" autofocus prop:checked=move || ignore_daemonsets.get()
                            on:change=move |ev| ignore_daemonsets.set(event_target_checked(&ev)) />
                        <span>"Ignore DaemonSets"<span class="block text-xs text-slate-500">"Leave DaemonSet pods in place; their controller would put them back."</span></span>
                    </label>
                    <label class="flex items-start gap-2 text-sm">
                        <input type="checkbox" prop:checked=move || delete_emptydir_data.get()
                            on:change=move |ev| delete_emptydir_data.set(event_target_checked(&ev)) />
                        <span>"Delete emptyDir data"<span class="block text-xs text-slate-500">"Evict pods with emptyDir volumes; their data is lost."</span></span>
                    </label>
                    <label class="flex items-start gap-2 text-sm">
                        <input type="checkbox" prop:checked=move || force.get()
                            on:change=move |ev| force.set(event_target_checked(&ev)) />
                        <span>"Force"<span class="block text-xs text-slate-500">"Delete pods no controller manages; they do not come back."</span></span>
                    </label>
                    <div></div>
                    <div>
                        <label for="drain-grace" class="block text-sm font-medium text-slate-800">"Grace period (seconds)"</label>
                        <input id="drain-grace" type="number" min="-1" class=format!("mt-1 {INPUT}") aria-describedby="drain-grace-hint"
                            prop:value=move || grace.get() on:input=move |ev| grace.set(event_target_value(&ev)) />
                        <p id="drain-grace-hint" class="mt-1 text-xs text-slate-500">"-1 gives each pod its own grace period."</p>
                        {field_error("grace")}
                    </div>
                    <div>
                        <label for="drain-timeout" class="block text-sm font-medium text-slate-800">"Timeout (seconds)"</label>
                        <input id="drain-timeout" type="number" min="1" max=MAX_TIMEOUT_SECONDS.to_string() class=format!("mt-1 {INPUT}")
                            aria-describedby="drain-timeout-hint"
                            prop:value=move || timeout.get() on:input=move |ev| timeout.set(event_target_value(&ev)) />
                        <p id="drain-timeout-hint" class="mt-1 text-xs text-slate-500">"How long each node's pods may take to go; at most 3 hours."</p>
                        {field_error("timeout")}
                    </div>
                </fieldset>

                <div class="mt-4 space-y-2">
                    <FormError error=plan_error />
                    <FormError error=start_error />
                    {move || stale.get().then(|| view! {
                        <p class="text-sm text-amber-800" role="status">"The choices changed since the check: check again."</p>
                    })}
                    {move || fresh_plan.get().map(|p| view! { <PlanView plan=p /> })}
                </div>

                <div class="mt-6 flex flex-wrap justify-end gap-2">
                    <button type="button" class=BUTTON_SECONDARY on:click=move |_| nodes.set(None)>"Cancel"</button>
                    <button type="button" class=BUTTON_SECONDARY data-testid="drain-check"
                        disabled=move || current.get().is_none() || plan.pending().get()
                        on:click=move |_| check()>
                        {move || if plan.pending().get() { "Checking…" } else { "Check" }}
                    </button>
                    <button type="button" class=BUTTON_DANGER data-testid="drain-confirm"
                        disabled=move || !can_confirm.get()
                        title=move || (!can_confirm.get()).then_some("Check the plan first; a blocked plan cannot start.")
                        on:click=move |_| confirm()>
                        {move || if start.pending().get() { "Starting…".to_string() } else { title().replacen("Drain", "Drain now:", 1) }}
                    </button>
                </div>
            </div>
        </dialog>
    }
}

fn disposition_kind(d: PodDisposition) -> (&'static str, Tone) {
    match d {
        PodDisposition::Evict => ("evict", Tone::Warn),
        PodDisposition::Delete => ("delete", Tone::Neutral),
        PodDisposition::Skip(_) => ("skip", Tone::Neutral),
        PodDisposition::Block(_) => ("block", Tone::Bad),
    }
}

#[component]
fn PlanView(plan: DrainPlan) -> impl IntoView {
    let blocked = plan.is_blocked();
    view! {
        <div data-testid="drain-plan" class="space-y-4">
            {if blocked {
                view! {
                    <p role="alert" class="rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">
                        "The drain cannot start: some pods block it. Change the options or deal with these pods first."
                    </p>
                }.into_any()
            } else {
                view! {
                    <p role="status" class="rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">
                        "Nothing blocks the drain. Evictions still wait for PodDisruptionBudgets while it runs."
                    </p>
                }.into_any()
            }}
            {plan.nodes.into_iter().map(|n| {
                let evict = n.pods.iter().filter(|p| matches!(p.disposition, PodDisposition::Evict | PodDisposition::Delete)).count();
                let skip = n.pods.iter().filter(|p| matches!(p.disposition, PodDisposition::Skip(_))).count();
                let block = n.blockers().count();
                view! {
                    <div>
                        <h3 class="text-sm font-semibold">
                            {format!("{}: {} to move, {} left in place, {} blocking", n.node, plural(evict, "pod"), skip, block)}
                        </h3>
                        {if n.pods.is_empty() {
                            view! { <p class="text-sm text-slate-500">"No pods on this node."</p> }.into_any()
                        } else {
                            view! {
                                <table class=format!("mt-2 {TABLE}")>
                                    <thead><tr><th class=TH>"Pod"</th><th class=TH>"Owner"</th><th class=TH>"What happens"</th></tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {n.pods.into_iter().map(|p| {
                                            let (kind, tone) = disposition_kind(p.disposition);
                                            view! {
                                                <tr data-testid="planned-pod" data-disposition=kind>
                                                    <td class=TD><code>{p.key()}</code></td>
                                                    <td class=TD>{p.owner.clone().unwrap_or_else(|| "none".into())}</td>
                                                    <td class=TD>
                                                        <Badge text=kind tone />
                                                        <span class="ml-2 text-slate-700">{p.disposition.describe()}</span>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_to_rancher_s_and_name_the_wrong_field() {
        assert_eq!(
            read_options(true, false, false, "-1", "120"),
            Ok(DrainOptions::default())
        );
        assert_eq!(
            read_options(true, false, false, "-2", "120").unwrap_err().0,
            "grace"
        );
        assert_eq!(
            read_options(true, false, false, "-1", "0").unwrap_err().0,
            "timeout"
        );
        assert_eq!(
            read_options(true, false, false, "-1", "10801")
                .unwrap_err()
                .0,
            "timeout"
        );
        assert!(read_options(true, false, false, "30", "10800").is_ok());
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(10);
        assert_eq!(age(Some(now - time::Duration::seconds(45)), now), "45s");
        assert_eq!(age(Some(now - time::Duration::minutes(12)), now), "12m");
        assert_eq!(age(Some(now - time::Duration::hours(5)), now), "5h");
        assert_eq!(age(Some(now - time::Duration::days(3)), now), "3d");
        assert_eq!(age(None, now), "–");
    }
}
