//! The file manager beside the terminals and the editor: a tree of the server's files, where
//! folders load when opened and are watched while open, so what changes on the server (a
//! shell, a build, a `git checkout`, another user) appears by itself. Only the rows in view
//! are in the page, so a folder of ten thousand entries scrolls smoothly.
//!
//! From the tree: open a file, create, rename, move (drag onto a folder), delete (asking
//! first), upload (drag files from the desktop, or pick them) and download.

mod actions;
mod finder;
mod icons;
mod paths;
pub mod transfer;
mod tree;
mod uploads;

use std::rc::Rc;

use leptos::html::{Div, Input};
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::bridge::{FileKind, FsStat, SysInfoRequest};
use porta_shared::client::OnServer;
use porta_shared::{ErrorBody, ErrorCode};

use paths::{join, parent};
use tree::{Edit, Row, Sort, Tree};
use uploads::Uploads;

pub use finder::{Finder, Mode as FinderMode, lazy_finder_panel};
pub use paths::{is_within, parent as parent_of};

use crate::browser;
use crate::conn::Conn;
use crate::icon::{Icon, Name};

/// Opens a file (at a line, when given) in the editor, and hears of files moved or deleted
/// from the tree (so their editor tabs follow); the page provides it.
#[derive(Clone, Copy)]
pub struct Opener {
    open: Callback<(String, Option<u32>)>,
    moved: Callback<(String, Option<String>)>,
}

impl Opener {
    pub fn new(
        open: impl Fn(String, Option<u32>) + Send + Sync + 'static,
        moved: impl Fn(String, Option<String>) + Send + Sync + 'static,
    ) -> Self {
        Self {
            open: Callback::new(move |(path, line)| open(path, line)),
            moved: Callback::new(move |(from, to)| moved(from, to)),
        }
    }

    /// (Often called after an await: nothing happens once the page is gone.)
    pub fn open(&self, path: String, line: Option<u32>) {
        self.open.try_run((path, line));
    }

    /// `from` (a file or a folder) is now at `to`, or gone when `to` is `None`.
    pub fn moved(&self, from: String, to: Option<String>) {
        self.moved.try_run((from, to));
    }
}

/// Height of a row in pixels; the stylesheet's `.files-entry` has the same. On a touch
/// screen or a phone a row is a finger's size: its "⋯" is a 44 px target.
const ROW_HEIGHT: f64 = 24.0;
const TOUCH_ROW_HEIGHT: f64 = 44.0;

fn row_height() -> f64 {
    if browser::media_matches("(pointer: coarse), (max-width: 700px)") { TOUCH_ROW_HEIGHT } else { ROW_HEIGHT }
}
/// Rows made beyond each edge of the view, so fast scrolling shows no gaps.
const OVERSCAN: usize = 12;

/// What every row reaches: the tree and the page's pieces of state.
#[derive(Clone, Copy)]
struct Ctx {
    tree: StoredValue<Rc<Tree>, LocalStorage>,
    uploads: StoredValue<Rc<Uploads>, LocalStorage>,
    opener: Opener,
    /// The row last clicked: where "new file" and uploads go.
    selected: RwSignal<Option<String>>,
    /// The row whose actions menu is open, and where.
    menu: RwSignal<Option<(Row, f64, f64)>>,
    /// The row being dragged inside the tree.
    dragging: RwSignal<Option<String>>,
    /// The folder a drag is over.
    drop_target: RwSignal<Option<String>>,
    /// The last thing that went wrong.
    problem: RwSignal<Option<String>>,
    /// Height of a row in pixels (see [`row_height`]).
    row_height: f64,
}

impl Ctx {
    fn tree(&self) -> Rc<Tree> {
        self.tree.get_value()
    }

    /// The folder new things go into: the selected folder, the selected file's, or the top.
    fn target_dir(&self) -> Option<String> {
        let tree = self.tree();
        match self.selected.get_untracked() {
            Some(p) if tree.is_open(&p) => Some(p),
            Some(p) => Some(parent(&p).to_owned()).filter(|d| !d.is_empty()),
            None => tree.root.get_untracked(),
        }
    }

    /// Runs a change; a failure is shown above the tree.
    fn attempt(self, fut: impl std::future::Future<Output = Result<(), ErrorBody>> + 'static) {
        self.problem.set(None);
        spawn_local(async move {
            if let Err(e) = fut.await {
                self.problem.set(Some(e.message));
            }
        });
    }

