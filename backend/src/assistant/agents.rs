//! Agents: the registry of everything that acts on servers on a person's behalf, and the
//! record of what each did.
//!
//! An agent lives in a workspace and is held to its quota. External agents of the Porta
//! agent API (`agent_api`, `/api/v1`) register by their first call, named by the `agent_id`
//! they send; every operation is a row of the agent's history and an `agent.*` audit event,
//! written before the answer goes back. [`super::tools`] are the operations themselves, run
//! through the server's bridge with the caller's permissions.

use std::time::Duration;

use super::{templates, tools};
use crate::audit::cut;
use crate::auth::AuthUser;
use crate::clock::now_ms;
use crate::db::{Agent, AuditEvent, Operation, Registered, Store, Workspace};
use crate::error::{Error, Result};
use crate::teams::Role;

/// An agent registered by the Porta agent API.
pub const KIND_API: &str = "api";
/// An agent of the assistant, made in the UI.
pub const KIND_ASSISTANT: &str = "assistant";

/// An agent seen within this long is `active`; else `idle`.
pub const ACTIVE_WINDOW_MS: i64 = 5 * 60 * 1000;

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

/// A new agent of `kind` in `workspace`, made by `user`, with no settings yet.
fn new_agent(workspace: &str, kind: &str, user: &AuthUser) -> Agent {
    Agent {
        id: uuid::Uuid::new_v4().to_string(),
        workspace_id: workspace.to_owned(),
        name: String::new(),
        kind: kind.to_owned(),
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
        owner_id: Some(user.0.id.clone()),
    }
}

/// An external agent's call on a server: the caller reaches the server, and the agent is found
/// (or registered) in the server's workspace.
pub struct OnServer {
    pub agent: Agent,
    pub server: String,
    pub workspace: String,
    /// The caller's role there.
    pub role: Role,
}

impl OnServer {
    /// Whether the agent may use `tool` without asking the person.
    pub fn auto_approved(&self, tool: &str) -> bool {
        let auto: Vec<String> = serde_json::from_str(&self.agent.auto_approve).unwrap_or_default();
        auto.iter().any(|t| t == tool)
    }

    /// Who runs a command here through `tool`, as the command policy judges it.
    pub fn runner<'a>(
        &'a self,
        user: &'a AuthUser,
        source: Option<&'a str>,
        tool: &str,
    ) -> crate::policy::check::Runner<'a> {
        crate::policy::check::Runner {
            user,
            agent: Some(&self.agent.name),
            runs_without_asking: self.auto_approved(tool),
            workspace: &self.workspace,
            server: Some(&self.server),
            source,
        }
    }
}

/// Checks `user` reaches `server` with `role` (for doing `what`), and finds or registers their
/// agent `name` in the server's workspace (see [`api_agent`]).
pub async fn on_server(
    store: &Store,
    user: &AuthUser,
    source: Option<&str>,
    name: &str,
    server: &str,
    (role, what): (Role, &str),
) -> Result<OnServer> {
    let grant = crate::teams::authorize_server(store, &user.0, &user.1, server, role, what).await?;
    let workspace = match grant.server.workspace_id.as_deref() {
        Some(ws) => store.workspace(ws).await?,
        None => None,
    }
    .ok_or_else(|| Error::NotFound(format!("server {server} is in no workspace, so no agent may act on it")))?;
    let agent = api_agent(store, user, source, &workspace, name, grant.role >= Role::Developer).await?;
    Ok(OnServer { agent, server: grant.server.id, workspace: workspace.id, role: grant.role })
}

/// The caller's API agent called `name` in `workspace` (an agent is its owner's: another
/// person's of the same name is another agent), registered on its first call and held to the
/// workspace's quota of agents — unless the caller may not register one (a viewer, who only
/// reads): then the calls are in the audit log but no agent is made. A disabled agent is
/// refused.
pub async fn api_agent(
    store: &Store,
    user: &AuthUser,
    source: Option<&str>,
    workspace: &Workspace,
    name: &str,
    may_register: bool,
) -> Result<Agent> {
    let name = valid_agent_id(name)?;
    let new = Agent { name: name.to_owned(), ..new_agent(&workspace.id, KIND_API, user) };
    if !may_register {
        let own = store
            .agents_named(name, std::slice::from_ref(&workspace.id))
            .await?
            .into_iter()
            .find(|a| a.kind == KIND_API && a.owner_id.as_deref() == Some(user.0.id.as_str()));
        return match own {
            Some(a) if a.disabled => {
                Err(Error::Forbidden(format!("agent {name} is disabled in workspace {}", workspace.name)))
            }
            Some(a) => Ok(a),
            // Not stored: `record` writes its calls to the audit log only.
            None => Ok(Agent { id: String::new(), ..new }),
        };
    }
    let agent = match store.register_agent(&new, workspace.max_agents).await? {
        Registered::Done(agent) => *agent,
        Registered::Quota(max) => {
            return Err(Error::Conflict(format!(
                "workspace {} has reached its quota of {max} agents; remove one or raise the quota",
                workspace.name
            )));
        }
    };
    if agent.id == new.id {
        store
            .audit(
                AuditEvent::new(&user.actor(), "agent.register")
                    .target(&agent.name)
                    .detail(format!("agent {} ({KIND_API})", agent.id))
                    .workspace(&workspace.id)
                    .source_opt(source.map(str::to_owned)),
            )
            .await;
    }
    if agent.disabled {
        return Err(Error::Forbidden(format!("agent {name} is disabled in workspace {}", workspace.name)));
    }
    Ok(agent)
}

