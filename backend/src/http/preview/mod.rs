//! Previews over HTTP, in two forms of address:
//! - the path form, `/p/<server>/<port>/…` on Porta's own origin: the app answers as if
//!   served under that prefix (`X-Forwarded-Prefix` says so). It shares Porta's origin, so it
//!   is for the person themselves and is never shared;
//! - the host form, `<port>--<server>.<preview domain>` (see [`host`]), when
//!   `PORTA_PREVIEW_DOMAIN` is set: an origin of the preview's own, where the app is at its
//!   root. Every request to such a host is the preview's ([`by_host`] takes it before Porta's
//!   routes), so a page there can never reach Porta's API as the person. Shares need it.
//!
//! A link opened from Porta carries a ticket, exchanged here for the preview's cookie (see
//! `crate::previews`) and dropped from the URL; a public link carries its secret the same
//! way (and asks for its password first, when it has one).

mod host;
mod pages;
mod waiting;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use pages::{page, refused, unreachable_app};

use super::auth::cookie_value;
use crate::db::AuditEvent;
use crate::error::Error;
use crate::previews::proxy::{Forwarded, Joined, Target};
use crate::previews::shares::LINK_PARAM;
use crate::previews::{COOKIE, HOST_COOKIE, SESSION_SECS, Viewer};
use crate::state::AppState;

/// The query parameter a link opened from Porta carries its ticket in.
pub const TICKET: &str = "porta_ticket";
/// The most a password form's body may be.
const FORM_LIMIT: usize = 4096;
/// How often an open WebSocket's viewer is checked again without an access change.
const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

pub fn router() -> Router<AppState> {
    Router::new().route("/p/{*rest}", any(by_path))
}

/// Marks an answer that is the app's own: Porta's headers (framing, content policy) stay off it.
#[derive(Clone, Copy)]
pub struct AppAnswer;

/// Marks a page of Porta's own at a preview's host: Porta's pages may frame it (the pane shows
/// it), so it carries no `X-Frame-Options`; its content policy names who may.
#[derive(Clone, Copy)]
pub struct FramedByPorta;

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

/// Where a preview is served, as the browser sees it.
struct Site {
    server: String,
    port: u16,
    /// The path form's prefix (`/p/<server>/<port>`); `None` in the host form.
    prefix: Option<String>,
    /// The host form's origin (`scheme://host`).
    origin: Option<String>,
}

impl Site {
    /// The browser's path for the app's `path`.
    fn address(&self, path: &str) -> String {
        format!("{}{path}", self.prefix.as_deref().unwrap_or(""))
    }

    fn form(&self) -> &'static str {
        if self.prefix.is_some() { "path form" } else { "host form" }
    }

    /// At a preview's own host (where shares admit).
    fn own_host(&self) -> bool {
        self.origin.is_some()
    }

    /// The cookie's name: at its own host over https, `__Host-` (which no other host of the
    /// site can set or shadow); else the plain name.
    fn cookie(&self, state: &AppState) -> &'static str {
        if self.own_host() && state.config.is_https() { HOST_COOKIE } else { COOKIE }
    }

    /// The name of the cookie counting a waiting page's tries (see [`waiting`]), likewise.
    fn wait_cookie(&self, state: &AppState) -> &'static str {
        if self.own_host() && state.config.is_https() { waiting::HOST_COOKIE } else { waiting::COOKIE }
    }
}

async fn by_path(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let Some(p) = parse(&path) else {
        return page(StatusCode::BAD_REQUEST, "Not a preview", "A preview's address is /p/<server>/<port>/.");
    };
    let prefix = format!("/p/{}/{}", p.server, p.port);
    let Some(rest) = p.rest else {
        let query = req.uri().query().unwrap_or("");
        return redirect(&format!("{prefix}/{}", with_query(query)), None);
    };
    let site = Site { server: p.server.to_owned(), port: p.port, prefix: Some(prefix), origin: None };
    serve(&state, &site, format!("/{rest}"), req, peer).await
}

