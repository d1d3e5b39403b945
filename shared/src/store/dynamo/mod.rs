//! The DynamoDB store: one table (and the change events' table beside it, without a stream: the events log,
//! the stream consumer's checkpoints, the webhook positions), conditional writes and transactions, GSIs for `userName` /
//! `displayName` and `externalId`, sharded counters for `totalResults`. See `docs/store.md` for every
//! access pattern and its calls.
//!
//! This module owns [`DynamoStore`] (its constructors and SDK configuration) and the helpers every part
//! shares: item keys ([`key`]), string values ([`s`]), request-build errors ([`build_err`]) and the encoding
//! of a resource as an item ([`to_item`], [`from_item`]). It imports the store's contract
//! (`crate::store`), `config`, `model`, `schema` and [`positions`] (a leaf, for the `DynamoStore` field) —
//! no other child module; they build on it:
//!
//! | module | owns | imports (besides this one) |
//! |---|---|---|
//! | [`table`] | table creation, warm-up, transactions and the classification of their errors, capacity recording | — |
//! | [`members`] | member items: `MemberStore`, join/leave | `table` |
//! | [`listing`] | `list`: plan, index queries, filtered scans, unfiltered paging with [`positions`] | `table`, `positions` |
//! | [`resources`] | resource items: `ResourceStore` (its `list` is [`listing`]'s), uniqueness guards, counter updates | `table`, `members` |
//! | [`tokens`] | tenants and tokens: `TokenStore` | `table` |
//! | `clients` | OAuth clients, their secrets, WIF trusts: `ClientStore` | `table` |
//! | `links` | setup links and their page sessions: `LinkStore` | `table` |
//! | `tenants` | the tenant register and audit entries: `TenantStore` (the audit item `table::transact` adds) | `table` |
//! | `events` | the change events' items: `EventLogStore` (the events log), `DeliveryStore` (the table's stream, the consumer's checkpoints, the webhook positions), all in the events table; the Streams client | — |
//! | `events_move` | where the change events' items live (the events table, or the table until they are moved) and their one-time move: `move_events` | `table` |
//! | `offboard` | offboarding: a tenant's items deleted in bounded batches, its record and receipt: `OffboardStore` | `table` |
//! | [`positions`] | index-paging checkpoints (no DynamoDB calls) | — |

mod clients;
mod events;
mod events_move;
mod links;
mod listing;
mod members;
mod offboard;
pub mod positions;
pub use events_move::{EventsMove, CLEAN_AFTER_SECS};
mod resources;
mod table;
mod tenants;
mod tokens;

use crate::config::StoreConfig;
use crate::model::{self, StoredResource};
use crate::schema::ResourceType;
use crate::store::keys::{self, GSI1PK, GSI2PK, PK, SK};
use crate::store::StoreError;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::Client;
use positions::Positions;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use events::sdk_err;

type Item = HashMap<String, AV>;

