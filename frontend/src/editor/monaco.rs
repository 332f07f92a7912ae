//! Monaco, through the glue module `js/editor.js`.

use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/editor.js")]
extern "C" {
    #[wasm_bindgen(js_name = loadMonaco, catch)]
    async fn load_monaco() -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = setEditorTheme)]
    fn set_editor_theme(theme: &str);

    #[wasm_bindgen(js_name = colorize, catch)]
    async fn colorize_js(text: &str, lang: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = PortaEditor)]
    type JsEditor;

    #[wasm_bindgen(constructor, js_class = PortaEditor)]
    #[allow(clippy::too_many_arguments)]
    fn new(
        parent: &web_sys::HtmlElement,
        key: u32,
        path: &str,
        text: &str,
        theme: &str,
        font_size: u32,
        read_only: bool,
        on_dirty: &Function,
        on_save: &Function,
    ) -> JsEditor;

    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn value(this: &JsEditor) -> String;
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn version(this: &JsEditor) -> f64;
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn language(this: &JsEditor) -> String;
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = markSaved)]
    fn mark_saved(this: &JsEditor, version: f64);
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn replace(this: &JsEditor, text: &str);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = setFontSize)]
    fn set_font_size(this: &JsEditor, size: u32);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = setReadOnly)]
    fn set_read_only(this: &JsEditor, on: bool);
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn focus(this: &JsEditor);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = goTo)]
    fn go_to(this: &JsEditor, line: u32, column: u32);
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn compare(this: &JsEditor, host: &web_sys::HtmlElement, text: &str);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = closeCompare)]
    fn close_compare(this: &JsEditor);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = find)]
    fn open_find(this: &JsEditor);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = selectedText)]
    fn selected_text(this: &JsEditor) -> String;
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn insert(this: &JsEditor, text: &str);
    #[wasm_bindgen(method, js_class = PortaEditor, js_name = setText)]
    fn set_text(this: &JsEditor, text: &str);
    #[wasm_bindgen(method, js_class = PortaEditor)]
    fn dispose(this: &JsEditor);
}

/// `text` coloured for `lang` (an alias such as `bash` or `rust`), as HTML whose text Monaco
/// escaped; `None` when Monaco cannot be loaded.
pub async fn colorize(text: &str, lang: &str) -> Option<String> {
    colorize_js(text, &lang.to_ascii_lowercase()).await.ok().and_then(|v| v.as_string())
}

/// Loads Monaco (once per page); the error says why it could not be.
pub async fn load() -> Result<(), String> {
    load_monaco().await.map(|_| ()).map_err(|e| e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Sets the theme of every editor on the page ("dark" or "light"); Monaco has one theme.
pub fn set_theme(theme: &str) {
    set_editor_theme(theme);
}

/// What the widget reports back.
pub struct Callbacks {
    /// The content became different from (or again the same as) what was last saved.
    pub dirty: Box<dyn FnMut(bool)>,
    /// Ctrl/Cmd+S.
    pub save: Box<dyn FnMut()>,
}

/// The JS functions handed to Monaco, kept alive as long as it is.
struct Kept {
    _dirty: Closure<dyn FnMut(bool)>,
    _save: Closure<dyn FnMut()>,
}

/// Settings for a new editor.
pub struct Options<'a> {
    pub key: u32,
    pub path: &'a str,
    pub theme: &'a str,
    pub font_size: u32,
    pub read_only: bool,
}

/// One file in Monaco (a model and its editor); disposed on drop.
pub struct Monaco {
    js: JsEditor,
    _kept: Kept,
}

impl Monaco {
    /// Needs [`load`] to have finished.
    pub fn new(parent: &web_sys::HtmlElement, text: &str, opts: Options<'_>, cb: Callbacks) -> Self {
        let dirty = Closure::wrap(cb.dirty);
        let save = Closure::wrap(cb.save);
        let js = JsEditor::new(
            parent,
            opts.key,
            opts.path,
            text,
            opts.theme,
            opts.font_size,
            opts.read_only,
            dirty.as_ref().unchecked_ref(),
            save.as_ref().unchecked_ref(),
        );
        Self { js, _kept: Kept { _dirty: dirty, _save: save } }
    }

    pub fn value(&self) -> String {
        self.js.value()
    }

    pub fn selected_text(&self) -> String {
        self.js.selected_text()
    }

    /// Puts `text` at the cursor, replacing the selection (one undoable edit).
    pub fn insert_text(&self, text: &str) {
        self.js.insert(text);
    }

    /// Sets the whole content as one undoable edit, unsaved.
    pub fn set_text(&self, text: &str) {
        self.js.set_text(text);
    }

    /// Names the content as it is now, for [`Monaco::mark_saved`].
    pub fn version(&self) -> f64 {
        self.js.version()
    }

    /// The language Monaco chose from the file's name.
    pub fn language(&self) -> String {
        self.js.language()
    }

    /// The content as it was at `version` is what the file now holds.
    pub fn mark_saved(&self, version: f64) {
        self.js.mark_saved(version);
    }

    /// Replaces the content with the file's (one undoable edit), counted as saved.
    pub fn replace(&self, text: &str) {
        self.js.replace(text);
    }

    pub fn set_font_size(&self, size: u32) {
        self.js.set_font_size(size);
    }

    pub fn set_read_only(&self, on: bool) {
        self.js.set_read_only(on);
    }

    pub fn focus(&self) {
        self.js.focus();
    }

    /// Puts the cursor on a 1-based line and column, centred.
    pub fn go_to(&self, line: u32, column: u32) {
        self.js.go_to(line, column);
    }

    /// Shows `text` beside the content, as a diff, in `host`.
    pub fn compare(&self, host: &web_sys::HtmlElement, text: &str) {
        self.js.compare(host, text);
    }

    pub fn close_compare(&self) {
        self.js.close_compare();
    }

    /// Opens the find (and replace) bar.
    pub fn find(&self) {
        self.js.open_find();
    }
}

impl Drop for Monaco {
    fn drop(&mut self) {
        self.js.dispose();
    }
}
