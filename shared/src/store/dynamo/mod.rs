//! The DynamoDB store: single table, conditional writes and transactions, GSIs for `userName` /
//! `displayName` and `externalId`, sharded counters for `totalResults`. See `docs/store.md` for every
//! access pattern and its calls.

use super::limits;
use super::keys::{self, GSI1, GSI1PK, GSI2, GSI2PK, GUARD_SK, PK, SK};
use super::positions::Positions;
use super::{record_call, record_capacity, ListPage, ListQuery, MemberStatus, Store, StoreError, TokenRecord, TokenStore, MEMBERS_PER_TRANSACTION};
use crate::config::StoreConfig;
use crate::filter::{CompValue, CompareOp, Filter};
use crate::model::{self, StoredResource};
use crate::schema::ResourceType;
use async_trait::async_trait;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeysAndAttributes, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put,
    ConsumedCapacity, ReturnConsumedCapacity, ScalarAttributeType, Select, TableStatus, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Item = HashMap<String, AV>;

/// Items per page when a filter must be evaluated over the tenant's resources.
const SCAN_PAGE: i32 = 500;
/// Items per page when skipping to `startIndex` with `Select=COUNT`.
const SKIP_PAGE: usize = 1000;
/// Counter shard attribute: the change sequence, +1 at every create and delete of the type.
const SEQ: &str = "seq";

