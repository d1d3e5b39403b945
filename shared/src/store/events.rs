//! The change events' part of the store contract: [`EventLogStore`] (the events log's items: its head,
//! an appended batch, a range of orders) and [`DeliveryStore`] (where the two deliverers stand: the table's
//! stream and the stream consumer's checkpoints, the webhook deliverer's positions). The rules — order,
//! idempotence, byte-bounded pages, cursors, retries, when to checkpoint — are the events module's
//! (`crate::events`); these traits only read and write the items, whose keys are in [`super::keys`].
//!
//! This module owns the two traits and the types they exchange; it imports only its parent (`StoreError`).
//! Their one implementation is `dynamo/events.rs`.

use super::StoreError;
use async_trait::async_trait;

/// What an append transaction did ([`EventLogStore::log_append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Every event written, the head moved by their number.
    Written,
    /// Nothing written: the head moved meanwhile, a conflict or a passing failure (read the head again and
    /// retry), and `logged` — indexes into the batch — the events whose id is in the log already (an earlier
    /// delivery): leave them out of the retry.
    NotWritten { logged: Vec<usize> },
}

/// Where a range read of the log goes on ([`LogItems::resume`]); opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogResume(pub(in crate::store) String);

/// One item of a tenant's events log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogItem {
    /// Its order (None: a sort key that is not one, never written by the log).
    pub order: Option<u64>,
    /// The event's id (empty when missing).
    pub id: String,
    /// The event's JSON text, unchecked (None when missing).
    pub json: Option<String>,
    /// When it expires (unix seconds), if it has a TTL.
    pub ttl: Option<u64>,
}

/// What one read of a range of the log returned.
#[derive(Debug, Clone, Default)]
pub struct LogItems {
    pub items: Vec<LogItem>,
    /// More items may follow: read on from here.
    pub resume: Option<LogResume>,
}

/// A tenant's events log: its items in order, its head (the last order given) and the ids logged.
#[async_trait]
pub trait EventLogStore: Send + Sync {
    /// The tenant's head: the last order given, 0 for an empty log (one strongly consistent GetItem).
    async fn log_head(&self, tenant: &str) -> Result<u64, StoreError>;
    /// In one transaction, conditioned on the head still being `head`: move it to `head + events.len()`
    /// and put the events `(id, JSON)` at orders `head + 1 …`, each with its id item (put only if absent),
    /// all expiring at `ttl` (unix seconds). Err only for a failure a retry would not pass.
    async fn log_append(
        &self,
        tenant: &str,
        head: u64,
        events: &[(&str, &str)],
        ttl: u64,
    ) -> Result<Appended, StoreError>;
    /// One strongly consistent Query of the tenant's log: at most `limit` items after order `after`
    /// (from `after` itself when `inclusive`), in order, going on from `resume`.
    async fn log_range(
        &self,
        tenant: &str,
        after: u64,
        inclusive: bool,
        limit: usize,
        resume: Option<LogResume>,
    ) -> Result<LogItems, StoreError>;
}

/// A stream shard's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence number of the last record whose events are in the log (None: none yet).
    pub seq: Option<String>,
    /// The shard was read to its end.
    pub closed: bool,
}

/// A tenant's event parked by the webhook deliverer (refused too often; kept until accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// Its order in the tenant's log.
    pub order: u64,
    pub id: String,
    /// Its type (`user.created`, …).
    pub kind: String,
    /// Refused attempts so far.
    pub attempts: u32,
    pub last_error: String,
    /// When it was parked (RFC 3339).
    pub parked_at: Option<String>,
}

/// A tenant's webhook position: the last delivered order and any parked event (without its JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPosition {
    /// 0 when nothing was delivered yet.
    pub after: u64,
    pub parked: Option<ParkedEvent>,
}

/// Where the deliverers of change events stand: the table's stream and the consumer's checkpoint per shard
/// (no tenant's), and the webhook deliverer's position per tenant.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Give the table its stream (new and old images) and the events log's TTL when it lacks them (a table
    /// created by an older version; on AWS the template declares both). A failure to enable the TTL is
    /// only logged.
    async fn enable_stream(&self) -> Result<(), StoreError>;
    /// The ARN of the table's latest stream (one DescribeTable).
    async fn stream_arn(&self) -> Result<String, StoreError>;
    /// The checkpoint of `shard` (default when none; one strongly consistent GetItem).
    async fn checkpoint(&self, shard: &str) -> Result<Checkpoint, StoreError>;
    /// Write the checkpoint of `shard` (one PutItem).
    async fn save_checkpoint(&self, shard: &str, seq: &str, closed: bool)
        -> Result<(), StoreError>;
    /// Mark `shard` read to its end, keeping its sequence number (one UpdateItem).
    async fn close_checkpoint(&self, shard: &str) -> Result<(), StoreError>;
    /// The tenant's webhook position (one strongly consistent GetItem, without the parked JSON).
    async fn webhook_position(&self, tenant: &str) -> Result<WebhookPosition, StoreError>;
    /// The JSON of the tenant's parked event, if any (one strongly consistent GetItem).
    async fn parked_event_json(&self, tenant: &str) -> Result<Option<String>, StoreError>;
    /// The position after a delivered event, and no parked event (one PutItem).
    async fn save_webhook_position(&self, tenant: &str, after: u64) -> Result<(), StoreError>;
    /// The position `after` with `parked` and its JSON kept (one PutItem).
    async fn park_event(
        &self,
        tenant: &str,
        after: u64,
        parked: &ParkedEvent,
        json: &str,
    ) -> Result<(), StoreError>;
    /// Another refused attempt at the parked event of order `order` (one UpdateItem, conditioned on it
    /// still being parked).
    async fn note_parked_attempt(
        &self,
        tenant: &str,
        order: u64,
        attempts: u32,
        last_error: &str,
    ) -> Result<(), StoreError>;
}
