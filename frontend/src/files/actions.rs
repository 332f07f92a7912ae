//! What can be done to a row of the tree: its name typed in place (new or renamed), and the
//! menu of actions — open, rename, download, delete, … — loaded when first used.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use paths::{join, parent};
use porta_shared::bridge::FileKind;
use tree::{Edit, Row};

use super::*;

/// Typing the name of a new file or folder, or a new name.
#[component]
pub(super) fn NameInput(row: Row, indent: String) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let input = NodeRef::<Input>::new();
    let editing = ctx.tree.with_value(|t| t.editing);
    let done = StoredValue::new(false);
    let commit = move || {
        if done.get_value() {
            return;
        }
        done.set_value(true);
        let name = input.get_untracked().map(|i| i.value()).unwrap_or_default();
        let name = name.trim().to_owned();
        let edit = editing.get_untracked();
        editing.set(None);
        let tree = ctx.tree();
        match edit {
            _ if name.is_empty() => {}
            Some(Edit::Rename(from)) if transfer::file_name(&from) != name => match paths::check_name(&name) {
                Ok(()) => ctx.rename(from.clone(), join(parent(&from), &name)),
                Err(e) => ctx.problem.set(Some(e.message)),
            },
            Some(Edit::Create { dir, folder }) => {
                let opener = ctx.opener;
                ctx.attempt(async move {
                    let path = tree.create(&dir, &name, folder).await?;
                    ctx.selected.set(Some(path.clone()));
                    if !folder {
                        opener.open(path, None);
                    }
                    Ok(())
                });
            }
            Some(Edit::Rename(_)) | None => {}
        }
    };
    let cancel = move || {
        done.set_value(true);
        editing.set(None);
    };
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
            // Select the name without its extension, as file managers do.
            let name = el.value();
            let end = name.rfind('.').filter(|i| *i > 0).unwrap_or(name.len());
            let _ = el.set_selection_range(0, end as u32);
        }
    });
    let value = if row.name.is_empty() { String::new() } else { row.name.clone() };
    let placeholder = match row.kind {
        FileKind::Dir if row.name.is_empty() => "folder name",
        _ if row.name.is_empty() => "file name",
        _ => "new name",
    };
    view! {
        <div class="files-entry editing" style=indent>
            <input
                class="files-name-input"
                node_ref=input
                value=value
                placeholder=placeholder
                aria-label=placeholder
                on:keydown=move |ev| match ev.key().as_str() {
                    "Enter" => commit(),
                    "Escape" => cancel(),
                    _ => {}
                }
                on:blur=move |_| commit()
            />
        </div>
    }
}

/// The actions menu, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(file_actions, wasm_split_path = ::leptos::wasm_split, fallible)]
pub(super) fn lazy_actions_menu() -> crate::lazy::Loaded {
    Ok(view! { <ActionsMenu /> }.into_any())
}

/// What can be done to a row: shown by its "⋯" button or a right click.
#[component]
fn ActionsMenu() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let item = move |label: &'static str, class: &'static str, act: fn(Ctx, &Row)| {
        view! {
            <button class=format!("files-menu-item {class}") role="menuitem" on:click=move |_| {
                if let Some((row, _, _)) = ctx.menu.get_untracked() {
                    ctx.menu.set(None);
                    act(ctx, &row);
                }
            }>{label}</button>
        }
    };
    let is_dir = move || ctx.menu.with(|m| m.as_ref().is_some_and(|(r, _, _)| r.folder));
    view! {
        <div
            class="files-menu"
            role="menu"
            hidden=move || ctx.menu.with(Option::is_none)
            style:left=move || ctx.menu.with(|m| m.as_ref().map(|(_, x, _)| format!("{x}px")))
            style:top=move || ctx.menu.with(|m| m.as_ref().map(|(_, _, y)| format!("{y}px")))
            on:click=|ev| ev.stop_propagation()
        >
            <div hidden=is_dir>{item("Open", "open", |ctx, r| ctx.opener.open(r.path.clone(), None))}</div>
            <div hidden=move || !is_dir()>
                {item("New file", "new-file", |ctx, r| ctx.start_create(Some(r.path.clone()), false))}
                {item("New folder", "new-folder", |ctx, r| ctx.start_create(Some(r.path.clone()), true))}
            </div>
            {item("Rename", "rename", |ctx, r| ctx.tree().editing.set(Some(Edit::Rename(r.path.clone()))))}
            {item("Download", "download", |ctx, r| {
                ctx.download(r.path.clone(), if r.folder { FileKind::Dir } else { r.kind })
            })}
            <div hidden=move || !is_dir()>
                {item("Show from here", "go-into", |ctx, r| ctx.tree().go(r.path.clone()))}
            </div>
            {item("Copy path", "copy-path", |_, r| {
                let path = r.path.clone();
                spawn_local(async move { let _ = crate::terminal::copy(&path).await; });
            })}
            {item("Delete", "delete", |ctx, r| ctx.delete(r.path.clone(), r.kind))}
        </div>
    }
}
