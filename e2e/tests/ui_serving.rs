//! The backend serves the built browser app: assets named by digest and cached for good,
//! `index.html` (revalidated) for the page and the app's own routes, brotli or gzip where the
//! browser takes it, and JSON errors (never the app) for unknown API paths.

use porta_e2e::{Backend, ui_assets, ui_dir};
use reqwest::header::ACCEPT_ENCODING;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What both ways of serving (from a directory, from the binary) must do alike.
async fn serves_the_app(b: &Backend) -> anyhow::Result<()> {
    let assets = ui_assets()?;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", b.url)).send();

    for page in ["/", "/servers/some-id"] {
        let index = get(page).await?;
        assert_eq!(index.status(), 200, "{page}");
        assert_eq!(index.headers()["cache-control"], "no-cache", "{page}");
        assert_eq!(index.headers()["referrer-policy"], "no-referrer");
        let csp = index.headers()["content-security-policy"].clone();
        let html = index.text().await?;
        assert!(html.contains(&format!("{assets}/porta_frontend.js")), "{page}: {html}");
        // Compressed where the browser takes it (it is fetched on every visit): the same page
        // and policy once unpacked.
        let br = client.get(format!("{}{page}", b.url)).header(ACCEPT_ENCODING, "gzip, deflate, br").send().await?;
        assert_eq!(br.headers()["content-encoding"], "br", "{page}");
        assert_eq!(br.headers()["vary"], "accept-encoding", "{page}");
        assert_eq!(br.headers()["content-security-policy"], csp, "{page}");
        assert_eq!(br.headers()["cache-control"], "no-cache", "{page}");
        let body = br.bytes().await?;
        let mut unpacked = Vec::new();
        brotli::BrotliDecompress(&mut &body[..], &mut unpacked)?;
        assert_eq!(String::from_utf8(unpacked)?, html, "{page}");
        assert!(body.len() < html.len(), "{page}: brotli is smaller");
    }

    let wasm = get(&format!("{assets}/porta_frontend_bg.wasm")).await?;
    assert_eq!(wasm.status(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert_eq!(wasm.headers()["cache-control"], IMMUTABLE);
    assert!(wasm.headers().get("content-encoding").is_none(), "no gzip unless asked for");
    let on_disk = std::fs::read(ui_dir()?.join(&assets[1..]).join("porta_frontend_bg.wasm"))?;
    assert_eq!(wasm.bytes().await?.as_ref(), &on_disk[..], "the app just built is served");

    let packed = |coding: &'static str| {
        client.get(format!("{}{assets}/porta_frontend_bg.wasm", b.url)).header(ACCEPT_ENCODING, coding).send()
    };
    let gz = packed("gzip, deflate").await?;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["content-type"], "application/wasm");
    let gz_body = gz.bytes().await?;
    assert!(gz_body.starts_with(&[0x1f, 0x8b]) && gz_body.len() < on_disk.len(), "gzip is smaller");
    // Brotli where the browser takes it: smaller still, and the same bytes once unpacked.
    let br = packed("gzip, deflate, br, zstd").await?;
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(br.headers()["content-type"], "application/wasm");
    let br_body = br.bytes().await?;
    assert!(br_body.len() < gz_body.len(), "brotli ({}) is smaller than gzip ({})", br_body.len(), gz_body.len());
    let mut unpacked = Vec::new();
    brotli::BrotliDecompress(&mut &br_body[..], &mut unpacked)?;
    assert_eq!(unpacked, on_disk, "brotli unpacks to the app's bytes");

    let module = get(&format!("{assets}/xterm/xterm.mjs")).await?;
    assert_eq!(module.status(), 200);
    assert!(module.headers()["content-type"].to_str()?.contains("javascript"), "modules must be JavaScript");

    let missing = get(&format!("{assets}/nope.js")).await?;
    assert_eq!(missing.status(), 404, "a missing asset is not answered with the page");
    assert!(missing.headers().get("cache-control").is_none_or(|c| c != IMMUTABLE), "a 404 is never cached for good");

    for api in ["/api/nope", "/graphql/x", "/bridge/nope"] {
        let r = get(api).await?;
        assert_eq!(r.status(), 404, "{api}");
        let body: serde_json::Value = r.json().await?;
        assert_eq!(body["error"]["code"], "not_found", "{api}");
    }
    for sneaky in ["/a/..%2f..%2fetc%2fpasswd", "/a/../../etc/passwd", "/..%2f..%2fetc%2fpasswd"] {
        let text = get(sneaky).await?.text().await?;
        assert!(!text.contains("root:"), "{sneaky}: no file outside the app directory");
    }
    Ok(())
}