/// What the counter shards of a type say.
#[derive(Debug, Clone, Copy)]
struct Counters {
    total: usize,
    seq: u64,
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Index-paging checkpoints learned by this process (shared by clones).
    positions: Arc<Positions>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into(), positions: Arc::default() }
    }

    /// Production client: region and credentials from the standard AWS chain, optional endpoint override.
    pub async fn from_env(cfg: &StoreConfig) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(&sdk, cfg)
    }

    /// From an already loaded AWS configuration (shared with other clients at init).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, cfg: &StoreConfig) -> Self {
        let mut b = aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(cfg.call_timeout).build());
        if let Some(ep) = &cfg.endpoint {
            b = b.endpoint_url(ep);
        }
        DynamoStore::new(Client::from_conf(b.build()), cfg.table.clone())
    }

    /// Client for a local DynamoDB API (dynoxide, moto, DynamoDB Local): fixed region and dummy
    /// credentials unless the environment supplies its own.
    pub fn local(endpoint: &str, table: impl Into<String>, call_timeout: Duration) -> Self {
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "local".into());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "local".into());
        let conf = local_config(endpoint, call_timeout).credentials_provider(Credentials::new(key, secret, None, None, "scim-local"));
        DynamoStore::new(Client::from_conf(conf.build()), table)
    }

    /// Client for a local DynamoDB API with explicit credentials (the embedded engine's key, read from the
    /// data directory), whatever the environment holds: every call is signed with them.
    pub fn local_with_credentials(endpoint: &str, table: impl Into<String>, call_timeout: Duration, access_key_id: &str, secret_access_key: &str) -> Self {
        let creds = Credentials::new(access_key_id, secret_access_key, None, None, "scim-local-engine");
        DynamoStore::new(Client::from_conf(local_config(endpoint, call_timeout).credentials_provider(creds).build()), table)
    }

    /// A store whose requests travel through `http` (the embedded engine's in-process transport) instead
    /// of a socket. The SDK builds and parses every call as it does against AWS; it does not sign them,
    /// as there are no credentials to prove to a function call in the same process (no credentials
    /// provider, so the SDK falls back to its no-auth scheme).
    pub fn local_via(endpoint: &str, table: impl Into<String>, call_timeout: Duration, http: SharedHttpClient) -> Self {
        DynamoStore::new(Client::from_conf(local_config(endpoint, call_timeout).http_client(http).allow_no_auth().build()), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One cheap call that opens the connection (TLS handshake) during init and checks the table exists.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        record_call("DescribeTable");
        self.client.describe_table().table_name(&self.table).send().await.map_err(|e| classify("DescribeTable", e))?;
        Ok(())
    }

    /// Create the table with its GSIs if it does not exist, and wait until it is active (local and test
    /// use; in AWS the SAM template owns the table).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let s = |n: &str| AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build();
        let hash = |n: &str| KeySchemaElement::builder().attribute_name(n).key_type(KeyType::Hash).build();
        let range = |n: &str| KeySchemaElement::builder().attribute_name(n).key_type(KeyType::Range).build();
        let gsi = |name: &str, key: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(hash(key).expect("static key schema"))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("static index definition")
        };
        let res = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(s(PK).expect("static"))
            .attribute_definitions(s(SK).expect("static"))
            .attribute_definitions(s(GSI1PK).expect("static"))
            .attribute_definitions(s(GSI2PK).expect("static"))
            .key_schema(hash(PK).expect("static"))
            .key_schema(range(SK).expect("static"))
            .global_secondary_indexes(gsi(GSI1, GSI1PK))
            .global_secondary_indexes(gsi(GSI2, GSI2PK))
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(classify("CreateTable", e)),
        }
        for _ in 0..120 {
            let d = self.client.describe_table().table_name(&self.table).send().await.map_err(|e| classify("DescribeTable", e))?;
            let status = d.table().and_then(|t| t.table_status().cloned());
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            // dynoxide answers CREATING but the table is usable at once; a put/get probe tells.
            if status == Some(TableStatus::Creating) && self.probe().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Internal(format!("table {} did not become active", self.table)))
    }

    async fn probe(&self) -> bool {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(PK, AV::S("#probe".into()))
            .key(SK, AV::S("#".into()))
            .send()
            .await
            .is_ok()
    }

    async fn query_index(&self, index: &str, key_attr: &str, key: String) -> Result<Vec<Item>, StoreError> {
        limits::index_key(&key)?;
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        // Unique and externalId keys hold a handful of items; the loop is bounded all the same.
        for _ in 0..100 {
            record_call("Query");
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", key_attr)
                .expression_attribute_values(":k", AV::S(key.clone()))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            out.extend(r.items.unwrap_or_default());
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The counter shards of `rt` in one Query: the number of resources, and the sum of the shards'
    /// change sequences (bumped by every create and delete; it keys the paging checkpoints).
    async fn total(&self, tenant: &str, rt: &ResourceType) -> Result<Counters, StoreError> {
        record_call("Query");
        let r = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :p)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AV::S(keys::counter_pk(tenant)))
            .expression_attribute_values(":p", AV::S(keys::counter_prefix(rt)))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        let num = |i: &Item, a: &str| i.get(a).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
        let sum: i64 = r.items().iter().map(|i| num(i, "n")).sum();
        let seq: i64 = r.items().iter().map(|i| num(i, SEQ)).sum();
        Ok(Counters { total: sum.max(0) as usize, seq: seq.max(0) as u64 })
    }

    /// Page through the tenant's resources of type `rt` in id order: skip `skip`, then read `count`.
    ///
    /// Cursor paging passes its `start` key and `seq = None`. Index paging passes `seq` (the counters:
    /// change sequence and total): it starts from the nearest checkpoint at or below position `skip` learned at the
    /// same sequence, skips only the rest with `Select=COUNT`, and teaches the checkpoints it passes and
    /// the last item of the page. Its reads are strongly consistent, so that a checkpoint never records a
    /// replica's older state under the newer sequence (it would outlive the request).
    async fn list_unfiltered(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        skip: usize,
        count: usize,
        mut start: Option<Item>,
        seq: Option<Counters>,
    ) -> Result<(Vec<StoredResource>, bool), StoreError> {
        let pk = keys::resource_pk(tenant, rt);
        let mut to_skip = skip;
        if let Some(seq) = seq {
            if let Some((at, id)) = self.positions.nearest(tenant, rt.name, seq.seq, seq.total, skip) {
                start = Some(key(&pk, &id));
                to_skip = skip - at;
            }
        }
        let learn = |position: usize, last: Option<&Item>| {
            if let (Some(seq), Some(id)) = (seq, last.and_then(|k| k.get(SK)).and_then(|v| v.as_s().ok())) {
                self.positions.learn(tenant, rt.name, seq.seq, seq.total, position, id);
            }
        };
        while to_skip > 0 {
            record_call("Query");
            let r = self
                .partition_query(&pk, start.take())
                .select(Select::Count)
                .limit(to_skip.min(SKIP_PAGE) as i32)
                .consistent_read(seq.is_some())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            to_skip = to_skip.saturating_sub(r.count as usize);
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => {
                    learn(skip - to_skip, Some(&k));
                    start = Some(k)
                }
                _ => return Ok((Vec::new(), false)),
            }
        }
        let mut out = Vec::with_capacity(count);
        let mut more = false;
        let mut last: Option<Item> = None;
        while out.len() < count {
            record_call("Query");
            let r = self
                .partition_query(&pk, start.take())
                .limit((count - out.len()) as i32)
                .consistent_read(seq.is_some())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            let items = r.items.unwrap_or_default();
            for item in &items {
                out.push(from_item(item)?);
            }
            if let Some(i) = items.into_iter().last() {
                last = Some(i);
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => {
                    more = true;
                    start = Some(k)
                }
                _ => {
                    more = false;
                    break;
                }
            }
        }
        learn(skip + out.len(), last.as_ref());
        Ok((out, more))
    }

    fn partition_query(&self, pk: &str, start: Option<Item>) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AV::S(pk.to_string()))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(TOTAL)
    }

    /// Evaluate `filter` over the tenant's resources, page by page, examining at most `max_scan`.
    async fn scan_filtered(&self, tenant: &str, rt: &'static ResourceType, filter: &Filter, max_scan: usize) -> Result<Vec<StoredResource>, StoreError> {
        let pk = keys::resource_pk(tenant, rt);
        let mut start: Option<Item> = None;
        let mut examined = 0usize;
        let mut matches = Vec::new();
        loop {
            record_call("Query");
            // Read at most one item past the bound: seeing it proves the bound is exceeded.
            let limit = (max_scan + 1 - examined).min(SCAN_PAGE as usize) as i32;
            let r = self
                .partition_query(&pk, start.take())
                .limit(limit)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            for item in r.items.unwrap_or_default() {
                examined += 1;
                let res = from_item(&item)?;
                if filter.matches(&model::render(&res, rt, ""), rt) {
                    matches.push(res);
                }
            }
            if examined > max_scan {
                return Err(StoreError::TooMany(format!(
                            "This filter cannot use an index and the directory holds more than {max_scan} {}s; \
                             filter on userName, externalId or id with eq (alone or combined with and), or ask the operator to raise SCIM_MAX_FILTER_SCAN",
                    rt.name
                )));
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(matches),
            }
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        record_call("TransactWriteItems");
        match self.client.transact_write_items().set_transact_items(Some(items)).return_consumed_capacity(TOTAL).send().await {
            Ok(out) => {
                record_write(out.consumed_capacity());
                Ok(())
            }
            Err(SdkError::ServiceError(se)) => match se.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons: Vec<String> = c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect();
                    if reasons.iter().any(|r| r == "TransactionConflict") {
                        return Err(TxError::Store(StoreError::Contention));
                    }
                    if reasons.iter().any(|r| r == "ThrottlingError" || r == "ProvisionedThroughputExceeded") {
                        return Err(TxError::Store(StoreError::Throttled("transaction throttled".into())));
                    }
                    Err(TxError::Cancelled(reasons))
                }
                other => Err(TxError::Store(classify_code("TransactWriteItems", other.code(), &format!("{other:?}")))),
            },
            Err(e) => Err(TxError::Store(classify("TransactWriteItems", e))),
        }
    }
}

