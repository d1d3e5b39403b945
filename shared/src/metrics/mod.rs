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
//! **Bounded by count and memory** ([`MetricsConfig::max_tenants`]): at most `SCIM_METRICS_MAX_TENANTS`
//! tenant windows are kept (default: [`DEFAULT_MEMORY_BUDGET`] divided by the estimated bytes of one
//! full window, [`Window::estimated_bytes`] — 1,693 at the defaults), in least-recently-used order
//! (an `lru::LruCache` under one mutex): a request of a tenant not tracked when the map is full evicts the
//! tenant whose last request is the oldest. An evicted window's figures are gone; what is left of it is
//! counted in [`Evicted`] (windows evicted, and their since-start counts), shown on the operator page and
//! in its JSON. The [`ALL`] figures are kept in their own window, never evicted, so they stay exact for
//! every request since start; a tenant's own figures cover the time since its window was last created.
//!
//! Imports: the crate's `error` (`scimType`), `schema` (via `redact`), `auth` (tenant ids), `config`.

#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
pub mod emf;
pub mod redact;
mod window;

use crate::auth::{valid_tenant, DEFAULT_TENANT};
use crate::error::ScimError;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use window::Window;

/// The figures of every request together.
pub const ALL: &str = "(all)";
/// Requests no tenant can be named for (see the module's opening).
pub const UNATTRIBUTED: &str = "(unattributed)";
/// Memory the tenant windows may take at the default `SCIM_METRICS_MAX_TENANTS`: the default count is this
/// divided by [`Window::estimated_bytes`] (64 MiB: an eighth of a 512 MB Lambda function).
pub const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;
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
    /// Tenants (and [`UNATTRIBUTED`] when it has requests): all of them from [`Metrics::overview`], by
    /// name; one page of them from [`Metrics::overview_page`], in the order asked for.
    pub tenants: Vec<TenantRow>,
    /// Tenant windows tracked now (not counting [`UNATTRIBUTED`]).
    #[serde(default)]
    pub tenants_tracked: usize,
    /// Most tenant windows kept (`SCIM_METRICS_MAX_TENANTS`).
    #[serde(default)]
    pub max_tenants: usize,
    /// Windows evicted to stay within `max_tenants`, and what they had counted.
    #[serde(default)]
    pub evicted: Evicted,
    /// The page shown, when paged ([`Metrics::overview_page`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageInfo>,
}

/// Tenant windows evicted (least recently used first) to keep at most `SCIM_METRICS_MAX_TENANTS`: their
/// figures are lost, except their since-start counts, added up here. [`ALL`] is unaffected (it counts every
/// request in its own window), so `all.total` = the tenants' totals + [`UNATTRIBUTED`]'s + `evicted.total`
/// (+ the earlier figures of tenants evicted and tracked again, which are in `evicted.total` too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evicted {
    pub windows: u64,
    pub total: Counts,
}

/// Which tenants come first in a paged overview.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// The ones needing attention: highest last-hour failure ratio first, then most last-hour failures,
    /// then most last-hour requests, then by name.
    #[default]
    Attention,
    /// Most last-hour requests first, then by name.
    Requests,
    /// By name ([`UNATTRIBUTED`] last).
    Name,
}

impl Order {
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "attention" | "ratio" => Some(Order::Attention),
            "requests" => Some(Order::Requests),
            "name" => Some(Order::Name),
            _ => None,
        }
    }
}

/// Which page of the tenants an overview holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
    /// Rows in all (tenants, and [`UNATTRIBUTED`] when it has requests).
    pub rows: usize,
    pub pages: usize,
    pub order: Order,
}

/// Most rows on one page of the overview.
pub const MAX_PER_PAGE: usize = 500;

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
    /// Most tenant windows kept (`SCIM_METRICS_MAX_TENANTS`; default [`MetricsConfig::default_max_tenants`]);
    /// beyond it the least recently used is evicted. At least 1.
    pub max_tenants: usize,
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
        let failures_kept = std::env::var("SCIM_METRICS_FAILURES_KEPT")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(50);
        MetricsConfig {
            enabled: flag("SCIM_METRICS").unwrap_or(true),
            failures_kept,
            emf: emf_on.then(|| emf::Emf::stdout(namespace)),
            max_tenants: std::env::var("SCIM_METRICS_MAX_TENANTS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| Self::default_max_tenants(failures_kept))
                .max(1),
        }
    }

    /// [`DEFAULT_MEMORY_BUDGET`] over the estimated bytes of one full window (1,693 with 50 failures
    /// kept; 6,069 with none).
    pub fn default_max_tenants(failures_kept: usize) -> usize {
        (DEFAULT_MEMORY_BUDGET / Window::estimated_bytes(failures_kept)).max(1)
    }

    /// The memory bound of the tenant windows: `max_tenants` × the estimated bytes of a full window.
    pub fn memory_bound(&self) -> usize {
        self.max_tenants
            .saturating_mul(Window::estimated_bytes(self.failures_kept))
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            failures_kept: 50,
            emf: None,
            max_tenants: Self::default_max_tenants(50),
        }
    }
}

