//! Start-up of a Lambda function, done once per instance: logging, configuration, the DynamoDB client,
//! the bearer token, and a warm-up call so the first request does not pay the TLS handshake.
//!
//! Under `cargo lambda watch` (`SCIM_LOCAL_ENGINE=1` and the `local-engine` feature, both set in the
//! workspace's `Cargo.toml`) the store is the running `scim-local`'s embedded engine and the token the one
//! it keeps, both found through its data directory (`local_engine`); `SCIM_DYNAMODB_ENDPOINT` and
//! `SCIM_BEARER_TOKEN`, when set, still win. Built without the feature (every deployed function), the
//! switch is refused at start. Imports `auth`, `config`, `http`, `oauth` (the signing keys), `events`,
//! `service`, `store`, `profile` and `local_engine`.

use crate::auth::Auth;
use crate::config::{HttpConfig, Limits, StoreConfig};
use crate::http::AppState;
#[cfg(feature = "local-engine")]
use crate::local_engine::{handler_data_dir, read_token, RunningEngine};
use crate::service::Service;
use crate::store::dynamo::DynamoStore;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
#[cfg(not(feature = "local-engine"))]
use without_local_engine::{handler_data_dir, read_token, RunningEngine};

/// Build the state a Lambda handler serves. Fails (so the function refuses to start) when no token is
/// configured: a SCIM endpoint without authentication must never come up.
pub async fn lambda_state() -> Result<AppState, String> {
    state(true).await
}

/// The state of the `token` Lambda function: no single-tenant token needed (it serves the OAuth token
/// endpoint only), but a signing key ring is (see `oauth::from_env`): without one it refuses to start.
pub async fn token_endpoint_state() -> Result<AppState, String> {
    let state = state(false).await?;
    if state.auth.oauth().is_none() {
        return Err(format!(
            "no OAuth signing keys configured (set {} or {}): refusing to start",
            crate::oauth::KEYS_SSM_VAR,
            crate::oauth::KEYS_VAR
        ));
    }
    Ok(state)
}

/// The state of the `manage` Lambda function (the management API, `/manage/v1`): no single-tenant token
/// (the API authenticates its callers by API Gateway's IAM authorisation, never by a SCIM token); the
/// OAuth signing keys when configured, so that a tenant's connection details say whether the token
/// endpoint serves it.
pub async fn manage_state() -> Result<AppState, String> {
    state(false).await
}

/// The state of the `setup` Lambda function (the customer's setup page, `/setup`): like the management
/// API's, no single-tenant token (a setup link is the page's credential); the OAuth signing keys when
/// configured, so that the page shows the token endpoint and the connection check can pass.
pub async fn setup_state() -> Result<AppState, String> {
    state(false).await
}

async fn state(single_token: bool) -> Result<AppState, String> {
    let started = Instant::now();
    let local = handler_data_dir()?;
    let store_cfg = StoreConfig::from_env();
    // The AWS configuration chain (region, credentials: it probes the instance metadata service when the
    // environment names no region) only when something here talks to AWS or uses its credentials.
    let aws_needed = local.is_none()
        || store_cfg.endpoint.is_some()
        || std::env::var_os(SSM_PARAMETER_VAR).is_some()
        || std::env::var_os(crate::oauth::KEYS_SSM_VAR).is_some();
    let sdk = if aws_needed {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await
    } else {
        aws_config::SdkConfig::builder().build()
    };
    let auth = if !single_token {
        Auth::tenant_tokens_only()
    } else {
        match token(&sdk, local.as_deref()).await {
            Ok((token, origin)) => {
                Auth::from_token(&token).map_err(|e| format!("{origin}: {e}"))?
            }
            // Multi-tenant deployments may run on tenant tokens (issued with scim-admin) alone.
            Err(_) if multi_tenant() => Auth::tenant_tokens_only(),
            Err(e) => return Err(e),
        }
    };
    // OAuth access tokens and the token endpoint, when a signing key ring is configured.
    let auth = auth.with_oauth(crate::oauth::from_env(&sdk, local.as_deref()).await?);
    let engine = match (&local, &store_cfg.endpoint) {
        (Some(dir), None) => Some((RunningEngine::find(dir)?, dir)),
        _ => None,
    };
    let store = match &engine {
        Some((engine, _)) => engine
            .store(store_cfg.table.clone(), store_cfg.call_timeout)
            .with_events_table(store_cfg.events_table.clone()),
        None => DynamoStore::from_sdk_config(&sdk, &store_cfg),
    };
    if let Err(e) = store.warm_up().await {
        if let Some((engine, dir)) = &engine {
            // Nothing to serve from: say so at once instead of answering every request 503.
            return Err(format!(
                "the scim-local engine at {} (published in {}) does not answer ({e:?}): is `cargo run --release -p scim-local` running?",
                engine.endpoint(),
                dir.display()
            ));
        }
        // Keep serving: the first request will report the problem as a SCIM error and a log line.
        tracing::error!(table = %store_cfg.table, error = ?e, "DynamoDB warm-up failed");
    }
    let profile = crate::profile::Profile::from_env()?;
    // The events log the Events API reads (docs/events.md; the `events` function writes it).
    let events = Arc::new(crate::events::EventLog::new(
        &store,
        crate::events::EventsConfig::from_env().retention,
    ));
    let mut state = AppState::with_profile(
        Service::new(Arc::new(store), Limits::from_env()),
        auth,
        HttpConfig::from_env(),
        &profile,
    );
    state.events = Some(events);
    tracing::info!(init_ms = started.elapsed().as_secs_f64() * 1000.0, table = %store_cfg.table, profile = %profile.name, "initialised");
    Ok(state)
}

