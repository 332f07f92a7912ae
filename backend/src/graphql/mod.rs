//! GraphQL at `/graphql`: everything that is not a byte stream. Servers, terminals, tokens and
//! the audit log here; teams, members, workspaces and invitations in [`teams`].

mod alerts;
mod assistant;
mod policy;
mod projects;
mod teams;
mod telemetry;

use async_graphql::{Context, ErrorExtensions, MergedObject, Object, SimpleObject};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::routing::{get, post};
use porta_shared::bridge::{TermList, TermListed};
use porta_shared::{ErrorBody, ErrorCode};

use crate::auth::scopes::{Scope, Scopes};
use crate::auth::tokens::{hash_secret, random_secret};
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::bus::Route;
use crate::db::{AuditEvent, ServerAccess};
use crate::error::Error;
use crate::state::AppState;
use crate::teams::{Role, authorize_server};

pub type Schema = async_graphql::Schema<Query, Mutation, telemetry::Subscription>;

#[derive(MergedObject, Default)]
pub struct Query(
    CoreQuery,
    teams::TeamQuery,
    projects::ProjectQuery,
    assistant::AssistantQuery,
    telemetry::TelemetryQuery,
    alerts::AlertQuery,
    policy::PolicyQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    CoreMutation,
    teams::TeamMutation,
    projects::ProjectMutation,
    assistant::AssistantMutation,
    alerts::AlertMutation,
    policy::PolicyMutation,
);

/// The schema, built once (it is plain data: every request shares it).
pub fn schema() -> &'static Schema {
    static SCHEMA: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(build_schema);
    &SCHEMA
}

fn build_schema() -> Schema {
    async_graphql::Schema::build(Query::default(), Mutation::default(), telemetry::Subscription)
        .limit_depth(12)
        .limit_complexity(500)
        .extension(LiveCredentials)
        .finish()
}

/// Marks a WebSocket's connection data: every operation on it checks the credential again.
struct LiveSocket;

/// On a GraphQL WebSocket, checks before every operation that the credential the socket was
/// opened with still holds (the token not revoked or expired, the sign-in not ended).
struct LiveCredentials;

impl async_graphql::extensions::ExtensionFactory for LiveCredentials {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(LiveCredentials)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for LiveCredentials {
    async fn prepare_request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        request: async_graphql::Request,
        next: async_graphql::extensions::NextPrepareRequest<'_>,
    ) -> async_graphql::ServerResult<async_graphql::Request> {
        if ctx.data_opt::<LiveSocket>().is_some() {
            if let (Some(st), Some(u)) = (ctx.data_opt::<AppState>(), ctx.data_opt::<AuthUser>()) {
                if !crate::auth::api_tokens::still_valid(&st.store, &u.0.id, &u.1).await {
                    let mut e = async_graphql::ServerError::new(
                        "this socket's credential was revoked or has expired; sign in again",
                        None,
                    );
                    e.extensions = Some({
                        let mut x = async_graphql::ErrorExtensionValues::default();
                        x.set("code", "unauthorized");
                        x
                    });
                    return Err(e);
                }
            }
        }
        next.run(ctx, request).await
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/graphql", post(graphql)).route("/graphql/ws", get(graphql_ws))
}

#[derive(serde::Deserialize)]
struct WsQuery {
    ticket: Option<String>,
}

/// Subscriptions over WebSocket (`graphql-transport-ws`, or the older `graphql-ws`). The
/// caller is known before the upgrade: an `Authorization`/`X-PORTA-TOKEN` header, or (from a
/// browser, which cannot set headers) `?ticket=` from `/api/ws/ticket`.
async fn graphql_ws(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    user: MaybeAuthUser,
    axum::extract::Query(q): axum::extract::Query<WsQuery>,
    protocol: GraphQLProtocol,
    ws: WebSocketUpgrade,
) -> crate::error::Result<axum::response::Response> {
    crate::http::origin::check(&state.origins, &headers)?;
    let user = match (user.0, q.ticket) {
        (Some(u), _) => u,
        (None, Some(ticket)) => state.tickets.caller(&state.store, &ticket).await?,
        (None, None) => {
            return Err(Error::Unauthorized("sign in: send an access or API token, or a ?ticket=".into()));
        }
    };
    Ok(ws
        .max_message_size(MAX_BODY)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_ws(socket, state, user, protocol)))
}

