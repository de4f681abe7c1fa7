//! The wait before a retry, shared by the Vault and ARM clients: exponential from 0.5 s,
//! doubling with each retry up to a cap, with jitter so that parallel resources do not
//! retry in step, or exactly the wait a server asked for (`Retry-After`).
//!
//! Jitter adds up to a quarter of the step and the sum is then capped: a wait is never
//! shorter than the step (so `n` retries ride out at least 0.5 + 1 + … s of an outage) and
//! never longer than the cap.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first step.
const BASE: Duration = Duration::from_millis(500);

/// How long to wait before each retry of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    cap: Duration,
}

impl Backoff {
    /// Vault: at most 8 s apart (as `vault.max_retries` documents).
    pub const VAULT: Backoff = Backoff {
        cap: Duration::from_secs(8),
    };
    /// ARM: at most 30 s apart, within the operation timeout.
    pub const ARM: Backoff = Backoff {
        cap: Duration::from_secs(30),
    };

    /// The step before retry `retry` (1 for the first): 0.5 s, 1 s, 2 s, … up to the cap.
    fn step(self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(16);
        BASE.saturating_mul(1 << doublings).min(self.cap)
    }

    /// The wait before retry `retry` (1 for the first), jittered.
    pub fn delay(self, retry: u32) -> Duration {
        self.jittered(retry, random_u64())
    }

    /// The wait before retry `retry`: exactly what the server `asked` for (its
    /// `Retry-After`), else [`Backoff::delay`].
    pub fn wait(self, retry: u32, asked: Option<Duration>) -> Duration {
        asked.unwrap_or_else(|| self.delay(retry))
    }

    fn jittered(self, retry: u32, random: u64) -> Duration {
        let step = self.step(retry);
        let quarter = u64::try_from(step.as_millis() / 4).unwrap_or(u64::MAX);
        let extra = Duration::from_millis(random % (quarter + 1));
        (step + extra).min(self.cap)
    }
}

/// A random number without a random-number crate: std's hasher keys are random per process
/// (and per `RandomState`), mixed with the clock.
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steps_double_from_half_a_second_to_the_cap() {
        let steps: Vec<_> = (1..=7).map(|r| Backoff::VAULT.step(r)).collect();
        assert_eq!(
            steps,
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(8000),
                ms(8000)
            ]
        );
        assert_eq!(Backoff::ARM.step(1), ms(500));
        assert_eq!(Backoff::ARM.step(6), ms(16_000));
        assert_eq!(Backoff::ARM.step(7), ms(30_000));
        // Retry 0 is treated as the first; huge numbers do not overflow.
        assert_eq!(Backoff::VAULT.step(0), ms(500));
        assert_eq!(Backoff::ARM.step(u32::MAX), ms(30_000));
    }

    #[test]
    fn jitter_adds_up_to_a_quarter_and_never_passes_the_cap() {
        let b = Backoff::VAULT;
        assert_eq!(b.jittered(1, 0), ms(500));
        assert_eq!(b.jittered(1, 125), ms(625));
        assert_eq!(b.jittered(1, 126), ms(500), "wraps within the quarter");
        assert_eq!(b.jittered(3, u64::MAX), ms(2000 + u64::MAX % 501));
        assert_eq!(b.jittered(5, 1999), ms(8000), "capped");
        for retry in 1..20 {
            for _ in 0..50 {
                let d = b.delay(retry);
                assert!(d >= b.step(retry) && d <= b.cap, "retry {retry}: {d:?}");
                let d = Backoff::ARM.delay(retry);
                assert!(d >= Backoff::ARM.step(retry) && d <= ms(30_000), "{d:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_parallel_retries() {
        let waits: std::collections::BTreeSet<_> = (0..64).map(|_| Backoff::ARM.delay(2)).collect();
        assert!(waits.len() > 8, "{waits:?}");
    }

    #[test]
    fn retry_after_is_taken_exactly() {
        assert_eq!(Backoff::ARM.wait(1, Some(ms(2_000))), ms(2_000));
        // Even beyond the cap: the server knows when it will answer.
        assert_eq!(
            Backoff::VAULT.wait(1, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
        assert_eq!(Backoff::ARM.wait(4, Some(Duration::ZERO)), Duration::ZERO);
        let d = Backoff::VAULT.wait(2, None);
        assert!(d >= ms(1000) && d <= ms(1250), "{d:?}");
    }
}
