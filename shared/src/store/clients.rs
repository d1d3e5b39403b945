//! The contract for OAuth 2.0 clients (`ClientStore`): a tenant's clients, their secrets (only SHA-256
//! hashes) and the tenant's Workload Identity Federation trust, as the token endpoint, the access-token
//! check and `scim-admin` need them. Plain data: the rules (who gets a token, secret lifetimes) are in
//! `crate::oauth`. Imports only its parent (`StoreError`).

use super::StoreError;
use async_trait::async_trait;

/// Most secrets a client may hold at once (expired ones count until revoked): enough for a rotation
/// (old and new side by side) with room to spare, few enough that checking them all stays cheap.
pub const MAX_SECRETS_PER_CLIENT: u32 = 5;

/// An OAuth client of a tenant (what Entra's admin pastes as **Client ID**).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub tenant: String,
    /// Public identifier, random, unique.
    pub id: String,
    pub label: String,
    /// RFC 3339.
    pub created: String,
    /// Revoked clients get no token, and their access tokens stop working (within the cache bound).
    pub revoked: bool,
    /// RFC 3339, when revoked.
    pub revoked_at: Option<String>,
    /// Secret items the client holds (kept on the client item, so that adding a secret is bounded).
    pub secrets: u32,
}

/// A client secret as stored: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// Short public identifier (to list and revoke), not derived from the secret.
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// RFC 3339.
    pub created: String,
    /// Seconds since the Unix epoch after which the secret gives no token.
    pub expires: i64,
    /// When it last got a token (Unix seconds, to within `USE_NOTE_SECS`); None: never.
    pub last_used: Option<i64>,
}

/// A client and all its secrets (one Query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client: OAuthClient,
    pub secrets: Vec<ClientSecret>,
}

/// A tenant's Workload Identity Federation trust as stored (the four values its admin copied from
/// Entra, verbatim). `crate::oauth` turns it into the assertion verifier's `WifTrust`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifTrustRecord {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub jwks_url: String,
    /// When an assertion last got a token with it (Unix seconds, to within `USE_NOTE_SECS`).
    pub last_used: Option<i64>,
}

/// What adding a secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddSecret {
    Added,
    /// No such client.
    NoClient,
    /// The client is revoked: it gets no new secret.
    Revoked,
    /// The client already holds [`MAX_SECRETS_PER_CLIENT`] secrets.
    TooMany,
}

/// OAuth clients, secrets and WIF trusts; every item lives in the tenant's partition `T#<tenant>#oauth`.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Store a new client with its first secret, in one transaction. The tenant must be registered
    /// (except the base URL's directory, `default`); `Internal` when it is not or the id is taken.
    async fn create_client(
        &self,
        client: &OAuthClient,
        secret: &ClientSecret,
    ) -> Result<(), StoreError>;
    /// The client item alone (one GetItem): what the access-token check reads to learn about revocation.
    async fn oauth_client(&self, tenant: &str, id: &str)
        -> Result<Option<OAuthClient>, StoreError>;
    /// The client and its secrets (one Query): what the token endpoint reads.
    async fn client_credentials(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ClientCredentials>, StoreError>;
    /// Every client of the tenant with its secrets.
    async fn list_clients(&self, tenant: &str) -> Result<Vec<ClientCredentials>, StoreError>;
    /// Add a secret to a client that exists, is not revoked and holds fewer than
    /// [`MAX_SECRETS_PER_CLIENT`]; conditioned on the client item, so it cannot race a revocation.
    async fn add_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &ClientSecret,
    ) -> Result<AddSecret, StoreError>;
    /// Delete one secret; false when the client has no such secret.
    async fn revoke_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret_id: &str,
    ) -> Result<bool, StoreError>;
    /// Mark the client revoked (kept, so its id is never reused); false when there is no such client.
    async fn revoke_client(
        &self,
        tenant: &str,
        client_id: &str,
        now: &str,
    ) -> Result<bool, StoreError>;
    /// The tenant's WIF trust (one GetItem).
    async fn wif_trust(&self, tenant: &str) -> Result<Option<WifTrustRecord>, StoreError>;
    /// Set (or replace) the tenant's WIF trust. The tenant must be registered (except `default`).
    async fn put_wif_trust(
        &self,
        tenant: &str,
        trust: &WifTrustRecord,
        now: &str,
    ) -> Result<(), StoreError>;
    /// Remove it; false when there was none.
    async fn remove_wif_trust(&self, tenant: &str) -> Result<bool, StoreError>;
    /// Write down that a secret got a token at `at` (Unix seconds); nothing when it no longer exists.
    async fn note_secret_use(
        &self,
        tenant: &str,
        client_id: &str,
        secret_id: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Write down that the tenant's WIF trust got a token at `at`; nothing when it no longer exists.
    async fn note_trust_use(&self, tenant: &str, at: i64) -> Result<(), StoreError>;
}
