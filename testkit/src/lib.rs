//! Real engines for tests: PostgreSQL and Redis servers started in temporary folders on free
//! loopback ports, and stopped — their folders removed — when dropped, or when the test
//! process ends however it ends.
//!
//! Each server has a watchdog: a shell that holds the read end of a pipe whose write end only
//! this process has. When the process exits (a panic, an abort, a kill), the pipe closes, and
//! the shell stops the server and removes its folder. Nothing outlives the tests.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

mod postgres;
mod redis;
pub use postgres::Postgres;
pub use redis::Redis;

/// A process-wide PostgreSQL for tests that only need databases: started on first use.
pub fn shared_postgres() -> anyhow::Result<&'static Postgres> {
    static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();
    SHARED.get_or_init(|| Postgres::start().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

/// A free port on the loopback address (free when asked: the caller binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether this process runs as root (servers that refuse root then run as their own user).
fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// A command's standard output, or an error with its standard error.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `ready` says yes, for at most `limit`; `what` names it in the error.
fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > limit {
            bail!("{what} was not ready after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The shell that cleans up after a server when this process lets go of its stdin.
struct Watchdog {
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Watchdog {
    /// Starts a shell that waits for its stdin to close, then runs `cleanup` and removes `dir`.
    fn start(cleanup: &str, dir: &Path) -> anyhow::Result<Self> {
        // Deaf to the signals a terminal's Ctrl-C or a test runner sends the whole group, and in
        // a group of its own: it outlives the test process long enough to clean up after it.
        let script = format!("trap '' INT TERM HUP; cat >/dev/null; {cleanup} >/dev/null 2>&1; rm -rf \"$0\"");
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .arg(dir)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the watchdog shell")?;
        let stdin = child.stdin.take();
        Ok(Self { stdin, child })
    }

    /// Lets the shell clean up now, and waits for it.
    fn finish(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A folder for a server: under the system's temporary folder, owned by `owner` when given.
fn server_dir(prefix: &str, owner: Option<u32>) -> anyhow::Result<PathBuf> {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().context("cannot make a temporary folder")?.keep();
    if let Some(uid) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), None)
            .with_context(|| format!("cannot hand {} over", dir.display()))?;
    }
    Ok(dir)
}
