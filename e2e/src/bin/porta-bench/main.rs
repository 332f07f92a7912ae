//! `porta-bench`: measures the relay through the full path (client → backend → bridge → PTY)
//! on loopback and prints a table, with the machine's ceiling beside each figure where one
//! exists. Run by `cargo xtask bench` against release builds; a benchmark, not a test.
//! `porta-bench [throughput] [echo] [stall] [idle] [bridges] [files] [assistant] [telemetry] [browser]` runs only
//! those sections.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt, StreamExt};
use porta_e2e::{ADMIN_PASSWORD, Api, Stack, Ws};
use porta_shared::bridge::{BridgeHandshake, Enroll, Enrolled, Hello};
use porta_shared::client::{self, StreamOpened};
use porta_shared::types::TermSize;
use porta_shared::{Envelope, ErrorBody, ErrorCode, Incoming, ProtocolRange, Reply};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const FLOOD_BYTES: u64 = 50_000_000;
/// Alternating Porta / raw PTY pairs in the throughput row.
const THROUGHPUT_RUNS: usize = 5;
const KEYSTROKES: usize = 300;
const IDLE_TERMINALS: usize = 50;
const SIM_BRIDGES: usize = 1000;
const T: Duration = Duration::from_secs(120);

fn flood_command() -> String {
    format!(
        "yes 'porta bench: the quick brown fox jumps over the lazy dog 0123456789' | head -c {FLOOD_BYTES}; echo; echo FLOOD-$((40+2))-DONE"
    )
}

struct Row {
    name: String,
    value: String,
    ceiling: String,
    target: String,
}

