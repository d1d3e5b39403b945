//! One axum router for every deployment: the Lambda functions run it with `lambda_http::run`, the local
//! server serves it, the tests call it. Cross-cutting concerns (auth, content type, SCIM error bodies,
//! request logging, DynamoDB call counting, panic catching) are layers written once here.

use crate::auth::Auth;
use crate::config::HttpConfig;
use crate::discovery;
use crate::error::{ScimError, ScimResult};
use crate::model::{self, Projection, StoredResource};
use crate::query::{self, ListParams};
use crate::schema::{self, ResourceType, LIST_RESPONSE};
use crate::service::{etag_matches, Service};
use crate::store;
use axum::body::Body;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

pub const SCIM_JSON: &str = "application/scim+json";
/// The directory served at the base URL (re-exported from [`crate::auth`], which owns tenant ids).
pub use crate::auth::DEFAULT_TENANT;
pub const CALLS_HEADER: &str = "x-scim-dynamodb-calls";
/// With the call count: the capacity units DynamoDB reported consumed, e.g. `read=1, write=6`.
pub const CAPACITY_HEADER: &str = "x-scim-dynamodb-capacity";

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub auth: Arc<Auth>,
    pub http: Arc<HttpConfig>,
    /// The resource types this deployment serves (discovery lists exactly these).
    pub resource_types: Arc<Vec<&'static ResourceType>>,
}

impl AppState {
    /// With the default profile (Users with the enterprise extension, and Groups).
    pub fn new(service: Service, auth: Auth, http: HttpConfig) -> Self {
        AppState {
            service: Arc::new(service),
            auth: Arc::new(auth),
            http: Arc::new(http),
            resource_types: Arc::new(vec![schema::user_resource_type(), schema::group_resource_type()]),
        }
    }

    /// With the resource types and extensions of `profile`.
    pub fn with_profile(service: Service, auth: Auth, http: HttpConfig, profile: &crate::profile::Profile) -> Self {
        AppState { resource_types: Arc::new(profile.resource_types.clone()), ..AppState::new(service, auth, http) }
    }

    fn resource_type(&self, name: &str) -> Option<&'static ResourceType> {
        self.resource_types.iter().copied().find(|r| r.name == name)
    }
}

/// Per-request context, set by the middleware.
#[derive(Clone, Debug)]
pub struct RequestCtx {
    pub tenant: String,
    /// Absolute base URL of the SCIM API for this request (`https://host/scim/v2`).
    pub base_url: String,
    /// The user the presented token is bound to (`/Me`).
    pub me: Option<String>,
}

/// Marks responses that already carry a SCIM body, so the middleware leaves them alone.
#[derive(Clone, Copy)]
struct ScimBodyMarker;

/// Every resource and discovery endpoint under one base path (the local server and the tests).
pub fn router(state: AppState) -> Router {
    let mut inner = discovery_routes().merge(extras_routes(&state));
    for rt in state.resource_types.iter() {
        inner = inner.merge(resource_routes(rt));
    }
    wrap(state, inner)
}

/// `/Bulk`, `/Me` and `POST /.search` (the `bulk` Lambda function).
pub fn extras_router(state: AppState) -> Router {
    let inner = extras_routes(&state);
    wrap(state, inner)
}

fn extras_routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new().route("/Bulk", axum::routing::post(bulk)).route("/.search", axum::routing::post(search_all));
    if let Some(user) = state.resource_type("User") {
        r = r.merge(me_routes(user));
    }
    r
}

