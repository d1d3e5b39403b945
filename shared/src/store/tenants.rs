//! The contract for the tenant register and the audit trail (`TenantStore`): one item per tenant
//! (display name, the vendor's metadata, its lifecycle state, a version for optimistic writes) and the
//! tenant's audit entries, as the management operations (`crate::manage`) and the tenant gate of every
//! SCIM and token request need them. Plain data: the rules (who may move a tenant from which state to
//! which) are in `crate::manage`. Imports only its parent (`StoreError`).
//!
//! **Audit entries ride in the write they record.** A management operation runs its store writes inside
//! [`audited`]; the store appends the entry to the first transaction that succeeds in that scope, so an
//! action and its audit entry land together or not at all (a refused or failed action leaves no entry).

use super::StoreError;
use async_trait::async_trait;
use std::cell::RefCell;
use std::future::Future;

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantState {
    /// Served.
    Active,
    /// Its SCIM and token requests are refused with 503 and `Retry-After`; nothing of it changes.
    Paused,
    /// Being removed (offboarding): every request refused; its items are deleted in batches.
    Deleting,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Paused => "paused",
            TenantState::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<TenantState> {
        match s {
            "active" => Some(TenantState::Active),
            "paused" => Some(TenantState::Paused),
            "deleting" => Some(TenantState::Deleting),
            _ => None,
        }
    }
}

/// A tenant as registered. Registers written before tenants had names read as active, named by their id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: String,
    pub display_name: String,
    /// The vendor's own data (its org id, plan, …): a JSON object, as text, size-checked by `manage`.
    pub metadata: String,
    pub state: TenantState,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339: the last change of name, metadata or state.
    pub updated: String,
    /// Moves by one at every change; every change is conditioned on the version read.
    pub version: u64,
}

/// One page of the register, in tenant-id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantPage {
    pub tenants: Vec<TenantRecord>,
    /// The last id of this page when more may follow (the next page starts after it).
    pub next_after: Option<String>,
}

/// One entry of a tenant's audit trail: who did what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub tenant: String,
    /// RFC 3339 with microseconds: entries sort by it.
    pub at: String,
    /// A random suffix, so two entries of one microsecond do not collide.
    pub nonce: String,
    /// The principal: an IAM ARN on AWS, `local-admin` locally, `setup-link:<id>` for a setup page.
    pub actor: String,
    /// What was done: `tenant.create`, `client.rotate`, … (see `docs/manage.md`).
    pub action: String,
    /// What it was done to (a client id, a token id), or empty.
    pub target: String,
    /// Unix seconds after which the entry may be dropped (the table's TTL).
    pub expires: i64,
}

/// What moving a tenant's state did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantWrite {
    Written,
    /// No such tenant.
    Missing,
    /// The tenant changed since `expected_version` was read.
    Changed,
}

/// The tenant register and the audit trail; offboarding (`super::OffboardStore`) comes with it.
#[async_trait]
pub trait TenantStore: super::OffboardStore + Send + Sync {
    /// One strongly consistent read of the tenant's register item.
    async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// The tenant's lifecycle state alone (one eventually consistent read): what the tenant gate asks.
    async fn tenant_state(&self, id: &str) -> Result<Option<TenantState>, StoreError>;
    /// Register `rec` (version 1); false when the id is taken.
    async fn register_tenant(&self, rec: &TenantRecord) -> Result<bool, StoreError>;
    /// Replace the register item by `rec` (its version must be `expected_version + 1`) if the stored
    /// version is still `expected_version`.
    async fn update_tenant(
        &self,
        rec: &TenantRecord,
        expected_version: u64,
    ) -> Result<TenantWrite, StoreError>;
    /// A page of at most `limit` tenants whose id sorts after `after`.
    async fn tenant_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TenantPage, StoreError>;
    /// The tenant's audit entries, newest first, at most `limit`, older than `before` (an entry's `at`
    /// and nonce, as given in a previous page's last entry) when given.
    async fn audit_entries(
        &self,
        tenant: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

tokio::task_local! {
    static PENDING_AUDIT: RefCell<Option<AuditEntry>>;
}

/// Run `fut` (a management operation's writes) with `entry` pending: the first transaction the store
/// commits in this scope carries it. Returns whether it was written (false: no write succeeded, so the
/// action did nothing and leaves no entry).
pub async fn audited<F: Future>(entry: AuditEntry, fut: F) -> (F::Output, bool) {
    PENDING_AUDIT
        .scope(RefCell::new(Some(entry)), async move {
            let out = fut.await;
            let written = PENDING_AUDIT.with(|p| p.borrow().is_none());
            (out, written)
        })
        .await
}

/// The audit entry pending in this scope, if one is (for the store: to add to a transaction).
pub fn pending_audit() -> Option<AuditEntry> {
    PENDING_AUDIT
        .try_with(|p| p.borrow().clone())
        .ok()
        .flatten()
}

/// The pending entry was committed with a transaction: it is no longer pending.
pub fn audit_written() {
    let _ = PENDING_AUDIT.try_with(|p| p.borrow_mut().take());
}
