//! Sharing a preview beyond the server's developers: with the members of its workspace (they
//! enter from Porta, signed in), or by a public link that anyone holding it may open, perhaps
//! with a password, until it expires. Shares are revocable; the clients that entered and the
//! traffic they made are counted (in memory for a few seconds, then added to the store by
//! whichever replica carried it).
//!
//! Shares exist only in the host form (`<port>--<server>.<preview domain>`): the path form
//! shares Porta's origin, which no page of another person's app may have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt as _;

use super::proxy::Tally;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::clock::now_ms;
use crate::db::{PreviewShare, Store};
use crate::error::{Error, Result};

/// What public links start with.
pub const LINK_PREFIX: &str = "pvs";
/// The query parameter a public link carries its secret in.
pub const LINK_PARAM: &str = "porta_share";
/// The longest a public link may last.
pub const MAX_PUBLIC: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest a share with the workspace may last (or without end).
pub const MAX_WORKSPACE: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often counted traffic is added to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
const PASSWORD_MIN: usize = 8;
const PASSWORD_MAX: usize = 128;

/// Who a share opens a preview to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Every member of the server's workspace, signed in to Porta.
    Workspace,
    /// Anyone with the link (and its password, if it has one).
    Public,
}

impl Level {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "workspace" => Ok(Self::Workspace),
            "public" => Ok(Self::Public),
            "private" => Err(Error::BadRequest(
                "a private preview is not shared: it is open to the server's developers, each from Porta".into(),
            )),
            other => Err(Error::BadRequest(format!("no sharing level {other:?}: workspace or public"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workspace => "workspace",
            Self::Public => "public",
        }
    }
}

/// A share to make.
#[derive(Debug, Clone)]
pub struct NewShare {
    pub server: String,
    pub port: u16,
    pub level: Level,
    pub expires_in: Option<Duration>,
    pub password: Option<String>,
    /// Who shares it (the audit log's actor).
    pub by: String,
}

/// Makes a share: the row, and a public link's secret (shown once, kept only as a hash).
pub async fn create(store: &Store, new: NewShare) -> Result<(PreviewShare, Option<String>)> {
    if !porta_shared::ports::valid_port(new.port) {
        return Err(Error::BadRequest(format!("port {} is not a port (1 to 65535)", new.port)));
    }
    let longest = match new.level {
        Level::Public => MAX_PUBLIC,
        Level::Workspace => MAX_WORKSPACE,
    };
    match new.expires_in {
        None if new.level == Level::Public => {
            return Err(Error::BadRequest("a public link needs an expiry (at most 30 days)".into()));
        }
        Some(d) if d.is_zero() || d > longest => {
            let days = longest.as_secs() / 86_400;
            return Err(Error::BadRequest(format!("a {} share lasts at most {days} days", new.level.as_str())));
        }
        _ => {}
    }
    let password = new.password.filter(|p| !p.is_empty());
    if let Some(p) = &password {
        if new.level != Level::Public {
            return Err(Error::BadRequest("only a public link has a password: members sign in to Porta".into()));
        }
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&p.chars().count()) {
            return Err(Error::BadRequest(format!(
                "a link's password has {PASSWORD_MIN} to {PASSWORD_MAX} characters"
            )));
        }
    }
    let password_hash = match password {
        Some(p) => Some(crate::auth::password::hash(p).await.map_err(Error::Other)?),
        None => None,
    };
    let created_ms = now_ms();
    let share = PreviewShare {
        id: uuid::Uuid::new_v4().to_string(),
        server_id: new.server,
        port: i64::from(new.port),
        level: new.level.as_str().to_owned(),
        password_hash,
        created_by: new.by,
        created_ms,
        expires_ms: new.expires_in.map(|d| created_ms + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)),
        revoked_ms: None,
        visits: 0,
        requests: 0,
        bytes: 0,
    };
    let secret = (new.level == Level::Public).then(|| random_secret(LINK_PREFIX));
    store.create_preview_share(&share, secret.as_deref().map(hash_secret).as_deref()).await?;
    Ok((share, secret))
}

/// The live public link `secret` opens, or why not: unknown and revoked links are "not
/// found", an expired one says so.
pub async fn by_link(store: &Store, secret: &str) -> Result<PreviewShare> {
    let gone = || Error::NotFound("this link does not open anything: it was revoked, or never was".into());
    let share = store.preview_share_by_secret(&hash_secret(secret)).await?.ok_or_else(gone)?;
    if share.revoked_ms.is_some() {
        return Err(gone());
    }
    if !share.live_at(now_ms()) {
        return Err(Error::NotFound("this link has expired: ask for a new one".into()));
    }
    Ok(share)
}

/// Traffic through shares, counted here and added to the store every [`FLUSH_EVERY`].
#[derive(Clone, Default)]
pub struct Traffic {
    counts: Arc<Mutex<HashMap<String, Counts>>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    visits: i64,
    requests: i64,
    bytes: i64,
}

impl Traffic {
    fn add(&self, share: &str, f: impl FnOnce(&mut Counts)) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        f(counts.entry(share.to_owned()).or_default());
    }

    pub fn visit(&self, share: &str) {
        self.add(share, |c| c.visits += 1);
    }

    pub fn request(&self, share: &str) {
        self.add(share, |c| c.requests += 1);
    }

    pub fn bytes(&self, share: &str, n: usize) {
        self.add(share, |c| c.bytes = c.bytes.saturating_add(i64::try_from(n).unwrap_or(i64::MAX)));
    }

    /// `body`, its bytes counted for `share` as they pass. What it says of its own length
    /// stays as it was: an empty body stays empty (a `GET` does not go on as `chunked`, which
    /// some apps read as the start of the next request), a sized one keeps its size.
    pub fn counted(&self, share: &str, body: Body) -> Body {
        let (me, share) = (self.clone(), share.to_owned());
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                me.bytes(&share, data.len());
            }
            frame
        }))
    }

    /// Counts an upgraded connection's bytes (both ways) for `share`.
    pub fn tally(&self, share: &str) -> Tally {
        let (me, share) = (self.clone(), share.to_owned());
        Arc::new(move |n| me.bytes(&share, n))
    }

    /// Adds what was counted to the store (what fails to be written is kept for next time).
    pub async fn flush(&self, store: &Store) {
        let taken: Vec<(String, Counts)> = self.counts.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        for (id, c) in taken {
            if let Err(e) = store.count_preview_share(&id, c.visits, c.requests, c.bytes).await {
                tracing::warn!(error = %e, "a preview share's traffic was not counted yet");
                self.add(&id, |k| {
                    k.visits += c.visits;
                    k.requests += c.requests;
                    k.bytes += c.bytes;
                });
            }
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until the process ends.
    pub fn spawn_flusher(&self, store: Store) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                me.flush(&store).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_named_and_private_is_not_a_share() {
        assert_eq!(Level::parse("workspace").ok(), Some(Level::Workspace));
        assert_eq!(Level::parse("public").ok(), Some(Level::Public));
        assert!(matches!(Level::parse("private"), Err(Error::BadRequest(m)) if m.contains("not shared")));
        assert!(Level::parse("everyone").is_err());
    }

    #[test]
    fn traffic_adds_up_per_share() {
        let t = Traffic::default();
        t.visit("a");
        t.request("a");
        t.request("a");
        t.bytes("a", 10);
        t.request("b");
        let counts = t.counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(counts["a"], Counts { visits: 1, requests: 2, bytes: 10 });
        assert_eq!(counts["b"], Counts { visits: 0, requests: 1, bytes: 0 });
    }
}
