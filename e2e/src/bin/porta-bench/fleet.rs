//! A fleet on one backend: thousands of simulated bridges connected at once (what each idle
//! one costs the backend in memory and traffic), telemetry from all of them stored, a
//! terminal on a real bridge among them, a backend restart they all come back from, and what
//! the real bridge costs its own server. `PORTA_BENCH_FLEET` sets the fleet's size (15,000).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use porta_e2e::client::term_open;
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Bridge};
use porta_shared::bridge::{BridgeHandshake, Enroll, Enrolled, Hello};
use porta_shared::{Envelope, Incoming, ProtocolRange};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::bridges::{enrollment_token, refusal};
use super::{Row, clk_tck, cpu_ticks, percentile, row, rss_kib};

const DEFAULT_FLEET: usize = 15_000;
const TELEMETRY_EVERY: Duration = Duration::from_secs(5);
const TERMINALS: usize = 40;

/// The bytes a simulated bridge's socket carried, both ways.
#[derive(Default)]
struct Traffic {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Traffic {
    fn total(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) + self.received.load(Ordering::Relaxed)
    }
}

/// A socket that counts what passes through it.
struct Counted<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.traffic.received.fetch_add((buf.filled().len() - before) as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.traffic.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the fleet's bridges share: how many are connected, what they were refused, whether
/// they report telemetry now.
#[derive(Default)]
struct Fleet {
    connected: AtomicUsize,
    /// Connections attempted while nothing listened (the backend down).
    down: AtomicU64,
    /// Connections that failed otherwise: turned away, reset, timed out.
    refused: AtomicU64,
    telemetry: AtomicBool,
    traffic: Arc<Traffic>,
}

/// Small buffers, as a bridge's link needs: thousands of them live in this one process.
fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

fn hello() -> String {
    Envelope::<BridgeHandshake>::event(Hello {
        protocol: ProtocolRange::ours(),
        agent: "sim-bridge/0".into(),
        instance: uuid::Uuid::new_v4().to_string(),
        capabilities: vec![],
    })
    .encode()
}

/// Exchanges an enrolment token for a credential, as `porta-bridge enroll` does.
async fn enroll(url: &str, token: String) -> anyhow::Result<String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(small_buffers()), false).await?;
    ws.send(Message::text(hello())).await?;
    ws.next().await.context("no welcome")??;
    let req = Envelope::<BridgeHandshake>::request("e", Enroll { token, hostname: "sim".into() });
    ws.send(Message::text(req.encode())).await?;
    let Some(Ok(Message::Text(t))) = ws.next().await else { bail!("no enrolment reply") };
    let Ok(Incoming::<BridgeHandshake>::Reply(reply)) = Incoming::decode(&t) else { bail!("bad enrolment reply") };
    let enrolled: Enrolled = reply.into_response::<Enroll>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = ws.close(None).await;
    Ok(enrolled.credential)
}

/// One simulated bridge for good: connects with its credential, says hello, answers requests
/// with an error, reports a sample every 5 s while the fleet reports (first after `offset`),
/// and reconnects as the real bridge does (0.5 s doubling to 30 s, with jitter).
async fn sim(url: String, credential: String, fleet: Arc<Fleet>, sample: Arc<String>, offset: Duration) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match session(&url, &credential, &fleet, &sample, offset).await {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(e) => {
                let nobody = e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
                let counter = if nobody { &fleet.down } else { &fleet.refused };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        let jitter = backoff.mul_f64(rand::random_range(0.5..1.5));
        tokio::time::sleep(jitter).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One connection, until it closes (`Ok`) or cannot be made (`Err`).
async fn session(url: &str, credential: &str, fleet: &Fleet, sample: &str, offset: Duration) -> anyhow::Result<()> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {credential}").parse()?);
    let addr = url.trim_start_matches("ws://").split('/').next().unwrap_or_default().to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await?;
    let counted = Counted { inner: tcp, traffic: fleet.traffic.clone() };
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, counted, Some(small_buffers())).await?;
    ws.send(Message::text(hello())).await?;
    match ws.next().await {
        Some(Ok(Message::Text(_))) => {}
        _ => bail!("no welcome"),
    }
    fleet.connected.fetch_add(1, Ordering::SeqCst);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, TELEMETRY_EVERY);
    let reason = loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(answer) = refusal(&t) {
                        if ws.send(Message::text(answer)).await.is_err() {
                            break "send failed";
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => break "closed",
            },
            _ = tick.tick() => {
                if fleet.telemetry.load(Ordering::Relaxed) && ws.send(Message::text(sample.to_owned())).await.is_err() {
                    break "send failed";
                }
            }
        }
    };
    fleet.connected.fetch_sub(1, Ordering::SeqCst);
    let _ = reason;
    Ok(())
}

