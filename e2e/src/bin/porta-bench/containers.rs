//! Containers through the full path (client → backend → bridge → the engine's API): the list
//! of a server with many containers, beside the engine answering the same request alone.

use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::Instant;

use porta_e2e::Stack;
use porta_shared::client::OnServer;
use porta_shared::docker::DockerList;

use super::{Row, percentile, row};

/// Containers on the engine while the list is measured (created, not started: a list reads
/// them all the same, and 200 running would cost the machine 200 shims).
const CONTAINERS: usize = 200;
const RUNS: usize = 30;

/// The engine's socket the bridge and the ceiling both use.
const SOCKET: &str = "/var/run/docker.sock";

/// Removes the bench's containers whatever happens.
struct Made(String);

impl Drop for Made {
    fn drop(&mut self) {
        let filter = format!("label={}", self.0);
        if let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
            for chunk in ids.chunks(50) {
                let _ = Command::new("docker").args(["rm", "-f"]).args(chunk).output();
            }
        }
    }
}

/// One `GET /containers/json?all=1` straight to the engine's socket: the ceiling.
fn engine_alone() -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut s = std::os::unix::net::UnixStream::connect(SOCKET)?;
    s.write_all(b"GET /containers/json?all=1 HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    anyhow::ensure!(body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"), "the engine refused");
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

pub async fn run(stack: &Stack, server: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let image = std::env::var("PORTA_BENCH_DOCKER_IMAGE").unwrap_or_else(|_| "porta-test/busybox:1".into());
    let engine = Command::new("docker").args(["image", "inspect", &image]).output();
    if !engine.is_ok_and(|o| o.status.success()) {
        eprintln!("containers: no engine with {image} here (`cargo xtask bench` makes it); section skipped");
        return Ok(());
    }
    let label = format!("porta.bench={}", std::process::id());
    let made = Made(label.clone());
    // Made four at a time: `docker create` is mostly waiting on the engine.
    let mut pending = Vec::new();
    for i in 0..CONTAINERS {
        let name = format!("porta-bench-{}-{i}", std::process::id());
        pending.push(
            Command::new("docker")
                .args(["create", "--name", &name, "--label", &label, "--label", "com.docker.compose.project=bench"])
                .args([image.as_str(), "sleep", "600"])
                .stdout(std::process::Stdio::null())
                .spawn()?,
        );
        if pending.len() == 4 {
            for mut p in pending.drain(..) {
                p.wait()?;
            }
        }
    }
    for mut p in pending {
        p.wait()?;
    }
    let mut ws = stack.api.ws().await?;
    let list = || OnServer { server: server.to_owned(), req: DockerList {} };
    // The first list finds the engine and asks its version; the rest are what a panel sees.
    let first = ws.call(list()).await??;
    anyhow::ensure!(first.containers.len() >= CONTAINERS, "{} containers listed", first.containers.len());
    let (mut porta, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let listed = ws.call(list()).await??;
        porta.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(listed.containers.len() >= CONTAINERS);
        alone.push(engine_alone()?);
    }
    porta.sort_by(f64::total_cmp);
    alone.sort_by(f64::total_cmp);
    rows.push(row(
        &format!("container list, {CONTAINERS} containers (p50 / p95)"),
        format!("{:.1} / {:.1} ms", percentile(&porta, 0.5), percentile(&porta, 0.95)),
        &format!("engine alone {:.1} / {:.1} ms", percentile(&alone, 0.5), percentile(&alone, 0.95)),
        "<= 100 ms p50",
    ));
    drop(made);
    Ok(())
}
