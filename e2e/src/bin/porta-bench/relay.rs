//! The relay through the whole path (client → backend → bridge → PTY) beside ttyd (one hop)
//! and the raw PTY, in the same run: a flood's throughput and CPU, keystroke echo (idle, and
//! beside a flooding terminal); then a stalled client and idle terminals.
//!
//! Porta is driven by two clients: a *batched* one that acknowledges every 32 KiB, and a
//! *fast* one that also acknowledges whenever it has consumed everything it holds, as the
//! page does on a quick machine (a CLI client or a phone on a good network behaves alike).

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use porta_e2e::{Stack, Ws};
use porta_shared::client::{self, StreamOpened};
use porta_shared::types::{StreamId, TermSize};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::sync::oneshot;

use super::ttyd::Ttyd;
use super::{
    FLOOD_BYTES, IDLE_TERMINALS, KEYSTROKES, METRICS_TOKEN, Row, T, THROUGHPUT_RUNS, Versus, context_switches,
    cpu_ticks, flood_command, median, percentile, row, rss_kib,
};

/// A terminal the bench types into and reads from, whichever product serves it.
pub(crate) trait Term {
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Reads until more output has come.
    fn more(&mut self, within: Duration) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// The newest output (at most about [`KEEP_AT_MOST`] bytes of it).
    fn received(&self) -> &[u8];
    /// Bytes of output so far.
    fn total(&self) -> u64;
    /// Keeps no more output: a flooding viewer acknowledges but keeps nothing, so the bench
    /// measures the relay, not its own buffer growth.
    fn keep_nothing(&mut self);
}

/// Output a bench client keeps: enough to find a marker or an echo, never a whole flood (the
/// client's own copying would be measured instead of the relay).
pub(crate) const KEEP_AT_MOST: usize = 64 * 1024;

/// A Porta terminal on a socket of its own.
pub(crate) struct PortaTerm {
    pub(crate) ws: Ws,
    pub(crate) stream: StreamId,
}

impl PortaTerm {
    /// Opens a terminal on a new socket; `fast` makes the client acknowledge when idle.
    pub(crate) async fn open(stack: &Stack, server: &str, fast: bool) -> anyhow::Result<Self> {
        Self::open_through(&stack.api, server, fast).await
    }

    /// The same, through the backend `api` speaks to.
    pub(crate) async fn open_through(api: &porta_e2e::Api, server: &str, fast: bool) -> anyhow::Result<Self> {
        let mut ws = api.ws().await?;
        ws.ack_when_idle = fast;
        ws.keep_at_most = Some(KEEP_AT_MOST);
        let stream = open(&mut ws, server).await?.stream;
        Ok(Self { ws, stream })
    }

    /// Interrupts what runs (a flood), then closes.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.send(b"\x03").await?;
        self.close().await
    }

    pub(crate) async fn close(mut self) -> anyhow::Result<()> {
        self.ws.call(client::TermClose::Stream { stream: self.stream }).await??;
        self.ws.close().await;
        Ok(())
    }
}

impl Term for PortaTerm {
    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.ws.input(self.stream, bytes).await
    }

    async fn more(&mut self, within: Duration) -> anyhow::Result<()> {
        self.ws.wait_grown(self.stream, within).await
    }

    fn received(&self) -> &[u8] {
        self.ws.output.get(&self.stream).map_or(&[][..], Vec::as_slice)
    }

    fn total(&self) -> u64 {
        self.ws.next.get(&self.stream).copied().unwrap_or(0)
    }

    fn keep_nothing(&mut self) {
        self.ws.keep_output = false;
    }
}

pub(crate) async fn open(ws: &mut Ws, server: &str) -> anyhow::Result<StreamOpened> {
    let req = client::TermOpen {
        server: server.to_owned(),
        shell: Some("/bin/bash".into()),
        args: vec!["--noprofile".into(), "--norc".into()],
        cwd: None,
        size: TermSize { cols: 120, rows: 40 },
        env: [("PS1".to_string(), "$ ".to_string())].into(),
        container: None,
    };
    ws.call(req).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))
}