    /// Opens a name box for a new file or folder in `dir` (by default where
    /// [`Ctx::target_dir`] says).
    fn start_create(&self, dir: Option<String>, folder: bool) {
        let Some(dir) = dir.or_else(|| self.target_dir()) else { return };
        let tree = self.tree();
        if !tree.is_open(&dir) {
            tree.open(&dir);
        }
        tree.editing.set(Some(Edit::Create { dir, folder }));
    }

    /// Deletes after asking; a folder with content only after a second, explicit yes.
    fn delete(self, path: String, kind: FileKind) {
        let name = transfer::file_name(&path).to_owned();
        let question =
            if kind == FileKind::Dir { format!("Delete the folder {name}?") } else { format!("Delete {name}?") };
        if !confirm(&question) {
            return;
        }
        let tree = self.tree();
        let opener = self.opener;
        self.attempt(async move {
            match tree.delete(&path, false).await {
                Err(e) if e.code == ErrorCode::NotEmpty => {
                    if !confirm(&format!("{name} is not empty. Delete it and everything in it?")) {
                        return Ok(());
                    }
                    tree.delete(&path, true).await?;
                }
                other => other?,
            }
            opener.moved(path, None);
            Ok(())
        });
    }

    /// Offers a file, or a folder packed as a `.tar.gz`, as a download.
    fn download(self, path: String, kind: FileKind) {
        let tree = self.tree();
        self.attempt(async move {
            let (conn, server) = (tree.conn(), tree.server());
            let (name, data) = if kind == FileKind::Dir {
                let data = transfer::read_folder_archive(conn, server, &path).await?;
                (format!("{}.tar.gz", transfer::file_name(&path)), data)
            } else {
                (transfer::file_name(&path).to_owned(), transfer::read_all(conn, server, &path, 1 << 31).await?)
            };
            transfer::download(&name, &data).map_err(|e| ErrorBody::new(ErrorCode::Internal, e))
        });
    }

    /// Moves `from` into the folder `dir` (by dragging).
    fn move_into(self, from: String, dir: String) {
        let to = join(&dir, transfer::file_name(&from));
        if parent(&from) == dir || paths::is_within(&dir, &from) {
            return;
        }
        self.rename(from, to);
    }

    /// Renames or moves; editor tabs of what moved follow it.
    fn rename(self, from: String, to: String) {
        let tree = self.tree();
        let opener = self.opener;
        self.attempt(async move {
            tree.rename(&from, &to).await?;
            opener.moved(from, Some(to));
            Ok(())
        });
    }
}

fn confirm(question: &str) -> bool {
    browser::window().confirm_with_message(question).unwrap_or(false)
}

/// A folder offered in the path bar's places besides `/` and home (a project's).
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    pub path: String,
}

