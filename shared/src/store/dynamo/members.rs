//! Member items: `MemberStore` — which ids are users and members, a group's member list, adding and
//! removing members — and the transaction items of a membership change (join/leave), which also change
//! the user (`grp`, version) and the group (member count, version). Imports the parent module and `table`.

use super::table::{classify, failed, put, record_read, TxError, TOTAL};
use super::{build_err, key, s, DynamoStore, Item};
use crate::backoff::Backoff;
use crate::model;
use crate::store::keys::{self, PK, SK};
use crate::store::{
    limits, record_call, MemberStatus, MemberStore, StoreError, MEMBERS_PER_TRANSACTION,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::{Delete, KeysAndAttributes, TransactWriteItem, Update};
use std::time::Duration;

#[async_trait]
impl MemberStore for DynamoStore {
    async fn member_status(
        &self,
        tenant: &str,
        group_id: &str,
        ids: &[String],
    ) -> Result<MemberStatus, StoreError> {
        let mut status = MemberStatus::default();
        let users_pk = keys::resource_pk(tenant, crate::schema::user_resource_type());
        let members_pk = keys::members_pk(tenant, group_id);
        let group_pk = keys::resource_pk(tenant, crate::schema::group_resource_type());
        limits::id("The group id", group_id)?;
        for id in ids {
            limits::id(
                &format!(
                    "Member value \"{}…\"",
                    id.chars().take(40).collect::<String>()
                ),
                id,
            )?;
        }
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        // 49 ids = 98 keys, plus the group's own key in the first batch: within BatchGetItem's 100.
        let chunks: Vec<&[&String]> = if unique.is_empty() {
            vec![&[]]
        } else {
            unique.chunks(49).collect()
        };
        for (n, chunk) in chunks.into_iter().enumerate() {
            let mut keys_list = Vec::with_capacity(chunk.len() * 2 + 1);
            if n == 0 && !group_id.is_empty() {
                keys_list.push(key(&group_pk, group_id));
            }
            for id in chunk {
                keys_list.push(key(&users_pk, id));
                keys_list.push(key(&members_pk, id));
            }
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys_list))
                    .projection_expression("#pk, #sk")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .consistent_read(true)
                    .build()
                    .map_err(build_err)?,
            );
            // Unprocessed keys are retried (bounded), as DynamoDB asks.
            for attempt in 0..10u32 {
                let Some(req) = pending.take() else { break };
                if attempt > 0 {
                    Backoff::new(Duration::from_millis(40), Duration::from_millis(640))
                        .wait(attempt)
                        .await;
                }
                record_call("BatchGetItem");
                let r = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .return_consumed_capacity(TOTAL)
                    .send()
                    .await
                    .map_err(|e| classify("BatchGetItem", e))?;
                record_read(r.consumed_capacity());
                for item in r
                    .responses
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default()
                {
                    let (Some(pk), Some(sk)) = (
                        item.get(PK).and_then(|v| v.as_s().ok()),
                        item.get(SK).and_then(|v| v.as_s().ok()),
                    ) else {
                        continue;
                    };
                    if *pk == users_pk {
                        status.users.insert(sk.clone());
                    } else if *pk == members_pk {
                        status.members.insert(sk.clone());
                    } else if *pk == group_pk && sk == group_id {
                        status.group = true;
                    }
                }
                pending = r
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
            }
            if pending.is_some() {
                return Err(StoreError::Throttled(
                    "BatchGetItem left keys unprocessed".into(),
                ));
            }
        }
        Ok(status)
    }

    async fn list_members(
        &self,
        tenant: &str,
        group_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let pk = keys::members_pk(tenant, group_id);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            record_call("Query");
            let r = self
                .partition_query(&pk, start.take())
                .projection_expression("#sk")
                .expression_attribute_names("#sk", SK)
                .limit((limit + 1 - out.len()).min(5000) as i32)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            out.extend(
                r.items()
                    .iter()
                    .filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()).cloned()),
            );
            if out.len() > limit {
                return Err(StoreError::TooMany(format!(
                    "The group has more than {limit} members, more than one response may carry; \
                     read it with excludedAttributes=members and test membership with filter=id eq \"<group>\" and members eq \"<user>\""
                )));
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn change_members(
        &self,
        tenant: &str,
        group_id: &str,
        adds: &[String],
        removes: &[String],
        now: &str,
    ) -> Result<(), StoreError> {
        limits::id("The group id", group_id)?;
        for id in adds.iter().chain(removes) {
            limits::id("A member value", id)?;
        }
        let changes: Vec<(bool, &String)> = adds
            .iter()
            .map(|a| (true, a))
            .chain(removes.iter().map(|r| (false, r)))
            .collect();
        for chunk in changes.chunks(MEMBERS_PER_TRANSACTION) {
            let mut items = Vec::with_capacity(chunk.len() * 2 + 1);
            let mut delta = 0i64;
            for (add, id) in chunk {
                if *add {
                    delta += 1;
                    items.extend(join_group(&self.table, tenant, group_id, id, now)?);
                } else {
                    delta -= 1;
                    items.extend(leave_group_member_side(
                        &self.table,
                        tenant,
                        group_id,
                        id,
                        now,
                    )?);
                }
            }
            items.push(group_touch(&self.table, tenant, group_id, delta, now)?);
            match self.transact(items).await {
                Ok(()) => {}
                Err(TxError::Cancelled(r)) => {
                    // Which membership failed tells why: a user that vanished, or a concurrent change.
                    for (i, (add, id)) in chunk.iter().enumerate() {
                        if *add && failed(&r, i * 2 + 1) {
                            return Err(StoreError::NotAUser((*id).clone()));
                        }
                    }
                    return Err(StoreError::VersionConflict);
                }
                Err(TxError::Store(e)) => return Err(e),
            }
        }
        Ok(())
    }
}

