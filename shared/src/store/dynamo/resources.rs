//! Resource items: `ResourceStore` — get, create, replace, delete (its `list` is `listing`'s) — with the
//! uniqueness guards and counter shards written in the same transactions. Imports the parent module,
//! `table`, and `members` (a deleted user or group leaves its groups or loses its members first).

use super::members::{leave_group, user_groups_builder};
use super::table::{classify, failed, put, record_write, TxError, TOTAL};
use super::{build_err, from_item, key, s, to_item, DynamoStore, Item, SEQ};
use crate::model::{self, StoredResource};
use crate::schema::ResourceType;
use crate::store::keys::{self, GSI1PK, GSI2PK, GUARD_SK, PK, SK};
use crate::store::{
    limits, record_call, ListPage, ListQuery, ResourceStore, StoreError, MEMBERS_PER_TRANSACTION,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use std::collections::HashMap;

#[async_trait]
impl ResourceStore for DynamoStore {
    async fn get(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        limits::id("The id", id)?;
        self.get_item(key(&keys::resource_pk(tenant, rt), id))
            .await?
            .as_ref()
            .map(from_item)
            .transpose()
    }

    async fn create(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        res: &StoredResource,
    ) -> Result<(), StoreError> {
        let mut items = vec![put(
            &self.table,
            to_item(tenant, rt, res)?,
            "attribute_not_exists(#pk)",
            None,
        )?];
        let unique = model::unique_key(rt, &res.attrs);
        if let Some(u) = &unique {
            items.push(put(
                &self.table,
                guard_item(tenant, rt, u, &res.id),
                "attribute_not_exists(#pk)",
                None,
            )?);
        }
        items.push(counter_update(&self.table, tenant, rt, 1)?);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if unique.is_some() && failed(&r, 1) => {
                Err(uniqueness(rt, res))
            }
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("create cancelled: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn replace(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        old: &StoredResource,
        new: &StoredResource,
    ) -> Result<(), StoreError> {
        let (old_key, new_key) = (
            model::unique_key(rt, &old.attrs),
            model::unique_key(rt, &new.attrs),
        );
        let upd = ResourceUpdate::new(tenant, rt, old, new)?;
        if old_key == new_key {
            record_call("UpdateItem");
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(upd.key))
                .update_expression(upd.expression)
                .condition_expression(upd.condition)
                .set_expression_attribute_names(Some(upd.names))
                .set_expression_attribute_values(Some(upd.values))
                .return_consumed_capacity(TOTAL)
                .send()
                .await;
            return match r {
                Ok(out) => {
                    record_write(out.consumed_capacity());
                    Ok(())
                }
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                    Err(StoreError::VersionConflict)
                }
                Err(e) => Err(classify("UpdateItem", e)),
            };
        }
        let mut items = vec![TransactWriteItem::builder()
            .update(upd.into_transact(&self.table)?)
            .build()];
        let mut new_guard_at = None;
        if let Some(u) = &new_key {
            new_guard_at = Some(items.len());
            items.push(put(
                &self.table,
                guard_item(tenant, rt, u, &new.id),
                "attribute_not_exists(#pk)",
                None,
            )?);
        }
        if let Some(u) = &old_key {
            items.push(delete_guard(&self.table, tenant, rt, u, &old.id)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Err(StoreError::VersionConflict),
            Err(TxError::Cancelled(r)) if new_guard_at.is_some_and(|i| failed(&r, i)) => {
                Err(uniqueness(rt, new))
            }
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("replace cancelled: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn delete(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        existing: &StoredResource,
    ) -> Result<(), StoreError> {
        // Memberships go first, so an interrupted delete leaves a consistent resource a retry finishes.
        let mut inline: Vec<TransactWriteItem> = Vec::new();
        let mut ver = existing.version;
        if rt.is_group() {
            self.remove_all_members(tenant, &existing.id).await?;
        } else if existing.groups.len() > MEMBERS_PER_TRANSACTION - 1 {
            // Each chunk also takes its groups out of the user's `grp`, conditioned on the version read
            // (and bumping it): an interrupted delete, or one that loses to a concurrent change, leaves the
            // user's `groups` agreeing with the member items, and a retry reads what is left.
            let now = model::now_rfc3339();
            for chunk in existing.groups.chunks(MEMBERS_PER_TRANSACTION) {
                let mut items = Vec::new();
                for g in chunk {
                    items.extend(leave_group(&self.table, tenant, g, &existing.id)?);
                }
                let grp = AV::Ss(chunk.to_vec());
                let user =
                    user_groups_builder(&self.table, tenant, &existing.id, "DELETE", grp, &now)
                        .condition_expression("#ver = :ver")
                        .expression_attribute_values(":ver", AV::N(ver.to_string()))
                        .build()
                        .map_err(build_err)?;
                items.push(TransactWriteItem::builder().update(user).build());
                self.transact_members(items).await?;
                ver += 1;
            }
        } else {
            for g in &existing.groups {
                inline.extend(leave_group(&self.table, tenant, g, &existing.id)?);
            }
        }
        let del = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(keys::resource_pk(tenant, rt)))
            .key(SK, s(&existing.id))
            .condition_expression("#ver = :ver")
            .expression_attribute_names("#ver", "ver")
            .expression_attribute_values(":ver", AV::N(ver.to_string()))
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().delete(del).build()];
        if let Some(u) = model::unique_key(rt, &existing.attrs) {
            items.push(delete_guard(&self.table, tenant, rt, &u, &existing.id)?);
        }
        items.push(counter_update(&self.table, tenant, rt, -1)?);
        items.extend(inline);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Err(StoreError::VersionConflict),
            // A membership changed while the user was being deleted: read again and retry.
            Err(TxError::Cancelled(r)) if r.iter().any(|x| x == "ConditionalCheckFailed") => {
                Err(StoreError::VersionConflict)
            }
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("delete cancelled: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn list(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        q: ListQuery<'_>,
    ) -> Result<ListPage, StoreError> {
        self.list_resources(tenant, rt, q).await
    }
}

/// The conditional update that replaces a resource's document and index keys, leaving the attributes
/// the store maintains on its own (`grp`, `mcount`) untouched.
struct ResourceUpdate {
    key: Item,
    expression: String,
    condition: &'static str,
    names: HashMap<String, String>,
    values: Item,
}

impl ResourceUpdate {
    fn new(
        tenant: &str,
        rt: &ResourceType,
        old: &StoredResource,
        new: &StoredResource,
    ) -> Result<Self, StoreError> {
        let item = to_item(tenant, rt, new)?;
        let mut key = Item::new();
        let mut names = HashMap::new();
        let mut values = Item::new();
        let mut set = Vec::new();
        let mut remove = Vec::new();
        for (i, attr) in ["doc", "modified", "ver", GSI1PK, GSI2PK]
            .into_iter()
            .enumerate()
        {
            names.insert(format!("#a{i}"), attr.to_string());
            match item.get(attr) {
                Some(v) => {
                    values.insert(format!(":a{i}"), v.clone());
                    set.push(format!("#a{i} = :a{i}"));
                }
                None => remove.push(format!("#a{i}")),
            }
        }
        for k in [PK, SK] {
            if let Some(v) = item.get(k) {
                key.insert(k.to_string(), v.clone());
            }
        }
        names.insert("#ver".into(), "ver".into());
        values.insert(":ver".into(), AV::N(old.version.to_string()));
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        Ok(ResourceUpdate {
            key,
            expression,
            condition: "#ver = :ver",
            names,
            values,
        })
    }

    fn into_transact(self, table: &str) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(table)
            .set_key(Some(self.key))
            .update_expression(self.expression)
            .condition_expression(self.condition)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .build()
            .map_err(build_err)
    }
}

fn uniqueness(rt: &ResourceType, res: &StoredResource) -> StoreError {
    let attr = model::unique_attr(rt).unwrap_or("name");
    let value = res
        .attrs
        .get(attr)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    StoreError::Uniqueness {
        attr: attr.to_string(),
        value,
    }
}

fn guard_item(tenant: &str, rt: &ResourceType, unique_lower: &str, id: &str) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(keys::guard_pk(tenant, rt, unique_lower)));
    item.insert(SK.into(), s(GUARD_SK));
    item.insert("id".into(), s(id));
    item
}