enum TxError {
    /// Condition failures, one reason per item in request order (`ConditionalCheckFailed`, `None`, …).
    Cancelled(Vec<String>),
    Store(StoreError),
}

fn failed(reasons: &[String], index: usize) -> bool {
    reasons.get(index).is_some_and(|r| r == "ConditionalCheckFailed")
}

/// Every item call asks DynamoDB for the capacity it consumed (table and indexes together): free, and it
/// lets the audit line and the benchmark report the cost of each SCIM operation.
const TOTAL: ReturnConsumedCapacity = ReturnConsumedCapacity::Total;

fn units<'a>(cc: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
    cc.into_iter().filter_map(ConsumedCapacity::capacity_units).sum()
}

fn record_read<'a>(cc: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    record_capacity(units(cc), 0.0);
}

fn record_write<'a>(cc: impl IntoIterator<Item = &'a ConsumedCapacity>) {
    record_capacity(0.0, units(cc));
}

/// SDK configuration for a local DynamoDB API: fixed region unless the environment supplies its own.
fn local_config(endpoint: &str, call_timeout: Duration) -> aws_sdk_dynamodb::config::Builder {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(call_timeout).build())
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(op: &str, e: SdkError<E, R>) -> StoreError {
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
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded" | "LimitExceededException") => {
            tracing::warn!(op, code, "dynamodb throttled");
            StoreError::Throttled(format!("{op}: {}", code.unwrap_or("")))
        }
        Some("TransactionConflictException" | "TransactionInProgressException") => StoreError::Contention,
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

