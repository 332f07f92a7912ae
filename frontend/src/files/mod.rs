//! The file tree of a server: folders load when opened and are watched while open, so files
//! created, removed or renamed on the server (by a shell, a build, another user) appear and
//! disappear by themselves.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Uint8Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::bridge::{FileEntry, FileKind, FsList, SysInfoRequest};
use porta_shared::client::{self, ClientEvent, OnServer};
use porta_shared::frame::FrameKind;
use porta_shared::types::StreamId;

use crate::conn::{Conn, StreamSink};

pub mod transfer;

/// Opens a file (at a line, when given) in the editor; the page provides it.
#[derive(Clone, Copy)]
pub struct Opener(Callback<(String, Option<u32>)>);

impl Opener {
    pub fn new(f: impl Fn(String, Option<u32>) + Send + Sync + 'static) -> Self {
        Self(Callback::new(move |(path, line)| f(path, line)))
    }

    pub fn open(&self, path: String, line: Option<u32>) {
        self.0.run((path, line));
    }
}

/// One folder of the tree: its entries once loaded, and its watch while it is open.
struct Folder {
    conn: Conn,
    server: String,
    path: String,
    entries: RwSignal<Option<Result<Vec<FileEntry>, String>>>,
    open: RwSignal<bool>,
    watch: Cell<Option<StreamId>>,
}

impl Folder {
    fn new(conn: Conn, server: String, path: String) -> Rc<Self> {
        Rc::new(Self {
            conn,
            server,
            path,
            entries: RwSignal::new(None),
            open: RwSignal::new(false),
            watch: Cell::new(None),
        })
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.path.trim_end_matches('/'))
    }

    /// Lists the folder again.
    fn load(self: &Rc<Self>) {
        let folder = self.clone();
        spawn_local(async move {
            let req =
                OnServer { server: folder.server.clone(), req: FsList { path: folder.path.clone(), hidden: false } };
            let listed = folder.conn.call(req).await.map(|l| l.entries).map_err(|e| e.message);
            folder.entries.set(Some(listed));
        });
    }

    /// Opens the folder: lists it and watches it for changes.
    fn expand(self: &Rc<Self>) {
        self.open.set(true);
        self.load();
        if self.watch.get().is_some() {
            return;
        }
        let folder = self.clone();
        spawn_local(async move {
            let req = client::FsWatch { server: folder.server.clone(), path: folder.path.clone() };
            if let Ok(w) = folder.conn.call(req).await {
                folder.watch.set(Some(w.stream));
                // The connection holds the folder weakly: the tree's view owns it.
                let sink: Rc<dyn StreamSink> = folder.clone();
                folder.conn.register(w.stream, Rc::downgrade(&sink));
            }
        });
    }

    fn collapse(&self) {
        self.open.set(false);
        if let Some(stream) = self.watch.take() {
            self.conn.unregister(stream);
            let conn = self.conn.clone();
            spawn_local(async move {
                let _ = conn.call(client::FsUnwatch { stream }).await;
            });
        }
    }
}

impl StreamSink for Folder {
    fn frame(&self, _kind: FrameKind, _seq: u64, _payload: Uint8Array) {}

    fn event(&self, event: ClientEvent) {
        match event {
            ClientEvent::FsChanged(_) => {
                // Re-listing is cheap next to a person's reading speed, and always right.
                let req =
                    OnServer { server: self.server.clone(), req: FsList { path: self.path.clone(), hidden: false } };
                let (conn, entries) = (self.conn.clone(), self.entries);
                spawn_local(async move {
                    if let Ok(l) = conn.call(req).await {
                        entries.set(Some(Ok(l.entries)));
                    }
                });
            }
            // The server went away: the watch is over; it is made again on reconnect.
            ClientEvent::StreamClosed(_) => self.watch.set(None),
            _ => {}
        }
    }
}

/// The tree, rooted at the server's home folder (or its root when home is out of reach).
#[component]
pub fn FileTree(conn: StoredValue<Conn, LocalStorage>, server: String, opener: Opener) -> impl IntoView {
    provide_context(opener);
    let root = RwSignal::new_local(None::<Rc<Folder>>);
    let server = StoredValue::new(server);
    // Every time the socket (re)opens: start (or restart) from the top folder.
    Effect::new(move |_| {
        if conn.with_value(|c| c.epoch()).get() == 0 {
            return;
        }
        spawn_local(async move {
            let c = conn.get_value();
            let home = c
                .call(OnServer { server: server.get_value(), req: SysInfoRequest {} })
                .await
                .map(|i| i.home)
                .unwrap_or_default();
            let folder = Folder::new(c, server.get_value(), home);
            folder.expand();
            root.set(Some(folder));
        });
    });
    on_cleanup(move || {
        if let Some(f) = root.get_untracked() {
            f.collapse();
        }
    });
    view! {
        <nav class="files-tree" aria-label="Files">
            {move || root.get().map(|f| view! {
                <div class="files-root" title=f.path.clone()>{f.path.clone()}</div>
                <FolderEntries folder=f />
            })}
        </nav>
    }
}

#[component]
fn FolderEntries(folder: Rc<Folder>) -> impl IntoView {
    let entries = folder.entries;
    let folder = StoredValue::new_local(folder);
    // Keyed by name and kind: a re-list keeps the rows that did not change, so an open
    // subfolder stays open when something beside it changes.
    let list = move || entries.with(|e| e.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default());
    view! {
        <ul class="files-list">
            {move || match entries.get() {
                None => Some(view! { <li class="files-note">"Loading…"</li> }.into_any()),
                Some(Err(e)) => Some(view! { <li class="files-note error">{e}</li> }.into_any()),
                Some(Ok(_)) => None,
            }}
            <For
                each=list
                key=|e: &FileEntry| (e.name.clone(), e.kind == FileKind::Dir)
                children=move |entry| view! { <EntryRow parent=folder.get_value() entry /> }
            />
        </ul>
    }
}

#[component]
fn EntryRow(parent: Rc<Folder>, entry: FileEntry) -> impl IntoView {
    let name = entry.name.clone();
    let label = entry.name.clone();
    if entry.kind != FileKind::Dir {
        let kind = if entry.kind == FileKind::Symlink { "link" } else { "file" };
        let path = parent.child(&entry.name);
        let opener = use_context::<Opener>();
        let open = move |_| {
            if let Some(o) = opener {
                o.open(path.clone(), None);
            }
        };
        return view! {
            <li class="files-entry" data-kind=kind data-name=name>
                <button class="files-name" on:click=open>{label}</button>
            </li>
        }
        .into_any();
    }
    let folder = Folder::new(parent.conn.clone(), parent.server.clone(), parent.child(&entry.name));
    let open = folder.open;
    let folder = StoredValue::new_local(folder);
    let toggle = move |_| {
        folder.with_value(|f| if f.open.get_untracked() { f.collapse() } else { f.expand() });
    };
    on_cleanup(move || folder.with_value(|f| f.collapse()));
    view! {
        <li class="files-entry" data-kind="dir" data-name=name aria-expanded=move || open.get().to_string()>
            <button class="files-name" on:click=toggle>
                <span class="files-caret">{move || if open.get() { "▾" } else { "▸" }}</span>
                {label}
            </button>
            {move || open.get().then(|| view! { <FolderEntries folder=folder.get_value() /> })}
        </li>
    }
    .into_any()
}
