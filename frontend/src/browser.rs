//! Thin helpers over browser APIs the app uses in several places.

use leptos::prelude::{ReadSignal, Set as _, on_cleanup, signal};
use wasm_bindgen::prelude::*;

pub fn window() -> web_sys::Window {
    web_sys::window().expect_throw("Porta runs in a browser window")
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        // setTimeout only fails for a detached window, where nothing runs anyway.
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Resolves once the page has painted what changed (at the next animation frame), or after
/// `ms` at most where frames do not come (a hidden tab).
pub async fn painted(ms: u32) {
    let frame = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = window().request_animation_frame(&resolve);
    });
    let timer = js_sys::Promise::new(&mut |resolve, _reject| {
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&frame, &timer))).await;
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// A value the user chose earlier, from `localStorage` (absent when storage is blocked).
pub fn load(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

pub fn save(key: &str, value: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

/// A value left for the next page to read once (e.g. why the person was sent back).
pub fn take(key: &str) -> Option<String> {
    let s = storage()?;
    let value = s.get_item(key).ok().flatten();
    let _ = s.remove_item(key);
    value
}

/// Whether the person is typing somewhere — a field, a terminal, another editor — so that
/// something finishing in the background (a file loading into the editor) must not take the
/// keyboard from them.
pub fn typing_somewhere() -> bool {
    let Some(el) = window().document().and_then(|d| d.active_element()) else { return false };
    matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT") || el.has_attribute("contenteditable")
}

/// While `open` says a box typed into is wanted and `selector` finds none yet (its code is
/// still on its way, see `crate::lazy`), what is typed goes into a stand-in field — not into
/// the terminal or the file that had the focus — and into the box, ahead of anything typed
/// since, when it comes: the keys typed right after a shortcut are not lost (Enter is not
/// kept: the box shows what it found first). Escape meanwhile calls `close` and gives the
/// focus back. On a phone the tap that opened it raises the keyboard at once (iOS raises it
/// only for a field focused in answer to the tap, and keeps it up while the focus goes from
/// field to field).
pub fn hold_keys_until(selector: &'static str, open: impl Fn() -> bool + 'static, close: impl Fn() + 'static) {
    let close = std::rc::Rc::new(close);
    leptos::prelude::Effect::new(move |_| {
        let Some(document) = window().document() else { return };
        let found = |d: &web_sys::Document| d.query_selector(selector).ok().flatten();
        // (Asked again while waiting — the shortcut pressed twice — the wait goes on.)
        if !open() || found(&document).is_some() || document.query_selector(".keys-stand-in").ok().flatten().is_some() {
            return;
        }
        let Some(stand_in) = stand_in(&document) else { return };
        let had_focus = document.active_element().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        let escape = {
            let (close, stand_in, had_focus) = (close.clone(), stand_in.clone(), had_focus.clone());
            Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(move |ev: web_sys::KeyboardEvent| {
                if ev.key() == "Escape" {
                    // Not also a panel's under it.
                    ev.prevent_default();
                    ev.stop_propagation();
                    close();
                    stand_in.remove();
                    if let Some(el) = &had_focus {
                        let _ = el.focus();
                    }
                }
            })
        };
        let _ = stand_in.add_event_listener_with_callback("keydown", escape.as_ref().unchecked_ref());
        let _ = stand_in.focus();
        leptos::task::spawn_local(async move {
            let _keep = escape;
            // While the person types nowhere else, for a minute at most.
            for _ in 0..3750 {
                sleep(16).await;
                let focused = document.active_element();
                let Some(field) = found(&document).and_then(|f| f.dyn_into::<web_sys::HtmlInputElement>().ok()) else {
                    if focused.as_ref() == Some(stand_in.as_ref()) {
                        continue;
                    }
                    stand_in.remove();
                    return;
                };
                let typed = stand_in.value();
                stand_in.remove();
                // (The box may have taken the focus already, as it does when it opens.)
                if focused.as_ref() == Some(stand_in.as_ref()) || focused.as_ref() == Some(field.as_ref()) {
                    let _ = field.focus();
                    if !typed.is_empty() {
                        field.set_value(&(typed + &field.value()));
                        let init = web_sys::EventInit::new();
                        init.set_bubbles(true);
                        if let Ok(input) = web_sys::Event::new_with_event_init_dict("input", &init) {
                            let _ = field.dispatch_event(&input);
                        }
                    }
                }
                return;
            }
            stand_in.remove();
            if let Some(el) = had_focus {
                let _ = el.focus();
            }
        });
    });
}

/// The field that holds the keys typed while a box is on its way (see [`hold_keys_until`]):
/// out of sight, out of the tab order, there only while it waits, and typed into as the box
/// is (no capitals or corrections added on a phone).
fn stand_in(document: &web_sys::Document) -> Option<web_sys::HtmlInputElement> {
    let el: web_sys::HtmlInputElement = document.create_element("input").ok()?.dyn_into().ok()?;
    el.set_class_name("keys-stand-in");
    el.set_tab_index(-1);
    el.set_type("search");
    for (name, value) in
        [("aria-label", "Opening…"), ("autocomplete", "off"), ("autocapitalize", "off"), ("autocorrect", "off")]
    {
        let _ = el.set_attribute(name, value);
    }
    el.set_spellcheck(false);
    document.body()?.append_child(&el).ok()?;
    Some(el)
}

/// Where the app's files are (`/a/<digest>`), as the page names it.
pub fn assets() -> &'static str {
    static ASSETS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ASSETS.get_or_init(|| {
        window()
            .document()
            .and_then(|d| d.query_selector(r#"meta[name="porta-assets"]"#).ok().flatten())
            .and_then(|m| m.get_attribute("content"))
            .unwrap_or_default()
    })
}

/// Whether a CSS media query matches now.
pub fn media_matches(query: &str) -> bool {
    window().match_media(query).ok().flatten().is_some_and(|m| m.matches())
}

/// Whether a CSS media query matches, kept up to date while the calling component lives.
pub fn media_signal(query: &str) -> ReadSignal<bool> {
    let list = window().match_media(query).ok().flatten();
    let (matches, set) = signal(list.as_ref().is_some_and(|m| m.matches()));
    if let Some(list) = list {
        let on_change = {
            let list = list.clone();
            Closure::<dyn Fn()>::new(move || {
                set.try_set(list.matches());
            })
        };
        let _ = list.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        let guard = send_wrapper::SendWrapper::new((list, on_change));
        on_cleanup(move || {
            let (list, on_change) = guard.take();
            let _ = list.remove_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        });
    }
    matches
}

/// While the returned guard lives, `--app-height` follows the visual viewport's height, so a
/// page sized by it (the server page, with the key row at its bottom) ends just above the
/// on-screen keyboard, also where the browser does not resize the layout for the keyboard.
pub fn follow_visual_viewport() -> Option<impl FnOnce()> {
    let vv = window().visual_viewport()?;
    let root: web_sys::HtmlElement = window().document()?.document_element()?.dyn_into().ok()?;
    let set = {
        let (vv, root) = (vv.clone(), root.clone());
        move || {
            let _ = root.style().set_property("--app-height", &format!("{}px", vv.height()));
        }
    };
    set();
    let on_resize = Closure::<dyn Fn()>::new(set);
    let _ = vv.add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
    Some(move || {
        let _ = vv.remove_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
        let _ = root.style().remove_property("--app-height");
    })
}

/// The page's `http(s)://host` turned into the matching `ws(s)://host`.
pub fn ws_origin() -> String {
    let location = window().location();
    let scheme = if location.protocol().is_ok_and(|p| p == "https:") { "wss:" } else { "ws:" };
    format!("{scheme}//{}", location.host().unwrap_or_default())
}

/// Watches an element's size; dropping it stops the watch and frees the callback.
pub struct SizeWatch {
    observer: web_sys::ResizeObserver,
    _callback: Closure<dyn Fn()>,
}

impl Drop for SizeWatch {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}

/// Calls `changed` whenever `el` changes size (its window, or a panel opening beside it),
/// until the returned watch is dropped.
pub fn on_resize(el: &web_sys::Element, changed: impl Fn() + 'static) -> Option<SizeWatch> {
    let callback = Closure::<dyn Fn()>::new(changed);
    let observer = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()).ok()?;
    observer.observe(el);
    Some(SizeWatch { observer, _callback: callback })
}

/// Scrolls the tab strip so that its active tab is in view (tabs added at the end, or a
/// narrower window, can leave it outside the visible part of the strip).
pub fn reveal_active_tab() {
    let Some(doc) = window().document() else { return };
    let Ok(Some(tab)) = doc.query_selector(".tabs .tab.active") else { return };
    let Some(strip) = tab.parent_element() else { return };
    let (t, s) = (tab.get_bounding_client_rect(), strip.get_bounding_client_rect());
    let left = strip.scroll_left();
    if t.left() < s.left() {
        strip.set_scroll_left(left - (s.left() - t.left()).ceil() as i32);
    } else if t.right() > s.right() {
        strip.set_scroll_left(left + (t.right() - s.right()).ceil() as i32);
    }
}
