//! Containers on a server: what a bridge reads from the Docker (or Podman) engine on its
//! machine and does there, through the engine's API on its local socket. The requests travel
//! in [`crate::bridge::BridgeRequest`] (and from a browser in [`crate::client::ClientRequest`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod health;
mod images;
mod stacks;
pub use health::*;
pub use images::*;
pub use stacks::*;

/// The containers of the server's engine, running and stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerList {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerListed {
    /// The engine that answered; none when [`DockerListed::unavailable`] says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// Why there is no engine to ask, and what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Unavailable>,
    /// By name.
    #[serde(default)]
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Engine {
    /// "Docker Engine", "Podman Engine", … as the engine names itself.
    pub name: String,
    pub version: String,
    /// The socket the bridge reached it on.
    pub socket: String,
}

/// No engine answered, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unavailable {
    /// For people: "no Docker engine answers on /var/run/docker.sock".
    pub reason: String,
    /// What would make it work: how to install Docker, or let the bridge's user use it.
    pub hint: String,
}

/// A container as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// The full id.
    pub id: String,
    /// Without Docker's leading slash.
    pub name: String,
    pub image: String,
    /// created, running, paused, restarting, removing, exited or dead.
    pub state: String,
    /// The engine's words for it: "Up 3 minutes (healthy)", "Exited (1) 2 hours ago".
    pub status: String,
    /// healthy, unhealthy or starting, for a container with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub created_ms: u64,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// The compose project it belongs to (its `com.docker.compose.project` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Its service in that project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A port of a container, and where the host publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub private: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<u16>,
    /// The host address it is published on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// tcp, udp or sctp.
    pub protocol: String,
}

/// Do `action` to container `id` (an id, a unique prefix of one, or a name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerAction {
    pub id: String,
    pub action: ContainerAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainerAction {
    Start,
    /// SIGTERM, then SIGKILL after the container's stop timeout.
    Stop,
    Restart,
    Pause,
    Unpause,
    /// SIGKILL at once.
    Kill,
    /// Remove it; a running one only with `force` (it is killed first). Its anonymous
    /// volumes go with it.
    Remove {
        #[serde(default)]
        force: bool,
    },
    Rename {
        name: String,
    },
}

impl ContainerAction {
    /// The word for it, as the audit log writes it: `container.<word>`.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Kill => "kill",
            Self::Remove { .. } => "remove",
            Self::Rename { .. } => "rename",
        }
    }
}

