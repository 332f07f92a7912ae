//! The browser app: everything that is not an API route.
//!
//! The built app (see `xtask/src/ui.rs`) is `index.html` plus `a/<digest>/…`. Files under
//! `/a/` never change under a given name, so they are cached for a year; `index.html`, which
//! names the current digest, is revalidated on every load, as are the app's own routes
//! (`/servers/…`), which all get `index.html`. A `.br` (or `.gz`) built beside a file is
//! served when the browser accepts brotli (or gzip). The files come from `--ui-dir` when given, else from the copy
//! compiled into the binary.

use axum::extract::{Request, State};
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, VARY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

use crate::error::Error;
use crate::state::AppState;

/// Assets are named by their content's digest.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` and client routes: always ask whether a newer app exists.
const REVALIDATE: &str = "no-cache";

pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    // Not the app: endpoints, and the well-known documents clients probe for (an MCP client
    // asks for `/.well-known/oauth-protected-resource`; Porta offers no OAuth, so none is).
    if ["/api/", "/bridge/", "/graphql", "/.well-known/"].iter().any(|p| path.starts_with(p)) {
        return Error::NotFound("no such endpoint".into()).into_response();
    }
    let asset = path.starts_with("/a/");
    let Some(dir) = state.config.ui_dir.clone() else {
        return embedded(path.trim_start_matches('/'), asset, req.headers(), &state);
    };
    if !asset {
        let Ok(html) = tokio::fs::read(dir.join("index.html")).await else {
            return (StatusCode::NOT_FOUND, "no index.html in the app's folder").into_response();
        };
        let page_written = modified(&dir.join("index.html")).await;
        let mut packed = None;
        for (coding, ext) in PACKINGS {
            let file = dir.join(format!("index.html.{ext}"));
            // Only a compressed page written with or after the page itself: one left from
            // an earlier build (the page replaced by hand) would name files that are gone.
            if accepts(req.headers(), coding) && page_written.is_some() && modified(&file).await >= page_written {
                if let Ok(b) = tokio::fs::read(&file).await {
                    packed = Some((coding, b));
                    break;
                }
            }
        }
        return page(html, packed, &state);
    }
    let result = ServeDir::new(&dir).precompressed_br().precompressed_gzip().oneshot(req).await;
    let mut resp = match result {
        Ok(r) => r.into_response(),
        Err(e) => match e {},
    };
    if resp.status().is_success() {
        let cache = if asset { IMMUTABLE } else { REVALIDATE };
        resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    resp
}

/// The app compiled into this binary (see `build.rs`), when there is one.
mod files {
    include!(concat!(env!("OUT_DIR"), "/embedded_ui.rs"));
}

fn find(name: &str) -> Option<&'static [u8]> {
    files::FILES.iter().find(|(n, _)| *n == name).map(|&(_, bytes)| bytes)
}

/// Whether the request's `Accept-Encoding` takes `want` (`br`, `gzip`).
fn accepts(headers: &HeaderMap, want: &str) -> bool {
    super::takes(headers, ACCEPT_ENCODING, want)
}

/// When a file was last written, if it can be told.
async fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    tokio::fs::metadata(path).await.ok()?.modified().ok()
}

/// The encodings a file may be built in beside itself (`name.br`, `name.gz`), best first.
const PACKINGS: [(&str, &str); 2] = [("br", "br"), ("gzip", "gz")];

