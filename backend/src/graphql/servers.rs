//! Servers in GraphQL: the servers the caller reaches and the terminals running on them,
//! enrolment tokens that add a server, and revoking one.

use super::scalars::Int64;
use std::collections::HashMap;

use async_graphql::{Context, Object, SimpleObject};
use porta_shared::bridge::{TermList, TermListed};
use porta_shared::{ErrorBody, ErrorCode};

use super::{gql, state, user, wire};
use crate::auth::scopes::Scope;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::bus::Route;
use crate::db::{AuditEvent, ServerAccess};
use crate::error::Error;
use crate::state::AppState;
use crate::teams::{Role, authorize_server};

/// A server, as the dashboard shows it.
#[derive(SimpleObject)]
pub struct ServerView {
    id: String,
    name: String,
    online: bool,
    /// Unix milliseconds of the last contact.
    last_seen_ms: Option<Int64>,
    created_ms: Int64,
    agent: Option<String>,
    os: Option<String>,
    kernel: Option<String>,
    arch: Option<String>,
    hostname: Option<String>,
    workspace_id: Option<String>,
    team_id: String,
    /// The caller's role on it: `owner`, `admin`, `developer` or `viewer`.
    role: String,
    /// Its bridge's version, as it last said.
    version: Option<String>,
    /// The newer version this backend carries for its architecture, when there is one
    /// (`updateServer` installs it).
    update_to: Option<String>,
    /// Why its bridge was turned away when it last tried to connect (no protocol in common
    /// with this backend), and what to do; null once it connects.
    update_needed: Option<String>,
}

impl ServerView {
    fn new(a: ServerAccess, state: &AppState, carried: &HashMap<&'static str, String>) -> Self {
        let s = a.server;
        let online = state.bus.connected(&s.id).is_some();
        Self {
            version: s.agent.as_deref().and_then(crate::fleet::bridge_version).map(str::to_owned),
            update_to: super::fleet::update_to(&s, carried),
            update_needed: s.refused.clone().filter(|_| !online),
            online,
            workspace_id: s.workspace_id,
            team_id: a.team_id,
            role: a.role.to_string(),
            id: s.id,
            name: s.name,
            last_seen_ms: s.last_seen_ms.map(Into::into),
            created_ms: s.created_ms.into(),
            agent: s.agent,
            os: s.os,
            kernel: s.kernel,
            arch: s.arch,
            hostname: s.hostname,
        }
    }
}

#[derive(SimpleObject)]
pub struct TerminalView {
    id: u32,
    shell: String,
    cwd: String,
    cols: u16,
    rows: u16,
    pid: Option<u32>,
    started_ms: Int64,
    /// Bytes of output produced so far.
    output_bytes: Int64,
    exited: bool,
    exit_code: Option<i32>,
    attached: u32,
}

#[derive(SimpleObject)]
pub struct EnrollmentToken {
    /// Shown once; only its hash is stored.
    pub token: String,
    pub expires_at_ms: Int64,
    /// What to run where `porta-bridge` is already installed.
    pub command: String,
    /// A root shell snippet that enrols the server and installs the bridge as a systemd
    /// service, where `porta-bridge` is already installed.
    pub install_snippet: String,
    /// The one line to paste on the new server: it installs the bridge from this backend,
    /// enrols and starts it. Null when this backend carries no bridges to hand out.
    pub install_command: Option<String>,
    /// The address the new server must reach this backend at.
    pub server_url: String,
    /// The architectures (`uname -m`) whose bridge this backend carries.
    pub architectures: Vec<String>,
}

/// The bridge's systemd unit, shown in install snippets.
const SYSTEMD_UNIT: &str = include_str!("../../../bridge-daemon/dist/porta-bridge.service");

#[derive(Default)]
pub struct ServerQuery;

