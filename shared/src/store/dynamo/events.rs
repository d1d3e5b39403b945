//! The change events' items: [`EventLogStore`] (the events log: its head, append transactions, range
//! Queries) and [`DeliveryStore`] (the table's stream and TTL, the stream consumer's checkpoints, the
//! webhook deliverer's positions) for [`DynamoStore`], and the DynamoDB Streams client that reaches the
//! same engine ([`DynamoStore::streams_client`]). The items live in the events table (`events_table`, no
//! stream: logging events makes no stream records of its own), or in the main table until they are moved
//! there (`events_home`, `events_move.rs`); the stream's calls (DescribeTable, UpdateTable) name the main
//! table. Keys from `store/keys.rs`; the rules on top of these
//! calls are `crate::events`'s. Only the log's Query is counted with `record_call` (the calls outside a
//! request — the consumer's, the deliverer's, the append's — are not a request's).
//!
//! Imports the parent module, the store's contract (`crate::store`, `crate::store::events`) and its keys.

use super::{build_err, key, num, DynamoStore, Item};
use crate::store::events::{
    Appended, Checkpoint, DeliveryStore, EventLogStore, LogItem, LogItems, LogResume, ParkedEvent,
    WebhookPosition,
};
use crate::store::keys::{
    event_ids_pk, events_head_pk, events_pk, GUARD_SK, PK, SK, STREAM_CHECKPOINTS_PK,
    WEBHOOK_POSITIONS_PK,
};
use crate::store::{record_call, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue as AV, Put, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem, Update,
};

/// The TTL attribute of the events log's items (the table's TimeToLiveSpecification names it).
const TTL_ATTR: &str = "ttl";

fn order_sk(order: u64) -> String {
    format!("{order:020}")
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

impl DynamoStore {
    /// A DynamoDB Streams client that reaches the same engine and region as this store through the same
    /// HTTP client (the embedded engine's in-process transport too), at `endpoint`; signing with
    /// `credentials` (access key id, secret), or unsigned when None (the in-process engine has nothing to
    /// authenticate to).
    pub fn streams_client(
        &self,
        endpoint: &str,
        credentials: Option<(&str, &str)>,
    ) -> aws_sdk_dynamodbstreams::Client {
        let c = self.client.config();
        let mut b = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .endpoint_url(endpoint);
        if let Some(r) = c.region() {
            b = b.region(r.clone());
        }
        if let Some(h) = c.http_client() {
            b = b.http_client(h);
        }
        match credentials {
            Some((key, secret)) => {
                b = b.credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
                    key,
                    secret,
                    None,
                    None,
                    "scim-local",
                ))
            }
            None => b = b.allow_no_auth(),
        }
        if let Some(t) = c.timeout_config() {
            b = b.timeout_config(t.clone());
        }
        aws_sdk_dynamodbstreams::Client::from_conf(b.build())
    }
}

#[async_trait]
impl EventLogStore for DynamoStore {
    async fn log_head(&self, tenant: &str) -> Result<u64, StoreError> {
        let home = self.events_home().await?;
        let r = self
            .client
            .get_item()
            .table_name(home)
            .set_key(Some(key(&events_head_pk(tenant), GUARD_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        Ok(r.item.as_ref().and_then(|i| num(i, "n")).unwrap_or(0))
    }

    async fn log_append(
        &self,
        tenant: &str,
        head: u64,
        events: &[(&str, &str)],
        ttl: u64,
    ) -> Result<Appended, StoreError> {
        let home = self.events_home().await?;
        let ttl = ttl.to_string();
        let mut items = Vec::with_capacity(events.len() * 2 + 1);
        let new_head = head + events.len() as u64;
        let up = Update::builder()
            .table_name(home)
            .set_key(Some(key(&events_head_pk(tenant), GUARD_SK)))
            .update_expression("SET #n = :new")
            .condition_expression("attribute_not_exists(#pk) OR #n = :old")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":new", AV::N(new_head.to_string()))
            .expression_attribute_values(":old", AV::N(head.to_string()))
            .build()
            .map_err(build_err)?;
        items.push(TransactWriteItem::builder().update(up).build());
        for (i, (id, json)) in events.iter().enumerate() {
            let order = head + 1 + i as u64;
            let mut ev = key(&events_pk(tenant), &order_sk(order));
            ev.insert("id".to_string(), AV::S(id.to_string()));
            ev.insert("ev".to_string(), AV::S(json.to_string()));
            ev.insert(TTL_ATTR.to_string(), AV::N(ttl.clone()));
            let mut guard = key(&event_ids_pk(tenant), id);
            guard.insert("o".to_string(), AV::N(order.to_string()));
            guard.insert(TTL_ATTR.to_string(), AV::N(ttl.clone()));
            for item in [ev, guard] {
                let put = Put::builder()
                    .table_name(home)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build()
                    .map_err(build_err)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Appended::Written),
            Err(SdkError::ServiceError(se)) => match se.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons: Vec<&str> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    // An id item that exists: that event is in the log already (an earlier delivery).
                    let logged = (0..events.len())
                        .filter(|i| reasons.get(2 + 2 * i) == Some(&"ConditionalCheckFailed"))
                        .collect();
                    // Otherwise the head moved (another writer) or a conflict.
                    Ok(Appended::NotWritten { logged })
                }
                other => {
                    let code = other.code().unwrap_or("unknown");
                    if retryable(code) {
                        Ok(Appended::NotWritten { logged: Vec::new() })
                    } else {
                        Err(StoreError::Internal(format!(
                            "TransactWriteItems (events log) failed: {code}"
                        )))
                    }
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "events log write failed; retrying");
                Ok(Appended::NotWritten { logged: Vec::new() })
            }
        }
    }