/// The page, with its Content-Security-Policy: scripts from this origin only, plus the page's
/// own two inline scripts (the import map and the loader) by their hashes; WebAssembly may be
/// compiled; styles may be inline (xterm.js and Monaco set them); nothing may frame the page;
/// it frames only previews (at their own hosts, when there are any). `packed`: the same page
/// compressed (its coding and bytes), sent instead when there is one.
fn page(html: impl Into<Vec<u8>>, packed: Option<(&'static str, impl Into<Vec<u8>>)>, state: &AppState) -> Response {
    let html = html.into();
    let csp = content_security_policy(&html, preview_frames(state).as_deref());
    let mut resp = match packed {
        Some((coding, bytes)) => (
            [(CONTENT_TYPE, content_type(".html")), (CACHE_CONTROL, REVALIDATE), (CONTENT_ENCODING, coding)],
            bytes.into(),
        )
            .into_response(),
        None => ([(CONTENT_TYPE, content_type(".html")), (CACHE_CONTROL, REVALIDATE)], html).into_response(),
    };
    let h = resp.headers_mut();
    h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    resp
}

/// The policy for a page whose inline scripts are those in `html`.
/// The previews' hosts as a CSP source (`scheme://*.domain`), when they have their own.
fn preview_frames(state: &AppState) -> Option<String> {
    let base = state.config.preview_base()?;
    let (scheme, domain) = base.split_once("://")?;
    Some(format!("{scheme}://*.{domain}"))
}

pub fn content_security_policy(html: &[u8], preview_frames: Option<&str>) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let text = String::from_utf8_lossy(html);
    let mut hashes = String::new();
    let mut rest = text.as_ref();
    while let Some(open) = rest.find("<script") {
        let Some(tag_end) = rest[open..].find('>').map(|i| open + i + 1) else { break };
        let Some(close) = rest[tag_end..].find("</script>").map(|i| tag_end + i) else { break };
        if !rest[open..tag_end].contains("src=") {
            let digest = sha2::Sha256::digest(&rest.as_bytes()[tag_end..close]);
            hashes.push_str(&format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        rest = &rest[close + "</script>".len()..];
    }
    let frames = preview_frames.map(|f| format!(" {f}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
         frame-src 'self'{frames}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn embedded(name: &str, asset: bool, headers: &HeaderMap, state: &AppState) -> Response {
    if !asset {
        let Some(html) = find("index.html") else { return axum::response::Html(NO_UI).into_response() };
        let packed = PACKINGS.into_iter().find_map(|(coding, ext)| {
            find(&format!("index.html.{ext}")).filter(|_| accepts(headers, coding)).map(|b| (coding, b))
        });
        return page(html, packed, state);
    }
    let Some(bytes) = find(name) else {
        return (StatusCode::NOT_FOUND, "no such file in this build of the app").into_response();
    };
    let packed = PACKINGS.into_iter().find_map(|(coding, ext)| {
        find(&format!("{name}.{ext}")).filter(|_| accepts(headers, coding)).map(|b| (coding, b))
    });
    let mut resp = match packed {
        Some((coding, b)) => ([(CONTENT_ENCODING, coding)], b).into_response(),
        None => bytes.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    resp
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

const NO_UI: &str = "<!doctype html><meta charset=utf-8><title>Porta</title>\
<p>Porta is running, but this build carries no browser app. Run <code>cargo xtask start</code>, or start \
Porta with <code>--ui-dir</code> pointing at a built app (<code>cargo xtask ui</code> puts it in \
<code>target/ui</code>).</p>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_allows_its_own_inline_scripts_and_no_others() {
        let html = br#"<script type="importmap">{"imports":{}}</script><script src="/a/x.js"></script><script type="module">init();</script>"#;
        let csp = content_security_policy(html, None);
        assert!(csp.contains("frame-src 'self';"), "{csp}");
        let framing = content_security_policy(html, Some("https://*.preview.example.com"));
        assert!(framing.contains("frame-src 'self' https://*.preview.example.com;"), "{framing}");
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()));
        assert!(csp.contains(&format!("'sha256-{}'", hash(r#"{"imports":{}}"#))), "{csp}");
        assert!(csp.contains(&format!("'sha256-{}'", hash("init();"))), "{csp}");
        assert_eq!(csp.matches("'sha256-").count(), 2, "not the one with src: {csp}");
        assert!(!csp.contains("'unsafe-inline'; img") || csp.contains("style-src 'self' 'unsafe-inline'"));
        assert!(!csp.split(';').any(|d| d.trim().starts_with("script-src") && d.contains("unsafe-inline")), "{csp}");
    }

    #[test]
    fn codings_are_recognised_among_others() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(v));
            accepts(&h, "gzip")
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(!with("br, deflate"));
        assert!(!with("x-gzip-ish"));
        assert!(!with("gzip;q=0, br"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br, zstd"));
        assert!(accepts(&h, "br"));
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br;q=0"));
        assert!(!accepts(&h, "br"));
    }

    #[test]
    fn modules_are_served_as_javascript() {
        assert_eq!(content_type("a/x/xterm/xterm.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("a/x/porta_frontend_bg.wasm"), "application/wasm");
        assert_eq!(content_type("a/x/LICENSE"), "application/octet-stream");
    }
}
