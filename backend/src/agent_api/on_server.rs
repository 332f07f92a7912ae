//! An agent's call on a server: the token's scope and the user's role checked, the agent
//! found or registered, commands put through the command policy (and the person, when it
//! asks), and what was done recorded.

use std::time::Instant;

use porta_shared::ErrorBody;

use super::Caller;
use crate::assistant::agents::{self, Done, OnServer};
use crate::auth::scopes::Scope;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::teams::Role;

/// Checks the token's scope and the user's role on the server, and finds (or registers) the
/// agent in the server's workspace.
pub(super) async fn on_server(
    state: &AppState,
    caller: &Caller,
    agent_id: &str,
    server: &str,
    scope: Scope,
    role: Role,
    what: &str,
) -> Result<OnServer> {
    agents::valid_agent_id(agent_id)?;
    caller.user.require(scope)?;
    agents::on_server(&state.store, &caller.user, caller.source.as_deref(), agent_id, server, (role, what)).await
}

/// Puts commands through the workspace's command policy before any runs: a blocked one
/// refuses them all; those that need approval are shown to the person together (in the
/// assistant's panel, "Changes asked for by <agent>") and run only once approved. Refusals
/// are in the agent's history; every decision is in the audit log.
/// Each command comes with the folder it runs in (relative paths are judged from there).
pub(super) async fn gate(
    state: &AppState,
    caller: &Caller,
    on: &OnServer,
    kind: &str,
    commands: &[(&str, Option<&str>)],
) -> Result<()> {
    use crate::policy::check::{Decision, decide};
    let runner = on.runner(&caller.user, caller.source.as_deref(), "run_command");
    let mut asked = Vec::new();
    let started = Instant::now();
    // Writes a refusal (`blocked`, `declined`) into the agent's history.
    let refused = |word: &'static str, details: String| async move {
        let op = Op { kind, target: commands.first().map(|c| c.0).unwrap_or_default(), details, started };
        let _ = on.record(state, caller, op, Ok(()), |()| Err(word.to_owned())).await;
    };
    for (i, &(command, cwd)) in commands.iter().enumerate() {
        match decide(&state.store, &runner, command, cwd).await? {
            Decision::Run(_) => {}
            Decision::Ask(v) => asked.push((i, v.reason)),
            Decision::Refuse(v) => {
                let step = if commands.len() > 1 { format!("step {i} ") } else { String::new() };
                refused("blocked", format!("{command} (blocked by the command policy)")).await;
                return Err(Error::Forbidden(format!(
                    "the workspace's command policy blocks {step}`{command}`: {}; nothing ran",
                    v.reason
                )));
            }
        }
    }
    if asked.is_empty() {
        return Ok(());
    }
    // What the person approves says where each command runs.
    let shown = commands
        .iter()
        .map(|(command, cwd)| match cwd {
            Some(dir) => format!("cd {} && {command}", shell_quote(dir)),
            None => (*command).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let note = asked
        .iter()
        .map(|(i, why)| if commands.len() > 1 { format!("step {i}: {why}") } else { why.clone() })
        .collect::<Vec<_>>()
        .join("; ");
    let call = crate::assistant::openai::ToolCall {
        id: format!("api-{}", uuid::Uuid::new_v4()),
        kind: "function".into(),
        function: crate::assistant::openai::FunctionCall {
            name: "run_command".into(),
            arguments: serde_json::json!({ "command": shown }).to_string(),
        },
    };
    let note = Some(format!("Needs approval: {note}"));
    let approved = crate::assistant::chat::ask_approval(
        &state.assistant,
        &caller.user,
        &on.agent,
        &on.server,
        call,
        note,
        (crate::assistant::chat::APPROVAL_WAIT, std::future::pending()),
    )
    .await?;
    if !matches!(approved, crate::assistant::chat::Approval::Approved(_)) {
        refused("declined", format!("{} (declined)", commands.first().map(|c| c.0).unwrap_or_default())).await;
        return Err(Error::Forbidden(
            "the person declined this in Porta (or did not decide in time); nothing ran".into(),
        ));
    }
    Ok(())
}

/// `dir` quoted for a POSIX shell, as a person would paste it.
fn shell_quote(dir: &str) -> String {
    if !dir.is_empty() && dir.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~+".contains(c)) {
        dir.to_owned()
    } else {
        format!("'{}'", dir.replace('\'', "'\\''"))
    }
}

/// What was done, for the history.
pub(super) struct Op<'a> {
    pub(super) kind: &'a str,
    pub(super) target: &'a str,
    pub(super) details: String,
    pub(super) started: Instant,
}

impl OnServer {
    /// Records the operation, then hands back its outcome. `judge` says whether what came
    /// back is a success (a command that exits 2 answered, but failed).
    pub(super) async fn record<T>(
        &self,
        state: &AppState,
        caller: &Caller,
        op: Op<'_>,
        outcome: std::result::Result<T, ErrorBody>,
        judge: impl FnOnce(&T) -> std::result::Result<(), String>,
    ) -> Result<T> {
        let result = match &outcome {
            Ok(value) => judge(value),
            Err(e) => Err(format!("failed: {}", e.code)),
        };
        let done = Done {
            agent: &self.agent,
            source: caller.source.as_deref(),
            server: Some(&self.server),
            kind: op.kind,
            target: op.target,
            details: op.details,
            took: op.started.elapsed(),
            result,
        };
        agents::record(&state.store, &caller.user, done).await;
        outcome.map_err(Error::Wire)
    }
}
