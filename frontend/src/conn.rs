//! The stream socket `/api/ws`: one per page, shared by every terminal on it.
//!
//! Requests are JSON envelopes answered by id; terminal output arrives as binary frames on
//! stream ids, each routed to the [`StreamSink`] registered for it, straight from the
//! socket's `ArrayBuffer` (payloads never pass through wasm memory). Opening the socket takes
//! a single-use ticket, so the access token never appears in a URL.
//!
//! A lost socket is reopened by itself with backoff; [`Conn::link`] says where it stands and
//! [`Conn::epoch`] counts successful opens, so each terminal re-attaches after the output it
//! already shows. Streams do not survive the socket: their sinks are dropped when it closes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures_channel::oneshot;
use js_sys::{ArrayBuffer, Uint8Array};
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::{ClientEvent, ClientRequest};
use porta_shared::envelope::Request;
use porta_shared::frame::{Frame, FrameKind, HEADER_LEN};
use porta_shared::types::StreamId;
use porta_shared::{Envelope, ErrorBody, ErrorCode, Incoming, Reply};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::api::{self, Failure, Session};
use crate::auth;
use crate::browser::{sleep, ws_origin};

/// Where the socket stands, for the page to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Connecting,
    Open,
    /// Lost; attempts continue with backoff. `reason` says what failed last.
    Reconnecting {
        reason: String,
    },
}

/// Receives one stream's frames and events.
pub trait StreamSink {
    /// An output or gap frame; `payload` is a view into the received message.
    fn frame(&self, kind: FrameKind, seq: u64, payload: Uint8Array);
    fn event(&self, event: ClientEvent);
}

type Pending = oneshot::Sender<Result<Reply, ErrorBody>>;

struct Socket {
    ws: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

struct Inner {
    session: RwSignal<Option<Session>>,
    link: RwSignal<Link>,
    epoch: RwSignal<u64>,
    socket: RefCell<Option<Socket>>,
    next_id: Cell<u64>,
    pending: RefCell<HashMap<String, Pending>>,
    sinks: RefCell<HashMap<StreamId, Weak<dyn StreamSink>>>,
    /// Who follows each watched conversation (`chat.watch`).
    chats: RefCell<HashMap<String, Weak<dyn StreamSink>>>,
    /// Who follows each watched server's telemetry (`metrics.watch`).
    metrics: RefCell<HashMap<String, Weak<dyn StreamSink>>>,
    /// Who hears `access.changed` for each server (after `access.watch`).
    access: RefCell<HashMap<String, Weak<dyn StreamSink>>>,
    /// The page left: stop reconnecting.
    closed: Cell<bool>,
}

/// The page's stream socket (cheap to clone).
#[derive(Clone)]
pub struct Conn(Rc<Inner>);

fn lost() -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, "the connection to Porta was lost")
}

impl Conn {
    /// Creates the connection and starts opening it.
    pub fn open(session: RwSignal<Option<Session>>) -> Self {
        let conn = Self(Rc::new(Inner {
            session,
            link: RwSignal::new(Link::Connecting),
            epoch: RwSignal::new(0),
            socket: RefCell::new(None),
            next_id: Cell::new(1),
            pending: RefCell::new(HashMap::new()),
            sinks: RefCell::new(HashMap::new()),
            chats: RefCell::new(HashMap::new()),
            metrics: RefCell::new(HashMap::new()),
            access: RefCell::new(HashMap::new()),
            closed: Cell::new(false),
        }));
        conn.connect_soon(0);
        conn
    }

    pub fn link(&self) -> RwSignal<Link> {
        self.0.link
    }

    /// Counts successful opens; terminals re-attach when it changes.
    pub fn epoch(&self) -> RwSignal<u64> {
        self.0.epoch
    }

    /// Closes the socket for good (the page is going away).
    pub fn close(&self) {
        self.0.closed.set(true);
        self.0.socket.borrow_mut().take();
        self.fail_all();
    }

    fn connect_soon(&self, delay_ms: u32) {
        let conn = self.clone();
        spawn_local(async move {
            if delay_ms > 0 {
                sleep(delay_ms).await;
            }
            conn.connect().await;
        });
    }

