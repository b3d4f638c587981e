//! The running shell in the browser: xterm.js on one side, the portal's
//! attach WebSocket on the other.
//!
//! - `GET /api/v1/hosts/{host}/shell/{session}/attach?token={reconnect_token}`
//!   upgraded to a WebSocket with `binaryType = "arraybuffer"`.
//! - Binary frames from the portal are the shell's output, written to xterm
//!   unchanged; binary frames to the portal are keystrokes (UTF-8).
//! - Text frames from the portal are JSON [`TerminalEvent`]s; text frames to
//!   it are JSON [`TerminalControl`]s: a `resize` after every open and every
//!   size change, `close` from the "Close session" button.
//! - A link that drops before the session ended is reopened with backoff
//!   (1 s, 2 s, 4 s … 10 s) with the same token: the portal reattaches and
//!   replays what the shell printed meanwhile.
//!
//! Borrowing rule: no `RefCell` borrow is held across a call into
//! JavaScript, which may call back synchronously (`resize` fires `onResize`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use leptos::html::Div;
use leptos::prelude::*;
use protocol::agent::{TerminalControl, TerminalEvent};
use protocol::ids::HostId;
use protocol::views::ShellStart;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::js_sys::{self, ArrayBuffer, Uint8Array};
use web_sys::{BinaryType, CloseEvent, HtmlElement, MessageEvent, ResizeObserver, WebSocket};

use super::xterm::{self, Terminal};
use super::{Phase, ShellUi};

const FONT_FAMILY: &str = "ui-monospace, SFMono-Regular, Menlo, Monaco, Consolas, \"Liberation Mono\", \"DejaVu Sans Mono\", \"Courier New\", monospace";
const FONT_SIZE: f64 = 14.0;
const SCROLLBACK: u32 = 5_000;
/// xterm.js 6 draws its scrollbar over the rightmost pixels; leave them free
/// as its fit addon does.
const SCROLLBAR_WIDTH: f64 = 14.0;
const FIRST_RETRY_MS: u32 = 1_000;
const MAX_RETRY_MS: u32 = 10_000;
/// How long "Close session" waits for the portal's `ended` before showing
/// the session as ended anyway.
const CLOSE_GRACE_MS: u32 = 5_000;
const XTERM_LOAD_TIMEOUT_MS: u32 = 15_000;
const CSS_LOAD_TIMEOUT_MS: u32 = 3_000;
const POLL_MS: u32 = 50;
/// Must be a multiple of `POLL_MS`.
const SCRIPT_FALLBACK_MS: u32 = 1_000;
/// Largest terminal we ask the PTY for.
const MAX_CELLS: u32 = 1_000;

pub struct Shell {
    host: HostId,
    ui: ShellUi,
    container: NodeRef<Div>,
    /// The page left or started anew: do nothing more.
    stopped: Cell<bool>,
    /// The session is over: never reconnect.
    ended: Cell<bool>,
    /// "Close session" was pressed.
    closing: Cell<bool>,
    start: RefCell<Option<ShellStart>>,
    mounted: RefCell<Option<Mounted>>,
    link: RefCell<Option<Link>>,
    /// Which link is current; events of older ones are ignored.
    link_id: Cell<u32>,
    /// Links in a row that closed before the shell was ready, for backoff.
    failures: Cell<u32>,
}

/// The terminal on the page and the listeners it calls.
struct Mounted {
    term: Terminal,
    element: HtmlElement,
    observer: Option<ResizeObserver>,
    _on_data: Closure<dyn FnMut(String)>,
    _on_binary: Closure<dyn FnMut(String)>,
    _on_resize: Closure<dyn FnMut(xterm::ResizeEvent)>,
    _on_observe: Closure<dyn FnMut()>,
}

