//! Previews through the full path (HTTP client → backend → bridge → the app's port), beside
//! the same client asking the app directly, in the same run: small GETs from several
//! keep-alive connections at once (requests per second and latency), and one large download
//! (throughput, and what the backend and bridge spend on it). The app is a process of its own
//! (axum, two threads), as a dev server on the machine would be. With the peers (nginx and
//! Caddy, see [`super::proxies`]), the same client also asks the app through one of each and
//! through two of each chained (as many hops as a preview), in turn with the others.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use porta_e2e::Stack;
use porta_e2e::webapp::WebApp;

use super::proxies::{Chain, Kind};
use super::{Row, cpu_secs, median, percentile, process_cpu_secs, row};

/// Requests under way at once in the small-GET row (a browser opens six per host).
const CONCURRENCY: usize = 8;
/// How long each run of small GETs lasts.
const BURST: Duration = Duration::from_secs(3);
const DOWNLOAD: usize = 200_000_000;
/// Alternating direct / preview runs of each row.
const RUNS: usize = 3;
/// The argument that makes this program the web app (see [`serve_app`]).
pub(crate) const SERVE_APP: &str = "serve-webapp";

/// The web app, in this process: prints its port, serves until stdin closes.
pub(crate) async fn serve_app() -> anyhow::Result<()> {
    let app = WebApp::start("127.0.0.1:0").await?;
    println!("{}", app.port);
    let _held = app;
    tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await??;
    Ok(())
}

/// The web app as a process of its own; killed when dropped.
struct AppProcess {
    child: tokio::process::Child,
    port: u16,
}

