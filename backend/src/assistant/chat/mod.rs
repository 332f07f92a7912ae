//! Conversations with the assistant, and the loop that writes its answers.
//!
//! A person's message starts a run: a task, independent of any socket, that streams the
//! model's answer into a message (saved as it grows, so a reload shows what was written and
//! the rest follows), and, for an agent, carries out the tools the model calls — reads at
//! once, changes (writes, commands) only once the person approves them, unless the agent may
//! use that tool without asking — until the model answers without calling tools, the person
//! stops it, or the agent's limits on steps and time are reached. Watchers (browser tabs) get
//! each piece of text as it comes and a nudge when messages change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use porta_shared::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, oneshot};

use super::openai::{Delta, Message, ToolCall};
use super::provider;
use super::{Assistant, agents, tools};
use crate::auth::AuthUser;
use crate::auth::scopes::Scope;
use crate::db::{Agent, ChatMessage, Conversation, NewMessage};
use crate::error::{Error, Result};
use crate::now_ms;
use crate::teams::{Role, authorize_server, workspace_role};

pub const DONE: &str = "done";
pub const STREAMING: &str = "streaming";
pub const STOPPED: &str = "stopped";
pub const FAILED: &str = "failed";
pub const WAITING: &str = "waiting";

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
    /// `pending`, `approved`, `declined`, `auto` (allowed without asking), `read` (a read),
    /// `blocked` (by the command policy).
    #[serde(default)]
    pub decision: String,
    /// For a write the person is shown: what the file held then (`expected_sha256`, or
    /// `create_new`), so the approved write never replaces a change made since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Value>,
}

/// What watchers of a conversation hear.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// More text of `message`, from byte `offset` of it.
    Delta { message: i64, offset: u64, text: String },
    /// Messages were added or changed state: read them again.
    Changed { finished: bool },
}

/// One answer being written.
pub struct Run {
    message: AtomicI64,
    text: Mutex<String>,
    events: broadcast::Sender<ChatEvent>,
    stopped: AtomicBool,
    stop: Notify,
    decisions: Mutex<HashMap<String, oneshot::Sender<bool>>>,
}

impl Run {
    fn new(message: i64, events: broadcast::Sender<ChatEvent>) -> Self {
        Self {
            message: AtomicI64::new(message),
            text: Mutex::new(String::new()),
            events,
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            decisions: Mutex::new(HashMap::new()),
        }
    }

    /// Adds to the answer; false once it has grown past [`MAX_ANSWER_BYTES`] (the piece is
    /// then dropped: a model that never stops must not fill the database).
    fn append(&self, piece: &str) -> bool {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        if text.len() + piece.len() > MAX_ANSWER_BYTES {
            return false;
        }
        let offset = text.len() as u64;
        text.push_str(piece);
        let message = self.message.load(Ordering::SeqCst);
        let _ = self.events.send(ChatEvent::Delta { message, offset, text: piece.to_owned() });
        true
    }

    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Moves on to a new message.
    fn next_message(&self, message: i64) {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        text.clear();
        self.message.store(message, Ordering::SeqCst);
    }

    fn changed(&self, finished: bool) {
        let _ = self.events.send(ChatEvent::Changed { finished });
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// The runs going on in this process, and the channels their watchers listen on, by
/// conversation. A channel outlives runs: a tab watching a conversation hears the next answer
/// too, whoever started it.
#[derive(Default)]
pub struct Chats {
    runs: Mutex<HashMap<String, Arc<Run>>>,
    channels: Mutex<HashMap<String, broadcast::Sender<ChatEvent>>>,
}

impl Chats {
    fn get(&self, conversation: &str) -> Option<Arc<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).get(conversation).cloned()
    }

    /// The conversation's channel, made when needed; channels no one listens to any more
    /// (and no run uses) are dropped on the way.
    fn channel(&self, conversation: &str) -> broadcast::Sender<ChatEvent> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.retain(|c, tx| tx.receiver_count() > 0 || c == conversation || self.get(c).is_some());
        channels.entry(conversation.to_owned()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }

    /// Starts watching: the message being written (if any) and its text so far, then what
    /// follows. A delta may repeat the end of the snapshot: it carries its offset.
    pub fn watch(&self, conversation: &str) -> (Option<i64>, String, broadcast::Receiver<ChatEvent>) {
        let rx = self.channel(conversation).subscribe();
        match self.get(conversation) {
            Some(run) => {
                let text = run.text.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (Some(run.message.load(Ordering::SeqCst)), text, rx)
            }
            None => (None, String::new(), rx),
        }
    }

    pub fn is_running(&self, conversation: &str) -> bool {
        self.get(conversation).is_some()
    }
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
    // One answer at a time per conversation: claim the slot before writing anything.
    let events = ai.chats.channel(&conv.id);
    let run = {
        let mut runs = ai.chats.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.contains_key(&conv.id) {
            return Err(Error::Conflict("an answer is still being written here; stop it or wait".into()));
        }
        let run = Arc::new(Run::new(0, events));
        runs.insert(conv.id.clone(), run.clone());
        run
    };
    let added = async {
        let mine = ai
            .store
            .add_message(
                &conv.id,
                NewMessage { role: "user", content: &ask.text, context, state: DONE, ..Default::default() },
            )
            .await?;
        let answer = ai
            .store
            .add_message(
                &conv.id,
                NewMessage { role: "assistant", content: "", state: STREAMING, ..Default::default() },
            )
            .await?;
        Ok::<_, sqlx::Error>((mine, answer))
    }
    .await;
    let (mine, answer) = match added {
        Ok(m) => m,
        Err(e) => {
            ai.chats.runs.lock().unwrap_or_else(|p| p.into_inner()).remove(&conv.id);
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

/// Stops the answer being written; false when none is.
pub async fn stop(ai: &Assistant, user: &AuthUser, conversation_id: &str) -> Result<bool> {
    conversation(ai, user, conversation_id).await?;
    let Some(run) = ai.chats.get(conversation_id) else { return Ok(false) };
    run.stopped.store(true, Ordering::SeqCst);
    run.stop.notify_waiters();
    run.stop.notify_one();
    Ok(true)
}

/// Approves or declines a tool call waiting in `conversation_id`.
pub async fn decide(
    ai: &Assistant,
    user: &AuthUser,
    conversation_id: &str,
    call_id: &str,
    approve: bool,
) -> Result<()> {
    conversation(ai, user, conversation_id).await?;
    let waiting = ai
        .chats
        .get(conversation_id)
        .and_then(|run| run.decisions.lock().unwrap_or_else(|p| p.into_inner()).remove(call_id));
    let Some(tx) = waiting else {
        return Err(Error::NotFound(format!("no call {call_id} is waiting for a decision here")));
    };
    let _ = tx.send(approve);
    Ok(())
}

/// The conversation's messages as the model takes them.
fn history(system: String, messages: &[ChatMessage]) -> Vec<Message> {
    let mut out = vec![Message::new("system", system)];
    let answered: std::collections::HashSet<&str> = messages.iter().filter_map(|m| m.tool_call_id.as_deref()).collect();
    for m in messages {
        match m.role.as_str() {
            "user" => {
                let mut text = String::new();
                let context: Vec<Attachment> =
                    m.context.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
                for a in context {
                    let what = match a.kind.as_str() {
                        "selection" => format!("Selected text in {}", a.name),
                        "terminal" => format!("The last output of terminal {}", a.name),
                        _ => format!("The file {}", a.name),
                    };
                    text.push_str(&format!("{what}:\n```\n{}\n```\n\n", a.text));
                }
                text.push_str(&m.content);
                out.push(Message::new("user", text));
            }
            "assistant" => {
                let calls: Vec<StoredCall> =
                    m.tool_calls.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
                if m.content.is_empty() && calls.is_empty() {
                    continue;
                }
                let mut msg = Message::new("assistant", m.content.clone());
                msg.tool_calls = calls.iter().map(|c| c.call.clone()).collect();
                out.push(msg);
                // A call left without a result (stopped while it waited) is answered here:
                // models expect every call to be.
                for c in calls.iter().filter(|c| !answered.contains(c.call.id.as_str())) {
                    let mut r = Message::new("tool", "{\"error\":\"not run: the answer was stopped\"}");
                    r.tool_call_id = Some(c.call.id.clone());
                    out.push(r);
                }
            }
            "tool" => {
                let mut r = Message::new("tool", m.content.clone());
                r.tool_call_id = m.tool_call_id.clone();
                out.push(r);
            }
            _ => {}
        }
    }
    out
}

/// A run of the model for one person's message.
struct Generation {
    ai: Assistant,
    user: AuthUser,
    conv: Conversation,
    agent: Option<Agent>,
    run: Arc<Run>,
}

/// How one step of the model ended.
enum Step {
    /// An answer without tool calls: the run is over.
    Answered,
    Calls(Vec<ToolCall>),
    Stopped,
}

impl Generation {
    async fn run(self, first: i64) {
        let max_steps = self.agent.as_ref().map_or(1, |a| a.max_steps.clamp(1, 100)) as usize;
        let limit = self
            .agent
            .as_ref()
            .map_or(Duration::from_secs(600), |a| Duration::from_secs(a.max_seconds.clamp(10, 86_400) as u64));
        let deadline = Instant::now() + limit;
        let mut message = first;
        let mut outcome = Ok(());
        for step in 0.. {
            let result = tokio::time::timeout_at(deadline.into(), self.step(message)).await;
            match result {
                Ok(Ok(Step::Answered)) => break,
                Ok(Ok(Step::Stopped)) => {
                    self.finish(message, STOPPED, None).await;
                    break;
                }
                Ok(Ok(Step::Calls(calls))) => {
                    if let Err(e) = tokio::time::timeout_at(deadline.into(), self.carry_out(message, calls)).await {
                        outcome = Err(format!("the agent reached its time limit of {} s: {e}", limit.as_secs()));
                        break;
                    }
                    if self.run.is_stopped() {
                        break;
                    }
                    if step + 1 >= max_steps {
                        outcome = Err(format!("the agent reached its limit of {max_steps} steps"));
                        break;
                    }
                    match self
                        .ai
                        .store
                        .add_message(
                            &self.conv.id,
                            NewMessage { role: "assistant", content: "", state: STREAMING, ..Default::default() },
                        )
                        .await
                    {
                        Ok(m) => {
                            message = m.id;
                            self.run.next_message(m.id);
                            self.run.changed(false);
                        }
                        Err(e) => {
                            outcome = Err(format!("cannot save the answer: {e}"));
                            break;
                        }
                    }
                }
                Ok(Err(e)) => {
                    self.finish(message, FAILED, Some(&e)).await;
                    break;
                }
                Err(_) => {
                    outcome = Err(format!("the answer took longer than its limit of {} s", limit.as_secs()));
                    break;
                }
            }
        }
        if let Err(why) = outcome {
            // Said in a message of its own: the last one may be a finished call.
            let failed = self
                .ai
                .store
                .add_message(
                    &self.conv.id,
                    NewMessage { role: "assistant", content: "", state: FAILED, ..Default::default() },
                )
                .await;
            if let Ok(m) = failed {
                let _ = self.ai.store.update_message(m.id, "", None, FAILED, Some(&why)).await;
            }
        }
        self.ai.chats.runs.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.conv.id);
        self.run.changed(true);
    }

    async fn finish(&self, message: i64, state: &str, error: Option<&str>) {
        if let Err(e) = self.ai.store.update_message(message, &self.run.text(), None, state, error).await {
            tracing::error!(error = %e, "cannot save an answer");
        }
    }

    /// The system prompt: who the assistant is, where the person is, the agent's own prompt.
    async fn system_prompt(&self) -> String {
        let mut s = String::from(
            "You are the assistant in Porta, a web IDE and server administration tool. Answer concisely, in \
             Markdown; put code and commands in fenced code blocks that name their language.",
        );
        if let Some(server) = &self.conv.server_id {
            if let Ok(Some(sv)) = self.ai.store.server(server).await {
                let os = [sv.os.as_deref(), sv.arch.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
                s.push_str(&format!("\nThe person is working on the server {:?}", sv.name));
                if let Some(h) = &sv.hostname {
                    s.push_str(&format!(" (host {h}, {os})"));
                }
                s.push('.');
            }
        }
        if let Some(project) = &self.conv.project_id {
            if let Ok(Some(p)) = self.ai.store.project(project).await {
                s.push_str(&format!("\nThey are in the project {:?}, in the folder {}.", p.name, p.path));
            }
        }
        if let Some(agent) = &self.agent {
            if !agent.system_prompt.trim().is_empty() {
                s.push_str("\n\n");
                s.push_str(agent.system_prompt.trim());
            }
            if !self.tool_names().is_empty() {
                s.push_str(
                    "\n\nUse the tools to look before you answer. Changes (write_file, run_command) are shown to the \
                     person, who approves or declines each; say what you intend before you call one.",
                );
            }
        }
        s
    }

    fn tool_names(&self) -> Vec<String> {
        let Some(agent) = &self.agent else { return Vec::new() };
        let names: Vec<String> = serde_json::from_str(&agent.tools).unwrap_or_default();
        // Tools act on the conversation's server: without one there are none.
        if self.conv.server_id.is_none() {
            return Vec::new();
        }
        names.into_iter().filter(|n| tools::spec(n).is_some()).collect()
    }

    fn auto_approved(&self, tool: &str) -> bool {
        let Some(agent) = &self.agent else { return false };
        let names: Vec<String> = serde_json::from_str(&agent.auto_approve).unwrap_or_default();
        names.iter().any(|n| n == tool)
    }

    /// One call of the model: its text streamed into `message`.
    async fn step(&self, message: i64) -> std::result::Result<Step, String> {
        let mut provider =
            provider::for_workspace(&self.ai, &self.conv.workspace_id).await.map_err(|e| e.to_string())?;
        if let Some(model) = self.agent.as_ref().and_then(|a| a.model.clone()).filter(|m| !m.trim().is_empty()) {
            provider.model = model;
        }
        let messages = self.ai.store.messages(&self.conv.id).await.map_err(|e| e.to_string())?;
        let prior: Vec<ChatMessage> = messages.into_iter().filter(|m| m.id != message).collect();
        let history = history(self.system_prompt().await, &prior);
        let specs: Vec<Value> = self
            .tool_names()
            .iter()
            .filter_map(|n| tools::spec(n))
            .map(|s| {
                serde_json::json!({ "type": "function", "function": {
                    "name": s.name, "description": s.description, "parameters": (s.parameters)(),
                } })
            })
            .collect();
        let stream = self.ai.client.chat(&provider, &history, &specs).await.map_err(|e| e.to_string())?;
        tokio::pin!(stream);
        let mut saved = Instant::now();
        let mut calls = Vec::new();
        loop {
            if self.run.is_stopped() {
                return Ok(Step::Stopped);
            }
            let next = tokio::select! {
                next = stream.next() => next,
                () = self.run.stop.notified() => return Ok(Step::Stopped),
            };
            match next {
                None => break,
                Some(Ok(Delta::Text(t))) => {
                    if !self.run.append(&t) {
                        return Err(format!("the answer grew past {} KB and was stopped", MAX_ANSWER_BYTES / 1000));
                    }
                    if saved.elapsed() >= SAVE_EVERY {
                        saved = Instant::now();
                        let _ = self.ai.store.update_message(message, &self.run.text(), None, STREAMING, None).await;
                    }
                }
                Some(Ok(Delta::ToolCalls(c))) => calls = c,
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
        if calls.is_empty() {
            self.finish(message, DONE, None).await;
            return Ok(Step::Answered);
        }
        Ok(Step::Calls(calls))
    }

    /// Carries out the calls the model made in `message`: reads at once, changes once approved.
    async fn carry_out(&self, message: i64, calls: Vec<ToolCall>) {
        let allowed = self.tool_names();
        let mut stored: Vec<StoredCall> = Vec::with_capacity(calls.len());
        for call in calls {
            let spec = tools::spec(&call.function.name).filter(|s| allowed.iter().any(|n| n == s.name));
            let changes = spec.is_none_or(|s| s.changes);
            let mut decision = match spec {
                None => "declined",
                Some(s) if !s.changes => "read",
                Some(s) if self.auto_approved(s.name) => "auto",
                Some(_) => "pending",
            };
            let mut note = None;
            if spec.is_some_and(|s| s.name == "run_command") {
                // The workspace's command policy has its say first.
                let (d, n) = self.command_decision(&call).await;
                decision = d;
                note = n;
            }
            let (preview, seen) = if decision == "pending" && call.function.name == "write_file" {
                self.diff_preview(&call).await.unzip()
            } else {
                (note, None)
            };
            stored.push(StoredCall { call, changes, preview, decision: decision.to_owned(), seen });
        }
        // An approval names a call by its id: calls sharing one could not be told apart, and
        // a person approving one would approve what another does. None of them runs.
        let mut seen_ids = std::collections::HashMap::<String, usize>::new();
        for c in &stored {
            *seen_ids.entry(c.call.id.clone()).or_default() += 1;
        }
        for c in stored.iter_mut().filter(|c| seen_ids[&c.call.id] > 1) {
            c.decision = "declined".into();
            c.preview = Some("Declined: the model gave more than one call this id".into());
            c.seen = None;
        }
        let pending: Vec<String> =
            stored.iter().filter(|c| c.decision == "pending").map(|c| c.call.id.clone()).collect();
        // Register the decisions before anyone can see the calls.
        let mut answers = Vec::new();
        for id in &pending {
            let (tx, rx) = oneshot::channel();
            self.run.decisions.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), tx);
            answers.push((id.clone(), rx));
        }
        let state = if pending.is_empty() { DONE } else { WAITING };
        self.save_calls(message, &stored, state).await;
        self.run.changed(false);
        for (id, rx) in answers {
            let approved = tokio::select! {
                answer = rx => answer.unwrap_or(false),
                () = self.run.stop.notified() => false,
            };
            if let Some(c) = stored.iter_mut().find(|c| c.call.id == id) {
                c.decision = if approved { "approved" } else { "declined" }.into();
            }
            if self.run.is_stopped() {
                break;
            }
        }
        self.run.decisions.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if !pending.is_empty() {
            let state = if self.run.is_stopped() { STOPPED } else { DONE };
            self.save_calls(message, &stored, state).await;
            self.run.changed(false);
        }
        if self.run.is_stopped() {
            return;
        }
        for c in &stored {
            let result = match c.decision.as_str() {
                "read" | "auto" | "approved" => self.call(c).await,
                _ if tools::spec(&c.call.function.name).is_none() => Err(ErrorBody::new(
                    porta_shared::ErrorCode::BadRequest,
                    format!("there is no tool {:?}", c.call.function.name),
                )),
                "blocked" => Err(ErrorBody::new(
                    porta_shared::ErrorCode::Forbidden,
                    format!(
                        "the workspace's command policy blocks this command; do not try it another way. {}",
                        c.preview.as_deref().unwrap_or_default()
                    ),
                )),
                _ if seen_ids[&c.call.id] > 1 => Err(ErrorBody::new(
                    porta_shared::ErrorCode::BadRequest,
                    "more than one call had this id, so none of them ran; give each call its own id",
                )),
                _ => Err(ErrorBody::new(porta_shared::ErrorCode::Forbidden, "the person declined this call")),
            };
            let text = tools::result_text(&result);
            let saved = self
                .ai
                .store
                .add_message(
                    &self.conv.id,
                    NewMessage {
                        role: "tool",
                        content: &text,
                        tool_call_id: Some(&c.call.id),
                        state: DONE,
                        ..Default::default()
                    },
                )
                .await;
            if let Err(e) = saved {
                tracing::error!(error = %e, "cannot save a tool's result");
            }
            self.run.changed(false);
        }
    }

    /// What the workspace's command policy says of a `run_command` call: its decision
    /// (`auto`, `pending` or `blocked`) and what to show with it.
    async fn command_decision(&self, call: &ToolCall) -> (&'static str, Option<String>) {
        use crate::policy::check::{Decision, Runner, decide};
        let args: Value = serde_json::from_str(&call.function.arguments).unwrap_or_default();
        let command = args["command"].as_str().unwrap_or_default();
        let runner = Runner {
            user: &self.user,
            agent: self.agent.as_ref().map(|a| a.name.as_str()),
            runs_without_asking: self.auto_approved("run_command"),
            workspace: &self.conv.workspace_id,
            server: self.conv.server_id.as_deref(),
            source: None,
        };
        match decide(&self.ai.store, &runner, command, args["cwd"].as_str()).await {
            Ok(Decision::Run(_)) => ("auto", None),
            Ok(Decision::Ask(v)) => ("pending", Some(format!("Needs approval: {}", v.reason))),
            Ok(Decision::Refuse(v)) => ("blocked", Some(format!("Blocked: {}", v.reason))),
            Err(e) => ("pending", Some(format!("Needs approval: the policy could not be read ({e})"))),
        }
    }

    async fn save_calls(&self, message: i64, calls: &[StoredCall], state: &str) {
        let json = serde_json::to_string(calls).unwrap_or_else(|_| "[]".into());
        if let Err(e) = self.ai.store.update_message(message, &self.run.text(), Some(&json), state, None).await {
            tracing::error!(error = %e, "cannot save tool calls");
        }
    }

    /// What a write would change, as a unified diff against the file now, and what the file
    /// is now (as the arguments that hold the write to it).
    async fn diff_preview(&self, call: &ToolCall) -> Option<(String, Value)> {
        let server = self.conv.server_id.as_deref()?;
        let args: Value = serde_json::from_str(&call.function.arguments).ok()?;
        let path = args["path"].as_str()?;
        let new = args["content"].as_str()?;
        let mut seen = serde_json::json!({});
        tools::Over::now(&self.ai, server, path).await.into_args(&mut seen);
        let old = match tools::read_file(&self.ai, server, path, 0, None).await {
            Ok(f) if f.encoding == "utf-8" => f.content,
            Ok(_) => {
                let said = format!("{path} is a binary file; it would be replaced by {} bytes of text", new.len());
                return Some((said, seen));
            }
            Err(_) => String::new(),
        };
        let diff = similar::TextDiff::from_lines(old.as_str(), new);
        let name = path.trim_start_matches('/');
        let text = diff.unified_diff().context_radius(3).header(&format!("a/{name}"), &format!("b/{name}")).to_string();
        Some((text, seen))
    }

    /// Runs one call with the person's permissions, and records it for the agent.
    async fn call(&self, c: &StoredCall) -> std::result::Result<Value, ErrorBody> {
        let started = Instant::now();
        let Some(server) = self.conv.server_id.as_deref() else {
            return Err(ErrorBody::new(porta_shared::ErrorCode::BadRequest, "this conversation is about no server"));
        };
        let mut args: Value = serde_json::from_str(&c.call.function.arguments).map_err(|e| {
            ErrorBody::new(porta_shared::ErrorCode::BadRequest, format!("the arguments are not JSON: {e}"))
        })?;
        // What the person approved is the change to the file as it was shown.
        if let Some(seen) = &c.seen {
            tools::Over::from_args(seen).into_args(&mut args);
        }
        let (scope, role) = if c.changes { (Scope::Write, Role::Developer) } else { (Scope::Read, Role::Viewer) };
        let allowed = match self.user.require(scope) {
            Ok(()) => authorize_server(&self.ai.store, &self.user.0, &self.user.1, server, role, "an agent's change")
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        let result = match allowed {
            Ok(()) => tools::call(&self.ai, server, &c.call.function.name, &args).await,
            Err(e) => Err(e.to_body()),
        };
        if let Some(agent) = &self.agent {
            let target = args["path"].as_str().or_else(|| args["command"].as_str()).unwrap_or_default().to_owned();
            let done = agents::Done {
                agent,
                source: None,
                server: Some(server),
                kind: &c.call.function.name,
                target: &target,
                details: format!("{target} ({})", c.decision),
                took: started.elapsed(),
                result: result.as_ref().map(|_| ()).map_err(|e| format!("failed: {}", e.code)),
            };
            agents::record(&self.ai.store, &self.user, done).await;
        }
        result
    }
}

/// How long a change an external agent asks for waits for the person's decision.
pub const APPROVAL_WAIT: Duration = Duration::from_secs(10 * 60);

/// Asks the person, in a conversation of theirs with `agent` (made on first need), to
/// approve a change an external agent (an MCP client) wants to make on `server`: the call is
/// shown there with its command or diff until they decide, stop it, or `wait` runs out.
/// Returns `None` when it was not approved; when it was, what the change is held to (for a
/// write: the file as the person saw it, as arguments to merge into the call's).
pub async fn ask_approval(
    ai: &Assistant,
    user: &AuthUser,
    agent: &Agent,
    server: &str,
    call: ToolCall,
    note: Option<String>,
    wait: Duration,
) -> Result<Option<Value>> {
    let title = format!("Changes asked for by {}", agent.name);
    let existing = ai
        .store
        .conversations(&user.0.id, Some(&agent.workspace_id), None, None, MAX_LISTED)
        .await?
        .into_iter()
        .find(|c| c.agent_id.as_deref() == Some(agent.id.as_str()) && c.title == title);
    let conv = match existing {
        Some(c) => c,
        None => {
            let now = now_ms();
            let c = Conversation {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user.0.id.clone(),
                workspace_id: agent.workspace_id.clone(),
                server_id: Some(server.to_owned()),
                project_id: None,
                agent_id: Some(agent.id.clone()),
                title,
                created_ms: now,
                updated_ms: now,
            };
            ai.store.insert_conversation(&c).await?;
            c
        }
    };
    let events = ai.chats.channel(&conv.id);
    let run = {
        let mut runs = ai.chats.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.contains_key(&conv.id) {
            return Err(Error::Conflict(format!(
                "another change by {} is waiting for the person's decision; ask again once it is decided",
                agent.name
            )));
        }
        let run = Arc::new(Run::new(0, events));
        runs.insert(conv.id.clone(), run.clone());
        run
    };
    let asking = Generation { ai: ai.clone(), user: user.clone(), conv: conv.clone(), agent: None, run: run.clone() };
    let (preview, seen) =
        if call.function.name == "write_file" { asking.diff_preview(&call).await.unzip() } else { (note, None) };
    let mut stored = StoredCall { call, changes: true, preview, decision: "pending".into(), seen };
    let (tx, rx) = oneshot::channel();
    run.decisions.lock().unwrap_or_else(|p| p.into_inner()).insert(stored.call.id.clone(), tx);
    let outcome = async {
        let calls = serde_json::to_string(std::slice::from_ref(&stored)).map_err(|e| Error::Other(e.into()))?;
        let m = ai
            .store
            .add_message(
                &conv.id,
                NewMessage {
                    role: "assistant",
                    content: "",
                    tool_calls: Some(calls),
                    state: WAITING,
                    ..Default::default()
                },
            )
            .await?;
        run.next_message(m.id);
        run.changed(false);
        let approved = tokio::select! {
            answer = rx => answer.unwrap_or(false),
            () = run.stop.notified() => false,
            () = tokio::time::sleep(wait) => false,
        };
        stored.decision = if approved { "approved" } else { "declined" }.into();
        asking.save_calls(m.id, std::slice::from_ref(&stored), DONE).await;
        Ok::<_, Error>(approved.then(|| stored.seen.clone().unwrap_or_else(|| serde_json::json!({}))))
    }
    .await;
    ai.chats.runs.lock().unwrap_or_else(|p| p.into_inner()).remove(&conv.id);
    run.changed(true);
    outcome
}

/// A conversation as Markdown, for export.
pub fn to_markdown(c: &Conversation, messages: &[ChatMessage]) -> String {
    let mut out = format!("# {}\n\n", c.title);
    for m in messages {
        match m.role.as_str() {
            "user" => out.push_str(&format!("## You\n\n{}\n\n", m.content)),
            "assistant" => {
                if !m.content.is_empty() {
                    out.push_str(&format!("## Assistant\n\n{}\n\n", m.content));
                }
                let calls: Vec<StoredCall> =
                    m.tool_calls.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
                for c in calls {
                    out.push_str(&format!(
                        "> Tool `{}` ({}): `{}`\n\n",
                        c.call.function.name, c.decision, c.call.function.arguments
                    ));
                }
                if let Some(e) = &m.error {
                    out.push_str(&format!("> The answer failed: {e}\n\n"));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            id,
            conversation_id: "c".into(),
            role: role.into(),
            content: content.into(),
            context: None,
            tool_calls: None,
            tool_call_id: None,
            state: DONE.into(),
            error: None,
            created_ms: 0,
        }
    }

    #[test]
    fn titles_come_from_the_first_line() {
        assert_eq!(title_of("\n  Why is nginx down?\nmore"), "Why is nginx down?");
        assert_eq!(title_of(&"x".repeat(70)).chars().count(), 61);
        assert_eq!(title_of("   "), "New conversation");
    }

    #[test]
    fn history_carries_attachments_and_answers_every_call() {
        let mut ask = msg(1, "user", "What does this do?");
        ask.context = Some(r#"[{"kind":"file","name":"/srv/app.py","text":"print(1)"}]"#.into());
        let mut call = msg(2, "assistant", "Let me look.");
        call.tool_calls = Some(
            r#"[{"id":"c1","type":"function","function":{"name":"read_file","arguments":"{}"},"changes":false,"decision":"read"},
                {"id":"c2","type":"function","function":{"name":"write_file","arguments":"{}"},"changes":true,"decision":"pending"}]"#
                .into(),
        );
        let mut result = msg(3, "tool", "{\"content\":\"x\"}");
        result.tool_call_id = Some("c1".into());
        let empty_failed = ChatMessage { state: FAILED.into(), ..msg(4, "assistant", "") };
        let h = history("sys".into(), &[ask, call, result, empty_failed]);
        let roles: Vec<&str> = h.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
        assert!(
            h[1].content.starts_with("The file /srv/app.py:\n```\nprint(1)\n```")
                && h[1].content.ends_with("What does this do?")
        );
        assert_eq!(h[2].tool_calls.len(), 2);
        assert_eq!(h[3].tool_call_id.as_deref(), Some("c2"), "the unanswered call is answered");
        assert!(h[3].content.contains("stopped"));
        assert_eq!(h[4].tool_call_id.as_deref(), Some("c1"));
    }

    #[test]
    fn a_run_hands_watchers_the_text_so_far_then_the_rest() {
        let chats = Chats::default();
        let run = Run::new(7, chats.channel("c"));
        run.append("Hel");
        let (_, _, mut rx) = chats.watch("c");
        run.append("lo");
        assert_eq!(run.text(), "Hello");
        assert_eq!(rx.try_recv().ok(), Some(ChatEvent::Delta { message: 7, offset: 3, text: "lo".into() }));
        run.next_message(8);
        assert_eq!(run.text(), "");
    }
}