/// The tree, shown from a folder the person chooses in its path bar (first where they left
/// it, else the server's home folder, or its root when home is out of reach).
#[component]
pub fn FileTree(
    conn: StoredValue<Conn, LocalStorage>,
    server: String,
    opener: Opener,
    /// The top folder, once known (the finder searches beneath it).
    root: RwSignal<Option<String>>,
    /// The projects on this server, offered as places.
    places: RwSignal<Vec<Place>>,
    /// A viewer's tree: reading and downloading only (the backend refuses changes anyway).
    read_only: RwSignal<bool>,
) -> impl IntoView {
    let prefs = crate::prefs::tree_prefs();
    let tree = Tree::new(conn.get_value(), server.clone(), root, prefs.hidden, Sort::from_name(&prefs.sort));
    let uploads = Uploads::new(tree.clone());
    let ctx = Ctx {
        tree: StoredValue::new_local(tree),
        uploads: StoredValue::new_local(uploads),
        opener,
        selected: RwSignal::new(None),
        menu: RwSignal::new(None),
        dragging: RwSignal::new(None),
        drop_target: RwSignal::new(None),
        problem: RwSignal::new(None),
        row_height: row_height(),
    };
    provide_context(ctx);
    let uploads_list = ctx.uploads.with_value(|u| u.list);
    let uploads_used = crate::lazy::once(move || uploads_list.with(|l| !l.is_empty()));
    let menu_used = crate::lazy::once(move || ctx.menu.with(Option::is_some));
    let first = crate::prefs::tree_folder(&server);
    let server = StoredValue::new(server);
    // Where the person goes is where the tree opens next time.
    Effect::new(move |_| {
        if let (Some(folder), Some(server)) = (root.get(), server.try_get_value()) {
            crate::prefs::save_tree_folder(&server, &folder);
        }
    });
    // Every time the socket (re)opens: start (or restart) from the top folder.
    Effect::new(move |_| {
        if conn.with_value(|c| c.epoch()).get() == 0 {
            return;
        }
        let Some(server_now) = server.try_get_value() else { return };
        let Some(conn_now) = conn.try_get_value() else { return };
        let first = first.clone();
        spawn_local(async move {
            let info = conn_now.call(OnServer { server: server_now.clone(), req: SysInfoRequest {} }).await;
            // The panel may have closed while the answer was on its way.
            let Some(tree) = ctx.tree.try_get_value() else { return };
            tree.start(info.map(|i| i.home).unwrap_or_else(|_| "/".to_owned()), first);
        });
    });
    on_cleanup(move || ctx.tree.with_value(|t| t.close_all()));
    // A click anywhere else, or Escape, closes the actions menu.
    let clicks = window_event_listener(leptos::ev::click, move |_| ctx.menu.set(None));
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            ctx.menu.set(None);
        }
    });
    on_cleanup(move || {
        clicks.remove();
        keys.remove();
    });

    let (hidden, sort) = ctx.tree.with_value(|t| (t.hidden, t.sort));
    let save_prefs = move || {
        crate::prefs::save_tree_prefs(&crate::prefs::TreePrefs {
            hidden: hidden.get_untracked(),
            sort: sort.get_untracked().name().to_owned(),
        })
    };
    let toggle_hidden = move |_| {
        hidden.update(|h| *h = !*h);
        save_prefs();
        ctx.tree().relist();
    };
    let picker = NodeRef::<Input>::new();
    let picked = move |_| {
        let Some(input) = picker.get_untracked() else { return };
        if let (Some(files), Some(dir)) = (input.files(), ctx.target_dir()) {
            uploads::upload(ctx.uploads.get_value(), &files, dir, ctx.problem);
        }
        input.set_value("");
    };
    view! {
        <nav class="files-tree" class:read-only=move || read_only.get() aria-label="Files">
            <PathBar places />
            <div class="files-head files-actions">
                <button class="tool files-new-file" title="New file" aria-label="New file"
                    on:click=move |_| ctx.start_create(None, false)>"+ File"</button>
                <button class="tool files-new-folder" title="New folder" aria-label="New folder"
                    on:click=move |_| ctx.start_create(None, true)>"+ Folder"</button>
                <button class="tool files-upload" title="Upload files" aria-label="Upload files"
                    on:click=move |_| { if let Some(p) = picker.get_untracked() { p.click() } }>"Upload"</button>
                <input type="file" multiple class="files-picker" node_ref=picker tabindex="-1" aria-hidden="true" on:change=picked />
            </div>
            <div class="files-head files-view">
                <label class="files-sort">
                    "Sort "
                    <select
                        aria-label="Sort by"
                        prop:value=move || sort.get().name()
                        on:change=move |ev| {
                            sort.set(Sort::from_name(&event_target_value(&ev)));
                            save_prefs();
                        }
                    >
                        {Sort::ALL.iter().map(|(_, n)| view! { <option value=*n>{*n}</option> }).collect_view()}
                    </select>
                </label>
                <button class="tool files-hidden" aria-pressed=move || hidden.get().to_string()
                    title="Show hidden files" on:click=toggle_hidden>".hidden"</button>
                <button class="tool files-refresh" title="List again" aria-label="Refresh"
                    on:click=move |_| ctx.tree().relist()><Icon name=Name::Refresh /></button>
            </div>
            <p class="files-problem" role="alert" hidden=move || ctx.problem.get().is_none()>
                {move || ctx.problem.get().unwrap_or_default()}
                <button class="tool" aria-label="Dismiss" on:click=move |_| ctx.problem.set(None)><Icon name=Name::Close /></button>
            </p>
            <TreeRows />
            <Show when=move || uploads_used.get()>{crate::lazy::lazily_inline(move || uploads::lazy_upload_list(ctx.uploads))}</Show>
            // Loaded the first time a row's actions are asked for, then kept.
            <Show when=move || menu_used.get()>{crate::lazy::lazily_inline(actions::lazy_actions_menu)}</Show>
        </nav>
    }
}

