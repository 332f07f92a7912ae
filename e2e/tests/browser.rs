//! What a person sees, in headless Chromium.

use std::time::Duration;

use fantoccini::Locator;
use porta_e2e::browser::{Browser, UiStack, with_screenshot_on_failure};
use porta_e2e::{ADMIN_PASSWORD, Backend, Bridge, ui_dir};

#[tokio::test]
async fn sign_in_see_the_servers_stay_signed_in_and_sign_out() -> anyhow::Result<()> {
    let ui = ui_dir()?.to_string_lossy().into_owned();
    let backend = Backend::start(&[("PORTA_UI_DIR", &ui)]).await?;
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let wait = || c.wait().at_most(Duration::from_secs(20));
    let result = with_screenshot_on_failure(&browser, "sign_in", || async {
        // A client route: the backend answers with the app, and the wasm mounts.
        c.goto(&format!("{}/servers", backend.url)).await?;
        let user = wait().for_element(Locator::Css("input[name=username]")).await?;
        user.send_keys("admin").await?;
        let pass = c.find(Locator::Css("input[name=password]")).await?;
        pass.send_keys("not the password").await?;
        c.find(Locator::Css("button[type=submit]")).await?.click().await?;
        let error = wait().for_element(Locator::Css(".error:not([hidden])")).await?;
        assert_eq!(error.text().await?, "wrong username or password");

        pass.clear().await?;
        pass.send_keys(ADMIN_PASSWORD).await?;
        c.find(Locator::Css("button[type=submit]")).await?.click().await?;
        let row = wait().for_element(Locator::Css("li.server[data-status=online]")).await?;
        assert!(row.text().await?.contains("online"));
        assert_eq!(c.find(Locator::Css(".topbar .user")).await?.text().await?, "admin");
        browser.screenshot("dashboard").await?;

        // "Add server" shows the one line to paste on it, with a fresh one-time token: it
        // installs the bridge from this backend (`tests/install.rs` runs it).
        c.find(Locator::Css("button.add-server")).await?.click().await?;
        let command = wait().for_element(Locator::Css(".enroll .command")).await?.text().await?;
        assert!(
            command.starts_with(&format!("curl -fsSL {}/install.sh | sudo sh -s -- --token pet_", backend.url)),
            "{command}"
        );
        let intro = c.find(Locator::Css(".enroll p")).await?.text().await?;
        assert!(intro.contains("Linux, x86_64 or aarch64") && intro.contains("minutes"), "{intro}");
        // The test's backend is on 127.0.0.1: the page says another machine cannot reach it.
        let warning = c.find(Locator::Css(".enroll .warning")).await?.text().await?;
        assert!(warning.contains(&backend.url) && warning.contains("PORTA_PUBLIC_URL"), "{warning}");
        // One click copies the line.
        browser.grant_clipboard().await?;
        c.find(Locator::Css(".enroll button.copy")).await?.click().await?;
        porta_e2e::browser::wait_text(c, ".enroll button.copy", "Copied").await?;
        let copied = c.execute_async("navigator.clipboard.readText().then(arguments[0])", vec![]).await?;
        assert_eq!(copied.as_str(), Some(command.as_str()), "the clipboard holds the command");

        // A reload keeps the session (through the refresh cookie, not a stored token).
        c.refresh().await?;
        wait().for_element(Locator::Css("li.server[data-status=online]")).await?;

        c.find(Locator::Css("button.signout")).await?.click().await?;
        wait().for_element(Locator::Css("input[name=username]")).await?;
        c.refresh().await?;
        wait().for_element(Locator::Css("input[name=username]")).await?;
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

#[tokio::test]
async fn the_first_run_creates_the_admin() -> anyhow::Result<()> {
    let ui = ui_dir()?.to_string_lossy().into_owned();
    let backend = Backend::start_without_admin(&[("PORTA_UI_DIR", &ui)]).await?;
    let browser = Browser::start(390, 844).await?;
    let c = &browser.client;
    let wait = || c.wait().at_most(Duration::from_secs(20));
    let result = with_screenshot_on_failure(&browser, "first_run", || async {
        c.goto(&backend.url).await?;
        let lead = wait().for_element(Locator::Css(".lead:not([hidden])")).await?;
        assert!(lead.text().await?.contains("administrator"));
        c.find(Locator::Css("input[name=username]")).await?.send_keys("root-admin").await?;
        let pass = c.find(Locator::Css("input[name=password]")).await?;
        pass.send_keys("short").await?;
        c.find(Locator::Css("button[type=submit]")).await?.click().await?;
        let error = wait().for_element(Locator::Css(".error:not([hidden])")).await?;
        assert!(error.text().await?.contains("password"), "a clear reason");

        pass.clear().await?;
        pass.send_keys("a long enough password").await?;
        c.find(Locator::Css("button[type=submit]")).await?.click().await?;
        let user = wait().for_element(Locator::Css(".topbar .user")).await?;
        // On a phone the name is not shown, to leave room; it is still the signed-in user.
        assert_eq!(user.prop("textContent").await?.as_deref(), Some("root-admin"));
        // The set-up is closed now: the same form signs in.
        let api = porta_e2e::Api::login(&backend.url, "root-admin", "a long enough password").await;
        assert!(api.is_ok());
        let again = reqwest::Client::new()
            .post(format!("{}/api/auth/setup", backend.url))
            .json(&serde_json::json!({ "username": "second", "password": "another password" }))
            .send()
            .await?;
        assert_eq!(again.status(), 409);
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

#[tokio::test]
async fn the_access_token_is_renewed_silently_before_it_expires() -> anyhow::Result<()> {
    let ui = ui_dir()?.to_string_lossy().into_owned();
    // The shortest lifetime Porta accepts, so that the page must renew it during the test.
    let backend = Backend::start(&[("PORTA_UI_DIR", &ui), ("PORTA_ACCESS_TTL_SECS", "10")]).await?;
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    bridge.run(&[])?;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "token_renewal", || async {
        porta_e2e::browser::sign_in(c, &backend.url).await?;
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("li.server")).await?;
        // Well past the first token's expiry, the page still talks to the API as the user.
        tokio::time::sleep(Duration::from_secs(13)).await;
        c.find(Locator::Css("button.refresh")).await?.click().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let error = c.find(Locator::Css(".dashboard .error")).await?;
        assert!(error.attr("hidden").await?.is_some(), "no error after expiry: {}", error.text().await?);
        c.find(Locator::Css("li.server[data-status=online]")).await?;
        assert!(!c.current_url().await?.as_str().contains("token"), "no token in the address");
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

#[tokio::test]
async fn going_between_pages_and_back_never_panics() -> anyhow::Result<()> {
    use porta_e2e::browser::{click, wait_for};
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    ui.on_server_page("navigation", || async {
        for round in 0..3 {
            // Every panel open, so that each has something to tear down.
            for panel in ["button.files-toggle", "button.chat-toggle", "button.monitor-toggle"] {
                click(c, panel).await?;
            }
            wait_for(c, ".files-pane .files-tree").await?;
            // Back to the dashboard by the page's arrow, then by the browser's Back.
            click(c, "a.back").await?;
            wait_for(c, "li.server[data-status=online] a").await?;
            for link in ["a.audit-link", "a.tokens-link", "a.alerts-link", "a.account-link", "a.team-link"] {
                click(c, link).await?;
                wait_for(c, "a.back").await?;
                if round % 2 == 0 {
                    click(c, "a.back").await?;
                } else {
                    c.back().await?;
                }
                wait_for(c, "li.server[data-status=online] a").await?;
            }
            click(c, "li.server[data-status=online] a").await?;
            wait_for(c, ".tab.active[data-state=live]").await?;
            // Every page error so far fails the test here, with the round it happened in.
            let errors = browser.page_errors().await?;
            anyhow::ensure!(errors.is_empty(), "round {round}: the page logged errors:\n{}", errors.join("\n"));
        }
        c.back().await?;
        wait_for(c, "li.server[data-status=online] a").await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn no_page_scrolls_sideways_on_a_phone() -> anyhow::Result<()> {
    use porta_e2e::browser::{click, wait_for};
    let ui = UiStack::start(&[], 390, 844).await?;
    let UiStack { browser, .. } = &ui;
    let c = &browser.client;
    let fits = |what: &'static str| async move {
        // Let the page fill in, then measure what is wider than the screen.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let wide = c
                .execute(
                    "const w = document.documentElement.clientWidth;
                     const over = [...document.querySelectorAll('body *')]
                       .filter(e => e.getBoundingClientRect().right > w + 1 && getComputedStyle(e).position !== 'fixed')
                       .filter(e => !e.parentElement.closest('[data-scrolls]'))
                       .slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
                     return [document.documentElement.scrollWidth, w, over.join(', ')];",
                    vec![],
                )
                .await?;
        let (scroll, width) = (wide[0].as_f64().unwrap_or(0.0), wide[1].as_f64().unwrap_or(0.0));
        anyhow::ensure!(
            scroll <= width + 1.0,
            "{what}: the page is {scroll} px wide on a {width} px screen: {}",
            wide[2]
        );
        anyhow::Ok(())
    };
    ui.signed_in("phone_width", || async {
        wait_for(c, "li.server[data-status=online] a").await?;
        fits("the dashboard").await?;
        for link in ["a.tokens-link", "a.team-link", "a.alerts-link", "a.audit-link", "a.account-link"] {
            click(c, link).await?;
            wait_for(c, "a.back").await?;
            fits(link).await?;
            click(c, "a.back").await?;
            wait_for(c, "li.server[data-status=online] a").await?;
        }
        // The line to paste on a new server wraps, with its options open too.
        click(c, "button.add-server").await?;
        wait_for(c, ".enroll .command").await?;
        fits("add server").await?;
        click(c, ".enroll details.options summary").await?;
        fits("add server's options").await?;
        browser.screenshot("add_server_phone").await?;
        Ok(())
    })
    .await
}
