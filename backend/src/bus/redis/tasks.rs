//! The tasks that keep a replica's bus in step with Redis: the writer, the listener (which
//! subscribes again after a drop and resynchronises), and the keep-alive (which refreshes
//! this replica's number and notices replicas that died).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{Announce, CALL, FORGET, Inner, NODE_TTL, Out, REFRESH, REFRESH_NODE, RENEWED, TAKEN, ToNode, entry, lock};

pub(super) async fn connect_manager(client: &redis::Client) -> anyhow::Result<ConnectionManager> {
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        // Short reconnection attempts, each call bounded: a replica that waits on Redis for long
        // is worse than one that asks again at its next tick.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(3))
            .set_number_of_retries(1)
            .set_max_delay(500);
        match ConnectionManager::new_with_config(client.clone(), config).await {
            Ok(c) => return Ok(c),
            Err(e) if start.elapsed() < Duration::from_secs(60) => {
                if !told {
                    tracing::warn!(error = %e, "waiting for Redis");
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("cannot reach Redis after 60 s: {e}"),
        }
    }
}

/// Writes what this replica publishes, in order, pipelining whatever is queued.
pub(super) async fn write(
    inner: std::sync::Weak<Inner>,
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Out>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        let Some(inner) = inner.upgrade() else { return };
        let mut pipe = redis::pipe();
        let mut paid = Vec::new();
        for out in batch.drain(..) {
            match out {
                Out::Publish(channel, payload) => {
                    pipe.publish(channel, payload.as_ref()).ignore();
                }
                Out::ForClient { channel, payload, client, cost } => {
                    pipe.publish(channel, payload.as_ref()).ignore();
                    paid.push((client, cost));
                }
                Out::Announce(a) => {
                    if a.online {
                        pipe.hset(inner.keys.bridges(), &a.server, entry(&a)).ignore();
                    } else {
                        // EVAL, not EVALSHA: a pipeline does not load the script first, and a
                        // restarted Redis has forgotten every loaded one.
                        pipe.cmd("EVAL")
                            .arg(FORGET)
                            .arg(1)
                            .arg(inner.keys.bridges())
                            .arg(&a.server)
                            .arg(a.conn)
                            .ignore();
                    }
                    pipe.publish(inner.keys.presence(), serde_json::to_vec(&a).unwrap_or_default()).ignore();
                }
            }
        }
        let written = tokio::time::timeout(CALL, pipe.query_async::<()>(&mut conn)).await;
        // Sent, or lost with the connection (a gap the listeners resynchronise after).
        inner.owed.paid(paid);
        if let Err(e) = written.map_err(|_| "no answer in time".to_owned()).and_then(|r| r.map_err(|e| e.to_string())) {
            if !inner.broken.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "cannot write to Redis; other replicas miss this one's messages until it is back");
            }
        }
    }
}

