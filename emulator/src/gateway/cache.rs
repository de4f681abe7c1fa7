//! The internal cache of `cache-store-value` / `cache-lookup-value` / `cache-remove-value`: one
//! per instance (APIM's built-in cache "is shared by all units in the same region in the same
//! API Management service"), entries expiring after their duration.

use super::expr::value::Val;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most (oldest expiry dropped first beyond it), a stand-in for the per-SKU
/// cache size.
const MAX_ENTRIES: usize = 10_000;

/// The caches of every instance, keyed by (instance, key).
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<(String, String), (Val, Instant)>>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Val, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value under `key`, if stored and not expired.
    pub fn lookup(&self, instance: &str, key: &str) -> Option<Val> {
        let mut m = self.lock();
        let k = (instance.to_string(), key.to_string());
        match m.get(&k) {
            Some((v, exp)) if *exp > Instant::now() => Some(v.clone()),
            Some(_) => {
                m.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Stores `value` for `secs` seconds (0 or less: not stored).
    pub fn store(&self, instance: &str, key: &str, value: Val, secs: i64) {
        let mut m = self.lock();
        let k = (instance.to_string(), key.to_string());
        let Ok(secs) = u64::try_from(secs) else {
            m.remove(&k);
            return;
        };
        if secs == 0 {
            m.remove(&k);
            return;
        }
        let now = Instant::now();
        m.retain(|_, (_, exp)| *exp > now);
        if m.len() >= MAX_ENTRIES {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, (_, e))| *e)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(k, (value, now + Duration::from_secs(secs)));
    }

    /// Removes `key`.
    pub fn remove(&self, instance: &str, key: &str) {
        self.lock().remove(&(instance.to_string(), key.to_string()));
    }

    /// Empties every instance's cache.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_instances() {
        let c = Cache::default();
        c.store("a", "k", Val::Str("v".into()), 60);
        assert!(matches!(c.lookup("a", "k"), Some(Val::Str(s)) if s == "v"));
        assert!(
            c.lookup("b", "k").is_none(),
            "instances do not share a cache"
        );
        c.store("a", "gone", Val::Int(1), 0);
        assert!(c.lookup("a", "gone").is_none());
        c.remove("a", "k");
        assert!(c.lookup("a", "k").is_none());
    }
}