impl AppProcess {
    async fn start() -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg(SERVE_APP)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut line = String::new();
        tokio::io::BufReader::new(stdout).read_line(&mut line).await?;
        Ok(Self { child, port: line.trim().parse()? })
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One run of small GETs: requests per second, p50 / p99 latency in ms, and how many.
async fn small_gets(http: &reqwest::Client, url: &str, cookie: &str) -> anyhow::Result<(f64, f64, f64, usize)> {
    let start = Instant::now();
    let workers = (0..CONCURRENCY).map(|_| {
        let (http, url, cookie) = (http.clone(), url.to_owned(), cookie.to_owned());
        tokio::spawn(async move {
            let mut took = Vec::new();
            while start.elapsed() < BURST {
                let t = Instant::now();
                let resp = http.get(&url).header("cookie", &cookie).send().await?;
                anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
                resp.bytes().await?;
                took.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(took)
        })
    });
    let mut all = Vec::new();
    for w in futures_util::future::join_all(workers).await {
        all.extend(w??);
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok((all.len() as f64 / secs, percentile(&all, 0.5), percentile(&all, 0.99), all.len()))
}

/// One download read as fast as it comes: MB/s.
async fn download(http: &reqwest::Client, url: &str, cookie: &str) -> anyhow::Result<f64> {
    let start = Instant::now();
    let resp = http.get(url).header("cookie", cookie).send().await?;
    anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
    let mut body = resp.bytes_stream();
    let mut got = 0usize;
    while let Some(piece) = body.next().await {
        got += piece?.len();
    }
    anyhow::ensure!(got == DOWNLOAD, "{url}: {got} of {DOWNLOAD} bytes");
    Ok(DOWNLOAD as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// The preview's cookie, as a browser gets it from a link opened in Porta.
async fn enter(stack: &Stack, server: &str, port: u16) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let ticket = stack.api.ticket().await?;
    let resp = http.get(format!("{}/p/{server}/{port}/?porta_ticket={ticket}", stack.api.base)).send().await?;
    let set = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    anyhow::ensure!(cookie.starts_with("porta_preview="), "no preview cookie: {}", resp.status());
    Ok(cookie)
}

/// The peers' proxies in front of the app, those the bench was given: one hop and two.
async fn peers(app: u16) -> Vec<(Kind, Chain, Chain)> {
    let mut peers = Vec::new();
    for kind in [Kind::Nginx, Kind::Caddy] {
        let Some(bin) = kind.bin() else { continue };
        match (Chain::start(kind, &bin, app, 1).await, Chain::start(kind, &bin, app, 2).await) {
            (Ok(one), Ok(two)) => peers.push((kind, one, two)),
            (Err(e), _) | (_, Err(e)) => eprintln!("==> no {} beside the previews in this run: {e:#}", kind.name()),
        }
    }
    peers
}

/// Medians of several runs of small GETs: req/s, p50, p99.
#[derive(Default)]
struct Gets {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    /// CPU µs per request of each process watched, a list per run.
    cpu: Vec<Vec<f64>>,
}

impl Gets {
    /// One run, the CPU time of `watched` (process ids) counted per request.
    async fn run(&mut self, http: &reqwest::Client, url: &str, cookie: &str, watched: &[u32]) -> anyhow::Result<()> {
        let before: Vec<f64> = watched.iter().map(|&p| process_cpu_secs(p)).collect();
        let (r, a, b, n) = small_gets(http, url, cookie).await?;
        let spent = watched.iter().zip(before).map(|(&p, b)| (process_cpu_secs(p) - b) / n.max(1) as f64 * 1e6);
        self.cpu.push(spent.collect());
        self.rps.push(r);
        self.p50.push(a);
        self.p99.push(b);
        Ok(())
    }

    fn medians(&self) -> (f64, f64, f64) {
        (median(self.rps.clone()), median(self.p50.clone()), median(self.p99.clone()))
    }
}

pub(crate) async fn run(stack: &Stack, server: &str, pids: (u32, u32), rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let app = AppProcess::start().await?;
    let cookie = enter(stack, server, app.port).await?;
    let direct = format!("http://127.0.0.1:{}", app.port);
    let preview = format!("{}/p/{server}/{}", stack.api.base, app.port);
    let peers = peers(app.port).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;
    // Every path, each one hop and two for the peers, in turn.
    let mut paths = vec![(format!("{direct}/small"), ""), (format!("{preview}/small"), cookie.as_str())];
    for (_, one, two) in &peers {
        paths.push((format!("{}/small", one.url()), ""));
        paths.push((format!("{}/small", two.url()), ""));
    }
    // Warm every path (connections, pools).
    for (url, cookie) in &paths {
        small_gets(&http, url, cookie).await?;
    }
    let mut gets: Vec<Gets> = paths.iter().map(|_| Gets::default()).collect();
    for _ in 0..RUNS {
        for (i, ((url, cookie), g)) in paths.iter().zip(&mut gets).enumerate() {
            let watched: &[u32] = if i == 1 { &[pids.0, pids.1] } else { &[] };
            g.run(&http, url, cookie, watched).await?;
        }
    }
    let ((drps, d50, d99), (prps, p50, p99)) = (gets[0].medians(), gets[1].medians());
    let mut beside = format!("direct to the port {drps:.0}");
    let mut latency = format!("direct {d50:.2} / {d99:.2} ms");
    for ((kind, _, _), g) in peers.iter().zip(gets[2..].chunks(2)) {
        let ((r1, a1, b1), (r2, a2, b2)) = (g[0].medians(), g[1].medians());
        let name = kind.name();
        beside += &format!(
            "; {name} one hop {r1:.0} ({:.0} %), two hops {r2:.0} ({:.0} %): preview {:.2}× two {name} hops",
            r1 / drps * 100.0,
            r2 / drps * 100.0,
            prps / r2
        );
        latency += &format!("; {name} one hop {a1:.2} / {b1:.2}, two hops {a2:.2} / {b2:.2}");
    }
    rows.push(row(
        &format!("preview: small GETs, {CONCURRENCY} at once, req/s"),
        format!("{prps:.0} ({:.0} % of direct)", prps / drps * 100.0),
        &beside,
        "≥ 50 % of direct",
    ));
    rows.push(row("preview: small GET latency p50 / p99", format!("{p50:.2} / {p99:.2} ms"), &latency, "–"));
    let of = |i: usize| median(gets[1].cpu.iter().map(|run| run[i]).collect());
    let (backend, bridge) = (of(0), of(1));
    rows.push(row(
        "preview: small GET CPU, backend + bridge",
        format!("{backend:.0} + {bridge:.0} µs per request"),
        "–",
        "–",
    ));
    let (mut d_mbs, mut p_mbs, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        d_mbs.push(download(&http, &format!("{direct}/bytes/{DOWNLOAD}"), "").await?);
        let before = cpu_secs(pids.0) + cpu_secs(pids.1);
        p_mbs.push(download(&http, &format!("{preview}/bytes/{DOWNLOAD}"), &cookie).await?);
        cpu.push((cpu_secs(pids.0) + cpu_secs(pids.1) - before) / (DOWNLOAD as f64 / 1e6));
    }
    let (dm, pm) = (median(d_mbs), median(p_mbs));
    rows.push(row(
        &format!("preview: {} MB download, MB/s", DOWNLOAD / 1_000_000),
        format!("{pm:.0} ({:.0} % of direct)", pm / dm * 100.0),
        &format!("direct to the port {dm:.0}"),
        "≥ 80 % of direct",
    ));
    rows.push(row("preview: download CPU (backend + bridge) per MB", format!("{:.4} CPU-s", median(cpu)), "–", "–"));
    Ok(())
}
