//! The container deployment as `docker compose up` runs it: two replicas on PostgreSQL and
//! Redis behind Caddy, which terminates TLS with its own CA. `cargo xtask compose-test` builds
//! the images, brings `docker-compose.yml` up under a project of its own, and runs these
//! through the load balancer, in a step of its own (the other steps leave this binary out,
//! since no stack is up then).

use std::time::Duration;

use anyhow::Context as _;
use porta_e2e::client::term_open;
use porta_e2e::{Api, Bridge};
use porta_shared::client;
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: run this through `cargo xtask compose-test`"))
}

async fn enrolment_token(api: &Api) -> anyhow::Result<String> {
    let v = api.graphql("mutation { createEnrollmentToken { token } }", json!({})).await?;
    v["data"]["createEnrollmentToken"]["token"].as_str().map(str::to_owned).with_context(|| format!("{v}"))
}

#[tokio::test]
async fn through_the_load_balancer_a_person_signs_in_enrols_a_server_and_opens_a_terminal() -> anyhow::Result<()> {
    let (url, password, ca) =
        (env("PORTA_COMPOSE_URL")?, env("PORTA_COMPOSE_ADMIN_PASSWORD")?, env("PORTA_E2E_CA_FILE")?);
    assert!(url.starts_with("https://"), "{url}");
    let api = Api::login(&url, "admin", &password).await?;

    // A bridge that does not know the load balancer's CA is refused with the reason, and
    // the token it tried stays unused.
    let token = enrolment_token(&api).await?;
    let refused = Bridge::enroll_at(&url, &token, &[], &[]).await.err().context("enrolled without the CA")?;
    let text = format!("{refused:#}");
    assert!(text.contains("certificate") || text.contains("UnknownIssuer"), "{text}");

    let mut bridge = Bridge::enroll_at(&url, &token, &["--ca-file", &ca], &[]).await?;
    bridge.run(&[])?;
    let server = api.wait_server_online(true, T).await?;
    let mut ws = api.ws().await?;
    let opened = ws.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?;
    let term = opened.stream;
    ws.input(term, b"export KEPT=kept-$((40+2)); echo through-the-balancer-$((40+2))\n").await?;
    ws.wait_output(term, "through-the-balancer-42", T).await?;

    // Sockets opened one after another all work.
    for n in 0..4 {
        let mut again = api.ws().await?;
        let t = again.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?.stream;
        again.input(t, format!("echo socket-{n}-$((2*3))\n").as_bytes()).await?;
        again.wait_output(t, &format!("socket-{n}-6"), T).await?;
    }

    // Each replica is killed in turn (and started again before the next), so whichever held
    // the browser's socket or the bridge's link dies once: the other takes over behind the
    // same address, and the terminal (its shell and what it holds) carries on.
    drop(ws);
    let project = env("PORTA_COMPOSE_PROJECT")?;
    for (n, service) in ["porta-a", "porta-b"].into_iter().enumerate() {
        let replica = docker(&[
            "ps",
            "--quiet",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])?;
        let replica = replica.trim();
        anyhow::ensure!(!replica.is_empty(), "no {service} container in {project}");
        docker(&["kill", replica])?;
        // Gone for good, not dying: a request caught in its last moment fails, as it would
        // anywhere (it may have been acted on); the ones after it must not.
        docker(&["wait", replica])?;
        let api = sign_in_again(&url, &password).await?;
        let (mut ws, stream) = attach_when_the_bridge_is_back(&api, &server, opened.info.term).await?;
        ws.input(stream, format!("echo after-kill-{n}-$KEPT\n").as_bytes()).await?;
        ws.wait_output(stream, &format!("after-kill-{n}-kept-42"), T).await?;
        docker(&["start", replica])?;
        wait_healthy(replica).await?;
    }
    Ok(())
}

/// Signs in as a person would after a replica died under them: a request the balancer had
/// already sent to the dying replica fails (502), and until the balancer has seen which
/// replicas are up again it may have none (503); trying again reaches a live one.
async fn sign_in_again(url: &str, password: &str) -> anyhow::Result<Api> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut failures = Vec::new();
    loop {
        match Api::login(url, "admin", password).await {
            Ok(api) => return Ok(api),
            Err(e) if tokio::time::Instant::now() < deadline => {
                failures.push(format!("{e:#}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("no sign-in within 30 s of a replica's death: {e:#} (before: {failures:?})"),
        }
    }
}

/// A socket attached to terminal `term` of `server`, once the bridge has found a replica
/// (until then attaching is refused).
async fn attach_when_the_bridge_is_back(
    api: &Api,
    server: &str,
    term: porta_shared::types::TermId,
) -> anyhow::Result<(porta_e2e::Ws, porta_shared::types::StreamId)> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let mut ws = api.ws().await?;
        let attach = client::TermAttach { server: server.to_owned(), term, after: 0 };
        match ws.call(attach).await? {
            Ok(att) => return Ok((ws, att.stream)),
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("attaching is refused for now: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("the terminal could not be attached after the kill: {e}"),
        }
    }
}

async fn wait_healthy(container: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let health = docker(&["inspect", "-f", "{{.State.Health.Status}}", container])?;
        if health.trim() == "healthy" {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{container} is {health} after a restart");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What `docker args…` printed.
fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker").args(args).output()?;
    anyhow::ensure!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