/// One WebSocket to the portal and its handlers.
struct Link {
    socket: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Link {
    /// Silences the handlers and closes the socket: the portal detaches.
    fn detach(&self) {
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close_with_code(1000);
    }
}

impl Shell {
    pub fn spawn(host: HostId, container: NodeRef<Div>, ui: ShellUi) -> Rc<Self> {
        let shell = Rc::new(Self {
            host,
            ui,
            container,
            stopped: Cell::new(false),
            ended: Cell::new(false),
            closing: Cell::new(false),
            start: RefCell::new(None),
            mounted: RefCell::new(None),
            link: RefCell::new(None),
            link_id: Cell::new(0),
            failures: Cell::new(0),
        });
        let running = shell.clone();
        leptos::task::spawn_local(async move { running.run().await });
        shell
    }

    async fn run(self: Rc<Self>) {
        self.show(Phase::Opening);
        self.report(None);
        let start = match load_start(self.host) {
            Some(start) => start,
            None => match crate::api::hosts::start_shell(self.host).await {
                Ok(start) => {
                    // Kept even if the page moved on: the next visit reattaches.
                    save_start(&start);
                    start
                }
                Err(error) => {
                    self.show(Phase::failed(&error));
                    return;
                }
            },
        };
        if self.stopped.get() {
            return;
        }
        self.ui.hostname.set(Some(start.hostname.clone()));
        *self.start.borrow_mut() = Some(start);

        if !xterm_ready().await {
            self.show(Phase::Failed(
                "The terminal (xterm.js) did not load. Reload the page to try again.".into(),
            ));
            return;
        }
        if self.stopped.get() {
            return;
        }
        if let Err(error) = self.mount() {
            self.show(Phase::Failed(format!(
                "The terminal could not start: {error}"
            )));
            return;
        }
        self.show(Phase::Connecting);
        self.connect();
    }

    /// Sets the page's phase, unless the page moved on.
    fn show(&self, phase: Phase) {
        if !self.stopped.get() {
            self.ui.phase.set(phase);
        }
    }

    fn report(&self, error: Option<String>) {
        if !self.stopped.get() {
            self.ui.error.set(error);
        }
    }

    fn term(&self) -> Option<Terminal> {
        self.mounted.borrow().as_ref().map(|m| m.term.clone())
    }

    fn socket(&self) -> Option<WebSocket> {
        self.link.borrow().as_ref().map(|l| l.socket.clone())
    }

    /// Creates the terminal in the container, sized to it, focused.
    fn mount(self: &Rc<Self>) -> Result<(), String> {
        let element: HtmlElement = self
            .container
            .get_untracked()
            .ok_or("its place on the page is missing")?
            .into();
        let term = Terminal::create(&xterm::Options {
            cursor_blink: true,
            font_family: FONT_FAMILY,
            font_size: FONT_SIZE,
            convert_eol: false,
            scrollback: SCROLLBACK,
            theme: xterm::Theme {
                // Tailwind slate-950 / slate-200, as the container.
                background: "#020617",
                foreground: "#e2e8f0",
                cursor: "#e2e8f0",
                selection_background: "#334155",
            },
        })
        .map_err(describe)?;
        term.open(&element);

        let shell = self.clone();
        let on_data = Closure::<dyn FnMut(String)>::new(move |data: String| {
            shell.send_bytes(data.as_bytes());
        });
        let shell = self.clone();
        let on_binary = Closure::<dyn FnMut(String)>::new(move |data: String| {
            // One byte per UTF-16 unit, by xterm's contract.
            let bytes: Vec<u8> = data.encode_utf16().map(|u| u as u8).collect();
            shell.send_bytes(&bytes);
        });
        let shell = self.clone();
        let on_resize =
            Closure::<dyn FnMut(xterm::ResizeEvent)>::new(move |size: xterm::ResizeEvent| {
                shell.send_size(size.cols(), size.rows());
            });
        let shell = self.clone();
        let on_observe = Closure::<dyn FnMut()>::new(move || shell.fit());
        term.on_data(&on_data);
        term.on_binary(&on_binary);
        term.on_resize(&on_resize);
        // The container follows the window (width, and its height is in
        // viewport units), so watching it covers window resizes too.
        let observer = ResizeObserver::new(on_observe.as_ref().unchecked_ref()).ok();
        if let Some(observer) = &observer {
            observer.observe(&element);
        }
        *self.mounted.borrow_mut() = Some(Mounted {
            term: term.clone(),
            element,
            observer,
            _on_data: on_data,
            _on_binary: on_binary,
            _on_resize: on_resize,
            _on_observe: on_observe,
        });
        self.fit();
        term.focus();
        xterm::expose_for_tests(Some(&term));
        Ok(())
    }

