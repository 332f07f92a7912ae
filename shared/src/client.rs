//! Browser ⇄ backend, on the stream socket `/api/ws` (one per tab).
//!
//! Requests name the server they are for; the backend checks that the user may use it and
//! relays them to its bridge. Terminal and exec output arrive as binary frames on stream ids
//! the backend chooses per socket (see [`StreamOpened`]); the client returns
//! [`crate::FrameKind::Ack`] frames as it renders, which is what paces the output.
//!
//! A stream survives its server's bridge dropping off: the client is told
//! `stream.interrupted`, and when the same bridge process comes back the backend re-attaches
//! after the last offset it forwarded and says `stream.resumed`. If the bridge process was
//! replaced (its terminals are gone) the stream ends with `stream.closed`.

use serde::{Deserialize, Serialize};

use crate::bridge::{self, TermInfo};
// The same messages on both links, one definition each (their `Request` impls, with the
// `Done` answer, come from `bridge`).
pub use crate::bridge::{ExecCancel, ExecExited, FsUnwatch, TermDetach, TermExited};
use crate::envelope::{ErrorBody, Request, messages};
use crate::telemetry::Sample;
use crate::types::{Env, ServerId, Signal, StreamId, TermId, TermSize};

/// A bridge request addressed to one server, relayed as-is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnServer<T> {
    pub server: ServerId,
    #[serde(flatten)]
    pub req: T,
}

impl<T: Request> Request for OnServer<T> {
    const TYPE: &'static str = T::TYPE;
    type Response = T::Response;
}

/// Start a terminal on a server and attach a new stream to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermOpen {
    pub server: ServerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
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
}

/// Attach a new stream to a running terminal, resuming after offset `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermAttach {
    pub server: ServerId,
    pub term: TermId,
    #[serde(default)]
    pub after: u64,
}

/// The reply to `term.open` and `term.attach`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOpened {
    pub stream: StreamId,
    pub info: TermInfo,
    /// Offset of the first output frame to come.
    pub from: u64,
    /// The terminal's session is being recorded (its workspace records terminals).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recorded: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermResize {
    pub stream: StreamId,
    pub size: TermSize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermSignal {
    pub stream: StreamId,
    pub signal: Signal,
}

/// End a terminal: the one behind a stream of this socket, or one named by server and id
/// (a terminal whose shell exited has no stream any more, yet stays listed until closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TermClose {
    Stream { stream: StreamId },
    Term { server: ServerId, term: TermId },
}

/// Run a command on a server without a PTY (see [`bridge::ExecStart`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecStart {
    pub server: ServerId,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecOpened {
    pub stream: StreamId,
    pub pid: u32,
}

/// Watch a folder on a server; changes arrive as `fs.changed` events on the stream. If the
/// server goes offline the stream is closed (`stream.closed`): watch again when it is back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsWatch {
    pub server: ServerId,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchOpened {
    pub stream: StreamId,
    /// The folder watched, as an absolute path.
    pub path: String,
}

/// Follow the answer being written in one of the caller's conversations: each piece of text
/// arrives as a `chat.delta` event, and `chat.changed` says when messages were added or
/// changed state (read the conversation again). Watching lasts until `chat.unwatch` or the
/// socket closes, across answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatWatch {
    pub conversation: String,
}

/// The answer being written when watching began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatWatching {
    /// The message being written; absent when no answer is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<i64>,
    /// Its text so far: `chat.delta` events continue from its end.
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatUnwatch {
    pub conversation: String,
}

/// More text of `message`, starting at byte `offset` of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatDelta {
    pub conversation: String,
    pub message: i64,
    pub offset: u64,
    pub text: String,
}

/// Messages of `conversation` were added or changed state; `finished` when the answer is
/// complete (done, stopped or failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChanged {
    pub conversation: String,
    #[serde(default)]
    pub finished: bool,
}

/// Follow a server's telemetry: each sample its bridge reports arrives as a
/// `metrics.sample` event, until `metrics.unwatch` or the socket closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsWatch {
    pub server: ServerId,
}

/// Follows the caller's role on a server: the reply says what it is now, and
/// `access.changed` comes whenever it changes, for as long as the socket is open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessWatch {
    pub server: ServerId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessWatching {
    /// `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
}

/// The caller's role on a watched server changed; without a role, they lost access to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessChanged {
    pub server: ServerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsWatching {
    /// The newest sample when watching began; absent when the server has not reported since
    /// the backend started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsUnwatch {
    pub server: ServerId,
}

/// A new sample from a watched server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSample {
    pub server: ServerId,
    pub sample: Sample,
}

