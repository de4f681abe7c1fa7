//! The Azure-speed profile: ARM answers as slowly as Azure does, and throttles as ARM does.
//!
//! Off by default (the emulator answers in microseconds). `--profile azure`, or `PUT
//! /_emulator/profile` with `{"enabled": true}` and any field to change, turns it on. Each
//! ARM request (not Entra, the managed-identity endpoint, the gateway or the control plane)
//! then:
//! 1. takes a token from its principal's bucket for its kind (reads, writes, deletes): ARM's
//!    token-bucket throttling, per principal; an empty bucket answers 429 with the
//!    `Retry-After` (whole seconds) after which a token is there again;
//! 2. waits the latency of its operation (a read, an operation-status poll, a synchronous
//!    write, a policy write, the first answer of a long-running write) before it is handled.
//!
//! The figures and their sources are in emulator/README.md ("Azure-speed profile").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Latencies (milliseconds) and ARM's bucket sizes and refill rates (per second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Whether the profile applies.
    pub enabled: bool,
    /// A GET of a resource or collection.
    pub read_ms: u64,
    /// A GET of a long-running operation's status.
    pub poll_ms: u64,
    /// A synchronous PUT/PATCH/POST/DELETE (an API, a backend, ...).
    pub write_ms: u64,
    /// A PUT or DELETE of a policy (service, API, operation, product).
    pub policy_write_ms: u64,
    /// The first answer (202) of a long-running write (named value, policy fragment).
    pub lro_start_ms: u64,
    /// Reads a principal may make at once; refilled at `read_refill`.
    pub read_bucket: u32,
    /// Reads per second added back.
    pub read_refill: u32,
    /// Writes (PUT, PATCH, POST) a principal may make at once.
    pub write_bucket: u32,
    /// Writes per second added back.
    pub write_refill: u32,
    /// Deletes a principal may make at once.
    pub delete_bucket: u32,
    /// Deletes per second added back.
    pub delete_refill: u32,
}

impl Default for Profile {
    /// Off, with the documented figures ready for when it is turned on.
    fn default() -> Self {
        let mut off = Profile::azure();
        off.enabled = false;
        off
    }
}

impl Profile {
    /// The documented figures (emulator/README.md).
    pub fn azure() -> Profile {
        Profile {
            enabled: true,
            read_ms: 100,
            poll_ms: 100,
            write_ms: 500,
            policy_write_ms: 1000,
            lro_start_ms: 500,
            read_bucket: 250,
            read_refill: 25,
            write_bucket: 200,
            write_refill: 10,
            delete_bucket: 200,
            delete_refill: 10,
        }
    }
}

/// What a request is, for its latency and its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A GET of a resource or collection.
    Read,
    /// A GET of a long-running operation's status.
    Poll,
    /// A synchronous write.
    Write,
    /// A PUT of a policy.
    PolicyWrite,
    /// The PUT starting a long-running write.
    LroWrite,
    /// A synchronous DELETE.
    Delete,
    /// A DELETE of a policy.
    PolicyDelete,
    /// The DELETE starting a long-running delete.
    LroDelete,
}

impl Kind {
    /// The kind of `method` on the ARM `path`.
    pub fn of(method: &str, path: &str) -> Kind {
        let p = path.to_ascii_lowercase();
        let policy = p.ends_with("/policies/policy") || p.ends_with("/policy");
        let lro = p.contains("/namedvalues/") || p.contains("/policyfragments/");
        match method {
            "GET" | "HEAD" if p.contains("/operations/") || p.contains("/operationresults/") => {
                Kind::Poll
            }
            "GET" | "HEAD" => Kind::Read,
            "DELETE" if policy => Kind::PolicyDelete,
            "DELETE" if lro => Kind::LroDelete,
            "DELETE" => Kind::Delete,
            "PUT" | "PATCH" if policy => Kind::PolicyWrite,
            "PUT" | "PATCH" if lro => Kind::LroWrite,
            _ => Kind::Write,
        }
    }

    /// Which of ARM's buckets the request draws from.
    fn bucket(self) -> Bucket {
        match self {
            Kind::Read | Kind::Poll => Bucket::Reads,
            Kind::Write | Kind::PolicyWrite | Kind::LroWrite => Bucket::Writes,
            Kind::Delete | Kind::PolicyDelete | Kind::LroDelete => Bucket::Deletes,
        }
    }

