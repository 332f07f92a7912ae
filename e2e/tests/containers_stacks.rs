//! Compose stacks through the bridge, with a real Docker engine and docker-compose: a stack
//! started outside Porta is found by its labels (its file, folder, services and containers);
//! a developer stops, starts, restarts, takes down, brings up and pulls it, each a job whose
//! output is read; a viewer looks only; an unknown stack or a bad name is refused, and so is
//! one whose containers disagree on its compose file. Without an engine the test says it did
//! not run.

use porta_e2e::docker::{ComposeUp as Up, Made, Registry, docker, rand_suffix, test_image};
use porta_e2e::{Api, Stack};
use porta_shared::ErrorCode;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerJobRead, DockerStacks, JobProgress, StackAction, StackVerb};
use serde_json::json;

/// Runs `verb` on the stack and reads its job to the end.
async fn act(ws: &mut porta_e2e::Ws, s: &str, project: &str, verb: StackVerb) -> anyhow::Result<JobProgress> {
    let asked = StackAction { project: project.to_owned(), action: verb };
    let job = ws.call(OnServer { server: s.to_owned(), req: asked }).await??.job;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut after = 0;
    loop {
        let read = DockerJobRead { job: job.clone(), after, wait_ms: 5000 };
        let now = ws.call(OnServer { server: s.to_owned(), req: read }).await??;
        if now.ended {
            return Ok(now);
        }
        after = now.version;
        anyhow::ensure!(std::time::Instant::now() < deadline, "{verb:?} did not end: {now:?}");
    }
}

fn states(project: &str) -> anyhow::Result<Vec<String>> {
    let filter = format!("label=com.docker.compose.project={project}");
    let out = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.State}}"])?;
    let mut all: Vec<String> = out.lines().map(str::to_owned).collect();
    all.sort();
    Ok(all)
}

