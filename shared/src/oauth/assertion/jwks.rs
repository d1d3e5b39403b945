//! The JWKS cache: each JWKS URL's RSA signing keys by `kid`, fetched when first needed and kept in the
//! process (one [`Jwks`] in the application state, shared by every request).
//!
//! Rules (Microsoft's guidance for WIF: cache by `kid`, refetch on an unknown `kid`, keys may rotate at
//! any time, fail only when the `kid` is unknown and the JWKS unreachable):
//! * a known `kid` of a set younger than `max_age` is answered from memory, without waiting for anything;
//! * otherwise — unknown `kid`, or a set older than `max_age` — the JWKS is fetched again, but at most
//!   once per `refetch_interval` per URL, by one request at a time (the others wait for its result, then
//!   read the new set). A flood of assertions with made-up `kid`s therefore costs one fetch per interval;
//! * a successful fetch replaces the whole set (a `kid` Microsoft dropped stops working); a failed one
//!   keeps the old set, so a known key keeps working while the JWKS endpoint is down;
//! * a fetched document is bounded: `max_body_bytes`, `max_keys` entries, and a set without any usable
//!   key counts as a failed fetch (so a broken answer cannot empty the cache).
//!
//! * the cache is bounded by count and memory: at most `max_urls` URLs (`SCIM_WIF_JWKS_CACHE_MAX`, default
//!   1,000) and about `max_cache_bytes` (`SCIM_WIF_JWKS_CACHE_BYTES`, default 16 MiB) of estimated key
//!   bytes ([`KeySet::bytes`]); beyond either, the least recently used URL is dropped (its keys are fetched
//!   again at its next use). A URL's rate limit lives in its entry: an evicted URL may be fetched again at
//!   once, so with more busy JWKS URLs than the bound each costs about one fetch per use.
//!
//! Why a rate limit rather than a fixed TTL only: the first assertion signed with a new key must not wait
//! an hour, and an attacker sending random `kid`s must not turn the server into a fetch loop.

use super::fetch::{FetchError, Fetcher};
use super::{Rejected, MAX_KID_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use lru::LruCache;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The cache's bounds. [`Default`] is what production uses.
#[derive(Clone, Debug)]
pub struct JwksSettings {
    /// Whole fetch (connect, TLS, answer, body) at most this long. Default 5 s.
    pub fetch_timeout: Duration,
    /// At most one fetch per URL per this interval (successful or not). Default 30 s.
    pub refetch_interval: Duration,
    /// A set older than this is refreshed at its next use (the old keys serve if that fails). Default 1 h.
    pub max_age: Duration,
    /// Most entries a JWKS document may have (Microsoft's has about ten). Default 100.
    pub max_keys: usize,
    /// Largest JWKS body (Microsoft's is about 15 KB with its certificate chains). Default 256 KiB.
    pub max_body_bytes: usize,
    /// Fetch `http://` URLs on any host, not only loopback (`SCIM_WIF_ALLOW_HTTP_JWKS`). Default off:
    /// keys fetched without TLS could be replaced by anyone on the path.
    pub allow_http: bool,
    /// Most JWKS URLs cached (`SCIM_WIF_JWKS_CACHE_MAX`). Default 1,000 (about 5 MB of Microsoft's sets).
    pub max_urls: usize,
    /// Most estimated bytes of cached key sets (`SCIM_WIF_JWKS_CACHE_BYTES`). Default 16 MiB.
    pub max_cache_bytes: usize,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            fetch_timeout: Duration::from_secs(5),
            refetch_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            max_keys: 100,
            max_body_bytes: 256 * 1024,
            allow_http: false,
            max_urls: 1_000,
            max_cache_bytes: 16 << 20,
        }
    }
}

impl JwksSettings {
    /// The defaults, with `SCIM_WIF_ALLOW_HTTP_JWKS` and `SCIM_WIF_JWKS_TIMEOUT_MS` read from the environment.
    pub fn from_env() -> Self {
        let d = JwksSettings::default();
        JwksSettings {
            fetch_timeout: Duration::from_millis(crate::config::env_num(
                "SCIM_WIF_JWKS_TIMEOUT_MS",
                d.fetch_timeout.as_millis() as u64,
            )),
            allow_http: crate::config::env_flag("SCIM_WIF_ALLOW_HTTP_JWKS"),
            max_urls: crate::cache::max_from_env("SCIM_WIF_JWKS_CACHE_MAX", d.max_urls),
            max_cache_bytes: crate::cache::max_from_env(
                "SCIM_WIF_JWKS_CACHE_BYTES",
                d.max_cache_bytes,
            ),
            ..d
        }
    }
}