/// Counter shard attribute: the change sequence, +1 at every create and delete of the type.
const SEQ: &str = "seq";

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The table of the change events' items (the events log, the consumer's checkpoints, the webhook
    /// positions): a second table without a stream, so that writing the log makes no stream records.
    /// `<table>-events` unless [`DynamoStore::with_events_table`] names another (`SCIM_EVENTS_TABLE`).
    events_table: String,
    /// Seen: the events table holds the change events' items (`events_move.rs`; shared by clones).
    events_moved: Arc<AtomicBool>,
    /// Index-paging checkpoints learned by this process (shared by clones).
    positions: Arc<Positions>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        let events_table = crate::config::default_events_table(&table);
        DynamoStore {
            client,
            table,
            events_table,
            events_moved: Arc::default(),
            positions: Arc::default(),
        }
    }

    /// Production client: region and credentials from the standard AWS chain, optional endpoint override.
    pub async fn from_env(cfg: &StoreConfig) -> Self {
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(&sdk, cfg)
    }

    /// From an already loaded AWS configuration (shared with other clients at init).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, cfg: &StoreConfig) -> Self {
        let mut b = aws_sdk_dynamodb::config::Builder::from(sdk).timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(cfg.call_timeout)
                .build(),
        );
        if let Some(ep) = &cfg.endpoint {
            b = b.endpoint_url(ep);
        }
        DynamoStore::new(Client::from_conf(b.build()), cfg.table.clone())
            .with_events_table(cfg.events_table.clone())
    }

    /// Client for a local DynamoDB API (dynoxide, moto, DynamoDB Local): fixed region and dummy
    /// credentials unless the environment supplies its own.
    pub fn local(endpoint: &str, table: impl Into<String>, call_timeout: Duration) -> Self {
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "local".into());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "local".into());
        let conf = local_config(endpoint, call_timeout).credentials_provider(Credentials::new(
            key,
            secret,
            None,
            None,
            "scim-local",
        ));
        DynamoStore::new(Client::from_conf(conf.build()), table)
    }

    /// Client for a local DynamoDB API with explicit credentials (the embedded engine's key, read from the
    /// data directory), whatever the environment holds: every call is signed with them, and so is its
    /// body's hash ([`ContentSha256`]), which the engine's door requires.
    pub fn local_with_credentials(
        endpoint: &str,
        table: impl Into<String>,
        call_timeout: Duration,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Self {
        let conf = engine_sdk_config(endpoint, call_timeout, access_key_id, secret_access_key);
        DynamoStore::new(Client::from_conf(conf.build()), table)
    }

    /// A store whose requests travel through `http` (the embedded engine's in-process transport) instead
    /// of a socket. The SDK builds and parses every call as it does against AWS; it does not sign them,
    /// as there are no credentials to prove to a function call in the same process (no credentials
    /// provider, so the SDK falls back to its no-auth scheme).
    pub fn local_via(
        endpoint: &str,
        table: impl Into<String>,
        call_timeout: Duration,
        http: SharedHttpClient,
    ) -> Self {
        DynamoStore::new(
            Client::from_conf(
                local_config(endpoint, call_timeout)
                    .http_client(http)
                    .allow_no_auth()
                    .build(),
            ),
            table,
        )
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The change events' table ([`DynamoStore::new`]).
    pub fn events_table(&self) -> &str {
        &self.events_table
    }

    /// This store with its change events' items in `table` (`StoreConfig::events_table`).
    pub fn with_events_table(mut self, table: impl Into<String>) -> Self {
        self.events_table = table.into();
        self.events_moved = Arc::default();
        self
    }
}

/// Adds `x-amz-content-sha256` (the body's SHA-256, hex) to each request before it is signed, so that the
/// signature covers the body's hash in a header: the embedded engine's door checks the signature before it
/// reads a body, and the body against that hash after. (The SDK signs this header only for S3.)
#[derive(Debug)]
struct ContentSha256;

impl aws_sdk_dynamodb::config::Intercept for ContentSha256 {
    fn name(&self) -> &'static str {
        "ContentSha256"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use sha2::Digest;
        let req = ctx.request_mut();
        // DynamoDB bodies are always in memory; a streaming one goes without (and the door refuses it).
        if let Some(hash) = req
            .body()
            .bytes()
            .map(|b| hex::encode(sha2::Sha256::digest(b)))
        {
            req.headers_mut().insert("x-amz-content-sha256", hash);
        }
        Ok(())
    }
}

/// The SDK configuration of [`DynamoStore::local_with_credentials`]: a local DynamoDB API signed with these
/// credentials, the body's hash in a signed header ([`ContentSha256`]). Public for the tests and tools
/// that talk to an engine beyond the store's contract (reading raw items, sending tampered requests);
/// production code reaches DynamoDB through the store's traits only (`shared/tests/house_rules.rs`).
pub fn engine_sdk_config(
    endpoint: &str,
    call_timeout: Duration,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_sdk_dynamodb::config::Builder {
    let creds = Credentials::new(
        access_key_id,
        secret_access_key,
        None,
        None,
        "scim-local-engine",
    );
    local_config(endpoint, call_timeout)
        .credentials_provider(creds)
        .interceptor(ContentSha256)
}

/// SDK configuration for a local DynamoDB API: fixed region unless the environment supplies its own; no
/// credentials (public, as [`engine_sdk_config`], for tests and tools).
pub fn local_config(endpoint: &str, call_timeout: Duration) -> aws_sdk_dynamodb::config::Builder {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(call_timeout)
                .build(),
        )
}

/// A number attribute of `item` as u64 (None when absent or not a u64).
fn num(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn key(pk: &str, sk: &str) -> Item {
    let mut k = Item::new();
    k.insert(PK.into(), s(pk));
    k.insert(SK.into(), s(sk));
    k
}

fn s(v: impl Into<String>) -> AV {
    AV::S(v.into())
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Internal(format!("request build: {e}"))
}

fn to_item(tenant: &str, rt: &ResourceType, res: &StoredResource) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(&res.attrs)
        .map_err(|e| StoreError::Internal(format!("encode resource: {e}")))?;
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
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Internal(format!("stored item lacks '{k}'")))
    };
    let attrs = match serde_json::from_str(get("doc")?) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => {
            return Err(StoreError::Internal(
                "stored document is not a JSON object".into(),
            ))
        }
    };
    let version = item
        .get("ver")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Internal("stored item lacks 'ver'".into()))?;
    let mut groups: Vec<String> = item
        .get("grp")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    groups.sort();
    let member_count = item
        .get("mcount")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0) as u64;
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
