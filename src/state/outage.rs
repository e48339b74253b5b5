//! What to say about a dependency that is retried often (Redis for the link-change follower):
//! its state changes once each, and while it stays down a reminder at most every
//! [`REMINDER`], instead of one line per attempt (four a second buried everything else).

use std::time::{Duration, Instant};

/// How often a dependency that stays down is mentioned again.
pub const REMINDER: Duration = Duration::from_secs(60);

/// What the caller should log after an attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    /// Nothing new (each attempt is still worth a `debug` line).
    Nothing,
    /// It just went down (or was down at the first attempt).
    Down,
    /// Still down: `failures` attempts failed over `down_for`.
    StillDown { down_for: Duration, failures: u64 },
    /// Reachable again after `down_for` and `failures` failed attempts.
    Back { down_for: Duration, failures: u64 },
}

/// The state of one dependency, as seen by one retry loop.
#[derive(Debug, Default)]
pub struct Outage {
    /// Since when it is down, and when it was last mentioned.
    down: Option<(Instant, Instant)>,
    failures: u64,
}

impl Outage {
    /// An attempt failed at `now`.
    pub fn failed(&mut self, now: Instant) -> Say {
        self.failures += 1;
        match &mut self.down {
            None => {
                self.down = Some((now, now));
                Say::Down
            }
            Some((since, said)) if now.duration_since(*said) >= REMINDER => {
                *said = now;
                Say::StillDown {
                    down_for: now.duration_since(*since),
                    failures: self.failures,
                }
            }
            Some(_) => Say::Nothing,
        }
    }

    /// An attempt succeeded at `now`.
    pub fn succeeded(&mut self, now: Instant) -> Say {
        let failures = std::mem::take(&mut self.failures);
        match self.down.take() {
            Some((since, _)) => Say::Back {
                down_for: now.duration_since(since),
                failures,
            },
            None => Say::Nothing,
        }
    }
}

/// A background worker's view of the link state (the webhook outbox, the share mail queue, the
/// expiry sweep), said once when its calls start failing and once when they work again. The
/// link state being unreachable is a Redis outage, which the change follower already reports
/// (with reminders): for that the worker says so at `debug` only, so an outage is one warning,
/// not one per worker. Any other failure (corrupt data, a refused script) is a warning.
#[derive(Debug)]
pub struct WorkerState {
    worker: &'static str,
    failing: std::sync::atomic::AtomicBool,
}

impl WorkerState {
    pub const fn new(worker: &'static str) -> WorkerState {
        WorkerState {
            worker,
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A call to the link state failed; the worker will retry.
    pub fn failed(&self, error: &super::StoreError) {
        if self
            .failing
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let worker = self.worker;
        match error {
            super::StoreError::Unavailable(_) => {
                tracing::debug!(worker, %error, "link state unreachable; will retry")
            }
            _ => tracing::warn!(worker, %error, "link state call failed; will retry"),
        }
    }

    /// A call to the link state worked.
    pub fn worked(&self) {
        if self
            .failing
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let worker = self.worker;
            tracing::info!(worker, "link state calls work again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_said_once_and_a_long_outage_is_recalled_every_minute() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut o = Outage::default();
        assert_eq!(o.succeeded(at(0)), Say::Nothing, "up from the start");
        assert_eq!(o.failed(at(0)), Say::Down);
        for i in 1..240u64 {
            assert_eq!(o.failed(at(i * 250)), Say::Nothing, "attempt {i}");
        }
        assert_eq!(
            o.failed(at(60_000)),
            Say::StillDown {
                down_for: Duration::from_secs(60),
                failures: 241
            }
        );
        assert_eq!(o.failed(at(60_250)), Say::Nothing);
        assert_eq!(
            o.succeeded(at(61_000)),
            Say::Back {
                down_for: Duration::from_secs(61),
                failures: 242
            }
        );
        assert_eq!(o.succeeded(at(61_250)), Say::Nothing, "said once");
        assert_eq!(o.failed(at(62_000)), Say::Down, "a new outage is news");
    }
}
