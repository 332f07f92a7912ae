//! The bus of one process: bridge connections and browser sockets in maps.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use porta_shared::bridge::BridgeRequest;
use porta_shared::types::{ServerId, StreamId};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::sync::{broadcast, oneshot};

use super::inbox::{self, Inbox, Mailbox, Refused};
use super::{BoxFuture, Bus, ClientId, ConnId, Connected, Presence, ReplyResult, Route, ToBridge, ToClient, Topic};

struct BridgeEntry {
    conn: ConnId,
    instance: String,
    agent: String,
    tx: Mailbox<ToBridge>,
}

/// The single-process bus.
pub struct LocalBus {
    bridges: Mutex<HashMap<ServerId, BridgeEntry>>,
    clients: Mutex<HashMap<ClientId, Mailbox>>,
    next_id: AtomicU64,
    next_stream: AtomicU32,
    /// The replica's number (0 alone): the top bits of every id it hands out, so ids are
    /// unique across replicas and say which replica an id belongs to.
    node: u8,
    presence: broadcast::Sender<Presence>,
    /// Replicas found gone (a replica's Redis bus says it here).
    pub(super) departures: broadcast::Sender<super::Departure>,
    /// What other replicas told (nothing, for one process; a replica's Redis bus delivers here).
    pub(super) topics: super::Topics,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::for_node(0)
    }
}

/// Bits of a stream id that count, below a replica's number.
const STREAM_BITS: u32 = 24;

impl LocalBus {
    /// The local part of replica `node`'s bus (`node` 0: the only process).
    ///
    /// A replica restarted on its old number is another run, while the others may still
    /// route a bridge's output to the ids the dead run handed out. So a run's ids never are
    /// the last run's: client and connection ids count on from the clock (64 per millisecond
    /// of the process's start, more than any run hands out), and stream ids from a random
    /// point of their 24 bits (a live stream the count meets is refused where it is routed).
    pub fn for_node(node: u8) -> Self {
        let first_id = (crate::clock::now_ms().max(1) as u64) << 6;
        let first_stream =
            if node == 0 { 1 } else { (uuid::Uuid::new_v4().as_u128() as u32) & ((1 << STREAM_BITS) - 1) };
        Self {
            bridges: Mutex::default(),
            clients: Mutex::default(),
            next_id: AtomicU64::new(first_id),
            next_stream: AtomicU32::new(first_stream),
            node,
            presence: broadcast::channel(1024).0,
            departures: broadcast::channel(64).0,
            topics: super::Topics::default(),
        }
    }

    fn next_id(&self) -> u64 {
        (u64::from(self.node) << 48) | (self.next_id.fetch_add(1, Ordering::Relaxed) & ((1 << 48) - 1))
    }

    /// Whether a bridge connection of `server` is here.
    pub fn has_bridge(&self, server: &str) -> bool {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner()).contains_key(server)
    }

    /// Every bridge connected here.
    pub fn bridges(&self) -> Vec<(ServerId, Connected)> {
        let map = self.bridges.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(s, e)| (s.clone(), Connected { conn: e.conn, instance: e.instance.clone(), agent: e.agent.clone() }))
            .collect()
    }
}

/// The replica an id handed out by [`LocalBus::for_node`] belongs to.
pub fn node_of(id: u64) -> u8 {
    (id >> 48) as u8
}

pub(super) fn offline(server: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::ServerOffline, format!("server {server} is offline"))
}

/// Said of what is refused because `server`'s bridge has too much waiting for it already.
pub fn behind(server: &str) -> ErrorBody {
    let most = inbox::MAX_QUEUED_TO_BRIDGE >> 20;
    let msg = format!("server {server} is not reading what it is sent ({most} MiB wait for it): try again later");
    ErrorBody::new(ErrorCode::Unavailable, msg)
}

impl LocalBus {
    fn bridge_tx(&self, server: &str) -> Option<Mailbox<ToBridge>> {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner()).get(server).map(|e| e.tx.clone())
    }
}