/// `/Me` (RFC 7644 §3.11): the user the presented token is bound to.
fn me_routes(rt: &'static ResourceType) -> Router<AppState> {
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

/// The routes of one resource type of the profile (none when the profile does not serve it).
fn type_router(state: AppState, name: &str) -> Router {
    let inner = state.resource_type(name).map(resource_routes).unwrap_or_default();
    wrap(state, inner)
}

/// `/Groups` and `/Groups/{id}` only (the `groups` Lambda function).
pub fn groups_router(state: AppState) -> Router {
    type_router(state, "Group")
}

/// `/Users` and `/Users/{id}` only (the `users` Lambda function).
pub fn users_router(state: AppState) -> Router {
    type_router(state, "User")
}

/// The discovery endpoints only (the `discovery` Lambda function).
pub fn discovery_router(state: AppState) -> Router {
    wrap(state, discovery_routes())
}

fn wrap(state: AppState, inner: Router<AppState>) -> Router {
    let base = state.http.base_path.clone();
    // The default tenant at the base path; every other tenant at `/<tenant><base path>`.
    let routed: Router<AppState> = if base.is_empty() {
        inner
    } else {
        Router::new().nest(&base, inner.clone()).nest(&format!("/{{tenant}}{base}"), inner)
    };
    let routed = routed
        .fallback(|uri: Uri| async move { ScimError::not_found(format!("There is no SCIM endpoint at {}", uri.path())) })
        .layer(middleware::from_fn_with_state(state.clone(), scim_layer))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked; answered 500");
            ScimError::internal("The server hit an unexpected error while handling the request").into_response()
        }))
        .with_state(state);
    // Clean the path before routing: `//Users` (a Tenant URL pasted with a trailing slash) and `/Users/`.
    Router::new().fallback_service(tower::ServiceBuilder::new().map_request(clean_path).service(routed))
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

fn resource_routes(rt: &'static ResourceType) -> Router<AppState> {
    let collection: MethodRouter<AppState> = get(move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery| list(st, ctx, q, rt))
        .post(move |st: State<AppState>, ctx: Extension<RequestCtx>, q: RawQuery, body: ScimBody| create(st, ctx, q, body, rt));
    let item: MethodRouter<AppState> = get(move |st: State<AppState>, ctx: Extension<RequestCtx>, id: PathParam, q: RawQuery, h: HeaderMap| {
        get_one(st, ctx, id, q, h, rt)
    })
    .put(move |st: State<AppState>, ctx: Extension<RequestCtx>, id: PathParam, q: RawQuery, h: HeaderMap, body: ScimBody| {
        replace(st, ctx, id, q, h, body, rt)
    })
    .patch(move |st: State<AppState>, ctx: Extension<RequestCtx>, id: PathParam, q: RawQuery, h: HeaderMap, body: ScimBody| {
        patch(st, ctx, id, q, h, body, rt)
    })
    .delete(move |st: State<AppState>, ctx: Extension<RequestCtx>, id: PathParam, h: HeaderMap| delete(st, ctx, id, h, rt));
    let search = axum::routing::post(move |st: State<AppState>, ctx: Extension<RequestCtx>, body: ScimBody| search(st, ctx, body, rt));
    Router::new()
        .route(rt.endpoint, collection)
        .route(&format!("{}/.search", rt.endpoint), search)
        .route(&format!("{}/{{id}}", rt.endpoint), item)
}

fn discovery_routes() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(spc))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{urn}", get(schema_one))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{name}", get(resource_type_one))
}

// ---------------------------------------------------------------------------------------------
// Middleware

