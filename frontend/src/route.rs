//! The app's pages as URLs: `/` (the dashboard), `/servers/<id>` (a server's terminals and
//! files), `/teams/<id>` (a team's members, invitations and workspaces), `/invite/<secret>`
//! (an invitation link), `/recordings/<id>` (a terminal recording's player),
//! `/preview/<server>/<port>` (a preview, opened with a ticket), `/audit` (the audit log), `/tokens` (API tokens) and `/alerts`
//! (alerts, rules and notification channels). The backend
//! answers all with the app, so links and reloads work.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::browser::window;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Dashboard,
    Server(String),
    Team(String),
    Invite(String),
    Recording(String),
    /// A preview opened from Porta: its server and port.
    Preview(String, u16),
    Audit,
    Tokens,
    Alerts,
    Account,
}

impl Route {
    pub fn parse(path: &str) -> Self {
        match path.trim_end_matches('/') {
            "/audit" => return Self::Audit,
            "/tokens" => return Self::Tokens,
            "/alerts" => return Self::Alerts,
            "/account" => return Self::Account,
            _ => {}
        }
        let one = |prefix: &str| {
            path.strip_prefix(prefix)
                .map(|rest| rest.trim_end_matches('/'))
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .map(decode)
        };
        if let Some((server, port)) = path
            .strip_prefix("/preview/")
            .and_then(|rest| rest.trim_end_matches('/').split_once('/'))
            .and_then(|(s, p)| Some((decode(s), p.parse::<u16>().ok().filter(|p| *p > 0)?)))
            .filter(|(s, _)| crate::preview::valid_server(s))
        {
            return Self::Preview(server, port);
        }
        if let Some(id) = one("/servers/") {
            Self::Server(id)
        } else if let Some(id) = one("/teams/") {
            Self::Team(id)
        } else if let Some(secret) = one("/invite/") {
            Self::Invite(secret)
        } else if let Some(id) = one("/recordings/") {
            Self::Recording(id)
        } else {
            Self::Dashboard
        }
    }

    pub fn path(&self) -> String {
        match self {
            Self::Dashboard => "/".to_owned(),
            Self::Server(id) => format!("/servers/{}", encode(id)),
            Self::Team(id) => format!("/teams/{}", encode(id)),
            Self::Invite(secret) => format!("/invite/{}", encode(secret)),
            Self::Recording(id) => format!("/recordings/{}", encode(id)),
            Self::Preview(server, port) => format!("/preview/{}/{port}", encode(server)),
            Self::Audit => "/audit".to_owned(),
            Self::Tokens => "/tokens".to_owned(),
            Self::Alerts => "/alerts".to_owned(),
            Self::Account => "/account".to_owned(),
        }
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The current route, following the address bar (back and forward included).
pub fn current() -> RwSignal<Route> {
    let route = RwSignal::new(Route::parse(&window().location().pathname().unwrap_or_default()));
    let on_pop = Closure::<dyn FnMut()>::new(move || {
        // A step back within a page (a phone's panel closing) keeps the page.
        let to = Route::parse(&window().location().pathname().unwrap_or_default());
        if route.get_untracked() != to {
            route.set(to);
        }
    });
    let _ = window().add_event_listener_with_callback("popstate", on_pop.as_ref().unchecked_ref());
    // The listener lives as long as the page.
    on_pop.forget();
    route
}

/// Goes to `to`, adding it to the browser's history.
pub fn go(route: RwSignal<Route>, to: Route) {
    if route.get_untracked() != to {
        let _ = window().history().and_then(|h| h.push_state_with_url(&JsValue::NULL, "", Some(&to.path())));
        route.set(to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_pages() {
        assert_eq!(Route::parse("/"), Route::Dashboard);
        assert_eq!(Route::parse("/servers/abc"), Route::Server("abc".into()));
        assert_eq!(Route::parse("/servers/abc/"), Route::Server("abc".into()));
        assert_eq!(Route::parse("/servers/"), Route::Dashboard);
        assert_eq!(Route::parse("/servers/a/b"), Route::Dashboard);
        assert_eq!(Route::parse("/elsewhere"), Route::Dashboard);
        assert_eq!(Route::parse("/audit"), Route::Audit);
        assert_eq!(Route::parse(&Route::Audit.path()), Route::Audit);
        assert_eq!(Route::parse("/audit/x"), Route::Dashboard);
        assert_eq!(Route::parse("/tokens/"), Route::Tokens);
        assert_eq!(Route::parse(&Route::Tokens.path()), Route::Tokens);
        assert_eq!(Route::parse(&Route::Account.path()), Route::Account);
        assert_eq!(Route::parse("/alerts"), Route::Alerts);
        assert_eq!(Route::parse(&Route::Alerts.path()), Route::Alerts);
        assert_eq!(Route::parse("/teams/t1"), Route::Team("t1".into()));
        assert_eq!(Route::parse("/teams/"), Route::Dashboard);
        assert_eq!(Route::parse("/invite/pin_abc"), Route::Invite("pin_abc".into()));
        assert_eq!(Route::parse("/recordings/r1/"), Route::Recording("r1".into()));
        assert_eq!(Route::parse(&Route::Invite("pin_x-y".into()).path()), Route::Invite("pin_x-y".into()));
        assert_eq!(Route::parse("/preview/s1/5173"), Route::Preview("s1".into(), 5173));
        assert_eq!(Route::parse(&Route::Preview("s-1".into(), 80).path()), Route::Preview("s-1".into(), 80));
        // A server's id is all it may name: nothing that would take the ticket to another host.
        for bad in [
            "/preview/s1",
            "/preview/s1/0",
            "/preview/s1/x",
            "/preview//80",
            "/preview/s1/80/x",
            "/preview/x.evil.com%5C/80",
            "/preview/x%23/80",
            "/preview/x%3Fy/80",
            "/preview/X/80",
            "/preview/a.b/80",
        ] {
            assert_eq!(Route::parse(bad), Route::Dashboard, "{bad}");
        }
    }

    #[test]
    fn ids_round_trip_through_the_address() {
        for id in ["abc-123", "a b/c%d", "ünï"] {
            let route = Route::Server(id.into());
            assert_eq!(Route::parse(&route.path()), route, "{id}");
        }
        assert_eq!(Route::parse("/servers/bad%zz"), Route::Server("bad%zz".into()));
    }
}