/// A container's whole settings and state. Environment values are left out unless
/// `reveal_env` (they often hold secrets; the backend lets only developers ask).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerInspect {
    pub id: String,
    #[serde(default)]
    pub reveal_env: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerDetails {
    pub container: Container,
    pub image_id: String,
    /// What it runs: the entrypoint and command, as one argv.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub restart_count: u64,
    /// no, always, on-failure or unless-stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Names always; values only when revealed.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Network name → the container's address there.
    #[serde(default)]
    pub networks: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl ContainerDetails {
    /// What a viewer sees: no command line, no label values, no environment values (where
    /// passwords are put, as in a process's command line).
    pub fn redacted(mut self) -> Self {
        self.command.clear();
        for v in self.labels.values_mut() {
            v.clear();
        }
        for v in &mut self.env {
            v.value = None;
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    /// None while hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// bind, volume, tmpfs, …
    pub kind: String,
    /// The host path or the volume's name.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

/// What the running containers use now (`docker.stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerStats {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerStatsTaken {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The running containers, by id.
    #[serde(default)]
    pub containers: Vec<ContainerStats>,
}

/// One running container's use of the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub id: String,
    /// Percent of one CPU (200 = two busy) since the bridge's previous sample of it; none
    /// for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Memory in use, without the page cache the kernel can take back (as `docker stats`).
    pub mem_bytes: u64,
    /// Its limit: the machine's memory when none was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<u64>,
    /// Bytes received and sent on all its networks since it started.
    #[serde(default)]
    pub net_rx: u64,
    #[serde(default)]
    pub net_tx: u64,
    /// Processes (threads) in it.
    #[serde(default)]
    pub pids: u64,
}

/// A terminal in a container instead of a shell on the server (in `term.open`): a shell (or
/// `command`) started in the running container, or the container's main process attached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Console {
    /// The container, by name or id.
    pub container: String,
    /// What to run; the best shell the container has (bash, ash, sh) when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Attach to the main process (its output, and keys to its input) instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attach: bool,
}

impl Console {
    /// Words of a command at most.
    pub const MAX_ARGS: usize = 64;
    /// The `shell` a `term.open` for a console names: a bridge that knows consoles ignores
    /// it; one from before them, which would ignore `container` and start a shell on the
    /// server instead, fails to start this and says why.
    pub const OLD_BRIDGE_SHELL: &str = "/porta: this bridge is too old for consoles in containers; update it";
}

/// Open a reading of logs (`docker.logs`): one container's, or several interleaved by time
/// (a compose project's: its containers now). Lines come in batches from [`DockerLogsRead`],
/// each asked for when the reader has taken the one before, so a reader that stops asking
/// stops the reading (nothing piles up anywhere); [`DockerLogsClose`] ends it, and one left
/// unread for [`DockerLogs::IDLE_S`] ends by itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerLogs {
    /// Containers by name or id.
    #[serde(default)]
    pub containers: Vec<String>,
    /// And every container of this compose project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Only lines written at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Only lines written at or before this time; the reading ends there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Only the last `tail` lines of each container before the newer ones; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
    /// Keep reading what they write next.
    #[serde(default)]
    pub follow: bool,
    /// Only lines holding this text (ignoring case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

impl DockerLogs {
    /// Containers read at once.
    pub const MAX_CONTAINERS: usize = 32;
    /// A reading nobody reads for this long is closed.
    pub const IDLE_S: u64 = 60;
    /// Longest text looked for.
    pub const MAX_CONTAINS: usize = 256;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerLogsOpened {
    /// Names the reading in the requests that follow (unguessable).
    pub session: String,
    /// The containers read, by name: [`LogLine::c`] indexes this.
    pub containers: Vec<String>,
}

/// The next lines of a reading: at most `max_bytes` as sent (a single line may pass it), waiting up to `wait_ms` for the
/// first when none is there yet (a follower asks again at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerLogsRead {
    pub session: String,
    #[serde(default)]
    pub wait_ms: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u32>,
}

impl DockerLogsRead {
    pub const MAX_WAIT_MS: u32 = 10_000;
    /// Below a message's limit (1 MiB) with room for the envelope and one long line.
    pub const MAX_BYTES: u32 = 768 << 10;
    pub const DEFAULT_BYTES: u32 = 256 << 10;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerLogBatch {
    /// Oldest first; several containers' interleaved by time.
    #[serde(default)]
    pub lines: Vec<LogLine>,
    /// Nothing more will come: every container's log ended (not following, past `until`, or
    /// the container is gone).
    #[serde(default)]
    pub ended: bool,
    /// What went wrong with a container's log on the way (it was removed, the engine
    /// failed), each said once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Which container wrote it: an index into [`DockerLogsOpened::containers`].
    pub c: u16,
    /// When the engine received it, ms since the epoch.
    pub ts_ms: u64,
    /// Written to stderr.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub err: bool,
    /// Without its line end; invalid UTF-8 replaced, longer lines cut at
    /// [`LogLine::MAX_BYTES`] bytes (and said so with a trailing "…").
    pub text: String,
}

impl LogLine {
    pub const MAX_BYTES: usize = 16 << 10;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerLogsClose {
    pub session: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_tags() {
        let remove = serde_json::to_value(ContainerAction::Remove { force: true }).unwrap();
        assert_eq!(remove, serde_json::json!({ "kind": "remove", "force": true }));
        let start: ContainerAction = serde_json::from_str(r#"{"kind":"start"}"#).unwrap();
        assert_eq!(start, ContainerAction::Start);
        let plain: ContainerAction = serde_json::from_str(r#"{"kind":"remove"}"#).unwrap();
        assert_eq!(plain, ContainerAction::Remove { force: false });
        assert!(serde_json::from_str::<ContainerAction>(r#"{"kind":"explode"}"#).is_err());
    }
}
