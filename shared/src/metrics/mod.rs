//! Per-tenant request metrics, recorded by the HTTP layer once per request at no DynamoDB cost: requests,
//! failures by status and `scimType`, authentication failures, throttles, latency, token-endpoint
//! requests — kept in process ([`Metrics`]: the operator page and `scim-admin status` read it) and, on AWS,
//! written as one CloudWatch embedded-metric-format line per request ([`emf`]), which CloudWatch turns into
//! metrics with no API call.
//!
//! Which tenant a request is counted for: the tenant its path names when the request authenticated, or
//! when that tenant already authenticated earlier in this process, or always for the base URL's directory
//! (`default`). Anything else — a path naming a tenant nobody has authenticated for — is counted under
//! [`UNATTRIBUTED`]: a client cannot mint tenants (nor CloudWatch metrics, which are billed per dimension
//! value) by inventing names.
//!
//! How it is counted there ([`Class`]): a SCIM request refused before it authenticated (a missing, wrong
//! or revoked credential; a path naming no tenant) is **unauthenticated** — counted apart, with its own
//! short list of the last ones, and never in the tenant's requests, failures, failure ratio, failures by
//! kind or kept failures: whoever knows a tenant's id but not its credential cannot push the tenant toward
//! Entra's quarantine warning, hide its real failures, or flush them out of the kept list. Token-endpoint
//! requests are counted apart too (their failed ones kept in the same short list). Everything else
//! (requests that authenticated, and 5xx/429 the server answered before authentication could finish) is
//! the tenant's: its failures by kind add up to its failures.
//!
//! Failed requests keep only method, path (no query), status, `scimType`, a redacted detail and the time
//! ([`redact`]): never a token, a body or a value the client sent.
//!
//! Imports: the crate's `error` (`scimType`), `schema` (via `redact`), `auth` (tenant ids), `config`.

pub mod emf;
pub mod redact;
mod window;

use crate::auth::{valid_tenant, DEFAULT_TENANT};
use crate::error::ScimError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use window::Window;

/// The figures of every request together.
pub const ALL: &str = "(all)";
/// Requests no tenant can be named for (see the module's opening).
pub const UNATTRIBUTED: &str = "(unattributed)";
/// Most tenants tracked in process; later ones are counted under [`UNATTRIBUTED`].
pub const MAX_TENANTS: usize = 10_000;
/// Unauthenticated and failed token-endpoint requests kept per tenant (and for [`ALL`], [`UNATTRIBUTED`]):
/// at most this many, and never more than `SCIM_METRICS_FAILURES_KEPT`.
pub const UNAUTHENTICATED_KEPT: usize = 20;

/// Entra quarantines a provisioning job whose failures pass this share of its requests.
pub const QUARANTINE_RATIO: f64 = 0.40;

/// What a route is, for counting: the SCIM API, or the OAuth token endpoint (`POST /{tenant}/oauth2/token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Scim,
    Token,
}

impl RouteKind {
    /// The token endpoint is `/{tenant}/oauth2/token` (or `/oauth2/token` for the base URL's directory);
    /// every other path is the SCIM API's.
    pub fn of_path(path: &str) -> (RouteKind, Option<String>) {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segs.as_slice() {
            ["oauth2", "token"] => (RouteKind::Token, Some(DEFAULT_TENANT.to_string())),
            [t, "oauth2", "token"] => (RouteKind::Token, valid_tenant(t).then(|| t.to_string())),
            _ => (RouteKind::Scim, None),
        }
    }
}

/// What a route's own layer knows about a request and puts in the response's extensions for the recorder:
/// the tenant it resolved (None: the path named none) and whether the credential was accepted. The SCIM
/// middleware sets it; the token endpoint may (else it is read from the path and the status).
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub tenant: Option<String>,
    pub authenticated: bool,
}

