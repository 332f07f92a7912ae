//! The safety controls a person reaches in the browser: their account page (change the
//! password, sign out everywhere) on a desktop and a phone, and a workspace's command policy on
//! the team page (a rule added, saved and tried).

use std::time::Duration;

use fantoccini::Locator;
use porta_e2e::browser::{UiStack, click, wait_for, wait_text};
use serde_json::json;

/// Signed in on a phone, the person changes their password from the account page (a weak one
/// is refused with the reason); the laptop's sign-in ends; then "sign out everywhere" ends this
/// one too.
#[tokio::test]
async fn a_person_changes_their_password_and_signs_out_everywhere_on_a_phone() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 390, 844).await?;
    let UiStack { backend, browser, .. } = &ui;
    let laptop = porta_e2e::Api::login(&backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let c = &browser.client;
    ui.signed_in("account_phone", || async {
        click(c, "a.account-link").await?;
        let fill = |new: &'static str| async move {
            for (name, value) in [("current", porta_e2e::ADMIN_PASSWORD), ("new", new), ("again", new)] {
                let field = wait_for(c, &format!(".password-form input[name={name}]")).await?;
                field.clear().await?;
                field.send_keys(value).await?;
            }
            click(c, "button.change-password").await
        };
        fill("password123").await?;
        wait_text(c, ".account .error", "too easy to guess").await?;
        fill("a far better passphrase").await?;
        wait_text(c, ".account .done", "Every other sign-in has ended").await?;
        browser.screenshot("phone-account").await?;
        let r = laptop.get_with_token("/api/auth/me", &laptop.access).await?;
        anyhow::ensure!(r.status() == 401, "the laptop's sign-in ended: {}", r.status());
        // This page goes on working with its new sign-in.
        c.goto(&format!("{}/tokens", backend.url)).await?;
        wait_for(c, "form.token-form").await?;
        c.goto(&format!("{}/account", backend.url)).await?;
        click(c, "button.sign-out-everywhere").await?;
        c.accept_alert().await?;
        wait_for(c, "input[name=username]").await?;
        Ok(())
    })
    .await?;
    let old = porta_e2e::Api::post_login(&backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    assert_eq!(old.status(), 401, "the old password no longer works");
    Ok(())
}

/// An admin adds a rule to the workspace's command policy, saves it, and tries commands: the
/// page says what the policy would do, and the rule holds for the agent API.
#[tokio::test]
async fn an_admin_edits_and_tries_the_command_policy() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1400, 1000).await?;
    let UiStack { backend, browser, .. } = &ui;
    let api = porta_e2e::Api::login(&backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let team = api.own_team().await?;
    let c = &browser.client;
    ui.signed_in("command_policy", || async {
        c.goto(&format!("{}/teams/{team}", backend.url)).await?;
        let section = ".workspace-policy[data-workspace=Default]";
        wait_for(c, &format!("{section} tr.policy-rule")).await?;
        // What the default says.
        let try_it = |line: &'static str| async move {
            let field = wait_for(c, &format!("{section} input.try-command")).await?;
            field.clear().await?;
            field.send_keys(line).await?;
            click(c, &format!("{section} button.check-command")).await
        };
        try_it("sudo rm -rf /").await?;
        wait_text(c, &format!("{section} .policy-verdict"), "Blocked").await?;
        try_it("make deploy").await?;
        wait_text(c, &format!("{section} .policy-verdict"), "Needs approval").await?;
        // A rule of the admin's own: `make` is allowed.
        click(c, &format!("{section} button.add-rule")).await?;
        let first = format!("{section} tr.policy-rule:first-child");
        wait_for(c, &format!("{first} select.tier")).await?.select_by_value("allow").await?;
        let pattern = wait_for(c, &format!("{first} input.pattern")).await?;
        pattern.send_keys("make").await?;
        c.find(Locator::Css(&format!("{first} input.note"))).await?.send_keys("our builds").await?;
        click(c, &format!("{section} h4")).await?;
        click(c, &format!("{section} button.save-policy")).await?;
        wait_text(c, &format!("{section} .policy-status"), "Saved.").await?;
        try_it("make deploy").await?;
        wait_text(c, &format!("{section} .policy-verdict"), "Allowed").await?;
        browser.screenshot("command-policy").await?;
        // A bad pattern is refused with the rule it is in, and nothing is saved.
        click(c, &format!("{section} button.add-rule")).await?;
        wait_for(c, &format!("{first} input.pattern")).await?.send_keys("rm [").await?;
        click(c, &format!("{section} h4")).await?;
        click(c, &format!("{section} button.save-policy")).await?;
        wait_text(c, &format!("{section} .error"), "rule 1").await?;
        Ok(())
    })
    .await?;
    let v = api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let ws = v["data"]["servers"][0]["workspaceId"].clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = api
            .graphql(
                "query($w: String!) { commandPolicy(workspaceId: $w) { rules { tier pattern } } }",
                json!({ "w": ws }),
            )
            .await?;
        let rules = v["data"]["commandPolicy"]["rules"].as_array().cloned().unwrap_or_default();
        if rules.first() == Some(&json!({ "tier": "allow", "pattern": "make" }))
            && !rules.iter().any(|r| r["pattern"] == "rm [")
        {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
