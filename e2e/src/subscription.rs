//! GraphQL subscriptions over `/graphql/ws` (the `graphql-transport-ws` protocol), as the
//! browser app and GraphQL tools subscribe.

use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::{Api, Socket};

/// A GraphQL subscription over `/graphql/ws` (the `graphql-transport-ws` protocol).
pub struct Subscription {
    ws: Socket,
}

impl Api {
    /// Subscribes with `token` (an access or API token) in the `Authorization` header.
    pub async fn subscribe_with(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Subscription> {
        let url = format!("{}/graphql/ws", self.base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request()?;
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        ws.send(Message::text(json!({ "type": "connection_init", "payload": {} }).to_string())).await?;
        let mut sub = Subscription { ws };
        let ack = sub.next_message(Duration::from_secs(10)).await?;
        anyhow::ensure!(ack["type"] == "connection_ack", "no connection_ack: {ack}");
        let start = json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
        sub.ws.send(Message::text(start.to_string())).await?;
        Ok(sub)
    }

    /// Subscribes as the signed-in user.
    pub async fn subscribe(&self, query: &str, variables: Value) -> anyhow::Result<Subscription> {
        self.subscribe_with(&self.access, query, variables).await
    }
}

impl Subscription {
    async fn next_message(&mut self, within: Duration) -> anyhow::Result<Value> {
        loop {
            let msg = tokio::time::timeout(within, self.ws.next())
                .await
                .context("nothing from the subscription in time")?
                .context("the subscription socket closed")??;
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["type"] == "ping" {
                        self.ws.send(Message::text(json!({ "type": "pong" }).to_string())).await?;
                        continue;
                    }
                    return Ok(v);
                }
                Message::Close(f) => bail!("the subscription socket closed: {f:?}"),
                _ => {}
            }
        }
    }

    /// Sends another operation (a query or mutation) on the socket, as operation `id`.
    pub async fn send(&mut self, id: &str, query: &str) -> anyhow::Result<()> {
        let op = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
        Ok(self.ws.send(Message::text(op.to_string())).await?)
    }

    /// Waits until the server closes the socket: the close code and reason. Messages that come
    /// first are skipped.
    pub async fn closed(&mut self, within: Duration) -> anyhow::Result<(u16, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next()).await.context("the socket is still open")?;
            match msg {
                None | Some(Err(_)) => bail!("the socket ended without a close frame"),
                Some(Ok(Message::Close(Some(f)))) => return Ok((u16::from(f.code), f.reason.to_string())),
                Some(Ok(Message::Close(None))) => bail!("closed without a code"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next `next` payload's data; an `error` message (e.g. refused) is an `Err` carrying
    /// its errors; `None` when the server completed the subscription.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<Result<Option<Value>, Value>> {
        let v = self.next_message(within).await?;
        Ok(match v["type"].as_str() {
            Some("next") if v["payload"]["errors"].is_array() => Err(v["payload"]["errors"].clone()),
            Some("next") => Ok(Some(v["payload"]["data"].clone())),
            Some("error") => Err(v["payload"].clone()),
            Some("complete") => Ok(None),
            _ => bail!("unexpected subscription message: {v}"),
        })
    }
}
