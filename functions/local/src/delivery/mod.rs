//! Event delivery in `scim-local` (`docs/events.md`): the stream consumer as a background task on the
//! server's engine, the events log the Events API reads, and the optional webhook delivery ([`webhook`]).

pub mod webhook;

use scim_core::events::consumer::ConsumerStats;
use scim_core::events::{Consumer, EventLog, EventsConfig};
use scim_core::store::dynamo::DynamoStore;
use std::path::Path;
use std::sync::Arc;
use webhook::WebhookConfig;

/// The file in the data directory holding the webhook's signing secret (0600).
pub const WEBHOOK_SECRET_FILE: &str = "webhook-secret";

/// What [`start`] started.
pub struct LocalEvents {
    pub log: Arc<EventLog>,
    pub stats: Arc<ConsumerStats>,
    /// The webhook's tenants in trouble (for the operator page), when a webhook is configured.
    pub webhook: Option<Arc<webhook::Status>>,
}

/// A consumer of `store`'s table stream, reaching the engine at `endpoint` with the store's transport;
/// `signed`: with the credentials of the environment as `DynamoStore::local` signs (a DynamoDB API on a
/// port: moto), else unsigned (the embedded engine in process).
pub fn consumer(store: &DynamoStore, endpoint: &str, signed: bool, cfg: &EventsConfig) -> Consumer {
    let log = EventLog::new(store, cfg.retention);
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "local".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "local".into());
    let creds = signed.then_some((key.as_str(), secret.as_str()));
    Consumer::new(store, store.streams_client(endpoint, creds), log)
}

/// Enable the stream (and TTL) if the table lacks them, then run the consumer, and the webhook delivery
/// when configured, as background tasks.
pub async fn start(
    store: &DynamoStore,
    endpoint: &str,
    signed: bool,
    cfg: &EventsConfig,
    webhook: Option<WebhookConfig>,
) -> Result<LocalEvents, String> {
    let mut c = consumer(store, endpoint, signed, cfg);
    c.ensure_stream()
        .await
        .map_err(|e| format!("change events: {e:?}"))?;
    let log = Arc::new(EventLog::new(store, cfg.retention));
    let stats = c.stats.clone();
    // The consumer names the tenants it logged events for and wakes the deliverer (no polling of tenants).
    let wake = webhook::Wake {
        notify: c.notify.clone(),
        tenants: c.logged_tenants.clone(),
    };
    tokio::spawn(c.run(cfg.poll_interval));
    let status = webhook.map(|w| {
        let status = Arc::new(webhook::Status::default());
        tokio::spawn(webhook::deliver(
            store.clone(),
            (*log).clone(),
            w,
            wake,
            status.clone(),
        ));
        status
    });
    Ok(LocalEvents {
        log,
        stats,
        webhook: status,
    })
}

/// The webhook settings from the environment (`SCIM_EVENTS_WEBHOOK_URL`; the secret from
/// `SCIM_EVENTS_WEBHOOK_SECRET`, or kept in the data directory, made at first use), None when no URL.
pub fn webhook_from_env(data_dir: &Path) -> Result<Option<WebhookConfig>, String> {
    let Ok(url) = std::env::var("SCIM_EVENTS_WEBHOOK_URL") else {
        return Ok(None);
    };
    // The local server's HTTP client speaks plain HTTP only (a receiver on this machine or the LAN).
    if !url.starts_with("http://") {
        return Err("SCIM_EVENTS_WEBHOOK_URL must be an http:// URL (the local server delivers over plain HTTP)".into());
    }
    let secret = match std::env::var("SCIM_EVENTS_WEBHOOK_SECRET") {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            let file = data_dir.join(WEBHOOK_SECRET_FILE);
            match std::fs::read_to_string(&file) {
                Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
                _ => {
                    let s = scim_core::auth::generate_token();
                    crate::engine::private_dir::write_private(&file, &s)
                        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                    s
                }
            }
        }
    };
    Ok(Some(WebhookConfig {
        url,
        secret,
        ..WebhookConfig::default()
    }))
}
