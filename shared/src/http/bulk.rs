//! `POST /Bulk` (RFC 7644 §3.7): parsed and ordered by the crate's `bulk` module, each operation then run
//! through the resource handler its own request would reach.
//!
//! The BulkResponse is held under the response bound (`Limits::max_response_bytes`). A result carries
//! no representation — method, `bulkId`, status, `location`, `version`, and for a failure the error, whose
//! `detail` (which may quote the operation's data) is cut to [`BULK_DETAIL_CHARS`] — so it has a known
//! largest size. An operation runs only if that largest size still fits beside the results so far and a
//! short "not run" result for every operation after it; otherwise it and the rest are answered 413
//! "not run" without running, so every operation has a result and nothing runs unreported.
//!
//! Imports: `state`, `extract`, `respond`, `resources` of `http`; the crate's `bulk`, `error`.

use super::extract::{read_json, PathParam, ScimBody};
use super::resources::{create, delete, patch, replace};
use super::respond::{body_len, scim_json};
use super::state::{AppState, RequestCtx};
use crate::bulk::BulkOp;
use crate::error::{ScimError, ScimResult, ScimType};
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http_body_util::BodyExt;
use serde_json::{json, Value};

/// The longest `detail` of an operation's error in a BulkResponse, in characters (marker included).
pub(super) const BULK_DETAIL_CHARS: usize = 1000;

/// The longest id a `location` can end with (a DynamoDB sort key) and room for the endpoint before it.
const LOCATION_TAIL_CHARS: usize = 1024 + 128;

/// One operation's result (RFC 7644 §3.7.3), its error's `detail` cut to [`BULK_DETAIL_CHARS`].
fn op_result(
    op: &BulkOp,
    status: u16,
    location: Option<String>,
    version: Option<String>,
    response: Option<Value>,
) -> Value {
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
    if let Some(mut resp) = response {
        if let Some(Value::String(d)) = resp.get_mut("detail") {
            cut_detail(d);
        }
        r["response"] = resp;
    }
    r
}

fn cut_detail(d: &mut String) {
    const MARK: &str = " … (cut)";
    if d.chars().count() > BULK_DETAIL_CHARS {
        let keep = BULK_DETAIL_CHARS - MARK.chars().count();
        let end = d.char_indices().nth(keep).map_or(d.len(), |(i, _)| i);
        d.truncate(end);
        d.push_str(MARK);
    }
}

/// The most `op`'s result can take in the response (with its separating comma): the longest status,
/// location and version, and an error whose detail is [`BULK_DETAIL_CHARS`] characters that each take
/// the most bytes they can once escaped.
fn result_reserve(op: &BulkOp, base_url: &str) -> usize {
    let location = format!("{base_url}{}", "x".repeat(LOCATION_TAIL_CHARS));
    let detail = "\u{1}".repeat(BULK_DETAIL_CHARS);
    let error = ScimError::new(412, Some(ScimType::InvalidValue), detail).to_json();
    let version = format!("W/\"{}\"", u64::MAX);
    body_len(&op_result(
        op,
        412,
        Some(location),
        Some(version),
        Some(error),
    )) + 1
}

/// The result of an operation the response had no room left for.
fn not_run(op: &BulkOp, max: usize) -> Value {
    let e = ScimError::payload_too_large(format!(
        "Not run: the BulkResponse has no room left for this operation's result (responses are bounded \
         to {max} bytes, SCIM_MAX_RESPONSE_BYTES); send it again in another request"
    ));
    op_result(op, e.status, None, None, Some(e.to_json()))
}

