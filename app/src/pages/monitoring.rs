//! Monitoring overview: the project's monitors (its own and its
//! workspaces'), the workspace page's card, the create form, and the
//! public status page. The lists refresh every 2 s while open.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use protocol::ids::{ProjectId, WorkspaceId};
use protocol::views::display_time;
use protocol::views::monitoring::{MonitorState, MonitorSummary, MonitorView, Uptime};
use time::OffsetDateTime;

use crate::api::monitoring::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::hosts::Ticker;
use crate::pages::monitor_form::MonitorFormView;

/// "Up", "Down", "Unknown" or "Paused", coloured.
#[component]
pub fn MonitorStateBadge(state: MonitorState, paused: bool) -> impl IntoView {
    let (text, tone) = if paused {
        ("Paused", Tone::Warn)
    } else {
        match state {
            MonitorState::Up => ("Up", Tone::Good),
            MonitorState::Down => ("Down", Tone::Bad),
            MonitorState::Unknown => ("Unknown", Tone::Neutral),
        }
    };
    view! { <span data-testid="monitor-state" data-state=text><Badge text tone /></span> }
}

/// "99.95 %", "–" without results.
pub fn percent(p: Option<f64>) -> String {
    match p {
        Some(p) if p >= 99.995 => "100 %".into(),
        Some(p) => format!("{:.2} %", (p * 100.0).floor() / 100.0),
        None => "–".into(),
    }
}

pub fn uptime_line(u: &Uptime) -> String {
    format!(
        "{} · {} · {}",
        percent(u.day),
        percent(u.week),
        percent(u.month)
    )
}

/// "12 s ago" once the browser knows the time; the UTC time before (what
/// the server renders, so hydration matches).
pub fn ago(at: Option<OffsetDateTime>, now: Option<OffsetDateTime>) -> String {
    let Some(at) = at else {
        return "never".into();
    };
    let Some(now) = now else {
        return display_time(at);
    };
    let secs = (now - at).whole_seconds().max(0);
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => display_time(at),
    }
}

pub fn latency_text(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms >= 1000.0 => format!("{:.2} s", ms / 1000.0),
        Some(ms) => format!("{ms:.0} ms"),
        None => "–".into(),
    }
}

#[component]
pub fn MonitoringPage() -> impl IntoView {
    view! {
        <SignedIn>
            <Monitoring />
        </SignedIn>
    }
}

#[component]
fn Monitoring() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || {
        params
            .read()
            .get("project")
            .and_then(|s| s.parse::<ProjectId>().ok())
    });
    view! {
        <Title text="Monitoring" />
        <p class="text-sm text-slate-500">
            {move || project.get().map(|p| view! { <A href=format!("/projects/{p}") attr:class=LINK>"Project"</A> })}
            " / monitoring"
        </p>
        <PageHeader title="Monitoring" intro="Checks that run on an interval from the portal or your hosts' agents, with alerts when conditions hold.">
            {move || project.get().map(|p| view! {
                <A href=format!("/projects/{p}/alerts") attr:class=BUTTON_SECONDARY>"Alerts"</A>
                <A href=format!("/status/{p}") attr:class=BUTTON_SECONDARY>"Public status page"</A>
            })}
        </PageHeader>
        <Card>
            <MonitorsOverview project />
        </Card>
    }
}

/// The monitors of a workspace, on the workspace page.
#[component]
pub fn MonitoringCard(#[prop(into)] workspace: Signal<Option<WorkspaceId>>) -> impl IntoView {
    view! {
        <Card title="Monitoring" id="monitoring">
            <MonitorsOverview workspace />
        </Card>
    }
}

