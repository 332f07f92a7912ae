//! `porta-bench`: measures the relay through the full path (client → backend → bridge → PTY)
//! on loopback and prints a table, with the machine's ceiling beside each figure where one
//! exists. Run by `cargo xtask bench` against release builds; a benchmark, not a test.
//! `porta-bench [throughput] [echo] [stall] [idle] [bridges] [files] [containers] [previews] [assistant] [telemetry] [fleet] [memory] [browser] [replicas] [store]`
//! runs only those sections.

mod assistant;
mod bridges;
mod browser;
mod containers;
mod files;
mod fleet;
mod memory;
mod previews;
mod proxies;
mod relay;
mod rendered;
mod replicas;
mod telemetry;
mod ttyd;

use std::time::Duration;

use anyhow::Context as _;
use porta_e2e::Stack;

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

/// A relay row measured side by side: Porta with each client, ttyd, the raw PTY.
struct Versus {
    name: String,
    batched: String,
    fast: String,
    ttyd: String,
    raw: String,
    /// Porta's fast client against ttyd.
    ratio: String,
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
    status_kib(pid, "VmRSS:")
}

/// A KiB figure of `/proc/<pid>/status` (`VmRSS:`, `RssAnon:` …); 0 when unreadable.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(field)?.split_whitespace().next()?.parse().ok()))
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

/// CPU-s a process's live threads have run, to the nanosecond (`/proc/<pid>/task/*/schedstat`):
/// a flood of under a second is a few dozen clock ticks per process, too coarse to compare two
/// paths by. Threads that ended are not counted.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0.0 };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// The CPU time a process has used so far, its ended threads' too, to the kernel's 10 ms ticks:
/// for runs of seconds where a thread may end (a tokio blocking thread would take its past time
/// out of [`cpu_secs`], a sum over live threads).
fn process_cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // After the command's name (in parentheses, which may hold spaces): utime and stime are
    // the 12th and 13th fields.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Context switches of every thread of a process so far (threads that ended not counted).
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The bench's own scraper token for `/metrics`.
const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The previews section's web app runs as a process of its own, as a dev server does.
    if std::env::args().nth(1).as_deref() == Some(previews::SERVE_APP) {
        return previews::serve_app().await;
    }
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
    // The peer, when `cargo xtask bench` could build it.
    let ttyd = match std::env::var_os("PORTA_BENCH_TTYD") {
        Some(bin) => Some(ttyd::Ttyd::start(std::path::Path::new(&bin)).await?),
        None => None,
    };
    let mut versus = Vec::new();
    if want("throughput") {
        relay::throughput(&stack, &server, (bpid, gpid), tck, ttyd.as_ref(), &mut versus).await?;
    }
    if want("echo") {
        relay::echo(&stack, &server, ttyd.as_ref(), &mut versus).await?;
    }
    drop(ttyd);
    if want("stall") {
        relay::stall(&stack, &server, (bpid, gpid), &mut rows).await?;
    }
    if want("idle") {
        relay::idle_terminals(&stack, &server, (bpid, gpid), &mut rows).await?;
    }
    if want("bridges") {
        bridges::idle_bridges(&stack, bpid, &mut rows).await?;
    }
    if want("files") {
        files::run(&stack, &mut rows).await?;
    }
    if want("containers") {
        containers::run(&stack, &server, &mut rows).await?;
        containers::logs(&stack, &server, (bpid, gpid), &mut rows).await?;
        containers::stats(&stack, &server, gpid, &mut rows).await?;
    }
    if want("previews") {
        previews::run(&stack, &server, (bpid, gpid), &mut rows).await?;
    }
    if want("assistant") {
        assistant::run(&stack, &llm, &mut rows).await?;
    }
    if want("telemetry") {
        telemetry::run(&quiet, &mut rows).await?;
    }
    if want("fleet") {
        fleet::run(&quiet, &mut rows).await?;
    }
    if want("memory") {
        memory::run(&quiet, &mut rows).await?;
    }
    if want("browser") {
        browser::run(&quiet, &mut rows).await?;
    }
    if want("replicas") {
        replicas::run(&quiet, &mut rows).await?;
    }
    if want("store") {
        replicas::store_hot_paths(&mut rows).await?;
    }
    print_versus(&versus);
    print_table(&rows);
    Ok(())
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

fn print_versus(rows: &[Versus]) {
    if rows.is_empty() {
        return;
    }
    let head = [
        "relay, one run (medians)",
        "Porta, batched client",
        "Porta, fast client",
        "ttyd 1.7.7",
        "raw PTY",
        "fast / ttyd",
        "target",
    ];
    let cells = |r: &Versus| {
        [
            r.name.clone(),
            r.batched.clone(),
            r.fast.clone(),
            r.ttyd.clone(),
            r.raw.clone(),
            r.ratio.clone(),
            r.target.clone(),
        ]
    };
    let mut w = head.map(str::len);
    for r in rows {
        for (w, c) in w.iter_mut().zip(cells(r)) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |c: [String; 7]| {
        let padded: Vec<String> =
            c.iter().zip(w).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        println!("| {} |", padded.join(" | "));
    };
    println!();
    line(head.map(String::from));
    println!("|{}|", w.map(|w| "-".repeat(w + 2)).join("|"));
    for r in rows {
        line(cells(r));
    }
}
