//! Upgrading a bridge in place: on SIGHUP the binary on disk takes over the running
//! process's terminals (see `bridge-daemon/src/handover.rs`). Nothing is lost, repeated or
//! reordered, the shells live on, and a binary that cannot run is refused.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use porta_e2e::client::term_open;
use porta_e2e::{Backend, Bridge, Stack, Ws, bin};
use porta_shared::client::ClientEvent;
use porta_shared::types::StreamId;

const T: Duration = Duration::from_secs(30);

async fn open(ws: &mut Ws, server: &str) -> anyhow::Result<StreamId> {
    Ok(ws.call(term_open(server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?.stream)
}

/// A stack whose bridge runs from a copy in its own folder, which the test may replace as an
/// upgrade replaces `/usr/local/bin/porta-bridge`.
async fn stack_with_own_binary() -> anyhow::Result<(Stack, std::path::PathBuf)> {
    stack_with_own_binary_and(&[]).await
}

async fn stack_with_own_binary_and(env: &[(&str, &str)]) -> anyhow::Result<(Stack, std::path::PathBuf)> {
    let backend = Backend::start(env).await?;
    let mut bridge = Bridge::enroll(&backend, &[]).await?;
    let exe = bridge.dir.path().join("porta-bridge");
    std::fs::copy(bin("porta-bridge")?, &exe)?;
    bridge.program = Some(exe.clone());
    bridge.run(&[])?;
    Ok((Stack::signed_in(backend, bridge).await?, exe))
}

/// Puts `content` at `exe` the way an installer does: a new file renamed over the old one.
fn replace(exe: &Path, content: &[u8]) -> anyhow::Result<()> {
    let new = exe.with_extension("new");
    std::fs::write(&new, content)?;
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&new, exe)?;
    Ok(())
}

fn hang_up(pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status()?;
    anyhow::ensure!(status.success(), "kill -HUP {pid} failed");
    Ok(())
}

/// The numbers of the `line-<n>` lines in `text`, in order.
fn numbered(text: &str) -> Vec<u32> {
    text.split("line-")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn an_upgrade_keeps_every_terminal_and_every_byte() -> anyhow::Result<()> {
    let (stack, exe) = stack_with_own_binary().await?;
    let (api, server) = (&stack.api, stack.server_id.clone());
    let pid = stack.bridge.pid().context("no bridge pid")?;
    let mut ws = api.ws().await?;
    let a = open(&mut ws, &server).await?;
    let b = open(&mut ws, &server).await?;
    // b holds state only a living shell has; a writes numbered lines across the upgrade.
    ws.input(b, b"export KEPT=$((40+2)); cd /tmp\n").await?;
    ws.input(
        a,
        b"for i in $(seq 1 3000); do echo line-$i; [ $((i % 100)) = 0 ] && sleep 0.05; done; echo done-$((1+1))\n",
    )
    .await?;
    ws.wait_output(a, "line-500\r\n", T).await?;

    replace(&exe, &std::fs::read(bin("porta-bridge")?)?)?;
    hang_up(pid)?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == a), T).await?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == a), T).await?;
    let text = ws.wait_output(a, "done-2", T).await?;
    assert_eq!(numbered(&text), (1..=3000).collect::<Vec<_>>(), "every line once, in order");
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    assert!(ws.gaps.is_empty(), "{:?}", ws.gaps);

    // The same process (its shells are still its children) runs the new file.
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "the bridge's process id changed");
    let running = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    assert_eq!(running, exe, "it runs the binary now on disk, not the one it was started from");
    ws.input(b, b"echo kept-$KEPT in $(pwd)\n").await?;
    ws.wait_output(b, "kept-42 in /tmp", T).await?;
    // A shell that exits after the upgrade is still reaped with its status.
    ws.input(b, b"exit 7\n").await?;
    let ev = ws.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == b), T).await?;
    let ClientEvent::TermExited(ev) = ev else { unreachable!() };
    assert_eq!(ev.exit.code, Some(7));

    // A second upgrade works as the first did; new terminals get new ids.
    hang_up(pid)?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == a), T).await?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == a), T).await?;
    ws.input(a, b"echo again-$((3*3))\n").await?;
    ws.wait_output(a, "again-9", T).await?;
    let c = ws.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?;
    let ids = api
        .graphql("query($s: String!) { terminals(serverId: $s) { id } }", serde_json::json!({ "s": server }))
        .await?;
    let ids: Vec<u64> =
        ids["data"]["terminals"].as_array().into_iter().flatten().filter_map(|t| t["id"].as_u64()).collect();
    assert_eq!(ids.iter().filter(|id| **id == u64::from(c.info.term.0)).count(), 1, "{ids:?}");
    Ok(())
}

