//! Answers: [`ScimError`] as a SCIM Error response, [`scim_json`] bodies (`application/scim+json`), a
//! resource's representation (a group's members given by the caller: rendering reads no store), resource
//! responses with `ETag` and
//! `Location`, and bodiless answers (204, 304). Every body that grows with the data is held under the
//! response bound (`Limits::max_response_bytes`, counted by `config::lambda_body_len`): [`page_cost`]
//! prices a resource for a list page before it is read whole; a representation over the bound is refused
//! (GET) or left out (the answer to a write that is done).
//!
//! Each body is serialised once: the text that is counted against the bound is the text sent
//! ([`scim_text`]), and a list page keeps each resource's text from its pricing ([`PagePricer`]) to the
//! page ([`list_body`]).
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
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

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
    scim_text(status, body.to_string())
}

/// [`scim_json`] for a body already serialised (`text` is JSON).
pub(super) fn scim_text(status: StatusCode, text: String) -> Response {
    let mut resp = Response::new(Body::from(text));
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

/// `v` serialised once, to be counted ([`lambda_body_len`]) and then sent as it is.
pub(super) fn to_raw(v: &Value) -> ScimResult<Box<RawValue>> {
    serde_json::value::to_raw_value(v)
        .map_err(|e| ScimError::internal(format!("cannot serialise a representation: {e}")))
}

/// A ListResponse's body: the envelope around resources serialised before (each once, when priced or
/// rendered). `startIndex` for index paging, `nextCursor` when cursor paging has more.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListBody<'a> {
    pub schemas: [&'static str; 1],
    pub total_results: usize,
    #[serde(rename = "Resources")]
    pub resources: &'a [Box<RawValue>],
    pub items_per_page: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The text of `body` (serialising raw values copies them).
pub(super) fn list_body(body: &ListBody) -> ScimResult<String> {
    serde_json::to_string(body)
        .map_err(|e| ScimError::internal(format!("cannot serialise a list page: {e}")))
}

/// A group member as a representation lists it.
fn member_entry(base_url: &str, id: &str) -> Value {
    json!({"value": id, "$ref": model::location(base_url, schema::user_resource_type(), id), "type": "User"})
}

/// The longest id a member can have: users' ids are the server's, UUIDs of 36 characters.
const MEMBER_ID_PLACEHOLDER: &str = "00000000-0000-0000-0000-000000000000";

/// Prices resources for a list page: what each will take in the page, without reading a group's
/// members — its representation (projected), one separating comma, and for a group whose members are
/// returned, `member_count` entries as long as the longest a member can have. Never less than
/// [`representation`] then makes of it, so a page priced with it fits.
///
/// A resource rendered without members is rendered exactly as priced, so its priced text is kept
/// ([`PagePricer::take`]) and the page uses it instead of rendering and serialising it again. The
/// store prices only the resources it puts on the page and the one that ends it, so what is kept is
/// bounded by the page's own bound (plus that one resource).
pub(super) struct PagePricer<'a> {
    ctx: &'a RequestCtx,
    rt: &'static ResourceType,
    projection: &'a Projection,
    with_members: bool,
    /// One member entry and its comma, and the empty `"members":[]` around them (when members are
    /// listed): the same for every resource of the page, so reckoned once.
    entry: usize,
    members_envelope: usize,
    /// Priced texts by resource id, of resources rendered without members.
    priced: Mutex<HashMap<String, Box<RawValue>>>,
}

impl<'a> PagePricer<'a> {
    pub(super) fn new(
        ctx: &'a RequestCtx,
        rt: &'static ResourceType,
        projection: &'a Projection,
    ) -> Self {
        let with_members = wants_members(rt, projection);
        PagePricer {
            ctx,
            rt,
            projection,
            with_members,
            entry: match with_members {
                true => body_len(&member_entry(&ctx.base_url, MEMBER_ID_PLACEHOLDER)) + 1,
                false => 0,
            },
            members_envelope: match with_members {
                true => body_len(&json!({"members": []})),
                false => 0,
            },
            priced: Mutex::new(HashMap::new()),
        }
    }

    /// What `res` takes in the page (see the type).
    pub(super) fn cost(&self, res: &StoredResource) -> usize {
        let v = self
            .projection
            .apply(self.rt, model::render(res, self.rt, &self.ctx.base_url));
        let Ok(raw) = serde_json::value::to_raw_value(&v) else {
            return body_len(&v) + 1;
        };
        let own = lambda_body_len(raw.get()) + 1;
        if self.with_members {
            if res.member_count > 0 {
                return own + self.members_envelope + res.member_count as usize * self.entry;
            }
            return own;
        }
        if let Ok(mut priced) = self.priced.lock() {
            priced.insert(res.id.clone(), raw);
        }
        own
    }

    /// The text priced for `id`, when it is rendered as priced (no members listed); taken once.
    pub(super) fn take(&self, id: &str) -> Option<Box<RawValue>> {
        if self.with_members {
            return None;
        }
        self.priced.lock().ok()?.remove(id)
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
    let body = representation(ctx, rt, res, members, projection).to_string();
    let size = lambda_body_len(&body);
    let mut resp = match (size > max_bytes, written) {
        (false, _) => scim_text(status, body),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestCtx {
        RequestCtx {
            tenant: "t".into(),
            base_url: "https://h/scim/v2".into(),
            me: None,
        }
    }

    fn resource(id: &str, attrs: Value, member_count: u64) -> StoredResource {
        let Value::Object(attrs) = attrs else {
            panic!("attributes are an object")
        };
        StoredResource {
            id: id.into(),
            attrs,
            created: "2026-12-07T00:00:00.000Z".into(),
            last_modified: "2026-12-07T00:00:00.000Z".into(),
            version: 2,
            member_count,
            ..Default::default()
        }
    }

    #[test]
    fn a_user_is_priced_as_sent_and_its_text_is_kept_once() {
        let (ctx, rt, projection) = (ctx(), schema::user_resource_type(), Projection::default());
        let user = resource(
            "u1",
            json!({"userName": "a \"quoted\" name", "displayName": "back\\slash"}),
            0,
        );
        let sent = representation(&ctx, rt, &user, None, &projection).to_string();
        let pricer = PagePricer::new(&ctx, rt, &projection);
        assert_eq!(pricer.cost(&user), lambda_body_len(&sent) + 1);
        assert_eq!(pricer.take("u1").map(|r| r.get().to_string()), Some(sent));
        assert!(pricer.take("u1").is_none(), "taken once");
        assert!(pricer.take("u2").is_none(), "never priced");
    }

    #[test]
    fn a_group_listed_with_members_is_priced_at_least_as_sent_and_not_kept() {
        let (ctx, rt, projection) = (ctx(), schema::group_resource_type(), Projection::default());
        let group = resource("g1", json!({"displayName": "G"}), 2);
        let members = [model::new_id(), model::new_id()];
        let sent = representation(&ctx, rt, &group, Some(&members), &projection).to_string();
        let pricer = PagePricer::new(&ctx, rt, &projection);
        assert!(
            pricer.cost(&group) > lambda_body_len(&sent),
            "its text and a comma at least"
        );
        assert!(
            pricer.take("g1").is_none(),
            "rendered again, with its members"
        );
    }

    #[test]
    fn a_list_body_is_the_envelope_around_the_texts_in_order() {
        let texts = [
            to_raw(&json!({"id": "a"})).unwrap(),
            to_raw(&json!({"id": "b"})).unwrap(),
        ];
        let body = list_body(&ListBody {
            schemas: [schema::LIST_RESPONSE],
            total_results: 5,
            resources: &texts,
            items_per_page: 2,
            start_index: Some(1),
            next_cursor: None,
        })
        .unwrap();
        assert_eq!(
            body,
            format!(
                r#"{{"schemas":["{}"],"totalResults":5,"Resources":[{{"id":"a"}},{{"id":"b"}}],"itemsPerPage":2,"startIndex":1}}"#,
                schema::LIST_RESPONSE
            )
        );
        let cursor = list_body(&ListBody {
            schemas: [schema::LIST_RESPONSE],
            total_results: 5,
            resources: &texts[..1],
            items_per_page: 1,
            start_index: None,
            next_cursor: Some("c".into()),
        })
        .unwrap();
        let v: Value = serde_json::from_str(&cursor).unwrap();
        assert_eq!(v["nextCursor"], "c");
        assert!(v.get("startIndex").is_none());
    }
}