/// Takes every request to a preview's host (see [`host`]) before Porta's own routes see it.
pub async fn by_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(domain) = state.config.preview_domain.as_deref() else { return next.run(req).await };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let domain = domain.trim().to_ascii_lowercase();
    match host::parse(&host, &domain) {
        host::Host::Porta => next.run(req).await,
        host::Host::Unknown => {
            page(StatusCode::NOT_FOUND, "Not a preview", &format!("A preview's address is <port>--<server>.{domain}."))
        }
        host::Host::Preview { port, server } => {
            let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
                return page(StatusCode::INTERNAL_SERVER_ERROR, "No client", "The client's address is unknown.");
            };
            let proto = if state.config.is_https() { "https" } else { "http" };
            let site =
                Site { server: server.to_owned(), port, prefix: None, origin: Some(format!("{proto}://{host}")) };
            // One leading slash: `//elsewhere` is a path here, never another host in a Location.
            let path = format!("/{}", req.uri().path().trim_start_matches('/'));
            let mut resp = serve(&state, &site, path, req, peer).await;
            if resp.extensions().get::<AppAnswer>().is_none() {
                framed_by_porta(&state, &mut resp);
            }
            resp
        }
    }
}

/// Serves the app's `path` to `req`: enters with a ticket or a link when the URL carries one,
/// otherwise checks the cookie and carries the request to the app.
async fn serve(state: &AppState, site: &Site, path: String, req: Request, peer: SocketAddr) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    let (ticket, query) = take_param(&query, TICKET);
    if let Some(ticket) = ticket {
        return enter(state, site, &ticket, &site.address(&format!("{path}{}", with_query(&query))), peer).await;
    }
    let (link, query) = take_param(&query, LINK_PARAM);
    if let Some(link) = link {
        return enter_link(state, site, &link, &path, &query, req, peer).await;
    }
    let cookie = cookie_value(req.headers(), site.cookie(state)).unwrap_or_default().to_owned();
    let viewer = match state.previews.viewer(&cookie, &site.server, site.port, site.own_host()).await {
        Ok(v) => v,
        // A person who opens a preview's own address in a tab is sent to Porta to open it from
        // there (signing in first if need be), which sends them back with a ticket. (In a
        // frame, or for a link's visitor, the page says why instead.)
        Err(Error::Unauthorized(_)) if site.own_host() && navigates(&req) => {
            let to = format!("{}/preview/{}/{}", state.public_url, site.server, site.port);
            return redirect(&to, None);
        }
        Err(e) => return refused(&e),
    };
    // A WebSocket carries the cookie whichever page opens it: only the preview's own pages
    // (in the path form, Porta's origin) may open one.
    if req.headers().contains_key(header::UPGRADE) && !same_origin(state, site, &req) {
        return page(StatusCode::FORBIDDEN, "Not from here", "A preview's WebSocket opens only from its own pages.");
    }
    let traffic = &state.previews.traffic;
    let joined = if req.headers().contains_key(header::UPGRADE) {
        Joined {
            ends: Some(access_ends(state, site, cookie.clone())),
            tally: viewer.share.as_deref().map(|share| traffic.tally(share)),
        }
    } else {
        Joined::default()
    };
    // A page load's tries while the app is not there are counted (not its resources').
    let loads_page = loads_page(&req);
    let tries = waiting::tries(req.headers(), site.wait_cookie(state));
    let count =
        |tries: Option<u32>| waiting::set(site.wait_cookie(state), &site.address("/"), state.config.is_https(), tries);
    let target = Target { server: site.server.clone(), port: site.port };
    let fwd = Forwarded {
        host: req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned(),
        proto: if state.config.is_https() { "https" } else { "http" },
        client: peer.ip(),
        prefix: site.prefix.clone(),
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = match format!("{path}{}", with_query(&query)).parse() {
        Ok(u) => u,
        Err(_) => return page(StatusCode::BAD_REQUEST, "Not a preview", "The address cannot be passed to the app."),
    };
    // A shared preview's requests and bytes (both ways) are counted for the share.
    let body = match &viewer.share {
        Some(share) => {
            traffic.request(share);
            traffic.counted(share, body)
        }
        None => body,
    };
    match state.previews.proxy.send(&target, &fwd, Request::from_parts(parts, body), joined).await {
        Ok(mut resp) => {
            if let Some(share) = &viewer.share {
                let (parts, body) = resp.into_parts();
                resp = Response::from_parts(parts, traffic.counted(share, body));
            }
            if loads_page && tries.is_some() {
                resp.headers_mut().extend(count(None).map(|v| (header::SET_COOKIE, v)));
            }
            resp.extensions_mut().insert(AppAnswer);
            resp
        }
        Err(e) => {
            let tried = tries.unwrap_or(0);
            let mut resp = unreachable_app(&e, &viewer, site.port, tried);
            if loads_page && pages::waits(&e) {
                // Counted while it waits; forgotten once it stops, so a reload starts over.
                let counted = waiting::next_try(tried).map(|_| tried + 1);
                resp.headers_mut().extend(count(counted).map(|v| (header::SET_COOKIE, v)));
            }
            resp
        }
    }
}

