//! One monitor's page: state, uptime and the last error; latency and state
//! charts over a chosen range; its conditions; the latest results; pause,
//! change and delete. Everything but the form refreshes every 4 s.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use protocol::ids::MonitorId;
use protocol::views::monitoring::{MonitorView, TimeRange, duration_label};

use crate::api::monitoring::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::hosts::Ticker;
use crate::pages::monitor_form::MonitorFormView;
use crate::pages::monitoring::{MonitorStateBadge, ago, latency_text, percent};

#[component]
pub fn MonitorPage() -> impl IntoView {
    view! {
        <SignedIn>
            <Monitor />
        </SignedIn>
    }
}

/// Results come seconds apart: "2026-11-23 21:50:07".
fn result_time(at: time::OffsetDateTime) -> String {
    format!(
        "{} {:02}:{:02}:{:02}",
        at.date(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn back_link(m: &MonitorView) -> (String, &'static str) {
    match m.workspace {
        Some(w) => (format!("/workspaces/{w}#monitoring"), "Workspace"),
        None => (format!("/projects/{}/monitoring", m.project), "Monitoring"),
    }
}

#[component]
fn Monitor() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params
            .read()
            .get("monitor")
            .and_then(|s| s.parse::<MonitorId>().ok())
    });
    let save = ServerAction::<SaveMonitor>::new();
    let pause = ServerAction::<PauseMonitor>::new();
    let delete = ServerAction::<DeleteMonitor>::new();
    let ticker = Ticker::new();
    let now = ticker.now;
    // The ticker beats every 2 s; the page refreshes every other beat.
    let beat = Memo::new(move |_| ticker.tick.get() / 2);
    let range = RwSignal::new(TimeRange::Hour);
    let results_page = page_from_query();

    let page = Resource::new(
        move || {
            (
                id.get(),
                beat.get(),
                save.version().get(),
                pause.version().get(),
            )
        },
        |(id, ..)| async move { get_monitor(id.ok_or(AppError::NotFound)?).await },
    );
    let series = Resource::new(
        move || (id.get(), range.get(), beat.get()),
        |(id, range, _)| async move { load_monitor_series(id.ok_or(AppError::NotFound)?, range).await },
    );
    let results = Resource::new(
        move || (id.get(), results_page.get(), beat.get()),
        |(id, page, _)| async move { list_monitor_results(id.ok_or(AppError::NotFound)?, page).await },
    );
    // Only changes when saved: the form keeps what is typed meanwhile.
    let editable = Resource::new(
        move || (id.get(), save.version().get(), pause.version().get()),
        |(id, ..)| async move {
            let details = get_monitor(id.ok_or(AppError::NotFound)?).await?;
            if !details.can_manage {
                return Ok(None);
            }
            let m = details.monitor;
            let options = get_monitor_form_options(Some(m.project), m.workspace).await?;
            Ok::<_, AppError>(Some((m, options)))
        },
    );
    ticker.start(move || page.with(|p| matches!(p, Some(Ok(_)))));

    let editing = RwSignal::new(false);
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            editing.set(false);
        }
    });
    let navigate = use_navigate();
    let gone_to = StoredValue::new(String::from("/projects"));
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(()))) {
            navigate(&gone_to.get_value(), Default::default());
        }
    });
    let pause_error = error_of(pause.value());
    let delete_error = error_of(delete.value());

    view! {
        <Transition fallback=|| view! { <Loading /> }>
            {move || page.get().map(|r| match r {
                Err(e) => view! { <ErrorText error=e /> }.into_any(),
                Ok(d) => {
                    let m = d.monitor;
                    let (back, back_label) = back_link(&m);
                    let monitor_id = m.id;
                    let paused = m.paused;
                    let checked = m.last_checked_at;
                    let since = m.state_since;
                    view! {
                        <Title text=m.name.clone() />
                        <p class="text-sm text-slate-500"><A href=back attr:class=LINK>{back_label}</A>" / monitor"</p>
                        <PageHeader title=m.name.clone()>
                            <A href=format!("/projects/{}/alerts?monitor={}", m.project, m.id) attr:class=BUTTON_SECONDARY>
                                {format!("Alerts ({} open)", m.open_alerts)}
                            </A>
                            {d.can_manage.then(|| view! {
                                <Button class=BUTTON_SECONDARY disabled=pause.pending()
                                    on_click=move || { pause.dispatch(PauseMonitor { monitor: monitor_id, paused: !paused }); }>
                                    {if paused { "Resume" } else { "Pause" }}
                                </Button>
                                <Button class=BUTTON_SECONDARY on_click=move || editing.update(|e| *e = !*e)>"Change"</Button>
                            })}
                        </PageHeader>
                        <FormError error=pause_error />
                        <Card>
                            <dl class="grid gap-4 text-sm sm:grid-cols-4">
                                <div>
                                    <dt class="text-slate-500">"State"</dt>
                                    <dd><MonitorStateBadge state=m.state paused=m.paused /></dd>
                                    <dd class="mt-1 text-xs text-slate-500">{move || since.map(|s| format!("since {}", ago(Some(s), now.get())))}</dd>
                                </div>
                                <div class="sm:col-span-3">
                                    <dt class="text-slate-500">{m.kind.label()}</dt>
                                    <dd><code class="break-all" data-testid="monitor-target">{m.target.clone()}</code></dd>
                                    <dd class="mt-1 text-xs text-slate-500">{format!(
                                        "every {} from {}",
                                        duration_label(m.interval_seconds),
                                        m.sources.iter().map(|s| s.label.clone()).collect::<Vec<_>>().join(", "),
                                    )}</dd>
                                </div>
                                <div><dt class="text-slate-500">"Uptime 24 h"</dt><dd class="text-lg font-semibold" data-testid="uptime-day">{percent(m.uptime.day)}</dd></div>
                                <div><dt class="text-slate-500">"Uptime 7 d"</dt><dd class="text-lg font-semibold">{percent(m.uptime.week)}</dd></div>
                                <div><dt class="text-slate-500">"Uptime 30 d"</dt><dd class="text-lg font-semibold">{percent(m.uptime.month)}</dd></div>
                                <div>
                                    <dt class="text-slate-500">"Last check"</dt>
                                    <dd>{move || ago(checked, now.get())}</dd>
                                    <dd class="text-xs text-slate-500">{latency_text(m.last_latency_ms)}</dd>
                                </div>
                            </dl>
                            {m.last_error.clone().filter(|_| m.state != protocol::views::monitoring::MonitorState::Up).map(|e| view! {
                                <p role="alert" data-testid="last-error" class="mt-4 rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{format!("Last error: {e}")}</p>
                            })}
                        </Card>
                        <div class="mt-6">
                            <Card title="Conditions">
                                {if m.conditions.is_empty() {
                                    view! { <p class="text-sm text-slate-500">"No conditions: results are recorded, but nothing alerts."</p> }.into_any()
                                } else {
                                    view! {
                                        <ul class="space-y-1 text-sm" data-testid="conditions-list">
                                            {m.conditions.iter().map(|c| view! {
                                                <li class="flex items-center gap-2">
                                                    <Badge text=c.condition.severity.key() tone=match c.condition.severity {
                                                        protocol::views::monitoring::Severity::Critical => Tone::Bad,
                                                        protocol::views::monitoring::Severity::Warning => Tone::Warn,
                                                        protocol::views::monitoring::Severity::Info => Tone::Neutral,
                                                    } />
                                                    <code>{c.summary.clone()}</code>
                                                </li>
                                            }).collect_view()}
                                        </ul>
                                        <p class="mt-2 text-xs text-slate-500">{format!(
                                            "Fires after {} breaching results, resolves after {} passing; repeats every {} while unacknowledged.",
                                            m.failure_threshold, m.success_threshold, duration_label(m.repeat_interval_seconds),
                                        )}</p>
                                    }.into_any()
                                }}
                            </Card>
                        </div>
                    }.into_any()
                }
            })}
        </Transition>

        <div class="mt-6">
            <Card title="History">
                <div role="group" aria-label="Time range" class="mb-3 flex gap-1">
                    {TimeRange::ALL.into_iter().map(|r| view! {
                        <button type="button" data-range=r.key()
                            class=move || if range.get() == r { BUTTON } else { BUTTON_SECONDARY }
                            aria-pressed=move || (range.get() == r).to_string()
                            on:click=move |_| range.set(r)>{r.label()}</button>
                    }).collect_view()}
                </div>
                <Transition fallback=|| view! { <Loading /> }>
                    {move || series.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(s) => {
                            let (states, from, to) = (s.states.clone(), s.from, s.to);
                            view! {
                                <LatencyChart series=s />
                                <p class="mt-3 mb-1 text-xs font-medium text-slate-600">"State"</p>
                                <StateTimeline states from to />
                            }.into_any()
                        }
                    })}
                </Transition>
            </Card>
        </div>

        <div class="mt-6">
            <Card title="Latest results">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || results.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(p) if p.items.is_empty() => view! { <Empty text="No results yet" hint="The first check runs within a few seconds." /> }.into_any(),
                        Ok(p) => {
                            let pages = p.pages();
                            let base = id.get_untracked().map(|i| format!("/monitors/{i}")).unwrap_or_default();
                            view! {
                                <table class=TABLE data-testid="results">
                                    <thead><tr><th class=TH>"Time (UTC)"</th><th class=TH>"Source"</th><th class=TH>"Result"</th><th class=TH>"Latency"</th><th class=TH>"Error"</th></tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {p.items.into_iter().map(|r| view! {
                                            <tr data-testid="result-row">
                                                <td class=TD>{result_time(r.at)}</td>
                                                <td class=TD>{r.source.clone()}</td>
                                                <td class=TD>{if r.outcome.ok {
                                                    view! { <Badge text="ok" tone=Tone::Good /> }
                                                } else {
                                                    view! { <Badge text="failed" tone=Tone::Bad /> }
                                                }}</td>
                                                <td class=TD>{latency_text(r.outcome.latency_ms)}</td>
                                                <td class=TD><span class="text-rose-800">{r.outcome.error.clone().unwrap_or_default()}</span></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <Pager page=p.page pages total=p.total base />
                            }.into_any()
                        }
                    })}
                </Transition>
            </Card>
        </div>

        <Transition fallback=|| ()>
            {move || editable.get().map(|r| match r {
                Ok(Some((m, options))) => {
                    let monitor_id = m.id;
                    let (back, _) = back_link(&m);
                    gone_to.set_value(back);
                    let question = format!("Delete monitor {}? Its results and alerts go with it.", m.name);
                    let form = MonitorForm::from_new(&m.to_new());
                    view! {
                        <Show when=move || editing.get()>
                            {
                                let (form, options) = (form.clone(), options.clone());
                                view! {
                                    <div class="mt-6">
                                        <Card title="Change" id="change-monitor">
                                            <MonitorFormView save existing=(monitor_id, form) options />
                                        </Card>
                                    </div>
                                }
                            }
                        </Show>
                        <div class="mt-6">
                            <Card title="Delete">
                                <FormError error=delete_error />
                                <ConfirmButton label="Delete monitor" question confirm_label="Delete" pending=delete.pending()
                                    on_confirm=move || { delete.dispatch(DeleteMonitor { monitor: monitor_id }); } />
                            </Card>
                        </div>
                    }.into_any()
                }
                _ => ().into_any(),
            })}
        </Transition>
    }
}
