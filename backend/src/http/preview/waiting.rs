//! How long a preview's "nothing is listening" and "server offline" pages keep trying by
//! themselves: every 2 s at first (an app starting up), then less often, and after about a
//! quarter of an hour not at all (a tab left open on a stopped app loaded the page every 2 s
//! for ever). The tries are counted in a cookie of Porta's own, which is never passed to the
//! app and which an app cannot set (see `crate::previews::proxy::OWN_COOKIES`).

use axum::http::HeaderMap;
use axum::http::header::HeaderValue;

use super::super::auth::cookie_value;

/// The count's cookie; at a preview's own host over https, `__Host-` (no other host of the
/// site can set or shadow it).
pub const COOKIE: &str = "porta_wait";
pub const HOST_COOKIE: &str = "__Host-porta_wait";
/// A count older than this is forgotten: a page opened later starts over.
const FORGET_AFTER_SECS: u32 = 120;

/// Seconds before the next try after `tries` of them; `None` once it has tried long enough.
pub fn next_try(tries: u32) -> Option<u32> {
    match tries {
        // The first half minute: an app starting up.
        0..15 => Some(2),
        // Then five minutes.
        15..45 => Some(10),
        // Then ten more.
        45..65 => Some(30),
        _ => None,
    }
}

/// The tries a request's cookie `name` counts (`None`: no count; nonsense counts as none).
pub fn tries(headers: &HeaderMap, name: &str) -> Option<u32> {
    cookie_value(headers, name).map(|v| v.parse().unwrap_or(0))
}

/// `Set-Cookie` for the count after this answer: `tries` more, or forgotten (`None`).
pub fn set(name: &str, path: &str, secure: bool, tries: Option<u32>) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let (value, lasts) = tries.map_or((String::new(), 0), |n| (n.to_string(), FORGET_AFTER_SECS));
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={lasts}{secure}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_come_less_often_and_then_stop() {
        assert_eq!(next_try(0), Some(2));
        assert_eq!(next_try(15), Some(10));
        assert_eq!(next_try(64), Some(30));
        assert_eq!(next_try(65), None);
        let total: u32 = (0..65).filter_map(next_try).sum();
        assert!((14 * 60..=16 * 60).contains(&total), "{total} s");
    }

    #[test]
    fn the_count_is_read_and_nonsense_counts_as_none() {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_static("a=1; porta_wait=14"));
        assert_eq!(tries(&h, COOKIE), Some(14));
        h.insert("cookie", HeaderValue::from_static("porta_wait=-3"));
        assert_eq!(tries(&h, COOKIE), Some(0));
        assert_eq!(tries(&HeaderMap::new(), COOKIE), None);
        let forgot = set(COOKIE, "/p/s/3000/", false, None).unwrap();
        assert_eq!(forgot, "porta_wait=; Path=/p/s/3000/; HttpOnly; SameSite=Lax; Max-Age=0");
    }
}
