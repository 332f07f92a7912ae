//! The file tree's model: the folders listed so far, which of them are open (and watched, so
//! changes made on the server arrive by themselves), the order and filter the person chose,
//! and git's marks. [`Tree::rows`] flattens it into the rows on screen, which the view shows
//! a window of at a time.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};

use js_sys::Uint8Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::ErrorBody;
use porta_shared::bridge::{FileEntry, FileKind, FsDelete, FsList, FsMkdir, FsRename, GitStatus};
use porta_shared::client::{self, ClientEvent, OnServer};
use porta_shared::frame::FrameKind;
use porta_shared::types::StreamId;

use super::paths::{check_name, git_mark, is_within, join, marks_with_folders, parent, sort_entries};
use super::transfer::{self, WriteRules};
use crate::conn::{Conn, StreamSink};

/// The order of a folder's entries (folders always come first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    Name,
    /// Newest first.
    Modified,
    /// Largest first.
    Size,
}

impl Sort {
    pub const ALL: [(Sort, &'static str); 3] =
        [(Sort::Name, "name"), (Sort::Modified, "modified"), (Sort::Size, "size")];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(s, _)| *s == self).map_or("name", |(_, n)| n)
    }

    pub fn from_name(name: &str) -> Self {
        Self::ALL.iter().find(|(_, n)| *n == name).map_or(Sort::Name, |(s, _)| *s)
    }
}

/// A file or folder being named in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Edit {
    Rename(String),
    Create { dir: String, folder: bool },
}

/// One line of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Row {
    /// Absolute path (for a note or a new entry: its folder's).
    pub path: String,
    pub name: String,
    pub kind: FileKind,
    /// A folder, or a link to one: it opens in the tree.
    pub folder: bool,
    pub depth: u16,
    pub size: u64,
    pub open: bool,
    /// Git's mark: `M`, `A`, `D`, `R`, `U` (untracked) or `C` (conflicted); `•` on a folder
    /// with changes inside.
    pub git: Option<char>,
    /// Stands for a folder's content: "Loading…", or why it could not be listed.
    pub note: Option<String>,
    /// The row is a name being typed (a new entry, or a rename).
    pub editing: bool,
}

/// One folder: its entries once listed, and its watch while it is open.
struct Folder {
    tree: Weak<Tree>,
    path: String,
    entries: RwSignal<Option<Result<Vec<FileEntry>, String>>>,
    open: Cell<bool>,
    watch: Cell<Option<StreamId>>,
    /// A watch was asked for (or is in place): never two for one folder.
    watching: Cell<bool>,
}

impl StreamSink for Folder {
    fn frame(&self, _kind: FrameKind, _seq: u64, _payload: Uint8Array) {}

    fn event(&self, event: ClientEvent) {
        let Some(tree) = self.tree.upgrade() else { return };
        match event {
            // Listing again is cheap next to a person's reading speed, and always right.
            ClientEvent::FsChanged(_) => {
                tree.list(&self.path);
                tree.refresh_git_for(&self.path);
            }
            // The server went away: the watch is over; it is made again on reconnect.
            ClientEvent::StreamClosed(_) => {
                self.watch.set(None);
                self.watching.set(false);
            }
            _ => {}
        }
    }
}

pub struct Tree {
    /// Folders are made while rows come and go: their signals belong to the tree's owner,
    /// not to the row that happened to open them.
    owner: Owner,
    conn: Conn,
    server: String,
    pub root: RwSignal<Option<String>>,
    /// The server's home folder, once known.
    pub home: RwSignal<Option<String>>,
    folders: RefCell<HashMap<String, Rc<Folder>>>,
    /// Changes whenever a folder opens or closes.
    shape: RwSignal<u64>,
    pub hidden: RwSignal<bool>,
    pub sort: RwSignal<Sort>,
    pub editing: RwSignal<Option<Edit>>,
    /// Git marks by absolute path, folders with changes inside included.
    git: RwSignal<HashMap<String, char>>,
    /// Work trees seen, by top folder, with the marks each contributed.
    repos: RefCell<HashMap<String, Vec<(String, char)>>>,
    /// Work trees whose status is being read again.
    refreshing: RefCell<HashSet<String>>,
}

