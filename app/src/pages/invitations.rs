//! `/invitations/:token`: the link from an invitation email.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::tenancy::{RespondInvitation, invitation_for_link};
use crate::components::*;

#[component]
pub fn InvitationPage() -> impl IntoView {
    view! {
        <Title text="Invitation" />
        <SignedIn>
            <Invitation />
        </SignedIn>
    }
}

#[component]
fn Invitation() -> impl IntoView {
    let params = use_params_map();
    let token = Memo::new(move |_| params.read().get("token").unwrap_or_default());
    let invitation = Resource::new(move || token.get(), invitation_for_link);
    let respond = ServerAction::<RespondInvitation>::new();
    view! {
        <div class="mx-auto mt-8 max-w-lg">
            <Suspense fallback=|| view! { <Loading /> }>
                {move || Suspend::new(async move {
                    match (invitation.await, respond.value().get()) {
                        (_, Some(Ok(()))) => view! {
                            <Card title="Done">
                                <p class="text-sm">"Your answer was recorded."</p>
                                <a href="/organizations" class=format!("mt-4 {BUTTON}")>"Go to your organizations"</a>
                            </Card>
                        }.into_any(),
                        (Err(e), _) => view! { <ErrorText error=e /> }.into_any(),
                        (Ok(i), answer) => view! {
                            <Card title=format!("Join {}", i.organization_name)>
                                <p class="text-sm text-slate-700">
                                    {format!("{} invited you to join {} as {}.", i.invited_by.clone().unwrap_or_else(|| "Someone".into()), i.organization_name, i.role.name())}
                                </p>
                                {answer.and_then(Result::err).map(|e| view! { <div class="mt-3"><ErrorText error=e /></div> })}
                                <div class="mt-4 flex gap-2">
                                    <ActionForm action=respond>
                                        <input type="hidden" name="invitation" value=i.id.to_string() />
                                        <input type="hidden" name="accept" value="true" />
                                        <Submit label="Accept" />
                                    </ActionForm>
                                    <ActionForm action=respond>
                                        <input type="hidden" name="invitation" value=i.id.to_string() />
                                        <input type="hidden" name="accept" value="false" />
                                        <Submit label="Decline" class=BUTTON_SECONDARY />
                                    </ActionForm>
                                </div>
                            </Card>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}
