//! The relay through the whole path (client → backend → bridge → PTY): a flood's throughput
//! and CPU, keystroke echo (idle, and beside a flooding terminal), a stalled client, idle
//! terminals; each beside the raw PTY on this machine.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use porta_e2e::{Stack, Ws};
use porta_shared::client::{self, StreamOpened};
use porta_shared::types::TermSize;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

use super::{
    FLOOD_BYTES, IDLE_TERMINALS, KEYSTROKES, Row, T, THROUGHPUT_RUNS, cpu_ticks, flood_command, median, percentile,
    row, rss_kib,
};

pub(crate) async fn open(ws: &mut Ws, server: &str) -> anyhow::Result<StreamOpened> {
    let req = client::TermOpen {
        server: server.to_owned(),
        shell: Some("/bin/bash".into()),
        args: vec!["--noprofile".into(), "--norc".into()],
        cwd: None,
        size: TermSize { cols: 120, rows: 40 },
        env: [("PS1".to_string(), "$ ".to_string())].into(),
    };
    ws.call(req).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))
}

pub(crate) async fn ready(ws: &mut Ws, s: u32) -> anyhow::Result<()> {
    ws.input(s, b"echo READY-$((1+1))\n").await?;
    ws.wait_output(s, "READY-2", T).await?;
    Ok(())
}

/// Seconds to push the flood through Porta.
pub(crate) async fn porta_flood(ws: &mut Ws, server: &str) -> anyhow::Result<(f64, u64)> {
    let s = open(ws, server).await?.stream;
    ready(ws, s).await?;
    let start = Instant::now();
    ws.input(s, format!("{}\n", flood_command()).as_bytes()).await?;
    ws.wait_output(s, "FLOOD-42-DONE", T).await?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = ws.output[&s].len() as u64;
    ws.output.remove(&s);
    ws.call(client::TermClose::Stream { stream: s }).await??;
    Ok((secs, bytes))
}

/// The same flood read straight from a PTY by this process: the machine's ceiling.
pub(crate) fn raw_pty_flood() -> anyhow::Result<(f64, u64)> {
    let pair = native_pty_system().openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })?;
    let mut cmd = CommandBuilder::new("/bin/sh");
    cmd.args(["-c", &flood_command()]);
    let start = Instant::now();
    let mut child = pair.slave.spawn_command(cmd)?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader()?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut tail) = (0u64, Vec::<u8>::new());
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 64 {
                    tail.drain(..tail.len() - 64);
                }
                if String::from_utf8_lossy(&tail).contains("FLOOD-42-DONE") {
                    break;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    Ok((secs, total))
}

