//! Origin checks: browser WebSockets and cookie-authenticated requests are accepted only
//! from the configured origins, compared exactly (scheme, host and port), never by prefix.

use axum::http::HeaderMap;
use axum::http::header::ORIGIN;

use crate::error::{Error, Result};
use crate::state::AppState;

pub use crate::config::normalize_origin as normalize;

/// The origins browsers may connect from.
#[derive(Debug, Clone)]
pub struct Origins(Vec<String>);

impl Origins {
    pub fn new(list: impl IntoIterator<Item = String>) -> Self {
        Self(list.into_iter().filter_map(|o| normalize(&o)).collect())
    }

    pub fn allows(&self, origin: &str) -> bool {
        normalize(origin).is_some_and(|o| self.0.contains(&o))
    }

    pub fn list(&self) -> &[String] {
        &self.0
    }
}

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

pub fn check_cookie_request(state: &AppState, headers: &HeaderMap) -> Result<()> {
    check(&state.origins, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_origins() {
        assert_eq!(normalize("HTTP://Example.com:80/x").as_deref(), Some("http://example.com"));
        assert_eq!(normalize("https://a.b:443").as_deref(), Some("https://a.b"));
        assert_eq!(normalize("http://127.0.0.1:8111").as_deref(), Some("http://127.0.0.1:8111"));
        assert_eq!(normalize("null"), None);
        assert_eq!(normalize("example.com"), None);
        assert_eq!(normalize("ftp://example.com"), None);
        assert_eq!(normalize("http://user@evil.com"), None);
    }

    #[test]
    fn only_exact_origins_pass() {
        let o = Origins::new(["https://ide.example.com".to_string(), "http://127.0.0.1:8111".to_string()]);
        assert!(o.allows("https://ide.example.com"));
        assert!(o.allows("https://IDE.example.com:443"));
        for evil in [
            "https://ide.example.com.evil.com",
            "https://evil.com",
            "http://ide.example.com",
            "https://ide.example.com:8443",
            "http://127.0.0.1:8112",
            "null",
            "ide.example.com",
            "",
        ] {
            assert!(!o.allows(evil), "{evil} must be refused");
        }
    }
}
