//! One terminal tab: an xterm.js widget bound to a terminal on a server.
//!
//! The tab outlives its stream. It opens the terminal (or attaches to one that was already
//! running, replaying its output), re-attaches after the last byte it shows whenever the
//! socket comes back, and keeps showing the output when the shell exits, offering a restart.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::Uint8Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::ErrorBody;
use porta_shared::bridge::{TermInfo, TermList, TermRename};
use porta_shared::client::{self, ClientEvent, OnServer, StreamOpened};
use porta_shared::frame::FrameKind;
use porta_shared::types::{ExitStatus, ServerId, StreamId, TermId, TermSize};

use super::flow::{Accept, Flow};
use super::keys::{self, Key, Mods};
use super::xterm::{Callbacks, Xterm};
use crate::conn::{Conn, StreamSink};

/// Most bytes typed while reconnecting that are kept to send once back (a paste's worth).
const MAX_UNSENT: usize = 64 * 1024;

/// What a tab shows besides its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Opening or attaching.
    Starting,
    Live,
    /// The server went offline; the stream resumes by itself when it returns.
    Offline,
    /// The shell exited.
    Exited(ExitStatus),
    /// The terminal is gone (its server restarted, or it was closed elsewhere).
    Ended(String),
}

/// Look and feel shared by every tab of the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub dark: bool,
    pub font_size: u32,
}

impl Look {
    pub fn theme(self) -> &'static str {
        if self.dark { "dark" } else { "light" }
    }
}

pub struct TermTab {
    /// Unique on this page (terminal ids change on restart).
    pub key: u32,
    server: ServerId,
    conn: Conn,
    pub title: RwSignal<String>,
    /// Whether the title was chosen by someone (else it follows the shell's name).
    named: Cell<bool>,
    /// A restart is under way: give the new terminal this tab's name.
    carry_title: Cell<bool>,
    pub status: RwSignal<Status>,
    /// The terminal's session is being recorded (the tab says so).
    pub recorded: RwSignal<bool>,
    /// A console in a container, opened there (see [`TermTab::in_container`]).
    container: RefCell<Option<porta_shared::docker::Console>>,
    /// The folder a new terminal starts in (see [`TermTab::run_in`]); its shell's home if none.
    cwd: RefCell<Option<String>>,
    term: Cell<Option<TermId>>,
    stream: Cell<Option<StreamId>>,
    flow: RefCell<Flow>,
    /// Output before this offset had been produced when the stream attached: it is replayed.
    replay_end: Cell<u64>,
    /// The socket (its `epoch`) the stream was attached on; input waits for the next one.
    attached_epoch: Cell<u64>,
    /// Keys typed while the socket was down, sent once the terminal is attached again.
    unsent: RefCell<Vec<u8>>,
    xterm: RefCell<Option<Xterm>>,
    page: Page,
}

/// Page state every tab takes part in.
#[derive(Clone, Copy)]
pub struct Page {
    /// Ctrl/Alt armed on the key row, for the next key in whichever tab.
    pub mods: RwSignal<Mods>,
    /// Whether the search bar is open (Ctrl+Shift+F in a terminal opens it).
    pub search_open: RwSignal<bool>,
    /// The user is a viewer here: terminals are watched, not typed into or resized.
    pub read_only: RwSignal<bool>,
}

/// Counts output bytes rendered by every terminal of the page, in `window.portaRenderedBytes`
/// (what `cargo xtask bench` reads to measure throughput as the browser sees it).
fn count_rendered(n: u64) {
    thread_local!(static TOTAL: Cell<f64> = const { Cell::new(0.0) });
    TOTAL.with(|t| {
        t.set(t.get() + n as f64);
        let _ = js_sys::Reflect::set(&js_sys::global(), &"portaRenderedBytes".into(), &t.get().into());
    });
}

