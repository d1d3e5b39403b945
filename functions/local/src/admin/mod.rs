//! The operator page of `scim-local` at `/admin`: every tenant's request and failure figures, a tenant's
//! failures by kind and last failed requests, a chart of the last hour — server-rendered HTML ([`page`]),
//! and the same as JSON under `/admin/api/` for tools (`scim-admin status`).
//!
//! Its own credential, never the SCIM token: the admin token (kept in the data directory, 0600). A
//! browser signs in once with a form; the server answers with a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/admin` (sessions live in memory for 12 hours, and end with sign-out
//! or a restart). Tools send `Authorization: Bearer <admin token>`. Tokens are compared in constant time;
//! sessions are looked up by their SHA-256. Failed token attempts are throttled per peer address and in
//! total ([`limit`]); the sign-in form must arrive within the server's body read timeout.
//!
//! Imports: `scim_core::metrics` (the figures), `scim_core::auth` (token generation and hashing).

pub mod client;
pub mod page;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use scim_core::auth::{generate_token, token_hash};
use scim_core::metrics::{Metrics, Order, MAX_PER_PAGE};
use scim_core::throttle::{FailureLimits, FailureThrottle};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "scim_admin";
/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once (the oldest goes first).
const MAX_SESSIONS: usize = 64;
/// Largest sign-in form accepted.
const MAX_FORM_BYTES: usize = 4096;

