//! GraphQL at `/graphql`: everything that is not a byte stream. The schema, its HTTP and
//! WebSocket transports and the helpers every resolver uses here; the fields by domain in
//! [`servers`], [`tokens`], [`audit`], [`teams`] and their siblings.

mod agents;
mod alerts;
mod assistant;
mod audit;
mod fleet;
mod introspection;
mod policy;
mod previews;
mod projects;
mod scalars;
mod servers;
mod teams;
mod telemetry;
mod tokens;
mod transport_ws;

use async_graphql::http::WebSocketProtocols;
use async_graphql::{Context, ErrorExtensions, MergedObject, Object, SimpleObject};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::routing::{get, post};
use introspection::Introspection;
use porta_shared::ErrorBody;
use scalars::Int64;

use crate::auth::scopes::Scope;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::Error;
use crate::state::AppState;

pub use servers::create_enrollment_token;

pub type Schema = async_graphql::Schema<Query, Mutation, telemetry::Subscription>;

#[derive(MergedObject, Default)]
pub struct Query(
    CoreQuery,
    audit::AuditQuery,
    tokens::TokenQuery,
    servers::ServerQuery,
    teams::TeamQuery,
    projects::ProjectQuery,
    previews::PreviewQuery,
    assistant::AssistantQuery,
    agents::AgentQuery,
    telemetry::TelemetryQuery,
    alerts::AlertQuery,
    policy::PolicyQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    servers::ServerMutation,
    fleet::FleetMutation,
    tokens::TokenMutation,
    teams::TeamMutation,
    projects::ProjectMutation,
    previews::PreviewMutation,
    assistant::AssistantMutation,
    agents::AgentMutation,
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
        // Introspection runs on a schema of its own, and only asked alone (see `introspection`).
        .disable_introspection()
        .extension(LiveCredentials)
        .finish()
}

/// Where a signed-in caller's operation runs (see [`introspection`]).
enum Runs {
    Operations(async_graphql::Request),
    Introspection(async_graphql::Request),
    Refused(async_graphql::Response),
}

fn runs(req: async_graphql::Request) -> Runs {
    match introspection::classify(&req) {
        Introspection::None => Runs::Operations(req),
        Introspection::Alone => Runs::Introspection(req.only_introspection()),
        Introspection::Refused(why) => {
            Runs::Refused(async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(why, None)]))
        }
    }
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
    crate::http::AppQuery(q): crate::http::AppQuery<WsQuery>,
    protocol: GraphQLProtocol,
    ws: WebSocketUpgrade,
) -> crate::error::Result<axum::response::Response> {
    crate::http::origin::check(&state.origins, &headers)?;
    // The protocol the extractor chose: the first of the client's that is known.
    let chosen = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.split(',').find_map(|p| p.trim().parse::<WebSocketProtocols>().ok()))
        .unwrap_or(WebSocketProtocols::GraphQLWS);
    let user = match (user.0, q.ticket) {
        (Some(u), _) => u,
        (None, Some(ticket)) => crate::auth::tickets::caller(&state.store, &ticket).await?,
        (None, None) => {
            return Err(Error::Unauthorized("sign in: send an access or API token, or a ?ticket=".into()));
        }
    };
    Ok(ws.max_message_size(MAX_BODY).protocols([chosen.sec_websocket_protocol()]).on_upgrade(
        move |socket| async move {
            match chosen {
                WebSocketProtocols::GraphQLWS => transport_ws::serve(socket, state, user).await,
                WebSocketProtocols::SubscriptionsTransportWS => serve_legacy_ws(socket, state, user, protocol).await,
            }
        },
    ))
}

/// Serves one socket of the older `graphql-ws` protocol (subscriptions-transport-ws) until
/// either side closes it, or its credential dies: then it is closed with 1008 (policy
/// violation) and the reason.
async fn serve_legacy_ws(
    socket: axum::extract::ws::WebSocket,
    state: AppState,
    user: AuthUser,
    protocol: GraphQLProtocol,
) {
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
        let left = u64::try_from(at - crate::clock::now_ms()).unwrap_or(0);
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
    headers: axum::http::HeaderMap,
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
    let req = req.data(state.clone());
    // The schema is for people and programs who may use it.
    let Some(user) = user.0 else {
        return respond(&headers, schema().execute(req).await);
    };
    let response = match runs(req.data(user)) {
        Runs::Operations(req) => schema().execute(req).await,
        Runs::Introspection(req) => introspection::schema().execute(req).await,
        Runs::Refused(response) => response,
    };
    respond(&headers, response)
}

/// The HTTP response for a GraphQL response, as GraphQL over HTTP has it: a client that
/// accepts `application/graphql-response+json` learns from the status that its request could
/// not run at all (it did not parse or validate: 400, and no `data`); one that accepts only
/// `application/json` gets 200 and reads the errors.
fn respond(headers: &axum::http::HeaderMap, response: async_graphql::Response) -> axum::response::Response {
    use axum::http::{StatusCode, header::CONTENT_TYPE};
    use axum::response::IntoResponse as _;
    let media = "application/graphql-response+json";
    let modern = crate::http::takes(headers, axum::http::header::ACCEPT, media);
    let not_run = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if modern && not_run {
        let body = serde_json::json!({ "errors": response.errors });
        return (StatusCode::BAD_REQUEST, [(CONTENT_TYPE, media)], body.to_string()).into_response();
    }
    let mut resp = GraphQLResponse::from(response).into_response();
    if !modern {
        resp.headers_mut().insert(CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    }
    resp
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

/// Limits the browser app applies, as this instance is configured.
#[derive(SimpleObject)]
pub struct Limits {
    /// Files larger than this open read-only in the editor.
    editor_max_bytes: Int64,
}

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
        Ok(Limits { editor_max_bytes: state(ctx).config.editor_max_bytes.into() })
    }
}
