//! The store: one implementation, DynamoDB ([`dynamo::DynamoStore`]), behind small traits that are the
//! seam for tests and fault injection — not for a second database. Locally and in tests the same code
//! talks to an embedded DynamoDB engine (dynoxide) or to moto; in the cloud to DynamoDB itself.
//!
//! This module owns the contract: [`ResourceStore`], [`MemberStore`], [`TokenStore`], [`ClientStore`]
//! (OAuth clients, their secrets and WIF trusts, in `clients.rs`), [`TenantStore`] (the tenant register and
//! the audit trail, whose entries ride in the writes they record: `tenants.rs`) and their sum [`Store`];
//! apart from the sum, the change events' [`EventLogStore`] and [`DeliveryStore`] (`events.rs`); the types
//! they exchange, [`StoreError`] (and its SCIM error), and the per-request usage
//! measurement ([`measure`]). It imports `error`, `filter`, `model` and `schema`, never its children:
//! [`keys`] (the key layout) and [`limits`] (DynamoDB's size limits) import only it, `model` and
//! `schema`; [`dynamo`] builds on all three.

pub mod dynamo;
pub mod keys;
pub mod limits;

use crate::error::ScimError;
use crate::filter::Filter;
use crate::model::StoredResource;
use crate::schema::ResourceType;
use async_trait::async_trait;
use std::cell::Cell;
use std::future::Future;

/// Why a store call failed. Mapped to SCIM errors by [`From<StoreError> for ScimError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The uniqueness guard of `attr` is held by another resource.
    Uniqueness { attr: String, value: String },
    /// The resource changed (or vanished) since it was read: the optimistic write lost.
    VersionConflict,
    /// Concurrent transactions on the same items (DynamoDB `TransactionConflict`): retry.
    Contention,
    /// A filter no index serves would have to examine more than the configured bound.
    TooMany(String),
    /// DynamoDB throttled the request.
    Throttled(String),
    /// DynamoDB timed out or was unreachable.
    Unavailable(String),
    /// A member id that is not a user of the tenant.
    NotAUser(String),
    /// A value too large for DynamoDB (a key over 2,048/1,024 bytes, an item over 400 KB), found before
    /// any call ([`limits`]); the detail names the limit.
    TooLarge(String),
    /// Anything else: a bug or a misconfiguration (table missing, permissions).
    Internal(String),
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Uniqueness { attr, value } => {
                ScimError::uniqueness(format!("{attr} \"{value}\" is already in use by another resource (compared case-insensitively)"))
            }
            StoreError::VersionConflict => ScimError::precondition_failed("The resource was changed by another request; read it again and retry"),
            StoreError::Contention => ScimError::unavailable(503, 1, "The resource is being changed by other requests; retry shortly"),
            StoreError::TooMany(d) => ScimError::bad_request(crate::error::ScimType::TooMany, d),
            StoreError::Throttled(_) => ScimError::unavailable(429, 2, "The directory store is busy (throttled); retry after the indicated delay"),
            StoreError::Unavailable(_) => ScimError::unavailable(503, 2, "The directory store did not answer in time; retry after the indicated delay"),
            StoreError::NotAUser(id) => ScimError::invalid_value(format!(
                "Member value \"{id}\" is not the id of a User of this tenant; nothing of the request was applied"
            )),
            StoreError::TooLarge(d) => ScimError::invalid_value(format!("{d}; nothing was changed")),
            StoreError::Internal(_) => ScimError::internal("The server could not complete the request because of an internal storage error"),
        }
    }
}

/// What a list request asks of the store.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    pub filter: Option<&'a Filter>,
    /// 1-based, as in SCIM.
    pub start_index: usize,
    /// Page size; 0 asks only for the total.
    pub count: usize,
    /// Most resources a filter that no index serves may examine.
    pub max_scan: usize,
    /// Cursor paging (RFC 9865): only resources whose id sorts after this one (`start_index` is then 1).
    pub after: Option<&'a str>,
    /// A byte bound on the page (the response's): see [`PageBudget`].
    pub budget: Option<PageBudget<'a>>,
}

/// The room a page has in its response: the page ends before the first resource whose `cost` (its
/// bytes in the response) would take the page's sum past `max_bytes` — possibly before `count` resources,
/// as RFC 7644 §3.4.2.4 allows — and the store stops reading there. A page never passes `max_bytes`: a
/// resource that alone does not fit ends the page empty (`more` set), and the caller says why.
#[derive(Clone, Copy)]
pub struct PageBudget<'a> {
    pub max_bytes: usize,
    pub cost: &'a (dyn Fn(&StoredResource) -> usize + Send + Sync),
}

