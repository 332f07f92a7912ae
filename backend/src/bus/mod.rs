//! The message bus between browser sockets and bridge connections.
//!
//! Nothing else in the backend knows where a bridge is connected: it asks the bus. One
//! process uses [`LocalBus`], which keeps the connections in maps. Several replicas use
//! [`RedisBus`]: each keeps its own connections in a `LocalBus` and reaches the others'
//! through Redis (`wire` is what they say to each other), so a browser on one replica uses a
//! bridge connected to another as if it were its own.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use porta_shared::ErrorBody;
use porta_shared::bridge::{BridgeEvent, BridgeRequest};
use porta_shared::types::{ServerId, StreamId};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, oneshot};

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

/// A replica found gone: its number, and the ids its run handed out (those of number `node`
/// below `before`; a new run on the number counts its ids on from later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    pub node: u8,
    pub before: u64,
}

impl Departure {
    /// Whether `id` (a client's) was handed out by the run that went.
    pub fn handed_out(&self, id: u64) -> bool {
        node_of(id) == self.node && (id & ((1 << 48) - 1)) < self.before
    }
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
    /// Forwards a frame (input, ack) to `server`'s bridge; false when it is offline or has
    /// too much waiting for it already (see [`inbox::MAX_QUEUED_TO_BRIDGE`]).
    fn send_frame(&self, server: &str, frame: Bytes) -> bool;
    /// A stream id unique among all streams this bus will ever route.
    fn new_stream_id(&self) -> StreamId;

    fn register_client(&self) -> (ClientId, Inbox);
    fn unregister_client(&self, client: ClientId);
    /// Delivers to a browser socket; false when it is gone.
    fn to_client(&self, client: ClientId, msg: ToClient) -> bool;

    /// Registers a bridge connection for `server`, replacing (and closing) an older one.
    /// What is sent to it waits in the returned inbox, at most
    /// [`inbox::MAX_QUEUED_TO_BRIDGE`] bytes: past that, frames and requests are refused.
    fn register_bridge(&self, server: &str, instance: &str, agent: &str) -> (ConnId, Inbox<ToBridge>);
    fn unregister_bridge(&self, server: &str, conn: ConnId);
    /// Closes `server`'s bridge connection, if any.
    fn disconnect_bridge(&self, server: &str, reason: ErrorBody);
    fn connected(&self, server: &str) -> Option<Connected>;
    fn online_count(&self) -> usize;
    fn presence(&self) -> broadcast::Receiver<Presence>;
    /// Replicas found gone: the bridges held here close the streams routed to their clients.
    /// Never, for one process.
    fn departures(&self) -> broadcast::Receiver<Departure>;

    /// Tells the other replicas something on `topic` (nothing to do for one process: the
    /// caller has acted on it here already).
    fn tell_others(&self, topic: Topic, payload: Bytes);
    /// What the other replicas tell on `topic`.
    fn hear(&self, topic: Topic) -> broadcast::Receiver<Bytes>;
    /// Whether there are other replicas to tell anything.
    fn replicated(&self) -> bool;
    /// Takes or keeps the lease on `role` (one replica does it at a time): true while this
    /// replica holds it. Asked again within a few seconds, or the lease passes to another
    /// replica, as it does when this one dies. One process always holds it.
    fn lead(&self, role: &'static str) -> BoxFuture<bool>;
}

/// What replicas tell each other besides the traffic of bridges and browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Someone may have lost access: every open socket checks itself again.
    Access,
    /// A sample from a server's bridge (JSON of `porta_shared::telemetry::Sample`, with its
    /// server).
    Samples,
    /// Alert rules changed: the engine reloads them.
    AlertRules,
    /// Answers being written: their text and changes for the watchers on every replica, and
    /// what people ask of them elsewhere (see `crate::assistant::chat`).
    Chat,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Access, Topic::Samples, Topic::AlertRules, Topic::Chat];

    /// Its number on the wire (permanent).
    pub fn id(self) -> u8 {
        match self {
            Topic::Access => 1,
            Topic::Samples => 2,
            Topic::AlertRules => 3,
            Topic::Chat => 4,
        }
    }

    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }
}

/// The local ends of every topic (what a replica heard from the others).
pub(crate) struct Topics(std::collections::HashMap<Topic, broadcast::Sender<Bytes>>);

impl Default for Topics {
    fn default() -> Self {
        Self(Topic::ALL.into_iter().map(|t| (t, broadcast::channel(1024).0)).collect())
    }
}

impl Topics {
    pub(crate) fn hear(&self, topic: Topic) -> broadcast::Receiver<Bytes> {
        self.0.get(&topic).map_or_else(|| broadcast::channel(1).1, broadcast::Sender::subscribe)
    }

    pub(crate) fn deliver(&self, topic: Topic, payload: Bytes) {
        if let Some(tx) = self.0.get(&topic) {
            let _ = tx.send(payload);
        }
    }
}

pub mod inbox;
mod local;
mod redis;
mod wire;

pub use inbox::Inbox;
pub use local::{LocalBus, behind, node_of};
pub use redis::RedisBus;
