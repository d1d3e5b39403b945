//! Where the change events' items live, and their one-time move.
//!
//! The change events' items (the events log, its ids and head, the stream consumer's checkpoints, the
//! webhook positions: [`is_events_key`]) live in the events table, a second table without a stream, so
//! that logging an event makes no stream record. Deployments made before that table existed keep them in
//! the main table; [`DynamoStore::move_events`] copies them over once, and the events table's
//! `EVENTS#moved` item records that it did. Until that item exists, every call on these items goes to the
//! main table, as before ([`DynamoStore::events_home`]); once it exists, to the events table.
//!
//! The move, in order (each step can be repeated; a move cut short is finished by the next):
//! 1. a Scan of the main table for the change events' items; the log's items and ids (immutable once
//!    written) are put in the events table in batches, expired ones skipped; the heads, checkpoints and
//!    webhook positions one by one, only where the events table has none (an appender that already moved
//!    on is never set back);
//! 2. the `EVENTS#moved` item (`at`, `copied`); from then on the events table is the home;
//! 3. at least [`CLEAN_AFTER_SECS`] later (a reader that looked before step 2 has long finished), the
//!    old items are deleted from the main table and the item gets `cleaned`.
//!
//! Whoever appends to the log must run the move before its first append (`scim-local` at start, the
//! `events` function at its cold start), so no event is appended to the main table after the copy.
//! Offboarding deletes a tenant's change events in both tables until the old ones are cleaned.
//!
//! Imports the parent module, `table` (batch writes, table creation), the store's contract and its keys.

use super::table::{classify, BATCH};
use super::{build_err, key, num, DynamoStore, Item};
use crate::store::keys::{
    is_events_key, EVENTS_MOVED_PK, GUARD_SK, PK, SK, STREAM_CHECKPOINTS_PK, WEBHOOK_POSITIONS_PK,
};
use crate::store::{record_call, StoreError};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue as AV, PutRequest, WriteRequest};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds between the copy and the deletion of the old items from the main table.
pub const CLEAN_AFTER_SECS: u64 = 3600;

/// What one [`DynamoStore::move_events`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventsMove {
    /// Items copied into the events table by this call.
    pub copied: u64,
    /// Old items deleted from the main table by this call.
    pub cleaned: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The log's items and ids: written once, never changed (so a copy may overwrite its equal).
fn immutable(pk: &str) -> bool {
    pk != STREAM_CHECKPOINTS_PK && pk != WEBHOOK_POSITIONS_PK && !pk.ends_with("#events#head")
}

