//! Alerts in the browser, in headless Chromium against a real backend and bridge: a channel
//! added on the alerts page delivers a test to a local webhook receiver, a rule made in the
//! form fires on the real bridge's telemetry, and the top bar's badge and the history show it.

use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{UiStack, click, wait_for, wait_text};
use porta_e2e::webhook::Receiver;

const SHORT: Duration = Duration::from_secs(40);

async fn choose(c: &Client, select: &str, value: &str) -> anyhow::Result<()> {
    let js = format!(
        "const s = document.querySelector({select:?}); s.value = {value:?}; s.dispatchEvent(new Event('change')); return s.value;"
    );
    let v = c.execute(&js, vec![]).await?;
    anyhow::ensure!(v.as_str() == Some(value), "{select} has no option {value}");
    Ok(())
}

#[tokio::test]
async fn a_rule_made_on_the_page_fires_to_its_channel_and_shows_on_the_badge() -> anyhow::Result<()> {
    let ui = UiStack::start(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")], 1400, 900).await?;
    let UiStack { browser, .. } = &ui;
    let receiver = Receiver::start(0).await?;
    let c = &browser.client;
    ui.signed_in("alerts", || async {
        wait_for(c, "li.server[data-status=online]").await?;
        click(c, "a.alerts-link").await?;
        wait_text(c, ".alert-history", "Nothing has fired.").await?;

        // A webhook channel, and its test.
        wait_for(c, ".channel-form input[name=channel-name]").await?.send_keys("ops hook").await?;
        wait_for(c, ".channel-form input[name=channel-url]").await?.send_keys(&receiver.url).await?;
        click(c, ".channel-form button[type=submit]").await?;
        wait_for(c, ".channel[data-channel='ops hook']").await?;
        click(c, ".channel[data-channel='ops hook'] .send-test").await?;
        wait_text(c, ".channel[data-channel='ops hook'] .test-result", "Delivered").await?;
        receiver.wait_for("alert.test").await?;

        // A rule: processes > 0 (always true here), at once, to the channel.
        wait_for(c, ".rule-form input[name=rule-name]").await?.send_keys("busy").await?;
        choose(c, ".rule-form select[name=rule-metric]", "processes").await?;
        wait_for(c, ".rule-form input[name=rule-threshold]").await?.send_keys("0").await?;
        let f = wait_for(c, ".rule-form input[name=rule-for]").await?;
        f.clear().await?;
        f.send_keys("0").await?;
        choose(c, ".rule-form select[name=rule-severity]", "critical").await?;
        click(c, ".channel-picks input[type=checkbox]").await?;
        click(c, ".rule-form button[type=submit]").await?;
        wait_text(c, ".rule[data-rule='busy'] .cond", "Processes > 0").await?;

        let fired = receiver.wait_for("alert.firing").await?;
        assert_eq!(fired["rule"], "busy");
        // The badge (it looks every 15 s) and the history.
        let badge = wait_for(c, ".alert-badge.critical:not([hidden]) .count").await?;
        assert_eq!(badge.text().await?, "1");
        click(c, ".alert-history .refresh").await?;
        wait_text(c, ".alerts tr.alert[data-state=firing] .rule-name", "busy").await?;
        browser.screenshot("alerts").await?;

        // Every control of the forms has a name a screen reader says.
        let unnamed = c
            .execute(
                "return [...document.querySelectorAll('.rule-form input, .rule-form select, .channel-form input, .channel-form select')]\
                 .filter(e => e.type !== 'hidden' && !e.getAttribute('aria-label') && !(e.labels && e.labels.length))\
                 .map(e => e.name || e.outerHTML)",
                vec![],
            )
            .await?;
        assert_eq!(unnamed, serde_json::json!([]), "controls without a name");
        // After a reload the history names the server (not its id).
        c.refresh().await?;
        wait_text(c, ".alerts tr.alert[data-state=firing] .server", "vm").await?;

        // Pausing the rule resolves the alert.
        click(c, ".rule[data-rule='busy'] .toggle").await?;
        wait_for(c, ".rule[data-rule='busy'][data-enabled=false]").await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        loop {
            click(c, ".alert-history .refresh").await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if c.find(Locator::Css(".alerts tr.alert[data-state=resolved]")).await.is_ok() {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the alert never showed as resolved");
        }
        // Nothing fires any more: after a reload the badge is gone.
        c.refresh().await?;
        wait_for(c, ".alerts tr.alert[data-state=resolved]").await?;
        let badge = wait_for(c, ".alert-badge[data-checked]").await?;
        assert!(!badge.is_displayed().await?, "the badge stays after every alert resolved");

        // A container rule: a restart loop, its count of deaths asked for.
        wait_for(c, ".rule-form input[name=rule-name]").await?.send_keys("looping").await?;
        choose(c, ".rule-form select[name=rule-kind]", "container_restarts").await?;
        let n = wait_for(c, ".rule-form input[name=rule-restarts]").await?;
        assert!(n.is_displayed().await?, "the count is asked for a restart loop");
        n.clear().await?;
        n.send_keys("4").await?;
        click(c, ".rule-form button[type=submit]").await?;
        wait_text(c, ".rule[data-rule='looping'] .cond", "a container dies 4 times within 10 min").await?;
        Ok(())
    })
    .await
}
