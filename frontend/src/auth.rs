//! Keeping the session alive: the access token (memory only) is renewed through the HttpOnly
//! refresh cookie shortly before it expires (see [`Session::renew_at_ms`]), and whenever a
//! caller finds it stale.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Session};
use crate::browser::sleep;

/// Renews the token in the background for as long as someone is signed in. A failed renewal
/// (the refresh token was revoked or expired) signs the page out.
pub fn keep_fresh(session: RwSignal<Option<Session>>) {
    spawn_local(async move {
        loop {
            let Some(renew_at) = session.get_untracked().map(|s| s.renew_at_ms()) else {
                // Signed out: look again later (signing in starts a new session value).
                sleep(1_000).await;
                continue;
            };
            let wait = (renew_at - js_sys::Date::now()).clamp(0.0, 60_000.0);
            sleep(wait as u32).await;
            if session.get_untracked().is_some_and(|s| s.renew_at_ms() <= js_sys::Date::now())
                && renew(session).await.is_none()
            {
                // Porta is unreachable: try again shortly rather than in a tight loop.
                sleep(5_000).await;
            }
        }
    });
}

/// A usable access token: the current one, or a renewed one when it is about to expire.
pub async fn token(session: RwSignal<Option<Session>>) -> Option<String> {
    let current = session.get_untracked()?;
    if current.renew_at_ms() > js_sys::Date::now() {
        return Some(current.token);
    }
    renew(session).await.map(|s| s.token)
}

/// Trades the refresh cookie for a new session; signs out when the cookie is no longer good.
pub async fn renew(session: RwSignal<Option<Session>>) -> Option<Session> {
    let fresh = api::refresh().await;
    // Only a definite refusal signs out; an unreachable backend keeps the old session.
    match &fresh {
        Ok(s) => session.set(Some(s.clone())),
        Err(api::Failure::SignedOut) => session.set(None),
        Err(api::Failure::Other(_)) => {}
    }
    fresh.ok()
}
