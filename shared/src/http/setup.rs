//! The customer's setup page (`/setup`), where a customer's IT admin connects Entra ID alone, opened with a
//! setup link (`manage::links`), and the management API's routes for those links
//! (`/manage/v1/tenants/{t}/setup-links`, merged by `http/manage.rs`). Server-rendered HTML ([`page`]); no
//! client-side framework, one small script (copy buttons) allowed by its hash.
//!
//! * `GET /setup/<link id>.<secret>`: opens the link (throttled per address and in total: [`limit`]) and
//!   answers 303 to `/setup` with the session cookie — the secret leaves the address bar at once.
//! * `GET /setup`: the page, for a live session.
//! * `POST /setup/secret`, `/setup/retire`, `/setup/wif`, `/setup/check`: the page's forms.
//!
//! **Sessions** are items of the store (`LinkStore`): the cookie holds `<link id>.<session id>`, the store
//! the SHA-256 of the session id under the tenant, with the link and an expiry (1 hour, never past a
//! shareable link's own expiry; a TTL drops it). So every process — `scim-local`, any Lambda instance —
//! sees the same sessions with no key to share, and revoking a link ends its sessions at their next
//! request. The cookie is `HttpOnly; SameSite=Strict; Path=/setup`, and `Secure` when the request came
//! over TLS (`X-Forwarded-Proto: https`, or an `https://` `SCIM_PUBLIC_URL`).
//!
//! **Forms**: every POST carries a CSRF token derived from the session id (which only the `HttpOnly`
//! cookie holds), compared in constant time; a POST whose `Origin` is another site, or that a browser
//! marks `Sec-Fetch-Site: cross-site`, is refused before anything else. Answers carry a strict CSP, no
//! framing, no referrer, and `Cache-Control: no-store`; a new client secret is shown only in the answer
//! to the POST that made it (a reload of `/setup` does not show it again).
//!
//! Every action is a `Manager` operation run with the link as the principal (`setup-link:<id>`), so it is
//! in the tenant's audit trail; a connection check, which changes nothing, is recorded as `setup.check`.
//!
//! Imports: `state`, `tenant` of `http`; the crate's `manage`, `metrics`, `oauth`, `service`, `store`.

mod page;

use super::state::AppState;
use super::tenant::base_url;
use crate::manage::links::{LinkRefusal, PageSession, SETUP_PATH};
use crate::manage::{ManageError, Manager, NewSecret, Principal};
use crate::oauth::assertion::{probe_jwks, JwksSettings, WifTrust};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::throttle::{FailureLimits, FailureThrottle};

/// The session cookie's name.
pub const COOKIE: &str = "scim_setup";
/// Largest form accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// A secret older than the client's newest one, used by Entra within this long, is flagged next to its
/// "Retire" button: retiring it now would break provisioning until Entra holds the new one.
pub const OLD_SECRET_IN_USE_SECS: i64 = 24 * 3600;

#[derive(Clone)]
struct SetupState {
    app: AppState,
    manager: Arc<Manager>,
    throttle: Arc<FailureThrottle>,
    jwks: JwksSettings,
    serving: Serving,
}

/// Where the page is served, which decides two things the request alone does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// `scim-local` (or any server that also serves the SCIM routes): the session cookie is `Secure` when
    /// the request came over TLS, and the health figures are the process's own request metrics.
    Local,
    /// A Lambda function behind API Gateway: always TLS, so the cookie is always `Secure`; the SCIM
    /// requests are served by other functions, so this process has no figures of them: the page shows
    /// those the manager's reader gives (`Manager::with_figures`: CloudWatch, as the `setup` function's
    /// `main` attaches it), and without one says they are in the provider's monitoring.
    Lambda,
}

/// The setup page's routes under [`SETUP_PATH`] (for `scim-local`).
pub fn routes(app: AppState, manager: Arc<Manager>) -> Router {
    routes_with(app, manager, FailureLimits::default())
}

/// [`routes`], with these guessing limits.
pub fn routes_with(app: AppState, manager: Arc<Manager>, limits: FailureLimits) -> Router {
    routes_for(app, manager, limits, Serving::Local)
}

/// The setup page's routes as the `setup` Lambda function serves them ([`Serving::Lambda`]).
pub fn lambda_routes(app: AppState, manager: Arc<Manager>) -> Router {
    routes_for(app, manager, FailureLimits::default(), Serving::Lambda)
}

