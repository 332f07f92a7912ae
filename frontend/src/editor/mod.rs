//! The code editor: files open in Monaco as tabs beside the terminals, with dirty markers,
//! conflict-safe saving, a diff view and downloads of what cannot be shown.

mod monaco;
mod tab;

use std::rc::Rc;

use leptos::html::Div;
use leptos::prelude::*;

pub use monaco::colorize;
pub use tab::{Compare, Doc, EditorTab, Notice};

use crate::terminal::Look;

/// A file size for people: "532 B", "12.5 KB", "24.0 MB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The tab's button in the tab bar: the file's name, a dot while it has unsaved changes.
#[component]
pub fn EditorTabButton(
    tab: Rc<EditorTab>,
    active: RwSignal<Option<u32>>,
    close_tab: impl Fn(u32) + Copy + 'static,
) -> impl IntoView {
    let key = tab.key;
    let (dirty, gone) = (tab.dirty, tab.gone);
    view! {
        <div
            class="tab editor-tab"
            class:active=move || active.get() == Some(key)
            class:dirty=move || dirty.get()
            class:gone=move || gone.get()
            role="presentation"
            title=tab.path.clone()
            data-path=tab.path.clone()
            on:click=move |_| active.set(Some(key))
        >
            <span
                class="title tab-name"
                role="tab"
                aria-selected=move || (active.get() == Some(key)).to_string()
                tabindex=move || if active.get() == Some(key) { "0" } else { "-1" }
                on:keydown=move |ev| match ev.key().as_str() {
                    "Enter" | " " => {
                        ev.prevent_default();
                        active.set(Some(key));
                    }
                    "Delete" => {
                        ev.prevent_default();
                        close_tab(key);
                    }
                    _ => {}
                }
            >
                {tab.name().to_owned()}
                <span class="sr-only" hidden=move || !dirty.get()>" (unsaved changes)"</span>
            </span>
            <span class="dirty-mark" aria-hidden="true" hidden=move || !dirty.get()>
                "●"
            </span>
            <crate::tabs::CloseTab label="Close file" close=move || close_tab(key) />
        </div>
    }
}

/// The editor of a tab, in a chunk of its own (see `crate::lazy`): it comes with Monaco, when
/// the first file is opened.
#[leptos::wasm_split::wasm_split(editor, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_editor_pane(
    tab: Rc<EditorTab>,
    active: RwSignal<Option<u32>>,
    look: RwSignal<Look>,
) -> crate::lazy::Loaded {
    Ok(view! { <EditorPane tab active look /> }.into_any())
}