/// One finished request, as the recorder counts it.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub route: RouteKind,
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub latency_ms: f64,
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        self.status >= 400
    }
}

/// How a finished request is counted (see the module's opening).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A SCIM request of the tenant: in its requests, failures, ratio, kinds, kept failures and latency.
    Scim,
    /// The OAuth token endpoint: only in the token counts; a failed one in the unauthenticated list.
    Token,
    /// A SCIM request refused before it authenticated: only in `unauthenticated` and its list.
    Unauthenticated,
}

impl Class {
    /// A SCIM request that did not authenticate and was answered 4xx (other than 429, the store's
    /// throttling) is unauthenticated; a 5xx or 429 before authentication is the server's failure and
    /// stays the tenant's.
    pub fn of(facts: &RequestFacts, o: &Outcome) -> Class {
        match o.route {
            RouteKind::Token => Class::Token,
            RouteKind::Scim
                if !facts.authenticated && (400..500).contains(&o.status) && o.status != 429 =>
            {
                Class::Unauthenticated
            }
            RouteKind::Scim => Class::Scim,
        }
    }
}

/// Counts of requests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// SCIM requests (the token endpoint's are counted apart).
    pub requests: u64,
    /// SCIM requests answered 4xx or 5xx.
    pub failures: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// 401 and 403: refused credentials, counted requests' and unauthenticated ones alike (as the
    /// `AuthFailures` metric on AWS, which the auth-failures alarm sums).
    pub auth_failures: u64,
    /// 429: the store was throttled.
    pub throttles: u64,
    pub token_requests: u64,
    pub token_failures: u64,
    /// SCIM requests refused before they authenticated (missing, wrong or revoked credential; a path
    /// naming no tenant): counted apart, in none of the figures above.
    #[serde(default)]
    pub unauthenticated: u64,
}

impl Counts {
    fn add(&mut self, o: &Outcome, class: Class) {
        let fail = u64::from(o.is_failure());
        match class {
            Class::Token => {
                self.token_requests += 1;
                self.token_failures += fail;
            }
            Class::Unauthenticated => {
                self.unauthenticated += 1;
                self.auth_failures += u64::from(matches!(o.status, 401 | 403));
            }
            Class::Scim => {
                self.requests += 1;
                self.failures += fail;
                self.client_errors += u64::from((400..500).contains(&o.status));
                self.server_errors += u64::from(o.status >= 500);
                self.auth_failures += u64::from(matches!(o.status, 401 | 403));
                self.throttles += u64::from(o.status == 429);
            }
        }
    }

    /// Add `o`'s counts to these.
    pub fn merge(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.client_errors += o.client_errors;
        self.server_errors += o.server_errors;
        self.auth_failures += o.auth_failures;
        self.throttles += o.throttles;
        self.token_requests += o.token_requests;
        self.token_failures += o.token_failures;
        self.unauthenticated += o.unauthenticated;
    }

    /// Failed SCIM requests over SCIM requests, None when there were none.
    pub fn failure_ratio(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.failures as f64 / self.requests as f64)
    }
}

/// A failed request as kept for the operator: no token, no body, no value the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRequest {
    /// RFC 3339, UTC.
    pub at: String,
    pub tenant: String,
    pub method: String,
    /// Without the query string; segments holding an e-mail address replaced ([`redact::path`]).
    pub path: String,
    pub status: u16,
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none", default)]
    pub scim_type: Option<String>,
    /// The SCIM `detail`, with quoted values replaced ([`redact::detail`]).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub status: u16,
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none", default)]
    pub scim_type: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinutePoint {
    /// Unix seconds of the minute's start.
    pub minute_start: u64,
    pub counts: Counts,
    pub latency_avg_ms: Option<f64>,
}

