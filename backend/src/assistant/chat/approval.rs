//! Approvals: the person's decision on a call waiting in their conversation, and the
//! conversation where an external agent's (an MCP client's) change waits for one.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::super::Assistant;
use super::super::openai::ToolCall;
use super::replicas::{Answer, Ask};
use super::runs::lock;
use super::{Decision, Generation, MAX_LISTED, MessageState, StoredCall, conversation};
use crate::auth::AuthUser;
use crate::clock::now_ms;
use crate::db::{Agent, Conversation, NewMessage};
use crate::error::{Error, Result};

/// Approves or declines a tool call waiting in `conversation_id`.
pub async fn decide(
    ai: &Assistant,
    user: &AuthUser,
    conversation_id: &str,
    call_id: &str,
    approve: bool,
) -> Result<()> {
    conversation(ai, user, conversation_id).await?;
    let decided = match ai.chats.get(conversation_id) {
        Some(run) => run.decide(call_id, approve),
        None => {
            let ask = Ask::Decide { call: call_id.to_owned(), approve };
            ai.chats.ask_writer(conversation_id, ask).await? == Some(Answer::Done { done: true })
        }
    };
    if !decided {
        return Err(Error::NotFound(format!("no call {call_id} is waiting for a decision here")));
    }
    Ok(())
}

/// What became of a change an external agent asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Approval {
    /// Approved; what the change is held to (for a write: the file as the person saw it, as
    /// arguments to merge into the call's).
    Approved(Value),
    /// Declined, stopped, or not decided in time.
    Declined,
    /// The agent gave up waiting.
    Cancelled,
}

/// How long a change an external agent asks for waits for the person's decision.
pub const APPROVAL_WAIT: Duration = Duration::from_secs(10 * 60);

/// Asks the person, in a conversation of theirs with `agent` (made on first need), to
/// approve a change an external agent (an MCP client) wants to make on `server`: the call is
/// shown there with its command or diff until they decide, stop it, or `wait` runs out.
/// The agent may give up first (`cancelled` resolves, or the caller stops waiting: an HTTP
/// client that hangs up drops its request): the call is then shown as cancelled, and is no
/// longer waiting for anyone.
pub async fn ask_approval(
    ai: &Assistant,
    user: &AuthUser,
    agent: &Agent,
    server: &str,
    call: ToolCall,
    note: Option<String>,
    (wait, cancelled): (Duration, impl std::future::Future<Output = ()> + Send + 'static),
) -> Result<Approval> {
    // The wait runs in a task of its own, which always saves what became of the call and ends
    // the conversation's run: were it dropped with its caller, the call would show as waiting
    // and the agent's next change would be refused as "another change is waiting".
    let (ai, user, agent, server) = (ai.clone(), user.clone(), agent.clone(), server.to_owned());
    let (_caller_here, caller_gone) = oneshot::channel::<()>();
    let hung_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let given_up = {
        let hung_up = hung_up.clone();
        async move {
            tokio::select! {
                () = cancelled => {}
                _ = caller_gone => hung_up.store(true, std::sync::atomic::Ordering::SeqCst),
            }
        }
    };
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let (kind, target) = (call.function.name.clone(), target_of(&call));
        let outcome = wait_for_decision(&ai, &user, &agent, &server, (call, note), (wait, given_up)).await;
        if matches!(outcome, Ok(Approval::Cancelled)) && hung_up.load(std::sync::atomic::Ordering::SeqCst) {
            // Its caller is gone and cannot record it: recorded here.
            let done = super::super::agents::Done {
                agent: &agent,
                source: None,
                server: Some(&server),
                kind: &kind,
                target: &target,
                details: format!("{target} (cancelled: the client hung up)"),
                took: started.elapsed(),
                result: Err("cancelled by the client".into()),
            };
            super::super::agents::record(&ai.store, &user, done).await;
        }
        outcome
    })
    .await
    .map_err(|e| Error::Other(e.into()))?
}

/// What a call is about, for the record: its command, path or container.
fn target_of(call: &ToolCall) -> String {
    let args: Value = serde_json::from_str(&call.function.arguments).unwrap_or_default();
    crate::assistant::tools::target(&call.function.name, &args)
}

async fn wait_for_decision(
    ai: &Assistant,
    user: &AuthUser,
    agent: &Agent,
    server: &str,
    (call, note): (ToolCall, Option<String>),
    (wait, cancelled): (Duration, impl std::future::Future<Output = ()>),
) -> Result<Approval> {
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
    let Some(run) = ai.chats.begin(&conv.id).await? else {
        return Err(Error::Conflict(format!(
            "another change by {} is waiting for the person's decision; ask again once it is decided",
            agent.name
        )));
    };
    let asking = Generation { ai: ai.clone(), user: user.clone(), conv: conv.clone(), agent: None, run: run.clone() };
    let (preview, seen) =
        if call.function.name == "write_file" { asking.diff_preview(&call).await.unzip() } else { (note, None) };
    let mut stored = StoredCall { call, changes: true, preview, decision: Decision::Pending, seen };
    let (tx, rx) = oneshot::channel();
    lock(&run.decisions).insert(stored.call.id.clone(), tx);
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
                    state: MessageState::Waiting,
                    ..Default::default()
                },
            )
            .await?;
        run.next_message(m.id);
        run.changed(false);
        stored.decision = tokio::select! {
            answer = rx => if answer.unwrap_or(false) { Decision::Approved } else { Decision::Declined },
            () = run.stop.notified() => Decision::Declined,
            () = tokio::time::sleep(wait) => Decision::Declined,
            () = cancelled => Decision::Cancelled,
        };
        asking.save_calls(m.id, std::slice::from_ref(&stored), MessageState::Done).await;
        Ok::<_, Error>(match stored.decision {
            Decision::Approved => Approval::Approved(stored.seen.clone().unwrap_or_else(|| serde_json::json!({}))),
            Decision::Cancelled => Approval::Cancelled,
            _ => Approval::Declined,
        })
    }
    .await;
    ai.chats.end(&run).await;
    outcome
}
