//! The bus across replicas, through Redis.
//!
//! Each replica keeps the bridges and browser sockets connected to it in a [`LocalBus`] and
//! takes a number (1–255) from Redis at start, kept while it lives (`node:<n>` holds its
//! run's id and expires [`NODE_TTL`] after its last refresh). Every id it hands out carries
//! that number, so a browser socket's id says which replica to send its frames to.
//!
//! - **Presence**: which replica holds each bridge is in the hash `bridges`, and every change
//!   is published on `presence`; each replica mirrors the whole map. A replica that dies
//!   stops refreshing its number: the others find its key gone and take its bridges offline
//!   (the bridges themselves dial again, through the load balancer, to a live replica).
//! - **Messages**: each replica listens on `to:<n>`: requests for its bridges (answered on
//!   the asker's channel), frames for its bridges, frames and events for its browser
//!   sockets, and "close this connection" (a bridge that reconnected elsewhere).
//! - **Order**: one task writes everything this replica publishes, in the order it was
//!   given, pipelining what is queued; Redis keeps the order of one connection's publishes.
//! - **Redis restarting**: writes fail while it is away; when the subscription comes back,
//!   the replica claims its number again, announces its bridges again and reloads the map.
//!   Requests in flight fail as `server_offline`, and every stream through another replica
//!   is interrupted and resumed (a frame lost on the way is sent again from its offset).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use porta_shared::bridge::BridgeRequest;
use porta_shared::types::{ServerId, StreamId};
use porta_shared::{ErrorBody, ErrorCode};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use tokio::sync::{broadcast, mpsc, oneshot};

mod owed;
mod tasks;

use super::local::{node_of, offline};
use super::wire::{Announce, ToNode};
use super::{
    BoxFuture, Bus, ClientId, ConnId, Connected, Inbox, LocalBus, Presence, ReplyResult, Route, ToBridge, ToClient,
    Topic,
};

/// How long a replica's number outlives its last refresh.
const NODE_TTL: Duration = Duration::from_secs(6);
/// How often a replica refreshes its number and checks the others'.
const REFRESH: Duration = Duration::from_secs(1);

/// The bus of one replica among several.
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    local: LocalBus,
    node: u8,
    /// This process's run: a replica restarted on the same number is another run.
    run: String,
    keys: Keys,
    out: mpsc::UnboundedSender<Out>,
    /// For leases (everything else goes through the writer task).
    conn: ConnectionManager,
    /// Every bridge of every replica (this one's too), by server.
    mirror: Mutex<HashMap<ServerId, Announce>>,
    /// Requests sent to other replicas, waiting for their replies.
    pending: Mutex<HashMap<u64, Pending>>,
    next_request: AtomicU64,
    presence: broadcast::Sender<Presence>,
    /// What is queued for browser sockets of other replicas, and how much a socket may have.
    owed: owed::Owed,
    client_limit: usize,
    /// Set when a write to Redis failed: the next subscription resynchronises.
    broken: AtomicBool,
    /// Whether this replica listens on Redis now: it announces its bridges only while it
    /// does, so no replica asks it anything it cannot hear.
    listening: AtomicBool,
}

struct Pending {
    server: ServerId,
    reply: oneshot::Sender<ReplyResult>,
    deadline: std::time::Instant,
}

/// The names this deployment's keys and channels go by.
#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn node(&self, n: u8) -> String {
        format!("{}node:{n}", self.prefix)
    }
    fn bridges(&self) -> String {
        format!("{}bridges", self.prefix)
    }
    fn presence(&self) -> String {
        format!("{}presence", self.prefix)
    }
    fn topics(&self) -> String {
        format!("{}topics", self.prefix)
    }
    fn lease(&self, role: &str) -> String {
        format!("{}lease:{role}", self.prefix)
    }
    fn to(&self, n: u8) -> String {
        format!("{}to:{n}", self.prefix)
    }
}

/// What the writer task sends to Redis, in order.
enum Out {
    Publish(String, Bytes),
    /// A delivery for browser socket `client` of another replica, and what it counts for.
    ForClient {
        channel: String,
        payload: Bytes,
        client: ClientId,
        cost: usize,
    },
    Announce(Announce),
}

