//! The strip of tabs (terminals and files): a tab's button, moving between tabs from the
//! keyboard, and a terminal's pane.

use std::rc::Rc;

use leptos::html::{Div, Input};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::terminal::{Look, Status, TermTab};

#[component]
pub(super) fn TabButton(
    tab: Rc<TermTab>,
    active: RwSignal<Option<u32>>,
    dragging: RwSignal<Option<u32>>,
    move_tab: impl Fn(u32, u32) + Copy + 'static,
    close_tab: impl Fn(u32) + Copy + 'static,
) -> impl IntoView {
    let key = tab.key;
    let title = tab.title;
    let status = tab.status;
    let recorded = tab.recorded;
    let editing = RwSignal::new(false);
    let input = NodeRef::<Input>::new();
    let tab_ref = StoredValue::new_local(tab);
    let commit = move || {
        if let Some(el) = input.get_untracked() {
            tab_ref.with_value(|t| t.rename(el.value()));
        }
        editing.set(false);
    };
    Effect::new(move |_| {
        if editing.get() {
            if let Some(el) = input.get() {
                let _ = el.focus();
                el.select();
            }
        }
    });
    let state = move || match status.get() {
        Status::Live => "live",
        Status::Starting => "starting",
        Status::Offline => "offline",
        Status::Exited(_) | Status::Ended(_) => "exited",
    };
    view! {
        // The tab's name is the tab (for screen readers and the keyboard); its close button
        // sits beside it, not inside it.
        <div
            class="tab"
            class:active=move || active.get() == Some(key)
            role="presentation"
            data-state=state
            draggable="true"
            on:click=move |_| active.set(Some(key))
            on:dblclick=move |_| editing.set(true)
            on:dragstart=move |_| dragging.set(Some(key))
            on:dragend=move |_| dragging.set(None)
            on:dragover=move |ev| ev.prevent_default()
            on:drop=move |ev| {
                ev.prevent_default();
                if let Some(from) = dragging.get_untracked().filter(|f| *f != key) {
                    move_tab(from, key);
                }
            }
        >
            <span
                class="tab-name"
                role="tab"
                aria-selected=move || (active.get() == Some(key)).to_string()
                title="Enter shows it, F2 renames it, Delete closes it, arrows go to the next"
                // By keyboard: the shown tab takes the focus in the strip, arrows go between
                // tabs, Enter shows one, F2 renames it.
                tabindex=move || if active.get() == Some(key) { "0" } else { "-1" }
                on:keydown=move |ev| {
                if editing.get_untracked() {
                    return;
                }
                match ev.key().as_str() {
                    "Enter" | " " => {
                        ev.prevent_default();
                        active.set(Some(key));
                    }
                    "F2" => {
                        ev.prevent_default();
                        editing.set(true);
                    }
                    "Delete" => {
                        ev.prevent_default();
                        close_tab(key);
                    }
                    "ArrowRight" | "ArrowLeft" => {
                        ev.prevent_default();
                        focus_sibling_tab(&ev, ev.key() == "ArrowRight");
                    }
                    _ => {}
                }
            }
            >
            <Show
                when=move || editing.get()
                fallback=move || view! {
                    <span class="title">{move || title.get()}</span>
                    <span class="sr-only" hidden=move || !recorded.get()>" (recorded)"</span>
                }
            >
                <input
                    class="rename"
                    node_ref=input
                    prop:value=move || title.get_untracked()
                    maxlength="80"
                    on:keydown=move |ev| match ev.key().as_str() {
                        "Enter" => commit(),
                        "Escape" => editing.set(false),
                        _ => {}
                    }
                    on:blur=move |_| commit()
                    on:click=|ev| ev.stop_propagation()
                />
            </Show>
            </span>
            <span class="rec" title="This terminal is recorded" aria-hidden="true" hidden=move || !recorded.get()>
                "●"
            </span>
            <crate::tabs::CloseTab label="Close terminal" close=move || close_tab(key) />
        </div>
    }
}