/// Comes when the viewer `cookie` names may no longer see the preview: checked again after
/// every access change made or heard of (a share revoked, a sign-out) and every
/// [`RECHECK_EVERY`] (a link's expiry).
fn access_ends(state: &AppState, site: &Site, cookie: String) -> crate::previews::proxy::Ends {
    let previews = state.previews.clone();
    let mut changes = state.store.access_changes();
    let (server, port, own_host) = (site.server.clone(), site.port, site.own_host());
    Box::pin(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(RECHECK_EVERY) => {}
            }
            // (A database that cannot answer for a moment ends nothing.)
            if let Err(Error::Unauthorized(_) | Error::Forbidden(_) | Error::NotFound(_)) =
                previews.viewer(&cookie, &server, port, own_host).await
            {
                return;
            }
        }
    })
}

/// A browser's navigation of a whole tab to a page (not a frame's, not a script's request, not
/// a socket).
fn navigates(req: &Request) -> bool {
    loads(req, false)
}

/// A page loaded into a tab or a frame (not a script's request, an image or a socket).
fn loads_page(req: &Request) -> bool {
    loads(req, true)
}

fn loads(req: &Request, in_frames: bool) -> bool {
    let h = req.headers();
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let page = match text("sec-fetch-dest") {
        Some(dest) => dest == "document" || (in_frames && matches!(dest, "iframe" | "frame")),
        None => text("accept").is_some_and(|a| a.contains("text/html")),
    };
    req.method() == Method::GET && !h.contains_key(header::UPGRADE) && page
}

/// Lets Porta's pages frame one of its own pages at a preview's host (the pane shows it).
fn framed_by_porta(state: &AppState, resp: &mut Response) {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self' {}",
        state.public_url
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut().insert("content-security-policy", v);
    }
    resp.extensions_mut().insert(FramedByPorta);
}

/// Whether a request comes from the preview's own pages: the host form's own origin, or in
/// the path form Porta's. Requests without an `Origin` are not a page's.
fn same_origin(state: &AppState, site: &Site, req: &Request) -> bool {
    match &site.origin {
        Some(own) => req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).is_none_or(|o| {
            crate::config::normalize_origin(o).is_some_and(|o| crate::config::normalize_origin(own) == Some(o))
        }),
        None => super::origin::check(&state.origins, req.headers()).is_ok(),
    }
}

/// The preview's cookie for `site`, as `Set-Cookie` says it: scoped to its path (path form)
/// or host-only at its root (host form).
fn set_cookie(state: &AppState, site: &Site, cookie: &str, lasts: u64) -> Option<HeaderValue> {
    let secure = if state.config.is_https() { "; Secure" } else { "" };
    let (name, path) = (site.cookie(state), site.address("/"));
    HeaderValue::from_str(&format!("{name}={cookie}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={lasts}{secure}"))
        .ok()
}

/// Spends the ticket, sets the preview's cookie, and sends the browser on to `to` (the
/// address without the ticket).
async fn enter(state: &AppState, site: &Site, ticket: &str, to: &str, peer: SocketAddr) -> Response {
    let (viewer, cookie) = match state.previews.enter(ticket, &site.server, site.port, site.own_host()).await {
        Ok(v) => v,
        Err(e) => return refused(&e),
    };
    let detail = match &viewer.share {
        Some(share) => format!("{}, shared with the workspace ({share})", site.form()),
        None => site.form().to_owned(),
    };
    audit(state, &viewer, "preview.open", site, detail, peer).await;
    redirect(to, set_cookie(state, site, &cookie, SESSION_SECS))
}

