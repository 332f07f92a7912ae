//! What the container tests share: the test image `cargo xtask test` names, things made in the
//! real engine under a label of the test's own (removed when it ends, whatever happens), and a
//! local registry to pull from.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};

/// The test image, or None (said) where no engine runs.
pub fn test_image() -> Option<String> {
    let image = std::env::var("PORTA_TEST_DOCKER_IMAGE").ok().filter(|i| !i.is_empty());
    if image.is_none() {
        eprintln!(
            "NOT RUN: no container engine for the tests (`cargo xtask test` starts one and sets PORTA_TEST_DOCKER_IMAGE)"
        );
    }
    image
}

/// A name no other test (or run) uses.
pub fn rand_suffix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos)
}

/// `docker <args>`, its output when it succeeds.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().context("docker")?;
    ensure!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Containers, images, volumes and networks a test made, by a label of its own: removed when
/// it ends, whatever happens.
pub struct Made {
    pub label: String,
}

impl Default for Made {
    fn default() -> Self {
        Self::new()
    }
}

impl Made {
    pub fn new() -> Self {
        Self { label: format!("porta.e2e={}", rand_suffix()) }
    }

    /// `docker run -d` of `args` (after the image), named `name`, labelled as this test's.
    pub fn run(&self, name: &str, image: &str, extra: &[&str], args: &[&str]) -> anyhow::Result<()> {
        // busybox's sleep, as pid 1, ignores SIGTERM: a stop would wait out its grace.
        let mut all = vec!["run", "-d", "--stop-timeout", "1", "--name", name, "--label", &self.label];
        all.extend_from_slice(extra);
        all.push(image);
        all.extend_from_slice(args);
        docker(&all).map(drop)
    }

    /// A volume of this test's.
    pub fn volume(&self, name: &str) -> anyhow::Result<()> {
        docker(&["volume", "create", "--label", &self.label, name]).map(drop)
    }

    /// A network of this test's.
    pub fn network(&self, name: &str) -> anyhow::Result<()> {
        docker(&["network", "create", "--label", &self.label, name]).map(drop)
    }

    /// An image of this test's: `image` with a file of `bytes` random bytes added, tagged
    /// `tag`; its id.
    pub fn image(&self, image: &str, tag: &str, bytes: usize) -> anyhow::Result<String> {
        let work = format!("porta-e2e-build-{}", rand_suffix());
        let fill = format!("busybox head -c {bytes} /dev/urandom > /payload");
        docker(&["run", "--name", &work, "--label", &self.label, image, "sh", "-c", &fill])?;
        let change = format!("LABEL {}", self.label);
        let made = docker(&["commit", "--change", &change, &work, tag]);
        let _ = docker(&["rm", "-f", &work]);
        made
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        let listed = |args: &[&str]| -> Vec<String> {
            docker(args).map(|out| out.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
        };
        let remove = |cmd: &[&str], ids: Vec<String>| {
            if !ids.is_empty() {
                let mut all: Vec<&str> = cmd.to_vec();
                all.extend(ids.iter().map(String::as_str));
                let _ = docker(&all);
            }
        };
        remove(&["rm", "-f", "-v"], listed(&["ps", "-aq", "--filter", &filter]));
        remove(&["rmi", "-f"], listed(&["images", "-aq", "--filter", &filter]));
        remove(&["volume", "rm", "-f"], listed(&["volume", "ls", "-q", "--filter", &filter]));
        remove(&["network", "rm"], listed(&["network", "ls", "-q", "--filter", &filter]));
    }
}

/// A registry on this machine (Debian's `docker-registry`, which `cargo xtask test` unpacks and
/// names in `PORTA_TEST_DOCKER_REGISTRY`), on a port of its own, keeping its images in a
/// temporary folder; stopped when dropped. The engine pushes to and pulls from 127.0.0.1
/// without TLS.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// None (said) when the test has no registry program.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some(program) = std::env::var_os("PORTA_TEST_DOCKER_REGISTRY").map(PathBuf::from) else {
            eprintln!("NOT RUN: no registry for the tests (`cargo xtask test` sets PORTA_TEST_DOCKER_REGISTRY)");
            return Ok(None);
        };
        for _ in 0..5 {
            let dir = tempfile::tempdir()?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.path().join("data").display()
                ),
            )?;
            let child = Command::new(&program)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("start {}", program.display()))?;
            let mut registry = Self { child, port, _dir: dir };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(Some(registry));
                }
                if registry.child.try_wait()?.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The port was taken meanwhile (dropping it stops it): another.
        }
        anyhow::bail!("the registry did not start")
    }

    /// `name` in this registry: `127.0.0.1:<port>/<name>`.
    pub fn name(&self, name: &str) -> String {
        format!("127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stack a test brought up, taken down whatever happens.
pub struct ComposeUp {
    pub project: String,
    pub file: std::path::PathBuf,
}

impl ComposeUp {
    /// `docker-compose up -d` of two services (web, worker) of `image` sleeping, labelled
    /// `label`, as project `project`, its file in `dir`.
    pub fn start(dir: &Path, project: &str, image: &str, label: &str) -> anyhow::Result<Self> {
        let file = dir.join("compose.yml");
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        let service = |cmd: &str| {
            format!(
                "    image: {image}\n    stop_grace_period: 1s\n    command: [\"sh\", \"-c\", \"{cmd}\"]\n    labels:\n      {key}: \"{value}\"\n"
            )
        };
        std::fs::write(
            &file,
            format!("version: \"3\"\nservices:\n  web:\n{}  worker:\n{}", service("sleep 600"), service("sleep 600")),
        )?;
        let up = Self { project: project.to_owned(), file };
        up.compose(&["up", "-d"])?;
        Ok(up)
    }

    /// `docker-compose <args>` of the stack.
    pub fn compose(&self, args: &[&str]) -> anyhow::Result<()> {
        let f = self.file.to_string_lossy();
        let out = Command::new("docker-compose").args(["-p", &self.project, "-f", &f]).args(args).output()?;
        anyhow::ensure!(out.status.success(), "docker-compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }
}

impl Drop for ComposeUp {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v"]);
    }
}