async fn scim_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let has_filter = req.uri().query().is_some_and(|q| q.contains("filter="));
    let auth_header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // A path that is neither the base URL nor a valid tenant's URL is no alias of either: 404 before auth.
    let tenant = tenant_of(&path, &state.http.base_path);
    let (mut resp, usage) = store::measure(async {
        let Some(tenant) = tenant.clone() else {
            return ScimError::not_found(format!("There is no SCIM endpoint at {path}")).into_response();
        };
        let me = match state.auth.authenticate(&tenant, auth_header.as_deref(), &*state.service.store).await {
            Ok(me) => me,
            Err(e) => return e.into_response(),
        };
        let ctx = RequestCtx { tenant: tenant.clone(), base_url: base_url(&state.http, req.headers(), &tenant), me };
        req.extensions_mut().insert(ctx);
        req.extensions_mut().insert(BodyRules { limit: state.service.limits.max_body_bytes, timeout: state.http.body_read_timeout });
        next.run(req).await
    })
    .await;
    if resp.extensions().get::<ScimBodyMarker>().is_none() && resp.status().as_u16() >= 400 {
        resp = framework_error_to_scim(resp, &method, &path).await;
    }
    if !matches!(resp.status(), StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    }
    // Refused before its body was read: tell the client not to reuse this connection for another request.
    if matches!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::REQUEST_TIMEOUT) {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if state.http.expose_call_count {
        resp.headers_mut().insert(CALLS_HEADER, HeaderValue::from(usage.calls));
        if let Ok(v) = HeaderValue::from_str(&format!("read={}, write={}", usage.read_units, usage.write_units)) {
            resp.headers_mut().insert(CAPACITY_HEADER, v);
        }
    }
    let status = resp.status().as_u16();
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let (resource, id) = resource_of(&path);
    let tenant = tenant.as_deref().unwrap_or("-");
    // The audit line: never the token, never the query string or body (they carry personal data).
    if status >= 500 {
        tracing::error!(tenant = %tenant, %method, resource, id, path, status, latency_ms, dynamodb_calls = usage.calls, rcu = usage.read_units, wcu = usage.write_units, has_filter, "request");
    } else {
        tracing::info!(tenant = %tenant, %method, resource, id, path, status, latency_ms, dynamodb_calls = usage.calls, rcu = usage.read_units, wcu = usage.write_units, has_filter, "request");
    }
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
    match segs.iter().rposition(|s| matches!(*s, "Users" | "Groups" | "Schemas" | "ResourceTypes" | "ServiceProviderConfig")) {
        Some(i) => (segs[i], segs.get(i + 1).copied().unwrap_or("")),
        None => ("", ""),
    }
}

/// The tenant a path addresses: the default tenant under the base path, `t` under `/t<base path>` for a
/// valid tenant id `t`; None for a path that is neither (answered 404). With the API at the root (empty
/// base path) there are no tenant URLs: every path is the default tenant's.
fn tenant_of(path: &str, base: &str) -> Option<String> {
    if base.is_empty() {
        return Some(DEFAULT_TENANT.to_string());
    }
    let under = |p: &str| !base.is_empty() && (p == base || p.starts_with(&format!("{base}/")));
    if under(path) {
        return Some(DEFAULT_TENANT.to_string());
    }
    let rest = path.strip_prefix('/')?;
    let (first, after) = rest.split_once('/').map(|(a, b)| (a, format!("/{b}"))).unwrap_or((rest, String::new()));
    (under(&after) && crate::auth::valid_tenant(first)).then(|| first.to_string())
}