    /// Opens the socket, retrying with backoff until it opens, the user is signed out or the
    /// page closes the connection.
    async fn connect(&self) {
        let mut attempt = 0u32;
        while !self.0.closed.get() {
            match self.try_open().await {
                Ok(()) => return,
                Err(Failure::SignedOut) => {
                    self.0.session.set(None);
                    return;
                }
                Err(Failure::Other(reason)) => {
                    self.0.link.set(Link::Reconnecting { reason });
                    // 0.5 s doubling to 10 s, with jitter so a restarted backend is not hit by
                    // every page at once.
                    let base = (500u32 << attempt.min(5)).min(10_000);
                    let jitter = (js_sys::Math::random() * f64::from(base) * 0.3) as u32;
                    sleep(base + jitter).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn try_open(&self) -> Result<(), Failure> {
        let token = auth::token(self.0.session).await.ok_or(Failure::SignedOut)?;
        let ticket = api::ws_ticket(&token).await?;
        let url = format!("{}/api/ws?ticket={ticket}", ws_origin());
        let ws = WebSocket::new(&url).map_err(|_| Failure::Other("cannot open a WebSocket".into()))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (opened_tx, opened_rx) = oneshot::channel::<bool>();
        let opened_tx = Rc::new(RefCell::new(Some(opened_tx)));
        let on_open = {
            let tx = opened_tx.clone();
            Closure::once(move || {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(true);
                }
            })
        };
        let weak = Rc::downgrade(&self.0);
        let on_message = Closure::wrap(Box::new(move |ev: MessageEvent| {
            if let Some(inner) = weak.upgrade() {
                Conn(inner).on_message(&ev);
            }
        }) as Box<dyn FnMut(MessageEvent)>);
        let weak = Rc::downgrade(&self.0);
        let on_close = Closure::wrap(Box::new(move |ev: CloseEvent| {
            if let Some(tx) = opened_tx.borrow_mut().take() {
                let _ = tx.send(false);
            } else if let Some(inner) = weak.upgrade() {
                Conn(inner).on_close(&ev);
            }
        }) as Box<dyn FnMut(CloseEvent)>);
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let socket = Socket { ws, _on_message: on_message, _on_close: on_close };
        let opened = opened_rx.await.unwrap_or(false);
        socket.ws.set_onopen(None);
        drop(on_open);
        if !opened || self.0.closed.get() {
            return Err(Failure::Other("cannot reach Porta".into()));
        }
        *self.0.socket.borrow_mut() = Some(socket);
        self.0.link.set(Link::Open);
        self.0.epoch.update(|e| *e += 1);
        Ok(())
    }

    fn on_close(&self, ev: &CloseEvent) {
        self.0.socket.borrow_mut().take();
        self.fail_all();
        if self.0.closed.get() {
            return;
        }
        let reason = match ev.reason() {
            r if r.is_empty() => "the connection to Porta was lost".to_owned(),
            r => r,
        };
        self.0.link.set(Link::Reconnecting { reason });
        self.connect_soon(300);
    }

    /// Fails every waiting request and forgets every stream: neither outlives the socket.
    fn fail_all(&self) {
        let pending: Vec<_> = self.0.pending.borrow_mut().drain().collect();
        for (_, tx) in pending {
            let _ = tx.send(Err(lost()));
        }
        self.0.sinks.borrow_mut().clear();
    }

    fn on_message(&self, ev: &MessageEvent) {
        let data = ev.data();
        if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
            self.on_frame(buf);
        } else if let Some(text) = data.as_string() {
            self.on_text(&text);
        }
    }

    fn on_frame(&self, buf: &ArrayBuffer) {
        let all = Uint8Array::new(buf);
        if all.length() < HEADER_LEN as u32 {
            return;
        }
        let mut header = [0u8; HEADER_LEN];
        all.subarray(0, HEADER_LEN as u32).copy_to(&mut header);
        let Ok(frame) = Frame::decode(&header) else { return };
        let sink = self.0.sinks.borrow().get(&frame.stream).and_then(Weak::upgrade);
        if let Some(sink) = sink {
            sink.frame(frame.kind, frame.seq, all.subarray(HEADER_LEN as u32, all.length()));
        }
    }

    fn on_text(&self, text: &str) {
        match Incoming::<ClientEvent>::decode(text) {
            Ok(Incoming::Reply(reply)) => {
                let waiting = reply.id.as_ref().and_then(|id| self.0.pending.borrow_mut().remove(id.as_str()));
                match waiting {
                    Some(tx) => {
                        let _ = tx.send(Ok(reply));
                    }
                    None => {
                        if let Err(e) = reply.result {
                            web_sys::console::warn_1(&format!("Porta refused a message: {}", e.message).into());
                        }
                    }
                }
            }
            Ok(Incoming::Message(env)) => {
                let sink = match event_target(&env.msg) {
                    Target::Stream(stream) => self.0.sinks.borrow().get(&stream).and_then(Weak::upgrade),
                    Target::Chat(conversation) => self.0.chats.borrow().get(conversation).and_then(Weak::upgrade),
                    Target::Metrics(server) => self.0.metrics.borrow().get(server).and_then(Weak::upgrade),
                    Target::Access(server) => self.0.access.borrow().get(server).and_then(Weak::upgrade),
                };
                if let Some(sink) = sink {
                    sink.event(env.msg);
                }
            }
            Err(e) => web_sys::console::warn_1(&format!("unreadable message from Porta: {e}").into()),
        }
    }

    /// Sends a request and waits for its reply. The reply is delivered in a microtask, before
    /// the socket's next message, so a sink registered on it sees the stream's first frame.
    pub async fn call<R>(&self, req: R) -> Result<R::Response, ErrorBody>
    where
        R: Request + Into<ClientRequest>,
    {
        // Only the answer's reading depends on `R`: one copy of the sending and waiting for
        // every kind of request, not one each.
        self.call_raw(req.into()).await?.into_response::<R>()
    }

    async fn call_raw(&self, req: ClientRequest) -> Result<Reply, ErrorBody> {
        let id = self.0.next_id.get();
        self.0.next_id.set(id + 1);
        let id = id.to_string();
        let text = Envelope::<ClientRequest>::request(id.clone(), req).encode();
        let (tx, rx) = oneshot::channel();
        {
            let socket = self.0.socket.borrow();
            let ws = socket.as_ref().ok_or_else(lost)?;
            ws.ws.send_with_str(&text).map_err(|_| lost())?;
        }
        self.0.pending.borrow_mut().insert(id, tx);
        rx.await.map_err(|_| lost())?
    }

    /// Sends a binary frame; dropped when the socket is down (callers re-sync on reconnect).
    pub fn send_frame(&self, kind: FrameKind, stream: StreamId, seq: u64, payload: &[u8]) {
        if let Some(s) = self.0.socket.borrow().as_ref() {
            let _ = s.ws.send_with_u8_array(&Frame::new(kind, stream, seq, payload).encode());
        }
    }

    pub fn register(&self, stream: StreamId, sink: Weak<dyn StreamSink>) {
        self.0.sinks.borrow_mut().insert(stream, sink);
    }

    pub fn unregister(&self, stream: StreamId) {
        self.0.sinks.borrow_mut().remove(&stream);
    }

    /// Routes a conversation's `chat.*` events to `sink` (after `chat.watch`).
    pub fn register_chat(&self, conversation: &str, sink: Weak<dyn StreamSink>) {
        self.0.chats.borrow_mut().insert(conversation.to_owned(), sink);
    }

    pub fn unregister_chat(&self, conversation: &str) {
        self.0.chats.borrow_mut().remove(conversation);
    }

    /// Routes a server's `metrics.sample` events to `sink` (after `metrics.watch`).
    pub fn register_metrics(&self, server: &str, sink: Weak<dyn StreamSink>) {
        self.0.metrics.borrow_mut().insert(server.to_owned(), sink);
    }

    pub fn unregister_metrics(&self, server: &str) {
        self.0.metrics.borrow_mut().remove(server);
    }

    /// Routes a server's `access.changed` events to `sink` (after `access.watch`).
    pub fn register_access(&self, server: &str, sink: Weak<dyn StreamSink>) {
        self.0.access.borrow_mut().insert(server.to_owned(), sink);
    }

    pub fn unregister_access(&self, server: &str) {
        self.0.access.borrow_mut().remove(server);
    }

    pub fn is_open(&self) -> bool {
        self.0.socket.borrow().is_some()
    }
}

/// What an event is about.
enum Target<'a> {
    Stream(StreamId),
    Chat(&'a str),
    Metrics(&'a str),
    Access(&'a str),
}

fn event_target(ev: &ClientEvent) -> Target<'_> {
    match ev {
        ClientEvent::TermExited(e) => Target::Stream(e.stream),
        ClientEvent::ExecExited(e) => Target::Stream(e.stream),
        ClientEvent::FsChanged(e) => Target::Stream(e.stream),
        ClientEvent::StreamInterrupted(e) => Target::Stream(e.stream),
        ClientEvent::StreamResumed(e) => Target::Stream(e.stream),
        ClientEvent::StreamClosed(e) => Target::Stream(e.stream),
        ClientEvent::ChatDelta(e) => Target::Chat(&e.conversation),
        ClientEvent::ChatChanged(e) => Target::Chat(&e.conversation),
        ClientEvent::MetricsSample(e) => Target::Metrics(&e.server),
        ClientEvent::AccessChanged(e) => Target::Access(&e.server),
    }
}
