//! Above and below the terminals: the toolbar, the search bar and the phone's row of keys.

use std::rc::Rc;

use leptos::html::Input;
use leptos::prelude::*;

use crate::editor::EditorTab;
use crate::files;
use crate::icon::{Icon, Name};
use crate::palette::{Command, Palette};
use crate::prefs;
use crate::terminal::keys::{self, Slot};
use crate::terminal::{Look, Page, TermTab};

#[component]
pub(super) fn Toolbar(
    look: RwSignal<Look>,
    page: Page,
    active_tab: impl Fn() -> Option<Rc<TermTab>> + Copy + 'static,
    active_editor: impl Fn() -> Option<Rc<EditorTab>> + Copy + 'static,
    editor_active: impl Fn() -> bool + Copy + Send + Sync + 'static,
    finder: files::Finder,
    /// The Containers and Ports panels, opened from here.
    containers_open: RwSignal<bool>,
    ports_open: RwSignal<bool>,
    /// This server's projects that say how they run, and what runs one.
    runs: RwSignal<Vec<crate::run::Run>>,
    start_run: impl Fn(crate::run::Run) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let find = move || match active_editor() {
        Some(e) => e.find(),
        None => page.search_open.update(|o| *o = !*o),
    };
    let search = move |_| find();
    let font = move |delta: i32| {
        look.update(|l| {
            l.font_size = (l.font_size as i32 + delta).clamp(prefs::FONT_MIN as i32, prefs::FONT_MAX as i32) as u32
        });
    };
    Palette::register(vec![
        Command::new("go-to-file", "Go to file", move || finder.show(files::FinderMode::Files)).keys("Ctrl+P"),
        Command::new("search-files", "Search in files", move || finder.show(files::FinderMode::Text))
            .keys("Ctrl+Shift+F"),
        Command::new("find", "Find in the terminal or file", find).keys("Ctrl+Shift+F · Ctrl+F"),
        Command::new("text-smaller", "Smaller text", move || font(-1)),
        Command::new("text-larger", "Larger text", move || font(1)),
        Command::new("copy", "Copy the terminal's selection", move || {
            if let Some(t) = active_tab() {
                t.copy()
            }
        })
        .keys("Ctrl+Shift+C"),
        Command::new("paste", "Paste into the terminal", move || {
            if let Some(t) = active_tab() {
                t.paste()
            }
        })
        .keys("Ctrl+Shift+V"),
    ]);
    // Where the bar is narrow (a small window, the assistant open), these fold into a menu
    // behind "⋯" (a container query in the style sheet decides); a choice closes it.
    let open = RwSignal::new(false);
    view! {
        <div class="toolbar" class:open=move || open.get()>
            <button class="tool more-tools" title="More actions" aria-label="More actions"
                aria-expanded=move || open.get().to_string() on:click=move |_| open.update(|o| *o = !*o)>
                <Icon name=Name::More />
            </button>
            <div class="toolbar-items" on:click=move |_| open.set(false)>
            <super::run_button::RunButton runs start=start_run read_only=page.read_only />
            <button class="tool containers-toggle" title="Containers: Docker or Podman on this server" aria-label="Containers"
                aria-pressed=move || containers_open.get().to_string() on:click=move |_| containers_open.update(|o| *o = !*o)>
                <Icon name=Name::Container /> <span class="label">"Containers"</span>
            </button>
            <button class="tool ports-toggle" title="Ports: see the web apps running on this server" aria-label="Ports"
                aria-pressed=move || ports_open.get().to_string() on:click=move |_| ports_open.update(|o| *o = !*o)>
                <Icon name=Name::Globe /> <span class="label">"Ports"</span>
            </button>
            <button class="tool quick-open" title="Go to file (Ctrl+P)" aria-label="Go to file"
                on:click=move |_| finder.show(files::FinderMode::Files)>
                <Icon name=Name::FileSearch /> <span class="label">"Go to file"</span>
            </button>
            <button class="tool search-files" title="Search in files (Ctrl+Shift+F in a file)" aria-label="Search files"
                on:click=move |_| finder.show(files::FinderMode::Text)>
                <Icon name=Name::Search /> <span class="label">"Search files"</span>
            </button>
            <button class="tool find" title="Search (Ctrl+Shift+F; Ctrl+F in a file)" on:click=search>
                <Icon name=Name::TextSearch /> <span class="label">"Find"</span>
            </button>
            <button class="tool text-smaller" title="Smaller text" aria-label="Smaller text" on:click=move |_| font(-1)>
                <Icon name=Name::TextSmaller /> <span class="label">"Smaller"</span>
            </button>
            <button class="tool text-larger" title="Larger text" aria-label="Larger text" on:click=move |_| font(1)>
                <Icon name=Name::TextLarger /> <span class="label">"Larger"</span>
            </button>
            <button class="tool" title="Copy selection (Ctrl+Shift+C)" aria-label="Copy" hidden=editor_active on:click=move |_| {
                if let Some(t) = active_tab() { t.copy() }
            }>
                <Icon name=Name::Copy /> <span class="label">"Copy"</span>
            </button>
            <button class="tool" title="Paste (Ctrl+Shift+V)" aria-label="Paste" hidden=editor_active on:click=move |_| {
                if let Some(t) = active_tab() { t.paste() }
            }>
                <Icon name=Name::Paste /> <span class="label">"Paste"</span>
            </button>
            </div>
        </div>
    }
}

/// The search bar, once a terminal's scrollback is first searched (its code comes then).
pub(super) fn search_bar(page: Page, active_tab: UnsyncCallback<(), Option<Rc<TermTab>>>) -> impl IntoView {
    let used = crate::lazy::once(move || page.search_open.get());
    crate::browser::hold_keys_until(
        ".searchbar input",
        move || page.search_open.get(),
        move || page.search_open.set(false),
    );
    view! { <Show when=move || used.get()>{crate::lazy::lazily_inline(move || lazy_search_bar(page, active_tab))}</Show> }
}