/// Moves the focus from the tab an event came from to the next (or previous) tab of the
/// strip, and shows it.
pub(super) fn focus_sibling_tab(ev: &leptos::ev::KeyboardEvent, next: bool) {
    use wasm_bindgen::JsCast as _;
    let Some(name) = ev.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
    let Some(tab) = name.closest(".tab").ok().flatten() else { return };
    let sibling = if next { tab.next_element_sibling() } else { tab.previous_element_sibling() };
    let Some(sibling) = sibling else { return };
    if let Some(el) =
        sibling.query_selector("[role=tab]").ok().flatten().and_then(|s| s.dyn_into::<web_sys::HtmlElement>().ok())
    {
        el.click();
        // Showing a tab hands the focus to its terminal; by keyboard it stays on the tab.
        spawn_local(async move {
            crate::browser::sleep(0).await;
            let _ = el.focus();
        });
    }
}

#[component]
pub(super) fn TermPane(
    tab: Rc<TermTab>,
    active: RwSignal<Option<u32>>,
    look: RwSignal<Look>,
    close_tab: impl Fn(u32) + Copy + 'static,
    /// The person is a viewer here: the terminal says it only shows.
    viewer: RwSignal<bool>,
) -> impl IntoView {
    let key = tab.key;
    let status = tab.status;
    let node = NodeRef::<Div>::new();
    let tab_ref = StoredValue::new_local(tab);
    let mounted = StoredValue::new(false);
    // A tab's widget is made, and its terminal attached, the first time it is shown: a server
    // with fifty terminals opens as fast as one with a single terminal.
    Effect::new(move |_| {
        if let Some(el) = node.get().filter(|_| active.get() == Some(key)) {
            if !mounted.get_value() {
                mounted.set_value(true);
                tab_ref.with_value(|t| t.mount(&el, look.get_untracked()));
                if active.get_untracked() == Some(key) {
                    tab_ref.with_value(|t| t.focus());
                }
            }
        }
    });
    let restart = move |_| tab_ref.with_value(|t| t.restart());
    let notice = move || match status.get() {
        Status::Exited(exit) => Some(match (exit.code, exit.signal) {
            (Some(code), _) => format!("The shell exited with code {code}."),
            (None, Some(signal)) => format!("The shell was ended by signal {signal}."),
            _ => "The shell exited.".to_owned(),
        }),
        Status::Ended(reason) => Some(format!("This terminal has ended: {reason}")),
        Status::Offline => Some("The server is offline; the terminal continues when it is back.".to_owned()),
        Status::Starting | Status::Live => None,
    };
    let can_restart = move || matches!(status.get(), Status::Exited(_) | Status::Ended(_));
    view! {
        <div class="pane" class:active=move || active.get() == Some(key) data-key=key>
            <div class="term" node_ref=node></div>
            <div class="pane-viewonly" role="status" hidden=move || !viewer.get()>
                "View only: you watch this terminal as a viewer; what you type is not sent."
            </div>
            <div class="pane-notice" role="status" hidden=move || notice().is_none()>
                <span>{notice}</span>
                <span class="pane-actions" hidden=move || !can_restart()>
                    <button class="restart" on:click=restart>
                        "Restart"
                    </button>
                    <button class="secondary" on:click=move |_| close_tab(key)>
                        "Close"
                    </button>
                </span>
            </div>
        </div>
    }
}

/// Moves the item keyed `from` to where `before` is (after it, when moved rightwards).
pub(super) fn reorder<T>(t: &mut Vec<T>, key: impl Fn(&T) -> u32, from: u32, before: u32) {
    let (Some(i), Some(_)) = (t.iter().position(|x| key(x) == from), t.iter().position(|x| key(x) == before)) else {
        return;
    };
    let tab = t.remove(i);
    let j = t.iter().position(|x| key(x) == before).unwrap_or(t.len());
    t.insert(if j >= i { j + 1 } else { j }.min(t.len()), tab);
}