impl TermTab {
    pub fn new(key: u32, server: ServerId, conn: Conn, existing: Option<&TermInfo>, page: Page) -> Rc<Self> {
        let (title, named) = match existing {
            Some(TermInfo { title: Some(t), .. }) => (t.clone(), true),
            Some(info) => (shell_name(&info.shell), false),
            None => ("shell".to_owned(), false),
        };
        let status = match existing.and_then(|i| i.exit) {
            Some(exit) => Status::Exited(exit),
            None => Status::Starting,
        };
        Rc::new(Self {
            key,
            server,
            conn,
            title: RwSignal::new(title),
            named: Cell::new(named),
            carry_title: Cell::new(false),
            status: RwSignal::new(status),
            recorded: RwSignal::new(false),
            container: RefCell::new(None),
            cwd: RefCell::new(None),
            term: Cell::new(existing.map(|i| i.term)),
            stream: Cell::new(None),
            flow: RefCell::new(Flow::default()),
            replay_end: Cell::new(0),
            attached_epoch: Cell::new(0),
            unsent: RefCell::new(Vec::new()),
            xterm: RefCell::new(None),
            page,
        })
    }

    pub fn term(&self) -> Option<TermId> {
        self.term.get()
    }

    /// Makes this new tab a console in a container: opened there instead of a shell on the
    /// server (before it is shown).
    pub fn in_container(&self, console: porta_shared::docker::Console) {
        self.title.set(console.container.clone());
        *self.container.borrow_mut() = Some(console);
    }

    /// Makes this new tab run something (before it is shown): named `title`, its shell started
    /// in `folder`, with `command` typed as its first line.
    pub fn run_in(&self, title: &str, folder: &str, command: Option<&str>) {
        self.title.set(title.to_owned());
        self.carry_title.set(true);
        *self.cwd.borrow_mut() = Some(folder.to_owned());
        if let Some(command) = command {
            self.unsent.borrow_mut().extend_from_slice(format!("{command}\r").as_bytes());
        }
    }

    /// Puts the widget into `parent` and starts the terminal.
    pub fn mount(self: &Rc<Self>, parent: &web_sys::HtmlElement, look: Look) {
        let weak = Rc::downgrade(self);
        let cb = Callbacks {
            data: Box::new(with(&weak, |t, data: String| t.typed(&data))),
            resize: Box::new({
                let weak = weak.clone();
                move |cols, rows| {
                    if let Some(t) = weak.upgrade() {
                        t.resized(cols, rows);
                    }
                }
            }),
            rendered: Box::new({
                let weak = weak.clone();
                move || {
                    if let Some(t) = weak.upgrade() {
                        t.rendered();
                    }
                }
            }),
            shortcut: Box::new(with(&weak, |t, name: String| t.shortcut(&name))),
        };
        *self.xterm.borrow_mut() = Some(Xterm::new(parent, look.theme(), look.font_size, cb));
        self.connect();
    }

    /// Opens or attaches the terminal on the current socket (again after a reconnect). A tab
    /// that was never shown waits until it is ([`TermTab::mount`]).
    pub fn connect(self: &Rc<Self>) {
        let ended = matches!(self.status.get_untracked(), Status::Ended(_));
        if ended || !self.conn.is_open() || self.xterm.borrow().is_none() {
            return;
        }
        let tab = self.clone();
        let exited = matches!(self.status.get_untracked(), Status::Exited(_));
        spawn_local(async move {
            let attaching = tab.term.get().is_some();
            let opened = match tab.term.get() {
                Some(term) => {
                    let after = tab.flow.borrow().received();
                    // An exited terminal has nothing new to say once its output is shown.
                    if exited && after > 0 {
                        return;
                    }
                    tab.conn.call(client::TermAttach { server: tab.server.clone(), term, after }).await
                }
                None => {
                    let size = tab.size();
                    let open = client::TermOpen {
                        server: tab.server.clone(),
                        shell: None,
                        args: Vec::new(),
                        cwd: tab.cwd.borrow().clone(),
                        size,
                        env: Default::default(),
                        container: tab.container.borrow().clone(),
                    };
                    tab.conn.call(open).await
                }
            };
            // (The page may have been left meanwhile: its signals are gone.)
            if tab.status.is_disposed() {
                return;
            }
            match opened {
                Ok(o) => tab.attached(o, attaching),
                Err(e) => tab.failed(&e),
            }
        });
    }

