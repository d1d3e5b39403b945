//! What handlers take from a request: JSON bodies ([`ScimBody`], `read_json`) within the size limit and the
//! read timeout the middleware sets (`BodyRules`), the last path parameter ([`PathParam`]), and the
//! precondition headers (`If-Match`, `If-None-Match`).
//!
//! Imports: `respond` of `http` (the SCIM media type); the crate's `error`.

use super::respond::SCIM_JSON;
use crate::error::{ScimError, ScimResult};
use axum::extract::{FromRequest, Path, Request};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use serde_json::Value;

/// How large a request body may be, and how long it may take to arrive (set by the middleware).
#[derive(Clone, Copy)]
pub(super) struct BodyRules {
    pub(super) limit: usize,
    pub(super) timeout: std::time::Duration,
}

impl Default for BodyRules {
    fn default() -> Self {
        BodyRules {
            limit: 1024 * 1024,
            timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// A JSON request body: `application/scim+json` or `application/json` (any parameters), at most the
/// configured size (413 above it, checked against `Content-Length` before reading), valid JSON.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ScimError> {
        let rules = req
            .extensions()
            .get::<BodyRules>()
            .copied()
            .unwrap_or_default();
        read_json(req, rules.limit).await.map(ScimBody)
    }
}

/// Read a JSON request body of at most `limit` bytes (413 above it, checked against `Content-Length`
/// before reading), sent as `application/scim+json` or `application/json`, within the body read timeout
/// (408 after it).
pub(super) async fn read_json(req: Request, limit: usize) -> ScimResult<Value> {
    {
        let timeout = req
            .extensions()
            .get::<BodyRules>()
            .copied()
            .unwrap_or_default()
            .timeout;
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if ct != SCIM_JSON && ct != "application/json" {
                return Err(ScimError::unsupported_media_type(format!(
                    "Content-Type '{ct}' is not accepted; send application/scim+json or application/json"
                )));
            }
        }
        let too_large = || {
            ScimError::payload_too_large(format!("The request body is larger than {limit} bytes"))
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let collected = tokio::time::timeout(
            timeout,
            http_body_util::Limited::new(req.into_body(), limit).collect(),
        )
        .await;
        let Ok(collected) = collected else {
            return Err(ScimError::new(
                408,
                None,
                format!(
                    "The request body did not arrive within {} s",
                    timeout.as_secs()
                ),
            ));
        };
        let bytes = match collected {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(too_large())
            }
            Err(_) => {
                return Err(ScimError::invalid_syntax(
                    "The request body could not be read",
                ))
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax(
                "The request body is empty; a JSON object is required",
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::invalid_syntax(format!("The request body is not valid JSON: {e}"))
        })
    }
}

/// The last path parameter (`{id}`, `{urn}`, `{name}`): routes may also carry `{tenant}` before it.
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ScimError> {
        let Path(params): Path<Vec<(String, String)>> =
            Path::from_request_parts(parts, state).await.map_err(|e| {
                ScimError::invalid_syntax(format!("The request path could not be decoded: {e}"))
            })?;
        params
            .into_iter()
            .rev()
            .find(|(k, _)| k != "tenant")
            .map(|(_, v)| PathParam(v))
            .ok_or_else(|| ScimError::not_found("The request path names no resource"))
    }
}

/// A precondition header (`If-Match`, `If-None-Match`), if present. One that is not visible ASCII cannot
/// name any version this server issued, and a precondition must never silently vanish: 400.
pub(super) fn header_str(h: &HeaderMap, name: header::HeaderName) -> ScimResult<Option<&str>> {
    match h.get(&name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            let shown = if name == header::IF_MATCH { "If-Match" } else { "If-None-Match" };
            ScimError::invalid_syntax(format!("The {shown} header is not an entity tag (it must be visible ASCII, e.g. W/\"3\"); nothing was changed"))
        }),
    }
}
