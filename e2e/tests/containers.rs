//! Containers on a server through its bridge, with a real Docker engine: listed, started,
//! stopped, paused, renamed, inspected (environment values hidden until a developer reveals
//! them) and removed, each change audited; a viewer only looks; bad references and unknown
//! containers are refused clearly; a bridge pointed at no engine says so. The engine and the
//! image (`porta-test/busybox`, from Debian's busybox-static) come from `cargo xtask test`,
//! which names the image in `PORTA_TEST_DOCKER_IMAGE`; without it these tests say they did
//! not run.

use std::process::Command;

use porta_e2e::docker::{Made, rand_suffix, test_image as image};
use porta_e2e::{Api, Stack};
use porta_shared::client::OnServer;
use porta_shared::docker::{
    Container, ContainerAction, DockerAction, DockerInspect, DockerList, DockerLogs, DockerLogsClose, DockerLogsRead,
    LogLine,
};
use porta_shared::{ErrorBody, ErrorCode};
use serde_json::json;

async fn list(ws: &mut porta_e2e::Ws, server: &str) -> anyhow::Result<Vec<Container>> {
    let listed = ws
        .call(OnServer { server: server.to_owned(), req: DockerList {} })
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    anyhow::ensure!(listed.unavailable.is_none(), "{:?}", listed.unavailable);
    Ok(listed.containers)
}

/// A viewer of the stack's team, signed in.
async fn viewer(stack: &Stack) -> anyhow::Result<Api> {
    let team = stack.api.own_team().await?;
    let link = stack.api.invite(&team, "viewer").await?;
    Api::join_by_link(&stack.backend.url, &link, "vic", "a long enough password").await
}

async fn state_of(ws: &mut porta_e2e::Ws, server: &str, name: &str) -> anyhow::Result<Option<String>> {
    Ok(list(ws, server).await?.into_iter().find(|c| c.name == name).map(|c| c.state))
}

async fn act(
    ws: &mut porta_e2e::Ws,
    server: &str,
    id: &str,
    action: ContainerAction,
) -> anyhow::Result<Result<(), ErrorBody>> {
    let asked = DockerAction { id: id.to_owned(), action };
    Ok(ws.call(OnServer { server: server.to_owned(), req: asked }).await?.map(drop))
}