    /// `existing`: the terminal was running before (its output up to now is replayed); a
    /// terminal just opened has nothing to replay, and what it printed first is answered.
    fn attached(self: &Rc<Self>, o: StreamOpened, existing: bool) {
        self.term.set(Some(o.info.term));
        self.recorded.set(o.recorded);
        self.flow.borrow_mut().attached();
        self.replay_end.set(if existing { o.info.end } else { 0 });
        if self.carry_title.take() {
            self.rename(self.title.get_untracked());
        } else if !self.named.get() {
            // The bridge's name for it (a console is named for its container), or its shell's.
            self.title.set(o.info.title.clone().unwrap_or_else(|| shell_name(&o.info.shell)));
        }
        if let Some(exit) = o.info.exit {
            // Its output is replayed; the exit event follows on the stream.
            self.status.set(Status::Exited(exit));
        } else {
            self.status.set(Status::Live);
        }
        self.stream.set(Some(o.stream));
        self.attached_epoch.set(self.conn.epoch().get_untracked());
        let weak: Weak<dyn StreamSink> = Rc::downgrade(&(self.clone() as Rc<dyn StreamSink>));
        self.conn.register(o.stream, weak);
        let unsent = std::mem::take(&mut *self.unsent.borrow_mut());
        if !unsent.is_empty() && o.info.exit.is_none() {
            self.conn.send_frame(FrameKind::TermInput, o.stream, 0, &unsent);
        }
        // The terminal may have another size than this pane (opened elsewhere, or before a
        // reload at another window size).
        let size = self.size();
        if o.info.size != size && o.info.exit.is_none() {
            self.resized(size.cols, size.rows);
        }
    }

    fn failed(&self, e: &ErrorBody) {
        use porta_shared::ErrorCode as C;
        match e.code {
            // The socket dropped: the reconnect will try again.
            C::Unavailable => {}
            C::ServerOffline => self.status.set(Status::Offline),
            _ => {
                // Keys kept for a terminal that will not come back must not reach another.
                self.unsent.borrow_mut().clear();
                self.status.set(Status::Ended(e.message.clone()));
            }
        }
    }

    fn size(&self) -> TermSize {
        self.xterm.borrow().as_ref().map_or(TermSize::default(), |x| {
            let (cols, rows) = x.size();
            TermSize { cols, rows }
        })
    }

    fn typed(&self, data: &str) {
        let mods = self.page.mods.get_untracked();
        let bytes = keys::typed(data, mods);
        if mods.any() {
            self.page.mods.set(Mods::default());
        }
        self.send_input(&bytes);
    }

    /// A key from the phone key row.
    pub fn key(&self, key: Key) {
        let mods = self.page.mods.get_untracked();
        let app_cursor = self.xterm.borrow().as_ref().is_some_and(Xterm::app_cursor_keys);
        self.send_input(&keys::key_bytes(key, mods, app_cursor));
        if mods.any() {
            self.page.mods.set(Mods::default());
        }
        self.focus();
    }

    fn send_input(&self, bytes: &[u8]) {
        if self.page.read_only.get_untracked() {
            return;
        }
        let live = self.conn.is_open() && self.attached_epoch.get() == self.conn.epoch().get_untracked();
        match self.stream.get() {
            Some(stream) if live => self.conn.send_frame(FrameKind::TermInput, stream, 0, bytes),
            // Reconnecting: keep what is typed (up to a limit) for when the terminal is back.
            _ if matches!(self.status.get_untracked(), Status::Exited(_) | Status::Ended(_)) => {}
            _ => {
                let mut unsent = self.unsent.borrow_mut();
                if unsent.len() + bytes.len() <= MAX_UNSENT {
                    unsent.extend_from_slice(bytes);
                }
            }
        }
    }

    fn resized(&self, cols: u16, rows: u16) {
        // A viewer's window does not change the size of someone else's terminal.
        if self.page.read_only.get_untracked() {
            return;
        }
        let Some(stream) = self.stream.get() else { return };
        let conn = self.conn.clone();
        spawn_local(async move {
            let _ = conn.call(client::TermResize { stream, size: TermSize { cols, rows } }).await;
        });
    }

