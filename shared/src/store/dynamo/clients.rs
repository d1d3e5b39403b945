//! OAuth clients, their secrets and the tenant's WIF trust: `ClientStore`. Every item lives in the
//! tenant's partition `T#<tenant>#oauth` (`keys::oauth_pk`): the client `C#<id>`, its secrets
//! `C#<id>#S#<secret id>` (so one Query with `begins_with` reads a client and its secrets), the trust `WIF`.
//! Writes that change a client's secrets also change the client item (its `secrets` count), conditioned
//! on it not being revoked, so a rotation cannot slip past a revocation and two rotations cannot exceed
//! the bound. Imports the parent module and `table`.

use super::table::{classify, failed, put, record_read, TxError, LAST_USED, TOTAL};
use super::{build_err, key, s, DynamoStore, Item};
use crate::store::keys::{self, PK, SK};
use crate::store::{
    record_call, AddSecret, ClientCredentials, ClientSecret, ClientStore, OAuthClient, StoreError,
    WifTrustRecord, MAX_SECRETS_PER_CLIENT,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

/// The base URL's directory (`auth::DEFAULT_TENANT`, which the store does not import) is not in the
/// tenant register; every other tenant must be.
const UNREGISTERED_OK: &str = "default";

#[async_trait]
impl ClientStore for DynamoStore {
    async fn create_client(
        &self,
        client: &OAuthClient,
        secret: &ClientSecret,
    ) -> Result<(), StoreError> {
        let pk = keys::oauth_pk(&client.tenant);
        let mut item = key(&pk, &keys::client_sk(&client.id));
        item.insert("client_id".into(), s(&client.id));
        item.insert("tenant".into(), s(&client.tenant));
        item.insert("label".into(), s(&client.label));
        item.insert("created".into(), s(&client.created));
        item.insert("revoked".into(), AV::Bool(false));
        item.insert("secrets".into(), AV::N("1".into()));
        let mut items = Vec::new();
        if let Some(check) = self.tenant_exists(&client.tenant)? {
            items.push(check);
        }
        let first = items.len();
        items.push(put(&self.table, item, "attribute_not_exists(#pk)", None)?);
        items.push(put(
            &self.table,
            secret_item(&pk, &client.id, secret),
            "attribute_not_exists(#pk)",
            None,
        )?);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if first == 1 && failed(&r, 0) => Err(StoreError::Internal(
                format!("tenant {} does not exist", client.tenant),
            )),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "client not stored (its id is taken?): {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn oauth_client(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<OAuthClient>, StoreError> {
        Ok(self
            .get_item(key(&keys::oauth_pk(tenant), &keys::client_sk(id)))
            .await?
            .map(|i| client_of(&i, tenant)))
    }

    async fn client_credentials(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ClientCredentials>, StoreError> {
        let items = self.oauth_items(tenant, Some(&keys::client_sk(id))).await?;
        Ok(group(items, tenant).into_iter().find(|c| c.client.id == id))
    }

    async fn list_clients(&self, tenant: &str) -> Result<Vec<ClientCredentials>, StoreError> {
        let items = self.oauth_items(tenant, Some("C#")).await?;
        Ok(group(items, tenant))
    }

    async fn add_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &ClientSecret,
    ) -> Result<AddSecret, StoreError> {
        let pk = keys::oauth_pk(tenant);
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, &keys::client_sk(client_id))))
            .update_expression("SET #n = #n + :one")
            .condition_expression("attribute_exists(#pk) AND #r = :false AND #n < :max")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#n", "secrets")
            .expression_attribute_names("#r", "revoked")
            .expression_attribute_values(":one", AV::N("1".into()))
            .expression_attribute_values(":false", AV::Bool(false))
            .expression_attribute_values(":max", AV::N(MAX_SECRETS_PER_CLIENT.to_string()))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().update(bump).build(),
            put(
                &self.table,
                secret_item(&pk, client_id, secret),
                "attribute_not_exists(#pk)",
                None,
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(AddSecret::Added),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => {
                Ok(match self.oauth_client(tenant, client_id).await? {
                    None => AddSecret::NoClient,
                    Some(c) if c.revoked => AddSecret::Revoked,
                    Some(c) if c.secrets >= MAX_SECRETS_PER_CLIENT => AddSecret::TooMany,
                    // The client changed between the transaction and this read (a secret revoked meanwhile).
                    Some(_) => return Err(StoreError::Contention),
                })
            }
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "secret not stored (its id is taken?): {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn revoke_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret_id: &str,
    ) -> Result<bool, StoreError> {
        let pk = keys::oauth_pk(tenant);
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, &keys::secret_sk(client_id, secret_id))))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_err)?;
        let uncount = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, &keys::client_sk(client_id))))
            .update_expression("SET #n = #n - :one")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#n", "secrets")
            .expression_attribute_values(":one", AV::N("1".into()))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(uncount).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) if failed(&r, 0) || failed(&r, 1) => Ok(false),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "secret revocation cancelled: {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn revoke_client(
        &self,
        tenant: &str,
        client_id: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        // A transaction of one item, so that a management operation's audit entry can ride along.
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                &keys::oauth_pk(tenant),
                &keys::client_sk(client_id),
            )))
            .update_expression("SET #r = :true, #at = if_not_exists(#at, :now)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#r", "revoked")
            .expression_attribute_names("#at", "revoked_at")
            .expression_attribute_values(":true", AV::Bool(true))
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_err)?;
        self.transact_one(TransactWriteItem::builder().update(update).build())
            .await
    }

    async fn wif_trust(&self, tenant: &str) -> Result<Option<WifTrustRecord>, StoreError> {
        let item = self
            .get_item(key(&keys::oauth_pk(tenant), keys::WIF_SK))
            .await?;
        Ok(item.map(|i| WifTrustRecord {
            issuer: text(&i, "issuer"),
            subject: text(&i, "subject"),
            audience: text(&i, "audience"),
            jwks_url: text(&i, "jwks_url"),
            last_used: last_used(&i),
        }))
    }

    async fn put_wif_trust(
        &self,
        tenant: &str,
        trust: &WifTrustRecord,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut item = key(&keys::oauth_pk(tenant), keys::WIF_SK);
        item.insert("issuer".into(), s(&trust.issuer));
        item.insert("subject".into(), s(&trust.subject));
        item.insert("audience".into(), s(&trust.audience));
        item.insert("jwks_url".into(), s(&trust.jwks_url));
        item.insert("updated".into(), s(now));
        let mut items = Vec::new();
        if let Some(check) = self.tenant_exists(tenant)? {
            items.push(check);
        }
        items.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        );
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Err(StoreError::Internal(format!(
                "tenant {tenant} does not exist"
            ))),
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("trust not stored: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn note_secret_use(
        &self,
        tenant: &str,
        client_id: &str,
        secret_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.note_use(
            key(
                &keys::oauth_pk(tenant),
                &keys::secret_sk(client_id, secret_id),
            ),
            at,
        )
        .await
    }

    async fn note_trust_use(&self, tenant: &str, at: i64) -> Result<(), StoreError> {
        self.note_use(key(&keys::oauth_pk(tenant), keys::WIF_SK), at)
            .await
    }

    async fn remove_wif_trust(&self, tenant: &str) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&keys::oauth_pk(tenant), keys::WIF_SK)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_err)?;
        self.transact_one(TransactWriteItem::builder().delete(delete).build())
            .await
    }
}