fn base_url(cfg: &HttpConfig, headers: &HeaderMap, tenant: &str) -> String {
    let tenant_part = if tenant == DEFAULT_TENANT { String::new() } else { format!("/{tenant}") };
    if let Some(u) = &cfg.public_url {
        let origin = u.strip_suffix(cfg.base_path.as_str()).unwrap_or(u);
        return format!("{origin}{tenant_part}{}", cfg.base_path);
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
    format!("{proto}://{host}{tenant_part}{}", cfg.base_path)
}

// ---------------------------------------------------------------------------------------------
// Responses

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
async fn representation(st: &AppState, ctx: &RequestCtx, rt: &'static ResourceType, res: &StoredResource, projection: &Projection) -> ScimResult<Value> {
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

async fn resource_response(
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

// ---------------------------------------------------------------------------------------------
// Request bodies

/// How large a request body may be, and how long it may take to arrive (set by the middleware).
#[derive(Clone, Copy)]
struct BodyRules {
    limit: usize,
    timeout: std::time::Duration,
}

impl Default for BodyRules {
    fn default() -> Self {
        BodyRules { limit: 1024 * 1024, timeout: std::time::Duration::from_secs(30) }
    }
}

/// A JSON request body: `application/scim+json` or `application/json` (any parameters), at most the
/// configured size (413 above it, checked against `Content-Length` before reading), valid JSON.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ScimError> {
        let rules = req.extensions().get::<BodyRules>().copied().unwrap_or_default();
        read_json(req, rules.limit).await.map(ScimBody)
    }
}

/// Read a JSON request body of at most `limit` bytes (413 above it, checked against `Content-Length`
/// before reading), sent as `application/scim+json` or `application/json`, within the body read timeout
/// (408 after it).
async fn read_json(req: Request, limit: usize) -> ScimResult<Value> {
    {
        let timeout = req.extensions().get::<BodyRules>().copied().unwrap_or_default().timeout;
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if ct != SCIM_JSON && ct != "application/json" {
                return Err(ScimError::unsupported_media_type(format!(
                    "Content-Type '{ct}' is not accepted; send application/scim+json or application/json"
                )));
            }
        }
        let too_large = || ScimError::payload_too_large(format!("The request body is larger than {limit} bytes"));
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let collected = tokio::time::timeout(timeout, http_body_util::Limited::new(req.into_body(), limit).collect()).await;
        let Ok(collected) = collected else {
            return Err(ScimError::new(408, None, format!("The request body did not arrive within {} s", timeout.as_secs())));
        };
        let bytes = match collected {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
            Err(_) => return Err(ScimError::invalid_syntax("The request body could not be read")),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ScimError::invalid_syntax("The request body is empty; a JSON object is required"));
        }
        serde_json::from_slice(&bytes).map_err(|e| ScimError::invalid_syntax(format!("The request body is not valid JSON: {e}")))
    }
}

