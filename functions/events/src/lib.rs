//! The `events` Lambda function's work (docs/events.md, "On AWS"): a batch of the table's stream records,
//! as the event source mapping delivers it, becomes domain events (`scim_core::events::event`), appended
//! to the events log (the Events API reads it) and published to an EventBridge bus, in order.
//!
//! Failures: the log is appended first (idempotent: a redelivered record logs nothing twice); then the
//! events go to EventBridge in `PutEvents` calls of at most 10 entries, the entries a call reports
//! failed retried (with backoff) up to [`PUT_ATTEMPTS`] times. A record whose events still fail — or
//! whose log write fails — is answered as the batch's item failure (`ReportBatchItemFailures`): the
//! mapping retries from that record, bisects, and after `MaximumRetryAttempts` sends it to its on-failure
//! destination (a dead-letter queue with an alarm) and goes on with the records behind it.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use scim_core::backoff::Backoff;
use scim_core::events::event::events_of;
use scim_core::events::{Change, Event, EventLog, EventsConfig};
use scim_core::store::dynamo::DynamoStore;
use serde_json::{json, Value};
use std::time::Duration;

/// Entries per `PutEvents` (EventBridge's limit).
pub const PUT_BATCH: usize = 10;
/// Attempts at the entries of one `PutEvents` call before the record is reported failed.
pub const PUT_ATTEMPTS: u32 = 4;
/// An entry holds at most 256 KB: an event larger than this goes without its resource.
const MAX_DETAIL_BYTES: usize = 200_000;

pub struct Publisher {
    log: EventLog,
    bridge: aws_sdk_eventbridge::Client,
    bus: String,
    source: String,
    first_backoff: Duration,
}

impl Publisher {
    pub fn new(
        log: EventLog,
        bridge: aws_sdk_eventbridge::Client,
        bus: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Publisher {
            log,
            bridge,
            bus: bus.into(),
            source: source.into(),
            first_backoff: Duration::from_millis(100),
        }
    }

    /// From the environment: `SCIM_TABLE` (and `SCIM_DYNAMODB_ENDPOINT`), `SCIM_EVENT_BUS` (the bus's name
    /// or ARN), `SCIM_EVENTS_SOURCE` (the entries' `source`, default `scim`), `SCIM_EVENTS_RETENTION_DAYS`.
    pub async fn from_env() -> Result<Self, String> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let store = DynamoStore::from_sdk_config(&sdk, &scim_core::config::StoreConfig::from_env());
        // A stack from before the events table keeps the change events' items in the table: moved (once,
        // by whichever instance comes first) before this instance appends (docs/events.md).
        store
            .move_events()
            .await
            .map_err(|e| format!("moving the change events into the events table failed: {e:?}"))?;
        let bus = std::env::var("SCIM_EVENT_BUS").map_err(|_| {
            "SCIM_EVENT_BUS is not set (the EventBridge bus of the change events)".to_string()
        })?;
        let source = std::env::var("SCIM_EVENTS_SOURCE").unwrap_or_else(|_| "scim".into());
        let log = EventLog::new(&store, EventsConfig::from_env().retention);
        Ok(Publisher::new(
            log,
            aws_sdk_eventbridge::Client::new(&sdk),
            bus,
            source,
        ))
    }

    /// One invocation: the DynamoDB event's `Records` in order; the answer names the first record that
    /// could not be delivered (`{"batchItemFailures": [{"itemIdentifier": "<sequence number>"}]}`).
    pub async fn handle(&self, event: &Value) -> Value {
        let mut pending: Vec<(String, Event)> = Vec::new();
        for r in event
            .get("Records")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(change) = Change::from_json(r) else {
                continue;
            };
            pending.extend(
                events_of(&change)
                    .into_iter()
                    .map(|e| (change.seq.clone(), e)),
            );
        }
        match self.deliver(&pending).await {
            Ok(()) => json!({"batchItemFailures": []}),
            Err(seq) => json!({"batchItemFailures": [{"itemIdentifier": seq}]}),
        }
    }

    /// Log and publish `events` (each with its record's sequence number); Err: the first record not
    /// delivered.
    pub async fn deliver(&self, events: &[(String, Event)]) -> Result<(), String> {
        let Some((first, _)) = events.first() else {
            return Ok(());
        };
        let all: Vec<Event> = events.iter().map(|(_, e)| e.clone()).collect();
        if let Err(e) = self.log.append(&all).await {
            tracing::warn!(error = ?e, "events log write failed; the batch is retried");
            return Err(first.clone());
        }
        for chunk in events.chunks(PUT_BATCH) {
            let mut failing: Vec<usize> = (0..chunk.len()).collect();
            let backoff = Backoff::new(self.first_backoff, Duration::MAX);
            for attempt in 1..=PUT_ATTEMPTS {
                let entries: Vec<PutEventsRequestEntry> =
                    failing.iter().map(|i| self.entry(&chunk[*i].1)).collect();
                match self
                    .bridge
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let results = out.entries();
                        // Entries answer in request order; one with an error code was not published.
                        failing = failing
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| {
                                results.get(*k).is_none_or(|r| r.error_code().is_some())
                            })
                            .map(|(_, i)| *i)
                            .collect();
                    }
                    Err(e) => tracing::warn!(error = %e, attempt, "PutEvents failed"),
                }
                if failing.is_empty() {
                    break;
                }
                if attempt < PUT_ATTEMPTS {
                    backoff.wait(attempt).await;
                }
            }
            if let Some(i) = failing.first() {
                tracing::warn!(
                    failed = failing.len(),
                    "events not published after retries; the record is reported failed"
                );
                return Err(chunk[*i].0.clone());
            }
        }
        Ok(())
    }

    fn entry(&self, e: &Event) -> PutEventsRequestEntry {
        let mut detail = serde_json::to_string(e).unwrap_or_default();
        if detail.len() > MAX_DETAIL_BYTES {
            let mut small = e.clone();
            small.resource = None;
            small.resource_omitted = Some(true);
            detail = serde_json::to_string(&small).unwrap_or_default();
        }
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&self.source)
            .detail_type(&e.kind)
            .detail(detail)
            .build()
    }
}
