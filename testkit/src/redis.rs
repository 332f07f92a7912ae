//! A Redis server of its own: no persistence, on a free loopback port.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use crate::{Watchdog, free_port, output, server_dir, wait_until};

/// A running Redis server (stopped and removed when dropped).
pub struct Redis {
    dir: PathBuf,
    port: u16,
    watchdog: Watchdog,
}

impl Redis {
    pub fn start() -> anyhow::Result<Self> {
        let dir = server_dir("porta-redis-", None)?;
        // Waits for Redis to be gone before the folder goes: shutting down, it writes its log again.
        let stop = "pid=$(cat \"$0/pid\"); kill \"$pid\"; while kill -0 \"$pid\"; do sleep 0.05; done";
        let watchdog = Watchdog::start(stop, &dir)?;
        let mut redis = Self { dir, port: 0, watchdog };
        redis.start_again()?;
        Ok(redis)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once (its data, kept in memory only, is gone).
    pub fn stop(&self) -> anyhow::Result<()> {
        let pid = std::fs::read_to_string(self.dir.join("pid")).context("Redis wrote no pid file")?;
        output(Command::new("kill").arg("-KILL").arg(pid.trim()))?;
        let port = self.port;
        wait_until(Duration::from_secs(10), "Redis stopping", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        })
    }

    /// Starts the server again (on the same port after the first start), waiting until it
    /// answers.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        let port = if self.port == 0 { free_port()? } else { self.port };
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("pid"))
            .arg("--logfile")
            .arg(self.dir.join("log"));
        output(&mut cmd)
            .context("redis-server did not start (`cargo xtask test` installs it: apt-get install redis-server)")?;
        self.port = port;
        // Daemonised, it forks before it listens: the server answering must be this one (not
        // another test's that took the port meanwhile).
        let pid_file = self.dir.join("pid");
        wait_until(Duration::from_secs(30), "Redis", || {
            let ours = std::fs::read_to_string(&pid_file).unwrap_or_default();
            let info = Command::new("redis-cli").args(["-p", &port.to_string(), "info", "server"]).output();
            info.is_ok_and(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                !ours.trim().is_empty()
                    && text.lines().any(|l| l.strip_prefix("process_id:").is_some_and(|p| p.trim() == ours.trim()))
            })
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.watchdog.finish();
    }
}
