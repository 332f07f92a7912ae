//! The Porta agent API (`/api/v1`): the seed's HTTP API for external agents, on Porta's
//! servers, teams and audit log.
//!
//! Every call carries a personal API token in `X-PORTA-TOKEN` and, except `meta`, an
//! `agent_id` naming the agent (registered in the server's workspace on its first call). A
//! call acts with its token's scopes and its user's role on the server: reading needs `read`
//! and a viewer; writing needs `write` and a developer; commands need `terminal` and a
//! developer. Each operation is recorded in the agent's history and the audit log before the
//! answer goes back. Bodies are JSON of at most [`MAX_BODY`] bytes; anything else is a 400
//! that says what is wrong.

mod on_server;
mod openapi;
mod operations;
mod registry;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::scopes::Access;
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::{Error, Result};
use crate::state::AppState;
use operations::{list_dir, pipeline, read_file, run_bash, write_file};
use registry::{agent_history, agent_list, agent_status};

/// The largest request body: a 512 KiB file written as JSON text, with room for escapes.
pub const MAX_BODY: usize = 2 << 20;
/// Most steps in one pipeline.
pub const MAX_STEPS: usize = 50;
/// Most rows in one page of a list or history.
pub const MAX_PAGE: i64 = 200;

/// The routes, with the endpoint list `meta` reports and the OpenAPI document describes.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/v1/meta"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/run_bash"),
    ("POST", "/api/v1/write_file"),
    ("POST", "/api/v1/read_file"),
    ("POST", "/api/v1/list_dir"),
    ("POST", "/api/v1/agent/status"),
    ("POST", "/api/v1/agent/list"),
    ("POST", "/api/v1/agent/history"),
    ("POST", "/api/v1/agent/pipeline"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/meta", get(meta))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/run_bash", post(run_bash))
        .route("/api/v1/write_file", post(write_file))
        .route("/api/v1/read_file", post(read_file))
        .route("/api/v1/list_dir", post(list_dir))
        .route("/api/v1/agent/status", post(agent_status))
        .route("/api/v1/agent/list", post(agent_list))
        .route("/api/v1/agent/history", post(agent_history))
        .route("/api/v1/agent/pipeline", post(pipeline))
        .layer(axum::middleware::from_fn(read_body_first))
}

/// Reads the whole body (at most [`MAX_BODY`]) before anything answers: a call refused for
/// its token is then told so, instead of seeing its connection closed while it still sends.
async fn read_body_first(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => {
            // The rest of the body is left unread, so this connection is done: say so, or a
            // client would send its next request on it.
            let mut resp = too_large().into_response();
            resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            resp
        }
    }
}

fn too_large() -> Error {
    Error::BadRequest(format!("the request body is larger than {} KiB, the most this API takes", MAX_BODY >> 10))
}

// ------------------------------------------------------------------ extraction

/// Who calls: a user through an API token, from an address.
pub struct Caller {
    pub user: AuthUser,
    pub source: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let MaybeAuthUser(user) = MaybeAuthUser::from_request_parts(parts, state).await?;
        let user = match user {
            Some(user @ AuthUser(_, Access::Token { .. })) => user,
            Some(_) => {
                return Err(Error::Unauthorized(
                    "the agent API takes a personal API token in X-PORTA-TOKEN, not a sign-in session".into(),
                ));
            }
            None => {
                return Err(Error::Unauthorized(
                    "send a personal API token in the X-PORTA-TOKEN header (make one on the tokens page)".into(),
                ));
            }
        };
        let source = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Self { user, source })
    }
}

/// A JSON body of at most [`MAX_BODY`] bytes, refused with a message that says what is wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _: &AppState) -> Result<Self> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| too_large())?;
        if bytes.is_empty() {
            return Err(Error::BadRequest("the request has no body; send a JSON object".into()));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| Error::BadRequest(format!("the body is not the JSON this endpoint takes: {e}")))
    }
}

// ------------------------------------------------------------------ meta

#[derive(Serialize)]
struct Meta {
    name: &'static str,
    version: &'static str,
    uptime_s: u64,
    pid: u32,
    port: u16,
    endpoints: Vec<String>,
}

async fn meta(State(state): State<AppState>, _caller: Caller) -> Json<Meta> {
    Json(Meta {
        name: "Porta",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
        pid: std::process::id(),
        port: state.port,
        endpoints: ENDPOINTS.iter().map(|(method, path)| format!("{method} {path}")).collect(),
    })
}

async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(openapi::document(&state.public_url))
}

// ------------------------------------------------------------------ on a server
