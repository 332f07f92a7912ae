//! The assistant's GraphQL calls.

use serde::Deserialize;
use serde_json::json;

use crate::api::graphql;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInfo {
    pub id: String,
    pub title: String,
    pub updated_ms: f64,
    pub running: bool,
    pub agent_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub changes: bool,
    pub preview: Option<String>,
    /// `pending`, `approved`, `declined`, `auto` or `read`.
    pub decision: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Attached {
    pub kind: String,
    pub name: String,
    pub chars: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: i64,
    /// `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    /// `done`, `streaming`, `stopped`, `failed` or `waiting`.
    pub state: String,
    pub error: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
    pub attachments: Vec<Attached>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Detail {
    pub conversation: ConversationInfo,
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub disabled: bool,
}

/// Something attached to a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub kind: &'static str,
    pub name: String,
    pub text: String,
}

const CONVERSATION: &str = "id title updatedMs running agentId";

/// Whether the workspace's model answers now, and why not.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Reachability {
    pub ok: bool,
    pub detail: Option<String>,
}

pub async fn reachable(token: &str, workspace: &str) -> Result<Reachability, String> {
    let q = "query($w: String!) { aiReachable(workspaceId: $w) { ok detail } }";
    graphql(token, q, json!({ "w": workspace }), "aiReachable").await
}

pub async fn conversations(token: &str, workspace: &str, search: &str) -> Result<Vec<ConversationInfo>, String> {
    let q = format!(
        "query($w: String, $s: String) {{ conversations(workspaceId: $w, search: $s, limit: 100) {{ {CONVERSATION} }} }}"
    );
    let search = (!search.trim().is_empty()).then_some(search.trim());
    graphql(token, &q, json!({ "w": workspace, "s": search }), "conversations").await
}

pub async fn conversation(token: &str, id: &str) -> Result<Detail, String> {
    let q = format!(
        "query($id: String!) {{ conversation(id: $id) {{ conversation {{ {CONVERSATION} }}
            messages {{ id role content state error toolCallId attachments {{ kind name chars }}
                toolCalls {{ id name arguments changes preview decision }} }} }} }}"
    );
    graphql(token, &q, json!({ "id": id }), "conversation").await
}

/// Where a new conversation is.
pub struct Place<'a> {
    pub workspace: &'a str,
    pub server: &'a str,
    pub agent: Option<&'a str>,
}

/// Sends a message (starting a conversation when `conversation` is absent); returns the
/// conversation's id.
pub async fn send(
    token: &str,
    conversation: Option<&str>,
    place: Place<'_>,
    text: &str,
    context: &[Attachment],
) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Sent {
        conversation: ConversationInfo,
    }
    let q = "mutation($i: ChatInput!) { sendChatMessage(input: $i) { conversation { id title updatedMs running agentId } } }";
    let context: Vec<_> = context.iter().map(|a| json!({ "kind": a.kind, "name": a.name, "text": a.text })).collect();
    let input = match conversation {
        Some(c) => json!({ "conversationId": c, "text": text, "context": context }),
        None => json!({
            "workspaceId": place.workspace, "serverId": place.server, "agentId": place.agent,
            "text": text, "context": context,
        }),
    };
    let sent: Sent = graphql(token, q, json!({ "i": input }), "sendChatMessage").await?;
    Ok(sent.conversation.id)
}

pub async fn stop(token: &str, conversation: &str) -> Result<bool, String> {
    graphql(token, "mutation($c: String!) { stopChat(conversationId: $c) }", json!({ "c": conversation }), "stopChat")
        .await
}

pub async fn decide(token: &str, conversation: &str, call: &str, approve: bool) -> Result<bool, String> {
    let q = "mutation($c: String!, $k: String!, $a: Boolean!) { decideToolCall(conversationId: $c, callId: $k, approve: $a) }";
    graphql(token, q, json!({ "c": conversation, "k": call, "a": approve }), "decideToolCall").await
}

pub async fn rename(token: &str, id: &str, title: &str) -> Result<bool, String> {
    let q = "mutation($c: String!, $t: String!) { renameConversation(id: $c, title: $t) }";
    graphql(token, q, json!({ "c": id, "t": title }), "renameConversation").await
}

pub async fn delete(token: &str, id: &str) -> Result<bool, String> {
    graphql(token, "mutation($c: String!) { deleteConversation(id: $c) }", json!({ "c": id }), "deleteConversation")
        .await
}

pub async fn export(token: &str, id: &str, format: &str) -> Result<String, String> {
    let q = "query($c: String!, $f: String!) { exportConversation(id: $c, format: $f) }";
    graphql(token, q, json!({ "c": id, "f": format }), "exportConversation").await
}

pub async fn agents(token: &str, workspace: &str) -> Result<Vec<AgentInfo>, String> {
    let q = "query($w: String!) { agents(workspaceId: $w) { id name kind disabled } }";
    graphql(token, q, json!({ "w": workspace }), "agents").await
}

/// A rough count of the tokens a text takes (about four characters each), for the counter.
pub fn estimate_tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_estimated_from_characters() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(4000), 1000);
    }
}
