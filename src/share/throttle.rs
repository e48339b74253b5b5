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

/// Lets a warning that any recipient can cause (a link to a document its origin no longer has,
/// asked for again and again) reach the log at most once per interval, so that a script cannot
/// flood the operator's warnings; the calls left out in between are counted, and the next
/// warning that passes says how many there were. What each request met is on its access line
/// and in the metrics either way.
pub struct LogGate {
    /// Milliseconds since [`epoch`] before which no warning passes.
    next: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl LogGate {
    pub const fn new() -> LogGate {
        LogGate {
            next: std::sync::atomic::AtomicU64::new(0),
            skipped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(left out since the last one)` when this warning may be logged, at most once per
    /// `every`; `None` (and counted) otherwise.
    pub fn pass(&self, every: std::time::Duration) -> Option<u64> {
        let now = epoch().elapsed().as_millis() as u64;
        self.pass_at(now, every.as_millis() as u64)
    }

    fn pass_at(&self, now_ms: u64, every_ms: u64) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let next = self.next.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now_ms.saturating_add(every_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for LogGate {
    fn default() -> Self {
        LogGate::new()
    }
}

/// How often a [`gated_warn!`] warning may reach the log.
pub const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// `tracing::warn!` for what any recipient can cause at will: at most one line per
/// [`WARN_EVERY`] from each call site (its own [`LogGate`]), with `left_out` saying how many
/// were left out since the last; those are `debug` lines with the same fields.
macro_rules! gated_warn {
    ($($field:tt)+) => {{
        static GATE: $crate::share::throttle::LogGate = $crate::share::throttle::LogGate::new();
        match GATE.pass($crate::share::throttle::WARN_EVERY) {
            Some(left_out) => tracing::warn!(left_out, $($field)+),
            None => tracing::debug!($($field)+),
        }
    }};
}
pub(crate) use gated_warn;

#[cfg(test)]
mod tests {
    use super::LogGate;

    #[test]
    fn a_log_gate_lets_one_warning_through_per_interval_and_counts_the_rest() {
        let gate = LogGate::new();
        assert_eq!(gate.pass_at(0, 1_000), Some(0), "the first passes");
        for t in [1, 500, 999] {
            assert_eq!(gate.pass_at(t, 1_000), None);
        }
        assert_eq!(
            gate.pass_at(1_000, 1_000),
            Some(3),
            "and says how many were left out"
        );
        assert_eq!(gate.pass_at(1_500, 1_000), None);
        assert_eq!(gate.pass_at(5_000, 1_000), Some(1));
        assert_eq!(gate.pass_at(u64::MAX, u64::MAX), Some(0), "no overflow");
    }
}
