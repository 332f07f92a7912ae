//! The backend serves the built browser app: files with caching headers, `index.html` for the
//! app's own routes, and JSON errors (never the app) for unknown API paths.

use porta_e2e::{Backend, ui_dir};

#[tokio::test]
async fn the_app_its_files_and_client_routes_are_served() -> anyhow::Result<()> {
    let ui = ui_dir()?;
    let ui_arg = ui.to_string_lossy().into_owned();
    let b = Backend::start(&[("PORTA_UI_DIR", &ui_arg)]).await?;
    let get = |path: &str| reqwest::get(format!("{}{path}", b.url));

    let index = get("/").await?;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert_eq!(index.headers()["referrer-policy"], "no-referrer");
    let html = index.text().await?;
    assert!(html.contains("porta_frontend.js"), "{html}");

    let wasm = get("/porta_frontend_bg.wasm").await?;
    assert_eq!(wasm.status(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert!(wasm.headers()["cache-control"].to_str()?.contains("max-age"));
    assert!(wasm.bytes().await?.starts_with(b"\0asm"));

    let route = get("/servers/some-id/terminal").await?;
    assert_eq!(route.status(), 200, "client routes get the app");
    assert!(route.text().await?.contains("porta_frontend.js"));

    for api in ["/api/nope", "/graphql/x", "/bridge/nope"] {
        let r = get(api).await?;
        assert_eq!(r.status(), 404, "{api}");
        let body: serde_json::Value = r.json().await?;
        assert_eq!(body["error"]["code"], "not_found", "{api}");
    }
    let traversal = get("/..%2f..%2fetc%2fpasswd").await?;
    assert!(!traversal.text().await?.contains("root:"), "no file outside the app directory");
    Ok(())
}

#[tokio::test]
async fn without_a_ui_dir_the_app_compiled_into_porta_is_served() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let get = |path: &str| reqwest::get(format!("{}{path}", b.url));
    let index = get("/servers").await?;
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let html = index.text().await?;
    assert!(
        html.contains("porta_frontend.js"),
        "this porta carries no app: build it with PORTA_EMBED_UI=<target>/ui (cargo xtask test does)"
    );
    let wasm = get("/porta_frontend_bg.wasm").await?;
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    let on_disk = std::fs::read(ui_dir()?.join("porta_frontend_bg.wasm"))?;
    assert_eq!(wasm.bytes().await?.as_ref(), &on_disk[..], "the embedded app is the one just built");
    assert_eq!(get("/api/nope").await?.status(), 404);
    Ok(())
}
