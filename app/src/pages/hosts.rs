//! A host's page (`/hosts/:host`): state, facts, addresses, power, the
//! agent and its tokens, shell sessions, metadata and deletion; and the
//! pieces the workspace page's hosts section shares (badges, formatting, the
//! refresh ticker).
//!
//! While a host is still changing by itself (being provisioned, joining,
//! being deleted, or its agent not connected yet) the page reads it again
//! every 2 s. Each card reads only its slice of the answer through a memo,
//! so a refresh redraws what changed and leaves forms and open
//! confirmations alone.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use protocol::agent::HostFacts;
use protocol::ids::{HostId, WorkspaceId};
use protocol::views::{
    AgentTokenView, HostState, HostView, PowerState, ShellSessionView, display_time,
};
use time::OffsetDateTime;

use crate::api::hosts::*;
use crate::components::*;
use crate::error::AppError;

// ----- shared with the workspace page -----

pub(crate) fn host_state_tone(state: HostState) -> Tone {
    match state {
        HostState::Running => Tone::Good,
        HostState::Error => Tone::Bad,
        HostState::Provisioning
        | HostState::Bootstrapping
        | HostState::Joining
        | HostState::Deleting => Tone::Warn,
    }
}

/// Whether a host is still changing by itself: a step of ordering or
/// deleting runs, or its agent has not connected (yet, or again).
pub(crate) fn settling(host: &HostView) -> bool {
    match host.state {
        HostState::Provisioning
        | HostState::Bootstrapping
        | HostState::Joining
        | HostState::Deleting => true,
        HostState::Error => false,
        HostState::Running => !host.online,
    }
}

/// The badge tests and people look at: "online" or "offline".
#[component]
pub(crate) fn OnlineBadge(online: bool) -> impl IntoView {
    view! {
        <span data-testid="host-online">
            <Badge text=if online { "online" } else { "offline" } tone=if online { Tone::Good } else { Tone::Neutral } />
        </span>
    }
}

/// "last seen 12 s ago" once the browser knows the time, the UTC time
/// before (the server renders that, so hydration matches).
pub(crate) fn last_seen(at: Option<OffsetDateTime>, now: Option<OffsetDateTime>) -> String {
    let Some(at) = at else {
        return "never seen".into();
    };
    let Some(now) = now else {
        return format!("last seen {}", display_time(at));
    };
    let secs = (now - at).whole_seconds().max(0);
    match secs {
        0..=4 => "last seen just now".into(),
        5..=59 => format!("last seen {secs} s ago"),
        60..=3599 => format!("last seen {} min ago", secs / 60),
        3600..=86_399 => format!("last seen {} h ago", secs / 3600),
        _ => format!("last seen {}", display_time(at)),
    }
}

/// Euro cents per month as "€4.51/month".
pub(crate) fn price_per_month(cents: i32) -> String {
    format!("€{}.{:02}/month", cents / 100, cents % 100)
}

/// A profile's size: "2 vCPU, 4 GB RAM, 40 GB disk".
pub(crate) fn profile_size(p: &protocol::views::ComputeProfileView) -> String {
    let ram = if p.ram_mb % 1024 == 0 {
        format!("{} GB", p.ram_mb / 1024)
    } else {
        format!("{} MB", p.ram_mb)
    };
    format!("{} vCPU, {ram} RAM, {} GB disk", p.cpu, p.disk_gb)
}

/// A byte count for people: "512 B", "1.5 KiB", "3.2 MiB".
pub(crate) fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes.abs() < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// "3 d 4 h", "4 h 12 min", "12 min", "45 s".
fn human_uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The browser's clock.
#[cfg(feature = "hydrate")]
fn browser_now() -> Option<OffsetDateTime> {
    let ms = web_sys::js_sys::Date::now();
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()
}

/// Drives a page's refresh: every 2 s in the browser it updates `now` (for
/// "last seen … ago") and, while the data is still settling, bumps `tick`,
/// which a resource lists among its sources. The interval stops when the
/// component goes away.
#[derive(Clone, Copy)]
pub(crate) struct Ticker {
    pub tick: RwSignal<u64>,
    pub now: RwSignal<Option<OffsetDateTime>>,
}

