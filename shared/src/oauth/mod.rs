//! OAuth 2.0 for Entra (docs/oauth.md): the client credentials grant at a per-tenant token endpoint, with
//! a client secret or a Workload Identity Federation assertion, and the access tokens it issues.
//!
//! * [`assertion`]: verifying WIF client assertions (RS256 JWTs against a tenant's trust; docs/oauth-wif.md);
//! * [`signing`]: the HMAC key ring that signs access tokens; [`access_token`]: their form, issue, check;
//! * [`request`]: a token request as RFC 6749 defines it (pure parsing);
//! * [`credentials`]: client ids and secrets (made, hashed, their lifetimes);
//! * this module: [`OAuth`] — the grant (who gets a token) and the access-token check the auth layer
//!   calls (signature, expiry, tenant, and the client's revocation, cached per client for a bounded
//!   time), [`OAuthSettings`] and the RFC 6749 §5.2 error ([`OAuthError`]).
//!
//! Imports `config`, `cache` (the bounded client-state cache) and `store` (the `ClientStore` contract)
//! of the crate; `auth` imports this module, never the reverse.

pub mod access_token;
pub mod assertion;
pub mod credentials;
pub mod request;
pub mod signing;

use crate::cache::TimedLru;
use crate::store::{ClientStore, StoreError, WifTrustRecord};
use access_token::Claims;
use assertion::{Jwks, WifTrust};
use request::{ClientAuth, TokenRequest};
use signing::KeyRing;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shortest and longest access-token lifetime (Entra's gallery rules: 60 minutes to 6 hours).
pub const MIN_LIFETIME_MINUTES: u64 = 60;
pub const MAX_LIFETIME_MINUTES: u64 = 360;
/// Longest time a client's revocation may go unnoticed by an instance that verifies its tokens.
pub const MAX_CLIENT_CHECK_SECS: u64 = 300;

/// RFC 6749 §5.2 error codes (and `temporarily_unavailable` when the store does not answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// 401 for a client that failed to authenticate, 503 when the store did not answer, else 400.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// A refused token request: the JSON body `{"error", "error_description"}` and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Says what was wrong with the request, never whether a client id exists or which check failed.
    pub description: String,
    /// The client used HTTP Basic: answer with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    pub fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }

    /// The one answer to every failed client authentication, whatever failed.
    pub fn client_authentication_failed(basic: bool) -> Self {
        OAuthError::new(ErrorCode::InvalidClient, "client authentication failed")
            .with_basic_challenge(basic)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

fn unavailable(e: &StoreError) -> OAuthError {
    tracing::warn!(error = ?e, "token endpoint: store call failed");
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the server cannot issue tokens right now; retry shortly",
    )
}

/// The settings of the token endpoint and the access-token check.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// Access-token lifetime (`SCIM_OAUTH_TOKEN_LIFETIME_MINUTES`, 60–360, default 60).
    pub token_lifetime: Duration,
    /// How long an instance trusts what it last read of a client (revoked or not) before reading it again
    /// (`SCIM_OAUTH_CLIENT_CHECK_SECS`, 0–300, default 30): the bound on how long a revoked client's
    /// access tokens keep working.
    pub client_check: Duration,
    /// The scopes a client may ask for (`SCIM_OAUTH_SCOPES`, space-separated, default `scim`); the first
    /// is granted when the request names none. Every scope grants the tenant's whole SCIM API.
    pub scopes: Vec<String>,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            token_lifetime: Duration::from_secs(60 * 60),
            client_check: Duration::from_secs(30),
            scopes: vec!["scim".into()],
        }
    }
}

