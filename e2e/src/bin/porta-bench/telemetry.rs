//! Telemetry: ingest with a thousand simulated bridges, chart queries over a month of data,
//! and what a server costs to keep.

use std::time::{Duration, Instant};

use porta_backend::db::{Store, StoredPoint};
use porta_backend::telemetry::Telemetry;
use porta_backend::telemetry::points::{Point, Res};
use porta_e2e::{ADMIN_PASSWORD, Api, Backend};
use porta_shared::Envelope;
use porta_shared::bridge::BridgeEvent;
use porta_shared::telemetry::{DiskSample, NetSample, ProcessSample, Sample};

use super::bridges::{enrollment_token, sim_connect, sim_serve};
use super::{Row, SIM_BRIDGES, clk_tck, cpu_ticks, median, row};

const RUNS: usize = 7;
const DAY_MS: i64 = 86_400_000;

/// A sample as a busy four-core machine would send it.
pub(crate) fn sample_message() -> String {
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
        docker: None,
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
    let now = porta_backend::clock::now_ms();
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
    let telemetry = Telemetry::new(store.clone(), std::sync::Arc::new(porta_backend::bus::LocalBus::default()));
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