fn row(name: &str, value: String, ceiling: &str, target: &str) -> Row {
    Row { name: name.into(), value, ceiling: ceiling.into(), target: target.into() }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn open(ws: &mut Ws, server: &str) -> anyhow::Result<StreamOpened> {
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

async fn ready(ws: &mut Ws, s: u32) -> anyhow::Result<()> {
    ws.input(s, b"echo READY-$((1+1))\n").await?;
    ws.wait_output(s, "READY-2", T).await?;
    Ok(())
}

/// Seconds to push the flood through Porta.
async fn porta_flood(ws: &mut Ws, server: &str) -> anyhow::Result<(f64, u64)> {
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
fn raw_pty_flood() -> anyhow::Result<(f64, u64)> {
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
async fn echo_latency(ws: &mut Ws, s: u32) -> anyhow::Result<Vec<f64>> {
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

fn raw_pty_echo() -> anyhow::Result<Vec<f64>> {
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

fn fmt_lat(r: &[f64]) -> String {
    format!("{:.2} / {:.2} / {:.2} ms", percentile(r, 0.5), percentile(r, 0.95), percentile(r, 0.99))
}

/// A lightweight bridge: enrols, connects, says hello, then only answers pings and refuses
/// requests. Returns the task keeping it connected.
async fn sim_bridge(base: &str, token: String) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (ws, _) = sim_connect(base, token).await?;
    Ok(tokio::spawn(sim_serve(ws, None)))
}

type SimWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Enrols a simulated bridge and connects it with its credential; its server id.
async fn sim_connect(base: &str, token: String) -> anyhow::Result<(SimWs, String)> {
    let url = format!("{}/bridge/ws", base.replacen("http://", "ws://", 1));
    let hello = Envelope::<BridgeHandshake>::event(Hello {
        protocol: ProtocolRange::ours(),
        agent: "sim-bridge/0".into(),
        instance: uuid::Uuid::new_v4().to_string(),
        capabilities: vec![],
    })
    .encode();
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    ws.send(Message::text(hello.clone())).await?;
    ws.next().await.context("no welcome")??;
    ws.send(Message::text(
        Envelope::<BridgeHandshake>::request("e", Enroll { token, hostname: "sim".into() }).encode(),
    ))
    .await?;
    let Some(Ok(Message::Text(t))) = ws.next().await else { bail!("no enrolment reply") };
    let Ok(Incoming::<BridgeHandshake>::Reply(reply)) = Incoming::decode(&t) else { bail!("bad enrolment reply") };
    let enrolled: Enrolled = reply.into_response::<Enroll>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {}", enrolled.credential).parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(hello)).await?;
    Ok((ws, enrolled.server_id))
}

/// Answers every request with an error, and sends `sample` every `.1` when given (first
/// after `.0`, to spread many bridges over the interval).
async fn sim_serve(mut ws: SimWs, report: Option<(Duration, Duration, String)>) {
    let (first, every, sample) = match report {
        Some((first, every, sample)) => (first, every, Some(sample)),
        None => (Duration::from_secs(3600), Duration::from_secs(3600), None),
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(env) = Envelope::<porta_shared::bridge::BridgeRequest>::decode(&t) {
                        if let Some(id) = env.id {
                            let e = ErrorBody::new(ErrorCode::Unavailable, "simulated bridge");
                            let _ = ws.send(Message::text(Reply::error(Some(&id), &e))).await;
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = tick.tick(), if sample.is_some() => {
                if let Some(s) = &sample {
                    if ws.send(Message::text(s.clone())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

async fn enrollment_token(api: &Api) -> anyhow::Result<String> {
    let v = api.graphql("mutation { createEnrollmentToken { token } }", serde_json::json!({})).await?;
    v["data"]["createEnrollmentToken"]["token"].as_str().map(str::to_owned).with_context(|| format!("{v}"))
}

/// The bench's own scraper token for `/metrics`.
const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Default heartbeat: a client that stalls for 10 s must not be taken for dead.
    let quiet = [("RUST_LOG", "warn"), ("PORTA_HEARTBEAT_MS", "10000")];
    // The assistant's model: a scripted server on loopback.
    let llm = porta_e2e::llm::ScriptedLlm::start().await?;
    let mut env = quiet.to_vec();
    env.push(("PORTA_AI_BASE_URL", llm.url.as_str()));
    env.push(("PORTA_METRICS_TOKEN", METRICS_TOKEN));
    let stack = Stack::start(&env, &[]).await?;
    let (bpid, gpid) = (stack.backend.pid().context("backend pid")?, stack.bridge.pid().context("bridge pid")?);
    let server = stack.server_id.clone();
    let mut rows = Vec::new();
    let tck = clk_tck();
    // `porta-bench [section…]` runs only the named sections.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let mut ws = stack.api.ws().await?;

    if want("throughput") {
        throughput(&mut ws, &server, (bpid, gpid), tck, &mut rows).await?;
        let metrics = reqwest::Client::new()
            .get(format!("{}/metrics", stack.backend.url))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await?
            .text()
            .await?;
        let read =
            |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or(0.0);
        let frames = read("porta_relay_frames_to_clients_total");
        let bytes = read("porta_relay_bytes_to_clients_total");
        rows.push(row("average output frame", format!("{:.1} KiB", bytes / frames.max(1.0) / 1024.0), "-", "-"));
    }
    if want("echo") {
        echo(&stack, &mut ws, &server, &mut rows).await?;
    }
    if want("stall") {
        stall(&stack, &server, (bpid, gpid), &mut rows).await?;
    }
    drop(ws);
    if want("idle") {
        idle_terminals(&stack, &server, (bpid, gpid), &mut rows).await?;
    }
    if want("bridges") {
        idle_bridges(&stack, bpid, &mut rows).await?;
    }
    if want("files") {
        files::run(&stack, &mut rows).await?;
    }
    if want("assistant") {
        assistant::run(&stack, &llm, &mut rows).await?;
    }
    if want("telemetry") {
        telemetry::run(&quiet, &mut rows).await?;
    }
    if want("browser") {
        browser::run(&quiet, &mut rows).await?;
    }
    print_table(&rows);
    Ok(())
}

/// Throughput of a 50 MB flood, and CPU spent by backend + bridge per 50 MB. Porta and raw
/// PTY runs alternate, and the ratio is taken per pair, so a shared machine's drifting load
/// hits both sides alike.
async fn throughput(
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
async fn echo(stack: &Stack, ws: &mut Ws, server: &str, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
async fn stall(stack: &Stack, server: &str, (bpid, gpid): (u32, u32), rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
async fn idle_terminals(
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

/// Backend memory per idle bridge, with 1000 simulated bridges connected.
async fn idle_bridges(stack: &Stack, bpid: u32, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let api = Api::login(&stack.backend.url, "admin", ADMIN_PASSWORD).await?;
    let mut tokens = Vec::with_capacity(SIM_BRIDGES);
    for _ in 0..SIM_BRIDGES {
        tokens.push(enrollment_token(&api).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(bpid);
    let mut sims = Vec::with_capacity(SIM_BRIDGES);
    for token in tokens {
        sims.push(sim_bridge(&stack.backend.url, token).await?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let online = api.servers().await?.iter().filter(|s| s["online"].as_bool() == Some(true)).count();
    let per_bridge = rss_kib(bpid).saturating_sub(before) as f64 / SIM_BRIDGES as f64;
    rows.push(row(
        "backend memory per idle bridge (1000)",
        format!("{per_bridge:.1} KiB ({online} online)"),
        "-",
        "<= 64 KiB",
    ));
    for s in sims {
        s.abort();
    }
    Ok(())
}

/// File operations through the full path, as the editor and file manager will use them.
mod files {
    use std::time::Instant;

    use porta_e2e::{Stack, Ws};
    use porta_shared::bridge::{FsFind, FsList, FsRead, FsStat, FsUploadBegin, FsUploadChunk, FsUploadCommit, FsWrite};
    use porta_shared::client::OnServer;
    use porta_shared::types::Base64;

    use super::{Row, median, row};

    const RUNS: usize = 5;

    fn on<T>(server: &str, req: T) -> OnServer<T> {
        OnServer { server: server.to_owned(), req }
    }

    /// Median milliseconds of `RUNS` runs of a block (a macro: the block borrows the socket).
    macro_rules! median_ms {
        ($body:block) => {{
            let mut ms = Vec::new();
            for _ in 0..RUNS {
                let start = Instant::now();
                $body
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            format!("{:.1} ms", median(ms))
        }};
    }

    /// Reads a whole file the way the editor opens it: pieces of at most 512 KiB.
    async fn read_all(ws: &mut Ws, server: &str, path: &str) -> anyhow::Result<usize> {
        let (mut offset, mut total) = (0u64, 0usize);
        loop {
            let req = FsRead { path: path.into(), offset, limit: None };
            let r = ws.call(on(server, req)).await??;
            offset += r.data.0.len() as u64;
            total += r.data.0.len();
            if r.eof {
                return Ok(total);
            }
        }
    }

    /// Saves `data` over `path` as the editor does: against the hash it read, in pieces.
    async fn save(ws: &mut Ws, server: &str, path: &str, data: &[u8], sha: &str) -> anyhow::Result<String> {
        let begin = FsUploadBegin {
            path: path.into(),
            size: data.len() as u64,
            expected_sha256: Some(sha.to_owned()),
            create_new: false,
            mode: None,
        };
        let upload = ws.call(on(server, begin)).await??.upload;
        let mut offset = 0u64;
        for piece in data.chunks(FsWrite::MAX_DATA) {
            let chunk = FsUploadChunk { upload: upload.clone(), offset, data: Base64(piece.to_vec()) };
            ws.call(on(server, chunk)).await??;
            offset += piece.len() as u64;
        }
        Ok(ws.call(on(server, FsUploadCommit { upload, sha256: None })).await??.sha256)
    }

    pub async fn run(stack: &Stack, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let server = stack.server_id.clone();
        let dir = tempfile::tempdir()?;
        let d = dir.path().to_path_buf();
        let p = |name: &str| d.join(name).to_string_lossy().into_owned();
        std::fs::create_dir(d.join("list"))?;
        for i in 0..10_000 {
            std::fs::write(d.join(format!("list/entry-{i:05}.txt")), b"")?;
        }
        let one_mb: Vec<u8> = (0..1_000_000u32).map(|i| b"porta editor bench\n"[(i % 19) as usize]).collect();
        std::fs::write(d.join("1mb.txt"), &one_mb)?;
        std::fs::write(d.join("10mb.txt"), one_mb.repeat(10))?;
        for i in 0..50_000 {
            let sub = d.join(format!("tree/pkg{}/mod{}", i % 50, i % 500 / 50));
            std::fs::create_dir_all(&sub)?;
            std::fs::write(sub.join(format!("source_{i}.rs")), b"")?;
        }
        let mut ws = stack.api.ws().await?;

        let list = median_ms!({
            let l = ws.call(on(&server, FsList { path: p("list"), hidden: false })).await??;
            anyhow::ensure!(l.entries.len() == 10_000, "listed {}", l.entries.len());
        });
        rows.push(row("list a folder of 10,000 entries", list, "-", "-"));
        for (name, size) in [("1mb.txt", 1_000_000), ("10mb.txt", 10_000_000)] {
            let open = median_ms!({
                anyhow::ensure!(read_all(&mut ws, &server, &p(name)).await? == size, "short read");
            });
            rows.push(row(&format!("open a {} MB file", size / 1_000_000), open, "-", "-"));
        }
        let stat = FsStat { path: p("1mb.txt"), hash: true };
        let mut sha = ws.call(on(&server, stat)).await??.sha256.unwrap_or_default();
        let saved = median_ms!({
            sha = save(&mut ws, &server, &p("1mb.txt"), &one_mb, &sha).await?;
        });
        rows.push(row("save a 1 MB file (hash-checked)", saved, "-", "-"));
        let find = median_ms!({
            let req = FsFind { path: p("tree"), query: "pkg7mod3src_4".into(), hidden: false, limit: None };
            let found = ws.call(on(&server, req)).await??;
            anyhow::ensure!(found.scanned == 50_000 && !found.matches.is_empty(), "scanned {}", found.scanned);
        });
        rows.push(row("fuzzy-find in a 50,000-file tree", find, "-", "-"));
        Ok(())
    }
}

/// The browser app: its size, how soon a terminal is usable after navigating, and how fast
/// output reaches the screen through xterm.js.
mod browser {
    use std::time::{Duration, Instant};

    use anyhow::{Context as _, bail};
    use fantoccini::{Client, Locator};
    use porta_e2e::browser::{Browser, rendered_bytes, run_command, sign_in, terminal_text};
    use porta_e2e::{Stack, ui_dir};

    use super::{FLOOD_BYTES, Row, T, flood_command, median, row};

    const NAVIGATIONS: usize = 5;
    const FLOODS: usize = 3;

    /// On a stack of its own: a server left with the other sections' terminals would measure
    /// them instead.
    pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
        sizes(rows)?;
        let stack = Stack::start(quiet, &[]).await?;
        let browser = Browser::start(1280, 800).await?;
        let result = measure(&browser.client, &stack, rows).await;
        browser.close().await;
        result
    }

    fn sizes(rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let a = ui_dir()?.join("a");
        let assets = std::fs::read_dir(&a)?.next().context("no built assets")??.path();
        let size = |name: &str| std::fs::metadata(assets.join(name)).map(|m| m.len() as f64 / 1024.0);
        let (raw, gz, br) =
            (size("porta_frontend_bg.wasm")?, size("porta_frontend_bg.wasm.gz")?, size("porta_frontend_bg.wasm.br")?);
        rows.push(row("app wasm size (raw / gzip / brotli)", format!("{raw:.0} / {gz:.0} / {br:.0} KiB"), "-", "-"));
        let (mut chunks, mut on_demand) = (0, 0.0);
        for entry in std::fs::read_dir(&assets)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".wasm") && name != "porta_frontend_bg.wasm" {
                chunks += 1;
                on_demand += size(&format!("{name}.br")).or_else(|_| size(&name))?;
            }
        }
        rows.push(row(
            &format!("pages and panels loaded when first shown ({chunks} chunks, brotli)"),
            format!("{on_demand:.0} KiB"),
            "-",
            "-",
        ));
        Ok(())
    }

    /// What a first visit downloads, as the browser counts it (compressed bodies of the page
    /// and everything under `/a/`): a fresh profile signs in, sees the dashboard and opens a
    /// terminal.
    async fn first_visit(c: &Client, stack: &Stack) -> anyhow::Result<f64> {
        sign_in(c, &stack.backend.url).await?;
        c.wait().at_most(T).for_element(Locator::Css("li.server[data-status=online] a")).await?.click().await?;
        c.wait().at_most(T).for_element(Locator::Css(".tab.active[data-state=live]")).await?;
        let bytes = c
            .execute(
                "return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]\
                   .filter(e => e.entryType === 'navigation' || new URL(e.name).pathname.startsWith('/a/'))\
                   .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0);",
                vec![],
            )
            .await?;
        bytes.as_f64().map(|b| b / 1024.0).context("the page did not say what it downloaded")
    }

    /// Polls until the active terminal shows `needle`.
    async fn wait_text(c: &Client, needle: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + T;
        while !terminal_text(c).await?.contains(needle) {
            if Instant::now() > deadline {
                bail!("the terminal never showed {needle:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    async fn measure(c: &Client, stack: &Stack, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let first = first_visit(c, stack).await?;
        rows.push(row(
            "first visit download (sign-in to a terminal, brotli)",
            format!("{first:.0} KiB"),
            "-",
            "<= 450 KiB",
        ));
        let page = format!("{}/servers/{}", stack.backend.url, stack.server_id);
        // Navigation until a command typed in the terminal has echoed back; the first load
        // fills the browser's cache, as for anyone who has used Porta before.
        let mut usable = Vec::new();
        for i in 0..=NAVIGATIONS {
            let start = Instant::now();
            c.goto(&page).await?;
            // WebDriver waits poll every 250 ms unless told otherwise.
            let live = Locator::Css(".tab.active[data-state=live]");
            c.wait().at_most(T).every(Duration::from_millis(5)).for_element(live).await?;
            run_command(c, &format!("echo nav-$((1000+{i}))")).await?;
            wait_text(c, &format!("\nnav-{}", 1000 + i)).await?;
            if i > 0 {
                usable.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        rows.push(row("navigation to usable terminal (cached)", format!("{:.0} ms", median(usable)), "-", "-"));

        let ceiling = xterm_alone(c).await?;
        let mut rates = Vec::new();
        for _ in 0..FLOODS {
            // Timed inside the page, so that polling from here does not load its main thread.
            let arm = format!(
                "const target = (window.portaRenderedBytes || 0) + {FLOOD_BYTES};\
                 window.benchStart = performance.now(); window.benchEnd = null;\
                 const timer = setInterval(() => {{\
                   if ((window.portaRenderedBytes || 0) >= target) {{\
                     window.benchEnd = performance.now(); clearInterval(timer);\
                   }}\
                 }}, 5);"
            );
            c.execute(&arm, vec![]).await?;
            let start = Instant::now();
            run_command(c, &flood_command()).await?;
            let ms = loop {
                let end = c.execute("return window.benchEnd && window.benchEnd - window.benchStart", vec![]).await?;
                if let Some(ms) = end.as_f64() {
                    break ms;
                }
                if start.elapsed() > T * 2 {
                    bail!("the browser rendered only part of the flood: {} bytes", rendered_bytes(c).await?);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            rates.push(FLOOD_BYTES as f64 / ms / 1000.0);
            wait_text(c, "FLOOD-42-DONE").await?;
            run_command(c, "clear").await?;
        }
        rows.push(row(
            "browser-rendered throughput, 50 MB",
            format!("{:.1} MB/s", median(rates)),
            &format!("xterm.js alone {ceiling:.1} MB/s"),
            "-",
        ));
        Ok(())
    }

    /// How fast xterm.js parses the same flood in this browser with no network at all: the
    /// most any terminal on this page could show.
    async fn xterm_alone(c: &Client) -> anyhow::Result<f64> {
        let script = format!(
            r#"const done = arguments[arguments.length - 1];
            import("@xterm/xterm").then(({{ Terminal }}) => {{
              const el = document.createElement("div");
              el.style.cssText = "position:fixed;left:0;top:0;width:800px;height:600px;opacity:0";
              document.body.appendChild(el);
              const term = new Terminal({{ scrollback: 10000 }});
              term.open(el);
              const line = new TextEncoder().encode("porta bench: the quick brown fox jumps over the lazy dog 0123456789\r\n");
              const chunk = new Uint8Array(65536);
              for (let i = 0; i < chunk.length; i++) chunk[i] = line[i % line.length];
              const total = {FLOOD_BYTES};
              let queued = 0, parsed = 0;
              const start = performance.now();
              const pump = () => {{
                while (queued - parsed < 262144 && queued < total) {{
                  queued += chunk.length;
                  term.write(chunk, () => {{
                    parsed += chunk.length;
                    if (parsed >= total) {{
                      const ms = performance.now() - start;
                      term.dispose(); el.remove();
                      done(total / ms / 1000);
                    }} else pump();
                  }});
                }}
              }};
              pump();
            }});"#
        );
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(Some(T), None, None);
        c.update_timeouts(timeouts).await?;
        let v = c.execute_async(&script, vec![]).await?;
        v.as_f64().context("xterm.js measurement returned no number")
    }
}

fn print_table(rows: &[Row]) {
    let w0 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
    let w2 = rows.iter().map(|r| r.ceiling.len()).max().unwrap_or(0).max(15);
    println!();
    println!("| {:w0$} | {:w1$} | {:w2$} | target |", "benchmark (median of runs)", "Porta", "machine ceiling");
    println!("|{}|{}|{}|--------|", "-".repeat(w0 + 2), "-".repeat(w1 + 2), "-".repeat(w2 + 2));
    for r in rows {
        println!("| {:w0$} | {:w1$} | {:w2$} | {} |", r.name, r.value, r.ceiling, r.target);
    }
}

/// The assistant's path: how long until the first piece of an answer reaches a watching
/// socket, and how fast a long answer streams through, against the same model server read
/// directly (the ceiling); and an agent API command's round trip against spawning it locally.
mod assistant {
    use std::time::{Duration, Instant};

    use futures_util::StreamExt as _;
    use porta_e2e::llm::{Reply, ScriptedLlm};
    use porta_e2e::{Stack, Ws};
    use porta_shared::client::{ChatWatch, ClientEvent};
    use serde_json::json;

    use super::{Row, T, median, row};

    const RUNS: usize = 5;
    /// Pieces in the long answer.
    const PIECES: usize = 2000;

    /// Reads the model server directly: (ms to the first piece, pieces per second).
    async fn direct(llm: &ScriptedLlm, reply: Reply) -> anyhow::Result<(f64, f64)> {
        llm.push(reply);
        let start = Instant::now();
        let body = json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
        let resp = reqwest::Client::new().post(format!("{}/chat/completions", llm.url)).json(&body).send().await?;
        let mut stream = resp.bytes_stream();
        let (mut first, mut pieces) = (None, 0usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let n = String::from_utf8_lossy(&chunk).matches("\"content\":\"x").count();
            if n > 0 && first.is_none() {
                first = Some(start.elapsed());
            }
            pieces += n;
        }
        let total = start.elapsed().as_secs_f64();
        Ok((first.unwrap_or_default().as_secs_f64() * 1e3, pieces as f64 / total))
    }

    /// Through Porta, in a conversation already watched: send, and time the deltas until the
    /// answer is complete.
    async fn through(
        stack: &Stack,
        ws: &mut Ws,
        id: &str,
        llm: &ScriptedLlm,
        reply: Reply,
    ) -> anyhow::Result<(f64, f64)> {
        llm.push(reply);
        let start = Instant::now();
        let q = "mutation($c: String!) { sendChatMessage(input: { conversationId: $c, text: \"again\" }) { conversation { id } } }";
        let v = stack.api.graphql(q, json!({ "c": id })).await?;
        anyhow::ensure!(v["errors"].is_null(), "{v}");
        let (mut first, mut chars) = (None, 0usize);
        loop {
            let ev = ws
                .wait_event(
                    |e| {
                        matches!(e, ClientEvent::ChatDelta(d) if d.conversation == id)
                            || matches!(e, ClientEvent::ChatChanged(c) if c.conversation == id && c.finished)
                    },
                    T,
                )
                .await?;
            match ev {
                ClientEvent::ChatDelta(d) => {
                    first.get_or_insert_with(|| start.elapsed());
                    chars = chars.max(d.offset as usize + d.text.len());
                }
                _ => break,
            }
        }
        let total = start.elapsed().as_secs_f64();
        Ok((first.unwrap_or_default().as_secs_f64() * 1e3, chars as f64 / total))
    }

    /// A conversation to measure in: started, its first answer complete, watched.
    async fn conversation(stack: &Stack, ws: &mut Ws, workspace: &str, llm: &ScriptedLlm) -> anyhow::Result<String> {
        llm.push(Reply::text("ready", 5, Duration::ZERO));
        let q = "mutation($w: String!) { sendChatMessage(input: { workspaceId: $w, text: \"hi\" }) { conversation { id } } }";
        let v = stack.api.graphql(q, json!({ "w": workspace })).await?;
        let id = v["data"]["sendChatMessage"]["conversation"]["id"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(!id.is_empty(), "{v}");
        let watching = ws.call(ChatWatch { conversation: id.clone() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        // The first answer's events are read to its end (none is part of a measurement).
        if watching.message.is_some() {
            loop {
                let ev = ws
                    .wait_event(
                        |e| {
                            matches!(e, ClientEvent::ChatDelta(d) if d.conversation == id)
                                || matches!(e, ClientEvent::ChatChanged(c) if c.conversation == id)
                        },
                        T,
                    )
                    .await?;
                if matches!(ev, ClientEvent::ChatChanged(c) if c.finished) {
                    break;
                }
            }
        }
        Ok(id)
    }

    pub async fn run(stack: &Stack, llm: &ScriptedLlm, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
        let workspace = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
        let mut ws = stack.api.ws().await?;
        let id = conversation(stack, &mut ws, &workspace, llm).await?;
        let short = || Reply::text("x", 1, Duration::ZERO);
        let long = || Reply::Text { pieces: vec!["x".to_owned(); PIECES], pace: Duration::ZERO };
        let (mut first_direct, mut first_porta, mut rate_direct, mut rate_porta) = (vec![], vec![], vec![], vec![]);
        for _ in 0..RUNS {
            first_direct.push(direct(llm, short()).await?.0);
            first_porta.push(through(stack, &mut ws, &id, llm, short()).await?.0);
            rate_direct.push(direct(llm, long()).await?.1);
            rate_porta.push(through(stack, &mut ws, &id, llm, long()).await?.1);
        }
        rows.push(row(
            "assistant: first piece of an answer",
            format!("{:.1} ms", median(first_porta)),
            &format!("model server direct {:.1} ms", median(first_direct)),
            "-",
        ));
        rows.push(row(
            &format!("assistant: streaming a {PIECES}-piece answer"),
            format!("{:.0} pieces/s", median(rate_porta)),
            &format!("direct {:.0} pieces/s", median(rate_direct)),
            "-",
        ));

        // The agent API's run_bash round trip, against spawning the same command here.
        let q = "mutation { createApiToken(name: \"bench\", scopes: [\"read\", \"terminal\"]) { token } }";
        let v = stack.api.graphql(q, json!({})).await?;
        let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
        let http = reqwest::Client::new();
        let (mut api, mut local) = (vec![], vec![]);
        for _ in 0..RUNS * 4 {
            let start = Instant::now();
            let resp = http
                .post(format!("{}/api/v1/run_bash", stack.backend.url))
                .header("X-PORTA-TOKEN", &token)
                .json(&json!({ "agent_id": "bench", "server_id": stack.server_id, "command": "true" }))
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "run_bash: {}", resp.text().await?);
            api.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            tokio::process::Command::new("sh").args(["-c", "true"]).status().await?;
            local.push(start.elapsed().as_secs_f64() * 1e3);
        }
        rows.push(row(
            "agent API: run_bash `true` round trip (policy checked)",
            format!("{:.1} ms", median(api)),
            &format!("local spawn {:.1} ms", median(local)),
            "-",
        ));

        // What the command policy costs: a deploy line (six commands behind sudo, env,
        // timeout and bash -c) judged by the default rules, parse and all.
        let policy = porta_backend::policy::Policy::default().compile().map_err(|e| anyhow::anyhow!(e))?;
        let line = "sudo -u deploy env RUST_LOG=info timeout 600 bash -c 'cd /srv/app && git pull --ff-only && \
                    cargo build --release 2>&1 | tail -20' && systemctl restart app";
        let mut judged = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            let verdict = policy.evaluate(line);
            judged.push(start.elapsed().as_secs_f64() * 1e6);
            anyhow::ensure!(verdict.tier == porta_backend::policy::Tier::Ask, "{verdict:?}");
        }
        rows.push(row(
            "command policy: judge a 6-command deploy line",
            format!("{:.0} µs", median(judged)),
            "-",
            "<= 5 ms",
        ));
        Ok(())
    }
}

/// Telemetry: ingest with a thousand simulated bridges, chart queries over a month of data,
/// and what a server costs to keep.
mod telemetry {
    use std::time::{Duration, Instant};

    use porta_backend::db::{Store, StoredPoint};
    use porta_backend::telemetry::Telemetry;
    use porta_backend::telemetry::points::{Point, Res};
    use porta_e2e::{ADMIN_PASSWORD, Api, Backend};
    use porta_shared::Envelope;
    use porta_shared::bridge::BridgeEvent;
    use porta_shared::telemetry::{DiskSample, NetSample, ProcessSample, Sample};

    use super::{Row, SIM_BRIDGES, clk_tck, cpu_ticks, enrollment_token, median, row, sim_connect, sim_serve};

    const RUNS: usize = 7;
    const DAY_MS: i64 = 86_400_000;

    /// A sample as a busy four-core machine would send it.
    fn sample_message() -> String {
        let sample = Sample {
            ts_ms: 0,
            interval_ms: 5000,
            cpu: 37.5,
            cores: vec![30.0, 45.0, 40.0, 35.0],
            load: [1.2, 0.9, 0.7],
            memory_total: 16 << 30,
            memory_used: 9 << 30,
            swap_total: 2 << 30,
            swap_used: 1 << 28,
            disks: vec![
                DiskSample { mount: "/".into(), total: 200 << 30, used: 120 << 30 },
                DiskSample { mount: "/data".into(), total: 1 << 40, used: 1 << 39 },
            ],
            disk_read_bps: 1.5e6,
            disk_write_bps: 3.2e6,
            nets: vec![NetSample { name: "eth0".into(), rx_bps: 2.5e5, tx_bps: 1.1e5 }],
            uptime_s: 864_000,
            processes: 312,
            top: (0..16)
                .map(|i| ProcessSample { pid: 1000 + i, name: format!("worker-{i}"), cpu: 5.0, memory: 200 << 20 })
                .collect(),
        };
        Envelope::<BridgeEvent>::event(sample).encode()
    }

    pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let backend = Backend::start(quiet).await?;
        let bpid = backend.pid().unwrap_or_default();
        let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
        let message = sample_message();
        rows.push(row("sample size on the wire", format!("{} B", message.len()), "-", "-"));
        let store = Store::connect(&backend.database_url()).await?;

        // A thousand bridges, each reporting every 5 s (spread over the interval), then every 1 s.
        for (every, label) in [(Duration::from_secs(5), "5 s"), (Duration::from_secs(1), "1 s")] {
            let mut tokens = Vec::with_capacity(SIM_BRIDGES);
            for _ in 0..SIM_BRIDGES {
                tokens.push(enrollment_token(&api).await?);
            }
            let mut sims = Vec::with_capacity(SIM_BRIDGES);
            for (i, token) in tokens.into_iter().enumerate() {
                let (ws, _) = sim_connect(&backend.url, token).await?;
                let first = every.mul_f64(i as f64 / SIM_BRIDGES as f64);
                sims.push(tokio::spawn(sim_serve(ws, Some((first, every, message.clone())))));
            }
            tokio::time::sleep(every * 2).await;
            let stored = |s: &Store| {
                let s = s.clone();
                async move {
                    let stats = s.point_stats(None).await?;
                    anyhow::Ok(stats.iter().find(|p| p.res == 0).map_or(0, |p| p.points))
                }
            };
            let (cpu0, n0, t0) = (cpu_ticks(bpid), stored(&store).await?, Instant::now());
            let window = Duration::from_secs(20);
            tokio::time::sleep(window).await;
            let (cpu1, n1, secs) = (cpu_ticks(bpid), stored(&store).await?, t0.elapsed().as_secs_f64());
            let offered = SIM_BRIDGES as f64 / every.as_secs_f64();
            let rate = (n1 - n0) as f64 / secs;
            let cpu = (cpu1 - cpu0) as f64 / clk_tck() / secs * 100.0;
            rows.push(row(
                &format!("telemetry ingest, 1000 bridges every {label}"),
                format!("{rate:.0} samples/s stored, backend CPU {cpu:.0} %"),
                &format!("{offered:.0} offered"),
                "all stored",
            ));
            for s in sims {
                s.abort();
            }
        }

        // A month of one server's samples, rolled up and pruned as the backend does.
        let server = store.all_server_ids().await?.into_iter().next().unwrap_or_default();
        let now = porta_backend::now_ms();
        let start = now - 30 * DAY_MS;
        let values = Point::sample(0, Sample::default().values()).encode();
        let mut batch = Vec::with_capacity(20_000);
        let mut ts = start;
        let seeding = Instant::now();
        while ts < now {
            batch.push(StoredPoint { server_id: server.clone(), res: Res::Raw.secs(), ts, n: 1, data: values.clone() });
            if batch.len() == 20_000 {
                store.put_points(&batch).await?;
                batch.clear();
            }
            ts += 5_000;
        }
        store.put_points(&batch).await?;
        let telemetry = Telemetry::new(store.clone());
        let rolled = Instant::now();
        telemetry.maintain(now).await?;
        let maintain_s = rolled.elapsed().as_secs_f64();
        rows.push(row(
            "roll-up of a month of one server's samples",
            format!("{maintain_s:.1} s (seeded in {:.1} s)", seeding.elapsed().as_secs_f64() - maintain_s),
            "-",
            "-",
        ));
        let q = "query($s: String!, $w: Window) { serverMetrics(serverId: $s, window: $w) { timestamps } }";
        for w in ["H1", "H24", "D7", "D30"] {
            let mut ms = Vec::new();
            let mut points = 0;
            for _ in 0..RUNS {
                let t = Instant::now();
                let v = api.graphql(q, serde_json::json!({ "s": server, "w": w })).await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                points = v["data"]["serverMetrics"]["timestamps"].as_array().map_or(0, Vec::len);
            }
            let target = if w == "D30" { "<= 50 ms" } else { "-" };
            rows.push(row(
                &format!("chart query, {w} (all metrics)"),
                format!("{:.1} ms ({points} points)", median(ms)),
                "-",
                target,
            ));
        }

        // What a server costs: rows and bytes per resolution for the seeded server, scaled to
        // the retention of each.
        let stats = store.point_stats(Some(&server)).await?;
        let per_row =
            |res: i64| stats.iter().find(|p| p.res == res).map_or(0.0, |p| p.bytes as f64 / p.points.max(1) as f64);
        let raw_day = per_row(0) * 17_280.0;
        let steady =
            raw_day * 2.0 + per_row(60) * 1_440.0 * 7.0 + per_row(600) * 144.0 * 30.0 + per_row(3600) * 24.0 * 90.0;
        rows.push(row(
            "telemetry storage per server",
            format!(
                "{:.2} MB/day of samples; {:.1} MB held (48 h raw, 7 d minutes, 30 d ten minutes, 90 d hours) + {:.0} B/day kept",
                raw_day / 1e6,
                steady / 1e6,
                per_row(86_400)
            ),
            "-",
            "bounded",
        ));
        backend.stop().await;
        Ok(())
    }
}
