//! The customer's setup page as a Lambda function: `scim_core::http::setup::lambda_routes` behind API
//! Gateway, without an authoriser (the setup link is the credential; docs/setup-page.md). What the
//! function adds to the core's router is only what API Gateway's event says and a socket would have:
//! the caller's address (`requestContext.http.sourceIp`), which [`app`] hands to the router as the peer
//! whose failed link openings are counted (without it every caller would share one count).
//!
//! The cookie is `Secure` (API Gateway serves HTTPS only) and the health figures are not in this process
//! (`Serving::Lambda`): `main.rs` attaches the core's CloudWatch reader to the manager
//! (`Manager::with_figures`, as the manage function does for its status route), and the page shows what
//! it reads.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use scim_core::http::AppState;
use scim_core::manage::{ManageSettings, Manager};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The function's router: the setup page's routes, each request's peer taken from the Lambda event.
pub fn app(state: AppState, manager: Arc<Manager>) -> Router {
    scim_core::http::setup::lambda_routes(state, manager)
        .layer(axum::middleware::from_fn(peer_from_event))
}

/// The management operations the page runs, on the state's store, telling the state's tenant gate of
/// every change made here (settings from the environment: `ManageSettings::from_env`).
pub fn manager(state: &AppState) -> Result<Manager, String> {
    Ok(
        Manager::new(state.service.store.clone(), ManageSettings::from_env()?)
            .with_gate(state.gate.clone()),
    )
}

/// The caller's address as API Gateway saw it (HTTP API, payload 2.0): only the event's request
/// context counts, never a header such as `X-Forwarded-For` that the caller could write.
fn source_ip(req: &Request) -> Option<IpAddr> {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}

async fn peer_from_event(mut req: Request, next: Next) -> Response {
    req.extensions_mut().remove::<ConnectInfo<SocketAddr>>();
    if let Some(ip) = source_ip(&req) {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    next.run(req).await
}
