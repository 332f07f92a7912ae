//! Porta's own pages on a preview's address (never the app's): why it is not open, why the
//! app did not answer, and a public link's password form.

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use porta_shared::ErrorCode;

use crate::error::Error;
use crate::previews::Viewer;
use crate::previews::proxy::ProxyError;

/// Why a preview is not open to this request, as a page.
pub fn refused(e: &Error) -> Response {
    let msg = match e {
        Error::Unauthorized(m) | Error::Forbidden(m) | Error::NotFound(m) => m.clone(),
        Error::RateLimited { .. } => e.to_string(),
        _ => "the preview could not be checked; try again".to_owned(),
    };
    let status =
        if matches!(e, Error::Db(_) | Error::Other(_)) { StatusCode::INTERNAL_SERVER_ERROR } else { e.status() };
    let mut resp = page(status, "This preview is not open to you", &msg);
    if let Error::RateLimited { retry_after_secs } = e
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Whether the app's absence is one a page waits out, trying again by itself: nothing
/// listening yet, or the server offline. A preview opened before its app started (as "Run and
/// preview" does) shows the app once it listens.
pub fn waits(e: &ProxyError) -> bool {
    matches!(e.code(), ErrorCode::NotFound | ErrorCode::ServerOffline)
}

/// Why the app did not answer, as a page: nothing listening, the server offline, no answer.
/// The first two try again by themselves after `tries` tries (see [`super::waiting`]).
pub fn unreachable_app(e: &ProxyError, viewer: &Viewer, port: u16, tries: u32) -> Response {
    let name = &viewer.server.name;
    let next = super::waiting::next_try(tries);
    let then = match next {
        Some(secs) => format!("This page tries again in {secs} seconds."),
        None => "This page stopped trying after about a quarter of an hour: reload it to try again.".to_owned(),
    };
    let (status, title, msg) = match e.code() {
        ErrorCode::NotFound => (
            StatusCode::BAD_GATEWAY,
            "Nothing is listening",
            format!("Nothing is listening on port {port} on {name} yet. Start the app: {then}"),
        ),
        ErrorCode::ServerOffline => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is offline",
            format!("{name} is offline: its bridge is not connected. {then}"),
        ),
        ErrorCode::Timeout => {
            let msg = format!("Port {port} on {name} did not accept the connection in time.");
            return page(StatusCode::GATEWAY_TIMEOUT, "No answer", &msg);
        }
        _ => return page(StatusCode::BAD_GATEWAY, "The app did not answer", &format!("Port {port} on {name}: {e}")),
    };
    match next {
        Some(secs) => retrying(status, title, &msg, secs),
        None => page(status, title, &msg),
    }
}

/// The form a public link with a password shows; `wrong` says why it is shown again.
pub fn password_form(status: StatusCode, action: &str, wrong: Option<&str>) -> Response {
    let said = wrong.map(|w| format!("<p class=\"wrong\">{}</p>", escape(w))).unwrap_or_default();
    let form = format!(
        "<p>This preview was shared with a password.</p>{said}<form method=\"post\" action=\"{a}\">\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus></label> \
         <button type=\"submit\">Open</button></form>",
        a = escape(action)
    );
    let mut page = html(status, "A shared preview", &form);
    // Its post then carries the page's origin (under `no-referrer` a browser sends `Origin:
    // null`, which any other page can send too): the form takes posts from its own page only.
    page.headers_mut().insert("referrer-policy", axum::http::HeaderValue::from_static("same-origin"));
    page
}

/// A plain page of Porta's own (not the app's), with its code in a header for scripts.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, title, &format!("<p>{}</p>", escape(message)))
}

/// A page that loads itself again after `secs` (no script: its policy allows none).
fn retrying(status: StatusCode, title: &str, message: &str, secs: u32) -> Response {
    let head = format!("<meta http-equiv=\"refresh\" content=\"{secs}\">");
    page_with(status, title, &head, &format!("<p>{}</p>", escape(message)))
}

fn html(status: StatusCode, title: &str, inner: &str) -> Response {
    page_with(status, title, "", inner)
}

fn page_with(status: StatusCode, title: &str, head: &str, inner: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">{head}\
         <title>{t}</title><style>body{{font:16px system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}}\
         h1{{font-size:1.3em}}.wrong{{color:#a00}}input,button{{font:inherit;padding:.3em}}</style></head>\
         <body><h1>{t}</h1>{inner}</body></html>",
        t = escape(title),
    );
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], Body::from(html)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Its own styles only, and its form posts to itself.
    resp.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self'",
        ),
    );
    resp
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_say() {
        assert_eq!(escape("<b>&\""), "&lt;b&gt;&amp;&quot;");
    }
}
