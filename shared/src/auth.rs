//! Bearer-token authentication. Two kinds of token:
//! * the single-tenant token (configured: `SCIM_BEARER_TOKEN`, the SSM parameter, or the local server's
//!   generated one) for the default tenant at the base URL, kept only as a SHA-256 digest and compared in
//!   constant time;
//! * tenant tokens issued by `scim-admin`, stored in DynamoDB only as SHA-256 hashes, each bound to its
//!   tenant, valid only on that tenant's URL (`/<tenant>/scim/v2`).
//!
//! * OAuth access tokens (`at1.…`, issued by the token endpoint when OAuth is configured), checked by
//!   [`crate::oauth::OAuth::authenticate`]: valid for their own tenant only, like a tenant token.
//!
//! Why SHA-256 and not a slow hash: every token is 256 random bits made by the server, so there is no
//! dictionary to attack and a brute force of the hash is as hopeless as one of the token; a slow hash would
//! only add latency to every request. The stored hash is useless as a credential. Tokens are never logged.

use crate::cache::TimedLru;
use crate::error::ScimError;
use crate::oauth::{access_token, OAuth, TokenRefused};
use crate::store::{Store, TokenRecord};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The internal id of the directory served at the base URL (single-tenant mode); no tenant id can be it.
pub const DEFAULT_TENANT: &str = "default";

/// How long a verified tenant token is trusted without asking the store again (revocation delay).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(60);

/// Most tenant-token checks cached (`SCIM_TOKEN_CACHE_MAX`, default 10,000): beyond it the least recently
/// used is dropped, and read from the store again at its next use (one GetItem). About
/// [`TOKEN_CACHE_ENTRY_BYTES`] each, so at most about 5 MB at the default.
pub const DEFAULT_TOKEN_CACHE_MAX: usize = 10_000;

/// Bytes of one cached check: the 32-byte hash key, the tenant id and bound user id (strings up to 63 and
/// 36 bytes with their headers), the instant, the LRU node's links and the map's slot — 507 measured
/// (`cache::tests::cache_entry_bytes`).
pub const TOKEN_CACHE_ENTRY_BYTES: usize = 512;

pub struct Auth {
    single: Option<[u8; 32]>,
    /// OAuth (token endpoint and access tokens), when a signing key ring is configured.
    oauth: Option<Arc<OAuth>>,
    /// token hash → (tenant, bound user), each for [`TOKEN_CACHE_TTL`], at most `SCIM_TOKEN_CACHE_MAX`.
    cache: TimedLru<[u8; 32], CachedToken>,
}

/// A tenant token's cached check: its tenant and the user it is bound to (if any).
type CachedToken = (String, Option<String>);

fn token_cache() -> TimedLru<[u8; 32], CachedToken> {
    TimedLru::new(
        crate::cache::max_from_env("SCIM_TOKEN_CACHE_MAX", DEFAULT_TOKEN_CACHE_MAX),
        TOKEN_CACHE_TTL,
    )
}

/// The hex SHA-256 of a token: its identity in the store.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Names no tenant may have: `default` is the internal id of the directory served at the base URL (its keys
/// are `T#default#…`), `scim` the first segment of that URL; the others are kept for routes beside the
/// tenants' (token endpoint, operator pages, events, the management API, the setup page).
pub const RESERVED_TENANT_IDS: &[&str] = &[
    "default", "scim", "admin", "oauth2", "events", "metrics", "health", "manage", "setup",
];

