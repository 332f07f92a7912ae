//! Two replicas on PostgreSQL and Redis beside one: a terminal whose browser is on one replica
//! and bridge on the other against both on the same replica (echo, throughput, CPU per MB),
//! and the store's hot paths on PostgreSQL against SQLite.

use std::time::{Duration, Instant};

use porta_backend::db::{AuditEvent, Store, StoredPoint};
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Bridge};
use porta_testkit::{Postgres, Redis};

use super::relay::{PortaTerm, echo_latency, flood, median_lat, ready};
use super::{FLOOD_BYTES, Row, cpu_ticks, median, row};

const RUNS: usize = 3;

pub async fn run(quiet: &[(&str, &str)], tck: f64, rows: &mut Vec<Row>) -> anyhow::Result<()> {
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
    let pids = [a.pid(), b.pid(), near.pid(), far.pid(), redis_pid(&redis)].into_iter().flatten().collect::<Vec<_>>();
    let cpu = || pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>() as f64 / tck;

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
            cpus.push((cpu() - before) * FLOOD_BYTES as f64 / bytes as f64);
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
    let (cs, cc) = (median(cpu_same), median(cpu_cross));
    rows.push(row(
        "replicas: CPU-s per 50 MB (backends + bridges + Redis)",
        format!("{cc:.2} ({:.2}x)", cc / cs),
        &format!("same replica {cs:.2}"),
        "<= 1.5x",
    ));
    drop((near, far, a, b));

    store_hot_paths(&pg, rows).await?;
    drop(redis);
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

/// Operations per second of the store's hot paths on each engine, in this process.
async fn store_hot_paths(pg: &Postgres, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let lite = Store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    let post = Store::connect(&porta_e2e::fresh_database_on(&pg.url("postgres")).await?).await?;
    let mut rates = Vec::new();
    for store in [&lite, &post] {
        rates.push(hot_paths(store).await?);
    }
    for (i, name) in [
        "sign-in (user, refresh token)",
        "WebSocket ticket (issue + spend)",
        "authorize a server request",
        "audit append",
        "100 samples in one batch",
    ]
    .iter()
    .enumerate()
    {
        let (l, p) = (rates[0][i], rates[1][i]);
        rows.push(row(
            &format!("store: {name}, ops/s on PostgreSQL"),
            format!("{p:.0} ({:.2}x of SQLite)", p / l),
            &format!("SQLite {l:.0}"),
            "within 2x (>= 0.5x)",
        ));
    }
    Ok(())
}

/// Rates of each hot path on `store`, measured for about a second each, one caller at a time.
async fn hot_paths(store: &Store) -> anyhow::Result<[f64; 5]> {
    let user = store.create_user(&format!("bench-{}", uuid::Uuid::new_v4().simple()), "hash", true).await?;
    let ws = store.home_workspace(&user.id).await?.ok_or_else(|| anyhow::anyhow!("no workspace"))?.id;
    store.insert_enrollment_token("bench-token", &user.id, &ws, None, i64::MAX / 2).await?;
    let server = store
        .enroll_server("bench-token", "bench", "bench-credential")
        .await?
        .ok_or_else(|| anyhow::anyhow!("not enrolled"))?
        .id;
    let rate = |n: u64, start: Instant| n as f64 / start.elapsed().as_secs_f64();
    let window = Duration::from_secs(1);

    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < window {
        let found = store.user_by_name(&user.username).await?.ok_or_else(|| anyhow::anyhow!("no user"))?;
        store
            .insert_refresh(&format!("fam-{n}"), &found.id, 0, &format!("hash-{}-{n}", found.id), i64::MAX / 2)
            .await?;
        n += 1;
    }
    let sign_in = rate(n, start);
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < window {
        store.insert_ticket(&format!("t-{n}-{}", user.id), &user.id, "{}", i64::MAX / 2).await?;
        store.take_ticket(&format!("t-{n}-{}", user.id)).await?;
        n += 1;
    }
    let ticket = rate(n, start);
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < window {
        store.server_access(&user.id, &server).await?.ok_or_else(|| anyhow::anyhow!("no access"))?;
        n += 1;
    }
    let authorize = rate(n, start);
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < window {
        store.audit(AuditEvent::new("user:bench", "bench.op").server(&server)).await;
        n += 1;
    }
    let audit = rate(n, start);
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < window {
        let batch: Vec<StoredPoint> = (0..100)
            .map(|i| StoredPoint {
                server_id: server.clone(),
                res: 0,
                ts: (n * 100 + i) as i64,
                n: 1,
                data: vec![0; 64],
            })
            .collect();
        store.put_points(&batch).await?;
        n += 1;
    }
    let samples = rate(n, start);
    Ok([sign_in, ticket, authorize, audit, samples])
}