impl DynamoStore {
    /// Create the table with its GSIs, and the change events' table (keys only, no stream), if they do not
    /// exist, and wait until they are active (local and test use; in AWS the SAM template owns the tables).
    /// When both are new, the events table is marked as holding the change events' items from the start
    /// (nothing to move).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let main_new = self.create_one(&self.table, true).await?;
        if self.events_table == self.table {
            return Ok(());
        }
        let events_new = self.create_one(&self.events_table, false).await?;
        if main_new && events_new {
            self.mark_moved(0, now_secs()).await?;
        }
        Ok(())
    }

    /// The table that holds the change events' items now: the events table once the move is recorded
    /// (remembered by this store and its clones), else the main table. Until then one GetItem per call.
    pub(super) async fn events_home(&self) -> Result<&str, StoreError> {
        if self.events_table == self.table || self.events_moved.load(Ordering::Acquire) {
            return Ok(&self.events_table);
        }
        if self.moved_record().await?.is_some() {
            self.events_moved.store(true, Ordering::Release);
            return Ok(&self.events_table);
        }
        Ok(&self.table)
    }

    /// Move the change events' items from the main table into the events table if that is not done yet,
    /// and delete the old ones once the move is [`CLEAN_AFTER_SECS`] old (see the module's docs).
    pub async fn move_events(&self) -> Result<EventsMove, StoreError> {
        self.move_events_at(now_secs()).await
    }

    /// [`Self::move_events`] as if the time were `now` (unix seconds; tests).
    #[doc(hidden)]
    pub async fn move_events_at(&self, now: u64) -> Result<EventsMove, StoreError> {
        let mut done = EventsMove::default();
        if self.events_table == self.table {
            return Ok(done);
        }
        let Some(rec) = self.moved_record().await? else {
            done.copied = self.copy_events(now).await?;
            self.mark_moved(done.copied, now).await?;
            if done.copied > 0 {
                tracing::info!(
                    copied = done.copied,
                    table = %self.events_table,
                    "moved the change events' items into the events table"
                );
            }
            return Ok(done);
        };
        self.events_moved.store(true, Ordering::Release);
        let at = num(&rec, "at").unwrap_or(0);
        if rec.contains_key("cleaned") || now < at.saturating_add(CLEAN_AFTER_SECS) {
            return Ok(done);
        }
        done.cleaned = self.clean_old_events().await?;
        record_call("UpdateItem");
        self.client
            .update_item()
            .table_name(&self.events_table)
            .set_key(Some(key(EVENTS_MOVED_PK, GUARD_SK)))
            .update_expression("SET cleaned = :now, removed = :n")
            .expression_attribute_values(":now", AV::N(now.to_string()))
            .expression_attribute_values(":n", AV::N(done.cleaned.to_string()))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        Ok(done)
    }

    /// The `EVENTS#moved` item, None when there is none or no events table (the items stay where they are).
    async fn moved_record(&self) -> Result<Option<Item>, StoreError> {
        record_call("GetItem");
        match self
            .client
            .get_item()
            .table_name(&self.events_table)
            .set_key(Some(key(EVENTS_MOVED_PK, GUARD_SK)))
            .consistent_read(true)
            .send()
            .await
        {
            Ok(r) => Ok(r.item.filter(|i| !i.is_empty())),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(classify("GetItem", e)),
        }
    }

    /// Put the `EVENTS#moved` item unless there is one (the first mover's stays).
    async fn mark_moved(&self, copied: u64, now: u64) -> Result<(), StoreError> {
        let mut item = key(EVENTS_MOVED_PK, GUARD_SK);
        item.insert("at".into(), AV::N(now.to_string()));
        item.insert("copied".into(), AV::N(copied.to_string()));
        self.put_if_absent(item).await?;
        self.events_moved.store(true, Ordering::Release);
        Ok(())
    }

    /// Step 1 of the move: the items copied.
    async fn copy_events(&self, now: u64) -> Result<u64, StoreError> {
        let mut copied = 0u64;
        let mut batch: Vec<WriteRequest> = Vec::with_capacity(BATCH);
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = self.scan_events_page(start.take()).await?;
            for item in items {
                if num(&item, "ttl").is_some_and(|t| t <= now) {
                    continue;
                }
                let pk = item
                    .get(PK)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                copied += 1;
                if immutable(&pk) {
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(build_err)?;
                    batch.push(WriteRequest::builder().put_request(put).build());
                    if batch.len() == BATCH {
                        self.batch_write(&self.events_table, std::mem::take(&mut batch))
                            .await?;
                    }
                } else {
                    self.put_if_absent(item).await?;
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        self.batch_write(&self.events_table, batch).await?;
        Ok(copied)
    }

    /// Put `item` in the events table unless an item with its key is there.
    async fn put_if_absent(&self, item: Item) -> Result<(), StoreError> {
        record_call("PutItem");
        match self
            .client
            .put_item()
            .table_name(&self.events_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    /// Step 3 of the move: the old items deleted from the main table.
    async fn clean_old_events(&self) -> Result<u64, StoreError> {
        let mut cleaned = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = self.scan_events_page(start.take()).await?;
            let keys: Vec<Item> = items
                .iter()
                .filter_map(|i| {
                    let (pk, sk) = (i.get(PK)?.as_s().ok()?, i.get(SK)?.as_s().ok()?);
                    Some(key(pk, sk))
                })
                .collect();
            for chunk in keys.chunks(BATCH) {
                self.delete_batch(&self.table, chunk.to_vec()).await?;
                cleaned += chunk.len() as u64;
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(cleaned)
    }

    /// One Scan page of the main table, narrowed to the change events' items (the filter is loose, the
    /// check [`is_events_key`] exact); the key to go on from.
    async fn scan_events_page(
        &self,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        record_call("Scan");
        let r = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(#pk, :e) OR contains(#pk, :ev)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":e", AV::S("EVENTS#".into()))
            .expression_attribute_values(":ev", AV::S("#events".into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify("Scan", e))?;
        let items = r
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| {
                i.get(PK)
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|pk| is_events_key(pk))
            })
            .collect();
        Ok((items, r.last_evaluated_key.filter(|k| !k.is_empty())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::{event_ids_pk, events_head_pk, events_pk};

    #[test]
    fn only_the_logs_items_and_ids_are_copied_without_a_condition() {
        assert!(immutable(&events_pk("acme")));
        assert!(immutable(&event_ids_pk("acme")));
        assert!(!immutable(&events_head_pk("acme")));
        assert!(!immutable(STREAM_CHECKPOINTS_PK));
        assert!(!immutable(WEBHOOK_POSITIONS_PK));
    }
}
