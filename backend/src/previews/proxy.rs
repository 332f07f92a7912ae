//! HTTP/1.1 to a port on a server, through tunnels: a pooled client whose connections are
//! tunnels (so keep-alive saves a round trip to the bridge per request), requests rewritten
//! as a reverse proxy does (`Host` and `X-Forwarded-*` for links the app builds, hop-by-hop
//! headers dropped, Porta's own cookies never passed on), and upgrades (WebSockets) joined
//! end to end.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use porta_shared::{ErrorBody, ErrorCode};

use crate::relay::Relay;
use crate::relay::tunnel::{self, Tunnel};

/// How long an idle pooled connection (a tunnel, and its TCP connection on the server) lives:
/// shorter than the apps' own keep-alive (Node closes an idle connection after 5 s), so a
/// request never goes out on a connection the app is closing.
const IDLE: Duration = Duration::from_secs(4);
/// Cookies of this prefix are Porta's (also as `__Host-` and `__Secure-` cookies): never
/// passed to an app, never set by one.
pub const OWN_COOKIES: &str = "porta_";

/// Whether a cookie (`name=value…`) is one of Porta's.
fn own_cookie(kv: &str) -> bool {
    let name = kv.trim_start();
    let name = name.strip_prefix("__Host-").or_else(|| name.strip_prefix("__Secure-")).unwrap_or(name);
    name.starts_with(OWN_COOKIES)
}

/// Comes when an upgraded connection must end (its viewer may no longer see the preview).
pub type Ends = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Told how many bytes passed through an upgraded connection, either way, as they pass.
pub type Tally = Arc<dyn Fn(usize) + Send + Sync>;

/// What an upgraded connection (a WebSocket) answers to once joined.
#[derive(Default)]
pub struct Joined {
    /// When it must end.
    pub ends: Option<Ends>,
    /// Who counts its bytes.
    pub tally: Option<Tally>,
}

/// Where a preview goes: a port on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub server: String,
    pub port: u16,
}

/// How the browser reached the preview, for the headers the app reads.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The `Host` the browser asked for.
    pub host: String,
    /// `http` or `https`.
    pub proto: &'static str,
    pub client: IpAddr,
    /// The path the app is served under (`/p/<server>/<port>`), none at the root.
    pub prefix: Option<String>,
}

/// Why a preview could not be answered by the app.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The bridge could not connect, or the server is offline: its typed reason.
    #[error("{}", .0.message)]
    Open(ErrorBody),
    #[error("the app's answer was broken: {0}")]
    Upstream(String),
}

impl ProxyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Open(e) => e.code,
            Self::Upstream(_) => ErrorCode::Io,
        }
    }
}

/// A tunnel as hyper's client holds it.
pub struct Conn(TokioIo<Tunnel>);

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Why a tunnel did not open, carried through hyper's error to the page that says so.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
struct OpenFailed(ErrorBody);

/// Opens tunnels for URIs `http://<server>:<port>`.
#[derive(Clone)]
struct Connector {
    relay: Relay,
}

impl tower::Service<Uri> for Connector {
    type Response = Conn;
    type Error = OpenFailed;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, OpenFailed>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let relay = self.relay.clone();
        Box::pin(async move {
            let (Some(server), Some(port)) = (uri.host(), uri.port_u16()) else {
                return Err(OpenFailed(ErrorBody::new(ErrorCode::BadRequest, "no server and port to connect to")));
            };
            tunnel::open(&relay, server, port).await.map(|t| Conn(TokioIo::new(t))).map_err(OpenFailed)
        })
    }
}

/// The client every preview goes through.
#[derive(Clone)]
pub struct Proxy {
    client: Client<Connector, Body>,
}

impl Proxy {
    pub fn new(relay: Relay) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            // The browser's `Host` is passed on, not the tunnel's made-up authority.
            .set_host(false)
            .build(Connector { relay });
        Self { client }
    }

    /// Sends `req` (its path and query already the app's) to `to` and answers with the app's
    /// response, streamed. An upgrade the app accepts is joined to the browser's connection
    /// until either side closes it or `joined.ends` (the viewer's access ending) comes, its
    /// bytes told to `joined.tally`.
    pub async fn send(
        &self,
        to: &Target,
        fwd: &Forwarded,
        mut req: Request<Body>,
        joined: Joined,
    ) -> Result<Response<Body>, ProxyError> {
        let upgrade = upgrade_of(req.headers());
        let from_browser = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = format!("http://{}:{}{}", to.server, to.port, path).parse().map_err(|e| {
            ProxyError::Open(ErrorBody::new(ErrorCode::BadRequest, format!("a path the app cannot be asked: {e}")))
        })?;
        rewrite_request(&mut parts.headers, fwd, upgrade.as_ref());
        let mut resp = self.client.request(Request::from_parts(parts, body)).await.map_err(|e| opened(&e))?;
        if let (Some(from_browser), StatusCode::SWITCHING_PROTOCOLS) = (from_browser, resp.status()) {
            let to_app = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let (Ok(browser), Ok(app)) = (from_browser.await, to_app.await) else { return };
                let mut browser = Counted { inner: TokioIo::new(browser), tally: joined.tally };
                let mut app = TokioIo::new(app);
                let copied = tokio::io::copy_bidirectional(&mut browser, &mut app);
                match joined.ends {
                    Some(ends) => {
                        tokio::select! {
                            _ = copied => {}
                            () = ends => {}
                        }
                    }
                    None => {
                        let _ = copied.await;
                    }
                }
            });
        }
        let (mut parts, body) = resp.into_parts();
        rewrite_response(&mut parts.headers, fwd.prefix.as_deref(), parts.status == StatusCode::SWITCHING_PROTOCOLS);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// The browser's side of an upgraded connection, every byte read from it or written to it
