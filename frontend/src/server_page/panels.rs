//! The page's panels (the file tree, the assistant, the Monitor): their title bars, and how
//! they close — Back on a phone, as in every phone app, and Escape.

use leptos::prelude::*;

use crate::icon::{Icon, Name};

/// A panel's title and its close control (on a phone the panel covers the page: this is the
/// way back).
#[component]
pub(super) fn PanelBar(title: &'static str, open: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="panel-bar">
            <span class="panel-title">{title}</span>
            <button class="tool panel-close" title=format!("Close {title} (Escape)")
                aria-label=format!("Close {title}") on:click=move |_| open.set(false)>
                <Icon name=Name::Close />
            </button>
        </div>
    }
}

/// On a phone a panel covers the page: Back closes it. Opening one adds a step to the
/// history; closing it otherwise takes that step back. Escape closes the panel on top, unless
/// a terminal or the editor has the key: it is theirs.
pub(super) fn close_on_back_and_escape(
    chat_open: RwSignal<bool>,
    monitor_open: RwSignal<bool>,
    containers_open: RwSignal<bool>,
    files_open: RwSignal<bool>,
) {
    // On a phone a panel covers the page: Back closes it, as in every phone app. Opening one
    // adds a step to the history; closing it otherwise takes that step back.
    let phone = || crate::browser::media_matches("(max-width: 700px)");
    let panel_open = Memo::new(move |_| {
        chat_open.get() || monitor_open.get() || containers_open.get() || (files_open.get() && phone())
    });
    let stepped = StoredValue::new(false);
    Effect::new(move |_| {
        let open = panel_open.get();
        let Some(history) = crate::browser::window().history().ok() else { return };
        if open && !stepped.get_value() && phone() {
            stepped.set_value(true);
            let _ = history.push_state(&wasm_bindgen::JsValue::from_str("panel"), "");
        } else if !open && stepped.get_value() {
            stepped.set_value(false);
            let _ = history.back();
        }
    });
    let back = window_event_listener(leptos::ev::popstate, move |_| {
        if stepped.get_value() {
            stepped.set_value(false);
            chat_open.set(false);
            monitor_open.set(false);
            containers_open.set(false);
            if phone() {
                files_open.set(false);
            }
        }
    });
    on_cleanup(move || back.remove());
    // Escape closes the panel on top (the assistant, the monitor, the file tree where it
    // covers the page), unless a terminal or the editor has the key: it is theirs.
    let escape = window_event_listener(leptos::ev::keydown, move |ev| {
        let owned = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| el.closest(".xterm, .monaco-editor, .finder").ok().flatten().is_some());
        if ev.key() != "Escape" || owned || ev.default_prevented() {
            return;
        }
        let phone = crate::browser::media_matches("(max-width: 700px)");
        if chat_open.get_untracked() {
            chat_open.set(false);
        } else if monitor_open.get_untracked() {
            monitor_open.set(false);
        } else if containers_open.get_untracked() {
            containers_open.set(false);
        } else if phone && files_open.get_untracked() {
            files_open.set(false);
        } else {
            return;
        }
        ev.prevent_default();
    });
    on_cleanup(move || escape.remove());
}