fn delete_guard(
    table: &str,
    tenant: &str,
    rt: &ResourceType,
    unique_lower: &str,
    id: &str,
) -> Result<TransactWriteItem, StoreError> {
    // Only the owner's guard is removed; a guard held by another id is left alone (condition id = :id
    // would cancel the whole write, so it is not used: a foreign guard is never ours to delete).
    let d = Delete::builder()
        .table_name(table)
        .key(PK, s(keys::guard_pk(tenant, rt, unique_lower)))
        .key(SK, s(GUARD_SK))
        .condition_expression("attribute_not_exists(#id) OR #id = :id")
        .expression_attribute_names("#id", "id")
        .expression_attribute_values(":id", s(id))
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().delete(d).build())
}

fn counter_update(
    table: &str,
    tenant: &str,
    rt: &ResourceType,
    delta: i64,
) -> Result<TransactWriteItem, StoreError> {
    let shard = rand::random_range(0..keys::COUNTER_SHARDS);
    let u = Update::builder()
        .table_name(table)
        .key(PK, s(keys::counter_pk(tenant)))
        .key(SK, s(keys::counter_sk(rt, shard)))
        .update_expression("ADD #n :d, #q :one")
        .expression_attribute_names("#n", "n")
        .expression_attribute_names("#q", SEQ)
        .expression_attribute_values(":d", AV::N(delta.to_string()))
        .expression_attribute_values(":one", AV::N("1".into()))
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().update(u).build())
}
