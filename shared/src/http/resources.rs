//! The resource handlers: list, create, get, replace, patch, delete and `.search` for each resource type of
//! the profile, `POST /.search` across them, and `/Me`; each parses the request, calls the service and
//! answers. Their routes are here too ([`routes`], [`me_routes`]). A list page holds what the response
//! bound leaves room for ([`Page`]): possibly fewer than `count` resources, with `itemsPerPage` and the
//! next cursor saying where the next page starts.
//!
//! Imports: `state`, `extract`, `respond` of `http`; the crate's `error`, `model`, `query`, `schema`,
//! `service`, `store` (the page budget's types).

use super::extract::{header_str, PathParam, ScimBody};
use super::respond::{
    empty_response, list_body, representation, resource_response, scim_text, to_raw, too_large,
    wants_members, ListBody, PagePricer,
};
use super::state::{AppState, RequestCtx};
use crate::config::lambda_body_len;
use crate::error::{ScimError, ScimResult};
use crate::model::{Projection, StoredResource};
use crate::query::{self, ListParams};
use crate::schema::{ResourceType, LIST_RESPONSE};
use crate::service::{etag_matches, PageAt};
use crate::store::{ListPage, PageBudget};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use serde_json::value::RawValue;
use serde_json::Value;

/// `<endpoint>`, `<endpoint>/.search` and `<endpoint>/{id}` of one resource type.
pub(super) fn routes(rt: &'static ResourceType) -> Router<AppState> {
    let collection: MethodRouter<AppState> = get(
        move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery| list(st, ctx, q, rt),
    )
    .post(
        move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery, body: ScimBody| {
            create(st, ctx, q, body, rt)
        },
    );
    let item: MethodRouter<AppState> = get(
        move |st: State<AppState>,
              ctx: Extension<RequestCtx>,
              id: PathParam,
              q: RawQuery,
              h: HeaderMap| { get_one(st, ctx, id, q, h, rt) },
    )
    .put(
        move |st: State<AppState>,
              ctx: Extension<RequestCtx>,
              id: PathParam,
              q: RawQuery,
              h: HeaderMap,
              body: ScimBody| { replace(st, ctx, id, q, h, body, rt) },
    )
    .patch(
        move |st: State<AppState>,
              ctx: Extension<RequestCtx>,
              id: PathParam,
              q: RawQuery,
              h: HeaderMap,
              body: ScimBody| { patch(st, ctx, id, q, h, body, rt) },
    )
    .delete(
        move |st: State<AppState>, ctx: Extension<RequestCtx>, id: PathParam, h: HeaderMap| {
            delete(st, ctx, id, h, rt)
        },
    );
    let search = axum::routing::post(
        move |st: State<AppState>, ctx: Extension<RequestCtx>, body: ScimBody| {
            search(st, ctx, body, rt)
        },
    );
    Router::new()
        .route(rt.endpoint, collection)
        .route(&format!("{}/.search", rt.endpoint), search)
        .route(&format!("{}/{{id}}", rt.endpoint), item)
}

/// `/Me` (RFC 7644 §3.11): the user the presented token is bound to.
pub(super) fn me_routes(rt: &'static ResourceType) -> Router<AppState> {
    fn me(ctx: &RequestCtx) -> ScimResult<PathParam> {
        ctx.me.clone().map(PathParam).ok_or_else(|| {
            ScimError::not_implemented(
                "/Me needs a token bound to a user; this token is not (issue one with `scim-admin token issue <tenant> --user <id>`)",
            )
        })
    }
    let routes = get(move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery, h: HeaderMap| async move {
        let id = me(&ctx)?;
        get_one(st, ctx, id, q, h, rt).await
    })
    .put(move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery, h: HeaderMap, body: ScimBody| async move {
        let id = me(&ctx)?;
        replace(st, ctx, id, q, h, body, rt).await
    })
    .patch(move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery, h: HeaderMap, body: ScimBody| async move {
        let id = me(&ctx)?;
        patch(st, ctx, id, q, h, body, rt).await
    })
    .delete(move |st: State<AppState>, ctx: Extension<RequestCtx>, h: HeaderMap| async move {
        let id = me(&ctx)?;
        delete(st, ctx, id, h, rt).await
    });
    Router::new().route("/Me", routes)
}

async fn list(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    RawQuery(q): RawQuery,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let p = ListParams::parse_for(&query::decode(q.as_deref()), &st.service.limits, rt.name)?;
    list_response(&st, &ctx, rt, &p).await
}

/// What a ListResponse holds besides its resources, at most: the schema, the figures and a cursor
/// (whose id is at most 1,024 bytes, hex-encoded).
const LIST_ENVELOPE_BYTES: usize = 4096;

/// The resources of one ListResponse, rendered while they fit in `room` bytes.
struct Page {
    room: usize,
    used: usize,
    /// Each resource's text, serialised once ([`PagePricer`]).
    resources: Vec<Box<RawValue>>,
    /// The last rendered resource's id (the next cursor continues after it).
    last: Option<String>,
}