impl Ticker {
    pub fn new() -> Self {
        Self {
            tick: RwSignal::new(0),
            now: RwSignal::new(None),
        }
    }

    /// Starts the beat. `settling` reads the data (tracked, in an effect):
    /// while it says true, every beat bumps `tick`.
    pub fn start(self, settling: impl Fn() -> bool + 'static) {
        let Self { tick, now } = self;
        // Effects run in the browser only, after hydration.
        let busy = StoredValue::new(false);
        Effect::new(move |_| busy.set_value(settling()));
        Effect::new(move |_| {
            #[cfg(feature = "hydrate")]
            {
                now.set(browser_now());
                let beat = move || {
                    now.set(browser_now());
                    if busy.try_get_value().unwrap_or(false) {
                        tick.update(|t| *t += 1);
                    }
                };
                if let Ok(handle) =
                    set_interval_with_handle(beat, std::time::Duration::from_secs(2))
                {
                    on_cleanup(move || handle.clear());
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (tick, now, busy);
        });
    }
}

const ALERT: &str = "rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800";

// ----- the host page -----

type PageResource = Resource<Result<HostPageData, AppError>>;

#[component]
pub fn HostPage() -> impl IntoView {
    view! {
        <SignedIn>
            <HostBody />
        </SignedIn>
    }
}

#[component]
fn HostBody() -> impl IntoView {
    let params = use_params_map();
    let id = Signal::derive(move || {
        params
            .read()
            .get("host")
            .and_then(|s| s.parse::<HostId>().ok())
    });
    let power = ServerAction::<PowerHost>::new();
    let revoke = ServerAction::<RevokeAgentToken>::new();
    let update = ServerAction::<UpdateAgent>::new();
    let end = ServerAction::<EndShell>::new();
    let delete = ServerAction::<DeleteHost>::new();
    let ticker = Ticker::new();
    let page: PageResource = Resource::new(
        move || {
            (
                id.get(),
                ticker.tick.get(),
                power.version().get(),
                revoke.version().get(),
                update.version().get(),
                end.version().get(),
                delete.version().get(),
            )
        },
        |(id, ..)| async move { get_host(id.ok_or(AppError::NotFound)?).await },
    );
    ticker.start(move || page.with(|p| matches!(p, Some(Ok(p)) if settling(&p.details.host))));
    // After deleting, follow the deletion.
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(task)) = delete.value().get() {
            navigate(&format!("/tasks/{task}"), Default::default());
        }
    });
    view! {
        <Transition fallback=|| view! { <p class="text-sm text-slate-500" role="status">"Loading host…"</p> }>
            {move || page.get().and_then(Result::err).map(|e| view! { <ErrorText error=e /> })}
            <HostHeader page now=ticker.now />
            <div class="grid gap-6 lg:grid-cols-2">
                <FactsCard page />
                <AddressesCard page />
                <PowerCard page power />
                <AgentCard page update />
            </div>
            <div class="mt-6 space-y-6">
                <TokensCard page revoke />
                <SessionsCard page end />
                <MetadataCard page />
                <DeleteHostCard page delete />
            </div>
        </Transition>
    }
}

/// The page's data once loaded (errors are shown once, by the page).
fn loaded<T: PartialEq + Send + Sync + 'static>(
    page: PageResource,
    slice: impl Fn(&HostPageData) -> T + Send + Sync + 'static,
) -> Memo<Option<T>> {
    Memo::new(move |_| page.with(|p| p.as_ref().and_then(|r| r.as_ref().ok()).map(&slice)))
}

#[derive(Clone, PartialEq)]
struct Header {
    host: HostView,
    workspace_name: String,
    task: Option<protocol::ids::TaskId>,
    can_shell: bool,
}