impl Tree {
    pub fn new(conn: Conn, server: String, root: RwSignal<Option<String>>, hidden: bool, sort: Sort) -> Rc<Self> {
        Rc::new(Self {
            owner: Owner::current().unwrap_or_default(),
            conn,
            server,
            root,
            home: RwSignal::new(None),
            folders: RefCell::new(HashMap::new()),
            shape: RwSignal::new(0),
            hidden: RwSignal::new(hidden),
            sort: RwSignal::new(sort),
            editing: RwSignal::new(None),
            git: RwSignal::new(HashMap::new()),
            repos: RefCell::new(HashMap::new()),
            refreshing: RefCell::new(HashSet::new()),
        })
    }

    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn on<R>(&self, req: R) -> OnServer<R> {
        OnServer { server: self.server.clone(), req }
    }

    fn folder(self: &Rc<Self>, path: &str) -> Rc<Folder> {
        self.folders
            .borrow_mut()
            .entry(path.to_owned())
            .or_insert_with(|| {
                Rc::new(Folder {
                    tree: Rc::downgrade(self),
                    path: path.to_owned(),
                    entries: self.owner.with(|| RwSignal::new(None)),
                    open: Cell::new(false),
                    watch: Cell::new(None),
                    watching: Cell::new(false),
                })
            })
            .clone()
    }

    /// Starts (again, after a reconnect): the first time at `first` (or home), later where
    /// the person left it, with every folder that was open listed and watched again.
    pub fn start(self: &Rc<Self>, home: String, first: Option<String>) {
        self.home.set(Some(home.clone()));
        let root = self.root.get_untracked().unwrap_or_else(|| first.unwrap_or(home));
        self.root.set(Some(root.clone()));
        let mut open: Vec<String> =
            self.folders.borrow().values().filter(|f| f.open.get()).map(|f| f.path.clone()).collect();
        if !open.contains(&root) {
            open.push(root);
        }
        for path in open {
            // A new socket: the old watches went with the old one.
            if let Some(f) = self.folders.borrow().get(&path) {
                f.watch.set(None);
                f.watching.set(false);
            }
            self.open(&path);
        }
    }

    /// Shows `path` as the top folder instead.
    pub fn go(self: &Rc<Self>, path: String) {
        // (Called once a path is answered: the tree may be gone meanwhile.)
        let Some(root) = self.root.try_get_untracked() else { return };
        if root.as_deref() != Some(path.as_str()) {
            self.close_all();
            self.root.set(Some(path.clone()));
        }
        self.open(&path);
    }

    pub fn is_open(&self, path: &str) -> bool {
        self.folders.borrow().get(path).is_some_and(|f| f.open.get())
    }

    /// Opens a folder: lists it, watches it, and reads git's marks for it.
    pub fn open(self: &Rc<Self>, path: &str) {
        let folder = self.folder(path);
        folder.open.set(true);
        self.shape.update(|n| *n += 1);
        self.list(path);
        self.check_git(path);
        if folder.watching.replace(true) {
            return;
        }
        let tree = self.clone();
        spawn_local(async move {
            let req = client::FsWatch { server: tree.server.clone(), path: folder.path.clone() };
            match tree.conn.call(req).await {
                Ok(w) if !folder.open.get() || folder.watch.get().is_some() => {
                    // Closed while the watch was being made, or watched meanwhile already.
                    folder.watching.set(folder.watch.get().is_some());
                    let _ = tree.conn.call(client::FsUnwatch { stream: w.stream }).await;
                }
                Ok(w) => {
                    folder.watch.set(Some(w.stream));
                    // The connection holds the folder weakly: the tree owns it.
                    let sink: Rc<dyn StreamSink> = folder.clone();
                    tree.conn.register(w.stream, Rc::downgrade(&sink));
                }
                Err(_) => folder.watching.set(false),
            }
        });
    }