fn s(v: impl Into<String>) -> AV {
    AV::S(v.into())
}

fn to_item(tenant: &str, rt: &ResourceType, res: &StoredResource) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(&res.attrs).map_err(|e| StoreError::Internal(format!("encode resource: {e}")))?;
    let mut item = Item::new();
    item.insert(PK.into(), s(keys::resource_pk(tenant, rt)));
    item.insert(SK.into(), s(&res.id));
    item.insert("id".into(), s(&res.id));
    item.insert("doc".into(), s(doc));
    item.insert("created".into(), s(&res.created));
    item.insert("modified".into(), s(&res.last_modified));
    item.insert("ver".into(), AV::N(res.version.to_string()));
    if let Some(u) = model::unique_key(rt, &res.attrs) {
        item.insert(GSI1PK.into(), s(keys::gsi1pk(tenant, rt, &u)));
    }
    if let Some(ext) = res.attrs.get("externalId").and_then(|v| v.as_str()) {
        item.insert(GSI2PK.into(), s(keys::gsi2pk(tenant, rt, ext)));
    }
    Ok(item)
}

fn from_item(item: &Item) -> Result<StoredResource, StoreError> {
    let get = |k: &str| -> Result<&String, StoreError> {
        item.get(k).and_then(|v| v.as_s().ok()).ok_or_else(|| StoreError::Internal(format!("stored item lacks '{k}'")))
    };
    let attrs = match serde_json::from_str(get("doc")?) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(StoreError::Internal("stored document is not a JSON object".into())),
    };
    let version = item
        .get("ver")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Internal("stored item lacks 'ver'".into()))?;
    let mut groups: Vec<String> = item.get("grp").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    groups.sort();
    let member_count = item.get("mcount").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0).max(0) as u64;
    Ok(StoredResource {
        id: get("id")?.clone(),
        attrs,
        created: get("created")?.clone(),
        last_modified: get("modified")?.clone(),
        version,
        groups,
        member_count,
    })
}

/// How a filter can be served: by key, by index, or only by evaluating it over the tenant's resources.
#[derive(Debug, PartialEq)]
enum Access {
    ById(String),
    ByUnique(String),
    ByExternalId(String),
    Evaluate,
}

/// Find an `eq` on `id`, the unique attribute or `externalId` that every match must satisfy (the filter
/// itself, or one side of an `and`); the full filter is still evaluated on what the key access returns.
fn plan(filter: &Filter, rt: &ResourceType) -> Access {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(v) }
            if path.sub.is_none() && path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(&rt.core.id)) =>
        {
            let n = path.name.as_str();
            if n.eq_ignore_ascii_case("id") {
                Access::ById(v.clone())
            } else if model::unique_attr(rt).is_some_and(|u| u.eq_ignore_ascii_case(n)) {
                Access::ByUnique(v.to_lowercase())
            } else if n.eq_ignore_ascii_case("externalId") {
                Access::ByExternalId(v.clone())
            } else {
                Access::Evaluate
            }
        }
        Filter::And(a, b) => match plan(a, rt) {
            Access::Evaluate => plan(b, rt),
            found => found,
        },
        _ => Access::Evaluate,
    }
}

