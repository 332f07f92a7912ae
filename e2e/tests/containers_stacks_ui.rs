//! The Containers panel's Stacks tab in headless Chromium, against a real backend, bridge,
//! Docker engine and docker-compose, at a desktop's size and a phone's: a stack started outside
//! Porta is listed with its file, services and running containers; stopped and started from
//! the page, each step's output shown; its compose file opened in the editor; taken down after
//! asking. Without an engine the test says it did not run.

use fantoccini::Locator;
use porta_e2e::browser::{UiStack, click, editor_text, tool, wait_text};
use porta_e2e::docker::{ComposeUp, Made, docker, rand_suffix, test_image};

async fn a_stack(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let Some(image) = test_image() else { return Ok(()) };
    let made = Made::new();
    let dir = tempfile::tempdir()?;
    let project = format!("porta-ui-stack-{}", rand_suffix());
    let up = ComposeUp::start(dir.path(), &project, &image, &made.label)?;
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        tool(c, "button.containers-toggle").await?;
        click(c, ".container-tabs .ctab-stacks").await?;
        let row = format!(".stacks-list tr[data-name='{project}']");
        let shown = wait_text(c, &row, "2 of 2").await?;
        assert!(shown.contains("compose.yml") && shown.contains("web, worker"), "{shown}");
        // Stopped and started from the page, each followed to its end.
        click(c, &format!("{row} button.stop")).await?;
        wait_text(c, ".job.done h3", &format!("stop {project}: done")).await?;
        wait_text(c, &row, "0 of 2").await?;
        assert_eq!(docker(&["ps", "-q", "--filter", &format!("label=com.docker.compose.project={project}")])?, "");
        click(c, &format!("{row} button.start")).await?;
        wait_text(c, ".job.done h3", &format!("start {project}: done")).await?;
        wait_text(c, &row, "2 of 2").await?;
        browser.screenshot(&format!("{shot}_stacks")).await?;
        // Its compose file, in the editor.
        click(c, &format!("{row} .stack-file button.edit")).await?;
        wait_text(c, ".tabs", "compose.yml").await?;
        let path = up.file.to_string_lossy().into_owned();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !editor_text(c, &path).await?.is_some_and(|t| t.contains("worker:")) {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{path} is not in the editor");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // Taken down after asking: a refusal keeps it. (The panel gave way to the editor.)
        tool(c, "button.containers-toggle").await?;
        click(c, ".container-tabs .ctab-stacks").await?;
        c.execute("window.confirm = () => { window.asked = true; return false; };", vec![]).await?;
        click(c, &format!("{row} button.down")).await?;
        assert_eq!(c.execute("return window.asked === true;", vec![]).await?, serde_json::json!(true));
        c.execute("window.confirm = () => true;", vec![]).await?;
        click(c, &format!("{row} button.down")).await?;
        wait_text(c, ".job.done h3", &format!("down {project}: done")).await?;
        wait_text(c, &row, "0 of 0").await?;
        let left = docker(&["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={project}")])?;
        assert_eq!(left, "", "its containers are gone");
        assert!(c.find(Locator::Css(&format!("{row} button.up"))).await.is_ok(), "it can be brought up again");
        Ok(())
    })
    .await?;
    drop(up);
    drop(made);
    Ok(())
}

#[tokio::test]
async fn on_a_desktop_a_stack_is_stopped_started_edited_and_taken_down() -> anyhow::Result<()> {
    a_stack(1400, 900, "container_stacks").await
}

#[tokio::test]
async fn on_a_phone_the_same_works_from_cards() -> anyhow::Result<()> {
    a_stack(390, 844, "container_stacks_phone").await
}
