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

mod openapi;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use porta_shared::ErrorBody;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::assistant::agents::{self, Done, KIND_API};
use crate::assistant::tools::{self, CommandRun};
use crate::auth::scopes::{Access, Scope};
use crate::auth::{AuthUser, MaybeAuthUser};
use crate::db::{Agent, AgentQuery, OperationQuery, StatusFilter};
use crate::error::{Error, Result};
use crate::now_ms;
use crate::state::AppState;
use crate::teams::{Role, authorize_server};

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

/// An agent's call on a server, authorised and with its agent registered.
struct OnServer {
    agent: Agent,
    server: String,
    workspace: String,
}

/// Checks the token's scope and the user's role on the server, and finds (or registers) the
/// agent in the server's workspace.
async fn on_server(
    state: &AppState,
    caller: &Caller,
    agent_id: &str,
    server: &str,
    scope: Scope,
    role: Role,
    what: &str,
) -> Result<OnServer> {
    agents::valid_agent_id(agent_id)?;
    caller.user.require(scope)?;
    let grant = authorize_server(&state.store, &caller.user.0, &caller.user.1, server, role, what).await?;
    let workspace = match grant.server.workspace_id.as_deref() {
        Some(ws) => state.store.workspace(ws).await?,
        None => None,
    }
    .ok_or_else(|| Error::NotFound(format!("server {server} is in no workspace, so no agent may act on it")))?;
    let may_register = grant.role >= Role::Developer;
    let agent =
        agents::api_agent(&state.store, &caller.user, caller.source.as_deref(), &workspace, agent_id, may_register)
            .await?;
    Ok(OnServer { agent, server: grant.server.id, workspace: workspace.id })
}

/// Puts commands through the workspace's command policy before any runs: a blocked one
/// refuses them all; those that need approval are shown to the person together (in the
/// assistant's panel, "Changes asked for by <agent>") and run only once approved. Refusals
/// are in the agent's history; every decision is in the audit log.
/// Each command comes with the folder it runs in (relative paths are judged from there).
async fn gate(
    state: &AppState,
    caller: &Caller,
    on: &OnServer,
    kind: &str,
    commands: &[(&str, Option<&str>)],
) -> Result<()> {
    use crate::policy::check::{Decision, Runner, decide};
    let auto: Vec<String> = serde_json::from_str(&on.agent.auto_approve).unwrap_or_default();
    let runner = Runner {
        user: &caller.user,
        agent: Some(&on.agent.name),
        runs_without_asking: auto.iter().any(|t| t == "run_command"),
        workspace: &on.workspace,
        server: Some(&on.server),
        source: caller.source.as_deref(),
    };
    let mut asked = Vec::new();
    let started = Instant::now();
    // Writes a refusal (`blocked`, `declined`) into the agent's history.
    let refused = |word: &'static str, details: String| async move {
        let op = Op { kind, target: commands.first().map(|c| c.0).unwrap_or_default(), details, started };
        let _ = on.record(state, caller, op, Ok(()), |()| Err(word.to_owned())).await;
    };
    for (i, &(command, cwd)) in commands.iter().enumerate() {
        match decide(&state.store, &runner, command, cwd).await? {
            Decision::Run(_) => {}
            Decision::Ask(v) => asked.push((i, v.reason)),
            Decision::Refuse(v) => {
                let step = if commands.len() > 1 { format!("step {i} ") } else { String::new() };
                refused("blocked", format!("{command} (blocked by the command policy)")).await;
                return Err(Error::Forbidden(format!(
                    "the workspace's command policy blocks {step}`{command}`: {}; nothing ran",
                    v.reason
                )));
            }
        }
    }
    if asked.is_empty() {
        return Ok(());
    }
    // What the person approves says where each command runs.
    let shown = commands
        .iter()
        .map(|(command, cwd)| match cwd {
            Some(dir) => format!("cd {} && {command}", shell_quote(dir)),
            None => (*command).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let note = asked
        .iter()
        .map(|(i, why)| if commands.len() > 1 { format!("step {i}: {why}") } else { why.clone() })
        .collect::<Vec<_>>()
        .join("; ");
    let call = crate::assistant::openai::ToolCall {
        id: format!("api-{}", uuid::Uuid::new_v4()),
        kind: "function".into(),
        function: crate::assistant::openai::FunctionCall {
            name: "run_command".into(),
            arguments: serde_json::json!({ "command": shown }).to_string(),
        },
    };
    let note = Some(format!("Needs approval: {note}"));
    let approved = crate::assistant::chat::ask_approval(
        &state.assistant,
        &caller.user,
        &on.agent,
        &on.server,
        call,
        note,
        crate::assistant::chat::APPROVAL_WAIT,
    )
    .await?;
    if approved.is_none() {
        refused("declined", format!("{} (declined)", commands.first().map(|c| c.0).unwrap_or_default())).await;
        return Err(Error::Forbidden(
            "the person declined this in Porta (or did not decide in time); nothing ran".into(),
        ));
    }
    Ok(())
}

/// `dir` quoted for a POSIX shell, as a person would paste it.
fn shell_quote(dir: &str) -> String {
    if !dir.is_empty() && dir.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~+".contains(c)) {
        dir.to_owned()
    } else {
        format!("'{}'", dir.replace('\'', "'\\''"))
    }
}

