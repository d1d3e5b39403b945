//! The stream consumer: reads the table's DynamoDB stream shard by shard, turns each record into events
//! ([`super::event::events_of`]) and appends them to the events log ([`super::log::EventLog`]).
//!
//! At least once, across crashes and restarts: a shard's checkpoint (the sequence number of the last
//! record whose events are in the log) is written to the table only after those events are, so a restart
//! resumes after it and at worst reads a batch again — whose events the log recognises by id and does not
//! log twice. Checkpoints: item `EVENTS#shards` / `<shard id>` (`seq`, `closed`). A batch holding only
//! the consumer's own checkpoint writes is not checkpointed (else each checkpoint would make another).
//!
//! Order: records of one item arrive in order within a shard; shards are read oldest first (a parent
//! before its children), each to its end, so per-resource order holds.
//!
//! The table's stream and the checkpoints are read and written through [`DeliveryStore`]
//! (`store/events.rs`); the stream's records through the DynamoDB Streams client the store makes
//! ([`DynamoStore::streams_client`]).
//!
//! Imports `store` ([`DeliveryStore`], its errors, and the classification of SDK errors for the Streams
//! calls) and the modules beside it.

use super::event::events_of;
use super::log::EventLog;
use super::record::Change;
use crate::backoff::Backoff;
use crate::store::dynamo::{sdk_err, DynamoStore};
use crate::store::{DeliveryStore, StoreError};
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Partition of the consumer's checkpoints (one item per shard).
pub use crate::store::keys::STREAM_CHECKPOINTS_PK as CHECKPOINT_PK;

/// What the consumer has done since it started (read by tests and the local server's log).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Stream records read.
    pub records: AtomicU64,
    /// Events appended to the log (including any the log recognised as already logged).
    pub events: AtomicU64,
    /// DescribeStream calls made (the shard list is kept between polls: [`DESCRIBE_EVERY`]).
    pub describes: AtomicU64,
}

/// How long the consumer keeps the stream's shard list before it describes the stream again, unless a
/// shard ended meanwhile (then at the next poll). DescribeStream is the one call of a poll whose cost
/// grows with the stream: the embedded engine answers it by reading every record it keeps, so
/// describing at every poll (5 a second) made an idle server's CPU grow with the writes it had ever
/// taken (6 % of a core after 10,000 tenants were onboarded, docs/benchmark.md). Shards only appear when
/// one ends (DynamoDB Streams rolls or splits a shard by closing it; the embedded engine and moto keep
/// one shard per table), so the refresh is a safety net, not how new shards are found.
pub const DESCRIBE_EVERY: Duration = Duration::from_secs(30);

pub struct Consumer {
    streams: aws_sdk_dynamodbstreams::Client,
    store: Arc<dyn DeliveryStore>,
    log: EventLog,
    stream_arn: Option<String>,
    iterators: HashMap<String, String>,
    closed: HashSet<String>,
    /// The stream's shards, oldest first, as last described, and when.
    shards: Vec<String>,
    described: Option<std::time::Instant>,
    describe_every: Duration,
    pub stats: Arc<ConsumerStats>,
    /// Woken after events were logged (the webhook deliverer waits on it).
    pub notify: Arc<tokio::sync::Notify>,
    /// The tenants whose events were logged since the webhook deliverer last took this set (it takes it
    /// when `notify` wakes it, and reads only those tenants' logs). At most one entry per tenant.
    pub logged_tenants: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

impl Consumer {
    pub fn new(
        store: &DynamoStore,
        streams: aws_sdk_dynamodbstreams::Client,
        log: EventLog,
    ) -> Self {
        Consumer {
            streams,
            store: Arc::new(store.clone()),
            log,
            stream_arn: None,
            iterators: HashMap::new(),
            closed: HashSet::new(),
            shards: Vec::new(),
            described: None,
            describe_every: DESCRIBE_EVERY,
            stats: Arc::default(),
            notify: Arc::new(tokio::sync::Notify::new()),
            logged_tenants: Arc::default(),
        }
    }

    /// Make sure the table has its stream (new and old images) and the TTL on `ttl` — a table created by
    /// an older version has neither (local use; on AWS the template declares both). Returns the stream.
    pub async fn ensure_stream(&mut self) -> Result<String, StoreError> {
        self.store.enable_stream().await?;
        self.stream_arn().await
    }

    async fn stream_arn(&mut self) -> Result<String, StoreError> {
        if let Some(a) = &self.stream_arn {
            return Ok(a.clone());
        }
        let arn = self.store.stream_arn().await?;
        self.stream_arn = Some(arn.clone());
        Ok(arn)
    }

    /// Keep the shard list for `every` instead of [`DESCRIBE_EVERY`] (tests).
    pub fn describe_every(mut self, every: Duration) -> Self {
        self.describe_every = every;
        self
    }

