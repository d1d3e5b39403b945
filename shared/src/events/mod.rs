//! Change events (`docs/events.md`): what Entra changed, told to the vendor's app reliably. The SCIM write
//! path does nothing for them — no call, no latency: the table's DynamoDB stream (new and old images)
//! records every committed item change, and this module turns those records into domain events.
//!
//! | module | owns | imports (of the crate) |
//! |---|---|---|
//! | [`record`] | one stream record as a [`Change`], from the Streams API or DynamoDB JSON | — |
//! | [`event`] | the [`Event`] type and the events of a record: resources and memberships recognised by their keys, changed paths, `active` transitions | `model`, `schema`, `value` |
//! | [`log`] | the events log: a tenant's events as items in its own partition, in order, idempotent, with a TTL; byte-bounded pages for the Events API, checked against the cursor's position (expired, past the head, another log's) | `store`, `cursor` |
//! | [`cursor`] | the Events API's cursors: a position bound to table and tenant by an HMAC tag of the server's keys (which the caller supplies) | — |
//! | [`owners`] | whether a tenant's events are still wanted (not while it is being deleted, nor after it was offboarded), cached per tenant | `store` |
//! | [`consumer`] | reads the stream (shards, iterators, a checkpoint per shard kept in the table) and appends to the log; runs in `scim-local` and anywhere else | `store` |
//!
//! This module imports `store`, `model`, `schema`, `value` and `config` (nothing of `http`, `service`); `http`
//! imports it for the Events API.

pub mod consumer;
pub mod cursor;
pub mod event;
pub mod log;
pub mod owners;
pub mod record;

pub use consumer::Consumer;
pub use event::Event;
pub use log::EventLog;
pub use record::Change;

use std::time::Duration;

/// Settings of the events log and its consumer, from the environment.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// How long an event stays readable in the events log (`SCIM_EVENTS_RETENTION_DAYS`, default 7):
    /// the item's TTL. DynamoDB deletes expired items within a few days; the Events API never returns one.
    pub retention: Duration,
    /// How often the local consumer asks the stream for new records when it found none
    /// (`SCIM_EVENTS_POLL_MS`, default 200).
    pub poll_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retention: Duration::from_secs(7 * 86_400),
            poll_interval: Duration::from_millis(200),
        }
    }
}

impl EventsConfig {
    pub fn from_env() -> Self {
        let d = EventsConfig::default();
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        EventsConfig {
            retention: num("SCIM_EVENTS_RETENTION_DAYS")
                .map_or(d.retention, |n| Duration::from_secs(n.min(3650) * 86_400)),
            poll_interval: num("SCIM_EVENTS_POLL_MS")
                .map_or(d.poll_interval, Duration::from_millis),
        }
    }
}