/// What was done, for the history.
struct Op<'a> {
    kind: &'a str,
    target: &'a str,
    details: String,
    started: Instant,
}

impl OnServer {
    /// Records the operation, then hands back its outcome. `judge` says whether what came
    /// back is a success (a command that exits 2 answered, but failed).
    async fn record<T>(
        &self,
        state: &AppState,
        caller: &Caller,
        op: Op<'_>,
        outcome: std::result::Result<T, ErrorBody>,
        judge: impl FnOnce(&T) -> std::result::Result<(), String>,
    ) -> Result<T> {
        let result = match &outcome {
            Ok(value) => judge(value),
            Err(e) => Err(format!("failed: {}", e.code)),
        };
        let done = Done {
            agent: &self.agent,
            source: caller.source.as_deref(),
            server: Some(&self.server),
            kind: op.kind,
            target: op.target,
            details: op.details,
            took: op.started.elapsed(),
            result,
        };
        agents::record(&state.store, &caller.user, done).await;
        outcome.map_err(Error::Wire)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBash {
    agent_id: String,
    server_id: String,
    command: String,
    #[serde(default)]
    cwd: Option<String>,
    /// Seconds; 60 when absent.
    #[serde(default)]
    timeout_s: Option<u64>,
}

#[derive(Serialize)]
struct Ran {
    agent_id: String,
    server_id: String,
    #[serde(flatten)]
    run: CommandRun,
}

fn timeout(seconds: Option<u64>) -> Result<Duration> {
    match seconds {
        None => Ok(tools::DEFAULT_TIMEOUT),
        Some(0) => Err(Error::BadRequest("timeout_s must be at least 1".into())),
        Some(s) if Duration::from_secs(s) > tools::MAX_TIMEOUT => {
            Err(Error::BadRequest(format!("timeout_s may be at most {} seconds", tools::MAX_TIMEOUT.as_secs())))
        }
        Some(s) => Ok(Duration::from_secs(s)),
    }
}

async fn run_bash(State(state): State<AppState>, caller: Caller, Body(b): Body<RunBash>) -> Result<Json<Ran>> {
    let limit = timeout(b.timeout_s)?;
    if b.command.trim().is_empty() {
        return Err(Error::BadRequest("the command is empty".into()));
    }
    let on =
        on_server(&state, &caller, &b.agent_id, &b.server_id, Scope::Terminal, Role::Developer, "running a command")
            .await?;
    gate(&state, &caller, &on, "run_bash", &[(b.command.as_str(), b.cwd.as_deref())]).await?;
    let started = Instant::now();
    let outcome = tools::run(&state.assistant, &on.server, &b.command, b.cwd, limit).await;
    let details = match &outcome {
        Ok(run) => format!("{} → {}", b.command, exit_words(run)),
        Err(_) => b.command.clone(),
    };
    let op = Op { kind: "run_bash", target: &b.command, details, started };
    let run = on.record(&state, &caller, op, outcome, judge_run).await?;
    Ok(Json(Ran { agent_id: on.agent.name, server_id: on.server, run }))
}

/// A command succeeded when it exited 0 in time.
fn judge_run(run: &CommandRun) -> std::result::Result<(), String> {
    if run.success() { Ok(()) } else { Err(format!("failed: {}", exit_words(run))) }
}

/// Answers that came back are successes.
fn answered<T>(_: &T) -> std::result::Result<(), String> {
    Ok(())
}

/// "exit 0", "exit 2", "signal 9", "timed out".
fn exit_words(run: &CommandRun) -> String {
    match (run.timed_out, run.return_code, run.signal) {
        (true, ..) => "timed out".into(),
        (false, Some(code), _) => format!("exit {code}"),
        (false, None, Some(sig)) => format!("signal {sig}"),
        (false, None, None) => "ended".into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteFile {
    agent_id: String,
    server_id: String,
    path: String,
    content: String,
    /// `utf-8` (the default) or `base64`.
    #[serde(default)]
    encoding: Option<String>,
    /// Write only over this content (the `sha256` `read_file` returned).
    #[serde(default)]
    expected_sha256: Option<String>,
}

#[derive(Serialize)]
struct Written {
    agent_id: String,
    server_id: String,
    path: String,
    size: u64,
    sha256: String,
}

fn decode(content: String, encoding: Option<&str>) -> Result<Vec<u8>> {
    use base64::Engine as _;
    match encoding.unwrap_or("utf-8") {
        "utf-8" | "utf8" => Ok(content.into_bytes()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| Error::BadRequest(format!("content is not valid base64: {e}"))),
        other => Err(Error::BadRequest(format!("encoding {other:?} is not known; use \"utf-8\" or \"base64\""))),
    }
}

async fn write_file(State(state): State<AppState>, caller: Caller, Body(b): Body<WriteFile>) -> Result<Json<Written>> {
    let data = decode(b.content, b.encoding.as_deref())?;
    let on =
        on_server(&state, &caller, &b.agent_id, &b.server_id, Scope::Write, Role::Developer, "writing files").await?;
    let started = Instant::now();
    let size = data.len();
    let over = b.expected_sha256.map_or(tools::Over::Anything, tools::Over::Content);
    let outcome = tools::write_file(&state.assistant, &on.server, &b.path, data, over).await;
    let details = format!("{} ({size} bytes)", b.path);
    let op = Op { kind: "write_file", target: &b.path, details, started };
    let written = on.record(&state, &caller, op, outcome, answered).await?;
    Ok(Json(Written {
        agent_id: on.agent.name,
        server_id: on.server,
        path: b.path,
        size: written.size,
        sha256: written.sha256,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFile {
    agent_id: String,
    server_id: String,
    path: String,
    #[serde(default)]
    offset: u64,
    /// At most 512 KiB; that much when absent.
    #[serde(default)]
    limit: Option<u64>,
}

#[derive(Serialize)]
struct Read {
    agent_id: String,
    server_id: String,
    #[serde(flatten)]
    file: tools::FileContent,
}

async fn read_file(State(state): State<AppState>, caller: Caller, Body(b): Body<ReadFile>) -> Result<Json<Read>> {
    let on = on_server(&state, &caller, &b.agent_id, &b.server_id, Scope::Read, Role::Viewer, "reading files").await?;
    let started = Instant::now();
    let outcome = tools::read_file(&state.assistant, &on.server, &b.path, b.offset, b.limit).await;
    let op = Op { kind: "read_file", target: &b.path, details: b.path.clone(), started };
    let file = on.record(&state, &caller, op, outcome, answered).await?;
    Ok(Json(Read { agent_id: on.agent.name, server_id: on.server, file }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDir {
    agent_id: String,
    server_id: String,
    path: String,
    /// Include names starting with a dot.
    #[serde(default)]
    hidden: bool,
}

#[derive(Serialize)]
struct Listed {
    agent_id: String,
    server_id: String,
    path: String,
    entries: Vec<porta_shared::bridge::FileEntry>,
}

async fn list_dir(State(state): State<AppState>, caller: Caller, Body(b): Body<ListDir>) -> Result<Json<Listed>> {
    let on =
        on_server(&state, &caller, &b.agent_id, &b.server_id, Scope::Read, Role::Viewer, "listing folders").await?;
    let started = Instant::now();
    let outcome = tools::list_dir(&state.assistant, &on.server, &b.path, b.hidden).await;
    let op = Op { kind: "list_dir", target: &b.path, details: b.path.clone(), started };
    let listed = on.record(&state, &caller, op, outcome, answered).await?;
    Ok(Json(Listed { agent_id: on.agent.name, server_id: on.server, path: listed.path, entries: listed.entries }))
}

// ------------------------------------------------------------------ pipeline

/// One step: a command line, or a command line with its own settings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Step {
    Line(String),
    Full {
        command: String,
        #[serde(default)]
        cwd: Option<String>,
        #[serde(default)]
        timeout_s: Option<u64>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pipeline {
    agent_id: String,
    server_id: String,
    steps: Vec<Step>,
    /// The folder every step runs in, unless the step names its own.
    #[serde(default)]
    cwd: Option<String>,
    /// Each step's time limit in seconds, unless the step names its own; 60 when absent.
    #[serde(default)]
    timeout_s: Option<u64>,
}

#[derive(Serialize)]
struct StepRun {
    index: usize,
    #[serde(flatten)]
    run: CommandRun,
}

#[derive(Serialize)]
struct PipelineRun {
    agent_id: String,
    server_id: String,
    /// Every step ran and succeeded.
    success: bool,
    /// The step that failed (its return code was not 0, or it timed out); later steps did
    /// not run.
    failed_step: Option<usize>,
    steps: Vec<StepRun>,
    /// Steps not run because an earlier one failed.
    skipped: usize,
    duration_ms: u64,
}

async fn pipeline(State(state): State<AppState>, caller: Caller, Body(b): Body<Pipeline>) -> Result<Json<PipelineRun>> {
    if b.steps.is_empty() || b.steps.len() > MAX_STEPS {
        return Err(Error::BadRequest(format!(
            "a pipeline has 1 to {MAX_STEPS} steps; this one has {}",
            b.steps.len()
        )));
    }
    let default_limit = timeout(b.timeout_s)?;
    let mut steps = Vec::with_capacity(b.steps.len());
    for (i, step) in b.steps.into_iter().enumerate() {
        let (command, cwd, limit) = match step {
            Step::Line(command) => (command, b.cwd.clone(), default_limit),
            Step::Full { command, cwd, timeout_s } => {
                let limit = match timeout_s {
                    Some(_) => timeout(timeout_s).map_err(|e| Error::BadRequest(format!("step {i}: {e}")))?,
                    None => default_limit,
                };
                (command, cwd.or_else(|| b.cwd.clone()), limit)
            }
        };
        if command.trim().is_empty() {
            return Err(Error::BadRequest(format!("step {i} has an empty command")));
        }
        steps.push((command, cwd, limit));
    }
    let on =
        on_server(&state, &caller, &b.agent_id, &b.server_id, Scope::Terminal, Role::Developer, "running commands")
            .await?;
    let lines: Vec<(&str, Option<&str>)> = steps.iter().map(|(c, cwd, _)| (c.as_str(), cwd.as_deref())).collect();
    gate(&state, &caller, &on, "pipeline", &lines).await?;
    let started = Instant::now();
    let total = steps.len();
    let mut runs = Vec::with_capacity(total);
    let mut failed_step = None;
    let mut failure: Option<ErrorBody> = None;
    for (index, (command, cwd, limit)) in steps.into_iter().enumerate() {
        match tools::run(&state.assistant, &on.server, &command, cwd, limit).await {
            Ok(run) => {
                let ok = run.success();
                runs.push(StepRun { index, run });
                if !ok {
                    failed_step = Some(index);
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let details = match (failed_step, &failure) {
        (_, Some(e)) => format!("{total} steps; step {} could not run: {}", runs.len(), e.message),
        (Some(i), None) => {
            format!("{total} steps; step {i} failed: {}", runs.last().map(|r| exit_words(&r.run)).unwrap_or_default())
        }
        (None, None) => format!("{total} steps, all succeeded"),
    };
    let target = runs.first().map_or("", |r| r.run.command.as_str()).to_owned();
    let outcome = match failure {
        Some(e) => Err(e),
        None => Ok(failed_step),
    };
    let judge = |failed: &Option<usize>| match failed {
        Some(i) => Err(format!("failed: step {i}")),
        None => Ok(()),
    };
    let op = Op { kind: "pipeline", target: &target, details, started };
    let failed_step = on.record(&state, &caller, op, outcome, judge).await?;
    let skipped = total - runs.len();
    Ok(Json(PipelineRun {
        agent_id: on.agent.name,
        server_id: on.server,
        success: failed_step.is_none(),
        failed_step,
        steps: runs,
        skipped,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}

// ------------------------------------------------------------------ the registry

/// The workspaces a call may see agents in: those of the user's teams, within the token's
/// limit, and within `only` when given.
async fn visible_workspaces(state: &AppState, caller: &Caller, only: Option<&str>) -> Result<Vec<String>> {
    caller.user.require(Scope::Read)?;
    let mut ids = state.store.workspace_ids_of(&caller.user.0.id).await?;
    ids.retain(|ws| caller.user.1.reaches_workspace(Some(ws)));
    if let Some(only) = only {
        if !ids.iter().any(|ws| ws == only) {
            return Err(Error::NotFound(format!("no workspace {only}, or you are not in its team")));
        }
        ids = vec![only.to_owned()];
    }
    Ok(ids)
}

/// An agent as the registry shows it.
#[derive(Serialize)]
struct AgentView {
    agent_id: String,
    id: String,
    workspace_id: String,
    kind: String,
    status: &'static str,
    created_ms: i64,
    last_seen_ms: Option<i64>,
    operations: i64,
}

impl AgentView {
    fn of(agent: Agent, now: i64) -> Self {
        Self {
            status: agents::status(&agent, now),
            agent_id: agent.name,
            id: agent.id,
            workspace_id: agent.workspace_id,
            kind: agent.kind,
            created_ms: agent.created_ms,
            last_seen_ms: agent.last_seen_ms,
            operations: agent.operations,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    agent_id: String,
    #[serde(default)]
    workspace_id: Option<String>,
}

#[derive(Serialize)]
struct StatusReply {
    agent_id: String,
    /// `active`, `idle`, `disabled`, or `unregistered` (it has not acted on a server yet).
    status: &'static str,
    timestamp_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<AgentView>,
}

async fn agent_status(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<StatusRequest>,
) -> Result<Json<StatusReply>> {
    let name = agents::valid_agent_id(&b.agent_id)?.to_owned();
    let workspaces = visible_workspaces(&state, &caller, b.workspace_id.as_deref()).await?;
    let now = now_ms();
    let found = state.store.agents_named(&name, &workspaces).await?.into_iter().next();
    let reply = match found {
        Some(agent) => {
            state.store.agent_seen(&agent.id).await?;
            let view = AgentView::of(agent, now);
            // It is calling now.
            let status = if view.status == "disabled" { "disabled" } else { "active" };
            StatusReply { agent_id: name, status, timestamp_ms: now, agent: Some(view) }
        }
        None => StatusReply { agent_id: name, status: "unregistered", timestamp_ms: now, agent: None },
    };
    Ok(Json(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRequest {
    agent_id: String,
    #[serde(default)]
    workspace_id: Option<String>,
    /// `active`, `idle` or `disabled`.
    #[serde(default)]
    status: Option<String>,
    /// `api` or `assistant`.
    #[serde(default)]
    kind: Option<String>,
    /// Part of the name, any case.
    #[serde(default)]
    name_contains: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

#[derive(Serialize)]
struct Page<T> {
    agent_id: String,
    total: i64,
    limit: i64,
    offset: i64,
    items: Vec<T>,
}

fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64)> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::BadRequest(format!("limit is 1 to {MAX_PAGE}")));
    }
    if offset < 0 {
        return Err(Error::BadRequest("offset may not be negative".into()));
    }
    Ok((limit, offset))
}

async fn agent_list(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ListRequest>,
) -> Result<Json<Page<AgentView>>> {
    let name = agents::valid_agent_id(&b.agent_id)?.to_owned();
    let (limit, offset) = page(b.limit, b.offset)?;
    let now = now_ms();
    let window_start = now - agents::ACTIVE_WINDOW_MS;
    let status = match b.status.as_deref() {
        None => None,
        Some("active") => Some(StatusFilter::ActiveSince(window_start)),
        Some("idle") => Some(StatusFilter::IdleSince(window_start)),
        Some("disabled") => Some(StatusFilter::Disabled),
        Some(other) => {
            return Err(Error::BadRequest(format!("status {other:?} is not known; use active, idle or disabled")));
        }
    };
    if let Some(kind) = b.kind.as_deref().filter(|k| ![KIND_API, agents::KIND_ASSISTANT].contains(k)) {
        return Err(Error::BadRequest(format!("kind {kind:?} is not known; use api or assistant")));
    }
    let workspaces = visible_workspaces(&state, &caller, b.workspace_id.as_deref()).await?;
    let q = AgentQuery { workspaces, kind: b.kind, name_contains: b.name_contains, status, limit, offset };
    let (agents, total) = state.store.list_agents(&q).await?;
    let items = agents.into_iter().map(|a| AgentView::of(a, now)).collect();
    Ok(Json(Page { agent_id: name, total, limit, offset, items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryRequest {
    agent_id: String,
    /// Whose history: this agent's own when absent.
    #[serde(default)]
    of_agent: Option<String>,
    #[serde(default)]
    workspace_id: Option<String>,
    /// `run_bash`, `write_file`, `read_file`, `list_dir` or `pipeline`.
    #[serde(default)]
    operation_type: Option<String>,
    #[serde(default)]
    success: Option<bool>,
    /// Unix milliseconds, inclusive.
    #[serde(default)]
    since_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    #[serde(default)]
    until_ms: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

#[derive(Serialize)]
struct OperationView {
    id: i64,
    agent_id: String,
    operation_type: String,
    details: String,
    server_id: Option<String>,
    timestamp_ms: i64,
    duration_ms: i64,
    success: bool,
}

async fn agent_history(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<HistoryRequest>,
) -> Result<Json<Page<OperationView>>> {
    let name = agents::valid_agent_id(&b.agent_id)?.to_owned();
    let of = agents::valid_agent_id(b.of_agent.as_deref().unwrap_or(&name))?.to_owned();
    let (limit, offset) = page(b.limit, b.offset)?;
    let workspaces = visible_workspaces(&state, &caller, b.workspace_id.as_deref()).await?;
    let agents = state.store.agents_named(&of, &workspaces).await?;
    let q = OperationQuery {
        agents: agents.iter().map(|a| a.id.clone()).collect(),
        kind: b.operation_type,
        success: b.success,
        since_ms: b.since_ms,
        until_ms: b.until_ms,
        limit,
        offset,
    };
    let (ops, total) = state.store.operations(&q).await?;
    let items = ops
        .into_iter()
        .map(|op| OperationView {
            id: op.id,
            agent_id: of.clone(),
            operation_type: op.kind,
            details: op.details,
            server_id: op.server_id,
            timestamp_ms: op.at_ms,
            duration_ms: op.duration_ms,
            success: op.success,
        })
        .collect();
    Ok(Json(Page { agent_id: name, total, limit, offset, items }))
}