    /// The stream's shards, oldest first (a parent shard's records precede its children's): as last
    /// described, unless that is older than `describe_every` or a shard ended since.
    async fn shards(&mut self, arn: &str) -> Result<Vec<String>, StoreError> {
        if self
            .described
            .is_some_and(|at| at.elapsed() < self.describe_every)
        {
            return Ok(self.shards.clone());
        }
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            self.stats.describes.fetch_add(1, Ordering::Relaxed);
            let d = self
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| sdk_err("DescribeStream", e))?;
            let Some(desc) = d.stream_description() else {
                break;
            };
            for s in desc.shards() {
                if let Some(id) = s.shard_id() {
                    let first = s
                        .sequence_number_range()
                        .and_then(|r| r.starting_sequence_number())
                        .unwrap_or("")
                        .to_string();
                    shards.push((format!("{first:0>40}"), id.to_string()));
                }
            }
            match desc.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_string()),
                None => break,
            }
        }
        shards.sort();
        self.shards = shards.into_iter().map(|(_, id)| id).collect();
        self.described = Some(std::time::Instant::now());
        Ok(self.shards.clone())
    }

    /// Read every shard to its current end once, logging the events; returns how many were logged.
    pub async fn poll(&mut self) -> Result<usize, StoreError> {
        let arn = self.stream_arn().await?;
        let shards = self.shards(&arn).await?;
        // Each poll opens every shard again from its checkpoint rather than keeping last poll's iterators:
        // one GetItem and one GetShardIterator more per shard, and no iterator outlives the shard it was
        // made from (moto replaces a table's shard when it rolls back a cancelled transaction, and an old
        // iterator would go on reading the old one: the cancelled write's records, none of the later).
        self.iterators.clear();
        let mut logged = 0;
        for shard in shards {
            if self.closed.contains(&shard) {
                continue;
            }
            let result = self.drain(&arn, &shard).await;
            if self.closed.contains(&shard) || result.is_err() {
                // A shard ended (its children are new shards) or the stream failed: describe it again.
                self.described = None;
            }
            logged += result?;
        }
        if logged > 0 {
            self.notify.notify_one();
        }
        Ok(logged)
    }

    async fn drain(&mut self, arn: &str, shard: &str) -> Result<usize, StoreError> {
        let mut logged = 0;
        loop {
            let iterator = match self.iterators.get(shard) {
                Some(i) => i.clone(),
                None => match self.iterator_from_checkpoint(arn, shard).await? {
                    Some(i) => i,
                    None => return Ok(logged),
                },
            };
            let r = match self
                .streams
                .get_records()
                .shard_iterator(&iterator)
                .limit(1000)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.code(),
                        Some("ExpiredIteratorException" | "TrimmedDataAccessException")
                    ) =>
                {
                    // Start again from the checkpoint at the next poll.
                    self.iterators.remove(shard);
                    return Ok(logged);
                }
                Err(e) => return Err(sdk_err("GetRecords", e)),
            };
            let changes: Vec<Change> = r.records().iter().filter_map(Change::from_sdk).collect();
            self.stats
                .records
                .fetch_add(r.records().len() as u64, Ordering::Relaxed);
            let events: Vec<_> = changes.iter().flat_map(events_of).collect();
            if !events.is_empty() {
                self.log.append(&events).await?;
                if let Ok(mut t) = self.logged_tenants.lock() {
                    t.extend(events.iter().map(|e| e.tenant.clone()));
                }
                logged += events.len();
                self.stats
                    .events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
            }
            let next = r.next_shard_iterator().map(str::to_string);
            let own = |c: &Change| c.pk() == Some(CHECKPOINT_PK);
            if let Some(last) = changes
                .last()
                .filter(|_| next.is_none() || changes.iter().any(|c| !own(c)))
            {
                self.checkpoint(shard, &last.seq, next.is_none()).await?;
            }
            match next {
                None => {
                    if changes.is_empty() {
                        self.checkpoint_closed(shard).await?;
                    }
                    self.iterators.remove(shard);
                    self.closed.insert(shard.to_string());
                    return Ok(logged);
                }
                Some(n) => {
                    self.iterators.insert(shard.to_string(), n);
                    if r.records().is_empty() {
                        return Ok(logged);
                    }
                }
            }
        }
    }

    async fn iterator_from_checkpoint(
        &mut self,
        arn: &str,
        shard: &str,
    ) -> Result<Option<String>, StoreError> {
        let cp = self.store.checkpoint(shard).await?;
        if cp.closed {
            self.closed.insert(shard.to_string());
            return Ok(None);
        }
        let seq = cp.seq;
        let mut req = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard);
        req = match &seq {
            Some(s) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(s),
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let r = req
            .send()
            .await
            .map_err(|e| sdk_err("GetShardIterator", e))?;
        tracing::debug!(
            shard,
            resume_after = seq.as_deref().unwrap_or("-"),
            "stream shard opened"
        );
        Ok(r.shard_iterator().map(str::to_string))
    }

    async fn checkpoint(&self, shard: &str, seq: &str, closed: bool) -> Result<(), StoreError> {
        self.store.save_checkpoint(shard, seq, closed).await
    }

    async fn checkpoint_closed(&self, shard: &str) -> Result<(), StoreError> {
        self.store.close_checkpoint(shard).await
    }

    /// Poll for ever, every `interval` (records that arrive meanwhile are read in one batch),
    /// backing off (up to 30 s) while the table or stream fails.
    pub async fn run(mut self, interval: Duration) {
        let mut failures = 0u32;
        loop {
            match self.poll().await {
                Ok(_) => {
                    failures = 0;
                    // Also after a busy poll: a poll costs a handful of calls whatever it finds, so under a
                    // write storm, polling back to back would compete with the SCIM requests for the engine
                    // (measured: 20x slower writes on the embedded engine); waiting batches the records.
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    failures += 1;
                    let wait = Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
                        .delay(failures);
                    tracing::warn!(error = ?e, wait_ms = wait.as_millis() as u64, "change events: stream read failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