impl OAuthSettings {
    /// From the environment; refuses values out of range (the function then does not start).
    pub fn from_env() -> Result<Self, String> {
        let d = OAuthSettings::default();
        let num = |name: &str, default: u64| -> Result<u64, String> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name} must be a whole number, not {v:?}")),
            }
        };
        let minutes = num(
            "SCIM_OAUTH_TOKEN_LIFETIME_MINUTES",
            d.token_lifetime.as_secs() / 60,
        )?;
        let check = num("SCIM_OAUTH_CLIENT_CHECK_SECS", d.client_check.as_secs())?;
        let scopes: Vec<String> = match std::env::var("SCIM_OAUTH_SCOPES") {
            Ok(v) => v.split_whitespace().map(str::to_string).collect(),
            Err(_) => d.scopes,
        };
        OAuthSettings {
            token_lifetime: Duration::from_secs(minutes * 60),
            client_check: Duration::from_secs(check),
            scopes,
        }
        .checked()
    }

    /// The settings if every value is within its bounds.
    pub fn checked(self) -> Result<Self, String> {
        let minutes = self.token_lifetime.as_secs() / 60;
        if !(MIN_LIFETIME_MINUTES..=MAX_LIFETIME_MINUTES).contains(&minutes)
            || !self.token_lifetime.as_secs().is_multiple_of(60)
        {
            return Err(format!("SCIM_OAUTH_TOKEN_LIFETIME_MINUTES must be {MIN_LIFETIME_MINUTES}-{MAX_LIFETIME_MINUTES} (Entra's gallery rules), not {minutes}"));
        }
        if self.client_check.as_secs() > MAX_CLIENT_CHECK_SECS {
            return Err(format!(
                "SCIM_OAUTH_CLIENT_CHECK_SECS must be 0-{MAX_CLIENT_CHECK_SECS}"
            ));
        }
        if self.scopes.is_empty() {
            return Err("SCIM_OAUTH_SCOPES names no scope".into());
        }
        Ok(self)
    }
}

/// An issued access token, as the token endpoint answers it.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub client_id: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Issued {{ client_id: {:?}, expires_in: {}, scope: {:?} }}",
            self.client_id, self.expires_in, self.scope
        )
    }
}

/// Why an access token did not authenticate a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefused {
    /// Not valid here (malformed, forged, expired, another tenant's, a revoked client's): 401.
    Invalid(&'static str),
    /// The store did not answer while the client's state had to be read.
    Store(StoreError),
}

