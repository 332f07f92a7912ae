//! `/p/<server>/<port>/…`: the path form of a preview. The app answers as if served under
//! that prefix (`X-Forwarded-Prefix` says so). A link opened from Porta carries a ticket,
//! exchanged here for the preview's cookie (see `crate::previews`) and dropped from the URL.
//!
//! The path form shares Porta's origin: it is for the person themselves, never shared.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use porta_shared::ErrorCode;

use super::auth::cookie_value;
use crate::db::AuditEvent;
use crate::error::Error;
use crate::previews::proxy::{Forwarded, ProxyError, Target};
use crate::previews::{COOKIE, SESSION_SECS, Viewer};
use crate::state::AppState;

/// The query parameter a link opened from Porta carries its ticket in.
pub const TICKET: &str = "porta_ticket";

pub fn router() -> Router<AppState> {
    Router::new().route("/p/{*rest}", any(preview))
}

/// Marks an answer that is the app's own: Porta's headers (framing, content policy) stay off it.
#[derive(Clone, Copy)]
pub struct AppAnswer;

/// A preview's path: the server, the port, and the app's path (from its `/`).
#[derive(Debug, PartialEq, Eq)]
struct PreviewPath<'a> {
    server: &'a str,
    port: u16,
    /// `None` for `/p/<server>/<port>` without the slash.
    rest: Option<&'a str>,
}

fn parse(path: &str) -> Option<PreviewPath<'_>> {
    let tail = path.strip_prefix("/p/")?;
    let (server, tail) = tail.split_once('/')?;
    let (port, rest) = match tail.split_once('/') {
        Some((port, rest)) => (port, Some(rest)),
        None => (tail, None),
    };
    let port: u16 = port.parse().ok().filter(|p| porta_shared::ports::valid_port(*p))?;
    if server.is_empty() {
        return None;
    }
    Some(PreviewPath { server, port, rest })
}

async fn preview(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let Some(p) = parse(&path) else {
        return page(StatusCode::BAD_REQUEST, "Not a preview", "A preview's address is /p/<server>/<port>/.");
    };
    let prefix = format!("/p/{}/{}", p.server, p.port);
    let query = req.uri().query().unwrap_or("").to_owned();
    let Some(rest) = p.rest else {
        return redirect(&format!("{prefix}/{}", with_query(&query)), None);
    };
    let (ticket, query) = take_ticket(&query);
    if let Some(ticket) = ticket {
        return enter(&state, &p, &prefix, &ticket, &query, peer).await;
    }
    let cookie = cookie_value(req.headers(), COOKIE).unwrap_or_default().to_owned();
    let viewer = match state.previews.viewer(&cookie, p.server, p.port).await {
        Ok(v) => v,
        Err(e) => return refused(&e),
    };
    // A WebSocket carries the cookie whichever page opens it: only Porta's own pages (and the
    // app's, which share its origin) may open one.
    if req.headers().contains_key(header::UPGRADE) && super::origin::check(&state.origins, req.headers()).is_err() {
        return page(
            StatusCode::FORBIDDEN,
            "Not from here",
            "A preview's WebSocket opens only from Porta's own address.",
        );
    }
    let target = Target { server: p.server.to_owned(), port: p.port };
    let fwd = Forwarded {
        host: req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned(),
        proto: if state.config.is_https() { "https" } else { "http" },
        client: peer.ip(),
        prefix: Some(prefix.clone()),
    };
    let (mut parts, body) = req.into_parts();
    let app_path = format!("/{rest}{}", with_query(&query));
    parts.uri = match app_path.parse() {
        Ok(u) => u,
        Err(_) => return page(StatusCode::BAD_REQUEST, "Not a preview", "The address cannot be passed to the app."),
    };
    match state.previews.proxy.send(&target, &fwd, Request::from_parts(parts, body)).await {
        Ok(mut resp) => {
            resp.extensions_mut().insert(AppAnswer);
            resp
        }
        Err(e) => unreachable_app(&e, &viewer, p.port),
    }
}