/// Reads until the output holds `needle`.
async fn wait_for(t: &mut impl Term, needle: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut searched = 0u64;
    loop {
        // Only what came since the last look, and the needle's length before it.
        let (out, total) = (t.received(), t.total());
        let fresh = usize::try_from(total - searched).unwrap_or(usize::MAX).saturating_add(needle.len());
        if finder.find(&out[out.len().saturating_sub(fresh)..]).is_some() {
            return Ok(());
        }
        searched = total;
        let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
        if let Err(e) = t.more(left).await {
            let out = t.received();
            let tail = String::from_utf8_lossy(&out[out.len().saturating_sub(300)..]).into_owned();
            anyhow::bail!("{e:#} while waiting for {needle:?}; output ends with {tail:?}");
        }
    }
}

/// Reads whatever comes for `d`.
async fn settle(t: &mut impl Term, d: Duration) {
    let until = Instant::now() + d;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if t.more(left).await.is_err() {
            break;
        }
    }
}

pub(crate) async fn ready(t: &mut impl Term) -> anyhow::Result<()> {
    t.send(b"echo READY-$((1+1))\n").await?;
    wait_for(t, "READY-2", T).await
}

/// Seconds to push the flood through, and the bytes that came.
pub(crate) async fn flood(t: &mut impl Term) -> anyhow::Result<(f64, u64)> {
    ready(t).await?;
    let start = Instant::now();
    t.send(format!("{}\n", flood_command()).as_bytes()).await?;
    let before = t.total();
    wait_for(t, "FLOOD-42-DONE", T).await?;
    Ok((start.elapsed().as_secs_f64(), t.total() - before))
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
pub(crate) async fn echo_latency(t: &mut impl Term) -> anyhow::Result<Vec<f64>> {
    let mut rtts = Vec::with_capacity(KEYSTROKES);
    for i in 0..KEYSTROKES {
        if i % 50 == 0 {
            // Clear the line now and then so the prompt never wraps.
            t.send(b"\x15").await?;
            settle(t, Duration::from_millis(20)).await;
        }
        let start = Instant::now();
        t.send(b"x").await?;
        loop {
            let before = t.total();
            t.more(Duration::from_secs(10)).await?;
            let (out, fresh) = (t.received(), usize::try_from(t.total() - before).unwrap_or(usize::MAX));
            if out[out.len().saturating_sub(fresh)..].contains(&b'x') {
                break;
            }
        }
        rtts.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    t.send(b"\x15").await?;
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

/// A shell on a PTY read by this process, with `yes` flooding another PTY read by a thread
/// of its own while `flooding` (the raw machine's view of "another terminal floods").
fn raw_pty_echo(flooding: bool) -> anyhow::Result<Vec<f64>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flood = flooding.then(|| raw_pty_yes(stop.clone())).transpose()?;
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
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = flood {
        let _ = f.join();
    }
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

/// `yes` on a PTY, read as fast as a thread can until `stop`.
fn raw_pty_yes(stop: Arc<AtomicBool>) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let pair = native_pty_system().openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })?;
    let mut cmd = CommandBuilder::new("yes");
    cmd.arg("flooding the other terminal");
    let mut child = pair.slave.spawn_command(cmd)?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader()?;
    Ok(std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) && reader.read(&mut buf).is_ok_and(|n| n > 0) {}
        let _ = child.kill();
        let _ = child.wait();
        drop(pair.master);
    }))
}

/// The median, over runs, of each percentile.
pub(crate) fn median_lat(runs: &[Vec<f64>]) -> [f64; 3] {
    [0.5, 0.95, 0.99].map(|p| median(runs.iter().map(|r| percentile(r, p)).collect()))
}

fn fmt_lat3(l: [f64; 3]) -> String {
    format!("{:.2} / {:.2} / {:.2}", l[0], l[1], l[2])
}

/// The relay's counters from `/metrics`: frames and bytes to clients, frames from clients.
async fn counters(stack: &Stack) -> anyhow::Result<[f64; 3]> {
    let metrics = stack.backend.metrics(METRICS_TOKEN).await?;
    let read = |name: &str| porta_e2e::metric(&metrics, name).unwrap_or(0.0);
    Ok([
        read("porta_relay_frames_to_clients_total"),
        read("porta_relay_bytes_to_clients_total"),
        read("porta_relay_frames_to_bridges_total"),
    ])
}

