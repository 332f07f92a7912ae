//! Login throttling, checked before any password is compared.
//!
//! Two limits, neither of which lets a stranger lock a person out:
//! - per client address, a budget of attempts per minute over all accounts, so one address
//!   cannot spray passwords across many accounts;
//! - per (account, address), a back-off after repeated failures: five wrong passwords are
//!   free, then each further one waits twice as long as the last (1 s, 2 s, … up to 15 min).
//!   A success from that address clears it. Failures from an attacker's address never slow
//!   the owner signing in from theirs.
//!
//! Accounts are keyed by the name as the lookup sees it (trimmed, lower-cased), so
//! `" carol"`, `"carol "` and `"CAROL"` share one allowance.
//!
//! Refusals are counted, not written one by one: the caller audits the first refusal of a
//! back-off and the total when it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Wrong passwords from one address for one account before the back-off starts.
pub const FREE_FAILURES: u32 = 5;
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Most (account, address) pairs remembered; beyond this the oldest are forgotten.
const MAX_TRACKED: usize = 100_000;
/// A pair with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The name an account is known by for throttling: what the lookup matches.
pub fn account_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The network an address is throttled as: an IPv4 address itself, an IPv6 address's /64.
/// One IPv6 host is usually handed a whole /64, so keying by the full address would give an
/// attacker 2^64 fresh budgets.
pub fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Why an attempt may not be made now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub retry_after_secs: u64,
    /// The first refusal of this back-off (worth one audit event).
    pub first: bool,
    /// Failures that led to it (0 for the address's budget).
    pub failures: u32,
}

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    last: Instant,
    until: Option<Instant>,
    refused: u64,
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

pub struct LoginLimiter {
    by_address: Keyed<IpAddr>,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
}

impl LoginLimiter {
    /// `per_minute` attempts from one address, over all accounts.
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self { by_address: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)), failures: Mutex::default() }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one attempt on `account` (already [`account_key`]ed) from `address`.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), Refused> {
        let address = network(address);
        let now = Instant::now();
        if let Some(f) = self.map().get_mut(&(account.to_owned(), address)) {
            if let Some(until) = f.until.filter(|u| *u > now) {
                f.refused += 1;
                return Err(Refused {
                    retry_after_secs: until.duration_since(now).as_secs().max(1),
                    first: f.refused == 1,
                    failures: f.count,
                });
            }
        }
        let clock = DefaultClock::default();
        self.by_address.check_key(&address).map_err(|not_until| Refused {
            retry_after_secs: not_until.wait_time_from(clock.now()).as_secs().max(1),
            first: false,
            failures: 0,
        })
    }

    /// A wrong password: counts towards the back-off. Returns the back-off it starts, if any.
    pub fn failed(&self, account: &str, address: IpAddr) -> Option<Duration> {
        let address = network(address);
        let now = Instant::now();
        let mut map = self.map();
        if map.len() >= MAX_TRACKED {
            Self::forget_old(&mut map, now);
            if map.len() >= MAX_TRACKED {
                // Still full of live entries: drop the oldest tenth.
                let mut ages: Vec<_> = map.iter().map(|(k, f)| (f.last, k.clone())).collect();
                ages.sort_by_key(|(last, _)| *last);
                for (_, k) in ages.into_iter().take(MAX_TRACKED / 10) {
                    map.remove(&k);
                }
            }
        }
        let f = map.entry((account.to_owned(), address)).or_insert(Failures {
            count: 0,
            last: now,
            until: None,
            refused: 0,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
        f.refused = 0;
        if f.count < FREE_FAILURES {
            return None;
        }
        let wait = backoff(f.count);
        f.until = Some(now + wait);
        Some(wait)
    }

    /// The right password: this address starts afresh for this account.
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        self.map().remove(&(account.to_owned(), network(address)));
    }

    fn forget_old(map: &mut HashMap<(String, IpAddr), Failures>, now: Instant) {
        map.retain(|_, f| f.until.is_some_and(|u| u > now) || now.duration_since(f.last) < FORGET_AFTER);
    }

    /// Forgets idle entries so the maps do not grow without bound.
    pub fn sweep(&self) {
        self.by_address.retain_recent();
        Self::forget_old(&mut self.map(), Instant::now());
    }
}

/// The back-off after `failures` wrong passwords (at least [`FREE_FAILURES`]).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(FREE_FAILURES).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn names_are_keyed_as_the_lookup_sees_them() {
        for variant in [" carol", "carol ", "carol\t", "CAROL", "carol  "] {
            assert_eq!(account_key(variant), "carol", "{variant:?}");
        }
    }

    #[test]
    fn failures_from_one_address_do_not_lock_out_another() {
        let l = LoginLimiter::new(1000);
        let (attacker, owner) = (ip("203.0.113.9"), ip("198.51.100.7"));
        for _ in 0..FREE_FAILURES {
            assert!(l.check("carol", attacker).is_ok());
            l.failed("carol", attacker);
        }
        let refused = l.check("carol", attacker).expect_err("backing off");
        assert!(refused.first && refused.failures == FREE_FAILURES, "{refused:?}");
        assert!(!l.check("carol", attacker).expect_err("still").first, "one audit per back-off");
        assert!(l.check("carol", owner).is_ok(), "the owner's address is not held up");
        l.succeeded("carol", owner);
        assert!(l.check("carol", attacker).is_err(), "the owner's success does not free the attacker");
    }

    #[test]
    fn the_back_off_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(backoff(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(backoff(FREE_FAILURES + 40), MAX_BACKOFF);
    }

    #[test]
    fn one_address_has_a_budget_over_all_accounts() {
        let l = LoginLimiter::new(3);
        let a = ip("10.0.0.1");
        for name in ["a", "b", "c"] {
            assert!(l.check(name, a).is_ok());
        }
        assert!(l.check("d", a).is_err(), "the address's budget is spent");
        assert!(l.check("d", ip("10.0.0.2")).is_ok());
    }

    #[test]
    fn an_ipv6_host_cannot_rotate_through_its_own_slash_64() {
        let l = LoginLimiter::new(2);
        assert!(l.check("a", ip("2001:db8:1:2::1")).is_ok());
        assert!(l.check("a", ip("2001:db8:1:2:ffff::9")).is_ok());
        assert!(l.check("a", ip("2001:db8:1:2:abcd::7")).is_err(), "one /64 shares one budget");
        assert!(l.check("a", ip("2001:db8:1:3::1")).is_ok(), "the next /64 is another network");
        assert_eq!(network(ip("::ffff:10.0.0.1")), ip("10.0.0.1"), "mapped IPv4 is IPv4");
    }

    #[test]
    fn success_clears_the_count() {
        let l = LoginLimiter::new(1000);
        let a = ip("10.0.0.1");
        for _ in 0..FREE_FAILURES - 1 {
            l.failed("dave", a);
        }
        l.succeeded("dave", a);
        assert_eq!(l.failed("dave", a), None, "counting starts again");
    }
}