/// The table of monitors with live state, and the create form.
#[component]
pub fn MonitorsOverview(
    #[prop(into, default = Signal::stored(None))] project: Signal<Option<ProjectId>>,
    #[prop(into, default = Signal::stored(None))] workspace: Signal<Option<WorkspaceId>>,
) -> impl IntoView {
    let save = ServerAction::<SaveMonitor>::new();
    let ticker = Ticker::new();
    let now = ticker.now;
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
            list_monitors(project, workspace).await
        },
    );
    // Only the scope: the form must not be rebuilt (and lose what was
    // typed) when the list refreshes.
    let options = Resource::new(
        move || (project.get(), workspace.get()),
        |(project, workspace)| async move {
            if project.is_none() && workspace.is_none() {
                return Err(AppError::NotFound);
            }
            get_monitor_form_options(project, workspace).await
        },
    );
    // States change on their own: keep polling while the list is shown.
    ticker.start(move || section.with(|s| matches!(s, Some(Ok(_)))));
    let open = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = save.value().get() {
            open.set(false);
            navigate(&format!("/monitors/{id}"), Default::default());
        }
    });
    view! {
        <div data-testid="monitors">
            <Transition fallback=|| view! { <Loading /> }>
                {move || section.get().map(|r| match r {
                    Err(e) => view! { <ErrorText error=e /> }.into_any(),
                    Ok(s) if s.items.is_empty() => view! {
                        <Empty text="No monitors yet" hint="A monitor checks a URL, a TLS certificate, a TCP port, a DNS record, a workspace's cluster or a host on an interval and raises alerts when its conditions hold." />
                        {s.can_manage.then(|| view! {
                            <div class="mt-3 text-center">
                                <button type="button" class=BUTTON on:click=move |_| open.set(true)>"Create monitor"</button>
                            </div>
                        })}
                    }.into_any(),
                    Ok(s) => view! { <MonitorTable items=s.items now /> }.into_any(),
                })}
            </Transition>
        </div>
        <Transition fallback=|| ()>
            {move || options.get().map(|r| match r {
                Ok(o) if o.can_manage => {
                    let project = project.get_untracked();
                    let workspace = workspace.get_untracked();
                    view! {
                        <div class="mt-4" id="new-monitor">
                            <Show when=move || open.get() fallback=move || view! {
                                <button type="button" class=BUTTON_SECONDARY on:click=move |_| open.set(true)>"New monitor"</button>
                            }>
                                <h3 class="text-sm font-semibold">"New monitor"</h3>
                                {
                                    let o = o.clone();
                                    match (project, workspace) {
                                        (_, Some(w)) => view! { <MonitorFormView save workspace=w options=o /> }.into_any(),
                                        (Some(p), None) => view! { <MonitorFormView save project=p options=o /> }.into_any(),
                                        (None, None) => ().into_any(),
                                    }
                                }
                                <button type="button" class=format!("mt-2 {BUTTON_SECONDARY}") on:click=move |_| open.set(false)>"Cancel"</button>
                            </Show>
                        </div>
                    }.into_any()
                }
                Ok(_) => view! {
                    <p class="mt-4 text-sm text-slate-600">"Your role here does not include managing monitors (monitoring.manage)."</p>
                }.into_any(),
                Err(_) => ().into_any(),
            })}
        </Transition>
    }
}

