//! The audit log through the full path: actions leave events (with who, from where and on which
//! server), the chain verifies, and a row changed or deleted in the database makes
//! `porta audit verify` (and GraphQL's `auditVerify`) name the event where it breaks.

use std::time::Duration;

use porta_e2e::client::Api;
use porta_e2e::{ADMIN_PASSWORD, Stack};
use porta_shared::bridge::{FsDelete, FsMkdir, FsRename, FsWrite};
use porta_shared::client::{OnServer, TermClose, TermOpen};
use porta_shared::types::{Base64, TermSize};
use serde_json::{Value, json};

fn on<T>(server: &str, req: T) -> OnServer<T> {
    OnServer { server: server.to_owned(), req }
}

async fn log(api: &Api, args: &str) -> anyhow::Result<Vec<Value>> {
    let q =
        format!("{{ auditLog{args} {{ seq atMs actor actorName source serverId action target result detail hash }} }}");
    let v = api.graphql(&q, json!({})).await?;
    let list = v["data"]["auditLog"].as_array().cloned();
    list.ok_or_else(|| anyhow::anyhow!("no audit log: {v}"))
}

async fn verify(api: &Api) -> anyhow::Result<Value> {
    let v = api.graphql("{ auditVerify { intact events brokenAt reason } }", json!({})).await?;
    Ok(v["data"]["auditVerify"].clone())
}