/// The admin credential and the browser sessions it opened.
pub struct AdminAuth {
    token_digest: [u8; 32],
    /// SHA-256 of a session id → when it was opened.
    sessions: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth { token: <redacted> }")
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl AdminAuth {
    /// Refuses a token shorter than 16 characters.
    pub fn new(token: &str) -> Result<Self, String> {
        let t = token.trim();
        if t.len() < 16 {
            return Err(
                "the admin token is shorter than 16 characters; use a long random secret".into(),
            );
        }
        Ok(AdminAuth {
            token_digest: digest(t),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn token_ok(&self, presented: &str) -> bool {
        bool::from(digest(presented.trim()).ct_eq(&self.token_digest))
    }

    /// A new session id (returned once, to be set as the cookie); only its hash is kept.
    fn open_session(&self) -> String {
        let id = generate_token();
        if let Ok(mut s) = self.sessions.lock() {
            s.retain(|_, at| at.elapsed() < SESSION_TTL);
            if s.len() >= MAX_SESSIONS {
                if let Some(oldest) = s.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                    s.remove(&oldest);
                }
            }
            s.insert(token_hash(&id), Instant::now());
        }
        id
    }

    fn session_ok(&self, id: &str) -> bool {
        let key = token_hash(id);
        self.sessions
            .lock()
            .is_ok_and(|s| s.get(&key).is_some_and(|at| at.elapsed() < SESSION_TTL))
    }

    fn close_session(&self, id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&token_hash(id));
        }
    }

    /// A request is the operator's when it carries a live session cookie or the admin token as a bearer.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if let Some(t) = bearer(headers) {
            return self.token_ok(t);
        }
        session_cookie(headers).is_some_and(|id| self.session_ok(id))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// A path segment, percent-encoded (tenant ids are plain, but `(all)` and `(unattributed)` are not).
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The operator routes' settings.
#[derive(Debug, Clone, Copy)]
pub struct AdminConfig {
    /// How long the sign-in form may take to arrive (the server's `SCIM_BODY_READ_TIMEOUT_SECS`).
    pub body_read_timeout: Duration,
    pub sign_in: FailureLimits,
}

impl AdminConfig {
    pub fn new(body_read_timeout: Duration) -> Self {
        AdminConfig {
            body_read_timeout,
            sign_in: FailureLimits::default(),
        }
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    auth: Arc<AdminAuth>,
    throttle: Arc<FailureThrottle>,
    body_read_timeout: Duration,
    /// The webhook deliverer's tenants in trouble, when a webhook is configured.
    webhook: Option<Arc<crate::delivery::webhook::Status>>,
    /// The management operations (a tenant's lifecycle and audit trail), when the API is served.
    manager: Option<Arc<scim_core::manage::Manager>>,
}

/// The peer's address, when the serving loop puts it in the request (`ConnectInfo`); else None.
struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Why a request is not let in.
enum Refused {
    Unauthorised,
    /// Too many failed token attempts: retry after this long.
    Throttled(Duration),
}

/// Let in a live session cookie, or a correct admin token as a bearer (throttled: a wrong one counts
/// as a failed attempt; past the limit, no token is compared).
fn gate(st: &AdminState, headers: &HeaderMap, peer: &Peer) -> Result<(), Refused> {
    let Some(token) = bearer(headers) else {
        let live = session_cookie(headers).is_some_and(|id| st.auth.session_ok(id));
        return if live {
            Ok(())
        } else {
            Err(Refused::Unauthorised)
        };
    };
    if let Some(wait) = st.throttle.check(peer.0) {
        return Err(Refused::Throttled(wait));
    }
    if st.auth.token_ok(token) {
        st.throttle.succeeded(peer.0);
        Ok(())
    } else {
        st.throttle.failed(peer.0);
        Err(Refused::Unauthorised)
    }
}

fn retry_after(mut resp: Response, wait: Duration) -> Response {
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    );
    resp
}

/// The answer to a request whose body was not (fully) read: the connection is not reused.
fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn throttled_message(wait: Duration) -> String {
    format!(
        "Too many failed sign-ins; try again in {} s.",
        wait.as_secs().max(1)
    )
}

fn refused_page(r: Refused) -> Response {
    match r {
        Refused::Unauthorised => html(StatusCode::UNAUTHORIZED, page::login(None)),
        Refused::Throttled(w) => retry_after(
            html(
                StatusCode::TOO_MANY_REQUESTS,
                page::login(Some(&throttled_message(w))),
            ),
            w,
        ),
    }
}

fn refused_json(r: Refused) -> Response {
    match r {
        Refused::Unauthorised => unauthorised_json(),
        Refused::Throttled(w) => {
            let body = serde_json::json!({"error": throttled_message(w)});
            retry_after(json(StatusCode::TOO_MANY_REQUESTS, body), w)
        }
    }
}

/// The `/admin` routes. Merge them in front of the SCIM router ([`crate::server::app`]).
pub fn router(metrics: Arc<Metrics>, auth: Arc<AdminAuth>, cfg: AdminConfig) -> Router {
    router_with_webhook(metrics, auth, cfg, None)
}

/// [`router`], with the webhook's parked and retrying events (`/admin`'s section, `/admin/api/webhook`).
pub fn router_with_webhook(
    metrics: Arc<Metrics>,
    auth: Arc<AdminAuth>,
    cfg: AdminConfig,
    webhook: Option<Arc<crate::delivery::webhook::Status>>,
) -> Router {
    router_with(metrics, auth, cfg, webhook, None)
}

/// [`router_with_webhook`], and the management API (`manage`: `scim_core::http::manage::routes`) for the
/// admin credential: a correct admin token sent as a bearer makes a request `local-admin`'s, throttled
/// with the sign-ins (one budget of wrong guesses for both). A session cookie does not count there: an
/// API called from a browser's cookie could be driven by another site's form.
pub fn router_with(
    metrics: Arc<Metrics>,
    auth: Arc<AdminAuth>,
    cfg: AdminConfig,
    webhook: Option<Arc<crate::delivery::webhook::Status>>,
    manage: Option<(Router, Arc<scim_core::manage::Manager>)>,
) -> Router {
    let manager = manage.as_ref().map(|(_, m)| m.clone());
    let throttle = Arc::new(FailureThrottle::new(cfg.sign_in));
    let mut r = Router::new()
        .route("/admin", get(overview_page))
        .route("/admin/", get(overview_page))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/tenants/{tenant}", get(tenant_page))
        .route("/admin/api/overview", get(overview_json))
        .route("/admin/api/tenants/{tenant}", get(tenant_json))
        .route("/admin/api/webhook", get(webhook_json))
        .with_state(AdminState {
            metrics,
            auth: auth.clone(),
            throttle: throttle.clone(),
            body_read_timeout: cfg.body_read_timeout,
            webhook,
            manager,
        });
    if let Some((m, _)) = manage {
        let guard = ManageGuard { auth, throttle };
        r = r.merge(m.layer(axum::middleware::from_fn_with_state(
            guard,
            manage_principal,
        )));
    }
    r
}

#[derive(Clone)]
struct ManageGuard {
    auth: Arc<AdminAuth>,
    throttle: Arc<FailureThrottle>,
}

/// The management API's principal locally: `local-admin` for a correct admin bearer token. Without a
/// bearer the request goes on without a principal (the API answers 401); a wrong one counts as a failed
/// attempt, and past the limit nothing is compared (429).
async fn manage_principal(
    State(g): State<ManageGuard>,
    peer: Peer,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = bearer(req.headers()) {
        if let Some(wait) = g.throttle.check(peer.0) {
            let body = serde_json::json!({"error": {"code": "throttled", "message": throttled_message(wait)}});
            return retry_after(json(StatusCode::TOO_MANY_REQUESTS, body), wait);
        }
        if g.auth.token_ok(token) {
            g.throttle.succeeded(peer.0);
            req.extensions_mut()
                .insert(scim_core::manage::Principal(LOCAL_ADMIN.into()));
        } else {
            g.throttle.failed(peer.0);
        }
    }
    next.run(req).await
}

/// The principal of the admin credential in audit entries.
pub const LOCAL_ADMIN: &str = "local-admin";

/// Headers every admin answer carries: no caching, no framing, no outside resources, no referrer.
fn hardened(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    resp
}

fn html(status: StatusCode, body: maud::Markup) -> Response {
    hardened(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body.into_string(),
        )
            .into_response(),
    )
}

