//! The message bus between browser sockets and bridge connections.
//!
//! Nothing else in the backend knows where a bridge is connected: it asks the bus. This
//! in-process implementation keeps the connections in maps; a Redis implementation for
//! several replicas is a second implementation of [`Bus`], not a rewrite of its callers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use porta_shared::bridge::{BridgeEvent, BridgeRequest};
use porta_shared::types::{ServerId, StreamId};
use porta_shared::{ErrorBody, ErrorCode};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A browser socket's address on the bus.
pub type ClientId = u64;
/// One bridge connection (a server may reconnect; each connection gets a new id).
pub type ConnId = u64;
/// A bridge's reply: the `ok` body, or its typed error.
pub type ReplyResult = Result<Box<RawValue>, ErrorBody>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How a request changes stream routing on the bridge connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    None,
    /// The request opens bridge stream `.0`; deliver its frames and events to client `.1`.
    Open(StreamId, ClientId),
    /// The request ends bridge stream `.0`.
    Close(StreamId),
}

/// What a bridge connection is asked to do.
#[derive(Debug)]
pub enum ToBridge {
    Request {
        req: BridgeRequest,
        route: Route,
        reply: oneshot::Sender<ReplyResult>,
    },
    Frame(Bytes),
    /// Close the connection (server revoked, or replaced by a newer connection).
    Close(ErrorBody),
}

/// What a browser socket receives from bridges.
#[derive(Debug)]
pub enum ToClient {
    /// A binary frame carrying the bridge's stream id.
    Frame(Bytes),
    /// An event about one of the client's bridge streams.
    Event(BridgeEvent),
}

/// A server's bridge came or went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Online { server: ServerId, conn: ConnId, instance: String },
    Offline { server: ServerId, conn: ConnId },
}

/// Where a server's bridge is connected now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub conn: ConnId,
    pub instance: String,
    pub agent: String,
}

pub trait Bus: Send + Sync + 'static {
    /// Sends a request to `server`'s bridge; resolves with its reply, or `server_offline`.
    fn request(&self, server: &str, req: BridgeRequest, route: Route) -> BoxFuture<ReplyResult>;
    /// Forwards a frame (input, ack) to `server`'s bridge; false when it is offline.
    fn send_frame(&self, server: &str, frame: Bytes) -> bool;
    /// A stream id unique among all streams this bus will ever route.
    fn new_stream_id(&self) -> StreamId;

    fn register_client(&self) -> (ClientId, mpsc::UnboundedReceiver<ToClient>);
    fn unregister_client(&self, client: ClientId);
    /// Delivers to a browser socket; false when it is gone.
    fn to_client(&self, client: ClientId, msg: ToClient) -> bool;

    /// Registers a bridge connection for `server`, replacing (and closing) an older one.
    fn register_bridge(&self, server: &str, instance: &str, agent: &str)
    -> (ConnId, mpsc::UnboundedReceiver<ToBridge>);
    fn unregister_bridge(&self, server: &str, conn: ConnId);
    /// Closes `server`'s bridge connection, if any.
    fn disconnect_bridge(&self, server: &str, reason: ErrorBody);
    fn connected(&self, server: &str) -> Option<Connected>;
    fn online_count(&self) -> usize;
    fn presence(&self) -> broadcast::Receiver<Presence>;
}

struct BridgeEntry {
    conn: ConnId,
    instance: String,
    agent: String,
    tx: mpsc::UnboundedSender<ToBridge>,
}

/// The single-process bus.
pub struct LocalBus {
    bridges: Mutex<HashMap<ServerId, BridgeEntry>>,
    clients: Mutex<HashMap<ClientId, mpsc::UnboundedSender<ToClient>>>,
    next_id: AtomicU64,
    next_stream: AtomicU32,
    presence: broadcast::Sender<Presence>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self {
            bridges: Mutex::default(),
            clients: Mutex::default(),
            next_id: AtomicU64::new(1),
            next_stream: AtomicU32::new(1),
            presence: broadcast::channel(1024).0,
        }
    }
}

fn offline(server: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::ServerOffline, format!("server {server} is offline"))
}

impl LocalBus {
    fn bridge_tx(&self, server: &str) -> Option<mpsc::UnboundedSender<ToBridge>> {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner()).get(server).map(|e| e.tx.clone())
    }
}

impl Bus for LocalBus {
    fn request(&self, server: &str, req: BridgeRequest, route: Route) -> BoxFuture<ReplyResult> {
        let server = server.to_owned();
        let (reply, rx) = oneshot::channel();
        let sent = self.bridge_tx(&server).is_some_and(|tx| tx.send(ToBridge::Request { req, route, reply }).is_ok());
        Box::pin(async move {
            if !sent {
                return Err(offline(&server));
            }
            rx.await.unwrap_or_else(|_| {
                Err(ErrorBody::new(ErrorCode::ServerOffline, format!("server {server} went offline before answering")))
            })
        })
    }