impl Page {
    fn new(max_response_bytes: usize) -> Self {
        let room = max_response_bytes.saturating_sub(LIST_ENVELOPE_BYTES);
        Page {
            room,
            used: 0,
            resources: Vec::new(),
            last: None,
        }
    }

    /// What the store may still fill.
    fn budget<'a>(
        &self,
        cost: &'a (dyn Fn(&StoredResource) -> usize + Send + Sync),
    ) -> PageBudget<'a> {
        PageBudget {
            max_bytes: self.room - self.used,
            cost,
        }
    }

    /// Render `items` (a store page priced with `pricer`) in order while they fit; false when one did
    /// not (its members made it larger than priced: the page ends before it). A resource without members
    /// is taken as priced, not rendered again.
    async fn render(
        &mut self,
        st: &AppState,
        ctx: &RequestCtx,
        rt: &'static ResourceType,
        items: &[StoredResource],
        pricer: &PagePricer<'_>,
        projection: &Projection,
    ) -> ScimResult<bool> {
        for r in items {
            let v = match pricer.take(&r.id) {
                Some(priced) => priced,
                None => {
                    let wanted = wants_members(rt, projection);
                    let members = st.service.members_of(&ctx.tenant, rt, r, wanted).await?;
                    to_raw(&representation(ctx, rt, r, members.as_deref(), projection))?
                }
            };
            let cost = lambda_body_len(v.get()) + 1;
            if self.used + cost > self.room {
                return Ok(false);
            }
            self.used += cost;
            self.resources.push(v);
            self.last = Some(r.id.clone());
        }
        Ok(true)
    }

    /// The page ended before its first resource: that resource alone is more than a response may hold.
    fn check_progress(
        &self,
        rt: &ResourceType,
        page: &ListPage,
        rendered_all: bool,
    ) -> ScimResult<()> {
        if self.resources.is_empty() && (page.full || !rendered_all) {
            let what = format!("The next {} of this list", rt.name);
            return Err(too_large(rt, &what, None, self.room + LIST_ENVELOPE_BYTES));
        }
        Ok(())
    }
}

/// A ListResponse for `p` (GET with query parameters, or POST `.search`), within the response bound: the
/// store prices each resource ([`page_cost`]) and stops reading when the next would not fit.
async fn list_response(
    st: &AppState,
    ctx: &RequestCtx,
    rt: &'static ResourceType,
    p: &ListParams,
) -> ScimResult<Response> {
    let after = p.cursor.as_ref().and_then(|c| c.as_deref());
    let mut out = Page::new(st.service.limits.max_response_bytes);
    let pricer = PagePricer::new(ctx, rt, &p.projection);
    let cost = |r: &StoredResource| pricer.cost(r);
    let at = PageAt {
        start_index: p.start_index,
        count: p.count,
        after,
        budget: Some(out.budget(&cost)),
    };
    let page = st
        .service
        .list(&ctx.tenant, rt, p.filter.as_ref(), at)
        .await?;
    let rendered_all = out
        .render(st, ctx, rt, &page.items, &pricer, &p.projection)
        .await?;
    out.check_progress(rt, &page, rendered_all)?;
    let more = page.more || !rendered_all;
    let (start_index, next_cursor) = match &p.cursor {
        None => (Some(p.start_index), None),
        Some(_) => match (more, &out.last) {
            (true, Some(last)) => (None, Some(query::encode_cursor(rt.name, last))),
            _ => (None, None),
        },
    };
    let body = list_body(&ListBody {
        schemas: [LIST_RESPONSE],
        total_results: page.total,
        resources: &out.resources,
        items_per_page: out.resources.len(),
        start_index,
        next_cursor,
    })?;
    debug_assert!(
        lambda_body_len(&body) <= st.service.limits.max_response_bytes,
        "a list page passed the bound"
    );
    Ok(scim_text(StatusCode::OK, body))
}

pub(super) async fn create(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st.service.create(&ctx.tenant, rt, body).await?;
    answer(&st, StatusCode::CREATED, &res, rt, &ctx, &q, true).await
}

/// Answer with one resource: read what its representation lists (a group's members, through the
/// service; none when the projection leaves them out), then render it ([`resource_response`]).
async fn answer(
    st: &AppState,
    status: StatusCode,
    res: &StoredResource,
    rt: &'static ResourceType,
    ctx: &RequestCtx,
    q: &Option<String>,
    written: bool,
) -> ScimResult<Response> {
    let projection = query::projection(&query::decode(q.as_deref()))?;
    let wanted = wants_members(rt, &projection);
    let members = st.service.members_of(&ctx.tenant, rt, res, wanted).await?;
    let max = st.service.limits.max_response_bytes;
    resource_response(
        status,
        res,
        rt,
        ctx,
        &projection,
        members.as_deref(),
        max,
        written,
    )
}

