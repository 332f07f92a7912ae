//! Containers through the full path (client → backend → bridge → the engine's API): the list
//! of a server with many containers, beside the engine answering the same request alone; and
//! the log of a container writing as fast as it can, followed by a client that reads as fast
//! as it can beside the engine's own follow, and held by a reader that stalls.

use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::Instant;

use porta_e2e::Stack;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerList, DockerLogs, DockerLogsClose, DockerLogsRead, DockerStats};

use super::{Row, cpu_secs, median, percentile, row, rss_kib};

/// Containers on the engine while the list is measured (created, not started: a list reads
/// them all the same, and 200 running would cost the machine 200 shims).
const CONTAINERS: usize = 200;
const RUNS: usize = 30;

/// The engine's socket the bridge and the ceiling both use.
const SOCKET: &str = "/var/run/docker.sock";

/// Removes the bench's containers whatever happens.
pub(crate) struct Made(pub(crate) String);

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

/// `n` containers of `image` sleeping, made by `docker <how> --name porta-<prefix>-<pid>-<i>`,
/// four at a time (`docker` is mostly waiting on the engine).
fn make(n: usize, how: &[&str], image: &str, prefix: &str) -> anyhow::Result<()> {
    let mut pending = Vec::new();
    for i in 0..n {
        let name = format!("porta-{prefix}-{}-{i}", std::process::id());
        pending.push(
            Command::new("docker")
                .args(how)
                .args(["--name", &name, image, "sleep", "600"])
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
    Ok(())
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

/// The bench's image, or None (said) where no engine has it.
pub(crate) fn image() -> Option<String> {
    let image = std::env::var("PORTA_BENCH_DOCKER_IMAGE").unwrap_or_else(|_| "porta-test/busybox:1".into());
    let engine = Command::new("docker").args(["image", "inspect", &image]).output();
    if !engine.is_ok_and(|o| o.status.success()) {
        eprintln!("containers: no engine with {image} here (`cargo xtask bench` makes it); section skipped");
        return None;
    }
    Some(image)
}

pub async fn run(stack: &Stack, server: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let label = format!("porta.bench={}", std::process::id());
    let made = Made(label.clone());
    make(CONTAINERS, &["create", "--label", &label, "--label", "com.docker.compose.project=bench"], &image, "bench")?;
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

/// Running containers while their use is sampled, and how often and how long.
const SAMPLED: usize = 50;
const SAMPLE_EVERY_S: u64 = 2;
const SAMPLING_S: u64 = 30;

/// What a panel open on a server with [`SAMPLED`] running containers costs: their use
/// sampled every [`SAMPLE_EVERY_S`] (as the panel does), the bridge's CPU meanwhile.
pub async fn stats(stack: &Stack, server: &str, bridge: u32, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let label = format!("porta.bench={}-stats", std::process::id());
    let made = Made(label.clone());
    make(SAMPLED, &["run", "-d", "--stop-timeout", "1", "--label", &label], &image, "bench-stats")?;
    let engine = Command::new("pgrep").args(["-o", "dockerd"]).output()?;
    let engine: Option<u32> = String::from_utf8_lossy(&engine.stdout).trim().parse().ok();
    let mut ws = stack.api.ws().await?;
    let ask = || OnServer { server: server.to_owned(), req: DockerStats {} };
    let first = ws.call(ask()).await??;
    anyhow::ensure!(first.containers.len() >= SAMPLED, "{} running containers sampled", first.containers.len());
    let (start, bridge_before) = (Instant::now(), cpu_secs(bridge));
    let engine_before = engine.map_or(0.0, cpu_secs);
    let mut took = Vec::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(SAMPLE_EVERY_S));
    tick.tick().await;
    while start.elapsed().as_secs() < SAMPLING_S {
        tick.tick().await;
        let asked = Instant::now();
        let taken = ws.call(ask()).await??;
        took.push(asked.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(taken.containers.iter().filter(|c| c.cpu_percent.is_some()).count() >= SAMPLED);
    }
    let wall = start.elapsed().as_secs_f64();
    let bridge_pct = (cpu_secs(bridge) - bridge_before) / wall * 100.0;
    let engine_pct = engine.map_or(0.0, |e| (cpu_secs(e) - engine_before) / wall * 100.0);
    took.sort_by(f64::total_cmp);
    rows.push(row(
        &format!("container stats, {SAMPLED} running, every {SAMPLE_EVERY_S} s: bridge CPU"),
        format!("{bridge_pct:.2} % of a core (a sample {:.0} ms p50)", percentile(&took, 0.5)),
        &format!("the engine answering them {engine_pct:.1} % of a core"),
        "<= 3 % of a core",
    ));
    drop(made);
    Ok(())
}

/// Seconds each follow is measured.
const FOLLOW_S: f64 = 4.0;
/// Follows measured, each way.
const FOLLOWS: usize = 3;

/// Text bytes and lines the engine's own follow delivers in [`FOLLOW_S`] (its 8-byte frame
/// headers and timestamps not counted): the ceiling.
fn engine_follow(id: &str) -> anyhow::Result<(f64, f64)> {
    let mut s = std::os::unix::net::UnixStream::connect(SOCKET)?;
    let ask = format!(
        "GET /containers/{id}/logs?follow=1&stdout=1&stderr=1&timestamps=1&tail=0 HTTP/1.0\r\nHost: docker\r\n\r\n"
    );
    s.write_all(ask.as_bytes())?;
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
    let (start, mut buf) = (Instant::now(), vec![0u8; 256 << 10]);
    let (mut bytes, mut lines) = (0usize, 0usize);
    while start.elapsed().as_secs_f64() < FOLLOW_S {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes += n;
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Each line came with a frame header and `2026-12-06T11:32:32.486734283Z `.
    let text = bytes.saturating_sub(lines * (8 + 31));
    Ok((text as f64 / FOLLOW_S / 1e6, lines as f64 / FOLLOW_S))
}

/// A container of `image` writing 100-character lines as fast as it can (its log kept to
/// 200 MB), named for `what`; removed when the first is dropped; its name and id.
pub(crate) fn flood_container(image: &str, what: &str) -> anyhow::Result<(Made, String, String)> {
    let label = format!("porta.bench={}-{what}", std::process::id());
    let made = Made(label.clone());
    let name = format!("porta-bench-{what}-{}", std::process::id());
    let line = "x".repeat(100);
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &name, "--label", &label])
        .args(["--log-opt", "max-size=100m", "--log-opt", "max-file=2"])
        .args([image, "sh", "-c", &format!("while true; do echo {line}; done")])
        .output()?;
    anyhow::ensure!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((made, name, id))
}

/// The log of a container that writes as fast as it can: followed through the full path by a
/// client that asks for the next batch as soon as it has one, beside the engine's own follow;
/// then held by a reader that stops reading.
pub async fn logs(
    stack: &Stack,
    server: &str,
    (backend, bridge): (u32, u32),
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let (made, name, id) = flood_container(&image, "logs")?;
    let mut ws = stack.api.ws().await?;
    let (mut porta, mut alone, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..FOLLOWS {
        let follow = DockerLogs { containers: vec![name.clone()], tail: Some(0), follow: true, ..Default::default() };
        let opened = ws.call(OnServer { server: server.to_owned(), req: follow }).await??;
        let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 1_000, max_bytes: None };
        let (start, cpu_before) = (Instant::now(), cpu_secs(backend) + cpu_secs(bridge));
        let (mut bytes, mut lines) = (0usize, 0usize);
        while start.elapsed().as_secs_f64() < FOLLOW_S {
            let batch = ws.call(OnServer { server: server.to_owned(), req: read.clone() }).await??;
            bytes += batch.lines.iter().map(|l| l.text.len() + 1).sum::<usize>();
            lines += batch.lines.len();
        }
        let secs = start.elapsed().as_secs_f64();
        let spent = cpu_secs(backend) + cpu_secs(bridge) - cpu_before;
        porta.push((bytes as f64 / secs / 1e6, lines as f64 / secs));
        cpu.push(spent / (bytes as f64 / 1e6).max(1e-9));
        let close = DockerLogsClose { session: opened.session };
        ws.call(OnServer { server: server.to_owned(), req: close }).await??;
        alone.push(engine_follow(&id)?);
    }
    let mb = |v: &[(f64, f64)]| median(v.iter().map(|p| p.0).collect());
    let per_s = |v: &[(f64, f64)]| median(v.iter().map(|p| p.1).collect());
    rows.push(row(
        "log follow, a container writing as fast as it can (median)",
        format!("{:.1} MB/s, {:.0} lines/s", mb(&porta), per_s(&porta)),
        &format!("engine's own follow {:.1} MB/s, {:.0} lines/s", mb(&alone), per_s(&alone)),
        "keeps up with the engine",
    ));
    rows.push(row(
        "log follow: backend + bridge CPU per MB of log (median)",
        format!("{:.3} CPU-s", median(cpu)),
        "-",
        "-",
    ));
    // A reader that stops: what backend and bridge hold while the container goes on writing.
    let follow = DockerLogs { containers: vec![name.clone()], tail: Some(0), follow: true, ..Default::default() };
    let opened = ws.call(OnServer { server: server.to_owned(), req: follow }).await??;
    let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 1_000, max_bytes: None };
    for _ in 0..3 {
        ws.call(OnServer { server: server.to_owned(), req: read.clone() }).await??;
    }
    let before = rss_kib(backend) + rss_kib(bridge);
    let mut peak = before;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        peak = peak.max(rss_kib(backend) + rss_kib(bridge));
    }
    ws.call(OnServer { server: server.to_owned(), req: DockerLogsClose { session: opened.session } }).await??;
    rows.push(row(
        "log follow, reader stalled 10 s: backend + bridge RSS growth",
        format!("{:.1} MiB", peak.saturating_sub(before) as f64 / 1024.0),
        &format!("from {:.1} MiB", before as f64 / 1024.0),
        "bounded",
    ));
    drop(made);
    Ok(())
}
