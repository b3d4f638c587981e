//! The signed-in account's own pages.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use protocol::views::display_time;

use crate::api::account::{
    ApiKeyCreate, ApiKeyRevoke, ChangePassword, PasskeyRemove, PasskeyRename,
    RecoveryCodesRegenerate, SignOutEverywhere, TotpBegin, TotpConfirm, TotpDisable, api_keys_list,
    passkey_register_finish, passkey_register_start, security_overview,
};
use crate::components::*;

#[component]
fn AccountTabs(current: &'static str) -> impl IntoView {
    let tabs = [
        ("/account", "Account"),
        ("/account/security", "Sign-in & security"),
        ("/account/api-keys", "API keys"),
    ];
    view! {
        <nav aria-label="Account sections" class="mb-6 flex gap-4 border-b border-slate-200 text-sm">
            {tabs.into_iter().map(|(href, label)| {
                let active = href == current;
                view! {
                    <a href=href aria-current=active.then_some("page")
                       class=if active { "-mb-px border-b-2 border-sky-600 px-1 pb-2 font-medium text-sky-700" } else { "px-1 pb-2 text-slate-600 hover:text-slate-900" }>
                        {label}
                    </a>
                }
            }).collect_view()}
        </nav>
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Title text="Account" />
        <SignedIn>
            <Account />
        </SignedIn>
    }
}

#[component]
fn Account() -> impl IntoView {
    let me = use_me();
    let change = ServerAction::<ChangePassword>::new();
    let error = error_of(change.value());
    let changed = Signal::derive(move || {
        matches!(change.value().get(), Some(Ok(())))
            .then(|| "Your password was changed. Other sessions were signed out.".to_string())
    });
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    view! {
        <PageHeader title="Account" />
        <AccountTabs current="/account" />
        <div class="grid gap-6 lg:grid-cols-2">
            <Card title="Profile">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || me.get().map(|me| view! {
                        <dl class="space-y-3 text-sm">
                            <div><dt class="text-slate-500">"Name"</dt><dd class="font-medium">{me.account.display_name.clone()}</dd></div>
                            <div><dt class="text-slate-500">"Email"</dt><dd class="font-medium">{me.account.email.clone()}</dd></div>
                            <div><dt class="text-slate-500">"Member since"</dt><dd>{display_time(me.account.created_at)}</dd></div>
                            {me.account.is_operator.then(|| view! { <div><dt class="text-slate-500">"Role"</dt><dd><Badge text="platform operator" tone=Tone::Warn /></dd></div> })}
                        </dl>
                    })}
                </Transition>
            </Card>
            <Card title="Change password">
                <ActionForm action=change attr:class="space-y-4">
                    <Notice text=changed />
                    <Field label="Current password" name="current_password" kind="password" autocomplete="current-password" required=true error=error />
                    <Field label="New password" name="new_password" kind="password" autocomplete="new-password" hint="At least 10 characters." required=true error=error />
                    <FormError error fields=&["current_password", "new_password"] />
                    <Submit label="Change password" pending=change.pending() />
                </ActionForm>
            </Card>
            <Card title="Sessions">
                <p class="mb-4 text-sm text-slate-600">"Signs this account out of every browser, including this one. API keys keep working; revoke them separately."</p>
                <ConfirmButton
                    label="Sign out everywhere"
                    question="Sign out of every browser?"
                    confirm_label="Sign out everywhere"
                    on_confirm=move || { everywhere.dispatch(SignOutEverywhere {}); }
                    pending=everywhere.pending()
                />
            </Card>
        </div>
    }
}

#[component]
pub fn SecurityPage() -> impl IntoView {
    view! {
        <Title text="Sign-in & security" />
        <SignedIn>
            <PageHeader title="Sign-in & security" intro="A second factor keeps your account safe even if your password leaks." />
            <AccountTabs current="/account/security" />
            <SecuritySettings />
        </SignedIn>
    }
}

