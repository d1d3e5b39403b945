//! The events log: each tenant's events as items of its own partition, readable in order from a cursor
//! (the Events API, the webhook deliverer), kept for the retention (a TTL on every item).
//!
//! Keys (every one starts with the tenant, like the rest of the table):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | event | `T#<tenant>#events` | order, 20 digits | `id`, `ev` (the event's JSON), `ttl` |
//! | event id (deduplication) | `T#<tenant>#events#ids` | event id | `o` (its order), `ttl` |
//! | head | `T#<tenant>#events#head` | `#` | `n` (the last order given) |
//!
//! Order: a batch of events is written in one transaction that moves the tenant's head from `n` to
//! `n + k` (conditioned on `n`) and puts the events at orders `n+1 … n+k`, so the order of the log is the
//! order of commit, without gaps a reader could pass before they fill: a reader that saw order `m`
//! has seen every order below it. Idempotence: each event's id item is put with `attribute_not_exists`
//! in the same transaction; an event already logged (a retry after a crash) cancels it, is dropped,
//! and the rest is written — the same event is never logged twice.
//!
//! The items are read and written through [`EventLogStore`] (`store/events.rs`; keys in `store/keys.rs`):
//! this module decides what to write and read, never how.
//!
//! Imports `store` (its errors and [`EventLogStore`]), `config` (how a response is priced) and [`super::event`].

use super::cursor::{fingerprint, Position};
use super::event::Event;
use super::owners::Owners;
use crate::backoff::Backoff;
use crate::store::dynamo::DynamoStore;
use crate::store::{Appended, EventLogStore, LogResume, StoreError};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Between attempts of an append that lost the race for the tenant's head (10 ms … 640 ms).
const APPEND_BACKOFF: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(640));
/// Events per transaction: two items each, plus the head, within DynamoDB's 100.
const EVENTS_PER_TRANSACTION: usize = 49;
/// A transaction carries at most 4 MB; stay well under.
const TRANSACTION_BYTES: usize = 3_000_000;
/// An event's JSON beyond this is logged without its `resource` (items hold at most 400 KB).
pub const MAX_EVENT_BYTES: usize = 350_000;
/// Most events one page of the Events API returns.
pub const MAX_PAGE: usize = 1000;
/// Most bytes of event JSON one page carries, counted as a Lambda response carries them
/// ([`crate::config::lambda_body_len`]: a Lambda answer over 6 MB fails; this leaves room for the page's
/// own fields). One event is at most [`MAX_EVENT_BYTES`], so every
/// page holds at least one.
pub const PAGE_BYTES: usize = 3_000_000;
/// Items the first Query of a page asks for, before it knows how large they are (at most ~5.6 MB).
const FIRST_QUERY_ITEMS: usize = 16;
/// One page of a tenant's events.
#[derive(Debug, Clone)]
pub struct Page {
    /// (order, event JSON), in order.
    pub events: Vec<(u64, Value)>,
    /// The order after which the next page starts (the last event's, or the `after` given).
    pub last: u64,
    /// True when more events follow this page now.
    pub more: bool,
}

/// Where a page of the Events API starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest event kept (no cursor).
    Oldest,
    /// After a cursor's position.
    After(Position),
}

/// One logged event as stored: its order, id and JSON text (never parsed on the way out).
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub order: u64,
    pub id: String,
    pub json: String,
}

/// Whether a reader continuing from a cursor misses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Every event after the cursor is in the page or after it (or the read started from the oldest kept).
    Whole,
    /// Events after the cursor expired (older than the retention): the reader has missed changes.
    Expired,
    /// The cursor is past the log's last event: not a position of this log.
    BeyondHead,
    /// The event at the cursor's order is not the one it names: a cursor of another log.
    OtherLog,
}

/// One page of the Events API (no events unless `continuity` is `Whole`).
#[derive(Debug, Clone)]
pub struct RawPage {
    pub events: Vec<RawEvent>,
    /// Where the next page starts: after the last event returned, or the start given.
    pub next: Position,
    /// More events follow now.
    pub more: bool,
    /// The page stopped at the byte budget before `limit` events.
    pub size_limited: bool,
    pub continuity: Continuity,
}