/// Round-trip times of single keystrokes echoed by the shell, in milliseconds (sorted).
pub(crate) async fn echo_latency(ws: &mut Ws, s: u32) -> anyhow::Result<Vec<f64>> {
    let mut rtts = Vec::with_capacity(KEYSTROKES);
    for i in 0..KEYSTROKES {
        if i % 50 == 0 {
            // Clear the line now and then so the prompt never wraps.
            ws.input(s, b"\x15").await?;
            ws.drain_for(Duration::from_millis(20)).await;
        }
        let t = Instant::now();
        ws.input(s, b"x").await?;
        loop {
            let more = ws.wait_more(s, Duration::from_secs(10)).await?;
            if more.contains(&b'x') {
                break;
            }
        }
        rtts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ws.input(s, b"\x15").await?;
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

pub(crate) fn raw_pty_echo() -> anyhow::Result<Vec<f64>> {
    let pair = native_pty_system().openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })?;
    let mut cmd = CommandBuilder::new("/bin/bash");
    cmd.args(["--noprofile", "--norc"]);
    cmd.env("PS1", "$ ");
    let mut child = pair.slave.spawn_command(cmd)?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader()?;
    let mut writer = pair.master.take_writer()?;
    let mut buf = [0u8; 4096];
    std::thread::sleep(Duration::from_millis(300));
    let mut rtts = Vec::new();
    for i in 0..KEYSTROKES {
        if i % 50 == 0 {
            writer.write_all(b"\x15")?;
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drain whatever is pending before timing.
        let t = Instant::now();
        writer.write_all(b"x")?;
        loop {
            let n = reader.read(&mut buf)?;
            if buf[..n].contains(&b'x') {
                break;
            }
        }
        rtts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

pub(crate) fn fmt_lat(r: &[f64]) -> String {
    format!("{:.2} / {:.2} / {:.2} ms", percentile(r, 0.5), percentile(r, 0.95), percentile(r, 0.99))
}

/// Throughput of a 50 MB flood, and CPU spent by backend + bridge per 50 MB. Porta and raw
/// PTY runs alternate, and the ratio is taken per pair, so a shared machine's drifting load
/// hits both sides alike.
pub(crate) async fn throughput(
    ws: &mut Ws,
    server: &str,
    (bpid, gpid): (u32, u32),
    tck: f64,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let (mut porta, mut raw, mut ratio, mut cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..THROUGHPUT_RUNS {
        let before = cpu_ticks(bpid) + cpu_ticks(gpid);
        let (secs, bytes) = porta_flood(ws, server).await?;
        let spent = (cpu_ticks(bpid) + cpu_ticks(gpid) - before) as f64 / tck;
        let p = bytes as f64 / secs / 1e6;
        cpu.push(spent * (FLOOD_BYTES as f64 / bytes as f64));
        let (secs, bytes) = tokio::task::spawn_blocking(raw_pty_flood).await??;
        let r = bytes as f64 / secs / 1e6;
        porta.push(p);
        raw.push(r);
        ratio.push(p / r * 100.0);
    }
    let (p, r, q) = (median(porta), median(raw), median(ratio));
    rows.push(row(
        "terminal throughput, 50 MB",
        format!("{p:.1} MB/s ({q:.0} % of raw)"),
        &format!("raw PTY {r:.1} MB/s"),
        ">= 80 % of raw",
    ));
    rows.push(row("CPU (backend + bridge) per 50 MB", format!("{:.2} CPU-s", median(cpu)), "-", "<= 1.2 CPU-s"));
    Ok(())
}

/// Echo latency at an idle prompt, then while another terminal on the same bridge floods.
pub(crate) async fn echo(stack: &Stack, ws: &mut Ws, server: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let s = open(ws, server).await?.stream;
    ready(ws, s).await?;
    let lat = echo_latency(ws, s).await?;
    let raw_lat = tokio::task::spawn_blocking(raw_pty_echo).await??;
    rows.push(row(
        "echo latency p50/p95/p99 (300 keys)",
        fmt_lat(&lat),
        &format!("raw PTY {}", fmt_lat(&raw_lat)),
        "p50 <= 1, p99 <= 3 ms",
    ));

    let mut flood_ws = stack.api.ws().await?;
    let f = open(&mut flood_ws, server).await?.stream;
    ready(&mut flood_ws, f).await?;
    // The flooding viewer acknowledges but keeps nothing, so this process measures Porta,
    // not its own buffer growth.
    flood_ws.keep_output = false;
    flood_ws.input(f, b"yes 'flooding the other terminal'\n").await?;
    let flood_task = tokio::spawn(async move {
        flood_ws.drain_for(Duration::from_secs(600)).await;
        flood_ws
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lat_flood = echo_latency(ws, s).await?;
    flood_task.abort();
    rows.push(row("echo latency while another terminal floods", fmt_lat(&lat_flood), "-", "p99 <= 5 ms"));
    Ok(())
}

/// A client that stops reading for 10 s while its terminal floods.
pub(crate) async fn stall(
    stack: &Stack,
    server: &str,
    (bpid, gpid): (u32, u32),
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut stall_ws = stack.api.ws().await?;
    let st = open(&mut stall_ws, server).await?.stream;
    ready(&mut stall_ws, st).await?;
    stall_ws.input(st, b"yes 'stalled client flood'\n").await?;
    stall_ws.wait_output(st, "stalled client flood\r\nstalled client flood", T).await?;
    let before = rss_kib(bpid) + rss_kib(gpid);
    stall_ws.auto_ack = false;
    let mut peak = before;
    let stall_end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < stall_end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_kib(bpid) + rss_kib(gpid));
    }
    stall_ws.auto_ack = true;
    let at = stall_ws.next[&st];
    stall_ws.ack(st, at).await?;
    stall_ws.input(st, b"\x03").await?;
    stall_ws.input(st, b"echo RESUMED-$((5*5))\n").await?;
    stall_ws.wait_output(st, "RESUMED-25", T).await?;
    rows.push(row(
        "stalled client (10 s, flooding): growth",
        format!("{} KiB, session kept", peak.saturating_sub(before)),
        "-",
        "<= 2048 KiB",
    ));
    stall_ws.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// Memory of backend + bridge per idle terminal, with 50 open.
pub(crate) async fn idle_terminals(
    stack: &Stack,
    server: &str,
    (bpid, gpid): (u32, u32),
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut idle_ws = stack.api.ws().await?;
    let base_rss = rss_kib(bpid) + rss_kib(gpid);
    let mut streams = Vec::new();
    for _ in 0..IDLE_TERMINALS {
        let s = open(&mut idle_ws, server).await?.stream;
        streams.push(s);
    }
    for s in &streams {
        ready(&mut idle_ws, *s).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_term = (rss_kib(bpid) + rss_kib(gpid)).saturating_sub(base_rss) as f64 / IDLE_TERMINALS as f64;
    rows.push(row("memory per idle terminal (50 open)", format!("{per_term:.1} KiB"), "-", "<= 64 KiB"));
    idle_ws.close().await;
    Ok(())
}
