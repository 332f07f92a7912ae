//! Bridge daemon ⇄ backend, on the WebSocket the bridge dials to `/bridge/ws`.
//!
//! The conversation:
//! 1. the bridge sends [`Hello`] (its protocol range, version, capabilities, and a random
//!    `instance` id that changes whenever the daemon process restarts);
//! 2. the backend answers [`Welcome`] with the chosen version, or an `error` reply
//!    (`unsupported_version`, `unauthorized`) and closes;
//! 3. a bridge connected without a credential may only send [`Enroll`]; the reply carries its
//!    credential;
//! 4. then the backend sends [`BridgeRequest`]s, the bridge answers each with `ok`/`error`,
//!    and pushes [`BridgeEvent`]s and binary output frames on the streams the backend opened.
//!
//! Stream ids are chosen by the backend (in `term.attach`, `term.open`, `exec.start`) and are
//! unique per connection. Terminals belong to the bridge process, not to the connection: when
//! the connection drops, attachments end but terminals keep running and buffering output.

use serde::{Deserialize, Serialize};

use crate::envelope::messages;
use crate::types::{Base64, Env, ExitStatus, Signal, StreamId, TermId, TermSize};
use crate::version::ProtocolRange;

/// Capabilities this protocol build defines.
pub mod capabilities {
    pub const TERMINALS: &str = "term";
    pub const EXEC: &str = "exec";
    pub const FILES: &str = "fs";
    pub const SYSINFO: &str = "sys";
    /// Pushes a `sys.sample` every few seconds.
    pub const TELEMETRY: &str = "telemetry";
    /// Answers `docker.*` (whether or not the machine has an engine).
    pub const DOCKER: &str = "docker";
    /// Answers `sys.ports` and carries `tunnel.*` streams to its own ports.
    pub const TUNNEL: &str = "tunnel";
}

/// The first message of a bridge connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: ProtocolRange,
    /// The daemon's name and version, e.g. `porta-bridge/0.1.0`.
    pub agent: String,
    /// Random id of this daemon process; a new value means earlier terminals are gone.
    pub instance: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// The backend's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u16,
    pub agent: String,
    /// The server this bridge is, once it has a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// How often the backend pings, in milliseconds; silence for three intervals is death.
    pub heartbeat_ms: u64,
}

/// Exchange a one-time enrolment token for the bridge's own credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enroll {
    pub token: String,
    pub hostname: String,
}

/// The credential a bridge keeps (mode 0600) and presents as `Authorization: Bearer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolled {
    pub server_id: String,
    pub name: String,
    pub credential: String,
}

messages! {
    /// What a bridge sends before it is serving: the handshake and enrolment.
    pub enum BridgeHandshake {
        "hello" => Hello(Hello),
        "enroll" => Enroll(Enroll) -> Enrolled,
    }
}

messages! {
    /// What the backend sends before it is served.
    pub enum HubHandshake {
        "welcome" => Welcome(Welcome),
    }
}

// ---------------------------------------------------------------- terminals

/// Start a terminal: a shell on a new PTY.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TermOpen {
    /// Program to run; the user's login shell when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory; the user's home when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default)]
    pub size: TermSize,
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
    /// A console in a container instead ([`crate::docker::Console`]): then `shell` and
    /// `args` are not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::docker::Console>,
    /// Attach this stream at offset 0 right away, so no early output is missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamId>,
    /// How long the asker waits, in ms from when the bridge gets the request: a terminal
    /// that is ready only later is closed at once (nobody would hold it) and the reply says
    /// so. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

/// What a bridge knows about one of its terminals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermInfo {
    pub term: TermId,
    pub shell: String,
    pub cwd: String,
    pub size: TermSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Unix time in milliseconds.
    pub started_ms: u64,
    /// Offset just past the last output byte produced so far.
    pub end: u64,
    /// Oldest offset still held in the ring buffer.
    pub start: u64,
    /// Set once the shell has exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    /// Number of attached streams.
    pub attached: u32,
    /// The name people gave the terminal (shown on its tab), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Attach a stream to a terminal's output, resuming after offset `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermAttach {
    pub term: TermId,
    pub stream: StreamId,
    /// Offset the client has seen up to; 0 (the default) replays everything still buffered.
    #[serde(default)]
    pub after: u64,
}