#[tokio::test]
async fn a_stack_started_outside_porta_is_found_and_run_whole() -> anyhow::Result<()> {
    let Some(image) = test_image() else { return Ok(()) };
    let registry = Registry::start().await?;
    let made = Made::new();
    let x = rand_suffix();
    // With a registry, its services' image comes from it, so a pull has something to do.
    let image = match &registry {
        Some(r) => {
            let name = r.name(&format!("porta-e2e/stack-{x}:1"));
            made.image(&image, &name, 1000)?;
            docker(&["push", &name])?;
            name
        }
        None => image,
    };
    let dir = tempfile::tempdir()?;
    let project = format!("porta-e2e-stack-{x}");
    let up = Up::start(dir.path(), &project, &image, &made.label)?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let listed = ws.call(OnServer { server: s.clone(), req: DockerStacks {} }).await??;
    assert!(listed.compose.is_some(), "docker-compose is found: {listed:?}");
    let found = listed.stacks.iter().find(|st| st.name == project).ok_or_else(|| anyhow::anyhow!("{listed:?}"))?;
    let file = up.file.canonicalize()?.to_string_lossy().into_owned();
    assert!(found.files.iter().any(|f| *f == file || f.ends_with("/compose.yml")), "{found:?}");
    assert_eq!(found.services, vec!["web".to_owned(), "worker".to_owned()]);
    assert_eq!((found.containers.len(), found.running), (2, 2), "{found:?}");

    // A viewer looks, and changes nothing.
    let team = stack.api.own_team().await?;
    let link = stack.api.invite(&team, "viewer").await?;
    let viewer = Api::join_by_link(&stack.backend.url, &link, "vic", "a long enough password").await?;
    let mut vws = viewer.ws().await?;
    let refused = vws
        .call(OnServer { server: s.clone(), req: StackAction { project: project.clone(), action: StackVerb::Down } })
        .await?;
    assert!(matches!(&refused, Err(e) if e.code == ErrorCode::Forbidden), "{refused:?}");
    assert_eq!(states(&project)?, vec!["running", "running"]);

    let done = act(&mut ws, &s, &project, StackVerb::Stop).await?;
    assert_eq!(done.error, None, "{done:?}");
    assert_eq!(states(&project)?, vec!["exited", "exited"]);
    let done = act(&mut ws, &s, &project, StackVerb::Start).await?;
    assert_eq!(done.error, None, "{done:?}");
    assert_eq!(states(&project)?, vec!["running", "running"]);
    let done = act(&mut ws, &s, &project, StackVerb::Restart).await?;
    assert_eq!(done.error, None, "{done:?}");
    assert_eq!(states(&project)?, vec!["running", "running"]);
    let done = act(&mut ws, &s, &project, StackVerb::Down).await?;
    assert_eq!(done.error, None, "{done:?}");
    assert!(done.said.iter().any(|l| l.contains("Removing")), "compose's own words: {done:?}");
    assert!(states(&project)?.is_empty(), "taken down");
    // Still listed without containers (its file is there), and brought up again.
    let listed = ws.call(OnServer { server: s.clone(), req: DockerStacks {} }).await??;
    let down = listed.stacks.iter().find(|st| st.name == project).ok_or_else(|| anyhow::anyhow!("{listed:?}"))?;
    assert!(down.containers.is_empty() && !down.files.is_empty(), "{down:?}");
    let done = act(&mut ws, &s, &project, StackVerb::Up).await?;
    assert_eq!(done.error, None, "{done:?}");
    assert_eq!(states(&project)?, vec!["running", "running"]);
    if registry.is_some() {
        let done = act(&mut ws, &s, &project, StackVerb::Pull).await?;
        assert_eq!(done.error, None, "{done:?}");
    }

    // Bad and unknown stacks.
    for (project, code) in [("../x", ErrorCode::BadRequest), ("porta-e2e-no-such-stack", ErrorCode::NotFound)] {
        let asked = StackAction { project: project.into(), action: StackVerb::Up };
        let r = ws.call(OnServer { server: s.clone(), req: asked }).await?;
        assert!(matches!(&r, Err(e) if e.code == code), "{project}: {r:?}");
    }
    // A container labelled into the stack by someone else, naming another compose file: the
    // stack's files are no longer believed, and compose is not run with either.
    let elsewhere = tempfile::tempdir()?;
    let evil = elsewhere.path().join("compose.yml");
    let evil_name = format!("porta-e2e-evil-{x}");
    std::fs::write(
        &evil,
        format!(
            "services:\n  evil:\n    image: {image}\n    container_name: {evil_name}\n    command: [\"sleep\", \"600\"]\n"
        ),
    )?;
    let (claim_project, claim_files, claim_dir) = (
        format!("com.docker.compose.project={project}"),
        format!("com.docker.compose.project.config_files={}", evil.display()),
        format!("com.docker.compose.project.working_dir={}", elsewhere.path().display()),
    );
    let spoof = ["--label", &claim_project, "--label", &claim_files, "--label", &claim_dir];
    made.run(&format!("porta-e2e-spoof-{x}"), &image, &spoof, &["sleep", "600"])?;
    let listed = ws.call(OnServer { server: s.clone(), req: DockerStacks {} }).await??;
    let torn = listed.stacks.iter().find(|st| st.name == project).ok_or_else(|| anyhow::anyhow!("{listed:?}"))?;
    assert!(torn.files.is_empty(), "{torn:?}");
    assert!(torn.conflict.as_deref().is_some_and(|c| c.contains("different compose files")), "{torn:?}");
    let asked = StackAction { project: project.clone(), action: StackVerb::Up };
    let r = ws.call(OnServer { server: s.clone(), req: asked }).await?;
    assert!(matches!(&r, Err(e) if e.code == ErrorCode::Conflict && e.message.contains("agree")), "{r:?}");
    assert!(docker(&["inspect", &evil_name]).is_err(), "the other compose file never ran");
    assert_eq!(states(&project)?, vec!["running", "running", "running"]);

    let v = stack.api.graphql("{ auditLog(action: \"stack.\") { action detail result } }", json!({})).await?;
    let entries = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    for action in ["stack.stop", "stack.start", "stack.restart", "stack.down", "stack.up"] {
        assert!(
            entries.iter().any(|e| e["action"] == action && e["detail"] == project.as_str() && e["result"] == "ok"),
            "{action}: {v}"
        );
    }
    assert!(entries.iter().any(|e| e["result"] == "denied"), "{v}");
    drop(up);
    drop(made);
    Ok(())
}