    async fn log_range(
        &self,
        tenant: &str,
        after: u64,
        inclusive: bool,
        limit: usize,
        resume: Option<LogResume>,
    ) -> Result<LogItems, StoreError> {
        let home = self.events_home().await?;
        let op = if inclusive { ">=" } else { ">" };
        let log_pk = events_pk(tenant);
        record_call("Query");
        let r = self
            .client
            .query()
            .table_name(home)
            .key_condition_expression(format!("#pk = :pk AND #sk {op} :after"))
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AV::S(log_pk.clone()))
            .expression_attribute_values(":after", AV::S(order_sk(after)))
            .consistent_read(true)
            .limit(limit.min(i32::MAX as usize) as i32)
            .set_exclusive_start_key(resume.map(|r| key(&log_pk, &r.0)))
            .send()
            .await
            .map_err(|e| sdk_err("Query", e))?;
        let resume = r
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .and_then(|k| text(&k, SK))
            .map(LogResume);
        let items = r
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|mut item| LogItem {
                order: item
                    .get(SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| s.parse::<u64>().ok()),
                ttl: num(&item, TTL_ATTR),
                id: match item.remove("id") {
                    Some(AV::S(id)) => id,
                    _ => String::new(),
                },
                json: match item.remove("ev") {
                    Some(AV::S(j)) => Some(j),
                    _ => None,
                },
            })
            .collect();
        Ok(LogItems { items, resume })
    }
}