/// Latency of the SCIM requests of the last hour (from histogram buckets: at most 19 % high).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// One tenant's figures (or [`ALL`]'s, or [`UNATTRIBUTED`]'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSummary {
    pub tenant: String,
    /// Since the server started.
    pub total: Counts,
    pub last_hour: Counts,
    pub last_5_minutes: Counts,
    pub latency_last_hour: LatencySummary,
    /// Failures by status and `scimType` since start, most frequent first.
    pub failures_by_kind: Vec<KindCount>,
    /// The last hour, minute by minute, oldest first.
    pub minutes: Vec<MinutePoint>,
    /// Newest first: the failed requests counted in `failures`.
    pub last_failures: Vec<FailedRequest>,
    /// Newest first: the last unauthenticated requests and failed token-endpoint requests (at most
    /// [`UNAUTHENTICATED_KEPT`]), which are in none of the failure figures.
    #[serde(default)]
    pub last_unauthenticated: Vec<FailedRequest>,
}

/// One line of the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRow {
    pub tenant: String,
    pub total: Counts,
    pub last_hour: Counts,
    pub last_5_minutes: Counts,
    pub latency_last_hour: LatencySummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// RFC 3339 times: when this was read, and since when figures are kept.
    pub now: String,
    pub since: String,
    /// Every request together.
    pub all: TenantRow,
    /// Tenants (and [`UNATTRIBUTED`] when it has requests), by name.
    pub tenants: Vec<TenantRow>,
}

/// Settings, from the environment (README, "Configuration").
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `SCIM_METRICS=off` turns recording off (only to measure its cost).
    pub enabled: bool,
    /// Failed requests kept per tenant (`SCIM_METRICS_FAILURES_KEPT`, default 50).
    pub failures_kept: usize,
    /// One embedded-metric-format line per request on standard output (`SCIM_METRICS_EMF`, default on
    /// Lambda only), in namespace `SCIM_METRICS_NAMESPACE` (default `ScimDynamo`).
    pub emf: Option<emf::Emf>,
}

impl MetricsConfig {
    pub fn from_env() -> Self {
        let flag = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| !matches!(v.trim(), "0" | "off" | "false" | "no"))
        };
        let emf_on = flag("SCIM_METRICS_EMF").unwrap_or_else(crate::config::on_lambda);
        let namespace = std::env::var("SCIM_METRICS_NAMESPACE")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| emf::DEFAULT_NAMESPACE.into());
        MetricsConfig {
            enabled: flag("SCIM_METRICS").unwrap_or(true),
            failures_kept: std::env::var("SCIM_METRICS_FAILURES_KEPT")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(50),
            emf: emf_on.then(|| emf::Emf::stdout(namespace)),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            failures_kept: 50,
            emf: None,
        }
    }
}

type Shared = Arc<Mutex<Window>>;

/// The recorder and its in-process figures. Per request: one read lock to find the tenant, two short
/// locks (the tenant's and the total's) around a few additions; the failure path also redacts the detail.
pub struct Metrics {
    cfg: MetricsConfig,
    since: SystemTime,
    all: Mutex<Window>,
    unattributed: Mutex<Window>,
    tenants: RwLock<HashMap<String, Shared>>,
}

impl Metrics {
    pub fn new(cfg: MetricsConfig) -> Self {
        let kept = cfg.failures_kept;
        Metrics {
            cfg,
            since: SystemTime::now(),
            all: Mutex::new(Window::new(kept)),
            unattributed: Mutex::new(Window::new(kept)),
            tenants: RwLock::new(HashMap::new()),
        }
    }

    pub fn from_env() -> Self {
        Self::new(MetricsConfig::from_env())
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// The EMF writer, when metric lines are written.
    pub fn emf(&self) -> Option<&emf::Emf> {
        self.cfg.emf.as_ref()
    }

    /// The tracked window of `tenant`, created when the request may name it (see the module's opening).
    fn window_for(&self, tenant: Option<&str>, authenticated: bool) -> Option<Shared> {
        let t = tenant?;
        if let Some(w) = self.tenants.read().ok()?.get(t) {
            return Some(w.clone());
        }
        if !(authenticated || t == DEFAULT_TENANT) {
            return None;
        }
        let mut map = self.tenants.write().ok()?;
        if map.len() >= MAX_TENANTS && !map.contains_key(t) {
            return None;
        }
        Some(
            map.entry(t.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(Window::new(self.cfg.failures_kept))))
                .clone(),
        )
    }