type Shared = Arc<Mutex<Window>>;

/// The recorder and its in-process figures. Per request: one short lock to find the tenant (and mark it
/// recently used), two short locks (the tenant's and the total's) around a few additions; the failure path
/// also redacts the detail.
pub struct Metrics {
    cfg: MetricsConfig,
    since: SystemTime,
    all: Mutex<Window>,
    unattributed: Mutex<Window>,
    /// At most `cfg.max_tenants`, least recently used evicted first.
    tenants: Mutex<LruCache<String, Shared>>,
    evicted: Mutex<Evicted>,
}

impl Metrics {
    pub fn new(cfg: MetricsConfig) -> Self {
        let kept = cfg.failures_kept;
        let cfg_max_tenants = cfg.max_tenants;
        Metrics {
            cfg,
            since: SystemTime::now(),
            all: Mutex::new(Window::new(kept)),
            unattributed: Mutex::new(Window::new(kept)),
            tenants: Mutex::new(LruCache::new(
                NonZeroUsize::new(cfg_max_tenants).unwrap_or(NonZeroUsize::MIN),
            )),
            evicted: Mutex::new(Evicted::default()),
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
    /// When the map is full, a new tenant evicts the least recently used one (counted in [`Evicted`]).
    fn window_for(&self, tenant: Option<&str>, authenticated: bool) -> Option<Shared> {
        let t = tenant?;
        let mut map = self.tenants.lock().ok()?;
        if let Some(w) = map.get(t) {
            return Some(w.clone());
        }
        if !(authenticated || t == DEFAULT_TENANT) {
            return None;
        }
        let w: Shared = Arc::new(Mutex::new(Window::new(self.cfg.failures_kept)));
        let pushed = map.push(t.to_string(), w.clone());
        drop(map);
        if let Some((_, old)) = pushed {
            // Read the evicted window's counts outside the map's lock (a request may still hold it).
            let total = old.lock().map(|o| o.total()).unwrap_or_default();
            if let Ok(mut e) = self.evicted.lock() {
                e.windows += 1;
                e.total.merge(&total);
            }
        }
        Some(w)
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
            method: redact::cut(method.to_string(), 16),
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

    /// Every tenant's line (by name, [`UNATTRIBUTED`] last), and the total. Unpaged: the operator page
    /// uses [`Metrics::overview_page`].
    pub fn overview(&self) -> Overview {
        let m = Self::now_minute();
        let mut tenants = self.rows(m);
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        if let Ok(w) = self.unattributed.lock() {
            if w.total() != Counts::default() {
                tenants.push(Self::row(UNATTRIBUTED, &w, m));
            }
        }
        self.overview_of(tenants, m, None)
    }

    /// One page (1-based; past the last, the last) of `per_page` rows (1 to [`MAX_PER_PAGE`]) of the
    /// tenants' lines in `order` ([`UNATTRIBUTED`] among them, when it has requests), and the total. Every
    /// tracked window is read once (a few hundred additions each) and only the page is returned.
    pub fn overview_page(&self, page: usize, per_page: usize, order: Order) -> Overview {
        let m = Self::now_minute();
        let mut rows = self.rows(m);
        if let Ok(w) = self.unattributed.lock() {
            if w.total() != Counts::default() {
                rows.push(Self::row(UNATTRIBUTED, &w, m));
            }
        }
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let total_rows = rows.len();
        let pages = total_rows.div_ceil(per_page).max(1);
        let page = page.clamp(1, pages);
        let ratio = |r: &TenantRow| r.last_hour.failure_ratio().unwrap_or(-1.0);
        let cmp = |a: &TenantRow, b: &TenantRow| match order {
            Order::Attention => ratio(b)
                .total_cmp(&ratio(a))
                .then(b.last_hour.failures.cmp(&a.last_hour.failures))
                .then(b.last_hour.requests.cmp(&a.last_hour.requests))
                .then(a.tenant.cmp(&b.tenant)),
            Order::Requests => b
                .last_hour
                .requests
                .cmp(&a.last_hour.requests)
                .then(a.tenant.cmp(&b.tenant)),
            Order::Name => (a.tenant == UNATTRIBUTED)
                .cmp(&(b.tenant == UNATTRIBUTED))
                .then(a.tenant.cmp(&b.tenant)),
        };
        let start = (page - 1) * per_page;
        let end = (start + per_page).min(total_rows);
        // Only the rows up to the page's end need to be in order.
        if end < total_rows {
            rows.select_nth_unstable_by(end, cmp);
            rows.truncate(end);
        }
        rows.sort_by(cmp);
        let tenants = rows.split_off(start.min(rows.len()));
        self.overview_of(
            tenants,
            m,
            Some(PageInfo {
                page,
                per_page,
                rows: total_rows,
                pages,
                order,
            }),
        )
    }

    /// Every tracked tenant's line, in no order. The map's lock is held only to copy the handles.
    fn rows(&self, m: u64) -> Vec<TenantRow> {
        let handles: Vec<(String, Shared)> = match self.tenants.lock() {
            Ok(map) => map.iter().map(|(k, w)| (k.clone(), w.clone())).collect(),
            Err(_) => Vec::new(),
        };
        handles
            .iter()
            .filter_map(|(name, w)| w.lock().ok().map(|w| Self::row(name, &w, m)))
            .collect()
    }

    fn overview_of(&self, tenants: Vec<TenantRow>, m: u64, page: Option<PageInfo>) -> Overview {
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
            tenants_tracked: self.tenants.lock().map(|t| t.len()).unwrap_or(0),
            max_tenants: self.cfg.max_tenants,
            evicted: self.evicted.lock().map(|e| *e).unwrap_or_default(),
            page,
        }
    }

    /// Tenant windows tracked now, and evicted so far.
    pub fn tracked(&self) -> (usize, Evicted) {
        (
            self.tenants.lock().map(|t| t.len()).unwrap_or(0),
            self.evicted.lock().map(|e| *e).unwrap_or_default(),
        )
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
                // Reading a tenant does not make it recently used: only its requests do.
                let w = self.tenants.lock().ok()?.peek(t)?.clone();
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

    fn bounded(max_tenants: usize) -> Metrics {
        Metrics::new(MetricsConfig {
            max_tenants,
            ..MetricsConfig::default()
        })
    }

    fn hit(m: &Metrics, t: &str, status: u16) {
        m.record(
            &facts(t, true),
            "GET",
            &format!("/{t}/scim/v2/Users"),
            &ok(status),
            None,
        );
    }

    /// At most `max_tenants` windows: bound + K tenants leave the bound tracked, the least recently used
    /// gone, a recently used one kept; the evictions are counted and the total stays exact.
    #[test]
    fn tenant_windows_are_bounded_least_recently_used_first() {
        const BOUND: usize = 100;
        const K: usize = 25;
        let m = bounded(BOUND);
        for i in 0..BOUND {
            hit(&m, &format!("t{i}"), 200);
        }
        // t0 is the oldest; touch it so that t1 becomes the least recently used.
        hit(&m, "t0", 404);
        for i in BOUND..BOUND + K {
            hit(&m, &format!("t{i}"), 200);
        }
        let (tracked, evicted) = m.tracked();
        assert_eq!(tracked, BOUND);
        assert_eq!(evicted.windows, K as u64);
        assert!(m.summary("t0").is_some(), "a recently used tenant survives");
        for i in 1..=K {
            assert!(m.summary(&format!("t{i}")).is_none(), "t{i} was evicted");
        }
        assert!(m.summary(&format!("t{}", K + 1)).is_some());
        assert!(m.summary(&format!("t{}", BOUND + K - 1)).is_some());
        // Reading a tenant's figures does not keep it: only its requests do.
        let o = m.overview();
        assert_eq!(o.tenants.len(), BOUND);
        assert_eq!((o.tenants_tracked, o.max_tenants), (BOUND, BOUND));
        assert_eq!(o.evicted.windows, K as u64);
        assert_eq!(o.evicted.total.requests, K as u64);
        // The total counts every request; the tenants' figures plus the evicted ones add up to it.
        assert_eq!(o.all.total.requests, (BOUND + K + 1) as u64);
        assert_eq!(o.all.total.failures, 1);
        let kept: u64 = o.tenants.iter().map(|r| r.total.requests).sum();
        assert_eq!(kept + o.evicted.total.requests, o.all.total.requests);
        // An evicted tenant that comes back starts a new window.
        hit(&m, "t1", 200);
        assert_eq!(m.summary("t1").unwrap().total.requests, 1);
        assert_eq!(m.tracked().0, BOUND);
        assert_eq!(m.tracked().1.windows, K as u64 + 1);
    }

    /// Unauthenticated requests create no window: once a tenant was evicted, they count as
    /// `(unattributed)` until the tenant authenticates again. (While it is tracked they count for it, and
    /// mark it recently used like any request naming it.)
    #[test]
    fn an_evicted_tenant_is_not_recreated_by_unauthenticated_requests() {
        let m = bounded(2);
        hit(&m, "a", 200);
        hit(&m, "b", 200);
        hit(&m, "c", 200);
        assert!(m.summary("a").is_none());
        m.record(
            &facts("a", false),
            "GET",
            "/a/scim/v2/Users",
            &ok(401),
            None,
        );
        assert!(m.summary("a").is_none());
        assert_eq!(m.summary(UNATTRIBUTED).unwrap().total.unauthenticated, 1);
        assert_eq!(m.tracked().0, 2);
    }

    #[test]
    fn the_default_bound_follows_the_memory_budget() {
        let c = MetricsConfig::default();
        let per = Window::estimated_bytes(50);
        assert!((20_000..80_000).contains(&per), "{per} bytes per window");
        assert_eq!(c.max_tenants, DEFAULT_MEMORY_BUDGET / per);
        assert!(c.memory_bound() <= DEFAULT_MEMORY_BUDGET);
        assert!(MetricsConfig::default_max_tenants(0) > c.max_tenants);
        println!(
            "window: {per} bytes at 50 kept ({} tenants), {} bytes at 0 ({} tenants)",
            c.max_tenants,
            Window::estimated_bytes(0),
            MetricsConfig::default_max_tenants(0)
        );
    }

    #[test]
    fn the_overview_is_paged_worst_first() {
        let m = bounded(1_000);
        for i in 0..120 {
            let t = format!("t{i:03}");
            for _ in 0..(i % 7 + 1) {
                hit(&m, &t, 200);
            }
        }
        // t005 fails half its requests, t050 a third: they lead.
        hit(&m, "t050", 500);
        for _ in 0..6 {
            hit(&m, "t005", 409);
        }
        let p1 = m.overview_page(1, 50, Order::Attention);
        let info = p1.page.unwrap();
        assert_eq!((info.page, info.pages, info.rows), (1, 3, 120));
        assert_eq!(p1.tenants.len(), 50);
        assert_eq!(p1.tenants[0].tenant, "t005");
        assert_eq!(p1.tenants[1].tenant, "t050");
        let p3 = m.overview_page(3, 50, Order::Attention);
        assert_eq!(p3.tenants.len(), 20);
        // Past the last page: the last page.
        assert_eq!(
            m.overview_page(9, 50, Order::Attention).page.unwrap().page,
            3
        );
        // The pages together hold every tenant once.
        let mut all: Vec<String> = (1..=3)
            .flat_map(|p| m.overview_page(p, 50, Order::Attention).tenants)
            .map(|r| r.tenant)
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 120);
        let by_name = m.overview_page(1, 10, Order::Name);
        assert_eq!(by_name.tenants[0].tenant, "t000");
        assert_eq!(by_name.tenants[9].tenant, "t009");
        let busiest = m.overview_page(1, 1, Order::Requests);
        assert_eq!(busiest.tenants[0].tenant, "t005");
    }

    /// Memory of N tenant windows, measured (`cargo test --release -p scim-core window_memory --
    /// --ignored --nocapture`; Linux only, reads VmRSS): 10,000 tenants into a recorder bounded at its
    /// default, then into an unbounded one. Each tenant sends a few requests and one failure.
    #[test]
    #[ignore]
    fn window_memory() {
        fn rss_kb() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                })
                .unwrap_or(0)
        }
        let n: usize = std::env::var("TENANTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        let e = ScimError::uniqueness(
            "userName \"ann@contoso.com\" is already in use by another resource",
        );
        let fail = Outcome {
            route: RouteKind::Scim,
            status: 409,
            scim_type: Some("uniqueness"),
            latency_ms: 2.0,
        };
        for max in [MetricsConfig::default().max_tenants, n] {
            let before = rss_kb();
            let m = bounded(max);
            for i in 0..n {
                let t = format!("tenant-{i:05}");
                for _ in 0..3 {
                    hit(&m, &t, 200);
                }
                m.record(
                    &facts(&t, true),
                    "POST",
                    "/x/scim/v2/Users",
                    &fail,
                    Some(&e),
                );
            }
            let after = rss_kb();
            let started = std::time::Instant::now();
            let page = m.overview_page(1, 50, Order::Attention);
            println!(
                "{n} tenants, bound {max}: tracked {}, evicted {}, RSS +{} KB ({:.1} KB per tracked window); overview page in {:?}",
                page.tenants_tracked,
                page.evicted.windows,
                after.saturating_sub(before),
                after.saturating_sub(before) as f64 / page.tenants_tracked as f64,
                started.elapsed()
            );
            drop(m);
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
