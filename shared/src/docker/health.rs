//! What is wrong with a server's containers, as its bridge sees it from the engine's events:
//! carried in each telemetry sample, so alert rules about containers are judged where metric
//! rules are (on whichever replica evaluates them).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerHealth {
    /// Containers that stopped by themselves (a crash, a kill from outside, out of memory)
    /// and were not started again: not those a person stopped, nor those that ended well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub died: Vec<Died>,
    /// Containers that died at least twice within [`DockerHealth::RESTART_WINDOW_S`], with how
    /// often.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<Restarts>,
    /// Containers whose health check fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy: Vec<String>,
    /// Running containers whose image's registry names a newer image under its tag:
    /// `web (nginx:1.27)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<String>,
}

impl DockerHealth {
    /// The window a restart loop is counted in.
    pub const RESTART_WINDOW_S: u64 = 600;

    pub fn is_empty(&self) -> bool {
        self.died.is_empty() && self.restarts.is_empty() && self.unhealthy.is_empty() && self.updates.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Died {
    pub name: String,
    /// 137 for a kill, 139 for a segfault, …
    pub exit_code: i64,
    /// The kernel killed it for memory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom: bool,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restarts {
    pub name: String,
    /// Deaths within the window.
    pub count: u32,
}