#[tokio::test]
async fn a_developer_runs_the_life_of_a_container_and_each_change_is_audited() -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let name = format!("porta-e2e-web-{}", rand_suffix());
    made.run(&name, &image, &["-e", "API_KEY=hunter2", "-e", "MODE=test", "-p", "127.0.0.1::8080"], &["sleep", "600"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let listed = ws.call(OnServer { server: s.clone(), req: DockerList {} }).await??;
    let engine = listed.engine.clone().ok_or_else(|| anyhow::anyhow!("no engine: {:?}", listed.unavailable))?;
    assert!(!engine.version.is_empty() && engine.socket.ends_with(".sock"), "{engine:?}");
    let web = listed.containers.iter().find(|c| c.name == name).ok_or_else(|| anyhow::anyhow!("{name} not listed"))?;
    assert_eq!((web.state.as_str(), web.image.as_str()), ("running", image.as_str()));
    assert!(web.status.starts_with("Up"), "{}", web.status);
    assert!(web.ports.iter().any(|p| p.private == 8080 && p.public.is_some()), "{:?}", web.ports);
    let id = web.id.clone();

    // Settings: environment names always, values only when a developer reveals them.
    let look =
        ws.call(OnServer { server: s.clone(), req: DockerInspect { id: id.clone(), reveal_env: false } }).await??;
    let key = look.env.iter().find(|v| v.name == "API_KEY").ok_or_else(|| anyhow::anyhow!("{:?}", look.env))?;
    assert_eq!(key.value, None, "hidden until revealed");
    assert_eq!(look.command, vec!["sleep", "600"]);
    assert!(look.started_ms.is_some_and(|ms| ms > 1_700_000_000_000), "{:?}", look.started_ms);
    let revealed =
        ws.call(OnServer { server: s.clone(), req: DockerInspect { id: id.clone(), reveal_env: true } }).await??;
    assert!(revealed.env.iter().any(|v| v.name == "API_KEY" && v.value.as_deref() == Some("hunter2")));

    // Its life: stop, start, pause, unpause, restart, kill, rename; asking again for the state
    // it is in is done.
    for (action, after) in [
        (ContainerAction::Stop, "exited"),
        (ContainerAction::Stop, "exited"),
        (ContainerAction::Start, "running"),
        (ContainerAction::Pause, "paused"),
        (ContainerAction::Pause, "paused"),
        (ContainerAction::Unpause, "running"),
        (ContainerAction::Unpause, "running"),
        (ContainerAction::Restart, "running"),
    ] {
        act(&mut ws, &s, &id, action.clone()).await?.map_err(|e| anyhow::anyhow!("{action:?}: {e:?}"))?;
        assert_eq!(state_of(&mut ws, &s, &name).await?.as_deref(), Some(after), "after {action:?}");
    }
    let renamed = format!("{name}-renamed");
    act(&mut ws, &s, &id, ContainerAction::Rename { name: renamed.clone() }).await??;
    assert_eq!(state_of(&mut ws, &s, &renamed).await?.as_deref(), Some("running"));
    // A running container is removed only when forced.
    let refused = act(&mut ws, &s, &id, ContainerAction::Remove { force: false }).await?;
    assert!(matches!(&refused, Err(e) if e.code == ErrorCode::Conflict), "{refused:?}");
    assert!(state_of(&mut ws, &s, &renamed).await?.is_some(), "still there");
    act(&mut ws, &s, &id, ContainerAction::Kill).await??;
    assert_eq!(state_of(&mut ws, &s, &renamed).await?.as_deref(), Some("exited"));
    act(&mut ws, &s, &id, ContainerAction::Remove { force: true }).await??;
    assert_eq!(state_of(&mut ws, &s, &renamed).await?, None, "removed");
    // Gone now, and references that could reach another endpoint of the engine are refused.
    let gone = act(&mut ws, &s, &id, ContainerAction::Start).await?;
    assert!(matches!(&gone, Err(e) if e.code == ErrorCode::NotFound), "{gone:?}");
    for bad in ["../images/create", "a/b", "", "web?force=1"] {
        let refused = act(&mut ws, &s, bad, ContainerAction::Start).await?;
        assert!(matches!(&refused, Err(e) if e.code == ErrorCode::BadRequest), "{bad:?}: {refused:?}");
    }

    // Everything that changed something is in the audit log.
    let v = stack.api.graphql("{ auditLog(limit: 100) { action detail result } }", json!({})).await?;
    let events = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    let seen = |action: &str, detail: &str| {
        events.iter().any(|e| e["action"] == action && e["detail"].as_str().is_some_and(|d| d.contains(detail)))
    };
    for action in ["container.stop", "container.start", "container.pause", "container.restart", "container.kill"] {
        assert!(seen(action, &id), "{action} not audited: {events:?}");
    }
    assert!(seen("container.reveal_env", &id), "{events:?}");
    assert!(seen("container.rename", &renamed), "{events:?}");
    assert!(seen("container.remove", &format!("{id} (forced)")), "{events:?}");
    drop(made);
    Ok(())
}

#[tokio::test]
async fn a_viewer_looks_at_containers_but_changes_none_and_sees_no_secrets() -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let name = format!("porta-e2e-db-{}", rand_suffix());
    made.run(&name, &image, &["-e", "PASSWORD=s3cret"], &["sh", "-c", "sleep 600 # --password=s3cret"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = viewer(&stack).await?.ws().await?;
    assert_eq!(state_of(&mut ws, &s, &name).await?.as_deref(), Some("running"));
    let look =
        ws.call(OnServer { server: s.clone(), req: DockerInspect { id: name.clone(), reveal_env: false } }).await??;
    assert!(look.env.iter().any(|v| v.name == "PASSWORD") && look.env.iter().all(|v| v.value.is_none()));
    // Where passwords also go: the command line and labels, hidden from a viewer.
    assert!(look.command.is_empty(), "{:?}", look.command);
    assert!(look.labels.contains_key("porta.e2e") && look.labels.values().all(String::is_empty), "{:?}", look.labels);
    let reveal =
        ws.call(OnServer { server: s.clone(), req: DockerInspect { id: name.clone(), reveal_env: true } }).await?;
    assert!(matches!(&reveal, Err(e) if e.code == ErrorCode::Forbidden), "{reveal:?}");
    let stop = act(&mut ws, &s, &name, ContainerAction::Stop).await?;
    assert!(matches!(&stop, Err(e) if e.code == ErrorCode::Forbidden), "{stop:?}");
    assert_eq!(state_of(&mut ws, &s, &name).await?.as_deref(), Some("running"), "nothing changed");
    // The refusal is on the record.
    let v = stack.api.graphql("{ auditLog(action: \"container.stop\") { result } }", json!({})).await?;
    assert_eq!(v["data"]["auditLog"][0]["result"], "denied", "{v}");
    drop(made);
    Ok(())
}

#[tokio::test]
async fn a_server_without_an_engine_says_so_and_how_to_get_one() -> anyhow::Result<()> {
    let none = tempfile::tempdir()?;
    let socket = none.path().join("docker.sock");
    let stack = Stack::start(&[], &["--docker-socket", &socket.to_string_lossy()]).await?;
    let mut ws = stack.api.ws().await?;
    let listed = ws.call(OnServer { server: stack.server_id.clone(), req: DockerList {} }).await??;
    let why = listed.unavailable.ok_or_else(|| anyhow::anyhow!("an engine answered"))?;
    assert!(why.reason.contains(&*socket.to_string_lossy()), "{}", why.reason);
    assert!(why.hint.contains("install") || why.hint.contains("Install"), "{}", why.hint);
    assert!(listed.containers.is_empty() && listed.engine.is_none());
    let start = act(&mut ws, &stack.server_id, "web", ContainerAction::Start).await?;
    assert!(matches!(&start, Err(e) if e.code == ErrorCode::Unavailable), "{start:?}");
    Ok(())
}

#[tokio::test]
async fn an_mcp_agent_lists_containers_at_once_and_stops_one_only_once_the_person_approves() -> anyhow::Result<()> {
    use porta_e2e::agents::{self, call, connect, shown};
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let name = format!("porta-e2e-agent-{}", rand_suffix());
    made.run(&name, &image, &[], &["sh", "-c", "echo agent-says-hi; echo trouble >&2; sleep 600"])?;
    let stack = Stack::start(&[], &[]).await?;
    let q = "mutation { createApiToken(name: \"mcp\", scopes: [\"read\", \"write\", \"terminal\"]) { token } }";
    let v = stack.api.graphql(q, json!({})).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let client = connect(&stack.backend.url, &token, "ops-bot").await?;
    // A read: at once.
    let listed = call(&client, "docker_list", json!({ "server_id": stack.server_id })).await?;
    assert_ne!(listed.is_error, Some(true), "{}", shown(&listed));
    assert!(shown(&listed).contains(&name), "{}", shown(&listed));
    // Its log, a read too: the latest lines with their times, stderr marked.
    let mut said = String::new();
    for _ in 0..50 {
        let logs = call(&client, "docker_logs", json!({ "server_id": stack.server_id, "container": name })).await?;
        assert_ne!(logs.is_error, Some(true), "{}", shown(&logs));
        said = shown(&logs);
        if said.contains("trouble") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(said.contains("agent-says-hi") && said.contains("(stderr) trouble"), "{said}");
    let found =
        call(&client, "docker_logs", json!({ "server_id": stack.server_id, "container": name, "contains": "HI" }))
            .await?;
    assert!(shown(&found).contains("agent-says-hi") && !shown(&found).contains("trouble"), "{}", shown(&found));
    // A change: it waits for the person, and is judged as `docker stop <name>`.
    let stop = json!({ "server_id": stack.server_id, "container": name, "action": "stop" });
    let mut ws = stack.api.ws().await?;
    let (result, decided) = tokio::join!(call(&client, "docker_action", stop), async {
        let (_, pending) = agents::waiting(&stack.api, "ops-bot").await?;
        assert_eq!(state_of(&mut ws, &stack.server_id, &name).await?.as_deref(), Some("running"), "not before");
        agents::decide(&stack.api, "ops-bot", true).await.map(|_| pending)
    });
    let pending = decided?;
    assert!(pending["arguments"].as_str().is_some_and(|a| a.contains("\"stop\"") && a.contains(&name)), "{pending}");
    let result = result?;
    assert_ne!(result.is_error, Some(true), "{}", shown(&result));
    assert_eq!(state_of(&mut ws, &stack.server_id, &name).await?.as_deref(), Some("exited"));
    // It is in the agent's history and the audit log.
    agents::until_audited(&stack.api, "agent.docker_action", &name, "ok").await?;
    drop(made);
    Ok(())
}

#[tokio::test]
async fn running_containers_report_their_cpu_and_memory_to_everyone() -> anyhow::Result<()> {
    use porta_shared::docker::DockerStats;
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let suffix = rand_suffix();
    let (busy, idle, stopped) =
        (format!("porta-e2e-busy-{suffix}"), format!("porta-e2e-idle-{suffix}"), format!("porta-e2e-off-{suffix}"));
    made.run(&busy, &image, &[], &["sh", "-c", "while :; do :; done"])?;
    made.run(&idle, &image, &["--memory", "64m"], &["sleep", "600"])?;
    made.run(&stopped, &image, &[], &["true"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = viewer(&stack).await?.ws().await?;
    let id_of = |name: &str| -> anyhow::Result<String> {
        let out = Command::new("docker").args(["inspect", "-f", "{{.Id}}", name]).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let (busy_id, idle_id, stopped_id) = (id_of(&busy)?, id_of(&idle)?, id_of(&stopped)?);
    // The first sample has no CPU yet (it is a change between two); the next has.
    let first = ws.call(OnServer { server: s.clone(), req: DockerStats {} }).await??;
    let seen = first.containers.iter().find(|c| c.id == busy_id).ok_or_else(|| anyhow::anyhow!("{first:?}"))?;
    assert!(seen.mem_bytes > 0 && seen.pids >= 1, "{seen:?}");
    assert!(first.containers.iter().all(|c| c.id != stopped_id), "only running containers: {first:?}");
    let mut taken = first;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        taken = ws.call(OnServer { server: s.clone(), req: DockerStats {} }).await??;
        let cpu = |id: &str| taken.containers.iter().find(|c| c.id == id).and_then(|c| c.cpu_percent);
        if cpu(&busy_id).is_some_and(|p| p > 10.0) && cpu(&idle_id).is_some() {
            break;
        }
    }
    let of = |id: &str| taken.containers.iter().find(|c| c.id == id).cloned();
    let (b, i) =
        (of(&busy_id).ok_or_else(|| anyhow::anyhow!("busy"))?, of(&idle_id).ok_or_else(|| anyhow::anyhow!("idle"))?);
    // (A spinning loop takes a CPU where one is free; on a loaded machine, its share.)
    assert!(b.cpu_percent.is_some_and(|p| p > 10.0), "a spinning loop uses a CPU: {b:?}");
    assert!(i.cpu_percent.is_some_and(|p| p < 5.0), "sleep uses none: {i:?}");
    assert_eq!(i.mem_limit, Some(64 << 20), "its own limit");
    drop(made);
    Ok(())
}

/// Every line of a reading that ends, read batch by batch.
async fn read_all(
    ws: &mut porta_e2e::Ws,
    server: &str,
    asked: DockerLogs,
) -> anyhow::Result<(Vec<String>, Vec<LogLine>)> {
    let opened = ws.call(OnServer { server: server.to_owned(), req: asked }).await??;
    let mut lines = Vec::new();
    loop {
        let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 5_000, max_bytes: None };
        let batch = ws.call(OnServer { server: server.to_owned(), req: read }).await??;
        lines.extend(batch.lines);
        if batch.ended {
            return Ok((opened.containers, lines));
        }
    }
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[tokio::test]
async fn logs_come_interleaved_by_time_within_a_window_searched_and_followed() -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let suffix = rand_suffix();
    let project = format!("porta-e2e-stack-{suffix}");
    let label = format!("com.docker.compose.project={project}");
    let (a, b, ticker) =
        (format!("porta-e2e-a-{suffix}"), format!("porta-e2e-b-{suffix}"), format!("porta-e2e-t-{suffix}"));
    // Two services of one stack, taking turns at half-second steps.
    let a_says = "echo a-one; sleep 1; echo a-three; sleep 1; echo a-five >&2; sleep 600";
    let b_says = "usleep 500000; echo b-two; sleep 1; echo b-four; sleep 600";
    made.run(&a, &image, &["--label", &label], &["sh", "-c", a_says])?;
    made.run(&b, &image, &["--label", &label], &["sh", "-c", b_says])?;
    made.run(&ticker, &image, &[], &["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; usleep 200000; done"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    // The stack's containers, oldest line first, whichever wrote it.
    let whole = DockerLogs { project: Some(project.clone()), ..Default::default() };
    for _ in 0..100 {
        if read_all(&mut ws, &s, whole.clone()).await?.1.len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (names, lines) = read_all(&mut ws, &s, whole.clone()).await?;
    assert_eq!(names, [a.clone(), b.clone()], "by name");
    assert_eq!(texts(&lines), ["a-one", "b-two", "a-three", "b-four", "a-five"]);
    let by: Vec<u16> = lines.iter().map(|l| l.c).collect();
    assert_eq!(by, [0, 1, 0, 1, 0]);
    assert_eq!(lines.iter().map(|l| l.err).collect::<Vec<_>>(), [false, false, false, false, true]);
    assert!(lines.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms), "{lines:?}");

    // Searched (ignoring case), in a window of time, the last lines of one.
    let found = read_all(&mut ws, &s, DockerLogs { contains: Some("FOUR".into()), ..whole.clone() }).await?.1;
    assert_eq!(texts(&found), ["b-four"]);
    let window = DockerLogs { since_ms: Some(lines[1].ts_ms), until_ms: Some(lines[3].ts_ms), ..whole.clone() };
    assert_eq!(texts(&read_all(&mut ws, &s, window).await?.1), ["b-two", "a-three", "b-four"]);
    let last = DockerLogs { containers: vec![a.clone()], tail: Some(1), ..Default::default() };
    assert_eq!(texts(&read_all(&mut ws, &s, last).await?.1), ["a-five"]);

    // Followed: new lines keep coming, in order, until the reading is closed.
    let follow = DockerLogs { containers: vec![ticker.clone()], tail: Some(0), follow: true, ..Default::default() };
    let opened = ws.call(OnServer { server: s.clone(), req: follow }).await??;
    let mut ticks: Vec<u64> = Vec::new();
    while ticks.len() < 4 {
        let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 5_000, max_bytes: None };
        let batch = ws.call(OnServer { server: s.clone(), req: read }).await??;
        assert!(!batch.ended, "a follow does not end while the container runs");
        ticks.extend(batch.lines.iter().filter_map(|l| l.text.strip_prefix("tick ")?.parse::<u64>().ok()));
    }
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "every tick once, in order: {ticks:?}");
    let close = DockerLogsClose { session: opened.session.clone() };
    ws.call(OnServer { server: s.clone(), req: close }).await??;
    let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 0, max_bytes: None };
    let gone = ws.call(OnServer { server: s.clone(), req: read }).await?;
    assert!(matches!(&gone, Err(e) if e.code == ErrorCode::NotFound), "{gone:?}");

    // A removed container's follow ends, and says so.
    let follow = DockerLogs { containers: vec![b.clone()], follow: true, ..Default::default() };
    let opened = ws.call(OnServer { server: s.clone(), req: follow }).await??;
    let status = Command::new("docker").args(["rm", "-f", &b]).output()?;
    anyhow::ensure!(status.status.success(), "docker rm: {}", String::from_utf8_lossy(&status.stderr));
    let mut ended = false;
    for _ in 0..20 {
        let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 2_000, max_bytes: None };
        if ws.call(OnServer { server: s.clone(), req: read }).await??.ended {
            ended = true;
            break;
        }
    }
    assert!(ended, "the reading of a removed container ends");

    // Bad requests say what is wrong.
    let unknown = DockerLogs { containers: vec![format!("porta-e2e-none-{suffix}")], ..Default::default() };
    for (asked, code) in [
        (DockerLogs::default(), ErrorCode::BadRequest),
        (DockerLogs { containers: vec!["../images/create".into()], ..Default::default() }, ErrorCode::BadRequest),
        (DockerLogs { since_ms: Some(2), until_ms: Some(1), ..whole.clone() }, ErrorCode::BadRequest),
        (DockerLogs { contains: Some("x".repeat(300)), ..whole.clone() }, ErrorCode::BadRequest),
        (unknown, ErrorCode::NotFound),
        (DockerLogs { project: Some(format!("none-{suffix}")), ..Default::default() }, ErrorCode::NotFound),
    ] {
        let refused = ws.call(OnServer { server: s.clone(), req: asked.clone() }).await?;
        assert!(matches!(&refused, Err(e) if e.code == code), "{asked:?}: {refused:?}");
    }
    drop(made);
    Ok(())
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_reader_that_stalls_on_a_flood_holds_the_bridge_to_a_few_hundred_kib_and_loses_nothing() -> anyhow::Result<()>
{
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let name = format!("porta-e2e-flood-{}", rand_suffix());
    let flood = "i=0; while true; do i=$((i+1)); echo \"line $i of a container that writes as fast as it can\"; done";
    // Its log on disk is kept small: the engine rotates it.
    made.run(&name, &image, &["--log-opt", "max-size=50m", "--log-opt", "max-file=2"], &["sh", "-c", flood])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let bridge = stack.bridge.pid().ok_or_else(|| anyhow::anyhow!("no bridge process"))?;
    let mut ws = stack.api.ws().await?;
    let follow = DockerLogs { containers: vec![name.clone()], tail: Some(0), follow: true, ..Default::default() };
    let opened = ws.call(OnServer { server: s.clone(), req: follow }).await??;
    let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 5_000, max_bytes: None };
    let number = |l: &LogLine| l.text.strip_prefix("line ")?.split(' ').next()?.parse::<u64>().ok();
    let mut last = None;
    for _ in 0..5 {
        let batch = ws.call(OnServer { server: s.clone(), req: read.clone() }).await??;
        last = batch.lines.iter().rev().find_map(number).or(last);
    }
    let before = rss_kib(bridge);
    // The reader stops for a while; the container goes on writing.
    let mut peak = before;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(bridge));
    }
    // (It reads 256 KiB ahead; unbounded, it grew by 10 MiB in these 3 s.)
    assert!(peak < before + 6 * 1024, "the bridge grew from {before} KiB to {peak} KiB while nobody read");
    // Reading again goes on from where it stopped: not a line lost.
    let batch = ws.call(OnServer { server: s.clone(), req: read.clone() }).await??;
    let next = batch.lines.iter().find_map(number);
    assert_eq!(next, last.map(|n| n + 1), "the line after the last one read");
    let big = batch.lines.iter().map(|l| l.text.len()).sum::<usize>();
    assert!(big > 64 * 1024, "what was held ahead comes at once: {big} bytes");
    drop(made);
    Ok(())
}

