//! The assistant in GraphQL: a workspace's model provider (set, test) and conversations (send,
//! stop, approve a tool call, list, search, rename, export, delete). Its agents are in
//! `agents.rs`.

use super::scalars::Int64;
use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::{gql, state, user};
use crate::assistant::chat::{self, Ask, Attachment};
use crate::assistant::provider::{self, KeyChange, ProviderView};
use crate::auth::scopes::Scope;
use crate::db::{ChatMessage, Conversation};
use crate::error::Error;
use crate::teams::{Role, require_role, workspace_role};

#[derive(SimpleObject)]
pub struct AiProviderView {
    base_url: String,
    model: String,
    /// The API key's last characters, when one is stored (the key itself is never shown).
    api_key_hint: Option<String>,
    /// False while the workspace uses the instance's default.
    chosen: bool,
}

impl From<ProviderView> for AiProviderView {
    fn from(p: ProviderView) -> Self {
        Self { base_url: p.base_url, model: p.model, api_key_hint: p.api_key_hint, chosen: p.chosen }
    }
}

/// Whether the workspace's model answers, for the panel to say so before anyone types.
#[derive(SimpleObject)]
pub struct AiReachability {
    ok: bool,
    /// Why not, for people: refused, or not reachable and what the network said.
    detail: Option<String>,
}

#[derive(SimpleObject)]
pub struct ConversationView {
    id: String,
    workspace_id: String,
    server_id: Option<String>,
    project_id: Option<String>,
    agent_id: Option<String>,
    title: String,
    created_ms: Int64,
    updated_ms: Int64,
    /// An answer is being written now.
    running: bool,
}

fn conversation_view(c: Conversation, running: bool) -> ConversationView {
    ConversationView {
        running,
        id: c.id,
        workspace_id: c.workspace_id,
        server_id: c.server_id,
        project_id: c.project_id,
        agent_id: c.agent_id,
        title: c.title,
        created_ms: c.created_ms.into(),
        updated_ms: c.updated_ms.into(),
    }
}

#[derive(SimpleObject)]
pub struct ToolCallView {
    id: String,
    name: String,
    /// The arguments, as JSON text.
    arguments: String,
    /// It changes the server.
    changes: bool,
    /// For a write: the change as a unified diff.
    preview: Option<String>,
    /// `pending`, `approved`, `declined`, `auto` or `read`.
    decision: String,
}

#[derive(SimpleObject)]
pub struct AttachmentView {
    kind: String,
    name: String,
    /// How long the attached text is, in characters.
    chars: i64,
}

#[derive(SimpleObject)]
pub struct MessageView {
    id: Int64,
    /// `user`, `assistant` or `tool`.
    role: String,
    content: String,
    /// `done`, `streaming`, `stopped`, `failed` or `waiting` (for a decision on its calls).
    state: String,
    error: Option<String>,
    tool_calls: Vec<ToolCallView>,
    /// The call a tool message answers.
    tool_call_id: Option<String>,
    attachments: Vec<AttachmentView>,
    created_ms: Int64,
}