/// One page of `matches` (sorted by id): by `startIndex`, or after the cursor's id.
fn page(mut matches: Vec<StoredResource>, q: ListQuery<'_>) -> ListPage {
    let total = matches.len();
    let skip = match q.after {
        Some(after) => matches.partition_point(|r| r.id.as_str() <= after),
        None => q.start_index.saturating_sub(1).min(total),
    };
    let more = total > skip + q.count;
    let items = matches.drain(skip..).take(q.count).collect();
    ListPage { total, items, more }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, tenant: &str, rt: &'static ResourceType, id: &str) -> Result<Option<StoredResource>, StoreError> {
        limits::id("The id", id)?;
        record_call("GetItem");
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::resource_pk(tenant, rt)))
            .key(SK, s(id))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        record_read(r.consumed_capacity());
        r.item.as_ref().map(from_item).transpose()
    }

    async fn create(&self, tenant: &str, rt: &'static ResourceType, res: &StoredResource) -> Result<(), StoreError> {
        limits::resource(tenant, rt, &res.id, &res.attrs, &res.groups)?;
        let mut items = vec![put(&self.table, to_item(tenant, rt, res)?, "attribute_not_exists(#pk)", None)?];
        let unique = model::unique_key(rt, &res.attrs);
        if let Some(u) = &unique {
            items.push(put(&self.table, guard_item(tenant, rt, u, &res.id), "attribute_not_exists(#pk)", None)?);
        }
        items.push(counter_update(&self.table, tenant, rt, 1)?);
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if unique.is_some() && failed(&r, 1) => Err(uniqueness(rt, res)),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!("create cancelled: {r:?}"))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn replace(&self, tenant: &str, rt: &'static ResourceType, old: &StoredResource, new: &StoredResource) -> Result<(), StoreError> {
        limits::resource(tenant, rt, &new.id, &new.attrs, &new.groups)?;
        let (old_key, new_key) = (model::unique_key(rt, &old.attrs), model::unique_key(rt, &new.attrs));
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
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => Err(StoreError::VersionConflict),
                Err(e) => Err(classify("UpdateItem", e)),
            };
        }
        let mut items = vec![TransactWriteItem::builder().update(upd.into_transact(&self.table)?).build()];
        let mut new_guard_at = None;
        if let Some(u) = &new_key {
            new_guard_at = Some(items.len());
            items.push(put(&self.table, guard_item(tenant, rt, u, &new.id), "attribute_not_exists(#pk)", None)?);
        }
        if let Some(u) = &old_key {
            items.push(delete_guard(&self.table, tenant, rt, u, &old.id)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Err(StoreError::VersionConflict),
            Err(TxError::Cancelled(r)) if new_guard_at.is_some_and(|i| failed(&r, i)) => Err(uniqueness(rt, new)),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!("replace cancelled: {r:?}"))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn delete(&self, tenant: &str, rt: &'static ResourceType, existing: &StoredResource) -> Result<(), StoreError> {
        // Memberships go first, so an interrupted delete leaves a consistent resource a retry finishes.
        let mut inline: Vec<TransactWriteItem> = Vec::new();
        let mut ver = existing.version;
        if rt.name == "Group" {
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
                let user = user_groups_builder(&self.table, tenant, &existing.id, "DELETE", grp, &now)
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
            Err(TxError::Cancelled(r)) if r.iter().any(|x| x == "ConditionalCheckFailed") => Err(StoreError::VersionConflict),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!("delete cancelled: {r:?}"))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn list(&self, tenant: &str, rt: &'static ResourceType, q: ListQuery<'_>) -> Result<ListPage, StoreError> {
        let Some(filter) = q.filter else {
            let counters = self.total(tenant, rt).await?;
            let total = counters.total;
            let skip = q.start_index.saturating_sub(1);
            if q.count == 0 || skip >= total {
                return Ok(ListPage { total, items: Vec::new(), more: false });
            }
            let (start, seq) = match q.after {
                Some(id) => (Some(key(&keys::resource_pk(tenant, rt), id)), None),
                None => (None, Some(counters)),
            };
            let (items, more) = self.list_unfiltered(tenant, rt, skip, q.count, start, seq).await?;
            return Ok(ListPage { total, items, more });
        };
        let candidates = match plan(filter, rt) {
            Access::ById(id) => self.get(tenant, rt, &id).await?.into_iter().collect(),
            Access::ByUnique(u) => {
                self.query_index(GSI1, GSI1PK, keys::gsi1pk(tenant, rt, &u)).await?.iter().map(from_item).collect::<Result<Vec<_>, _>>()?
            }
            Access::ByExternalId(x) => {
                self.query_index(GSI2, GSI2PK, keys::gsi2pk(tenant, rt, &x)).await?.iter().map(from_item).collect::<Result<Vec<_>, _>>()?
            }
            Access::Evaluate => return Ok(page(self.scan_filtered(tenant, rt, filter, q.max_scan).await?, q)),
        };
        let mut matches: Vec<StoredResource> = candidates.into_iter().filter(|r| filter.matches(&model::render(r, rt, ""), rt)).collect();
        matches.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(page(matches, q))
    }

    async fn member_status(&self, tenant: &str, group_id: &str, ids: &[String]) -> Result<MemberStatus, StoreError> {
        let mut status = MemberStatus::default();
        let users_pk = keys::resource_pk(tenant, crate::schema::user_resource_type());
        let members_pk = keys::members_pk(tenant, group_id);
        let group_pk = keys::resource_pk(tenant, crate::schema::group_resource_type());
        limits::id("The group id", group_id)?;
        for id in ids {
            limits::id(&format!("Member value \"{}…\"", id.chars().take(40).collect::<String>()), id)?;
        }
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        // 49 ids = 98 keys, plus the group's own key in the first batch: within BatchGetItem's 100.
        let chunks: Vec<&[&String]> = if unique.is_empty() { vec![&[]] } else { unique.chunks(49).collect() };
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
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
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
                for item in r.responses.and_then(|mut m| m.remove(&self.table)).unwrap_or_default() {
                    let (Some(pk), Some(sk)) = (item.get(PK).and_then(|v| v.as_s().ok()), item.get(SK).and_then(|v| v.as_s().ok())) else {
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
                pending = r.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
            if pending.is_some() {
                return Err(StoreError::Throttled("BatchGetItem left keys unprocessed".into()));
            }
        }
        Ok(status)
    }

    async fn list_members(&self, tenant: &str, group_id: &str, limit: usize) -> Result<Vec<String>, StoreError> {
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
            out.extend(r.items().iter().filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()).cloned()));
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

    async fn change_members(&self, tenant: &str, group_id: &str, adds: &[String], removes: &[String], now: &str) -> Result<(), StoreError> {
        limits::id("The group id", group_id)?;
        for id in adds.iter().chain(removes) {
            limits::id("A member value", id)?;
        }
        let changes: Vec<(bool, &String)> = adds.iter().map(|a| (true, a)).chain(removes.iter().map(|r| (false, r))).collect();
        for chunk in changes.chunks(MEMBERS_PER_TRANSACTION) {
            let mut items = Vec::with_capacity(chunk.len() * 2 + 1);
            let mut delta = 0i64;
            for (add, id) in chunk {
                if *add {
                    delta += 1;
                    items.extend(join_group(&self.table, tenant, group_id, id, now)?);
                } else {
                    delta -= 1;
                    items.extend(leave_group_member_side(&self.table, tenant, group_id, id, now)?);
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
    async fn transact_members(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(_)) => Err(StoreError::VersionConflict),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Remove every member of a group (before the group itself is deleted), page by page.
    async fn remove_all_members(&self, tenant: &str, group_id: &str) -> Result<(), StoreError> {
        loop {
            let batch = self.member_page(tenant, group_id, MEMBERS_PER_TRANSACTION).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut items = Vec::new();
            let now = model::now_rfc3339();
            for id in &batch {
                items.extend(leave_group_member_side(&self.table, tenant, group_id, id, &now)?);
            }
            self.transact_members(items).await?;
        }
    }

    async fn member_page(&self, tenant: &str, group_id: &str, n: usize) -> Result<Vec<String>, StoreError> {
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
        Ok(r.items().iter().filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()).cloned()).collect())
    }
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        record_call("GetItem");
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::token_pk(hash), GUARD_SK)))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        record_read(r.consumed_capacity());
        Ok(r.item.map(|i| token_record(&i, hash)))
    }

    async fn create_tenant(&self, tenant: &str, now: &str) -> Result<bool, StoreError> {
        let mut item = key(keys::TENANTS_PK, tenant);
        item.insert("created".into(), s(now));
        record_call("PutItem");
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
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
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(classify("PutItem", e)),
        }
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.sort_keys(keys::TENANTS_PK).await.map(|items| items.into_iter().map(|(sk, _)| sk).collect())
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
        let tenant_exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::TENANTS_PK, &rec.tenant)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(tenant_exists).build(),
            put(&self.table, by_hash, "attribute_not_exists(#pk)", None)?,
            put(&self.table, by_tenant, "attribute_not_exists(#pk)", None)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(r)) if failed(&r, 0) => Err(StoreError::Internal(format!("tenant {} does not exist", rec.tenant))),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!("token not stored: {r:?}"))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    async fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(self
            .sort_keys(&keys::tenant_tokens_pk(tenant))
            .await?
            .into_iter()
            .map(|(_, item)| {
                let hash = item.get("hash").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                token_record(&item, &hash)
            })
            .collect())
    }

    async fn revoke_token(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let tokens = self.list_tokens(tenant).await?;
        let Some(rec) = tokens.into_iter().find(|t| t.id == id) else { return Ok(false) };
        let del = |k: Item| -> Result<TransactWriteItem, StoreError> {
            Ok(TransactWriteItem::builder().delete(Delete::builder().table_name(&self.table).set_key(Some(k)).build().map_err(build_err)?).build())
        };
        let items = vec![del(key(&keys::token_pk(&rec.hash), GUARD_SK))?, del(key(&keys::tenant_tokens_pk(tenant), id))?];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) => Err(StoreError::Internal(format!("revoke cancelled: {r:?}"))),
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
            let r = self.partition_query(pk, start.take()).consistent_read(true).send().await.map_err(|e| classify("Query", e))?;
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
    let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    TokenRecord {
        hash: hash.to_string(),
        tenant: get("tenant"),
        id: get("id"),
        label: get("label"),
        created: get("created"),
        user: item.get("user").and_then(|v| v.as_s().ok()).cloned(),
    }
}

