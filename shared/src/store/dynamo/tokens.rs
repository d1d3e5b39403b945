//! Tenants and their tokens: `TokenStore` (the tenant register, token items by hash and by tenant).
//! Imports the parent module and `table`.

use super::table::{classify, failed, put, record_read, TxError, LAST_USED};
use super::{build_err, key, s, DynamoStore, Item};
use crate::store::keys::{self, GUARD_SK, PK, SK};
use crate::store::{
    record_call, StoreError, TenantRecord, TenantState, TenantStore, TokenRecord, TokenStore,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem};

#[async_trait]
impl TokenStore for DynamoStore {
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .get_item(key(&keys::token_pk(hash), GUARD_SK))
            .await?
            .map(|i| token_record(&i, hash)))
    }

    async fn create_tenant(&self, tenant: &str, now: &str) -> Result<bool, StoreError> {
        self.register_tenant(&TenantRecord {
            id: tenant.to_string(),
            display_name: tenant.to_string(),
            metadata: "{}".into(),
            state: TenantState::Active,
            created: now.to_string(),
            updated: now.to_string(),
            version: 1,
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.sort_keys(keys::TENANTS_PK)
            .await
            .map(|items| items.into_iter().map(|(sk, _)| sk).collect())
    }

    async fn put_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        let mut by_hash = key(&keys::token_pk(&rec.hash), GUARD_SK);
        let mut by_tenant = key(&keys::tenant_tokens_pk(&rec.tenant), &rec.id);
        for item in [&mut by_hash, &mut by_tenant] {
            item.insert("tenant".into(), s(&rec.tenant));
            item.insert("id".into(), s(&rec.id));
            item.insert("label".into(), s(&rec.label));
            item.insert("created".into(), s(&rec.created));
            item.insert("hash".into(), s(&rec.hash));
            if let Some(u) = &rec.user {
                item.insert("user".into(), s(u));
            }
        }
        let tenant_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::TENANTS_PK, &rec.tenant)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(tenant_exists)
                .build(),
            put(&self.table, by_hash, "attribute_not_exists(#pk)", None)?,
            put(&self.table, by_tenant, "attribute_not_exists(#pk)", None)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Err(StoreError::Internal(format!(
                "tenant {} does not exist",
                rec.tenant
            ))),
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("token not stored: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(self
            .sort_keys(&keys::tenant_tokens_pk(tenant))
            .await?
            .into_iter()
            .map(|(_, item)| {
                let hash = item
                    .get("hash")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                token_record(&item, &hash)
            })
            .collect())
    }

    async fn note_token_use(&self, hash: &str, at: i64) -> Result<(), StoreError> {
        self.note_use(key(&keys::token_pk(hash), GUARD_SK), at)
            .await
    }

    async fn revoke_token(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let tokens = self.list_tokens(tenant).await?;
        let Some(rec) = tokens.into_iter().find(|t| t.id == id) else {
            return Ok(false);
        };
        let del = |k: Item| -> Result<TransactWriteItem, StoreError> {
            Ok(TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(k))
                        .build()
                        .map_err(build_err)?,
                )
                .build())
        };
        let items = vec![
            del(key(&keys::token_pk(&rec.hash), GUARD_SK))?,
            del(key(&keys::tenant_tokens_pk(tenant), id))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("revoke cancelled: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }
}

impl DynamoStore {
    /// Every item of a small partition, with its sort key.
    async fn sort_keys(&self, pk: &str) -> Result<Vec<(String, Item)>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            record_call("Query");
            let r = self
                .partition_query(pk, start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            for item in r.items.unwrap_or_default() {
                if let Some(sk) = item.get(SK).and_then(|v| v.as_s().ok()).cloned() {
                    out.push((sk, item));
                }
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

fn token_record(item: &Item, hash: &str) -> TokenRecord {
    let get = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    TokenRecord {
        hash: hash.to_string(),
        tenant: get("tenant"),
        id: get("id"),
        label: get("label"),
        created: get("created"),
        user: item.get("user").and_then(|v| v.as_s().ok()).cloned(),
        last_used: item
            .get(LAST_USED)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
    }
}