#[component]
fn SecuritySettings() -> impl IntoView {
    let begin = ServerAction::<TotpBegin>::new();
    let confirm = ServerAction::<TotpConfirm>::new();
    let disable = ServerAction::<TotpDisable>::new();
    let regenerate = ServerAction::<RecoveryCodesRegenerate>::new();
    let rename = ServerAction::<PasskeyRename>::new();
    let remove = ServerAction::<PasskeyRemove>::new();
    let passkey_added = RwSignal::new(0u32);
    let overview = Resource::new(
        move || {
            (
                confirm.version().get(),
                disable.version().get(),
                regenerate.version().get(),
                rename.version().get(),
                remove.version().get(),
                passkey_added.get(),
            )
        },
        |_| security_overview(),
    );
    let confirm_error = error_of(confirm.value());
    let disable_error = error_of(disable.value());
    let recovery_codes = Signal::derive(move || {
        confirm
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| regenerate.value().get().and_then(Result::ok))
    });

    view! {
        <div class="grid gap-6 lg:grid-cols-2">
            <Card title="Authenticator app" id="totp">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || overview.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(s) if s.totp_enabled => view! {
                            <div class="space-y-4 text-sm">
                                <p><Badge text="On" tone=Tone::Good /> " Codes from your authenticator app are required when you sign in."</p>
                                <p>{format!("{} of 10 recovery codes left.", s.recovery_codes_left)}</p>
                                <ConfirmButton
                                    label="New recovery codes"
                                    question="Replace all recovery codes? The old ones stop working."
                                    confirm_label="Replace"
                                    on_confirm=move || { regenerate.dispatch(RecoveryCodesRegenerate {}); }
                                />
                                <ActionForm action=disable attr:class="space-y-3 border-t border-slate-100 pt-4">
                                    <Field label="Current password (to turn it off)" name="current_password" kind="password" autocomplete="current-password" required=true error=disable_error />
                                    <FormError error=disable_error fields=&["current_password"] />
                                    <Submit label="Turn off" pending=disable.pending() class=BUTTON_SECONDARY />
                                </ActionForm>
                            </div>
                        }.into_any(),
                        Ok(_) => view! {
                            <div class="space-y-4 text-sm">
                                <p>"Use an app such as Aegis, Google Authenticator or 1Password to generate sign-in codes."</p>
                                {move || match begin.value().get() {
                                    Some(Ok(enrolment)) => view! {
                                        <div class="space-y-4">
                                            <div class="w-52" inner_html=enrolment.qr_svg.clone() aria-label="QR code for your authenticator app" role="img"></div>
                                            <p>"Or type this key: " <code data-testid="totp-secret" class="break-all rounded bg-slate-100 px-1 py-0.5">{enrolment.secret.clone()}</code></p>
                                            <ActionForm action=confirm attr:class="space-y-3">
                                                <Field label="Code from the app" name="code" autocomplete="one-time-code" placeholder="123456" required=true error=confirm_error />
                                                <FormError error=confirm_error fields=&["code"] />
                                                <Submit label="Turn on" pending=confirm.pending() />
                                            </ActionForm>
                                        </div>
                                    }.into_any(),
                                    Some(Err(e)) => view! { <ErrorText error=e /> }.into_any(),
                                    None => view! {
                                        <Button on_click=move || { begin.dispatch(TotpBegin {}); }>"Set up authenticator app"</Button>
                                    }.into_any(),
                                }}
                            </div>
                        }.into_any(),
                    })}
                </Transition>
                {move || recovery_codes.get().map(|codes| view! {
                    <div class="mt-4 rounded-md border border-amber-200 bg-amber-50 p-4 text-sm" data-testid="recovery-codes">
                        <p class="font-medium text-amber-900">"Save these recovery codes now. Each works once, and they are not shown again."</p>
                        <ul class="mt-2 grid grid-cols-2 gap-1 font-mono">{codes.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view()}</ul>
                        <div class="mt-3">
                            <Button class=BUTTON_SECONDARY on_click={
                                let text = codes.join("\n");
                                move || crate::browser::copy(&text)
                            }>"Copy"</Button>
                        </div>
                    </div>
                })}
            </Card>

            <Card title="Passkeys" id="passkeys">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || overview.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(s) if s.passkeys.is_empty() => view! { <Empty text="No passkeys yet." hint="A passkey lets your device confirm it's you with a fingerprint, face or PIN." /> }.into_any(),
                        Ok(s) => view! {
                            <ul class="divide-y divide-slate-100">
                                {s.passkeys.into_iter().map(|p| { let question = format!("Remove passkey \"{}\"?", p.name); view! {
                                    <li class="flex flex-wrap items-center justify-between gap-2 py-3 text-sm">
                                        <div>
                                            <p class="font-medium">{p.name.clone()}</p>
                                            <p class="text-xs text-slate-500">
                                                {format!("Added {}", display_time(p.created_at))}
                                                {p.last_used_at.map(|t| format!(" · last used {}", display_time(t)))}
                                            </p>
                                        </div>
                                        <div class="flex items-center gap-2">
                                            <ActionForm action=rename attr:class="flex gap-1">
                                                <input type="hidden" name="id" value=p.id.to_string() />
                                                <label class="sr-only" for=format!("rename-{}", p.id)>"New name"</label>
                                                <input id=format!("rename-{}", p.id) name="name" value=p.name.clone() class=format!("w-36 {INPUT}") />
                                                <Submit label="Rename" class=BUTTON_SECONDARY />
                                            </ActionForm>
                                            <ConfirmButton
                                                label="Remove"
                                                question=question
                                                confirm_label="Remove"
                                                on_confirm=move || { remove.dispatch(PasskeyRemove { id: p.id }); }
                                            />
                                        </div>
                                    </li>
                                }}).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Transition>
                <AddPasskey on_added=move || passkey_added.update(|n| *n += 1) />
            </Card>
        </div>
    }
}

