//! Login rate limiting, checked before any password is compared: per account and per
//! client address, so neither one guessed account nor one noisy address gets far.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

pub struct LoginLimiter {
    by_account: Keyed<String>,
    by_address: Keyed<IpAddr>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(n).allow_burst(n);
        Self { by_account: RateLimiter::keyed(quota), by_address: RateLimiter::keyed(quota) }
    }

    /// Counts one attempt; `Err(seconds)` when either limit is exhausted.
    pub fn check(&self, account: &str, address: IpAddr) -> Result<(), u64> {
        let clock = DefaultClock::default();
        let wait = |r: Result<(), governor::NotUntil<_>>| {
            r.map_err(|not_until| not_until.wait_time_from(clock.now()).as_secs().max(1))
        };
        wait(self.by_address.check_key(&address))?;
        wait(self.by_account.check_key(&account.to_lowercase()))?;
        Ok(())
    }

    /// Forgets idle keys so the maps do not grow without bound.
    pub fn sweep(&self) {
        self.by_account.retain_recent();
        self.by_address.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_account_and_per_address() {
        let l = LoginLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(l.check("alice", a).is_ok());
        }
        assert!(l.check("alice", a).is_err(), "account exhausted");
        assert!(l.check("ALICE", b).is_err(), "the account limit holds from another address");
        assert!(l.check("bob", b).is_ok());
    }
}