fn key(pk: &str, sk: &str) -> Item {
    let mut k = Item::new();
    k.insert(PK.into(), s(pk));
    k.insert(SK.into(), s(sk));
    k
}

/// The member item (must be new) and the user's `groups` (the user must exist).
fn join_group(table: &str, tenant: &str, group_id: &str, user_id: &str, now: &str) -> Result<[TransactWriteItem; 2], StoreError> {
    let mut item = key(&keys::members_pk(tenant, group_id), user_id);
    item.insert("value".into(), s(user_id));
    let member = put(table, item, "attribute_not_exists(#pk)", None)?;
    let user = user_groups_update(table, tenant, user_id, group_id, "ADD", now)?;
    Ok([member, user])
}

/// Delete a member item, which must exist (a concurrent change cancels the transaction).
fn delete_member_item(table: &str, tenant: &str, group_id: &str, user_id: &str) -> Result<TransactWriteItem, StoreError> {
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
fn leave_group_member_side(table: &str, tenant: &str, group_id: &str, user_id: &str, now: &str) -> Result<[TransactWriteItem; 2], StoreError> {
    Ok([delete_member_item(table, tenant, group_id, user_id)?, user_groups_update(table, tenant, user_id, group_id, "DELETE", now)?])
}

/// Used when a user is deleted: its member item goes, and the group's count and version change.
fn leave_group(table: &str, tenant: &str, group_id: &str, user_id: &str) -> Result<[TransactWriteItem; 2], StoreError> {
    Ok([delete_member_item(table, tenant, group_id, user_id)?, group_touch(table, tenant, group_id, -1, &model::now_rfc3339())?])
}

/// A membership change is a change of the user too (its `groups`): `grp`, version and lastModified move
/// together, so a write conditioned on the user's version (a delete, a PUT) that read the user before the
/// membership changed loses and reads again — it never deletes a user while leaving its new membership
/// behind.
fn user_groups_update(table: &str, tenant: &str, user_id: &str, group_id: &str, action: &str, now: &str) -> Result<TransactWriteItem, StoreError> {
    let grp = AV::Ss(vec![group_id.to_string()]);
    let u = user_groups_builder(table, tenant, user_id, action, grp, now)
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().update(u).build())
}

