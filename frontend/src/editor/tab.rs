//! One file open in the editor: its content as loaded, the hash of that version, and saving
//! that can never silently overwrite a change made by someone else.
//!
//! A save sends the hash of the version the editor holds. When the file changed on disk
//! since, the bridge refuses with `conflict` and the person chooses: compare the two, take
//! the version on disk, or overwrite it with theirs.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::Uint8Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::bridge::{FileKind, FsStat, GitHead};
use porta_shared::client::{self, ClientEvent, OnServer};
use porta_shared::frame::FrameKind;
use porta_shared::types::StreamId;
use porta_shared::{ErrorBody, ErrorCode};

use super::monaco::{self, Callbacks, Monaco, Options};
use crate::api::Limits;
use crate::conn::{Conn, StreamSink};
use crate::files::transfer::{self, WriteRules};
use crate::terminal::Look;

/// What the tab holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Loading,
    /// Text, in Monaco (or about to be).
    Text {
        read_only: bool,
    },
    /// Not text: offered as a download only.
    Binary {
        size: u64,
    },
    /// Larger than the editor takes: offered read-only, or as a download.
    TooLarge {
        size: u64,
    },
    Failed(String),
}

/// A message over the editor, about the last save.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Saving,
    /// The file changed on disk since it was loaded; nothing was written.
    Conflict,
    /// The file changed on disk while it has unsaved changes here (found before any save).
    Changed,
    /// The file is no longer on the server (deleted, or moved away).
    Gone,
    Error(String),
}

/// What the diff view compares the content with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare {
    /// The file as it is on disk now (after a conflict).
    Disk,
    /// The file as committed at git `HEAD`.
    Head,
    /// The content before the assistant's code went in: keep it, or undo.
    Proposal,
}

pub struct EditorTab {
    /// This tab, for callbacks that only get `&self`.
    me: Weak<EditorTab>,
    /// Unique on this page; shares its numbering with the terminal tabs.
    pub key: u32,
    pub path: String,
    server: String,
    conn: Conn,
    limits: Limits,
    pub doc: RwSignal<Doc>,
    pub dirty: RwSignal<bool>,
    /// The file is no longer on the server; a save writes it again.
    pub gone: RwSignal<bool>,
    /// The person is a viewer on this server (now: roles change while the page is open).
    pub viewer: RwSignal<bool>,
    pub notice: RwSignal<Option<Notice>>,
    pub comparing: RwSignal<Option<Compare>>,
    /// The language Monaco chose from the file's name, once it is shown.
    pub language: RwSignal<String>,
    /// The loaded text, until the widget takes it.
    text: RefCell<Option<String>>,
    /// Hash of the version on disk the content is based on.
    sha256: RefCell<Option<String>>,
    widget: RefCell<Option<Monaco>>,
    /// Where the diff view goes.
    compare_host: RefCell<Option<web_sys::HtmlElement>>,
    /// A line to show once the text is in the widget.
    pending_line: Cell<Option<u32>>,
    mounting: Cell<bool>,
    /// The watch on the file's folder, so changes made on the server are noticed.
    watch: Cell<Option<StreamId>>,
    /// The content before a proposal from the assistant, while it is being looked at.
    before_proposal: RefCell<Option<String>>,
    /// The page's count of saves (the preview pane reloads on them), when it keeps one.
    saves: Option<crate::preview::Saves>,
}

impl EditorTab {
    pub fn new(key: u32, server: String, conn: Conn, limits: Limits, path: String, viewer: RwSignal<bool>) -> Rc<Self> {
        let tab = Rc::new_cyclic(|me| Self {
            me: me.clone(),
            key,
            path,
            server,
            conn,
            limits,
            doc: RwSignal::new(Doc::Loading),
            dirty: RwSignal::new(false),
            gone: RwSignal::new(false),
            viewer,
            notice: RwSignal::new(None),
            comparing: RwSignal::new(None),
            language: RwSignal::new(String::new()),
            text: RefCell::new(None),
            sha256: RefCell::new(None),
            widget: RefCell::new(None),
            compare_host: RefCell::new(None),
            pending_line: Cell::new(None),
            mounting: Cell::new(false),
            watch: Cell::new(None),
            before_proposal: RefCell::new(None),
            saves: use_context::<crate::preview::Saves>(),
        });
        tab.load(false);
        tab
    }

