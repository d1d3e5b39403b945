//! One axum router for every deployment: the Lambda functions run it with [`lambda::run`], the local
//! server serves it, the tests call it. This module composes the routers (every endpoint, or one Lambda
//! function's share) and wraps them, once, in the cross-cutting layers: the metrics recorder, path
//! cleaning, the SCIM [`middleware`], panic catching.
//!
//! The modules, each importing only those before it in this list:
//! * `state`: [`AppState`] and [`RequestCtx`]; `tenant`: the tenant a path addresses, the base URL;
//! * [`respond`]: SCIM bodies, representations, resource responses (imports `state`);
//! * [`extract`]: request bodies, path parameters, precondition headers (imports `respond`);
//! * [`middleware`]: auth, content type, framework errors as SCIM errors, the audit line, call counting,
//!   and the metrics recorder (`observe`);
//! * `resources`, `bulk`, `discovery`: the handlers and their routes; `oauth`: the token endpoint (outside
//!   the SCIM middleware, inside the metrics recorder);
//! * [`manage`]: the management API (`/manage/v1`), outside the SCIM middleware with its own principal;
//! * [`setup`]: the customer's setup page (`/setup`, opened with a setup link) and the link routes of the
//!   management API;
//! * [`request_target`] and [`lambda`]: request lines and Lambda events as clients really send them.
//!
//! This module imports from all of them; none of them imports from it.

pub mod extract;
pub mod lambda;
pub mod manage;
pub mod middleware;
pub mod request_target;
pub mod respond;
pub mod setup;

mod bulk;
mod discovery;
mod events;
mod oauth;
mod resources;
mod state;
mod tenant;

pub use state::{AppState, RequestCtx};

use crate::error::ScimError;
use crate::schema::ResourceKind;
use axum::extract::Request;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

/// Every resource and discovery endpoint under one base path (the local server and the tests).
pub fn router(state: AppState) -> Router {
    let mut inner = discovery::routes().merge(bulk_function_routes(&state));
    for rt in state.resource_types.iter() {
        inner = inner.merge(resources::routes(rt));
    }
    // The Events API (docs/events.md): `<Tenant URL>/Events`, 404 when the server has no events log.
    inner = inner.merge(events::routes());
    wrap_with(state, inner, oauth::routes())
}

/// The OAuth token endpoint only (the `token` Lambda function): `/{tenant}/oauth2/token`, `/oauth2/token`.
pub fn token_router(state: AppState) -> Router {
    wrap_with(state, Router::new(), oauth::routes())
}

/// `/Bulk`, `/Me` and `POST /.search` (the `bulk` Lambda function).
pub fn bulk_router(state: AppState) -> Router {
    let inner = bulk_function_routes(&state);
    wrap(state, inner)
}

fn bulk_function_routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .route("/Bulk", post(bulk::bulk))
        .route("/.search", post(resources::search_all));
    if let Some(user) = state.resource_type(ResourceKind::User) {
        r = r.merge(resources::me_routes(user));
    }
    r
}

/// The routes of one resource type of the profile (none when the profile does not serve it).
fn type_router(state: AppState, kind: ResourceKind) -> Router {
    let inner = state
        .resource_type(kind)
        .map(resources::routes)
        .unwrap_or_default();
    wrap(state, inner)
}

/// `/Groups` and `/Groups/{id}` only (the `groups` Lambda function).
pub fn groups_router(state: AppState) -> Router {
    type_router(state, ResourceKind::Group)
}

/// `/Users` and `/Users/{id}` only (the `users` Lambda function).
pub fn users_router(state: AppState) -> Router {
    type_router(state, ResourceKind::User)
}

/// The discovery endpoints and the Events API (the `discovery` Lambda function, which API Gateway's
/// `$default` route reaches).
pub fn discovery_router(state: AppState) -> Router {
    wrap(state, discovery::routes().merge(events::routes()))
}

fn wrap(state: AppState, inner: Router<AppState>) -> Router {
    wrap_with(state, inner, Router::new())
}

/// [`wrap`], with `outside` served beside the SCIM routes: outside the SCIM middleware, inside `observe`.
fn wrap_with(state: AppState, inner: Router<AppState>, outside: Router<AppState>) -> Router {
    let base = state.http.base_path.clone();
    // The default tenant at the base path; every other tenant at `/<tenant><base path>`.
    let routed: Router<AppState> = if base.is_empty() {
        inner
    } else {
        Router::new()
            .nest(&base, inner.clone())
            .nest(&format!("/{{tenant}}{base}"), inner)
    };
    let routed = routed
        .fallback(|uri: Uri| async move {
            ScimError::not_found(format!("There is no SCIM endpoint at {}", uri.path()))
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::scim_layer,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("handler panicked; answered 500");
                ScimError::internal("The server hit an unexpected error while handling the request")
                    .into_response()
            },
        ))
        .with_state(state.clone());
    // Clean the path before any routing, of the SCIM routes and of `outside` alike: `//Users` (a Tenant
    // URL pasted with a trailing slash), `/Users/`, `/acme/oauth2/token/` (a token URL pasted so).
    // Outermost, the metrics recorder sees every request of every route added here, SCIM or not (the
    // token endpoint is told apart by its path).
    let served = outside.with_state(state.clone()).fallback_service(routed);
    Router::new()
        .fallback_service(
            tower::ServiceBuilder::new()
                .map_request(clean_path)
                .service(served),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::observe,
        ))
}

fn clean_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if !(path.contains("//") || (path.len() > 1 && path.ends_with('/'))) {
        return req;
    }
    let mut cleaned: String = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        cleaned.push('/');
        cleaned.push_str(seg);
    }
    if cleaned.is_empty() {
        cleaned.push('/');
    }
    if let Some(q) = req.uri().query() {
        cleaned.push('?');
        cleaned.push_str(q);
    }
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = cleaned.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}