    fn rendered(&self) {
        let mut flow = self.flow.borrow_mut();
        let before = flow.rendered_to();
        let ack = flow.rendered();
        count_rendered(flow.rendered_to().saturating_sub(before));
        drop(flow);
        if let (Some(offset), Some(stream)) = (ack, self.stream.get()) {
            self.conn.send_frame(FrameKind::Ack, stream, offset, &[]);
        }
    }

    fn shortcut(self: &Rc<Self>, name: &str) {
        match name {
            "copy" => self.copy(),
            "paste" => self.paste(),
            "search" => self.page.search_open.set(true),
            _ => {}
        }
    }

    pub fn copy(&self) {
        let text = self.xterm.borrow().as_ref().map(Xterm::selection).unwrap_or_default();
        if !text.is_empty() {
            spawn_local(async move {
                super::xterm::copy(&text).await;
            });
        }
    }

    pub fn paste(self: &Rc<Self>) {
        let tab = self.clone();
        spawn_local(async move {
            if let Some(text) = super::xterm::clipboard().await {
                if let Some(x) = tab.xterm.borrow().as_ref() {
                    x.paste(&text);
                }
            }
        });
    }

    /// Pastes `text` at the prompt (never pressing Enter: the person runs it).
    pub fn paste_text(&self, text: &str) {
        if let Some(x) = self.xterm.borrow().as_ref() {
            x.paste(text);
            x.focus();
        }
    }

    /// The terminal's last `count` lines, when it is shown.
    pub fn last_lines(&self, count: u32) -> Option<String> {
        self.xterm.borrow().as_ref().map(|x| x.last_lines(count))
    }

    pub fn focus(&self) {
        if let Some(x) = self.xterm.borrow().as_ref() {
            x.focus();
        }
    }

    pub fn fit(&self) {
        if let Some(x) = self.xterm.borrow().as_ref() {
            x.fit();
        }
    }

    pub fn set_look(&self, look: Look) {
        if let Some(x) = self.xterm.borrow().as_ref() {
            x.set_theme(look.theme());
            x.set_font_size(look.font_size);
        }
    }

    /// Selects the next (or previous) match; false when there is none.
    pub async fn find(&self, query: &str, backwards: bool) -> bool {
        let Some(found) = self.xterm.borrow().as_ref().map(|x| x.find(query, backwards)) else { return false };
        wasm_bindgen_futures::JsFuture::from(found).await.ok().and_then(|v| v.as_bool()).unwrap_or(false)
    }

    pub fn clear_search(&self) {
        if let Some(x) = self.xterm.borrow().as_ref() {
            x.clear_search();
        }
    }

    /// Names the terminal on its server, so every device shows the same title.
    pub fn rename(&self, title: String) {
        let title = title.trim().to_owned();
        let Some(term) = self.term.get() else { return };
        self.named.set(!title.is_empty());
        if !title.is_empty() {
            self.title.set(title.clone());
        }
        let (conn, server) = (self.conn.clone(), self.server.clone());
        spawn_local(async move {
            let _ = conn.call(OnServer { server, req: TermRename { term, title } }).await;
        });
    }

    /// Replaces an exited or ended terminal with a new shell in the same tab.
    pub fn restart(self: &Rc<Self>) {
        self.forget_terminal();
        self.unsent.borrow_mut().clear();
        self.flow.borrow_mut().restart();
        if let Some(x) = self.xterm.borrow().as_ref() {
            x.reset();
        }
        self.status.set(Status::Starting);
        // The new terminal takes the tab's name once it exists (see `attached`).
        self.carry_title.set(self.named.get());
        self.connect();
    }

    /// Lets go of the widget; the terminal keeps running on its server (the page is leaving).
    pub fn close_widget(&self) {
        if let Some(s) = self.stream.take() {
            self.conn.unregister(s);
        }
        self.xterm.borrow_mut().take();
    }

