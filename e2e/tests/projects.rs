//! Projects through the full path: made empty, from each starter, or by `git clone` (with
//! credentials that are kept nowhere), held to the workspace's quota and to roles, deleted
//! softly and restored.

use std::process::Command;

use porta_e2e::Stack;
use porta_e2e::client::Api;
use serde_json::{Value, json};

const CREATE: &str = "mutation($w: String!, $s: String!, $n: String!, $t: String, $g: String, $p: String) {
    createProject(workspaceId: $w, serverId: $s, name: $n, template: $t, gitUrl: $g, path: $p) {
        id name path source repoUrl createdByName deletedMs
    }
}";

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git").current_dir(dir).args(args).output()?;
    anyhow::ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test]
async fn projects_are_made_empty_from_starters_and_by_clone() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let api = &stack.api;
    let team = api.own_team().await?;
    let v = api.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": team })).await?;
    let ws = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let server = stack.server_id.clone();
    let create = |name: &str, template: Option<&str>, git: Option<&str>| json!({ "w": ws, "s": server, "n": name, "t": template, "g": git, "p": null });

    // Empty.
    let v = api.graphql(CREATE, create("notes", None, None)).await?;
    let p = &v["data"]["createProject"];
    let at = format!("{}/projects/notes", root.path().canonicalize()?.display());
    assert_eq!((p["path"].as_str(), p["source"].as_str()), (Some(at.as_str()), Some("empty")), "{v}");
    assert_eq!(p["createdByName"], "admin");
    assert!(root.path().join("projects/notes").is_dir());

    // Every starter, its files written with the project's name.
    let v = api.graphql("{ projectTemplates { name title } }", json!({})).await?;
    let names: Vec<String> = v["data"]["projectTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["rust-axum", "node-express", "python-flask", "react-ts"]);
    for t in &names {
        let name = format!("app-{t}");
        let v = api.graphql(CREATE, create(&name, Some(t), None)).await?;
        assert_eq!(v["data"]["createProject"]["source"].as_str(), Some(format!("template:{t}").as_str()), "{v}");
        let dir = root.path().join("projects").join(&name);
        let readme = std::fs::read_to_string(dir.join("README.md"))?;
        assert!(readme.starts_with(&format!("# {name}")), "{readme}");
    }
    let cargo = std::fs::read_to_string(root.path().join("projects/app-rust-axum/Cargo.toml"))?;
    assert!(cargo.contains("name = \"app-rust-axum\"") && cargo.contains("axum"), "{cargo}");
    assert!(root.path().join("projects/app-react-ts/src/App.tsx").is_file());
    // The starters are valid programs (checked with the tools this machine has).
    let flask = root.path().join("projects/app-python-flask/app.py");
    assert!(Command::new("python3").args(["-m", "py_compile"]).arg(&flask).status()?.success());
    let express = root.path().join("projects/app-node-express/index.js");
    assert!(Command::new("node").arg("--check").arg(&express).status()?.success());
    let pkg: Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("projects/app-react-ts/package.json"))?)?;
    assert_eq!(pkg["name"], "app-react-ts");

    // A folder that exists is never taken over; a bad name or template is refused.
    std::fs::create_dir_all(root.path().join("projects/taken"))?;
    std::fs::write(root.path().join("projects/taken/keep.txt"), "mine")?;
    let v = api.graphql(CREATE, create("taken", Some("rust-axum"), None)).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    assert_eq!(std::fs::read_dir(root.path().join("projects/taken"))?.count(), 1, "nothing was written");
    assert_eq!(code(&api.graphql(CREATE, create("Bad Name", None, None)).await?), "bad_request");
    assert_eq!(code(&api.graphql(CREATE, create("x", Some("cobol"), None)).await?), "bad_request");
    let v = api.graphql(CREATE, json!({ "w": ws, "s": server, "n": "esc", "p": "../outside" })).await?;
    assert_eq!(code(&v), "bad_request", "{v}");

    // A clone: the credentials in the URL are used, then kept nowhere (not in Porta, not in
    // the clone's origin, not in the audit log).
    let upstream = tempfile::tempdir()?;
    let work = upstream.path().join("work");
    std::fs::create_dir(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    std::fs::write(work.join("hello.txt"), "cloned\n")?;
    git(&work, &["add", "."])?;
    git(&work, &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first"])?;
    let url = format!("file://{}", work.display());
    let v = api.graphql(CREATE, create("cloned", None, Some(&url))).await?;
    assert_eq!(v["data"]["createProject"]["repoUrl"].as_str(), Some(url.as_str()), "{v}");
    assert_eq!(std::fs::read_to_string(root.path().join("projects/cloned/hello.txt"))?, "cloned\n");
    let v = api.graphql(CREATE, create("broken", None, Some("file:///nonexistent/repo.git"))).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("git clone of file:///nonexistent/repo.git failed")),
        "{v}"
    );
    let secret_url = "https://bob:hunter2-secret@127.0.0.1:9/team/app.git";
    let v = api.graphql(CREATE, create("private", None, Some(secret_url))).await?;
    assert_eq!(code(&v), "bad_request", "{v}");
    let said = v.to_string();
    assert!(!said.contains("hunter2") && said.contains("https://127.0.0.1:9/team/app.git"), "{said}");
    let log = api.graphql("{ auditLog(limit: 200) { detail target } }", json!({})).await?;
    assert!(!log.to_string().contains("hunter2"), "the audit log holds the secret");

    // Roles: a viewer cannot make a project; the quota holds.
    let link = api.invite(&team, "viewer").await?;
    let viewer = Api::join_by_link(&stack.backend.url, &link, "vic", "a long enough password").await?;
    let v = viewer.graphql(CREATE, create("mine", None, None)).await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    let v = viewer.graphql("query($w: String!) { projects(workspaceId: $w) { name } }", json!({ "w": ws })).await?;
    assert_eq!(v["data"]["projects"].as_array().map(Vec::len), Some(6), "viewers see them: {v}");
    let v =
        api.graphql("mutation($w: String!) { setWorkspaceQuotas(id: $w, maxProjects: 6) }", json!({ "w": ws })).await?;
    assert_eq!(v["data"]["setWorkspaceQuotas"], true, "{v}");
    let v = api.graphql(CREATE, create("seventh", None, None)).await?;
    assert_eq!(code(&v), "conflict", "{v}");
    assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains("quota of 6 projects")), "{v}");

    // Soft delete: hidden, folder kept, restorable; another maker's project needs an admin.
    let list = |deleted: bool| {
        let q =
            "query($w: String!, $d: Boolean!) { projects(workspaceId: $w, includeDeleted: $d) { id name deletedMs } }";
        api.graphql(q, json!({ "w": ws, "d": deleted }))
    };
    let v = list(false).await?;
    let notes =
        v["data"]["projects"].as_array().and_then(|a| a.iter().find(|p| p["name"] == "notes")).map(|p| p["id"].clone());
    let notes = notes.and_then(|n| n.as_str().map(str::to_owned)).unwrap_or_default();
    let v = viewer.graphql("mutation($i: String!) { deleteProject(id: $i) }", json!({ "i": notes })).await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    let v = api.graphql("mutation($i: String!) { deleteProject(id: $i) }", json!({ "i": notes })).await?;
    assert_eq!(v["data"]["deleteProject"], true, "{v}");
    assert_eq!(list(false).await?["data"]["projects"].as_array().map(Vec::len), Some(5));
    assert!(root.path().join("projects/notes").is_dir(), "the folder stays");
    let v = api.graphql(CREATE, create("seventh", None, None)).await?;
    assert!(v["errors"].is_null(), "a deleted project frees its place in the quota: {v}");
    let restore = "mutation($i: String!) { restoreProject(id: $i) }";
    let v = api.graphql(restore, json!({ "i": notes })).await?;
    assert_eq!(code(&v), "conflict", "restoring is held to the quota too: {v}");
    let v = api.graphql("mutation($w: String!) { setWorkspaceQuotas(id: $w) }", json!({ "w": ws })).await?;
    assert_eq!(v["data"]["setWorkspaceQuotas"], true, "{v}");
    let v = api.graphql(restore, json!({ "i": notes })).await?;
    assert_eq!(v["data"]["restoreProject"], true, "{v}");
    assert_eq!(list(false).await?["data"]["projects"].as_array().map(Vec::len), Some(7));

    // How a project runs: a starter says it; a developer changes it; one visible line and a
    // port only, nothing changed by what is refused; a viewer cannot.
    let runs = || async {
        let q = "query($w: String!) { projects(workspaceId: $w) { id name runCommand runPort } }";
        let v = api.graphql(q, json!({ "w": ws })).await?;
        let by_name =
            |n: &str| v["data"]["projects"].as_array().and_then(|a| a.iter().find(|p| p["name"] == n)).cloned();
        anyhow::Ok((by_name("app-react-ts").unwrap_or_default(), by_name("notes").unwrap_or_default()))
    };
    let (react, notes_now) = runs().await?;
    assert_eq!(
        (react["runCommand"].as_str(), react["runPort"].as_i64()),
        (Some("npm install && npm run dev"), Some(5173))
    );
    assert!(notes_now["runCommand"].is_null() && notes_now["runPort"].is_null(), "an empty project has no run");
    let set_run = "mutation($i: String!, $c: String, $p: Int) { setProjectRun(id: $i, command: $c, port: $p) { runCommand runPort } }";
    let v = api.graphql(set_run, json!({ "i": notes, "c": " python3 -m http.server 8000 ", "p": 8000 })).await?;
    assert_eq!(
        v["data"]["setProjectRun"],
        json!({ "runCommand": "python3 -m http.server 8000", "runPort": 8000 }),
        "{v}"
    );
    for (command, port, says) in [
        ("make\nrm -rf ~", 8000, "one line"),
        ("make \u{202e}evil", 8000, "printable ASCII"),
        ("make", 0, "not a port"),
        ("make", 70000, "not a port"),
    ] {
        let v = api.graphql(set_run, json!({ "i": notes, "c": command, "p": port })).await?;
        assert_eq!(code(&v), "bad_request", "{v}");
        assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains(says)), "{v}");
    }
    let v = viewer.graphql(set_run, json!({ "i": notes, "c": "evil", "p": 1 })).await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    // An API token that may write but not reach terminals cannot plant a command either.
    let v = api
        .graphql("mutation { createApiToken(name: \"writer\", scopes: [\"read\", \"write\"]) { token } }", json!({}))
        .await?;
    let writer = Api::with_token(&stack.backend.url, v["data"]["createApiToken"]["token"].as_str().unwrap_or_default());
    let v = writer.graphql(set_run, json!({ "i": notes, "c": "evil", "p": 1 })).await?;
    assert_eq!(code(&v), "forbidden", "{v}");
    assert!(v["errors"][0]["message"].as_str().is_some_and(|m| m.contains("terminal scope")), "{v}");
    let v = api.graphql(set_run, json!({ "i": "no-such-project", "c": "x", "p": 1 })).await?;
    assert_eq!(code(&v), "not_found", "{v}");
    let (_, notes_now) = runs().await?;
    assert_eq!(notes_now["runCommand"], "python3 -m http.server 8000", "nothing refused changed it");
    assert_eq!(notes_now["runPort"], 8000);
    let v = api.graphql(set_run, json!({ "i": notes })).await?;
    assert_eq!(v["data"]["setProjectRun"], json!({ "runCommand": null, "runPort": null }), "cleared: {v}");

    let v = api.graphql("{ auditLog(action: \"project.\") { action detail } }", json!({})).await?;
    let actions = v["data"]["auditLog"].to_string();
    assert!(
        actions.contains("project.create") && actions.contains("project.delete") && actions.contains("project.restore"),
        "{actions}"
    );
    assert!(actions.contains("notes: python3 -m http.server 8000 on port 8000"), "{actions}");
    Ok(())
}