    /// Count one finished request. `error` is the SCIM error it was answered with, if any (its `detail`
    /// is redacted before it is kept).
    pub fn record(
        &self,
        facts: &RequestFacts,
        method: &str,
        path: &str,
        outcome: &Outcome,
        error: Option<&ScimError>,
    ) {
        if !self.cfg.enabled {
            return;
        }
        let now = SystemTime::now();
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let minute = secs / 60;
        let window = self.window_for(facts.tenant.as_deref(), facts.authenticated);
        let class = Class::of(facts, outcome);
        let label = match (&window, &facts.tenant) {
            (Some(_), Some(t)) => t.as_str(),
            _ => UNATTRIBUTED,
        };
        let failed = outcome.is_failure().then(|| FailedRequest {
            at: rfc3339(now),
            tenant: label.to_string(),
            method: method.to_string(),
            path: redact::path(path),
            status: outcome.status,
            scim_type: outcome.scim_type.map(str::to_string),
            detail: error.map(|e| redact::detail(&e.detail)).unwrap_or_default(),
        });
        if let Ok(mut w) = self.all.lock() {
            w.add(outcome, class, minute, failed.as_ref());
        }
        let target = window.as_deref().unwrap_or(&self.unattributed);
        if let Ok(mut w) = target.lock() {
            w.add(outcome, class, minute, failed.as_ref());
        }
        if let Some(emf) = &self.cfg.emf {
            let tenant = window.is_some().then_some(label);
            emf.write(
                &emf.line(
                    tenant,
                    outcome,
                    class,
                    failed.as_ref(),
                    secs * 1000
                        + u64::from(
                            now.duration_since(UNIX_EPOCH)
                                .map(|d| d.subsec_millis())
                                .unwrap_or(0),
                        ),
                ),
            );
        }
    }

    fn now_minute() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 60)
            .unwrap_or(0)
    }

    fn row(name: &str, w: &Window, now_minute: u64) -> TenantRow {
        TenantRow {
            tenant: name.to_string(),
            total: w.total(),
            last_hour: w.last(now_minute, 60),
            last_5_minutes: w.last(now_minute, 5),
            latency_last_hour: w.latency(now_minute),
        }
    }

    /// Every tenant's line, and the total.
    pub fn overview(&self) -> Overview {
        let m = Self::now_minute();
        let mut tenants: Vec<TenantRow> = Vec::new();
        if let Ok(map) = self.tenants.read() {
            for (name, w) in map.iter() {
                if let Ok(w) = w.lock() {
                    tenants.push(Self::row(name, &w, m));
                }
            }
        }
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        if let Ok(w) = self.unattributed.lock() {
            if w.total() != Counts::default() {
                tenants.push(Self::row(UNATTRIBUTED, &w, m));
            }
        }
        let all = self
            .all
            .lock()
            .map(|w| Self::row(ALL, &w, m))
            .unwrap_or_else(|_| Self::row(ALL, &Window::new(0), m));
        Overview {
            now: rfc3339(SystemTime::now()),
            since: rfc3339(self.since),
            all,
            tenants,
        }
    }

    /// One tenant's figures ([`ALL`] and [`UNATTRIBUTED`] too); None for a tenant never counted.
    pub fn summary(&self, tenant: &str) -> Option<TenantSummary> {
        let m = Self::now_minute();
        let read = |w: &Window| TenantSummary {
            tenant: tenant.to_string(),
            total: w.total(),
            last_hour: w.last(m, 60),
            last_5_minutes: w.last(m, 5),
            latency_last_hour: w.latency(m),
            failures_by_kind: w.kinds(),
            minutes: w.series(m),
            last_failures: w.failures(),
            last_unauthenticated: w.unauthenticated(),
        };
        match tenant {
            ALL => self.all.lock().ok().map(|w| read(&w)),
            UNATTRIBUTED => self.unattributed.lock().ok().map(|w| read(&w)),
            t => {
                let w = self.tenants.read().ok()?.get(t)?.clone();
                let w = w.lock().ok()?;
                Some(read(&w))
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(MetricsConfig::default())
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.cfg.enabled)
            .finish_non_exhaustive()
    }
}