impl DynamoStore {
    pub(super) async fn transact_members(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), StoreError> {
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(_)) => Err(StoreError::VersionConflict),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Remove every member of a group (before the group itself is deleted), page by page.
    pub(super) async fn remove_all_members(
        &self,
        tenant: &str,
        group_id: &str,
    ) -> Result<(), StoreError> {
        loop {
            let batch = self
                .member_page(tenant, group_id, MEMBERS_PER_TRANSACTION)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut items = Vec::new();
            let now = model::now_rfc3339();
            for id in &batch {
                items.extend(leave_group_member_side(
                    &self.table,
                    tenant,
                    group_id,
                    id,
                    &now,
                )?);
            }
            self.transact_members(items).await?;
        }
    }

    async fn member_page(
        &self,
        tenant: &str,
        group_id: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        record_call("Query");
        let r = self
            .partition_query(&keys::members_pk(tenant, group_id), None)
            .projection_expression("#sk")
            .expression_attribute_names("#sk", SK)
            .limit(n as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        Ok(r.items()
            .iter()
            .filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }
}

/// The member item (must be new) and the user's `groups` (the user must exist).
fn join_group(
    table: &str,
    tenant: &str,
    group_id: &str,
    user_id: &str,
    now: &str,
) -> Result<[TransactWriteItem; 2], StoreError> {
    let mut item = key(&keys::members_pk(tenant, group_id), user_id);
    item.insert("value".into(), s(user_id));
    let member = put(table, item, "attribute_not_exists(#pk)", None)?;
    let user = user_groups_update(table, tenant, user_id, group_id, "ADD", now)?;
    Ok([member, user])
}

/// Delete a member item, which must exist (a concurrent change cancels the transaction).
fn delete_member_item(
    table: &str,
    tenant: &str,
    group_id: &str,
    user_id: &str,
) -> Result<TransactWriteItem, StoreError> {
    let d = Delete::builder()
        .table_name(table)
        .set_key(Some(key(&keys::members_pk(tenant, group_id), user_id)))
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().delete(d).build())
}

/// Remove the member item (must exist) and the group from the user's `groups` (the user must exist).
fn leave_group_member_side(
    table: &str,
    tenant: &str,
    group_id: &str,
    user_id: &str,
    now: &str,
) -> Result<[TransactWriteItem; 2], StoreError> {
    Ok([
        delete_member_item(table, tenant, group_id, user_id)?,
        user_groups_update(table, tenant, user_id, group_id, "DELETE", now)?,
    ])
}

/// Used when a user is deleted: its member item goes, and the group's count and version change.
pub(super) fn leave_group(
    table: &str,
    tenant: &str,
    group_id: &str,
    user_id: &str,
) -> Result<[TransactWriteItem; 2], StoreError> {
    Ok([
        delete_member_item(table, tenant, group_id, user_id)?,
        group_touch(table, tenant, group_id, -1, &model::now_rfc3339())?,
    ])
}

/// A membership change is a change of the user too (its `groups`): `grp`, version and lastModified move
/// together, so a write conditioned on the user's version (a delete, a PUT) that read the user before the
/// membership changed loses and reads again — it never deletes a user while leaving its new membership
/// behind.
fn user_groups_update(
    table: &str,
    tenant: &str,
    user_id: &str,
    group_id: &str,
    action: &str,
    now: &str,
) -> Result<TransactWriteItem, StoreError> {
    let grp = AV::Ss(vec![group_id.to_string()]);
    let u = user_groups_builder(table, tenant, user_id, action, grp, now)
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().update(u).build())
}

/// `ADD`/`DELETE` group ids in the user's `grp` set, bumping its version and lastModified.
pub(super) fn user_groups_builder(
    table: &str,
    tenant: &str,
    user_id: &str,
    action: &str,
    groups: AV,
    now: &str,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let expression = match action {
        "ADD" => "ADD #grp :g, #ver :one SET #mod = :now".to_string(),
        other => format!("{other} #grp :g ADD #ver :one SET #mod = :now"),
    };
    Update::builder()
        .table_name(table)
        .set_key(Some(key(
            &keys::resource_pk(tenant, crate::schema::user_resource_type()),
            user_id,
        )))
        .update_expression(expression)
        .expression_attribute_names("#grp", "grp")
        .expression_attribute_names("#ver", "ver")
        .expression_attribute_names("#mod", "modified")
        .expression_attribute_values(":g", groups)
        .expression_attribute_values(":one", AV::N("1".into()))
        .expression_attribute_values(":now", s(now))
}

/// A membership change is a change of the group: count, version and lastModified move with it.
fn group_touch(
    table: &str,
    tenant: &str,
    group_id: &str,
    delta: i64,
    now: &str,
) -> Result<TransactWriteItem, StoreError> {
    let u = Update::builder()
        .table_name(table)
        .set_key(Some(key(
            &keys::resource_pk(tenant, crate::schema::group_resource_type()),
            group_id,
        )))
        .update_expression("SET #mod = :now ADD #ver :one, #mc :d")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#mod", "modified")
        .expression_attribute_names("#ver", "ver")
        .expression_attribute_names("#mc", "mcount")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":one", AV::N("1".into()))
        .expression_attribute_values(":d", AV::N(delta.to_string()))
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().update(u).build())
}
