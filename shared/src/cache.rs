//! A bounded cache of checks that expire: at most `max` entries, the least recently used dropped first
//! beyond it, each entry trusted for `ttl` after it was put. The tenant-token cache (`auth`) and the OAuth
//! client-revocation cache (`oauth`) are two of these; their bounds and per-entry sizes are in
//! `docs/operations.md`, "Memory bounds".
//!
//! Built on the `lru` crate (a hash map and a linked list: O(1) get, put and eviction, strict LRU order)
//! under one `std::sync::Mutex`; held only for a lookup or an insert, never across an `.await`.
//!
//! Imports: nothing of the crate.

use lru::LruCache;
use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bound of a cache from the environment variable `name` (a positive count), else `default`.
pub fn max_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// At most `max` checks of `ttl` each, least recently used evicted first.
pub struct TimedLru<K: Hash + Eq, V> {
    map: Mutex<LruCache<K, (V, Instant)>>,
    ttl: Duration,
    max: usize,
}

impl<K: Hash + Eq, V: Clone> TimedLru<K, V> {
    /// `max` is at least 1.
    pub fn new(max: usize, ttl: Duration) -> Self {
        let max = max.max(1);
        TimedLru {
            map: Mutex::new(LruCache::new(
                NonZeroUsize::new(max).unwrap_or(NonZeroUsize::MIN),
            )),
            ttl,
            max,
        }
    }

    /// The value put for `k` less than `ttl` ago (and `k` becomes the most recently used); an expired
    /// entry is dropped.
    pub fn get<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(k) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                map.pop(k);
                None
            }
            None => None,
        }
    }

    /// Put `v` for `k`, checked now; beyond `max` entries the least recently used one is dropped.
    pub fn put(&self, k: K, v: V) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.put(k, (v, Instant::now()));
    }

    /// Entries held now (expired ones included until they are looked up or evicted).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Whether `k` is held, without making it recently used (for tests and the operator).
    pub fn contains<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().map(|m| m.contains(k)).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bound + K keys: the size stays at the bound, the least recently used are gone, a key used
    /// recently survives.
    #[test]
    fn the_bound_holds_least_recently_used_first() {
        const BOUND: usize = 50;
        const K: usize = 10;
        let c: TimedLru<String, u32> = TimedLru::new(BOUND, Duration::from_secs(60));
        for i in 0..BOUND {
            c.put(format!("k{i}"), i as u32);
        }
        assert_eq!(c.get("k0"), Some(0)); // k0 is now the most recently used; k1 the least.
        for i in BOUND..BOUND + K {
            c.put(format!("k{i}"), i as u32);
        }
        assert_eq!(c.len(), BOUND);
        assert!(c.contains("k0"), "recently used survives");
        for i in 1..=K {
            assert!(!c.contains(format!("k{i}").as_str()), "k{i} evicted");
        }
        assert!(c.contains(format!("k{}", K + 1).as_str()));
        assert_eq!(c.max(), BOUND);
    }

    #[test]
    fn entries_expire() {
        let c: TimedLru<&str, bool> = TimedLru::new(4, Duration::ZERO);
        c.put("a", true);
        assert_eq!(c.get("a"), None, "a zero TTL caches nothing");
        assert!(c.is_empty(), "the expired entry is dropped");
        let c: TimedLru<&str, bool> = TimedLru::new(0, Duration::from_secs(60));
        c.put("a", true);
        c.put("b", false);
        assert_eq!((c.len(), c.get("b"), c.get("a")), (1, Some(false), None));
    }

    /// Bytes per entry of the two caches, measured (`cargo test -p scim-core --lib cache_entry_bytes --
    /// --ignored --nocapture`; Linux, reads VmRSS): 10,000 tenant-token checks (32-byte key, a tenant id
    /// and a bound user's id) and 10,000 client states (tenant id and a client id of 36 characters).
    #[test]
    #[ignore]
    fn cache_entry_bytes() {
        fn rss_kb() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        }
        const N: usize = 10_000;
        let before = rss_kb();
        let tokens: TimedLru<[u8; 32], (String, Option<String>)> =
            TimedLru::new(N, Duration::from_secs(60));
        for i in 0..N {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            tokens.put(
                k,
                (
                    format!("tenant-{i:05}"),
                    Some(format!("2819c223-7f76-453a-919d-{i:012}")),
                ),
            );
        }
        let mid = rss_kb();
        let clients: TimedLru<(String, String), bool> = TimedLru::new(N, Duration::from_secs(30));
        for i in 0..N {
            clients.put(
                (
                    format!("tenant-{i:05}"),
                    format!("c-2819c223-7f76-453a-919d-{i:012}"),
                ),
                true,
            );
        }
        let after = rss_kb();
        println!(
            "token checks: {} bytes per entry; client states: {} bytes per entry ({N} each)",
            (mid - before) * 1024 / N as u64,
            (after - mid) * 1024 / N as u64
        );
        assert_eq!((tokens.len(), clients.len()), (N, N));
    }

    #[test]
    fn max_from_env_takes_positive_counts_only() {
        assert_eq!(max_from_env("SCIM_TEST_CACHE_MAX_UNSET", 7), 7);
    }
}