/// The token endpoint's and the access-token check's state: one per process, shared by every request.
pub struct OAuth {
    ring: KeyRing,
    settings: OAuthSettings,
    jwks: Jwks,
    /// (tenant, client id) → the client may use its tokens; each for `client_check`, at most
    /// `SCIM_OAUTH_CLIENT_CACHE_MAX` (least recently used dropped first).
    clients: TimedLru<(String, String), bool>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("ring", &self.ring)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Most client states cached (`SCIM_OAUTH_CLIENT_CACHE_MAX`, default 10,000); beyond it the least
/// recently used is dropped (and read from the store again at its next use: one GetItem). About
/// [`CLIENT_CACHE_ENTRY_BYTES`] each, so at most about 3 MB at the default.
pub const DEFAULT_CLIENT_CACHE_MAX: usize = 10_000;

/// Estimated bytes of one cached client state: the key's tenant id (up to 63 bytes) and client id (up to
/// 64) with their string headers, the flag and instant, the LRU node's links and the map's slot (220
/// measured with a 36-character client id: `cache::tests::cache_entry_bytes`).
pub const CLIENT_CACHE_ENTRY_BYTES: usize = 320;

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl OAuth {
    pub fn new(ring: KeyRing, settings: OAuthSettings, jwks: Jwks) -> Self {
        let settings_client_check = settings.client_check;
        OAuth {
            ring,
            settings,
            jwks,
            clients: TimedLru::new(
                crate::cache::max_from_env("SCIM_OAUTH_CLIENT_CACHE_MAX", DEFAULT_CLIENT_CACHE_MAX),
                settings_client_check,
            ),
        }
    }

    /// At most `max` client states cached (instead of `SCIM_OAUTH_CLIENT_CACHE_MAX`).
    pub fn with_client_cache_max(mut self, max: usize) -> Self {
        self.clients = TimedLru::new(max, self.settings.client_check);
        self
    }

    /// Client states cached now.
    pub fn client_cache_len(&self) -> usize {
        self.clients.len()
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// An access token for `client_id` of `tenant`, issued at `now` (also the tests' way to make an
    /// expired one).
    pub fn issue_at(&self, tenant: &str, client_id: &str, now: SystemTime) -> String {
        let iat = unix(now);
        let claims = Claims {
            t: tenant.to_string(),
            c: client_id.to_string(),
            iat,
            exp: iat + self.settings.token_lifetime.as_secs() as i64,
        };
        access_token::issue(&self.ring, &claims)
    }

    /// The client credentials grant for `tenant` (the tenant the token endpoint's path names): checks the
    /// client's authentication against the store and issues a token. Every failure of the client's
    /// credentials is the same `invalid_client`, after the same store call and the same hashing whether
    /// or not the client exists.
    pub async fn grant<S: ClientStore + ?Sized>(
        &self,
        tenant: &str,
        req: &TokenRequest,
        store: &S,
        now: SystemTime,
    ) -> Result<Issued, OAuthError> {
        let scope = self.scope(req)?;
        let client_id = req.client.client_id();
        let refuse = |why: &str| {
            tracing::info!(
                tenant,
                reason = why,
                "token request refused: client authentication failed"
            );
            OAuthError::client_authentication_failed(req.basic)
        };
        let well_formed = credentials::valid_client_id(client_id);
        match &req.client {
            ClientAuth::Secret { secret, .. } => {
                let creds = if well_formed {
                    store
                        .client_credentials(tenant, client_id)
                        .await
                        .map_err(|e| unavailable(&e))?
                } else {
                    None
                };
                let presented = credentials::secret_hash(secret);
                let active = creds.as_ref().is_some_and(|c| !c.client.revoked);
                let matched = credentials::matching_secret(
                    &presented,
                    creds.as_ref().map(|c| c.secrets.as_slice()).unwrap_or(&[]),
                    unix(now),
                );
                if let Some(c) = &creds {
                    self.remember(tenant, client_id, !c.client.revoked);
                }
                match (creds.is_some(), active, matched) {
                    (false, _, _) => return Err(refuse("unknown client")),
                    (true, false, _) => return Err(refuse("client revoked")),
                    (true, true, credentials::Match::None) => return Err(refuse("wrong secret")),
                    (true, true, credentials::Match::Expired) => {
                        return Err(refuse("secret expired"))
                    }
                    (true, true, credentials::Match::Valid) => {}
                }
                // The secret that matched (the client proved it knows it, so finding it leaks nothing).
                if let Some(s) = creds
                    .as_ref()
                    .and_then(|c| c.secrets.iter().find(|s| s.hash == presented))
                {
                    if crate::store::use_worth_noting(s.last_used, unix(now)) {
                        if let Err(e) = store
                            .note_secret_use(tenant, client_id, &s.id, unix(now))
                            .await
                        {
                            tracing::warn!(error = ?e, "a client secret's use was not written down");
                        }
                    }
                }
            }
            ClientAuth::Assertion { assertion, .. } => {
                // The client and the tenant's trust, read together (two GetItems) whatever the client id,
                // so an unknown client costs what a known one costs.
                let (client, trust) = if well_formed {
                    futures::join!(
                        store.oauth_client(tenant, client_id),
                        store.wif_trust(tenant)
                    )
                } else {
                    (Ok(None), store.wif_trust(tenant).await)
                };
                let client = client.map_err(|e| unavailable(&e))?;
                let Some(trust) = trust.map_err(|e| unavailable(&e))? else {
                    return Err(refuse("no WIF trust for this tenant"));
                };
                // The assertion is checked before the client, so the work is the same for any client id.
                let verified = self.jwks.verify(assertion, &trust_of(&trust), now).await;
                let Some(client) = client else {
                    return Err(refuse("unknown client"));
                };
                self.remember(tenant, client_id, !client.revoked);
                if client.revoked {
                    return Err(refuse("client revoked"));
                }
                if let Err(why) = verified {
                    tracing::info!(tenant, reason = %why, "token request refused: WIF assertion");
                    return Err(OAuthError::client_authentication_failed(req.basic));
                }
                if crate::store::use_worth_noting(trust.last_used, unix(now)) {
                    if let Err(e) = store.note_trust_use(tenant, unix(now)).await {
                        tracing::warn!(error = ?e, "a WIF trust's use was not written down");
                    }
                }
            }
        }
        tracing::info!(tenant, client_id, "access token issued");
        Ok(Issued {
            access_token: self.issue_at(tenant, client_id, now),
            expires_in: self.settings.token_lifetime.as_secs(),
            scope,
            client_id: client_id.to_string(),
        })
    }

    /// The scope granted: the request's, if every token of it is allowed, else `invalid_scope`.
    fn scope(&self, req: &TokenRequest) -> Result<String, OAuthError> {
        match &req.scope {
            None => Ok(self.settings.scopes[0].clone()),
            Some(s) => {
                let mut granted: Vec<&str> = Vec::new();
                for t in s.split(' ') {
                    if !self.settings.scopes.iter().any(|a| a == t) {
                        return Err(OAuthError::new(
                            ErrorCode::InvalidScope,
                            format!("the scope may only be {}", self.settings.scopes.join(" ")),
                        )
                        .with_basic_challenge(req.basic));
                    }
                    if !granted.contains(&t) {
                        granted.push(t);
                    }
                }
                Ok(granted.join(" "))
            }
        }
    }

    fn remember(&self, tenant: &str, client_id: &str, active: bool) {
        self.clients
            .put((tenant.to_string(), client_id.to_string()), active);
    }

    /// Whether `token` is a valid access token of `tenant` at `now`: its signature and expiry (no store
    /// call), its tenant, and its client not revoked — read from the store at most once per
    /// `client_check` per client and instance.
    pub async fn authenticate<S: ClientStore + ?Sized>(
        &self,
        tenant: &str,
        token: &str,
        store: &S,
        now: SystemTime,
    ) -> Result<(), TokenRefused> {
        let claims = access_token::verify(&self.ring, token, unix(now)).map_err(|e| {
            tracing::info!(tenant, reason = ?e, "access token refused");
            TokenRefused::Invalid("invalid access token")
        })?;
        if claims.t != tenant {
            return Err(TokenRefused::Invalid("access token of another tenant"));
        }
        let key = (claims.t.clone(), claims.c.clone());
        let active = match self.clients.get(&key) {
            Some(active) => active,
            None => {
                let client = store
                    .oauth_client(&claims.t, &claims.c)
                    .await
                    .map_err(TokenRefused::Store)?;
                let active = client.is_some_and(|c| !c.revoked);
                self.remember(&claims.t, &claims.c, active);
                active
            }
        };
        if active {
            Ok(())
        } else {
            Err(TokenRefused::Invalid("access token of a revoked client"))
        }
    }
}

fn trust_of(t: &WifTrustRecord) -> WifTrust {
    WifTrust {
        issuer: t.issuer.clone(),
        subject: t.subject.clone(),
        audience: t.audience.clone(),
        jwks_url: t.jwks_url.clone(),
    }
}

/// The stored form of a checked trust.
pub fn trust_record(t: &WifTrust) -> WifTrustRecord {
    WifTrustRecord {
        issuer: t.issuer.clone(),
        subject: t.subject.clone(),
        audience: t.audience.clone(),
        jwks_url: t.jwks_url.clone(),
        last_used: None,
    }
}

/// The key ring from configuration, for a Lambda function: the SSM parameter named by
/// `SCIM_OAUTH_KEYS_SSM_PARAMETER`, else `SCIM_OAUTH_SIGNING_KEYS`, else (under `cargo lambda watch`) the
/// file `scim-local` keeps in its data directory `local`. None: OAuth is off. An empty variable counts as
/// unset (the SAM template passes an empty parameter name when OAuth is off).
pub async fn ring_from_env(
    sdk: &aws_config::SdkConfig,
    local: Option<&std::path::Path>,
) -> Result<Option<KeyRing>, String> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(name) = set(KEYS_SSM_VAR) {
        return KeyRing::from_ssm(&aws_sdk_ssm::Client::new(sdk), &name)
            .await
            .map(Some);
    }
    if let Some(text) = set(KEYS_VAR) {
        return KeyRing::parse(&text)
            .map(Some)
            .map_err(|e| format!("{KEYS_VAR}: {e}"));
    }
    if let Some(dir) = local {
        let file = dir.join(KEYS_FILE);
        if let Ok(text) = std::fs::read_to_string(&file) {
            return KeyRing::parse(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", file.display()));
        }
    }
    Ok(None)
}

/// The OAuth state of a Lambda function from its environment ([`ring_from_env`], [`OAuthSettings::from_env`]),
/// or None when no key ring is configured.
pub async fn from_env(
    sdk: &aws_config::SdkConfig,
    local: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<OAuth>>, String> {
    let Some(ring) = ring_from_env(sdk, local).await? else {
        return Ok(None);
    };
    let settings = OAuthSettings::from_env()?;
    Ok(Some(std::sync::Arc::new(OAuth::new(
        ring,
        settings,
        Jwks::with_settings(assertion::JwksSettings::from_env()),
    ))))
}

/// The key ring's text in the environment (Lambda, tests).
pub const KEYS_VAR: &str = "SCIM_OAUTH_SIGNING_KEYS";
/// The name of the SSM SecureString parameter holding the key ring's text (deployed functions).
pub const KEYS_SSM_VAR: &str = "SCIM_OAUTH_KEYS_SSM_PARAMETER";
/// The key ring `scim-local` creates in its data directory at first start (mode 0600).
pub const KEYS_FILE: &str = "oauth-keys";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_bounds() {
        let with = |minutes: u64, check: u64| {
            OAuthSettings {
                token_lifetime: Duration::from_secs(minutes * 60),
                client_check: Duration::from_secs(check),
                ..OAuthSettings::default()
            }
            .checked()
        };
        assert!(
            with(60, 30).is_ok()
                && with(360, 0).is_ok()
                && with(360, MAX_CLIENT_CHECK_SECS).is_ok()
        );
        for (m, c) in [
            (59, 30),
            (361, 30),
            (0, 30),
            (60, MAX_CLIENT_CHECK_SECS + 1),
        ] {
            assert!(with(m, c).is_err(), "{m} {c}");
        }
        assert!(OAuthSettings {
            scopes: vec![],
            ..OAuthSettings::default()
        }
        .checked()
        .is_err());
        let d = OAuthSettings::default();
        assert_eq!(
            (
                d.token_lifetime.as_secs(),
                d.client_check.as_secs(),
                d.scopes.clone()
            ),
            (3600, 30, vec!["scim".to_string()])
        );
    }

    #[test]
    fn errors_as_rfc_6749_says() {
        let e = OAuthError::client_authentication_failed(true);
        assert_eq!(
            (
                e.code.status(),
                e.body()["error"].as_str(),
                e.basic_challenge
            ),
            (401, Some("invalid_client"), true)
        );
        assert_eq!(ErrorCode::InvalidScope.status(), 400);
        assert_eq!(
            ErrorCode::UnsupportedGrantType.as_str(),
            "unsupported_grant_type"
        );
    }

    #[test]
    fn issued_tokens_carry_tenant_client_and_lifetime() {
        let ring = KeyRing::parse(&KeyRing::generate_text("k")).unwrap();
        let o = OAuth::new(
            ring,
            OAuthSettings {
                token_lifetime: Duration::from_secs(7200),
                ..OAuthSettings::default()
            },
            Jwks::new(),
        );
        let now = SystemTime::now();
        let t = o.issue_at("acme", "c1", now);
        let claims = access_token::verify(o.ring(), &t, unix(now)).unwrap();
        assert_eq!(
            (
                claims.t.as_str(),
                claims.c.as_str(),
                claims.exp - claims.iat
            ),
            ("acme", "c1", 7200)
        );
        assert!(!format!(
            "{:?}",
            Issued {
                access_token: t.clone(),
                expires_in: 1,
                scope: "s".into(),
                client_id: "c".into()
            }
        )
        .contains(&t));
    }

    /// The client-state cache holds at most its bound, least recently used dropped first.
    #[test]
    fn the_client_cache_is_bounded() {
        let ring = KeyRing::parse(&KeyRing::generate_text("k")).unwrap();
        let o = OAuth::new(ring, OAuthSettings::default(), Jwks::new()).with_client_cache_max(64);
        for i in 0..64 {
            o.remember(&format!("t{i}"), "c", true);
        }
        let key = |i: usize| (format!("t{i}"), "c".to_string());
        assert_eq!(o.clients.get(&key(0)), Some(true));
        for i in 64..80 {
            o.remember(&format!("t{i}"), "c", false);
        }
        assert_eq!(o.client_cache_len(), 64);
        assert!(o.clients.contains(&key(0)), "recently used survives");
        assert!(!o.clients.contains(&key(1)), "least recently used gone");
        assert!(!o.clients.contains(&key(16)));
        assert_eq!(o.clients.get(&key(79)), Some(false));
    }
}