/// RFC 3339 in UTC to the second (`2026-12-02T07:48:53Z`).
fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    fn facts(t: &str, authenticated: bool) -> RequestFacts {
        RequestFacts {
            tenant: Some(t.into()),
            authenticated,
        }
    }

    fn ok(status: u16) -> Outcome {
        Outcome {
            route: RouteKind::Scim,
            status,
            scim_type: None,
            latency_ms: 1.5,
        }
    }

    #[test]
    fn token_paths_are_recognised() {
        assert_eq!(
            RouteKind::of_path("/acme/oauth2/token"),
            (RouteKind::Token, Some("acme".into()))
        );
        assert_eq!(
            RouteKind::of_path("/oauth2/token/"),
            (RouteKind::Token, Some("default".into()))
        );
        assert_eq!(
            RouteKind::of_path("/Bad/oauth2/token"),
            (RouteKind::Token, None)
        );
        assert_eq!(RouteKind::of_path("/acme/scim/v2/Users").0, RouteKind::Scim);
    }

    #[test]
    fn unknown_tenants_cannot_be_minted_by_unauthenticated_requests() {
        let m = Metrics::default();
        m.record(
            &facts("ghost", false),
            "GET",
            "/ghost/scim/v2/Users",
            &ok(401),
            None,
        );
        assert!(m.summary("ghost").is_none());
        assert_eq!(m.summary(UNATTRIBUTED).unwrap().total.unauthenticated, 1);
        // Once the tenant authenticated, its later 401s are shown with it (apart from its failures); the
        // base URL's directory always is.
        m.record(
            &facts("acme", true),
            "GET",
            "/acme/scim/v2/Users",
            &ok(200),
            None,
        );
        m.record(
            &facts("acme", false),
            "GET",
            "/acme/scim/v2/Users",
            &ok(401),
            None,
        );
        m.record(
            &facts("default", false),
            "GET",
            "/scim/v2/Users",
            &ok(401),
            None,
        );
        let acme = m.summary("acme").unwrap();
        assert_eq!(
            (
                acme.total.requests,
                acme.total.auth_failures,
                acme.total.unauthenticated
            ),
            (1, 1, 1)
        );
        assert_eq!(m.summary("default").unwrap().total.unauthenticated, 1);
        let all = m.summary(ALL).unwrap().total;
        assert_eq!((all.requests, all.unauthenticated), (1, 3));
        let names: Vec<String> = m.overview().tenants.into_iter().map(|r| r.tenant).collect();
        assert_eq!(names, vec!["acme", "default", UNATTRIBUTED]);
    }

    #[test]
    fn failures_are_kept_redacted_by_kind() {
        let m = Metrics::default();
        let e = ScimError::uniqueness(
            "userName \"ann@contoso.com\" is already in use by another resource",
        );
        let o = Outcome {
            route: RouteKind::Scim,
            status: 409,
            scim_type: Some(ScimType::Uniqueness.as_str()),
            latency_ms: 2.0,
        };
        m.record(
            &facts("acme", true),
            "POST",
            "/acme/scim/v2/Users",
            &o,
            Some(&e),
        );
        let s = m.summary("acme").unwrap();
        assert_eq!(
            s.failures_by_kind,
            vec![KindCount {
                status: 409,
                scim_type: Some("uniqueness".into()),
                count: 1
            }]
        );
        let f = &s.last_failures[0];
        assert_eq!(
            (f.method.as_str(), f.path.as_str(), f.status),
            ("POST", "/acme/scim/v2/Users", 409)
        );
        assert!(
            !f.detail.contains("ann") && f.detail.starts_with("userName \"…\""),
            "{}",
            f.detail
        );
        assert_eq!(s.last_hour.failure_ratio(), Some(1.0));
        assert_eq!(s.latency_last_hour.samples, 1);
    }

    #[test]
    fn token_requests_are_counted_apart() {
        let m = Metrics::default();
        let t = Outcome {
            route: RouteKind::Token,
            status: 401,
            scim_type: None,
            latency_ms: 1.0,
        };
        m.record(
            &facts("acme", true),
            "GET",
            "/acme/scim/v2/Users",
            &ok(200),
            None,
        );
        m.record(
            &facts("acme", false),
            "POST",
            "/acme/oauth2/token",
            &t,
            None,
        );
        let c = m.summary("acme").unwrap().total;
        assert_eq!(
            (c.requests, c.failures, c.token_requests, c.token_failures),
            (1, 0, 1, 1)
        );
    }

    /// What the page shows adds up: failures by kind sum to the failures counted, and the kept list holds
    /// those failures — token-endpoint failures (counted apart, like their requests) included in neither.
    #[test]
    fn failures_by_kind_add_up_to_the_failures() {
        let m = Metrics::default();
        let token = |status| Outcome {
            route: RouteKind::Token,
            status,
            scim_type: None,
            latency_ms: 1.0,
        };
        m.record(
            &facts("acme", true),
            "GET",
            "/acme/scim/v2/Users",
            &ok(200),
            None,
        );
        m.record(
            &facts("acme", true),
            "GET",
            "/acme/scim/v2/Users/x",
            &ok(404),
            None,
        );
        m.record(
            &facts("acme", false),
            "POST",
            "/acme/oauth2/token",
            &token(401),
            None,
        );
        m.record(
            &facts("acme", false),
            "POST",
            "/acme/oauth2/token",
            &token(400),
            None,
        );
        m.record(
            &facts("acme", true),
            "POST",
            "/acme/oauth2/token",
            &token(200),
            None,
        );
        for name in ["acme", ALL] {
            let s = m.summary(name).unwrap();
            assert_eq!(
                s.last_unauthenticated.len(),
                2,
                "failed token requests are shown apart: {name}"
            );
            let by_kind: u64 = s.failures_by_kind.iter().map(|k| k.count).sum();
            assert_eq!(
                (by_kind, s.total.failures),
                (1, 1),
                "{name}: {:?}",
                s.failures_by_kind
            );
            assert_eq!(
                s.last_failures.len() as u64,
                s.total.failures,
                "{name}: {:?}",
                s.last_failures
            );
            assert_eq!(
                (s.total.token_requests, s.total.token_failures),
                (3, 2),
                "{name}"
            );
        }
    }

    /// Someone who knows a tenant's id but not its credential can neither push its failure ratio toward
    /// Entra's quarantine warning nor flush its real failures out of the kept list.
    #[test]
    fn unauthenticated_requests_do_not_count_against_the_tenant() {
        let m = Metrics::new(MetricsConfig {
            failures_kept: 5,
            ..MetricsConfig::default()
        });
        let e = ScimError::uniqueness("userName \"x\" is already in use by another resource");
        let dup = Outcome {
            route: RouteKind::Scim,
            status: 409,
            scim_type: Some("uniqueness"),
            latency_ms: 1.0,
        };
        for _ in 0..9 {
            m.record(
                &facts("acme", true),
                "GET",
                "/acme/scim/v2/Users",
                &ok(200),
                None,
            );
        }
        m.record(
            &facts("acme", true),
            "POST",
            "/acme/scim/v2/Users",
            &dup,
            Some(&e),
        );
        for _ in 0..100 {
            m.record(
                &facts("acme", false),
                "GET",
                "/acme/scim/v2/Users",
                &ok(401),
                None,
            );
        }
        let s = m.summary("acme").unwrap();
        assert_eq!(s.last_hour.failure_ratio(), Some(0.1), "{:?}", s.last_hour);
        assert_eq!(
            (s.total.requests, s.total.failures, s.total.client_errors),
            (10, 1, 1)
        );
        assert_eq!(
            s.total.auth_failures, 100,
            "refused credentials are still counted as such"
        );
        assert_eq!(
            s.last_failures.iter().map(|f| f.status).collect::<Vec<_>>(),
            vec![409],
            "the real failure is kept"
        );
        assert_eq!(
            s.failures_by_kind,
            vec![KindCount {
                status: 409,
                scim_type: Some("uniqueness".into()),
                count: 1
            }]
        );
        let all = m.summary(ALL).unwrap();
        assert_eq!(
            (all.total.requests, all.total.failures),
            (10, 1),
            "nor the total's"
        );
        // Shown apart, bounded: the count, and the last few refused requests.
        assert_eq!(
            (
                s.total.unauthenticated,
                s.last_hour.unauthenticated,
                all.total.unauthenticated
            ),
            (100, 100, 100)
        );
        assert_eq!(
            s.last_unauthenticated.len(),
            5,
            "at most SCIM_METRICS_FAILURES_KEPT (5 here)"
        );
        assert!(s
            .last_unauthenticated
            .iter()
            .all(|f| f.status == 401 && f.path == "/acme/scim/v2/Users"));
        let m = Metrics::default();
        for _ in 0..100 {
            m.record(
                &facts("default", false),
                "GET",
                "/scim/v2/Users",
                &ok(401),
                None,
            );
        }
        assert_eq!(
            m.summary("default").unwrap().last_unauthenticated.len(),
            UNAUTHENTICATED_KEPT
        );
        // The store failing or throttling during authentication is the server's failure: the tenant's.
        m.record(
            &facts("default", false),
            "GET",
            "/scim/v2/Users",
            &ok(503),
            None,
        );
        assert_eq!(m.summary("default").unwrap().total.server_errors, 1);
    }

    /// The recorder's own cost per request (`cargo test --release -p scim-core record_cost -- --ignored
    /// --nocapture`): a success and a failure (which also redacts its detail), both tracked tenants.
    #[test]
    #[ignore]
    fn record_cost() {
        let m = Metrics::default();
        let e = ScimError::uniqueness(
            "userName \"ann@contoso.com\" is already in use by another resource",
        );
        let fail = Outcome {
            route: RouteKind::Scim,
            status: 409,
            scim_type: Some("uniqueness"),
            latency_ms: 2.0,
        };
        let n = 1_000_000u32;
        for (name, outcome, error) in [("success", ok(200), None), ("failure", fail, Some(&e))] {
            let started = std::time::Instant::now();
            for i in 0..n {
                let t = if i % 2 == 0 { "acme" } else { "globex" };
                m.record(
                    &facts(t, true),
                    "GET",
                    "/acme/scim/v2/Users/2f1c",
                    &outcome,
                    error,
                );
            }
            println!(
                "record ({name}): {:.0} ns per request",
                started.elapsed().as_nanos() as f64 / f64::from(n)
            );
        }
    }

    #[test]
    fn off_records_nothing() {
        let m = Metrics::new(MetricsConfig {
            enabled: false,
            ..MetricsConfig::default()
        });
        m.record(
            &facts("default", true),
            "GET",
            "/scim/v2/Users",
            &ok(200),
            None,
        );
        assert_eq!(m.overview().all.total.requests, 0);
    }
}
