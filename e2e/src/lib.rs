//! Test harness: the real `porta` and `porta-bridge` binaries on ephemeral ports, a TCP proxy
//! that can cut the bridge's link, and a WebSocket client that plays the browser.
//!
//! The binaries are taken from the cargo target directory next to the test executable;
//! `cargo xtask test` builds them first.

pub mod agents;
pub mod balancer;
pub mod browser;
pub mod chat;
pub mod client;
pub mod docker;
pub mod first_visit;
pub mod llm;
pub mod mailbox;
pub mod proxy;
pub mod subscription;
pub mod webapp;
pub mod webhook;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use client::{Api, Ws};

pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// Where cargo put the binaries of this build.
pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // Tests run from target/<profile>/deps/, binaries (porta-bench) from target/<profile>/.
    let mut dir = exe.parent().context("unexpected executable location")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("unexpected test executable location")?;
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the binaries first (`cargo build --bins`; `cargo xtask test` does)",
            path.display()
        );
    }
    Ok(path)
}

/// The built browser app (`cargo xtask ui` writes it to `<target>/ui`).
pub fn ui_dir() -> anyhow::Result<PathBuf> {
    let porta = bin("porta")?;
    let dir = porta
        .parent()
        .and_then(|profile| profile.parent())
        .map(|target| target.join("ui"))
        .context("unexpected binary location")?;
    if !dir.join("index.html").exists() {
        bail!("{} holds no built app: run `cargo xtask ui` first (`cargo xtask test` does)", dir.display());
    }
    Ok(dir)
}

/// The URL prefix of the built app's assets, `/a/<digest>`.
pub fn ui_assets() -> anyhow::Result<String> {
    let dir = ui_dir()?.join("a");
    let mut names = std::fs::read_dir(&dir)?.filter_map(Result::ok).map(|e| e.file_name());
    let name = names.next().with_context(|| format!("{} is empty", dir.display()))?;
    Ok(format!("/a/{}", name.to_string_lossy()))
}

/// The variable that puts every backend of the end-to-end tests on PostgreSQL: a URL to any
/// database of a server, on which each backend gets a fresh database of its own.
pub const POSTGRES_ENV: &str = "PORTA_E2E_POSTGRES";

/// A new, empty database for one backend: on the PostgreSQL server [`POSTGRES_ENV`] names,
/// or `None` (the backend's own SQLite file) when it names none.
pub async fn fresh_database() -> anyhow::Result<Option<String>> {
    match std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty()) {
        Some(server) => Ok(Some(fresh_database_on(&server).await?)),
        None => Ok(None),
    }
}

/// A new, empty database on the PostgreSQL server `server` (a URL to any of its databases).
pub async fn fresh_database_on(server: &str) -> anyhow::Result<String> {
    use sqlx::Connection as _;
    let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server).await.context("cannot reach the test PostgreSQL server")?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
    admin.close().await?;
    let (base, _) = server.rsplit_once('/').context("the PostgreSQL URL names no database")?;
    Ok(format!("{base}/{name}"))
}

/// A running backend with its own data directory (and database).
pub struct Backend {
    pub url: String,
    pub data: tempfile::TempDir,
    /// Its PostgreSQL database, when the tests run on PostgreSQL.
    pub database: Option<String>,
    child: Child,
}

/// The value of metric `name` (no labels) in a `/metrics` answer.
pub fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

impl Backend {
    /// Its `/metrics`, asked with the scraper's `token` (`PORTA_METRICS_TOKEN`).
    pub async fn metrics(&self, token: &str) -> anyhow::Result<String> {
        let resp = reqwest::Client::new().get(format!("{}/metrics", self.url)).bearer_auth(token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "/metrics: {}", resp.status());
        Ok(resp.text().await?)
    }

    /// Starts `porta` on a free port with an admin whose password is [`ADMIN_PASSWORD`].
    pub async fn start(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::launch(env, true).await
    }

    /// Starts `porta` with no user at all: the first-run set-up is open.
    pub async fn start_without_admin(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::launch(env, false).await
    }

