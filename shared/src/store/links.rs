//! The contract for setup links and their browser sessions (`LinkStore`): the links a vendor creates for
//! a tenant's setup page (only the SHA-256 of a link's secret is kept), and the sessions opening a link
//! gives (only the SHA-256 of a session id is kept). Both live in the tenant's own partition, so a link or
//! a session is always read under the tenant its id names and never reaches another tenant. Plain data:
//! the rules (lifetimes, single use) are in `crate::manage::links`. Imports only its parent (`StoreError`).

use super::StoreError;
use async_trait::async_trait;

/// The two forms of setup link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Opened at once by the vendor's app (a redirect): valid minutes, opened once.
    InApp,
    /// Sent to the customer's IT admin: valid days, opened any number of times until it expires or is
    /// revoked.
    Shareable,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::InApp => "in_app",
            LinkKind::Shareable => "shareable",
        }
    }
    pub fn parse(s: &str) -> Option<LinkKind> {
        match s {
            "in_app" => Some(LinkKind::InApp),
            "shareable" => Some(LinkKind::Shareable),
            _ => None,
        }
    }
}

/// A setup link as stored: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupLink {
    pub tenant: String,
    /// The random part of the link's id (the public id is `<tenant>_<key>`).
    pub key: String,
    pub kind: LinkKind,
    /// Hex SHA-256 of the link's secret.
    pub hash: String,
    /// RFC 3339.
    pub created: String,
    /// Unix seconds after which the link opens nothing.
    pub expires: i64,
    /// Where the page's "back" link leads (the vendor's app), if given.
    pub return_url: Option<String>,
    /// RFC 3339: when an in-app link was opened (it opens once).
    pub used: Option<String>,
    /// RFC 3339: when the link was revoked.
    pub revoked: Option<String>,
}

/// A browser session opened with a link: never the session id itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSession {
    pub tenant: String,
    /// Hex SHA-256 of the session id.
    pub hash: String,
    /// The random part of the link that opened it.
    pub link: String,
    /// Unix seconds after which the session is over.
    pub expires: i64,
}

/// What opening a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOpen {
    /// The session is stored (and an in-app link marked used).
    Opened,
    /// The link is gone, used, revoked or expired at the moment of writing (read it again to say which).
    Refused,
}

/// Setup links and sessions.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Store a new link (its key is new).
    async fn put_link(&self, link: &SetupLink) -> Result<(), StoreError>;
    /// One strongly consistent read.
    async fn link(&self, tenant: &str, key: &str) -> Result<Option<SetupLink>, StoreError>;
    /// The tenant's links (expired ones until the table's TTL removes them), oldest first.
    async fn list_links(&self, tenant: &str) -> Result<Vec<SetupLink>, StoreError>;
    /// Mark the link revoked; false when there is no such link. Revoking twice changes nothing.
    async fn revoke_link(&self, tenant: &str, key: &str, now: &str) -> Result<bool, StoreError>;
    /// Store `session` for link `key`, in one transaction with the conditions that the link exists, is
    /// not revoked and has not expired by `now_unix`; for an in-app link also that it was not used, and
    /// it is marked used (`now`).
    async fn open_link(
        &self,
        tenant: &str,
        key: &str,
        single_use: bool,
        now: &str,
        now_unix: i64,
        session: &SetupSession,
    ) -> Result<LinkOpen, StoreError>;
    /// One strongly consistent read of a session by the hash of its id.
    async fn setup_session(
        &self,
        tenant: &str,
        hash: &str,
    ) -> Result<Option<SetupSession>, StoreError>;
    /// Write only the audit entry pending in this scope (`store::audited`): an action of the setup page
    /// that changes nothing (a connection check) is still in the tenant's audit trail.
    async fn audit_only(&self) -> Result<(), StoreError>;
}
