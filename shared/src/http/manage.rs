//! The management API (`/manage/v1`, described by `docs/manage.openapi.json`, served at
//! `/manage/v1/openapi.json`): thin JSON handlers over `crate::manage::Manager`. Outside the SCIM
//! middleware: it has its own credential. Every handler needs a [`Principal`] in the request's extensions,
//! put there by the layer of the deployment that authenticated the caller — API Gateway's IAM
//! authorisation on Lambda ([`iam_principal`], `functions/manage`), the admin credential locally
//! (`scim-local`). Without one, 401: a SCIM token or an OAuth access token is no management credential,
//! since nothing here reads them.
//!
//! Imports: `state`, `tenant` of `http`; the crate's `manage`, `metrics`, `oauth`.

use super::state::AppState;
use super::tenant::base_url;
use crate::manage::{ManageError, Manager, Principal, TenantView};
use crate::oauth::assertion::WifTrust;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Where the API lives.
pub const MANAGE_PATH: &str = "/manage/v1";
/// Largest request body (a tenant's metadata is at most 4 KiB).
pub const MAX_MANAGE_BODY: usize = 16 * 1024;
/// The OpenAPI 3.1 document of this API, as kept in `docs/`.
pub const OPENAPI: &str = include_str!("../../../docs/manage.openapi.json");

#[derive(Clone)]
pub(super) struct ManageState {
    app: AppState,
    manager: Arc<Manager>,
}

/// The management routes under [`MANAGE_PATH`], for a deployment that puts a [`Principal`] into each
/// authenticated request's extensions.
pub fn routes(app: AppState, manager: Arc<Manager>) -> Router {
    let st = ManageState { app, manager };
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/tenants/{tenant}",
            get(get_tenant).patch(update_tenant).delete(delete_tenant),
        )
        .route("/tenants/{tenant}/pause", post(pause))
        .route("/tenants/{tenant}/resume", post(resume))
        .route("/tenants/{tenant}/connection", get(connection))
        .route("/tenants/{tenant}/status", get(status))
        .route("/tenants/{tenant}/deletion", get(deletion))
        .route("/tenants/{tenant}/audit", get(audit))
        .route("/tenants/{tenant}/credentials", get(credentials))
        .route("/tenants/{tenant}/tokens", post(issue_token))
        .route(
            "/tenants/{tenant}/tokens/{token}",
            axum::routing::delete(revoke_token),
        )
        .route("/tenants/{tenant}/clients", post(create_client))
        .route(
            "/tenants/{tenant}/clients/{client}",
            axum::routing::delete(revoke_client),
        )
        .route("/tenants/{tenant}/clients/{client}/secrets", post(rotate))
        .route(
            "/tenants/{tenant}/clients/{client}/secrets/{secret}",
            axum::routing::delete(revoke_secret),
        )
        .route(
            "/tenants/{tenant}/wif",
            get(get_wif).put(set_wif).delete(remove_wif),
        )
        .merge(super::setup::link_api(st.app.clone(), st.manager.clone()))
        .fallback(|| async {
            answer(Err(ManageError::new(
                404,
                "not_found",
                "There is no management endpoint here; see /manage/v1/openapi.json",
            )))
        })
        .method_not_allowed_fallback(|| async {
            answer(Err(ManageError::new(
                405,
                "method_not_allowed",
                "This endpoint does not accept that method; see /manage/v1/openapi.json",
            )))
        })
        .layer(axum::middleware::from_fn(require_principal))
        .with_state(st);
    Router::new().nest(MANAGE_PATH, api)
}

/// The caller of a request as API Gateway's IAM authorisation names it (the `userArn` of the Lambda
/// event's `requestContext.authorizer.iam`), when the request came through such a route.
pub fn iam_principal(req: &Request) -> Option<Principal> {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => {
            let iam = ctx.authorizer.as_ref()?.iam.as_ref()?;
            iam.user_arn
                .clone()
                .filter(|a| !a.is_empty())
                .map(Principal)
        }
        _ => None,
    }
}

async fn require_principal(req: Request, next: axum::middleware::Next) -> Response {
    if req.extensions().get::<Principal>().is_none() {
        let mut r = answer(Err(ManageError::new(
            401,
            "unauthenticated",
            "The management API needs its own credential (IAM on AWS, the admin credential locally); SCIM tokens and OAuth access tokens do not work here",
        )));
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"manage\""),
        );
        return r;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    // One line per request; never a body (it may hold a secret) nor the principal's credential.
    tracing::info!(%method, path, status = resp.status().as_u16(), "manage request");
    resp
}