/// Where the tree is: a box to type or paste a path in (a file's path opens the file), a
/// button up to the parent, and places to jump to: `/`, home and each project.
#[component]
fn PathBar(places: RwSignal<Vec<Place>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let input = NodeRef::<Input>::new();
    let root = ctx.tree.with_value(|t| t.root);
    let shown = move || root.get().unwrap_or_default();
    let go = move |typed: String| {
        let tree = ctx.tree();
        let (Some(from), Some(home)) = (tree.root.get_untracked(), tree.home.get_untracked()) else { return };
        let Some(path) = paths::typed_path(&typed, &from, &home) else { return };
        let opener = ctx.opener;
        ctx.attempt(async move {
            let req = FsStat { path, hash: false };
            let info = tree.conn().call(OnServer { server: tree.server().to_owned(), req }).await?;
            if info.kind == FileKind::File {
                opener.open(info.path.clone(), None);
                tree.go(parent(&info.path).to_owned());
            } else {
                tree.go(info.path);
            }
            Ok(())
        });
    };
    let reset = move || {
        if let Some(el) = input.get_untracked() {
            el.set_value(&root.get_untracked().unwrap_or_default());
        }
    };
    view! {
        <form class="files-head files-path" on:submit=move |ev| {
            ev.prevent_default();
            if let Some(el) = input.get_untracked() {
                go(el.value());
                let _ = el.blur();
            }
        }>
            <button type="button" class="tool files-up" title="Up to the parent folder" aria-label="Up to the parent folder"
                disabled=move || root.get().as_deref() == Some("/") on:click=move |_| go("..".to_owned())><Icon name=Name::Up /></button>
            <input
                class="files-path-input"
                node_ref=input
                aria-label="Folder shown"
                title=shown
                spellcheck="false"
                autocomplete="off"
                autocapitalize="off"
                prop:value=shown
                on:keydown=move |ev| {
                    if ev.key() == "Escape" {
                        reset();
                    }
                }
                on:blur=move |_| reset()
            />
            <select class="files-places" aria-label="Go to a place" on:change=move |ev| {
                let place = event_target_value(&ev);
                event_target::<web_sys::HtmlSelectElement>(&ev).set_value("");
                go(place);
            }>
                <option value="" disabled selected hidden>"Places"</option>
                <option value="~">"Home"</option>
                <option value="/">"/ (the whole server)"</option>
                {move || places.get().into_iter().map(|p| {
                    let label = format!("{} ({})", p.name, p.path);
                    view! { <option value=p.path>{label}</option> }
                }).collect_view()}
            </select>
        </form>
    }
}

/// The rows in view, in a box as tall as all of them.
#[component]
fn TreeRows() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let rows = Memo::new(move |_| ctx.tree.with_value(|t| t.rows()));
    let scroll = NodeRef::<Div>::new();
    let top = RwSignal::new(0.0);
    let height = RwSignal::new(800.0);
    let measure = move || {
        if let Some(el) = scroll.get_untracked() {
            top.set(el.scroll_top() as f64);
            height.set(el.client_height().max(1) as f64);
        }
    };
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());
    Effect::new(move |_| {
        if scroll.get().is_some() {
            measure();
        }
    });
    let visible = move || {
        let (top, height) = (top.get(), height.get());
        let first = ((top / ctx.row_height) as usize).saturating_sub(OVERSCAN);
        let count = (height / ctx.row_height) as usize + 2 * OVERSCAN;
        rows.with(|r| r.iter().enumerate().skip(first).take(count).map(|(i, r)| (i, r.clone())).collect::<Vec<_>>())
    };
    // Dropping on the empty part of the tree means its top folder.
    let root_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(root) = ctx.tree.with_value(|t| t.root.get_untracked()) {
            drop_on(ctx, &ev, root);
        }
    };
    view! {
        <div
            class="files-scroll"
            node_ref=scroll
            role="tree"
            aria-label="Files"
            on:scroll=move |_| measure()
            on:dragover=move |ev| ev.prevent_default()
            on:drop=root_drop
        >
            <div class="files-rows" style:height=move || format!("{}px", rows.with(Vec::len) as f64 * ctx.row_height)>
                <For each=visible key=|(i, r)| (*i, r.clone()) let:item>
                    <TreeRow index=item.0 row=item.1 />
                </For>
            </div>
        </div>
    }
}