/// Serves one GraphQL WebSocket until either side closes it, or its credential dies: then it
/// is closed with 1008 (policy violation) and the reason.
async fn serve_ws(socket: axum::extract::ws::WebSocket, state: AppState, user: AuthUser, protocol: GraphQLProtocol) {
    use axum::extract::ws::{CloseFrame, Message};
    use futures_util::{SinkExt as _, StreamExt as _};
    let mut data = async_graphql::Data::default();
    data.insert(state.clone());
    data.insert(user.clone());
    data.insert(LiveSocket);
    let (mut sink, stream) = socket.split();
    let (tx, mut rx) = futures_channel::mpsc::channel::<Message>(16);
    let ended = {
        let serve = GraphQLWebSocket::new_with_pair(tx, stream, schema().clone(), protocol).with_data(data).serve();
        let forward = async {
            while let Some(m) = rx.next().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            _ = async { tokio::join!(serve, forward) } => None,
            why = credential_dies(&state, &user) => Some(why),
        }
    };
    if let Some(why) = ended {
        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1008, reason: why.into() }))).await;
    }
}

/// Resolves when `user`'s credential stops holding: revoked (checked whenever access may have
/// changed anywhere) or expired.
pub async fn credential_dies(state: &AppState, user: &AuthUser) -> &'static str {
    let mut changes = state.store.access_changes();
    let expiry = crate::auth::api_tokens::expires_ms(&user.1).map(|at| {
        let left = u64::try_from(at - crate::now_ms()).unwrap_or(0);
        tokio::time::Instant::now() + std::time::Duration::from_millis(left)
    });
    let expired = async {
        match expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    // Once the store stops announcing changes, only the expiry can end the credential.
    let mut watching = true;
    loop {
        tokio::select! {
            changed = changes.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                } else if !crate::auth::api_tokens::still_valid(&state.store, &user.0.id, &user.1).await {
                    return "the credential was revoked: the token or the sign-in has ended";
                }
            }
            () = &mut expired => return "the access token has expired",
        }
    }
}

/// The largest GraphQL request body (as on `/api/v1` and `/mcp`); a request is read whole, and
/// nothing larger is read at all, before anyone is known.
pub const MAX_BODY: usize = 2 << 20;

async fn graphql(
    State(state): State<AppState>,
    user: MaybeAuthUser,
    body: axum::body::Body,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        let mut resp =
            Error::BadRequest(format!("a GraphQL request is at most {} KiB", MAX_BODY >> 10)).into_response();
        resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        return resp;
    };
    let req: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return Error::BadRequest(format!("the body is not a GraphQL request (JSON): {e}")).into_response(),
    };
    let mut req = req.data(state.clone());
    match user.0 {
        Some(user) => req = req.data(user),
        // The schema is for people and programs who may use it.
        None => req = req.disable_introspection(),
    }
    GraphQLResponse::from(schema().execute(req).await).into_response()
}

fn gql(e: Error) -> async_graphql::Error {
    let body = e.to_body();
    async_graphql::Error::new(body.message).extend_with(|_, ext| ext.set("code", body.code.as_str()))
}

fn wire(e: ErrorBody) -> async_graphql::Error {
    gql(Error::Wire(e))
}

/// The caller, if signed in (or holding an API token) with `scope`. Every resolver starts here.
fn user<'a>(ctx: &'a Context<'_>, scope: Scope) -> async_graphql::Result<&'a AuthUser> {
    let u = ctx.data_opt::<AuthUser>().ok_or_else(|| gql(Error::Unauthorized("sign in first".into())))?;
    u.require(scope).map_err(gql)?;
    Ok(u)
}

fn state<'a>(ctx: &'a Context<'_>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

#[derive(SimpleObject)]
pub struct UserView {
    id: String,
    username: String,
    is_admin: bool,
}

