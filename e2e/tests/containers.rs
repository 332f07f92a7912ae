//! Containers on a server through its bridge, with a real Docker engine: listed, started,
//! stopped, paused, renamed, inspected (environment values hidden until a developer reveals
//! them) and removed, each change audited; a viewer only looks; bad references and unknown
//! containers are refused clearly; a bridge pointed at no engine says so. The engine and the
//! image (`porta-test/busybox`, from Debian's busybox-static) come from `cargo xtask test`,
//! which names the image in `PORTA_TEST_DOCKER_IMAGE`; without it these tests say they did
//! not run.

use std::process::Command;

use porta_e2e::{Api, Stack};
use porta_shared::client::OnServer;
use porta_shared::docker::{Container, ContainerAction, DockerAction, DockerInspect, DockerList};
use porta_shared::{ErrorBody, ErrorCode};
use serde_json::json;

/// The test image, or None (said) where no engine runs.
fn image() -> Option<String> {
    let image = std::env::var("PORTA_TEST_DOCKER_IMAGE").ok().filter(|i| !i.is_empty());
    if image.is_none() {
        eprintln!(
            "NOT RUN: no container engine for the tests (`cargo xtask test` starts one and sets PORTA_TEST_DOCKER_IMAGE)"
        );
    }
    image
}

/// Containers this test made, by a label of its own: removed when it ends, whatever happens.
struct Made {
    label: String,
}

impl Made {
    fn new() -> Self {
        Self { label: format!("porta.e2e={}", rand_suffix()) }
    }

    /// `docker run -d` of `args` (after the image), named `name`, labelled as this test's.
    fn run(&self, name: &str, image: &str, extra: &[&str], args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("docker")
            // busybox's sleep, as pid 1, ignores SIGTERM: a stop would wait out its grace.
            .args(["run", "-d", "--stop-timeout", "1", "--name", name, "--label", &self.label])
            .args(extra)
            .arg(image)
            .args(args)
            .output()?;
        anyhow::ensure!(out.status.success(), "docker run {name}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        if let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(["rm", "-f", "-v"]).args(&ids).output();
            }
        }
    }
}

fn rand_suffix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos)
}

async fn list(ws: &mut porta_e2e::Ws, server: &str) -> anyhow::Result<Vec<Container>> {
    let listed = ws
        .call(OnServer { server: server.to_owned(), req: DockerList {} })
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    anyhow::ensure!(listed.unavailable.is_none(), "{:?}", listed.unavailable);
    Ok(listed.containers)
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
    let team = stack.api.own_team().await?;
    let viewer = Api::join_by_link(
        &stack.backend.url,
        &stack.api.invite(&team, "viewer").await?,
        "vic",
        "a long enough password",
    )
    .await?;
    let mut ws = viewer.ws().await?;
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
    made.run(&name, &image, &[], &["sleep", "600"])?;
    let stack = Stack::start(&[], &[]).await?;
    let q = "mutation { createApiToken(name: \"mcp\", scopes: [\"read\", \"write\", \"terminal\"]) { token } }";
    let v = stack.api.graphql(q, json!({})).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let client = connect(&stack.backend.url, &token, "ops-bot").await?;
    // A read: at once.
    let listed = call(&client, "docker_list", json!({ "server_id": stack.server_id })).await?;
    assert_ne!(listed.is_error, Some(true), "{}", shown(&listed));
    assert!(shown(&listed).contains(&name), "{}", shown(&listed));
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