    /// The largest file the editor opens for editing.
    pub fn max_bytes(&self) -> u64 {
        self.limits.editor_max_bytes as u64
    }

    pub fn name(&self) -> &str {
        transfer::file_name(&self.path)
    }

    /// The text in the editor, once it is shown.
    pub fn text(&self) -> Option<String> {
        self.widget.borrow().as_ref().map(Monaco::value)
    }

    /// The selected text, when there is a selection.
    pub fn selection(&self) -> Option<String> {
        self.widget.borrow().as_ref().map(Monaco::selected_text).filter(|s| !s.is_empty())
    }

    /// Puts `text` at the cursor and shows the change as a diff against what was there, to
    /// keep or undo; false when the editor is not shown (or is read-only).
    pub fn propose(&self, text: &str) -> bool {
        let Some(before) = self.text() else { return false };
        if !self.insert(text) {
            return false;
        }
        let host = self.compare_host.borrow().clone();
        if let (Some(w), Some(host)) = (self.widget.borrow().as_ref(), host) {
            self.before_proposal.replace(Some(before.clone()));
            self.comparing.set(Some(Compare::Proposal));
            w.compare(&host, &before);
        }
        true
    }

    /// Ends a proposal: kept as it is, or undone.
    pub fn settle_proposal(&self, keep: bool) {
        let before = self.before_proposal.take();
        self.close_compare();
        if let (false, Some(before), Some(w)) = (keep, before, self.widget.borrow().as_ref()) {
            w.set_text(&before);
        }
    }

    /// Puts `text` at the cursor; false when the editor is not shown (or is read-only).
    pub fn insert(&self, text: &str) -> bool {
        match self.widget.borrow().as_ref() {
            Some(w) if self.editable() => {
                w.insert_text(text);
                true
            }
            _ => false,
        }
    }

    /// Whether the person may change the text: a text small enough to edit, and not a viewer.
    pub fn editable(&self) -> bool {
        matches!(self.doc.get_untracked(), Doc::Text { read_only: false }) && !self.viewer.get_untracked()
    }

    /// Makes the editor follow [`EditorTab::editable`] (after a change of role).
    pub fn apply_lock(&self) {
        if let Some(w) = self.widget.borrow().as_ref() {
            w.set_read_only(!self.editable());
        }
    }

    fn on<R>(&self, req: R) -> OnServer<R> {
        OnServer { server: self.server.clone(), req }
    }

    /// Reads the file; with `anyway`, one larger than the editor's limit too (read-only).
    pub fn load(self: &Rc<Self>, anyway: bool) {
        self.doc.set(Doc::Loading);
        let tab = self.clone();
        spawn_local(async move {
            let doc = match tab.read(anyway).await {
                Ok(doc) => doc,
                Err(e) => Doc::Failed(e.message),
            };
            if matches!(doc, Doc::Text { .. }) {
                tab.watch();
            }
            tab.doc.set(doc);
        });
    }

    async fn read(&self, anyway: bool) -> Result<Doc, ErrorBody> {
        let info = self.conn.call(self.on(FsStat { path: self.path.clone(), hash: false })).await?;
        if info.kind != FileKind::File {
            return Err(ErrorBody::new(ErrorCode::IsADirectory, format!("{} is not a regular file", self.path)));
        }
        let max = self.max_bytes();
        let read_only = info.size > max;
        if read_only && (!anyway || info.size > max.saturating_mul(8)) {
            return Ok(Doc::TooLarge { size: info.size });
        }
        let data = transfer::read_all(&self.conn, &self.server, &self.path, max.saturating_mul(8)).await?;
        if transfer::looks_binary(&data) {
            return Ok(Doc::Binary { size: data.len() as u64 });
        }
        *self.sha256.borrow_mut() = Some(transfer::sha256_hex(&data));
        *self.text.borrow_mut() = String::from_utf8(data).ok();
        Ok(Doc::Text { read_only })
    }