/// One audit event.
#[derive(SimpleObject)]
pub struct AuditEntry {
    seq: i64,
    at_ms: i64,
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
            seq: r.seq,
            at_ms: r.at_ms,
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

/// A personal API token, as lists show it (never its secret).
#[derive(SimpleObject)]
pub struct ApiTokenView {
    id: String,
    name: String,
    /// The secret's first characters, to tell tokens apart.
    hint: String,
    scopes: Vec<String>,
    created_ms: i64,
    expires_ms: Option<i64>,
    last_used_ms: Option<i64>,
    revoked_ms: Option<i64>,
    /// The one workspace the token reaches, if it is limited to one.
    workspace_id: Option<String>,
}

impl From<crate::db::ApiToken> for ApiTokenView {
    fn from(t: crate::db::ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            hint: t.hint,
            scopes: t.scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            created_ms: t.created_ms,
            expires_ms: t.expires_ms,
            last_used_ms: t.last_used_ms,
            revoked_ms: t.revoked_ms,
            workspace_id: t.workspace_id,
        }
    }
}

/// A new API token: `token` is its secret, shown this once.
#[derive(SimpleObject)]
pub struct ApiTokenCreated {
    token: String,
    info: ApiTokenView,
}

/// Whether the audit log's chain holds.
#[derive(SimpleObject)]
pub struct AuditCheck {
    intact: bool,
    /// Events checked (all of them when intact).
    events: u64,
    /// The first event that does not hold.
    broken_at: Option<i64>,
    reason: Option<String>,
}

/// Limits the browser app applies, as this instance is configured.
#[derive(SimpleObject)]
pub struct Limits {
    /// Files larger than this open read-only in the editor.
    editor_max_bytes: u64,
}

/// A server, as the dashboard shows it.
#[derive(SimpleObject)]
pub struct ServerView {
    id: String,
    name: String,
    online: bool,
    /// Unix milliseconds of the last contact.
    last_seen_ms: Option<i64>,
    created_ms: i64,
    agent: Option<String>,
    os: Option<String>,
    kernel: Option<String>,
    arch: Option<String>,
    hostname: Option<String>,
    workspace_id: Option<String>,
    team_id: String,
    /// The caller's role on it: `owner`, `admin`, `developer` or `viewer`.
    role: String,
}

