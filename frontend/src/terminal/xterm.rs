//! The xterm.js widget, through the glue module `js/terminal.js`.

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/terminal.js")]
extern "C" {
    /// Starts fetching the search add-on (it is not part of the first visit).
    #[wasm_bindgen(js_name = prepareSearch)]
    pub fn prepare_search();
    #[wasm_bindgen(js_name = PortaTerm)]
    type JsTerm;

    #[wasm_bindgen(constructor, js_class = PortaTerm)]
    fn new(
        parent: &web_sys::HtmlElement,
        theme: &str,
        font_size: u32,
        on_data: &Function,
        on_resize: &Function,
        on_rendered: &Function,
        on_shortcut: &Function,
    ) -> JsTerm;

    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn write(this: &JsTerm, data: &Uint8Array, replayed: u32);
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = writeNotice)]
    fn write_notice(this: &JsTerm, text: &str);
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn cols(this: &JsTerm) -> u16;
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn rows(this: &JsTerm) -> u16;
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn fit(this: &JsTerm);
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn focus(this: &JsTerm);
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = appCursorKeys)]
    fn app_cursor_keys(this: &JsTerm) -> bool;
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = setTheme)]
    fn set_theme(this: &JsTerm, theme: &str);
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = setFontSize)]
    fn set_font_size(this: &JsTerm, size: u32);
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = fixedSize)]
    fn fixed_size(this: &JsTerm, cols: u16, rows: u16);
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn search(this: &JsTerm, query: &str, backwards: bool) -> js_sys::Promise;
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = clearSearch)]
    fn clear_search(this: &JsTerm);
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn selection(this: &JsTerm) -> String;
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn paste(this: &JsTerm, text: &str);
    #[wasm_bindgen(method, js_class = PortaTerm, js_name = lastLines)]
    fn last_lines(this: &JsTerm, count: u32) -> String;
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn dispose(this: &JsTerm);
    #[wasm_bindgen(method, js_class = PortaTerm)]
    fn reset(this: &JsTerm);

    #[wasm_bindgen(js_name = copyText)]
    async fn copy_text(text: &str) -> JsValue;
    #[wasm_bindgen(js_name = readClipboard)]
    async fn read_clipboard() -> JsValue;
}

/// What the widget reports back.
pub struct Callbacks {
    /// Keystrokes and pastes, as xterm.js encodes them.
    pub data: Box<dyn FnMut(String)>,
    pub resize: Box<dyn FnMut(u16, u16)>,
    /// One write finished parsing.
    pub rendered: Box<dyn FnMut()>,
    /// A keyboard shortcut: "copy", "paste" or "search".
    pub shortcut: Box<dyn FnMut(String)>,
}

impl Callbacks {
    /// For a terminal that only shows (a replayed recording).
    pub fn none() -> Self {
        Self {
            data: Box::new(|_| {}),
            resize: Box::new(|_, _| {}),
            rendered: Box::new(|| {}),
            shortcut: Box::new(|_| {}),
        }
    }
}

/// The JS functions handed to xterm.js, kept alive as long as it is.
struct Kept {
    _data: Closure<dyn FnMut(String)>,
    _resize: Closure<dyn FnMut(u16, u16)>,
    _rendered: Closure<dyn FnMut()>,
    _shortcut: Closure<dyn FnMut(String)>,
}

/// One xterm.js terminal in a page element; disposed on drop.
pub struct Xterm {
    js: JsTerm,
    _kept: Kept,
}

impl Xterm {
    pub fn new(parent: &web_sys::HtmlElement, theme: &str, font_size: u32, cb: Callbacks) -> Self {
        let data = Closure::wrap(cb.data);
        let resize = Closure::wrap(cb.resize);
        let rendered = Closure::wrap(cb.rendered);
        let shortcut = Closure::wrap(cb.shortcut);
        let js = JsTerm::new(
            parent,
            theme,
            font_size,
            data.as_ref().unchecked_ref(),
            resize.as_ref().unchecked_ref(),
            rendered.as_ref().unchecked_ref(),
            shortcut.as_ref().unchecked_ref(),
        );
        Self { js, _kept: Kept { _data: data, _resize: resize, _rendered: rendered, _shortcut: shortcut } }
    }

    /// Writes output; a `rendered` callback follows once xterm.js has parsed it.
    /// Writes output. Its first `replayed` bytes were shown before (after a reload or a
    /// reconnect): their queries were answered when they first ran and are not answered again.
    pub fn write(&self, data: &Uint8Array, replayed: u32) {
        self.js.write(data, replayed);
    }

    /// Writes a line of our own (a notice), dimmed, on a line of its own. With `counted`
    /// it reports `rendered` like output does (it stands in for output that was lost).
    pub fn notice(&self, text: &str, counted: bool) {
        let line = format!("\r\n\x1b[2m[{text}]\x1b[0m\r\n");
        if counted {
            self.js.write(&Uint8Array::from(line.as_bytes()), 0);
        } else {
            self.js.write_notice(&line);
        }
    }

    /// Clears the screen and scrollback and resets every mode.
    pub fn reset(&self) {
        self.js.reset();
    }

    pub fn size(&self) -> (u16, u16) {
        (self.js.cols(), self.js.rows())
    }

    pub fn fit(&self) {
        self.js.fit();
    }

    pub fn focus(&self) {
        self.js.focus();
    }

    pub fn app_cursor_keys(&self) -> bool {
        self.js.app_cursor_keys()
    }

    pub fn set_theme(&self, theme: &str) {
        self.js.set_theme(theme);
    }

    pub fn set_font_size(&self, size: u32) {
        self.js.set_font_size(size);
    }

    /// Text to show as it is (a recording's output); not counted as rendered output.
    pub fn write_text(&self, text: &str) {
        if !text.is_empty() {
            self.js.write_notice(text);
        }
    }

    /// Keeps this size (a recording's) instead of fitting the pane; input is off.
    pub fn fixed_size(&self, cols: u16, rows: u16) {
        self.js.fixed_size(cols, rows);
    }

    /// Selects the next (or previous) match; resolves to false when there is none.
    pub fn find(&self, query: &str, backwards: bool) -> js_sys::Promise {
        self.js.search(query, backwards)
    }

    pub fn clear_search(&self) {
        self.js.clear_search();
    }

    pub fn selection(&self) -> String {
        self.js.selection()
    }

    pub fn paste(&self, text: &str) {
        self.js.paste(text);
    }

    /// The last `count` lines of output, as text.
    pub fn last_lines(&self, count: u32) -> String {
        self.js.last_lines(count)
    }
}

impl Drop for Xterm {
    fn drop(&mut self) {
        self.js.dispose();
    }
}

/// Copies text to the clipboard; false when the browser refuses.
pub async fn copy(text: &str) -> bool {
    copy_text(text).await.as_bool().unwrap_or(false)
}

/// The clipboard's text; `None` when the browser refuses.
pub async fn clipboard() -> Option<String> {
    read_clipboard().await.as_string()
}
