//! The HTTP server: what `scim-local` serves, its serving loop, and the connection loop both ports share.

use crate::admin;
use crate::delivery::webhook;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub mod listener;
pub mod serve;

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
        let manager = std::sync::Arc::new(manager);
        (
            scim_core::http::manage::routes(state.clone(), manager.clone()),
            manager,
        )
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
