//! What a person sees, in headless Chromium.

use std::time::Duration;

use fantoccini::Locator;
use porta_e2e::browser::{Browser, with_screenshot_on_failure};
use porta_e2e::{Backend, ui_dir};

#[tokio::test]
async fn the_app_starts_in_chromium() -> anyhow::Result<()> {
    let ui = ui_dir()?.to_string_lossy().into_owned();
    let backend = Backend::start(&[("PORTA_UI_DIR", &ui)]).await?;
    let browser = Browser::start(1280, 800).await?;
    let result = with_screenshot_on_failure(&browser, "the_app_starts_in_chromium", || async {
        // A client route: the backend answers with the app, and the wasm mounts.
        browser.client.goto(&format!("{}/servers", backend.url)).await?;
        let heading =
            browser.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("main h1")).await?;
        assert_eq!(heading.text().await?, "Porta");
        let protocol = browser.client.find(Locator::XPath("//p[contains(., 'Wire protocol')]")).await?;
        assert_eq!(protocol.text().await?, format!("Wire protocol v{}", porta_shared::PROTOCOL_VERSION));
        browser.screenshot("app").await?;
        Ok(())
    })
    .await;
    browser.close().await;
    result
}