/// The last path parameter (`{id}`, `{urn}`, `{name}`): routes may also carry `{tenant}` before it.
pub struct PathParam(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ScimError> {
        let Path(params): Path<Vec<(String, String)>> = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| ScimError::invalid_syntax(format!("The request path could not be decoded: {e}")))?;
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
fn header_str(h: &HeaderMap, name: header::HeaderName) -> ScimResult<Option<&str>> {
    match h.get(&name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            let shown = if name == header::IF_MATCH { "If-Match" } else { "If-None-Match" };
            ScimError::invalid_syntax(format!("The {shown} header is not an entity tag (it must be visible ASCII, e.g. W/\"3\"); nothing was changed"))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Resource handlers: parse, call the service, answer.

async fn list(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, RawQuery(q): RawQuery, rt: &'static ResourceType) -> ScimResult<Response> {
    let p = ListParams::parse_for(&query::decode(q.as_deref()), &st.service.limits, rt.name)?;
    list_response(&st, &ctx, rt, &p).await
}

/// A ListResponse for `p` (GET with query parameters, or POST `.search`).
async fn list_response(st: &AppState, ctx: &RequestCtx, rt: &'static ResourceType, p: &ListParams) -> ScimResult<Response> {
    let after = p.cursor.as_ref().and_then(|c| c.as_deref());
    let page = st.service.list_any(&ctx.tenant, rt, p.filter.as_ref(), p.start_index, p.count, after).await?;
    let mut resources: Vec<Value> = Vec::with_capacity(page.items.len());
    for r in &page.items {
        resources.push(representation(st, ctx, rt, r, &p.projection).await?);
    }
    let n = resources.len();
    let mut body = json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": page.total,
        "Resources": resources,
        "itemsPerPage": n,
    });
    match &p.cursor {
        None => body["startIndex"] = json!(p.start_index),
        Some(_) => {
            if let (true, Some(last)) = (page.more, page.items.last()) {
                body["nextCursor"] = json!(query::encode_cursor(rt.name, &last.id));
            }
        }
    }
    Ok(scim_json(StatusCode::OK, &body))
}

async fn create(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st.service.create_any(&ctx.tenant, rt, body).await?;
    resource_response(&st, StatusCode::CREATED, &res, rt, &ctx, &q).await
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
    resource_response(&st, StatusCode::OK, &res, rt, &ctx, &q).await
}

async fn replace(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st.service.replace_any(&ctx.tenant, rt, &id, body, header_str(&headers, header::IF_MATCH)?).await?;
    resource_response(&st, StatusCode::OK, &res, rt, &ctx, &q).await
}

async fn patch(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    let res = st.service.patch_any(&ctx.tenant, rt, &id, &body, header_str(&headers, header::IF_MATCH)?).await?;
    // Groups answer 204 (Entra: "Returning a body with a list of all the members isn't advisable") unless
    // the client asked for attributes.
    let asked = query::decode(q.as_deref()).iter().any(|(k, _)| k.eq_ignore_ascii_case("attributes") || k.eq_ignore_ascii_case("excludedAttributes"));
    if rt.name == "Group" && !asked {
        return Ok(empty_response(StatusCode::NO_CONTENT, res.as_ref()));
    }
    let res = match res {
        Some(r) => r,
        None => st.service.get(&ctx.tenant, rt, &id).await?,
    };
    resource_response(&st, StatusCode::OK, &res, rt, &ctx, &q).await
}

async fn delete(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(id): PathParam,
    headers: HeaderMap,
    rt: &'static ResourceType,
) -> ScimResult<Response> {
    st.service.delete(&ctx.tenant, rt, &id, header_str(&headers, header::IF_MATCH)?).await?;
    Ok(empty_response(StatusCode::NO_CONTENT, None))
}

/// A bodiless answer (204, 304), with the resource's ETag when there is one.
fn empty_response(status: StatusCode, res: Option<&StoredResource>) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    if let Some(v) = res.and_then(|r| HeaderValue::from_str(&r.etag()).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.extensions_mut().insert(ScimBodyMarker);
    resp
}

/// A SearchRequest body (RFC 7644 §3.4.3) as the query parameters it stands for.
fn search_params(body: &Value) -> ScimResult<Vec<(String, String)>> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax("A SearchRequest must be a JSON object"));
    };
    let mut pairs = Vec::new();
    for (k, v) in obj {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) if k.eq_ignore_ascii_case("attributes") || k.eq_ignore_ascii_case("excludedAttributes") => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| ScimError::invalid_value(format!("'{k}' must be a list of attribute names"))))
                .collect::<ScimResult<Vec<_>>>()?
                .join(","),
            _ if k.eq_ignore_ascii_case("schemas") => continue,
            other => return Err(ScimError::invalid_value(format!("SearchRequest '{k}' has an unsupported value {other}"))),
        };
        pairs.push((k.clone(), value));
    }
    Ok(pairs)
}

async fn search(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, ScimBody(body): ScimBody, rt: &'static ResourceType) -> ScimResult<Response> {
    let p = ListParams::parse_for(&search_params(&body)?, &st.service.limits, rt.name)?;
    list_response(&st, &ctx, rt, &p).await
}

/// `POST /.search`: every resource type of the profile, one after the other, paged by `startIndex`.
async fn search_all(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, ScimBody(body): ScimBody) -> ScimResult<Response> {
    let pairs = search_params(&body)?;
    if pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("cursor")) {
        return Err(ScimError::invalid_value("Cursor paging is offered per resource type (/Users/.search, /Groups/.search), not across them"));
    }
    let p = ListParams::parse(&pairs, &st.service.limits)?;
    let (mut total, mut resources) = (0usize, Vec::new());
    let mut skip = p.start_index.saturating_sub(1);
    for rt in st.resource_types.iter().copied() {
        let want = p.count - resources.len();
        let page = st.service.list_any(&ctx.tenant, rt, p.filter.as_ref(), skip + 1, want, None).await?;
        total += page.total;
        skip = skip.saturating_sub(page.total);
        for r in &page.items {
            resources.push(representation(&st, &ctx, rt, r, &p.projection).await?);
        }
    }
    let n = resources.len();
    let body = json!({"schemas": [LIST_RESPONSE], "totalResults": total, "Resources": resources, "startIndex": p.start_index, "itemsPerPage": n});
    Ok(scim_json(StatusCode::OK, &body))
}

