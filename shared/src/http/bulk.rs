//! `POST /Bulk` (RFC 7644 §3.7): parsed and ordered by the crate's `bulk` module, each operation then run
//! through the resource handler its own request would reach.
//!
//! Imports: `state`, `extract`, `respond`, `resources` of `http`; the crate's `bulk`, `error`.

use super::extract::{read_json, PathParam, ScimBody};
use super::resources::{create, delete, patch, replace};
use super::respond::scim_json;
use super::state::{AppState, RequestCtx};
use crate::error::{ScimError, ScimResult};
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http_body_util::BodyExt;
use serde_json::{json, Value};

/// `POST /Bulk` (RFC 7644 §3.7): each operation runs through the same handler as its own request would,
/// so it is answered with exactly the status it would have on its own.
pub(super) async fn bulk(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, req: Request) -> ScimResult<Response> {
    let limits = &st.service.limits;
    let body = read_json(req, limits.bulk_max_payload).await?;
    let request = crate::bulk::parse(&body, limits.bulk_max_operations)?;
    let (order, blocked) = crate::bulk::order(&request.ops);
    let mut results: Vec<Option<Value>> = vec![None; request.ops.len()];
    let mut errors = 0usize;
    let op_result = |op: &crate::bulk::BulkOp, status: u16, location: Option<String>, version: Option<String>, response: Option<Value>| {
        let mut r = json!({"method": op.method, "status": status.to_string()});
        if let Some(b) = &op.bulk_id {
            r["bulkId"] = json!(b);
        }
        if let Some(l) = location {
            r["location"] = json!(l);
        }
        if let Some(v) = version {
            r["version"] = json!(v);
        }
        if let Some(resp) = response {
            r["response"] = resp;
        }
        r
    };
    for (i, e) in blocked {
        results[i] = Some(op_result(&request.ops[i], e.status, None, None, Some(e.to_json())));
        errors += 1;
    }
    let mut ids: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for i in order {
        if request.fail_on_errors.is_some_and(|n| errors >= n) {
            break;
        }
        let op = &request.ops[i];
        let resp = match crate::bulk::resolve(op, &ids) {
            None => ScimError::new(409, Some(crate::error::ScimType::InvalidValue), "A bulkId this operation refers to was not created (its operation failed)").into_response(),
            Some(resolved) => run_bulk_op(&st, &ctx, &resolved).await.unwrap_or_else(IntoResponse::into_response),
        };
        let status = resp.status().as_u16();
        let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let version = resp.headers().get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let json_body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status < 400 {
            if let (Some(b), Some(id)) = (&op.bulk_id, json_body.get("id").and_then(Value::as_str)) {
                ids.insert(b.clone(), id.to_string());
            }
            let location = location.or_else(|| json_body.pointer("/meta/location").and_then(Value::as_str).map(str::to_string));
            results[i] = Some(op_result(op, status, location, version, None));
        } else {
            errors += 1;
            results[i] = Some(op_result(op, status, None, None, Some(json_body)));
        }
    }
    let ops: Vec<Value> = results.into_iter().flatten().collect();
    Ok(scim_json(StatusCode::OK, &json!({"schemas": [crate::bulk::BULK_RESPONSE], "Operations": ops})))
}

async fn run_bulk_op(st: &AppState, ctx: &RequestCtx, op: &crate::bulk::BulkOp) -> ScimResult<Response> {
    let path = op.path.trim_start_matches('/');
    let (endpoint, id) = match path.split_once('/') {
        Some((e, id)) => (format!("/{e}"), Some(id.to_string())),
        None => (format!("/{path}"), None),
    };
    let rt = st
        .resource_types
        .iter()
        .copied()
        .find(|r| r.endpoint.eq_ignore_ascii_case(&endpoint))
        .ok_or_else(|| ScimError::not_found(format!("There is no resource type at {}", op.path)))?;
    let mut headers = HeaderMap::new();
    if let Some(v) = op.version.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::IF_MATCH, v);
    }
    let (state, ext) = (State(st.clone()), Extension(ctx.clone()));
    let data = || ScimBody(op.data.clone().unwrap_or(Value::Null));
    match (op.method.as_str(), id) {
        ("POST", None) => create(state, ext, RawQuery(None), data(), rt).await,
        ("PUT", Some(id)) => replace(state, ext, PathParam(id), RawQuery(None), headers, data(), rt).await,
        ("PATCH", Some(id)) => patch(state, ext, PathParam(id), RawQuery(None), headers, data(), rt).await,
        ("DELETE", Some(id)) => delete(state, ext, PathParam(id), headers, rt).await,
        (m, _) => Err(ScimError::method_not_allowed(format!("{m} is not supported on {} in a bulk operation", op.path))),
    }
}