impl From<ChatMessage> for MessageView {
    fn from(m: ChatMessage) -> Self {
        let calls: Vec<chat::StoredCall> =
            m.tool_calls.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        let attachments: Vec<Attachment> =
            m.context.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        Self {
            id: m.id.into(),
            role: m.role,
            content: m.content,
            state: m.state.as_str().to_owned(),
            error: m.error,
            tool_calls: calls
                .into_iter()
                .map(|c| ToolCallView {
                    id: c.call.id,
                    name: c.call.function.name,
                    arguments: c.call.function.arguments,
                    changes: c.changes,
                    preview: c.preview,
                    decision: c.decision.to_string(),
                })
                .collect(),
            tool_call_id: m.tool_call_id,
            attachments: attachments
                .into_iter()
                .map(|a| AttachmentView { chars: a.text.chars().count() as i64, kind: a.kind, name: a.name })
                .collect(),
            created_ms: m.created_ms.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct ConversationDetail {
    conversation: ConversationView,
    messages: Vec<MessageView>,
}

#[derive(InputObject)]
pub struct AttachmentInput {
    /// `file`, `selection` or `terminal`.
    kind: String,
    name: String,
    text: String,
}

#[derive(InputObject)]
pub struct ChatInput {
    /// Continue this conversation; a new one starts when absent.
    conversation_id: Option<String>,
    /// For a new conversation: where it is.
    workspace_id: Option<String>,
    server_id: Option<String>,
    project_id: Option<String>,
    /// The agent that answers, with its tools.
    agent_id: Option<String>,
    text: String,
    #[graphql(default)]
    context: Vec<AttachmentInput>,
}

#[derive(SimpleObject)]
pub struct Sent {
    conversation: ConversationView,
    message: MessageView,
}

#[derive(Default)]
pub struct AssistantQuery;

#[Object]
impl AssistantQuery {
    /// The model a workspace's assistant uses.
    async fn ai_provider(&self, ctx: &Context<'_>, workspace_id: String) -> async_graphql::Result<AiProviderView> {
        let u = user(ctx, Scope::Read)?;
        Ok(provider::view(&state(ctx).assistant, u, &workspace_id).await.map_err(gql)?.into())
    }

    /// Whether the workspace's model answers now (its list of models, with the stored key;
    /// any member may ask: nothing about the key is shown).
    async fn ai_reachable(&self, ctx: &Context<'_>, workspace_id: String) -> async_graphql::Result<AiReachability> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let (_, role) = workspace_role(&st.store, u, &workspace_id).await.map_err(gql)?;
        let p = provider::for_workspace(&st.assistant, &workspace_id).await.map_err(gql)?;
        Ok(match st.assistant.client.models(&p).await {
            Ok(_) => AiReachability { ok: true, detail: None },
            // The provider's own words can quote the key's ends: only for admins, who set it.
            Err(e) if role >= Role::Admin => AiReachability { ok: false, detail: Some(e.to_string()) },
            Err(_) => AiReachability { ok: false, detail: Some("the model did not answer".into()) },
        })
    }

    /// The caller's conversations, the latest first; in a workspace or project, or matching
    /// `search` in their titles and messages, when given.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        workspace_id: Option<String>,
        project_id: Option<String>,
        search: Option<String>,
        #[graphql(default = 50)] limit: i64,
    ) -> async_graphql::Result<Vec<ConversationView>> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let workspace = workspace_id.or_else(|| u.1.workspace().map(str::to_owned));
        if let Some(ws) = &workspace {
            workspace_role(&st.store, u, ws).await.map_err(gql)?;
        }
        let limit = limit.clamp(1, chat::MAX_LISTED);
        let list = st
            .store
            .conversations(&u.0.id, workspace.as_deref(), project_id.as_deref(), search.as_deref(), limit)
            .await
            .map_err(|e| gql(e.into()))?;
        let running = st.assistant.chats.running().await.map_err(gql)?;
        Ok(list
            .into_iter()
            .map(|c| {
                let running = running.contains(&c.id);
                conversation_view(c, running)
            })
            .collect())
    }

    /// One of the caller's conversations with its messages.
    async fn conversation(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<ConversationDetail> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let c = chat::conversation(&st.assistant, u, &id).await.map_err(gql)?;
        let messages = st.store.messages(&c.id).await.map_err(|e| gql(e.into()))?;
        let running = st.assistant.chats.is_running(&c.id).await.map_err(gql)?;
        Ok(ConversationDetail {
            conversation: conversation_view(c, running),
            messages: messages.into_iter().map(MessageView::from).collect(),
        })
    }

    /// A conversation as `markdown` or `json`.
    async fn export_conversation(
        &self,
        ctx: &Context<'_>,
        id: String,
        format: String,
    ) -> async_graphql::Result<String> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let c = chat::conversation(&st.assistant, u, &id).await.map_err(gql)?;
        let messages = st.store.messages(&c.id).await.map_err(|e| gql(e.into()))?;
        match format.as_str() {
            "markdown" => Ok(chat::to_markdown(&c, &messages)),
            "json" => {
                let messages: Vec<serde_json::Value> = messages
                    .into_iter()
                    .map(|m| {
                        serde_json::json!({
                            "role": m.role, "content": m.content, "state": m.state.as_str(), "error": m.error,
                            "tool_calls": m.tool_calls.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()),
                            "tool_call_id": m.tool_call_id,
                            "context": m.context.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()),
                            "created_ms": m.created_ms,
                        })
                    })
                    .collect();
                let doc = serde_json::json!({
                    "id": c.id, "title": c.title, "workspace_id": c.workspace_id, "server_id": c.server_id,
                    "project_id": c.project_id, "agent_id": c.agent_id, "created_ms": c.created_ms, "messages": messages,
                });
                serde_json::to_string_pretty(&doc).map_err(|e| gql(Error::Other(e.into())))
            }
            other => Err(gql(Error::BadRequest(format!("format {other:?} is not known; use markdown or json")))),
        }
    }
}

#[derive(Default)]
pub struct AssistantMutation;