#[tokio::test]
async fn a_project_is_made_from_a_starter_and_deleted_in_the_browser() -> anyhow::Result<()> {
    use fantoccini::Locator;
    use porta_e2e::browser::{UiStack, wait_for};

    let ui = UiStack::start(&[], 1280, 900).await?;
    let UiStack { bridge, browser, .. } = &ui;
    let c = &browser.client;
    ui.signed_in("projects", || async {
        let section = "section.workspace-servers[data-workspace=Default]";
        wait_for(c, &format!("{section} li.server[data-status=online]")).await?;
        wait_for(c, &format!("{section} button.new-project")).await?.click().await?;
        wait_for(c, "input[name=project-name]").await?.send_keys("shop").await?;
        wait_for(c, "select[name=project-kind] option[value=python-flask]").await?;
        c.find(Locator::Css("select[name=project-kind]")).await?.select_by_value("python-flask").await?;
        c.find(Locator::Css(".project-form button[type=submit]")).await?.click().await?;
        let row = wait_for(c, "li.project[data-name=shop]").await?;
        let text = row.text().await?;
        assert!(text.contains("Python + Flask") && text.contains("projects/shop") && text.contains("admin"), "{text}");
        let app = bridge.dir.path().join("projects/shop/app.py");
        assert!(std::fs::read_to_string(&app)?.contains("Hello from shop!"));
        assert!(!std::path::Path::new("/projects/shop").exists(), "a relative folder is beneath home, never /");
        browser.screenshot("projects").await?;

        // A second project with the same name is refused with the reason shown.
        wait_for(c, &format!("{section} button.new-project")).await?.click().await?;
        c.find(Locator::Css("input[name=project-name]")).await?.send_keys("shop").await?;
        c.find(Locator::Css(".project-form button[type=submit]")).await?.click().await?;
        let problem = wait_for(c, ".projects .error:not([hidden])").await?;
        assert!(problem.text().await?.contains("already"), "{}", problem.text().await?);

        // Delete (asks first), then find it among the deleted and restore it.
        row.find(Locator::Css("button.project-delete")).await?.click().await?;
        c.accept_alert().await?;
        let deadline = tokio::time::Instant::now() + porta_e2e::browser::WAIT;
        while c.find(Locator::Css("li.project[data-name=shop]")).await.is_ok() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the project stayed in the list");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(app.exists(), "its folder stays");
        c.find(Locator::Css(".show-deleted input")).await?.click().await?;
        wait_for(c, "li.project[data-name=shop][data-deleted=true] button.project-delete").await?.click().await?;
        wait_for(c, "li.project[data-name=shop][data-deleted=false]").await?;

        // The browser checks the name as the server does: "My Project" is not one.
        let name = c.find(Locator::Css("input[name=project-name]")).await?;
        name.clear().await?;
        name.send_keys("My Project").await?;
        let valid = "return document.querySelector('input[name=project-name]').checkValidity()";
        assert_eq!(c.execute(valid, vec![]).await?, serde_json::json!(false), "the pattern works");
        // A project can live anywhere on the server: here, a folder outside projects/.
        name.clear().await?;
        name.send_keys("elsewhere").await?;
        c.find(Locator::Css("select[name=project-kind]")).await?.select_by_value("empty").await?;
        let place = bridge.dir.path().join("work/elsewhere");
        c.find(Locator::Css("input[name=project-path]")).await?.send_keys(&place.to_string_lossy()).await?;
        c.find(Locator::Css(".project-form button[type=submit]")).await?.click().await?;
        let row = wait_for(c, "li.project[data-name=elsewhere]").await?;
        assert!(row.text().await?.contains(&*place.to_string_lossy()), "{}", row.text().await?);
        assert!(place.is_dir(), "the folder was made where asked");
        Ok(())
    })
    .await
}