/// An assistant agent's settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub name: String,
    /// The model, when not the workspace's.
    pub model: Option<String>,
    pub system_prompt: String,
    pub tools: Vec<String>,
    /// Tools (of `tools`) it uses without asking.
    pub auto_approve: Vec<String>,
    pub max_steps: i64,
    pub max_seconds: i64,
}

impl Settings {
    /// A template's settings, under `name`.
    pub fn from_template(t: &templates::Template, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            model: None,
            system_prompt: t.prompt.to_owned(),
            tools: t.tools.iter().map(|s| (*s).to_owned()).collect(),
            auto_approve: t.tools.iter().filter(|s| templates::reads().contains(s)).map(|s| (*s).to_owned()).collect(),
            max_steps: 20,
            max_seconds: 600,
        }
    }

    /// Whether it lets the agent change anything (write, run) without asking.
    pub fn auto_approves_changes(&self) -> bool {
        self.auto_approve.iter().any(|t| tools::spec(t).is_none_or(|s| s.changes))
    }

    fn check(&self) -> Result<()> {
        valid_agent_id(&self.name)?;
        let unique = |list: &[String]| list.iter().collect::<std::collections::HashSet<_>>().len() == list.len();
        if !unique(&self.tools) || !unique(&self.auto_approve) {
            return Err(Error::BadRequest("each tool is named once".into()));
        }
        for t in self.tools.iter().chain(&self.auto_approve) {
            if tools::spec(t).is_none() {
                let known: Vec<&str> = tools::CATALOGUE.iter().map(|s| s.name).collect();
                return Err(Error::BadRequest(format!("there is no tool {t:?}; the tools are {}", known.join(", "))));
            }
        }
        if let Some(t) = self.auto_approve.iter().find(|t| !self.tools.contains(t)) {
            return Err(Error::BadRequest(format!("{t} is allowed without asking but is not among the agent's tools")));
        }
        if !(1..=100).contains(&self.max_steps) {
            return Err(Error::BadRequest("an agent takes 1 to 100 steps per task".into()));
        }
        if !(10..=86_400).contains(&self.max_seconds) {
            return Err(Error::BadRequest("an agent's time per task is 10 s to 24 h".into()));
        }
        if self.system_prompt.chars().count() > 20_000 {
            return Err(Error::BadRequest("the system prompt is at most 20,000 characters".into()));
        }
        if self.model.as_deref().is_some_and(|m| m.len() > 200 || m.chars().any(char::is_control)) {
            return Err(Error::BadRequest("the model is a name of at most 200 printable characters".into()));
        }
        Ok(())
    }

    fn apply(&self, a: &mut Agent) {
        a.name = self.name.clone();
        a.model = self.model.clone().filter(|m| !m.trim().is_empty());
        a.system_prompt = self.system_prompt.clone();
        a.tools = serde_json::Value::from(self.tools.clone()).to_string();
        a.auto_approve = serde_json::Value::from(self.auto_approve.clone()).to_string();
        a.max_steps = self.max_steps;
        a.max_seconds = self.max_seconds;
    }
}

/// Makes an assistant agent in a workspace (developers and up), held to its agent quota.
pub async fn create(
    store: &Store,
    user: &AuthUser,
    workspace_id: &str,
    template: Option<&str>,
    settings: Settings,
) -> Result<Agent> {
    user.require(crate::auth::scopes::Scope::Write)?;
    let (ws, role) = crate::teams::workspace_role(store, user, workspace_id).await?;
    crate::teams::require_role(role, crate::teams::Role::Developer, "making an agent")?;
    if let Some(t) = template {
        templates::template(t).ok_or_else(|| Error::BadRequest(format!("there is no agent template {t:?}")))?;
    }
    settings.check()?;
    if settings.auto_approves_changes() {
        user.require_person("choosing what an agent may do without asking")?;
    }
    if !store.agents_named(&settings.name, std::slice::from_ref(&ws.id)).await?.is_empty() {
        return Err(Error::Conflict(format!("this workspace already has an agent called {}", settings.name)));
    }
    let mut agent = Agent { template: template.map(str::to_owned), ..new_agent(&ws.id, KIND_ASSISTANT, user) };
    settings.apply(&mut agent);
    match store.register_agent(&agent, ws.max_agents).await? {
        Registered::Done(_) => {}
        Registered::Quota(max) => {
            return Err(Error::Conflict(format!(
                "workspace {} has reached its quota of {max} agents; remove one or raise the quota",
                ws.name
            )));
        }
    }
    audit_change(store, user, &agent, "agent.create").await;
    Ok(agent)
}

