//! What an agent can do on a server, each through the server's bridge exactly as a person's
//! request would go (the same confinement, limits and atomic writes): list a folder, read and
//! write a file, search file contents, run a command, read the system's facts, ask a port on
//! the server over HTTP ([`http`]). The Porta agent
//! API, the MCP endpoint and the assistant's agents all act through these.

use std::time::Duration;

use base64::Engine as _;

use porta_shared::bridge::{self, FsListed, FsRead, FsSearchResults, FsWrite, FsWritten, SysInfo};
use porta_shared::docker::{DockerList, DockerListed};
use porta_shared::{ErrorBody, ErrorCode};
use serde::Serialize;

use super::Assistant;
use crate::relay::command::{self, Exec};

mod containers;
pub mod http;
use containers::LOG_LINES_MAX;

/// A command's time limit when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a command may be given.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Bytes kept of a command's stdout and of its stderr (the end of each).
pub const KEEP_OUTPUT: usize = 256 * 1024;

/// A file's content as an agent gets it: text when it is UTF-8, else base64.
#[derive(Debug, Clone, Serialize)]
pub struct FileContent {
    pub path: String,
    pub content: String,
    /// `utf-8` or `base64`.
    pub encoding: &'static str,
    /// The file's whole size.
    pub size: u64,
    /// Whether `content` reaches the end of the file.
    pub eof: bool,
    /// Hex SHA-256 of the file, when `content` is all of it: pass it back to `write_file` as
    /// `expected_sha256` so a write never overwrites a change made in between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// How a command went.
#[derive(Debug, Clone, Serialize)]
pub struct CommandRun {
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// The exit code; absent when a signal ended it.
    pub return_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub duration_ms: u64,
    pub timed_out: bool,
    /// The start of the output was dropped (only the last [`KEEP_OUTPUT`] bytes are kept).
    pub truncated: bool,
}

impl CommandRun {
    pub fn success(&self) -> bool {
        self.return_code == Some(0) && !self.timed_out
    }
}

pub async fn list_dir(ai: &Assistant, server: &str, path: &str, hidden: bool) -> Result<FsListed, ErrorBody> {
    command::ask(&ai.relay, server, bridge::FsList { path: path.to_owned(), hidden }.into()).await
}

/// Reads up to `limit` bytes (at most one bridge read) from `offset`.
pub async fn read_file(
    ai: &Assistant,
    server: &str,
    path: &str,
    offset: u64,
    limit: Option<u64>,
) -> Result<FileContent, ErrorBody> {
    let limit = limit.map(|l| l.min(FsRead::MAX_LIMIT));
    let read: bridge::FsReadData =
        command::ask(&ai.relay, server, FsRead { path: path.to_owned(), offset, limit }.into()).await?;
    let (content, encoding) = match String::from_utf8(read.data.0) {
        Ok(text) => (text, "utf-8"),
        Err(e) => (base64::engine::general_purpose::STANDARD.encode(e.as_bytes()), "base64"),
    };
    Ok(FileContent { path: path.to_owned(), content, encoding, size: read.size, eof: read.eof, sha256: read.sha256 })
}

/// What a write may replace: any content, only this content (the hex SHA-256 the writer
/// saw), or nothing (the file must not exist).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Over {
    #[default]
    Anything,
    Content(String),
    Nothing,
}

impl Over {
    /// Read from a call's arguments: `expected_sha256`, or `create_new: true`.
    pub fn from_args(args: &serde_json::Value) -> Self {
        match (args["expected_sha256"].as_str(), args["create_new"].as_bool()) {
            (Some(sha), _) => Self::Content(sha.to_owned()),
            (None, Some(true)) => Self::Nothing,
            _ => Self::Anything,
        }
    }

    /// Written into a call's arguments (the inverse of [`Over::from_args`]).
    pub fn into_args(self, args: &mut serde_json::Value) {
        match self {
            Self::Anything => {}
            Self::Content(sha) => args["expected_sha256"] = sha.into(),
            Self::Nothing => args["create_new"] = true.into(),
        }
    }