    /// Ends the terminal on its server (the tab is going away).
    pub fn close(&self) {
        self.forget_terminal();
        self.xterm.borrow_mut().take();
    }

    /// Closes the terminal on the server and detaches from it.
    fn forget_terminal(&self) {
        let stream = self.stream.take();
        let term = self.term.take();
        if let Some(s) = stream {
            self.conn.unregister(s);
        }
        let req = match (stream, term) {
            (Some(stream), _) => client::TermClose::Stream { stream },
            (None, Some(term)) => client::TermClose::Term { server: self.server.clone(), term },
            (None, None) => return,
        };
        let conn = self.conn.clone();
        spawn_local(async move {
            let _ = conn.call(req).await;
        });
    }

    fn write_output(&self, seq: u64, payload: Uint8Array) {
        let len = payload.length() as usize;
        let accept = self.flow.borrow_mut().accept(seq, len);
        let Accept::Write { skip, lost } = accept else { return };
        let xterm = self.xterm.borrow();
        let Some(x) = xterm.as_ref() else { return };
        if lost > 0 {
            x.notice(&format!("{} of output were dropped here", bytes(lost)), false);
        }
        let data = if skip > 0 { payload.subarray(skip as u32, len as u32) } else { payload };
        // The bytes that are replay: up to where the output stood when the stream attached.
        let start = seq + skip as u64;
        let replayed = self.replay_end.get().saturating_sub(start).min(data.length().into()) as u32;
        x.write(&data, replayed);
    }

    fn write_gap(&self, to: u64) {
        let shown_before = self.flow.borrow().received() > 0;
        let lost = self.flow.borrow_mut().gap(to);
        let xterm = self.xterm.borrow();
        let Some(x) = xterm.as_ref() else { return };
        // A fresh page replaying a long-running terminal starts where the kept output does.
        let notice = if shown_before {
            format!("{} of output were dropped here", bytes(lost))
        } else {
            "earlier output is no longer kept".to_owned()
        };
        if lost > 0 {
            // The notice stands in for the lost bytes, so acknowledgements stay in order.
            x.notice(&notice, true);
        }
    }
}

impl StreamSink for TermTab {
    fn frame(&self, kind: FrameKind, seq: u64, payload: Uint8Array) {
        match kind {
            FrameKind::TermOutput => self.write_output(seq, payload),
            FrameKind::Gap => self.write_gap(seq),
            _ => {}
        }
    }

    fn event(&self, event: ClientEvent) {
        match event {
            ClientEvent::TermExited(e) => {
                if let Some(s) = self.stream.take() {
                    self.conn.unregister(s);
                }
                self.status.set(Status::Exited(e.exit));
            }
            ClientEvent::StreamInterrupted(_) => self.status.set(Status::Offline),
            ClientEvent::StreamResumed(_) => self.status.set(Status::Live),
            ClientEvent::StreamClosed(e) => {
                if let Some(s) = self.stream.take() {
                    self.conn.unregister(s);
                }
                self.status.set(Status::Ended(e.reason.message));
            }
            ClientEvent::ExecExited(_)
            | ClientEvent::FsChanged(_)
            | ClientEvent::ChatDelta(_)
            | ClientEvent::ChatChanged(_)
            | ClientEvent::MetricsSample(_)
            | ClientEvent::AccessChanged(_) => {}
        }
    }
}

/// The terminals running on a server, oldest first.
pub async fn list(conn: &Conn, server: &str) -> Result<Vec<TermInfo>, ErrorBody> {
    conn.call(OnServer { server: server.to_owned(), req: TermList {} }).await.map(|l| l.terminals)
}

/// `bash` for `/bin/bash`.
fn shell_name(shell: &str) -> String {
    shell.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("shell").to_owned()
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// A callback that reaches the tab while it exists.
fn with<A: 'static>(weak: &Weak<TermTab>, f: impl Fn(&Rc<TermTab>, A) + 'static) -> impl FnMut(A) + 'static {
    let weak = weak.clone();
    move |a| {
        if let Some(t) = weak.upgrade() {
            f(&t, a);
        }
    }
}
