//! The assistant's tables: workspaces' model providers, conversations and their messages.

use sqlx::FromRow;

use super::engine::{Builder, query, query_as, query_scalar};
use super::{Result, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct AiProviderRow {
    pub workspace_id: String,
    pub base_url: String,
    pub model: String,
    pub api_key_sealed: Option<String>,
    pub api_key_hint: Option<String>,
    pub updated_by: String,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct Conversation {
    pub id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub server_id: Option<String>,
    pub project_id: Option<String>,
    pub agent_id: Option<String>,
    pub title: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const CONVERSATION_COLUMNS: &str =
    "id, user_id, workspace_id, server_id, project_id, agent_id, title, created_ms, updated_ms";

#[derive(Debug, Clone, FromRow)]
pub struct ChatMessage {
    pub id: i64,
    pub conversation_id: String,
    /// `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    /// JSON: what was attached to a person's message.
    pub context: Option<String>,
    /// JSON: the tools an assistant message calls.
    pub tool_calls: Option<String>,
    /// The call a tool message answers.
    pub tool_call_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: MessageState,
    pub error: Option<String>,
    pub created_ms: i64,
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, role, content, context, tool_calls, tool_call_id, state, error, created_ms";

/// Where a message is in its life; stored and sent as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    #[default]
    Done,
    /// Its text is being written.
    Streaming,
    /// The person stopped the answer.
    Stopped,
    Failed,
    /// Tool calls wait for the person's decision.
    Waiting,
}

impl MessageState {
    /// The states of a message its writer has not finished.
    pub const UNFINISHED: [Self; 2] = [Self::Streaming, Self::Waiting];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Streaming => "streaming",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
        }
    }
}

impl TryFrom<String> for MessageState {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        [Self::Done, Self::Streaming, Self::Stopped, Self::Failed, Self::Waiting]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown message state {s:?}"))
    }
}

/// A new message.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
    pub context: Option<String>,
    pub tool_calls: Option<String>,
    pub tool_call_id: Option<&'a str>,
    pub state: MessageState,
}

impl Store {
    pub async fn ai_provider(&self, workspace_id: &str) -> Result<Option<AiProviderRow>> {
        query_as(
            "SELECT workspace_id, base_url, model, api_key_sealed, api_key_hint, updated_by, updated_ms \
             FROM ai_providers WHERE workspace_id = ?",
        )
        .bind(workspace_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    pub async fn set_ai_provider(&self, row: &AiProviderRow) -> Result<()> {
        query(
            "INSERT INTO ai_providers (workspace_id, base_url, model, api_key_sealed, api_key_hint, updated_by, \
             updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id) DO UPDATE SET \
             base_url = excluded.base_url, model = excluded.model, api_key_sealed = excluded.api_key_sealed, \
             api_key_hint = excluded.api_key_hint, updated_by = excluded.updated_by, updated_ms = excluded.updated_ms",
        )
        .bind(&row.workspace_id)
        .bind(&row.base_url)
        .bind(&row.model)
        .bind(&row.api_key_sealed)
        .bind(&row.api_key_hint)
        .bind(&row.updated_by)
        .bind(row.updated_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    pub async fn insert_conversation(&self, c: &Conversation) -> Result<()> {
        query(
            "INSERT INTO conversations (id, user_id, workspace_id, server_id, project_id, agent_id, title, \
             created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(&c.workspace_id)
        .bind(&c.server_id)
        .bind(&c.project_id)
        .bind(&c.agent_id)
        .bind(&c.title)
        .bind(c.created_ms)
        .bind(c.updated_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    /// A conversation of `user_id` (no one else's).
    pub async fn conversation(&self, user_id: &str, id: &str) -> Result<Option<Conversation>> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ? AND user_id = ?");
        query_as(&sql).bind(id).bind(user_id).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    /// A person's conversations, the latest first: in one workspace, about one project, and
    /// whose title or messages contain `search`, when those are given.
    pub async fn conversations(
        &self,
        user_id: &str,
        workspace_id: Option<&str>,
        project_id: Option<&str>,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Conversation>> {
        let mut b = Builder::new(format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE user_id = "));
        b.push_bind(user_id);
        if let Some(ws) = workspace_id {
            b.push(" AND workspace_id = ").push_bind(ws);
        }
        if let Some(p) = project_id {
            b.push(" AND project_id = ").push_bind(p);
        }
        if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
            b.push(" AND (instr(lower(title), lower(").push_bind(s).push(")) > 0");
            b.push(" OR EXISTS (SELECT 1 FROM chat_messages m WHERE m.conversation_id = c.id AND m.role != 'tool'");
            b.push(" AND instr(lower(m.content), lower(").push_bind(s).push(")) > 0))");
        }
        b.push(" ORDER BY updated_ms DESC, id LIMIT ").push_bind(limit);
        b.query_as().fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn rename_conversation(&self, id: &str, title: &str) -> Result<()> {
        query("UPDATE conversations SET title = ? WHERE id = ?").bind(title).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn delete_conversation(&self, id: &str) -> Result<()> {
        query("DELETE FROM conversations WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Appends a message; the conversation's time moves on.
    pub async fn add_message(&self, conversation_id: &str, m: NewMessage<'_>) -> Result<ChatMessage> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let id: i64 = query_scalar(
            "INSERT INTO chat_messages (conversation_id, role, content, context, tool_calls, tool_call_id, state, \
             created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(conversation_id)
        .bind(m.role)
        .bind(m.content)
        .bind(&m.context)
        .bind(&m.tool_calls)
        .bind(m.tool_call_id)
        .bind(m.state.as_str())
        .bind(now)
        .fetch_one(&mut tx)
        .await?;
        query("UPDATE conversations SET updated_ms = ? WHERE id = ?")
            .bind(now)
            .bind(conversation_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(ChatMessage {
            id,
            conversation_id: conversation_id.to_owned(),
            role: m.role.to_owned(),
            content: m.content.to_owned(),
            context: m.context,
            tool_calls: m.tool_calls,
            tool_call_id: m.tool_call_id.map(str::to_owned),
            state: m.state,
            error: None,
            created_ms: now,
        })
    }

    /// Saves a message's text and state as it is written.
    pub async fn update_message(
        &self,
        id: i64,
        content: &str,
        tool_calls: Option<&str>,
        state: MessageState,
        error: Option<&str>,
    ) -> Result<()> {
        query("UPDATE chat_messages SET content = ?, tool_calls = ?, state = ?, error = ? WHERE id = ?")
            .bind(content)
            .bind(tool_calls)
            .bind(state.as_str())
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<ChatMessage>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE conversation_id = ? ORDER BY id");
        query_as(&sql).bind(conversation_id).fetch_all(&self.pool).await.map_err(StoreError::from)
    }
}
