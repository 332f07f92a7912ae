//! Conversations with the assistant, and the loop that writes its answers.
//!
//! A person's message starts a run: a task, independent of any socket, that streams the
//! model's answer into a message (saved as it grows, so a reload shows what was written and
//! the rest follows), and, for an agent, carries out the tools the model calls — reads at
//! once, changes (writes, commands) only once the person approves them, unless the agent may
//! use that tool without asking — until the model answers without calling tools, the person
//! stops it, or the agent's limits on steps and time are reached. Watchers (browser tabs) get
//! each piece of text as it comes and a nudge when messages change.

mod approval;
mod generation;
mod replicas;
mod runs;
mod transcript;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Assistant;
use super::openai::ToolCall;
use crate::auth::AuthUser;
use crate::auth::scopes::Scope;
use crate::clock::now_ms;
pub use crate::db::MessageState;
use crate::db::{Agent, ChatMessage, Conversation, NewMessage};
use crate::error::{Error, Result};
use crate::teams::{Role, authorize_server, workspace_role};
pub use approval::{APPROVAL_WAIT, Approval, ask_approval, decide};
use generation::Generation;
use runs::Run;
pub use runs::{ChatEvent, Chats};
pub use transcript::to_markdown;

/// What became of a tool call; kept with it as its lowercase name. A name this version does
/// not know reads as declined (never run), so one odd row cannot hide a message's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Waiting for the person.
    Pending,
    Approved,
    /// Declined by the person, or not allowed (and so not run); also what a call kept
    /// without a decision counts as.
    #[default]
    Declined,
    /// Allowed without asking.
    Auto,
    /// A read, which needs no approval.
    Read,
    /// Blocked by the workspace's command policy.
    Blocked,
    /// Given up by the agent that asked (an MCP client's cancellation) before the person
    /// decided; never run.
    Cancelled,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Auto => "auto",
            Self::Read => "read",
            Self::Blocked => "blocked",
            Self::Cancelled => "cancelled",
        }
    }
}

impl<'de> Deserialize<'de> for Decision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok([Self::Pending, Self::Approved, Self::Declined, Self::Auto, Self::Read, Self::Blocked, Self::Cancelled]
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or_default())
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often a growing answer is saved.
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// Most characters of one message a person sends (attachments included).
pub const MAX_MESSAGE_CHARS: usize = 200_000;
/// Most bytes of one answer kept.
pub const MAX_ANSWER_BYTES: usize = 400_000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 20;
/// Most conversations listed at once.
pub const MAX_LISTED: i64 = 200;

/// Something attached to a person's message: the open file, the selection, the terminal's
/// last output, or a file picked by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// `file`, `selection`, `terminal`.
    pub kind: String,
    /// The file's path, or the terminal's name.
    pub name: String,
    pub text: String,
}

/// A tool call as kept with its message: what the model asked, what the person saw (the
/// diff of a write) and what was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCall {
    #[serde(flatten)]
    pub call: ToolCall,
    /// It changes the server.
    #[serde(default)]
    pub changes: bool,
    /// For a write: the change as a unified diff. For a command: what the command policy
    /// said of it, when it asks or blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(default)]
    pub decision: Decision,
    /// For a write the person is shown: what the file held then (`expected_sha256`, or
    /// `create_new`), so the approved write never replaces a change made since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Value>,
}

/// What a person sends.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Continue this conversation, or start one.
    pub conversation: Option<String>,
    pub workspace_id: String,
    pub server_id: Option<String>,
    pub project_id: Option<String>,
    /// The agent that answers (with its tools); the plain assistant when absent.
    pub agent_id: Option<String>,
    pub text: String,
    pub context: Vec<Attachment>,
}

/// A conversation the caller owns.
pub async fn conversation(ai: &Assistant, user: &AuthUser, id: &str) -> Result<Conversation> {
    let c =
        ai.store.conversation(&user.0.id, id).await?.ok_or_else(|| Error::NotFound(format!("no conversation {id}")))?;
    // Still a member of its workspace (and within the token's reach)?
    workspace_role(&ai.store, user, &c.workspace_id).await?;
    Ok(c)
}

/// A title from the first message: its first line, at most 60 characters.
fn title_of(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("New conversation");
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    title
}