/// The routes, served as `serving` says.
pub fn routes_for(
    app: AppState,
    manager: Arc<Manager>,
    limits: FailureLimits,
    serving: Serving,
) -> Router {
    let mut jwks = JwksSettings::from_env();
    jwks.allow_http = jwks.allow_http || manager.settings.allow_http_jwks;
    let st = SetupState {
        app,
        manager,
        throttle: Arc::new(FailureThrottle::new(limits)),
        jwks,
        serving,
    };
    Router::new()
        .route(SETUP_PATH, get(show))
        .route(&format!("{SETUP_PATH}/secret"), post(new_secret))
        .route(&format!("{SETUP_PATH}/retire"), post(retire))
        .route(&format!("{SETUP_PATH}/wif"), post(save_wif))
        .route(&format!("{SETUP_PATH}/check"), post(check))
        .route(&format!("{SETUP_PATH}/{{pair}}"), get(open))
        .with_state(st)
}

/// `inner` (the SCIM routes) with the setup page beside it: what `scim-local` serves. The page's
/// operations run on `state`'s store, with the management settings of the environment.
pub fn beside(state: AppState, inner: Router) -> Router {
    let settings = crate::manage::ManageSettings::from_env().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "management settings ignored");
        crate::manage::ManageSettings::default()
    });
    let manager = Manager::new(state.service.store.clone(), settings).with_gate(state.gate.clone());
    routes(state, Arc::new(manager)).fallback_service(inner)
}

// ---- the management API's link routes ----

/// `POST/GET /tenants/{t}/setup-links`, `DELETE /tenants/{t}/setup-links/{id}`: merged into the
/// management API (inside its principal check).
pub(super) fn link_api<S: Clone + Send + Sync + 'static>(
    app: AppState,
    manager: Arc<Manager>,
) -> Router<S> {
    Router::new()
        .route(
            "/tenants/{tenant}/setup-links",
            post(create_link).get(list_links),
        )
        .route(
            "/tenants/{tenant}/setup-links/{link}",
            axum::routing::delete(revoke_link),
        )
        .method_not_allowed_fallback(|| async {
            answer(Err(ManageError::new(
                405,
                "method_not_allowed",
                "This endpoint does not accept that method; see /manage/v1/openapi.json",
            )))
        })
        .with_state(LinkApi { app, manager })
}

#[derive(Clone)]
struct LinkApi {
    app: AppState,
    manager: Arc<Manager>,
}