/// A public link: its password asked for (and checked) when it has one, then the cookie.
async fn enter_link(
    state: &AppState,
    site: &Site,
    link: &str,
    path: &str,
    query: &str,
    req: Request,
    peer: SocketAddr,
) -> Response {
    if site.origin.is_none() {
        return page(StatusCode::NOT_FOUND, "Not shared here", "Shared links open at the preview's own address.");
    }
    let password = if req.method() == Method::POST {
        if !posted_here(site.origin.as_deref().unwrap_or_default(), req.headers()) {
            let why = "The password was sent from another site's page: open the link and type it here.";
            return page(StatusCode::FORBIDDEN, "Not sent from this page", why);
        }
        let Ok(body) = axum::body::to_bytes(req.into_body(), FORM_LIMIT).await else {
            return page(StatusCode::PAYLOAD_TOO_LARGE, "Too large", "The form said too much.");
        };
        url::form_urlencoded::parse(&body).find(|(k, _)| k == "password").map(|(_, v)| v.into_owned())
    } else {
        None
    };
    let asked = password.is_some();
    let action = format!("{path}?{LINK_PARAM}={link}");
    match state.previews.enter_link(link, password, &site.server, site.port, peer.ip()).await {
        Ok((viewer, cookie)) => {
            audit(state, &viewer, "preview.visit", site, "public link".into(), peer).await;
            let lasts = crate::previews::SESSION_SECS;
            redirect(&format!("{path}{}", with_query(query)), set_cookie(state, site, &cookie, lasts))
        }
        Err(Error::Unauthorized(m)) if asked => pages::password_form(StatusCode::UNAUTHORIZED, &action, Some(&m)),
        Err(Error::Unauthorized(_)) => pages::password_form(StatusCode::OK, &action, None),
        Err(e) => refused(&e),
    }
}

/// Whether a link's password form was posted from the preview's own page. A page elsewhere
/// could post a password it knows, giving a visitor the cookie of a share they never opened,
/// or post guesses that use up the link's tries from the visitor's address. Browsers say where
/// a form came from: `Sec-Fetch-Site` (which this page's own post makes `same-origin`; sent
/// to secure origins), else `Origin` (the form's page asks for it with its referrer policy;
/// `null`, which any page can make a browser send, is refused). A request saying neither is
/// no browser's, and cannot carry a visitor's anything.
fn posted_here(origin: &str, headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin";
    }
    match headers.get(axum::http::header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(from)) => {
            crate::config::normalize_origin(from).is_some_and(|f| crate::config::normalize_origin(origin) == Some(f))
        }
        Some(Err(_)) => false,
    }
}

async fn audit(state: &AppState, viewer: &Viewer, action: &str, site: &Site, detail: String, peer: SocketAddr) {
    let actor = viewer.actor();
    let target = format!("port:{}", site.port);
    state
        .store
        .audit(
            AuditEvent::new(&actor, action)
                .target(&target)
                .detail(detail)
                .source(peer.ip().to_string())
                .server(&site.server)
                .workspace_opt(viewer.server.workspace_id.as_deref()),
        )
        .await;
}

fn with_query(query: &str) -> String {
    if query.is_empty() { String::new() } else { format!("?{query}") }
}

/// The value of `name` in `query`, and the query without it.
fn take_param(query: &str, name: &str) -> (Option<String>, String) {
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
            Some(v) => {
                value = Some(v.to_owned());
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    (value, kept.join("&"))
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
        assert_eq!(take_param("porta_ticket=pwt_x", TICKET), (Some("pwt_x".into()), String::new()));
        assert_eq!(take_param("a=1&porta_ticket=pwt_x&b=2", TICKET), (Some("pwt_x".into()), "a=1&b=2".into()));
        assert_eq!(take_param("a=1", TICKET), (None, "a=1".into()));
        assert_eq!(take_param("", TICKET), (None, String::new()));
        assert_eq!(take_param("porta_share=pvs_1&x", LINK_PARAM), (Some("pvs_1".into()), "x".into()));
    }
}
