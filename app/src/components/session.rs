//! Who is signed in, for every page, and the gate in front of pages that
//! need an account.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;

use crate::api::auth::{Me, current_account};
use crate::error::AppError;

#[derive(Clone, Copy)]
pub struct MeResource(pub Resource<Result<Option<Me>, AppError>>);

impl MeResource {
    /// The signed-in account once known.
    pub fn get(&self) -> Option<Me> {
        self.0.get().and_then(Result::ok).flatten()
    }
}

pub fn provide_me() {
    provide_context(MeResource(Resource::new(|| (), |_| current_account())));
}

pub fn use_me() -> MeResource {
    expect_context::<MeResource>()
}

/// Shows `children` to signed-in visitors and sends everyone else to sign in
/// (and back here afterwards). The children render straight away, not inside
/// the check: components must never be created inside a `Suspend`, which
/// server rendering may run more than once. Their own server functions
/// refuse signed-out callers anyway.
#[component]
pub fn SignedIn(children: Children) -> impl IntoView {
    let me = use_me().0;
    let location = use_location();
    view! {
        <Transition fallback=|| ()>
            {move || match me.get() {
                Some(Ok(None)) => {
                    let here = format!("{}{}", location.pathname.get_untracked(), location.search.get_untracked());
                    view! { <Redirect path=format!("/sign-in?next={}", urlencode(&here)) /> }.into_any()
                }
                Some(Err(e)) => view! { <super::ErrorText error=e /> }.into_any(),
                _ => ().into_any(),
            }}
        </Transition>
        {children()}
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
