//! Teams in the browser: an owner invites people by link from the team's page; one joins as a
//! developer (making an account on the link's page) and works in a terminal on the shared
//! server; another joins as a viewer, watches that terminal and cannot type into it.

use std::time::Duration;

use fantoccini::{Client, Locator};
use porta_e2e::browser::{
    Browser, UiStack, WAIT, run_command, sign_in, terminal_text, type_in_terminal, ui_stack, wait_for, wait_for_text,
    with_screenshot_on_failure,
};

const PASSWORD: &str = "a long enough password";

/// From the dashboard: the team's page, a new invitation link for `role`.
async fn make_link(c: &Client, role: &str) -> anyhow::Result<String> {
    wait_for(c, "a.team-link").await?.click().await?;
    wait_for(c, ".team-page .members tr.member").await?;
    let select = wait_for(c, ".invite-form select[name=role]").await?;
    select.select_by_value(role).await?;
    c.find(Locator::Css("button.make-link")).await?.click().await?;
    let link = wait_for(c, ".invite-link input.link").await?;
    let url = link.prop("value").await?.unwrap_or_default();
    anyhow::ensure!(url.contains("/invite/pin_"), "not a link: {url}");
    Ok(url)
}

async fn sign_out(c: &Client) -> anyhow::Result<()> {
    wait_for(c, "button.signout").await?.click().await?;
    wait_for(c, "input[name=username]").await?;
    Ok(())
}

/// Opens the link signed out, makes the account, and lands on the dashboard.
async fn join(c: &Client, link: &str, name: &str, expect: &str) -> anyhow::Result<()> {
    c.goto(link).await?;
    let lead = wait_for(c, ".invitation").await?;
    let text = lead.text().await?;
    anyhow::ensure!(text.contains(&format!("admin invites you to join admin as {expect}")), "{text}");
    c.find(Locator::Css(".create-account input[name=username]")).await?.send_keys(name).await?;
    c.find(Locator::Css(".create-account input[name=password]")).await?.send_keys(PASSWORD).await?;
    c.find(Locator::Css(".create-account button[type=submit]")).await?.click().await?;
    wait_for(c, ".topbar .user").await?;
    Ok(())
}