/// An agent of a workspace the caller is in, and their role there.
pub async fn find(store: &Store, user: &AuthUser, id: &str) -> Result<(Agent, crate::teams::Role)> {
    let not_found = || Error::NotFound(format!("no agent {id}"));
    let agent = store.agent(id).await?.filter(|a| a.deleted_ms.is_none()).ok_or_else(not_found)?;
    let (_, role) = crate::teams::workspace_role(store, user, &agent.workspace_id).await.map_err(|_| not_found())?;
    Ok((agent, role))
}

/// Changes to any agent, API agents included.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub disabled: Option<bool>,
    /// The tools it uses without asking (for an assistant agent, among its tools).
    pub auto_approve: Option<Vec<String>>,
}

/// Changes an agent's settings, or turns it off and on (developers and up).
pub async fn update(
    store: &Store,
    user: &AuthUser,
    id: &str,
    settings: Option<Settings>,
    changes: Changes,
) -> Result<Agent> {
    user.require(crate::auth::scopes::Scope::Write)?;
    let (mut agent, role) = find(store, user, id).await?;
    crate::teams::require_role(role, crate::teams::Role::Developer, "changing an agent")?;
    if changes.auto_approve.is_some() || settings.as_ref().is_some_and(|s| s.auto_approves_changes()) {
        user.require_person("choosing what an agent may do without asking")?;
        // An API agent acts with its owner's token: what it may do without asking is its
        // owner's choice (or a workspace admin's), not a colleague's.
        let owner = agent.owner_id.as_deref() == Some(user.0.id.as_str());
        if agent.kind == KIND_API && !owner && role < crate::teams::Role::Admin {
            return Err(Error::Forbidden(
                "what an API agent may do without asking is for its owner (or a workspace admin) to choose".into(),
            ));
        }
    }
    if let Some(tools) = changes.auto_approve {
        if let Some(t) = tools.iter().find(|t| tools::spec(t).is_none()) {
            return Err(Error::BadRequest(format!("there is no tool {t:?}")));
        }
        let mut tools = tools;
        tools.sort();
        tools.dedup();
        agent.auto_approve = serde_json::Value::from(tools).to_string();
    }
    if let Some(s) = settings {
        if agent.kind != KIND_ASSISTANT {
            return Err(Error::BadRequest(
                "an API agent is named by the agent_id it sends and uses the tools it calls: only what it may do \
                 without asking (autoApprove) and whether it is turned off can change"
                    .into(),
            ));
        }
        s.check()?;
        if s.name != agent.name
            && !store.agents_named(&s.name, std::slice::from_ref(&agent.workspace_id)).await?.is_empty()
        {
            return Err(Error::Conflict(format!("this workspace already has an agent called {}", s.name)));
        }
        s.apply(&mut agent);
    }
    if agent.kind == KIND_ASSISTANT {
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        let own = list(&agent.tools);
        if let Some(t) = list(&agent.auto_approve).into_iter().find(|t| !own.contains(t)) {
            return Err(Error::BadRequest(format!("{t} is allowed without asking but is not among the agent's tools")));
        }
    }
    if let Some(d) = changes.disabled {
        agent.disabled = d;
    }
    store.update_agent(&agent).await?;
    audit_change(store, user, &agent, "agent.update").await;
    Ok(agent)
}

/// Deletes an agent softly (developers and up); its history stays.
pub async fn delete(store: &Store, user: &AuthUser, id: &str) -> Result<bool> {
    user.require(crate::auth::scopes::Scope::Write)?;
    let (agent, role) = find(store, user, id).await?;
    crate::teams::require_role(role, crate::teams::Role::Developer, "removing an agent")?;
    let done = store.delete_agent(&agent.id).await?;
    audit_change(store, user, &agent, "agent.delete").await;
    Ok(done)
}

async fn audit_change(store: &Store, user: &AuthUser, agent: &Agent, action: &str) {
    store
        .audit(
            AuditEvent::new(&user.actor(), action)
                .target(&agent.name)
                .detail(format!(
                    "agent {}: tools {}, without asking {}{}",
                    agent.id,
                    agent.tools,
                    agent.auto_approve,
                    if agent.disabled { ", disabled" } else { "" }
                ))
                .workspace(&agent.workspace_id),
        )
        .await;
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
pub async fn record(store: &Store, user: &AuthUser, done: Done<'_>) {
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
    // An agent a viewer's calls did not register has no history to add to.
    if !done.agent.id.is_empty() {
        if let Err(e) = store.record_operation(&op).await {
            tracing::error!(error = %e, agent = %done.agent.id, "cannot record an agent's operation");
        }
    }
    let result = match &done.result {
        Ok(()) => "ok".to_owned(),
        Err(why) => why.clone(),
    };
    store
        .audit(
            AuditEvent::new(&user.actor(), &format!("agent.{}", done.kind))
                .target(&cut(done.target, MAX_DETAILS))
                .ok(done.result.is_ok())
                .detail(format!("agent {}: {details}", done.agent.name))
                .server_opt(done.server)
                .workspace(&done.agent.workspace_id)
                .result(&result)
                .source_opt(done.source.map(str::to_owned)),
        )
        .await;
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
            owner_id: None,
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
}
