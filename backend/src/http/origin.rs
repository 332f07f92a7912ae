//! Origin checks: browser WebSockets and cookie-authenticated requests are accepted only
//! from the configured origins, compared exactly (scheme, host and port), never by prefix.

use axum::http::HeaderMap;
use axum::http::header::ORIGIN;

use crate::config::Origins;
use crate::error::{Error, Result};

/// Refuses a request whose `Origin` header names a foreign origin. Requests without one come
/// from non-browser clients, which cannot be tricked into sending a victim's credentials.
pub fn check(origins: &Origins, headers: &HeaderMap) -> Result<()> {
    match headers.get(ORIGIN) {
        None => Ok(()),
        Some(v) => match v.to_str() {
            Ok(o) if origins.allows(o) => Ok(()),
            _ => Err(Error::Forbidden("requests from this origin are not allowed".into())),
        },
    }
}
