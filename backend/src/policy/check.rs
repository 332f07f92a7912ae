//! Checking a command line against its workspace's policy, and writing the decision down.
//!
//! Every caller that runs a command nobody typed — an assistant agent, an MCP client, the
//! agent API's `run_bash` and pipelines — asks [`decide`] first and does what it says:
//! run, ask a person, or refuse. Each decision is an audit event (`policy.decision`) naming
//! the command, the tier and the rule that set it.

use std::sync::Arc;

use super::{Compiled, Policy, Tier, Verdict};
use crate::auth::AuthUser;
use crate::db::{AuditEvent, Store};
use crate::error::Result;

/// A workspace's policy, and whether it is the default (its admins set none).
pub async fn workspace_policy(store: &Store, workspace: &str) -> Result<(Policy, bool)> {
    Ok(match store.command_policy(workspace).await? {
        Some(json) => match serde_json::from_str::<Policy>(&json) {
            Ok(p) => (p, false),
            Err(e) => {
                // Saved policies are checked when saved; one that cannot be read fails closed.
                tracing::error!(workspace, error = %e, "a stored command policy cannot be read; every command asks");
                (Policy { rules: Vec::new(), otherwise: Tier::Ask }, false)
            }
        },
        None => (Policy::default(), true),
    })
}

/// The workspace's policy, compiled (an unreadable one asks about everything).
pub async fn compiled(store: &Store, workspace: &str) -> Result<Arc<Compiled>> {
    let (policy, _) = workspace_policy(store, workspace).await?;
    let asks = || Policy { rules: Vec::new(), otherwise: Tier::Ask };
    Ok(Arc::new(
        policy
            .compile()
            .or_else(|_| asks().compile())
            .unwrap_or_else(|_| Compiled { rules: Vec::new(), otherwise: Tier::Ask }),
    ))
}

/// What to do with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it without asking.
    Run(Verdict),
    /// Ask a person first.
    Ask(Verdict),
    /// Never run it.
    Refuse(Verdict),
}

impl Decision {
    pub fn verdict(&self) -> &Verdict {
        match self {
            Decision::Run(v) | Decision::Ask(v) | Decision::Refuse(v) => v,
        }
    }

    /// `allowed`, `asked` or `blocked`, for the audit log.
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Run(_) => "allowed",
            Decision::Ask(_) => "asked",
            Decision::Refuse(_) => "blocked",
        }
    }
}

/// The decision for a verdict: blocked is refused; allowed runs; "ask" runs without asking
/// only when no rule named the command (the policy's `otherwise` decided) and the agent is
/// allowed commands without asking. A rule's "ask", a command that cannot be read or seen
/// before it runs, always asks.
pub fn decision(verdict: Verdict, agent_runs_without_asking: bool) -> Decision {
    match verdict.tier {
        Tier::Block => Decision::Refuse(verdict),
        Tier::Allow => Decision::Run(verdict),
        Tier::Ask if !verdict.firm && agent_runs_without_asking => Decision::Run(verdict),
        Tier::Ask => Decision::Ask(verdict),
    }
}

/// Who runs a command, for [`decide`].
pub struct Runner<'a> {
    pub user: &'a AuthUser,
    /// The agent's name, if an agent asks.
    pub agent: Option<&'a str>,
    /// Whether the agent may run commands without asking.
    pub runs_without_asking: bool,
    pub workspace: &'a str,
    pub server: Option<&'a str>,
    /// The caller's address.
    pub source: Option<&'a str>,
}

/// Judges `command`, run in the folder `cwd` (the home folder when not given), by the
/// workspace's policy, writes the decision to the audit log and returns it.
pub async fn decide(store: &Store, runner: &Runner<'_>, command: &str, cwd: Option<&str>) -> Result<Decision> {
    let policy = compiled(store, runner.workspace).await?;
    let verdict = policy.judge(command.to_owned(), cwd.map(str::to_owned)).await;
    let decision = decision(verdict, runner.runs_without_asking);
    let v = decision.verdict();
    let mut detail = match &v.rule {
        Some(rule) => format!("{} (rule `{rule}`)", v.reason),
        None => v.reason.clone(),
    };
    if let (Decision::Run(_), Tier::Ask) = (&decision, v.tier) {
        detail.push_str("; the agent may run such commands without asking");
    }
    if let Some(agent) = runner.agent {
        detail = format!("agent {agent}: {detail}");
    }
    store
        .audit(
            AuditEvent::new(&runner.user.actor(), "policy.decision")
                .target(command)
                .ok(!matches!(decision, Decision::Refuse(_)))
                .result(decision.word())
                .detail(detail)
                .server_opt(runner.server)
                .workspace(runner.workspace)
                .source_opt(runner.source.map(str::to_owned)),
        )
        .await;
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(tier: Tier, firm: bool) -> Verdict {
        Verdict { tier, firm, rule: None, reason: String::new() }
    }

    #[test]
    fn an_agent_allowed_commands_skips_only_the_default_ask() {
        assert!(matches!(decision(verdict(Tier::Ask, false), true), Decision::Run(_)));
        assert!(matches!(decision(verdict(Tier::Ask, false), false), Decision::Ask(_)));
        assert!(matches!(decision(verdict(Tier::Ask, true), true), Decision::Ask(_)), "a rule's ask always asks");
        assert!(matches!(decision(verdict(Tier::Block, true), true), Decision::Refuse(_)));
        assert!(matches!(decision(verdict(Tier::Allow, true), false), Decision::Run(_)));
    }
}