/// `ADD`/`DELETE` group ids in the user's `grp` set, bumping its version and lastModified.
fn user_groups_builder(table: &str, tenant: &str, user_id: &str, action: &str, groups: AV, now: &str) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let expression = match action {
        "ADD" => "ADD #grp :g, #ver :one SET #mod = :now".to_string(),
        other => format!("{other} #grp :g ADD #ver :one SET #mod = :now"),
    };
    Update::builder()
        .table_name(table)
        .set_key(Some(key(&keys::resource_pk(tenant, crate::schema::user_resource_type()), user_id)))
        .update_expression(expression)
        .expression_attribute_names("#grp", "grp")
        .expression_attribute_names("#ver", "ver")
        .expression_attribute_names("#mod", "modified")
        .expression_attribute_values(":g", groups)
        .expression_attribute_values(":one", AV::N("1".into()))
        .expression_attribute_values(":now", s(now))
}

/// A membership change is a change of the group: count, version and lastModified move with it.
fn group_touch(table: &str, tenant: &str, group_id: &str, delta: i64, now: &str) -> Result<TransactWriteItem, StoreError> {
    let u = Update::builder()
        .table_name(table)
        .set_key(Some(key(&keys::resource_pk(tenant, crate::schema::group_resource_type()), group_id)))
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
    fn new(tenant: &str, rt: &ResourceType, old: &StoredResource, new: &StoredResource) -> Result<Self, StoreError> {
        let item = to_item(tenant, rt, new)?;
        let mut key = Item::new();
        let mut names = HashMap::new();
        let mut values = Item::new();
        let mut set = Vec::new();
        let mut remove = Vec::new();
        for (i, attr) in ["doc", "modified", "ver", GSI1PK, GSI2PK].into_iter().enumerate() {
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
        Ok(ResourceUpdate { key, expression, condition: "#ver = :ver", names, values })
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
    let value = res.attrs.get(attr).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    StoreError::Uniqueness { attr: attr.to_string(), value }
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Internal(format!("request build: {e}"))
}

fn guard_item(tenant: &str, rt: &ResourceType, unique_lower: &str, id: &str) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(keys::guard_pk(tenant, rt, unique_lower)));
    item.insert(SK.into(), s(GUARD_SK));
    item.insert("id".into(), s(id));
    item
}

