//! Offboarding's store contract ([`OffboardStore`], a part of every `TenantStore`): the removal of every
//! item a tenant owns in bounded batches, and the offboarding record that says how far it got. The rules
//! (when deleting may begin, when it is done) are in `crate::manage::offboard`; this is plain data and
//! calls. Imports only its parent (`StoreError`).
//!
//! **The record** is one item `OFFBOARDED` / `<tenant>#<started>` (`keys::offboard_pk`,
//! `keys::offboard_sk`), outside the tenant's prefix: while the deletion runs it holds the progress (phase,
//! pass, whether the pass found anything, items deleted so far); once done it is the deletion receipt (who,
//! when started, when finished, items removed) and expires with the audit retention. `started` is the
//! register item's `updated` when it was set to `deleting`, so the record is found from the register alone.

use super::StoreError;
use async_trait::async_trait;

/// The parts of a tenant, in the order one pass removes them. Dependent items go before the item that
/// leads to them (a user's guard before the user, a group's members before the group, `TOKEN#<hash>`
/// before the tenant's token item), so a batch cut short leaves nothing unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffboardPhase {
    /// Deleting has not begun: the tenant gates of other processes may not have seen `deleting` yet.
    Waiting,
    Users,
    Groups,
    Counters,
    Tokens,
    OAuth,
    Events,
    EventIds,
    EventsHead,
    Webhook,
    Audit,
    /// The pass is over: done if it found nothing, else another pass.
    Finish,
    /// The register item is gone; the record is the receipt.
    Done,
}

impl OffboardPhase {
    pub const ALL: [OffboardPhase; 13] = [
        OffboardPhase::Waiting,
        OffboardPhase::Users,
        OffboardPhase::Groups,
        OffboardPhase::Counters,
        OffboardPhase::Tokens,
        OffboardPhase::OAuth,
        OffboardPhase::Events,
        OffboardPhase::EventIds,
        OffboardPhase::EventsHead,
        OffboardPhase::Webhook,
        OffboardPhase::Audit,
        OffboardPhase::Finish,
        OffboardPhase::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OffboardPhase::Waiting => "waiting",
            OffboardPhase::Users => "users",
            OffboardPhase::Groups => "groups",
            OffboardPhase::Counters => "counters",
            OffboardPhase::Tokens => "tokens",
            OffboardPhase::OAuth => "oauth",
            OffboardPhase::Events => "events",
            OffboardPhase::EventIds => "eventIds",
            OffboardPhase::EventsHead => "eventsHead",
            OffboardPhase::Webhook => "webhook",
            OffboardPhase::Audit => "audit",
            OffboardPhase::Finish => "finish",
            OffboardPhase::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<OffboardPhase> {
        OffboardPhase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The phase after this one in a pass (`Finish` and `Done` stay).
    pub fn next(self) -> OffboardPhase {
        match self {
            OffboardPhase::Finish | OffboardPhase::Done => self,
            p => {
                let i = OffboardPhase::ALL.iter().position(|q| *q == p).unwrap_or(0);
                OffboardPhase::ALL[i + 1]
            }
        }
    }
}

/// The offboarding record: progress while deleting, the receipt once done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffboardRecord {
    pub tenant: String,
    /// RFC 3339: when the tenant was set to `deleting` (the register item's `updated` then).
    pub started: String,
    /// Who asked for the deletion (the `tenant.delete` audit entry's actor), or empty.
    pub actor: String,
    pub phase: OffboardPhase,
    /// 1 for the first pass over the tenant's partitions; a pass that found anything is followed by another.
    pub pass: u32,
    /// This pass found (and deleted) something.
    pub dirty: bool,
    /// Items deleted so far (keys sent in delete requests).
    pub deleted: u64,
    /// Unix milliseconds before which the current pass may not delete anything (the wait for the gates of
    /// other processes, and between passes for late writes and the stream's events).
    pub not_before_ms: i64,
    /// RFC 3339, once done.
    pub finished: Option<String>,
    /// Unix seconds after which the receipt may be dropped (the table's TTL), once done; else 0.
    pub expires: i64,
    /// Moves by one at every save; a save is conditioned on the version read.
    pub version: u64,
}

/// What one batch of a phase did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffboardBatch {
    /// Items deleted (keys sent in BatchWriteItem deletes, or the DeleteItem that found its item).
    pub deleted: u64,
    /// DynamoDB calls made.
    pub calls: u32,
    /// The phase has nothing left: a Query that found nothing more.
    pub exhausted: bool,
}

#[async_trait]
pub trait OffboardStore: Send + Sync {
    /// The record of the deletion that began at `started` (one strongly consistent GetItem).
    async fn offboard_record(
        &self,
        tenant: &str,
        started: &str,
    ) -> Result<Option<OffboardRecord>, StoreError>;
    /// The newest record of `tenant`'s deletions (one Query, newest first, limit 1).
    async fn latest_offboard(&self, tenant: &str) -> Result<Option<OffboardRecord>, StoreError>;
    /// Write a new record; false when one with its key exists already.
    async fn start_offboard(&self, rec: &OffboardRecord) -> Result<bool, StoreError>;
    /// Replace the record by `rec` (version `expected_version + 1`) if its version is still
    /// `expected_version`; false when another runner saved first.
    async fn save_offboard(
        &self,
        rec: &OffboardRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError>;
    /// Add `deleted` to the record's count and mark its pass as having found something, whatever its
    /// version (for a runner whose save lost to another's).
    async fn note_offboard(
        &self,
        tenant: &str,
        started: &str,
        deleted: u64,
    ) -> Result<(), StoreError>;
    /// Delete one batch of `phase`'s items of `tenant`, with at most about `budget` calls (at least one
    /// Query and one delete request): one Query page, then BatchWriteItem deletes of what it found.
    async fn offboard_batch(
        &self,
        tenant: &str,
        phase: OffboardPhase,
        budget: u32,
    ) -> Result<OffboardBatch, StoreError>;
    /// The end: in one transaction, delete the register item (if it is still `deleting` since
    /// `rec.started`) and write `rec` (done) as the receipt.
    async fn finish_offboard(&self, rec: &OffboardRecord) -> Result<(), StoreError>;
}