impl std::fmt::Debug for PageBudget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBudget")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Fills one page: at most `count` resources, within the budget if there is one.
#[derive(Debug)]
pub struct PageFill<'a> {
    count: usize,
    budget: Option<PageBudget<'a>>,
    used: usize,
    /// The budget ended the page (a resource did not fit).
    pub full: bool,
    pub items: Vec<StoredResource>,
}

impl<'a> PageFill<'a> {
    pub fn new(q: &ListQuery<'a>) -> Self {
        PageFill {
            count: q.count,
            budget: q.budget,
            used: 0,
            full: false,
            items: Vec::new(),
        }
    }
    /// Room for more: fewer than `count` resources and the budget not reached.
    pub fn open(&self) -> bool {
        !self.full && self.items.len() < self.count
    }
    /// Add `r` if the page is open and `r` fits; false (and the page closed) otherwise.
    pub fn push(&mut self, r: StoredResource) -> bool {
        if !self.open() {
            return false;
        }
        if let Some(b) = self.budget {
            let cost = (b.cost)(&r);
            if self.used + cost > b.max_bytes {
                self.full = true;
                return false;
            }
            self.used += cost;
        }
        self.items.push(r);
        true
    }
}

impl ListQuery<'_> {
    /// One page of `matches` (all matches, sorted by id): by `start_index`, or after the cursor's id;
    /// `total` counts them all.
    pub fn window(&self, matches: Vec<StoredResource>) -> ListPage {
        let total = matches.len();
        let skip = match self.after {
            Some(after) => matches.partition_point(|r| r.id.as_str() <= after),
            None => self.start_index.saturating_sub(1).min(total),
        };
        let mut fill = PageFill::new(self);
        for r in matches.into_iter().skip(skip) {
            if !fill.push(r) {
                break;
            }
        }
        let more = total > skip + fill.items.len();
        ListPage {
            total,
            items: fill.items,
            more,
            full: fill.full,
        }
    }
}

/// One page of results and the total number of matches.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub total: usize,
    pub items: Vec<StoredResource>,
    /// More resources may follow the last item (cursor paging continues after its id).
    pub more: bool,
    /// The budget ended the page before `count` resources ([`PageBudget`]); `more` is then set.
    pub full: bool,
}

/// The whole store: resources, group members, tenants and tokens, OAuth clients. Implemented for every
/// type that implements the parts; code that needs only one part asks for that part.
pub trait Store:
    ResourceStore + MemberStore + TokenStore + ClientStore + TenantStore + LinkStore
{
}

impl<
        T: ResourceStore + MemberStore + TokenStore + ClientStore + TenantStore + LinkStore + ?Sized,
    > Store for T
{
}

mod tenants;
pub use tenants::{
    audit_written, audited, pending_audit, AuditEntry, TenantPage, TenantRecord, TenantState,
    TenantStore, TenantWrite,
};

mod events;
pub use events::{
    Appended, Checkpoint, DeliveryStore, EventLogStore, LogItem, LogItems, LogResume, ParkedEvent,
    WebhookPosition,
};

mod offboard;
pub use offboard::{OffboardBatch, OffboardPhase, OffboardRecord, OffboardStore};

mod links;
pub use links::{LinkKind, LinkOpen, LinkStore, SetupLink, SetupSession};

mod clients;
pub use clients::{
    AddSecret, ClientCredentials, ClientSecret, ClientStore, OAuthClient, WifTrustRecord,
    MAX_SECRETS_PER_CLIENT,
};

/// Users and groups as resources. `rt` selects the resource type (User, Group); `tenant` is part of every key.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// One strongly consistent read.
    async fn get(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError>;
    /// Insert a new resource and its uniqueness guard, and count it, in one transaction.
    ///
    /// DynamoDB's size limits ([`limits::resource`]) are the caller's to check, before it reads anything
    /// (`Service::check_size`: every resource write passes it once); a size DynamoDB refuses anyway is
    /// still [`StoreError::TooLarge`], never a server fault.
    async fn create(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        res: &StoredResource,
    ) -> Result<(), StoreError>;
    /// Replace `old` by `new` if `old.version` is still current (else `VersionConflict`); moves the
    /// uniqueness guard when the unique attribute changes. Sizes: as [`Self::create`].
    async fn replace(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        old: &StoredResource,
        new: &StoredResource,
    ) -> Result<(), StoreError>;
    /// Delete `existing` if its version is still current, with its guard, and uncount it.
    async fn delete(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        existing: &StoredResource,
    ) -> Result<(), StoreError>;
    /// Filtered, paged listing; `total` counts all matches.
    async fn list(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        q: ListQuery<'_>,
    ) -> Result<ListPage, StoreError>;
}

