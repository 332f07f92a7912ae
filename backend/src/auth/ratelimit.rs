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
//!
//! The counts are in the database (`db::logins`), so every replica counts the same attempts
//! (behind a round-robin balancer a guesser would otherwise get a budget per replica) and a
//! restart hands nobody a fresh allowance. The address budget is a sliding minute, estimated
//! from this calendar minute's count and the one before's.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::now_ms;
use crate::db::{Result, Store};

/// Wrong passwords from one address for one account before the back-off starts.
pub const FREE_FAILURES: u32 = 5;
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A pair with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
const MINUTE_MS: i64 = 60_000;

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

/// Sign-in throttling over the store's counts.
pub struct LoginLimiter {
    store: Store,
    per_minute: i64,
}

fn secs_until(until_ms: i64, now: i64) -> u64 {
    u64::try_from((until_ms - now + 999) / 1000).unwrap_or(0).max(1)
}

impl LoginLimiter {
    pub fn new(store: Store, per_minute: u32) -> Self {
        Self { store, per_minute: i64::from(per_minute.max(1)) }
    }

    /// Counts one attempt on `account` (already [`account_key`]ed) from `address`.
    pub async fn check(&self, account: &str, address: IpAddr) -> Result<std::result::Result<(), Refused>> {
        let net = network(address).to_string();
        let now = now_ms();
        if let Some(b) = self.store.login_backing_off(account, &net, now).await? {
            return Ok(Err(Refused {
                retry_after_secs: secs_until(b.until_ms, now),
                first: b.refused == 1,
                failures: u32::try_from(b.failures).unwrap_or(u32::MAX),
            }));
        }
        let minute = now.div_euclid(MINUTE_MS);
        let (this, before) = self.store.login_attempt(&net, minute).await?;
        // A sliding minute: the minute before counts for the part of it still within the
        // last sixty seconds, so a burst across a minute's end gets no second budget.
        let into = now.rem_euclid(MINUTE_MS);
        let recent = this * MINUTE_MS + before * (MINUTE_MS - into);
        if recent > self.per_minute * MINUTE_MS {
            // When enough of the minute before has slid out (or, if this minute alone is
            // over, when it ends).
            let wait_ms = if this > self.per_minute || before == 0 {
                MINUTE_MS - into
            } else {
                ((recent - self.per_minute * MINUTE_MS) / before).clamp(1, MINUTE_MS - into)
            };
            return Ok(Err(Refused { retry_after_secs: secs_until(now + wait_ms, now), first: false, failures: 0 }));
        }
        Ok(Ok(()))
    }

    /// A wrong password: counts towards the back-off. Returns the back-off it starts, if any.
    pub async fn failed(&self, account: &str, address: IpAddr) -> Result<Option<Duration>> {
        let net = network(address).to_string();
        let now = now_ms();
        let failures = u32::try_from(self.store.login_failed(account, &net, now).await?).unwrap_or(u32::MAX);
        if failures < FREE_FAILURES {
            return Ok(None);
        }
        let wait = backoff(failures);
        let until = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        self.store.login_back_off(account, &net, until).await?;
        Ok(Some(wait))
    }

    /// The right password: this address starts afresh for this account.
    pub async fn succeeded(&self, account: &str, address: IpAddr) -> Result<()> {
        self.store.login_succeeded(account, &network(address).to_string()).await
    }

