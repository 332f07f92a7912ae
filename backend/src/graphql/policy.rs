//! The command policy in GraphQL: a workspace's rules (any member reads them), their change
//! (an admin, signed in: a token may not loosen what its own agent may run), and a check of
//! one command line against them.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::{gql, state, user};
use crate::auth::scopes::Scope;
use crate::db::AuditEvent;
use crate::error::Error;
use crate::policy::{self, Policy, Rule, Tier};
use crate::teams::{Role, require_role, workspace_role};

#[derive(SimpleObject)]
pub struct PolicyRuleView {
    /// `allow`, `ask` or `block`.
    tier: String,
    pattern: String,
    note: String,
}

#[derive(SimpleObject)]
pub struct CommandPolicyView {
    workspace_id: String,
    rules: Vec<PolicyRuleView>,
    /// The tier of commands no rule names.
    otherwise: String,
    /// True while the workspace uses Porta's default policy.
    is_default: bool,
}

#[derive(InputObject)]
pub struct PolicyRuleInput {
    tier: String,
    pattern: String,
    #[graphql(default)]
    note: String,
}

/// What the policy says of one command line.
#[derive(SimpleObject)]
pub struct CommandVerdictView {
    /// `allow`, `ask` or `block`.
    tier: String,
    /// A rule named it (or it could not be read): an agent's "without asking" does not apply.
    firm: bool,
    rule: Option<String>,
    reason: String,
}

fn view(workspace_id: String, p: Policy, is_default: bool) -> CommandPolicyView {
    CommandPolicyView {
        workspace_id,
        rules: p
            .rules
            .into_iter()
            .map(|r| PolicyRuleView { tier: r.tier.as_str().into(), pattern: r.pattern, note: r.note })
            .collect(),
        otherwise: p.otherwise.as_str().into(),
        is_default,
    }
}

#[derive(Default)]
pub struct PolicyQuery;

#[Object]
impl PolicyQuery {
    /// A workspace's command policy (its members).
    async fn command_policy(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
    ) -> async_graphql::Result<CommandPolicyView> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let (ws, _) = workspace_role(&st.store, u, &workspace_id).await.map_err(gql)?;
        let (p, is_default) = policy::check::workspace_policy(&st.store, &ws.id).await.map_err(gql)?;
        Ok(view(ws.id, p, is_default))
    }

    /// What the workspace's policy would say of `command` (nothing runs).
    async fn check_command(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        command: String,
    ) -> async_graphql::Result<CommandVerdictView> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        let (ws, _) = workspace_role(&st.store, u, &workspace_id).await.map_err(gql)?;
        if command.len() > 64 * 1024 {
            return Err(gql(Error::BadRequest("a command line is at most 64 KiB".into())));
        }
        let v = policy::check::compiled(&st.store, &ws.id).await.map_err(gql)?.judge(command, None).await;
        Ok(CommandVerdictView { tier: v.tier.as_str().into(), firm: v.firm, rule: v.rule, reason: v.reason })
    }
}

#[derive(Default)]
pub struct PolicyMutation;

#[Object]
impl PolicyMutation {
    /// Sets a workspace's command policy (admins, signed in). `rules: null` goes back to the
    /// default policy.
    async fn set_command_policy(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        rules: Option<Vec<PolicyRuleInput>>,
        #[graphql(default_with = "String::from(\"ask\")")] otherwise: String,
    ) -> async_graphql::Result<CommandPolicyView> {
        let u = user(ctx, Scope::Write)?;
        u.require_person("changing what commands agents may run").map_err(gql)?;
        let st = state(ctx);
        let (ws, role) = workspace_role(&st.store, u, &workspace_id).await.map_err(gql)?;
        require_role(role, Role::Admin, "changing the command policy").map_err(gql)?;
        let bad = |e: String| gql(Error::BadRequest(e));
        let (stored, detail) = match rules {
            None => (None, "the default policy".to_owned()),
            Some(rules) => {
                let mut list = Vec::with_capacity(rules.len());
                for (i, r) in rules.into_iter().enumerate() {
                    let tier = Tier::parse(&r.tier).map_err(|e| bad(format!("rule {}: {e}", i + 1)))?;
                    list.push(Rule { tier, pattern: r.pattern.trim().to_owned(), note: r.note.trim().to_owned() });
                }
                let p = Policy { rules: list, otherwise: Tier::parse(&otherwise).map_err(bad)? };
                p.compile().map_err(bad)?;
                let json = serde_json::to_string(&p).map_err(|e| gql(Error::Other(e.into())))?;
                let detail = format!("{} rules; otherwise {}", p.rules.len(), p.otherwise.as_str());
                (Some(json), detail)
            }
        };
        st.store.set_command_policy(&ws.id, stored.as_deref(), &u.actor()).await.map_err(|e| gql(e.into()))?;
        st.store
            .audit(
                AuditEvent::new(&u.actor(), "policy.change")
                    .target(&format!("workspace:{}", ws.id))
                    .detail(detail)
                    .workspace(&ws.id),
            )
            .await;
        let (p, is_default) = policy::check::workspace_policy(&st.store, &ws.id).await.map_err(gql)?;
        Ok(view(ws.id, p, is_default))
    }
}
