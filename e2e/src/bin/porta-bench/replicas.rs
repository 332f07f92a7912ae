//! Two replicas on PostgreSQL and Redis beside one: a terminal whose browser is on one replica
//! and bridge on the other against both on the same replica (echo, throughput, CPU per MB),
//! and, as `porta-bench store`, the store's hot paths on PostgreSQL against SQLite.

use std::time::{Duration, Instant};

use porta_backend::db::{AuditEvent, Store, StoredPoint};
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Bridge};
use porta_testkit::{Postgres, Redis};

use super::bridges::{enrollment_token, sim_bridge};
use super::relay::{PortaTerm, echo_latency, flood, median_lat, ready};
use super::{FLOOD_BYTES, Row, cpu_secs, median, row, rss_kib};

const RUNS: usize = 5;

pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let redis = tokio::task::spawn_blocking(Redis::start).await??;
    let pg = tokio::task::spawn_blocking(Postgres::start).await??;
    let database = porta_e2e::fresh_database_on(&pg.url("postgres")).await?;
    let redis_url = redis.url();
    let mut env = quiet.to_vec();
    env.extend([
        ("PORTA_REDIS_URL", redis_url.as_str()),
        ("PORTA_JWT_SECRET", "bench-replicas-share-this-signing-key-of-32-bytes"),
        ("PORTA_SECRETS_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
    ]);
    let a = Backend::start_on_database(&database, &env).await?;
    let b = Backend::start_on_database(&database, &env).await?;
    // One bridge on each replica; the browser is always on A.
    let mut near = Bridge::enroll(&a, &[]).await?;
    near.run(&[])?;
    let mut far = Bridge::enroll(&b, &[]).await?;
    far.run(&[])?;
    let api = Api::login(&a.url, "admin", ADMIN_PASSWORD).await?;
    let servers = wait_servers(&api, 2).await?;
    let on_a = server_of(&api, &servers, near.pid()).await?;
    let on_b = servers.iter().find(|s| **s != on_a).cloned().unwrap_or_default();
    // CPU-s of A, B, the two bridges and Redis.
    let pids = [a.pid(), b.pid(), near.pid(), far.pid(), redis_pid(&redis)];
    let cpu = || pids.map(|p| p.map_or(0.0, cpu_secs));

    let (mut echo_same, mut echo_cross, mut mbps_same, mut mbps_cross, mut cpu_same, mut cpu_cross) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        for (server, echo, mbps, cpus) in [
            (&on_a, &mut echo_same, &mut mbps_same, &mut cpu_same),
            (&on_b, &mut echo_cross, &mut mbps_cross, &mut cpu_cross),
        ] {
            let mut t = PortaTerm::open_through(&api, server, true).await?;
            ready(&mut t).await?;
            echo.push(echo_latency(&mut t).await?);
            let before = cpu();
            let (secs, bytes) = flood(&mut t).await?;
            mbps.push(bytes as f64 / secs / 1e6);
            let after = cpu();
            cpus.push(std::array::from_fn::<f64, 5, _>(|i| (after[i] - before[i]) * FLOOD_BYTES as f64 / bytes as f64));
            t.ws.output.clear();
            t.close().await?;
        }
    }
    let (same, cross) = (median_lat(&echo_same), median_lat(&echo_cross));
    rows.push(row(
        "replicas: keystroke echo p50 / p99 (ms), browser on A, bridge on B",
        format!("{:.2} / {:.2}", cross[0], cross[2]),
        &format!("same replica {:.2} / {:.2}", same[0], same[2]),
        "p99 within +1 ms",
    ));
    let (ms, mc) = (median(mbps_same), median(mbps_cross));
    rows.push(row(
        "replicas: 50 MB flood, MB/s, browser on A, bridge on B",
        format!("{mc:.1} ({:.0} %)", mc / ms * 100.0),
        &format!("same replica {ms:.1}"),
        ">= 80 %",
    ));
    // The total's median, and each process's (A, B, bridges, Redis).
    let split = |runs: &[[f64; 5]]| {
        let part = |i: usize| median(runs.iter().map(|r| r[i]).collect());
        let total = median(runs.iter().map(|r| r.iter().sum()).collect());
        (
            total,
            format!("A {:.2} + B {:.2} + bridges {:.2} + Redis {:.2}", part(0), part(1), part(2) + part(3), part(4)),
        )
    };
    let ((cs, same_split), (cc, cross_split)) = (split(&cpu_same), split(&cpu_cross));
    rows.push(row(
        "replicas: CPU-s per 50 MB (backends + bridges + Redis)",
        format!("{cc:.2} ({:.2}x; {cross_split})", cc / cs),
        &format!("same replica {cs:.2} ({same_split})"),
        "<= 1.5x",
    ));
    idle_bridges_split(&a, &b, rows).await?;
    drop((near, far, a, b));

    drop(redis);
    Ok(())
}

