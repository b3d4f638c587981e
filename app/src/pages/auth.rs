//! Signing up and in (password, then a second factor), password resets, and
//! the first operator's setup link.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{
    CreateOperator, RequestPasswordReset, ResetPassword, SecondFactorChoice, SignIn, SignInCode,
    SignUp, check_setup_link, passkey_sign_in_finish, passkey_sign_in_start,
};
use crate::components::{
    BUTTON_SECONDARY, Button, Field, FormError, LINK, Notice, Submit, error_of,
};
use crate::error::AppError;

fn query_param(name: &'static str) -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get(name).unwrap_or_default())
}

fn next_path() -> Memo<String> {
    let next = query_param("next");
    Memo::new(move |_| {
        let n = next.get();
        if n.is_empty() { "/".to_string() } else { n }
    })
}

#[component]
fn AuthFrame(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <Title text=title.clone() />
        <div class="mx-auto mt-8 max-w-sm space-y-6">
            <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
            {children()}
        </div>
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let next = next_path();
    let reset_done = query_param("reset");
    let sign_in = ServerAction::<SignIn>::new();
    let error = error_of(sign_in.value());
    let second = Memo::new(move |_| sign_in.value().get().and_then(Result::ok).flatten());

    view! {
        <Show
            when=move || second.get().is_none()
            fallback=move || view! { <SecondFactor choice=second.get().unwrap_or(SecondFactorChoice { totp: true, passkey: false }) next=next.get() /> }
        >
            <AuthFrame title="Sign in">
                <Notice text=Signal::derive(move || (reset_done.get() == "done").then(|| "Your password was changed. Sign in with the new one.".to_string())) />
                <ActionForm action=sign_in attr:class="space-y-4">
                    <input type="hidden" name="next" value=move || next.get() />
                    <Field label="Email" name="email" kind="email" autocomplete="username" required=true error=error />
                    <Field label="Password" name="password" kind="password" autocomplete="current-password" required=true error=error />
                    <FormError error fields=&["email", "password"] />
                    <Submit label="Sign in" pending=sign_in.pending() />
                </ActionForm>
                <p class="text-sm text-slate-600">
                    <A href="/forgot-password" attr:class=LINK>"Forgot your password?"</A>
                    " · "
                    <A href=move || format!("/sign-up?next={}", next.get()) attr:class=LINK>"Create an account"</A>
                </p>
            </AuthFrame>
        </Show>
    }
}

