//! Client-side pacing: the provider draws from token buckets sized as ARM's own (per
//! principal: reads 250 refilled at 25 per second, writes 200 at 10 per second, deletes 200 at
//! 10 per second), so a large apply slows down before ARM throttles it instead of running
//! into a storm of 429s. A request that finds its bucket empty reserves the next token and
//! waits for it; requests are served in the order they asked. One set of buckets per process:
//! a provider process signs in as one principal. ARM's `Retry-After` still rules when another
//! client of the same principal has emptied ARM's bucket first.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Method;

/// One bucket: its size, refill per second, tokens now (negative: reserved ahead) and when.
#[derive(Debug)]
struct Bucket {
    size: f64,
    refill: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(size: u32, refill: u32) -> Bucket {
        Bucket {
            size: f64::from(size),
            refill: f64::from(refill),
            tokens: f64::from(size),
            at: Instant::now(),
        }
    }

    /// Takes a token at `now`; the wait until it is really there (zero when it was).
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill).min(self.size);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.refill)
        }
    }
}

/// ARM's three buckets.
#[derive(Debug)]
pub(crate) struct Pacer {
    reads: Mutex<Bucket>,
    writes: Mutex<Bucket>,
    deletes: Mutex<Bucket>,
}

impl Pacer {
    /// Buckets of ARM's published sizes and refill rates.
    fn arm() -> Pacer {
        Pacer {
            reads: Mutex::new(Bucket::new(250, 25)),
            writes: Mutex::new(Bucket::new(200, 10)),
            deletes: Mutex::new(Bucket::new(200, 10)),
        }
    }

    fn bucket(&self, method: &Method) -> std::sync::MutexGuard<'_, Bucket> {
        let bucket = match *method {
            Method::GET | Method::HEAD => &self.reads,
            Method::DELETE => &self.deletes,
            _ => &self.writes,
        };
        bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wait before a `method` request may be sent, its token taken.
    fn wait_for(&self, method: &Method, now: Instant) -> Duration {
        self.bucket(method).take(now)
    }

    /// Holds the bucket of `method` to at most `remaining` tokens (ARM's count).
    fn observe(&self, method: &Method, remaining: u32) {
        let mut b = self.bucket(method);
        b.tokens = b.tokens.min(f64::from(remaining));
    }
}

fn pacer() -> &'static Pacer {
    static PACER: OnceLock<Pacer> = OnceLock::new();
    PACER.get_or_init(Pacer::arm)
}

/// ARM said `remaining` requests like `method` are left in the principal's bucket: this
/// process's bucket holds no more than that.
pub(super) fn observe(method: &Method, remaining: u32) {
    pacer().observe(method, remaining);
}

/// Waits until this process may send a `method` request to ARM.
pub(super) async fn pace(method: &Method) {
    let wait = pacer().wait_for(method, Instant::now());
    if !wait.is_zero() {
        crate::log::debug(
            "ARM request paced",
            &[
                ("method", method.as_str()),
                ("wait_ms", &wait.as_millis().to_string()),
            ],
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_paces_at_the_refill_rate() {
        let pacer = Pacer::arm();
        let now = Instant::now();
        for _ in 0..200 {
            assert_eq!(pacer.wait_for(&Method::PUT, now), Duration::ZERO);
        }
        // The 201st write waits a tenth of a second, the 210th a whole second: 10 per second.
        let w201 = pacer.wait_for(&Method::PUT, now);
        assert!((w201.as_secs_f64() - 0.1).abs() < 1e-6, "{w201:?}");
        let mut last = w201;
        for _ in 202..=210 {
            last = pacer.wait_for(&Method::PUT, now);
        }
        assert!((last.as_secs_f64() - 1.0).abs() < 1e-6, "{last:?}");
        // Reads and deletes have their own buckets.
        assert_eq!(pacer.wait_for(&Method::GET, now), Duration::ZERO);
        assert_eq!(pacer.wait_for(&Method::DELETE, now), Duration::ZERO);
        // ARM says 3 reads are left (another client drew from the bucket): the fourth waits.
        pacer.observe(&Method::GET, 3);
        for _ in 0..3 {
            assert_eq!(pacer.wait_for(&Method::GET, now), Duration::ZERO);
        }
        assert!(pacer.wait_for(&Method::GET, now) > Duration::ZERO);
        // A second later, ten writes' worth of tokens are back (all reserved already).
        let later = now + Duration::from_secs(1);
        let w = pacer.wait_for(&Method::PUT, later);
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-6, "{w:?}");
    }
}
