//! An organization's notification channels (`/orgs/:org/notifications`):
//! the list, the create/change form whose fields follow the kind, test
//! notifications followed until delivered or failed, deletion, and the
//! deliveries with retry — all refreshed every 2 s.
//!
//! Lists read their resource through memos, so a refresh that changed
//! nothing leaves forms, open confirmations and focus alone.

use leptos::prelude::*;
use protocol::ids::{NotificationChannelId, NotificationId, OrganizationId};
use protocol::views::monitoring::{ChannelKind, ChannelView, DeliveryState, DeliveryView};
use protocol::views::{Page, display_time};

use crate::api::notifications::*;
use crate::components::*;
use crate::error::AppError;
use crate::pages::hosts::Ticker;
use crate::pages::orgs::{OrgFrame, org_param};

type ChannelsResource = Resource<Result<ChannelsSection, AppError>>;
type DeliveriesResource = Resource<Result<Page<DeliveryView>, AppError>>;

pub(crate) fn delivery_tone(state: DeliveryState) -> Tone {
    match state {
        DeliveryState::Pending => Tone::Warn,
        DeliveryState::Delivered => Tone::Good,
        DeliveryState::Failed => Tone::Bad,
    }
}

fn delivery_label(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "Pending",
        DeliveryState::Delivered => "Delivered",
        DeliveryState::Failed => "Failed",
    }
}

/// A random secret of 32 letters and digits from the browser's CSPRNG.
fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    bytes
        .iter()
        // 62 letters: the tiny bias of `% 62` does not matter for a
        // 190-bit secret.
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(feature = "hydrate")]
#[leptos::wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

/// Only called from a click handler, so only in the browser.
fn fill_random(buf: &mut [u8]) {
    #[cfg(feature = "hydrate")]
    get_random_values(buf);
    #[cfg(not(feature = "hydrate"))]
    let _ = buf;
}

#[component]
pub fn NotificationsPage() -> impl IntoView {
    view! {
        <SignedIn>
            <OrgFrame current="/notifications" />
            <Notifications />
        </SignedIn>
    }
}

#[derive(Debug, Clone, PartialEq)]
enum FormMode {
    Closed,
    New,
    Change(ChannelView),
}

#[component]
fn Notifications() -> impl IntoView {
    let org = org_param();
    let save = ServerAction::<SaveNotificationChannel>::new();
    let delete = ServerAction::<DeleteNotificationChannel>::new();
    let test = ServerAction::<SendTestNotification>::new();
    let retry = ServerAction::<RetryNotification>::new();
    let page = page_from_query();
    let ticker = Ticker::new();
    let channels: ChannelsResource = Resource::new(
        move || {
            (
                org.get(),
                ticker.tick.get(),
                save.version().get(),
                delete.version().get(),
            )
        },
        |(org, ..)| async move { list_notification_channels(org.ok_or(AppError::NotFound)?).await },
    );
    let deliveries: DeliveriesResource = Resource::new(
        move || {
            (
                org.get(),
                page.get(),
                ticker.tick.get(),
                test.version().get(),
                retry.version().get(),
            )
        },
        |(org, page, ..)| async move {
            list_notification_deliveries(org.ok_or(AppError::NotFound)?, page).await
        },
    );
    // The test notification being followed, read on its own so it is found
    // whatever page of deliveries is shown.
    let testing = Memo::new(move |_| {
        test.value()
            .with(|v| v.as_ref().and_then(|r| r.as_ref().ok()).map(|d| d.id))
    });
    let test_state: Resource<Option<DeliveryView>> = Resource::new(
        move || (org.get(), testing.get(), ticker.tick.get()),
        |(org, testing, _)| async move {
            let (org, id) = (org?, testing?);
            list_notification_deliveries(org, 1)
                .await
                .ok()?
                .items
                .into_iter()
                .find(|d| d.id == id)
        },
    );
    ticker.start(move || channels.with(|c| matches!(c, Some(Ok(_)))));
    let form = RwSignal::new(FormMode::Closed);
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            form.set(FormMode::Closed);
        }
    });
    view! {
        <div class="space-y-6">
            <Card title="Notification channels" id="channels">
                <p class="mb-4 text-sm text-slate-600">"Where alerts of this organization's monitors are sent. Each monitor picks its channels."</p>
                <Transition fallback=|| view! { <Loading /> }>
                    {move || channels.get().and_then(Result::err).map(|e| view! { <ErrorText error=e /> })}
                    <ChannelList channels form delete test />
                    <TestResult test test_state />
                    <ChannelFormArea channels form save org />
                </Transition>
            </Card>
            <Card title="Deliveries" id="deliveries">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || deliveries.get().and_then(Result::err).map(|e| view! { <ErrorText error=e /> })}
                    <DeliveryList deliveries channels retry org />
                </Transition>
            </Card>
        </div>
    }
}

