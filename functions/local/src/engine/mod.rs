//! The embedded DynamoDB engine: dynoxide on a SQLite file, in process and behind its signed door.

use scim_core::store::dynamo::DynamoStore;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

pub mod engine_door;
pub mod in_process;
pub mod private_dir;
pub mod stream_index;

#[cfg(test)]
mod tests {
    use super::Sync;

    #[test]
    fn sync_mode_from_its_setting() {
        assert_eq!(Sync::parse(None), Ok(Sync::Normal));
        assert_eq!(Sync::parse(Some("normal")), Ok(Sync::Normal));
        assert_eq!(Sync::parse(Some(" full ")), Ok(Sync::Full));
        let e = Sync::parse(Some("off")).unwrap_err();
        assert!(e.contains("SCIM_ENGINE_SYNC"), "{e}");
    }
}

/// When the engine's SQLite file is flushed to disk (`SCIM_ENGINE_SYNC`).
///
/// `normal` (the default): SQLite's `synchronous = NORMAL` in WAL mode, which the engine opens: the WAL is
/// flushed at each checkpoint rather than at each commit. A committed write survives any crash of this
/// process; only a power loss or an operating-system crash can lose the last writes before a checkpoint
/// (SQLite's documented trade-off, and its recommended setting for WAL). `full`: SQLite's default, a flush
/// per commit. Measured in docs/benchmark.md ("The write path with change events"): the flush per commit
/// was about half of the engine's time on every write, and change events add commits of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Normal,
    Full,
}

impl Sync {
    pub fn parse(v: Option<&str>) -> Result<Self, String> {
        match v.map(str::trim) {
            None | Some("") | Some("normal") => Ok(Sync::Normal),
            Some("full") => Ok(Sync::Full),
            Some(other) => Err(format!(
                "SCIM_ENGINE_SYNC must be normal or full, not {other:?}"
            )),
        }
    }

    pub fn from_env() -> Result<Self, String> {
        Sync::parse(std::env::var("SCIM_ENGINE_SYNC").ok().as_deref())
    }
}

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

    /// The in-process transport of [`EmbeddedDynamo::store`], for an SDK client of the engine built
    /// elsewhere (the tests', reading items the store's traits do not show).
    pub fn in_process_http(&self) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        in_process::http_client(self.db.clone())
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
            let db = dynoxide::Database::new(path)
                .map_err(|e| format!("cannot open embedded DynamoDB database {path}: {e}"))?;
            if Sync::from_env()? == Sync::Normal {
                // The engine's own call for its normal settings: `synchronous = NORMAL` (its other settings
                // are SQLite's defaults already).
                db.disable_bulk_loading()
                    .map_err(|e| format!("cannot set the embedded DynamoDB's sync mode: {e}"))?;
            }
            db
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
