//! The SCIM layer every request passes through, written once: tenant from the path, authentication, the
//! [`RequestCtx`] and body rules handlers read, SCIM Error bodies for the framework's own refusals, the
//! `application/scim+json` content type, DynamoDB call counting, and the audit log line; and, around every
//! route, the metrics recorder ([`observe`]).
//!
//! Imports: `state`, `tenant`, `extract` (body rules), `respond` (content type, SCIM bodies) of `http`; the
//! crate's `error`, `store` (call counting), `metrics`, `manage::gate` (paused and deleted tenants).

use super::extract::BodyRules;
use super::respond::{ScimBodyMarker, SCIM_JSON};
use super::state::{AppState, RequestCtx};
use super::tenant::{base_url, tenant_of};
use crate::error::{ScimError, ScimType};
use crate::manage::gate::{Closed, PAUSED_RETRY_AFTER_SECS};
use crate::metrics::{Outcome, RequestFacts, RouteKind};
use crate::store;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::time::Instant;

pub const CALLS_HEADER: &str = "x-scim-dynamodb-calls";
/// With the call count: the capacity units DynamoDB reported consumed, e.g. `read=1, write=6`.
pub const CAPACITY_HEADER: &str = "x-scim-dynamodb-capacity";

pub(super) async fn scim_layer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let has_filter = req.uri().query().is_some_and(|q| q.contains("filter="));
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A path that is neither the base URL nor a valid tenant's URL is no alias of either: 404 before auth.
    let tenant = tenant_of(&path, &state.http.base_path);
    let mut authenticated = false;
    let (mut resp, usage) = store::measure(async {
        let Some(tenant) = tenant.clone() else {
            return ScimError::not_found(format!("There is no SCIM endpoint at {path}"))
                .into_response();
        };
        let me = match state
            .auth
            .authenticate(&tenant, auth_header.as_deref(), &*state.service.store)
            .await
        {
            Ok(me) => me,
            Err(e) => return e.into_response(),
        };
        authenticated = true;
        if let Err(closed) = state.gate.check(&tenant, &*state.service.store).await {
            return closed_answer(&tenant, closed).into_response();
        }
        let ctx = RequestCtx {
            tenant: tenant.clone(),
            base_url: base_url(&state.http, req.headers(), &tenant),
            me,
        };
        req.extensions_mut().insert(ctx);
        req.extensions_mut().insert(BodyRules {
            limit: state.service.limits.max_body_bytes,
            timeout: state.http.body_read_timeout,
        });
        next.run(req).await
    })
    .await;
    if resp.extensions().get::<ScimBodyMarker>().is_none() && resp.status().as_u16() >= 400 {
        resp = framework_error_to_scim(resp, &method, &path).await;
    }
    if !matches!(
        resp.status(),
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
    ) {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    }
    // Refused before its body was read: tell the client not to reuse this connection for another request.
    if matches!(
        resp.status(),
        StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::REQUEST_TIMEOUT
    ) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if state.http.expose_call_count {
        resp.headers_mut()
            .insert(CALLS_HEADER, HeaderValue::from(usage.calls));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "read={}, write={}",
            usage.read_units, usage.write_units
        )) {
            resp.headers_mut().insert(CAPACITY_HEADER, v);
        }
    }
    let status = resp.status().as_u16();
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let (resource, id) = resource_of(&path);
    let scim_type = resp
        .extensions()
        .get::<ScimError>()
        .and_then(|e| e.scim_type)
        .map_or("", ScimType::as_str);
    let tenant_name = tenant.as_deref().unwrap_or("-");
    // The audit line: never the token, never the query string or body (they carry personal data).
    if status >= 500 {
        tracing::error!(tenant = %tenant_name, %method, resource, id, path, status, scim_type, latency_ms, dynamodb_calls = usage.calls, rcu = usage.read_units, wcu = usage.write_units, has_filter, "request");
    } else {
        tracing::info!(tenant = %tenant_name, %method, resource, id, path, status, scim_type, latency_ms, dynamodb_calls = usage.calls, rcu = usage.read_units, wcu = usage.write_units, has_filter, "request");
    }
    resp.extensions_mut().insert(RequestFacts {
        tenant,
        authenticated,
    });
    resp
}

/// The SCIM answer for a tenant the gate keeps closed (`manage::gate`).
fn closed_answer(tenant: &str, closed: Closed) -> ScimError {
    match closed {
        Closed::Paused => ScimError::unavailable(
            503,
            PAUSED_RETRY_AFTER_SECS,
            format!("Provisioning to tenant \"{tenant}\" is paused by the service provider; retry later (nothing was changed)"),
        ),
        Closed::Deleting => ScimError::new(
            403,
            None,
            format!("Tenant \"{tenant}\" is being deleted by the service provider; its directory no longer accepts requests"),
        ),
        Closed::Store(e) => ScimError::from(e),
    }
}

/// Around every route (outermost): count the finished request in [`crate::metrics::Metrics`] — by the
/// tenant and authentication outcome the SCIM layer reports ([`RequestFacts`]), or for a route outside it
/// (the token endpoint) by its path and status — with the `scimType` and detail of its SCIM error. No
/// store call; a few additions under short locks (and, on Lambda, one log line).
pub(super) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.metrics.enabled() {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (route, path_tenant) = RouteKind::of_path(&path);
    let status = resp.status().as_u16();
    let facts = match resp.extensions().get::<RequestFacts>() {
        Some(f) => f.clone(),
        None => RequestFacts {
            tenant: path_tenant,
            authenticated: resp.status().is_success(),
        },
    };
    let error = resp.extensions().get::<ScimError>();
    let outcome = Outcome {
        route,
        status,
        scim_type: error.and_then(|e| e.scim_type).map(ScimType::as_str),
        latency_ms,
    };
    state
        .metrics
        .record(&facts, method.as_str(), &path, &outcome, error);
    resp
}

/// Answers produced by the framework itself (405 from a method router, a path it could not decode)
/// get a SCIM Error body too.
async fn framework_error_to_scim(resp: Response, method: &Method, path: &str) -> Response {
    let status = resp.status();
    let text = match resp.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not supported on {path}"),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
        _ => text,
    };
    ScimError::new(status.as_u16(), None, detail).into_response()
}

/// The resource type and id a path names: `/…/Users/abc` → ("Users", "abc").
fn resource_of(path: &str) -> (&str, &str) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.iter().rposition(|s| {
        matches!(
            *s,
            "Users" | "Groups" | "Schemas" | "ResourceTypes" | "ServiceProviderConfig"
        )
    }) {
        Some(i) => (segs[i], segs.get(i + 1).copied().unwrap_or("")),
        None => ("", ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_and_id_for_the_audit_line() {
        assert_eq!(resource_of("/acme/scim/v2/Users/abc"), ("Users", "abc"));
        assert_eq!(resource_of("/scim/v2/Groups"), ("Groups", ""));
        assert_eq!(resource_of("/nope"), ("", ""));
    }
}