    /// What `path` holds now, as a condition for a later write.
    pub async fn now(ai: &Assistant, server: &str, path: &str) -> Self {
        let stat = bridge::FsStat { path: path.to_owned(), hash: true };
        match command::ask::<bridge::FileInfo>(&ai.relay, server, stat.into()).await {
            Ok(info) => info.sha256.map_or(Self::Anything, Self::Content),
            Err(e) if e.code == ErrorCode::NotFound => Self::Nothing,
            Err(_) => Self::Anything,
        }
    }
}

/// Writes a whole file atomically, refused (`conflict`, `already_exists`) unless what it
/// replaces is what `over` says.
pub async fn write_file(
    ai: &Assistant,
    server: &str,
    path: &str,
    data: Vec<u8>,
    over: Over,
) -> Result<FsWritten, ErrorBody> {
    if data.len() > FsWrite::MAX_DATA {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("the content is {} bytes; one write takes at most {} bytes", data.len(), FsWrite::MAX_DATA),
        ));
    }
    let (expected_sha256, create_new) = match over {
        Over::Anything => (None, false),
        Over::Content(sha) => (Some(sha), false),
        Over::Nothing => (None, true),
    };
    let req = FsWrite { path: path.to_owned(), data: data.into(), expected_sha256, create_new, mode: None };
    command::ask(&ai.relay, server, req.into()).await
}

/// Searches file contents beneath `path` for the literal `pattern`.
pub async fn search(ai: &Assistant, server: &str, path: &str, pattern: &str) -> Result<FsSearchResults, ErrorBody> {
    let req = bridge::FsSearch {
        path: path.to_owned(),
        pattern: pattern.to_owned(),
        regex: false,
        case_sensitive: false,
        hidden: false,
        limit: Some(100),
    };
    command::ask(&ai.relay, server, req.into()).await
}

pub async fn system_info(ai: &Assistant, server: &str) -> Result<SysInfo, ErrorBody> {
    command::ask(&ai.relay, server, bridge::SysInfoRequest {}.into()).await
}

/// One metric over a window, for a model: its average, extremes, newest value and a short
/// series of averages (oldest first).
#[derive(Debug, Serialize)]
pub struct MetricSummary {
    pub metric: &'static str,
    pub label: &'static str,
    pub avg: String,
    pub min: String,
    pub max: String,
    pub latest: Option<String>,
    pub series: Vec<f32>,
}

#[derive(Debug, Serialize)]
pub struct RecentMetrics {
    pub minutes: i64,
    /// Samples the window holds.
    pub samples: u64,
    pub metrics: Vec<MetricSummary>,
    /// The busiest processes in the newest sample: name, pid, CPU % of a core, memory.
    pub top_processes: Vec<String>,
}

/// Most minutes `recent_metrics` looks back (30 days).
pub const MAX_METRIC_MINUTES: i64 = 30 * 24 * 60;

