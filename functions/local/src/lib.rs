//! The local server's parts, shared with the test harness: the embedded DynamoDB engine (dynoxide on a
//! SQLite file, served in-process on a loopback port) and the HTTP serving loop.
//!
//! The embedded engine is a dependency of this crate only — never of a Lambda function.

use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;

/// Start dynoxide in this process on `127.0.0.1:<free port>`, backed by the SQLite file at `db_file`
/// (created if missing; data survives restarts) or by memory when `None`. Returns the endpoint URL.
pub async fn start_embedded_dynamodb(db_file: Option<&Path>) -> Result<String, String> {
    let db = match db_file {
        Some(p) => {
            let path = p.to_str().ok_or_else(|| format!("database path {} is not valid UTF-8", p.display()))?;
            dynoxide::Database::new(path).map_err(|e| format!("cannot open embedded DynamoDB database {path}: {e}"))?
        }
        None => dynoxide::Database::memory().map_err(|e| format!("cannot open in-memory DynamoDB: {e}"))?,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("cannot bind a loopback port for the embedded DynamoDB: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(dynoxide::server::serve_on(listener, db));
    Ok(format!("http://{addr}"))
}

/// Serve `router` on `listener` until the process is stopped (Ctrl-C / SIGTERM end it gracefully).
pub async fn serve(router: axum::Router, listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
