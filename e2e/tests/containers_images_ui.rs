//! The Containers panel's Images, Volumes and Networks tabs in headless Chromium, against a
//! real backend, bridge, Docker engine and registry, at a desktop's size and a phone's: an
//! image pulled from the registry with its layers shown, checked for a newer one, an unused one
//! removed after asking (a used one cannot be); a volume's size, place and users, what is
//! unused shown before anything goes, a volume and a network removed; the engine's own
//! networks offered no removal. Only what the test made is ever removed: the "Remove these"
//! of the unused list would take whatever else is unused on this machine, so it is checked to
//! be offered, and its removal of exactly what was shown is tested through the API
//! (`containers_images.rs`). Without an engine the test says it did not run.

use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, tool, wait_for, wait_text};
use porta_e2e::docker::{Made, Registry, docker, rand_suffix, test_image};

/// Waits until `css` matches nothing.
async fn gone(c: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.find(Locator::Css(css)).await.is_ok() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{css} is still shown");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn images_volumes_and_networks(width: u32, height: u32, shot: &str) -> anyhow::Result<()> {
    let Some(image) = test_image() else { return Ok(()) };
    let registry = Registry::start().await?;
    let made = Made::new();
    let x = rand_suffix();
    let (used, spare) = (format!("porta-ui-used-{x}:1"), format!("porta-ui-spare-{x}:1"));
    made.image(&image, &used, 1000)?;
    made.image(&image, &spare, 1000)?;
    let (vol, net) = (format!("porta-ui-vol-{x}"), format!("porta-ui-net-{x}"));
    made.volume(&vol)?;
    made.network(&net)?;
    let fill = "busybox head -c 300000 /dev/urandom > /d/data";
    docker(&["run", "--rm", "--label", &made.label, "-v", &format!("{vol}:/d"), &image, "sh", "-c", fill])?;
    made.run(&format!("porta-ui-user-{x}"), &used, &[], &["sleep", "600"])?;
    let pulled = match &registry {
        Some(r) => {
            let name = r.name(&format!("porta-ui/app-{x}:1"));
            made.image(&image, &name, 2 << 20)?;
            docker(&["push", &name])?;
            docker(&["rmi", &name])?;
            Some(name)
        }
        None => None,
    };
    let ui = UiStack::start(&[], width, height).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page(shot, || async {
        tool(c, "button.containers-toggle").await?;
        click(c, ".container-tabs .ctab-images").await?;
        let row = |tag: &str| format!(".image-list tr[data-tags~='{tag}']");
        wait_for(c, &row(&spare)).await?;
        // A used image cannot be removed, and says why.
        let remove = wait_for(c, &format!("{} button.remove", row(&used))).await?;
        assert!(remove.attr("disabled").await?.is_some(), "a used image's Remove is disabled");
        let users = c.find(Locator::Css(&format!("{} .users", row(&used)))).await?.text().await?;
        assert!(users.contains("porta-ui-user"), "{users}");
        // Pulled from the registry, its layers shown; then checked: up to date.
        if let Some(name) = &pulled {
            let input = wait_for(c, ".pull-form .pull-image").await?;
            input.send_keys(name).await?;
            click(c, ".pull-form button[type='submit']").await?;
            wait_text(c, ".job.done h3", "done").await?;
            let layers = c.find(Locator::Css(".job.done .layers")).await?.text().await?;
            assert!(layers.contains("Pull complete") && layers.contains("Already exists"), "{layers}");
            wait_for(c, &row(name)).await?;
            click(c, ".check-updates").await?;
            wait_text(c, &format!("{} .image-check", row(name)), "up to date").await?;
            browser.screenshot(&format!("{shot}_images")).await?;
        } else {
            eprintln!("NOT RUN: pulling in the browser, since there is no registry");
        }
        // Removing asks first.
        c.execute("window.confirm = () => true;", vec![]).await?;
        click(c, &format!("{} button.remove", row(&spare))).await?;
        gone(c, &row(&spare)).await?;
        anyhow::ensure!(docker(&["image", "inspect", &spare]).is_err(), "{spare} is still in the engine");

        // Volumes: its size and place; what is unused shown before anything goes.
        click(c, ".container-tabs .ctab-volumes").await?;
        let vrow = format!(".volumes-list tr[data-name='{vol}']");
        // Sizes are added up where the bridge may read the engine's folder (as root).
        let place = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol])?;
        let readable = std::fs::read_dir(place.trim()).is_ok();
        wait_text(c, &format!("{vrow} .second"), if readable { "kB" } else { "–" }).await?;
        let users = wait_for(c, &format!("{vrow} .users")).await?.text().await?;
        assert_eq!(users, "–", "no container uses it");
        click(c, &format!("{vrow} .cname button")).await?;
        wait_text(c, &format!("{vrow} .item-facts"), "/volumes/").await?;
        click(c, ".containers-head button.unused").await?;
        let plan = wait_text(c, ".prune .prune-items", &vol).await?;
        assert!(!readable || plan.contains("kB"), "sizes shown: {plan}");
        let go = wait_for(c, ".prune button.prune-go").await?;
        let offered = go.text().await?;
        assert!(
            go.is_displayed().await? && (offered.starts_with("Remove these") || offered == "Remove it"),
            "{offered}"
        );
        browser.screenshot(&format!("{shot}_volumes")).await?;
        click(c, ".prune .details-head button").await?;
        click(c, &format!("{vrow} button.remove")).await?;
        gone(c, &vrow).await?;
        anyhow::ensure!(docker(&["volume", "inspect", &vol]).is_err(), "{vol} is still in the engine");

        // Networks: the engine's own offer no removal; the test's goes.
        click(c, ".container-tabs .ctab-networks").await?;
        let nrow = format!(".networks-list tr[data-name='{net}']");
        wait_for(c, &nrow).await?;
        let builtin = wait_text(c, ".networks-list tr[data-name='bridge']", "built in").await?;
        assert!(!builtin.is_empty());
        let own = c.find(Locator::Css(".networks-list tr[data-name='bridge'] button.remove")).await?;
        assert!(!own.is_displayed().await?, "the engine's own network offers no removal");
        click(c, &format!("{nrow} button.remove")).await?;
        gone(c, &nrow).await?;
        anyhow::ensure!(docker(&["network", "inspect", &net]).is_err(), "{net} is still in the engine");
        Ok(())
    })
    .await?;
    drop(made);
    Ok(())
}

#[tokio::test]
async fn on_a_desktop_images_volumes_and_networks_are_seen_pulled_and_removed() -> anyhow::Result<()> {
    images_volumes_and_networks(1400, 900, "container_images").await
}

#[tokio::test]
async fn on_a_phone_the_same_works_from_cards() -> anyhow::Result<()> {
    images_volumes_and_networks(390, 844, "container_images_phone").await
}