/// `POST /Bulk` (RFC 7644 §3.7): each operation runs through the same handler as its own request would,
/// so it is answered with exactly the status it would have on its own.
pub(super) async fn bulk(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    req: Request,
) -> ScimResult<Response> {
    let limits = &st.service.limits;
    let body = read_json(req, limits.bulk_max_payload).await?;
    let request = crate::bulk::parse(&body, limits.bulk_max_operations)?;
    let (order, blocked) = crate::bulk::order(&request.ops);
    let mut results: Vec<Option<Value>> = vec![None; request.ops.len()];
    let mut errors = 0usize;
    let max = limits.max_response_bytes;
    let mut used = body_len(&json!({"schemas": [crate::bulk::BULK_RESPONSE], "Operations": []}));
    for (i, e) in blocked {
        let r = op_result(&request.ops[i], e.status, None, None, Some(e.to_json()));
        used += body_len(&r) + 1;
        results[i] = Some(r);
        errors += 1;
    }
    // Room kept for a "not run" result of every operation not answered yet.
    let short: Vec<usize> = request
        .ops
        .iter()
        .map(|op| body_len(&not_run(op, max)) + 1)
        .collect();
    let mut pending: usize = order.iter().map(|&i| short[i]).sum();
    if used + pending > max {
        return Err(ScimError::payload_too_large(format!(
            "The BulkResponse to this request would be more than {max} bytes (SCIM_MAX_RESPONSE_BYTES) \
             even with no operation run (its bulkIds are that long); nothing was run — send fewer \
             operations or shorter bulkIds"
        )));
    }
    let mut ids: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut out_of_room = false;
    for i in order {
        if request.fail_on_errors.is_some_and(|n| errors >= n) {
            break;
        }
        let op = &request.ops[i];
        pending -= short[i];
        let reserve = result_reserve(op, &ctx.base_url);
        out_of_room |= used + reserve + pending > max;
        if out_of_room {
            used += short[i];
            results[i] = Some(not_run(op, max));
            continue;
        }
        let resp = match crate::bulk::resolve(op, &ids) {
            None => ScimError::new(
                409,
                Some(crate::error::ScimType::InvalidValue),
                "A bulkId this operation refers to was not created (its operation failed)",
            )
            .into_response(),
            Some(resolved) => run_bulk_op(&st, &ctx, &resolved)
                .await
                .unwrap_or_else(IntoResponse::into_response),
        };
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let version = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let json_body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status < 400 {
            if let (Some(b), Some(id)) = (&op.bulk_id, json_body.get("id").and_then(Value::as_str))
            {
                ids.insert(b.clone(), id.to_string());
            }
            let location = location.or_else(|| {
                json_body
                    .pointer("/meta/location")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            results[i] = Some(op_result(op, status, location, version, None));
        } else {
            errors += 1;
            results[i] = Some(op_result(op, status, None, None, Some(json_body)));
        }
        let size = results[i].as_ref().map_or(0, |r| body_len(r) + 1);
        debug_assert!(
            size <= reserve,
            "a bulk result ({size} bytes) passed its reserve ({reserve})"
        );
        used += size;
    }
    let ops: Vec<Value> = results.into_iter().flatten().collect();
    let body = json!({"schemas": [crate::bulk::BULK_RESPONSE], "Operations": ops});
    debug_assert!(
        body_len(&body) <= max,
        "a BulkResponse passed the response bound"
    );
    Ok(scim_json(StatusCode::OK, &body))
}

async fn run_bulk_op(
    st: &AppState,
    ctx: &RequestCtx,
    op: &crate::bulk::BulkOp,
) -> ScimResult<Response> {
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
    if let Some(v) = op
        .version
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(header::IF_MATCH, v);
    }
    let (state, ext) = (State(st.clone()), Extension(ctx.clone()));
    let data = || ScimBody(op.data.clone().unwrap_or(Value::Null));
    match (op.method.as_str(), id) {
        ("POST", None) => create(state, ext, RawQuery(None), data(), rt).await,
        ("PUT", Some(id)) => {
            replace(
                state,
                ext,
                PathParam(id),
                RawQuery(None),
                headers,
                data(),
                rt,
            )
            .await
        }
        ("PATCH", Some(id)) => {
            patch(
                state,
                ext,
                PathParam(id),
                RawQuery(None),
                headers,
                data(),
                rt,
            )
            .await
        }
        ("DELETE", Some(id)) => delete(state, ext, PathParam(id), headers, rt).await,
        (m, _) => Err(ScimError::method_not_allowed(format!(
            "{m} is not supported on {} in a bulk operation",
            op.path
        ))),
    }
}