    /// Resizes the terminal to fill its container; xterm then fires
    /// `onResize`, which tells the portal.
    fn fit(&self) {
        let Some((term, element)) = self
            .mounted
            .borrow()
            .as_ref()
            .map(|m| (m.term.clone(), m.element.clone()))
        else {
            return;
        };
        let Some((cols, rows)) = fitting_size(&element) else {
            return;
        };
        if (cols, rows) != (term.cols(), term.rows()) {
            let _ = term.resize(cols, rows);
        }
    }

    pub fn focus(&self) {
        if let Some(term) = self.term() {
            term.focus();
        }
    }

    /// Opens a new link to the session, replacing the current one.
    fn connect(self: &Rc<Self>) {
        if self.stopped.get() || self.ended.get() {
            return;
        }
        let id = self.link_id.get().wrapping_add(1);
        self.link_id.set(id);
        let old = self.link.borrow_mut().take();
        if let Some(old) = old {
            old.detach();
        }
        let Some(url) = self.attach_url() else {
            return;
        };
        let socket = match WebSocket::new(&url) {
            Ok(socket) => socket,
            Err(error) => {
                self.report(Some(describe(error)));
                self.show(Phase::Reconnecting);
                self.retry_later(id);
                return;
            }
        };
        socket.set_binary_type(BinaryType::Arraybuffer);
        let shell = self.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || shell.opened(id));
        let shell = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            shell.received(id, event)
        });
        let shell = self.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            shell.closed(id);
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *self.link.borrow_mut() = Some(Link {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
    }

    /// `ws(s)://<this host>/api/v1/hosts/{host}/shell/{session}/attach?token=…`
    fn attach_url(&self) -> Option<String> {
        let start = self.start.borrow().clone()?;
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        let authority = location.host().ok()?;
        let token = String::from(js_sys::encode_uri_component(&start.reconnect_token));
        Some(format!(
            "{scheme}://{authority}/api/v1/hosts/{}/shell/{}/attach?token={token}",
            self.host, start.session
        ))
    }

    fn current(&self, id: u32) -> bool {
        id == self.link_id.get() && !self.stopped.get()
    }

    fn opened(&self, id: u32) {
        if !self.current(id) {
            return;
        }
        if self.closing.get() {
            self.send_control(&TerminalControl::Close);
        } else if let Some(term) = self.term() {
            self.send_size(term.cols(), term.rows());
        }
    }

    fn received(&self, id: u32, event: MessageEvent) {
        if !self.current(id) {
            return;
        }
        let data = event.data();
        if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            if let Some(term) = self.term() {
                term.write_bytes(&Uint8Array::new(buffer));
            }
            return;
        }
        let Some(text) = data.as_string() else {
            return;
        };
        match serde_json::from_str::<TerminalEvent>(&text) {
            Ok(TerminalEvent::Ready { reattached }) => {
                self.failures.set(0);
                self.report(None);
                if !self.closing.get() && !self.ended.get() {
                    self.show(Phase::Connected { reattached });
                }
            }
            Ok(TerminalEvent::Ended { reason, exit_code }) => self.end(reason, exit_code),
            Ok(TerminalEvent::Error { message }) => self.report(Some(message)),
            Err(error) => {
                leptos::logging::warn!("terminal: unreadable message {text:?}: {error}");
            }
        }
    }

    fn closed(self: &Rc<Self>, id: u32) {
        if !self.current(id) || self.ended.get() {
            return;
        }
        if self.closing.get() {
            self.end("closed".into(), None);
            return;
        }
        self.show(Phase::Reconnecting);
        self.retry_later(id);
    }

    /// Reconnects after 1 s, 2 s, 4 s … at most 10 s, unless another link
    /// was opened meanwhile.
    fn retry_later(self: &Rc<Self>, id: u32) {
        let failures = self.failures.get();
        self.failures.set(failures.saturating_add(1));
        let delay = FIRST_RETRY_MS
            .saturating_mul(1u32 << failures.min(16))
            .min(MAX_RETRY_MS);
        let shell = self.clone();
        leptos::task::spawn_local(async move {
            sleep(delay).await;
            if shell.current(id) {
                shell.connect();
            }
        });
    }

    /// The session is over: say why, forget it, stop reconnecting. The
    /// terminal stays, so its last output can still be read.
    fn end(&self, reason: String, exit_code: Option<i32>) {
        if self.ended.replace(true) {
            return;
        }
        self.closing.set(false);
        forget_start(self.host);
        if let Some(socket) = self.socket() {
            let _ = socket.close_with_code(1000);
        }
        self.show(Phase::Ended { reason, exit_code });
    }

    /// "Close session": asks the portal to end the shell (reconnecting first
    /// if the link is down) and shows it ended once confirmed, or after a
    /// grace period.
    pub fn close(self: &Rc<Self>) {
        if self.ended.get() || self.stopped.get() || self.closing.replace(true) {
            return;
        }
        self.show(Phase::Closing);
        let open = self
            .socket()
            .is_some_and(|s| s.ready_state() == WebSocket::OPEN);
        if open {
            self.send_control(&TerminalControl::Close);
        } else {
            // `opened` sends the close.
            self.connect();
        }
        let shell = self.clone();
        leptos::task::spawn_local(async move {
            sleep(CLOSE_GRACE_MS).await;
            if !shell.stopped.get() {
                shell.end("closed".into(), None);
            }
        });
    }

    /// This page is done with the terminal: close the link (the portal
    /// detaches; the shell keeps running) and remove the terminal.
    pub fn stop(&self) {
        if self.stopped.replace(true) {
            return;
        }
        let link = self.link.borrow_mut().take();
        if let Some(link) = link {
            link.detach();
        }
        let mounted = self.mounted.borrow_mut().take();
        if let Some(mounted) = mounted {
            if let Some(observer) = &mounted.observer {
                observer.disconnect();
            }
            xterm::expose_for_tests(None);
            mounted.term.dispose();
        }
    }

    fn send_bytes(&self, bytes: &[u8]) {
        if let Some(socket) = self.socket()
            && socket.ready_state() == WebSocket::OPEN
        {
            let _ = socket.send_with_u8_array(bytes);
        }
    }

    fn send_control(&self, control: &TerminalControl) {
        if let Some(socket) = self.socket()
            && socket.ready_state() == WebSocket::OPEN
            && let Ok(text) = serde_json::to_string(control)
        {
            let _ = socket.send_with_str(&text);
        }
    }

    fn send_size(&self, cols: u32, rows: u32) {
        let clamp = |n: u32| u16::try_from(n.clamp(1, MAX_CELLS)).unwrap_or(1);
        self.send_control(&TerminalControl::Resize {
            cols: clamp(cols),
            rows: clamp(rows),
        });
    }
}

