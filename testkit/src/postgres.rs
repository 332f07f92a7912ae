//! A PostgreSQL server of its own: `initdb` into a temporary folder, `pg_ctl start` on a free
//! loopback port, trust authentication for the user `porta`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::{Watchdog, free_port, is_root, output, server_dir, wait_until};

/// A running PostgreSQL server (stopped and removed when dropped).
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Who the server runs as when this process is root (PostgreSQL refuses root).
    run_as: Option<String>,
    watchdog: Watchdog,
}

impl Postgres {
    /// Starts a server for tests: durability off (`fsync`, synchronous commit), which tests
    /// do not need and which makes them faster.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// Starts a server; `durable` keeps PostgreSQL's own defaults (for measuring).
    pub fn start_with(durable: bool) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let run_as = is_root().then(|| "postgres".to_owned());
        let owner = match &run_as {
            Some(user) => Some(output(Command::new("id").args(["-u", user]))?.trim().parse::<u32>()?),
            None => None,
        };
        let dir = server_dir("porta-pg-", owner)?;
        let data = dir.join("data");
        let pg_ctl = format!("{}", bin.join("pg_ctl").display());
        let stop = format!("{} {pg_ctl} -D \"$0/data\" stop -m immediate", sudo_prefix(run_as.as_deref()));
        let watchdog = Watchdog::start(&stop, &dir)?;
        let mut pg = Self { dir, bin, port: 0, run_as, watchdog };
        let mut initdb = pg.as_owner(pg.bin.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "porta", "--no-locale", "-E", "UTF8", "--no-sync"]);
        output(&mut initdb).context("initdb failed")?;
        let mut settings = String::from(
            "listen_addresses = '127.0.0.1'\nmax_connections = 200\nshared_buffers = 32MB\n\
             log_min_messages = warning\n",
        );
        if !durable {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        std::fs::write(data.join("postgresql.auto.conf"), settings).context("cannot write postgresql.auto.conf")?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(data.join("postgresql.auto.conf"), Some(uid), None)?;
        }
        pg.start_again()?;
        Ok(pg)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` as the user `porta`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://porta@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server (fast shutdown: connections are closed), keeping its data.
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut cmd = self.as_owner(self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(self.data()).args(["stop", "-m", "fast", "-w"]);
        output(&mut cmd).context("pg_ctl stop failed").map(|_| ())
    }

    /// Starts the server again (on the same port after the first start), waiting until it
    /// accepts connections.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..3 {
            let port = if self.port == 0 { free_port()? } else { self.port };
            let mut cmd = self.as_owner(self.bin.join("pg_ctl"));
            cmd.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("log"))
                .arg("-o")
                .arg(format!("-p {port} -k {}", self.dir.display()))
                .args(["-w", "-t", "60", "start"]);
            match output(&mut cmd) {
                Ok(_) => {
                    self.port = port;
                    return self.wait_ready();
                }
                Err(e) => last = Some(e),
            }
            if self.port != 0 {
                break;
            }
        }
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
            .with_context(|| format!("PostgreSQL did not start; its log:\n{log}"))
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let port = self.port.to_string();
        wait_until(Duration::from_secs(60), "PostgreSQL", || {
            Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "porta", "-d", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program`, run as the server's user.
    fn as_owner(&self, program: impl AsRef<Path>) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid", user, "--regid", user, "--init-groups"]).arg(program.as_ref());
                c.current_dir(&self.dir);
                c
            }
            None => Command::new(program.as_ref()),
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.watchdog.finish();
    }
}

/// What runs a command as `user` from the watchdog's shell.
fn sudo_prefix(user: Option<&str>) -> String {
    user.map(|u| format!("setpriv --reuid {u} --regid {u} --init-groups")).unwrap_or_default()
}

/// Where PostgreSQL's programs are: Debian keeps them per version under
/// `/usr/lib/postgresql/<version>/bin`; elsewhere, on the `PATH`.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Ok(found) = output(Command::new("sh").args(["-c", "command -v pg_ctl"])) {
        if let Some(dir) = Path::new(found.trim()).parent() {
            return Ok(dir.to_owned());
        }
    }
    bail!("PostgreSQL is not installed: `cargo xtask test` installs it (Debian: apt-get install postgresql)")
}