#[component]
fn ChannelList(
    channels: ChannelsResource,
    form: RwSignal<FormMode>,
    delete: ServerAction<DeleteNotificationChannel>,
    test: ServerAction<SendTestNotification>,
) -> impl IntoView {
    let list =
        Memo::new(move |_| channels.with(|c| c.as_ref().and_then(|r| r.as_ref().ok()).cloned()));
    let delete_error = error_of(delete.value());
    let test_error = error_of(test.value());
    view! {
        <FormError error=delete_error />
        <FormError error=test_error />
        {move || list.get().map(|s| {
            if s.items.is_empty() {
                return view! {
                    <Empty text="No notification channels yet" hint="Add an email list, a signed webhook, Slack or Teams so firing alerts reach someone." />
                }.into_any();
            }
            let can_manage = s.can_manage;
            view! {
                <div class="overflow-x-auto">
                    <table class=TABLE data-testid="channels">
                        <thead><tr>
                            <th class=TH>"Name"</th><th class=TH>"Kind"</th><th class=TH>"Destination"</th>
                            <th class=TH>"Health"</th><th class=TH><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody class="divide-y divide-slate-100">
                            {s.items.into_iter().map(|c| view! { <ChannelRow channel=c can_manage form delete test /> }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        })}
    }
}

#[component]
fn ChannelRow(
    channel: ChannelView,
    can_manage: bool,
    form: RwSignal<FormMode>,
    delete: ServerAction<DeleteNotificationChannel>,
    test: ServerAction<SendTestNotification>,
) -> impl IntoView {
    let id: NotificationChannelId = channel.id;
    let name = channel.name.clone();
    let editing = channel.clone();
    let question = format!("Delete channel {name}? Monitors stop sending to it.");
    view! {
        <tr data-testid="channel-row">
            <td class=TD>{channel.name.clone()}</td>
            <td class=TD>{channel.kind.label()}</td>
            <td class=TD><code class="break-all">{channel.destination.clone()}</code></td>
            <td class=TD>
                {if channel.failed_recently > 0 {
                    view! { <Badge text=format!("{} failed in 7 days", channel.failed_recently) tone=Tone::Bad /> }.into_any()
                } else {
                    view! { <Badge text="ok" tone=Tone::Good /> }.into_any()
                }}
            </td>
            <td class=TD>
                {can_manage.then(|| view! {
                    <span class="flex flex-wrap gap-2">
                        <Button class=BUTTON_SECONDARY aria_label=format!("Send test notification to {name}")
                            disabled=test.pending()
                            on_click=move || { test.dispatch(SendTestNotification { channel: id }); }>
                            "Send test notification"
                        </Button>
                        <Button class=BUTTON_SECONDARY aria_label=format!("Change {name}")
                            on_click=move || { form.set(FormMode::Change(editing.clone())); focus_later("channel-name"); }>
                            "Change"
                        </Button>
                        <ConfirmButton label="Delete" question confirm_label="Delete channel" pending=delete.pending()
                            on_confirm=move || { delete.dispatch(DeleteNotificationChannel { channel: id }); } />
                    </span>
                })}
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

/// The last test notification, followed until it is delivered or failed.
#[component]
fn TestResult(
    test: ServerAction<SendTestNotification>,
    test_state: Resource<Option<DeliveryView>>,
) -> impl IntoView {
    let sent = Memo::new(move |_| {
        test.value()
            .with(|v| v.as_ref().and_then(|r| r.as_ref().ok()).cloned())
    });
    let current = Memo::new(move |_| {
        let sent = sent.get()?;
        // The refreshed delivery, once the list has it; the answer of the
        // send until then.
        Some(
            test_state
                .get()
                .flatten()
                .filter(|d| d.id == sent.id)
                .unwrap_or(sent),
        )
    });
    move || {
        current.get().map(|d| {
            let text = match d.state {
                DeliveryState::Pending if d.attempts == 0 => format!("Test notification to {}: sending…", d.channel_name),
                DeliveryState::Pending => format!(
                    "Test notification to {}: attempt {} failed ({}), retrying{}",
                    d.channel_name,
                    d.attempts,
                    d.last_error.clone().unwrap_or_default(),
                    d.next_attempt_at.map(|t| format!(" at {}", display_time(t))).unwrap_or_default(),
                ),
                DeliveryState::Delivered => format!("Test notification to {}: delivered.", d.channel_name),
                DeliveryState::Failed => format!(
                    "Test notification to {}: failed — {}",
                    d.channel_name,
                    d.last_error.clone().unwrap_or_default()
                ),
            };
            view! {
                <div role="status" data-testid="test-result" class="mt-4 flex flex-wrap items-center gap-2 rounded-md border border-slate-200 bg-slate-50 p-3 text-sm">
                    <span data-testid="test-state"><Badge text=delivery_label(d.state) tone=delivery_tone(d.state) /></span>
                    <span>{text}</span>
                </div>
            }
        })
    }
}

#[component]
fn ChannelFormArea(
    channels: ChannelsResource,
    form: RwSignal<FormMode>,
    save: ServerAction<SaveNotificationChannel>,
    org: Memo<Option<OrganizationId>>,
) -> impl IntoView {
    let can_manage =
        Memo::new(move |_| channels.with(|c| matches!(c, Some(Ok(c)) if c.can_manage)));
    let cannot = Memo::new(move |_| channels.with(|c| matches!(c, Some(Ok(c)) if !c.can_manage)));
    let saved = Signal::derive(move || match save.value().get() {
        Some(Ok(c)) => Some(format!("Saved channel {}.", c.name)),
        _ => None,
    });
    view! {
        <div class="mt-4"><Notice text=saved /></div>
        {move || cannot.get().then(|| view! {
            <p class="mt-4 text-sm text-slate-600">"Your role here does not include managing notification channels (notification.manage)."</p>
        })}
        {move || can_manage.get().then(|| match form.get() {
            FormMode::Closed => view! {
                <div class="mt-4">
                    <button type="button" class=BUTTON_SECONDARY on:click=move |_| { form.set(FormMode::New); focus_later("channel-name"); }>
                        "New channel"
                    </button>
                </div>
            }.into_any(),
            FormMode::New => view! {
                <h3 class="mt-6 text-sm font-semibold">"New channel"</h3>
                <ChannelEditor save org=org.get_untracked() existing=None form />
            }.into_any(),
            FormMode::Change(c) => view! {
                <h3 class="mt-6 text-sm font-semibold">{format!("Change {}", c.name)}</h3>
                <ChannelEditor save org=org.get_untracked() existing=Some(c) form />
            }.into_any(),
        })}
    }
}

#[component]
fn ChannelEditor(
    save: ServerAction<SaveNotificationChannel>,
    org: Option<OrganizationId>,
    existing: Option<ChannelView>,
    form: RwSignal<FormMode>,
) -> impl IntoView {
    let error = error_of(save.value());
    let changing = existing.is_some();
    let kind = RwSignal::new(
        existing
            .as_ref()
            .map(|c| c.kind)
            .unwrap_or(ChannelKind::Webhook),
    );
    let secret = RwSignal::new(String::new());
    let name = existing
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    // The list shows email destinations as the addresses; the form wants
    // one per line.
    let addresses = existing
        .as_ref()
        .filter(|c| c.kind == ChannelKind::Email)
        .map(|c| {
            c.destination
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let channel_id = existing.as_ref().map(|c| c.id.to_string());
    let invalid = move |field: &'static str| {
        move || {
            error
                .get()
                .and_then(|e| e.for_field(field))
                .is_some()
                .to_string()
        }
    };
    let keep = |what: &str| changing.then(|| format!("Leave empty to keep the current {what}."));
    let url_hint = move || match kind.get() {
        ChannelKind::Webhook => {
            "Loopback POSTs the alert as JSON, signed with the secret (header X-Loopback-Signature: sha256=…)."
        }
        ChannelKind::Slack => "A Slack incoming webhook URL (https://hooks.slack.com/services/…).",
        ChannelKind::Teams => "A Microsoft Teams incoming webhook or workflow URL.",
        ChannelKind::Email => "",
    };
    let url_keep = keep("URL");
    let secret_keep = keep("secret");
    view! {
        <ActionForm action=save attr:class="mt-2 grid gap-4 sm:grid-cols-2" attr:data-testid="channel-form">
            {org.map(|o| view! { <input type="hidden" name="organization" value=o.to_string() /> })}
            {channel_id.map(|c| view! { <input type="hidden" name="channel" value=c /> })}
            <div>
                <label for="channel-name" class="block text-sm font-medium text-slate-800">"Name"</label>
                <input id="channel-name" name="name" required autocomplete="off" placeholder="On-call" value=name
                    class=format!("mt-1 {INPUT}") aria-invalid=invalid("name") />
                {field_error(error, "name")}
            </div>
            <div>
                <label for="channel-kind" class="block text-sm font-medium text-slate-800">"Kind"</label>
                <select id="channel-kind" name="kind" class=format!("mt-1 {INPUT}") aria-invalid=invalid("kind")
                    on:change=move |ev| if let Some(k) = ChannelKind::from_key(&event_target_value(&ev)) { kind.set(k) }>
                    {ChannelKind::ALL.into_iter().map(|k| view! {
                        <option value=k.key() selected=kind.get_untracked() == k>{k.label()}</option>
                    }).collect_view()}
                </select>
                {field_error(error, "kind")}
            </div>
            <Show when=move || kind.get() == ChannelKind::Email>
                <div class="sm:col-span-2">
                    <label for="channel-addresses" class="block text-sm font-medium text-slate-800">"Email addresses"</label>
                    <textarea id="channel-addresses" name="addresses" rows="3" class=format!("mt-1 font-mono {INPUT}")
                        aria-invalid=invalid("addresses")>{addresses.clone()}</textarea>
                    <p class="mt-1 text-xs text-slate-500">"One per line."</p>
                    {field_error(error, "addresses")}
                </div>
            </Show>
            <Show when=move || kind.get() != ChannelKind::Email>
                <div class="sm:col-span-2">
                    <label for="channel-url" class="block text-sm font-medium text-slate-800">"URL"</label>
                    <input id="channel-url" name="url" type="url" autocomplete="off" required=!changing
                        placeholder="https://" class=format!("mt-1 {INPUT}") aria-invalid=invalid("url") />
                    <p class="mt-1 text-xs text-slate-500">{url_hint}" "{url_keep.clone()}</p>
                    {field_error(error, "url")}
                </div>
            </Show>
            <Show when=move || kind.get() == ChannelKind::Webhook>
                <div class="sm:col-span-2">
                    <label for="channel-secret" class="block text-sm font-medium text-slate-800">"Signing secret"</label>
                    <div class="mt-1 flex gap-2">
                        <input id="channel-secret" name="secret" autocomplete="off" spellcheck="false"
                            required=!changing minlength="16"
                            class=format!("font-mono {INPUT}") aria-invalid=invalid("secret")
                            prop:value=move || secret.get() on:input=move |ev| secret.set(event_target_value(&ev)) />
                        <Button class=BUTTON_SECONDARY aria_label="Generate a random secret" on_click=move || secret.set(random_secret())>
                            "Generate"
                        </Button>
                    </div>
                    <p class="mt-1 text-xs text-slate-500">"At least 16 characters; your receiver checks the signature with it. Copy it now: it is not shown again. "{secret_keep.clone()}</p>
                    {field_error(error, "secret")}
                </div>
            </Show>
            <div class="flex gap-2 sm:col-span-2">
                <Submit label=if changing { "Save changes" } else { "Create channel" } pending=save.pending() />
                <button type="button" class=BUTTON_SECONDARY on:click=move |_| form.set(FormMode::Closed)>"Cancel"</button>
            </div>
        </ActionForm>
        <div class="mt-2"><FormError error fields=CHANNEL_FIELDS /></div>
    }
}

#[component]
fn DeliveryList(
    deliveries: DeliveriesResource,
    channels: ChannelsResource,
    retry: ServerAction<RetryNotification>,
    org: Memo<Option<OrganizationId>>,
) -> impl IntoView {
    let list =
        Memo::new(move |_| deliveries.with(|d| d.as_ref().and_then(|r| r.as_ref().ok()).cloned()));
    let can_manage =
        Memo::new(move |_| channels.with(|c| matches!(c, Some(Ok(c)) if c.can_manage)));
    let retry_error = error_of(retry.value());
    view! {
        <FormError error=retry_error />
        {move || list.get().map(|p| {
            if p.items.is_empty() {
                return view! { <Empty text="No notifications sent yet" hint="Deliveries of alerts and test notifications show up here." /> }.into_any();
            }
            let pages = p.pages();
            let base = org.get_untracked().map(|o| format!("/orgs/{o}/notifications")).unwrap_or_default();
            view! {
                <div class="overflow-x-auto">
                    <table class=TABLE data-testid="deliveries">
                        <thead><tr>
                            <th class=TH>"Subject"</th><th class=TH>"Channel"</th><th class=TH>"State"</th><th class=TH>"Attempts"</th>
                            <th class=TH>"Next attempt"</th><th class=TH>"Last error"</th><th class=TH>"Delivered"</th>
                            <th class=TH><span class="sr-only">"Actions"</span></th>
                        </tr></thead>
                        <tbody class="divide-y divide-slate-100">
                            {p.items.into_iter().map(|d| view! { <DeliveryRow delivery=d retry can_manage /> }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <Pager page=p.page pages total=p.total base />
            }.into_any()
        })}
    }
}

#[component]
fn DeliveryRow(
    delivery: DeliveryView,
    retry: ServerAction<RetryNotification>,
    can_manage: Memo<bool>,
) -> impl IntoView {
    let id: NotificationId = delivery.id;
    let failed = delivery.state == DeliveryState::Failed;
    let subject = delivery.subject.clone();
    view! {
        <tr data-testid="delivery-row">
            <td class=TD>{delivery.subject.clone()}<p class="text-xs text-slate-500">{display_time(delivery.created_at)}</p></td>
            <td class=TD>{delivery.channel_name.clone()}</td>
            <td class=TD><span data-testid="delivery-state"><Badge text=delivery_label(delivery.state) tone=delivery_tone(delivery.state) /></span></td>
            <td class=TD>{delivery.attempts}</td>
            <td class=TD>{match (delivery.state, delivery.next_attempt_at) {
                (DeliveryState::Pending, Some(t)) => display_time(t),
                _ => "–".to_string(),
            }}</td>
            <td class=TD><span class="break-all text-rose-800">{delivery.last_error.clone().unwrap_or_default()}</span></td>
            <td class=TD>{delivery.delivered_at.map(display_time).unwrap_or_else(|| "–".into())}</td>
            <td class=TD>
                {move || (failed && can_manage.get()).then(|| {
                    let subject = subject.clone();
                    view! {
                        <Button class=BUTTON_SECONDARY aria_label=format!("Retry {subject}") disabled=retry.pending()
                            on_click=move || { retry.dispatch(RetryNotification { notification: id }); }>
                            "Retry"
                        </Button>
                    }
                })}
            </td>
        </tr>
    }
}
