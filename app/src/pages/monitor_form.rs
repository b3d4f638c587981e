//! The monitor create/change form: the probe fields switch with the kind,
//! conditions are rows that can be added and removed, and every error shows
//! under the field it is about.
//!
//! Each field is a signal; submitting gathers them into a
//! [`MonitorForm`] and sends it to [`save_monitor`]. Enter submits, as in
//! any form.

use leptos::prelude::*;
use protocol::ids::{HostId, MonitorId, NotificationChannelId, ProjectId, WorkspaceId};
use protocol::views::monitoring::{
    DnsRecordType, HttpMethod, MonitorKind, NewCondition, Operator, Parameter, Severity,
};

use crate::api::monitoring::*;
use crate::components::*;
use crate::error::AppError;

/// One row of the conditions editor.
#[derive(Clone, Copy)]
struct Row {
    key: u64,
    parameter: RwSignal<String>,
    operator: RwSignal<String>,
    threshold: RwSignal<String>,
    for_seconds: RwSignal<String>,
    severity: RwSignal<String>,
}

impl Row {
    fn new(key: u64, c: &ConditionForm) -> Self {
        Self {
            key,
            parameter: RwSignal::new(c.parameter.clone()),
            operator: RwSignal::new(c.operator.clone()),
            threshold: RwSignal::new(c.threshold.clone()),
            for_seconds: RwSignal::new(c.for_seconds.clone()),
            severity: RwSignal::new(c.severity.clone()),
        }
    }

    fn value(&self) -> ConditionForm {
        ConditionForm {
            parameter: self.parameter.get_untracked(),
            operator: self.operator.get_untracked(),
            threshold: self.threshold.get_untracked(),
            for_seconds: self.for_seconds.get_untracked(),
            severity: self.severity.get_untracked(),
        }
    }
}

fn select_class() -> String {
    format!("mt-1 {INPUT}")
}

/// A text input bound to `value`, labelled, with its error.
#[component]
fn TextInput(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    value: RwSignal<String>,
    field: &'static str,
    error: Signal<Option<AppError>>,
    #[prop(optional, into)] placeholder: Option<String>,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(optional)] required: bool,
    #[prop(optional)] numeric: bool,
) -> impl IntoView {
    let initial = value.get_untracked();
    view! {
        <div>
            <label for=id.clone() class="block text-sm font-medium text-slate-800">{label}</label>
            <input id=id name=field autocomplete="off" required=required placeholder=placeholder
                inputmode=numeric.then_some("decimal")
                value=initial prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().and_then(|e| e.for_field(field)).is_some().to_string()
                class=format!("mt-1 {INPUT}") />
            {hint.map(|h| view! { <p class="mt-1 text-xs text-slate-500">{h}</p> })}
            {field_error(error, field)}
        </div>
    }
}

/// A checkbox bound to `value`.
#[component]
fn CheckBox(
    #[prop(into)] id: String,
    #[prop(into)] label: String,
    value: RwSignal<bool>,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    let initial = value.get_untracked();
    view! {
        <div class="flex items-start gap-2">
            <input id=id.clone() type="checkbox" class="mt-1" checked=initial
                prop:checked=move || value.get() on:change=move |ev| value.set(event_target_checked(&ev)) />
            <div>
                <label for=id class="text-sm text-slate-800">{label}</label>
                {hint.map(|h| view! { <p class="text-xs text-slate-500">{h}</p> })}
            </div>
        </div>
    }
}

/// Toggles `item` in the list `list`.
fn toggle<T: PartialEq + Copy + Send + Sync + 'static>(list: RwSignal<Vec<T>>, item: T, on: bool) {
    list.update(|l| {
        l.retain(|x| *x != item);
        if on {
            l.push(item);
        }
    });
}

