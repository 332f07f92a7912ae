//! Pages and panels loaded when first shown. A function marked
//! `#[wasm_split(<chunk>, wasm_split_path = leptos::wasm_split, fallible)]` becomes `async`;
//! `cargo xtask ui` moves its code, and whatever only it uses, out of the app's wasm into a
//! chunk of its own, fetched on its first call. The first visit downloads the sign-in, the
//! dashboard and the server page's terminals and files; the audit log, tokens, team, alerts,
//! account, recordings and invitation pages, the assistant, the Monitor, the containers and
//! ports panels, the preview pane, the command palette, a terminal's search bar, a new
//! project's form and a project's run settings come when opened, a phone's key row when the
//! page is narrow. Their style is `assets/panels.css`, fetched with the first of them and
//! waited for, so that none is ever shown unstyled. A box opened by a shortcut before its code
//! is here gets the keys typed meanwhile, not the terminal (see
//! `crate::browser::hold_keys_until`).
//! (Natively, in unit tests, the functions are called directly.)

use std::future::Future;

use leptos::prelude::*;
use leptos::wasm_split::SplitLoaderError;
use send_wrapper::SendWrapper;

/// A chunk could not be fetched (the network, or a newer app replaced this one's files).
#[derive(Debug)]
pub struct LoadFailed;

impl From<SplitLoaderError> for LoadFailed {
    fn from(_: SplitLoaderError) -> Self {
        LoadFailed
    }
}

/// What a split function gives: a view, once its chunk is here.
pub type Loaded = Result<AnyView, LoadFailed>;

/// True from the first time `wanted` is, for good: a part loaded when first asked for (inside
/// a `Show`) then stays, with its state.
pub fn once(wanted: impl Fn() -> bool + Send + Sync + 'static) -> Memo<bool> {
    Memo::new(move |was: Option<&bool>| was.copied().unwrap_or(false) || wanted())
}

thread_local! {
    /// `panels.css` on its way or here: resolved once loaded (or failed: then forgotten, so
    /// that the next part tries again).
    static PANEL_STYLES: std::cell::RefCell<Option<js_sys::Promise>> = const { std::cell::RefCell::new(None) };
}

/// Loads the style sheet of the parts loaded when first shown (`panels.css`, kept out of the
/// first visit's `style.css`), once; resolves when it applies, or failed to load.
fn panel_styles() -> impl Future<Output = ()> {
    let promise = PANEL_STYLES.with(|p| p.borrow_mut().get_or_insert_with(load_panel_styles).clone());
    async move {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

fn load_panel_styles() -> js_sys::Promise {
    use wasm_bindgen::JsCast as _;
    js_sys::Promise::new(&mut |resolve, _reject| {
        let done = || {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        };
        let document = crate::browser::window().document();
        let head = document.as_ref().and_then(|d| d.query_selector("head").ok().flatten());
        let (Some(document), Some(head)) = (document, head) else { return done() };
        let Ok(link) = document.create_element("link") else { return done() };
        let _ = link.set_attribute("rel", "stylesheet");
        let _ = link.set_attribute("href", &format!("{}/panels.css", crate::browser::assets()));
        let loaded = wasm_bindgen::closure::Closure::once_into_js({
            let resolve = resolve.clone();
            move || {
                let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            }
        });
        let failed = wasm_bindgen::closure::Closure::once_into_js({
            let (resolve, link) = (resolve.clone(), link.clone());
            move || {
                link.remove();
                PANEL_STYLES.with(|p| p.borrow_mut().take());
                let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            }
        });
        let _ = link.add_event_listener_with_callback("load", loaded.unchecked_ref());
        let _ = link.add_event_listener_with_callback("error", failed.unchecked_ref());
        if head.append_child(&link).is_err() {
            done();
        }
    })
}

/// Pauses before each new attempt at a chunk that could not be fetched, ms.
const RETRIES_MS: [u32; 2] = [300, 1500];

/// Shows the view `load` resolves to: "Loading…" while its code arrives (usually a few
/// milliseconds; never on a second visit), or what went wrong and a way to try again. A
/// fetch that fails is tried again twice (a failed attempt is not remembered: the next
/// call fetches afresh), so a moment's trouble on the network or the server goes unseen.
pub fn lazily<F>(load: impl Fn() -> F + 'static) -> impl IntoView
where
    F: Future<Output = Loaded> + 'static,
{
    lazily_with(load, true)
}

/// As [`lazily`], without "Loading…" meanwhile: for a small part inside the page (a bar, a
/// form, an overlay), whose few milliseconds are better spent with nothing than with a
/// placeholder that moves what is around it.
pub fn lazily_inline<F>(load: impl Fn() -> F + 'static) -> impl IntoView
where
    F: Future<Output = Loaded> + 'static,
{
    lazily_with(load, false)
}

fn lazily_with<F>(load: impl Fn() -> F + 'static, placeholder: bool) -> impl IntoView
where
    F: Future<Output = Loaded> + 'static,
{
    let loading = RwSignal::new(placeholder);
    let failed = RwSignal::new(false);
    let view = SendWrapper::new(async move {
        // The parts' style sheet comes with the first of them, beside its code.
        let styles = panel_styles();
        let mut loaded = load().await;
        for pause in RETRIES_MS {
            if loaded.is_ok() {
                break;
            }
            // Counted where tests look (`window.portaChunkRetries`): a retried fetch logs the
            // failed one's error on the console. Counted as soon as the failure is known, not
            // after the pause, so that no one reads the error without its retry.
            let window = crate::browser::window();
            let key = wasm_bindgen::JsValue::from_str("portaChunkRetries");
            let before = js_sys::Reflect::get(&window, &key).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
            let _ = js_sys::Reflect::set(&window, &key, &wasm_bindgen::JsValue::from_f64(before + 1.0));
            crate::browser::sleep(pause).await;
            loaded = load().await;
        }
        // Never shown unstyled.
        styles.await;
        loading.try_set(false);
        match loaded {
            Ok(view) => Some(view),
            Err(LoadFailed) => {
                // Where tests look too: a chunk that never came is an error of the page's.
                let window = crate::browser::window();
                let key = wasm_bindgen::JsValue::from_str("portaChunkFailed");
                let _ = js_sys::Reflect::set(&window, &key, &wasm_bindgen::JsValue::TRUE);
                failed.try_set(true);
                None
            }
        }
    });
    view! {
        <p class="loading" hidden=move || !loading.get()>"Loading…"</p>
        <p class="error load-failed" role="alert" hidden=move || !failed.get()>
            "This part of Porta could not be downloaded: the network may be down, or Porta was updated. "
            <button class="secondary" on:click=|_| {
                let _ = crate::browser::window().location().reload();
            }>"Reload"</button>
        </p>
        {Suspend::new(view)}
    }
}