    /// Closes a folder and every open folder inside it, ending their watches.
    pub fn close(&self, path: &str) {
        let inside = format!("{}/", path.trim_end_matches('/'));
        for f in self.folders.borrow().values() {
            if f.path == path || f.path.starts_with(&inside) {
                self.unwatch(f);
            }
        }
        self.shape.update(|n| *n += 1);
    }

    fn unwatch(&self, f: &Folder) {
        f.open.set(false);
        f.watching.set(false);
        if let Some(stream) = f.watch.take() {
            self.conn.unregister(stream);
            let conn = self.conn.clone();
            spawn_local(async move {
                let _ = conn.call(client::FsUnwatch { stream }).await;
            });
        }
    }

    pub fn toggle(self: &Rc<Self>, path: &str) {
        if self.is_open(path) { self.close(path) } else { self.open(path) }
    }

    /// Ends every watch (the tree is going away).
    pub fn close_all(&self) {
        for f in self.folders.borrow().values() {
            self.unwatch(f);
        }
        self.folders.borrow_mut().clear();
        self.shape.update(|n| *n += 1);
    }

    /// Lists a folder again, if it has been listed before or is open.
    pub fn list(self: &Rc<Self>, path: &str) {
        let Some(folder) = self.folders.borrow().get(path).cloned() else { return };
        let tree = self.clone();
        // (Also called once a change is answered: the tree may be gone meanwhile.)
        let Some(hidden) = self.hidden.try_get_untracked() else { return };
        spawn_local(async move {
            let req = tree.on(FsList { path: folder.path.clone(), hidden });
            let listed = tree.conn.call(req).await.map(|l| l.entries).map_err(|e| e.message);
            // A failed re-list keeps what was shown; a failed first list says why.
            if listed.is_ok() || folder.entries.try_with_untracked(Option::is_none).unwrap_or(false) {
                folder.entries.set(Some(listed));
            }
        });
    }

    /// Lists every open folder again (after the hidden-files switch, or on request).
    pub fn relist(self: &Rc<Self>) {
        let open: Vec<String> =
            self.folders.borrow().values().filter(|f| f.open.get()).map(|f| f.path.clone()).collect();
        for path in open {
            self.list(&path);
        }
        let repos: Vec<String> = self.repos.borrow().keys().cloned().collect();
        for top in repos {
            self.refresh_git(top);
        }
    }

    /// The rows on screen, in order.
    pub fn rows(&self) -> Vec<Row> {
        self.shape.track();
        let (sort, editing) = (self.sort.get(), self.editing.get());
        let mut out = Vec::new();
        self.git.with(|git| {
            if let Some(root) = self.root.get() {
                self.push_rows(&root, 0, sort, editing.as_ref(), git, &mut out);
            }
        });
        out
    }

