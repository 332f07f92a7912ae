//! The assistant's agents in GraphQL: templates and tools to make them from, a workspace's
//! agents (make, change, turn off, remove) and what each did.

use super::scalars::Int64;
use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::{gql, state, user};
use crate::assistant::{agents, templates, tools};
use crate::auth::scopes::Scope;
use crate::clock::now_ms;
use crate::db::{Agent, OperationQuery};
use crate::error::Error;
use crate::teams::workspace_role;

#[derive(SimpleObject)]
pub struct AgentView {
    id: String,
    workspace_id: String,
    name: String,
    /// `assistant` or `api`.
    kind: String,
    template: Option<String>,
    model: Option<String>,
    system_prompt: String,
    tools: Vec<String>,
    auto_approve: Vec<String>,
    max_steps: i64,
    max_seconds: i64,
    disabled: bool,
    /// `active`, `idle` or `disabled`.
    status: String,
    created_by: String,
    created_ms: Int64,
    last_seen_ms: Option<Int64>,
    operations: i64,
}

fn agent_view(a: Agent) -> AgentView {
    let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
    AgentView {
        status: agents::status(&a, now_ms()).to_owned(),
        tools: list(&a.tools),
        auto_approve: list(&a.auto_approve),
        id: a.id,
        workspace_id: a.workspace_id,
        name: a.name,
        kind: a.kind,
        template: a.template,
        model: a.model,
        system_prompt: a.system_prompt,
        max_steps: a.max_steps,
        max_seconds: a.max_seconds,
        disabled: a.disabled,
        created_by: a.created_by,
        created_ms: a.created_ms.into(),
        last_seen_ms: a.last_seen_ms.map(Into::into),
        operations: a.operations,
    }
}

#[derive(SimpleObject)]
pub struct AgentTemplateView {
    name: String,
    title: String,
    prompt: String,
    tools: Vec<String>,
}

#[derive(SimpleObject)]
pub struct ToolView {
    name: String,
    description: String,
    /// It changes the server (so it asks first, unless allowed without asking).
    changes: bool,
}

#[derive(SimpleObject)]
pub struct OperationView {
    id: Int64,
    agent_id: String,
    server_id: Option<String>,
    kind: String,
    details: String,
    at_ms: Int64,
    duration_ms: Int64,
    success: bool,
    actor: String,
}

#[derive(SimpleObject)]
pub struct OperationPage {
    total: i64,
    items: Vec<OperationView>,
}

#[derive(InputObject)]
pub struct AgentInput {
    name: String,
    model: Option<String>,
    #[graphql(default)]
    system_prompt: String,
    tools: Vec<String>,
    #[graphql(default)]
    auto_approve: Vec<String>,
    #[graphql(default = 20)]
    max_steps: i64,
    #[graphql(default = 600)]
    max_seconds: i64,
}

impl From<AgentInput> for agents::Settings {
    fn from(a: AgentInput) -> Self {
        Self {
            name: a.name.trim().to_owned(),
            model: a.model,
            system_prompt: a.system_prompt,
            tools: a.tools,
            auto_approve: a.auto_approve,
            max_steps: a.max_steps,
            max_seconds: a.max_seconds,
        }
    }
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// A workspace's agents (the assistant's and the API's), by name.
    async fn agents(&self, ctx: &Context<'_>, workspace_id: String) -> async_graphql::Result<Vec<AgentView>> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        workspace_role(&st.store, u, &workspace_id).await.map_err(gql)?;
        let q = crate::db::AgentQuery { workspaces: vec![workspace_id], limit: 500, ..Default::default() };
        let (list, _) = st.store.list_agents(&q).await.map_err(|e| gql(e.into()))?;
        Ok(list.into_iter().map(agent_view).collect())
    }

    /// What an agent did, newest first.
    #[allow(clippy::too_many_arguments)]
    async fn agent_operations(
        &self,
        ctx: &Context<'_>,
        agent_id: String,
        kind: Option<String>,
        success: Option<bool>,
        since_ms: Option<Int64>,
        until_ms: Option<Int64>,
        #[graphql(default = 50)] limit: i64,
        #[graphql(default = 0)] offset: i64,
    ) -> async_graphql::Result<OperationPage> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let (agent, _) = agents::find(&st.store, u, &agent_id).await.map_err(gql)?;
        let q = OperationQuery {
            agents: vec![agent.id],
            kind,
            success,
            since_ms: since_ms.map(i64::from),
            until_ms: until_ms.map(i64::from),
            limit: limit.clamp(1, 500),
            offset: offset.max(0),
        };
        let (ops, total) = st.store.operations(&q).await.map_err(|e| gql(e.into()))?;
        let items = ops
            .into_iter()
            .map(|o| OperationView {
                id: o.id.into(),
                agent_id: o.agent_id,
                server_id: o.server_id,
                kind: o.kind,
                details: o.details,
                at_ms: o.at_ms.into(),
                duration_ms: o.duration_ms.into(),
                success: o.success,
                actor: o.actor,
            })
            .collect();
        Ok(OperationPage { total, items })
    }

    /// The agents to start from.
    async fn agent_templates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AgentTemplateView>> {
        user(ctx, Scope::Read)?;
        Ok(templates::TEMPLATES
            .iter()
            .map(|t| AgentTemplateView {
                name: t.name.into(),
                title: t.title.into(),
                prompt: t.prompt.into(),
                tools: t.tools.iter().map(|s| (*s).to_owned()).collect(),
            })
            .collect())
    }

    /// The tools agents can be given.
    async fn agent_tools(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ToolView>> {
        user(ctx, Scope::Read)?;
        Ok(tools::CATALOGUE
            .iter()
            .map(|s| ToolView { name: s.name.into(), description: s.description.into(), changes: s.changes })
            .collect())
    }
}

#[derive(Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// Makes an agent (developers and up), from a template's settings or given ones.
    async fn create_agent(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        template: Option<String>,
        settings: Option<AgentInput>,
        name: Option<String>,
    ) -> async_graphql::Result<AgentView> {
        let u = user(ctx, Scope::Write)?;
        let settings = match (settings, &template) {
            (Some(s), _) => s.into(),
            (None, Some(t)) => {
                let tpl = templates::template(t)
                    .ok_or_else(|| gql(Error::BadRequest(format!("there is no agent template {t:?}"))))?;
                agents::Settings::from_template(tpl, name.as_deref().unwrap_or(tpl.name))
            }
            (None, None) => return Err(gql(Error::BadRequest("give the agent's settings or a template".into()))),
        };
        let agent =
            agents::create(&state(ctx).store, u, &workspace_id, template.as_deref(), settings).await.map_err(gql)?;
        Ok(agent_view(agent))
    }

    /// Changes an agent's settings, what it may do without asking (`autoApprove`; for an API
    /// or MCP agent too), and/or turns it off or on.
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        id: String,
        settings: Option<AgentInput>,
        disabled: Option<bool>,
        auto_approve: Option<Vec<String>>,
    ) -> async_graphql::Result<AgentView> {
        let u = user(ctx, Scope::Write)?;
        let changes = agents::Changes { disabled, auto_approve };
        let agent = agents::update(&state(ctx).store, u, &id, settings.map(Into::into), changes).await.map_err(gql)?;
        Ok(agent_view(agent))
    }

    /// Removes an agent (its history stays).
    async fn delete_agent(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        agents::delete(&state(ctx).store, u, &id).await.map_err(gql)
    }
}