#[tokio::test]
async fn a_binary_that_cannot_run_is_refused_and_the_terminals_go_on() -> anyhow::Result<()> {
    let (stack, exe) = stack_with_own_binary().await?;
    let (api, server) = (&stack.api, stack.server_id.clone());
    let pid = stack.bridge.pid().context("no bridge pid")?;
    let mut ws = api.ws().await?;
    let a = open(&mut ws, &server).await?;
    // Sent just before the hang-up: the bridge reads its link to the end before it tries the
    // upgrade, so this input reaches the shell (it was lost in a socket buffer once).
    ws.input(a, b"export KEPT=$((6*7))\n").await?;

    replace(&exe, b"#!/bin/sh\nexit 1\n")?;
    hang_up(pid)?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == a), T).await?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == a), T).await?;
    ws.input(a, b"echo still-$KEPT\n").await?;
    ws.wait_output(a, "still-42", T).await?;
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    // And it still stops when told to: a failed upgrade undoes no SIGTERM.
    let mut stack = stack;
    assert!(stack.bridge.terminate().await?.success(), "a clean exit after SIGTERM");
    Ok(())
}

/// `binary` with the version behind its marker (`porta-bridge-version:<v>\0`) raised to one
/// of the same length made of nines: a newer bridge that is otherwise this one.
fn with_newer_version(binary: &[u8], current: &str) -> anyhow::Result<(Vec<u8>, String)> {
    let marker = format!("porta-bridge-version:{current}\0").into_bytes();
    let at = binary.windows(marker.len()).position(|w| w == marker.as_slice()).context("no version marker")?;
    let newer: String = current.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    let mut out = binary.to_vec();
    out[at + "porta-bridge-version:".len()..at + marker.len() - 1].copy_from_slice(newer.as_bytes());
    Ok((out, newer))
}

#[tokio::test]
async fn the_backend_updates_an_older_bridge_which_keeps_its_terminals() -> anyhow::Result<()> {
    // The backend carries a bridge newer than the one that runs: the static build, its
    // version raised.
    let carried = bin("porta")?.parent().context("no folder")?.join("bridges/porta-bridge-linux-x86_64");
    let ours = porta_bridge::version();
    let (newer_bridge, newer) = with_newer_version(
        &std::fs::read(&carried).with_context(|| {
            format!("{} is missing: run `cargo xtask bridges` (`cargo xtask test` does)", carried.display())
        })?,
        ours,
    )?;
    let downloads = tempfile::tempdir()?;
    std::fs::write(downloads.path().join("porta-bridge-linux-x86_64"), &newer_bridge)?;
    let dir = downloads.path().to_string_lossy().into_owned();
    let (stack, exe) = stack_with_own_binary_and(&[("PORTA_BRIDGE_DOWNLOADS", &dir)]).await?;
    let (api, server) = (&stack.api, stack.server_id.clone());
    let pid = stack.bridge.pid().context("no bridge pid")?;
    let versions = || async {
        let v = api.graphql("{ servers { version updateTo } }", serde_json::json!({})).await?;
        anyhow::Ok((v["data"]["servers"][0]["version"].clone(), v["data"]["servers"][0]["updateTo"].clone()))
    };
    assert_eq!(versions().await?, (ours.into(), newer.clone().into()), "an update is offered");

    let mut ws = api.ws().await?;
    let a = open(&mut ws, &server).await?;
    ws.input(
        a,
        b"for i in $(seq 1 2000); do echo line-$i; [ $((i % 100)) = 0 ] && sleep 0.05; done; echo done-$((1+1))\n",
    )
    .await?;
    ws.wait_output(a, "line-300\r\n", T).await?;
    let v = api
        .graphql(
            "mutation($s: String!) { updateServer(id: $s) { serverId from to } }",
            serde_json::json!({ "s": server }),
        )
        .await?;
    assert_eq!(v["data"]["updateServer"]["from"], ours, "{v}");
    assert_eq!(v["data"]["updateServer"]["to"], newer.as_str(), "{v}");

    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == a), T).await?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == a), T).await?;
    let text = ws.wait_output(a, "done-2", T).await?;
    assert_eq!(numbered(&text), (1..=2000).collect::<Vec<_>>(), "every line once, in order");
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);

    // The same process now runs the carried file, and says so.
    assert_eq!(std::fs::read(format!("/proc/{pid}/exe"))?, newer_bridge, "the bridge runs what the backend carries");
    let deadline = tokio::time::Instant::now() + T;
    while versions().await? != (newer.clone().into(), serde_json::Value::Null) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "still {:?}", versions().await?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(&exe)?, newer_bridge);
    let audit = api.graphql("{ auditLog { action target detail result } }", serde_json::json!({})).await?;
    let entry = audit["data"]["auditLog"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["action"] == "server.update"))
        .cloned()
        .with_context(|| format!("no server.update in {audit}"))?;
    assert_eq!(entry["target"], server.as_str());
    assert_eq!(entry["detail"], format!("{ours} -> {newer}").as_str(), "{entry}");

    // Nothing newer is carried any more: asking the workspace to update starts none.
    let ws_id =
        api.graphql("{ servers { workspaceId } }", serde_json::json!({})).await?["data"]["servers"][0]["workspaceId"]
            .as_str()
            .context("no workspace")?
            .to_owned();
    let v = api
        .graphql("mutation($w: String!) { updateWorkspaceServers(workspaceId: $w) }", serde_json::json!({ "w": ws_id }))
        .await?;
    assert_eq!(v["data"]["updateWorkspaceServers"], 0, "{v}");
    Ok(())
}