fn json(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scim-admin\""),
        );
    }
    hardened(resp)
}

fn unauthorised_json() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": "send Authorization: Bearer <admin token> (the file admin-token in the data directory)"}),
    )
}

/// Rows per page of the page's tenant table, and its order, unless the query says otherwise.
pub const PAGE_ROWS: usize = 50;

/// Which page of the tenants a request asks for: `?page=` (1-based), `?per_page=` (1 to
/// [`MAX_PER_PAGE`]), `?order=attention|requests|name`. Anything unreadable is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub page: usize,
    pub per_page: usize,
    pub order: Order,
}

impl PageQuery {
    pub fn parse(query: Option<&str>, per_page: usize, order: Order) -> PageQuery {
        let mut q = PageQuery {
            page: 1,
            per_page,
            order,
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "page" => q.page = v.parse().unwrap_or(1).max(1),
                "per_page" => {
                    q.per_page = v.parse().unwrap_or(per_page).clamp(1, MAX_PER_PAGE);
                }
                "order" => q.order = Order::parse(&v).unwrap_or(order),
                _ => {}
            }
        }
        q
    }
}

/// The tenants' table holds one page ([`PAGE_ROWS`] rows, the ones needing attention first), so the page
/// stays small and quick with thousands of tenants.
async fn overview_page(
    State(st): State<AdminState>,
    peer: Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = gate(&st, &headers, &peer) {
        return refused_page(r);
    }
    let q = PageQuery::parse(query.as_deref(), PAGE_ROWS, Order::Attention);
    let webhook = st.webhook.as_ref().map(|w| w.troubles());
    let all = st.metrics.summary(scim_core::metrics::ALL);
    let recording = st.metrics.enabled();
    html(
        StatusCode::OK,
        page::overview(
            &st.metrics.overview_page(q.page, q.per_page, q.order),
            all.as_ref(),
            recording,
            webhook.as_deref(),
        ),
    )
}

/// The webhook's tenants in trouble: `{"enabled": bool, "tenants": [{tenant, eventId, type, attempts,
/// lastError, parked, parkedAt}]}`.
async fn webhook_json(State(st): State<AdminState>, peer: Peer, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&st, &headers, &peer) {
        return refused_json(r);
    }
    let tenants = st
        .webhook
        .as_ref()
        .map(|w| w.troubles())
        .unwrap_or_default();
    json(
        StatusCode::OK,
        serde_json::json!({"enabled": st.webhook.is_some(), "tenants": tenants}),
    )
}

async fn tenant_page(
    State(st): State<AdminState>,
    peer: Peer,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(r) = gate(&st, &headers, &peer) {
        return refused_page(r);
    }
    let register = register(&st, &tenant).await;
    let lifecycle = page::lifecycle_section(register.as_ref());
    match st.metrics.summary(&tenant) {
        Some(s) => html(StatusCode::OK, page::tenant(&s, lifecycle)),
        None if register.is_some() => {
            html(StatusCode::OK, page::unknown_tenant(&tenant, lifecycle))
        }
        None => html(
            StatusCode::NOT_FOUND,
            page::unknown_tenant(&tenant, lifecycle),
        ),
    }
}