    fn send_frame(&self, server: &str, frame: Bytes) -> bool {
        self.bridge_tx(server).is_some_and(|tx| tx.send(ToBridge::Frame(frame)).is_ok())
    }

    fn new_stream_id(&self) -> StreamId {
        // Wrapping past u32::MAX would take years of streams; skip 0, which means "none".
        match self.next_stream.fetch_add(1, Ordering::Relaxed) {
            0 => self.next_stream.fetch_add(1, Ordering::Relaxed),
            n => n,
        }
    }

    fn register_client(&self) -> (ClientId, mpsc::UnboundedReceiver<ToClient>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        (id, rx)
    }

    fn unregister_client(&self, client: ClientId) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
    }

    fn to_client(&self, client: ClientId, msg: ToClient) -> bool {
        let tx = self.clients.lock().unwrap_or_else(|p| p.into_inner()).get(&client).cloned();
        tx.is_some_and(|tx| tx.send(msg).is_ok())
    }

    fn register_bridge(
        &self,
        server: &str,
        instance: &str,
        agent: &str,
    ) -> (ConnId, mpsc::UnboundedReceiver<ToBridge>) {
        let conn = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let entry = BridgeEntry { conn, instance: instance.to_owned(), agent: agent.to_owned(), tx };
        let old = self.bridges.lock().unwrap_or_else(|p| p.into_inner()).insert(server.to_owned(), entry);
        if let Some(old) = old {
            let _ = old.tx.send(ToBridge::Close(ErrorBody::new(
                ErrorCode::Conflict,
                "replaced by a newer connection from this server",
            )));
        }
        let _ = self.presence.send(Presence::Online { server: server.to_owned(), conn, instance: instance.to_owned() });
        (conn, rx)
    }

    fn unregister_bridge(&self, server: &str, conn: ConnId) {
        let mut map = self.bridges.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(server).is_some_and(|e| e.conn == conn) {
            map.remove(server);
            drop(map);
            let _ = self.presence.send(Presence::Offline { server: server.to_owned(), conn });
        }
    }

    fn disconnect_bridge(&self, server: &str, reason: ErrorBody) {
        if let Some(tx) = self.bridge_tx(server) {
            let _ = tx.send(ToBridge::Close(reason));
        }
    }

    fn connected(&self, server: &str) -> Option<Connected> {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner()).get(server).map(|e| Connected {
            conn: e.conn,
            instance: e.instance.clone(),
            agent: e.agent.clone(),
        })
    }

    fn online_count(&self) -> usize {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn presence(&self) -> broadcast::Receiver<Presence> {
        self.presence.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porta_shared::bridge::TermList;

    #[tokio::test]
    async fn requests_to_an_offline_server_fail_fast() {
        let bus = LocalBus::default();
        let err = bus.request("nope", TermList {}.into(), Route::None).await.expect_err("offline");
        assert_eq!(err.code, ErrorCode::ServerOffline);
        assert!(!bus.send_frame("nope", Bytes::from_static(b"x")));
    }

    #[tokio::test]
    async fn a_new_connection_replaces_the_old_one() {
        let bus = LocalBus::default();
        let mut presence = bus.presence();
        let (c1, mut rx1) = bus.register_bridge("s", "i1", "a");
        let (c2, _rx2) = bus.register_bridge("s", "i1", "a");
        assert!(matches!(rx1.recv().await, Some(ToBridge::Close(_))));
        bus.unregister_bridge("s", c1);
        assert_eq!(bus.connected("s").map(|c| c.conn), Some(c2), "the old connection leaving changes nothing");
        assert!(matches!(presence.recv().await, Ok(Presence::Online { conn, .. }) if conn == c1));
        assert!(matches!(presence.recv().await, Ok(Presence::Online { conn, .. }) if conn == c2));
        bus.unregister_bridge("s", c2);
        assert!(matches!(presence.recv().await, Ok(Presence::Offline { conn, .. }) if conn == c2));
        assert_eq!(bus.online_count(), 0);
    }

    #[tokio::test]
    async fn a_request_whose_bridge_leaves_fails_with_server_offline() {
        let bus = LocalBus::default();
        let (conn, mut rx) = bus.register_bridge("s", "i", "a");
        let pending = bus.request("s", TermList {}.into(), Route::None);
        let Some(ToBridge::Request { reply, .. }) = rx.recv().await else { panic!("no request") };
        drop(reply);
        bus.unregister_bridge("s", conn);
        assert_eq!(pending.await.expect_err("dropped").code, ErrorCode::ServerOffline);
    }
}