/// The create form (`existing` unset) or the change form.
#[component]
pub fn MonitorFormView(
    save: ServerAction<SaveMonitor>,
    #[prop(optional)] project: Option<ProjectId>,
    #[prop(optional)] workspace: Option<WorkspaceId>,
    #[prop(optional)] existing: Option<(MonitorId, MonitorForm)>,
    options: MonitorFormOptions,
) -> impl IntoView {
    let error = error_of(save.value());
    let editing = existing.as_ref().map(|(id, _)| *id);
    let initial = existing.map(|(_, f)| f).unwrap_or_default();
    let prefix = if editing.is_some() {
        "edit-monitor"
    } else {
        "new-monitor"
    };
    let id = move |field: &str| format!("{prefix}-{field}");

    let s = |v: &String| RwSignal::new(v.clone());
    let name = s(&initial.name);
    let kind = s(&initial.kind);
    let method = s(&initial.method);
    let url = s(&initial.url);
    let expected_status = s(&initial.expected_status);
    let body_contains = s(&initial.body_contains);
    let json_path = s(&initial.json_path);
    let json_equals = s(&initial.json_equals);
    let headers = s(&initial.headers);
    let follow_redirects = RwSignal::new(initial.follow_redirects);
    let timeout = s(&initial.timeout);
    let host = s(&initial.host);
    let port = s(&initial.port);
    let server_name = s(&initial.server_name);
    let dns_name = s(&initial.dns_name);
    let record_type = s(&initial.record_type);
    let expected = s(&initial.expected);
    let nameserver = s(&initial.nameserver);
    let workspace_choice = RwSignal::new(
        initial
            .workspace
            .or_else(|| options.workspaces.first().map(|(w, _)| *w))
            .map(|w| w.to_string())
            .unwrap_or_default(),
    );
    let namespace = s(&initial.namespace);
    let host_choice = RwSignal::new(
        initial
            .host_id
            .or_else(|| options.hosts.first().map(|(h, _)| *h))
            .map(|h| h.to_string())
            .unwrap_or_default(),
    );
    let interval = s(&initial.interval);
    let portal_source = RwSignal::new(initial.portal_source);
    let agent_hosts = RwSignal::new(initial.agent_hosts.clone());
    let channels = RwSignal::new(initial.channels.clone());
    let failure_threshold = s(&initial.failure_threshold);
    let success_threshold = s(&initial.success_threshold);
    let repeat_interval = s(&initial.repeat_interval);
    let public = RwSignal::new(initial.public);
    let maintenance_opt_in = RwSignal::new(initial.maintenance_opt_in);
    let paused = initial.paused;
    let next_key = StoredValue::new(initial.conditions.len() as u64);
    let rows = RwSignal::new(
        initial
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| Row::new(i as u64, c))
            .collect::<Vec<_>>(),
    );
    let add_row = move || {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        rows.update(|r| {
            r.push(Row::new(
                key,
                &ConditionForm::from_condition(&NewCondition::down()),
            ))
        });
    };

    let current_kind =
        Memo::new(move |_| MonitorKind::from_key(&kind.get()).unwrap_or(MonitorKind::Http));
    let is = move |k: MonitorKind| current_kind.get() == k;

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = MonitorForm {
            name: name.get_untracked(),
            kind: kind.get_untracked(),
            method: method.get_untracked(),
            url: url.get_untracked(),
            expected_status: expected_status.get_untracked(),
            body_contains: body_contains.get_untracked(),
            json_path: json_path.get_untracked(),
            json_equals: json_equals.get_untracked(),
            headers: headers.get_untracked(),
            follow_redirects: follow_redirects.get_untracked(),
            timeout: timeout.get_untracked(),
            host: host.get_untracked(),
            port: port.get_untracked(),
            server_name: server_name.get_untracked(),
            dns_name: dns_name.get_untracked(),
            record_type: record_type.get_untracked(),
            expected: expected.get_untracked(),
            nameserver: nameserver.get_untracked(),
            workspace: workspace_choice.get_untracked().parse().ok(),
            namespace: namespace.get_untracked(),
            host_id: host_choice.get_untracked().parse().ok(),
            interval: interval.get_untracked(),
            portal_source: portal_source.get_untracked(),
            agent_hosts: agent_hosts.get_untracked(),
            conditions: rows.get_untracked().iter().map(Row::value).collect(),
            channels: channels.get_untracked(),
            failure_threshold: failure_threshold.get_untracked(),
            success_threshold: success_threshold.get_untracked(),
            repeat_interval: repeat_interval.get_untracked(),
            public: public.get_untracked(),
            maintenance_opt_in: maintenance_opt_in.get_untracked(),
            paused,
        };
        save.dispatch(SaveMonitor {
            project,
            workspace,
            monitor: editing,
            form,
        });
    };

    let hosts = options.hosts.clone();
    let agent_choices = options.hosts.clone();
    let workspaces = options.workspaces.clone();
    let channel_choices = options.channels.clone();
    let submit_label = if editing.is_some() {
        "Save changes"
    } else {
        "Create monitor"
    };

    view! {
        <form on:submit=submit class="mt-2 space-y-6" data-testid=format!("{prefix}-form") novalidate>
            <div class="grid gap-4 sm:grid-cols-2">
                <TextInput id=id("name") label="Name" value=name field="name" error required=true placeholder="api" />
                <div>
                    <label for=id("kind") class="block text-sm font-medium text-slate-800">"What to monitor"</label>
                    <select id=id("kind") name="kind" class=select_class()
                        prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        {MonitorKind::ALL.into_iter().map(|k| view! {
                            <option value=k.key() selected=initial.kind == k.key()>{k.label()}</option>
                        }).collect_view()}
                    </select>
                    {field_error(error, "kind")}
                </div>
            </div>

            <fieldset class="grid gap-4 rounded-md border border-slate-200 p-3 sm:grid-cols-2">
                <legend class="px-1 text-sm font-medium text-slate-800">"Probe"</legend>
                <Show when=move || is(MonitorKind::Http)>
                    <div>
                        <label for=id("method") class="block text-sm font-medium text-slate-800">"Method"</label>
                        <select id=id("method") class=select_class()
                            prop:value=move || method.get() on:change=move |ev| method.set(event_target_value(&ev))>
                            {HttpMethod::ALL.into_iter().map(|m| view! {
                                <option value=m.as_str() selected=move || method.get_untracked() == m.as_str()>{m.as_str()}</option>
                            }).collect_view()}
                        </select>
                        {field_error(error, "method")}
                    </div>
                    <TextInput id=id("url") label="URL" value=url field="url" error required=true placeholder="https://example.com/health" />
                    <TextInput id=id("expected-status") label="Expected status" value=expected_status field="expected_status" error numeric=true
                        hint="Empty: any 2xx or 3xx." />
                    <TextInput id=id("body-contains") label="Body contains" value=body_contains field="body_contains" error />
                    <TextInput id=id("json-path") label="JSON path" value=json_path field="json_path" error placeholder="$.status" />
                    <TextInput id=id("json-equals") label="JSON value equals" value=json_equals field="json_equals" error placeholder="ok" />
                    <div class="sm:col-span-2">
                        <label for=id("headers") class="block text-sm font-medium text-slate-800">"Request headers"</label>
                        <textarea id=id("headers") rows="2" class=format!("mt-1 font-mono {INPUT}")
                            prop:value=move || headers.get() on:input=move |ev| headers.set(event_target_value(&ev))
                            aria-invalid=move || error.get().and_then(|e| e.for_field("headers")).is_some().to_string()>
                            {initial.headers.clone()}
                        </textarea>
                        <p class="mt-1 text-xs text-slate-500">"One per line: \"Name: value\"."</p>
                        {field_error(error, "headers")}
                    </div>
                    <CheckBox id=id("follow-redirects") label="Follow redirects" value=follow_redirects />
                </Show>
                <Show when=move || is(MonitorKind::Tls) || is(MonitorKind::Tcp)>
                    <TextInput id=id("host") label="Host" value=host field="host" error required=true placeholder="db.example.com" />
                    <TextInput id=id("port") label="Port" value=port field="port" error required=true numeric=true placeholder="443" />
                </Show>
                <Show when=move || is(MonitorKind::Tls)>
                    <TextInput id=id("server-name") label="Server name (SNI)" value=server_name field="server_name" error
                        hint="Empty: the host." />
                </Show>
                <Show when=move || is(MonitorKind::Dns)>
                    <TextInput id=id("dns-name") label="Name" value=dns_name field="dns_name" error required=true placeholder="example.com" />
                    <div>
                        <label for=id("record-type") class="block text-sm font-medium text-slate-800">"Record type"</label>
                        <select id=id("record-type") class=select_class()
                            prop:value=move || record_type.get() on:change=move |ev| record_type.set(event_target_value(&ev))>
                            {DnsRecordType::ALL.into_iter().map(|t| view! {
                                <option value=t.as_str() selected=move || record_type.get_untracked() == t.as_str()>{t.as_str()}</option>
                            }).collect_view()}
                        </select>
                        {field_error(error, "record_type")}
                    </div>
                    <TextInput id=id("expected") label="Expected answer" value=expected field="expected" error hint="Empty: any answer." />
                    <TextInput id=id("nameserver") label="Nameserver" value=nameserver field="nameserver" error placeholder="1.1.1.1:53"
                        hint="Empty: the system's resolver." />
                </Show>
                <Show when=move || is(MonitorKind::Kubernetes)>
                    {
                        let workspaces = workspaces.clone();
                        view! {
                            <div>
                                <label for=id("workspace") class="block text-sm font-medium text-slate-800">"Workspace"</label>
                                <select id=id("workspace") class=select_class()
                                    prop:value=move || workspace_choice.get() on:change=move |ev| workspace_choice.set(event_target_value(&ev))>
                                    {workspaces.iter().map(|(w, n)| {
                                        let v = w.to_string();
                                        let chosen = workspace_choice.get_untracked() == v;
                                        view! { <option value=v selected=chosen>{n.clone()}</option> }
                                    }).collect_view()}
                                </select>
                                {workspaces.is_empty().then(|| view! { <p class="mt-1 text-xs text-slate-500">"No workspaces here yet."</p> })}
                                {field_error(error, "workspace")}
                            </div>
                        }
                    }
                    <TextInput id=id("namespace") label="Namespace" value=namespace field="namespace" error hint="Empty: all namespaces." />
                </Show>
                <Show when=move || is(MonitorKind::Host)>
                    {
                        let hosts = hosts.clone();
                        view! {
                            <div>
                                <label for=id("host-id") class="block text-sm font-medium text-slate-800">"Host"</label>
                                <select id=id("host-id") class=select_class()
                                    prop:value=move || host_choice.get() on:change=move |ev| host_choice.set(event_target_value(&ev))>
                                    {hosts.iter().map(|(h, n)| {
                                        let v = h.to_string();
                                        let chosen = host_choice.get_untracked() == v;
                                        view! { <option value=v selected=chosen>{n.clone()}</option> }
                                    }).collect_view()}
                                </select>
                                {hosts.is_empty().then(|| view! { <p class="mt-1 text-xs text-slate-500">"No hosts here yet."</p> })}
                                {field_error(error, "host_id")}
                            </div>
                        }
                    }
                </Show>
                <Show when=move || !is(MonitorKind::Host)>
                    <TextInput id=id("timeout") label="Timeout (s)" value=timeout field="timeout" error numeric=true />
                </Show>
                <TextInput id=id("interval") label="Check every (s)" value=interval field="interval" error required=true numeric=true />
            </fieldset>

            <Show when=move || current_kind.get().runs_on_agents()>
                {
                    let agent_choices = agent_choices.clone();
                    view! {
                        <fieldset class="rounded-md border border-slate-200 p-3">
                            <legend class="px-1 text-sm font-medium text-slate-800">"Probe from"</legend>
                            <div class="flex flex-wrap gap-4">
                                <CheckBox id=id("source-portal") label="Portal" value=portal_source />
                                {agent_choices.iter().map(|(h, n)| {
                                    let h: HostId = *h;
                                    let box_id = id(&format!("source-{h}"));
                                    let on = agent_hosts.get_untracked().contains(&h);
                                    view! {
                                        <div class="flex items-center gap-2">
                                            <input id=box_id.clone() type="checkbox" checked=on
                                                prop:checked=move || agent_hosts.get().contains(&h)
                                                on:change=move |ev| toggle(agent_hosts, h, event_target_checked(&ev)) />
                                            <label for=box_id class="text-sm text-slate-800">{format!("Agent on {n}")}</label>
                                        </div>
                                    }
                                }).collect_view()}
                            </div>
                            {field_error(error, "sources")}
                        </fieldset>
                    }
                }
            </Show>

            <fieldset class="rounded-md border border-slate-200 p-3" data-testid="conditions">
                <legend class="px-1 text-sm font-medium text-slate-800">"Alert conditions"</legend>
                <p class="mb-2 text-xs text-slate-500">"An alert fires when a condition holds for the failure threshold of consecutive results and at least \"for\" long."</p>
                <div class="space-y-2">
                    <For each=move || rows.get() key=|r| r.key let:row>
                        <ConditionRow row kind=current_kind prefix on_remove=move || rows.update(|r| r.retain(|x| x.key != row.key)) />
                    </For>
                </div>
                <div class="mt-2">
                    <button type="button" class=BUTTON_SECONDARY on:click=move |_| add_row()>"Add condition"</button>
                </div>
                {field_error(error, "conditions")}
            </fieldset>

            <fieldset class="rounded-md border border-slate-200 p-3">
                <legend class="px-1 text-sm font-medium text-slate-800">"Notifications"</legend>
                {if channel_choices.is_empty() {
                    view! { <p class="text-sm text-slate-500">"The organization has no notification channels yet; alerts still show in the portal."</p> }.into_any()
                } else {
                    view! {
                        <div class="flex flex-wrap gap-4">
                            {channel_choices.iter().map(|c| {
                                let cid: NotificationChannelId = c.id;
                                let box_id = id(&format!("channel-{cid}"));
                                let on = channels.get_untracked().contains(&cid);
                                view! {
                                    <div class="flex items-center gap-2">
                                        <input id=box_id.clone() type="checkbox" checked=on
                                            prop:checked=move || channels.get().contains(&cid)
                                            on:change=move |ev| toggle(channels, cid, event_target_checked(&ev)) />
                                        <label for=box_id class="text-sm text-slate-800">{format!("{} ({})", c.name, c.kind.label())}</label>
                                    </div>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any()
                }}
                {field_error(error, "channels")}
                <div class="mt-4 grid gap-4 sm:grid-cols-3">
                    <TextInput id=id("failure-threshold") label="Fire after (failures)" value=failure_threshold field="failure_threshold" error numeric=true />
                    <TextInput id=id("success-threshold") label="Resolve after (successes)" value=success_threshold field="success_threshold" error numeric=true />
                    <TextInput id=id("repeat-interval") label="Repeat every" value=repeat_interval field="repeat_interval" error hint="While firing and not acknowledged: 30m, 4h …" />
                </div>
                <div class="mt-4 flex flex-wrap gap-6">
                    <CheckBox id=id("public") label="Show on the public status page" value=public />
                    <CheckBox id=id("maintenance") label="Quiet during the workspace's maintenance window" value=maintenance_opt_in />
                </div>
            </fieldset>

            <div><Submit label=submit_label pending=save.pending() /></div>
        </form>
        <div class="mt-2"><FormError error fields=FORM_FIELDS /></div>
    }
}

#[component]
fn ConditionRow(
    row: Row,
    kind: Memo<MonitorKind>,
    prefix: &'static str,
    on_remove: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let id = move |f: &str| format!("{prefix}-condition-{}-{f}", row.key);
    // A parameter the new kind does not measure falls back to status.
    Effect::new(move |_| {
        let k = kind.get();
        let current = row.parameter.get_untracked();
        if !k.parameters().iter().any(|p| p.key() == current) {
            row.parameter.set(Parameter::Status.key().into());
        }
    });
    view! {
        <div class="grid items-end gap-2 sm:grid-cols-6" data-testid="condition-row">
            <div>
                <label for=id("parameter") class="block text-xs text-slate-600">"Parameter"</label>
                <select id=id("parameter") class=select_class()
                    prop:value=move || row.parameter.get() on:change=move |ev| row.parameter.set(event_target_value(&ev))>
                    {move || {
                        let chosen = row.parameter.get_untracked();
                        kind.get().parameters().iter().map(|p: &Parameter| {
                            let key = p.key();
                            view! { <option value=key selected=chosen == key>{key}</option> }
                        }).collect_view()
                    }}
                </select>
            </div>
            <div>
                <label for=id("operator") class="block text-xs text-slate-600">"Operator"</label>
                <select id=id("operator") class=select_class()
                    prop:value=move || row.operator.get() on:change=move |ev| row.operator.set(event_target_value(&ev))>
                    {Operator::ALL.into_iter().map(|o| view! {
                        <option value=o.key() selected=row.operator.get_untracked() == o.key()>{o.symbol()}</option>
                    }).collect_view()}
                </select>
            </div>
            <div>
                <label for=id("threshold") class="block text-xs text-slate-600">"Threshold"</label>
                <input id=id("threshold") inputmode="decimal" class=select_class() value=row.threshold.get_untracked()
                    prop:value=move || row.threshold.get() on:input=move |ev| row.threshold.set(event_target_value(&ev)) />
            </div>
            <div>
                <label for=id("for") class="block text-xs text-slate-600">"For"</label>
                <input id=id("for") class=select_class() value=row.for_seconds.get_untracked() placeholder="0, 90s, 3m"
                    prop:value=move || row.for_seconds.get() on:input=move |ev| row.for_seconds.set(event_target_value(&ev)) />
            </div>
            <div>
                <label for=id("severity") class="block text-xs text-slate-600">"Severity"</label>
                <select id=id("severity") class=select_class()
                    prop:value=move || row.severity.get() on:change=move |ev| row.severity.set(event_target_value(&ev))>
                    {Severity::ALL.into_iter().map(|s| view! {
                        <option value=s.key() selected=row.severity.get_untracked() == s.key()>{s.key()}</option>
                    }).collect_view()}
                </select>
            </div>
            <div>
                <button type="button" class=BUTTON_SECONDARY aria-label="Remove this condition" on:click=move |_| on_remove()>"Remove"</button>
            </div>
        </div>
    }
}