/// The second step: an authenticator code, a recovery code, or a passkey.
#[component]
fn SecondFactor(choice: SecondFactorChoice, next: String) -> impl IntoView {
    let code = ServerAction::<SignInCode>::new();
    let error = error_of(code.value());
    let recovery = RwSignal::new(!choice.totp);
    let passkey_error = RwSignal::new(None::<String>);
    let passkey_busy = RwSignal::new(false);
    let next_for_passkey = next.clone();
    let use_passkey = move || {
        let next = next_for_passkey.clone();
        passkey_busy.set(true);
        passkey_error.set(None);
        spawn_local(async move {
            let outcome: Result<(), String> = async {
                let challenge = passkey_sign_in_start().await.map_err(|e| e.to_string())?;
                let credential = crate::browser::use_passkey(challenge).await?;
                passkey_sign_in_finish(credential)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match outcome {
                Ok(()) => crate::browser::go_to(&next),
                Err(e) => {
                    passkey_error.set(Some(e));
                    passkey_busy.set(false);
                }
            }
        });
    };

    view! {
        <AuthFrame title="Confirm it's you">
            {choice.passkey.then(|| view! {
                <div class="space-y-2">
                    <Button on_click=use_passkey disabled=passkey_busy>
                        {move || if passkey_busy.get() { "Waiting for your passkey…" } else { "Use a passkey" }}
                    </Button>
                    {move || passkey_error.get().map(|e| view! { <p role="alert" class="text-sm text-rose-700">{e}</p> })}
                </div>
            })}
            {(choice.totp || !choice.passkey).then(|| view! {
                <ActionForm action=code attr:class="space-y-4">
                    <input type="hidden" name="next" value=next.clone() />
                    <input type="hidden" name="recovery" value=move || recovery.get().to_string() />
                    <Show
                        when=move || recovery.get()
                        fallback=move || view! {
                            <Field label="Code from your authenticator app" name="code" autocomplete="one-time-code" placeholder="123456" required=true error=error />
                        }
                    >
                        <Field label="Recovery code" name="code" autocomplete="off" placeholder="abcd-efgh-ijkm-npqr" required=true error=error />
                    </Show>
                    <FormError error fields=&["code"] />
                    <Submit label="Continue" pending=code.pending() />
                </ActionForm>
                {choice.totp.then(|| view! {
                    <Button class=LINK on_click=move || recovery.update(|r| *r = !*r)>
                        {move || if recovery.get() { "Use a code from your authenticator app" } else { "Use a recovery code instead" }}
                    </Button>
                })}
            })}
            <p class="text-sm"><a href="/sign-in" class=LINK>"Start over"</a></p>
        </AuthFrame>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let next = next_path();
    let sign_up = ServerAction::<SignUp>::new();
    let error = error_of(sign_up.value());
    view! {
        <AuthFrame title="Create your account">
            <ActionForm action=sign_up attr:class="space-y-4">
                <input type="hidden" name="next" value=move || next.get() />
                <Field label="Email" name="email" kind="email" autocomplete="email" required=true error=error />
                <Field label="Your name" name="display_name" autocomplete="name" required=true error=error />
                <Field
                    label="Password"
                    name="password"
                    kind="password"
                    autocomplete="new-password"
                    hint="At least 10 characters. Passwords found in leaks are refused."
                    required=true
                    error=error
                />
                <FormError error fields=&["email", "display_name", "password"] />
                <Submit label="Create account" pending=sign_up.pending() />
            </ActionForm>
            <p class="text-sm text-slate-600">"Have an account? " <A href="/sign-in" attr:class=LINK>"Sign in"</A></p>
        </AuthFrame>
    }
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let request = ServerAction::<RequestPasswordReset>::new();
    let error = error_of(request.value());
    let sent = Signal::derive(move || {
        matches!(request.value().get(), Some(Ok(())))
            .then(|| "If an account uses that address, a link to choose a new password is on its way. It works for one hour.".to_string())
    });
    view! {
        <AuthFrame title="Reset your password">
            <Notice text=sent />
            <ActionForm action=request attr:class="space-y-4">
                <Field label="Email" name="email" kind="email" autocomplete="email" required=true error=error />
                <FormError error fields=&["email"] />
                <Submit label="Send reset link" pending=request.pending() />
            </ActionForm>
            <p class="text-sm"><A href="/sign-in" attr:class=LINK>"Back to sign in"</A></p>
        </AuthFrame>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let token = query_param("token");
    let reset = ServerAction::<ResetPassword>::new();
    let error = error_of(reset.value());
    view! {
        <AuthFrame title="Choose a new password">
            <ActionForm action=reset attr:class="space-y-4">
                <input type="hidden" name="token" value=move || token.get() />
                <Field label="New password" name="new_password" kind="password" autocomplete="new-password" hint="At least 10 characters." required=true error=error />
                <FormError error fields=&["new_password"] />
                <Submit label="Set password" pending=reset.pending() />
            </ActionForm>
            {move || error.get().and_then(|e| e.for_field("token")).map(|_| view! {
                <p class="text-sm"><A href="/forgot-password" attr:class=LINK>"Ask for a new link"</A></p>
            })}
        </AuthFrame>
    }
}

/// `/setup?token=…`: the one-time link that creates the first operator.
#[component]
pub fn SetupPage() -> impl IntoView {
    let token = query_param("token");
    let link = Resource::new(move || token.get(), check_setup_link);
    let create = ServerAction::<CreateOperator>::new();
    let error = error_of(create.value());

    view! {
        <AuthFrame title="Set up Loopback">
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Checking your setup link…"</p> }>
                {move || Suspend::new(async move {
                    match link.await {
                        Ok(expires_at) => view! {
                            <div class="space-y-4">
                                <p class="rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">
                                    "This setup link is valid until " {expires_at} ". Create the first operator account:"
                                </p>
                                <ActionForm action=create attr:class="space-y-4">
                                    <input type="hidden" name="token" value=move || token.get() />
                                    <Field label="Email" name="email" kind="email" autocomplete="email" required=true error=error />
                                    <Field label="Your name" name="display_name" autocomplete="name" required=true error=error />
                                    <Field label="Password" name="password" kind="password" autocomplete="new-password" hint="At least 10 characters." required=true error=error />
                                    <FormError error fields=&["email", "display_name", "password"] />
                                    <Submit label="Create operator account" pending=create.pending() />
                                </ActionForm>
                            </div>
                        }.into_any(),
                        Err(AppError::Invalid { message, .. }) => view! {
                            <p role="alert" class="rounded-md border border-rose-200 bg-rose-50 p-3 text-sm text-rose-800">{message}</p>
                            <p class="text-sm"><a href="/sign-in" class=BUTTON_SECONDARY>"Go to sign in"</a></p>
                        }.into_any(),
                        Err(e) => view! { <crate::components::ErrorText error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </AuthFrame>
    }
}