fn answer(r: Result<(StatusCode, Value), ManageError>) -> Response {
    let (status, body) = r.unwrap_or_else(|e| {
        (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.body(),
        )
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLinkBody {
    kind: String,
    days: Option<u32>,
    minutes: Option<u32>,
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

/// The public origin: the configured public URL's, else the request's.
fn origin(app: &AppState, headers: &HeaderMap) -> String {
    let http = &app.http;
    let url = base_url(http, headers, crate::auth::DEFAULT_TENANT);
    url.strip_suffix(http.base_path.as_str())
        .unwrap_or(&url)
        .to_string()
}

async fn create_link(
    State(st): State<LinkApi>,
    Extension(p): Extension<Principal>,
    Path(t): Path<String>,
    req: Request,
) -> Response {
    answer(
        async {
            let (parts, b) = req.into_parts();
            let bytes = axum::body::to_bytes(b, MAX_FORM_BYTES).await.map_err(|_| {
                ManageError::new(
                    413,
                    "too_large",
                    format!("The body is larger than {MAX_FORM_BYTES} bytes"),
                )
            })?;
            let ct = parts
                .headers
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
            let n: NewLinkBody = serde_json::from_slice(&bytes).map_err(|e| {
                ManageError::invalid(
                    "invalid_body",
                    format!("The body is not the JSON this operation takes: {e}"),
                )
            })?;
            let link = st
                .manager
                .create_link(
                    &p,
                    &t,
                    &n.kind,
                    n.days,
                    n.minutes,
                    n.return_url.as_deref(),
                    &origin(&st.app, &parts.headers),
                )
                .await?;
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(link).unwrap_or_default(),
            ))
        }
        .await,
    )
}

async fn list_links(State(st): State<LinkApi>, Path(t): Path<String>) -> Response {
    answer(
        async {
            let links = st.manager.list_links(&t).await?;
            Ok((StatusCode::OK, json!({ "links": links })))
        }
        .await,
    )
}

async fn revoke_link(
    State(st): State<LinkApi>,
    Extension(p): Extension<Principal>,
    Path((t, l)): Path<(String, String)>,
) -> Response {
    answer(
        async {
            st.manager.revoke_link(&p, &t, &l).await?;
            Ok((StatusCode::OK, json!({ "revoked": l })))
        }
        .await,
    )
}

// ---- the page ----

/// The peer's address, when the serving loop tells it.
fn peer(req_ext: &axum::http::Extensions) -> Option<IpAddr> {
    req_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Whether the request reached us over TLS (directly or through a proxy that says so; on Lambda, API
/// Gateway serves HTTPS only).
fn over_tls(st: &SetupState, headers: &HeaderMap) -> bool {
    st.serving == Serving::Lambda
        || st
            .app
            .http
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
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

/// The headers of every page: no caching, no framing, no outside resources, no referrer; the page's one
/// style sheet and one script allowed by their hashes.
fn hardened(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&page::csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

fn html(status: StatusCode, body: maud::Markup) -> Response {
    let mut resp = Response::new(Body::from(body.into_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    hardened(resp)
}

fn refused(r: LinkRefusal) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::NOT_FOUND);
    let mut resp = html(status, page::refusal(r.title(), r.advice()));
    if r == LinkRefusal::NoSession || r == LinkRefusal::Revoked {
        // The cookie is of no more use.
        resp.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "scim_setup=; Path=/setup; HttpOnly; SameSite=Strict; Max-Age=0",
            ),
        );
    }
    resp
}

fn forbidden(why: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        page::refusal(
            "This form was not sent from the setup page",
            &format!("{why} Reload the setup page and try again."),
        ),
    )
}

fn see_other(to: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    hardened(resp)
}

async fn open(
    State(st): State<SetupState>,
    Path(pair): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let peer = peer(req.extensions());
    if let Some(wait) = st.throttle.check(peer) {
        let mut resp = html(
            StatusCode::TOO_MANY_REQUESTS,
            page::refusal(
                "Too many setup links tried",
                &format!(
                    "Too many links that do not exist were tried from here. Wait {} seconds, then open your link again.",
                    wait.as_secs()
                ),
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    match st.manager.open_link(&pair).await {
        Ok((session, cookie)) => {
            let max_age = (session.expires - crate::manage::links::now()).max(1);
            let secure = if over_tls(&st, &headers) {
                "; Secure"
            } else {
                ""
            };
            let mut resp = see_other(SETUP_PATH);
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={cookie}; Path={SETUP_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
            )) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(r) => {
            if r == LinkRefusal::Unknown {
                st.throttle.failed(peer);
            }
            refused(r)
        }
    }
}

async fn session(st: &SetupState, headers: &HeaderMap) -> Result<PageSession, Response> {
    let Some(c) = session_cookie(headers) else {
        return Err(refused(LinkRefusal::NoSession));
    };
    st.manager.page_session(c).await.map_err(refused)
}

/// What the page shows besides the tenant's values: a new secret, a notice, the WIF form's input, the
/// connection check's steps.
#[derive(Default)]
struct Extra {
    new_secret: Option<NewSecret>,
    notice: Option<(bool, String)>,
    wif_input: Option<WifTrust>,
    checks: Option<Vec<page::Step>>,
}

async fn show(State(st): State<SetupState>, headers: HeaderMap) -> Response {
    let s = match session(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    render(&st, &headers, &s, Extra::default()).await
}

async fn render(st: &SetupState, headers: &HeaderMap, s: &PageSession, extra: Extra) -> Response {
    match view(st, headers, s, extra).await {
        Ok(v) => html(StatusCode::OK, page::setup(&v)),
        Err(_) => refused(LinkRefusal::Unavailable),
    }
}

async fn view(
    st: &SetupState,
    headers: &HeaderMap,
    s: &PageSession,
    extra: Extra,
) -> Result<page::View, ManageError> {
    let m = &st.manager;
    let t = m.tenant(&s.tenant).await?;
    let oauth_on = st.app.auth.oauth().is_some();
    let conn = m
        .connection(
            &s.tenant,
            &origin(&st.app, headers),
            &st.app.http.base_path,
            oauth_on,
        )
        .await?;
    let creds = m.credentials(&s.tenant).await?;
    let health = health(st, &s.tenant).await;
    let mut clients: Vec<page::ClientRow> = creds["clients"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["revoked"] != json!(true))
                .map(|c| page::ClientRow {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    secrets: c["secrets"]
                        .as_array()
                        .map(|ss| {
                            ss.iter()
                                .map(|x| page::SecretRow {
                                    id: x["id"].as_str().unwrap_or_default().to_string(),
                                    created: x["created"].as_str().unwrap_or_default().to_string(),
                                    expires: x["expires"].as_str().unwrap_or_default().to_string(),
                                    expired: x["expired"] == json!(true),
                                    last_used: x["lastUsed"].as_str().map(str::to_string),
                                    in_use_warning: false,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let now = crate::manage::links::now();
    for c in &mut clients {
        page::flag_old_secrets_in_use(&mut c.secrets, now, OLD_SECRET_IN_USE_SECS);
    }
    Ok(page::View {
        tenant: s.tenant.clone(),
        display_name: t.display_name,
        state: t.state.as_str(),
        csrf: s.csrf(),
        return_url: s.link.return_url.clone(),
        session_expires: crate::manage::rfc3339(s.expires),
        tenant_url: conn["tenantUrl"].as_str().unwrap_or_default().to_string(),
        token_endpoint: conn["tokenEndpoint"].as_str().map(str::to_string),
        clients,
        wif: creds["wif"].as_object().map(|w| WifTrust {
            issuer: w["issuer"].as_str().unwrap_or_default().to_string(),
            subject: w["subject"].as_str().unwrap_or_default().to_string(),
            audience: w["audience"].as_str().unwrap_or_default().to_string(),
            jwks_url: w["jwksUrl"].as_str().unwrap_or_default().to_string(),
        }),
        wif_input: extra.wif_input,
        new_secret: extra.new_secret,
        notice: extra.notice,
        checks: extra.checks,
        health,
    })
}

/// The health section: the users and groups provisioned (the store's counters) and the request figures of
/// the last hour, read as the management API's status route reads them (`Manager::request_figures`): the
/// process's own metrics (`scim-local`), or the reader attached to the manager (the `setup` function on
/// AWS: CloudWatch, `metrics::cloudwatch`). On Lambda without a reader this process holds none of the
/// tenant's SCIM requests, so the page says the figures are elsewhere.
async fn health(st: &SetupState, tenant: &str) -> page::Health {
    let count = |rt: &'static crate::schema::ResourceType| {
        let svc = st.app.service.clone();
        let tenant = tenant.to_string();
        async move {
            svc.list(
                &tenant,
                rt,
                None,
                crate::service::PageAt {
                    start_index: 1,
                    count: 0,
                    after: None,
                    budget: None,
                },
            )
            .await
            .ok()
            .map(|p| p.total)
        }
    };
    let users = count(crate::schema::user_resource_type()).await;
    let groups = count(crate::schema::group_resource_type()).await;
    let (figures, summary) = if st.serving == Serving::Lambda && st.manager.figures.is_none() {
        (page::Figures::NotHere, None)
    } else {
        let elsewhere = st.manager.figures.is_some();
        match st.manager.request_figures(tenant, &st.app.metrics).await {
            (false, _) => (page::Figures::NotHere, None),
            // The reader failed (logged by `request_figures`).
            (true, None) if elsewhere => (page::Figures::Unreadable, None),
            (true, summary) => (page::Figures::Shown { elsewhere }, summary),
        }
    };
    page::Health {
        figures,
        last_request: summary.as_ref().and_then(|s| {
            s.minutes
                .iter()
                .rev()
                .find(|m| m.counts.requests > 0)
                .map(|m| crate::manage::rfc3339(m.minute_start as i64))
        }),
        users,
        groups,
        last_hour: summary.as_ref().map(|s| s.last_hour).unwrap_or_default(),
        kinds: summary
            .map(|s| {
                s.failures_by_kind
                    .iter()
                    .map(|k| (k.status, k.scim_type.clone(), k.count))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A POST of the page: the session, a same-site origin and the CSRF token, then the form's fields.
async fn form(
    st: &SetupState,
    req: Request,
) -> Result<(PageSession, HeaderMap, Vec<(String, String)>), Response> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return Err(forbidden(
            "Your browser says this form came from another site.",
        ));
    }
    if let Some(o) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let o = o.to_str().unwrap_or("");
        let same = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            .is_some_and(|h| !host.is_empty() && h.eq_ignore_ascii_case(host));
        if !same {
            return Err(forbidden("It came from another site."));
        }
    }
    let s = session(st, &headers).await?;
    let bytes = match tokio::time::timeout(
        st.app.http.body_read_timeout,
        axum::body::to_bytes(body, MAX_FORM_BYTES),
    )
    .await
    {
        Ok(Ok(b)) => b,
        _ => {
            return Err(html(
                StatusCode::PAYLOAD_TOO_LARGE,
                page::refusal(
                    "The form could not be read",
                    "It was too large or too slow.",
                ),
            ))
        }
    };
    let fields = fields(&bytes);
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !bool::from(token.as_bytes().ct_eq(s.csrf().as_bytes())) {
        return Err(forbidden("Its security token is missing or wrong."));
    }
    Ok((s, headers, fields))
}

fn fields(b: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(b).into_owned().collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

async fn new_secret(State(st): State<SetupState>, req: Request) -> Response {
    let (s, headers, _f) = match form(&st, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = s.principal();
    let live = st.manager.credentials(&s.tenant).await.ok().and_then(|c| {
        c["clients"].as_array().and_then(|cs| {
            cs.iter()
                .find(|c| c["revoked"] != json!(true))
                .and_then(|c| c["id"].as_str().map(str::to_string))
        })
    });
    let made = match live {
        Some(client) => st.manager.rotate_client(&p, &s.tenant, &client, None).await,
        None => {
            st.manager
                .create_client(&p, &s.tenant, "Entra ID (setup page)", None)
                .await
        }
    };
    let extra = match made {
        Ok(secret) => Extra {
            new_secret: Some(secret),
            ..Extra::default()
        },
        Err(e) => Extra {
            notice: Some((false, e.message)),
            ..Extra::default()
        },
    };
    render(&st, &headers, &s, extra).await
}

async fn retire(State(st): State<SetupState>, req: Request) -> Response {
    let (s, headers, f) = match form(&st, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r = st
        .manager
        .revoke_secret(
            &s.principal(),
            &s.tenant,
            field(&f, "client"),
            field(&f, "secret"),
        )
        .await;
    let notice = match r {
        Ok(()) => (
            true,
            format!(
                "Secret {} is retired: it gets no more tokens.",
                field(&f, "secret")
            ),
        ),
        Err(e) => (false, e.message),
    };
    render(
        &st,
        &headers,
        &s,
        Extra {
            notice: Some(notice),
            ..Extra::default()
        },
    )
    .await
}

async fn save_wif(State(st): State<SetupState>, req: Request) -> Response {
    let (s, headers, f) = match form(&st, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Compared byte for byte by the token endpoint: kept exactly as typed, except surrounding spaces a
    // copy from Entra's page may bring.
    let trust = WifTrust {
        issuer: field(&f, "issuer").trim().to_string(),
        subject: field(&f, "subject").trim().to_string(),
        audience: field(&f, "audience").trim().to_string(),
        jwks_url: field(&f, "jwks_url").trim().to_string(),
    };
    let result = async {
        trust
            .check(st.jwks.allow_http)
            .map_err(|m| format!("Not saved: {m}"))?;
        let keys = probe_jwks(&st.jwks, &trust.jwks_url)
            .await
            .map_err(|e| {
                format!("Not saved: the JWKS URL was fetched just now and failed ({e}). Check the URL Entra shows.")
            })?;
        st.manager
            .set_wif(&s.principal(), &s.tenant, &trust)
            .await
            .map_err(|e| format!("Not saved: {}", e.message))?;
        Ok::<usize, String>(keys)
    }
    .await;
    let extra = match result {
        Ok(keys) => Extra {
            notice: Some((
                true,
                format!("Workload identity federation saved. The JWKS URL serves {keys} RSA signing key(s)."),
            )),
            ..Extra::default()
        },
        Err(m) => Extra {
            notice: Some((false, m)),
            wif_input: Some(trust),
            ..Extra::default()
        },
    };
    render(&st, &headers, &s, extra).await
}

/// What Entra's Test Connection does, as far as this server can do it without a secret it does not
/// keep: the token endpoint's preconditions (tenant active, OAuth on, a live client with an unexpired
/// secret, or a WIF trust whose JWKS serves keys), then the `userName eq` query Entra sends, run through
/// the service with the tenant's context.
async fn check(State(st): State<SetupState>, req: Request) -> Response {
    let (s, headers, _f) = match form(&st, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let steps = connection_steps(&st, &s.tenant).await;
    let failed = steps
        .iter()
        .filter(|x| x.level == page::Level::Fail)
        .count();
    let _ = st
        .manager
        .note(
            &s.principal(),
            &s.tenant,
            "setup.check",
            if failed == 0 { "passed" } else { "failed" },
        )
        .await;
    render(
        &st,
        &headers,
        &s,
        Extra {
            checks: Some(steps),
            ..Extra::default()
        },
    )
    .await
}

async fn connection_steps(st: &SetupState, tenant: &str) -> Vec<page::Step> {
    use page::{Level, Step};
    let mut steps = Vec::new();
    let m = &st.manager;
    match m.tenant(tenant).await {
        Ok(t) if t.state == crate::store::TenantState::Active => steps.push(Step::new(
            "Directory",
            Level::Ok,
            "Active: Entra's requests are served.",
        )),
        Ok(t) => steps.push(Step::new(
            "Directory",
            Level::Fail,
            format!(
                "{}: Entra's requests are refused until your provider resumes it.",
                t.state.as_str()
            ),
        )),
        Err(e) => {
            steps.push(Step::new("Directory", Level::Fail, e.message));
            return steps;
        }
    }
    let now = crate::manage::links::now();
    let oauth_on = st.app.auth.oauth().is_some();
    if !oauth_on {
        steps.push(Step::new(
            "Token request",
            Level::Fail,
            "This server does not run the OAuth token endpoint; ask your provider for a Secret Token instead.",
        ));
    } else {
        let clients = m.store.list_clients(tenant).await.unwrap_or_default();
        let live: Vec<_> = clients.iter().filter(|c| !c.client.revoked).collect();
        let fresh = live
            .iter()
            .flat_map(|c| c.secrets.iter().map(move |x| (c, x)))
            .filter(|(_, x)| x.expires > now)
            .max_by_key(|(_, x)| x.expires);
        let wif = m.store.wif_trust(tenant).await.ok().flatten();
        match (fresh, &wif) {
            (_, Some(w)) if !live.is_empty() => match probe_jwks(&st.jwks, &w.jwks_url).await {
                Ok(n) => steps.push(Step::new(
                    "Token request",
                    Level::Ok,
                    format!("Workload identity federation is set up and its JWKS URL serves {n} RSA key(s): Entra's signed assertion can be checked."),
                )),
                Err(e) => steps.push(Step::new(
                    "Token request",
                    Level::Fail,
                    format!("Workload identity federation is set up, but its JWKS URL failed just now ({e}): Entra's token request would be refused."),
                )),
            },
            (Some((c, x)), _) => steps.push(Step::new(
                "Token request",
                Level::Ok,
                format!(
                    "Client {} has a secret valid until {}. This server keeps only a hash of each secret, so it cannot send the secret itself; Entra's Test Connection does.",
                    c.client.id,
                    crate::manage::rfc3339(x.expires)
                ),
            )),
            (None, _) if live.is_empty() => steps.push(Step::new(
                "Token request",
                Level::Fail,
                "There is no client yet: generate a client secret above, then paste the Client ID and the secret into Entra.",
            )),
            (None, _) => steps.push(Step::new(
                "Token request",
                Level::Fail,
                "Every secret of the client has expired: generate a new one above and paste it into Entra.",
            )),
        }
    }
    let probe = format!("userName eq \"{}\"", uuid::Uuid::new_v4());
    let query = match crate::filter::parse_filter(&probe) {
        Ok(f) => {
            st.app
                .service
                .list(
                    tenant,
                    crate::schema::user_resource_type(),
                    Some(&f),
                    crate::service::PageAt {
                        start_index: 1,
                        count: 1,
                        after: None,
                        budget: None,
                    },
                )
                .await
        }
        Err(_) => Err(crate::error::ScimError::internal("filter")),
    };
    steps.push(match query {
        Ok(p) => Step::new(
            "User query",
            Level::Ok,
            format!(
                "The query Entra sends (GET /Users?filter=userName eq \"<random>\") answered {} result(s), as Entra expects.",
                p.total
            ),
        ),
        Err(e) => Step::new(
            "User query",
            Level::Fail,
            format!("The query Entra sends failed: {} (HTTP {}).", e.detail, e.status),
        ),
    });
    steps
}