/// The editor of one tab, with what it says about saving above it.
#[component]
fn EditorPane(tab: Rc<EditorTab>, active: RwSignal<Option<u32>>, look: RwSignal<Look>) -> impl IntoView {
    let key = tab.key;
    let (doc, notice, comparing, language) = (tab.doc, tab.notice, tab.comparing, tab.language);
    let host = NodeRef::<Div>::new();
    let diff_host = NodeRef::<Div>::new();
    let tab = StoredValue::new_local(tab);
    // Monaco is made the first time the tab is shown with its text loaded.
    Effect::new(move |_| {
        let shown = active.get() == Some(key) && matches!(doc.get(), Doc::Text { .. });
        if let (true, Some(el), Some(diff)) = (shown, host.get(), diff_host.get()) {
            tab.with_value(|t| t.mount(el.into(), diff.into(), look.get_untracked()));
        }
    });
    let path = tab.with_value(|t| t.path.clone());
    let act = move |f: fn(&Rc<EditorTab>)| move |_| tab.with_value(f);
    let viewer = tab.with_value(|t| t.viewer);
    let read_only = move || matches!(doc.get(), Doc::Text { read_only: true }) || viewer.get();
    // A change of role reaches an open editor at once.
    Effect::new(move |_| {
        viewer.track();
        tab.with_value(|t| t.apply_lock());
    });
    let note = move || match doc.get() {
        Doc::Loading => Some("Opening…".to_owned()),
        Doc::Binary { size } => Some(format!("This is a binary file ({}); it is not shown as text.", human_size(size))),
        Doc::TooLarge { size } => Some(format!(
            "This file is {}, larger than the editor opens ({}).",
            human_size(size),
            human_size(tab.with_value(|t| t.max_bytes()))
        )),
        Doc::Failed(e) => Some(e),
        Doc::Text { .. } => None,
    };
    let downloadable = move || matches!(doc.get(), Doc::Binary { .. } | Doc::TooLarge { .. });
    let too_large = move || matches!(doc.get(), Doc::TooLarge { .. });
    view! {
        <div class="pane editor-pane" class:active=move || active.get() == Some(key) data-key=key data-path=path.clone()>
            <div class="editor-bar">
                <span class="editor-path" title=path.clone()><bdi>{path.clone()}</bdi></span>
                <span class="editor-language">{move || language.get()}</span>
                <span class="editor-readonly" hidden=move || !read_only()>
                    {move || if viewer.get() { "view only: you are a viewer here" } else { "read-only" }}
                </span>
                <span class="editor-comparing" hidden=move || comparing.get().is_none()>
                    {move || match comparing.get() {
                        Some(Compare::Disk) => "Left: on disk now · right: yours",
                        Some(Compare::Head) => "Left: git HEAD · right: yours",
                        Some(Compare::Proposal) => "Left: before · right: with the assistant's code",
                        None => "",
                    }}
                    <span hidden=move || comparing.get() == Some(Compare::Proposal)>
                        <button class="tool" on:click=move |_| tab.with_value(|t| t.close_compare())>"Close diff"</button>
                    </span>
                    <span hidden=move || comparing.get() != Some(Compare::Proposal)>
                        <button class="tool proposal-keep" on:click=move |_| tab.with_value(|t| t.settle_proposal(true))>"Keep"</button>
                        <button class="tool proposal-undo" on:click=move |_| tab.with_value(|t| t.settle_proposal(false))>"Undo"</button>
                    </span>
                </span>
                <button
                    class="tool git-diff"
                    title="Compare with the last commit"
                    hidden=move || !matches!(doc.get(), Doc::Text { .. }) || comparing.get().is_some()
                    on:click=move |_| tab.with_value(|t| t.compare(Compare::Head))
                >
                    "Diff HEAD"
                </button>
                <button class="tool save" title="Save (Ctrl+S)" hidden=read_only on:click=act(EditorTab::save)>
                    "Save"
                </button>
            </div>
            <div class="editor-notice" role="alert" hidden=move || notice.get().is_none()
                data-notice=move || match notice.get() {
                    Some(Notice::Saving) => "saving",
                    Some(Notice::Conflict) => "conflict",
                    Some(Notice::Changed) => "changed",
                    Some(Notice::Gone) => "gone",
                    Some(Notice::Error(_)) => "error",
                    None => "",
                }
            >
                {move || match notice.get() {
                    Some(Notice::Saving) => view! { <span>"Saving…"</span> }.into_any(),
                    Some(Notice::Conflict) => view! {
                        <span>"This file changed on the server since you opened it. Nothing was saved."</span>
                        <button class="tool compare" hidden=move || comparing.get() == Some(Compare::Disk)
                            on:click=move |_| tab.with_value(|t| t.compare(Compare::Disk))>"Compare"</button>
                        <button class="tool reload" on:click=act(EditorTab::reload)>"Take theirs"</button>
                        <button class="tool overwrite" on:click=act(EditorTab::overwrite)>"Overwrite with mine"</button>
                        <button class="tool dismiss" on:click=act(|t| t.dismiss())>"Keep editing"</button>
                    }.into_any(),
                    Some(Notice::Changed) => view! {
                        <span>"This file changed on the server while you were editing it."</span>
                        <button class="tool compare" hidden=move || comparing.get() == Some(Compare::Disk)
                            on:click=move |_| tab.with_value(|t| t.compare(Compare::Disk))>"Compare"</button>
                        <button class="tool reload" on:click=act(EditorTab::reload)>"Take theirs"</button>
                        <button class="tool dismiss" on:click=act(|t| t.dismiss())>"Keep mine"</button>
                    }.into_any(),
                    Some(Notice::Gone) => view! {
                        <span>"This file is no longer on the server (deleted or moved). Save to write it here again."</span>
                        <button class="tool save-again" hidden=read_only on:click=act(EditorTab::save)>"Save here again"</button>
                        <button class="tool dismiss" on:click=act(|t| t.dismiss())>"Keep editing"</button>
                    }.into_any(),
                    Some(Notice::Error(e)) => view! {
                        <span>{e}</span>
                        <button class="tool dismiss" on:click=act(|t| t.dismiss())>"OK"</button>
                    }.into_any(),
                    None => ().into_any(),
                }}
            </div>
            <div class="editor-host" node_ref=host hidden=move || comparing.get().is_some() || note().is_some()></div>
            <div class="editor-diff" node_ref=diff_host hidden=move || comparing.get().is_none()></div>
            <div class="editor-note" role="status" hidden=move || note().is_none()>
                <p>{note}</p>
                <p class="editor-note-actions" hidden=move || !downloadable()>
                    <button class="secondary open-anyway" hidden=move || !too_large() on:click=move |_| tab.with_value(|t| t.load(true))>
                        "Open read-only"
                    </button>
                    <button class="download" on:click=act(EditorTab::download)>"Download"</button>
                </p>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(12_500), "12.5 KB");
        assert_eq!(human_size(24_000_000), "24.0 MB");
        assert_eq!(human_size(10 * 1024 * 1024), "10.5 MB");
    }
}