fn last_used(item: &Item) -> Option<i64> {
    item.get(LAST_USED)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

impl DynamoStore {
    /// One conditional write as a transaction: true when written, false when its condition failed.
    async fn transact_one(&self, item: TransactWriteItem) -> Result<bool, StoreError> {
        match self.transact(vec![item]).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Ok(false),
            Err(TxError::Cancelled(r)) => {
                Err(StoreError::Internal(format!("write cancelled: {r:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// The condition that `tenant` is registered, as a transaction item (none for the base URL's directory).
    fn tenant_exists(&self, tenant: &str) -> Result<Option<TransactWriteItem>, StoreError> {
        if tenant == UNREGISTERED_OK {
            return Ok(None);
        }
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::TENANTS_PK, tenant)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_err)?;
        Ok(Some(
            TransactWriteItem::builder().condition_check(check).build(),
        ))
    }

    /// The items of the tenant's OAuth partition whose sort key begins with `prefix` (strongly consistent).
    async fn oauth_items(
        &self,
        tenant: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            record_call("Query");
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(keys::oauth_pk(tenant)))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .return_consumed_capacity(TOTAL);
            q = match prefix {
                Some(p) => q
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(p)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let r = q.send().await.map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            out.extend(r.items.unwrap_or_default());
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

fn secret_item(pk: &str, client_id: &str, secret: &ClientSecret) -> Item {
    let mut item = key(pk, &keys::secret_sk(client_id, &secret.id));
    item.insert("client_id".into(), s(client_id));
    item.insert("secret_id".into(), s(&secret.id));
    item.insert("hash".into(), s(&secret.hash));
    item.insert("created".into(), s(&secret.created));
    item.insert("expires".into(), AV::N(secret.expires.to_string()));
    item
}

fn text(item: &Item, k: &str) -> String {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn number(item: &Item, k: &str) -> i64 {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn client_of(item: &Item, tenant: &str) -> OAuthClient {
    OAuthClient {
        tenant: tenant.to_string(),
        id: text(item, "client_id"),
        label: text(item, "label"),
        created: text(item, "created"),
        // A client item whose flag cannot be read counts as revoked: fail closed.
        revoked: item
            .get("revoked")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(true),
        revoked_at: item.get("revoked_at").and_then(|v| v.as_s().ok()).cloned(),
        secrets: number(item, "secrets").max(0) as u32,
    }
}

/// Client items and secret items (in sort-key order) grouped by client.
fn group(items: Vec<Item>, tenant: &str) -> Vec<ClientCredentials> {
    let mut out: Vec<ClientCredentials> = Vec::new();
    for item in items {
        let sk = text(&item, SK);
        let Some(rest) = sk.strip_prefix("C#") else {
            continue;
        };
        match rest.split_once("#S#") {
            None => out.push(ClientCredentials {
                client: client_of(&item, tenant),
                secrets: Vec::new(),
            }),
            Some((client_id, _)) => {
                if let Some(c) = out.iter_mut().rev().find(|c| c.client.id == client_id) {
                    c.secrets.push(ClientSecret {
                        id: text(&item, "secret_id"),
                        hash: text(&item, "hash"),
                        created: text(&item, "created"),
                        expires: number(&item, "expires"),
                        last_used: last_used(&item),
                    });
                }
            }
        }
    }
    out
}