/// What one flood cost, per side.
#[derive(Default)]
struct Flood {
    mbps: Vec<f64>,
    /// CPU-s per 50 MB.
    cpu: Vec<f64>,
    /// Of which the backend's (Porta only).
    backend_cpu: Vec<f64>,
    /// Context switches of backend and bridge per MB (Porta only).
    switches: Vec<f64>,
    /// Bytes per output frame, and acknowledgements per MB.
    frame: Vec<f64>,
    acks: Vec<f64>,
}

impl Flood {
    fn add(&mut self, (secs, bytes): (f64, u64), cpu_s: f64) {
        self.mbps.push(bytes as f64 / secs / 1e6);
        self.cpu.push(cpu_s * FLOOD_BYTES as f64 / bytes as f64);
    }
}

/// One Porta flood with a batched or fast client; CPU of backend + bridge, and the frames.
async fn porta_flood(
    stack: &Stack,
    server: &str,
    fast: bool,
    pids: (u32, u32),
    tck: f64,
    into: &mut Flood,
) -> anyhow::Result<()> {
    let mut t = PortaTerm::open(stack, server, fast).await?;
    ready(&mut t).await?;
    let switches = || context_switches(pids.0) + context_switches(pids.1);
    let before = (cpu_ticks(pids.0), cpu_ticks(pids.1), counters(stack).await?, switches());
    let run = flood(&mut t).await?;
    into.switches.push((switches() - before.3) as f64 / (run.1 as f64 / 1e6));
    let backend = (cpu_ticks(pids.0) - before.0) as f64 / tck;
    let spent = backend + (cpu_ticks(pids.1) - before.1) as f64 / tck;
    let after = counters(stack).await?;
    let before = before.2;
    let frames = after[0] - before[0];
    into.add(run, spent);
    into.backend_cpu.push(backend * FLOOD_BYTES as f64 / run.1 as f64);
    into.frame.push((after[1] - before[1]) / frames.max(1.0));
    into.acks.push((after[2] - before[2]) / (run.1 as f64 / 1e6));
    t.ws.output.clear();
    t.close().await
}

/// Throughput of a 50 MB flood and its CPU: Porta with each client, ttyd, and the raw PTY in
/// turn, so a shared machine's drifting load hits every side alike.
pub(crate) async fn throughput(
    stack: &Stack,
    server: &str,
    pids: (u32, u32),
    tck: f64,
    ttyd: Option<&Ttyd>,
    table: &mut Vec<Versus>,
) -> anyhow::Result<()> {
    let (mut batched, mut fast, mut peer, mut raw) = (Flood::default(), Flood::default(), Flood::default(), Vec::new());
    for _ in 0..THROUGHPUT_RUNS {
        porta_flood(stack, server, false, pids, tck, &mut batched).await?;
        porta_flood(stack, server, true, pids, tck, &mut fast).await?;
        if let Some(ttyd) = ttyd {
            let mut t = ttyd.open().await?;
            ready(&mut t).await?;
            t.frames = 0;
            let before = cpu_ticks(ttyd.pid());
            let run = flood(&mut t).await?;
            peer.add(run, (cpu_ticks(ttyd.pid()) - before) as f64 / tck);
            peer.frame.push(run.1 as f64 / t.frames.max(1) as f64);
            t.close().await;
        }
        let (secs, bytes) = tokio::task::spawn_blocking(raw_pty_flood).await??;
        raw.push(bytes as f64 / secs / 1e6);
    }
    let raw = median(raw);
    let have_peer = !peer.mbps.is_empty();
    let vs = |ours: &[f64], theirs: &[f64]| {
        if have_peer { format!("{:.2}×", median(ours.to_vec()) / median(theirs.to_vec())) } else { "-".into() }
    };
    // One row: a cell for each client and the peer.
    let versus = |name: &str, cell: &dyn Fn(&Flood) -> String, raw: String, ratio: String, target: &str| Versus {
        name: name.into(),
        batched: cell(&batched),
        fast: cell(&fast),
        ttyd: if have_peer { cell(&peer) } else { "-".into() },
        raw,
        ratio,
        target: target.into(),
    };
    let mb = |f: &Flood| {
        let m = median(f.mbps.clone());
        format!("{m:.1} ({:.0} % of raw)", m / raw * 100.0)
    };
    let cpu = |f: &Flood| {
        let split = if f.backend_cpu.is_empty() {
            String::new()
        } else {
            let b = median(f.backend_cpu.clone());
            format!(" ({b:.2} + {:.2})", median(f.cpu.clone()) - b)
        };
        format!("{:.2}{split}", median(f.cpu.clone()))
    };
    let frames = |f: &Flood| {
        let acks = if f.acks.is_empty() {
            String::new()
        } else {
            format!(", {:.0} acks, {:.0} switches/MB", median(f.acks.clone()), median(f.switches.clone()))
        };
        format!("{:.1} KiB{acks}", median(f.frame.clone()) / 1024.0)
    };
    table.push(versus(
        "throughput, 50 MB flood, MB/s",
        &mb,
        format!("{raw:.1}"),
        vs(&fast.mbps, &peer.mbps),
        ">= 1.0× ttyd, >= 85 % of raw",
    ));
    table.push(versus(
        "CPU-s per 50 MB (backend + bridge)",
        &cpu,
        "-".into(),
        vs(&fast.cpu, &peer.cpu),
        "<= 1.0× ttyd",
    ));
    table.push(versus("average output frame", &frames, "-".into(), "-".into(), "-"));
    Ok(())
}

