//! Answers: [`ScimError`] as a SCIM Error response, [`scim_json`] bodies (`application/scim+json`), a
//! resource's representation (a group's members read from their items), resource responses with `ETag` and
//! `Location`, and bodiless answers (204, 304).
//!
//! Imports: `state` of `http`; the crate's `error`, `model`, `query`, `schema`.

use super::state::{AppState, RequestCtx};
use crate::error::{ScimError, ScimResult};
use crate::model::{self, Projection, StoredResource};
use crate::query;
use crate::schema::{self, ResourceType};
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub const SCIM_JSON: &str = "application/scim+json";

/// Marks responses that already carry a SCIM body, so the middleware leaves them alone.
#[derive(Clone, Copy)]
pub(super) struct ScimBodyMarker;

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = scim_json(status, &self.to_json());
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == 401 {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"SCIM\""));
        }
        // For the metrics recorder (`middleware::observe`): the status's `scimType` and detail.
        resp.extensions_mut().insert(self);
        resp
    }
}

pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp.extensions_mut().insert(ScimBodyMarker);
    resp
}

/// The full representation, with a group's members read from their items unless the projection leaves
/// them out (`excludedAttributes=members` costs no member read).
pub(super) async fn representation(st: &AppState, ctx: &RequestCtx, rt: &'static ResourceType, res: &StoredResource, projection: &Projection) -> ScimResult<Value> {
    let mut body = model::render(res, rt, &ctx.base_url);
    if rt.name == "Group" && !projection.excludes(rt, "members") {
        // The member count is kept with every membership change: an empty group costs no member read.
        let members = if res.member_count == 0 { Vec::new() } else { st.service.members(&ctx.tenant, &res.id).await? };
        if let Value::Object(obj) = &mut body {
            let meta = obj.remove("meta");
            let list: Vec<Value> = members
                .iter()
                .map(|m| json!({"value": m, "$ref": model::location(&ctx.base_url, schema::user_resource_type(), m), "type": "User"}))
                .collect();
            obj.insert("members".into(), Value::Array(list));
            if let Some(meta) = meta {
                obj.insert("meta".into(), meta);
            }
        }
    }
    Ok(projection.apply(rt, body))
}

pub(super) async fn resource_response(
    st: &AppState,
    status: StatusCode,
    res: &StoredResource,
    rt: &'static ResourceType,
    ctx: &RequestCtx,
    q: &Option<String>,
) -> ScimResult<Response> {
    let projection = query::projection(&query::decode(q.as_deref()))?;
    let body = representation(st, ctx, rt, res, &projection).await?;
    let mut resp = scim_json(status, &body);
    if let Ok(v) = HeaderValue::from_str(&res.etag()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&model::location(&ctx.base_url, rt, &res.id)) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(resp)
}

/// A bodiless answer (204, 304), with the resource's ETag when there is one.
pub(super) fn empty_response(status: StatusCode, res: Option<&StoredResource>) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    if let Some(v) = res.and_then(|r| HeaderValue::from_str(&r.etag()).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.extensions_mut().insert(ScimBodyMarker);
    resp
}