    fn latency(self, p: &Profile) -> u64 {
        match self {
            Kind::Read => p.read_ms,
            Kind::Poll => p.poll_ms,
            Kind::Write | Kind::Delete => p.write_ms,
            Kind::PolicyWrite | Kind::PolicyDelete => p.policy_write_ms,
            Kind::LroWrite | Kind::LroDelete => p.lro_start_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Reads,
    Writes,
    Deletes,
}

/// What the profile does to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Answer 429 with this `Retry-After` (seconds).
    Throttle(u64),
    /// Handle it after this wait; `remaining` tokens are left in its bucket.
    Delay(Duration, u32),
}

/// The profile and every principal's buckets.
#[derive(Debug, Default)]
pub struct Speed {
    profile: Mutex<Profile>,
    buckets: Mutex<HashMap<(String, Bucket), (f64, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Speed {
    /// With `profile` from the start.
    pub fn new(profile: Profile) -> Speed {
        Speed {
            profile: Mutex::new(profile),
            buckets: Mutex::default(),
        }
    }

    /// The profile now.
    pub fn profile(&self) -> Profile {
        lock(&self.profile).clone()
    }

    /// Replaces the profile; the buckets start full again.
    pub fn set(&self, profile: Profile) {
        *lock(&self.profile) = profile;
        lock(&self.buckets).clear();
    }

    /// What to do with `method path` from `principal`; `None` when the profile is off.
    pub fn decide(&self, method: &str, path: &str, principal: &str) -> Option<Decision> {
        let p = self.profile();
        if !p.enabled {
            return None;
        }
        let kind = Kind::of(method, path);
        let bucket = kind.bucket();
        let (size, refill) = match bucket {
            Bucket::Reads => (p.read_bucket, p.read_refill),
            Bucket::Writes => (p.write_bucket, p.write_refill),
            Bucket::Deletes => (p.delete_bucket, p.delete_refill),
        };
        let (size, refill) = (f64::from(size), f64::from(refill.max(1)));
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let (tokens, at) = buckets
            .entry((principal.to_string(), bucket))
            .or_insert((size, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * refill).min(size);
        *at = now;
        if *tokens < 1.0 {
            // Whole seconds until a token is back, as ARM's Retry-After.
            let wait = ((1.0 - *tokens) / refill).ceil().max(1.0);
            return Some(Decision::Throttle(wait as u64));
        }
        *tokens -= 1.0;
        let remaining = tokens.floor() as u32;
        Some(Decision::Delay(
            Duration::from_millis(kind.latency(&p)),
            remaining,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_requests() {
        let api =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/x/apis/a";
        assert_eq!(Kind::of("GET", api), Kind::Read);
        assert_eq!(Kind::of("PUT", api), Kind::Write);
        assert_eq!(
            Kind::of("PUT", &format!("{api}/policies/policy")),
            Kind::PolicyWrite
        );
        assert_eq!(
            Kind::of("DELETE", &format!("{api}/policies/policy")),
            Kind::PolicyDelete
        );
        assert_eq!(
            Kind::of("PUT", "/subscriptions/s/x/namedValues/n"),
            Kind::LroWrite
        );
        assert_eq!(
            Kind::of("GET", "/subscriptions/s/x/operations/o"),
            Kind::Poll
        );
        assert_eq!(
            Kind::of("POST", "/subscriptions/s/x/namedValues/n/listValue"),
            Kind::Write
        );
    }

    #[test]
    fn off_by_default() {
        assert_eq!(
            Speed::default().decide("GET", "/subscriptions/s", "p"),
            None
        );
    }

    #[test]
    fn a_principal_is_throttled_when_its_bucket_is_empty_and_others_are_not() {
        let speed = Speed::new(Profile {
            write_bucket: 3,
            write_refill: 1,
            write_ms: 0,
            ..Profile::azure()
        });
        for left in [2, 1, 0] {
            assert_eq!(
                speed.decide("PUT", "/subscriptions/s/a", "p1"),
                Some(Decision::Delay(Duration::ZERO, left))
            );
        }
        assert_eq!(
            speed.decide("PUT", "/subscriptions/s/a", "p1"),
            Some(Decision::Throttle(1))
        );
        // Reads draw from another bucket, and another principal from its own.
        assert!(matches!(
            speed.decide("GET", "/subscriptions/s/a", "p1"),
            Some(Decision::Delay(..))
        ));
        assert!(matches!(
            speed.decide("PUT", "/subscriptions/s/a", "p2"),
            Some(Decision::Delay(..))
        ));
    }

    #[test]
    fn latencies_follow_the_table() {
        let speed = Speed::new(Profile::azure());
        let d = |m: &str, p: &str| match speed.decide(m, p, "p") {
            Some(Decision::Delay(d, _)) => d.as_millis(),
            other => panic!("{other:?}"),
        };
        assert_eq!(d("GET", "/subscriptions/s/a"), 100);
        assert_eq!(d("PUT", "/subscriptions/s/apis/a/policies/policy"), 1000);
        assert_eq!(d("PUT", "/subscriptions/s/namedValues/n"), 500);
        assert_eq!(d("PUT", "/subscriptions/s/apis/a"), 500);
    }
}