/// What a handler answers: a status and a JSON body, or a refusal as `{"error": {"code", "message"}}`.
type Answer = Result<Reply, ManageError>;

/// A successful answer: its status and JSON body.
struct Reply(StatusCode, Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        json_response(self.0, &self.1)
    }
}

impl IntoResponse for ManageError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.body())
    }
}

fn answer(r: Answer) -> Response {
    r.into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default();
    // Answers may carry a new secret: never cached.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn ok(v: Value) -> Answer {
    Ok(Reply(StatusCode::OK, v))
}

fn created(v: Value) -> Answer {
    Ok(Reply(StatusCode::CREATED, v))
}

fn tenant_json(r: &crate::store::TenantRecord) -> Value {
    serde_json::to_value(TenantView::from(r)).unwrap_or_default()
}

/// The request body as JSON of type `T` (an empty body is `{}`).
fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, ManageError> {
    if !bytes.is_empty() {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return Err(ManageError::new(
                415,
                "unsupported_media_type",
                "Send the body as application/json",
            ));
        }
    }
    let text: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(text).map_err(|e| {
        ManageError::invalid(
            "invalid_body",
            format!("The body is not the JSON this operation takes: {e}"),
        )
    })
}

/// The request body (at most [`MAX_MANAGE_BODY`] bytes) as JSON of type `T`; a refusal is the API's
/// JSON error (413, 415 or 400 `invalid_body`).
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ManageError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ManageError> {
        let (parts, b) = req.into_parts();
        let bytes = axum::body::to_bytes(b, MAX_MANAGE_BODY)
            .await
            .map_err(|_| {
                ManageError::new(
                    413,
                    "too_large",
                    format!("The body is larger than {MAX_MANAGE_BODY} bytes"),
                )
            })?;
        body(&parts.headers, &bytes).map(JsonBody)
    }
}

/// The paging parameters of the query (`after`, `before`, `limit`); a refusal is 400 `invalid_query`.
struct PageQuery(Page);

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ManageError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, ManageError> {
        let q: Result<Query<Page>, QueryRejection> = Query::from_request_parts(parts, st).await;
        q.map(|Query(p)| PageQuery(p)).map_err(|e| {
            ManageError::invalid(
                "invalid_query",
                format!("The query parameters are not valid: {}", e.body_text()),
            )
        })
    }
}

async fn openapi() -> Response {
    let mut r = Response::new(Body::from(OPENAPI));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: String,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    metadata: Option<Value>,
}

async fn create_tenant(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    JsonBody(n): JsonBody<NewTenant>,
) -> Answer {
    let t = st
        .manager
        .create_tenant(&p, &n.id, n.display_name.as_deref(), n.metadata.as_ref())
        .await?;
    created(tenant_json(&t))
}

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

async fn list_tenants(State(st): State<ManageState>, PageQuery(q): PageQuery) -> Answer {
    let page = st
        .manager
        .list_tenants(q.after.as_deref(), q.limit.unwrap_or(50))
        .await?;
    ok(json!({
        "tenants": page.tenants.iter().map(tenant_json).collect::<Vec<_>>(),
        "nextAfter": page.next_after,
    }))
}