/// Keystroke echo at an idle prompt, then while another terminal (of the same bridge; of the
/// same ttyd; another PTY) floods; then each product's echo beside the *other's* flood, so
/// the two echo paths are also compared under the same load (a flood takes what it can of
/// the machine's two cores, and a faster flood slows every echo on it, ttyd's too). Medians
/// over runs of each percentile.
pub(crate) async fn echo(
    stack: &Stack,
    server: &str,
    ttyd: Option<&Ttyd>,
    table: &mut Vec<Versus>,
) -> anyhow::Result<()> {
    const RUNS: usize = 3;
    let mut lat: [Vec<Vec<f64>>; 4] = Default::default();
    let mut flooded: [Vec<Vec<f64>>; 4] = Default::default();
    // Porta's echo beside ttyd's flood, and ttyd's beside Porta's (fast client).
    let (mut porta_beside_ttyd, mut ttyd_beside_porta) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (i, fast) in [false, true].into_iter().enumerate() {
            let mut t = PortaTerm::open(stack, server, fast).await?;
            ready(&mut t).await?;
            lat[i].push(echo_latency(&mut t).await?);
            let other = PortaTerm::open(stack, server, fast).await?;
            let (l, other) = echo_beside_flood(&mut t, other).await?;
            flooded[i].push(l);
            other.stop().await?;
            t.close().await?;
        }
        if let Some(ttyd) = ttyd {
            let mut t = ttyd.open().await?;
            ready(&mut t).await?;
            lat[2].push(echo_latency(&mut t).await?);
            let (l, other) = echo_beside_flood(&mut t, ttyd.open().await?).await?;
            flooded[2].push(l);
            other.close().await;
            let (l, other) = echo_beside_flood(&mut t, PortaTerm::open(stack, server, true).await?).await?;
            ttyd_beside_porta.push(l);
            other.stop().await?;
            t.close().await;
            let mut t = PortaTerm::open(stack, server, true).await?;
            ready(&mut t).await?;
            let (l, other) = echo_beside_flood(&mut t, ttyd.open().await?).await?;
            porta_beside_ttyd.push(l);
            other.close().await;
            t.close().await?;
        }
        lat[3].push(tokio::task::spawn_blocking(|| raw_pty_echo(false)).await??);
        flooded[3].push(tokio::task::spawn_blocking(|| raw_pty_echo(true)).await??);
    }
    let same_load = "p99 <= ttyd's + 0.5 ms (same load)";
    let rows = [
        ("keystroke echo p50 / p95 / p99, ms", lat, "p99 <= ttyd's + 0.5 ms"),
        ("echo while another terminal floods, ms", flooded.clone(), "p99 <= 5 ms and <= ttyd's"),
        // Both echo paths beside one product's flood: only the echo's path differs.
        ("echo while a ttyd terminal floods, ms", [vec![], porta_beside_ttyd, flooded[2].clone(), vec![]], same_load),
        ("echo while a Porta terminal floods, ms", [vec![], flooded[1].clone(), ttyd_beside_porta, vec![]], same_load),
    ];
    for (name, runs, target) in rows {
        let l = runs.map(|r| (!r.is_empty()).then(|| median_lat(&r)));
        let cell = |x: Option<[f64; 3]>| x.map_or_else(|| "-".into(), fmt_lat3);
        table.push(Versus {
            name: name.into(),
            batched: cell(l[0]),
            fast: cell(l[1]),
            ttyd: cell(l[2]),
            raw: cell(l[3]),
            ratio: match (l[1], l[2]) {
                (Some(f), Some(p)) => format!("p99 {:+.2} ms", f[2] - p[2]),
                _ => "-".into(),
            },
            target: target.into(),
        });
    }
    Ok(())
}