/// told to `tally` as it passes (a socket open for hours is counted while it is).
struct Counted<T> {
    inner: T,
    tally: Option<Tally>,
}

impl<T> Counted<T> {
    fn count(&self, n: usize) {
        if let (Some(tally), 1..) = (&self.tally, n) {
            tally(n);
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.count(buf.filled().len() - before);
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            self.count(n);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The tunnel's reason when hyper failed to connect; otherwise a broken answer.
fn opened(e: &hyper_util::client::legacy::Error) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(OpenFailed(body)) = s.downcast_ref::<OpenFailed>() {
            return ProxyError::Open(body.clone());
        }
        source = s.source();
    }
    ProxyError::Upstream(e.to_string())
}

/// The protocol a request asks to upgrade to (`Connection: upgrade` with `Upgrade: …`).
fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
    let asks = connection_tokens(h).any(|t| t.eq_ignore_ascii_case("upgrade"));
    if asks { h.get(header::UPGRADE).cloned() } else { None }
}

/// The tokens of every `Connection` header, trimmed.
fn connection_tokens(h: &HeaderMap) -> impl Iterator<Item = &str> {
    h.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim)
}

/// Headers that describe one hop, never passed on (RFC 9110 §7.6.1), and those `Connection`
/// names.
fn drop_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> =
        connection_tokens(h).filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok()).collect();
    for name in named {
        h.remove(name);
    }
    for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"] {
        h.remove(name);
    }
    h.remove(header::PROXY_AUTHORIZATION);
}

fn rewrite_request(h: &mut HeaderMap, fwd: &Forwarded, upgrade: Option<&HeaderValue>) {
    drop_hop_by_hop(h);
    strip_own_cookies(h);
    if let Some(protocol) = upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, protocol.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&fwd.host) {
        h.insert(header::HOST, host.clone());
        h.insert("x-forwarded-host", host);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(fwd.proto));
    let chain = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", fwd.client),
        None => fwd.client.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        h.insert("x-forwarded-for", v);
    }
    match fwd.prefix.as_deref().map(HeaderValue::from_str) {
        Some(Ok(prefix)) => {
            h.insert("x-forwarded-prefix", prefix);
        }
        _ => {
            h.remove("x-forwarded-prefix");
        }
    }
}

/// Removes Porta's cookies from what the browser sent: the app never sees them.
fn strip_own_cookies(h: &mut HeaderMap) {
    let kept: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && !own_cookie(kv))
        .map(str::to_owned)
        .collect();
    h.remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_str(&kept.join("; "))
        && !kept.is_empty()
    {
        h.insert(header::COOKIE, v);
    }
}

/// The app's answer as the browser gets it: hop-by-hop headers dropped (but an accepted
/// upgrade's), cookies the app tries to set in Porta's name dropped, the others kept to the
/// preview's host, and, under a path prefix, its cookies and redirects to the app's root kept
/// under the prefix.
fn rewrite_response(h: &mut HeaderMap, prefix: Option<&str>, upgraded: bool) {
    let upgrade = upgraded.then(|| (h.get(header::CONNECTION).cloned(), h.get(header::UPGRADE).cloned()));
    drop_hop_by_hop(h);
    if let Some((connection, protocol)) = upgrade {
        connection.map(|v| h.insert(header::CONNECTION, v));
        protocol.map(|v| h.insert(header::UPGRADE, v));
    }
    let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
    h.remove(header::SET_COOKIE);
    for c in cookies {
        let Ok(text) = c.to_str() else { continue };
        if own_cookie(text) {
            continue;
        }
        // At a preview's own host (no prefix) too: no `Domain`, so no cookie reaches Porta's
        // host or another preview's.
        if let Ok(v) = HeaderValue::from_str(&scoped_cookie(text, prefix.unwrap_or(""))) {
            h.append(header::SET_COOKIE, v);
        }
    }
    if let (Some(prefix), Some(location)) = (prefix, h.get(header::LOCATION).and_then(|v| v.to_str().ok())) {
        // An app that honours X-Forwarded-Prefix names the prefix itself.
        let under = location == prefix || location.starts_with(&format!("{prefix}/"));
        if location.starts_with('/') && !location.starts_with("//") && !under {
            if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{location}")) {
                h.insert(header::LOCATION, v);
            }
        }
    }
}