/// Hands a drop to the right action: files from the desktop are uploaded into `dir`, a row
/// of the tree is moved into it.
fn drop_on(ctx: Ctx, ev: &leptos::ev::DragEvent, dir: String) {
    ctx.drop_target.set(None);
    let files = ev.data_transfer().and_then(|d| d.files()).filter(|f| f.length() > 0);
    if let Some(files) = files {
        uploads::upload(ctx.uploads.get_value(), &files, dir, ctx.problem);
    } else if let Some(from) = ctx.dragging.get_untracked() {
        ctx.move_into(from, dir);
    }
    ctx.dragging.set(None);
}

#[component]
fn TreeRow(index: usize, row: Row) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let indent =
        format!("padding-left: {:.2}rem; top: {}px", 0.3 + f64::from(row.depth) * 0.9, index as f64 * ctx.row_height);
    if let Some(note) = &row.note {
        return view! { <div class="files-entry files-note" style=indent>{note.clone()}</div> }.into_any();
    }
    if row.editing {
        return view! { <actions::NameInput row indent /> }.into_any();
    }
    let is_dir = row.folder;
    let kind = match row.kind {
        FileKind::Dir => "dir",
        FileKind::Symlink => "link",
        _ => "file",
    };
    let (icon, label) = icons::icon(&row.name, if is_dir { FileKind::Dir } else { row.kind }, row.open);
    let path = StoredValue::new(row.path.clone());
    let row_menu = StoredValue::new(row.clone());
    let click = move |_| {
        ctx.selected.set(Some(path.get_value()));
        if is_dir {
            ctx.tree().toggle(&path.get_value());
        } else {
            ctx.opener.open(path.get_value(), None);
        }
    };
    let open_menu = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        ev.stop_propagation();
        ctx.selected.set(Some(path.get_value()));
        ctx.menu.set(Some((row_menu.get_value(), f64::from(ev.client_x()), f64::from(ev.client_y()))));
    };
    let drag_start = move |ev: leptos::ev::DragEvent| {
        ctx.dragging.set(Some(path.get_value()));
        if let Some(dt) = ev.data_transfer() {
            let _ = dt.set_data("text/plain", &path.get_value());
            dt.set_effect_allowed("move");
        }
    };
    let drag_over = move |ev: leptos::ev::DragEvent| {
        if is_dir {
            ev.prevent_default();
            ev.stop_propagation();
            ctx.drop_target.set(Some(path.get_value()));
        }
    };
    let drop = move |ev: leptos::ev::DragEvent| {
        if is_dir {
            ev.prevent_default();
            ev.stop_propagation();
            drop_on(ctx, &ev, path.get_value());
        }
    };
    let git = row.git.map(String::from);
    view! {
        <div
            class="files-entry"
            class:selected=move || ctx.selected.get().as_deref() == Some(path.get_value().as_str())
            class:drop-target=move || ctx.drop_target.get().as_deref() == Some(path.get_value().as_str())
            role="treeitem"
            aria-expanded=is_dir.then(|| row.open.to_string())
            data-kind=kind
            data-name=row.name.clone()
            data-path=row.path.clone()
            data-git=git.clone()
            style=indent
            draggable="true"
            on:dragstart=drag_start
            on:dragend=move |_| { ctx.dragging.set(None); ctx.drop_target.set(None); }
            on:dragover=drag_over
            on:drop=drop
            on:contextmenu=open_menu
        >
            <button class="files-name" on:click=click title=row.path.clone()>
                <span class="files-caret">{is_dir.then(|| view! { <Icon name=if row.open { Name::ChevronDown } else { Name::ChevronRight } /> })}</span>
                <span class="files-icon" data-icon=icon>{label}</span>
                <span class="files-label">{row.name.clone()}</span>
            </button>
            <span class="files-git" hidden=git.is_none()>{git.clone()}</span>
            <button class="files-more" title="Actions" aria-label="Actions" on:click=open_menu><Icon name=Name::More /></button>
        </div>
    }
    // tachys knows no `aria-level` attribute by name.
    .add_any_attr(leptos::tachys::html::attribute::custom::custom_attribute("aria-level", (row.depth + 1).to_string()))
    .into_any()
}
