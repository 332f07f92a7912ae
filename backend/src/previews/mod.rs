//! Previews: the web apps people run on their servers, seen in the browser through the
//! servers' bridges (no server opens a port). [`proxy`] carries HTTP and WebSockets over
//! tunnels; this module decides who may see what.
//!
//! A person enters a preview with a WebSocket ticket (one use, 30 seconds) in its URL; it is
//! exchanged for a cookie that names them, the server and the port, is scoped to that
//! preview's path, and is never passed to the app. Every request is checked again: the
//! sign-in still on, developer access to the server still held. A yes is remembered for at
//! most [`FRESH_FOR`] and only while no access change was made or heard of (as the store's
//! own answers are): a page's burst of requests asks the database once.

pub mod proxy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::auth::scopes::{Access, Scope};
use crate::auth::tokens::Keys;
use crate::db::{ServerAccess, Store, User};
use crate::error::{Error, Result};
use crate::teams::Role;

/// The cookie that holds a preview's session.
pub const COOKIE: &str = "porta_preview";
/// How long a preview's cookie lasts (then the person opens it from Porta again).
pub const SESSION_SECS: u64 = 12 * 3600;
const AUDIENCE: &str = "porta:preview";
/// How long a preview's cookie, once checked, is believed without asking again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Cookies remembered at most; when full, all are forgotten (refilled within a second).
const MAX_ADMITTED: usize = 10_000;

/// A cookie checked recently: when, under which access generation, and who it let in.
struct Admitted {
    at: Instant,
    generation: u64,
    target: (String, u16),
    viewer: Viewer,
}

/// What a preview's cookie says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    srv: String,
    port: u16,
    acc: Access,
}

/// Who is looking at a preview.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub access: Access,
    pub server: ServerAccess,
}

/// Previews' gate and client.
#[derive(Clone)]
pub struct Previews {
    store: Store,
    keys: Keys,
    admitted: Arc<Mutex<HashMap<String, Admitted>>>,
    pub proxy: proxy::Proxy,
}

impl Previews {
    pub fn new(store: Store, keys: Keys, relay: crate::relay::Relay) -> Self {
        Self { store, keys, admitted: Arc::default(), proxy: proxy::Proxy::new(relay) }
    }

    /// Spends `ticket` (from `/api/ws/ticket`) on the preview of `port` on `server`: the viewer
    /// and the cookie that lets them in from now on.
    pub async fn enter(&self, ticket: &str, server: &str, port: u16) -> Result<(Viewer, String)> {
        let caller = crate::auth::tickets::caller(&self.store, ticket).await.map_err(|_| {
            Error::Unauthorized("this preview link was used or has expired: open it from Porta again".into())
        })?;
        let viewer = self.admit(caller.0, caller.1, server).await?;
        let claims = Claims {
            sub: viewer.user.id.clone(),
            iss: Keys::ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: jsonwebtoken::get_current_timestamp() + SESSION_SECS,
            srv: server.to_owned(),
            port,
            acc: viewer.access.clone(),
        };
        let cookie = self.keys.sign(&claims).map_err(Error::Other)?;
        Ok((viewer, cookie))
    }

    /// The viewer a preview's cookie names, when it is for this server and port and they may
    /// still see it.
    pub async fn viewer(&self, cookie: &str, server: &str, port: u16) -> Result<Viewer> {
        let (generation, asked) = (self.store.access_generation(), Instant::now());
        if let Some(v) = self.remembered(cookie, server, port, generation) {
            return Ok(v);
        }
        let viewer = self.check(cookie, server, port).await?;
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        if admitted.len() >= MAX_ADMITTED {
            admitted.clear();
        }
        let target = (server.to_owned(), port);
        admitted.insert(cookie.to_owned(), Admitted { at: asked, generation, target, viewer: viewer.clone() });
        Ok(viewer)
    }

    fn remembered(&self, cookie: &str, server: &str, port: u16, generation: u64) -> Option<Viewer> {
        let admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let a = admitted.get(cookie)?;
        let fresh = a.generation == generation && a.at.elapsed() < FRESH_FOR;
        (fresh && a.target.0 == server && a.target.1 == port).then(|| a.viewer.clone())
    }

    async fn check(&self, cookie: &str, server: &str, port: u16) -> Result<Viewer> {
        let stale = || Error::Unauthorized("open this preview from Porta: you are not signed in to it".into());
        let claims: Claims = self.keys.verify_for(cookie, AUDIENCE).ok_or_else(stale)?;
        if claims.srv != server || claims.port != port {
            return Err(stale());
        }
        let user = self.store.user_by_id(&claims.sub).await?.ok_or_else(stale)?;
        if !crate::auth::api_tokens::still_valid(&self.store, &user.id, &claims.acc).await {
            return Err(stale());
        }
        self.admit(user, claims.acc, server).await
    }

    /// A developer of the server (through an API token, one with the terminal scope).
    async fn admit(&self, user: User, access: Access, server: &str) -> Result<Viewer> {
        if !access.allows(Scope::Terminal) {
            return Err(Error::Forbidden("previews need the terminal scope".into()));
        }
        let server = crate::teams::authorize_server(
            &self.store,
            &user,
            &access,
            server,
            Role::Developer,
            "previewing its ports",
        )
        .await?;
        Ok(Viewer { user, access, server })
    }
}
