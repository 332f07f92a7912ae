//! Agents: the registry of everything that acts on servers on a person's behalf, and the
//! record of what each did.
//!
//! An agent lives in a workspace and is held to its quota. External agents of the Porta
//! agent API ([`api`], `/api/v1`) register by their first call, named by the `agent_id` they
//! send; every operation is a row of the agent's history and an `agent.*` audit event, written
//! before the answer goes back. [`tools`] are the operations themselves, run through the
//! server's bridge with the caller's permissions.

pub mod api;
pub mod openapi;
pub mod tools;

use std::time::Duration;

use crate::auth::AuthUser;
use crate::db::{Agent, AuditEvent, Operation, Registered, Workspace};
use crate::error::{Error, Result};
use crate::now_ms;
use crate::state::AppState;

/// An agent registered by the Porta agent API.
pub const KIND_API: &str = "api";
/// An agent of the assistant, made in the UI.
pub const KIND_ASSISTANT: &str = "assistant";

/// An agent seen within this long is `active`; else `idle`.
const ACTIVE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Longest detail kept in the history and the audit log.
const MAX_DETAILS: usize = 500;

/// How an agent reads in a listing: `disabled`, `active` (seen in the last five minutes) or
/// `idle`.
pub fn status(agent: &Agent, now_ms: i64) -> &'static str {
    if agent.disabled {
        "disabled"
    } else if agent.last_seen_ms.is_some_and(|t| now_ms - t < ACTIVE_WINDOW_MS) {
        "active"
    } else {
        "idle"
    }
}

/// Checks an `agent_id`: 1 to 64 letters, digits and `.-_:@`.
pub fn valid_agent_id(id: &str) -> Result<&str> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@'));
    if ok {
        Ok(id)
    } else {
        Err(Error::BadRequest(format!(
            "agent_id {id:?} is not valid: use 1 to 64 letters, digits and . - _ : @ (e.g. \"deploy-bot\")"
        )))
    }
}

/// The API agent called `name` in `workspace`, registered on its first call (held to the
/// workspace's quota of agents). A disabled agent is refused.
pub async fn api_agent(
    state: &AppState,
    user: &AuthUser,
    source: Option<&str>,
    workspace: &Workspace,
    name: &str,
) -> Result<Agent> {
    let name = valid_agent_id(name)?;
    let new = Agent {
        id: uuid::Uuid::new_v4().to_string(),
        workspace_id: workspace.id.clone(),
        name: name.to_owned(),
        kind: KIND_API.to_owned(),
        template: None,
        model: None,
        system_prompt: String::new(),
        tools: "[]".into(),
        auto_approve: "[]".into(),
        max_steps: 0,
        max_seconds: 0,
        disabled: false,
        created_by: user.actor(),
        created_ms: now_ms(),
        last_seen_ms: None,
        operations: 0,
        deleted_ms: None,
    };
    let agent = match state.store.register_agent(&new, workspace.max_agents).await? {
        Registered::Done(agent) => *agent,
        Registered::Quota(max) => {
            return Err(Error::Conflict(format!(
                "workspace {} has reached its quota of {max} agents; remove one or raise the quota",
                workspace.name
            )));
        }
    };
    if agent.id == new.id {
        state
            .store
            .audit(AuditEvent {
                actor: &user.actor(),
                action: "agent.register",
                target: Some(&agent.name),
                ok: true,
                detail: Some(format!("agent {} ({KIND_API})", agent.id)),
                workspace: Some(&workspace.id),
                source: source.map(str::to_owned),
                ..AuditEvent::default()
            })
            .await;
    }
    if agent.disabled {
        return Err(Error::Forbidden(format!("agent {name} is disabled in workspace {}", workspace.name)));
    }
    Ok(agent)
}

/// One finished operation, for [`record`].
pub struct Done<'a> {
    pub agent: &'a Agent,
    /// The caller's address.
    pub source: Option<&'a str>,
    pub server: Option<&'a str>,
    /// `run_bash`, `write_file`, …
    pub kind: &'a str,
    /// What it was about: the path, the command.
    pub target: &'a str,
    pub details: String,
    pub took: Duration,
    /// `ok`, or `failed: <code>`.
    pub result: std::result::Result<(), String>,
}

/// Writes an operation to the agent's history and to the audit log (`agent.<kind>`).
pub async fn record(state: &AppState, user: &AuthUser, done: Done<'_>) {
    let details = cut(&done.details, MAX_DETAILS);
    let op = Operation {
        id: 0,
        agent_id: done.agent.id.clone(),
        workspace_id: done.agent.workspace_id.clone(),
        server_id: done.server.map(str::to_owned),
        kind: done.kind.to_owned(),
        details: details.clone(),
        at_ms: now_ms(),
        duration_ms: i64::try_from(done.took.as_millis()).unwrap_or(i64::MAX),
        success: done.result.is_ok(),
        actor: user.actor(),
    };
    if let Err(e) = state.store.record_operation(&op).await {
        tracing::error!(error = %e, agent = %done.agent.id, "cannot record an agent's operation");
    }
    let result = match &done.result {
        Ok(()) => "ok".to_owned(),
        Err(why) => why.clone(),
    };
    state
        .store
        .audit(AuditEvent {
            actor: &user.actor(),
            action: &format!("agent.{}", done.kind),
            target: Some(&cut(done.target, MAX_DETAILS)),
            ok: done.result.is_ok(),
            detail: Some(format!("agent {}: {details}", done.agent.name)),
            server: done.server,
            workspace: Some(&done.agent.workspace_id),
            result: Some(&result),
            source: done.source.map(str::to_owned),
        })
        .await;
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(disabled: bool, last_seen_ms: Option<i64>) -> Agent {
        Agent {
            id: "a".into(),
            workspace_id: "w".into(),
            name: "bot".into(),
            kind: KIND_API.into(),
            template: None,
            model: None,
            system_prompt: String::new(),
            tools: "[]".into(),
            auto_approve: "[]".into(),
            max_steps: 0,
            max_seconds: 0,
            disabled,
            created_by: "user:u".into(),
            created_ms: 0,
            last_seen_ms,
            operations: 0,
            deleted_ms: None,
        }
    }

    #[test]
    fn status_follows_the_last_sighting() {
        let now = 10 * ACTIVE_WINDOW_MS;
        assert_eq!(status(&agent(false, Some(now - 1000)), now), "active");
        assert_eq!(status(&agent(false, Some(now - ACTIVE_WINDOW_MS)), now), "idle");
        assert_eq!(status(&agent(false, None), now), "idle");
        assert_eq!(status(&agent(true, Some(now)), now), "disabled");
    }

    #[test]
    fn agent_ids_are_short_and_plain() {
        assert!(valid_agent_id("deploy-bot_2:eu@ci.example").is_ok());
        for bad in ["", "has space", "slash/", "ümlaut", &"x".repeat(65)] {
            let err = valid_agent_id(bad).expect_err(bad).to_string();
            assert!(err.contains("agent_id"), "{err}");
        }
    }

    #[test]
    fn details_are_cut_on_character_boundaries() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ééé", 3), "é…");
    }
}