#[tokio::test]
async fn the_dashboard_shows_each_bridges_version_and_updates_it_at_desktop_and_phone_sizes() -> anyhow::Result<()> {
    use porta_e2e::browser::{Browser, UiStack, click, wait_for, wait_text};
    let carried = bin("porta")?.parent().context("no folder")?.join("bridges/porta-bridge-linux-x86_64");
    let ours = porta_bridge::version();
    let (newer_bridge, newer) = with_newer_version(&std::fs::read(&carried)?, ours)?;
    for (name, width, height) in [("update_bridge_desktop", 1280, 800), ("update_bridge_phone", 390, 844)] {
        let downloads = tempfile::tempdir()?;
        std::fs::write(downloads.path().join("porta-bridge-linux-x86_64"), &newer_bridge)?;
        let ui = porta_e2e::ui_dir()?.to_string_lossy().into_owned();
        let dir = downloads.path().to_string_lossy().into_owned();
        let backend = Backend::start(&[("PORTA_UI_DIR", &ui), ("PORTA_BRIDGE_DOWNLOADS", &dir)]).await?;
        let mut bridge = Bridge::enroll(&backend, &[]).await?;
        let exe = bridge.dir.path().join("porta-bridge");
        std::fs::copy(bin("porta-bridge")?, &exe)?;
        bridge.program = Some(exe);
        bridge.run(&[])?;
        let ui = UiStack { backend, bridge, browser: Browser::start(width, height).await? };
        let c = &ui.browser.client;
        ui.signed_in(name, || async {
            let facts = wait_text(c, "li.server[data-status=online] .facts", &format!("bridge {ours}")).await?;
            assert!(facts.contains(&format!("bridge {ours}")), "{facts}");
            wait_text(c, "li.server .update", &format!("Update to {newer}")).await?;
            wait_text(c, ".ws-heading .update-all", "Update 1 bridge").await?;
            ui.browser.screenshot(name).await?;
            click(c, "li.server .update").await?;
            wait_text(c, "li.server .update-done", &format!("Updated from {ours} to {newer}")).await?;
            // Once the server is back as the new version, the list says so and offers nothing.
            wait_text(c, "li.server[data-status=online] .facts", &format!("bridge {newer}")).await?;
            anyhow::ensure!(c.find_all(fantoccini::Locator::Css("li.server .update")).await?.is_empty());
            wait_for(c, ".ws-heading .update-all[hidden]").await?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_bridge_too_old_to_connect_is_shown_as_needing_an_update() -> anyhow::Result<()> {
    use porta_e2e::browser::{UiStack, wait_text};
    let mut ui = UiStack::start(&[], 390, 844).await?;
    // The server's bridge is replaced by one that speaks only an older protocol.
    ui.bridge.terminate().await?;
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ui.bridge.config)?)?;
    let url = format!("{}/bridge/ws", ui.backend.url.replacen("http://", "ws://", 1));
    let mut old = Ws::connect_as_bridge(&url, config["credential"].as_str().unwrap_or_default()).await?;
    let hello = porta_shared::Envelope::<porta_shared::bridge::BridgeHandshake>::event(porta_shared::bridge::Hello {
        protocol: porta_shared::ProtocolRange { min: 0, max: 0 },
        agent: "porta-bridge/0.0.1".into(),
        instance: "old".into(),
        capabilities: vec![],
    });
    old.send_text(hello.encode()).await?;
    assert_eq!(old.wait_error(T).await?.code, porta_shared::ErrorCode::UnsupportedVersion);
    let api = porta_e2e::Api::login(&ui.backend.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let v = api.graphql("{ servers { online version updateNeeded } }", serde_json::json!({})).await?;
    assert!(v["data"]["servers"][0]["updateNeeded"].is_string(), "{v}");
    let c = &ui.browser.client;
    ui.signed_in("update_needed_phone", || async {
        let said = wait_text(c, "li.server[data-status=offline] .update-needed", "Update needed").await?;
        assert!(said.contains("older than this Porta") && said.contains("Add server"), "{said}");
        wait_text(c, "li.server .facts", "bridge 0.0.1").await?;
        Ok(())
    })
    .await
}
