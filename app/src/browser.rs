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
