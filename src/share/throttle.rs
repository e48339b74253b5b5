//! Throttles that live in memory: the per-address rate of the recipients' pages. (Guess caps
//! live in the link state, so that they hold across instances: see `recipient`.)

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Per-address request rate on the recipients' pages.
pub struct PageLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl PageLimiter {
    pub fn new(per_minute: u32) -> PageLimiter {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((per_minute.get() / 3).max(5)).unwrap_or(NonZeroU32::MIN);
        PageLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).is_ok()
    }
}
