//! Fault injection: rules posted to `/_emulator/faults` that make matching requests slow, fail
//! with a status (429 with `Retry-After`, 5xx, ...) or lose their connection.

use crate::util::glob_match;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// One rule, as posted to `POST /_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match, or `*` (default).
    #[serde(default = "star")]
    pub method: String,
    /// Glob over the request path (`*` spans slashes, `?` one character); default `*`.
    #[serde(default = "star")]
    pub path: String,
    /// Answer with this status instead of serving the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with `status`.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Delay before the request is served (or failed).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(default)]
    pub drop: bool,
    /// Applies to the next `count` matching requests only.
    #[serde(default)]
    pub count: Option<u64>,
    /// Applies to this share (0..1) of matching requests, at random.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Matching requests this rule has affected so far (read-only).
    #[serde(default)]
    pub hits: u64,
}

fn star() -> String {
    "*".into()
}

impl FaultRule {
    /// Rejects rules that could never do anything or are out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.status.is_none() && self.latency_ms.is_none() && !self.drop {
            return Err("a fault rule needs at least one of `status`, `latency_ms`, `drop`".into());
        }
        if let Some(s) = self.status {
            if !(100..=599).contains(&s) {
                return Err(format!("`status` {s} is not an HTTP status"));
            }
        }
        if let Some(f) = self.fraction {
            if !(0.0..=1.0).contains(&f) {
                return Err("`fraction` must be within 0..1".into());
            }
        }
        Ok(())
    }
}

/// What the matching rules decided for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Total delay of all matching latency rules.
    pub latency_ms: u64,
    /// Status to answer with (first matching status rule wins), with its `Retry-After`.
    pub status: Option<(u16, Option<u64>)>,
    /// Close the connection.
    pub drop: bool,
}

/// The rule set.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    /// Adds a rule; rules add up.
    pub fn add(&self, rule: FaultRule) {
        lock(&self.rules).push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// The current rules (exhausted `count` rules are gone).
    pub fn list(&self) -> Vec<FaultRule> {
        lock(&self.rules).clone()
    }

    /// Evaluates the rules for a request, consuming `count` budgets of the rules that apply.
    pub fn decide(&self, method: &str, path: &str) -> Decision {
        let mut d = Decision::default();
        let mut rules = lock(&self.rules);
        for rule in rules.iter_mut() {
            if !(rule.method == "*" || rule.method.eq_ignore_ascii_case(method)) {
                continue;
            }
            if !glob_match(&rule.path, path) {
                continue;
            }
            if let Some(f) = rule.fraction {
                let roll = f64::from(u32::from_be_bytes(crate::util::random_bytes::<4>()))
                    / f64::from(u32::MAX);
                if roll >= f {
                    continue;
                }
            }
            if let Some(c) = rule.count.as_mut() {
                if *c == 0 {
                    continue;
                }
                *c -= 1;
            }
            rule.hits += 1;
            d.latency_ms += rule.latency_ms.unwrap_or(0);
            if d.status.is_none() && !d.drop {
                if rule.drop {
                    d.drop = true;
                } else if let Some(s) = rule.status {
                    d.status = Some((s, rule.retry_after));
                }
            }
        }
        rules.retain(|r| r.count != Some(0));
        d
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the data stays usable:
/// every critical section leaves it consistent).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> FaultRule {
        serde_json::from_str(json).expect("rule")
    }

    #[test]
    fn count_rules_expire_and_add_up() {
        let f = Faults::default();
        f.add(rule(
            r#"{"method":"PUT","path":"*/namedValues/*","status":429,"retry_after":1,"count":2}"#,
        ));
        f.add(rule(r#"{"path":"*","latency_ms":5}"#));
        let d = f.decide("PUT", "/subscriptions/s/namedValues/x");
        assert_eq!(d.status, Some((429, Some(1))));
        assert_eq!(d.latency_ms, 5);
        assert_eq!(f.decide("GET", "/a/namedValues/x").status, None);
        assert!(f.decide("put", "/a/namedValues/x").status.is_some());
        assert_eq!(f.decide("PUT", "/a/namedValues/x").status, None);
        assert_eq!(f.list().len(), 1);
    }

    #[test]
    fn fraction_zero_never_applies() {
        let f = Faults::default();
        f.add(rule(r#"{"status":500,"fraction":0.0}"#));
        for _ in 0..50 {
            assert_eq!(f.decide("GET", "/x").status, None);
        }
    }
}
