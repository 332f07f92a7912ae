//! The page's panels (the file tree, the assistant, and those that cover the terminals: the
//! Monitor, Containers, Ports): their title bars, and how they close — Back on a phone, as in
//! every phone app, and Escape.

use leptos::prelude::*;

use crate::api::Session;
use crate::conn::Conn;
use crate::icon::{Icon, Name};

/// The panels that cover the terminals while open.
#[derive(Clone, Copy)]
pub(super) struct Covering {
    pub monitor: RwSignal<bool>,
    pub containers: RwSignal<bool>,
    pub ports: RwSignal<bool>,
}

impl Covering {
    pub fn new() -> Self {
        Self { monitor: RwSignal::new(false), containers: RwSignal::new(false), ports: RwSignal::new(false) }
    }

    /// Whether any is open (tracked).
    fn any(self) -> bool {
        self.monitor.get() || self.containers.get() || self.ports.get()
    }

    fn any_untracked(self) -> bool {
        self.monitor.get_untracked() || self.containers.get_untracked() || self.ports.get_untracked()
    }

    fn close_all(self) {
        self.monitor.set(false);
        self.containers.set(false);
        self.ports.set(false);
    }

    /// Closes the one on top; false when none was open.
    fn close_top(self) -> bool {
        let Some(top) = [self.monitor, self.containers, self.ports].into_iter().find(|o| o.get_untracked()) else {
            return false;
        };
        top.set(false);
        true
    }
}

/// The covering panels themselves, each loaded the first time it opens.
#[component]
pub(super) fn CoveringPanes(
    covering: Covering,
    session: RwSignal<Option<Session>>,
    conn: StoredValue<Conn, LocalStorage>,
    id: StoredValue<String>,
    read_only: RwSignal<bool>,
    open_console: Callback<porta_shared::docker::Console>,
    open_in_editor: Callback<String>,
) -> impl IntoView {
    let server = move || id.get_value();
    view! {
        <Show when=move || covering.monitor.get()>
            <section class="monitor-pane">
                <PanelBar title="Monitor" open=covering.monitor />
                {crate::lazy::lazily(move || crate::monitor::lazy_monitor_panel(session, conn, server(), read_only))}
            </section>
        </Show>
        <Show when=move || covering.containers.get()>
            <section class="monitor-pane containers-pane">
                <PanelBar title="Containers" open=covering.containers />
                {crate::lazy::lazily(move || crate::containers::lazy_containers_panel(conn, server(), read_only, open_console, open_in_editor))}
            </section>
        </Show>
        <Show when=move || covering.ports.get()>
            <section class="monitor-pane ports-pane">
                <PanelBar title="Ports" open=covering.ports />
                {crate::lazy::lazily(move || crate::ports::lazy_ports_panel(session, conn, server()))}
            </section>
        </Show>
    }
}

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
pub(super) fn close_on_back_and_escape(chat_open: RwSignal<bool>, covering: Covering, files_open: RwSignal<bool>) {
    // On a phone a panel covers the page: Back closes it, as in every phone app. Opening one
    // adds a step to the history; closing it otherwise takes that step back.
    let phone = || crate::browser::media_matches("(max-width: 700px)");
    let panel_open = Memo::new(move |_| chat_open.get() || covering.any() || (files_open.get() && phone()));
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
            covering.close_all();
            if phone() {
                files_open.set(false);
            }
        }
    });
    on_cleanup(move || back.remove());
    // Escape closes the panel on top (the assistant, a covering panel, the file tree where it
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
        let closed = if chat_open.get_untracked() {
            chat_open.set(false);
            true
        } else if phone && !covering.any_untracked() && files_open.get_untracked() {
            files_open.set(false);
            true
        } else {
            covering.close_top()
        };
        if !closed {
            return;
        }
        ev.prevent_default();
    });
    on_cleanup(move || escape.remove());
}
