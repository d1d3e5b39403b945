//! Offboarding: `OffboardStore` — a tenant's items removed one bounded batch at a time (a strongly
//! consistent Query page of one partition, then BatchWriteItem deletes of 25 keys, unprocessed keys
//! retried with bounded backoff), and the offboarding record `OFFBOARDED` / `<tenant>#<started>`.
//! Nothing here remembers a position: a batch always reads the first page of what is left, so a run cut
//! short anywhere resumes from the table alone. The events log's partitions and the webhook position are
//! deleted in the events table (`events_table`) and then in the table, where deployments from before the
//! events table kept them (`events_move.rs`); everything else in the table. Imports the parent module
//! and `table`.

use super::table::{classify, failed, record_read, record_write, TxError, TOTAL};
use super::{build_err, key, s, DynamoStore, Item};
use crate::schema::{group_resource_type, user_resource_type, ResourceType};
use crate::store::keys::{self, GUARD_SK, PK, SK};
use crate::store::{
    record_call, OffboardBatch, OffboardPhase, OffboardRecord, OffboardStore, StoreError,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem};

/// Items read per Query page.
pub const PAGE: i32 = 100;
use super::table::BATCH;
/// Groups read per page of the groups phase (each may need its own member pages first).
const GROUP_PAGE: i32 = 25;

// The record's attributes.
const TENANT: &str = "tenant";
const STARTED: &str = "started";
const ACTOR: &str = "actor";
const PHASE: &str = "phase";
const PASS: &str = "pass";
const DIRTY: &str = "dirty";
const DELETED: &str = "deleted";
const NOT_BEFORE: &str = "notBefore";
const FINISHED: &str = "finished";
const TTL: &str = "ttl";
const VER: &str = "ver";

/// Keys to delete, in two waves: `first` (items only reachable through an item of `then`) before `then`.
#[derive(Default)]
struct Doomed {
    first: Vec<Item>,
    then: Vec<Item>,
}

#[async_trait]
impl OffboardStore for DynamoStore {
    async fn offboard_record(
        &self,
        tenant: &str,
        started: &str,
    ) -> Result<Option<OffboardRecord>, StoreError> {
        Ok(self
            .get_item(key(keys::OFFBOARD_PK, &keys::offboard_sk(tenant, started)))
            .await?
            .map(|i| record_of(&i)))
    }

    async fn latest_offboard(&self, tenant: &str) -> Result<Option<OffboardRecord>, StoreError> {
        record_call("Query");
        let r = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::OFFBOARD_PK))
            .expression_attribute_values(":prefix", s(format!("{tenant}#")))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        Ok(r.items.unwrap_or_default().first().map(record_of))
    }

    async fn start_offboard(&self, rec: &OffboardRecord) -> Result<bool, StoreError> {
        record_call("PutItem");
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_of(rec)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match r {
            Ok(out) => {
                record_write(out.consumed_capacity());
                Ok(true)
            }
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    async fn save_offboard(
        &self,
        rec: &OffboardRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        record_call("PutItem");
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_of(rec)))
            .condition_expression("#ver = :ver")
            .expression_attribute_names("#ver", VER)
            .expression_attribute_values(":ver", AV::N(expected_version.to_string()))
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match r {
            Ok(out) => {
                record_write(out.consumed_capacity());
                Ok(true)
            }
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    async fn note_offboard(
        &self,
        tenant: &str,
        started: &str,
        deleted: u64,
    ) -> Result<(), StoreError> {
        record_call("UpdateItem");
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::OFFBOARD_PK,
                &keys::offboard_sk(tenant, started),
            )))
            .update_expression("SET #dirty = :t ADD #deleted :n")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#dirty", DIRTY)
            .expression_attribute_names("#deleted", DELETED)
            .expression_attribute_values(":t", AV::Bool(true))
            .expression_attribute_values(":n", AV::N(deleted.to_string()))
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match r {
            Ok(out) => {
                record_write(out.consumed_capacity());
                Ok(())
            }
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    async fn offboard_batch(
        &self,
        tenant: &str,
        phase: OffboardPhase,
        budget: u32,
    ) -> Result<OffboardBatch, StoreError> {
        let budget = budget.max(2);
        // Keys one batch may delete: what the budget's delete requests hold after its Query.
        let room = (budget as usize - 1) * BATCH;
        let mut out = OffboardBatch::default();
        // A partition of the main table, or of the change events' table.
        let plain = |pk: String| Some((self.table.as_str(), pk));
        let events = |pk: String| Some((self.events_table.as_str(), pk));
        let partition = match phase {
            OffboardPhase::Users => {
                return self
                    .resources_batch(tenant, user_resource_type(), room, out)
                    .await
            }
            OffboardPhase::Groups => return self.groups_batch(tenant, budget, out).await,
            OffboardPhase::Tokens => return self.tokens_batch(tenant, room, out).await,
            OffboardPhase::Webhook => {
                for table in self.events_tables() {
                    out.calls += 1;
                    out.deleted += self
                        .delete_one(table, key(keys::WEBHOOK_POSITIONS_PK, tenant))
                        .await? as u64;
                }
                out.exhausted = true;
                return Ok(out);
            }
            OffboardPhase::Counters => plain(keys::counter_pk(tenant)),
            OffboardPhase::OAuth => plain(keys::oauth_pk(tenant)),
            OffboardPhase::Events => events(keys::events_pk(tenant)),
            OffboardPhase::EventIds => events(keys::event_ids_pk(tenant)),
            OffboardPhase::EventsHead => events(keys::events_head_pk(tenant)),
            OffboardPhase::Audit => plain(keys::audit_pk(tenant)),
            OffboardPhase::Waiting | OffboardPhase::Finish | OffboardPhase::Done => None,
        };
        let Some((table, pk)) = partition else {
            out.exhausted = true;
            return Ok(out);
        };
        let limit = room.min(PAGE as usize) as i32;
        let (mut items, mut more) = self.page(table, &pk, limit).await?;
        out.calls += 1;
        let mut table = table;
        if items.is_empty() && !more && table != self.table {
            // The change events' old home, until they are moved and the old items deleted (events_move.rs).
            (items, more) = self.page(&self.table, &pk, limit).await?;
            out.calls += 1;
            table = &self.table;
        }
        let doomed = Doomed {
            first: Vec::new(),
            then: items.iter().map(key_of).collect(),
        };
        self.delete_all(table, doomed, &mut out).await?;
        // A partition of the events table is done once the next batch finds it empty and the table's too.
        out.exhausted = !more && table == self.table;
        Ok(out)
    }

    async fn finish_offboard(&self, rec: &OffboardRecord) -> Result<(), StoreError> {
        let register = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::TENANTS_PK, &rec.tenant)))
            .condition_expression("#st = :deleting AND #up = :started")
            .expression_attribute_names("#st", "state")
            .expression_attribute_names("#up", "updated")
            .expression_attribute_values(":deleting", s("deleting"))
            .expression_attribute_values(":started", s(&rec.started))
            .build()
            .map_err(build_err)?;
        let receipt = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item_of(rec)))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().delete(register).build(),
            TransactWriteItem::builder().put(receipt).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // The register item is gone already (a runner stopped between the two) or is another
            // deletion's: the receipt alone.
            Err(TxError::Cancelled(r)) if failed(&r, 0) => {
                record_call("PutItem");
                let out = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item_of(rec)))
                    .return_consumed_capacity(TOTAL)
                    .send()
                    .await
                    .map_err(|e| classify("PutItem", e))?;
                record_write(out.consumed_capacity());
                Ok(())
            }
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "offboarding not finished: {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }
}