/// Idle bridges held per replica.
const IDLE: usize = 500;

/// Backend memory per idle bridge: [`IDLE`] bridges on A alone, then as many more on B (two
/// replicas holding twice the bridges).
async fn idle_bridges_split(a: &Backend, b: &Backend, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let api = Api::login(&a.url, "admin", ADMIN_PASSWORD).await?;
    let (a_pid, b_pid) = (a.pid().unwrap_or_default(), b.pid().unwrap_or_default());
    let mut sims = Vec::with_capacity(2 * IDLE);
    let mut per_bridge = Vec::new();
    for (backend, pid) in [(a, a_pid), (b, b_pid)] {
        let mut tokens = Vec::with_capacity(IDLE);
        for _ in 0..IDLE {
            tokens.push(enrollment_token(&api).await?);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(pid);
        for token in tokens {
            sims.push(sim_bridge(&backend.url, token).await?);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        per_bridge.push(rss_kib(pid).saturating_sub(before) as f64 / IDLE as f64);
    }
    let online = api.servers().await?.iter().filter(|s| s["online"].as_bool() == Some(true)).count();
    rows.push(row(
        &format!("replicas: backend memory per idle bridge, {IDLE} on A, then {IDLE} more on B"),
        format!("B {:.1} KiB ({online} online in all)", per_bridge[1]),
        &format!("A alone {:.1} KiB", per_bridge[0]),
        "the same per bridge",
    ));
    for s in sims {
        s.abort();
    }
    Ok(())
}

fn redis_pid(redis: &Redis) -> Option<u32> {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "info", "server"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
}

async fn wait_servers(api: &Api, n: usize) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let online: Vec<String> = api
            .servers()
            .await?
            .iter()
            .filter(|s| s["online"] == true)
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        if online.len() >= n {
            return Ok(online);
        }
        anyhow::ensure!(Instant::now() < deadline, "only {} of {n} servers online", online.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Which of `servers` is served by the bridge process `pid` (its shell's parent).
async fn server_of(api: &Api, servers: &[String], pid: Option<u32>) -> anyhow::Result<String> {
    let pid = pid.ok_or_else(|| anyhow::anyhow!("no bridge pid"))?;
    for s in servers {
        let mut t = PortaTerm::open_through(api, s, false).await?;
        t.ws.input(t.stream, b"echo PARENT-$PPID\n").await?;
        let text = t.ws.wait_output(t.stream, "PARENT-", Duration::from_secs(20)).await?;
        t.ws.drain_for(Duration::from_millis(200)).await;
        let mine = t.ws.text(t.stream).contains(&format!("PARENT-{pid}"));
        drop(text);
        t.close().await?;
        if mine {
            return Ok(s.clone());
        }
    }
    anyhow::bail!("no server is served by bridge {pid}")
}

/// How many callers at once the store's hot paths are also measured with (a replica serves
/// many people at a time).
const CALLERS: usize = 8;

/// Operations per second of the store's hot paths on each engine, in this process: one
/// caller at a time, then [`CALLERS`] at once.
pub async fn store_hot_paths(rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let pg = tokio::task::spawn_blocking(Postgres::start).await??;
    let dir = tempfile::tempdir()?;
    let lite = Store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    let post = Store::connect(&porta_e2e::fresh_database_on(&pg.url("postgres")).await?).await?;
    let mut rates = Vec::new();
    for store in [&lite, &post] {
        rates.push([hot_paths(store, 1).await?, hot_paths(store, CALLERS).await?]);
    }
    for (i, name) in [
        "sign-in (user, refresh token)",
        "WebSocket ticket (issue + spend)",
        "authorize a server request (a burst's, from memory)",
        "authorize, a burst's first (the query)",
        "audit append",
        "100 samples in one batch",
    ]
    .iter()
    .enumerate()
    {
        let (l1, p1, l8, p8) = (rates[0][0][i], rates[1][0][i], rates[0][1][i], rates[1][1][i]);
        rows.push(row(
            &format!("store: {name}, ops/s on PostgreSQL, 1 / {CALLERS} callers"),
            format!("{p1:.0} ({:.2}x) / {p8:.0} ({:.2}x)", p1 / l1, p8 / l8),
            &format!("SQLite {l1:.0} / {l8:.0}"),
            if name.ends_with("(the query)") {
                "- (a round trip; SQLite answers in the process)"
            } else {
                "within 2x (>= 0.5x)"
            },
        ));
    }
    Ok(())
}

/// Runs `op(caller, n)` from `callers` tasks at once for about a second; calls per second.
async fn rate_of<F, Fut>(callers: usize, op: F) -> anyhow::Result<f64>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let window = Duration::from_secs(1);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for caller in 0..callers as u64 {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < window {
                op(caller, n).await?;
                n += 1;
            }
            Ok::<u64, anyhow::Error>(n)
        }));
    }
    let mut done = 0u64;
    for t in tasks {
        done += t.await??;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

/// Rates of each hot path on `store`, with `callers` callers at once.
async fn hot_paths(store: &Store, callers: usize) -> anyhow::Result<[f64; 6]> {
    let user = store.create_user(&format!("bench-{}", uuid::Uuid::new_v4().simple()), "hash", true).await?;
    let ws = store.home_workspace(&user.id).await?.ok_or_else(|| anyhow::anyhow!("no workspace"))?.id;
    let token = format!("bench-token-{}", user.id);
    store.insert_enrollment_token(&token, &user.id, &ws, None, i64::MAX / 2).await?;
    let server = store
        .enroll_server(&token, "bench", &format!("bench-credential-{}", user.id))
        .await?
        .ok_or_else(|| anyhow::anyhow!("not enrolled"))?
        .id;
    let (s, u) = (store.clone(), user.clone());
    let sign_in = rate_of(callers, move |c, n| {
        let (s, u) = (s.clone(), u.clone());
        async move {
            let found = s.user_by_name(&u.username).await?.ok_or_else(|| anyhow::anyhow!("no user"))?;
            let family = format!("fam-{c}-{n}");
            s.insert_refresh(&family, &found.id, 0, &format!("hash-{}-{family}", found.id), i64::MAX / 2).await?;
            Ok(())
        }
    })
    .await?;
    let (s, u) = (store.clone(), user.clone());
    let ticket = rate_of(callers, move |c, n| {
        let (s, u) = (s.clone(), u.clone());
        async move {
            let t = format!("t-{c}-{n}-{}", u.id);
            s.insert_ticket(&t, &u.id, "{}", i64::MAX / 2).await?;
            s.take_ticket(&t).await?;
            Ok(())
        }
    })
    .await?;
    let (s, u, sv) = (store.clone(), user.clone(), server.clone());
    let authorize = rate_of(callers, move |_, _| {
        let (s, u, sv) = (s.clone(), u.clone(), sv.clone());
        async move {
            s.server_access(&u.id, &sv).await?.ok_or_else(|| anyhow::anyhow!("no access"))?;
            Ok(())
        }
    })
    .await?;
    // The first request after any access change (or of a burst) asks the database.
    let (s, u, sv) = (store.clone(), user.clone(), server.clone());
    let first = rate_of(callers, move |_, _| {
        let (s, u, sv) = (s.clone(), u.clone(), sv.clone());
        async move {
            s.access_changed_elsewhere();
            s.server_access(&u.id, &sv).await?.ok_or_else(|| anyhow::anyhow!("no access"))?;
            Ok(())
        }
    })
    .await?;
    let (s, sv) = (store.clone(), server.clone());
    let audit = rate_of(callers, move |_, _| {
        let (s, sv) = (s.clone(), sv.clone());
        async move {
            s.audit(AuditEvent::new("user:bench", "bench.op").server(&sv)).await;
            Ok(())
        }
    })
    .await?;
    let (s, sv) = (store.clone(), server.clone());
    let samples = rate_of(callers, move |c, n| {
        let (s, sv) = (s.clone(), sv.clone());
        async move {
            let batch: Vec<StoredPoint> = (0..100)
                .map(|i| StoredPoint {
                    server_id: sv.clone(),
                    res: 0,
                    ts: (c * 1_000_000_000 + n * 100 + i) as i64,
                    n: 1,
                    data: vec![0; 64],
                })
                .collect();
            s.put_points(&batch).await?;
            Ok(())
        }
    })
    .await?;
    Ok([sign_in, ticket, authorize, first, audit, samples])
}
