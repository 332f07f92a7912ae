//! Telemetry end to end: a real bridge samples its machine, the backend stores the samples as
//! a series and passes them on live (GraphQL subscription and the stream socket).

use std::time::Duration;

use porta_e2e::Stack;
use porta_shared::client::{ClientEvent, MetricsUnwatch, MetricsWatch};
use porta_shared::telemetry::Metric;
use porta_shared::{ErrorBody, ErrorCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

const RANGE: &str = "query($s: String!, $w: Window, $m: [String!], $p: Int, $f: Int64) {
    serverMetrics(serverId: $s, window: $w, metrics: $m, maxPoints: $p, fromMs: $f) {
        resolutionSecs stepMs timestamps counts series { metric unit avg min max }
    }
}";

#[tokio::test]
async fn a_bridges_samples_reach_storage_and_live_watchers() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &["--sample-interval", "1"]).await?;
    let s = stack.server_id.clone();

    // Live through GraphQL: a sample of this machine arrives within seconds.
    let q = "subscription($s: [String!]!) { serverSamples(serverIds: $s) { serverId sample { tsMs cpu cores memoryTotal memoryUsed processes load disks { mount total used } top { pid name cpu memory } } } }";
    let mut sub = stack.api.subscribe(q, json!({ "s": [s] })).await?;
    let got = sub.next(WAIT).await?.map_err(|e| anyhow::anyhow!("refused: {e}"))?.expect("a sample");
    let sample = &got["serverSamples"]["sample"];
    assert_eq!(got["serverSamples"]["serverId"], json!(s));
    let cpu = sample["cpu"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=100.0).contains(&cpu), "{sample}");
    assert!(sample["memoryTotal"].as_u64().unwrap_or(0) > 0, "{sample}");
    assert!(sample["processes"].as_u64().unwrap_or(0) > 0, "{sample}");
    assert!(!sample["cores"].as_array().expect("cores").is_empty());
    assert!(!sample["top"].as_array().expect("top").is_empty(), "{sample}");
    // And the next one, a second later.
    let second = sub.next(WAIT).await?.map_err(|e| anyhow::anyhow!("{e}"))?.expect("another");
    assert!(second["serverSamples"]["sample"]["tsMs"].as_u64() > sample["tsMs"].as_u64());

    // Live on the stream socket: the newest sample at once, then each new one.
    let mut ws = stack.api.ws().await?;
    let watching = ws.call(MetricsWatch { server: s.clone() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(watching.latest.is_some_and(|l| l.memory_total > 0), "the newest sample comes with the watch");
    let ev = ws.wait_event(|e| matches!(e, ClientEvent::MetricsSample(m) if m.server == s), WAIT).await?;
    let ClientEvent::MetricsSample(ev) = ev else { unreachable!() };
    assert!(ev.sample.processes > 0);
    ws.call(MetricsUnwatch { server: s.clone() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let again = ws.call(MetricsUnwatch { server: s.clone() }).await?;
    assert!(matches!(again, Err(ErrorBody { code: ErrorCode::NotFound, .. })), "{again:?}");
    ws.drain_for(Duration::from_millis(1500)).await;
    ws.events.clear();
    ws.drain_for(Duration::from_millis(2500)).await;
    assert!(!ws.events.iter().any(|e| matches!(e, ClientEvent::MetricsSample(_))), "unwatched: {:?}", ws.events);
    let unknown = ws.call(MetricsWatch { server: "no-such-server".into() }).await?;
    assert!(matches!(unknown, Err(ErrorBody { code: ErrorCode::NotFound, .. })), "{unknown:?}");

    // The newest sample through a query.
    let v = stack
        .api
        .graphql("query($s: String!) { serverSample(serverId: $s) { cpu memoryUsed } }", json!({ "s": s }))
        .await?;
    assert!(v["data"]["serverSample"]["memoryUsed"].as_u64().unwrap_or(0) > 0, "{v}");

    // Stored: the last 15 minutes are raw samples, a point each.
    let deadline = tokio::time::Instant::now() + WAIT;
    let range = loop {
        let v = stack.api.graphql(RANGE, json!({ "s": s, "w": "M15", "m": ["cpu", "memory", "processes"] })).await?;
        let r = v["data"]["serverMetrics"].clone();
        if r["timestamps"].as_array().is_some_and(|t| t.len() >= 3) {
            break r;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "samples never reached storage: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(range["resolutionSecs"], 0, "{range}");
    let series = range["series"].as_array().expect("series");
    assert_eq!(
        series.iter().map(|x| x["metric"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["cpu", "memory", "processes"]
    );
    assert_eq!(series[0]["unit"], "percent");
    let memory: Vec<f64> = series[1]["avg"].as_array().expect("avg").iter().filter_map(Value::as_f64).collect();
    assert!(memory.len() >= 3 && memory.iter().all(|m| *m > 0.0 && *m <= 100.0), "{memory:?}");
    assert!(range["counts"].as_array().expect("counts").iter().all(|c| c == 1), "raw points are single samples");
    let ts: Vec<i64> = range["timestamps"].as_array().expect("ts").iter().filter_map(Value::as_i64).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "oldest first, one per sample: {ts:?}");

    // A month at a glance: every metric, the newest part summarised on the fly.
    let v = stack.api.graphql(RANGE, json!({ "s": s, "w": "D30" })).await?;
    let month = &v["data"]["serverMetrics"];
    assert_eq!(month["resolutionSecs"], 3600, "{v}");
    assert_eq!(month["series"].as_array().map(Vec::len), Some(Metric::COUNT));
    assert!(month["counts"].as_array().is_some_and(|c| !c.is_empty()), "{v}");

    // Bad input gets a clear error.
    let v = stack.api.graphql(RANGE, json!({ "s": s, "m": ["cpu", "temperature"] })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    assert!(v.to_string().contains("temperature"));
    let v = stack.api.graphql(RANGE, json!({ "s": s, "p": 0 })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let v = stack.api.graphql(RANGE, json!({ "s": s, "w": "H1", "f": 1 })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let v = stack.api.graphql(RANGE, json!({ "s": "no-such-server" })).await?;
    assert_eq!(code(&v), "not_found", "{v}");
    Ok(())
}

#[tokio::test]
async fn subscriptions_need_a_caller_and_their_servers() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &["--sample-interval", "1"]).await?;
    // No credentials: refused before the upgrade.
    let url = format!("{}/graphql/ws", stack.api.base.replacen("http://", "ws://", 1));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str())?;
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let refused = tokio_tungstenite::connect_async(req).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let bad = stack
        .api
        .subscribe_with("not-a-token", "subscription { serverSamples(serverIds: [\"x\"]) { serverId } }", json!({}))
        .await;
    assert!(bad.is_err(), "a wrong token is refused");
    // Unknown server, or none: an error on the subscription, the socket usable.
    let q = "subscription($s: [String!]!) { serverSamples(serverIds: $s) { serverId } }";
    let mut sub = stack.api.subscribe(q, json!({ "s": ["no-such-server"] })).await?;
    let errors = sub.next(WAIT).await?.expect_err("refused");
    assert_eq!(errors[0]["extensions"]["code"], "not_found", "{errors}");
    let mut sub = stack.api.subscribe(q, json!({ "s": [] })).await?;
    let errors = sub.next(WAIT).await?.expect_err("refused");
    assert_eq!(errors[0]["extensions"]["code"], "bad_request", "{errors}");
    Ok(())
}

#[tokio::test]
async fn processes_are_listed_and_a_developer_signals_one_audited() -> anyhow::Result<()> {
    use porta_shared::bridge::{SysKill, SysProcesses};
    use porta_shared::client::OnServer;
    use porta_shared::types::Signal;
    use std::os::unix::process::ExitStatusExt as _;

    let stack = Stack::start(&[], &["--sample-interval", "1"]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    // A process of this test's own, to end.
    let mut child = std::process::Command::new("sleep").arg("600").spawn()?;
    let pid = child.id();
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        let list = ws
            .call(OnServer { server: s.clone(), req: SysProcesses {} })
            .await?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if let Some(p) = list.processes.iter().find(|p| p.pid == pid) {
            break p.clone();
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "pid {pid} never listed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(listed.name, "sleep");
    assert_eq!(listed.command, "sleep 600");

    let kill = |pid: u32, signal: Signal| OnServer { server: s.clone(), req: SysKill { pid, signal } };
    ws.call(kill(pid, Signal::Term)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert_eq!(status.signal(), Some(15), "ended by TERM");
    // Refused: a process that is gone, pid 1, the bridge itself.
    let gone = ws.call(kill(pid, Signal::Kill)).await?;
    assert!(matches!(gone, Err(ErrorBody { code: ErrorCode::NotFound, .. })), "{gone:?}");
    let init = ws.call(kill(1, Signal::Kill)).await?;
    assert!(matches!(init, Err(ErrorBody { code: ErrorCode::Forbidden, .. })), "{init:?}");
    let bridge = stack.bridge.pid().unwrap_or_default();
    let own = ws.call(kill(bridge, Signal::Kill)).await?;
    assert!(matches!(own, Err(ErrorBody { code: ErrorCode::Forbidden, .. })), "{own:?}");
    assert!(stack.api.servers().await?[0]["online"].as_bool() == Some(true), "the bridge lives on");

    let v = stack.api.graphql("{ auditLog(action: \"process.kill\") { detail result } }", json!({})).await?;
    let log = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert!(log.iter().any(|e| e["detail"] == format!("pid {pid} term") && e["result"] == "ok"), "{v}");
    assert!(
        log.iter()
            .any(|e| e["detail"].as_str().is_some_and(|d| d.starts_with("pid 1 kill"))
                && e["result"] == "failed: forbidden"),
        "refusals are audited too: {v}"
    );
    Ok(())
}