    async fn launch(env: &[(&str, &str)], admin: bool) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", env, admin).await
    }

    /// Starts `porta` listening on `listen` (a port of 0: a free one), its public URL that
    /// address, with an admin when `admin`.
    pub async fn start_on(listen: &str, env: &[(&str, &str)], admin: bool) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let database = fresh_database().await?;
        let (child, url) = Self::spawn(data.path(), database.as_deref(), listen, env, admin).await?;
        Ok(Self { url, data, database, child })
    }

    /// Starts `porta` on `database` (a replica shares it with others), with `env` (a
    /// replica's Redis and keys) and the admin of the first start.
    pub async fn start_on_database(database: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let (child, url) = Self::spawn(data.path(), Some(database), "127.0.0.1:0", env, true).await?;
        Ok(Self { url, data, database: Some(database.to_owned()), child })
    }

    /// Stops the backend (SIGTERM, as an operator's restart does) and starts it again on the
    /// same address with the same data and extra settings `env`.
    pub async fn restart(&mut self, env: &[(&str, &str)]) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let _ = self.child.kill().await;
        let listen = self.url.trim_start_matches("http://").to_owned();
        let (child, url) = Self::spawn(self.data.path(), self.database.as_deref(), &listen, env, true).await?;
        anyhow::ensure!(url == self.url, "the backend came back at {url}, not {}", self.url);
        self.child = child;
        Ok(())
    }

    async fn spawn(
        data: &std::path::Path,
        database: Option<&str>,
        listen: &str,
        env: &[(&str, &str)],
        admin: bool,
    ) -> anyhow::Result<(Child, String)> {
        let mut cmd = Command::new(bin("porta")?);
        if admin {
            cmd.env("PORTA_ADMIN_PASSWORD", ADMIN_PASSWORD);
        } else {
            cmd.env_remove("PORTA_ADMIN_PASSWORD");
        }
        cmd.arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(data)
            .env("PORTA_HEARTBEAT_MS", "1000")
            .env("RUST_LOG", "porta_backend=info")
            .env_remove("PORTA_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(url) = database {
            cmd.env("PORTA_DATABASE_URL", url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("cannot start porta")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("Porta is listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("porta exited before listening")
        })
        .await
        .context("porta did not start within 30 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((child, url))
    }

    /// A one-time enrolment token, minted by the backend's CLI against the same database.
    pub async fn enrollment_token(&self) -> anyhow::Result<String> {
        let out = self.command()?.arg("create-enrollment-token").output().await?;
        if !out.status.success() {
            bail!("create-enrollment-token failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Runs `porta <args>` against this backend's data directory.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Ok(self.command()?.args(args).output().await?)
    }

    /// `porta` on this backend's data directory and database.
    fn command(&self) -> anyhow::Result<Command> {
        let mut cmd = Command::new(bin("porta")?);
        cmd.arg("--data-dir").arg(self.data.path()).env_remove("PORTA_DATABASE_URL");
        if let Some(url) = &self.database {
            cmd.env("PORTA_DATABASE_URL", url);
        }
        Ok(cmd)
    }

    /// The database's URL, for tests that inspect (or tamper with) it directly: the SQLite
    /// file, or its PostgreSQL database.
    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| format!("sqlite://{}", self.data.path().join("porta.db").display()))
    }

    /// A pool on the backend's database, whichever engine it is (queries use `$1`, `$2`, …,
    /// which both read).
    pub async fn database_pool(&self) -> anyhow::Result<sqlx::AnyPool> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::AnyPool::connect(&self.database_url()).await?)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}

/// An enrolled bridge daemon process.
pub struct Bridge {
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
    /// The binary `run` starts: the build's own unless a test runs a copy it may replace.
    pub program: Option<PathBuf>,
    args: Vec<String>,
    child: Option<Child>,
}

impl Bridge {
    /// Enrols a bridge with `backend`; `run_args` are passed to every `run`.
    pub async fn enroll(backend: &Backend, run_args: &[&str]) -> anyhow::Result<Self> {
        let token = backend.enrollment_token().await?;
        Self::enroll_at(&backend.url, &token, &[], run_args).await
    }