#[tokio::test]
async fn actions_are_chained_in_the_audit_log_and_tampering_is_named() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let base = stack.backend.url.clone();

    // A failed sign-in, then the file and terminal actions of a session.
    let bad = Api::post_login(&base, "admin", "not the password").await?;
    assert_eq!(bad.status(), 401);
    let mut ws = stack.api.ws().await?;
    let write = FsWrite {
        path: "notes.txt".into(),
        data: Base64(b"hi".to_vec()),
        expected_sha256: None,
        create_new: true,
        mode: None,
    };
    ws.call(on(&server, write)).await??;
    ws.call(on(&server, FsMkdir { path: "dir".into(), parents: false })).await??;
    ws.call(on(&server, FsRename { from: "notes.txt".into(), to: "dir/notes.txt".into(), overwrite: false })).await??;
    ws.call(on(&server, FsDelete { path: "dir".into(), recursive: true })).await??;
    let open = TermOpen {
        server: server.clone(),
        shell: Some("/bin/sh".into()),
        args: vec![],
        cwd: None,
        size: TermSize { cols: 80, rows: 24 },
        env: Default::default(),
        container: None,
    };
    let opened = ws.call(open).await??;
    ws.call(TermClose::Stream { stream: opened.stream }).await??;

    let events = log(&stack.api, "(limit: 100)").await?;
    let has =
        |action: &str, result: &str| events.iter().find(|e| e["action"] == action && e["result"] == result).cloned();
    let failed = has("auth.login", "denied").ok_or_else(|| anyhow::anyhow!("no failed sign-in: {events:?}"))?;
    assert_eq!(failed["target"], "admin");
    let ok = has("auth.login", "ok").ok_or_else(|| anyhow::anyhow!("no sign-in: {events:?}"))?;
    assert_eq!(ok["actorName"], "admin", "actors are named as people know them");
    assert_eq!(failed["source"], "127.0.0.1", "the client's address is recorded");
    for action in [
        "auth.login",
        "server.enroll",
        "file.write",
        "file.mkdir",
        "file.rename",
        "file.delete",
        "terminal.open",
        "terminal.close",
    ] {
        let e = has(action, "ok").ok_or_else(|| anyhow::anyhow!("no {action} event: {events:?}"))?;
        if action.starts_with("file.") || action.starts_with("terminal.") {
            assert_eq!(e["serverId"], server.as_str(), "{action} names its server");
            assert!(e["actor"].as_str().is_some_and(|a| a.starts_with("user:")), "{e}");
        }
    }
    // Newest first, numbered without gaps.
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    assert_eq!(*seqs.last().unwrap_or(&0), 1);
    // Filters: by action prefix, by server, paging back.
    let files = log(&stack.api, "(action: \"file.\")").await?;
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(files.iter().all(|e| e["action"].as_str().is_some_and(|a| a.starts_with("file."))));
    let on_server = log(&stack.api, &format!("(serverId: \"{server}\")")).await?;
    assert!(on_server.iter().all(|e| e["serverId"] == server.as_str()) && on_server.len() >= 6);
    let older = log(&stack.api, &format!("(beforeSeq: {}, limit: 2)", seqs[0])).await?;
    assert_eq!(older.len(), 2);
    assert_eq!(older[0]["seq"].as_i64(), Some(seqs[0] - 1));

    // The chain holds, by the API and by the command.
    let check = verify(&stack.api).await?;
    assert_eq!(check["intact"], true, "{check}");
    let out = stack.backend.cli(&["audit", "verify"]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));

    // Someone with the database rewrites what a file write said: verify names that event.
    let target = has("file.write", "ok").and_then(|e| e["seq"].as_i64()).unwrap_or_default();
    let db = stack.backend.database_pool().await?;
    sqlx::query("UPDATE audit_events SET detail = 'nothing to see' WHERE seq = $1").bind(target).execute(&db).await?;
    let out = stack.backend.cli(&["audit", "verify"]).await?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "verify must fail: {said}");
    assert!(said.contains(&format!("broken at event {target}")), "{said}");
    let check = verify(&stack.api).await?;
    assert_eq!((check["intact"].clone(), check["brokenAt"].as_i64()), (json!(false), Some(target)), "{check}");

    // Deleting the event instead breaks the chain at the same place.
    sqlx::query("DELETE FROM audit_events WHERE seq = $1").bind(target).execute(&db).await?;
    let check = verify(&stack.api).await?;
    assert_eq!(check["brokenAt"].as_i64(), Some(target), "{check}");
    assert!(check["reason"].as_str().is_some_and(|r| r.contains("missing")), "{check}");
    db.close().await;

    // Only admins read the log or check it.
    let store = porta_backend::db::Store::connect(&stack.backend.database_url()).await?;
    let hash = porta_backend::auth::password::hash("a long enough password".into()).await?;
    store.create_user("dev", &hash, false).await?;
    let dev = Api::login(&base, "dev", "a long enough password").await?;
    for q in ["{ auditLog { seq } }", "{ auditVerify { intact } }"] {
        let v = dev.graphql(q, json!({})).await?;
        assert_eq!(v["errors"][0]["extensions"]["code"], "forbidden", "{q}: {v}");
        assert!(v["data"].is_null(), "{v}");
    }

    // New events still go on the end of the chain (the break stays where it is).
    let again = Api::login(&base, "admin", ADMIN_PASSWORD).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let newest = loop {
        let newest = log(&again, "(limit: 1)").await?;
        if newest.first().and_then(|e| e["seq"].as_i64()) >= Some(seqs[0] + 2) {
            break newest;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the sign-ins were not logged: {newest:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(newest[0]["seq"].as_i64(), Some(seqs[0] + 2), "the dev's and the admin's sign-ins: {newest:?}");
    assert_eq!(newest[0]["action"], "auth.login");
    Ok(())
}

#[tokio::test]
async fn admins_read_filter_check_and_export_the_log_in_the_browser() -> anyhow::Result<()> {
    use fantoccini::Locator;
    use porta_e2e::browser::{Browser, sign_in, with_screenshot_on_failure};

    const SHORT: Duration = Duration::from_secs(30);
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let ui = porta_e2e::ui_dir()?.to_string_lossy().into_owned();
    let stack = Stack::start(&[("PORTA_UI_DIR", &ui)], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let write = FsWrite {
        path: "a.txt".into(),
        data: Base64(b"a".to_vec()),
        expected_sha256: None,
        create_new: true,
        mode: None,
    };
    ws.call(on(&server, write)).await??;
    let browser = Browser::start(1280, 800).await?;
    let c = &browser.client;
    let result = with_screenshot_on_failure(&browser, "audit_page", || async {
        sign_in(c, &stack.backend.url).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css("a.audit-link")).await?.click().await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".audit-badge[data-state=intact]")).await?;
        c.wait().at_most(SHORT).for_element(Locator::Css(".audit-event[data-action='file.write']")).await?;
        let login = c.find(Locator::Css(".audit-event[data-action='auth.login'] .actor")).await?;
        assert_eq!(login.text().await?, "admin");
        // The server and workspace by name, their ids on hover.
        let on = c.find(Locator::Css(".audit-event[data-action='file.write'] .server")).await?;
        assert_eq!(on.text().await?, "vm");
        assert_eq!(on.attr("title").await?.as_deref(), Some(server.as_str()));
        let workspace = c.find(Locator::Css(".audit-event[data-action='file.write'] .workspace")).await?;
        assert_eq!(workspace.text().await?, "Default");
        browser.screenshot("audit").await?;

        // Filter to file actions only.
        c.find(Locator::Css("input[name=action]")).await?.send_keys("file.").await?;
        c.find(Locator::Css("button.apply")).await?.click().await?;
        let deadline = tokio::time::Instant::now() + SHORT;
        while c.find(Locator::Css(".audit-event[data-action='auth.login']")).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the filter left other actions");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.find(Locator::Css(".audit-event[data-action='file.write']")).await?;

        // Exports follow the filter; JSON lines carry the hashes.
        c.find(Locator::Css("button.export-jsonl")).await?.click().await?;
        let jsonl = String::from_utf8(browser.downloaded("porta-audit.jsonl", SHORT).await?)?;
        let lines: Vec<Value> = jsonl.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l["action"].as_str().is_some_and(|a| a.starts_with("file."))),
            "{jsonl}"
        );
        assert!(lines.iter().all(|l| l["hash"].as_str().is_some_and(|h| h.len() == 64)), "{jsonl}");
        c.find(Locator::Css("button.export-csv")).await?.click().await?;
        let csv = String::from_utf8(browser.downloaded("porta-audit.csv", SHORT).await?)?;
        assert!(
            csv.starts_with(
                "seq,at_ms,actor,source,server_id,workspace_id,action,target,result,detail,prev_hash,hash\r\n"
            ),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), lines.len() + 1);

        // Tampering shows on the badge, naming the event.
        let seq = lines[0]["seq"].as_i64().unwrap_or_default();
        let db = stack.backend.database_pool().await?;
        sqlx::query("UPDATE audit_events SET actor = 'user:someone-else' WHERE seq = $1")
            .bind(seq)
            .execute(&db)
            .await?;
        db.close().await;
        c.find(Locator::Css("button.verify")).await?.click().await?;
        let badge = c.wait().at_most(SHORT).for_element(Locator::Css(".audit-badge[data-state=broken]")).await?;
        assert!(badge.text().await?.contains(&format!("broken at event {seq}")), "{}", badge.text().await?);
        Ok(())
    })
    .await;
    browser.close().await;
    result
}