#[component]
fn HostHeader(page: PageResource, now: RwSignal<Option<OffsetDateTime>>) -> impl IntoView {
    let header = loaded(page, |p| Header {
        host: p.details.host.clone(),
        workspace_name: p.details.workspace_name.clone(),
        task: p.details.task,
        can_shell: p.can_shell,
    });
    move || {
        header.get().map(|Header { host, workspace_name, task, can_shell }| {
            let seen = host.last_seen_at;
            let online = host.online;
            let shell = format!("/hosts/{}/shell", host.id);
            view! {
                <Title text=host.hostname.clone() />
                <p class="text-sm text-slate-500">
                    <A href=format!("/workspaces/{}", host.workspace_id) attr:class=LINK>{workspace_name}</A>" / host"
                </p>
                <PageHeader title=host.hostname.clone()>
                    <span data-testid="host-state"><Badge text=host.state.label() tone=host_state_tone(host.state) /></span>
                    <OnlineBadge online />
                    {can_shell.then(|| if online {
                        view! { <A href=shell attr:class=BUTTON attr:data-testid="open-shell">"Open shell"</A> }.into_any()
                    } else {
                        view! {
                            <button type="button" class=BUTTON disabled data-testid="open-shell" aria-describedby="open-shell-hint">"Open shell"</button>
                            <span id="open-shell-hint" class="text-xs text-slate-500">"The shell opens once the agent is online."</span>
                        }.into_any()
                    })}
                </PageHeader>
                <p class="-mt-4 mb-4 flex flex-wrap gap-x-4 text-sm text-slate-600">
                    <span data-testid="host-last-seen">{move || last_seen(seen, now.get())}</span>
                    {task.map(|t| view! { <A href=format!("/tasks/{t}") attr:class=LINK attr:data-testid="host-task">"Task"</A> })}
                </p>
                {(host.state == HostState::Error).then(|| view! {
                    <p role="alert" data-testid="host-error" class=format!("mb-4 {ALERT}")>
                        {host.error.clone().unwrap_or_else(|| "Ordering the host failed.".into())}
                    </p>
                })}
            }
        })
    }
}

#[component]
fn FactsCard(page: PageResource) -> impl IntoView {
    let facts = loaded(page, |p| p.details.facts.clone());
    move || {
        facts.get().flatten().map(|f: HostFacts| {
            let row = |label: &'static str, value: String| {
                view! { <div><dt class="text-slate-500">{label}</dt><dd>{value}</dd></div> }
            };
            let memory_used = f.memory_total_bytes.saturating_sub(f.memory_available_bytes);
            let disk_used = f.disk_total_bytes.saturating_sub(f.disk_available_bytes);
            view! {
                <Card title="Facts" id="facts">
                    <dl class="grid grid-cols-2 gap-3 text-sm" data-testid="host-facts">
                        {row("Hostname", f.hostname.clone())}
                        {row("Operating system", f.os.clone())}
                        {row("Kernel", f.kernel.clone())}
                        {row("Architecture", f.arch.clone())}
                        {row("Uptime", human_uptime(f.uptime_secs))}
                        {row("Load (1/5/15 min)", format!("{:.2} / {:.2} / {:.2}", f.load[0], f.load[1], f.load[2]))}
                        {row("CPUs", f.cpus.to_string())}
                        {row("Memory used", format!("{} of {}", gib(memory_used), gib(f.memory_total_bytes)))}
                        {row("Disk used (/)", format!("{} of {}", gib(disk_used), gib(f.disk_total_bytes)))}
                    </dl>
                </Card>
            }
        })
    }
}

#[component]
fn AddressesCard(page: PageResource) -> impl IntoView {
    let data = loaded(page, |p| {
        (
            p.details.host.clone(),
            p.details.private_ipv4.clone(),
            p.details.server_id.clone(),
        )
    });
    let unknown = || "–".to_string();
    move || {
        data.get().map(|(host, private_ipv4, server_id)| view! {
            <Card title="Server" id="server">
                <dl class="grid grid-cols-2 gap-3 text-sm">
                    <div><dt class="text-slate-500">"Public IPv4"</dt><dd data-testid="host-public-ip"><code>{host.public_ipv4.clone().unwrap_or_else(unknown)}</code></dd></div>
                    <div><dt class="text-slate-500">"Private IPv4"</dt><dd><code>{private_ipv4.unwrap_or_else(unknown)}</code></dd></div>
                    <div><dt class="text-slate-500">"Profile"</dt><dd>{host.profile.clone()}</dd></div>
                    <div><dt class="text-slate-500">"Provider"</dt><dd>{host.provider.clone().unwrap_or_else(unknown)}</dd></div>
                    <div><dt class="text-slate-500">"Provider server id"</dt><dd><code>{server_id.unwrap_or_else(unknown)}</code></dd></div>
                    <div><dt class="text-slate-500">"Scaling group"</dt><dd>{host.scaling_group.clone().unwrap_or_else(unknown)}</dd></div>
                    <div><dt class="text-slate-500">"Created"</dt><dd>{display_time(host.created_at)}</dd></div>
                </dl>
            </Card>
        })
    }
}