async fn get_tenant(State(st): State<ManageState>, Path(t): Path<String>) -> Answer {
    ok(tenant_json(&st.manager.tenant(&t).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantChange {
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    metadata: Option<Value>,
}

async fn update_tenant(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
    JsonBody(c): JsonBody<TenantChange>,
) -> Answer {
    let r = st
        .manager
        .update_tenant(&p, &t, c.display_name.as_deref(), c.metadata.as_ref())
        .await?;
    ok(tenant_json(&r))
}

async fn delete_tenant(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
) -> Answer {
    let r = st.manager.delete_tenant(&p, &t).await?;
    if st.manager.settings.offboard_background {
        crate::manage::offboard::spawn(st.manager.as_ref().clone(), t.clone());
    }
    Ok(Reply(StatusCode::ACCEPTED, tenant_json(&r)))
}

async fn pause(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
) -> Answer {
    ok(tenant_json(&st.manager.pause(&p, &t).await?))
}

async fn resume(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
) -> Answer {
    ok(tenant_json(&st.manager.resume(&p, &t).await?))
}

async fn connection(
    State(st): State<ManageState>,
    Path(t): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let http = &st.app.http;
    let default_url = base_url(http, &headers, crate::auth::DEFAULT_TENANT);
    let origin = default_url
        .strip_suffix(http.base_path.as_str())
        .unwrap_or(&default_url)
        .to_string();
    let oauth_on = st.app.auth.oauth().is_some();
    ok(st
        .manager
        .connection(&t, &origin, &http.base_path, oauth_on)
        .await?)
}

async fn status(State(st): State<ManageState>, Path(t): Path<String>) -> Answer {
    st.manager.tenant(&t).await?;
    let (enabled, summary) = st.manager.request_figures(&t, &st.app.metrics).await;
    let ratio = summary.as_ref().and_then(|s| s.last_hour.failure_ratio());
    ok(json!({
        "tenant": t,
        "metricsEnabled": enabled,
        "failureRatioLastHour": ratio,
        "quarantineThreshold": crate::metrics::QUARANTINE_RATIO,
        "summary": summary,
    }))
}

/// Where a tenant's deletion is (`manage::offboard`): in progress with its phase, or done (the receipt).
async fn deletion(State(st): State<ManageState>, Path(t): Path<String>) -> Answer {
    let d = st.manager.deletion_status(&t).await?;
    ok(serde_json::to_value(&d).unwrap_or_default())
}

async fn audit(
    State(st): State<ManageState>,
    Path(t): Path<String>,
    PageQuery(q): PageQuery,
) -> Answer {
    ok(st
        .manager
        .audit(&t, q.before.as_deref(), q.limit.unwrap_or(50))
        .await?)
}

async fn credentials(State(st): State<ManageState>, Path(t): Path<String>) -> Answer {
    ok(st.manager.credentials(&t).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    label: Option<String>,
    user: Option<String>,
    days: Option<u32>,
}

async fn issue_token(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
    JsonBody(n): JsonBody<NewCredential>,
) -> Answer {
    let tok = st
        .manager
        .issue_token(&p, &t, n.label.as_deref().unwrap_or(""), n.user.as_deref())
        .await?;
    created(serde_json::to_value(tok).unwrap_or_default())
}

async fn revoke_token(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path((t, tok)): Path<(String, String)>,
) -> Answer {
    st.manager.revoke_token(&p, &t, &tok).await?;
    ok(json!({"revoked": tok}))
}

async fn create_client(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
    JsonBody(n): JsonBody<NewCredential>,
) -> Answer {
    let s = st
        .manager
        .create_client(&p, &t, n.label.as_deref().unwrap_or(""), n.days)
        .await?;
    created(serde_json::to_value(s).unwrap_or_default())
}

async fn rotate(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path((t, c)): Path<(String, String)>,
    JsonBody(n): JsonBody<NewCredential>,
) -> Answer {
    let s = st.manager.rotate_client(&p, &t, &c, n.days).await?;
    created(serde_json::to_value(s).unwrap_or_default())
}

async fn revoke_secret(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path((t, c, s)): Path<(String, String, String)>,
) -> Answer {
    st.manager.revoke_secret(&p, &t, &c, &s).await?;
    ok(json!({"revoked": s}))
}

async fn revoke_client(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path((t, c)): Path<(String, String)>,
) -> Answer {
    st.manager.revoke_client(&p, &t, &c).await?;
    ok(json!({
        "revoked": c,
        "accessTokensStopWithinSeconds": st.manager.settings.client_check.as_secs(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustBody {
    issuer: String,
    subject: String,
    audience: String,
    #[serde(rename = "jwksUrl")]
    jwks_url: String,
}

async fn get_wif(State(st): State<ManageState>, Path(t): Path<String>) -> Answer {
    match st.manager.wif(&t).await? {
        Some(w) => ok(json!({
            "issuer": w.issuer, "subject": w.subject, "audience": w.audience, "jwksUrl": w.jwks_url,
        })),
        None => Err(ManageError::new(
            404,
            "credential_not_found",
            format!("Tenant \"{t}\" has no WIF trust"),
        )),
    }
}

async fn set_wif(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
    JsonBody(w): JsonBody<TrustBody>,
) -> Answer {
    let trust = WifTrust {
        issuer: w.issuer,
        subject: w.subject,
        audience: w.audience,
        jwks_url: w.jwks_url,
    };
    st.manager.set_wif(&p, &t, &trust).await?;
    ok(json!({
        "issuer": trust.issuer, "subject": trust.subject, "audience": trust.audience, "jwksUrl": trust.jwks_url,
    }))
}

async fn remove_wif(
    State(st): State<ManageState>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
) -> Answer {
    st.manager.remove_wif(&p, &t).await?;
    ok(json!({"removed": "wif"}))
}