#[Object]
impl ServerQuery {
    /// The servers the caller reaches, in every team they are in (or in the one workspace
    /// their API token is limited to).
    async fn servers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServerView>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        let list = state.store.servers_for(&u.0.id).await.map_err(|e| gql(e.into()))?;
        let carried = state.downloads.versions().await;
        Ok(list
            .into_iter()
            .filter(|a| u.1.reaches_workspace(a.server.workspace_id.as_deref()))
            .map(|a| ServerView::new(a, state, &carried))
            .collect())
    }

    /// One server; `null` when there is none the caller reaches.
    async fn server(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<ServerView>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        match authorize_server(&state.store, &u.0, &u.1, &id, Role::Viewer, "seeing a server").await {
            Ok(a) => Ok(Some(ServerView::new(a, state, &state.downloads.versions().await))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(gql(e)),
        }
    }

    /// The terminals running on a server, asked of its bridge.
    async fn terminals(&self, ctx: &Context<'_>, server_id: String) -> async_graphql::Result<Vec<TerminalView>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        authorize_server(&state.store, &u.0, &u.1, &server_id, Role::Viewer, "listing terminals").await.map_err(gql)?;
        let timeout = std::time::Duration::from_millis(state.config.request_timeout_ms);
        let reply = tokio::time::timeout(timeout, state.bus.request(&server_id, TermList {}.into(), Route::None))
            .await
            .map_err(|_| wire(ErrorBody::new(ErrorCode::Timeout, "the server did not answer in time")))?
            .map_err(wire)?;
        let listed: TermListed = serde_json::from_str(reply.get()).map_err(|e| gql(Error::Other(e.into())))?;
        Ok(listed
            .terminals
            .into_iter()
            .map(|t| TerminalView {
                id: t.term.0,
                shell: t.shell,
                cwd: t.cwd,
                cols: t.size.cols,
                rows: t.size.rows,
                pid: t.pid,
                started_ms: t.started_ms.into(),
                output_bytes: t.end.into(),
                exited: t.exit.is_some(),
                exit_code: t.exit.and_then(|e| e.code),
                attached: t.attached,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct ServerMutation;

#[Object]
impl ServerMutation {
    /// A one-time token that enrols a new server into a workspace (valid for the configured
    /// time). Without `workspaceId`, into the caller's own team's first workspace.
    async fn create_enrollment_token(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        workspace_id: Option<String>,
    ) -> async_graphql::Result<EnrollmentToken> {
        let state = state(ctx);
        let user = user(ctx, Scope::Write)?;
        if let Some(n) = &name {
            if n.trim().is_empty() || n.len() > 64 {
                return Err(gql(Error::BadRequest("a server name is 1 to 64 characters".into())));
            }
        }
        let workspace_id = match workspace_id.or_else(|| user.1.workspace().map(str::to_owned)) {
            Some(id) => id,
            None => state.store.home_workspace(&user.0.id).await.map_err(|e| gql(e.into()))?.map(|w| w.id).ok_or_else(
                || gql(Error::BadRequest("you own no workspace; name the workspace the server joins".into())),
            )?,
        };
        let (ws, role) = crate::teams::workspace_role(&state.store, user, &workspace_id).await.map_err(gql)?;
        crate::teams::require_role(role, Role::Admin, "adding a server").map_err(gql)?;
        if ws.deleted_ms.is_some() {
            return Err(gql(Error::Conflict(format!("workspace {} is deleted; restore it first", ws.name))));
        }
        let created = create_enrollment_token(state, &user.0.id, &ws, name.as_deref()).await.map_err(gql)?;
        state
            .store
            .audit(
                AuditEvent::new(&user.actor(), "server.enrollment_token").target_opt(name.as_deref()).workspace(&ws.id),
            )
            .await;
        Ok(created)
    }

    /// Revokes a server's credential and disconnects its bridge.
    async fn revoke_server(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let state = state(ctx);
        let user = user(ctx, Scope::Write)?;
        let server = authorize_server(&state.store, &user.0, &user.1, &id, Role::Admin, "removing a server")
            .await
            .map_err(gql)?;
        let revoked = state.store.revoke_server(&id).await.map_err(|e| gql(e.into()))?;
        state.bus.disconnect_bridge(&id, ErrorBody::new(ErrorCode::Unauthorized, "this server was revoked"));
        // Its alerts end with it.
        state.alerts.rules_changed();
        state
            .store
            .audit(
                AuditEvent::new(&user.actor(), "server.revoke")
                    .target(&id)
                    .ok(revoked)
                    .server(&id)
                    .workspace_opt(server.server.workspace_id.as_deref()),
            )
            .await;
        Ok(revoked)
    }
}

/// Mints an enrolment token made by `user_id` for a server joining `ws`, within its quota.
pub async fn create_enrollment_token(
    state: &AppState,
    user_id: &str,
    ws: &crate::db::Workspace,
    name: Option<&str>,
) -> Result<EnrollmentToken, Error> {
    if let Some(max) = ws.max_servers {
        if state.store.server_count(&ws.id).await? >= max {
            return Err(Error::Conflict(format!(
                "workspace {} has reached its quota of {max} servers; remove one or raise the quota",
                ws.name
            )));
        }
    }
    let token = random_secret("pet");
    let expires_at_ms = crate::clock::now_ms() + (state.config.enrollment_ttl_secs as i64) * 1000;
    state.store.insert_enrollment_token(&hash_secret(&token), user_id, &ws.id, name, expires_at_ms).await?;
    let url = &state.public_url;
    let command = format!("porta-bridge enroll --server {url} --token {token} && porta-bridge run");
    let install_snippet = format!(
        "# as root, with porta-bridge in /usr/local/bin:\n\
         porta-bridge --config /etc/porta/bridge.json enroll --server {url} --token {token}\n\
         cat > /etc/systemd/system/porta-bridge.service <<'UNIT'\n{SYSTEMD_UNIT}UNIT\n\
         systemctl daemon-reload && systemctl enable --now porta-bridge\n"
    );
    let architectures: Vec<String> = state.downloads.arches().into_iter().map(str::to_owned).collect();
    let install_command = (!architectures.is_empty()).then(|| crate::fleet::install_command(url, &token));
    Ok(EnrollmentToken {
        token,
        expires_at_ms: expires_at_ms.into(),
        command,
        install_snippet,
        install_command,
        server_url: url.clone(),
        architectures,
    })
}
