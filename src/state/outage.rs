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