#[component]
fn MonitorTable(
    items: Vec<MonitorSummary>,
    now: RwSignal<Option<OffsetDateTime>>,
) -> impl IntoView {
    view! {
        <div class="overflow-x-auto">
            <table class=TABLE>
                <thead><tr>
                    <th class=TH>"Name"</th><th class=TH>"Kind"</th><th class=TH>"Target"</th><th class=TH>"State"</th>
                    <th class=TH><abbr title="Uptime over 24 hours, 7 days and 30 days">"Uptime 24 h · 7 d · 30 d"</abbr></th>
                    <th class=TH>"Last check"</th><th class=TH>"Recent"</th><th class=TH>"Open alerts"</th>
                </tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {items.into_iter().map(|s| {
                        let m: MonitorView = s.monitor;
                        let checked = m.last_checked_at;
                        let name = m.name.clone();
                        let alerts_href = format!("/projects/{}/alerts?monitor={}", m.project, m.id);
                        view! {
                            <tr data-testid="monitor-row" data-name=m.name.clone()>
                                <td class=TD><A href=format!("/monitors/{}", m.id) attr:class=LINK>{name}</A></td>
                                <td class=TD>{m.kind.label()}</td>
                                <td class=TD><code class="break-all text-xs">{m.target.clone()}</code></td>
                                <td class=TD><MonitorStateBadge state=m.state paused=m.paused /></td>
                                <td class=TD>{uptime_line(&m.uptime)}</td>
                                <td class=TD title=m.last_error.clone()>
                                    {move || ago(checked, now.get())}
                                    <span class="block text-xs text-slate-500">{latency_text(m.last_latency_ms)}</span>
                                </td>
                                <td class=TD><Sparkline results=s.recent /></td>
                                <td class=TD data-testid="open-alerts">
                                    {if m.open_alerts > 0 {
                                        view! { <A href=alerts_href attr:class=LINK><Badge text=m.open_alerts.to_string() tone=Tone::Bad /></A> }.into_any()
                                    } else {
                                        view! { <span class="text-slate-500">"0"</span> }.into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

// ---------------------------------------------------------------------------
// Public status page
// ---------------------------------------------------------------------------

/// `/status/:project`: the project's public monitors, no sign-in needed.
#[component]
pub fn PublicStatusPage() -> impl IntoView {
    let params = use_params_map();
    let project = Memo::new(move |_| {
        params
            .read()
            .get("project")
            .and_then(|s| s.parse::<ProjectId>().ok())
    });
    let ticker = Ticker::new();
    let page = Resource::new(
        move || (project.get(), ticker.tick.get() / 15),
        |(project, _)| async move { get_status_page(project.ok_or(AppError::NotFound)?).await },
    );
    ticker.start(move || page.with(|p| matches!(p, Some(Ok(_)))));
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || page.get().map(|r| match r {
                Err(AppError::NotFound) => view! {
                    <Title text="Status" />
                    <Empty text="No public status page here." />
                }.into_any(),
                Err(e) => view! { <ErrorText error=e /> }.into_any(),
                Ok(p) => {
                    let all_up = p.monitors.iter().all(|m| m.state == MonitorState::Up);
                    view! {
                        <Title text=format!("{} status", p.project_name) />
                        <PageHeader title=format!("{} status", p.project_name) />
                        <p class=if all_up { "mb-4 rounded-md bg-emerald-50 p-3 text-sm font-medium text-emerald-800" } else { "mb-4 rounded-md bg-amber-50 p-3 text-sm font-medium text-amber-900" }>
                            {if all_up { "All systems operational" } else { "Some systems are having problems" }}
                        </p>
                        <Card>
                            <ul class="divide-y divide-slate-100" data-testid="status-monitors">
                                {p.monitors.into_iter().map(|m| {
                                    // 90 most recent results, like a 90-bar strip.
                                    let recent = m.recent.iter().rev().take(90).rev().copied().collect::<Vec<_>>();
                                    view! {
                                        <li class="flex flex-wrap items-center justify-between gap-4 py-3">
                                            <div>
                                                <p class="font-medium">{m.name.clone()}</p>
                                                <p class="text-xs text-slate-500">{format!("Uptime 24 h · 7 d · 30 d: {}", uptime_line(&m.uptime))}</p>
                                            </div>
                                            <div class="flex items-center gap-4">
                                                <Sparkline results=recent width=270.0 height=24.0 />
                                                <MonitorStateBadge state=m.state paused=false />
                                            </div>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        </Card>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn percentages_and_ages() {
        assert_eq!(percent(Some(100.0)), "100 %");
        assert_eq!(percent(Some(99.999)), "100 %");
        assert_eq!(percent(Some(99.987)), "99.98 %");
        assert_eq!(percent(None), "–");
        let at = datetime!(2026-11-23 12:00:00 UTC);
        assert_eq!(
            ago(Some(at), Some(at + time::Duration::seconds(12))),
            "12 s ago"
        );
        assert_eq!(
            ago(Some(at), Some(at + time::Duration::minutes(5))),
            "5 min ago"
        );
        assert_eq!(ago(None, None), "never");
        assert_eq!(latency_text(Some(12.4)), "12 ms");
        assert_eq!(latency_text(Some(1500.0)), "1.50 s");
    }
}