/// What the server's telemetry says about the last `minutes`.
pub async fn recent_metrics(ai: &Assistant, server: &str, minutes: i64) -> Result<RecentMetrics, ErrorBody> {
    use crate::telemetry::points::Point;
    use porta_shared::telemetry::{Metric, format_value};
    if !(1..=MAX_METRIC_MINUTES).contains(&minutes) {
        let msg = format!("minutes must be between 1 and {MAX_METRIC_MINUTES}");
        return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
    }
    let now = crate::clock::now_ms();
    let series = ai
        .telemetry
        .range(server, now - minutes * 60_000, now, 24)
        .await
        .map_err(|e| crate::error::Error::from(e).to_body())?;
    let all = Point::merge(now, &series.points);
    let latest = ai.telemetry.latest(server);
    let shown = |m: Metric, v: f32| v.is_finite().then(|| format_value(m.unit(), f64::from(v)));
    let metrics = Metric::ALL
        .into_iter()
        .filter(|m| all.avg[m.index()].is_finite())
        .map(|m| {
            let i = m.index();
            MetricSummary {
                metric: m.name(),
                label: m.label(),
                avg: shown(m, all.avg[i]).unwrap_or_default(),
                min: shown(m, all.min[i]).unwrap_or_default(),
                max: shown(m, all.max[i]).unwrap_or_default(),
                latest: latest.as_ref().and_then(|s| shown(m, s.value(m))),
                series: series.points.iter().map(|p| (p.avg[i] * 100.0).round() / 100.0).collect(),
            }
        })
        .collect();
    let top_processes = latest
        .iter()
        .flat_map(|s| s.top.iter())
        .map(|p| format!("{} (pid {}): {:.1} % CPU, {} MB", p.name, p.pid, p.cpu, p.memory / 1_000_000))
        .collect();
    Ok(RecentMetrics { minutes, samples: u64::from(all.n), metrics, top_processes })
}

/// Runs a command line through `sh -c` in `cwd`, killed after `timeout`.
pub async fn run(
    ai: &Assistant,
    server: &str,
    command_line: &str,
    cwd: Option<String>,
    timeout: Duration,
) -> Result<CommandRun, ErrorBody> {
    if command_line.trim().is_empty() {
        return Err(ErrorBody::new(ErrorCode::BadRequest, "the command is empty"));
    }
    let exec = Exec {
        argv: vec![command_line.to_owned()],
        shell: true,
        cwd,
        limit: timeout.min(MAX_TIMEOUT),
        keep: KEEP_OUTPUT,
        ..Exec::default()
    };
    let done = command::run_exec(&ai.relay, server, exec).await?;
    Ok(CommandRun {
        command: command_line.to_owned(),
        stdout: String::from_utf8_lossy(&done.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
        return_code: done.exit.code,
        signal: done.exit.signal,
        duration_ms: u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX),
        timed_out: done.timed_out,
        truncated: done.truncated,
    })
}

// ------------------------------------------------------------------ the catalogue

/// A tool as a model (or an MCP client) sees it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments.
    pub parameters: fn() -> serde_json::Value,
    /// It changes the server (writes, runs): it waits for the user's approval unless the
    /// agent may use it without asking.
    pub changes: bool,
}

