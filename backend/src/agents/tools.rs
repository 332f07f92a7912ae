//! What an agent can do on a server, each through the server's bridge exactly as a person's
//! request would go (the same confinement, limits and atomic writes): list a folder, read and
//! write a file, search file contents, run a command, read the system's facts. The Porta agent
//! API, the MCP endpoint and the assistant's agents all act through these.

use std::time::Duration;

use base64::Engine as _;

use porta_shared::bridge::{self, FsListed, FsRead, FsSearchResults, FsWrite, FsWritten, SysInfo};
use porta_shared::{ErrorBody, ErrorCode};
use serde::Serialize;

use crate::relay::command::{self, Exec};
use crate::state::AppState;

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

pub async fn list_dir(state: &AppState, server: &str, path: &str, hidden: bool) -> Result<FsListed, ErrorBody> {
    command::ask(state, server, bridge::FsList { path: path.to_owned(), hidden }.into()).await
}

/// Reads up to `limit` bytes (at most one bridge read) from `offset`.
pub async fn read_file(
    state: &AppState,
    server: &str,
    path: &str,
    offset: u64,
    limit: Option<u64>,
) -> Result<FileContent, ErrorBody> {
    let limit = limit.map(|l| l.min(FsRead::MAX_LIMIT));
    let read: bridge::FsReadData =
        command::ask(state, server, FsRead { path: path.to_owned(), offset, limit }.into()).await?;
    let (content, encoding) = match String::from_utf8(read.data.0) {
        Ok(text) => (text, "utf-8"),
        Err(e) => (base64::engine::general_purpose::STANDARD.encode(e.as_bytes()), "base64"),
    };
    Ok(FileContent { path: path.to_owned(), content, encoding, size: read.size, eof: read.eof, sha256: read.sha256 })
}

/// Writes a whole file atomically; with `expected_sha256`, only over that content.
pub async fn write_file(
    state: &AppState,
    server: &str,
    path: &str,
    data: Vec<u8>,
    expected_sha256: Option<String>,
) -> Result<FsWritten, ErrorBody> {
    if data.len() > FsWrite::MAX_DATA {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("the content is {} bytes; one write takes at most {} bytes", data.len(), FsWrite::MAX_DATA),
        ));
    }
    let req = FsWrite { path: path.to_owned(), data: data.into(), expected_sha256, create_new: false, mode: None };
    command::ask(state, server, req.into()).await
}

/// Searches file contents beneath `path` for the literal `pattern`.
pub async fn search(state: &AppState, server: &str, path: &str, pattern: &str) -> Result<FsSearchResults, ErrorBody> {
    let req = bridge::FsSearch {
        path: path.to_owned(),
        pattern: pattern.to_owned(),
        regex: false,
        case_sensitive: false,
        hidden: false,
        limit: Some(100),
    };
    command::ask(state, server, req.into()).await
}

pub async fn system_info(state: &AppState, server: &str) -> Result<SysInfo, ErrorBody> {
    command::ask(state, server, bridge::SysInfoRequest {}.into()).await
}

/// Runs a command line through `sh -c` in `cwd`, killed after `timeout`.
pub async fn run(
    state: &AppState,
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
    let done = command::run_exec(state, server, exec).await?;
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
