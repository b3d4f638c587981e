//! A project's alerts (`/projects/:project/alerts`): filters, the paged
//! table refreshed every 2 s, one alert's history with "Acknowledge", and
//! the project's silences.
//!
//! Every list reads its resource through a memo, so a refresh that changed
//! nothing redraws nothing: a half-typed comment, an open confirmation or
//! the keyboard focus survive the live refresh.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};
use protocol::ids::{AlertId, ProjectId};
use protocol::views::display_time;
use protocol::views::monitoring::{AlertEvent, AlertState, AlertView, Severity, SilenceView};
use time::OffsetDateTime;

use crate::api::alerts::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::hosts::Ticker;

type AlertsResource = Resource<Result<AlertsSection, AppError>>;
type DetailResource = Resource<Result<Option<AlertDetails>, AppError>>;
type SilencesResource = Resource<Result<SilencesSection, AppError>>;

pub(crate) fn alert_state_tone(state: AlertState) -> Tone {
    match state {
        AlertState::Pending => Tone::Warn,
        AlertState::Firing => Tone::Bad,
        AlertState::Resolved => Tone::Good,
    }
}

fn severity_tone(severity: Severity) -> Tone {
    match severity {
        Severity::Info => Tone::Neutral,
        Severity::Warning => Tone::Warn,
        Severity::Critical => Tone::Bad,
    }
}

/// "42 s", "5 min", "3 h 5 min", "2 d 4 h".
pub(crate) fn span(from: OffsetDateTime, to: OffsetDateTime) -> String {
    let s = (to - from).whole_seconds().max(0);
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn value_text(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// How long the alert has been (or was) in its state, as of `now`.
fn since(alert: &AlertView, now: Option<OffsetDateTime>) -> String {
    let start = match alert.state {
        AlertState::Firing => alert.fired_at.unwrap_or(alert.started_at),
        _ => alert.started_at,
    };
    match (alert.state, alert.resolved_at, now) {
        (AlertState::Resolved, Some(end), _) => {
            format!(
                "{} · lasted {}",
                display_time(end),
                span(alert.started_at, end)
            )
        }
        (_, _, Some(now)) => format!("{} · for {}", display_time(start), span(start, now)),
        _ => display_time(start),
    }
}

fn project_param() -> Memo<Option<ProjectId>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("project").and_then(|s| s.parse().ok()))
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    view! {
        <Title text="Alerts" />
        <SignedIn>
            <Alerts />
        </SignedIn>
    }
}