/// The search bar, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(search_bar, wasm_split_path = ::leptos::wasm_split, fallible)]
fn lazy_search_bar(page: Page, active_tab: UnsyncCallback<(), Option<Rc<TermTab>>>) -> crate::lazy::Loaded {
    Ok(view! { <SearchBar page active_tab=move || active_tab.try_run(()).flatten() /> }.into_any())
}

#[component]
fn SearchBar(page: Page, active_tab: impl Fn() -> Option<Rc<TermTab>> + Copy + 'static) -> impl IntoView {
    let input = NodeRef::<Input>::new();
    let found = RwSignal::new(true);
    let find = move |backwards: bool| {
        let query = input.get_untracked().map(|i| i.value()).unwrap_or_default();
        match active_tab() {
            Some(t) => leptos::task::spawn_local(async move {
                let hit = t.find(&query, backwards).await;
                found.try_set(hit);
            }),
            None => found.set(false),
        }
    };
    let close = move || {
        page.search_open.set(false);
        if let Some(t) = active_tab() {
            t.clear_search();
            t.focus();
        }
    };
    Effect::new(move |_| {
        if page.search_open.get() {
            crate::terminal::prepare_search();
            if let Some(el) = input.get() {
                let _ = el.focus();
            }
        }
    });
    view! {
        <div class="searchbar" hidden=move || !page.search_open.get()>
            <input
                node_ref=input
                class="search"
                class:missing=move || !found.get()
                type="search"
                placeholder="Search the scrollback"
                aria-label="Search the scrollback"
                on:keydown=move |ev| match ev.key().as_str() {
                    "Enter" => find(ev.shift_key()),
                    "Escape" => close(),
                    _ => {}
                }
            />
            <button class="tool" aria-label="Previous match" on:click=move |_| find(true)>
                <Icon name=Name::ChevronUp />
            </button>
            <button class="tool" aria-label="Next match" on:click=move |_| find(false)>
                <Icon name=Name::ChevronDown />
            </button>
            <button class="tool" aria-label="Close search" on:click=move |_| close()>
                <Icon name=Name::Close />
            </button>
        </div>
    }
}

/// The key row, once the page is narrow enough to show it (a phone; its code comes then, and
/// never where a keyboard is at hand). Meanwhile the page ends above the on-screen keyboard,
/// wherever the browser puts it (a tablet's too).
pub(super) fn key_row(page: Page, active_tab: UnsyncCallback<(), Option<Rc<TermTab>>>) -> impl IntoView {
    let narrow = crate::browser::media_signal("(max-width: 700px)");
    let used = crate::lazy::once(move || narrow.get());
    if let Some(stop) = crate::browser::follow_visual_viewport() {
        let stop = StoredValue::new_local(Some(stop));
        on_cleanup(move || {
            if let Some(stop) = stop.try_update_value(Option::take).flatten() {
                stop();
            }
        });
    }
    view! { <Show when=move || used.get()>{crate::lazy::lazily_inline(move || lazy_key_row(page, active_tab))}</Show> }
}

/// The key row, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(key_row, wasm_split_path = ::leptos::wasm_split, fallible)]
fn lazy_key_row(page: Page, active_tab: UnsyncCallback<(), Option<Rc<TermTab>>>) -> crate::lazy::Loaded {
    Ok(view! { <KeyRow page active_tab=move || active_tab.try_run(()).flatten() /> }.into_any())
}

/// Esc, Tab, Ctrl, Alt, arrows and the symbols phone keyboards hide. The buttons never take
/// the focus, so the on-screen keyboard stays up; Ctrl and Alt apply to the next key.
#[component]
fn KeyRow(page: Page, active_tab: impl Fn() -> Option<Rc<TermTab>> + Copy + 'static) -> impl IntoView {
    let keep_focus = |ev: leptos::ev::PointerEvent| ev.prevent_default();
    // A key's accessible name holds its visible text (`PgUp, Page up`); a symbol's is its name.
    let spoken = |label: &'static str, name: &'static str| {
        if !label.chars().any(char::is_alphanumeric) {
            Some(name.to_owned())
        } else if label == name {
            None
        } else {
            Some(format!("{label}, {name}"))
        }
    };
    let slot = move |&(slot, label, name): &(Slot, &'static str, &'static str)| {
        match slot {
        Slot::Mod(m) => {
            let armed = move || page.mods.with(|x| m.is_on(*x));
            view! {
                <button
                    class="key mod"
                    data-key=name
                    aria-label=spoken(label, name)
                    class:armed=armed
                    aria-pressed=move || armed().to_string()
                    on:pointerdown=keep_focus
                    on:click=move |_| {
                        page.mods.update(|x| m.toggle(x));
                        if let Some(t) = active_tab() {
                            t.focus();
                        }
                    }
                >
                    {label}
                </button>
            }
            .into_any()
        }
        Slot::Key(key) => view! {
            <button class="key" data-key=name aria-label=spoken(label, name) on:pointerdown=keep_focus on:click=move |_| {
                if let Some(t) = active_tab() { t.key(key) }
            }>
                {label}
            </button>
        }
        .into_any(),
    }
    };
    view! {
        // Pages of keys, swiped sideways; the next page's edge shows there is more.
        <div class="keyrow" role="toolbar" aria-label="Terminal keys" hidden=move || page.read_only.get()>
            {keys::PAGES
                .iter()
                .enumerate()
                .map(|(i, keys)| view! { <div class="keypage" data-page=i>{keys.iter().map(slot).collect_view()}</div> })
                .collect_view()}
        </div>
    }
}