/// The processes running in a container, as `docker top` lists them.
fn top(name: &str) -> String {
    Command::new("docker")
        .args(["top", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_console_is_a_shell_in_the_container_that_outlives_the_page_and_ends_with_its_terminal() -> anyhow::Result<()>
{
    use porta_e2e::client::term_open;
    use porta_shared::client::{ClientEvent, TermAttach, TermClose, TermOpen, TermResize};
    use porta_shared::docker::Console;
    use porta_shared::types::TermSize;
    const WAIT: std::time::Duration = std::time::Duration::from_secs(20);
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let name = format!("porta-e2e-console-{}", rand_suffix());
    made.run(&name, &image, &["--hostname", "inside-the-box"], &["sleep", "600"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let console = |c: Console| TermOpen { container: Some(c), size: TermSize { cols: 100, rows: 30 }, ..term_open(&s) };
    let mut ws = stack.api.ws().await?;
    let opened = ws.call(console(Console { container: name.clone(), ..Default::default() })).await??;
    assert_eq!(opened.info.title.as_deref(), Some(name.as_str()), "named for its container");
    ws.input(opened.stream, b"hostname; stty size\r").await?;
    ws.wait_output(opened.stream, "inside-the-box", WAIT).await?;
    ws.wait_output(opened.stream, "30 100", WAIT).await?;
    // Resized with its tab.
    ws.call(TermResize { stream: opened.stream, size: TermSize { cols: 120, rows: 40 } }).await??;
    ws.input(opened.stream, b"stty size\r").await?;
    ws.wait_output(opened.stream, "40 120", WAIT).await?;
    ws.input(opened.stream, b"echo kept=$((40+2)) > /tmp/mark\r").await?;
    // The page goes; the shell in the container stays, and the next page finds it as it was.
    drop(ws);
    let mut ws = stack.api.ws().await?;
    let again = ws.call(TermAttach { server: s.clone(), term: opened.info.term, after: 0 }).await??;
    ws.wait_output(again.stream, "inside-the-box", WAIT).await?;
    ws.input(again.stream, b"cat /tmp/mark\r").await?;
    ws.wait_output(again.stream, "kept=42", WAIT).await?;
    assert!(top(&name).lines().count() >= 3, "a shell beside sleep: {}", top(&name));
    // Closing the terminal hangs the shell up, as closing a terminal does.
    ws.call(TermClose::Stream { stream: again.stream }).await??;
    let deadline = tokio::time::Instant::now() + WAIT;
    while top(&name).lines().count() > 2 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the shell outlived its terminal: {}", top(&name));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(top(&name).contains("sleep 600"), "the container runs on: {}", top(&name));

    // A command of one's own, whose exit code is the terminal's.
    let command = vec!["sh".into(), "-c".into(), "echo via-$((1+2)); exit 3".into()];
    let own = ws.call(console(Console { container: name.clone(), command, ..Default::default() })).await??;
    ws.wait_output(own.stream, "via-3", WAIT).await?;
    let exited = ws.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == own.stream), WAIT).await?;
    assert!(matches!(&exited, ClientEvent::TermExited(e) if e.exit.code == Some(3)), "{exited:?}");

    // Recorded when the workspace records, like any terminal.
    let team = stack.api.own_team().await?;
    let v =
        stack.api.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": team })).await?;
    let workspace = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let on = "mutation($w: String!, $on: Boolean!) { setWorkspaceRecording(id: $w, on: $on) }";
    stack.api.graphql(on, json!({ "w": workspace, "on": true })).await?;
    let command = vec!["sh".into(), "-c".into(), "echo rec-$((6*7))".into()];
    let taped = ws.call(console(Console { container: name.clone(), command, ..Default::default() })).await??;
    assert!(taped.recorded, "the console is told it is recorded");
    ws.wait_output(taped.stream, "rec-42", WAIT).await?;
    ws.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == taped.stream), WAIT).await?;
    stack.api.graphql(on, json!({ "w": workspace, "on": false })).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let list = "query($t: String!) { recordings(teamId: $t) { id termId endedMs } }";
    let tape = loop {
        let v = stack.api.graphql(list, json!({ "t": team })).await?;
        let all = v["data"]["recordings"].as_array().cloned().unwrap_or_default();
        let term = u64::from(taped.info.term.0);
        if let Some(r) = all.iter().find(|r| r["termId"].as_u64() == Some(term) && !r["endedMs"].is_null()) {
            break r["id"].as_str().unwrap_or_default().to_owned();
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the console's recording never ended: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let cast = stack.api.http.get(format!("{}/api/recordings/{tape}", stack.backend.url));
    let cast = cast.bearer_auth(&stack.api.access).send().await?.text().await?;
    assert!(cast.contains("rec-42"), "{cast}");

    // Attached to the main process: a container whose main process is a shell reading its input.
    let main = format!("{name}-main");
    made.run(&main, &image, &["-i"], &["sh"])?;
    let attached = ws.call(console(Console { container: main.clone(), attach: true, ..Default::default() })).await??;
    ws.input(attached.stream, b"echo main-$((5*5))\n").await?;
    ws.wait_output(attached.stream, "main-25", WAIT).await?;
    ws.call(TermClose::Stream { stream: attached.stream }).await??;
    assert_eq!(state_of(&mut ws, &s, &main).await?.as_deref(), Some("running"), "letting go leaves it running");

    // A stopped container says so on the terminal; a bad reference is refused at once.
    act(&mut ws, &s, &main, ContainerAction::Kill).await??;
    let stopped = ws.call(console(Console { container: main.clone(), ..Default::default() })).await??;
    ws.wait_output(stopped.stream, "not running: start it first", WAIT).await?;
    let bad = ws.call(console(Console { container: "../images/create".into(), ..Default::default() })).await?;
    assert!(matches!(&bad, Err(e) if e.code == ErrorCode::BadRequest), "{bad:?}");

    // On the record: who opened which console.
    let v = stack.api.graphql("{ auditLog(action: \"container.console\") { detail result } }", json!({})).await?;
    let lines = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert!(lines.iter().any(|l| l["detail"] == name.as_str()), "{v}");
    assert!(lines.iter().any(|l| l["detail"] == format!("{main} (attached)")), "{v}");
    assert!(lines.iter().any(|l| l["detail"].as_str().is_some_and(|d| d.contains("echo via"))), "{v}");
    drop(made);
    Ok(())
}