#[component]
fn AddPasskey(on_added: impl Fn() + Send + Sync + Copy + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let chosen = name.get_untracked();
        spawn_local(async move {
            let outcome: Result<(), String> = async {
                let challenge = passkey_register_start().await.map_err(|e| e.to_string())?;
                let credential = crate::browser::create_passkey(challenge).await?;
                passkey_register_finish(chosen, credential)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            .await;
            busy.set(false);
            match outcome {
                Ok(()) => {
                    name.set(String::new());
                    on_added();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <form class="mt-4 flex flex-wrap items-end gap-2 border-t border-slate-100 pt-4" on:submit=add>
            <div class="grow">
                <label for="passkey-name" class="block text-sm font-medium text-slate-800">"Name for a new passkey"</label>
                <input id="passkey-name" required placeholder="Work laptop" class=format!("mt-1 {INPUT}")
                       prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            </div>
            <Submit label="Add passkey" pending=busy />
            {move || error.get().map(|e| view! { <p role="alert" class="w-full text-sm text-rose-700">{e}</p> })}
        </form>
    }
}

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    view! {
        <Title text="API keys" />
        <SignedIn>
            <PageHeader title="API keys" intro="Keys let scripts and tools use the REST API (/api/v1) as you, with your permissions. Send one as `Authorization: Bearer <key>`." />
            <AccountTabs current="/account/api-keys" />
            <ApiKeys />
        </SignedIn>
    }
}

#[component]
fn ApiKeys() -> impl IntoView {
    let create = ServerAction::<ApiKeyCreate>::new();
    let revoke = ServerAction::<ApiKeyRevoke>::new();
    let keys = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| api_keys_list(),
    );
    let error = error_of(create.value());
    view! {
        <div class="space-y-6">
            <Card title="New key">
                <ActionForm action=create attr:class="grid gap-4 sm:grid-cols-3 sm:items-end">
                    <Field label="Name" name="name" placeholder="CI deploys" required=true error=error />
                    <Field label="Expires after (days)" name="expires_in_days" kind="number" hint="Empty: never." error=error />
                    <div><Submit label="Create key" pending=create.pending() /></div>
                    <div class="sm:col-span-3"><FormError error fields=&["name", "expires_in_days"] /></div>
                </ActionForm>
                {move || create.value().get().and_then(Result::ok).map(|created| view! {
                    <div class="mt-4 rounded-md border border-amber-200 bg-amber-50 p-4 text-sm">
                        <p class="font-medium text-amber-900">"Copy this key now. It is shown only once."</p>
                        <code data-testid="new-api-key" class="mt-2 block break-all rounded bg-white p-2 font-mono">{created.secret.clone()}</code>
                        <div class="mt-2">
                            <Button class=BUTTON_SECONDARY on_click={
                                let secret = created.secret.clone();
                                move || crate::browser::copy(&secret)
                            }>"Copy"</Button>
                        </div>
                    </div>
                })}
            </Card>
            <Card title="Your keys">
                <Transition fallback=|| view! { <Loading /> }>
                    {move || keys.get().map(|r| match r {
                        Err(e) => view! { <ErrorText error=e /> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <Empty text="No API keys yet." /> }.into_any(),
                        Ok(list) => view! {
                            <div class="overflow-x-auto">
                                <table class=TABLE>
                                    <thead><tr>
                                        <th class=TH>"Name"</th><th class=TH>"Key"</th><th class=TH>"Created"</th>
                                        <th class=TH>"Expires"</th><th class=TH>"Last used"</th><th class=TH><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {list.into_iter().map(|k| {
                                            let revoked = k.revoked_at.is_some();
                                            view! {
                                                <tr>
                                                    <td class=TD>{k.name.clone()}</td>
                                                    <td class=TD><code>{format!("{}…", k.prefix)}</code></td>
                                                    <td class=TD>{display_time(k.created_at)}</td>
                                                    <td class=TD>{k.expires_at.map(display_time).unwrap_or_else(|| "never".into())}</td>
                                                    <td class=TD>{k.last_used_at.map(display_time).unwrap_or_else(|| "never".into())}</td>
                                                    <td class=TD>
                                                        {if revoked {
                                                            view! { <Badge text="revoked" tone=Tone::Bad /> }.into_any()
                                                        } else {
                                                            view! { <ConfirmButton label="Revoke" question=format!("Revoke \"{}\"? Anything using it stops working.", k.name) confirm_label="Revoke" on_confirm=move || { revoke.dispatch(ApiKeyRevoke { id: k.id }); } /> }.into_any()
                                                        }}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                    })}
                </Transition>
            </Card>
        </div>
    }
}
