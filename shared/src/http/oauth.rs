//! The OAuth 2.0 token endpoint: `POST /{tenant}/oauth2/token`, and `POST /oauth2/token` for the base
//! URL's directory. Outside the SCIM middleware (its clients authenticate with the request itself) but
//! inside the metrics recorder (`observe`, which tells it apart by its path). Thin: reads the request
//! (bounded body), hands it to `oauth::request::parse` and `OAuth::grant`, and answers RFC 6749 §5.1 JSON
//! with `Cache-Control: no-store`, or an RFC 6749 §5.2 error — never a SCIM body.
//!
//! The tenant is read from the path by the rule every route follows (`tenant::tenant_of`, the path as sent,
//! never percent-decoded): `/%61/oauth2/token` is no alias of tenant `a`'s endpoint, as `/%61/scim/v2` is
//! none of its SCIM routes.
//!
//! Imports: `state`, `tenant`, `middleware` (the call-count headers) of `http`; the crate's `auth`, `oauth`,
//! `store`, `manage::gate`.

use super::middleware::{CALLS_HEADER, CAPACITY_HEADER};
use super::state::AppState;
use super::tenant::{tenant_of, TOKEN_PATH};
use crate::manage::gate::Closed;
use crate::oauth::{request, ErrorCode, OAuthError};
use crate::store;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http_body_util::BodyExt;
use std::time::{Instant, SystemTime};

/// Largest token request body read (an assertion is at most 8 KiB; Entra's whole request is about 2 KB).
pub const MAX_TOKEN_REQUEST_BYTES: usize = 16 * 1024;

pub(super) fn routes() -> Router<AppState> {
    let tenant_path = format!("/{{tenant}}{TOKEN_PATH}");
    Router::new()
        .route(TOKEN_PATH, any(endpoint))
        .route(&tenant_path, any(endpoint))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("token endpoint panicked");
                let e = OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the server hit an unexpected error; retry shortly",
                );
                refused(&e)
            },
        ))
}

async fn endpoint(State(st): State<AppState>, req: Request) -> Response {
    let Some(tenant) = tenant_of(req.uri().path(), TOKEN_PATH) else {
        let e = OAuthError::new(
            ErrorCode::InvalidRequest,
            "there is no token endpoint at this path",
        );
        return error(StatusCode::NOT_FOUND, &e);
    };
    token(st, tenant, req).await
}

async fn token(st: AppState, tenant: String, req: Request) -> Response {
    let started = Instant::now();
    let Some(oauth) = st.auth.oauth().cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "OAuth is not enabled on this server",
            ),
        );
    };
    if req.method() != Method::POST {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &OAuthError::new(
                ErrorCode::InvalidRequest,
                "the token endpoint accepts POST only",
            ),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let (content_type, authorization, declared) = {
        let text = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (
            text(header::CONTENT_TYPE),
            text(header::AUTHORIZATION),
            text(header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<usize>().ok()),
        )
    };
    if declared.is_some_and(|n| n > MAX_TOKEN_REQUEST_BYTES) {
        return too_large();
    }
    let limited = http_body_util::Limited::new(req.into_body(), MAX_TOKEN_REQUEST_BYTES);
    let body = match tokio::time::timeout(st.http.body_read_timeout, limited.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return too_large()
        }
        Ok(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "the request body could not be read",
                ),
            )
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                &OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "the request body did not arrive in time",
                ),
            )
        }
    };
    let parsed = match request::parse(content_type.as_deref(), authorization.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    // A paused tenant, or one being deleted, gets no token; asked after the client proved itself, so
    // that the tenant's state is told only to its own clients.
    let (result, usage) = store::measure(async {
        let issued = oauth
            .grant(&tenant, &parsed, &*st.service.store, SystemTime::now())
            .await?;
        match st.gate.check(&tenant, &*st.service.store).await {
            Ok(()) => Ok(issued),
            Err(closed) => Err(closed_refusal(&tenant, closed)),
        }
    })
    .await;
    let mut resp = match result {
        Ok(issued) => {
            let body = serde_json::json!({
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            });
            let mut r = (StatusCode::OK, axum::Json(body)).into_response();
            no_store(&mut r);
            r
        }
        Err(e) => refused(&e),
    };
    if st.http.expose_call_count {
        resp.headers_mut()
            .insert(CALLS_HEADER, HeaderValue::from(usage.calls));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "read={}, write={}",
            usage.read_units, usage.write_units
        )) {
            resp.headers_mut().insert(CAPACITY_HEADER, v);
        }
    }
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    // Never the request's credentials, assertion or body.
    tracing::info!(tenant = %tenant, status = resp.status().as_u16(), latency_ms, dynamodb_calls = usage.calls, "token request");
    resp
}

/// The token endpoint's refusal for a tenant the gate keeps closed (`manage::gate`).
fn closed_refusal(tenant: &str, closed: Closed) -> OAuthError {
    match closed {
        Closed::Paused => OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!(
                "provisioning to tenant {tenant} is paused by the service provider; retry later"
            ),
        ),
        Closed::Deleting => OAuthError::new(
            ErrorCode::InvalidClient,
            format!("tenant {tenant} is being deleted by the service provider"),
        ),
        Closed::Store(_) => OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the directory store did not answer in time; retry shortly",
        ),
    }
}

fn too_large() -> Response {
    let mut r = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("the token request body is larger than {MAX_TOKEN_REQUEST_BYTES} bytes"),
        ),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// An RFC 6749 §5.2 refusal with its own status; 401 carries `WWW-Authenticate: Basic` (the scheme this
/// endpoint supports; required when the client used it, and HTTP wants one on every 401).
fn refused(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = error(status, e);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oauth2\", charset=\"UTF-8\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    r
}

fn error(status: StatusCode, e: &OAuthError) -> Response {
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(e.body().to_string()))
        .unwrap_or_default();
    no_store(&mut r);
    r
}

fn no_store(r: &mut Response) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