    fn push_rows(
        &self,
        path: &str,
        depth: u16,
        sort: Sort,
        editing: Option<&Edit>,
        git: &HashMap<String, char>,
        out: &mut Vec<Row>,
    ) {
        let Some(folder) = self.folders.borrow().get(path).cloned() else { return };
        let note = |text: String| Row {
            path: path.to_owned(),
            name: String::new(),
            kind: FileKind::Other,
            folder: false,
            depth,
            size: 0,
            open: false,
            git: None,
            note: Some(text),
            editing: false,
        };
        if let Some(Edit::Create { dir, folder }) =
            editing.filter(|e| matches!(e, Edit::Create { dir, .. } if dir == path))
        {
            out.push(Row {
                path: dir.clone(),
                kind: if *folder { FileKind::Dir } else { FileKind::File },
                folder: *folder,
                editing: true,
                note: None,
                ..note(String::new())
            });
        }
        folder.entries.with(|entries| match entries {
            None => out.push(note("Loading…".to_owned())),
            Some(Err(e)) => out.push(note(e.clone())),
            Some(Ok(list)) => {
                let mut list: Vec<&FileEntry> = list.iter().collect();
                sort_entries(&mut list, sort);
                for e in list {
                    let child = join(path, &e.name);
                    let folder = e.kind == FileKind::Dir || e.target == Some(FileKind::Dir);
                    let open = folder && self.is_open(&child);
                    let renaming = editing == Some(&Edit::Rename(child.clone()));
                    out.push(Row {
                        git: git.get(&child).copied(),
                        path: child.clone(),
                        name: e.name.clone(),
                        kind: e.kind,
                        folder,
                        depth,
                        size: e.size,
                        open,
                        note: None,
                        editing: renaming,
                    });
                    if open {
                        self.push_rows(&child, depth + 1, sort, editing, git, out);
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------ git

    /// Reads the marks of the work tree `path` is in, the first time it is seen.
    fn check_git(self: &Rc<Self>, path: &str) {
        if self.repos.borrow().keys().any(|top| is_within(path, top)) {
            return;
        }
        let tree = self.clone();
        let path = path.to_owned();
        spawn_local(async move {
            let Ok(status) = tree.conn.call(tree.on(GitStatus { path })).await else { return };
            let Some(top) = status.repo else { return };
            if tree.repos.borrow_mut().insert(top.clone(), Vec::new()).is_none() {
                tree.refresh_git(top);
            }
        });
    }

    /// Reads the marks again of the work tree `path` is in, if any.
    fn refresh_git_for(self: &Rc<Self>, path: &str) {
        let top = self.repos.borrow().keys().find(|top| is_within(path, top)).cloned();
        if let Some(top) = top {
            self.refresh_git(top);
        }
    }

    fn refresh_git(self: &Rc<Self>, top: String) {
        if !self.refreshing.borrow_mut().insert(top.clone()) {
            return;
        }
        let tree = self.clone();
        spawn_local(async move {
            // Changes come in bursts (a checkout, a build): one status read per burst.
            crate::browser::sleep(300).await;
            tree.refreshing.borrow_mut().remove(&top);
            let Ok(status) = tree.conn.call(tree.on(GitStatus { path: top.clone() })).await else { return };
            let marks: Vec<(String, char)> =
                status.files.iter().map(|f| (join(&top, &f.path), git_mark(&f.status))).collect();
            tree.repos.borrow_mut().insert(top, marks);
            let all = marks_with_folders(tree.repos.borrow().values().flatten());
            tree.git.set(all);
        });
    }

    // ------------------------------------------------------------ changes

    /// Lists again the folder a path is in (after a change made from here; the watch would
    /// notice too, a moment later).
    fn changed(self: &Rc<Self>, path: &str) {
        self.list(parent(path));
        self.refresh_git_for(path);
    }

    pub async fn create(self: &Rc<Self>, dir: &str, name: &str, folder: bool) -> Result<String, ErrorBody> {
        check_name(name)?;
        let path = join(dir, name);
        if folder {
            self.conn.call(self.on(FsMkdir { path: path.clone(), parents: false })).await?;
        } else {
            let rules = WriteRules { create_new: true, expected_sha256: None };
            transfer::write_all(&self.conn, &self.server, &path, b"", rules).await?;
        }
        self.changed(&path);
        Ok(path)
    }

    /// Renames or moves `from` to `to` (refused when `to` exists).
    pub async fn rename(self: &Rc<Self>, from: &str, to: &str) -> Result<(), ErrorBody> {
        self.conn.call(self.on(FsRename { from: from.to_owned(), to: to.to_owned(), overwrite: false })).await?;
        if self.is_open(from) {
            self.close(from);
        }
        self.changed(from);
        self.changed(to);
        Ok(())
    }

    pub async fn delete(self: &Rc<Self>, path: &str, recursive: bool) -> Result<(), ErrorBody> {
        self.conn.call(self.on(FsDelete { path: path.to_owned(), recursive })).await?;
        self.close(path);
        self.changed(path);
        Ok(())
    }
}
