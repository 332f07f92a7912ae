//! The tasks that keep a replica's bus in step with Redis: the writer, the listener (which
//! subscribes again after a drop and resynchronises), and the keep-alive (which refreshes
//! this replica's number and notices replicas that died).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{Announce, FORGET, Inner, NODE_TTL, Out, REFRESH, REFRESH_NODE, ToNode, entry, lock};

pub(super) async fn connect_manager(client: &redis::Client) -> anyhow::Result<ConnectionManager> {
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        match ConnectionManager::new(client.clone()).await {
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
        for out in batch.drain(..) {
            match out {
                Out::Publish(channel, payload) => {
                    pipe.publish(channel, payload.as_ref()).ignore();
                }
                Out::Announce(a) => {
                    if a.online {
                        pipe.hset(inner.keys.bridges(), &a.server, entry(&a)).ignore();
                    } else {
                        pipe.invoke_script(
                            redis::Script::new(FORGET).key(inner.keys.bridges()).arg(&a.server).arg(a.conn),
                        )
                        .ignore();
                    }
                    pipe.publish(inner.keys.presence(), serde_json::to_vec(&a).unwrap_or_default()).ignore();
                }
            }
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
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
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if let Some(tx) = first.take() {
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
            me.broken.store(true, Ordering::Relaxed);
        }
    }
}

pub(super) async fn refresh_node(me: &Inner, conn: &mut ConnectionManager) {
    let held: Result<Option<String>, _> = redis::Script::new(REFRESH_NODE)
        .key(me.keys.node(me.node))
        .arg(&me.run)
        .arg(NODE_TTL.as_millis().to_string())
        .invoke_async(conn)
        .await;
    match held {
        Ok(Some(_)) => {}
        Ok(None) => tracing::error!(node = me.node, "another run holds this replica's number"),
        Err(e) => tracing::debug!(error = %e, "cannot refresh this replica's number"),
    }
}

/// Refreshes this replica's number, and takes the bridges of replicas that stopped
/// refreshing theirs offline; drops requests nobody waits for any more.
pub(super) async fn keep_alive(inner: std::sync::Weak<Inner>, mut conn: ConnectionManager) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(me) = inner.upgrade() else { return };
        refresh_node(&me, &mut conn).await;
        lock(&me.pending).retain(|_, p| !p.reply.is_closed());
        let remote: Vec<Announce> = me.mirror().values().filter(|a| a.node != me.node).cloned().collect();
        let Ok(live) = me.live_runs(&mut conn, remote.iter().map(|a| a.node)).await else { continue };
        for a in remote.into_iter().filter(|a| live.get(&a.node) != Some(&a.run)) {
            tracing::info!(server_id = %a.server, node = a.node, "the replica holding this bridge is gone");
            let _ = me.out.send(Out::Announce(Announce { online: false, ..a.clone() }));
            me.on_announce(Announce { online: false, run: String::new(), ..a });
        }
    }
}