    /// Enrols a bridge with the backend at `server` using `token`, with `enroll_args` on top
    /// (e.g. `--ca-file`).
    pub async fn enroll_at(server: &str, token: &str, enroll_args: &[&str], run_args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("bridge.json");
        let out = Command::new(bin("porta-bridge")?)
            .arg("--config")
            .arg(&config)
            .args(["enroll", "--server", server, "--token", token])
            .args(enroll_args)
            .output()
            .await?;
        if !out.status.success() {
            bail!("enroll failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Self { config, dir, program: None, args: run_args.iter().map(|s| s.to_string()).collect(), child: None })
    }

    /// Starts `porta-bridge run` (with `extra` arguments on top of the enrolment's).
    pub fn run(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let program = match &self.program {
            Some(p) => p.clone(),
            None => bin("porta-bridge")?,
        };
        let mut attempts = 0;
        let child = loop {
            let spawned = Command::new(&program)
                .arg("--config")
                .arg(&self.config)
                .arg("run")
                .args(&self.args)
                .args(extra)
                .env("RUST_LOG", "porta_bridge=info")
                .env("SHELL", "/bin/bash")
                .env("HOME", self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn();
            // A copy just written may still be open in a process another test thread forked
            // meanwhile (until that one execs): ETXTBSY for a moment.
            const ETXTBSY: i32 = 26;
            match spawned {
                Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other.with_context(|| format!("cannot start {}", program.display()))?,
            }
        };
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Waits until one of this bridge's terminals runs `command` in the foreground: a process
    /// of that name, started by one of the bridge's shells, leads its terminal's foreground
    /// process group (what Ctrl+C or a `term.signal` reaches). Read from `/proc`: the bridge
    /// runs on this machine.
    pub async fn wait_foreground(&self, command: &str, within: Duration) -> anyhow::Result<()> {
        let bridge = self.pid().context("the bridge is not running")?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let procs = processes();
            let shells: std::collections::HashSet<u32> =
                procs.iter().filter(|p| p.ppid == bridge).map(|p| p.pid).collect();
            if procs.iter().any(|p| p.comm == command && shells.contains(&p.ppid) && i64::from(p.pid) == p.tpgid) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no terminal of the bridge ran {command:?} in the foreground within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process and its terminals die at once.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let c = self.child.as_mut().context("not running")?;
        let status = tokio::time::timeout(within, c.wait()).await.context("still running")??;
        self.child = None;
        Ok(status)
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut c = self.child.take().context("not running")?;
        let pid = c.id().context("no pid")?;
        std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status()?;
        Ok(tokio::time::timeout(Duration::from_secs(10), c.wait()).await??)
    }
}

/// A process as `/proc/<pid>/stat` describes it.
struct Process {
    pid: u32,
    comm: String,
    ppid: u32,
    /// The foreground process group of its terminal (-1: none).
    tpgid: i64,
}

/// The processes running now (those that end while being read are left out).
fn processes() -> Vec<Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp session tty_nr tpgid …`; the name may hold spaces
            // and parentheses, so it ends at the last ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_owned();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(Process { pid, comm, ppid: fields.get(1)?.parse().ok()?, tpgid: fields.get(5)?.parse().ok()? })
        })
        .collect()
}

/// A loopback port that was free a moment ago, for a backend whose address must be known
/// before it starts (its preview domain names the port).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A backend with the admin signed in and one enrolled, running bridge.
pub struct Stack {
    pub backend: Backend,
    pub bridge: Bridge,
    pub api: Api,
    pub server_id: String,
}

impl Stack {
    pub async fn start(backend_env: &[(&str, &str)], bridge_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", backend_env, bridge_args).await
    }

    /// [`Stack::start`] with the backend listening on `listen` (see [`free_port`]).
    pub async fn start_on(listen: &str, backend_env: &[(&str, &str)], bridge_args: &[&str]) -> anyhow::Result<Self> {
        let backend = Backend::start_on(listen, backend_env, true).await?;
        let mut bridge = Bridge::enroll(&backend, bridge_args).await?;
        bridge.run(&[])?;
        Self::signed_in(backend, bridge).await
    }

    /// Like [`Stack::start`], but the bridge reaches the backend through a [`Proxy`] that
    /// the test can cut or freeze.
    pub async fn start_proxied() -> anyhow::Result<(Self, proxy::Proxy)> {
        let backend = Backend::start(&[]).await?;
        let target: std::net::SocketAddr = backend.url.trim_start_matches("http://").parse()?;
        let proxy = proxy::Proxy::start(target).await?;
        let mut bridge = Bridge::enroll(&backend, &[]).await?;
        bridge.run(&["--server", &proxy.url()])?;
        Ok((Self::signed_in(backend, bridge).await?, proxy))
    }

    /// The admin signed in to `backend`, with `bridge` (enrolled there and running) online.
    pub async fn signed_in(backend: Backend, bridge: Bridge) -> anyhow::Result<Self> {
        let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
        let server_id = api.wait_server_online(true, Duration::from_secs(20)).await?;
        Ok(Self { backend, bridge, api, server_id })
    }
}