/// Claims a free number: SET NX of `node:<n>` with an expiry.
const CLAIM: &str = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])";
/// Refreshes our number (or a lease): [`RENEWED`] while we hold it, [`TAKEN`] when it was
/// free (expired) and is ours again, 0 when another run holds it.
const REFRESH_NODE: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
    if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end \
    return 0";
/// The longest any one call to Redis is waited for.
const CALL: Duration = Duration::from_secs(3);
const RENEWED: i64 = 1;
const TAKEN: i64 = 2;
/// How long a request through another replica may wait for its answer before it is given
/// up (the caller's own deadline is usually shorter): a message lost on the way never
/// leaves a request waiting for ever.
const REQUEST_DEADLINE: Duration = Duration::from_secs(300);
/// Removes a bridge's entry if it is still the one for connection ARGV[2].
const FORGET: &str = "local v = redis.call('HGET', KEYS[1], ARGV[1]) \
    if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\n' then return redis.call('HDEL', KEYS[1], ARGV[1]) end \
    return 0";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An entry of the `bridges` hash: the connection first (for compare-and-delete), then JSON.
fn entry(a: &Announce) -> String {
    format!("{}\n{}", a.conn, serde_json::to_string(a).unwrap_or_default())
}

fn parse_entry(v: &str) -> Option<Announce> {
    serde_json::from_str(v.split_once('\n')?.1).ok()
}

impl RedisBus {
    /// Connects to Redis at `url` (waiting up to a minute for it), takes a replica number and
    /// starts listening. `prefix` keeps deployments sharing one Redis apart.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Self::connect_with_limit(url, prefix, super::inbox::MAX_QUEUED).await
    }

    /// [`RedisBus::connect`], queueing at most `client_limit` bytes for a browser socket of
    /// another replica.
    async fn connect_with_limit(url: &str, prefix: &str, client_limit: usize) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("PORTA_REDIS_URL is not valid: {e}"))?;
        let mut conn = tasks::connect_manager(&client).await?;
        let keys = Keys { prefix: prefix.to_owned() };
        let run = uuid::Uuid::new_v4().to_string();
        let ttl = NODE_TTL.as_millis().to_string();
        let mut node = None;
        for n in 1..=u8::MAX {
            let claimed: Option<String> =
                redis::Script::new(CLAIM).key(keys.node(n)).arg(&run).arg(&ttl).invoke_async(&mut conn).await?;
            if claimed.is_some() {
                node = Some(n);
                break;
            }
        }
        let node = node.ok_or_else(|| anyhow::anyhow!("Redis already holds 255 live replicas"))?;
        let (out, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            local: LocalBus::for_node(node),
            node,
            run,
            keys,
            out,
            conn: conn.clone(),
            mirror: Mutex::default(),
            pending: Mutex::default(),
            next_request: AtomicU64::new(1),
            presence: broadcast::channel(4096).0,
            owed: owed::Owed::default(),
            client_limit,
            broken: AtomicBool::new(false),
            listening: AtomicBool::new(false),
        });
        tokio::spawn(tasks::write(Arc::downgrade(&inner), conn.clone(), rx));
        let (subscribed_tx, subscribed) = oneshot::channel();
        tokio::spawn(tasks::listen(Arc::downgrade(&inner), client, conn.clone(), Some(subscribed_tx)));
        tokio::time::timeout(Duration::from_secs(60), subscribed)
            .await
            .map_err(|_| anyhow::anyhow!("cannot subscribe to Redis after 60 s"))?
            .map_err(|_| anyhow::anyhow!("cannot subscribe to Redis"))?;
        tokio::spawn(tasks::keep_alive(Arc::downgrade(&inner), conn));
        tracing::info!(node, "joined the replicas through Redis");
        Ok(Self { inner })
    }

    /// This replica's number.
    pub fn node(&self) -> u8 {
        self.inner.node
    }
}

impl Inner {
    fn send(&self, node: u8, msg: ToNode) {
        let _ = self.out.send(Out::Publish(self.keys.to(node), msg.encode()));
    }