/// The reply to `term.open` and `term.attach`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermAttached {
    pub info: TermInfo,
    /// Offset the first output frame will carry: `after`, or the ring's start when output
    /// before it was lost (then a gap frame comes first).
    pub from: u64,
}

/// Stop sending a stream's output; the terminal keeps running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermDetach {
    pub stream: StreamId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermResize {
    pub term: TermId,
    pub size: TermSize,
}

/// Send a signal to the terminal's foreground process group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermSignal {
    pub term: TermId,
    pub signal: Signal,
}

/// End a terminal: hang up its shell and forget it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermClose {
    pub term: TermId,
}

/// Name a terminal, so every device shows the same tab title; an empty title clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermRename {
    pub term: TermId,
    pub title: String,
}

impl TermRename {
    /// Longest title, in characters.
    pub const MAX_CHARS: usize = 80;
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TermList {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermListed {
    pub terminals: Vec<TermInfo>,
}

// ---------------------------------------------------------------- exec

/// Run a command without a PTY. Output arrives as stdout/stderr frames on `stream`, then an
/// `exec.exited` event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecStart {
    /// Program and arguments, passed as-is (no shell) unless `shell` is set.
    pub argv: Vec<String>,
    /// Run `argv[0]` as a command line through `sh -c`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
    /// Kill the process after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub stream: StreamId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecStarted {
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecCancel {
    pub stream: StreamId,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Done {}

// ---------------------------------------------------------------- files

/// A path on the bridge's machine. Relative paths are taken from the bridge's root (or `/`);
/// with a root configured, nothing outside it can be reached, by `..` or by symlinks.
pub type RemotePath = String;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// Unix time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<u64>,
    /// For a symlink: what it points at (`dir` for a linked folder), absent when the target
    /// is missing or out of reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<FileKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsList {
    pub path: RemotePath,
    /// Include names starting with a dot.
    #[serde(default)]
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsListed {
    pub path: RemotePath,
    pub entries: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsStat {
    pub path: RemotePath,
    /// Also compute the SHA-256 of a regular file's content.
    #[serde(default)]
    pub hash: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: RemotePath,
    pub kind: FileKind,
    pub size: u64,
    pub mode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<u64>,
    /// Hex SHA-256 of the content, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Read up to `limit` bytes from `offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsRead {
    pub path: RemotePath,
    #[serde(default)]
    pub offset: u64,
    /// At most [`FsRead::MAX_LIMIT`]; the default reads that much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

impl FsRead {
    /// The most one read returns; larger files are read in several requests.
    pub const MAX_LIMIT: u64 = 512 * 1024;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsReadData {
    pub data: Base64,
    /// The file's total size.
    pub size: u64,
    /// True when this read reached the end of the file.
    pub eof: bool,
    /// Hex SHA-256 of the whole file, when this read covered all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Replace a file's content atomically (temp file in the same directory, fsync, rename),
/// keeping its mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsWrite {
    pub path: RemotePath,
    pub data: Base64,
    /// Refuse with `conflict` unless the current content has this hex SHA-256 (the hash a
    /// read or stat returned), so a save never silently overwrites someone else's change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sha256: Option<String>,
    /// Refuse with `already_exists` when the file exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_new: bool,
    /// Mode for a new file (existing files keep theirs); `0o644` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl FsWrite {
    /// The most one write carries.
    pub const MAX_DATA: usize = 512 * 1024;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsWritten {
    pub size: u64,
    pub sha256: String,
}

/// Start writing a file in pieces, for content larger than one [`FsWrite`]: the bytes go
/// to a temp file beside the target and [`FsUploadCommit`] replaces the target atomically,
/// with the same checks as `fs.write` (made again at commit). Uploads left idle expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUploadBegin {
    pub path: RemotePath,
    /// Total size of the content to come.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_new: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl FsUploadBegin {
    /// The largest file one upload writes.
    pub const MAX_SIZE: u64 = 4 << 30;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUploadStarted {
    /// Names the upload in the requests that follow (unguessable).
    pub upload: String,
}

/// The next piece of an upload: `offset` must be the number of bytes sent so far (a piece
/// already received is acknowledged again, so a retry is harmless). At most
/// [`FsWrite::MAX_DATA`] bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUploadChunk {
    pub upload: String,
    pub offset: u64,
    pub data: Base64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUploadProgress {
    /// Bytes received so far.
    pub received: u64,
}

/// Finish an upload: every byte must have arrived; with `sha256`, the content must have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUploadCommit {
    pub upload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Drop an upload and its temp file; the target is untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUploadAbort {
    pub upload: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsMkdir {
    pub path: RemotePath,
    /// Create missing parents too, and succeed when it exists.
    #[serde(default)]
    pub parents: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsRename {
    pub from: RemotePath,
    pub to: RemotePath,
    /// Replace `to` when it exists.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsDelete {
    pub path: RemotePath,
    /// Delete a non-empty directory and everything in it.
    #[serde(default)]
    pub recursive: bool,
}

/// Pack a folder as a gzipped tar archive, for download: the archive is made on the server in
/// a private temp file (symlinks are stored as links, never followed), then read with
/// [`FsArchiveRead`] and dropped with [`FsArchiveClose`] (or when left idle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsArchive {
    pub path: RemotePath,
}

impl FsArchive {
    /// Larger archives are refused (download the folder in parts).
    pub const MAX_SIZE: u64 = 4 << 30;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsArchived {
    /// Names the archive in the requests that follow (unguessable).
    pub archive: String,
    /// Bytes of the `.tar.gz`.
    pub size: u64,
    /// Files, folders and links packed.
    pub entries: u64,
    /// Entries left out because they could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Reads up to `limit` bytes of an archive from `offset` (at most [`FsRead::MAX_LIMIT`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsArchiveRead {
    pub archive: String,
    #[serde(default)]
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsArchiveClose {
    pub archive: String,
}

/// Find files by name beneath `path`, the way an editor's quick-open does: `query`'s
/// characters in order, best matches first. Files ignored by `.gitignore` (and hidden ones,
/// unless `hidden`) are skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsFind {
    pub path: RemotePath,
    pub query: String,
    #[serde(default)]
    pub hidden: bool,
    /// At most [`FsFind::MAX_LIMIT`]; [`FsFind::DEFAULT_LIMIT`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl FsFind {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;
    /// Files looked at before the search stops (and says so with `truncated`).
    pub const MAX_SCANNED: u64 = 200_000;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundFile {
    /// Relative to the folder searched, with `/` separators.
    pub path: String,
    /// Higher is better.
    pub score: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsFound {
    pub matches: Vec<FoundFile>,
    /// Files looked at.
    pub scanned: u64,
    /// The tree had more files than are looked at; narrow `path`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Search the content of the files beneath `path` for `pattern` (literal text unless
/// `regex`), with ripgrep's engine: `.gitignore` is honoured, binary files and files over
/// [`FsSearch::MAX_FILE_SIZE`] are skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsSearch {
    pub path: RemotePath,
    pub pattern: String,
    #[serde(default)]
    pub regex: bool,
    #[serde(default)]
    pub case_sensitive: bool,
    #[serde(default)]
    pub hidden: bool,
    /// Most hits returned: at most [`FsSearch::MAX_LIMIT`], [`FsSearch::DEFAULT_LIMIT`] when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl FsSearch {
    pub const DEFAULT_LIMIT: u32 = 200;
    pub const MAX_LIMIT: u32 = 2_000;
    pub const MAX_FILE_SIZE: u64 = 10 << 20;
    /// Longer matching lines are cut to this many characters.
    pub const MAX_LINE_CHARS: usize = 300;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Relative to the folder searched, with `/` separators.
    pub path: String,
    /// 1-based.
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsSearchResults {
    pub hits: Vec<SearchHit>,
    /// Files searched.
    pub files: u64,
    /// More hits (or files) were left out; narrow the search.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Watch a folder for changes made on the server (not its subfolders: a file tree watches
/// the folders it shows). Changes arrive as [`FsChanged`] events on `stream` until
/// `fs.unwatch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsWatch {
    pub path: RemotePath,
    pub stream: StreamId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsWatching {
    /// The folder watched, as an absolute path.
    pub path: RemotePath,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsUnwatch {
    pub stream: StreamId,
}

/// Entries of a watched folder were created, removed, renamed or written. Changes close
/// together arrive as one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsChanged {
    pub stream: StreamId,
    /// Names of the entries that changed, sorted.
    pub names: Vec<String>,
    /// Too much changed to name (or the folder itself changed): list it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rescan: bool,
}

impl FsChanged {
    /// More changed names than this become a `rescan`.
    pub const MAX_NAMES: usize = 256;
}

// ---------------------------------------------------------------- git

/// The state of the git work tree around `path` (a folder): which files changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitStatus {
    pub path: RemotePath,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitStatusResult {
    /// The work tree's top folder; `None` when `path` is not in a git work tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RemotePath>,
    /// The checked-out branch; `None` when detached or not a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Changed files beneath `path`.
    pub files: Vec<GitFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitFile {
    /// Relative to the folder asked about, with `/` separators.
    pub path: String,
    /// Git's two-letter short status (`" M"`, `"A "`, `"??"`, `"R "`, …): staged, then
    /// work tree.
    pub status: String,
}

/// A file's content as committed at `HEAD` (to compare with what is on disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitHead {
    pub path: RemotePath,
}

impl GitHead {
    /// Larger committed versions are refused (read the file in pieces instead).
    pub const MAX_SIZE: usize = 512 * 1024;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitHeadContent {
    pub data: Base64,
}

// ---------------------------------------------------------------- system

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SysInfoRequest {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub mount: String,
    pub fs: String,
    pub total: u64,
    pub available: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SysInfo {
    pub os: String,
    pub os_version: String,
    pub kernel: String,
    pub arch: String,
    pub hostname: String,
    pub cpus: u32,
    pub cpu_model: String,
    pub memory_total: u64,
    pub memory_available: u64,
    pub swap_total: u64,
    pub disks: Vec<Disk>,
    pub uptime_s: u64,
    pub shell: String,
    pub home: String,
    pub user: String,
}

/// Every process on the machine, as of the newest telemetry sample.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SysProcesses {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    pub name: String,
    /// Its command line, cut to [`ProcessInfo::MAX_COMMAND`] characters.
    #[serde(default)]
    pub command: String,
    /// The owner's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Percent of one core.
    pub cpu: f32,
    /// Resident bytes.
    pub memory: u64,
    /// Unix seconds.
    pub started_s: u64,
}

impl ProcessInfo {
    pub const MAX_COMMAND: usize = 300;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessList {
    /// Busiest first.
    pub processes: Vec<ProcessInfo>,
    /// Unix milliseconds of the sample they come from.
    pub ts_ms: u64,
}

/// Send `signal` to process `pid` (not the bridge itself, nor pid 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SysKill {
    pub pid: u32,
    pub signal: Signal,
}

/// Become the bridge the backend carries for this machine's architecture: fetch it from
/// `/bridge/download`, check it against `sha256`, put it in place of this binary and upgrade
/// in place, keeping every terminal. Answered once the new binary is in place; the link then
/// drops and comes back as the new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeUpdate {
    /// Lowercase hex of the binary's SHA-256.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeUpdating {
    /// This bridge's version, and the one it is becoming (as `--version` of each says).
    pub from: String,
    pub to: String,
}

messages! {
    /// Requests the backend sends to a serving bridge; each is answered `ok` or `error`.
    pub enum BridgeRequest {
        "term.open" => TermOpen(TermOpen) -> TermAttached,
        "term.attach" => TermAttach(TermAttach) -> TermAttached,
        "term.detach" => TermDetach(TermDetach) -> Done,
        "term.resize" => TermResize(TermResize) -> Done,
        "term.signal" => TermSignal(TermSignal) -> Done,
        "term.close" => TermClose(TermClose) -> Done,
        "term.list" => TermList(TermList) -> TermListed,
        "term.rename" => TermRename(TermRename) -> Done,
        "exec.start" => ExecStart(ExecStart) -> ExecStarted,
        "exec.cancel" => ExecCancel(ExecCancel) -> Done,
        "fs.list" => FsList(FsList) -> FsListed,
        "fs.stat" => FsStat(FsStat) -> FileInfo,
        "fs.read" => FsRead(FsRead) -> FsReadData,
        "fs.write" => FsWrite(FsWrite) -> FsWritten,
        "fs.upload.begin" => FsUploadBegin(FsUploadBegin) -> FsUploadStarted,
        "fs.upload.chunk" => FsUploadChunk(FsUploadChunk) -> FsUploadProgress,
        "fs.upload.commit" => FsUploadCommit(FsUploadCommit) -> FsWritten,
        "fs.upload.abort" => FsUploadAbort(FsUploadAbort) -> Done,
        "fs.mkdir" => FsMkdir(FsMkdir) -> Done,
        "fs.rename" => FsRename(FsRename) -> Done,
        "fs.delete" => FsDelete(FsDelete) -> Done,
        "fs.archive" => FsArchive(FsArchive) -> FsArchived,
        "fs.archive.read" => FsArchiveRead(FsArchiveRead) -> FsReadData,
        "fs.archive.close" => FsArchiveClose(FsArchiveClose) -> Done,
        "fs.watch" => FsWatch(FsWatch) -> FsWatching,
        "fs.unwatch" => FsUnwatch(FsUnwatch) -> Done,
        "fs.find" => FsFind(FsFind) -> FsFound,
        "fs.search" => FsSearch(FsSearch) -> FsSearchResults,
        "git.status" => GitStatus(GitStatus) -> GitStatusResult,
        "git.head" => GitHead(GitHead) -> GitHeadContent,
        "sys.info" => SysInfo(SysInfoRequest) -> SysInfo,
        "sys.processes" => SysProcesses(SysProcesses) -> ProcessList,
        "sys.kill" => SysKill(SysKill) -> Done,
        "bridge.update" => BridgeUpdate(BridgeUpdate) -> BridgeUpdating,
        "docker.list" => DockerList(crate::docker::DockerList) -> crate::docker::DockerListed,
        "docker.inspect" => DockerInspect(crate::docker::DockerInspect) -> crate::docker::ContainerDetails,
        "docker.action" => DockerAction(crate::docker::DockerAction) -> Done,
        "docker.stats" => DockerStats(crate::docker::DockerStats) -> crate::docker::DockerStatsTaken,
        "docker.logs" => DockerLogs(crate::docker::DockerLogs) -> crate::docker::DockerLogsOpened,
        "docker.logs.read" => DockerLogsRead(crate::docker::DockerLogsRead) -> crate::docker::DockerLogBatch,
        "docker.logs.close" => DockerLogsClose(crate::docker::DockerLogsClose) -> Done,
        "docker.images" => DockerImages(crate::docker::DockerImages) -> crate::docker::ImagesListed,
        "docker.image.remove" => ImageRemove(crate::docker::ImageRemove) -> Done,
        "docker.image.check" => ImageCheck(crate::docker::ImageCheck) -> crate::docker::ImageChecked,
        "docker.pull" => DockerPull(crate::docker::DockerPull) -> crate::docker::DockerJob,
        "docker.job.read" => DockerJobRead(crate::docker::DockerJobRead) -> crate::docker::JobProgress,
        "docker.volumes" => DockerVolumes(crate::docker::DockerVolumes) -> crate::docker::VolumesListed,
        "docker.volume.remove" => VolumeRemove(crate::docker::VolumeRemove) -> Done,
        "docker.networks" => DockerNetworks(crate::docker::DockerNetworks) -> crate::docker::NetworksListed,
        "docker.network.remove" => NetworkRemove(crate::docker::NetworkRemove) -> Done,
        "docker.prune" => DockerPrune(crate::docker::DockerPrune) -> crate::docker::Pruned,
        "docker.stacks" => DockerStacks(crate::docker::DockerStacks) -> crate::docker::StacksListed,
        "docker.stack" => StackAction(crate::docker::StackAction) -> crate::docker::DockerJob,
        "docker.recreate" => Recreate(crate::docker::Recreate) -> crate::docker::DockerJob,
        "sys.ports" => SysPorts(crate::ports::SysPorts) -> crate::ports::PortsListed,
        "tunnel.open" => TunnelOpen(crate::ports::TunnelOpen) -> crate::ports::TunnelOpened,
        "tunnel.close" => TunnelClose(crate::ports::TunnelClose) -> Done,
    }
}

// ---------------------------------------------------------------- events

/// A terminal's shell exited; sent on each attached stream after its last output frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermExited {
    pub stream: StreamId,
    pub term: TermId,
    pub exit: ExitStatus,
}

/// An exec finished; sent after its last output frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecExited {
    pub stream: StreamId,
    pub exit: ExitStatus,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

messages! {
    /// What a serving bridge pushes without being asked.
    pub enum BridgeEvent {
        "term.exited" => TermExited(TermExited),
        "exec.exited" => ExecExited(ExecExited),
        "fs.changed" => FsChanged(FsChanged),
        "sys.sample" => SysSample(crate::telemetry::Sample),
        "tunnel.closed" => TunnelClosed(crate::ports::TunnelClosed),
    }
}