/// Sends a person's message and starts the answer. Returns the conversation and the
/// person's message.
pub async fn send(ai: &Assistant, user: &AuthUser, ask: Ask) -> Result<(Conversation, ChatMessage)> {
    user.require(Scope::Read)?;
    let size = ask.text.len() + ask.context.iter().map(|a| a.text.len() + a.name.len() + a.kind.len()).sum::<usize>();
    if ask.context.len() > MAX_ATTACHMENTS {
        return Err(Error::BadRequest(format!("a message carries at most {MAX_ATTACHMENTS} attachments")));
    }
    if let Some(a) = ask.context.iter().find(|a| !["file", "selection", "terminal"].contains(&a.kind.as_str())) {
        return Err(Error::BadRequest(format!(
            "{:?} is not a kind of attachment: file, selection or terminal",
            a.kind
        )));
    }
    if ask.text.trim().is_empty() {
        return Err(Error::BadRequest("the message is empty".into()));
    }
    if size > MAX_MESSAGE_CHARS {
        return Err(Error::BadRequest(format!(
            "the message and its attachments are {size} bytes; at most {MAX_MESSAGE_CHARS} are sent to the model"
        )));
    }
    let conv = match &ask.conversation {
        Some(id) => conversation(ai, user, id).await?,
        None => {
            workspace_role(&ai.store, user, &ask.workspace_id).await?;
            if let Some(server) = &ask.server_id {
                let grant =
                    authorize_server(&ai.store, &user.0, &user.1, server, Role::Viewer, "asking about a server")
                        .await?;
                if grant.server.workspace_id.as_deref() != Some(ask.workspace_id.as_str()) {
                    return Err(Error::BadRequest(format!("server {server} is not in workspace {}", ask.workspace_id)));
                }
            }
            if let Some(p) = &ask.project_id {
                let project = ai.store.project(p).await?.filter(|p| p.workspace_id == ask.workspace_id);
                project.ok_or_else(|| Error::NotFound(format!("no project {p} in this workspace")))?;
            }
            if let Some(a) = &ask.agent_id {
                agent_in(ai, &ask.workspace_id, a).await?;
            }
            let now = now_ms();
            let c = Conversation {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user.0.id.clone(),
                workspace_id: ask.workspace_id.clone(),
                server_id: ask.server_id.clone(),
                project_id: ask.project_id.clone(),
                agent_id: ask.agent_id.clone(),
                title: title_of(&ask.text),
                created_ms: now,
                updated_ms: now,
            };
            ai.store.insert_conversation(&c).await?;
            c
        }
    };
    let agent = match &conv.agent_id {
        Some(a) => Some(agent_in(ai, &conv.workspace_id, a).await?),
        None => None,
    };
    let context = (!ask.context.is_empty())
        .then(|| serde_json::to_string(&ask.context))
        .transpose()
        .map_err(|e| Error::Other(e.into()))?;
    // One answer at a time per conversation: claim it before writing anything.
    let Some(run) = ai.chats.begin(&conv.id).await? else {
        return Err(Error::Conflict("an answer is still being written here; stop it or wait".into()));
    };
    let added = async {
        let mine = ai
            .store
            .add_message(
                &conv.id,
                NewMessage {
                    role: "user",
                    content: &ask.text,
                    context,
                    state: MessageState::Done,
                    ..Default::default()
                },
            )
            .await?;
        let answer = ai
            .store
            .add_message(
                &conv.id,
                NewMessage { role: "assistant", content: "", state: MessageState::Streaming, ..Default::default() },
            )
            .await?;
        Ok::<_, crate::db::StoreError>((mine, answer))
    }
    .await;
    let (mine, answer) = match added {
        Ok(m) => m,
        Err(e) => {
            ai.chats.end(&run).await;
            return Err(e.into());
        }
    };
    run.next_message(answer.id);
    let task = Generation { ai: ai.clone(), user: user.clone(), conv: conv.clone(), agent, run };
    tokio::spawn(task.run(answer.id));
    Ok((conv, mine))
}

/// The live agent `id` of `workspace`.
async fn agent_in(ai: &Assistant, workspace: &str, id: &str) -> Result<Agent> {
    let agent = ai.store.agent(id).await?.filter(|a| a.workspace_id == workspace && a.deleted_ms.is_none());
    let agent = agent.ok_or_else(|| Error::NotFound(format!("no agent {id} in this workspace")))?;
    if agent.disabled {
        return Err(Error::Forbidden(format!("agent {} is disabled", agent.name)));
    }
    Ok(agent)
}

/// Stops the answer being written, here or on another replica; false when none is.
pub async fn stop(ai: &Assistant, user: &AuthUser, conversation_id: &str) -> Result<bool> {
    conversation(ai, user, conversation_id).await?;
    if let Some(run) = ai.chats.get(conversation_id) {
        run.stop();
        return Ok(true);
    }
    let answer = ai.chats.ask_writer(conversation_id, replicas::Ask::Stop).await?;
    Ok(answer == Some(replicas::Answer::Done { done: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_keeps_its_text_and_an_unknown_one_reads_as_declined() {
        let calls: Vec<Decision> = serde_json::from_str(r#"["approved","blocked","vetoed"]"#).expect("read");
        assert_eq!(calls, [Decision::Approved, Decision::Blocked, Decision::Declined]);
        assert_eq!(serde_json::to_string(&Decision::Auto).ok().as_deref(), Some(r#""auto""#));
    }

    #[test]
    fn titles_come_from_the_first_line() {
        assert_eq!(title_of("\n  Why is nginx down?\nmore"), "Why is nginx down?");
        assert_eq!(title_of(&"x".repeat(70)).chars().count(), 61);
        assert_eq!(title_of("   "), "New conversation");
    }
}
