//! Containers in the browser, in headless Chromium against a real backend, bridge and Docker
//! engine, at a desktop's size and a phone's: the server page's Containers lists a container
//! of this test's own, shows its settings with environment values hidden until revealed,
//! recreates it with the same settings, reads its log (followed, searched, downloaded, and its
//! compose project's), opens a console in it that a reload finds again, stops and starts it,
//! and removes it after asking. Without an engine (no `PORTA_TEST_DOCKER_IMAGE`, which
//! `cargo xtask test` sets) the test says it did not run.

use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, run_command, tool, wait_for, wait_for_text, wait_text};

const WAIT: Duration = Duration::from_secs(20);

/// Removes the test's container whatever happens.
struct Made(String);

impl Drop for Made {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.0]).output();
    }
}

/// What the test's container says: a greeting, then a tick a second.
const SAYS: &str = "echo hello from porta; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done";

fn run_container(name: &str) -> anyhow::Result<Option<Made>> {
    let Some(image) = std::env::var("PORTA_TEST_DOCKER_IMAGE").ok().filter(|i| !i.is_empty()) else {
        eprintln!(
            "NOT RUN: no container engine for the tests (`cargo xtask test` starts one and sets PORTA_TEST_DOCKER_IMAGE)"
        );
        return Ok(None);
    };
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            // busybox's sleep, as pid 1, ignores SIGTERM: a stop would wait out its grace.
            "--stop-timeout",
            "1",
            "--name",
            name,
            "--label",
            "porta.e2e=ui",
            "--label",
            &format!("com.docker.compose.project={name}-stack"),
            "-e",
            "SECRET_TOKEN=abc123",
            "-p",
            "127.0.0.1::80",
        ])
        .args([&image, "sh", "-c", SAYS])
        .output()?;
    anyhow::ensure!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    Ok(Some(Made(name.to_owned())))
}