/// The backend's CPU over the last second, in percent of one core.
struct CpuMeter {
    pid: u32,
    ticks: u64,
    at: Instant,
    tck: f64,
}

impl CpuMeter {
    fn new(pid: u32) -> Self {
        Self { pid, ticks: cpu_ticks(pid), at: Instant::now(), tck: clk_tck() }
    }
    fn percent(&mut self) -> f64 {
        let (ticks, at) = (cpu_ticks(self.pid), Instant::now());
        let p = (ticks - self.ticks) as f64 / self.tck / (at - self.at).as_secs_f64() * 100.0;
        (self.ticks, self.at) = (ticks, at);
        p
    }
}

/// Waits until `n` bridges are connected; the time it took, and the backend's CPU each second.
async fn until_connected(fleet: &Fleet, n: usize, bpid: u32, within: Duration) -> anyhow::Result<(Duration, Vec<f64>)> {
    let start = Instant::now();
    let mut cpu = CpuMeter::new(bpid);
    let mut seconds = Vec::new();
    while fleet.connected.load(Ordering::SeqCst) < n {
        if start.elapsed() > within {
            bail!("only {} of {n} bridges connected within {within:?}", fleet.connected.load(Ordering::SeqCst));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        seconds.push(cpu.percent());
    }
    Ok((start.elapsed(), seconds))
}

/// The longest run of consecutive seconds above `limit` percent.
fn longest_above(seconds: &[f64], limit: f64) -> usize {
    seconds.iter().fold((0, 0), |(best, run), p| if *p > limit { (best.max(run + 1), run + 1) } else { (best, 0) }).0
}

pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let size = std::env::var("PORTA_BENCH_FLEET").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_FLEET);
    let mut backend = Backend::start(quiet).await?;
    let bpid = backend.pid().context("backend pid")?;
    let api = Arc::new(Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?);
    let url = format!("{}/bridge/ws", backend.url.replacen("http://", "ws://", 1));

    // Enrol the fleet once, as many servers joining would.
    let enrolling = Instant::now();
    let credentials: Vec<String> = futures_util::stream::iter(0..size)
        .map(|_| {
            let (api, url) = (api.clone(), url.clone());
            async move { enroll(&url, enrollment_token(&api).await?).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let enrol_s = enrolling.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(bpid);

    // All of them connect at once.
    let fleet = Arc::new(Fleet::default());
    let sample = Arc::new(super::telemetry::sample_message());
    let mut sims = Vec::with_capacity(size);
    for (i, credential) in credentials.into_iter().enumerate() {
        let offset = TELEMETRY_EVERY.mul_f64(i as f64 / size as f64);
        sims.push(tokio::spawn(sim(url.clone(), credential, fleet.clone(), sample.clone(), offset)));
    }
    let (took, _) = until_connected(&fleet, size, bpid, Duration::from_secs(600)).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let per_bridge = rss_kib(bpid).saturating_sub(rss_before) as f64 / size as f64;
    rows.push(row(
        &format!("fleet: {size} bridges connect"),
        format!("all in {:.1} s (enrolled in {enrol_s:.0} s)", took.as_secs_f64()),
        "-",
        "-",
    ));
    rows.push(row("fleet: backend memory per idle bridge", format!("{per_bridge:.1} KiB"), "-", "<= 32 KiB"));

    // Idle traffic: heartbeats only.
    let (bytes0, t0) = (fleet.traffic.total(), Instant::now());
    let mut cpu = CpuMeter::new(bpid);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let idle_cpu = cpu.percent();
    let per_s = (fleet.traffic.total() - bytes0) as f64 / t0.elapsed().as_secs_f64() / size as f64;
    rows.push(row(
        "fleet: traffic per idle bridge (heartbeat 10 s)",
        format!("{per_s:.1} B/s; backend CPU {idle_cpu:.0} % of a core"),
        "-",
        "<= 100 B/s",
    ));

    // Every bridge reports every 5 s.
    fleet.telemetry.store(true, Ordering::SeqCst);
    tokio::time::sleep(TELEMETRY_EVERY * 2).await;
    let store = porta_backend::db::Store::connect(&backend.database_url()).await?;
    let stored = || async {
        let stats = store.point_stats(None).await?;
        anyhow::Ok(stats.iter().find(|p| p.res == 0).map_or(0, |p| p.points))
    };
    let (n0, t0) = (stored().await?, Instant::now());
    let mut cpu = CpuMeter::new(bpid);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let ingest_cpu = cpu.percent();
    let rate = (stored().await? - n0) as f64 / t0.elapsed().as_secs_f64();
    let offered = size as f64 / TELEMETRY_EVERY.as_secs_f64();
    rows.push(row(
        "fleet: telemetry every 5 s from every bridge",
        format!("{rate:.0} samples/s stored, backend CPU {ingest_cpu:.0} %"),
        &format!("{offered:.0} offered"),
        "all stored",
    ));

    // A real bridge among them: how fast its terminals open.
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    let server = real_server_id(&api).await?;
    let mut ws = api.ws().await?;
    let mut ms = Vec::with_capacity(TERMINALS);
    for _ in 0..TERMINALS {
        let t = Instant::now();
        let opened = ws.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?;
        ws.input(opened.stream, b"echo fleet-$((6*7))\n").await?;
        ws.wait_output(opened.stream, "fleet-42", Duration::from_secs(30)).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ws.call(porta_shared::client::TermClose::Stream { stream: opened.stream })
            .await?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    ms.sort_by(f64::total_cmp);
    rows.push(row(
        &format!("fleet: open a terminal and echo, beside {size} bridges"),
        format!("p50 {:.1} ms, p99 {:.1} ms", percentile(&ms, 0.5), percentile(&ms, 0.99)),
        "-",
        "p99 <= 50 ms",
    ));

    // The real bridge's own cost on its server, reporting every 5 s.
    let gpid = bridge.pid().context("bridge pid")?;
    let mut cpu = CpuMeter::new(gpid);
    let mut seconds = Vec::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        seconds.push(cpu.percent());
    }
    let avg = seconds.iter().sum::<f64>() / seconds.len() as f64;
    let peak = seconds.iter().copied().fold(0.0, f64::max);
    rows.push(row(
        "bridge on its server: RSS idle, CPU (60 s, telemetry every 5 s)",
        format!("{:.1} MB; {avg:.2} % average, {peak:.1} % in the busiest second", rss_kib(gpid) as f64 / 1024.0),
        "-",
        "<= 15 MB; <= 1 %, never > 5 %",
    ));

    // The backend restarts under the whole fleet.
    fleet.telemetry.store(false, Ordering::SeqCst);
    let (refused_before, down_before) = (fleet.refused.load(Ordering::SeqCst), fleet.down.load(Ordering::SeqCst));
    backend.restart(quiet).await?;
    let bpid = backend.pid().context("backend pid")?;
    let (back, seconds) = until_connected(&fleet, size, bpid, Duration::from_secs(600)).await?;
    let peak = seconds.iter().copied().fold(0.0, f64::max);
    rows.push(row(
        &format!("fleet: backend restart, {size} bridges"),
        format!(
            "all back in {:.1} s; CPU peak {peak:.0} %, {} s above 80 %; {} connections failed ({} more found it down)",
            back.as_secs_f64(),
            longest_above(&seconds, 80.0),
            fleet.refused.load(Ordering::SeqCst) - refused_before,
            fleet.down.load(Ordering::SeqCst) - down_before,
        ),
        "-",
        "<= 60 s; <= 10 s above 80 %; none failed",
    ));
    for s in sims {
        s.abort();
    }
    backend.stop().await;
    Ok(())
}

/// The one server whose bridge is not simulated.
async fn real_server_id(api: &Api) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = api.graphql("{ servers { id online agent } }", serde_json::json!({})).await?;
        let real = v["data"]["servers"].as_array().and_then(|l| {
            l.iter()
                .find(|s| s["online"] == true && s["agent"].as_str().is_some_and(|a| a.starts_with("porta-bridge/")))
        });
        if let Some(id) = real.and_then(|s| s["id"].as_str()) {
            return Ok(id.to_owned());
        }
        if Instant::now() > deadline {
            bail!("the real bridge never came online");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