#[component]
fn PowerCard(page: PageResource, power: ServerAction<PowerHost>) -> impl IntoView {
    let data = loaded(page, |p| {
        let h = &p.details.host;
        (h.id, h.hostname.clone(), h.power, h.state, p.can_power)
    });
    let error = error_of(power.value());
    let done = Signal::derive(move || {
        power.value().get().and_then(Result::ok).map(|h| {
            format!(
                "{} is powered {}.",
                h.hostname,
                match h.power {
                    PowerState::On => "on",
                    PowerState::Off => "off",
                }
            )
        })
    });
    move || {
        data.get().map(|(host, hostname, state, host_state, can_power)| {
            let act = move |action: &str| {
                power.dispatch(PowerHost { host, action: action.to_string() });
            };
            view! {
                <Card title="Power" id="power">
                    <p class="mb-3 text-sm">"The server is "<span class="font-medium" data-testid="host-power">{match state { PowerState::On => "on", PowerState::Off => "off" }}</span>"."</p>
                    {if !can_power {
                        view! { <p class="text-sm text-slate-600">"Your role does not include switching this host (host.power)."</p> }.into_any()
                    } else if host_state == HostState::Deleting {
                        view! { <p class="text-sm text-slate-600">"The host is being deleted."</p> }.into_any()
                    } else {
                        view! {
                            <div class="flex flex-wrap items-center gap-2">
                                <Button class=BUTTON_SECONDARY disabled=power.pending() aria_label=format!("Power on {hostname}") on_click=move || act("on")>"Power on"</Button>
                                <ConfirmButton label="Power off" question=format!("Power off {hostname}? Running work stops.") confirm_label="Power off"
                                    on_confirm=move || act("off") pending=power.pending() />
                                <ConfirmButton label="Reset" question=format!("Reset {hostname}? It restarts at once; running work stops.") confirm_label="Reset"
                                    on_confirm=move || act("reset") pending=power.pending() />
                            </div>
                        }.into_any()
                    }}
                    <div class="mt-3 space-y-2">
                        <FormError error />
                        <Notice text=done />
                    </div>
                </Card>
            }
        })
    }
}

#[component]
fn AgentCard(page: PageResource, update: ServerAction<UpdateAgent>) -> impl IntoView {
    let data = loaded(page, |p| {
        let h = &p.details.host;
        (h.id, h.agent_version.clone(), h.online, p.can_manage)
    });
    let error = error_of(update.value());
    let done = Signal::derive(move || update.value().get().and_then(Result::ok));
    move || {
        data.get().map(|(host, version, online, can_manage)| view! {
            <Card title="Agent" id="agent">
                <dl class="mb-3 grid grid-cols-2 gap-3 text-sm">
                    <div><dt class="text-slate-500">"Version"</dt><dd data-testid="agent-version">{version.unwrap_or_else(|| "not reported yet".into())}</dd></div>
                    <div><dt class="text-slate-500">"Connection"</dt><dd>{if online { "connected" } else { "not connected" }}</dd></div>
                </dl>
                {can_manage.then(|| view! {
                    <Button class=BUTTON_SECONDARY disabled=update.pending() on_click=move || { update.dispatch(UpdateAgent { host }); }>
                        {move || if update.pending().get() { "Updating…" } else { "Update agent" }}
                    </Button>
                    <p class="mt-1 text-xs text-slate-500">"Installs the newest published agent release; the agent restarts and reconnects."</p>
                })}
                <div class="mt-3 space-y-2">
                    <FormError error />
                    <Notice text=done />
                </div>
            </Card>
        })
    }
}

