//! The tenant register and the audit trail: `TenantStore`. A tenant is one item `TENANTS` / `<id>`
//! (`keys::TENANTS_PK`), changed only by conditional writes on its version `ver`; its audit entries are
//! items `T#<tenant>#audit` / `<time>#<nonce>` with a TTL, written inside the transaction of the action
//! they record ([`audit_put`], added by `table::transact`). Imports the parent module and `table`.

use super::table::{classify, failed, put, record_read, TxError, TOTAL};
use super::{build_err, key, s, DynamoStore, Item};
use crate::store::keys::{self, PK, SK};
use crate::store::{
    record_call, AuditEntry, StoreError, TenantPage, TenantRecord, TenantState, TenantStore,
    TenantWrite,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::TransactWriteItem;

/// The register item's attributes.
const NAME: &str = "name";
const META: &str = "meta";
const STATE: &str = "state";
const VER: &str = "ver";
const CREATED: &str = "created";
const UPDATED: &str = "updated";

#[async_trait]
impl TenantStore for DynamoStore {
    async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(self
            .get_item(key(keys::TENANTS_PK, id))
            .await?
            .map(|i| record_of(&i, id)))
    }

    async fn tenant_state(&self, id: &str) -> Result<Option<TenantState>, StoreError> {
        record_call("GetItem");
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::TENANTS_PK, id)))
            .projection_expression("#st")
            .expression_attribute_names("#st", STATE)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        record_read(r.consumed_capacity());
        Ok(r.item.map(|i| state_of(&i)))
    }

    async fn register_tenant(&self, rec: &TenantRecord) -> Result<bool, StoreError> {
        let item = item_of(rec);
        match self
            .transact(vec![put(
                &self.table,
                item,
                "attribute_not_exists(#pk)",
                None,
            )?])
            .await
        {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Ok(false),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "tenant not registered: {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn update_tenant(
        &self,
        rec: &TenantRecord,
        expected_version: u64,
    ) -> Result<TenantWrite, StoreError> {
        // A register item written before versions (by `create_tenant`) has no `ver`: it reads as 0.
        let cond = if expected_version == 0 {
            "attribute_exists(#pk) AND attribute_not_exists(#ver)"
        } else {
            "#ver = :ver"
        };
        let mut b = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item_of(rec)))
            .condition_expression(cond)
            .expression_attribute_names("#ver", VER);
        if expected_version == 0 {
            b = b.expression_attribute_names("#pk", PK);
        } else {
            b = b.expression_attribute_values(":ver", AV::N(expected_version.to_string()));
        }
        let item = TransactWriteItem::builder()
            .put(b.build().map_err(build_err)?)
            .build();
        match self.transact(vec![item]).await {
            Ok(()) => Ok(TenantWrite::Written),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => {
                // Missing or changed: one read tells which.
                Ok(match self.tenant(&rec.id).await? {
                    None => TenantWrite::Missing,
                    Some(_) => TenantWrite::Changed,
                })
            }
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("tenant not updated: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn tenant_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TenantPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let start = after.map(|a| key(keys::TENANTS_PK, a));
        record_call("Query");
        let r = self
            .partition_query(keys::TENANTS_PK, start)
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        let tenants: Vec<TenantRecord> = r
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| {
                let id = i.get(SK)?.as_s().ok()?;
                Some(record_of(i, id))
            })
            .collect();
        let more = r.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let next_after = if more {
            tenants.last().map(|t| t.id.clone())
        } else {
            None
        };
        Ok(TenantPage {
            tenants,
            next_after,
        })
    }

    async fn audit_entries(
        &self,
        tenant: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = limit.clamp(1, 1000);
        record_call("Query");
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(keys::audit_pk(tenant)))
            .scan_index_forward(false)
            .limit(limit as i32)
            .return_consumed_capacity(TOTAL);
        q = match before {
            Some(b) => q
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":before", s(b)),
            None => q.key_condition_expression("#pk = :pk"),
        };
        let r = q.send().await.map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        Ok(r.items
            .unwrap_or_default()
            .iter()
            .map(|i| audit_of(i, tenant))
            .collect())
    }
}

/// The audit entry as the transaction item that writes it (a new item: its key is never reused).
pub(super) fn audit_put(table: &str, e: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
    let mut item = key(&keys::audit_pk(&e.tenant), &keys::audit_sk(&e.at, &e.nonce));
    item.insert("at".into(), s(&e.at));
    item.insert("actor".into(), s(&e.actor));
    item.insert("action".into(), s(&e.action));
    if !e.target.is_empty() {
        item.insert("target".into(), s(&e.target));
    }
    item.insert("ttl".into(), AV::N(e.expires.to_string()));
    put(table, item, "attribute_not_exists(#pk)", None)
}

fn item_of(rec: &TenantRecord) -> Item {
    let mut item = key(keys::TENANTS_PK, &rec.id);
    item.insert(NAME.into(), s(&rec.display_name));
    item.insert(META.into(), s(&rec.metadata));
    item.insert(STATE.into(), s(rec.state.as_str()));
    item.insert(VER.into(), AV::N(rec.version.to_string()));
    item.insert(CREATED.into(), s(&rec.created));
    item.insert(UPDATED.into(), s(&rec.updated));
    item
}

fn text(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn state_of(item: &Item) -> TenantState {
    text(item, STATE)
        .and_then(|s| TenantState::parse(&s))
        .unwrap_or(TenantState::Active)
}

fn record_of(item: &Item, id: &str) -> TenantRecord {
    let created = text(item, CREATED).unwrap_or_default();
    TenantRecord {
        id: id.to_string(),
        display_name: text(item, NAME).unwrap_or_else(|| id.to_string()),
        metadata: text(item, META).unwrap_or_else(|| "{}".into()),
        state: state_of(item),
        updated: text(item, UPDATED).unwrap_or_else(|| created.clone()),
        created,
        version: item
            .get(VER)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

fn audit_of(item: &Item, tenant: &str) -> AuditEntry {
    let sk = text(item, SK).unwrap_or_default();
    let nonce = sk.rsplit_once('#').map(|(_, n)| n.to_string());
    AuditEntry {
        tenant: tenant.to_string(),
        at: text(item, "at").unwrap_or_default(),
        nonce: nonce.unwrap_or_default(),
        actor: text(item, "actor").unwrap_or_default(),
        action: text(item, "action").unwrap_or_default(),
        target: text(item, "target").unwrap_or_default(),
        expires: item
            .get("ttl")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}