/// One URL's keys as last fetched.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    /// Estimated bytes of `keys` ([`KEY_OVERHEAD_BYTES`] + `kid` + modulus + exponent per key).
    bytes: usize,
}

/// Estimated bytes of one cached key beyond its `kid`, modulus and exponent: the `DecodingKey` and its two
/// buffers' headers, the `kid` string's header, the map's slot and allocator rounding.
pub const KEY_OVERHEAD_BYTES: usize = 160;
/// Estimated bytes of one URL's entry beyond its keys and URL: the `Arc`s, locks, the LRU node and slot.
pub const ENTRY_OVERHEAD_BYTES: usize = 256;

/// One URL's cache entry: the current set (read without waiting) and the fetch gate (one fetch at a
/// time; holds the time of the last attempt, for the rate limit).
#[derive(Default)]
struct Entry {
    current: RwLock<Arc<KeySet>>,
    gate: tokio::sync::Mutex<Option<Instant>>,
}

impl Entry {
    fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The key if known and the set not older than `max_age`.
    fn fresh(&self, kid: &str, max_age: Duration) -> Option<DecodingKey> {
        let set = self.snapshot();
        set.fetched_at.filter(|t| t.elapsed() < max_age)?;
        set.keys.get(kid).cloned()
    }
}

/// The JWKS cache (see the module's documentation). `Send + Sync`: build one and share it (`Arc`).
pub struct Jwks {
    settings: JwksSettings,
    fetcher: Fetcher,
    /// Least recently used first out, by `max_urls` and `max_cache_bytes` (see the module's opening).
    entries: Mutex<LruCache<String, Arc<Entry>>>,
}

impl Default for Jwks {
    fn default() -> Self {
        Jwks::new()
    }
}

impl Jwks {
    /// A cache with the production defaults ([`JwksSettings::default`]).
    pub fn new() -> Self {
        Jwks::with_settings(JwksSettings::default())
    }

    pub fn with_settings(settings: JwksSettings) -> Self {
        let fetcher = Fetcher::new(
            settings.fetch_timeout,
            settings.max_body_bytes,
            settings.allow_http,
        );
        Jwks {
            settings,
            fetcher,
            entries: Mutex::new(LruCache::unbounded()),
        }
    }

    pub fn settings(&self) -> &JwksSettings {
        &self.settings
    }

    /// The entry of `url` (new if none), now the most recently used; beyond `max_urls` the least recently
    /// used are dropped. (A request still holding a dropped entry finishes with it.)
    fn entry(&self, url: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get(url) {
            return e.clone();
        }
        let e = Arc::new(Entry::default());
        entries.put(url.to_string(), e.clone());
        while entries.len() > self.settings.max_urls.max(1) {
            entries.pop_lru();
        }
        e
    }

    /// After a set was stored: drop the least recently used URLs while the estimated bytes exceed
    /// `max_cache_bytes` (the most recently used one always stays).
    fn settle(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let weight =
            |url: &String, e: &Arc<Entry>| url.len() + ENTRY_OVERHEAD_BYTES + e.snapshot().bytes;
        let mut total: usize = entries.iter().map(|(u, e)| weight(u, e)).sum();
        while total > self.settings.max_cache_bytes && entries.len() > 1 {
            match entries.pop_lru() {
                Some((u, e)) => total = total.saturating_sub(weight(&u, &e)),
                None => break,
            }
        }
    }

