//! `wasm-bindgen` bindings for the part of xterm.js 6 the shell page uses.
//!
//! xterm.js's UMD build (`/vendor/xterm/xterm.js`) defines the global
//! `Terminal`; these bindings look it up when called, so the script only has
//! to have run before [`Terminal::new`]. See
//! `node_modules/@xterm/xterm/typings/xterm.d.ts` for the API.

use wasm_bindgen::prelude::*;
use web_sys::js_sys::{Object, Reflect, Uint8Array};

#[wasm_bindgen]
extern "C" {
    /// `Terminal` from xterm.js.
    #[derive(Debug, Clone)]
    pub type Terminal;

    /// `new Terminal(options)`; throws when `Terminal` is not defined yet.
    #[wasm_bindgen(constructor, catch)]
    fn new(options: &Object) -> Result<Terminal, JsValue>;

    /// Renders the terminal into `parent`, which should be visible.
    #[wasm_bindgen(method)]
    pub fn open(this: &Terminal, parent: &web_sys::HtmlElement);

    /// Writes bytes; xterm.js decodes UTF-8 itself, also across writes.
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes(this: &Terminal, data: &Uint8Array);

    /// Writes a string (local messages, never the shell's output).
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_text(this: &Terminal, data: &str);

    /// Typed or pasted input, as a string to send UTF-8 encoded.
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &Terminal, listener: &Closure<dyn FnMut(String)>) -> Disposable;

    /// Input that is not UTF-8 (some mouse reports): one byte per char.
    #[wasm_bindgen(method, js_name = onBinary)]
    pub fn on_binary(this: &Terminal, listener: &Closure<dyn FnMut(String)>) -> Disposable;

    /// The terminal's size changed (by [`Terminal::resize`]).
    #[wasm_bindgen(method, js_name = onResize)]
    pub fn on_resize(this: &Terminal, listener: &Closure<dyn FnMut(ResizeEvent)>) -> Disposable;

    /// Sets the size in character cells; throws on non-integers.
    #[wasm_bindgen(method, catch)]
    pub fn resize(this: &Terminal, cols: u32, rows: u32) -> Result<(), JsValue>;

    #[wasm_bindgen(method)]
    pub fn focus(this: &Terminal);

    /// Removes the terminal from the page and all its listeners.
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Terminal);

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &Terminal) -> u32;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &Terminal) -> u32;

    /// The live options object (`term.options.fontSize = …` applies).
    #[wasm_bindgen(method, getter)]
    pub fn options(this: &Terminal) -> Object;

    /// What `onData` and friends return.
    #[derive(Debug, Clone)]
    pub type Disposable;

    #[wasm_bindgen(method, js_name = dispose)]
    pub fn dispose_listener(this: &Disposable);

    /// `{ cols, rows }` of an `onResize` event.
    #[derive(Debug, Clone)]
    pub type ResizeEvent;

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &ResizeEvent) -> u32;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &ResizeEvent) -> u32;
}

/// `ITerminalOptions`, as far as the page sets them.
#[derive(Debug, Clone)]
pub struct Options {
    pub cursor_blink: bool,
    pub font_family: &'static str,
    /// CSS pixels.
    pub font_size: f64,
    /// `false`: the PTY sends `\r\n` itself.
    pub convert_eol: bool,
    /// Lines kept above the screen.
    pub scrollback: u32,
    pub theme: Theme,
}

/// `ITheme`: CSS colours.
#[derive(Debug, Clone)]
pub struct Theme {
    pub background: &'static str,
    pub foreground: &'static str,
    pub cursor: &'static str,
    pub selection_background: &'static str,
}

impl Options {
    fn to_js(&self) -> Object {
        let theme = Object::new();
        set(&theme, "background", &self.theme.background.into());
        set(&theme, "foreground", &self.theme.foreground.into());
        set(&theme, "cursor", &self.theme.cursor.into());
        set(
            &theme,
            "selectionBackground",
            &self.theme.selection_background.into(),
        );
        let options = Object::new();
        set(&options, "cursorBlink", &self.cursor_blink.into());
        set(&options, "fontFamily", &self.font_family.into());
        set(&options, "fontSize", &self.font_size.into());
        set(&options, "convertEol", &self.convert_eol.into());
        set(&options, "scrollback", &self.scrollback.into());
        set(&options, "theme", &theme);
        options
    }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

impl Terminal {
    /// `new Terminal(options)`.
    pub fn create(options: &Options) -> Result<Self, JsValue> {
        Self::new(&options.to_js())
    }
}

/// Whether xterm.js has run, i.e. the global `Terminal` exists.
pub fn loaded() -> bool {
    Reflect::get(&web_sys::js_sys::global(), &JsValue::from_str("Terminal"))
        .is_ok_and(|t| t.is_function())
}

/// Test hook: `window.__loopbackTerminal` is the page's terminal, so browser
/// tests can read `term.buffer.active` (the shell's output) and
/// `term.cols`/`term.rows`. `None` removes it.
pub fn expose_for_tests(term: Option<&Terminal>) {
    let global = web_sys::js_sys::global();
    let key = JsValue::from_str("__loopbackTerminal");
    match term {
        Some(term) => {
            let _ = Reflect::set(&global, &key, term);
        }
        None => {
            let _ = Reflect::delete_property(&global, &key);
        }
    }
}