impl DynamoStore {
    /// Where a tenant's change events may be: the events table, and the main table they were moved from
    /// (its old items are deleted an hour after the move: until then both).
    fn events_tables(&self) -> Vec<&str> {
        let mut t = vec![self.events_table.as_str()];
        if self.table != self.events_table {
            t.push(&self.table);
        }
        t
    }

    /// One strongly consistent Query page of `pk` in `table` (keys and the attributes the phases read);
    /// whether more may follow.
    async fn page(
        &self,
        table: &str,
        pk: &str,
        limit: i32,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        record_call("Query");
        let r = self
            .partition_query(pk, None)
            .table_name(table)
            .consistent_read(true)
            .limit(limit.max(1))
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        let more = r.last_evaluated_key.is_some_and(|k| !k.is_empty());
        Ok((r.items.unwrap_or_default(), more))
    }

    /// Users: each user's uniqueness guard (named by its `gsi1pk`), then the users.
    async fn resources_batch(
        &self,
        tenant: &str,
        rt: &ResourceType,
        room: usize,
        mut out: OffboardBatch,
    ) -> Result<OffboardBatch, StoreError> {
        let limit = (room / 2).clamp(1, PAGE as usize) as i32;
        let (items, more) = self
            .page(&self.table, &keys::resource_pk(tenant, rt), limit)
            .await?;
        out.calls += 1;
        let mut doomed = Doomed::default();
        for item in &items {
            if let Some(g) = guard_of(tenant, rt, item) {
                doomed.first.push(g);
            }
            doomed.then.push(key_of(item));
        }
        self.delete_all(&self.table, doomed, &mut out).await?;
        out.exhausted = !more;
        Ok(out)
    }