    /// Forgets past minutes and idle failures so the tables do not grow without bound.
    pub async fn sweep(&self) -> Result<()> {
        let now = now_ms();
        let idle = now - i64::try_from(FORGET_AFTER.as_millis()).unwrap_or(i64::MAX);
        self.store.login_sweep(now.div_euclid(MINUTE_MS), idle, now).await
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
    use crate::db::testing::on_both_engines;

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
    fn the_back_off_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(backoff(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(backoff(FREE_FAILURES + 40), MAX_BACKOFF);
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        assert_eq!(network(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    on_both_engines! {
        async fn failures_from_one_address_do_not_lock_out_another(store: Store) {
            let l = LoginLimiter::new(store, 1000);
            let (attacker, owner) = (ip("203.0.113.9"), ip("198.51.100.7"));
            for _ in 0..FREE_FAILURES {
                assert!(l.check("carol", attacker).await.expect("db").is_ok());
                l.failed("carol", attacker).await.expect("db");
            }
            let refused = l.check("carol", attacker).await.expect("db").expect_err("backing off");
            assert!(refused.first && refused.failures == FREE_FAILURES, "{refused:?}");
            assert!(!l.check("carol", attacker).await.expect("db").expect_err("still").first, "one audit per back-off");
            assert!(l.check("carol", owner).await.expect("db").is_ok(), "the owner's address is not held up");
            l.succeeded("carol", owner).await.expect("db");
            assert!(l.check("carol", attacker).await.expect("db").is_err(), "the owner's success does not free the attacker");
        }

        async fn one_address_has_a_budget_over_all_accounts(store: Store) {
            let l = LoginLimiter::new(store, 3);
            let a = ip("10.0.0.1");
            for name in ["a", "b", "c"] {
                assert!(l.check(name, a).await.expect("db").is_ok());
            }
            let refused = l.check("d", a).await.expect("db").expect_err("the address's budget is spent");
            assert!((1..=60).contains(&refused.retry_after_secs), "{refused:?}");
            assert!(l.check("d", ip("10.0.0.2")).await.expect("db").is_ok());
        }

        async fn a_burst_across_a_minute_end_gets_no_second_budget(store: Store) {
            // Three attempts in the minute before, counted as spread over it.
            let l = LoginLimiter::new(store.clone(), 3);
            let minute = now_ms().div_euclid(MINUTE_MS);
            for _ in 0..3 {
                store.login_attempt("10.9.9.9", minute - 1).await.expect("db");
            }
            let into = now_ms().rem_euclid(MINUTE_MS);
            // Most of the minute before is still within the last sixty seconds: 1 + 3 * (1 -
            // into / 60 s) is over 3 while `into` is under 20 s (a later start proves less).
            if into < 19_000 {
                assert!(l.check("a", ip("10.9.9.9")).await.expect("db").is_err(), "a fresh budget {into} ms in");
            }
            assert!(l.check("a", ip("10.9.9.10")).await.expect("db").is_ok(), "another address has its own");
        }

        async fn an_ipv6_host_cannot_rotate_through_its_own_slash_64(store: Store) {
            let l = LoginLimiter::new(store, 2);
            assert!(l.check("a", ip("2001:db8:1:2::1")).await.expect("db").is_ok());
            assert!(l.check("a", ip("2001:db8:1:2:ffff::9")).await.expect("db").is_ok());
            assert!(l.check("a", ip("2001:db8:1:2:abcd::7")).await.expect("db").is_err(), "one /64 shares one budget");
            assert!(l.check("a", ip("2001:db8:1:3::1")).await.expect("db").is_ok(), "the next /64 is another network");
        }

        async fn success_clears_the_count_and_the_sweep_keeps_live_back_offs(store: Store) {
            let l = LoginLimiter::new(store.clone(), 1000);
            let a = ip("10.0.0.1");
            for _ in 0..FREE_FAILURES - 1 {
                l.failed("dave", a).await.expect("db");
            }
            l.succeeded("dave", a).await.expect("db");
            assert_eq!(l.failed("dave", a).await.expect("db"), None, "counting starts again");
            for _ in 0..FREE_FAILURES {
                l.failed("erin", a).await.expect("db");
            }
            // A sweep far in the future forgets idle pairs, but one just now is not idle.
            l.sweep().await.expect("db");
            assert!(l.check("erin", a).await.expect("db").is_err(), "a back-off outlives a sweep");
            let later = now_ms() + 2 * 3_600_000;
            store.login_sweep(later / MINUTE_MS, later - 3_600_000, later).await.expect("db");
            assert!(l.check("erin", a).await.expect("db").is_ok(), "an idle, expired back-off is forgotten");
        }

        async fn two_replicas_count_the_same_attempts(store: Store) {
            // Two limiters on one database: what one counts, the other refuses.
            let (one, two) = (LoginLimiter::new(store.clone(), 3), LoginLimiter::new(store, 3));
            let a = ip("192.0.2.1");
            assert!(one.check("x", a).await.expect("db").is_ok());
            assert!(two.check("x", a).await.expect("db").is_ok());
            assert!(one.check("x", a).await.expect("db").is_ok());
            assert!(two.check("x", a).await.expect("db").is_err(), "the budget is shared");
            for _ in 0..FREE_FAILURES {
                one.failed("frank", ip("192.0.2.2")).await.expect("db");
            }
            assert!(two.check("frank", ip("192.0.2.2")).await.expect("db").is_err(), "so is the back-off");
        }
    }
}
