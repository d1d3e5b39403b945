//! Setup links and the setup page's sessions: `LinkStore`. Both live in the tenant's partition
//! `T#<tenant>#links` (`keys::links_pk`): a link `L#<key>` (the hash of its secret, its kind, expiry,
//! return URL, when used or revoked), a session `S#<hash of the session id>` (its link and expiry). Both
//! carry `ttl`, so DynamoDB drops them after they ended. Opening a link is one transaction: the link's
//! conditions (not revoked, not expired, an in-app link not used — and marked used) and the new session.
//! Imports the parent module and `table`.

use super::table::{classify, failed, put, record_read, TxError, TOTAL};
use super::{build_err, key, s, DynamoStore, Item};
use crate::store::keys::{self, PK, SK};
use crate::store::{
    record_call, LinkKind, LinkOpen, LinkStore, SetupLink, SetupSession, StoreError,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};

/// How long an ended link stays listed before the TTL may drop it.
const KEEP_ENDED_SECS: i64 = 7 * 86_400;

#[async_trait]
impl LinkStore for DynamoStore {
    async fn put_link(&self, link: &SetupLink) -> Result<(), StoreError> {
        let mut item = key(&keys::links_pk(&link.tenant), &keys::link_sk(&link.key));
        item.insert("hash".into(), s(&link.hash));
        item.insert("kind".into(), s(link.kind.as_str()));
        item.insert("created".into(), s(&link.created));
        item.insert("expires".into(), AV::N(link.expires.to_string()));
        item.insert(
            "ttl".into(),
            AV::N((link.expires + KEEP_ENDED_SECS).to_string()),
        );
        if let Some(r) = &link.return_url {
            item.insert("ret".into(), s(r));
        }
        match self
            .transact(vec![put(
                &self.table,
                item,
                "attribute_not_exists(#pk)",
                None,
            )?])
            .await
        {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "setup link not stored (its key is taken?): {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn link(&self, tenant: &str, k: &str) -> Result<Option<SetupLink>, StoreError> {
        Ok(self
            .get_item(key(&keys::links_pk(tenant), &keys::link_sk(k)))
            .await?
            .and_then(|i| link_of(&i, tenant)))
    }

    async fn list_links(&self, tenant: &str) -> Result<Vec<SetupLink>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            record_call("Query");
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(keys::links_pk(tenant)))
                .expression_attribute_values(":prefix", s(keys::LINK_SK_PREFIX))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            out.extend(
                r.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| link_of(i, tenant)),
            );
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    async fn revoke_link(&self, tenant: &str, k: &str, now: &str) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&keys::links_pk(tenant), &keys::link_sk(k))))
            .update_expression("SET #rev = if_not_exists(#rev, :now)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#rev", "revoked")
            .expression_attribute_values(":now", s(now))
            .build()
            .map_err(build_err)?;
        match self
            .transact(vec![TransactWriteItem::builder().update(update).build()])
            .await
        {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Ok(false),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "setup link revocation cancelled: {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn open_link(
        &self,
        tenant: &str,
        k: &str,
        single_use: bool,
        now: &str,
        now_unix: i64,
        session: &SetupSession,
    ) -> Result<LinkOpen, StoreError> {
        let pk = keys::links_pk(tenant);
        let link_key = key(&pk, &keys::link_sk(k));
        let live = "attribute_exists(#pk) AND attribute_not_exists(#rev) AND #exp > :now";
        let first = if single_use {
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(link_key))
                        .update_expression("SET #used = :at")
                        .condition_expression(format!("{live} AND attribute_not_exists(#used)"))
                        .expression_attribute_names("#pk", PK)
                        .expression_attribute_names("#rev", "revoked")
                        .expression_attribute_names("#exp", "expires")
                        .expression_attribute_names("#used", "used")
                        .expression_attribute_values(":now", AV::N(now_unix.to_string()))
                        .expression_attribute_values(":at", s(now))
                        .build()
                        .map_err(build_err)?,
                )
                .build()
        } else {
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(link_key))
                        .condition_expression(live)
                        .expression_attribute_names("#pk", PK)
                        .expression_attribute_names("#rev", "revoked")
                        .expression_attribute_names("#exp", "expires")
                        .expression_attribute_values(":now", AV::N(now_unix.to_string()))
                        .build()
                        .map_err(build_err)?,
                )
                .build()
        };
        let mut item = key(&pk, &keys::setup_session_sk(&session.hash));
        item.insert("link".into(), s(&session.link));
        item.insert("expires".into(), AV::N(session.expires.to_string()));
        item.insert("ttl".into(), AV::N(session.expires.to_string()));
        let items = vec![
            first,
            put(&self.table, item, "attribute_not_exists(#pk)", None)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(LinkOpen::Opened),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Ok(LinkOpen::Refused),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "setup session not stored: {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn setup_session(
        &self,
        tenant: &str,
        hash: &str,
    ) -> Result<Option<SetupSession>, StoreError> {
        Ok(self
            .get_item(key(&keys::links_pk(tenant), &keys::setup_session_sk(hash)))
            .await?
            .map(|i| SetupSession {
                tenant: tenant.to_string(),
                hash: hash.to_string(),
                link: text(&i, "link").unwrap_or_default(),
                expires: number(&i, "expires"),
            }))
    }

    async fn audit_only(&self) -> Result<(), StoreError> {
        if crate::store::pending_audit().is_none() {
            return Ok(());
        }
        match self.transact(Vec::new()).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!(
                "audit entry not written: {r:?}"
            ))),
            Err(TxError::Store(e)) => Err(e),
        }
    }
}

fn text(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, k: &str) -> i64 {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn link_of(item: &Item, tenant: &str) -> Option<SetupLink> {
    let sk = text(item, SK)?;
    let k = sk.strip_prefix(keys::LINK_SK_PREFIX)?.to_string();
    Some(SetupLink {
        tenant: tenant.to_string(),
        key: k,
        kind: LinkKind::parse(&text(item, "kind")?)?,
        hash: text(item, "hash")?,
        created: text(item, "created").unwrap_or_default(),
        expires: number(item, "expires"),
        return_url: text(item, "ret"),
        used: text(item, "used"),
        revoked: text(item, "revoked"),
    })
}