/// Tenant ids: lower-case letters, digits and `-`, 1–63 characters, starting with a letter or digit, and
/// not one of [`RESERVED_TENANT_IDS`]. Every way a tenant id enters — a URL, `scim-admin`, a stored token
/// record — goes through this check, so no tenant can ever address the base URL's directory.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 63
        && !RESERVED_TENANT_IDS.contains(&t)
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { token: <redacted> }")
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Refuses an empty or whitespace-only token.
    pub fn from_token(token: &str) -> Result<Self, String> {
        let t = token.trim();
        if t.is_empty() {
            return Err("the bearer token is empty".into());
        }
        if t.len() < 16 {
            return Err(
                "the bearer token is shorter than 16 characters; use a long random secret".into(),
            );
        }
        Ok(Auth {
            single: Some(digest(t)),
            oauth: None,
            cache: token_cache(),
        })
    }

    /// No single-tenant token: only tenant tokens from the store are accepted.
    pub fn tenant_tokens_only() -> Self {
        Auth {
            single: None,
            oauth: None,
            cache: token_cache(),
        }
    }

    /// At most `max` tenant-token checks cached (instead of `SCIM_TOKEN_CACHE_MAX`).
    pub fn with_token_cache_max(mut self, max: usize) -> Self {
        self.cache = TimedLru::new(max, TOKEN_CACHE_TTL);
        self
    }

    /// Tenant-token checks cached now.
    pub fn token_cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Accept OAuth access tokens too (and serve the token endpoint), when `oauth` is given.
    pub fn with_oauth(mut self, oauth: Option<Arc<OAuth>>) -> Self {
        self.oauth = oauth;
        self
    }

    /// The OAuth state, when OAuth is on.
    pub fn oauth(&self) -> Option<&Arc<OAuth>> {
        self.oauth.as_ref()
    }

    /// A 32-byte key for `purpose` derived from the single-tenant token (SHA-256 of the purpose and the
    /// token's digest), when one is configured: a server key for keyed checks (the Events API's cursors)
    /// that reveals nothing of the token.
    pub fn derived_key(&self, purpose: &str) -> Option<[u8; 32]> {
        self.single.map(|d| {
            let h = Sha256::new()
                .chain_update(b"scim-derived-key\0")
                .chain_update(purpose.as_bytes());
            h.chain_update([0]).chain_update(d).finalize().into()
        })
    }

    /// Authenticate a request for `tenant` (the default tenant when it came to the base URL). Returns
    /// the user the token is bound to (for `/Me`), if any.
    pub async fn authenticate(
        &self,
        tenant: &str,
        header: Option<&str>,
        store: &dyn Store,
    ) -> Result<Option<String>, ScimError> {
        let token = bearer(header)?;
        if tenant == DEFAULT_TENANT && self.check_single(token) {
            return Ok(None);
        }
        if let Some(oauth) = self
            .oauth
            .as_ref()
            .filter(|_| access_token::is_access_token(token))
        {
            return match oauth
                .authenticate(tenant, token, store, std::time::SystemTime::now())
                .await
            {
                Ok(()) => Ok(None),
                Err(TokenRefused::Invalid(_)) => Err(invalid()),
                Err(TokenRefused::Store(e)) => Err(ScimError::from(e)),
            };
        }
        let key = digest(token);
        if let Some((t, user)) = self.cache.get(&key) {
            return if t == tenant && valid_tenant(&t) {
                Ok(user)
            } else {
                Err(invalid())
            };
        }
        let hash = hex::encode(key); // = token_hash(token)
        let record: Option<TokenRecord> = store.token(&hash).await.map_err(ScimError::from)?;
        match record {
            Some(r) => {
                // A record naming no valid tenant (e.g. `default`, written by an older scim-admin) grants nothing.
                let ok = valid_tenant(&r.tenant)
                    && bool::from(r.tenant.as_bytes().ct_eq(tenant.as_bytes()));
                let user = r.user.clone();
                if ok {
                    note_use(store, &hash, r.last_used).await;
                }
                self.cache.put(key, (r.tenant, r.user));
                if ok {
                    Ok(user)
                } else {
                    Err(invalid())
                }
            }
            None => Err(invalid()),
        }
    }

    fn check_single(&self, token: &str) -> bool {
        self.single
            .is_some_and(|d| bool::from(digest(token.trim()).ct_eq(&d)))
    }

    /// Check an `Authorization` header value. Accepts `Bearer <token>` (scheme case-insensitive) and
    /// tolerates `Bearer Bearer <token>`, which Entra sends when an admin pastes the token with its prefix.
    pub fn check(&self, header: Option<&str>) -> Result<(), ScimError> {
        if self.check_single(bearer(header)?) {
            Ok(())
        } else {
            Err(invalid())
        }
    }
}

