//! Containers in the browser, in headless Chromium against a real backend, bridge and Docker
//! engine, at a desktop's size and a phone's: the server page's Containers lists a container
//! of this test's own, shows its settings with environment values hidden until revealed,
//! stops and starts it, and removes it after asking. Without an engine (no
//! `PORTA_TEST_DOCKER_IMAGE`, which `cargo xtask test` sets) the test says it did not run.

use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, tool, wait_for, wait_text};

/// Removes the test's container whatever happens.
struct Made(String);

impl Drop for Made {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.0]).output();
    }
}

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
            "-e",
            "SECRET_TOKEN=abc123",
            "-p",
            "127.0.0.1::80",
        ])
        .args([&image, "sleep", "600"])
        .output()?;
    anyhow::ensure!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    Ok(Some(Made(name.to_owned())))
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
        click(c, &format!("tr[data-name='{name}'] .cname button")).await?;
        let env = wait_text(c, ".container-details .env", "SECRET_TOKEN").await?;
        assert!(!env.contains("abc123") && env.contains("••••••"), "{env}");
        click(c, ".container-details button.reveal").await?;
        wait_text(c, ".container-details .env", "abc123").await?;
        browser.screenshot(shot).await?;
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while c.find(Locator::Css(&format!("tr[data-name='{name}']"))).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{name} still listed after removal");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let gone = Command::new("docker").args(["inspect", &name]).output()?;
        assert!(!gone.status.success(), "the engine still has {name}");
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