    fn mirror(&self) -> MutexGuard<'_, HashMap<ServerId, Announce>> {
        lock(&self.mirror)
    }

    /// Requests to `server` through another replica fail: its bridge went away from there.
    fn fail_pending(&self, server: &str, why: &str) {
        let failed: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<u64> = pending.iter().filter(|(_, p)| p.server == server).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| pending.remove(&id)).collect()
        };
        for p in failed {
            let _ = p.reply.send(Err(ErrorBody::new(ErrorCode::ServerOffline, format!("server {server} {why}"))));
        }
    }

    /// A bridge came or went on another replica.
    fn on_announce(&self, a: Announce) {
        if a.node == self.node && a.run == self.run {
            if !a.online && self.local.connected(&a.server).is_some_and(|c| c.conn == a.conn) {
                // Another replica took us for dead while the bridge is still here: say so again.
                self.announce_all();
            }
            return;
        }
        if a.online {
            let previous = self.mirror().insert(a.server.clone(), a.clone());
            if previous.as_ref().is_some_and(|p| p.node != a.node || p.conn != a.conn) {
                self.fail_pending(&a.server, "moved to another connection before answering");
            }
            let _ = self.presence.send(Presence::Online { server: a.server, conn: a.conn, instance: a.instance });
        } else {
            let removed = {
                let mut mirror = self.mirror();
                let current = mirror.get(&a.server).is_some_and(|m| m.node == a.node && m.conn == a.conn);
                if current { mirror.remove(&a.server) } else { None }
            };
            if removed.is_some() {
                self.fail_pending(&a.server, "went offline before answering");
                let _ = self.presence.send(Presence::Offline { server: a.server, conn: a.conn });
            }
        }
    }

    /// Something another replica told on a topic: `[its number, topic, payload…]`.
    fn on_topic(&self, msg: Bytes) {
        let (Some(&from), Some(topic)) = (msg.first(), msg.get(1).and_then(|t| Topic::from_id(*t))) else { return };
        if from != self.node {
            self.local.topics.deliver(topic, msg.slice(2..));
        }
    }

    fn on_message(self: &Arc<Self>, msg: ToNode) {
        match msg {
            ToNode::Request { from, id, server, route, req } => {
                let reply = self.local.request(&server, req, route);
                let me = Arc::downgrade(self);
                tokio::spawn(async move {
                    let result = reply.await;
                    if let Some(me) = me.upgrade() {
                        me.send(from, ToNode::Reply { id, result });
                    }
                });
            }
            ToNode::Reply { id, result } => {
                if let Some(p) = lock(&self.pending).remove(&id) {
                    let _ = p.reply.send(result);
                }
            }
            ToNode::Frame { server, frame } => {
                self.local.send_frame(&server, frame);
            }
            ToNode::ClientFrame { client, frame } => {
                self.local.to_client(client, ToClient::Frame(frame));
            }
            ToNode::ClientEvent { client, event } => {
                self.local.to_client(client, ToClient::Event(event));
            }
            ToNode::Close { server, conn, reason } => {
                if self.local.connected(&server).is_some_and(|c| conn == 0 || c.conn == conn) {
                    self.local.disconnect_bridge(&server, reason);
                }
            }
            // Off the bus: the socket reads what was queued, then its inbox ends.
            ToNode::LetGo { client } => self.local.unregister_client(client),
        }
    }

    /// Takes the map of every replica's bridges from Redis, keeping only live replicas', and
    /// tells this replica's sockets what changed. After a gap (Redis away) every stream through
    /// another replica is interrupted and resumed, since a frame may have been lost.
    async fn reload(&self, conn: &mut ConnectionManager) -> anyhow::Result<()> {
        let all: HashMap<String, String> = tokio::time::timeout(CALL, conn.hgetall(self.keys.bridges()))
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer"))??;
        let mut found: HashMap<ServerId, Announce> = all
            .values()
            .filter_map(|v| parse_entry(v))
            .filter(|a| a.node != self.node)
            .map(|a| (a.server.clone(), a))
            .collect();
        let live = self.live_runs(conn, found.values().map(|a| a.node)).await?;
        found.retain(|_, a| live.get(&a.node) == Some(&a.run));
        let (gone, came) = {
            let mut mirror = self.mirror();
            let gone: Vec<Announce> = mirror.values().filter(|a| a.node != self.node).cloned().collect();
            mirror.retain(|_, a| a.node == self.node);
            for (server, a) in &found {
                if !self.local.has_bridge(server) {
                    mirror.insert(server.clone(), a.clone());
                }
            }
            (gone, found.into_values().collect::<Vec<_>>())
        };
        for a in gone {
            self.fail_pending(&a.server, "was unreachable for a moment");
            let _ = self.presence.send(Presence::Offline { server: a.server, conn: a.conn });
        }
        for a in came {
            let _ = self.presence.send(Presence::Online { server: a.server, conn: a.conn, instance: a.instance });
        }
        Ok(())
    }

    /// The run holding each of `nodes`' numbers now.
    async fn live_runs(
        &self,
        conn: &mut ConnectionManager,
        nodes: impl Iterator<Item = u8>,
    ) -> anyhow::Result<HashMap<u8, String>> {
        let mut nodes: Vec<u8> = nodes.collect();
        nodes.sort_unstable();
        nodes.dedup();
        if nodes.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<String> = nodes.iter().map(|n| self.keys.node(*n)).collect();
        let runs: Vec<Option<String>> = tokio::time::timeout(CALL, redis::cmd("MGET").arg(&keys).query_async(conn))
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer"))??;
        Ok(nodes.into_iter().zip(runs).filter_map(|(n, r)| Some((n, r?))).collect())
    }

    /// Our bridges, announced again (after Redis came back without them), once this replica
    /// listens again.
    fn announce_all(&self) {
        if !self.listening.load(Ordering::SeqCst) {
            return;
        }
        for (server, c) in self.local.bridges() {
            let a = Announce {
                server,
                node: self.node,
                run: self.run.clone(),
                conn: c.conn,
                instance: c.instance,
                agent: c.agent,
                online: true,
            };
            let _ = self.out.send(Out::Announce(a));
        }
    }
}