/// The engine's id of the container `name`.
fn docker_id(name: &str) -> anyhow::Result<String> {
    let out = Command::new("docker").args(["inspect", "-f", "{{.Id}}", name]).output()?;
    anyhow::ensure!(out.status.success(), "docker inspect {name}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Waits until the row of `name` shows `state`.
async fn row_in(c: &Client, name: &str, state: &str) -> anyhow::Result<()> {
    wait_for(c, &format!(".container-list tr[data-name='{name}'][data-state='{state}']")).await.map(drop)
}

async fn the_life_of_a_container(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let name = format!("porta-ui-{shot}-{}", std::process::id());
    let Some(made) = run_container(&name)? else { return Ok(()) };
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        tool(c, "button.containers-toggle").await?;
        row_in(c, &name, "running").await?;
        let facts = wait_text(c, ".containers .facts", "running").await?;
        assert!(facts.contains(" of "), "{facts}");
        let ports = c.find(Locator::Css(&format!("tr[data-name='{name}'] .cports"))).await?.text().await?;
        assert!(ports.contains("→80/tcp"), "{ports:?}");
        // Its settings: the secret's name, not its value, until revealed.
        // What it uses now, in its row, and charted in its settings.
        wait_text(c, &format!("tr[data-name='{name}'] .usage"), "CPU").await?;
        click(c, &format!("tr[data-name='{name}'] .cname button")).await?;
        wait_text(c, ".container-usage figure[data-chart='Memory'] .value", "B").await?;
        let env = wait_text(c, ".container-details .env", "SECRET_TOKEN").await?;
        assert!(!env.contains("abc123") && env.contains("••••••"), "{env}");
        click(c, ".container-details button.reveal").await?;
        wait_text(c, ".container-details .env", "abc123").await?;
        browser.screenshot(shot).await?;
        // Recreated with the same settings after asking: a new container under the name, its
        // environment and port kept, followed in a job until done.
        let before = docker_id(&name)?;
        c.execute("window.confirm = () => true;", vec![]).await?;
        click(c, ".container-details button.recreate-same").await?;
        wait_text(c, ".job.done h3", &format!("recreate {name}: done")).await?;
        row_in(c, &name, "running").await?;
        let after = docker_id(&name)?;
        assert_ne!(before, after, "made again");
        let env = Command::new("docker").args(["inspect", "-f", "{{json .Config.Env}}", &name]).output()?;
        assert!(String::from_utf8_lossy(&env.stdout).contains("SECRET_TOKEN=abc123"), "the environment kept");
        // Its log: followed as it grows, searched on the server, downloaded whole.
        click(c, &format!("tr[data-name='{name}'] button.logs")).await?;
        wait_text(c, ".container-logs .log-lines", "hello from porta").await?;
        wait_text(c, ".container-logs .log-lines", "tick 3").await?;
        browser.screenshot(&format!("{shot}_logs")).await?;
        let search = wait_for(c, ".container-logs .logs-search input").await?;
        search.send_keys("TICK 2\n").await?;
        wait_text(c, ".container-logs .logs-status", "TICK 2").await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let shown = c.find(Locator::Css(".container-logs .log-lines")).await?.text().await?;
            if !shown.contains("hello") && shown.contains("tick 2") {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the search did not narrow the lines: {shown}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        click(c, ".container-logs button.download").await?;
        let file = browser.downloaded(&format!("{name}-logs.txt"), Duration::from_secs(30)).await?;
        let file = String::from_utf8(file)?;
        assert!(file.contains(" stdout tick 2") && !file.contains("hello"), "{file}");
        click(c, ".container-logs .details-head button").await?;
        // The compose project's logs: every container of it together.
        click(c, &format!("tr[data-name='{name}'] button.project")).await?;
        wait_text(c, ".container-logs h3", "compose project").await?;
        wait_text(c, ".container-logs .log-lines", "hello from porta").await?;
        click(c, ".container-logs .details-head button").await?;
        // A console: a terminal tab in the container, named for it, that a reload finds again.
        click(c, &format!("tr[data-name='{name}'] button.console")).await?;
        wait_for_text(c, "# ", WAIT).await?;
        run_command(c, "echo in-$((3*4))").await?;
        wait_for_text(c, "in-12", WAIT).await?;
        c.refresh().await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        let show = "for (const t of document.querySelectorAll('.tab')) { \
                      const n = t.querySelector('.tab-name'); \
                      if (n && n.innerText.includes(arguments[0])) { t.click(); return true; } } return false;";
        while c.execute(show, vec![serde_json::json!(name)]).await? != serde_json::json!(true) {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no tab named {name} after the reload");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        wait_for_text(c, "in-12", WAIT).await?;
        tool(c, "button.containers-toggle").await?;
        row_in(c, &name, "running").await?;
        // Stop and start; removing asks first (a refusal keeps it), then it is gone.
        click(c, &format!("tr[data-name='{name}'] button.stop")).await?;
        row_in(c, &name, "exited").await?;
        click(c, &format!("tr[data-name='{name}'] button.start")).await?;
        row_in(c, &name, "running").await?;
        c.execute("window.confirm = () => { window.asked = true; return false; };", vec![]).await?;
        click(c, &format!("tr[data-name='{name}'] button.remove")).await?;
        let asked = c.execute("return window.asked === true;", vec![]).await?;
        assert_eq!(asked, serde_json::json!(true), "removing asks first");
        let kept = Command::new("docker").args(["inspect", &name]).output()?;
        assert!(kept.status.success(), "declined, {name} is kept");
        c.execute("window.confirm = () => true;", vec![]).await?;
        click(c, &format!("tr[data-name='{name}'] button.remove")).await?;
        // Gone from the engine and from the list (a row is also made again when its state
        // changes, so its absence for a moment proves nothing alone).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let in_engine = Command::new("docker").args(["inspect", &name]).output()?.status.success();
            let listed = c.find(Locator::Css(&format!("tr[data-name='{name}']"))).await.is_ok();
            if !in_engine && !listed {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{name} after removal: in the engine {in_engine}, listed {listed}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    })
    .await?;
    drop(made);
    Ok(())
}

#[tokio::test]
async fn on_a_desktop_containers_are_listed_inspected_stopped_started_and_removed() -> anyhow::Result<()> {
    the_life_of_a_container(1400, 900, "containers").await
}

#[tokio::test]
async fn on_a_phone_the_same_works_from_cards() -> anyhow::Result<()> {
    the_life_of_a_container(390, 844, "containers_phone").await
}
