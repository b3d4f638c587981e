//! What only a browser can do: WebAuthn ceremonies, full-page navigation,
//! the clipboard. On the server these are never called (they run from event
//! handlers), but they must exist for the same code to compile there.

use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// Asks the browser's authenticator to create a passkey.
pub async fn create_passkey(
    challenge: CreationChallengeResponse,
) -> Result<RegisterPublicKeyCredential, String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let options: web_sys::CredentialCreationOptions = challenge.into();
        let window = web_sys::window().ok_or("no window")?;
        let promise = window
            .navigator()
            .credentials()
            .create_with_options(&options)
            .map_err(describe)?;
        let credential = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(describe)?;
        let credential: web_sys::PublicKeyCredential = credential.dyn_into().map_err(describe)?;
        Ok(RegisterPublicKeyCredential::from(credential))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = challenge;
        Err("passkeys need a browser".into())
    }
}

/// Asks the browser's authenticator to sign a sign-in challenge.
pub async fn use_passkey(
    challenge: RequestChallengeResponse,
) -> Result<PublicKeyCredential, String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let options: web_sys::CredentialRequestOptions = challenge.into();
        let window = web_sys::window().ok_or("no window")?;
        let promise = window
            .navigator()
            .credentials()
            .get_with_options(&options)
            .map_err(describe)?;
        let credential = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(describe)?;
        let credential: web_sys::PublicKeyCredential = credential.dyn_into().map_err(describe)?;
        Ok(PublicKeyCredential::from(credential))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = challenge;
        Err("passkeys need a browser".into())
    }
}

#[cfg(feature = "hydrate")]
fn describe(value: impl Into<wasm_bindgen::JsValue>) -> String {
    let value = value.into();
    js_sys_message(&value).unwrap_or_else(|| format!("{value:?}"))
}

#[cfg(feature = "hydrate")]
fn js_sys_message(value: &wasm_bindgen::JsValue) -> Option<String> {
    use wasm_bindgen::JsCast;
    value
        .dyn_ref::<web_sys::js_sys::Error>()
        .map(|e| String::from(e.message()))
}

/// Loads `path` as a new page, so everything reflects the new session.
pub fn go_to(path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_href(path);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

/// Copies text to the clipboard, best effort.
pub fn copy(text: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// Follows a task's live updates (server-sent events) until dropped.
pub struct TaskWatch {
    #[cfg(feature = "hydrate")]
    source: web_sys::EventSource,
    #[cfg(feature = "hydrate")]
    _listener: wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)>,
}

#[cfg(feature = "hydrate")]
impl Drop for TaskWatch {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// Opens the task's event stream; `on_update` gets every new state.
pub fn watch_task(
    task: protocol::ids::TaskId,
    on_update: impl Fn(protocol::views::TaskView) + 'static,
) -> Option<TaskWatch> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let source = web_sys::EventSource::new(&format!("/api/tasks/{task}/events")).ok()?;
        // The server ends the stream with the final state; without closing,
        // the browser would reconnect to hear it again and again.
        let closer = source.clone();
        let listener = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(text) = event.data().as_string()
                    && let Ok(view) = serde_json::from_str::<protocol::views::TaskView>(&text)
                {
                    if view.state.is_finished() {
                        closer.close();
                    }
                    on_update(view);
                }
            },
        );
        source
            .add_event_listener_with_callback("task", listener.as_ref().unchecked_ref())
            .ok()?;
        Some(TaskWatch {
            source,
            _listener: listener,
        })
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (task, on_update);
        None
    }
}