/// Every tool, in the order they are offered.
pub const CATALOGUE: &[Spec] = &[
    Spec {
        name: "list_dir",
        description: "List the entries of a folder on the server.",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["path"], "properties": {
                "path": { "type": "string", "description": "The folder; relative paths are beneath the home folder." },
                "hidden": { "type": "boolean", "description": "Include names starting with a dot." },
            } })
        },
        changes: false,
    },
    Spec {
        name: "read_file",
        description: "Read a text file on the server (up to 512 KiB from an offset).",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["path"], "properties": {
                "path": { "type": "string", "description": "The file." },
                "offset": { "type": "integer", "minimum": 0, "description": "Byte to start at." },
            } })
        },
        changes: false,
    },
    Spec {
        name: "search",
        description: "Search the text of the files beneath a folder for a literal string (ignores .gitignored files).",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["path", "pattern"], "properties": {
                "path": { "type": "string", "description": "The folder to search beneath." },
                "pattern": { "type": "string", "description": "The text to find (any case)." },
            } })
        },
        changes: false,
    },
    Spec {
        name: "system_info",
        description: "The server's operating system, CPUs, memory, disks, uptime and user.",
        parameters: || serde_json::json!({ "type": "object", "properties": {} }),
        changes: false,
    },
    Spec {
        name: "recent_metrics",
        description: "The server's monitoring data over the last minutes: CPU, load, memory, swap, disk, disk and network rates, processes (average, min, max, newest, a short series) and the busiest processes now.",
        parameters: || {
            serde_json::json!({ "type": "object", "properties": {
                "minutes": { "type": "integer", "minimum": 1, "maximum": MAX_METRIC_MINUTES, "description": "How far back to look (60 when absent)." },
            } })
        },
        changes: false,
    },
    Spec {
        name: "write_file",
        description: "Replace a file's whole content (creating it if needed). The user sees the change as a diff and approves it first.",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["path", "content"], "properties": {
                "path": { "type": "string", "description": "The file." },
                "content": { "type": "string", "description": "Its new, complete content." },
            } })
        },
        changes: true,
    },
    Spec {
        name: "run_command",
        description: "Run a shell command line on the server and get its output and exit code. The user sees the exact command and approves it first.",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["command"], "properties": {
                "command": { "type": "string", "description": "The command line (run with sh -c)." },
                "cwd": { "type": "string", "description": "The folder to run it in." },
                "timeout_s": { "type": "integer", "minimum": 1, "maximum": 1800, "description": "Time limit in seconds (60 when absent)." },
            } })
        },
        changes: true,
    },
    Spec {
        name: "docker_list",
        description: "The server's containers (Docker or Podman): name, image, state, health, status, published ports and compose project; or why the server has no container engine.",
        parameters: || serde_json::json!({ "type": "object", "properties": {} }),
        changes: false,
    },
    Spec {
        name: "docker_logs",
        description: "The latest lines a container (or every container of a compose project, interleaved by time) wrote, with their times; optionally only lines holding some text, or from the last minutes.",
        parameters: || {
            serde_json::json!({ "type": "object", "properties": {
                "container": { "type": "string", "description": "The container's name or id." },
                "project": { "type": "string", "description": "A compose project: all its containers." },
                "lines": { "type": "integer", "minimum": 1, "maximum": LOG_LINES_MAX, "description": "How many of the latest lines (100 when absent)." },
                "contains": { "type": "string", "description": "Only lines holding this text (ignoring case)." },
                "since_minutes": { "type": "integer", "minimum": 1, "description": "Only lines from the last this many minutes." },
            } })
        },
        changes: false,
    },
    Spec {
        name: "docker_action",
        description: "Start, stop, restart, pause, unpause or kill a container on the server, or remove it. The user approves it first; the workspace's command policy judges it as the docker command it amounts to.",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["container", "action"], "properties": {
                "container": { "type": "string", "description": "The container's name or id." },
                "action": { "type": "string", "enum": ["start", "stop", "restart", "pause", "unpause", "kill", "remove"] },
                "force": { "type": "boolean", "description": "Remove a running container (it is killed first)." },
            } })
        },
        changes: true,
    },
    Spec {
        name: "http_get",
        description: "Send an HTTP GET to a port on the server itself (an app being developed, a health endpoint, a local API) through its bridge, and get the status, headers and up to 64 KiB of the body. Only reads.",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["port"], "properties": {
                "port": { "type": "integer", "minimum": 1, "maximum": 65535, "description": "The port on the server (127.0.0.1)." },
                "path": { "type": "string", "description": "The path and query, from / (/ when absent)." },
                "headers": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Request headers." },
            } })
        },
        changes: false,
    },
    Spec {
        name: "http_request",
        description: "Send an HTTP request with any method (POST, PUT, PATCH, DELETE, …) and an optional body to a port on the server itself, through its bridge. The user approves it first; the workspace's command policy judges it as the curl command it amounts to.",
        parameters: || {
            serde_json::json!({ "type": "object", "required": ["port", "method"], "properties": {
                "port": { "type": "integer", "minimum": 1, "maximum": 65535, "description": "The port on the server (127.0.0.1)." },
                "method": { "type": "string", "enum": http::METHODS },
                "path": { "type": "string", "description": "The path and query, from / (/ when absent)." },
                "headers": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Request headers." },
                "body": { "type": "string", "description": "The request's body (at most 1 MiB)." },
            } })
        },
        changes: true,
    },
];