#[tokio::test]
async fn the_app_is_served_from_a_directory() -> anyhow::Result<()> {
    let ui = ui_dir()?.to_string_lossy().into_owned();
    let b = Backend::start(&[("PORTA_UI_DIR", &ui)]).await?;
    serves_the_app(&b).await
}

/// A page replaced by hand in the app's folder is served as it is now, never as the
/// compressed copy an earlier build left beside it (which would name assets that are gone).
#[tokio::test]
async fn a_compressed_page_older_than_the_page_is_not_served() -> anyhow::Result<()> {
    let ui = tempfile::tempdir()?;
    let page = ui.path().join("index.html");
    std::fs::write(&page, "<!doctype html><title>now</title>")?;
    let old = ui.path().join("index.html.br");
    let mut packed = Vec::new();
    let params = brotli::enc::BrotliEncoderParams::default();
    brotli::BrotliCompress(&mut &b"<!doctype html><title>before</title>"[..], &mut packed, &params)?;
    std::fs::write(&old, packed)?;
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&old)?.set_modified(hour_ago)?;
    let dir = ui.path().to_string_lossy().into_owned();
    let b = Backend::start(&[("PORTA_UI_DIR", &dir)]).await?;
    let resp = reqwest::Client::new().get(format!("{}/", b.url)).header(ACCEPT_ENCODING, "br").send().await?;
    assert!(resp.headers().get("content-encoding").is_none(), "{:?}", resp.headers());
    assert_eq!(resp.text().await?, "<!doctype html><title>now</title>");
    Ok(())
}

#[tokio::test]
async fn without_a_ui_dir_the_app_compiled_into_porta_is_served() -> anyhow::Result<()> {
    let b = Backend::start(&[]).await?;
    let html = reqwest::get(format!("{}/", b.url)).await?.text().await?;
    assert!(
        html.contains("porta_frontend.js"),
        "this porta carries no app: build it with PORTA_EMBED_UI=<target>/ui (cargo xtask test does)"
    );
    serves_the_app(&b).await
}

/// The page carries a Content-Security-Policy that admits its own two inline scripts by hash
/// and no others; everything else loads nothing; no HSTS over plain http (over https: see the
/// backend's `http` tests); `/metrics` is off until a scraper token is set.
#[tokio::test]
async fn the_page_and_the_api_carry_their_security_headers() -> anyhow::Result<()> {
    let ui = porta_e2e::ui_dir()?.to_string_lossy().into_owned();
    let b = porta_e2e::Backend::start(&[("PORTA_UI_DIR", &ui)]).await?;
    let page = reqwest::get(format!("{}/servers/x", b.url)).await?;
    let csp = page.headers()["content-security-policy"].to_str()?.to_owned();
    assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"), "{csp}");
    assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"), "{csp}");
    assert!(page.headers()["permissions-policy"].to_str()?.contains("camera=()"));
    assert!(!page.headers().contains_key("strict-transport-security"), "not over plain http");
    let api = reqwest::get(format!("{}/api/auth/status", b.url)).await?;
    assert_eq!(api.headers()["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
    assert_eq!(reqwest::get(format!("{}/metrics", b.url)).await?.status(), 404, "off without a token");
    Ok(())
}