    /// Puts the loaded text into a Monaco editor in `parent` (loading Monaco the first time).
    pub fn mount(self: &Rc<Self>, parent: web_sys::HtmlElement, compare_host: web_sys::HtmlElement, look: Look) {
        let Doc::Text { read_only } = self.doc.get_untracked() else { return };
        let read_only = read_only || self.viewer.get_untracked();
        if self.mounting.replace(true) {
            return;
        }
        *self.compare_host.borrow_mut() = Some(compare_host);
        let tab = self.clone();
        spawn_local(async move {
            if let Err(e) = monaco::load().await {
                tab.mounting.set(false);
                tab.doc.set(Doc::Failed(format!("The editor could not be loaded: {e}")));
                return;
            }
            let text = tab.text.borrow_mut().take().unwrap_or_default();
            let weak = Rc::downgrade(&tab);
            let cb = Callbacks {
                dirty: Box::new({
                    let dirty = tab.dirty;
                    move |d| dirty.set(d)
                }),
                save: Box::new(with(&weak, |t| t.save())),
            };
            let opts =
                Options { key: tab.key, path: &tab.path, theme: look.theme(), font_size: look.font_size, read_only };
            let widget = Monaco::new(&parent, &text, opts, cb);
            tab.language.set(widget.language());
            if let Some(line) = tab.pending_line.take() {
                widget.go_to(line, 1);
            } else if !crate::browser::typing_somewhere() {
                // Opened, then the person went on to name a folder or type in a terminal while
                // Monaco loaded: the keys stay where they are going.
                widget.focus();
            }
            *tab.widget.borrow_mut() = Some(widget);
        });
    }

    /// Shows a line (1-based), now or once the file is in the editor.
    pub fn go_to(&self, line: u32) {
        match self.widget.borrow().as_ref() {
            Some(w) => w.go_to(line, 1),
            None => self.pending_line.set(Some(line)),
        }
    }

    pub fn focus(&self) {
        if let Some(w) = self.widget.borrow().as_ref() {
            w.focus();
        }
    }

    pub fn find(&self) {
        if let Some(w) = self.widget.borrow().as_ref() {
            w.find();
        }
    }

    pub fn set_look(&self, look: Look) {
        monaco::set_theme(look.theme());
        if let Some(w) = self.widget.borrow().as_ref() {
            w.set_font_size(look.font_size);
        }
    }

    /// Saves the content if it is based on the version now on disk; otherwise asks.
    pub fn save(self: &Rc<Self>) {
        // A file deleted on the server is written again (and refused if one came back since).
        let expected = if self.gone.get_untracked() { None } else { self.sha256.borrow().clone() };
        self.write(expected);
    }

    /// The person chose to replace the version on disk with theirs.
    pub fn overwrite(self: &Rc<Self>) {
        let tab = self.clone();
        spawn_local(async move {
            match tab.conn.call(tab.on(FsStat { path: tab.path.clone(), hash: true })).await {
                Ok(info) => tab.write(info.sha256),
                // Deleted meanwhile: write it again.
                Err(e) if e.code == ErrorCode::NotFound => tab.write(None),
                Err(e) => tab.notice.set(Some(Notice::Error(e.message))),
            }
        });
    }