/// `echo`'s latencies while `other` floods; gives `other` back, still flooding's end read.
async fn echo_beside_flood<T: Term + Send + 'static>(
    echo: &mut impl Term,
    mut other: T,
) -> anyhow::Result<(Vec<f64>, T)> {
    ready(&mut other).await?;
    other.keep_nothing();
    let (stop, flood) = flood_beside(other);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let latencies = echo_latency(echo).await;
    let _ = stop.send(());
    let other = flood.await?;
    Ok((latencies?, other))
}

/// Floods `t` with `yes`, read (and acknowledged) as fast as a task can, until told to stop;
/// the task gives the terminal back.
fn flood_beside<T: Term + Send + 'static>(mut t: T) -> (oneshot::Sender<()>, tokio::task::JoinHandle<T>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if t.send(b"yes 'flooding the other terminal'\n").await.is_ok() {
            // Until the flood is under way, then until told to stop.
            let _ = t.more(T).await;
            tokio::select! {
                _ = stopped => {}
                () = async { while t.more(T).await.is_ok() {} } => {}
            }
        }
        t
    });
    (stop, task)
}

/// A client that stops reading for 10 s while its terminal floods.
pub(crate) async fn stall(
    stack: &Stack,
    server: &str,
    (bpid, gpid): (u32, u32),
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut t = PortaTerm::open(stack, server, false).await?;
    ready(&mut t).await?;
    t.send(b"yes 'stalled client flood'\n").await?;
    wait_for(&mut t, "stalled client flood\r\nstalled client flood", T).await?;
    let before = rss_kib(bpid) + rss_kib(gpid);
    t.ws.auto_ack = false;
    let mut peak = before;
    let stall_end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < stall_end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_kib(bpid) + rss_kib(gpid));
    }
    t.ws.auto_ack = true;
    let at = t.ws.next[&t.stream];
    t.ws.ack(t.stream, at).await?;
    t.send(b"\x03").await?;
    t.send(b"echo RESUMED-$((5*5))\n").await?;
    wait_for(&mut t, "RESUMED-25", T).await?;
    rows.push(row(
        "stalled client (10 s, flooding): growth",
        format!("{} KiB, session kept", peak.saturating_sub(before)),
        "-",
        "<= 2048 KiB",
    ));
    t.close().await
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
        idle_ws.input(*s, b"echo READY-$((1+1))\n").await?;
        idle_ws.wait_output(*s, "READY-2", T).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_term = (rss_kib(bpid) + rss_kib(gpid)).saturating_sub(base_rss) as f64 / IDLE_TERMINALS as f64;
    rows.push(row("memory per idle terminal (50 open)", format!("{per_term:.1} KiB"), "-", "<= 64 KiB"));
    idle_ws.close().await;
    Ok(())
}
