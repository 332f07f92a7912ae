//! Previews: the web apps people run on their servers, seen in the browser through the
//! servers' bridges (no server opens a port). [`proxy`] carries HTTP and WebSockets over
//! tunnels; this module decides who may see what.
//!
//! A person enters a preview with a WebSocket ticket (one use, 30 seconds) in its URL; it is
//! exchanged for a cookie that names them, the server and the port, is scoped to that
//! preview (its path, or its own host), and is never passed to the app. Every request is
//! checked again: the sign-in still on, developer access to the server still held (or, for a
//! port [`shares`] opens to the workspace, membership). Someone holding a public link
//! enters with it (and its password) instead, for a cookie that names the share. A yes is
//! remembered for at most [`FRESH_FOR`] and only while no access change was made or heard of
//! (as the store's own answers are; revoking a share is one): a page's burst of requests
//! asks the database once.

pub mod proxy;
pub mod shares;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::auth::scopes::{Access, Scope};
use crate::auth::tokens::Keys;
use crate::db::{PreviewShare, Server, Store, User};
use crate::error::{Error, Result};
use crate::teams::Role;

/// The cookie that holds a preview's session.
pub const COOKIE: &str = "porta_preview";
/// Its name at a preview's own host over https: a `__Host-` cookie, which no other host of the
/// site (another preview's page) can set or shadow.
pub const HOST_COOKIE: &str = "__Host-porta_preview";
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
    viewer: Arc<Viewer>,
}

/// What a preview's cookie says: a person (`sub`, `acc`) or a public link (`share`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    srv: String,
    port: u16,
    #[serde(default)]
    acc: Option<Access>,
    #[serde(default)]
    share: Option<String>,
}

/// Who is looking at a preview.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The person, or nobody for a public link's visitor.
    pub person: Option<(User, Access)>,
    pub server: Server,
    /// The share that let them in (its traffic is counted), if not their own access.
    pub share: Option<String>,
}

impl Viewer {
    /// Who it is, for the audit log.
    pub fn actor(&self) -> String {
        match (&self.person, &self.share) {
            (Some((user, access)), _) => access.actor(&user.id),
            (None, Some(share)) => format!("link:{share}"),
            (None, None) => "anonymous".into(),
        }
    }
}

/// Previews' gate and client.
#[derive(Clone)]
pub struct Previews {
    store: Store,
    keys: Keys,
    admitted: Arc<Mutex<HashMap<String, Admitted>>>,
    pub proxy: proxy::Proxy,
    pub traffic: shares::Traffic,
    limiter: Arc<crate::auth::ratelimit::LoginLimiter>,
}

impl Previews {
    pub fn new(
        store: Store,
        keys: Keys,
        proxy: proxy::Proxy,
        limiter: Arc<crate::auth::ratelimit::LoginLimiter>,
    ) -> Self {
        let traffic = shares::Traffic::default();
        traffic.spawn_flusher(store.clone());
        Self { store, keys, admitted: Arc::default(), proxy, traffic, limiter }
    }

    /// Spends `ticket` (from `/api/ws/ticket`) on the preview of `port` on `server`: the viewer
    /// and the cookie that lets them in from now on.
    /// Shares admit only at a preview's own host (`own_host`): the path form is Porta's origin.
    pub async fn enter(&self, ticket: &str, server: &str, port: u16, own_host: bool) -> Result<(Viewer, String)> {
        let caller = crate::auth::tickets::caller(&self.store, ticket).await.map_err(|_| {
            Error::Unauthorized("this preview link was used or has expired: open it from Porta again".into())
        })?;
        let viewer = self.admit(caller.0, caller.1, server, port, own_host).await?;
        let (sub, acc) = viewer.person.as_ref().map(|(u, a)| (u.id.clone(), a.clone())).unzip();
        let cookie = self.cookie(sub.unwrap_or_default(), acc, None, server, port, SESSION_SECS)?;
        if let Some(share) = &viewer.share {
            self.traffic.visit(share);
        }
        Ok((viewer, cookie))
    }

    /// Spends a public link's `secret` (with its `password`, when it has one) on the preview
    /// it shares, from `client`: the viewer and their cookie. A wrong password counts against
    /// the client as a wrong sign-in password does.
    pub async fn enter_link(
        &self,
        secret: &str,
        password: Option<String>,
        server: &str,
        port: u16,
        client: IpAddr,
    ) -> Result<(Viewer, String)> {
        let share = shares::by_link(&self.store, secret).await?;
        if share.server_id != server || share.port != i64::from(port) {
            return Err(Error::NotFound("this link is for another preview".into()));
        }
        if let Some(hash) = share.password_hash.clone() {
            let Some(given) = password.filter(|p| !p.is_empty()) else {
                return Err(Error::Unauthorized("this link needs its password".into()));
            };
            let key = format!("preview-share:{}", share.id);
            if let Err(refused) = self.limiter.check(&key, client).await? {
                return Err(Error::RateLimited { retry_after_secs: refused.retry_after_secs });
            }
            if !crate::auth::password::verify(given, Some(hash)).await {
                self.limiter.failed(&key, client).await?;
                return Err(Error::Unauthorized("that is not this link's password".into()));
            }
            self.limiter.succeeded(&key, client).await?;
        }
        let viewer = self.link_viewer(&share).await?;
        let left = share.expires_ms.map_or(SESSION_SECS, |e| {
            u64::try_from((e - crate::clock::now_ms()) / 1000).unwrap_or(0).clamp(1, SESSION_SECS)
        });
        let cookie = self.cookie(String::new(), None, Some(share.id.clone()), server, port, left)?;
        self.traffic.visit(&share.id);
        Ok((viewer, cookie))
    }