    /// Writes the content; `expected` is the hash the file must have now (`None`: it must not
    /// exist).
    fn write(self: &Rc<Self>, expected: Option<String>) {
        let Some((text, version)) = self.widget.borrow().as_ref().map(|w| (w.value(), w.version())) else { return };
        if !self.editable() {
            return;
        }
        if self.notice.get_untracked() == Some(Notice::Saving) {
            return;
        }
        self.notice.set(Some(Notice::Saving));
        let tab = self.clone();
        spawn_local(async move {
            let rules = WriteRules { create_new: expected.is_none(), expected_sha256: expected };
            match transfer::write_all(&tab.conn, &tab.server, &tab.path, text.as_bytes(), rules).await {
                Ok(written) => {
                    *tab.sha256.borrow_mut() = Some(written.sha256);
                    tab.gone.set(false);
                    if let Some(w) = tab.widget.borrow().as_ref() {
                        w.mark_saved(version);
                    }
                    tab.notice.set(None);
                    if let Some(crate::preview::Saves(n)) = tab.saves {
                        n.try_update(|n| *n += 1);
                    }
                    if tab.comparing.try_get_untracked().flatten() == Some(Compare::Disk) {
                        tab.close_compare();
                    }
                }
                Err(e) if matches!(e.code, ErrorCode::Conflict | ErrorCode::AlreadyExists) => {
                    tab.notice.set(Some(Notice::Conflict));
                }
                Err(e) => tab.notice.set(Some(Notice::Error(e.message))),
            }
        });
    }

    /// Reads the version on disk as text.
    async fn disk_text(&self) -> Result<(String, String), String> {
        let max = self.max_bytes().saturating_mul(8);
        let data = transfer::read_all(&self.conn, &self.server, &self.path, max).await.map_err(|e| e.message)?;
        let sha = transfer::sha256_hex(&data);
        let text = String::from_utf8(data).map_err(|_| format!("{} is no longer text", self.path))?;
        Ok((text, sha))
    }

    /// Takes the version on disk (the person's changes stay in the undo history).
    pub fn reload(self: &Rc<Self>) {
        let tab = self.clone();
        spawn_local(async move {
            match tab.disk_text().await {
                Ok((text, sha)) => {
                    if let Some(w) = tab.widget.borrow().as_ref() {
                        w.replace(&text);
                    }
                    *tab.sha256.borrow_mut() = Some(sha);
                    tab.notice.set(None);
                    tab.close_compare();
                }
                Err(e) => tab.notice.set(Some(Notice::Error(e))),
            }
        });
    }

    /// Shows the content beside the version on disk, or at git HEAD.
    pub fn compare(self: &Rc<Self>, with: Compare) {
        let tab = self.clone();
        spawn_local(async move {
            let other = match with {
                Compare::Disk => tab.disk_text().await.map(|(text, _)| text),
                Compare::Proposal => {
                    tab.before_proposal.borrow().clone().ok_or_else(|| "nothing is proposed".to_owned())
                }
                Compare::Head => match tab.conn.call(tab.on(GitHead { path: tab.path.clone() })).await {
                    Ok(head) => String::from_utf8(head.data.0).map_err(|_| "HEAD's version is not text".to_owned()),
                    Err(e) => Err(e.message),
                },
            };
            match other {
                Ok(text) => {
                    let host = tab.compare_host.borrow().clone();
                    if let (Some(w), Some(host)) = (tab.widget.borrow().as_ref(), host) {
                        tab.comparing.set(Some(with));
                        w.compare(&host, &text);
                    }
                }
                Err(e) => tab.notice.set(Some(Notice::Error(e))),
            }
        });
    }

    pub fn close_compare(&self) {
        if let Some(w) = self.widget.borrow().as_ref() {
            w.close_compare();
        }
        self.comparing.set(None);
    }

    /// Offers the file as a download.
    pub fn download(self: &Rc<Self>) {
        let tab = self.clone();
        spawn_local(async move {
            let max = tab.max_bytes().max(1 << 30);
            let result = match transfer::read_all(&tab.conn, &tab.server, &tab.path, max).await {
                Ok(data) => transfer::download(tab.name(), &data),
                Err(e) => Err(e.message),
            };
            if let Err(e) = result {
                tab.notice.set(Some(Notice::Error(e)));
            }
        });
    }

    pub fn dismiss(&self) {
        self.notice.set(None);
    }