/// A registered tenant's lifecycle state and its last audit entries (newest first), for the tenant's
/// page: None for a tenant the register does not hold (or when the store does not answer).
async fn register(st: &AdminState, tenant: &str) -> Option<page::Register> {
    let m = st.manager.as_ref()?;
    let rec = m.tenant(tenant).await.ok()?;
    let audit = m
        .audit(tenant, None, 20)
        .await
        .ok()
        .and_then(|v| v["entries"].as_array().cloned())
        .unwrap_or_default();
    Some(page::Register { rec, audit })
}

/// Paged like the page, but by default by name ([`scim_core::metrics::UNATTRIBUTED`] last), 500 a page:
/// `page` in the answer says which page it is and how many there are.
async fn overview_json(
    State(st): State<AdminState>,
    peer: Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = gate(&st, &headers, &peer) {
        return refused_json(r);
    }
    let q = PageQuery::parse(query.as_deref(), MAX_PER_PAGE, Order::Name);
    json(
        StatusCode::OK,
        st.metrics.overview_page(q.page, q.per_page, q.order),
    )
}

async fn tenant_json(
    State(st): State<AdminState>,
    peer: Peer,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(r) = gate(&st, &headers, &peer) {
        return refused_json(r);
    }
    match st.metrics.summary(&tenant) {
        Some(s) => json(StatusCode::OK, s),
        None => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no request has been counted for this tenant since the server started"}),
        ),
    }
}

/// The sign-in form's body: at most [`MAX_FORM_BYTES`], within the body read timeout (408 after it).
async fn read_form(req: Request, timeout: Duration) -> Result<Bytes, Response> {
    let too_large = || {
        closing(html(
            StatusCode::PAYLOAD_TOO_LARGE,
            page::login(Some("The sign-in form was too large.")),
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    let declared = declared.and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        timeout,
        axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES),
    )
    .await
    {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => {
            let m = format!(
                "The sign-in form did not arrive within {} s.",
                timeout.as_secs()
            );
            Err(closing(html(
                StatusCode::REQUEST_TIMEOUT,
                page::login(Some(&m)),
            )))
        }
    }
}

/// `POST /admin/login` with the form field `token`: a session cookie and back to the overview, or the
/// form again with a message (429 with `Retry-After` past the sign-in limits, before the form is read).
async fn login(State(st): State<AdminState>, peer: Peer, req: Request) -> Response {
    if let Some(wait) = st.throttle.check(peer.0) {
        return closing(refused_page(Refused::Throttled(wait)));
    }
    let body = match read_form(req, st.body_read_timeout).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if token.is_empty() || !st.auth.token_ok(&token) {
        st.throttle.failed(peer.0);
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(Some("That is not the admin token.")),
        );
    }
    st.throttle.succeeded(peer.0);
    let id = st.auth.open_session();
    let cookie = format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut resp =
        hardened((StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn logout(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        st.auth.close_session(id);
    }
    let mut resp =
        hardened((StatusCode::SEE_OTHER, [(header::LOCATION, "/admin")]).into_response());
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("scim_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef0123456789abcdef";

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_token_and_sessions() {
        let a = AdminAuth::new(T).unwrap();
        assert!(a.allows(&headers(header::AUTHORIZATION, &format!("Bearer {T}"))));
        assert!(!a.allows(&headers(header::AUTHORIZATION, "Bearer nope")));
        assert!(!a.allows(&HeaderMap::new()));
        let id = a.open_session();
        assert!(a.allows(&headers(header::COOKIE, &format!("other=1; {COOKIE}={id}"))));
        assert!(
            !a.allows(&headers(header::COOKIE, &format!("{COOKIE}={T}"))),
            "the token is no session id"
        );
        a.close_session(&id);
        assert!(!a.allows(&headers(header::COOKIE, &format!("{COOKIE}={id}"))));
        assert!(AdminAuth::new("short").is_err());
        assert!(!format!("{a:?}").contains(T));
    }

    #[test]
    fn sessions_are_bounded() {
        let a = AdminAuth::new(T).unwrap();
        let first = a.open_session();
        for _ in 0..MAX_SESSIONS {
            a.open_session();
        }
        assert!(!a.session_ok(&first));
        assert_eq!(a.sessions.lock().unwrap().len(), MAX_SESSIONS);
    }
}