impl Bus for LocalBus {
    fn request(&self, server: &str, req: BridgeRequest, route: Route) -> BoxFuture<ReplyResult> {
        let server = server.to_owned();
        let (reply, rx) = oneshot::channel();
        let sent = match self.bridge_tx(&server) {
            Some(tx) => tx.send(ToBridge::Request { req, route, reply }),
            None => Err(Refused::Gone),
        };
        Box::pin(async move {
            match sent {
                Ok(()) => {}
                Err(Refused::Gone) => return Err(offline(&server)),
                Err(Refused::Overfull) => return Err(behind(&server)),
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
        if self.node == 0 {
            // Wrapping past u32::MAX would take years of streams; skip 0, which means "none".
            return match self.next_stream.fetch_add(1, Ordering::Relaxed) {
                0 => self.next_stream.fetch_add(1, Ordering::Relaxed),
                n => n,
            };
        }
        // A replica's streams carry its number above 24 bits of count (16 million streams
        // before the count wraps; 0 is skipped, which means "none").
        let low = loop {
            let n = self.next_stream.fetch_add(1, Ordering::Relaxed) & ((1 << STREAM_BITS) - 1);
            if n != 0 {
                break n;
            }
        };
        (u32::from(self.node) << STREAM_BITS) | low
    }

    fn register_client(&self) -> (ClientId, Inbox) {
        let id = self.next_id();
        let (mailbox, inbox) = inbox::pair(inbox::MAX_QUEUED);
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(id, mailbox);
        (id, inbox)
    }

    fn unregister_client(&self, client: ClientId) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
    }

    fn to_client(&self, client: ClientId, msg: ToClient) -> bool {
        let mailbox = self.clients.lock().unwrap_or_else(|p| p.into_inner()).get(&client).cloned();
        match mailbox.map(|m| m.send(msg)) {
            Some(Ok(())) => true,
            Some(Err(Refused::Overfull)) => {
                // Off the bus: the client reads what was queued, then its inbox ends.
                tracing::warn!(client, "a client's queue passed its limit; it is dropped from the bus");
                self.unregister_client(client);
                false
            }
            Some(Err(Refused::Gone)) | None => false,
        }
    }

    fn register_bridge(&self, server: &str, instance: &str, agent: &str) -> (ConnId, Inbox<ToBridge>) {
        let conn = self.next_id();
        let (tx, rx) = inbox::pair(inbox::MAX_QUEUED_TO_BRIDGE);
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

    fn departures(&self) -> broadcast::Receiver<super::Departure> {
        self.departures.subscribe()
    }

    fn tell_others(&self, _topic: Topic, _payload: Bytes) {}

    fn replicated(&self) -> bool {
        false
    }

    fn lead(&self, _role: &'static str) -> BoxFuture<bool> {
        Box::pin(async { true })
    }

    fn hear(&self, topic: Topic) -> broadcast::Receiver<Bytes> {
        self.topics.hear(topic)
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
    async fn a_client_that_lets_too_much_queue_up_is_dropped_and_reads_what_was_queued() {
        let bus = LocalBus::default();
        let (client, mut inbox) = bus.register_client();
        // A bridge flooding a client that does not read (one 64 KiB frame, shared).
        let frame = Bytes::from(vec![7u8; 64 * 1024]);
        let mut delivered = 0;
        while bus.to_client(client, ToClient::Frame(frame.clone())) {
            delivered += frame.len();
            assert!(delivered <= super::inbox::MAX_QUEUED, "past the limit");
        }
        assert!(delivered + frame.len() > super::inbox::MAX_QUEUED, "refused before the limit: {delivered}");
        // Off the bus: nothing more is delivered, even once there would be room.
        assert!(matches!(inbox.recv().await, Some(ToClient::Frame(_))));
        assert!(!bus.to_client(client, ToClient::Frame(frame.clone())));
        let mut read = frame.len();
        while let Some(ToClient::Frame(f)) = inbox.recv().await {
            read += f.len();
        }
        assert_eq!(read, delivered, "everything queued is read, then the inbox ends");
    }

    #[tokio::test]
    async fn a_bridge_that_does_not_read_has_at_most_its_limit_waiting_and_still_gets_its_close() {
        use super::inbox::MAX_QUEUED_TO_BRIDGE;
        use porta_shared::frame::{Frame, FrameKind};
        let bus = LocalBus::default();
        let (_conn, mut rx) = bus.register_bridge("s", "i", "a");
        // Input sent faster than the bridge reads (here: not at all), 1 MiB at a time.
        let frame = Bytes::from(vec![1u8; 1 << 20]);
        let (mut queued, mut counted) = (0, 0);
        while bus.send_frame("s", frame.clone()) {
            queued += frame.len();
            counted += super::inbox::FRAME_COST + frame.len();
            assert!(counted <= MAX_QUEUED_TO_BRIDGE, "past the limit");
        }
        assert!(counted + super::inbox::FRAME_COST + frame.len() > MAX_QUEUED_TO_BRIDGE, "refused early: {counted}");
        // Keystrokes fill what is left.
        let key = Bytes::from(Frame::new(FrameKind::TermInput, 1, 0, b"k").encode());
        while bus.send_frame("s", key.clone()) {
            queued += key.len();
            counted += super::inbox::FRAME_COST + key.len();
            assert!(counted <= MAX_QUEUED_TO_BRIDGE, "past the limit");
        }
        let e = bus.request("s", TermList {}.into(), Route::None).await.expect_err("refused");
        assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
        assert!(e.message.contains("not reading"), "{}", e.message);
        // Still online; what keeps streams moving or ends them still goes (refused, an ack
        // would leave its stream's window shut for good), and what ends the connection too.
        assert!(bus.connected("s").is_some());
        let ack = Bytes::from(Frame::new(FrameKind::Ack, 1, 4096, &[]).encode());
        assert!(bus.send_frame("s", ack.clone()));
        let detach = bus.request("s", porta_shared::bridge::TermDetach { stream: 1 }.into(), Route::Close(1));
        bus.disconnect_bridge("s", ErrorBody::new(ErrorCode::Conflict, "replaced"));
        let (mut read, mut acks, mut detached) = (0, 0, false);
        loop {
            match rx.recv().await {
                Some(ToBridge::Frame(f)) if f == ack => acks += 1,
                Some(ToBridge::Frame(f)) => read += f.len(),
                Some(ToBridge::Request { route: Route::Close(1), reply, .. }) => {
                    detached = reply.send(Ok(serde_json::value::RawValue::from_string("{}".into()).unwrap())).is_ok();
                }
                Some(ToBridge::Close(_)) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(read, queued, "everything queued is there, in order, before the close");
        assert!(acks == 1 && detached, "the ack and the detach went");
        detach.await.expect("answered");
        // Read, there is room again.
        assert!(bus.send_frame("s", frame));
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