/// A cookie the app sets, kept to its own preview: its `Path` under the prefix (`/` when it
/// names none) and no `Domain`, so it reaches neither Porta's pages nor other previews.
fn scoped_cookie(set: &str, prefix: &str) -> String {
    let mut parts = set.split(';').map(str::trim);
    let mut out = vec![parts.next().unwrap_or_default().to_owned()];
    let mut path = None;
    for attr in parts {
        let name = attr.split('=').next().unwrap_or_default().trim().to_ascii_lowercase();
        match name.as_str() {
            "domain" => {}
            "path" => path = attr.split_once('=').map(|(_, v)| v.trim().to_owned()),
            _ => out.push(attr.to_owned()),
        }
    }
    let path = path.filter(|p| p.starts_with('/')).unwrap_or_else(|| "/".into());
    out.push(format!("Path={prefix}{path}"));
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(prefix: Option<&str>) -> Forwarded {
        Forwarded {
            host: "porta.example".into(),
            proto: "https",
            client: "203.0.113.9".parse().unwrap(),
            prefix: prefix.map(str::to_owned),
        }
    }

    #[test]
    fn requests_lose_hop_by_hop_headers_and_porta_cookies_and_say_where_they_came_from() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::HOST, HeaderValue::from_static("elsewhere"));
        h.append(header::COOKIE, HeaderValue::from_static("a=1; porta_preview=jwt; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("porta_refresh=x; __Host-porta_preview=y"));
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        rewrite_request(&mut h, &fwd(Some("/p/s1/3000")), None);
        assert!(h.get("x-secret-hop").is_none() && h.get(header::CONNECTION).is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(h[header::HOST], "porta.example");
        assert_eq!(h["x-forwarded-host"], "porta.example");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 203.0.113.9");
        assert_eq!(h["x-forwarded-prefix"], "/p/s1/3000");
        assert_eq!(h.get_all(header::COOKIE).iter().collect::<Vec<_>>(), ["a=1; b=2"]);
    }

    #[test]
    fn only_porta_cookies_means_no_cookie_header_at_all() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("porta_preview=jwt"));
        rewrite_request(&mut h, &fwd(None), None);
        assert!(h.get(header::COOKIE).is_none());
        assert!(h.get("x-forwarded-prefix").is_none());
    }

    #[test]
    fn an_upgrade_is_passed_on() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let up = upgrade_of(&h);
        assert_eq!(up.as_ref().map(|v| v.as_bytes()), Some(&b"websocket"[..]));
        rewrite_request(&mut h, &fwd(None), up.as_ref());
        assert_eq!(
            (&h[header::CONNECTION], &h[header::UPGRADE]),
            (&HeaderValue::from_static("upgrade"), &HeaderValue::from_static("websocket"))
        );
        let mut plain = HeaderMap::new();
        plain.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(upgrade_of(&plain).is_none(), "an Upgrade header without Connection: upgrade asks nothing");
    }

    #[test]
    fn answers_cannot_set_porta_cookies_and_redirects_stay_under_the_prefix() {
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("porta_refresh=evil; Path=/api/auth"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("__Host-porta_refresh=evil; Path=/; Secure"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("session=ok; Path=/"));
        h.insert(header::LOCATION, HeaderValue::from_static("/login?next=%2F"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        rewrite_response(&mut h, Some("/p/s1/3000"), false);
        assert_eq!(h.get_all(header::SET_COOKIE).iter().collect::<Vec<_>>(), ["session=ok; Path=/p/s1/3000/"]);
        assert_eq!(h[header::LOCATION], "/p/s1/3000/login?next=%2F");
        // An app that already answers under the prefix is left alone.
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_static("/p/s1/3000/login"));
        rewrite_response(&mut h, Some("/p/s1/3000"), false);
        assert_eq!(h[header::LOCATION], "/p/s1/3000/login");
        assert!(h.get(header::CONNECTION).is_none());
        for elsewhere in ["//evil.example/x", "https://other.example/"] {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, HeaderValue::from_str(elsewhere).unwrap());
            rewrite_response(&mut h, Some("/p/s1/3000"), false);
            assert_eq!(h[header::LOCATION], elsewhere);
        }
    }

    #[test]
    fn an_apps_cookies_stay_under_its_preview() {
        let p = "/p/s1/3000";
        assert_eq!(scoped_cookie("sid=1; Path=/; HttpOnly", p), "sid=1; HttpOnly; Path=/p/s1/3000/");
        assert_eq!(scoped_cookie("sid=1; Domain=example.com; path=/app", p), "sid=1; Path=/p/s1/3000/app");
        assert_eq!(scoped_cookie("sid=1", p), "sid=1; Path=/p/s1/3000/");
        // At its own host: the app's path, and still no `Domain`.
        assert_eq!(scoped_cookie("sid=1; Domain=preview.example.com; Path=/app", ""), "sid=1; Path=/app");
        assert_eq!(scoped_cookie("sid=1; Secure", ""), "sid=1; Secure; Path=/");
        assert_eq!(scoped_cookie("sid=1; Path=relative", p), "sid=1; Path=/p/s1/3000/");
    }

    #[test]
    fn an_accepted_upgrade_keeps_its_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        rewrite_response(&mut h, None, true);
        assert_eq!(h[header::UPGRADE], "websocket");
    }
}