impl ServerView {
    fn new(a: ServerAccess, state: &AppState) -> Self {
        let s = a.server;
        let online = state.bus.connected(&s.id).is_some();
        Self {
            online,
            workspace_id: s.workspace_id,
            team_id: a.team_id,
            role: a.role.to_string(),
            id: s.id,
            name: s.name,
            last_seen_ms: s.last_seen_ms,
            created_ms: s.created_ms,
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
    started_ms: u64,
    /// Bytes of output produced so far.
    output_bytes: u64,
    exited: bool,
    exit_code: Option<i32>,
    attached: u32,
}

#[derive(SimpleObject)]
pub struct EnrollmentToken {
    /// Shown once; only its hash is stored.
    pub token: String,
    pub expires_at_ms: i64,
    /// The one line to run on the new server.
    pub command: String,
    /// A root shell snippet that enrols the server and installs the bridge as a systemd
    /// service.
    pub install_snippet: String,
}

/// The bridge's systemd unit, shown in install snippets.
const SYSTEMD_UNIT: &str = include_str!("../../../bridge-daemon/dist/porta-bridge.service");

#[derive(Default)]
pub struct CoreQuery;

#[Object]
impl CoreQuery {
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<UserView> {
        let u = &user(ctx, Scope::Read)?.0;
        Ok(UserView { id: u.id.clone(), username: u.username.clone(), is_admin: u.is_admin })
    }

    async fn limits(&self, ctx: &Context<'_>) -> async_graphql::Result<Limits> {
        user(ctx, Scope::Read)?;
        Ok(Limits { editor_max_bytes: state(ctx).config.editor_max_bytes })
    }

    /// Audit events, newest first. `action` is exact, or a prefix ending in `.` (`file.`).
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        actor: Option<String>,
        server_id: Option<String>,
        action: Option<String>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        before_seq: Option<i64>,
        #[graphql(default = 100)] limit: i64,
    ) -> async_graphql::Result<Vec<AuditEntry>> {
        user(ctx, Scope::Admin)?;
        let q = crate::db::AuditQuery {
            actor,
            server: server_id,
            action,
            since_ms,
            until_ms,
            before_seq,
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
                AuditCheck { intact: true, events, broken_at: None, reason: None }
            }
            crate::audit::Verdict::Broken { seq, reason } => AuditCheck {
                intact: false,
                events: (seq - 1).max(0) as u64,
                broken_at: Some(seq),
                reason: Some(reason),
            },
        })
    }

    /// The caller's personal API tokens, newest first.
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiTokenView>> {
        let u = user(ctx, Scope::Read)?;
        let list = state(ctx).store.api_tokens_of(&u.0.id).await.map_err(|e| gql(e.into()))?;
        Ok(list.into_iter().map(ApiTokenView::from).collect())
    }

    /// The servers the caller reaches, in every team they are in (or in the one workspace
    /// their API token is limited to).
    async fn servers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServerView>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        let list = state.store.servers_for(&u.0.id).await.map_err(|e| gql(e.into()))?;
        Ok(list
            .into_iter()
            .filter(|a| u.1.reaches_workspace(a.server.workspace_id.as_deref()))
            .map(|a| ServerView::new(a, state))
            .collect())
    }

    /// One server; `null` when there is none the caller reaches.
    async fn server(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<ServerView>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        match authorize_server(&state.store, &u.0, &u.1, &id, Role::Viewer, "seeing a server").await {
            Ok(a) => Ok(Some(ServerView::new(a, state))),
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
                started_ms: t.started_ms,
                output_bytes: t.end,
                exited: t.exit.is_some(),
                exit_code: t.exit.and_then(|e| e.code),
                attached: t.attached,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct CoreMutation;

#[Object]
impl CoreMutation {
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

    /// A personal API token with these scopes (`read`, `write`, `terminal`, `admin`),
    /// perhaps limited to one workspace; its secret is in the answer and nowhere else, ever.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<String>,
        expires_in_days: Option<i64>,
        workspace_id: Option<String>,
    ) -> async_graphql::Result<ApiTokenCreated> {
        let state = state(ctx);
        let user = user(ctx, Scope::Read)?;
        let scopes = Scopes::parse(scopes.iter().map(String::as_str)).map_err(|e| gql(Error::BadRequest(e)))?;
        if let Some(ws) = &workspace_id {
            crate::teams::workspace_role(&state.store, user, ws).await.map_err(gql)?;
        }
        let spec = crate::auth::api_tokens::Spec { name: &name, scopes, expires_in_days, workspace_id };
        let (token, secret) = crate::auth::api_tokens::create(&state.store, user, spec).await.map_err(gql)?;
        state
            .store
            .audit(
                AuditEvent::new(&user.actor(), "token.create")
                    .target(&format!("token:{}", token.id))
                    .detail(format!("{} ({scopes})", token.name)),
            )
            .await;
        Ok(ApiTokenCreated { token: secret, info: token.into() })
    }

    /// Revokes one of the caller's API tokens; it fails on its next use.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let state = state(ctx);
        let user = user(ctx, Scope::Write)?;
        let revoked = state.store.revoke_api_token(&user.0.id, &id).await.map_err(|e| gql(e.into()))?;
        if !revoked {
            return Err(gql(Error::NotFound(format!("you have no live API token {id}"))));
        }
        state.store.audit(AuditEvent::new(&user.actor(), "token.revoke").target(&format!("token:{id}"))).await;
        Ok(true)
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

/// An actor (`user:<id>`, `server:<id>`, `token:<id>`) as people know it.
async fn actor_name(store: &crate::db::Store, actor: &str) -> Option<String> {
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
    let expires_at_ms = crate::now_ms() + (state.config.enrollment_ttl_secs as i64) * 1000;
    state.store.insert_enrollment_token(&hash_secret(&token), user_id, &ws.id, name, expires_at_ms).await?;
    let url = &state.public_url;
    let command = format!("porta-bridge enroll --server {url} --token {token} && porta-bridge run");
    let install_snippet = format!(
        "# as root, with porta-bridge in /usr/local/bin:\n\
         porta-bridge --config /etc/porta/bridge.json enroll --server {url} --token {token}\n\
         cat > /etc/systemd/system/porta-bridge.service <<'UNIT'\n{SYSTEMD_UNIT}UNIT\n\
         systemctl daemon-reload && systemctl enable --now porta-bridge\n"
    );
    Ok(EnrollmentToken { token, expires_at_ms, command, install_snippet })
}