    /// URLs cached now, and their estimated bytes.
    pub fn cached(&self) -> (usize, usize) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = entries
            .iter()
            .map(|(u, e)| u.len() + ENTRY_OVERHEAD_BYTES + e.snapshot().bytes)
            .sum();
        (entries.len(), bytes)
    }

    /// The key `kid` of the JWKS at `url`, by the module's rules.
    pub(super) async fn key(&self, url: &str, kid: &str) -> Result<DecodingKey, Rejected> {
        let entry = self.entry(url);
        if let Some(key) = entry.fresh(kid, self.settings.max_age) {
            return Ok(key);
        }
        let mut last_attempt = entry.gate.lock().await;
        // Another request may have fetched while this one waited at the gate.
        if let Some(key) = entry.fresh(kid, self.settings.max_age) {
            return Ok(key);
        }
        let stale = entry.snapshot().keys.get(kid).cloned();
        if last_attempt.is_some_and(|t| t.elapsed() < self.settings.refetch_interval) {
            tracing::debug!(kid, "JWKS refetch suppressed by the rate limit");
            return stale.ok_or(Rejected::UnknownKey);
        }
        *last_attempt = Some(Instant::now());
        let fetched = self
            .fetcher
            .fetch(url)
            .await
            .and_then(|body| parse_key_set(&body, self.settings.max_keys));
        match fetched {
            Ok((keys, bytes)) => {
                tracing::info!(url, keys = keys.len(), "JWKS fetched");
                let found = keys.get(kid).cloned();
                *entry.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                    bytes,
                });
                drop(last_attempt);
                self.settle();
                found.ok_or(Rejected::UnknownKey)
            }
            Err(e) => {
                tracing::warn!(url, error = %e, "JWKS fetch failed");
                stale.ok_or(Rejected::JwksUnavailable(e))
            }
        }
    }

    /// Puts a JWKS document into the cache as if just fetched from `url` (and counts as a fetch attempt
    /// for the rate limit): the unit tests' way to give keys without a server.
    #[cfg(test)]
    pub(super) fn preload(&self, url: &str, document: &[u8]) -> Result<(), FetchError> {
        let (keys, bytes) = parse_key_set(document, self.settings.max_keys)?;
        let entry = self.entry(url);
        *entry.current.write().unwrap() = Arc::new(KeySet {
            keys,
            fetched_at: Some(Instant::now()),
            bytes,
        });
        *entry.gate.try_lock().expect("gate free") = Some(Instant::now());
        self.settle();
        Ok(())
    }

    /// Whether `url` is cached, without making it recently used.
    #[cfg(test)]
    pub(super) fn holds(&self, url: &str) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(url)
    }

    /// Make `url` the most recently used, as a lookup does.
    #[cfg(test)]
    pub(super) fn touch(&self, url: &str) {
        self.entry(url);
    }
}

/// The usable keys of a JWKS document (RFC 7517 §5): RSA, for signatures (`use` absent or `sig`), for RS256
/// (`alg` absent or `RS256`), with a `kid`, a modulus of 2048 bits or more. Other entries are skipped;
/// of two entries with one `kid`, the first counts. With the keys, their estimated bytes.
fn parse_key_set(
    document: &[u8],
    max_keys: usize,
) -> Result<(HashMap<String, DecodingKey>, usize), FetchError> {
    let doc: Value = serde_json::from_slice(document).map_err(|_| FetchError::NotJwks)?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(FetchError::NotJwks)?;
    if entries.len() > max_keys {
        return Err(FetchError::TooManyKeys);
    }
    let mut keys = HashMap::new();
    let mut bytes = 0usize;
    for jwk in entries {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let optional_is =
            |name: &str, want: &str| jwk.get(name).is_none() || field(name) == Some(want);
        if field("kty") != Some("RSA") || !optional_is("use", "sig") || !optional_is("alg", "RS256")
        {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
            continue;
        };
        if kid.is_empty()
            || kid.len() > MAX_KID_LEN
            || keys.contains_key(kid)
            || modulus_bits(n) < 2048
        {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
            bytes += KEY_OVERHEAD_BYTES + kid.len() + n.len() * 3 / 4 + e.len() * 3 / 4;
            keys.insert(kid.to_string(), key);
        }
    }
    if keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok((keys, bytes))
}

/// Bits of a base64url big-endian modulus (0 if it does not decode).
fn modulus_bits(n: &str) -> usize {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(n) else {
        return 0;
    };
    let significant: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
    match significant.first() {
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}