/// The name of the SSM SecureString parameter holding the single-tenant token (deployed functions).
const SSM_PARAMETER_VAR: &str = "SCIM_TOKEN_SSM_PARAMETER";

/// `SCIM_MULTI_TENANT=1`: the function may start without a single-tenant token.
fn multi_tenant() -> bool {
    matches!(
        std::env::var("SCIM_MULTI_TENANT").as_deref(),
        Ok("1") | Ok("true")
    )
}

/// The bearer token: from the SSM SecureString parameter named by `SCIM_TOKEN_SSM_PARAMETER` (deployed
/// functions), else from `SCIM_BEARER_TOKEN` (local runs), else, under `cargo lambda watch`, the one the
/// running `scim-local` keeps in `local` (its data directory). None → refuse to start.
async fn token(
    sdk: &aws_config::SdkConfig,
    local: Option<&Path>,
) -> Result<(String, &'static str), String> {
    if let Ok(name) = std::env::var(SSM_PARAMETER_VAR) {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let out = ssm
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read the bearer token from SSM parameter {name}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            })?;
        let value = out
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| format!("SSM parameter {name} has no value"))?;
        return Ok((value, "the SSM token parameter"));
    }
    if let Ok(t) = std::env::var("SCIM_BEARER_TOKEN") {
        return Ok((t, "SCIM_BEARER_TOKEN"));
    }
    match local {
        Some(dir) => Ok((read_token(dir)?, "scim-local's token file")),
        None => Err("no bearer token configured (set SCIM_TOKEN_SSM_PARAMETER or SCIM_BEARER_TOKEN): refusing to start".into()),
    }
}

/// Built without the `local-engine` feature (a deployed function): no running `scim-local` is ever
/// reached, and `SCIM_LOCAL_ENGINE` switched on is refused rather than ignored (the handler would
/// otherwise go to AWS with a local run's settings).
#[cfg(not(feature = "local-engine"))]
mod without_local_engine {
    use crate::store::dynamo::DynamoStore;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// The switch of `local_engine::SWITCH_VAR`, read here only to refuse it.
    const SWITCH_VAR: &str = "SCIM_LOCAL_ENGINE";
    const NONE: &str = "this build has no local engine (the `local-engine` feature)";

    pub fn handler_data_dir() -> Result<Option<PathBuf>, String> {
        refuse_switch(std::env::var(SWITCH_VAR).ok().as_deref())
    }

    pub(super) fn refuse_switch(value: Option<&str>) -> Result<Option<PathBuf>, String> {
        match value.map(str::trim) {
            None | Some("") | Some("0") | Some("false") | Some("no") | Some("off") => Ok(None),
            Some(_) => Err(format!(
                "{SWITCH_VAR} is set, but this build has no local engine: build with `--features local-engine` (`cargo lambda watch` does, from the workspace's Cargo.toml)"
            )),
        }
    }

    pub fn read_token(_: &Path) -> Result<String, String> {
        Err(NONE.into())
    }

    /// No value exists: without the feature there is no running engine to find.
    pub enum RunningEngine {}

    impl RunningEngine {
        pub fn find(_: &Path) -> Result<Self, String> {
            Err(NONE.into())
        }

        pub fn endpoint(&self) -> &str {
            match *self {}
        }

        pub fn store(&self, _: impl Into<String>, _: Duration) -> DynamoStore {
            match *self {}
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_switch_is_refused_without_the_feature() {
            assert_eq!(super::refuse_switch(None).unwrap(), None);
            assert_eq!(super::refuse_switch(Some("0")).unwrap(), None);
            let e = super::refuse_switch(Some("1")).unwrap_err();
            assert!(e.contains("--features local-engine"), "{e}");
        }
    }
}