async fn get_one(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st.service.get(&ctx.tenant, rt, &id).await?;
    if header_str(&headers, header::IF_NONE_MATCH)?.is_some_and(|t| etag_matches(t, &res)) {
        return Ok(empty_response(StatusCode::NOT_MODIFIED, Some(&res)));
    }
    answer(&st, StatusCode::OK, &res, rt, &ctx, &q, false).await
}

pub(super) async fn replace(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st
        .service
        .replace(
            &ctx.tenant,
            rt,
            &id,
            body,
            header_str(&headers, header::IF_MATCH)?,
        )
        .await?;
    answer(&st, StatusCode::OK, &res, rt, &ctx, &q, true).await
}

pub(super) async fn patch(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st
        .service
        .patch(
            &ctx.tenant,
            rt,
            &id,
            &body,
            header_str(&headers, header::IF_MATCH)?,
        )
        .await?;
    // Groups answer 204 (Entra: "Returning a body with a list of all the members isn't advisable") unless
    // the client asked for attributes.
    let asked = query::decode(q.as_deref()).iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("attributes") || k.eq_ignore_ascii_case("excludedAttributes")
    });
    if rt.is_group() && !asked {
        return Ok(empty_response(StatusCode::NO_CONTENT, res.as_ref()));
    }
    let res = match res {
        Some(r) => r,
        None => st.service.get(&ctx.tenant, rt, &id).await?,
    };
    answer(&st, StatusCode::OK, &res, rt, &ctx, &q, true).await
}

pub(super) async fn delete(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    headers: HeaderMap,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    st.service
        .delete(
            &ctx.tenant,
            rt,
            &id,
            header_str(&headers, header::IF_MATCH)?,
        )
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT, None))
}
/// A SearchRequest body (RFC 7644 §3.4.3) as the query parameters it stands for.
fn search_params(body: &Value) -> ScimResult<Vec<(String, String)>> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "A SearchRequest must be a JSON object",
        ));
    };
    let mut pairs = Vec::new();
    for (k, v) in obj {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items)
                if k.eq_ignore_ascii_case("attributes")
                    || k.eq_ignore_ascii_case("excludedAttributes") =>
            {
                items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            ScimError::invalid_value(format!(
                                "'{k}' must be a list of attribute names"
                            ))
                        })
                    })
                    .collect::<ScimResult<Vec<_>>>()?
                    .join(",")
            }
            _ if k.eq_ignore_ascii_case("schemas") => continue,
            other => {
                return Err(ScimError::invalid_value(format!(
                    "SearchRequest '{k}' has an unsupported value {other}"
                )))
            }
        };
        pairs.push((k.clone(), value));
    }
    Ok(pairs)
}

async fn search(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let p = ListParams::parse_for(&search_params(&body)?, &st.service.limits, rt.name)?;
    list_response(&st, &ctx, rt, &p).await
}

/// `POST /.search`: every resource type of the profile, one after the other, paged by `startIndex`. The
/// response bound is shared: once a type's part of the page ends early, later types add nothing to it
/// (the next page, at `startIndex + itemsPerPage`, continues inside that type), but still count.
pub(super) async fn search_all(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    ScimBody(body): ScimBody,
) -> ScimResult<Response> {
    let pairs = search_params(&body)?;
    if pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("cursor")) {
        return Err(ScimError::invalid_value("Cursor paging is offered per resource type (/Users/.search, /Groups/.search), not across them"));
    }
    let p = ListParams::parse(&pairs, &st.service.limits)?;
    let mut total = 0usize;
    let mut out = Page::new(st.service.limits.max_response_bytes);
    let mut skip = p.start_index.saturating_sub(1);
    let mut ended = false;
    for rt in st.resource_types.iter().copied() {
        let want = if ended {
            0
        } else {
            p.count - out.resources.len()
        };
        let pricer = PagePricer::new(&ctx, rt, &p.projection);
        let cost = |r: &StoredResource| pricer.cost(r);
        let at = PageAt {
            start_index: skip + 1,
            count: want,
            after: None,
            budget: Some(out.budget(&cost)),
        };
        let page = st
            .service
            .list(&ctx.tenant, rt, p.filter.as_ref(), at)
            .await?;
        total += page.total;
        skip = skip.saturating_sub(page.total);
        let rendered_all = out
            .render(&st, &ctx, rt, &page.items, &pricer, &p.projection)
            .await?;
        out.check_progress(rt, &page, rendered_all)?;
        ended |= page.full || !rendered_all;
    }
    let body = list_body(&ListBody {
        schemas: [LIST_RESPONSE],
        total_results: total,
        resources: &out.resources,
        items_per_page: out.resources.len(),
        start_index: Some(p.start_index),
        next_cursor: None,
    })?;
    debug_assert!(
        lambda_body_len(&body) <= st.service.limits.max_response_bytes,
        "a .search page passed the bound"
    );
    Ok(scim_text(StatusCode::OK, body))
}
