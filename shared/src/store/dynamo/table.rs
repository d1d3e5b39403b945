//! The table and the calls every part makes the same way: table creation and warm-up, one partition's
//! Query, transactions and the classification of their errors (and of every SDK error), and the
//! recording of the capacity each call consumed. Imports only the parent module and the store's contract.

use super::{build_err, DynamoStore, Item};
use crate::backoff::Backoff;
use crate::store::keys::{GSI1, GSI1PK, GSI2, GSI2PK, PK, SK};
use crate::store::{limits, record_call, record_capacity, StoreError};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ConsumedCapacity, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnConsumedCapacity,
    ScalarAttributeType, TableStatus, TransactWriteItem, WriteRequest,
};
use std::time::Duration;

impl DynamoStore {
    /// One cheap call that opens the connection (TLS handshake) during init and checks the table exists.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        record_call("DescribeTable");
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| classify("DescribeTable", e))?;
        Ok(())
    }

    /// Create `table` (pk/sk strings, on demand; with the GSIs when `indexes`) if missing; wait till active.
    /// Whether this call created it.
    pub(super) async fn create_one(&self, table: &str, indexes: bool) -> Result<bool, StoreError> {
        let s = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let hash = |n: &str| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(KeyType::Hash)
                .build()
        };
        let range = |n: &str| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(KeyType::Range)
                .build()
        };
        let gsi = |name: &str, key: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(hash(key).expect("static key schema"))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("static index definition")
        };
        let mut req = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(s(PK).expect("static"))
            .attribute_definitions(s(SK).expect("static"))
            .key_schema(hash(PK).expect("static"))
            .key_schema(range(SK).expect("static"));
        if indexes {
            req = req
                .attribute_definitions(s(GSI1PK).expect("static"))
                .attribute_definitions(s(GSI2PK).expect("static"))
                .global_secondary_indexes(gsi(GSI1, GSI1PK))
                .global_secondary_indexes(gsi(GSI2, GSI2PK));
        }
        let created = match req.send().await {
            Ok(_) => true,
            Err(e) if e.code() == Some("ResourceInUseException") => false,
            Err(e) => return Err(classify("CreateTable", e)),
        };
        for _ in 0..120 {
            let d = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| classify("DescribeTable", e))?;
            let status = d.table().and_then(|t| t.table_status().cloned());
            if status == Some(TableStatus::Active) {
                return Ok(created);
            }
            // dynoxide answers CREATING but the table is usable at once; a put/get probe tells.
            if status == Some(TableStatus::Creating) && self.probe(table).await {
                return Ok(created);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Internal(format!(
            "table {table} did not become active"
        )))
    }

    async fn probe(&self, table: &str) -> bool {
        self.client
            .get_item()
            .table_name(table)
            .key(PK, AV::S("#probe".into()))
            .key(SK, AV::S("#".into()))
            .send()
            .await
            .is_ok()
    }

    /// One strongly consistent GetItem of the item with this key.
    pub(super) async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        record_call("GetItem");
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        record_read(r.consumed_capacity());
        Ok(r.item)
    }

    pub(super) fn partition_query(&self, pk: &str, start: Option<Item>) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AV::S(pk.to_string()))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(TOTAL)
    }

    /// Write down a credential's use: `last_used` = `at` on the item with `key`, if it still exists (a
    /// credential revoked meanwhile is not brought back). One UpdateItem.
    pub(super) async fn note_use(&self, key: Item, at: i64) -> Result<(), StoreError> {
        record_call("UpdateItem");
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET #u = :at")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#u", LAST_USED)
            .expression_attribute_values(":at", AV::N(at.to_string()))
            .return_consumed_capacity(TOTAL)
            .send()
            .await;
        match r {
            Ok(out) => {
                record_write(out.consumed_capacity());
                Ok(())
            }
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(classify("UpdateItem", e)),
        }
    }

    /// One TransactWriteItems. Inside [`crate::store::audited`], the pending audit entry is appended as
    /// the last item (so the callers' indexes of their own items stay right) and, once committed, is no
    /// longer pending.
    pub(super) async fn transact(&self, mut items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        let audit = crate::store::pending_audit();
        if let Some(e) = &audit {
            items.push(super::tenants::audit_put(&self.table, e).map_err(TxError::Store)?);
        }
        record_call("TransactWriteItems");
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(TOTAL)
            .send()
            .await
        {
            Ok(out) => {
                record_write(out.consumed_capacity());
                if audit.is_some() {
                    crate::store::audit_written();
                }
                Ok(())
            }
            Err(SdkError::ServiceError(se)) => match se.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons: Vec<String> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect();
                    if reasons.iter().any(|r| r == "TransactionConflict") {
                        return Err(TxError::Store(StoreError::Contention));
                    }
                    if reasons
                        .iter()
                        .any(|r| r == "ThrottlingError" || r == "ProvisionedThroughputExceeded")
                    {
                        return Err(TxError::Store(StoreError::Throttled(
                            "transaction throttled".into(),
                        )));
                    }
                    Err(TxError::Cancelled(reasons))
                }
                other => Err(TxError::Store(classify_code(
                    "TransactWriteItems",
                    other.code(),
                    &format!("{other:?}"),
                ))),
            },
            Err(e) => Err(TxError::Store(classify("TransactWriteItems", e))),
        }
    }
}

