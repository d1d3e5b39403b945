//! Start-up of a Lambda function, done once per instance: logging, configuration, the DynamoDB client,
//! the bearer token, and a warm-up call so the first request does not pay the TLS handshake.

use crate::auth::Auth;
use crate::config::{HttpConfig, Limits, StoreConfig};
use crate::http::AppState;
use crate::service::Service;
use crate::store::dynamo::DynamoStore;
use std::sync::Arc;
use std::time::Instant;

/// Build the state a Lambda handler serves. Fails (so the function refuses to start) when no token is
/// configured: a SCIM endpoint without authentication must never come up.
pub async fn lambda_state() -> Result<AppState, String> {
    let started = Instant::now();
    let token = std::env::var("SCIM_BEARER_TOKEN")
        .map_err(|_| "SCIM_BEARER_TOKEN is not set: refusing to start without a bearer token".to_string())?;
    let auth = Auth::from_token(&token).map_err(|e| format!("SCIM_BEARER_TOKEN: {e}"))?;
    let store_cfg = StoreConfig::from_env();
    let store = DynamoStore::from_env(&store_cfg).await;
    if let Err(e) = store.warm_up().await {
        // Keep serving: the first request will report the problem as a SCIM error and a log line.
        tracing::error!(table = %store_cfg.table, error = ?e, "DynamoDB warm-up failed");
    }
    let state = AppState::new(Service::new(Arc::new(store), Limits::from_env()), auth, HttpConfig::from_env());
    tracing::info!(init_ms = started.elapsed().as_secs_f64() * 1000.0, table = %store_cfg.table, "initialised");
    Ok(state)
}