    /// Watches the file's folder (again, after a reconnect), so a change made on the server
    /// reaches the editor: a clean editor takes it, a dirty one says so.
    pub fn watch(self: &Rc<Self>) {
        // (Also called once the file is read: the page may have been left meanwhile.)
        let text = matches!(self.doc.try_get_untracked(), Some(Doc::Text { .. } | Doc::Loading));
        if self.watch.get().is_some() || !text {
            return;
        }
        let tab = self.clone();
        spawn_local(async move {
            let folder = crate::files::parent_of(&tab.path).to_owned();
            let req = client::FsWatch { server: tab.server.clone(), path: folder };
            if let Ok(w) = tab.conn.call(req).await {
                tab.watch.set(Some(w.stream));
                let sink: Rc<dyn StreamSink> = tab.clone();
                tab.conn.register(w.stream, Rc::downgrade(&sink));
            }
        });
    }

    /// The file may have changed on disk: compare with what the editor is based on.
    fn changed_on_disk(self: &Rc<Self>) {
        let tab = self.clone();
        spawn_local(async move {
            // A save under way changes the file itself; its answer says what is on disk.
            if tab.notice.try_get_untracked().flatten() == Some(Notice::Saving) || tab.widget.borrow().is_none() {
                return;
            }
            match tab.conn.call(tab.on(FsStat { path: tab.path.clone(), hash: false })).await {
                Err(e) if e.code == ErrorCode::NotFound => {
                    // Deleted or moved away: say so, whether or not there are changes here.
                    tab.mark_gone();
                    return;
                }
                Err(_) => return,
                Ok(_) if tab.gone.try_get_untracked().unwrap_or(false) => {
                    // Back again (a `git checkout`, an undo): compare as with any change.
                    let _ = tab.gone.try_set(false);
                    if tab.notice.try_get_untracked().flatten() == Some(Notice::Gone) {
                        let _ = tab.notice.try_set(None);
                    }
                }
                Ok(_) => {}
            }
            let Ok((text, sha)) = tab.disk_text().await else { return };
            if tab.sha256.borrow().as_deref() == Some(sha.as_str()) {
                return;
            }
            if tab.dirty.try_get_untracked().unwrap_or(false) {
                // Already deciding about a conflict: that question covers this change too.
                if tab.notice.try_get_untracked().flatten() != Some(Notice::Conflict) {
                    tab.notice.set(Some(Notice::Changed));
                }
            } else {
                if let Some(w) = tab.widget.borrow().as_ref() {
                    w.replace(&text);
                }
                *tab.sha256.borrow_mut() = Some(sha);
            }
        });
    }

    /// The file is no longer on the server: the tab says so, and Save writes it again.
    pub fn mark_gone(&self) {
        let _ = self.gone.try_set(true);
        let _ = self.notice.try_set(Some(Notice::Gone));
    }

    /// Drops the widget and the watch (the tab is closing).
    pub fn close(&self) {
        self.widget.borrow_mut().take();
        if let Some(stream) = self.watch.take() {
            self.conn.unregister(stream);
            let conn = self.conn.clone();
            spawn_local(async move {
                let _ = conn.call(client::FsUnwatch { stream }).await;
            });
        }
    }
}

impl StreamSink for EditorTab {
    fn frame(&self, _kind: FrameKind, _seq: u64, _payload: Uint8Array) {}

    fn event(&self, event: ClientEvent) {
        match event {
            ClientEvent::FsChanged(c) if c.rescan || c.names.iter().any(|n| n == self.name()) => {
                // The sink is held weakly by the connection; reach the tab's Rc through it.
                if let Some(tab) = self.me.upgrade() {
                    tab.changed_on_disk();
                }
            }
            ClientEvent::StreamClosed(_) => self.watch.set(None),
            _ => {}
        }
    }
}

/// A callback that reaches the tab while it exists.
fn with(weak: &Weak<EditorTab>, f: impl Fn(&Rc<EditorTab>) + 'static) -> impl FnMut() + 'static {
    let weak = weak.clone();
    move || {
        if let Some(t) = weak.upgrade() {
            f(&t);
        }
    }
}
