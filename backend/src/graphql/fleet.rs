//! Bridges' updates in GraphQL: `updateServer` makes one server's bridge the one this
//! backend carries for its architecture (the bridge keeps its terminals: see the bridge's
//! `update` and `handover`), `updateWorkspaceServers` every out-of-date one of a workspace.
//! Each update is audited as `server.update`.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::{Context, Object, SimpleObject};
use porta_shared::bridge::{BridgeUpdate, BridgeUpdating};
use porta_shared::{ErrorBody, ErrorCode};

use super::{gql, state, user};
use crate::auth::scopes::Scope;
use crate::bus::Route;
use crate::db::{AuditEvent, Server};
use crate::error::Error;
use crate::fleet;
use crate::state::AppState;
use crate::teams::{Role, authorize_server, workspace_role};

/// How long a bridge may take to fetch and check the new binary.
const UPDATE_WITHIN: Duration = Duration::from_secs(300);

#[derive(SimpleObject)]
pub struct BridgeUpdateView {
    server_id: String,
    /// The bridge's version before, and the one it is becoming.
    from: String,
    to: String,
}

#[derive(Default)]
pub struct FleetMutation;

#[Object]
impl FleetMutation {
    /// Replaces the server's bridge with the one this backend carries for its architecture.
    /// Answers once the new binary is in place; the server then reconnects as it, with its
    /// terminals. Admins of the server's workspace.
    async fn update_server(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<BridgeUpdateView> {
        let state = state(ctx);
        let user = user(ctx, Scope::Write)?;
        let access = authorize_server(&state.store, &user.0, &user.1, &id, Role::Admin, "updating a server's bridge")
            .await
            .map_err(gql)?;
        // Its facts as stored now (the access answer may be a second old, from before its
        // bridge said its architecture).
        let server = state.store.server(&access.server.id).await.map_err(|e| gql(e.into()))?.unwrap_or(access.server);
        update(state, &user.actor(), &server).await.map_err(gql)
    }

    /// Updates every online server of the workspace whose bridge is older than the one this
    /// backend carries; returns how many updates began (each is audited as it ends).
    async fn update_workspace_servers(&self, ctx: &Context<'_>, workspace_id: String) -> async_graphql::Result<i32> {
        let state = state(ctx);
        let user = user(ctx, Scope::Write)?;
        let (ws, role) = workspace_role(&state.store, user, &workspace_id).await.map_err(gql)?;
        if role < Role::Admin {
            return Err(gql(Error::Forbidden("updating servers is for the workspace's admins".into())));
        }
        let carried = state.downloads.versions().await;
        let servers = state.store.servers_for(&user.0.id).await.map_err(|e| gql(e.into()))?;
        let due: Vec<Server> = servers
            .into_iter()
            .map(|a| a.server)
            .filter(|s| s.workspace_id.as_deref() == Some(ws.id.as_str()))
            .filter(|s| state.bus.connected(&s.id).is_some() && update_to(s, &carried).is_some())
            .collect();
        let count = due.len() as i32;
        let actor = user.actor();
        for server in due {
            let (state, actor) = (state.clone(), actor.clone());
            tokio::spawn(async move {
                let _ = update(&state, &actor, &server).await;
            });
        }
        Ok(count)
    }
}

/// The version `server`'s bridge would be updated to: the carried one for its architecture,
/// when that is newer than the bridge's.
pub fn update_to(server: &Server, carried: &HashMap<&'static str, String>) -> Option<String> {
    let running = fleet::bridge_version(server.agent.as_deref()?)?;
    let offered = carried.get(server.arch.as_deref()?)?;
    fleet::newer(offered, running).then(|| offered.clone())
}

async fn update(state: &AppState, actor: &str, server: &Server) -> Result<BridgeUpdateView, Error> {
    let result = ask(state, server).await;
    let detail = match &result {
        Ok(u) => format!("{} -> {}", u.from, u.to),
        Err(e) => e.to_string(),
    };
    state
        .store
        .audit(
            AuditEvent::new(actor, "server.update")
                .target(&server.id)
                .ok(result.is_ok())
                .detail(detail)
                .server(&server.id)
                .workspace_opt(server.workspace_id.as_deref()),
        )
        .await;
    result.map(|u| BridgeUpdateView { server_id: server.id.clone(), from: u.from, to: u.to })
}

async fn ask(state: &AppState, server: &Server) -> Result<BridgeUpdating, Error> {
    let arch = server.arch.as_deref().ok_or_else(|| {
        Error::Conflict("the server has not said its architecture yet; try again once it is online".into())
    })?;
    let carried = state
        .downloads
        .bridge(arch)
        .await?
        .ok_or_else(|| Error::NotFound(format!("this Porta carries no bridge for {arch}")))?;
    let req = BridgeUpdate { sha256: carried.sha256 };
    let reply =
        tokio::time::timeout(UPDATE_WITHIN, state.bus.request(&server.id, req.into(), Route::None)).await.map_err(
            |_| Error::Wire(ErrorBody::new(ErrorCode::Timeout, "the server did not finish the update in 5 minutes")),
        )?;
    match reply {
        Ok(raw) => serde_json::from_str(raw.get()).map_err(|e| Error::Other(e.into())),
        Err(e) if e.code == ErrorCode::UnknownType => Err(Error::Conflict(
            "this bridge is too old to update itself: run the install line from \"Add server\" on it again".into(),
        )),
        Err(e) => Err(Error::Wire(e)),
    }
}