#[Object]
impl AssistantMutation {
    /// Chooses a workspace's model (admins). `apiKey` replaces the stored key; `removeApiKey`
    /// drops it; neither keeps it.
    async fn set_ai_provider(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        base_url: String,
        model: String,
        api_key: Option<String>,
        #[graphql(default)] remove_api_key: bool,
    ) -> async_graphql::Result<AiProviderView> {
        let u = user(ctx, Scope::Write)?;
        let key = match (api_key, remove_api_key) {
            (Some(k), _) => KeyChange::Set(k),
            (None, true) => KeyChange::Remove,
            (None, false) => KeyChange::Keep,
        };
        let view = provider::set(&state(ctx).assistant, u, &workspace_id, &base_url, &model, key).await.map_err(gql)?;
        Ok(view.into())
    }

    /// Asks the workspace's provider (or, before saving, the one at `baseUrl` with `apiKey`)
    /// for its models (admins): a connection test.
    async fn test_ai_provider(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        base_url: Option<String>,
        api_key: Option<String>,
    ) -> async_graphql::Result<Vec<String>> {
        let u = user(ctx, Scope::Write)?;
        let st = state(ctx);
        let (_, role) = workspace_role(&st.store, u, &workspace_id).await.map_err(gql)?;
        require_role(role, Role::Admin, "testing the assistant's model").map_err(gql)?;
        let mut p = provider::for_workspace(&st.assistant, &workspace_id).await.map_err(gql)?;
        if let Some(url) = base_url {
            let url = crate::egress::valid_base_url(&url).map_err(|e| gql(Error::BadRequest(e)))?;
            if url != p.base_url {
                // The stored key belongs to the stored address: it is never sent elsewhere.
                p.api_key = None;
            }
            p.base_url = url;
        }
        if let Some(k) = api_key.filter(|k| !k.trim().is_empty()) {
            p.api_key = Some(k.trim().to_owned());
        }
        st.assistant.client.models(&p).await.map_err(|e| {
            let code = match e {
                crate::assistant::openai::AiError::Refused { .. } => porta_shared::ErrorCode::Forbidden,
                _ => porta_shared::ErrorCode::Unavailable,
            };
            gql(Error::Wire(porta_shared::ErrorBody::new(code, e.to_string())))
        })
    }

    /// Sends a message; the answer streams to watchers of the conversation (`chat.watch`).
    async fn send_chat_message(&self, ctx: &Context<'_>, input: ChatInput) -> async_graphql::Result<Sent> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let workspace_id = match (&input.conversation_id, input.workspace_id) {
            (Some(_), _) => String::new(),
            (None, Some(ws)) => ws,
            (None, None) => return Err(gql(Error::BadRequest("name the workspace (or the conversation)".into()))),
        };
        let ask = Ask {
            conversation: input.conversation_id,
            workspace_id,
            server_id: input.server_id,
            project_id: input.project_id,
            agent_id: input.agent_id,
            text: input.text,
            context: input
                .context
                .into_iter()
                .map(|a| Attachment { kind: a.kind, name: a.name, text: a.text })
                .collect(),
        };
        let (c, message) = chat::send(&st.assistant, u, ask).await.map_err(gql)?;
        // Its answer has just begun.
        Ok(Sent { conversation: conversation_view(c, true), message: message.into() })
    }

    /// Stops the answer being written; false when none was.
    async fn stop_chat(&self, ctx: &Context<'_>, conversation_id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Read)?;
        chat::stop(&state(ctx).assistant, u, &conversation_id).await.map_err(gql)
    }

    /// Approves or declines a tool call waiting for the caller.
    async fn decide_tool_call(
        &self,
        ctx: &Context<'_>,
        conversation_id: String,
        call_id: String,
        approve: bool,
    ) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Read)?;
        u.require_person("approving or declining an agent's action").map_err(gql)?;
        chat::decide(&state(ctx).assistant, u, &conversation_id, &call_id, approve).await.map_err(gql)?;
        Ok(true)
    }

    async fn rename_conversation(&self, ctx: &Context<'_>, id: String, title: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let c = chat::conversation(&st.assistant, u, &id).await.map_err(gql)?;
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
            return Err(gql(Error::BadRequest("a title is 1 to 200 printable characters".into())));
        }
        st.store.rename_conversation(&c.id, title).await.map_err(|e| gql(e.into()))?;
        Ok(true)
    }

    async fn delete_conversation(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let c = chat::conversation(&st.assistant, u, &id).await.map_err(gql)?;
        if st.assistant.chats.is_running(&c.id).await.map_err(gql)? {
            return Err(gql(Error::Conflict("stop the answer being written first".into())));
        }
        st.store.delete_conversation(&c.id).await.map_err(|e| gql(e.into()))?;
        Ok(true)
    }
}
