//! The local server's parts, shared with the test harness: the embedded DynamoDB engine (dynoxide on a
//! SQLite file, served in-process, and to other processes on a loopback port behind a signature check) and
//! the HTTP serving loop, and the operator page ([`admin`]).
//!
//! The embedded engine is a dependency of this crate only — never of a Lambda function.

use scim_core::store::dynamo::DynamoStore;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub mod admin;
pub mod clients;
pub mod cloudwatch;
pub mod engine_door;
pub mod events;
pub mod in_process;
pub mod listener;
pub mod private_dir;
pub mod serve;
pub mod stream_index;
pub mod webhook;

/// The embedded DynamoDB engine of this process.
#[derive(Clone)]
pub struct EmbeddedDynamo {
    /// Its DynamoDB API on `http://127.0.0.1:<port>`, for other processes (`scim-admin`, the benchmark),
    /// which must sign their requests with [`EmbeddedDynamo::key`] ([`engine_door`]).
    pub endpoint: String,
    pub key: engine_door::EngineKey,
    db: dynoxide::Database,
}

impl EmbeddedDynamo {
    /// A store on `table` that reaches the engine in process (see [`in_process`]); the SDK calls are the
    /// same as over HTTP.
    pub fn store(&self, table: impl Into<String>, call_timeout: Duration) -> DynamoStore {
        DynamoStore::local_via(
            &self.endpoint,
            table,
            call_timeout,
            in_process::http_client(self.db.clone()),
        )
    }

    /// A store on `table` that reaches the engine over its HTTP listener, signing with its key (as
    /// `scim-admin` does).
    pub fn http_store(&self, table: impl Into<String>, call_timeout: Duration) -> DynamoStore {
        self.key.store(&self.endpoint, table, call_timeout)
    }

    /// Delete expired items (the events log's TTL) every `every`: the engine deletes them only when asked.
    pub fn sweep_ttl_every(&self, every: Duration) {
        let db = self.db.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let db = db.clone();
                match tokio::task::spawn_blocking(move || db.sweep_ttl()).await {
                    Ok(Ok(n)) if n > 0 => tracing::debug!(deleted = n, "TTL sweep"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "TTL sweep failed"),
                    _ => {}
                }
            }
        });
    }
}

/// Start dynoxide in this process, backed by the SQLite file at `db_file` (created if missing, mode 0600;
/// data survives restarts) or by memory when `None`, and serve its DynamoDB API on
/// `127.0.0.1:<free port>` to callers signing with a new random key ([`EmbeddedDynamo::key`]).
pub async fn start_embedded_dynamodb(db_file: Option<&Path>) -> Result<EmbeddedDynamo, String> {
    start_embedded_dynamodb_with_key(db_file, engine_door::EngineKey::random()).await
}

/// [`start_embedded_dynamodb`], its listener checking signatures against `key` (the one kept in the data
/// directory, so that `scim-admin` can read it).
pub async fn start_embedded_dynamodb_with_key(
    db_file: Option<&Path>,
    key: engine_door::EngineKey,
) -> Result<EmbeddedDynamo, String> {
    start_embedded_dynamodb_with(db_file, key, engine_door::DoorConfig::from_env()).await
}

/// [`start_embedded_dynamodb_with_key`], its listener within `door`'s connection limits.
pub async fn start_embedded_dynamodb_with(
    db_file: Option<&Path>,
    key: engine_door::EngineKey,
    door: engine_door::DoorConfig,
) -> Result<EmbeddedDynamo, String> {
    let db = match db_file {
        Some(p) => {
            let path = p
                .to_str()
                .ok_or_else(|| format!("database path {} is not valid UTF-8", p.display()))?;
            private_dir::touch_private(p)
                .map_err(|e| format!("cannot create embedded DynamoDB database {path}: {e}"))?;
            // Opened once so the engine makes its schema, closed, indexed (stream_index.rs), opened for good:
            // the engine's connection then plans its statements with the indexes from the start.
            drop(
                dynoxide::Database::new(path)
                    .map_err(|e| format!("cannot open embedded DynamoDB database {path}: {e}"))?,
            );
            stream_index::ensure(p)?;
            dynoxide::Database::new(path)
                .map_err(|e| format!("cannot open embedded DynamoDB database {path}: {e}"))?
        }
        None => dynoxide::Database::memory()
            .map_err(|e| format!("cannot open in-memory DynamoDB: {e}"))?,
    };
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind a loopback port for the embedded DynamoDB: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(engine_door::serve(listener, db.clone(), key.clone(), door));
    Ok(EmbeddedDynamo {
        endpoint: format!("http://{addr}"),
        key,
        db,
    })
}

/// What `scim-local` serves: the operator page (`/admin`) and the management API (`/manage/v1`), both
/// when given the admin credential, in front of every SCIM route.
pub fn app(
    state: scim_core::http::AppState,
    admin: Option<std::sync::Arc<admin::AdminAuth>>,
) -> axum::Router {
    app_with_webhook(state, admin, None)
}

/// [`app`], the operator page also showing the webhook's tenants in trouble (`webhook`: its status).
pub fn app_with_webhook(
    state: scim_core::http::AppState,
    admin: Option<std::sync::Arc<admin::AdminAuth>>,
    webhook: Option<std::sync::Arc<webhook::Status>>,
) -> axum::Router {
    let metrics = state.metrics.clone();
    let admin_cfg = admin::AdminConfig::new(state.http.body_read_timeout);
    let manage = admin.as_ref().map(|_| {
        let settings = scim_core::manage::ManageSettings::from_env().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "management settings ignored");
            scim_core::manage::ManageSettings::default()
        });
        let manager = scim_core::manage::Manager::new(state.service.store.clone(), settings)
            .with_gate(state.gate.clone());
        scim_core::http::manage::routes(state.clone(), Arc::new(manager))
    });
    // The customer's setup page (`/setup`, opened with a setup link), beside the SCIM routes.
    let scim = scim_core::http::setup::beside(state.clone(), scim_core::http::router(state));
    match admin {
        Some(auth) => {
            admin::router_with(metrics, auth, admin_cfg, webhook, manage).fallback_service(scim)
        }
        None => scim,
    }
}

/// Serve `router` on `listener` until the process is stopped (Ctrl-C / SIGTERM end it gracefully), with
/// the timeouts and connection cap of [`serve::ServeConfig::from_env`].
pub async fn serve(router: axum::Router, listener: TcpListener) -> std::io::Result<()> {
    serve::serve_until(
        router,
        listener,
        serve::ServeConfig::from_env(),
        shutdown_signal(),
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// `http://127.0.0.1:8080` + base path, for printing the Tenant URL.
pub fn tenant_url(addr: SocketAddr, base_path: &str) -> String {
    format!("http://{addr}{base_path}")
}
