//! The HTTP surface: the router's frame (the other transports' routes come from the crate
//! root), JSON extraction in our error shape, origin checks, health, readiness, metrics, and
//! request tracing that never records secrets. The other transports build on it.

mod audit;
pub mod auth;
mod downloads;
mod invitations;
pub mod origin;
mod preview;
mod recordings;
mod ui;

use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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

/// `Query` whose rejections come back as our typed error (axum's own are plain text).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct AppQuery<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for Error {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        Error::BadRequest(r.body_text())
    }
}

/// The whole surface: `transports`' routes (the other transports', which the crate root
/// gathers) beside this module's own, the web app for everything else, and the headers every
/// answer carries.
pub fn router(state: AppState, transports: Router<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(auth::router())
        .merge(audit::router())
        .merge(recordings::router())
        .merge(invitations::router())
        .merge(downloads::router())
        .merge(preview::router())
        .merge(transports)
        .fallback(ui::serve)
        .layer(
            // Spans record the route pattern only: no query strings (tickets), no headers.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
                tracing::debug_span!("http", method = %req.method(), route)
            }),
        )
        // A preview's own host is the preview's, whatever the path: none of Porta's routes.
        .layer(axum::middleware::from_fn_with_state(state.clone(), preview::by_host))
        .layer(axum::middleware::map_response_with_state(state.clone(), security_headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), client_address))
        .with_state(state)
}

/// Behind a trusted load balancer, the peer address handlers see (`ConnectInfo`) becomes the
/// client's, from `X-Forwarded-For` (see `crate::proxies`): sign-in limits and the audit log
/// then count people, not the proxy.
async fn client_address(State(state): State<AppState>, mut req: Request, next: axum::middleware::Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let forwarded: Vec<&str> =
            req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let client = state.proxies.client(peer, &forwarded);
        if client != peer {
            req.extensions_mut().insert(ConnectInfo(client));
        }
    }
    next.run(req).await
}

async fn security_headers(State(state): State<AppState>, mut resp: Response) -> Response {
    // A preview's app says how its own pages may be framed and what they may load.
    if resp.extensions().get::<preview::AppAnswer>().is_some() {
        return resp;
    }
    let unauthorized = resp.status() == StatusCode::UNAUTHORIZED;
    let resp_framed = resp.extensions().get::<preview::FramedByPorta>().is_some();
    let h = resp.headers_mut();
    // RFC 9110: a 401 says how to authenticate. Every credential Porta takes on its API, MCP
    // and sockets is a bearer token (a session's access token, an API token, a ticket).
    if unauthorized && !h.contains_key(WWW_AUTHENTICATE) {
        h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"porta\""));
    }
    // Unless the answer chose its own (a preview's password page; an app behind a preview,
    // whose own CSRF checks may read `Referer`).
    if !h.contains_key("referrer-policy") {
        h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // (Porta's pages at a preview's host may be framed by Porta's own, which their content
    // policy says.)
    if resp_framed {
        h.remove("x-frame-options");
    } else {
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    // The page sets its own policy (see `ui`); anything else loads nothing and is framed by
    // nothing.
    if !h.contains_key("content-security-policy") {
        h.insert("content-security-policy", HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    }
    h.insert(
        "permissions-policy",
        HeaderValue::from_static(
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), \
             clipboard-read=(self), clipboard-write=(self)",
        ),
    );
    if let Some(v) = hsts(state.config.is_https()) {
        h.insert("strict-transport-security", v);
    }
    resp
}

/// Browsers are told to come back over https only when Porta is reached over https.
fn hsts(https: bool) -> Option<HeaderValue> {
    https.then(|| HeaderValue::from_static("max-age=31536000"))
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

/// Prometheus metrics, for a scraper holding `PORTA_METRICS_TOKEN` (as a bearer token); off
/// (404) while no token is set: the numbers say how busy the instance is and who is on it.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return Error::NotFound("metrics are off: set PORTA_METRICS_TOKEN to turn them on".into()).into_response();
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    use subtle::ConstantTimeEq as _;
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Error::Unauthorized("send PORTA_METRICS_TOKEN as a bearer token".into()).into_response();
    }
    // OpenMetrics when asked for (Prometheus asks for it first); the text format 0.0.4
    // otherwise, which every scraper and `promtool` read.
    let vary = (axum::http::header::VARY, "accept");
    if accepts_openmetrics(&headers) {
        let body = state.metrics.render();
        ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8"), vary], body).into_response()
    } else {
        ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"), vary], state.metrics.render_text())
            .into_response()
    }
}

/// Whether `Accept` names OpenMetrics (with a weight above 0).
fn accepts_openmetrics(headers: &axum::http::HeaderMap) -> bool {
    takes(headers, axum::http::header::ACCEPT, "application/openmetrics-text")
}

/// Whether a negotiation header (`Accept`, `Accept-Encoding`) lists `want` with a weight
/// above 0, whatever its other parameters.
pub(crate) fn takes(headers: &axum::http::HeaderMap, header: axum::http::header::HeaderName, want: &str) -> bool {
    headers.get_all(header).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        parts.next().is_some_and(|t| t.eq_ignore_ascii_case(want))
            && !parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse() == Ok(0.0)))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hsts_only_over_https() {
        assert_eq!(super::hsts(true).as_ref().map(|v| v.to_str().unwrap_or_default()), Some("max-age=31536000"));
        assert!(super::hsts(false).is_none());
    }
}