impl DynamoStore {
    /// Turn on the TTL (on `ttl`) of `table` unless it is on; a failure is logged, not returned (retention
    /// then relies on the readers' own filters; nothing is lost).
    async fn ensure_ttl(&self, table: &str) -> Result<(), StoreError> {
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await;
        let on = ttl
            .as_ref()
            .ok()
            .and_then(|r| r.time_to_live_description())
            .and_then(|d| d.time_to_live_status());
        if !matches!(
            on,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTR)
                .build()
                .map_err(build_err)?;
            if let Err(e) = self
                .client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
            {
                tracing::warn!(error = %e, table, "could not enable the TTL");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn enable_stream(&self) -> Result<(), StoreError> {
        let d = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_err("DescribeTable", e))?;
        let enabled = d
            .table()
            .and_then(|t| t.stream_specification())
            .is_some_and(|s| s.stream_enabled());
        if !enabled {
            let spec = StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(build_err)?;
            self.client
                .update_table()
                .table_name(&self.table)
                .stream_specification(spec)
                .send()
                .await
                .map_err(|e| sdk_err("UpdateTable", e))?;
            tracing::info!(table = %self.table, "enabled the table's stream for change events");
        }
        // The events log's items expire through the TTL of the events table; the table's own items with a
        // `ttl` (setup links and sessions, audit entries, offboarding records) through the table's, as before
        // the events log had a table of its own.
        for table in [&self.events_table, &self.table] {
            self.ensure_ttl(table).await?;
        }
        Ok(())
    }

    async fn stream_arn(&self) -> Result<String, StoreError> {
        let d = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| sdk_err("DescribeTable", e))?;
        Ok(d.table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "table {} has no stream; change events need one",
                    self.table
                ))
            })?
            .to_string())
    }

    async fn checkpoint(&self, shard: &str) -> Result<Checkpoint, StoreError> {
        let home = self.events_home().await?;
        let cp = self
            .client
            .get_item()
            .table_name(home)
            .set_key(Some(key(STREAM_CHECKPOINTS_PK, shard)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        let item = cp.item.unwrap_or_default();
        Ok(Checkpoint {
            seq: text(&item, "seq"),
            closed: item
                .get("closed")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        })
    }

    async fn save_checkpoint(
        &self,
        shard: &str,
        seq: &str,
        closed: bool,
    ) -> Result<(), StoreError> {
        let home = self.events_home().await?;
        let mut item = key(STREAM_CHECKPOINTS_PK, shard);
        item.insert("seq".into(), AV::S(seq.into()));
        item.insert("closed".into(), AV::Bool(closed));
        self.client
            .put_item()
            .table_name(home)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_err("PutItem", e))?;
        Ok(())
    }

    async fn close_checkpoint(&self, shard: &str) -> Result<(), StoreError> {
        let home = self.events_home().await?;
        self.client
            .update_item()
            .table_name(home)
            .set_key(Some(key(STREAM_CHECKPOINTS_PK, shard)))
            .update_expression("SET #c = :t")
            .expression_attribute_names("#c", "closed")
            .expression_attribute_values(":t", AV::Bool(true))
            .send()
            .await
            .map_err(|e| sdk_err("UpdateItem", e))?;
        Ok(())
    }

    async fn webhook_position(&self, tenant: &str) -> Result<WebhookPosition, StoreError> {
        let home = self.events_home().await?;
        let r = self
            .client
            .get_item()
            .table_name(home)
            .set_key(Some(key(WEBHOOK_POSITIONS_PK, tenant)))
            .projection_expression(
                "#a, parkedOrder, parkedId, parkedType, attempts, lastError, parkedAt",
            )
            .expression_attribute_names("#a", "after")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        let item = r.item.unwrap_or_default();
        Ok(WebhookPosition {
            after: num(&item, "after").unwrap_or(0),
            parked: num(&item, "parkedOrder").map(|order| ParkedEvent {
                order,
                id: text(&item, "parkedId").unwrap_or_default(),
                kind: text(&item, "parkedType").unwrap_or_default(),
                attempts: num(&item, "attempts").unwrap_or(0) as u32,
                last_error: text(&item, "lastError").unwrap_or_default(),
                parked_at: text(&item, "parkedAt"),
            }),
        })
    }

    async fn parked_event_json(&self, tenant: &str) -> Result<Option<String>, StoreError> {
        let home = self.events_home().await?;
        let r = self
            .client
            .get_item()
            .table_name(home)
            .set_key(Some(key(WEBHOOK_POSITIONS_PK, tenant)))
            .projection_expression("parkedEvent")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_err("GetItem", e))?;
        Ok(r.item.as_ref().and_then(|i| text(i, "parkedEvent")))
    }

    async fn save_webhook_position(&self, tenant: &str, after: u64) -> Result<(), StoreError> {
        let home = self.events_home().await?;
        let mut item = key(WEBHOOK_POSITIONS_PK, tenant);
        item.insert("after".into(), AV::N(after.to_string()));
        self.client
            .put_item()
            .table_name(home)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_err("PutItem", e))?;
        Ok(())
    }

    async fn park_event(
        &self,
        tenant: &str,
        after: u64,
        parked: &ParkedEvent,
        json: &str,
    ) -> Result<(), StoreError> {
        let home = self.events_home().await?;
        let mut item = key(WEBHOOK_POSITIONS_PK, tenant);
        item.insert("after".into(), AV::N(after.to_string()));
        item.insert("parkedOrder".into(), AV::N(parked.order.to_string()));
        item.insert("parkedId".into(), AV::S(parked.id.clone()));
        item.insert("parkedType".into(), AV::S(parked.kind.clone()));
        item.insert("parkedEvent".into(), AV::S(json.to_string()));
        item.insert("attempts".into(), AV::N(parked.attempts.to_string()));
        item.insert("lastError".into(), AV::S(parked.last_error.clone()));
        item.insert(
            "parkedAt".into(),
            AV::S(parked.parked_at.clone().unwrap_or_default()),
        );
        self.client
            .put_item()
            .table_name(home)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_err("PutItem", e))?;
        Ok(())
    }

    async fn note_parked_attempt(
        &self,
        tenant: &str,
        order: u64,
        attempts: u32,
        last_error: &str,
    ) -> Result<(), StoreError> {
        let home = self.events_home().await?;
        self.client
            .update_item()
            .table_name(home)
            .set_key(Some(key(WEBHOOK_POSITIONS_PK, tenant)))
            .update_expression("SET attempts = :a, lastError = :e")
            .condition_expression("parkedOrder = :o")
            .expression_attribute_values(":a", AV::N(attempts.to_string()))
            .expression_attribute_values(":e", AV::S(last_error.to_string()))
            .expression_attribute_values(":o", AV::N(order.to_string()))
            .send()
            .await
            .map_err(|e| sdk_err("UpdateItem", e))?;
        Ok(())
    }
}

fn retryable(code: &str) -> bool {
    matches!(
        code,
        "TransactionConflictException"
            | "TransactionInProgressException"
            | "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
    )
}

/// A failed call (of DynamoDB or DynamoDB Streams: the SDKs share the error type): unavailable when it
/// may pass on a retry, internal otherwise.
pub(crate) fn sdk_err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> StoreError {
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            StoreError::Unavailable(format!("{op}: {e}"))
        }
        _ => {
            let code = e.code().unwrap_or("unknown");
            if retryable(code) {
                StoreError::Unavailable(format!("{op}: {code}"))
            } else {
                StoreError::Internal(format!("{op} failed: {code}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_as_numbers_do() {
        assert!(order_sk(9) < order_sk(10));
    }
}
