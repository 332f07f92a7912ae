//! The bridge's command line, and the credential file `enroll` writes and `run` reads.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "porta-bridge",
    version = crate::version(),
    about = "Porta's bridge daemon: dials out to a Porta backend and serves this machine's terminals, files and commands."
)]
pub struct Cli {
    /// Credential file written by `enroll` (mode 0600).
    #[arg(long, global = true, env = "PORTA_BRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exchange a one-time enrolment token for this machine's own credential.
    Enroll(EnrollArgs),
    /// Connect to the backend and serve until stopped (SIGTERM or Ctrl+C).
    Run(RunArgs),
    /// Show the enrolment and whether the daemon is connected.
    Status,
    /// A console in a container on this terminal (what the bridge runs for a container's
    /// console tab).
    #[command(hide = true)]
    ContainerConsole(ConsoleArgs),
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The container engine's socket; the usual places when absent.
    #[arg(long)]
    pub docker_socket: Option<PathBuf>,
    /// Attach to the container's main process instead of starting a shell.
    #[arg(long)]
    pub attach: bool,
    /// The container, by name or id.
    pub container: String,
    /// What to run in it; the best shell it has when absent.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The backend's URL, e.g. https://porta.example.com.
    #[arg(long, env = "PORTA_SERVER")]
    pub server: String,
    /// The one-time token shown by "Add server".
    #[arg(long, env = "PORTA_ENROLL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Replace an existing enrolment in the credential file.
    #[arg(long)]
    pub force: bool,
    /// Also trust the certificate authorities in this PEM file (a backend behind a private
    /// CA); kept in the credential file.
    #[arg(long, env = "PORTA_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Connect to this URL instead of the one saved at enrolment (e.g. through a proxy).
    #[arg(long, env = "PORTA_SERVER")]
    pub server: Option<String>,
    /// Trust the certificate authorities in this PEM file instead of the ones saved at
    /// enrolment (besides the built-in roots).
    #[arg(long, env = "PORTA_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Serve files only beneath this directory; `..` and symlinks cannot leave it.
    #[arg(long, env = "PORTA_BRIDGE_ROOT")]
    pub root: Option<PathBuf>,
    /// Bytes of output each terminal keeps for replay after a disconnect.
    #[arg(long, env = "PORTA_BRIDGE_RING_BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(4096..=(256 << 20)))]
    pub ring_bytes: u64,
    /// Unacknowledged output bytes a stream may have in flight.
    #[arg(long, env = "PORTA_BRIDGE_WINDOW", default_value_t = 256 * 1024, value_parser = clap::value_parser!(u64).range(4096..=(64 << 20)))]
    pub window: u64,
    /// Most terminals at once.
    #[arg(long, env = "PORTA_BRIDGE_MAX_TERMINALS", default_value_t = 256)]
    pub max_terminals: usize,
    /// Started by a previous bridge process handing its terminals over on stdin (an upgrade).
    #[arg(long, hide = true)]
    pub take_over: bool,
    /// Seconds between telemetry samples (CPU, memory, disks, network, processes).
    #[arg(long, env = "PORTA_BRIDGE_SAMPLE_INTERVAL", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sample_interval: u64,
    /// The container engine's socket; without it, Docker's (/var/run/docker.sock), then
    /// Podman's.
    #[arg(long, env = "PORTA_DOCKER_SOCKET")]
    pub docker_socket: Option<PathBuf>,
    /// Seconds between two checks of the running containers' images against their registries
    /// (for "update available" alerts); 0 never checks.
    #[arg(long, env = "PORTA_BRIDGE_IMAGE_CHECK_EVERY", default_value_t = 6 * 3600)]
    pub image_check_every: u64,
}

/// What `enroll` saves: where the backend is and who this bridge is to it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub server_id: String,
    pub name: String,
    pub credential: String,
    /// Certificate authorities (PEM) trusted besides the built-in roots (`enroll --ca-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("server_id", &self.server_id)
            .field("name", &self.name)
            .field("credential", &"<redacted>")
            .finish()
    }
}

/// The PEM text of `--ca-file`, checked (a file that names no usable CA is refused here, not
/// at the first connection).
pub fn read_ca_file(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read the CA file {}", path.display()))?;
    crate::tls::trust(Some(&pem)).with_context(|| format!("cannot use {} as a CA file", path.display()))?;
    Ok(pem)
}

/// `/etc/porta/bridge.json` for root, else `$XDG_CONFIG_HOME/porta/bridge.json`.
pub fn default_config_path() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/etc/porta/bridge.json");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("porta").join("bridge.json")
}

/// The status file `run` keeps beside the credential file.
pub fn status_path(config: &Path) -> PathBuf {
    config.with_extension("status.json")
}

impl Credentials {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read {}; enrol this machine first with `porta-bridge enroll`", path.display())
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid bridge credential file", path.display()))
    }

    /// Saves with mode 0600 (directory 0700), atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_private(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` readable by the owner only, via a temp file and rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