/// The terminal size, in cells, that fills `element`: its inner size over
/// the size of one character cell, measured as xterm.js measures it.
fn fitting_size(element: &HtmlElement) -> Option<(u32, u32)> {
    let (cell_width, cell_height) = cell_size(element)?;
    let width = f64::from(element.client_width()) - SCROLLBAR_WIDTH;
    let height = f64::from(element.client_height());
    if width <= 0.0 || height <= 0.0 {
        return None;
    }
    let cols = (width / cell_width)
        .floor()
        .clamp(2.0, f64::from(MAX_CELLS)) as u32;
    let rows = (height / cell_height)
        .floor()
        .clamp(1.0, f64::from(MAX_CELLS)) as u32;
    Some((cols, rows))
}

/// One character cell in CSS pixels. xterm.js takes the width of "W" and the
/// font's ascent plus descent from a canvas, rounds the height up to device
/// pixels and uses line height 1; this does the same, falling back to a
/// hidden span of 32 "W"s where canvas metrics are missing.
fn cell_size(element: &HtmlElement) -> Option<(f64, f64)> {
    let window = web_sys::window()?;
    let dpr = window.device_pixel_ratio().max(1.0);
    let (width, height) = canvas_cell(&window).or_else(|| span_cell(&window, element))?;
    let height = (height * dpr).ceil() / dpr;
    (width > 0.0 && height > 0.0).then_some((width, height))
}