    /// Groups: for each group of a page, its member items (page by page, within the budget), then the
    /// group's guard and the group. A group whose members are not all gone yet stays for the next batch.
    async fn groups_batch(
        &self,
        tenant: &str,
        budget: u32,
        mut out: OffboardBatch,
    ) -> Result<OffboardBatch, StoreError> {
        let rt = group_resource_type();
        let (groups, more) = self
            .page(&self.table, &keys::resource_pk(tenant, rt), GROUP_PAGE)
            .await?;
        out.calls += 1;
        let mut doomed = Doomed::default();
        let mut cut = false;
        'groups: for g in &groups {
            let Some(id) = g.get(SK).and_then(|v| v.as_s().ok()) else {
                continue;
            };
            let pk = keys::members_pk(tenant, id);
            loop {
                // One call for this Query, and one left for the groups' own delete.
                if out.calls + 2 > budget {
                    cut = true;
                    break 'groups;
                }
                let room = ((budget - out.calls - 1) as usize * BATCH).min(PAGE as usize);
                let (members, more_members) = self.page(&self.table, &pk, room as i32).await?;
                out.calls += 1;
                let batch = Doomed {
                    first: Vec::new(),
                    then: members.iter().map(key_of).collect(),
                };
                self.delete_all(&self.table, batch, &mut out).await?;
                if !more_members {
                    break;
                }
            }
            if let Some(guard) = guard_of(tenant, rt, g) {
                doomed.first.push(guard);
            }
            doomed.then.push(key_of(g));
        }
        self.delete_all(&self.table, doomed, &mut out).await?;
        out.exhausted = !more && !cut;
        Ok(out)
    }

    /// Tokens: `TOKEN#<hash>` (named by the tenant's token item's `hash`), then the tenant's token items.
    async fn tokens_batch(
        &self,
        tenant: &str,
        room: usize,
        mut out: OffboardBatch,
    ) -> Result<OffboardBatch, StoreError> {
        let limit = (room / 2).clamp(1, PAGE as usize) as i32;
        let (items, more) = self
            .page(&self.table, &keys::tenant_tokens_pk(tenant), limit)
            .await?;
        out.calls += 1;
        let mut doomed = Doomed::default();
        for item in &items {
            if let Some(h) = item.get("hash").and_then(|v| v.as_s().ok()) {
                doomed.first.push(key(&keys::token_pk(h), GUARD_SK));
            }
            doomed.then.push(key_of(item));
        }
        self.delete_all(&self.table, doomed, &mut out).await?;
        out.exhausted = !more;
        Ok(out)
    }

    /// One DeleteItem in `table`; whether the item was there.
    async fn delete_one(&self, table: &str, k: Item) -> Result<bool, StoreError> {
        record_call("DeleteItem");
        let r = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(k))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("DeleteItem", e))?;
        record_write(r.consumed_capacity());
        Ok(r.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn delete_all(
        &self,
        table: &str,
        d: Doomed,
        out: &mut OffboardBatch,
    ) -> Result<(), StoreError> {
        for wave in [d.first, d.then] {
            for chunk in wave.chunks(BATCH) {
                out.calls += self.delete_batch(table, chunk.to_vec()).await?;
                out.deleted += chunk.len() as u64;
            }
        }
        Ok(())
    }
}

fn is_condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    e.code() == Some("ConditionalCheckFailedException")
}

fn key_of(item: &Item) -> Item {
    let mut k = Item::new();
    for a in [PK, SK] {
        if let Some(v) = item.get(a) {
            k.insert(a.into(), v.clone());
        }
    }
    k
}

/// The uniqueness guard of a resource item, from its `gsi1pk` (`T#<tenant>#<Type>#<lower(unique)>`, the
/// same value the guard's key is made of: `keys::guard_pk`).
fn guard_of(tenant: &str, rt: &ResourceType, item: &Item) -> Option<Item> {
    let g = item.get(keys::GSI1PK)?.as_s().ok()?;
    let unique = g.strip_prefix(&format!("T#{tenant}#{}#", rt.name))?;
    Some(key(&keys::guard_pk(tenant, rt, unique), GUARD_SK))
}

fn item_of(r: &OffboardRecord) -> Item {
    let mut item = key(keys::OFFBOARD_PK, &keys::offboard_sk(&r.tenant, &r.started));
    item.insert(TENANT.into(), s(&r.tenant));
    item.insert(STARTED.into(), s(&r.started));
    if !r.actor.is_empty() {
        item.insert(ACTOR.into(), s(&r.actor));
    }
    item.insert(PHASE.into(), s(r.phase.as_str()));
    item.insert(PASS.into(), AV::N(r.pass.to_string()));
    item.insert(DIRTY.into(), AV::Bool(r.dirty));
    item.insert(DELETED.into(), AV::N(r.deleted.to_string()));
    item.insert(NOT_BEFORE.into(), AV::N(r.not_before_ms.to_string()));
    if let Some(f) = &r.finished {
        item.insert(FINISHED.into(), s(f));
    }
    if r.expires > 0 {
        item.insert(TTL.into(), AV::N(r.expires.to_string()));
    }
    item.insert(VER.into(), AV::N(r.version.to_string()));
    item
}

fn record_of(item: &Item) -> OffboardRecord {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
    };
    OffboardRecord {
        tenant: text(TENANT).unwrap_or_default(),
        started: text(STARTED).unwrap_or_default(),
        actor: text(ACTOR).unwrap_or_default(),
        phase: text(PHASE)
            .and_then(|p| OffboardPhase::parse(&p))
            .unwrap_or(OffboardPhase::Waiting),
        pass: num(PASS).max(1) as u32,
        dirty: item
            .get(DIRTY)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        deleted: num(DELETED).max(0) as u64,
        not_before_ms: num(NOT_BEFORE),
        finished: text(FINISHED),
        expires: num(TTL),
        version: num(VER).max(0) as u64,
    }
}