/// The members of groups (users only), kept as items of their own; `tenant` is part of every key.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Whether group `group_id` exists and, of `ids`, which are users of the tenant and which are members
    /// of the group: batched reads (the group item rides in the first batch), at most 49 ids a call, never
    /// the member list. An empty `group_id` (a group not created yet) reads users only.
    async fn member_status(
        &self,
        tenant: &str,
        group_id: &str,
        ids: &[String],
    ) -> Result<MemberStatus, StoreError>;
    /// The ids of the members of `group_id`, in id order; `TooMany` when there are more than `limit`.
    async fn list_members(
        &self,
        tenant: &str,
        group_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Add `adds` (users, not yet members) and remove `removes` (current members), in transactions of at
    /// most [`MEMBERS_PER_TRANSACTION`] memberships, each also updating the users' `groups` and the group's
    /// member count, version and lastModified. A membership that changed meanwhile → `VersionConflict`.
    async fn change_members(
        &self,
        tenant: &str,
        group_id: &str,
        adds: &[String],
        removes: &[String],
        now: &str,
    ) -> Result<(), StoreError>;
}

/// A tenant token as stored: never the token itself, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Hex SHA-256 of the token.
    pub hash: String,
    pub tenant: String,
    /// Short public identifier (to list and revoke), not secret.
    pub id: String,
    pub label: String,
    pub created: String,
    /// The user this token acts as (`/Me`), if any.
    pub user: Option<String>,
    /// When it last authenticated a request (Unix seconds), to within [`USE_NOTE_SECS`]; None: never.
    pub last_used: Option<i64>,
}

/// A credential's use is written down at most once per this many seconds (per credential; the check runs
/// where the credential's record was just read, so it costs no extra read): "last used" is exact to ten
/// minutes, and a busy credential costs one small write per ten minutes, not one per request.
pub const USE_NOTE_SECS: i64 = 600;

/// Whether a use at `now` (Unix seconds) is worth writing down, given the last one written.
pub fn use_worth_noting(last_used: Option<i64>, now: i64) -> bool {
    last_used.is_none_or(|l| now - l >= USE_NOTE_SECS)
}

/// Tenants and their tokens (used by the auth layer and the `scim-admin` tool).
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The record of the token with this hash (one GetItem).
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Register a tenant; false when it already existed.
    async fn create_tenant(&self, tenant: &str, now: &str) -> Result<bool, StoreError>;
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError>;
    /// Store a token of an existing tenant (`NotFound`-like `Internal` error when the tenant is unknown).
    async fn put_token(&self, rec: &TokenRecord) -> Result<(), StoreError>;
    async fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revoke by public id; false when there was no such token.
    async fn revoke_token(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;
    /// Write down that the token with this hash authenticated a request at `at` (Unix seconds); nothing
    /// when it no longer exists.
    async fn note_token_use(&self, hash: &str, at: i64) -> Result<(), StoreError>;
}

/// Memberships written per transaction: 2 items each, plus the group item, within DynamoDB's 100.
pub const MEMBERS_PER_TRANSACTION: usize = 49;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// The group item exists.
    pub group: bool,
    pub users: std::collections::HashSet<String>,
    pub members: std::collections::HashSet<String>,
}

tokio::task_local! {
    static REQUEST_USAGE: Cell<Usage>;
}

/// What one request cost in DynamoDB: calls, and the capacity units DynamoDB reported consumed
/// (`ReturnConsumedCapacity=TOTAL`, table and indexes together).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub calls: u32,
    pub read_units: f64,
    pub write_units: f64,
}

/// Record one DynamoDB call against the current request (no-op outside [`measure`]).
pub fn record_call(op: &'static str) {
    tracing::debug!(op, "dynamodb call");
    let _ = REQUEST_USAGE.try_with(|c| {
        c.set(Usage {
            calls: c.get().calls + 1,
            ..c.get()
        })
    });
}

/// Record the capacity units a successful call consumed (no-op outside [`measure`]).
pub fn record_capacity(read_units: f64, write_units: f64) {
    let _ = REQUEST_USAGE.try_with(|c| {
        let u = c.get();
        c.set(Usage {
            read_units: u.read_units + read_units,
            write_units: u.write_units + write_units,
            ..u
        })
    });
}

/// Run `fut`, recording the DynamoDB calls it makes and the capacity they consume.
pub async fn measure<F: Future>(fut: F) -> (F::Output, Usage) {
    REQUEST_USAGE
        .scope(Cell::new(Usage::default()), async move {
            let out = fut.await;
            (out, REQUEST_USAGE.with(Cell::get))
        })
        .await
}

/// Run `fut`, counting the DynamoDB calls it makes.
pub async fn count_calls<F: Future>(fut: F) -> (F::Output, u32) {
    let (out, usage) = measure(fut).await;
    (out, usage.calls)
}
