//! Answers: [`ScimError`] as a SCIM Error response, [`scim_json`] bodies (`application/scim+json`), a
//! resource's representation (a group's members given by the caller: rendering reads no store), resource
//! responses with `ETag` and
//! `Location`, and bodiless answers (204, 304). Every body that grows with the data is held under the
//! response bound (`Limits::max_response_bytes`, counted by `config::lambda_body_len`): [`page_cost`]
//! prices a resource for a list page before it is read whole; a representation over the bound is refused
//! (GET) or left out (the answer to a write that is done).
//!
//! Imports: `state` of `http`; the crate's `config`, `error`, `model`, `schema`.

use super::state::RequestCtx;
use crate::config::lambda_body_len;
use crate::error::{ScimError, ScimResult, ScimType};
use crate::model::{self, Projection, StoredResource};
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
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == 401 {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"SCIM\""),
            );
        }
        // For the metrics recorder (`middleware::observe`): the status's `scimType` and detail.
        resp.extensions_mut().insert(self);
        resp
    }
}

pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp.extensions_mut().insert(ScimBodyMarker);
    resp
}

/// The bytes `v` takes in a response ([`lambda_body_len`] of its JSON text).
pub(super) fn body_len(v: &Value) -> usize {
    lambda_body_len(&v.to_string())
}

/// A group member as a representation lists it.
fn member_entry(base_url: &str, id: &str) -> Value {
    json!({"value": id, "$ref": model::location(base_url, schema::user_resource_type(), id), "type": "User"})
}

/// What a resource will take in a list page, without reading a group's members: its representation
/// (projected), one separating comma, and for a group whose members are returned, `member_count`
/// entries as long as the longest a member can have (members are users, whose ids the server makes:
/// 36 characters). Never less than [`representation`] then makes of it, so a page priced with it fits.
pub(super) fn page_cost<'a>(
    ctx: &'a RequestCtx,
    rt: &'static ResourceType,
    projection: &'a Projection,
) -> impl Fn(&StoredResource) -> usize + Send + Sync + 'a {
    let with_members = wants_members(rt, projection);
    let entry = body_len(&member_entry(&ctx.base_url, &model::new_id())) + 1;
    move |res: &StoredResource| {
        let own = body_len(&projection.apply(rt, model::render(res, rt, &ctx.base_url))) + 1;
        if with_members && res.member_count > 0 {
            own + body_len(&json!({"members": []})) + res.member_count as usize * entry
        } else {
            own
        }
    }
}

/// 400 `tooMany`: one resource's representation is more than a response may hold (only a group's
/// members can make it so: a User always fits, see `config::RESPONSE_BYTES_MIN`).
pub(super) fn too_large(
    rt: &ResourceType,
    what: &str,
    bytes: Option<usize>,
    max: usize,
) -> ScimError {
    let size = bytes.map(|b| format!("{b} bytes, ")).unwrap_or_default();
    ScimError::bad_request(
        ScimType::TooMany,
        format!(
            "{what} with its members is {size}more than one response may hold ({max} bytes, \
             SCIM_MAX_RESPONSE_BYTES); ask with excludedAttributes=members (also to test a membership: \
             filter=id eq \"<{}>\" and members eq \"<user id>\")",
            rt.name.to_lowercase()
        ),
    )
}

/// Whether a representation of `rt` under `projection` lists members (a group's, unless
/// `excludedAttributes=members` or an `attributes` list without them).
pub(super) fn wants_members(rt: &ResourceType, projection: &Projection) -> bool {
    rt.is_group() && !projection.excludes(rt, "members")
}

/// The full representation, with `members` (read by the caller, [`crate::service::Service::members_of`])
/// listed for a group whose projection asks for them. Renders only: no store read.
pub(super) fn representation(
    ctx: &RequestCtx,
    rt: &'static ResourceType,
    res: &StoredResource,
    members: Option<&[String]>,
    projection: &Projection,
) -> Value {
    let mut body = model::render(res, rt, &ctx.base_url);
    if let (Some(members), Value::Object(obj)) = (members, &mut body) {
        let meta = obj.remove("meta");
        let list: Vec<Value> = members
            .iter()
            .map(|m| member_entry(&ctx.base_url, m))
            .collect();
        obj.insert("members".into(), Value::Array(list));
        if let Some(meta) = meta {
            obj.insert("meta".into(), meta);
        }
    }
    projection.apply(rt, body)
}

/// The resource with `ETag` (and `Location` for 201), `members` as [`representation`] takes them. A
/// representation over the response bound (`max_bytes`: a group with very many members) is refused with
/// 400 `tooMany` when the request only reads it; after a write — done, whatever the answer — the answer
/// has no body instead: 201 stays 201 (with `Location`), 200 becomes 204 (RFC 7644 §3.5.2 allows 204 to a
/// PATCH; a PUT's client reads the resource again).
#[allow(clippy::too_many_arguments)] // the answer's every input, each used once; grouping them adds a type
pub(super) fn resource_response(
    status: StatusCode,
    res: &StoredResource,
    rt: &'static ResourceType,
    ctx: &RequestCtx,
    projection: &Projection,
    members: Option<&[String]>,
    max_bytes: usize,
    written: bool,
) -> ScimResult<Response> {
    let body = representation(ctx, rt, res, members, projection);
    let size = body_len(&body);
    let mut resp = match (size > max_bytes, written) {
        (false, _) => scim_json(status, &body),
        (true, false) => {
            return Err(too_large(
                rt,
                &format!("{} {}", rt.name, res.id),
                Some(size),
                max_bytes,
            ))
        }
        (true, true) if status == StatusCode::CREATED => empty_response(status, None),
        (true, true) => empty_response(StatusCode::NO_CONTENT, None),
    };
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