fn canvas_cell(window: &web_sys::Window) -> Option<(f64, f64)> {
    let canvas: web_sys::HtmlCanvasElement = window
        .document()?
        .create_element("canvas")
        .ok()?
        .dyn_into()
        .ok()?;
    let context: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").ok()??.dyn_into().ok()?;
    context.set_font(&format!("{FONT_SIZE}px {FONT_FAMILY}"));
    let metrics = context.measure_text("W").ok()?;
    let width = metrics.width();
    let height = metrics.font_bounding_box_ascent() + metrics.font_bounding_box_descent();
    (width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0)
        .then_some((width, height))
}

fn span_cell(window: &web_sys::Window, element: &HtmlElement) -> Option<(f64, f64)> {
    const SAMPLE: usize = 32;
    let span: HtmlElement = window
        .document()?
        .create_element("span")
        .ok()?
        .dyn_into()
        .ok()?;
    span.set_text_content(Some(&"W".repeat(SAMPLE)));
    let style = span.style();
    for (name, value) in [
        ("position", "absolute"),
        ("visibility", "hidden"),
        ("white-space", "pre"),
        ("font-kerning", "none"),
        ("font-family", FONT_FAMILY),
        ("font-size", &format!("{FONT_SIZE}px")),
    ] {
        let _ = style.set_property(name, value);
    }
    span.set_attribute("aria-hidden", "true").ok()?;
    element.append_child(&span).ok()?;
    let rect = span.get_bounding_client_rect();
    span.remove();
    Some((rect.width() / SAMPLE as f64, rect.height()))
}

/// Waits until xterm.js has run and, briefly, for its stylesheet. The page's
/// `<Script>` loads it; after client-side navigation that tag arrives a
/// moment after this starts, so only a page still without one after a
/// second gets a `<script>` from here.
async fn xterm_ready() -> bool {
    let mut waited = 0;
    while !xterm::loaded() {
        if waited == SCRIPT_FALLBACK_MS {
            add_script_unless_present();
        }
        if waited >= XTERM_LOAD_TIMEOUT_MS {
            return false;
        }
        sleep(POLL_MS).await;
        waited += POLL_MS;
    }
    let mut waited = 0;
    while !stylesheet_loaded() && waited < CSS_LOAD_TIMEOUT_MS {
        sleep(POLL_MS).await;
        waited += POLL_MS;
    }
    true
}

fn add_script_unless_present() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if document.get_element_by_id(super::XTERM_JS_ID).is_some() {
        return;
    }
    if let (Ok(script), Some(head)) = (document.create_element("script"), document.head()) {
        let _ = script.set_attribute("id", super::XTERM_JS_ID);
        let _ = script.set_attribute("src", super::XTERM_JS);
        let _ = head.append_child(&script);
    }
}

fn stylesheet_loaded() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(super::XTERM_CSS_ID))
        .and_then(|link| js_sys::Reflect::get(&link, &JsValue::from_str("sheet")).ok())
        .is_some_and(|sheet| !sheet.is_null() && !sheet.is_undefined())
}

async fn sleep(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                i32::try_from(ms).unwrap_or(i32::MAX),
            );
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// This tab's session on `host`, if it started one that has not ended.
fn load_start(host: HostId) -> Option<ShellStart> {
    let text = session_storage()?
        .get_item(&super::storage_key(host))
        .ok()??;
    serde_json::from_str::<ShellStart>(&text)
        .ok()
        .filter(|start| start.host == host)
}

fn save_start(start: &ShellStart) {
    if let (Some(storage), Ok(text)) = (session_storage(), serde_json::to_string(start)) {
        let _ = storage.set_item(&super::storage_key(start.host), &text);
    }
}

pub fn forget_start(host: HostId) {
    if let Some(storage) = session_storage() {
        let _ = storage.remove_item(&super::storage_key(host));
    }
}

fn describe(value: JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}
