//! The audit log in GraphQL: its events, newest first, with the names of the people, servers
//! and workspaces they concern, and a check of its hash chain. Admins only.

use super::scalars::Int64;
use async_graphql::{Context, Object, SimpleObject};

use super::{gql, state, user};
use crate::auth::scopes::Scope;

/// One audit event.
#[derive(SimpleObject)]
pub struct AuditEntry {
    seq: Int64,
    at_ms: Int64,
    actor: Option<String>,
    /// The actor as people know it: a user's name, a server's name.
    actor_name: Option<String>,
    source: Option<String>,
    server_id: Option<String>,
    /// The server's name, while it is known.
    server_name: Option<String>,
    workspace_id: Option<String>,
    /// The workspace's name, while it is known.
    workspace_name: Option<String>,
    action: String,
    target: Option<String>,
    /// `ok` or `denied`.
    result: String,
    detail: Option<String>,
    hash: Option<String>,
}

impl From<crate::audit::Record> for AuditEntry {
    fn from(r: crate::audit::Record) -> Self {
        Self {
            seq: r.seq.into(),
            at_ms: r.at_ms.into(),
            actor: r.actor,
            actor_name: None,
            source: r.source,
            server_id: r.server_id,
            server_name: None,
            workspace_id: r.workspace_id,
            workspace_name: None,
            action: r.action,
            target: r.target,
            result: r.result,
            detail: r.detail,
            hash: r.hash,
        }
    }
}

/// Whether the audit log's chain holds.
#[derive(SimpleObject)]
pub struct AuditCheck {
    intact: bool,
    /// Events checked (all of them when intact).
    events: Int64,
    /// The first event that does not hold.
    broken_at: Option<Int64>,
    reason: Option<String>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit events, newest first. `action` is exact, or a prefix ending in `.` (`file.`).
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        actor: Option<String>,
        server_id: Option<String>,
        action: Option<String>,
        since_ms: Option<Int64>,
        until_ms: Option<Int64>,
        before_seq: Option<Int64>,
        #[graphql(default = 100)] limit: i64,
    ) -> async_graphql::Result<Vec<AuditEntry>> {
        user(ctx, Scope::Admin)?;
        let q = crate::db::AuditQuery {
            actor,
            server: server_id,
            action,
            since_ms: since_ms.map(i64::from),
            until_ms: until_ms.map(i64::from),
            before_seq: before_seq.map(i64::from),
            limit,
            ..Default::default()
        };
        let store = &state(ctx).store;
        let events = store.audit_events(&q).await.map_err(|e| gql(e.into()))?;
        // Names for the actors, servers and workspaces on this page, each looked up once.
        let mut names = std::collections::HashMap::<String, Option<String>>::new();
        let mut out = Vec::with_capacity(events.len());
        for r in events {
            let actor = r.actor.clone().unwrap_or_default();
            let server = r.server_id.as_ref().map(|s| format!("server:{s}"));
            let workspace = r.workspace_id.as_ref().map(|w| format!("workspace:{w}"));
            for key in [Some(&actor), server.as_ref(), workspace.as_ref()].into_iter().flatten() {
                if !names.contains_key(key) {
                    let name = match key.split_once(':') {
                        Some(("workspace", id)) => store.workspace(id).await.ok().flatten().map(|w| w.name),
                        _ => actor_name(store, key).await,
                    };
                    names.insert(key.clone(), name);
                }
            }
            let name = |key: Option<&String>| key.and_then(|k| names.get(k).cloned().flatten());
            out.push(AuditEntry {
                actor_name: name(Some(&actor)),
                server_name: name(server.as_ref()),
                workspace_name: name(workspace.as_ref()),
                ..AuditEntry::from(r)
            });
        }
        Ok(out)
    }

    /// Walks the audit log's chain and says where, if anywhere, it was tampered with.
    async fn audit_verify(&self, ctx: &Context<'_>) -> async_graphql::Result<AuditCheck> {
        user(ctx, Scope::Admin)?;
        Ok(match state(ctx).store.verify_audit().await.map_err(|e| gql(e.into()))? {
            crate::audit::Verdict::Intact { events } => {
                AuditCheck { intact: true, events: events.into(), broken_at: None, reason: None }
            }
            crate::audit::Verdict::Broken { seq, reason } => AuditCheck {
                intact: false,
                events: (seq - 1).max(0).into(),
                broken_at: Some(seq.into()),
                reason: Some(reason),
            },
        })
    }
}

/// An actor (`user:<id>`, `server:<id>`, `token:<id>`) as people know it.
pub(super) async fn actor_name(store: &crate::db::Store, actor: &str) -> Option<String> {
    match actor.split_once(':') {
        Some(("user", id)) => store.user_by_id(id).await.ok().flatten().map(|u| u.username),
        Some(("server", id)) => store.server(id).await.ok().flatten().map(|s| s.name),
        Some(("token", id)) => {
            let t = store.api_token(id).await.ok().flatten()?;
            let owner = store.user_by_id(&t.user_id).await.ok().flatten().map(|u| u.username);
            Some(format!("{} (token of {})", t.name, owner.unwrap_or_default()))
        }
        _ => None,
    }
}
