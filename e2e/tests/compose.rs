//! The container deployment as `docker compose up` runs it: two replicas on PostgreSQL and
//! Redis behind Caddy, which terminates TLS with its own CA. `cargo xtask compose-test` builds
//! the images, brings `docker-compose.yml` up under a project of its own, and runs these
//! through the load balancer. Ignored in the ordinary run, where no stack is up.

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
#[ignore = "needs the compose stack: run by `cargo xtask compose-test`"]
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

    // Every request may land on either replica: sockets opened one after another all work.
    for n in 0..4 {
        let mut again = api.ws().await?;
        let t = again.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?.stream;
        again.input(t, format!("echo socket-{n}-$((2*3))\n").as_bytes()).await?;
        again.wait_output(t, &format!("socket-{n}-6"), T).await?;
    }

    // One replica is killed: whichever held the browser's socket or the bridge's link, the
    // other takes over behind the same address, and the terminal (its shell and what it
    // holds) carries on.
    let project = env("PORTA_COMPOSE_PROJECT")?;
    let replica = docker(&[
        "ps",
        "--quiet",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--filter",
        "label=com.docker.compose.service=porta-a",
    ])?;
    anyhow::ensure!(!replica.trim().is_empty(), "no porta-a container in {project}");
    docker(&["kill", replica.trim()])?;
    drop(ws);
    let api = Api::login(&url, "admin", &password).await?;
    api.wait_server_online(true, T).await?;
    let deadline = tokio::time::Instant::now() + T;
    let (mut ws, stream) = loop {
        // Until the bridge has found the surviving replica, attaching may be refused.
        let mut ws = api.ws().await?;
        let attach = client::TermAttach { server: server.clone(), term: opened.info.term, after: 0 };
        match ws.call(attach).await? {
            Ok(att) => break (ws, att.stream),
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("attach refused for now: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => anyhow::bail!("the terminal could not be attached after the kill: {e}"),
        }
    };
    ws.input(stream, b"echo after-the-kill-$KEPT\n").await?;
    ws.wait_output(stream, "after-the-kill-kept-42", T).await?;
    Ok(())
}

/// What `docker args…` printed.
fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker").args(args).output()?;
    anyhow::ensure!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
