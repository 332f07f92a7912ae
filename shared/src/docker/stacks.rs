//! Compose stacks: the projects the engine's containers belong to (by their
//! `com.docker.compose.*` labels, so stacks started outside Porta too), and what a person does
//! to a whole stack, through the compose program on the server.

use serde::{Deserialize, Serialize};

/// The compose stacks on the server (`docker.stacks`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerStacks {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StacksListed {
    /// By name.
    #[serde(default)]
    pub stacks: Vec<Stack>,
    /// The compose program the bridge would run (`docker compose`, `docker-compose`); none,
    /// and then only start, stop and restart work, when the server has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    /// The compose project's name.
    pub name: String,
    /// Its compose files on the server, as it was started with them.
    #[serde(default)]
    pub files: Vec<String>,
    /// The folder it was started in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Its services, by name.
    #[serde(default)]
    pub services: Vec<String>,
    /// Its containers, by name.
    #[serde(default)]
    pub containers: Vec<String>,
    /// How many of them run.
    pub running: u32,
    /// Why its files are not known (its containers name different ones, or not as absolute
    /// paths): compose is not run for it until they agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
}

/// Do something to a whole stack (`docker.stack`): a job whose output is read with
/// [`crate::docker::DockerJobRead`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackAction {
    pub project: String,
    pub action: StackVerb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackVerb {
    /// Create what is missing or changed, and start it all (`up -d`).
    Up,
    /// Stop and remove its containers and networks (`down`; volumes are kept).
    Down,
    Restart,
    Stop,
    Start,
    /// Pull its services' images (`pull`); `up` then uses them.
    Pull,
}

impl StackVerb {
    pub fn word(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Start => "start",
            Self::Pull => "pull",
        }
    }
}