#[component]
fn Alerts() -> impl IntoView {
    let project = project_param();
    let query = use_query_map();
    // The filters start from the address, so the monitor page can link to
    // its own alerts; after that the controls own them.
    let initial = |key: &str| query.read_untracked().get(key).unwrap_or_default();
    let state = RwSignal::new(initial("state"));
    let severity = RwSignal::new(initial("severity"));
    let acknowledged = RwSignal::new(initial("acknowledged"));
    let monitor = RwSignal::new(initial("monitor"));
    let page = page_from_query();
    let ack = ServerAction::<AcknowledgeAlert>::new();
    let open = RwSignal::new(None::<AlertId>);
    let ticker = Ticker::new();
    let alerts: AlertsResource = Resource::new(
        move || {
            (
                project.get(),
                state.get(),
                severity.get(),
                acknowledged.get(),
                monitor.get(),
                page.get(),
                ticker.tick.get(),
                ack.version().get(),
            )
        },
        |(project, state, severity, acknowledged, monitor, page, ..)| async move {
            let project = project.ok_or(AppError::NotFound)?;
            list_alerts(project, state, severity, acknowledged, monitor, page).await
        },
    );
    let detail: DetailResource = Resource::new(
        move || (open.get(), ticker.tick.get(), ack.version().get()),
        |(open, ..)| async move {
            match open {
                Some(id) => get_alert(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // Alerts move by themselves: read them again every 2 s while shown.
    ticker.start(move || alerts.with(|a| matches!(a, Some(Ok(_)))));
    let now = ticker.now;
    let base = move || {
        project
            .get()
            .map(|p| format!("/projects/{p}/alerts"))
            .unwrap_or_default()
    };
    view! {
        <p class="text-sm text-slate-500">
            {move || project.get().map(|p| view! { <A href=format!("/projects/{p}") attr:class=LINK>"Project"</A> })}
            " / alerts"
        </p>
        <PageHeader title="Alerts" intro="Alerts open when a monitor breaks one of its conditions: pending at first, firing once the breach lasted long enough, resolved when it passes again." />
        <div class="space-y-6">
            <Card title="Alerts" id="alerts">
                <AlertFilters state severity acknowledged monitor />
                <div data-testid="alerts">
                    <Transition fallback=|| view! { <Loading /> }>
                        {move || alerts.get().and_then(Result::err).map(|e| view! { <ErrorText error=e /> })}
                        <AlertTable alerts open now base=Signal::derive(base) />
                    </Transition>
                </div>
            </Card>
            <AlertDetailCard detail open ack />
            <SilencesCard project />
        </div>
    }
}

/// A labelled select for a filter.
#[component]
fn FilterSelect(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    options: Vec<(&'static str, &'static str)>,
) -> impl IntoView {
    view! {
        <div>
            <label for=id class="block text-xs font-medium text-slate-600">{label}</label>
            <select id=id name=id class=format!("mt-1 {INPUT}") prop:value=move || value.get()
                on:change=move |ev| value.set(event_target_value(&ev))>
                {options.into_iter().map(|(v, text)| {
                    let selected = value.get_untracked() == v;
                    view! { <option value=v selected=selected>{text}</option> }
                }).collect_view()}
            </select>
        </div>
    }
}

#[component]
fn AlertFilters(
    state: RwSignal<String>,
    severity: RwSignal<String>,
    acknowledged: RwSignal<String>,
    monitor: RwSignal<String>,
) -> impl IntoView {
    let states = vec![
        ("", "any"),
        ("pending", "pending"),
        ("firing", "firing"),
        ("resolved", "resolved"),
    ];
    let severities = std::iter::once(("", "any"))
        .chain(Severity::ALL.into_iter().map(|s| (s.key(), s.key())))
        .collect();
    let acks = vec![
        ("", "any"),
        ("yes", "acknowledged"),
        ("no", "not acknowledged"),
    ];
    view! {
        <form role="search" aria-label="Filter alerts" class="mb-4 flex flex-wrap items-end gap-3" on:submit=|ev| ev.prevent_default()>
            <FilterSelect id="filter-state" label="State" value=state options=states />
            <FilterSelect id="filter-severity" label="Severity" value=severity options=severities />
            <FilterSelect id="filter-acknowledged" label="Acknowledged" value=acknowledged options=acks />
            {move || (!monitor.get().is_empty()).then(|| view! {
                <p class="flex items-center gap-2 text-sm text-slate-700" data-testid="monitor-filter">
                    "Only one monitor"
                    <button type="button" class=BUTTON_SECONDARY on:click=move |_| monitor.set(String::new())>"Show all monitors"</button>
                </p>
            })}
        </form>
    }
}

#[component]
fn AlertTable(
    alerts: AlertsResource,
    open: RwSignal<Option<AlertId>>,
    now: RwSignal<Option<OffsetDateTime>>,
    base: Signal<String>,
) -> impl IntoView {
    let section =
        Memo::new(move |_| alerts.with(|a| a.as_ref().and_then(|r| r.as_ref().ok()).cloned()));
    move || {
        section.get().map(|s| {
            if s.page.items.is_empty() {
                return view! {
                    <Empty text="No alerts — all monitors are passing their conditions" hint="Alerts that match the filters show up here as soon as a condition breaks." />
                }
                .into_any();
            }
            let pages = s.page.pages();
            let can_manage = s.can_manage;
            view! {
                <div class="overflow-x-auto">
                    <table class=TABLE>
                        <thead><tr>
                            <th class=TH>"State"</th><th class=TH>"Severity"</th><th class=TH>"Monitor"</th>
                            <th class=TH>"Condition"</th><th class=TH>"Value"</th><th class=TH>"Since"</th>
                            <th class=TH>"Acknowledged"</th><th class=TH><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody class="divide-y divide-slate-100">
                            {s.page.items.into_iter().map(|a| view! { <AlertRow alert=a open now can_manage /> }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <Pager page=s.page.page pages total=s.page.total base=base.get_untracked() />
            }
            .into_any()
        })
    }
}

#[component]
fn AlertRow(
    alert: AlertView,
    open: RwSignal<Option<AlertId>>,
    now: RwSignal<Option<OffsetDateTime>>,
    can_manage: bool,
) -> impl IntoView {
    let id = alert.id;
    let ackable =
        can_manage && alert.acknowledgement.is_none() && alert.state != AlertState::Resolved;
    let timing = alert.clone();
    let details_label = format!("Details of {}: {}", alert.monitor_name, alert.summary);
    let ack_label = format!("Acknowledge {}: {}", alert.monitor_name, alert.summary);
    let expanded = move || (open.get() == Some(id)).to_string();
    let show = move || {
        open.set(Some(id));
        focus_later("alert-detail");
    };
    view! {
        <tr data-testid="alert-row" data-alert=id.to_string()>
            <td class=TD><span data-testid="alert-state"><Badge text=alert.state.key() tone=alert_state_tone(alert.state) /></span></td>
            <td class=TD><Badge text=alert.severity.key() tone=severity_tone(alert.severity) /></td>
            <td class=TD><A href=format!("/monitors/{}", alert.monitor) attr:class=LINK>{alert.monitor_name.clone()}</A></td>
            <td class=TD>
                {alert.summary.clone()}
                {alert.suppressed.clone().map(|s| view! { <p class="text-xs text-amber-800" data-testid="alert-suppressed">{format!("Notifications held: {s}")}</p> })}
            </td>
            <td class=TD><code>{value_text(alert.value)}</code></td>
            <td class=TD>{move || since(&timing, now.get())}</td>
            <td class=TD>
                {match alert.acknowledgement.clone() {
                    Some(a) => view! {
                        <p data-testid="alert-acknowledged">{a.by_email.clone().unwrap_or_else(|| "a removed account".into())}</p>
                        <p class="text-xs text-slate-600">{a.comment.clone()}</p>
                    }.into_any(),
                    None => view! { <span class="text-slate-400">"–"</span> }.into_any(),
                }}
            </td>
            <td class=TD>
                <span class="flex gap-2">
                    <button type="button" class=BUTTON_SECONDARY aria-expanded=expanded aria-controls="alert-detail"
                        aria-label=details_label on:click=move |_| show()>
                        "Details"
                    </button>
                    {ackable.then(|| view! {
                        <button type="button" class=BUTTON data-testid="acknowledge-open" aria-label=ack_label.clone()
                            on:click=move |_| { open.set(Some(id)); focus_later("ack-comment"); }>
                            "Acknowledge"
                        </button>
                    })}
                </span>
            </td>
        </tr>
    }
}

/// Moves the keyboard focus to `id` once the browser drew it.
fn focus_later(id: &'static str) {
    #[cfg(feature = "hydrate")]
    request_animation_frame(move || {
        use leptos::wasm_bindgen::JsCast;
        if let Some(el) = document()
            .get_element_by_id(id)
            .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}

#[derive(Clone, PartialEq)]
struct Shown {
    alert: AlertView,
    events: Vec<AlertEvent>,
    can_manage: bool,
}

#[component]
fn AlertDetailCard(
    detail: DetailResource,
    open: RwSignal<Option<AlertId>>,
    ack: ServerAction<AcknowledgeAlert>,
) -> impl IntoView {
    let shown = Memo::new(move |_| {
        detail.with(|d| match d {
            Some(Ok(Some(d))) if Some(d.detail.alert.id) == open.get() => Some(Shown {
                alert: d.detail.alert.clone(),
                events: d.detail.events.clone(),
                can_manage: d.can_manage,
            }),
            _ => None,
        })
    });
    // The form stays put while the history refreshes: it only comes and
    // goes when the alert becomes (un)acknowledgeable.
    let ackable = Memo::new(move |_| {
        shown.with(|s| {
            s.as_ref()
                .filter(|s| {
                    s.can_manage
                        && s.alert.acknowledgement.is_none()
                        && s.alert.state != AlertState::Resolved
                })
                .map(|s| s.alert.id)
        })
    });
    let error = Signal::derive(move || detail.get().and_then(Result::err));
    let ack_error = error_of(ack.value());
    let acked = Signal::derive(move || {
        matches!(ack.value().get(), Some(Ok(_)))
            .then(|| "Acknowledged: no more repeat notifications for this alert.".to_string())
    });
    view! {
        <div id="alert-detail" tabindex="-1" aria-live="polite">
            <Show when=move || open.get().is_some()>
                <Card title="Alert details">
                    <Transition fallback=|| view! { <Loading /> }>
                        {move || error.get().map(|e| view! { <ErrorText error=e /> })}
                        {move || shown.get().map(|s| {
                            let a = s.alert;
                            view! {
                                <dl class="grid gap-4 text-sm sm:grid-cols-4" data-testid="alert-detail">
                                    <div><dt class="text-slate-500">"State"</dt><dd><Badge text=a.state.key() tone=alert_state_tone(a.state) /></dd></div>
                                    <div><dt class="text-slate-500">"Monitor"</dt><dd><A href=format!("/monitors/{}", a.monitor) attr:class=LINK>{a.monitor_name.clone()}</A></dd></div>
                                    <div class="sm:col-span-2"><dt class="text-slate-500">"Condition"</dt><dd>{a.summary.clone()}{if a.condition.is_none() { " (changed since)" } else { "" }}</dd></div>
                                    <div><dt class="text-slate-500">"Started"</dt><dd>{display_time(a.started_at)}</dd></div>
                                    <div><dt class="text-slate-500">"Fired"</dt><dd>{a.fired_at.map(display_time).unwrap_or_else(|| "not (yet)".into())}</dd></div>
                                    <div><dt class="text-slate-500">"Resolved"</dt><dd>{a.resolved_at.map(display_time).unwrap_or_else(|| "–".into())}</dd></div>
                                    <div><dt class="text-slate-500">"Notifications"</dt><dd>{format!("{} sent{}", a.notifications, a.last_notified_at.map(|t| format!(", last {}", display_time(t))).unwrap_or_default())}</dd></div>
                                    {a.acknowledgement.clone().map(|k| view! {
                                        <div class="sm:col-span-4"><dt class="text-slate-500">"Acknowledged"</dt>
                                            <dd>{format!("by {} at {}: {}", k.by_email.unwrap_or_else(|| "a removed account".into()), display_time(k.at), k.comment)}</dd></div>
                                    })}
                                    {a.suppressed.clone().map(|x| view! {
                                        <div class="sm:col-span-4"><dt class="text-slate-500">"Notifications held"</dt><dd>{x}</dd></div>
                                    })}
                                </dl>
                                <h3 class="mt-6 text-sm font-semibold">"History"</h3>
                                <ol class="mt-2 divide-y divide-slate-100 text-sm" data-testid="alert-events">
                                    {s.events.into_iter().map(|e| view! {
                                        <li class="flex flex-wrap gap-3 py-2">
                                            <span class="w-40 shrink-0 text-slate-500">{display_time(e.at)}</span>
                                            <span class="w-28 shrink-0 font-medium">{e.kind}</span>
                                            <span class="text-slate-700">{e.detail}</span>
                                        </li>
                                    }).collect_view()}
                                </ol>
                            }
                        })}
                    </Transition>
                    <div class="mt-4"><Notice text=acked /></div>
                    {move || ackable.get().map(|id| view! {
                        <ActionForm action=ack attr:class="mt-4 space-y-3" attr:data-testid="acknowledge-form">
                            <input type="hidden" name="alert" value=id.to_string() />
                            <div>
                                <label for="ack-comment" class="block text-sm font-medium text-slate-800">"Comment (required)"</label>
                                <textarea id="ack-comment" name="comment" rows="2" required
                                    placeholder="Who is on it, and what is being done"
                                    aria-invalid=move || ack_error.get().and_then(|e| e.for_field("comment")).is_some().to_string()
                                    class=format!("mt-1 {INPUT}")></textarea>
                                {field_error(ack_error, "comment")}
                            </div>
                            <FormError error=ack_error fields=&["comment"] />
                            <div class="flex gap-2">
                                <Submit label="Acknowledge" pending=ack.pending() />
                                <button type="button" class=BUTTON_SECONDARY on:click=move |_| open.set(None)>"Close"</button>
                            </div>
                        </ActionForm>
                    })}
                    {move || ackable.get().is_none().then(|| view! {
                        <button type="button" class=format!("mt-4 {BUTTON_SECONDARY}") on:click=move |_| open.set(None)>"Close"</button>
                    })}
                </Card>
            </Show>
        </div>
    }
}

// ----- silences -----

#[component]
fn SilencesCard(project: Memo<Option<ProjectId>>) -> impl IntoView {
    let create = ServerAction::<CreateSilence>::new();
    let expire = ServerAction::<ExpireSilence>::new();
    let ticker = Ticker::new();
    let silences: SilencesResource = Resource::new(
        move || {
            (
                project.get(),
                create.version().get(),
                expire.version().get(),
                ticker.tick.get(),
            )
        },
        |(project, ..)| async move { list_silences(project.ok_or(AppError::NotFound)?).await },
    );
    // A silence ends by itself; keep "active" honest while any is.
    ticker.start(move || {
        silences.with(|s| matches!(s, Some(Ok(s)) if s.items.iter().any(|s| s.active)))
    });
    view! {
        <Card title="Silences" id="silences">
            <p class="mb-4 text-sm text-slate-600">"A silence holds back notifications of one monitor, or of every monitor of the project, for a while. Alerts still open and show that they are silenced."</p>
            <Transition fallback=|| view! { <Loading /> }>
                {move || silences.get().and_then(Result::err).map(|e| view! { <ErrorText error=e /> })}
                <SilenceList silences expire />
                <SilenceForm silences create project />
            </Transition>
        </Card>
    }
}

#[component]
fn SilenceList(silences: SilencesResource, expire: ServerAction<ExpireSilence>) -> impl IntoView {
    let list = Memo::new(move |_| {
        silences.with(|s| {
            s.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|s| (s.items.clone(), s.can_manage))
        })
    });
    let expire_error = error_of(expire.value());
    view! {
        <FormError error=expire_error />
        {move || list.get().map(|(mut items, can_manage)| {
            if items.is_empty() {
                return view! { <Empty text="No silences" hint="Notifications go out as alerts fire." /> }.into_any();
            }
            // Active first, then the most recently ended.
            items.sort_by(|a, b| b.active.cmp(&a.active).then(b.ends_at.cmp(&a.ends_at)));
            view! {
                <div class="overflow-x-auto">
                    <table class=TABLE data-testid="silences">
                        <thead><tr>
                            <th class=TH>"Covers"</th><th class=TH>"State"</th><th class=TH>"From"</th><th class=TH>"Until"</th>
                            <th class=TH>"Comment"</th><th class=TH>"By"</th><th class=TH><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody class="divide-y divide-slate-100">
                            {items.into_iter().map(|s| view! { <SilenceRow silence=s expire can_manage /> }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        })}
    }
}

#[component]
fn SilenceRow(
    silence: SilenceView,
    expire: ServerAction<ExpireSilence>,
    can_manage: bool,
) -> impl IntoView {
    let id = silence.id;
    let covers = silence
        .monitor_name
        .clone()
        .unwrap_or_else(|| "the whole project".into());
    let question =
        format!("End the silence of {covers} now? Notifications of firing alerts go out again.");
    view! {
        <tr data-testid="silence-row">
            <td class=TD>
                {match silence.monitor {
                    Some(m) => view! { <A href=format!("/monitors/{m}") attr:class=LINK>{covers.clone()}</A> }.into_any(),
                    None => view! { <span>{covers.clone()}</span> }.into_any(),
                }}
            </td>
            <td class=TD>{if silence.active { view! { <Badge text="active" tone=Tone::Warn /> } } else { view! { <Badge text="ended" /> } }}</td>
            <td class=TD>{display_time(silence.starts_at)}</td>
            <td class=TD>{display_time(silence.ends_at)}</td>
            <td class=TD>{silence.comment.clone()}</td>
            <td class=TD>{silence.created_by_email.clone().unwrap_or_else(|| "–".into())}</td>
            <td class=TD>
                {(can_manage && silence.active).then(|| view! {
                    <ConfirmButton label="End now" question confirm_label="End silence"
                        pending=expire.pending()
                        on_confirm=move || { expire.dispatch(ExpireSilence { silence: id }); } />
                })}
            </td>
        </tr>
    }
}

#[component]
fn SilenceForm(
    silences: SilencesResource,
    create: ServerAction<CreateSilence>,
    project: Memo<Option<ProjectId>>,
) -> impl IntoView {
    // Only the monitor choice and the right to create reach the form, so a
    // refresh of the list leaves what is typed alone.
    let choices = Memo::new(move |_| {
        silences.with(|s| {
            s.as_ref()
                .and_then(|r| r.as_ref().ok())
                .filter(|s| s.can_manage)
                .map(|s| s.monitors.clone())
        })
    });
    let cannot = Memo::new(move |_| silences.with(|s| matches!(s, Some(Ok(s)) if !s.can_manage)));
    let query = use_query_map();
    let preselected = query.read_untracked().get("monitor").unwrap_or_default();
    let duration = RwSignal::new("1h".to_string());
    let form_ref = NodeRef::<leptos::html::Form>::new();
    // A created silence empties the form for the next one.
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(_))) {
            if let Some(form) = form_ref.get_untracked() {
                form.reset();
            }
            duration.set("1h".to_string());
        }
    });
    let error = error_of(create.value());
    let created = Signal::derive(move || match create.value().get() {
        Some(Ok(s)) => Some(format!(
            "Silenced {} until {}.",
            s.monitor_name.unwrap_or_else(|| "the whole project".into()),
            display_time(s.ends_at)
        )),
        _ => None,
    });
    let invalid = move |field: &'static str| {
        move || {
            error
                .get()
                .and_then(|e| e.for_field(field))
                .is_some()
                .to_string()
        }
    };
    view! {
        {move || cannot.get().then(|| view! {
            <p class="mt-4 text-sm text-slate-600">"Your role here does not include creating silences (monitoring.manage)."</p>
        })}
        {move || choices.get().map(|monitors| {
            let preselected = preselected.clone();
            view! {
                <h3 class="mt-6 text-sm font-semibold">"New silence"</h3>
                <ActionForm action=create node_ref=form_ref attr:class="mt-2 grid gap-4 sm:grid-cols-2" attr:data-testid="silence-form">
                    <input type="hidden" name="project" value=project.get_untracked().map(|p| p.to_string()) />
                    <div>
                        <label for="silence-monitor" class="block text-sm font-medium text-slate-800">"Covers"</label>
                        <select id="silence-monitor" name="monitor" class=format!("mt-1 {INPUT}") aria-invalid=invalid("monitor")>
                            <option value="">"Every monitor of the project"</option>
                            {monitors.into_iter().map(|m| {
                                let id = m.id.to_string();
                                let selected = id == preselected;
                                view! { <option value=id selected=selected>{m.name}</option> }
                            }).collect_view()}
                        </select>
                        {field_error(error, "monitor")}
                    </div>
                    <div class="flex gap-3">
                        <div class="grow">
                            <label for="silence-duration" class="block text-sm font-medium text-slate-800">"For"</label>
                            <select id="silence-duration" name="duration" class=format!("mt-1 {INPUT}") aria-invalid=invalid("duration")
                                on:change=move |ev| duration.set(event_target_value(&ev))>
                                <option value="1h" selected=true>"1 hour"</option>
                                <option value="4h">"4 hours"</option>
                                <option value="1d">"1 day"</option>
                                <option value="custom">"Custom…"</option>
                            </select>
                            {field_error(error, "duration")}
                        </div>
                        <Show when=move || duration.get() == "custom">
                            <div class="grow">
                                <label for="silence-minutes" class="block text-sm font-medium text-slate-800">"Minutes"</label>
                                <input id="silence-minutes" name="custom_minutes" type="number" min="1" max=MAX_SILENCE_MINUTES.to_string() required
                                    class=format!("mt-1 {INPUT}") aria-invalid=invalid("custom_minutes") />
                                {field_error(error, "custom_minutes")}
                            </div>
                        </Show>
                    </div>
                    <div class="sm:col-span-2">
                        <label for="silence-comment" class="block text-sm font-medium text-slate-800">"Comment"</label>
                        <input id="silence-comment" name="comment" required autocomplete="off" placeholder="Planned database upgrade"
                            class=format!("mt-1 {INPUT}") aria-invalid=invalid("comment") />
                        {field_error(error, "comment")}
                    </div>
                    <div class="sm:col-span-2"><Submit label="Create silence" pending=create.pending() /></div>
                </ActionForm>
                <div class="mt-2 space-y-2">
                    <FormError error fields=SILENCE_FIELDS />
                    <Notice text=created />
                </div>
            }
        })}
    }
}