    fn cookie(
        &self,
        sub: String,
        acc: Option<Access>,
        share: Option<String>,
        server: &str,
        port: u16,
        lasts: u64,
    ) -> Result<String> {
        let claims = Claims {
            sub,
            iss: Keys::ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: jsonwebtoken::get_current_timestamp() + lasts,
            srv: server.to_owned(),
            port,
            acc,
            share,
        };
        self.keys.sign(&claims).map_err(Error::Other)
    }

    /// The viewer a preview's cookie names, when it is for this server and port and they may
    /// still see it (through a share only at the preview's own host, `own_host`).
    pub async fn viewer(&self, cookie: &str, server: &str, port: u16, own_host: bool) -> Result<Arc<Viewer>> {
        let (generation, asked) = (self.store.access_generation(), Instant::now());
        if let Some(v) = self.remembered(cookie, server, port, generation).filter(|v| own_host || v.share.is_none()) {
            return Ok(v);
        }
        let viewer = Arc::new(self.check(cookie, server, port, own_host).await?);
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        if admitted.len() >= MAX_ADMITTED {
            admitted.clear();
        }
        let target = (server.to_owned(), port);
        admitted.insert(cookie.to_owned(), Admitted { at: asked, generation, target, viewer: viewer.clone() });
        Ok(viewer)
    }

    fn remembered(&self, cookie: &str, server: &str, port: u16, generation: u64) -> Option<Arc<Viewer>> {
        let admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let a = admitted.get(cookie)?;
        let fresh = a.generation == generation && a.at.elapsed() < FRESH_FOR;
        (fresh && a.target.0 == server && a.target.1 == port).then(|| a.viewer.clone())
    }

    async fn check(&self, cookie: &str, server: &str, port: u16, own_host: bool) -> Result<Viewer> {
        let stale = || Error::Unauthorized("open this preview from Porta: you are not signed in to it".into());
        let claims: Claims = self.keys.verify_for(cookie, AUDIENCE).ok_or_else(stale)?;
        if claims.srv != server || claims.port != port {
            return Err(stale());
        }
        if let Some(share) = &claims.share {
            // Said as "not found": a link's visitor is not sent to Porta to sign in.
            let gone = || Error::NotFound("this link was revoked or has expired".into());
            if !own_host {
                return Err(gone());
            }
            let share = self.store.preview_share(share).await?.ok_or_else(gone)?;
            if !share.live_at(crate::clock::now_ms()) || share.server_id != server || share.port != i64::from(port) {
                return Err(gone());
            }
            return self.link_viewer(&share).await;
        }
        let acc = claims.acc.ok_or_else(stale)?;
        let user = self.store.user_by_id(&claims.sub).await?.ok_or_else(stale)?;
        if !crate::auth::api_tokens::still_valid(&self.store, &user.id, &acc).await {
            return Err(stale());
        }
        self.admit(user, acc, server, port, own_host).await
    }

    async fn link_viewer(&self, share: &PreviewShare) -> Result<Viewer> {
        let server = self
            .store
            .server(&share.server_id)
            .await?
            .ok_or_else(|| Error::NotFound("the shared server is gone".into()))?;
        Ok(Viewer { person: None, server, share: Some(share.id.clone()) })
    }

    /// A developer of the server (through an API token, one with the terminal scope), or a
    /// member of its workspace when the port is shared with it.
    async fn admit(&self, user: User, access: Access, server: &str, port: u16, own_host: bool) -> Result<Viewer> {
        let found =
            crate::teams::authorize_server(&self.store, &user, &access, server, Role::Viewer, "seeing its previews")
                .await?;
        if found.role >= Role::Developer && access.allows(Scope::Terminal) {
            return Ok(Viewer { person: Some((user, access)), server: found.server, share: None });
        }
        if !access.allows(Scope::Read) {
            return Err(Error::Forbidden("previews need the read scope".into()));
        }
        let shared = if own_host { self.store.preview_shared_with_workspace(server, port).await? } else { None };
        match shared {
            Some(share) => Ok(Viewer { person: Some((user, access)), server: found.server, share: Some(share.id) }),
            None => Err(Error::Forbidden(format!(
                "port {port} is not shared with the workspace: its previews are for the server's developers"
            ))),
        }
    }
}