messages! {
    /// Requests a browser sends on `/api/ws`.
    pub enum ClientRequest {
        "term.open" => TermOpen(TermOpen) -> StreamOpened,
        "term.attach" => TermAttach(TermAttach) -> StreamOpened,
        "term.detach" => TermDetach(TermDetach),
        "term.resize" => TermResize(TermResize) -> bridge::Done,
        "term.signal" => TermSignal(TermSignal) -> bridge::Done,
        "term.close" => TermClose(TermClose) -> bridge::Done,
        "term.list" => TermList(OnServer<bridge::TermList>),
        "term.rename" => TermRename(OnServer<bridge::TermRename>),
        "exec.start" => ExecStart(ExecStart) -> ExecOpened,
        "exec.cancel" => ExecCancel(ExecCancel),
        "fs.list" => FsList(OnServer<bridge::FsList>),
        "fs.stat" => FsStat(OnServer<bridge::FsStat>),
        "fs.read" => FsRead(OnServer<bridge::FsRead>),
        "fs.write" => FsWrite(OnServer<bridge::FsWrite>),
        "fs.upload.begin" => FsUploadBegin(OnServer<bridge::FsUploadBegin>),
        "fs.upload.chunk" => FsUploadChunk(OnServer<bridge::FsUploadChunk>),
        "fs.upload.commit" => FsUploadCommit(OnServer<bridge::FsUploadCommit>),
        "fs.upload.abort" => FsUploadAbort(OnServer<bridge::FsUploadAbort>),
        "fs.mkdir" => FsMkdir(OnServer<bridge::FsMkdir>),
        "fs.rename" => FsRename(OnServer<bridge::FsRename>),
        "fs.delete" => FsDelete(OnServer<bridge::FsDelete>),
        "fs.archive" => FsArchive(OnServer<bridge::FsArchive>),
        "fs.archive.read" => FsArchiveRead(OnServer<bridge::FsArchiveRead>),
        "fs.archive.close" => FsArchiveClose(OnServer<bridge::FsArchiveClose>),
        "fs.watch" => FsWatch(FsWatch) -> WatchOpened,
        "fs.unwatch" => FsUnwatch(FsUnwatch),
        "fs.find" => FsFind(OnServer<bridge::FsFind>),
        "fs.search" => FsSearch(OnServer<bridge::FsSearch>),
        "git.status" => GitStatus(OnServer<bridge::GitStatus>),
        "git.head" => GitHead(OnServer<bridge::GitHead>),
        "sys.info" => SysInfo(OnServer<bridge::SysInfoRequest>),
        "sys.processes" => SysProcesses(OnServer<bridge::SysProcesses>),
        "sys.kill" => SysKill(OnServer<bridge::SysKill>),
        "docker.list" => DockerList(OnServer<crate::docker::DockerList>),
        "docker.inspect" => DockerInspect(OnServer<crate::docker::DockerInspect>),
        "docker.action" => DockerAction(OnServer<crate::docker::DockerAction>),
        "docker.stats" => DockerStats(OnServer<crate::docker::DockerStats>),
        "docker.logs" => DockerLogs(OnServer<crate::docker::DockerLogs>),
        "docker.logs.read" => DockerLogsRead(OnServer<crate::docker::DockerLogsRead>),
        "docker.logs.close" => DockerLogsClose(OnServer<crate::docker::DockerLogsClose>),
        "docker.images" => DockerImages(OnServer<crate::docker::DockerImages>),
        "docker.image.remove" => ImageRemove(OnServer<crate::docker::ImageRemove>),
        "docker.image.check" => ImageCheck(OnServer<crate::docker::ImageCheck>),
        "docker.pull" => DockerPull(OnServer<crate::docker::DockerPull>),
        "docker.job.read" => DockerJobRead(OnServer<crate::docker::DockerJobRead>),
        "docker.volumes" => DockerVolumes(OnServer<crate::docker::DockerVolumes>),
        "docker.volume.remove" => VolumeRemove(OnServer<crate::docker::VolumeRemove>),
        "docker.networks" => DockerNetworks(OnServer<crate::docker::DockerNetworks>),
        "docker.network.remove" => NetworkRemove(OnServer<crate::docker::NetworkRemove>),
        "docker.prune" => DockerPrune(OnServer<crate::docker::DockerPrune>),
        "docker.stacks" => DockerStacks(OnServer<crate::docker::DockerStacks>),
        "docker.stack" => StackAction(OnServer<crate::docker::StackAction>),
        "docker.recreate" => Recreate(OnServer<crate::docker::Recreate>),
        "sys.ports" => SysPorts(OnServer<crate::ports::SysPorts>),
        "chat.watch" => ChatWatch(ChatWatch) -> ChatWatching,
        "chat.unwatch" => ChatUnwatch(ChatUnwatch) -> bridge::Done,
        "metrics.watch" => MetricsWatch(MetricsWatch) -> MetricsWatching,
        "metrics.unwatch" => MetricsUnwatch(MetricsUnwatch) -> bridge::Done,
        "access.watch" => AccessWatch(AccessWatch) -> AccessWatching,
    }
}

/// The stream's server went offline; it resumes by itself if the same bridge returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInterrupted {
    pub stream: StreamId,
    pub reason: ErrorBody,
}

/// An interrupted stream is flowing again from offset `from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamResumed {
    pub stream: StreamId,
    pub from: u64,
}

/// The stream is over and its id is free; `reason` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamClosed {
    pub stream: StreamId,
    pub reason: ErrorBody,
}

messages! {
    /// What the backend pushes to a browser without being asked.
    pub enum ClientEvent {
        "term.exited" => TermExited(TermExited),
        "exec.exited" => ExecExited(ExecExited),
        "fs.changed" => FsChanged(bridge::FsChanged),
        "stream.interrupted" => StreamInterrupted(StreamInterrupted),
        "stream.resumed" => StreamResumed(StreamResumed),
        "stream.closed" => StreamClosed(StreamClosed),
        "chat.delta" => ChatDelta(ChatDelta),
        "chat.changed" => ChatChanged(ChatChanged),
        "metrics.sample" => MetricsSample(MetricsSample),
        "access.changed" => AccessChanged(AccessChanged),
    }
}
