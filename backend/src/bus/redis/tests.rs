//! Two replicas' buses on a real Redis.

use porta_shared::bridge::TermList;
use porta_testkit::Redis;

use super::*;

async fn replica(redis: &Redis) -> RedisBus {
    RedisBus::connect(&redis.url(), "test:").await.expect("a replica")
}

async fn redis() -> Redis {
    tokio::task::spawn_blocking(Redis::start).await.expect("join").expect("a Redis server")
}

/// Waits (up to 20 s) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}: not after 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_online(presence: &mut broadcast::Receiver<Presence>, server: &str) -> ConnId {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), presence.recv()).await.expect("presence in time") {
            Ok(Presence::Online { server: s, conn, .. }) if s == server => return conn,
            _ => {}
        }
    }
}

async fn next_offline(presence: &mut broadcast::Receiver<Presence>, server: &str) -> ConnId {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), presence.recv()).await.expect("presence in time") {
            Ok(Presence::Offline { server: s, conn }) if s == server => return conn,
            _ => {}
        }
    }
}

/// Serves one request on a bridge inbox, answering `answer`.
async fn serve_one(inbox: &mut Inbox<ToBridge>, answer: &str) -> Route {
    loop {
        match inbox.recv().await.expect("the connection is open") {
            ToBridge::Request { route, reply, .. } => {
                let raw = serde_json::value::RawValue::from_string(answer.to_owned()).expect("json");
                let _ = reply.send(Ok(raw));
                return route;
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_browser_on_one_replica_uses_a_bridge_on_another() {
    let redis = redis().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    assert_ne!(a.node(), b.node(), "each replica has its own number");
    let mut seen_by_a = a.presence();
    let (conn, mut inbox) = b.register_bridge("srv", "inst-1", "porta-bridge 1");
    assert_eq!(next_online(&mut seen_by_a, "srv").await, conn);
    assert_eq!(a.connected("srv").map(|c| (c.conn, c.instance)), Some((conn, "inst-1".to_owned())));
    assert_eq!(a.online_count(), 1);

    // A request from a browser on A, answered by the bridge on B, with its stream routed
    // to that browser.
    let (client, mut client_inbox) = a.register_client();
    let stream = a.new_stream_id();
    let asked = a.request("srv", TermList {}.into(), Route::Open(stream, client));
    let (route, reply) = tokio::join!(serve_one(&mut inbox, r#"{"terminals":[]}"#), asked);
    assert_eq!(route, Route::Open(stream, client));
    assert_eq!(reply.expect("answered").get(), r#"{"terminals":[]}"#);

    // Frames both ways, in order.
    for i in 0..100u8 {
        assert!(a.send_frame("srv", Bytes::from(vec![i])));
    }
    for i in 0..100u8 {
        match inbox.recv().await {
            Some(ToBridge::Frame(f)) => assert_eq!(f.as_ref(), [i]),
            other => panic!("frame {i}: {other:?}"),
        }
    }
    for i in 0..100u8 {
        assert!(b.to_client(client, ToClient::Frame(Bytes::from(vec![i]))));
    }
    for i in 0..100u8 {
        match client_inbox.recv().await {
            Some(ToClient::Frame(f)) => assert_eq!(f.as_ref(), [i]),
            other => panic!("frame {i}: {other:?}"),
        }
    }

    // The bridge leaves B: A hears it, and a request fails fast as offline.
    b.unregister_bridge("srv", conn);
    assert_eq!(next_offline(&mut seen_by_a, "srv").await, conn);
    let err = a.request("srv", TermList {}.into(), Route::None).await.expect_err("offline");
    assert_eq!(err.code, ErrorCode::ServerOffline);
}

#[tokio::test]
async fn a_bridge_that_reconnects_to_another_replica_replaces_its_old_connection() {
    let redis = redis().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let mut seen_by_b = b.presence();
    let (old, mut old_inbox) = b.register_bridge("srv", "inst", "agent");
    until("A sees the bridge", || a.connected("srv").is_some()).await;
    // A request waiting on the old connection when the bridge moves.
    let waiting = a.request("srv", TermList {}.into(), Route::None);
    let (new, mut new_inbox) = a.register_bridge("srv", "inst", "agent");
    assert_ne!(old, new);
    let closed = loop {
        match old_inbox.recv().await {
            Some(ToBridge::Close(why)) => break why,
            Some(_) => continue,
            None => panic!("closed without a reason"),
        }
    };
    assert_eq!(closed.code, ErrorCode::Conflict);
    assert_eq!(waiting.await.expect_err("moved").code, ErrorCode::ServerOffline);
    assert_eq!(next_online(&mut seen_by_b, "srv").await, old);
    assert_eq!(next_online(&mut seen_by_b, "srv").await, new, "B follows the bridge to A");
    // The old connection leaving B changes nothing.
    b.unregister_bridge("srv", old);
    let asked = b.request("srv", TermList {}.into(), Route::None);
    let (_, reply) = tokio::join!(serve_one(&mut new_inbox, "{}"), asked);
    assert!(reply.is_ok(), "B reaches the bridge on A: {reply:?}");
    assert_eq!(a.connected("srv").map(|c| c.conn), Some(new));
}

#[tokio::test]
async fn the_bridges_of_a_replica_that_died_go_offline_and_its_requests_fail() {
    let redis = redis().await;
    let a = replica(&redis).await;
    let b = replica(&redis).await;
    let mut seen_by_a = a.presence();
    let (conn, _inbox) = b.register_bridge("srv", "inst", "agent");
    assert_eq!(next_online(&mut seen_by_a, "srv").await, conn);
    let waiting = a.request("srv", TermList {}.into(), Route::None);
    // B stops without a word (its number is no longer refreshed).
    drop(b);
    assert_eq!(next_offline(&mut seen_by_a, "srv").await, conn);
    assert_eq!(waiting.await.expect_err("B is gone").code, ErrorCode::ServerOffline);
    assert!(a.connected("srv").is_none());
    // A replica joining later does not believe it either.
    let c = replica(&redis).await;
    assert!(c.connected("srv").is_none(), "a dead replica's bridge is not online");
}

#[tokio::test]
async fn replicas_find_each_other_again_after_redis_restarts() {
    let mut redis = redis().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let mut seen_by_a = a.presence();
    let (conn, mut inbox) = b.register_bridge("srv", "inst", "agent");
    assert_eq!(next_online(&mut seen_by_a, "srv").await, conn);
    let port = redis.port();
    let _redis = tokio::task::spawn_blocking(move || {
        redis.stop().expect("stop Redis");
        std::thread::sleep(Duration::from_millis(500));
        redis.start_again().expect("start Redis");
        redis
    })
    .await
    .expect("join");
    // Everything Redis held is gone; B announces its bridge again and A finds it, with the
    // streams through it interrupted and resumed on the way.
    assert_eq!(next_offline(&mut seen_by_a, "srv").await, conn);
    assert_eq!(next_online(&mut seen_by_a, "srv").await, conn);
    let asked = a.request("srv", TermList {}.into(), Route::None);
    let (_, reply) = tokio::join!(serve_one(&mut inbox, "{}"), asked);
    assert!(reply.is_ok(), "{reply:?} (Redis on port {port})");
}

#[tokio::test]
async fn one_replica_leads_a_role_and_another_takes_it_when_it_dies() {
    let redis = redis().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    assert!(a.lead("alerts").await, "the first to ask leads");
    assert!(!b.lead("alerts").await, "and no one else while it renews");
    assert!(a.lead("alerts").await, "renewing keeps it");
    assert!(b.lead("other").await, "roles are separate");
    drop(a);
    // A stops renewing: the lease passes within its lifetime.
    let start = std::time::Instant::now();
    while !b.lead("alerts").await {
        assert!(start.elapsed() < Duration::from_secs(20), "the lease never passed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(start.elapsed() >= Duration::from_secs(1), "not before the lease ran out");
}

#[tokio::test]
async fn topics_reach_the_other_replicas_and_not_the_teller() {
    let redis = redis().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let (mut at_a, mut at_b) = (a.hear(Topic::Access), b.hear(Topic::Access));
    let mut samples_at_b = b.hear(Topic::Samples);
    a.tell_others(Topic::Access, Bytes::from_static(b"revoked"));
    a.tell_others(Topic::Samples, Bytes::from_static(b"{}"));
    let heard = tokio::time::timeout(Duration::from_secs(10), at_b.recv()).await.expect("in time").expect("heard");
    assert_eq!(heard.as_ref(), b"revoked");
    let sample = tokio::time::timeout(Duration::from_secs(10), samples_at_b.recv()).await.expect("in time");
    assert_eq!(sample.expect("heard").as_ref(), b"{}");
    // B answers after hearing A: Redis delivers in publish order, so A hears B's answer only
    // after anything of its own would have come back.
    b.tell_others(Topic::Access, Bytes::from_static(b"from b"));
    let first = tokio::time::timeout(Duration::from_secs(10), at_a.recv()).await.expect("in time").expect("heard");
    assert_eq!(first.as_ref(), b"from b", "the teller acted already and hears nothing of its own");
}

#[tokio::test]
async fn a_bridge_that_left_is_not_believed_online_by_a_replica_that_joins_later() {
    let redis = redis().await;
    let b = replica(&redis).await;
    let (conn, _inbox) = b.register_bridge("srv", "inst", "agent");
    let a = replica(&redis).await;
    until("A sees the bridge", || a.connected("srv").is_some()).await;
    let mut seen_by_a = a.presence();
    b.unregister_bridge("srv", conn);
    assert_eq!(next_offline(&mut seen_by_a, "srv").await, conn);
    // Its entry left Redis too: a replica joining now (its number alive) does not load it.
    let c = replica(&redis).await;
    assert!(c.connected("srv").is_none(), "the entry of a bridge that left is gone");
    assert_eq!(c.online_count(), 0);
}

#[tokio::test]
async fn a_replica_that_dies_is_announced_gone_and_its_successor_hands_out_other_ids() {
    let redis = redis().await;
    let a = replica(&redis).await;
    let b = replica(&redis).await;
    let mut departures = a.departures();
    let (node, (client, _rx), stream) = (b.node(), b.register_client(), b.new_stream_id());
    // B stops without a word: A, which may carry B's clients' streams, is told.
    drop(b);
    let gone = tokio::time::timeout(Duration::from_secs(20), departures.recv()).await.expect("in time");
    let gone = gone.expect("a departure");
    assert_eq!(gone.node, node);
    assert!(gone.handed_out(client), "B's client was handed out by the run that went");
    // A run on the same number never hands out the dead one's ids again.
    let c = replica(&redis).await;
    assert_eq!(c.node(), node, "the number is free again");
    let (again, _rx) = c.register_client();
    assert!(again > client, "a new run's clients count on from the clock: {again} after {client}");
    assert!(!gone.handed_out(again), "a new run's client is not the gone run's");
    assert_ne!(c.new_stream_id(), stream);
}

#[tokio::test]
async fn a_client_of_another_replica_with_too_much_queued_for_it_is_let_go() {
    const FRAME: usize = 16 * 1024;
    let redis = redis().await;
    let a = replica(&redis).await;
    let b = RedisBus::connect_with_limit(&redis.url(), "test:", 4 * FRAME).await.expect("a replica");
    let (client, mut inbox) = a.register_client();
    // Redis stops answering for a moment: what B sends for A's client waits in B's queue.
    let mut admin = redis::Client::open(redis.url()).expect("url").get_multiplexed_async_connection().await.expect("c");
    let () = redis::cmd("CLIENT").arg("PAUSE").arg(1500).arg("ALL").query_async(&mut admin).await.expect("paused");
    let frame = |i: u8| ToClient::Frame(Bytes::from(vec![i; FRAME]));
    for i in 0..4 {
        assert!(b.to_client(client, frame(i)), "frame {i} fits");
    }
    assert!(!b.to_client(client, frame(4)), "past the limit");
    assert!(!b.to_client(client, frame(5)), "refused while what was queued has not gone");
    // Once Redis answers, the client has what was queued, in order, and then its inbox ends.
    async fn next(inbox: &mut super::super::Inbox) -> Option<ToClient> {
        tokio::time::timeout(Duration::from_secs(20), inbox.recv()).await.expect("in time")
    }
    for i in 0..4 {
        assert!(
            matches!(next(&mut inbox).await, Some(ToClient::Frame(f)) if f.len() == FRAME && f[0] == i),
            "frame {i}"
        );
    }
    assert!(next(&mut inbox).await.is_none(), "let go");
    // B's count for it went with its queue (what it sends now is dropped at A, where the
    // client is gone); another client of A is served as before.
    until("B queues for the client again", || b.to_client(client, frame(8))).await;
    let (other, mut other_inbox) = a.register_client();
    assert!(b.to_client(other, frame(9)));
    assert!(matches!(next(&mut other_inbox).await, Some(ToClient::Frame(f)) if f[0] == 9));
}