fn invalid() -> ScimError {
    ScimError::unauthorized("The bearer token is not valid for this endpoint")
}

/// The token of an `Authorization: Bearer <token>` header (tolerating a doubled `Bearer`).
fn bearer(header: Option<&str>) -> Result<&str, ScimError> {
    let Some(h) = header else {
        return Err(ScimError::unauthorized(
            "Authentication required: send 'Authorization: Bearer <token>'",
        ));
    };
    let token = strip_bearer(h).ok_or_else(|| {
        ScimError::unauthorized("The Authorization header must use the Bearer scheme")
    })?;
    let token = strip_bearer(token).unwrap_or(token).trim();
    if token.is_empty() {
        return Err(invalid());
    }
    Ok(token)
}

fn strip_bearer(h: &str) -> Option<&str> {
    let h = h.trim_start();
    let (scheme, rest) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// Write down a tenant token's use (for "last used" in the management API), at most once per
/// `USE_NOTE_SECS`; a failure to write it down never fails the request.
async fn note_use(store: &dyn Store, hash: &str, last_used: Option<i64>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if crate::store::use_worth_noting(last_used, now) {
        if let Err(e) = store.note_token_use(hash, now).await {
            tracing::warn!(error = ?e, "a token's use was not written down");
        }
    }
}

/// A new random token: 32 bytes from the OS generator, hex-encoded (64 characters).
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_the_token_in_bearer_forms() {
        let a = Auth::from_token(T).unwrap();
        assert!(a.check(Some(&format!("Bearer {T}"))).is_ok());
        assert!(a.check(Some(&format!("bearer {T}"))).is_ok());
        assert!(a.check(Some(&format!("Bearer Bearer {T}"))).is_ok());
    }

    #[test]
    fn refuses_missing_wrong_or_non_bearer() {
        let a = Auth::from_token(T).unwrap();
        for h in [
            None,
            Some("Bearer nope"),
            Some("Basic abc"),
            Some(T),
            Some("Bearer "),
            Some(""),
        ] {
            let e = a.check(h).unwrap_err();
            assert_eq!(e.status, 401, "{h:?}");
        }
    }

    #[test]
    fn refuses_weak_configuration_and_hides_token_in_debug() {
        assert!(Auth::from_token("  ").is_err());
        assert!(Auth::from_token("short").is_err());
        assert!(!format!("{:?}", Auth::from_token(T).unwrap()).contains(T));
        assert_eq!(generate_token().len(), 64);
    }

    /// The tenant-token cache holds at most its bound, least recently used dropped first.
    #[test]
    fn the_token_cache_is_bounded() {
        let a = Auth::tenant_tokens_only().with_token_cache_max(100);
        for i in 0..100 {
            a.cache
                .put(digest(&format!("token-{i}")), (format!("t{i}"), None));
        }
        assert_eq!(a.cache.get(&digest("token-0")), Some(("t0".into(), None)));
        for i in 100..130 {
            a.cache
                .put(digest(&format!("token-{i}")), (format!("t{i}"), None));
        }
        assert_eq!(a.token_cache_len(), 100);
        assert!(
            a.cache.contains(&digest("token-0")),
            "recently used survives"
        );
        assert!(
            !a.cache.contains(&digest("token-1")),
            "least recently used gone"
        );
        assert!(!a.cache.contains(&digest("token-30")));
        assert!(a.cache.contains(&digest("token-31")));
    }

    #[test]
    fn tenant_ids() {
        for ok in ["acme", "a", "contoso-eu-1", "0day"] {
            assert!(valid_tenant(ok), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "-x",
            "a_b",
            "scim",
            "default",
            "oauth2",
            "a/b",
            "a#b",
            &"x".repeat(64),
        ] {
            assert!(!valid_tenant(bad), "{bad}");
        }
        assert_eq!(token_hash("x").len(), 64);
    }
}