impl Bus for RedisBus {
    fn request(&self, server: &str, req: BridgeRequest, route: Route) -> BoxFuture<ReplyResult> {
        let me = &self.inner;
        if me.local.has_bridge(server) {
            return me.local.request(server, req, route);
        }
        let Some(node) = me.mirror().get(server).map(|a| a.node) else {
            let err = offline(server);
            return Box::pin(async move { Err(err) });
        };
        let id = me.next_request.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let deadline = std::time::Instant::now() + REQUEST_DEADLINE;
        lock(&me.pending).insert(id, Pending { server: server.to_owned(), reply, deadline });
        me.send(node, ToNode::Request { from: me.node, id, server: server.to_owned(), route, req });
        let server = server.to_owned();
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_DEADLINE, rx).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => Err(ErrorBody::new(
                    ErrorCode::ServerOffline,
                    format!("server {server} went offline before answering"),
                )),
                Err(_) => Err(ErrorBody::new(ErrorCode::Timeout, format!("server {server} did not answer in time"))),
            }
        })
    }

    fn send_frame(&self, server: &str, frame: Bytes) -> bool {
        let me = &self.inner;
        if me.local.has_bridge(server) {
            return me.local.send_frame(server, frame);
        }
        let Some(node) = me.mirror().get(server).map(|a| a.node) else { return false };
        me.send(node, ToNode::Frame { server: server.to_owned(), frame });
        true
    }

    fn new_stream_id(&self) -> StreamId {
        self.inner.local.new_stream_id()
    }

    fn register_client(&self) -> (ClientId, super::Inbox) {
        self.inner.local.register_client()
    }

    fn unregister_client(&self, client: ClientId) {
        self.inner.local.unregister_client(client);
    }

    fn to_client(&self, client: ClientId, msg: ToClient) -> bool {
        let me = &self.inner;
        let node = node_of(client);
        if node == me.node {
            return me.local.to_client(client, msg);
        }
        let cost = super::inbox::Cost::cost(&msg);
        match me.owed.charge(client, cost, me.client_limit) {
            owed::Charge::Queued => {}
            owed::Charge::LetGo => {
                tracing::warn!(client, "too much queued for a client of another replica; it is let go");
                me.send(node, ToNode::LetGo { client });
                return false;
            }
            owed::Charge::Refused => return false,
        }
        let msg = match msg {
            ToClient::Frame(frame) => ToNode::ClientFrame { client, frame },
            ToClient::Event(event) => ToNode::ClientEvent { client, event },
        };
        let _ = me.out.send(Out::ForClient { channel: me.keys.to(node), payload: msg.encode(), client, cost });
        true
    }

    fn register_bridge(&self, server: &str, instance: &str, agent: &str) -> (ConnId, Inbox<ToBridge>) {
        let me = &self.inner;
        let previous = me.mirror().get(server).cloned();
        let (conn, rx) = me.local.register_bridge(server, instance, agent);
        if let Some(p) = previous.filter(|p| p.node != me.node) {
            let reason = ErrorBody::new(ErrorCode::Conflict, "replaced by a newer connection from this server");
            me.send(p.node, ToNode::Close { server: server.to_owned(), conn: p.conn, reason });
            me.fail_pending(server, "moved to another replica before answering");
        }
        let a = Announce {
            server: server.to_owned(),
            node: me.node,
            run: me.run.clone(),
            conn,
            instance: instance.to_owned(),
            agent: agent.to_owned(),
            online: true,
        };
        me.mirror().insert(server.to_owned(), a.clone());
        let _ = me.presence.send(Presence::Online { server: server.to_owned(), conn, instance: instance.to_owned() });
        let _ = me.out.send(Out::Announce(a));
        (conn, rx)
    }

    fn unregister_bridge(&self, server: &str, conn: ConnId) {
        let me = &self.inner;
        me.local.unregister_bridge(server, conn);
        let ours = {
            let mut mirror = me.mirror();
            let ours = mirror.get(server).is_some_and(|a| a.node == me.node && a.conn == conn);
            if ours { mirror.remove(server) } else { None }
        };
        if let Some(a) = ours {
            let _ = me.presence.send(Presence::Offline { server: server.to_owned(), conn });
            let _ = me.out.send(Out::Announce(Announce { online: false, ..a }));
        }
    }

    fn disconnect_bridge(&self, server: &str, reason: ErrorBody) {
        let me = &self.inner;
        if me.local.has_bridge(server) {
            return me.local.disconnect_bridge(server, reason);
        }
        if let Some(node) = me.mirror().get(server).map(|a| a.node) {
            me.send(node, ToNode::Close { server: server.to_owned(), conn: 0, reason });
        }
    }

    fn connected(&self, server: &str) -> Option<Connected> {
        let me = &self.inner;
        me.local.connected(server).or_else(|| {
            me.mirror().get(server).map(|a| Connected {
                conn: a.conn,
                instance: a.instance.clone(),
                agent: a.agent.clone(),
            })
        })
    }

    fn online_count(&self) -> usize {
        self.inner.mirror().len()
    }

    fn presence(&self) -> broadcast::Receiver<Presence> {
        self.inner.presence.subscribe()
    }

    fn departures(&self) -> broadcast::Receiver<super::Departure> {
        self.inner.local.departures.subscribe()
    }

    fn tell_others(&self, topic: Topic, payload: Bytes) {
        let me = &self.inner;
        let mut b = bytes::BytesMut::with_capacity(payload.len() + 2);
        b.extend_from_slice(&[me.node, topic.id()]);
        b.extend_from_slice(&payload);
        let _ = me.out.send(Out::Publish(me.keys.topics(), b.freeze()));
    }

    fn hear(&self, topic: Topic) -> broadcast::Receiver<Bytes> {
        self.inner.local.topics.hear(topic)
    }

    fn replicated(&self) -> bool {
        true
    }

    fn lead(&self, role: &'static str) -> BoxFuture<bool> {
        let me = self.inner.clone();
        Box::pin(async move {
            let mut conn = me.conn.clone();
            let script = redis::Script::new(REFRESH_NODE);
            let mut call = script.key(me.keys.lease(role));
            call.arg(&me.run).arg(NODE_TTL.as_millis().to_string());
            let asked = call.invoke_async::<i64>(&mut conn);
            // Unanswered within a refresh, the lease is not counted on.
            matches!(tokio::time::timeout(REFRESH, asked).await, Ok(Ok(RENEWED | TAKEN)))
        })
    }
}

#[cfg(test)]
mod tests;