#[tokio::test]
async fn an_invited_developer_works_and_an_invited_viewer_only_watches() -> anyhow::Result<()> {
    let ui = UiStack::start(&[], 1280, 800).await?;
    let UiStack { backend, browser, .. } = &ui;
    let url = backend.url.clone();
    let c = &browser.client;
    ui.signed_in("teams", || async {
        // The switcher is drawn before the teams arrive: wait for them, not for the element.
        porta_e2e::browser::wait_text(c, ".team-switcher select", "admin (owner)").await?;
        wait_for(c, "section.workspace-servers[data-workspace=Default] li.server[data-status=online]").await?;

        // The developer.
        let link = make_link(c, "developer").await?;
        browser.screenshot("team").await?;
        sign_out(c).await?;
        join(c, &link, "dev", "developer").await?;
        wait_for(c, "li.server[data-status=online] a").await?.click().await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        run_command(c, "echo dev-$((6*7))").await?;
        wait_for_text(c, "dev-42", WAIT).await?;
        sign_out(c).await?;

        // The viewer.
        sign_in(c, &url).await?;
        let link = make_link(c, "viewer").await?;
        let members = c.find(Locator::Css(".team-page .members")).await?.text().await?;
        assert!(members.contains("dev") && members.contains("developer"), "{members}");
        // A quota set on the page changes that quota only.
        let servers = c.find(Locator::Css("input.max-servers")).await?;
        servers.send_keys("3").await?;
        c.find(Locator::Css("h3")).await?.click().await?;
        let terminals = wait_for(c, "input.max-terminals").await?;
        terminals.send_keys("5").await?;
        c.find(Locator::Css("h3")).await?.click().await?;
        // So is a recording limit (the box holds 100 MB by default: it is cleared first).
        // (The page re-renders the workspace as each change above is saved: type into the
        // input that is there once the value holds.)
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let each = wait_for(c, "input.max-recording-mb").await?;
            let typed = async {
                each.clear().await?;
                each.send_keys("20").await?;
                each.prop("value").await
            };
            if matches!(typed.await, Ok(Some(v)) if v == "20") {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the recording limit never took 20");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.find(Locator::Css("h3")).await?.click().await?;
        let api = porta_e2e::client::Api::login(&url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
        let team = api.own_team().await?;
        let q = "query($t: String!) { team(id: $t) { workspaces { maxServers maxProjects maxTerminals maxRecordingMb maxRecordingsMb } } }";
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = api.graphql(q, serde_json::json!({ "t": team })).await?;
            if v["data"]["team"]["workspaces"][0]
                == serde_json::json!({ "maxServers": 3, "maxProjects": null, "maxTerminals": 5, "maxRecordingMb": 20, "maxRecordingsMb": 2048 })
            {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "quotas: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sign_out(c).await?;
        join(c, &link, "vic", "viewer").await?;
        let row = wait_for(c, "li.server[data-status=online]").await?;
        assert!(row.text().await?.contains("view only"), "{}", row.text().await?);
        row.find(Locator::Css("a")).await?.click().await?;
        wait_for(c, ".view-only:not([hidden])").await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        wait_for_text(c, "dev-42", WAIT).await?;
        let new_tab = c.find(Locator::Css("button.new-tab")).await?;
        assert!(!new_tab.is_displayed().await?, "a viewer has no new-terminal button");
        let new_file = wait_for(c, "button.files-new-file").await?;
        assert!(!new_file.is_displayed().await?, "nor buttons that change files");
        type_in_terminal(c, "echo viewer-typed\n").await?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let text = terminal_text(c).await?;
        assert!(!text.contains("viewer-typed"), "the viewer's keys reached the terminal:\n{text}");
        browser.screenshot("viewer").await?;
        Ok(())
    })
    .await
}

/// The name of the team the dashboard's switcher shows.
async fn shown_team(c: &Client) -> anyhow::Result<String> {
    let v = c
        .execute("const s = document.querySelector('.team-switcher select'); return s ? s.options[s.selectedIndex]?.text ?? '' : '';", vec![])
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

async fn wait_shown_team(c: &Client, starts: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = shown_team(c).await?;
        if shown.starts_with(starts) {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the dashboard shows team {shown:?}, not {starts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Answers the page's prompt with `text`.
async fn answer_prompt(c: &Client, text: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.get_alert_text().await.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no prompt came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.send_alert_text(text).await?;
    c.accept_alert().await?;
    Ok(())
}

/// A phone signed in later opens on the team chosen last on the desktop (and the other way
/// round); an owner renames a team and deletes it by typing its name.
#[tokio::test]
async fn another_device_opens_on_the_team_chosen_last_and_teams_are_renamed_and_deleted() -> anyhow::Result<()> {
    let (backend, _bridge) = ui_stack(&[]).await?;
    let desktop = Browser::start(1280, 800).await?;
    let phone = Browser::start(390, 844).await?;
    let (c, p) = (&desktop.client, &phone.client);
    let result = with_screenshot_on_failure(&desktop, "teams_last_team", || async {
        sign_in(c, &backend.url).await?;
        wait_shown_team(c, "admin").await?;
        wait_for(c, ".team-switcher select").await?.select_by_value("+new").await?;
        answer_prompt(c, "Zeta").await?;
        wait_shown_team(c, "Zeta").await?;
        // The phone, signed in for the first time, opens on Zeta too.
        sign_in(p, &backend.url).await?;
        wait_shown_team(p, "Zeta").await?;
        // Switched back on the phone: the desktop follows on its next visit.
        let admin_team = p
            .execute("return [...document.querySelectorAll('.team-switcher option')].find(o => o.text.startsWith('admin')).value", vec![])
            .await?;
        wait_for(p, ".team-switcher select").await?.select_by_value(admin_team.as_str().unwrap_or_default()).await?;
        wait_shown_team(p, "admin").await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            c.refresh().await?;
            wait_for(c, ".team-switcher select").await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if shown_team(c).await?.starts_with("admin") {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the desktop kept showing {}", shown_team(c).await?);
        }

        // Rename Zeta, then delete it: a wrong name is refused and nothing goes.
        let zeta = c
            .execute("return [...document.querySelectorAll('.team-switcher option')].find(o => o.text.startsWith('Zeta')).value", vec![])
            .await?;
        wait_for(c, ".team-switcher select").await?.select_by_value(zeta.as_str().unwrap_or_default()).await?;
        wait_shown_team(c, "Zeta").await?;
        wait_for(c, "a.team-link").await?.click().await?;
        wait_for(c, ".team-page .members tr.member").await?;
        wait_for(c, "button.rename-team").await?.click().await?;
        answer_prompt(c, "Zeta Labs").await?;
        porta_e2e::browser::wait_text(c, ".team-page .heading h2", "Zeta Labs").await?;
        wait_for(c, "button.delete-team").await?.click().await?;
        answer_prompt(c, "Zeta").await?;
        porta_e2e::browser::wait_text(c, ".team-page .error", "type the team's name").await?;
        wait_for(c, "button.delete-team").await?.click().await?;
        answer_prompt(c, "Zeta Labs").await?;
        wait_for(c, ".team-switcher select").await?;
        wait_shown_team(c, "admin").await?;
        let names = c.execute("return [...document.querySelectorAll('.team-switcher option')].map(o => o.text).join('|')", vec![]).await?;
        assert!(!names.as_str().unwrap_or_default().contains("Zeta"), "{names}");
        Ok(())
    })
    .await;
    desktop.close().await;
    phone.close().await;
    result
}

/// Waits until the element `css` is shown (`true`) or not.
async fn wait_displayed(c: &Client, css: &str, shown: bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = match c.find(Locator::Css(css)).await {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        };
        if now == shown {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{css} is still {}",
            if now { "shown" } else { "hidden" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A developer's open page follows their role live: lowered to viewer, terminals and the
/// editor become read-only and say so and the controls a viewer lacks go; raised again, they
/// come back; removed from the team, the page leaves for the dashboard and says why.
async fn role_changes_reach_an_open_page(width: u32, height: u32) -> anyhow::Result<()> {
    let (backend, bridge) = ui_stack(&[]).await?;
    let notes = bridge.dir.path().join("notes.txt");
    std::fs::write(&notes, "first line\n")?;
    let admin = porta_e2e::client::Api::login(&backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let team = admin.own_team().await?;
    let link = admin.invite(&team, "developer").await?;
    let dev = porta_e2e::client::Api::join_by_link(&backend.url, &link, "dev", PASSWORD).await?;
    let dev_id = dev.graphql("{ me { id } }", serde_json::json!({})).await?["data"]["me"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let set_role = |role: &'static str| {
        let (admin, team, dev_id) = (&admin, team.clone(), dev_id.clone());
        async move {
            let q =
                "mutation($t: String!, $u: String!, $r: String!) { setMemberRole(teamId: $t, userId: $u, role: $r) }";
            let v = admin.graphql(q, serde_json::json!({ "t": team, "u": dev_id, "r": role })).await?;
            anyhow::ensure!(v["data"]["setMemberRole"] == true, "{v}");
            anyhow::Ok(())
        }
    };
    let phone = width < 700;
    let browser = Browser::start(width, height).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, &format!("teams_live_role_{width}"), || async {
        c.goto(&backend.url).await?;
        wait_for(c, "input[name=username]").await?.send_keys("dev").await?;
        c.find(Locator::Css("input[name=password]")).await?.send_keys(PASSWORD).await?;
        c.find(Locator::Css("button[type=submit]")).await?.click().await?;
        wait_for(c, "li.server[data-status=online] a").await?.click().await?;
        wait_for(c, ".tab.active[data-state=live]").await?;
        wait_displayed(c, "button.new-tab", true).await?;
        if phone {
            wait_displayed(c, ".keyrow", true).await?;
        } else {
            let row = ".files-entry[data-name='notes.txt'] > button.files-name";
            wait_for(c, row).await?.click().await?;
            wait_for(c, ".editor-pane.active .editor-host .view-lines").await?;
            wait_displayed(c, ".editor-pane.active button.save", true).await?;
            // Back to the terminal for the role change.
            wait_for(c, ".tab:not(.editor-tab)").await?.click().await?;
        }

        // Lowered to viewer: the page follows at once.
        set_role("viewer").await?;
        wait_displayed(c, ".view-only", true).await?;
        wait_displayed(c, ".pane.active .pane-viewonly", true).await?;
        wait_displayed(c, "button.new-tab", false).await?;
        if phone {
            wait_displayed(c, ".keyrow", false).await?;
        } else {
            wait_displayed(c, "button.files-new-file", false).await?;
            wait_for(c, ".editor-tab").await?.click().await?;
            wait_displayed(c, ".editor-pane.active .editor-readonly", true).await?;
            wait_displayed(c, ".editor-pane.active button.save", false).await?;
            // Typing changes nothing.
            c.find(Locator::Css(".editor-pane.active .editor-host .view-lines")).await?.click().await?;
            porta_e2e::browser::type_keys(c, "typed by a viewer").await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let text = porta_e2e::browser::editor_text(c, &notes.to_string_lossy()).await?.unwrap_or_default();
            assert_eq!(text, "first line\n", "a viewer's keys changed the text");
            browser.screenshot("viewer-live").await?;
        }

        // Raised again: what a developer has comes back.
        set_role("developer").await?;
        wait_displayed(c, ".view-only", false).await?;
        if phone {
            wait_displayed(c, "button.new-tab", true).await?;
        } else {
            wait_displayed(c, ".editor-pane.active button.save", true).await?;
            wait_displayed(c, "button.files-new-file", true).await?;
        }

        // Removed: the page leaves, and the dashboard says why.
        let q = "mutation($t: String!, $u: String!) { removeMember(teamId: $t, userId: $u) }";
        admin.graphql(q, serde_json::json!({ "t": team, "u": dev_id })).await?;
        let notice = wait_for(c, ".dashboard .notice:not([hidden])").await?;
        assert!(notice.text().await?.contains("no longer have access"), "{}", notice.text().await?);
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

#[tokio::test]
async fn a_role_change_reaches_an_open_page_at_once() -> anyhow::Result<()> {
    role_changes_reach_an_open_page(1280, 800).await
}

#[tokio::test]
async fn on_a_phone_a_role_change_reaches_an_open_page_at_once() -> anyhow::Result<()> {
    role_changes_reach_an_open_page(390, 844).await
}
