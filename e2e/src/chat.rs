//! The assistant's conversations as the web app follows them: send through GraphQL, watch
//! on a socket, gather each message's text from its deltas.

use std::collections::HashMap;
use std::time::Duration;

use porta_shared::client::{ChatWatch, ClientEvent};
use serde_json::{Value, json};

use crate::client::{Api, Ws};

const WAIT: Duration = Duration::from_secs(30);

/// Sends a message; returns the conversation's id.
pub async fn send(api: &Api, input: Value) -> anyhow::Result<String> {
    let q = "mutation($i: ChatInput!) { sendChatMessage(input: $i) { conversation { id } message { id } } }";
    let v = api.graphql(q, json!({ "i": input })).await?;
    let id = v["data"]["sendChatMessage"]["conversation"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!id.is_empty(), "send: {v}");
    Ok(id)
}

/// A conversation and its messages, with their calls.
pub async fn conversation(api: &Api, id: &str) -> anyhow::Result<Value> {
    let q = "query($id: String!) { conversation(id: $id) {
        conversation { title running }
        messages { id role content state error toolCallId attachments { kind name chars }
                   toolCalls { id name arguments changes preview decision } } } }";
    let v = api.graphql(q, json!({ "id": id })).await?;
    anyhow::ensure!(v["errors"].is_null(), "{v}");
    Ok(v["data"]["conversation"].clone())
}

/// Follows a conversation until an event matches `until`, gathering each message's text
/// from its deltas (placed by offset, so a repeated piece is not doubled; a gap fails).
pub async fn follow(
    ws: &mut Ws,
    conversation: &str,
    texts: &mut HashMap<i64, String>,
    until: impl Fn(&ClientEvent) -> bool,
) -> anyhow::Result<()> {
    loop {
        let ev = ws
            .wait_event(
                |e| match e {
                    ClientEvent::ChatDelta(d) => d.conversation == conversation,
                    ClientEvent::ChatChanged(c) => c.conversation == conversation,
                    _ => false,
                },
                WAIT,
            )
            .await?;
        if let ClientEvent::ChatDelta(d) = &ev {
            let text = texts.entry(d.message).or_default();
            let offset = usize::try_from(d.offset)?;
            anyhow::ensure!(offset <= text.len(), "a gap before offset {offset}: had {}", text.len());
            text.truncate(offset);
            text.push_str(&d.text);
        }
        if until(&ev) {
            return Ok(());
        }
    }
}

/// The answer is over.
pub fn finished(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::ChatChanged(c) if c.finished)
}

/// Starts watching: the text so far of the message being written goes into `texts`.
pub async fn watch(ws: &mut Ws, conversation: &str, texts: &mut HashMap<i64, String>) -> anyhow::Result<()> {
    let watching =
        ws.call(ChatWatch { conversation: conversation.to_owned() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if let Some(m) = watching.message {
        texts.insert(m, watching.text);
    }
    Ok(())
}

/// Follows until a message waits for the person's decision; that message.
pub async fn until_waiting(
    api: &Api,
    ws: &mut Ws,
    id: &str,
    texts: &mut HashMap<i64, String>,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Read first: the change may have come before the watch began.
        let c = conversation(api, id).await?;
        if let Some(m) = c["messages"].as_array().into_iter().flatten().find(|m| m["state"] == "waiting") {
            return Ok(m.clone());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no call waited: {c}");
        follow(ws, id, texts, |e| matches!(e, ClientEvent::ChatChanged(_))).await?;
    }
}