/// The scope and role a call of `spec` needs: a change, a developer's and the write scope; a
/// read, a viewer's and the read scope — but a request to the server's own ports reaches
/// whatever listens there (a database's admin page, a container engine's API), so even a GET
/// is a developer's, with the terminal scope, as a `curl` in a terminal would be.
pub fn needs(spec: &Spec) -> (crate::auth::scopes::Scope, crate::teams::Role) {
    use crate::auth::scopes::Scope;
    use crate::teams::Role;
    match (spec.changes, spec.name) {
        (_, "http_get") => (Scope::Terminal, Role::Developer),
        (true, _) => (Scope::Write, Role::Developer),
        (false, _) => (Scope::Read, Role::Viewer),
    }
}

/// The command line the workspace's command policy judges for a call of tool `name`, for the
/// tools that run something on the server: `run_command`'s own, `docker_action`'s as the
/// `docker` command it amounts to, `http_request`'s as its `curl`. None for the others.
pub fn policy_command(name: &str, args: &serde_json::Value) -> Option<String> {
    let text = |key: &str| args[key].as_str().unwrap_or_default().to_owned();
    match name {
        "run_command" => Some(text("command")),
        "docker_action" => {
            // As the bridge does it: a removal takes the anonymous volumes with it.
            let verb = match text("action").as_str() {
                "remove" if args["force"].as_bool() == Some(true) => "rm -f -v".to_owned(),
                "remove" => "rm -v".to_owned(),
                other => other.to_owned(),
            };
            Some(format!("docker {verb} {}", text("container")))
        }
        "http_request" => {
            Some(http::Call::from_args(name, args).map_or_else(|_| "curl".to_owned(), |c| c.command_line()))
        }
        _ => None,
    }
}

/// What a call of tool `name` acts on, for the record: the command it runs (a container
/// action as its `docker` command), or its file.
pub fn target(name: &str, args: &serde_json::Value) -> String {
    policy_command(name, args).unwrap_or_else(|| args["path"].as_str().unwrap_or_default().to_owned())
}

/// The tool called `name`.
pub fn spec(name: &str) -> Option<&'static Spec> {
    CATALOGUE.iter().find(|s| s.name == name)
}

/// Most characters of a tool's result handed back to a model.
pub const MAX_RESULT_CHARS: usize = 16_000;

fn arg<'a>(args: &'a serde_json::Value, name: &str) -> Result<&'a str, ErrorBody> {
    args[name]
        .as_str()
        .ok_or_else(|| ErrorBody::new(ErrorCode::BadRequest, format!("the argument {name:?} (a string) is missing")))
}

/// Runs tool `name` with `args` on `server`; its result as JSON. The caller has checked
/// the user may use the server for this (see [`Spec::changes`]).
pub async fn call(
    ai: &Assistant,
    server: &str,
    name: &str,
    args: &serde_json::Value,
) -> Result<serde_json::Value, ErrorBody> {
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("cannot show the result: {e}")))
    };
    match name {
        "list_dir" => {
            let listed = list_dir(ai, server, arg(args, "path")?, args["hidden"].as_bool().unwrap_or(false)).await?;
            to_json(serde_json::to_value(listed))
        }
        "read_file" => {
            let offset = args["offset"].as_u64().unwrap_or(0);
            to_json(serde_json::to_value(read_file(ai, server, arg(args, "path")?, offset, None).await?))
        }
        "search" => to_json(serde_json::to_value(search(ai, server, arg(args, "path")?, arg(args, "pattern")?).await?)),
        "system_info" => to_json(serde_json::to_value(system_info(ai, server).await?)),
        "recent_metrics" => {
            let minutes = match &args["minutes"] {
                serde_json::Value::Null => 60,
                v => v.as_i64().ok_or_else(|| {
                    ErrorBody::new(ErrorCode::BadRequest, "the argument \"minutes\" must be a whole number")
                })?,
            };
            to_json(serde_json::to_value(recent_metrics(ai, server, minutes).await?))
        }
        "write_file" => {
            let data = arg(args, "content")?.as_bytes().to_vec();
            let over = Over::from_args(args);
            to_json(serde_json::to_value(write_file(ai, server, arg(args, "path")?, data, over).await?))
        }
        "run_command" => {
            let limit = args["timeout_s"].as_u64().map_or(DEFAULT_TIMEOUT, Duration::from_secs);
            let cwd = args["cwd"].as_str().map(str::to_owned);
            to_json(serde_json::to_value(run(ai, server, arg(args, "command")?, cwd, limit).await?))
        }
        "docker_list" => {
            let listed: DockerListed = command::ask(&ai.relay, server, DockerList {}.into()).await?;
            to_json(serde_json::to_value(listed))
        }
        "docker_logs" => containers::logs(ai, server, args).await,
        "docker_action" => containers::act(ai, server, args).await,
        "http_get" | "http_request" => {
            to_json(serde_json::to_value(http::send(ai, server, http::Call::from_args(name, args)?).await?))
        }
        other => Err(ErrorBody::new(ErrorCode::BadRequest, format!("there is no tool {other:?}"))),
    }
}

