//! A run of the model for one person's message: the answer streamed into its message, and
//! for an agent the tools it calls — reads at once, changes once approved — step by step
//! until it answers, is stopped, or reaches its limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use porta_shared::ErrorBody;
use serde_json::Value;
use tokio::sync::oneshot;

use super::super::openai::{Delta, Message, ToolCall};
use super::super::{Assistant, agents, provider, tools};
use super::runs::lock;
use super::{Attachment, Decision, MAX_ANSWER_BYTES, MessageState, Run, SAVE_EVERY, StoredCall};
use crate::auth::AuthUser;
use crate::auth::scopes::Scope;
use crate::db::{Agent, ChatMessage, Conversation, NewMessage};
use crate::teams::{Role, authorize_server};

/// The conversation's messages as the model takes them.
pub(super) fn history(system: String, messages: &[ChatMessage]) -> Vec<Message> {
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
pub(super) struct Generation {
    pub(super) ai: Assistant,
    pub(super) user: AuthUser,
    pub(super) conv: Conversation,
    pub(super) agent: Option<Agent>,
    pub(super) run: Arc<Run>,
}

/// How one step of the model ended.
enum Step {
    /// An answer without tool calls: the run is over.
    Answered,
    Calls(Vec<ToolCall>),
    Stopped,
}

impl Generation {
    pub(super) async fn run(self, first: i64) {
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
                    self.finish(message, MessageState::Stopped, None).await;
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
                            NewMessage {
                                role: "assistant",
                                content: "",
                                state: MessageState::Streaming,
                                ..Default::default()
                            },
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
                    self.finish(message, MessageState::Failed, Some(&e)).await;
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
                    NewMessage { role: "assistant", content: "", state: MessageState::Failed, ..Default::default() },
                )
                .await;
            if let Ok(m) = failed {
                let _ = self.ai.store.update_message(m.id, "", None, MessageState::Failed, Some(&why)).await;
            }
        }
        self.ai.chats.end(&self.run).await;
    }

    async fn finish(&self, message: i64, state: MessageState, error: Option<&str>) {
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
                    "\n\nUse the tools to look before you answer. Changes (write_file, run_command, docker_action, http_request) are shown to the \
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
                        let _ = self
                            .ai
                            .store
                            .update_message(message, &self.run.text(), None, MessageState::Streaming, None)
                            .await;
                    }
                }
                Some(Ok(Delta::ToolCalls(c))) => calls = c,
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
        if calls.is_empty() {
            self.finish(message, MessageState::Done, None).await;
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
                None => Decision::Declined,
                Some(s) if !s.changes => Decision::Read,
                Some(s) if self.auto_approved(s.name) => Decision::Auto,
                Some(_) => Decision::Pending,
            };
            let mut note = None;
            if spec.is_some_and(|s| tools::policy_command(s.name, &Value::Null).is_some()) {
                // The workspace's command policy has its say first.
                let (d, n) = self.command_decision(&call).await;
                decision = d;
                note = n;
            }
            let (preview, seen) = if decision == Decision::Pending && call.function.name == "write_file" {
                self.diff_preview(&call).await.unzip()
            } else {
                (note, None)
            };
            stored.push(StoredCall { call, changes, preview, decision, seen });
        }
        // An approval names a call by its id: calls sharing one could not be told apart, and
        // a person approving one would approve what another does. None of them runs.
        let mut seen_ids = std::collections::HashMap::<String, usize>::new();
        for c in &stored {
            *seen_ids.entry(c.call.id.clone()).or_default() += 1;
        }
        for c in stored.iter_mut().filter(|c| seen_ids[&c.call.id] > 1) {
            c.decision = Decision::Declined;
            c.preview = Some("Declined: the model gave more than one call this id".into());
            c.seen = None;
        }
        let pending: Vec<String> =
            stored.iter().filter(|c| c.decision == Decision::Pending).map(|c| c.call.id.clone()).collect();
        // Register the decisions before anyone can see the calls.
        let mut answers = Vec::new();
        for id in &pending {
            let (tx, rx) = oneshot::channel();
            lock(&self.run.decisions).insert(id.clone(), tx);
            answers.push((id.clone(), rx));
        }
        let state = if pending.is_empty() { MessageState::Done } else { MessageState::Waiting };
        self.save_calls(message, &stored, state).await;
        self.run.changed(false);
        for (id, rx) in answers {
            let approved = tokio::select! {
                answer = rx => answer.unwrap_or(false),
                () = self.run.stop.notified() => false,
            };
            if let Some(c) = stored.iter_mut().find(|c| c.call.id == id) {
                c.decision = if approved { Decision::Approved } else { Decision::Declined };
            }
            if self.run.is_stopped() {
                break;
            }
        }
        lock(&self.run.decisions).clear();
        if !pending.is_empty() {
            let state = if self.run.is_stopped() { MessageState::Stopped } else { MessageState::Done };
            self.save_calls(message, &stored, state).await;
            self.run.changed(false);
        }
        if self.run.is_stopped() {
            return;
        }
        for c in &stored {
            let result = match c.decision {
                Decision::Read | Decision::Auto | Decision::Approved => self.call(c).await,
                _ if tools::spec(&c.call.function.name).is_none() => Err(ErrorBody::new(
                    porta_shared::ErrorCode::BadRequest,
                    format!("there is no tool {:?}", c.call.function.name),
                )),
                Decision::Blocked => Err(ErrorBody::new(
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
                        state: MessageState::Done,
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

    /// What the workspace's command policy says of a call that runs something (`run_command`,
    /// `docker_action`): its decision
    /// (`auto`, `pending` or `blocked`) and what to show with it.
    async fn command_decision(&self, call: &ToolCall) -> (Decision, Option<String>) {
        use crate::policy::check::{self, Runner};
        let args: Value = serde_json::from_str(&call.function.arguments).unwrap_or_default();
        let command = tools::policy_command(&call.function.name, &args).unwrap_or_default();
        let command = command.as_str();
        let runner = Runner {
            user: &self.user,
            agent: self.agent.as_ref().map(|a| a.name.as_str()),
            runs_without_asking: self.auto_approved(&call.function.name),
            workspace: &self.conv.workspace_id,
            server: self.conv.server_id.as_deref(),
            source: None,
        };
        match check::decide(&self.ai.store, &runner, command, args["cwd"].as_str()).await {
            Ok(check::Decision::Run(_)) => (Decision::Auto, None),
            Ok(check::Decision::Ask(v)) => (Decision::Pending, Some(format!("Needs approval: {}", v.reason))),
            Ok(check::Decision::Refuse(v)) => (Decision::Blocked, Some(format!("Blocked: {}", v.reason))),
            Err(e) => (Decision::Pending, Some(format!("Needs approval: the policy could not be read ({e})"))),
        }
    }

    pub(super) async fn save_calls(&self, message: i64, calls: &[StoredCall], state: MessageState) {
        let json = serde_json::to_string(calls).unwrap_or_else(|_| "[]".into());
        if let Err(e) = self.ai.store.update_message(message, &self.run.text(), Some(&json), state, None).await {
            tracing::error!(error = %e, "cannot save tool calls");
        }
    }

    /// What a write would change, as a unified diff against the file now, and what the file
    /// is now (as the arguments that hold the write to it).
    pub(super) async fn diff_preview(&self, call: &ToolCall) -> Option<(String, Value)> {
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
        let (scope, role) = match tools::spec(&c.call.function.name) {
            Some(spec) => tools::needs(spec),
            None => (Scope::Write, Role::Developer),
        };
        // What runs something (a command, a container action) needs the terminal scope too.
        let runs = tools::policy_command(&c.call.function.name, &Value::Null).is_some();
        let scoped =
            self.user.require(scope).and_then(|()| if runs { self.user.require(Scope::Terminal) } else { Ok(()) });
        let allowed = match scoped {
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
            let target = tools::target(&c.call.function.name, &args);
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
            state: MessageState::Done,
            error: None,
            created_ms: 0,
        }
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
        let empty_failed = ChatMessage { state: MessageState::Failed, ..msg(4, "assistant", "") };
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
}