/// The export answers to the same rules as `auditLog`: an admin's read-only token, or one
/// limited to a workspace, gets nothing; and a name an attacker chose cannot become a formula
/// in the spreadsheet that opens the CSV.
#[tokio::test]
async fn the_export_is_held_to_token_limits_and_its_cells_stay_text() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let base = stack.backend.url.clone();
    // An anonymous sign-in attempt with a formula for a name lands in the log.
    let r = Api::post_login(&base, "@evil", "not the password").await?;
    assert_eq!(r.status(), 401);
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let ws = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    let make =
        "mutation($s: [String!]!, $w: String) { createApiToken(name: \"t\", scopes: $s, workspaceId: $w) { token } }";
    let token = |scopes: Value, w: Option<String>| {
        let api = &stack.api;
        async move {
            let v = api.graphql(make, json!({ "s": scopes, "w": w })).await?;
            v["data"]["createApiToken"]["token"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{v}"))
        }
    };
    let reader = token(json!(["read"]), None).await?;
    let limited = token(json!(["read", "admin"]), Some(ws)).await?;
    let full = token(json!(["read", "admin"]), None).await?;
    let http = reqwest::Client::new();
    let export =
        |t: &str| http.get(format!("{base}/api/audit/export?format=csv")).header("x-porta-token", t.to_owned()).send();
    for t in [&reader, &limited] {
        assert_eq!(export(t).await?.status(), 403);
        let v = http
            .post(format!("{base}/graphql"))
            .header("x-porta-token", t.as_str())
            .json(&json!({ "query": "{ auditLog { seq } }" }))
            .send()
            .await?
            .json::<Value>()
            .await?;
        assert_eq!(v["errors"][0]["extensions"]["code"], "forbidden", "{v}");
    }
    let csv = export(&full).await?.text().await?;
    assert!(csv.contains(",'@evil,") && !csv.contains(",@evil,"), "{csv}");
    // The export is the token's act, and the log says so.
    let v = stack.api.graphql(r#"{ auditLog(action: "audit.export") { actor } }"#, json!({})).await?;
    let actor = v["data"]["auditLog"][0]["actor"].as_str().unwrap_or_default();
    assert!(actor.starts_with("token:"), "{v}");
    Ok(())
}
