//! What agents do on servers: run commands (one, or a pipeline), write, read and list files.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use porta_shared::ErrorBody;
use serde::{Deserialize, Serialize};

use super::on_server::{Op, gate, on_server};
use super::{Body, Caller, MAX_STEPS};
use crate::assistant::tools::{self, CommandRun};
use crate::auth::scopes::Scope;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::teams::Role;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunBash {
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
pub(super) struct Ran {
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

pub(super) async fn run_bash(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<RunBash>,
) -> Result<Json<Ran>> {
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
pub(super) fn judge_run(run: &CommandRun) -> std::result::Result<(), String> {
    if run.success() { Ok(()) } else { Err(format!("failed: {}", exit_words(run))) }
}

/// Answers that came back are successes.
pub(super) fn answered<T>(_: &T) -> std::result::Result<(), String> {
    Ok(())
}

/// "exit 0", "exit 2", "signal 9", "timed out".
pub(super) fn exit_words(run: &CommandRun) -> String {
    match (run.timed_out, run.return_code, run.signal) {
        (true, ..) => "timed out".into(),
        (false, Some(code), _) => format!("exit {code}"),
        (false, None, Some(sig)) => format!("signal {sig}"),
        (false, None, None) => "ended".into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WriteFile {
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
pub(super) struct Written {
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

pub(super) async fn write_file(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<WriteFile>,
) -> Result<Json<Written>> {
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
pub(super) struct ReadFile {
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
pub(super) struct Read {
    agent_id: String,
    server_id: String,
    #[serde(flatten)]
    file: tools::FileContent,
}

pub(super) async fn read_file(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ReadFile>,
) -> Result<Json<Read>> {
    let most = porta_shared::bridge::FsRead::MAX_LIMIT;
    if b.limit.is_some_and(|limit| limit > most) {
        return Err(Error::BadRequest(format!("limit is at most {most} bytes (512 KiB); read on from an offset")));
    }
    let on = on_server(&state, &caller, &b.agent_id, &b.server_id, Scope::Read, Role::Viewer, "reading files").await?;
    let started = Instant::now();
    let outcome = tools::read_file(&state.assistant, &on.server, &b.path, b.offset, b.limit).await;
    let op = Op { kind: "read_file", target: &b.path, details: b.path.clone(), started };
    let file = on.record(&state, &caller, op, outcome, answered).await?;
    Ok(Json(Read { agent_id: on.agent.name, server_id: on.server, file }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListDir {
    agent_id: String,
    server_id: String,
    path: String,
    /// Include names starting with a dot.
    #[serde(default)]
    hidden: bool,
}

#[derive(Serialize)]
pub(super) struct Listed {
    agent_id: String,
    server_id: String,
    path: String,
    entries: Vec<porta_shared::bridge::FileEntry>,
}

pub(super) async fn list_dir(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<ListDir>,
) -> Result<Json<Listed>> {
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
#[serde(untagged, deny_unknown_fields)]
pub(super) enum Step {
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
pub(super) struct Pipeline {
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
pub(super) struct StepRun {
    index: usize,
    #[serde(flatten)]
    run: CommandRun,
}

#[derive(Serialize)]
pub(super) struct PipelineRun {
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

pub(super) async fn pipeline(
    State(state): State<AppState>,
    caller: Caller,
    Body(b): Body<Pipeline>,
) -> Result<Json<PipelineRun>> {
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