/// Listens on this replica's channel and on presence, subscribing again whenever the
/// connection drops, and resynchronising after each gap.
pub(super) async fn listen(
    inner: std::sync::Weak<Inner>,
    client: redis::Client,
    mut conn: ConnectionManager,
    mut first: Option<oneshot::Sender<()>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(me) = inner.upgrade() else { return };
        let channels = [me.keys.to(me.node), me.keys.presence(), me.keys.topics()];
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channels).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match subscribed.await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to Redis; trying again");
                drop(me);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        me.listening.store(true, Ordering::SeqCst);
        if let Some(tx) = first.take() {
            // The map, taken after subscribing and before handling a message: no change falls
            // between the two, and none is undone by it.
            if let Err(e) = me.reload(&mut conn).await {
                tracing::warn!(error = %e, "cannot load the replicas' bridges");
                drop(me);
                continue;
            }
            let _ = tx.send(());
        } else {
            tracing::info!("Redis is back: announcing this replica's bridges and reloading the others'");
            me.broken.store(false, Ordering::Relaxed);
            refresh_node(&me, &mut conn).await;
            me.announce_all();
            // Whatever was told while Redis was away is lost: act as if access changed.
            me.local.topics.deliver(super::Topic::Access, Bytes::new());
            if let Err(e) = me.reload(&mut conn).await {
                tracing::warn!(error = %e, "cannot reload the replicas' bridges");
            }
        }
        let (presence, topics) = (me.keys.presence(), me.keys.topics());
        drop(me);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Some(me) = inner.upgrade() else { return };
            let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
            if msg.get_channel_name() == topics {
                me.on_topic(payload);
            } else if msg.get_channel_name() == presence {
                match serde_json::from_slice::<Announce>(&payload) {
                    Ok(a) => me.on_announce(a),
                    Err(e) => tracing::debug!(error = %e, "a malformed announcement"),
                }
            } else {
                match ToNode::decode(payload) {
                    Ok(m) => me.on_message(m),
                    Err(e) => tracing::debug!(error = %e, "dropped a message from another replica"),
                }
            }
        }
        tracing::warn!("lost the subscription to Redis; subscribing again");
        if let Some(me) = inner.upgrade() {
            me.listening.store(false, Ordering::SeqCst);
            me.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// Renews this replica's number. Taken again after it had expired (Redis restarted, or this
/// process stalled), the others may have taken this replica's bridges offline: they are
/// announced again. Held by another run, every id this replica hands out could collide with
/// that run's: the process stops (its supervisor starts it again, with a number of its own).
pub(super) async fn refresh_node(me: &Inner, conn: &mut ConnectionManager) {
    let script = redis::Script::new(REFRESH_NODE);
    let mut call = script.key(me.keys.node(me.node));
    call.arg(&me.run).arg(NODE_TTL.as_millis().to_string());
    let held = match tokio::time::timeout(CALL, call.invoke_async::<i64>(conn)).await {
        Ok(r) => r,
        Err(_) => return tracing::debug!(node = me.node, "Redis did not answer the refresh in time"),
    };
    match held {
        Ok(RENEWED) => {}
        Ok(TAKEN) => {
            tracing::warn!(node = me.node, "this replica's number had expired; announcing its bridges again");
            me.announce_all();
        }
        Ok(_) => {
            tracing::error!(node = me.node, "another run took this replica's number: stopping, to be started afresh");
            std::process::exit(75);
        }
        Err(e) => tracing::debug!(node = me.node, error = %e, "cannot refresh this replica's number"),
    }
}

/// Refreshes this replica's number, and takes the bridges of replicas that stopped
/// refreshing theirs offline; drops requests nobody waits for any more.
pub(super) async fn keep_alive(inner: std::sync::Weak<Inner>, mut conn: ConnectionManager) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Replicas found gone once: gone twice in a row, their bridges go offline (a replica
    // that stalled for a moment is not dropped).
    let mut missing: std::collections::HashSet<(u8, String)> = Default::default();
    // Every other replica's run as last seen, and those found gone once.
    let mut runs: std::collections::HashMap<u8, String> = Default::default();
    // When each was last seen alive: the ids it handed out are below this time's.
    let mut alive_at: std::collections::HashMap<u8, i64> = Default::default();
    let mut vanishing: std::collections::HashSet<(u8, String)> = Default::default();
    loop {
        tick.tick().await;
        let Some(me) = inner.upgrade() else { return };
        refresh_node(&me, &mut conn).await;
        if me.broken.swap(false, Ordering::Relaxed) {
            // A write failed: what it carried may be lost; say it all again.
            me.announce_all();
        }
        lock(&me.pending).retain(|_, p| !p.reply.is_closed() && p.deadline > std::time::Instant::now());
        let remote: Vec<Announce> = me.mirror().values().filter(|a| a.node != me.node).cloned().collect();
        // Every number, not only those holding bridges: a replica without any may have
        // clients whose streams the bridges here carry.
        let Ok(live) = me.live_runs(&mut conn, (1..=u8::MAX).filter(|n| *n != me.node)).await else { continue };
        let gone_runs: std::collections::HashSet<(u8, String)> =
            runs.iter().filter(|(n, r)| live.get(n) != Some(*r)).map(|(n, r)| (*n, r.clone())).collect();
        // Gone twice in a row: its clients' streams are closed. (A run taking the number
        // only after the old one's expired, a new replica on it in the moment between is
        // rare, and at worst has a stream it just opened closed: it opens it again.)
        for (node, _) in gone_runs.intersection(&vanishing) {
            tracing::info!(node, "a replica is gone: closing the streams of its clients");
            runs.remove(node);
            let seen = alive_at.remove(node).unwrap_or_default().max(0) as u64;
            let _ = me.local.departures.send(crate::bus::Departure { node: *node, before: seen << 6 });
        }
        vanishing = gone_runs.into_iter().filter(|(n, _)| runs.contains_key(n)).collect();
        for (node, run) in &live {
            if !vanishing.iter().any(|(n, _)| n == node) {
                runs.insert(*node, run.clone());
                alive_at.insert(*node, crate::clock::now_ms());
            }
        }
        let gone: std::collections::HashSet<(u8, String)> =
            remote.iter().filter(|a| live.get(&a.node) != Some(&a.run)).map(|a| (a.node, a.run.clone())).collect();
        let confirmed: Vec<&(u8, String)> = gone.intersection(&missing).collect();
        for a in remote.iter().filter(|a| confirmed.contains(&&(a.node, a.run.clone()))) {
            tracing::info!(server_id = %a.server, node = a.node, "the replica holding this bridge is gone");
            let _ = me.out.send(Out::Announce(Announce { online: false, ..a.clone() }));
            me.on_announce(Announce { online: false, run: String::new(), ..a.clone() });
        }
        missing = gone;
    }
}
