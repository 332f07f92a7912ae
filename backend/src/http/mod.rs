//! The HTTP surface: router assembly, JSON extraction in our error shape, health, readiness,
//! metrics, and request tracing that never records secrets.

pub mod origin;

use axum::Router;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::state::AppState;

/// `Json` whose rejections come back as our typed error.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct AppJson<T>(pub T);

impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        Error::BadRequest(r.body_text())
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::auth::router())
        .merge(crate::graphql::router())
        .merge(crate::relay::router())
        .fallback(ui)
        .layer(
            // Spans record the route pattern only: no query strings (tickets), no headers.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
                tracing::debug_span!("http", method = %req.method(), route)
            }),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render();
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// Everything that is not an API route is the browser app: its files, or `index.html` for
/// the app's own routes; from `--ui-dir` when given, else as compiled into the binary. Unknown
/// API paths get a JSON 404.
async fn ui(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if ["/api/", "/bridge/", "/graphql"].iter().any(|p| path.starts_with(p)) {
        return Error::NotFound("no such endpoint".into()).into_response();
    }
    let Some(dir) = state.config.ui_dir.clone() else {
        return embedded_ui(path);
    };
    let index = dir.join("index.html");
    let mut resp = match ServeDir::new(&dir).fallback(ServeFile::new(&index)).oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => match e {},
    };
    let html = resp.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(cache_control(html)));
    resp
}

fn cache_control(html: bool) -> &'static str {
    if html { "no-cache" } else { "public, max-age=300" }
}

/// The app compiled into this binary (see `build.rs`), when there is one.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_ui.rs"));
}

fn embedded_ui(path: &str) -> Response {
    let find = |name: &str| embedded::FILES.iter().find(|(n, _)| *n == name);
    let Some(&(name, bytes)) = find(path.trim_start_matches('/')).or_else(|| find("index.html")) else {
        return axum::response::Html(NO_UI).into_response();
    };
    let content_type = match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    };
    let cache = cache_control(name.ends_with(".html"));
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, cache)], bytes).into_response()
}

const NO_UI: &str = "<!doctype html><meta charset=utf-8><title>Porta</title>\
<p>Porta is running, but this build carries no browser app. Run <code>cargo xtask start</code>, or start \
Porta with <code>--ui-dir</code> pointing at a built app (<code>cargo xtask ui</code> puts it in \
<code>target/ui</code>).</p>";