#[derive(Clone)]
pub struct EventLog {
    store: Arc<dyn EventLogStore>,
    table: String,
    retention: Duration,
    /// Whose events are still wanted (not a tenant being deleted or offboarded): [`super::owners`].
    owners: Arc<Owners>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("table", &self.table)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl EventLog {
    pub fn new(store: &DynamoStore, retention: Duration) -> Self {
        EventLog {
            store: Arc::new(store.clone()),
            table: store.table().to_string(),
            retention,
            owners: Arc::new(Owners::new(store)),
        }
    }

    /// The table the log is in (a cursor is bound to it).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// How long an event stays readable.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Append `events` (any tenants; each tenant's in the order given), each exactly once — except the
    /// events of a tenant being deleted or offboarded ([`super::owners`]: one verdict per tenant per batch
    /// at most, cached), which are dropped.
    pub async fn append(&self, events: &[Event]) -> Result<(), StoreError> {
        let mut by_tenant: Vec<(&str, Vec<&Event>)> = Vec::new();
        for e in events {
            match by_tenant.iter_mut().find(|(t, _)| *t == e.tenant) {
                Some((_, v)) => v.push(e),
                None => by_tenant.push((&e.tenant, vec![e])),
            }
        }
        for (tenant, evs) in by_tenant {
            let fate = self.owners.fate(tenant).await?;
            let n = evs.len();
            let evs: Vec<&Event> = evs.into_iter().filter(|e| fate.wants(&e.time)).collect();
            if evs.len() < n {
                tracing::info!(
                    tenant,
                    dropped = n - evs.len(),
                    fate = ?fate,
                    "change events of an offboarded tenant not logged"
                );
            }
            let encoded: Vec<(String, String)> =
                evs.into_iter().map(|e| (e.id.clone(), encode(e))).collect();
            let mut rest = &encoded[..];
            while !rest.is_empty() {
                let mut n = 0;
                let mut bytes = 0;
                while n < rest.len()
                    && n < EVENTS_PER_TRANSACTION
                    && (n == 0 || bytes + rest[n].1.len() <= TRANSACTION_BYTES)
                {
                    bytes += rest[n].1.len();
                    n += 1;
                }
                self.write_chunk(tenant, &rest[..n]).await?;
                rest = &rest[n..];
            }
        }
        Ok(())
    }

    async fn write_chunk(
        &self,
        tenant: &str,
        chunk: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut pending: Vec<&(String, String)> = chunk.iter().collect();
        let ttl = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + self.retention)
            .as_secs();
        for attempt in 0..64u32 {
            if pending.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                APPEND_BACKOFF.wait(attempt).await;
            }
            let head = self.store.log_head(tenant).await?;
            let batch: Vec<(&str, &str)> = pending
                .iter()
                .map(|(id, json)| (id.as_str(), json.as_str()))
                .collect();
            match self.store.log_append(tenant, head, &batch, ttl).await? {
                Appended::Written => return Ok(()),
                Appended::NotWritten { logged } => {
                    if !logged.is_empty() {
                        tracing::debug!(tenant, skipped = logged.len(), "events already logged");
                        let mut i = 0;
                        pending.retain(|_| {
                            let keep = !logged.contains(&i);
                            i += 1;
                            keep
                        });
                    }
                    // Otherwise the head moved (another writer), a conflict or a passing failure: read
                    // it again.
                }
            }
        }
        Err(StoreError::Contention)
    }

    /// Up to `limit` events of `tenant` after order `after` (0: from the oldest kept), in order, at most
    /// [`PAGE_BYTES`] of them (the webhook deliverer's read: no cursor checks).
    pub async fn read(&self, tenant: &str, after: u64, limit: usize) -> Result<Page, StoreError> {
        let scan = self.scan(tenant, after, false, limit, PAGE_BYTES).await?;
        let mut events = Vec::with_capacity(scan.events.len());
        for e in scan.events {
            if let Ok(v) = serde_json::from_str::<Value>(&e.json) {
                events.push((e.order, v));
            }
        }
        let last = events.last().map_or(after, |(o, _)| *o);
        Ok(Page {
            events,
            last,
            more: scan.more,
        })
    }

    /// One page of the Events API: up to `limit` events and at most `max_bytes` of event JSON, after
    /// `start` — checking, for a cursor, that it is a position of this log that the reader can continue
    /// from ([`Continuity`]). A few calls: a strongly consistent Query per ~`max_bytes` read, and a
    /// GetItem of the head only when the page is empty and the cursor's own event is not found.
    pub async fn read_page(
        &self,
        tenant: &str,
        start: Start,
        limit: usize,
        max_bytes: usize,
    ) -> Result<RawPage, StoreError> {
        let (after, anchor) = match start {
            Start::Oldest => (0, None),
            Start::After(p) => (p.order, Some(p)),
        };
        for attempt in 0..2 {
            let scan = self
                .scan(tenant, after, anchor.is_some(), limit, max_bytes)
                .await?;
            let mut page = RawPage {
                next: Position {
                    order: after,
                    id_fp: anchor.and_then(|p| p.id_fp),
                },
                events: Vec::new(),
                more: scan.more,
                size_limited: scan.size_limited,
                continuity: Continuity::Whole,
            };
            if let Some(a) = anchor {
                if let (Some(fp), Some(id)) = (a.id_fp, &scan.anchor_id) {
                    if fingerprint(id) != fp {
                        page.continuity = Continuity::OtherLog;
                        return Ok(page);
                    }
                }
                if scan.gap {
                    page.continuity = Continuity::Expired;
                    return Ok(page);
                }
            }
            if let Some(last) = scan.events.last() {
                page.next = Position::after(last.order, Some(&last.id));
                page.events = scan.events;
                return Ok(page);
            }
            if scan.anchor_id.is_some() {
                return Ok(page); // caught up: the cursor's own event is the last one
            }
            // Nothing after the start, and the start's own event not found: where is the head?
            let head = self.store.log_head(tenant).await?;
            if after > head {
                page.continuity = Continuity::BeyondHead;
                return Ok(page);
            }
            if head == after {
                return Ok(page);
            }
            // Events up to `head` are committed (the head moves with them): read once more, and if they
            // are still not there, they expired.
            if attempt == 1 {
                match anchor {
                    Some(_) => page.continuity = Continuity::Expired,
                    None => {
                        page.next = Position {
                            order: head,
                            id_fp: None,
                        }
                    }
                }
                return Ok(page);
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The events after order `after`, in order, up to `limit` and `max_bytes` of JSON (the first always
    /// fits). With `anchored`, the event at `after` itself is read too (its id, for the cursor's check)
    /// and a missing order after it is a gap. Each Query asks for about as many items as the bytes left
    /// can hold (by the largest item seen), so the server holds little more than the page.
    async fn scan(
        &self,
        tenant: &str,
        after: u64,
        anchored: bool,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Scan, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut s = Scan::default();
        let mut start: Option<LogResume> = None;
        let (mut bytes, mut largest, mut expect) = (0usize, 0usize, after + 1);
        let inclusive = anchored && after > 0;
        loop {
            let wanted =
                limit + 1 - s.events.len() + usize::from(anchored && s.anchor_id.is_none());
            let fits = max_bytes
                .saturating_sub(bytes)
                .checked_div(largest)
                .map_or(FIRST_QUERY_ITEMS, |n| n + 1);
            let r = self
                .store
                .log_range(
                    tenant,
                    after,
                    inclusive,
                    wanted.min(fits).clamp(1, MAX_PAGE + 2),
                    start.take(),
                )
                .await?;
            let last_key = r.resume;
            for item in r.items {
                let (order, ttl, id) = (item.order, item.ttl, item.id);
                let json = item
                    .json
                    .filter(|j| serde_json::from_str::<serde::de::IgnoredAny>(j).is_ok());
                let expired = ttl.is_some_and(|t| t <= now);
                let Some(order) = order else { continue };
                if anchored && order == after && after > 0 {
                    s.anchor_id = Some(id);
                    continue;
                }
                if anchored && order != expect {
                    s.gap = true;
                }
                expect = order + 1;
                let Some(json) = json else { continue };
                if expired {
                    s.gap |= anchored;
                    continue;
                }
                // Priced as the answer travels in a Lambda response (each `"` and `\` escaped once more).
                let size = crate::config::lambda_body_len(&json) + 1;
                largest = largest.max(size);
                if s.events.len() == limit {
                    s.more = true;
                    break;
                }
                if !s.events.is_empty() && bytes + size > max_bytes {
                    s.more = true;
                    s.size_limited = true;
                    break;
                }
                bytes += size;
                s.events.push(RawEvent { order, id, json });
            }
            match last_key {
                Some(k) if !s.more => start = Some(k),
                _ => break,
            }
        }
        Ok(s)
    }
}

/// What one scan of the log found.
#[derive(Default)]
struct Scan {
    events: Vec<RawEvent>,
    more: bool,
    size_limited: bool,
    /// The id of the event at the start (anchored scans).
    anchor_id: Option<String>,
    /// An order after the start is missing or expired (anchored scans).
    gap: bool,
}

/// An event's JSON for the log: whole, or without its resource when too large for an item.
fn encode(e: &Event) -> String {
    let json = serde_json::to_string(e).unwrap_or_default();
    if json.len() <= MAX_EVENT_BYTES {
        return json;
    }
    let mut small = e.clone();
    small.resource = None;
    small.resource_omitted = Some(true);
    serde_json::to_string(&small).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_event_is_logged_without_its_resource() {
        let big = "x".repeat(MAX_EVENT_BYTES);
        let e = Event {
            id: "1-0".into(),
            kind: "user.created".into(),
            tenant: "t".into(),
            time: "2026-12-02T10:00:00Z".into(),
            resource_type: "User".into(),
            resource_id: "u".into(),
            external_id: None,
            user_name: Some("u".into()),
            display_name: None,
            changed_attributes: None,
            member: None,
            resource: Some(serde_json::json!({"nickName": big})),
            resource_omitted: None,
        };
        let v: Value = serde_json::from_str(&encode(&e)).unwrap();
        assert!(v.get("resource").is_none());
        assert_eq!(v["resourceOmitted"], true);
        assert_eq!(v["userName"], "u");
    }
}