#[component]
fn TokensCard(page: PageResource, revoke: ServerAction<RevokeAgentToken>) -> impl IntoView {
    let data = loaded(page, |p| {
        (p.details.host.id, p.details.tokens.clone(), p.can_manage)
    });
    let error = error_of(revoke.value());
    move || {
        data.get().map(|(host, tokens, can_manage): (HostId, Vec<AgentTokenView>, bool)| view! {
            <Card title="Agent tokens" id="agent-tokens">
                <FormError error />
                {if tokens.is_empty() {
                    view! { <Empty text="No agent tokens." hint="The host receives one when it is ordered." /> }.into_any()
                } else {
                    view! {
                        <div class="overflow-x-auto">
                            <table class=TABLE data-testid="agent-tokens">
                                <thead><tr>
                                    <th class=TH>"Token"</th><th class=TH>"Created"</th><th class=TH>"Last used"</th><th class=TH>"Revoked"</th>
                                    {can_manage.then(|| view! { <th class=TH><span class="sr-only">"Actions"</span></th> })}
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {tokens.into_iter().map(|t| {
                                        let token = t.id;
                                        let prefix = t.prefix.clone();
                                        view! {
                                            <tr>
                                                <td class=TD><code>{format!("{}…", t.prefix)}</code></td>
                                                <td class=TD>{display_time(t.created_at)}</td>
                                                <td class=TD>{t.last_used_at.map(display_time).unwrap_or_else(|| "never".into())}</td>
                                                <td class=TD>{match t.revoked_at {
                                                    Some(at) => view! { <Badge text=format!("revoked {}", display_time(at)) tone=Tone::Bad /> }.into_any(),
                                                    None => view! { <Badge text="valid" tone=Tone::Good /> }.into_any(),
                                                }}</td>
                                                {can_manage.then(|| view! {
                                                    <td class=TD>{t.revoked_at.is_none().then(|| view! {
                                                        <ConfirmButton label="Revoke"
                                                            question=format!("Revoke token {prefix}…? The agent disconnects within seconds and cannot reconnect with this token.")
                                                            confirm_label="Revoke" pending=revoke.pending()
                                                            on_confirm=move || { revoke.dispatch(RevokeAgentToken { host, token }); } />
                                                    })}</td>
                                                })}
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
            </Card>
        })
    }
}

#[component]
fn SessionsCard(page: PageResource, end: ServerAction<EndShell>) -> impl IntoView {
    let data = loaded(page, |p| {
        (
            p.details.host.id,
            p.details.sessions.clone(),
            p.can_shell || p.can_delete,
        )
    });
    let error = error_of(end.value());
    move || {
        data.get().map(|(host, sessions, can_end): (HostId, Vec<ShellSessionView>, bool)| view! {
            <Card title="Shell sessions" id="shell-sessions">
                <FormError error />
                {if sessions.is_empty() {
                    view! { <Empty text="No shell sessions yet." hint="Sessions opened from this page are listed here, with who opened them." /> }.into_any()
                } else {
                    view! {
                        <div class="overflow-x-auto">
                            <table class=TABLE data-testid="shell-sessions">
                                <thead><tr>
                                    <th class=TH>"User"</th><th class=TH>"Started"</th><th class=TH>"Ended"</th><th class=TH>"Bytes in / out"</th><th class=TH>"End reason"</th>
                                    {can_end.then(|| view! { <th class=TH><span class="sr-only">"Actions"</span></th> })}
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {sessions.into_iter().map(|s| {
                                        let session = s.id;
                                        let active = s.ended_at.is_none();
                                        view! {
                                            <tr data-testid="shell-session">
                                                <td class=TD>{s.account_email.clone()}</td>
                                                <td class=TD>{display_time(s.started_at)}</td>
                                                <td class=TD>{match s.ended_at {
                                                    Some(at) => view! { <span>{display_time(at)}</span> }.into_any(),
                                                    None => view! {
                                                        <span class="inline-flex gap-1">
                                                            <Badge text="active" tone=Tone::Good />
                                                            {s.attached.then(|| view! { <Badge text="attached" tone=Tone::Warn /> })}
                                                        </span>
                                                    }.into_any(),
                                                }}</td>
                                                <td class=TD>{format!("{} / {}", human_bytes(s.bytes_in), human_bytes(s.bytes_out))}</td>
                                                <td class=TD>{s.end_reason.clone().unwrap_or_else(|| "–".into())}</td>
                                                {can_end.then(|| view! {
                                                    <td class=TD>{active.then(|| view! {
                                                        <ConfirmButton label="End session"
                                                            question=format!("End {}'s session? Its shell and everything running in it stop.", s.account_email)
                                                            confirm_label="End session" pending=end.pending()
                                                            on_confirm=move || { end.dispatch(EndShell { host, session }); } />
                                                    })}</td>
                                                })}
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }}
            </Card>
        })
    }
}

#[component]
fn MetadataCard(page: PageResource) -> impl IntoView {
    let data = loaded(page, |p| p.details.metadata.clone());
    move || {
        data.get().map(|metadata| view! {
            <Card title="Metadata" id="metadata">
                {if metadata.is_empty() {
                    view! { <p class="text-sm text-slate-500">"No metadata."</p> }.into_any()
                } else {
                    view! {
                        <dl class="grid gap-2 text-sm sm:grid-cols-[max-content_1fr]" data-testid="host-metadata">
                            {metadata.into_iter().map(|(k, v)| view! {
                                <dt class="font-mono text-slate-500">{k}</dt>
                                <dd class="font-mono">{v}</dd>
                            }).collect_view()}
                        </dl>
                    }.into_any()
                }}
            </Card>
        })
    }
}

#[component]
fn DeleteHostCard(page: PageResource, delete: ServerAction<DeleteHost>) -> impl IntoView {
    let data = loaded(page, |p| {
        let h = &p.details.host;
        (
            h.id,
            h.hostname.clone(),
            h.state,
            h.workspace_id,
            p.can_delete,
        )
    });
    let error = error_of(delete.value());
    move || {
        data.get().and_then(|(host, hostname, state, workspace, can_delete): (HostId, String, HostState, WorkspaceId, bool)| {
            can_delete.then(|| {
                if state == HostState::Deleting {
                    return view! {
                        <Card title="Delete host" id="delete-host">
                            <p class="text-sm text-slate-600">"This host is being deleted. "
                                <A href=format!("/workspaces/{workspace}") attr:class=LINK>"Back to the workspace"</A>
                            </p>
                        </Card>
                    }.into_any();
                }
                let typed = RwSignal::new(String::new());
                let live = use_live();
                let expected = hostname.clone();
                let matches = move || typed.get().trim() == expected;
                view! {
                    <section aria-labelledby="delete-host-heading" class="rounded-lg border border-rose-200 bg-white p-6 shadow-sm">
                        <h2 id="delete-host-heading" class="mb-2 text-base font-semibold text-rose-800">"Delete host"</h2>
                        <p class="mb-3 text-sm text-slate-600">"Deletes the server at the provider with its disk, and revokes the agent's tokens. This cannot be undone."</p>
                        <div class="flex flex-wrap items-end gap-3">
                            <div>
                                <label for="delete-host-confirm" class="block text-sm font-medium text-slate-800">"Type "<code>{hostname.clone()}</code>" to confirm"</label>
                                <input id="delete-host-confirm" autocomplete="off" class=format!("mt-1 {INPUT}")
                                    prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev)) />
                            </div>
                            <button type="button" class=BUTTON_DANGER data-testid="delete-host"
                                disabled=move || !live.get() || !matches() || delete.pending().get()
                                on:click=move |_| { delete.dispatch(DeleteHost { host }); }>
                                {move || if delete.pending().get() { "Deleting…" } else { "Delete host" }}
                            </button>
                        </div>
                        <div class="mt-3"><FormError error /></div>
                    </section>
                }.into_any()
            })
        })
    }
}