/// Spends the ticket, sets the preview's cookie, and sends the browser back without it.
async fn enter(
    state: &AppState,
    p: &PreviewPath<'_>,
    prefix: &str,
    ticket: &str,
    query: &str,
    peer: SocketAddr,
) -> Response {
    let (viewer, cookie) = match state.previews.enter(ticket, p.server, p.port).await {
        Ok(v) => v,
        Err(e) => return refused(&e),
    };
    let actor = viewer.access.actor(&viewer.user.id);
    let target = format!("port:{}", p.port);
    state
        .store
        .audit(
            AuditEvent::new(&actor, "preview.open")
                .target(&target)
                .detail("path form")
                .source(peer.ip().to_string())
                .server(p.server)
                .workspace_opt(viewer.server.server.workspace_id.as_deref()),
        )
        .await;
    let secure = if state.config.is_https() { "; Secure" } else { "" };
    let set = format!("{COOKIE}={cookie}; Path={prefix}/; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECS}{secure}");
    let rest = p.rest.unwrap_or_default();
    redirect(&format!("{prefix}/{rest}{}", with_query(query)), HeaderValue::from_str(&set).ok())
}

fn with_query(query: &str) -> String {
    if query.is_empty() { String::new() } else { format!("?{query}") }
}

/// The ticket, and the query without it.
fn take_ticket(query: &str) -> (Option<String>, String) {
    let mut ticket = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix(TICKET).and_then(|v| v.strip_prefix('=')) {
            Some(v) => {
                ticket = Some(v.to_owned());
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    (ticket, kept.join("&"))
}

fn redirect(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn refused(e: &Error) -> Response {
    let status = match e {
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let msg = match e {
        Error::Unauthorized(m) | Error::Forbidden(m) | Error::NotFound(m) => m.clone(),
        _ => "the preview could not be checked; try again".to_owned(),
    };
    page(status, "This preview is not open to you", &msg)
}

/// Why the app did not answer, as a page: nothing listening, the server offline, no answer.
fn unreachable_app(e: &ProxyError, viewer: &Viewer, port: u16) -> Response {
    let name = &viewer.server.server.name;
    let (status, title, msg) = match e.code() {
        ErrorCode::NotFound => (
            StatusCode::BAD_GATEWAY,
            "Nothing is listening",
            format!("Nothing is listening on port {port} on {name}. Start the app, then reload this page."),
        ),
        ErrorCode::ServerOffline => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is offline",
            format!("{name} is offline: its bridge is not connected. The preview comes back with it."),
        ),
        ErrorCode::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "No answer",
            format!("Port {port} on {name} did not accept the connection in time."),
        ),
        _ => (StatusCode::BAD_GATEWAY, "The app did not answer", format!("Port {port} on {name}: {e}")),
    };
    page(status, title, &msg)
}

/// A plain page of Porta's own (not the app's), with its code in a header for scripts.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>body{{font:16px system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}}\
         h1{{font-size:1.3em}}</style></head><body><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], Body::from(html)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Its own styles only.
    resp.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"),
    );
    resp
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_paths_name_a_server_a_port_and_the_apps_path() {
        assert_eq!(parse("/p/s1/3000/a/b"), Some(PreviewPath { server: "s1", port: 3000, rest: Some("a/b") }));
        assert_eq!(parse("/p/s1/3000/"), Some(PreviewPath { server: "s1", port: 3000, rest: Some("") }));
        assert_eq!(parse("/p/s1/3000"), Some(PreviewPath { server: "s1", port: 3000, rest: None }));
        for bad in ["/p/s1", "/p/s1/0/", "/p/s1/70000/", "/p/s1/x/", "/p//3000/", "/q/s1/3000/"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_ticket_leaves_the_query_and_the_rest_stays() {
        assert_eq!(take_ticket("porta_ticket=pwt_x"), (Some("pwt_x".into()), String::new()));
        assert_eq!(take_ticket("a=1&porta_ticket=pwt_x&b=2"), (Some("pwt_x".into()), "a=1&b=2".into()));
        assert_eq!(take_ticket("a=1"), (None, "a=1".into()));
        assert_eq!(take_ticket(""), (None, String::new()));
    }

    #[test]
    fn pages_escape_what_they_say() {
        assert_eq!(escape("<b>&\""), "&lt;b&gt;&amp;&quot;");
    }
}