fn put(table: &str, item: Item, condition: &str, ver: Option<u64>) -> Result<TransactWriteItem, StoreError> {
    let mut b = Put::builder().table_name(table).set_item(Some(item)).condition_expression(condition);
    if condition.contains("#pk") {
        b = b.expression_attribute_names("#pk", PK);
    }
    if let Some(v) = ver {
        b = b.expression_attribute_names("#ver", "ver").expression_attribute_values(":ver", AV::N(v.to_string()));
    }
    Ok(TransactWriteItem::builder().put(b.build().map_err(build_err)?).build())
}

fn delete_guard(table: &str, tenant: &str, rt: &ResourceType, unique_lower: &str, id: &str) -> Result<TransactWriteItem, StoreError> {
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

fn counter_update(table: &str, tenant: &str, rt: &ResourceType, delta: i64) -> Result<TransactWriteItem, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::AttrPath;
    use crate::schema::user_resource_type;

    fn eq(name: &str, v: &str) -> Filter {
        Filter::Compare { path: AttrPath { urn: None, name: name.into(), sub: None }, op: CompareOp::Eq, value: CompValue::Str(v.into()) }
    }

    #[test]
    fn plan_pushes_down_eq_on_keys() {
        let rt = user_resource_type();
        assert_eq!(plan(&eq("USERNAME", "Ann"), rt), Access::ByUnique("ann".into()));
        assert_eq!(plan(&eq("externalId", "X"), rt), Access::ByExternalId("X".into()));
        assert_eq!(plan(&eq("id", "abc"), rt), Access::ById("abc".into()));
        assert_eq!(plan(&eq("displayName", "x"), rt), Access::Evaluate);
        let and = Filter::And(Box::new(eq("title", "t")), Box::new(eq("userName", "u")));
        assert_eq!(plan(&and, rt), Access::ByUnique("u".into()));
        let or = Filter::Or(Box::new(eq("userName", "a")), Box::new(eq("userName", "b")));
        assert_eq!(plan(&or, rt), Access::Evaluate);
    }

    #[test]
    fn page_slices_by_start_index_and_count() {
        let r = |id: &str| StoredResource { id: id.into(), attrs: Default::default(), created: String::new(), last_modified: String::new(), version: 1, ..Default::default() };
        let q = |start_index, count, after| ListQuery { filter: None, start_index, count, max_scan: 10, after };
        let p = page(vec![r("a"), r("b"), r("c")], q(2, 1, None));
        assert_eq!(p.total, 3);
        assert_eq!(p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(p.more);
        assert_eq!(page(vec![r("a")], q(5, 10, None)).items.len(), 0);
        let p = page(vec![r("a"), r("b"), r("c")], q(1, 5, Some("a")));
        assert_eq!((p.items.len(), p.more), (2, false));
    }
}
