//! Terminal session recording: with a workspace's recording on, a terminal's session is
//! recorded as asciicast v2 from its first byte, only the team's admins may fetch it, every
//! fetch is audited, and the player in the browser replays what was typed.

use std::time::Duration;

use porta_e2e::Stack;
use porta_e2e::client::{Api, term_open};
use porta_shared::client::{ClientEvent, TermClose, TermOpen};
use porta_shared::types::TermSize;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn workspace_of(api: &Api) -> anyhow::Result<(String, String)> {
    let team = api.own_team().await?;
    let v = api.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": team })).await?;
    let ws = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    Ok((team, ws))
}

async fn recordings(api: &Api, team: &str) -> anyhow::Result<Vec<Value>> {
    let q =
        "query($t: String!) { recordings(teamId: $t) { id serverId serverName termId startedByName endedMs bytes } }";
    let v = api.graphql(q, json!({ "t": team })).await?;
    Ok(v["data"]["recordings"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn a_recorded_session_replays_what_was_typed() -> anyhow::Result<()> {
    let ui = porta_e2e::ui_dir()?.to_string_lossy().into_owned();
    let stack = Stack::start(&[("PORTA_UI_DIR", &ui)], &[]).await?;
    let base = stack.backend.url.clone();
    let (team, ws) = workspace_of(&stack.api).await?;

    // Off by default: nothing is recorded.
    let open = TermOpen { size: TermSize { cols: 100, rows: 30 }, ..term_open(&stack.server_id) };
    let mut sock = stack.api.ws().await?;
    let unrecorded = sock.call(open.clone()).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(!unrecorded.recorded, "the tab is told it is not recorded");
    sock.input(unrecorded.stream, b"echo not-$((1+1))-recorded\r").await?;
    sock.wait_output(unrecorded.stream, "not-2-recorded", WAIT).await?;
    assert!(recordings(&stack.api, &team).await?.is_empty());

    // On: the next terminal is recorded from its first byte until its shell exits.
    let v = stack
        .api
        .graphql("mutation($w: String!) { setWorkspaceRecording(id: $w, on: true) }", json!({ "w": ws }))
        .await?;
    assert_eq!(v["data"]["setWorkspaceRecording"], true, "{v}");
    let opened = sock.call(open).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(opened.recorded, "the tab is told the terminal is recorded");
    sock.input(opened.stream, "echo recorded-$((6*7)) ünïcode\r".as_bytes()).await?;
    sock.wait_output(opened.stream, "recorded-42 ünïcode", WAIT).await?;
    // Another tab attaching to it is told too; to the unrecorded one, not.
    let mut other = stack.api.ws().await?;
    let attach = |term| porta_shared::client::TermAttach { server: stack.server_id.clone(), term, after: 0 };
    let seen = other.call(attach(opened.info.term)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(seen.recorded, "an attached tab says it is recorded");
    let plain = other.call(attach(unrecorded.info.term)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(!plain.recorded);
    other.close().await;
    sock.input(opened.stream, b"exit\r").await?;
    sock.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == opened.stream), WAIT).await?;
    let _ = sock.call(TermClose::Stream { stream: unrecorded.stream }).await?;

    let deadline = tokio::time::Instant::now() + WAIT;
    let rec = loop {
        let list = recordings(&stack.api, &team).await?;
        if let Some(r) = list.iter().find(|r| !r["endedMs"].is_null()) {
            break r.clone();
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the recording never ended: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rec["termId"].as_u64(), Some(u64::from(opened.info.term.0)), "{rec}");
    assert_eq!(rec["startedByName"], "admin");
    assert!(rec["bytes"].as_i64().is_some_and(|b| b > 0), "{rec}");
    let id = rec["id"].as_str().unwrap_or_default().to_owned();

    // The file is asciicast v2 and holds what was typed, in order.
    let resp = stack.api.http.get(format!("{base}/api/recordings/{id}")).bearer_auth(&stack.api.access).send().await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-asciicast");
    let cast = resp.text().await?;
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap_or_default())?;
    assert_eq!(
        (header["version"].as_u64(), header["width"].as_u64(), header["height"].as_u64()),
        (Some(2), Some(100), Some(30))
    );
    let mut output = String::new();
    let mut last = 0.0;
    for line in lines {
        let e: Value = serde_json::from_str(line)?;
        let t = e[0].as_f64().unwrap_or(-1.0);
        assert!(t >= last, "time goes forward: {line}");
        last = t;
        assert_eq!(e[1], "o");
        output.push_str(e[2].as_str().unwrap_or_default());
    }
    assert!(output.contains("recorded-42 ünïcode"), "{output}");
    assert!(!output.contains("not-2-recorded"), "another terminal leaked in: {output}");

    // Only the team's admins may watch; a developer is told so, an outsider learns nothing.
    let link = stack.api.invite(&team, "developer").await?;
    let dev = Api::join_by_link(&base, &link, "dev", "a long enough password").await?;
    let resp = dev.http.get(format!("{base}/api/recordings/{id}")).bearer_auth(&dev.access).send().await?;
    assert_eq!(resp.status().as_u16(), 403);
    let v = dev.graphql("query($t: String!) { recordings(teamId: $t) { id } }", json!({ "t": team })).await?;
    assert_eq!(v["errors"][0]["extensions"]["code"], "forbidden", "{v}");
    let resp = dev.http.get(format!("{base}/api/recordings/nope")).bearer_auth(&dev.access).send().await?;
    assert_eq!(resp.status().as_u16(), 404);

    // Watching is audited.
    let v = stack.api.graphql("{ auditLog(action: \"recording.\") { action target } }", json!({})).await?;
    let actions: Vec<&str> =
        v["data"]["auditLog"].as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"recording.start") && actions.contains(&"recording.view"), "{actions:?}");

    // The player in the browser replays it.
    use fantoccini::Locator;
    use porta_e2e::browser::{Browser, sign_in, wait_for, with_screenshot_on_failure};
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "recording", || async {
        sign_in(c, &base).await?;
        wait_for(c, "a.team-link").await?.click().await?;
        // Named for people: the shell and the server, and how long it went.
        let what = wait_for(c, ".recordings tr.recording .what").await?.text().await?;
        assert!(what.ends_with(" on vm") && !what.starts_with("terminal"), "{what}");
        wait_for(c, ".recordings tr.recording a.play-recording").await?.click().await?;
        wait_for(c, ".player .xterm-rows").await?;
        // Speed it up, then wait for the end.
        c.find(Locator::Css("select.speed")).await?.select_by_value("16").await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = c.execute("return document.querySelector('.player .xterm-rows').innerText", vec![]).await?;
            if text.as_str().is_some_and(|t| t.contains("recorded-42 ünïcode")) {
                break;
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the player never showed the command: {text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        browser.screenshot("recording").await?;
        // A terminal of a workspace that records says so on its tab.
        c.goto(&format!("{base}/servers/{}", stack.server_id)).await?;
        wait_for(c, ".tab.active").await?;
        porta_e2e::browser::click(c, "button.new-tab").await?;
        wait_for(c, ".tab.active[data-state=live] .rec:not([hidden])").await?;
        Ok(())
    })
    .await;
    browser.close().await;
    result?;
    Ok(())
}

async fn wait_ended(api: &Api, team: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let q = "query($t: String!) { recordings(teamId: $t) { id endedMs bytes stopped } }";
        let v = api.graphql(q, json!({ "t": team })).await?;
        let list = v["data"]["recordings"].as_array().cloned().unwrap_or_default();
        let ended: Vec<Value> = list.into_iter().filter(|r| !r["endedMs"].is_null()).collect();
        if ended.len() >= n {
            return Ok(ended);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{n} recordings never ended: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `yes` in a recorded workspace once wrote 37 MB in 3 s. A recording stops at its limit,
/// and once the workspace's recordings fill theirs a new one stops at once; each says why, in
/// the list and at the end of its file, while the terminal itself goes on.
#[tokio::test]
async fn a_recording_stops_at_its_limits_and_says_why() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let (team, ws) = workspace_of(&stack.api).await?;
    let set = "mutation($w: String!, $p: Int!, $t: Int!) { setWorkspaceRecordingLimits(id: $w, perRecordingMb: $p, totalMb: $t) }";
    for (p, t) in [(0, 10), (5, 2), (1, 0)] {
        let v = stack.api.graphql(set, json!({ "w": ws, "p": p, "t": t })).await?;
        assert_eq!(v["errors"][0]["extensions"]["code"], "bad_request", "{p}/{t}: {v}");
    }
    let v = stack.api.graphql(set, json!({ "w": ws, "p": 1, "t": 1 })).await?;
    assert_eq!(v["data"]["setWorkspaceRecordingLimits"], true, "{v}");
    stack.api.graphql("mutation($w: String!) { setWorkspaceRecording(id: $w, on: true) }", json!({ "w": ws })).await?;

    let mut sock = stack.api.ws().await?;
    sock.keep_output = false;
    let flood = sock.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    sock.input(flood.stream, b"head -c 3000000 /dev/zero | tr '\\0' y; echo\r").await?;
    let ended = wait_ended(&stack.api, &team, 1).await?;
    let first = &ended[0];
    assert!(first["stopped"].as_str().is_some_and(|s| s.contains("limit of 1 MB")), "{first}");
    let bytes = first["bytes"].as_i64().unwrap_or_default();
    assert!((1 << 19) < bytes && bytes < (1 << 20) + 4096, "at most 1 MB on disk: {bytes}");
    let id = first["id"].as_str().unwrap_or_default();
    let resp = stack
        .api
        .http
        .get(format!("{}/api/recordings/{id}", stack.backend.url))
        .bearer_auth(&stack.api.access)
        .send()
        .await?;
    let cast = resp.text().await?;
    assert!(
        cast.lines()
            .last()
            .is_some_and(|l| l.contains("Porta stopped recording: this recording reached its limit of 1 MB"))
    );
    sock.keep_output = true;
    sock.input(flood.stream, b"echo still-$((40+2))\r").await?;
    sock.wait_output(flood.stream, "still-42", WAIT).await?;

    // The workspace's 1 MB is used up: the next recording stops at once, and says why.
    let _next = sock.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let ended = wait_ended(&stack.api, &team, 2).await?;
    assert!(
        ended.iter().any(|r| r["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("workspace's recordings reached their limit of 1 MB"))),
        "{ended:?}"
    );
    let total: i64 = ended.iter().filter_map(|r| r["bytes"].as_i64()).sum();
    assert!(total < (1 << 20) + 8192, "the workspace's recordings stay within 1 MB: {total}");
    Ok(())
}

/// Nearly out of disk space, a recording stops before it starts, and says so.
#[tokio::test]
async fn a_recording_stops_when_the_disk_is_nearly_full() -> anyhow::Result<()> {
    // More free space than any disk here has.
    let stack = Stack::start(&[("PORTA_RECORDING_MIN_FREE_MB", "900000000")], &[]).await?;
    let (team, ws) = workspace_of(&stack.api).await?;
    stack.api.graphql("mutation($w: String!) { setWorkspaceRecording(id: $w, on: true) }", json!({ "w": ws })).await?;
    let mut sock = stack.api.ws().await?;
    let opened = sock.call(term_open(&stack.server_id)).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let ended = wait_ended(&stack.api, &team, 1).await?;
    assert!(ended[0]["stopped"].as_str().is_some_and(|s| s.contains("disk has less than")), "{ended:?}");
    sock.input(opened.stream, b"echo fine\r").await?;
    sock.wait_output(opened.stream, "fine", WAIT).await?;
    Ok(())
}