/// The attribute a credential's last use is written to (Unix seconds).
/// Requests per BatchWriteItem (DynamoDB's limit).
pub(super) const BATCH: usize = 25;
/// Tries of one BatchWriteItem while DynamoDB leaves requests unprocessed (backoff 50 ms doubling, at most
/// 1.6 s; about 3 s in all) before the batch fails as throttled.
const BATCH_ATTEMPTS: u32 = 7;

impl DynamoStore {
    /// One BatchWriteItem of at most [`BATCH`] requests in `table`, its unprocessed requests retried (bounded:
    /// [`BATCH_ATTEMPTS`]); the calls it took.
    pub(super) async fn batch_write(
        &self,
        table: &str,
        mut requests: Vec<WriteRequest>,
    ) -> Result<u32, StoreError> {
        if requests.is_empty() {
            return Ok(0);
        }
        let mut calls = 0;
        let backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(1600));
        for attempt in 0..BATCH_ATTEMPTS {
            backoff.wait(attempt).await;
            record_call("BatchWriteItem");
            calls += 1;
            let r = self
                .client
                .batch_write_item()
                .request_items(table, requests.clone())
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| classify("BatchWriteItem", e))?;
            record_write(r.consumed_capacity());
            requests = r
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(calls);
            }
        }
        Err(StoreError::Throttled(format!(
            "BatchWriteItem: {} requests still unprocessed after {BATCH_ATTEMPTS} tries",
            requests.len()
        )))
    }

    /// [`Self::batch_write`] of deletes (at most [`BATCH`] keys) in `table`; the calls it took.
    pub(super) async fn delete_batch(
        &self,
        table: &str,
        keys: Vec<Item>,
    ) -> Result<u32, StoreError> {
        let requests: Vec<WriteRequest> = keys
            .into_iter()
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(k))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(build_err)
            })
            .collect::<Result<_, _>>()?;
        self.batch_write(table, requests).await
    }
}

pub(super) const LAST_USED: &str = "last_used";

pub(super) enum TxError {
    /// Condition failures, one reason per item in request order (`ConditionalCheckFailed`, `None`, …).
    Cancelled(Vec<String>),
    Store(StoreError),
}

pub(super) fn failed(reasons: &[String], index: usize) -> bool {
    reasons
        .get(index)
        .is_some_and(|r| r == "ConditionalCheckFailed")
}

/// Every item call asks DynamoDB for the capacity it consumed (table and indexes together): free, and it
/// lets the audit line and the benchmark report the cost of each SCIM operation.
pub(super) const TOTAL: ReturnConsumedCapacity = ReturnConsumedCapacity::Total;

fn units<'a>(cc: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
    cc.into_iter()
        .filter_map(ConsumedCapacity::capacity_units)
        .sum()
}

pub(super) fn record_read<'a>(cc: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    record_capacity(units(cc), 0.0);
}

pub(super) fn record_write<'a>(cc: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    record_capacity(0.0, units(cc));
}

pub(super) fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> StoreError {
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            tracing::warn!(op, error = ?e, "dynamodb unavailable");
            StoreError::Unavailable(format!("{op}: {e}"))
        }
        _ => classify_code(op, e.code(), &format!("{e:?}")),
    }
}

fn classify_code(op: &str, code: Option<&str>, detail: &str) -> StoreError {
    match code {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException",
        ) => {
            tracing::warn!(op, code, "dynamodb throttled");
            StoreError::Throttled(format!("{op}: {}", code.unwrap_or("")))
        }
        Some("TransactionConflictException" | "TransactionInProgressException") => {
            StoreError::Contention
        }
        // A size limit the checks in `limits` did not foresee (e.g. a user's `grp` set outgrowing its item
        // reserve): still a request too large to store, not a server fault.
        Some("ValidationException") if detail.contains("size") => {
            tracing::warn!(op, code, "dynamodb size limit");
            StoreError::TooLarge(format!(
                "The request holds a value larger than the directory store accepts (DynamoDB keys hold at most {} bytes, items at most 400 KB)",
                limits::PARTITION_KEY_BYTES
            ))
        }
        Some("InternalServerError" | "ServiceUnavailable") => {
            tracing::warn!(op, code, "dynamodb unavailable");
            StoreError::Unavailable(format!("{op}: {}", code.unwrap_or("")))
        }
        _ => {
            tracing::error!(op, code, error = detail, "dynamodb call failed");
            StoreError::Internal(format!("{op} failed: {}", code.unwrap_or("unknown error")))
        }
    }
}

pub(super) fn put(
    table: &str,
    item: Item,
    condition: &str,
    ver: Option<u64>,
) -> Result<TransactWriteItem, StoreError> {
    let mut b = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    if condition.contains("#pk") {
        b = b.expression_attribute_names("#pk", PK);
    }
    if let Some(v) = ver {
        b = b
            .expression_attribute_names("#ver", "ver")
            .expression_attribute_values(":ver", AV::N(v.to_string()));
    }
    Ok(TransactWriteItem::builder()
        .put(b.build().map_err(build_err)?)
        .build())
}