/// A result as text for a model, cut to [`MAX_RESULT_CHARS`].
pub fn result_text(result: &Result<serde_json::Value, ErrorBody>) -> String {
    let text = match result {
        Ok(v) => v.to_string(),
        Err(e) => serde_json::json!({ "error": { "code": e.code, "message": e.message } }).to_string(),
    };
    match text.char_indices().nth(MAX_RESULT_CHARS) {
        Some((cut, _)) => format!("{}… (cut: the result was longer)", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_write_may_replace_travels_in_the_arguments() {
        for over in [Over::Anything, Over::Content("ab12".into()), Over::Nothing] {
            let mut args = serde_json::json!({ "path": "a.txt" });
            over.clone().into_args(&mut args);
            assert_eq!(Over::from_args(&args), over, "{args}");
        }
        let both = serde_json::json!({ "expected_sha256": "ff", "create_new": true });
        assert_eq!(Over::from_args(&both), Over::Content("ff".into()), "the stricter known content wins");
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        for spec in CATALOGUE {
            let schema = (spec.parameters)();
            assert_eq!(schema["type"], "object", "{}", spec.name);
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                assert!(schema["properties"][name].is_object(), "{}: {name}", spec.name);
            }
        }
        assert!(spec("write_file").is_some_and(|s| s.changes) && spec("read_file").is_some_and(|s| !s.changes));
        assert!(spec("rm_rf").is_none());
    }

    #[test]
    fn a_container_action_is_judged_as_the_docker_command_it_amounts_to() {
        let stop = serde_json::json!({ "container": "web", "action": "stop" });
        assert_eq!(policy_command("docker_action", &stop).as_deref(), Some("docker stop web"));
        let rm = serde_json::json!({ "container": "db", "action": "remove", "force": true });
        assert_eq!(policy_command("docker_action", &rm).as_deref(), Some("docker rm -f -v db"));
        assert_eq!(policy_command("run_command", &serde_json::json!({ "command": "ls" })).as_deref(), Some("ls"));
        assert_eq!(policy_command("docker_list", &serde_json::json!({})), None);
        assert_eq!(target("docker_action", &stop), "docker stop web");
        assert_eq!(target("write_file", &serde_json::json!({ "path": "a.txt", "command": "x" })), "a.txt");
    }

    #[test]
    fn long_results_are_cut_for_the_model() {
        let long = Ok(serde_json::json!({ "content": "x".repeat(MAX_RESULT_CHARS * 2) }));
        let text = result_text(&long);
        assert!(text.chars().count() < MAX_RESULT_CHARS + 50 && text.ends_with("(cut: the result was longer)"));
        let failed: Result<serde_json::Value, ErrorBody> = Err(ErrorBody::new(ErrorCode::Conflict, "changed"));
        assert!(result_text(&failed).contains("\"conflict\""));
    }
}