/// `POST /Bulk` (RFC 7644 §3.7): each operation runs through the same handler as its own request would,
/// so it is answered with exactly the status it would have on its own.
async fn bulk(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, req: Request) -> ScimResult<Response> {
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

// ---------------------------------------------------------------------------------------------
// Discovery handlers

async fn spc(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    scim_json(StatusCode::OK, &discovery::service_provider_config(&ctx.base_url, &st.service.limits))
}

async fn schemas(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    let docs = discovery::schemas(&st.resource_types).into_iter().map(|s| discovery::schema_doc(s, &ctx.base_url)).collect();
    scim_json(StatusCode::OK, &discovery::list(docs))
}

async fn schema_one(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, PathParam(urn): PathParam) -> ScimResult<Response> {
    let s = discovery::schemas(&st.resource_types)
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&urn))
        .ok_or_else(|| ScimError::not_found(format!("Schema {urn} is not served here; GET /Schemas lists those that are")))?;
    Ok(scim_json(StatusCode::OK, &discovery::schema_doc(s, &ctx.base_url)))
}

async fn resource_types(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    let docs = st.resource_types.iter().map(|rt| discovery::resource_type_doc(rt, &ctx.base_url)).collect();
    scim_json(StatusCode::OK, &discovery::list(docs))
}

async fn resource_type_one(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, PathParam(name): PathParam) -> ScimResult<Response> {
    let rt = st
        .resource_types
        .iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| ScimError::not_found(format!("Resource type {name} is not served here; GET /ResourceTypes lists those that are")))?;
    Ok(scim_json(StatusCode::OK, &discovery::resource_type_doc(rt, &ctx.base_url)))
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

    #[test]
    fn tenant_from_path() {
        assert_eq!(tenant_of("/scim/v2/Users", "/scim/v2").as_deref(), Some(DEFAULT_TENANT));
        assert_eq!(tenant_of("/scim/v2", "/scim/v2").as_deref(), Some(DEFAULT_TENANT));
        assert_eq!(tenant_of("/acme/scim/v2/Users/1", "/scim/v2").as_deref(), Some("acme"));
        assert_eq!(tenant_of("/Acme/scim/v2/Users", "/scim/v2"), None);
        assert_eq!(tenant_of("/acme/other/Users", "/scim/v2"), None);
        assert_eq!(tenant_of("/scim/v2x/Users", "/scim/v2"), None);
        // Aliases of the base URL are no tenant: a capital, an escape, a reserved name.
        for alias in ["/A/scim/v2/Users", "/%61/scim/v2/Users", "/scim/scim/v2/Users", "/default/scim/v2/Users", "/x/y/scim/v2"] {
            assert_eq!(tenant_of(alias, "/scim/v2"), None, "{alias}");
        }
        assert_eq!(tenant_of("/anything", "").as_deref(), Some(DEFAULT_TENANT));
    }

    #[test]
    fn base_url_carries_the_tenant() {
        let cfg = HttpConfig { public_url: Some("https://api.example.com/scim/v2".into()), ..HttpConfig::default() };
        assert_eq!(base_url(&cfg, &HeaderMap::new(), "acme"), "https://api.example.com/acme/scim/v2");
        assert_eq!(base_url(&cfg, &HeaderMap::new(), DEFAULT_TENANT), "https://api.example.com/scim/v2");
    }
}
