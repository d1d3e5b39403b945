//! The operator page's HTML: server-rendered with `maud` (every interpolated value is escaped, so a tenant
//! name or a failure detail cannot inject markup), a little inline CSS, an inline SVG chart of the last
//! hour, no script.
//!
//! Imports: `scim_core::metrics` (the figures it shows), `crate::webhook` (the webhook's refused events).

use super::path_segment;
use crate::delivery::webhook::Trouble;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use scim_core::metrics::{
    Counts, FailedRequest, KindCount, LatencySummary, MinutePoint, Order, Overview, TenantRow,
    TenantSummary,
};
use scim_core::metrics::{ALL, UNAUTHENTICATED_KEPT};

const CSS: &str = r#"
:root { --fg:#1d2433; --muted:#5b6475; --line:#dfe3ea; --bg:#f6f7f9; --card:#fff; --req:#7c9cc9; --fail:#d6453d; --warn:#c98a12; --ok:#2f8f5b; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2433; color:#fff; padding:10px 24px; display:flex; align-items:center; gap:16px; }
header h1 { font-size:17px; margin:0; font-weight:600; }
header .sub { color:#b9c1d0; font-size:12px; }
header form { margin-left:auto; }
header button { background:transparent; color:#fff; border:1px solid #5b6475; border-radius:4px; padding:4px 10px; cursor:pointer; }
main { max-width:1280px; margin:0 auto; padding:18px 24px 40px; }
h2 { font-size:15px; margin:22px 0 8px; }
a { color:#2358a6; text-decoration:none; } a:hover { text-decoration:underline; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(138px,1fr)); gap:10px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
.card .k { color:var(--muted); font-size:12px; } .card .v { font-size:22px; font-weight:600; margin-top:2px; }
.card .n { color:var(--muted); font-size:11px; }
.bad { color:var(--fail); } .warn { color:var(--warn); } .ok { color:var(--ok); }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:6px; overflow:hidden; }
th, td { padding:6px 10px; text-align:left; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-weight:600; font-size:12px; color:#3b4356; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
tr:last-child td { border-bottom:0; }
td.detail { color:#3b4356; max-width:520px; overflow-wrap:anywhere; }
table#kinds { width:auto; min-width:420px; }
code { font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
.chart { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px 10px 4px; }
.chart svg { width:100%; height:auto; display:block; }
.legend { font-size:12px; color:var(--muted); margin:2px 0 0; }
.legend i { display:inline-block; width:10px; height:10px; margin:0 4px 0 12px; vertical-align:-1px; }
.empty { color:var(--muted); font-style:italic; padding:8px 0; }
.login { max-width:420px; margin:80px auto; background:var(--card); border:1px solid var(--line); border-radius:8px; padding:24px; }
.login input { width:100%; padding:8px; font:inherit; margin:8px 0 12px; border:1px solid var(--line); border-radius:4px; }
.login button { padding:8px 16px; font:inherit; background:#2358a6; color:#fff; border:0; border-radius:4px; cursor:pointer; }
.note { color:var(--muted); font-size:12px; }
"#;

fn layout(title: &str, signed_in: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — scim-local operations" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { a href="/admin" style="color:#fff" { "scim-local operations" } }
                    span.sub { (title) }
                    @if signed_in {
                        form method="post" action="/admin/logout" { button type="submit" { "Sign out" } }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The sign-in form (with a message after a failed attempt).
pub fn login(message: Option<&str>) -> Markup {
    layout(
        "Sign in",
        false,
        html! {
            form.login method="post" action="/admin/login" {
                h2 { "Operator sign-in" }
                p.note { "Paste the admin token: the file " code { "admin-token" } " in the server's data directory (not the SCIM token)." }
                @if let Some(m) = message { p.bad { (m) } }
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="current-password" autofocus required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn unknown_tenant(tenant: &str, lifecycle: Markup) -> Markup {
    layout(
        "Unknown tenant",
        true,
        html! {
            p { "No request has been counted for tenant " code { (tenant) } " since the server started. " a href="/admin" { "Back to all tenants" } }
            (lifecycle)
        },
    )
}

/// A tenant as the register holds it, with its last audit entries (newest first, as the management API
/// lists them).
pub struct Register {
    pub rec: scim_core::store::TenantRecord,
    pub audit: Vec<serde_json::Value>,
}

/// The tenant's lifecycle (amber when paused, red when being deleted: what Entra is answered then) and
/// its audit trail: who did what to it, when. Nothing for a tenant the register does not hold.
pub fn lifecycle_section(r: Option<&Register>) -> Markup {
    use scim_core::store::TenantState;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    html! {
        @if let Some(r) = r {
            h2 { "Lifecycle" }
            @match r.rec.state {
                TenantState::Active => p.lifecycle.ok { "Active: provisioning is served." },
                TenantState::Paused => p.lifecycle.warn { "Paused: Entra's requests are answered 503 with Retry-After; nothing changes until it is resumed." },
                TenantState::Deleting => p.lifecycle.bad { "Being deleted: every request is refused (403) while its items are removed." },
            }
            p.note { (r.rec.display_name) " · created " (r.rec.created) " · changed " (r.rec.updated) }
            h2 { "Audit trail (last 20)" }
            @if r.audit.is_empty() {
                p.note { "No management or credential action recorded." }
            } @else {
                table.audit {
                    thead { tr { th { "When (UTC)" } th { "Who" } th { "What" } th { "On" } } }
                    tbody {
                        @for e in &r.audit {
                            tr { td { (text(&e["at"])) } td { (text(&e["actor"])) } td { (text(&e["action"])) } td { (text(&e["target"])) } }
                        }
                    }
                }
            }
        }
    }
}

fn pct(ratio: Option<f64>) -> String {
    ratio.map_or("–".into(), |r| format!("{:.1} %", r * 100.0))
}

/// Red at Entra's quarantine ratio (40 %), amber from half of it.
fn ratio_class(ratio: Option<f64>) -> &'static str {
    match ratio {
        Some(r) if r >= 0.40 => "bad",
        Some(r) if r >= 0.20 => "warn",
        Some(_) => "ok",
        None => "",
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2} ms"))
}

fn num_ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2}"))
}

fn per_minute(c: &Counts, minutes: u64) -> String {
    format!("{:.1}", c.requests as f64 / minutes as f64)
}

fn cards(hour: &Counts, five: &Counts, latency: &LatencySummary) -> Markup {
    let ratio = hour.failure_ratio();
    html! {
        div.cards {
            div.card { div.k { "Requests / min" } div.v { (per_minute(five, 5)) } div.n { "last 5 min: " (five.requests) } }
            div.card { div.k { "Requests, 1 h" } div.v { (hour.requests) } div.n { "last hour" } }
            div.card { div.k { "Failed, 1 h" } div.v.bad[hour.failures > 0] { (hour.failures) } div.n { (hour.client_errors) " 4xx · " (hour.server_errors) " 5xx" } }
            div.card {
                div.k { "Failure ratio, 1 h" }
                div class={ "v " (ratio_class(ratio)) } { (pct(ratio)) }
                div.n { "Entra quarantines > 40 %" }
            }
            div.card {
                div.k { "Unauthenticated, 1 h" }
                div.v.warn[hour.unauthenticated > 0] { (hour.unauthenticated) }
                div.n { "refused credentials · not in the ratio" }
            }
            div.card { div.k { "Throttled, 1 h" } div.v.warn[hour.throttles > 0] { (hour.throttles) } div.n { "429" } }
            div.card { div.k { "Latency p50 / p99" } div.v style="font-size:17px;padding-top:4px" { (num_ms(latency.p50_ms)) " / " (ms(latency.p99_ms)) } div.n { "last hour, " (latency.samples) " requests" } }
            div.card { div.k { "Token endpoint, 1 h" } div.v.bad[hour.token_failures > 0] { (hour.token_failures) } div.n { "failed of " (hour.token_requests) } }
        }
    }
}

fn hh_mm(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_default()
}

/// Requests (blue) and failures (red, in front) per minute over the last hour, as inline SVG.
pub fn chart(minutes: &[MinutePoint]) -> Markup {
    const W: f64 = 960.0;
    const H: f64 = 150.0;
    const LEFT: f64 = 44.0;
    const BOTTOM: f64 = 22.0;
    const TOP: f64 = 8.0;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let max = minutes
        .iter()
        .map(|m| m.counts.requests.max(m.counts.token_requests))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = plot_w / minutes.len().max(1) as f64;
    let y = |v: u64| TOP + plot_h - plot_h * v as f64 / max as f64;
    let n = minutes.len();
    html! {
        div.chart {
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="Requests and failures per minute, last hour" {
                line x1=(LEFT) y1=(TOP + plot_h) x2=(W - 8.0) y2=(TOP + plot_h) stroke="#b8bfcc" {}
                line x1=(LEFT) y1=(TOP) x2=(W - 8.0) y2=(TOP) stroke="#eef1f5" {}
                text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" font-size="11" fill="#5b6475" { (max) }
                text x=(LEFT - 6.0) y=(TOP + plot_h) text-anchor="end" font-size="11" fill="#5b6475" { "0" }
                @for (i, m) in minutes.iter().enumerate() {
                    @let x = LEFT + i as f64 * slot + 1.0;
                    @let w = (slot - 2.0).max(1.0);
                    g {
                        title { (hh_mm(m.minute_start)) " UTC — " (m.counts.requests) " requests, " (m.counts.failures) " failed" }
                        @if m.counts.requests > 0 {
                            rect.req x=(format!("{x:.1}")) y=(format!("{:.1}", y(m.counts.requests))) width=(format!("{w:.1}")) height=(format!("{:.1}", TOP + plot_h - y(m.counts.requests))) fill="#7c9cc9" {}
                        }
                        @if m.counts.failures > 0 {
                            rect.fail x=(format!("{x:.1}")) y=(format!("{:.1}", y(m.counts.failures))) width=(format!("{w:.1}")) height=(format!("{:.1}", TOP + plot_h - y(m.counts.failures))) fill="#d6453d" {}
                        }
                    }
                }
                @for back in [60usize, 45, 30, 15, 0] {
                    @if n > 0 {
                        @let i = (n - 1).saturating_sub(back.min(n - 1));
                        @let x = LEFT + i as f64 * slot + slot / 2.0;
                        text x=(format!("{x:.1}")) y=(H - 6.0) text-anchor="middle" font-size="11" fill="#5b6475" {
                            @if back == 0 { "now" } @else { "−" (back) " min" }
                        }
                    }
                }
            }
            p.legend { i style="background:#7c9cc9" {} "requests per minute" i style="background:#d6453d" {} "failed" }
        }
    }
}

fn tenant_link(name: &str) -> Markup {
    html! { a href=(format!("/admin/tenants/{}", path_segment(name))) { (name) } }
}

fn tenants_table(rows: &[TenantRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No request yet." }
        } @else {
            table #tenants {
                thead { tr {
                    th { "Tenant" } th.num { "Req/min (5 min)" } th.num { "Requests (1 h)" } th.num { "Failed (1 h)" } th.num { "Failure ratio" }
                    th.num { "5xx" } th.num { "Unauth." } th.num { "429" } th.num { "p50" } th.num { "p99" } th.num { "Token failures" } th.num { "Requests since start" }
                } }
                tbody {
                    @for r in rows {
                        @let ratio = r.last_hour.failure_ratio();
                        tr data-tenant=(r.tenant) {
                            td { (tenant_link(&r.tenant)) }
                            td.num { (per_minute(&r.last_5_minutes, 5)) }
                            td.num { (r.last_hour.requests) }
                            td.num.bad[r.last_hour.failures > 0] { (r.last_hour.failures) }
                            td class={ "num " (ratio_class(ratio)) } { (pct(ratio)) }
                            td.num { (r.last_hour.server_errors) }
                            td.num { (r.last_hour.unauthenticated) }
                            td.num { (r.last_hour.throttles) }
                            td.num { (ms(r.latency_last_hour.p50_ms)) }
                            td.num { (ms(r.latency_last_hour.p99_ms)) }
                            td.num { (r.last_hour.token_failures) }
                            td.num { (r.total.requests) }
                        }
                    }
                }
            }
        }
    }
}

fn failures_table(id: &str, failures: &[FailedRequest], with_tenant: bool) -> Markup {
    html! {
        @if failures.is_empty() {
            p.empty { "None." }
        } @else {
            table id=(id) {
                thead { tr {
                    th { "Time (UTC)" } @if with_tenant { th { "Tenant" } } th { "Request" } th.num { "Status" } th { "scimType" } th { "Detail" }
                } }
                tbody {
                    @for f in failures {
                        tr {
                            td { code { (f.at.get(11..19).unwrap_or(&f.at)) } }
                            @if with_tenant { td { (tenant_link(&f.tenant)) } }
                            td { code { (f.method) " " (f.path) } }
                            td.num.bad[f.status >= 500] { (f.status) }
                            td { (f.scim_type.as_deref().unwrap_or("")) }
                            td.detail { (f.detail) }
                        }
                    }
                }
            }
        }
    }
}

fn kinds_table(kinds: &[KindCount]) -> Markup {
    html! {
        @if kinds.is_empty() {
            p.empty { "No failure since the server started." }
        } @else {
            table #kinds {
                thead { tr { th.num { "Status" } th { "scimType" } th.num { "Count" } } }
                tbody {
                    @for k in kinds {
                        tr { td.num { (k.status) } td { (k.scim_type.as_deref().unwrap_or("–")) } td.num { (k.count) } }
                    }
                }
                tfoot { tr { th { "All" } th {} th.num { (kinds.iter().map(|k| k.count).sum::<u64>()) } } }
            }
        }
    }
}

/// Requests that did not authenticate, apart from the failures (they move no failure figure).
fn unauthenticated_section(list: &[FailedRequest], with_tenant: bool) -> Markup {
    html! {
        h2 { "Unauthenticated requests (not in the failure figures)" }
        p.note { "A missing, wrong or revoked credential, a path naming no tenant, a failed token request. "
            "Counted apart so that nobody without the credential can move a tenant's failure ratio; "
            "an Entra job with a wrong Secret Token shows here. Newest first, at most " (UNAUTHENTICATED_KEPT) " kept." }
        (failures_table("unauthenticated", list, with_tenant))
    }
}

fn order_name(o: Order) -> &'static str {
    match o {
        Order::Attention => "attention",
        Order::Requests => "requests",
        Order::Name => "name",
    }
}

fn page_link(page: usize, per_page: usize, order: Order) -> String {
    format!(
        "/admin?page={page}&per_page={per_page}&order={}",
        order_name(order)
    )
}

/// Which rows the table shows, links to the other pages and orders.
fn pager(o: &Overview) -> Markup {
    let Some(p) = o.page else {
        return html! {};
    };
    let first = if p.rows == 0 {
        0
    } else {
        (p.page - 1) * p.per_page + 1
    };
    let last = ((p.page - 1) * p.per_page + o.tenants.len()).min(p.rows);
    let order_words = match p.order {
        Order::Attention => "highest failure ratio of the last hour first",
        Order::Requests => "most requests of the last hour first",
        Order::Name => "by name",
    };
    html! {
        p.note #pager {
            "Rows " (first) "–" (last) " of " (p.rows) ", " (order_words) "; page " (p.page) " of " (p.pages) ". "
            @if p.page > 1 { a rel="prev" href=(page_link(p.page - 1, p.per_page, p.order)) { "← previous" } " " }
            @if p.page < p.pages { a rel="next" href=(page_link(p.page + 1, p.per_page, p.order)) { "next →" } " " }
            "Order: "
            @for (i, ord) in [Order::Attention, Order::Requests, Order::Name].into_iter().enumerate() {
                @if i > 0 { " · " }
                @if ord == p.order { strong { (order_name(ord)) } }
                @else { a href=(page_link(1, p.per_page, ord)) { (order_name(ord)) } }
            }
        }
    }
}

/// How many tenants are tracked, the bound, and the windows evicted to keep it.
fn tracking(o: &Overview) -> Markup {
    html! {
        p.note #tracking {
            "Tracking " (o.tenants_tracked) " tenants, at most " (o.max_tenants) " (SCIM_METRICS_MAX_TENANTS; beyond it the least recently used is evicted). "
            @if o.evicted.windows > 0 {
                span.warn #evicted { (o.evicted.windows) " tenant windows evicted since start: their figures are gone but for "
                    (o.evicted.total.requests) " requests (" (o.evicted.total.failures) " failed), still in the total; a tenant tracked again starts from zero." }
            } @else { "No tenant window evicted." }
        }
    }
}

/// Every tenant: the total's cards and chart, the tenants' table, the latest failures of any tenant.
pub fn overview(
    o: &Overview,
    all: Option<&TenantSummary>,
    recording: bool,
    webhook: Option<&[Trouble]>,
) -> Markup {
    layout(
        "All tenants",
        true,
        html! {
            @if !recording { p.warn { "Recording is off (SCIM_METRICS=off): these figures do not move." } }
            p.note { "Figures since " (o.since) " (server start), read at " (o.now) ". Failure ratios are of the last hour; times are UTC." }
            (cards(&o.all.last_hour, &o.all.last_5_minutes, &o.all.latency_last_hour))
            h2 { "Tenants" }
            (pager(o))
            (tenants_table(&o.tenants))
            (tracking(o))
            h2 { "Last hour, all tenants" }
            @if let Some(a) = all { (chart(&a.minutes)) }
            h2 { "Latest failed requests, any tenant" }
            (failures_table("failures", all.map(|a| a.last_failures.as_slice()).unwrap_or(&[]), true))
            (unauthenticated_section(all.map(|a| a.last_unauthenticated.as_slice()).unwrap_or(&[]), true))
            (webhook_section(webhook))
            p.note { "JSON: " a href="/admin/api/overview" { "/admin/api/overview" } ", " code { "/admin/api/tenants/<tenant>" } }
        },
    )
}

/// One tenant: cards, chart, failures by kind, last failed requests.
pub fn tenant(s: &TenantSummary, lifecycle: Markup) -> Markup {
    let title = if s.tenant == ALL {
        "All tenants".to_string()
    } else {
        format!("Tenant {}", s.tenant)
    };
    layout(
        &title,
        true,
        html! {
            p.note { a href="/admin" { "← all tenants" } " · totals since start: " (s.total.requests) " requests, " (s.total.failures) " failed; "
                (s.total.unauthenticated) " unauthenticated (apart)" }
            (cards(&s.last_hour, &s.last_5_minutes, &s.latency_last_hour))
            (lifecycle)
            h2 { "Last failed requests" }
            (failures_table("failures", &s.last_failures, s.tenant == ALL))
            (unauthenticated_section(&s.last_unauthenticated, s.tenant == ALL))
            h2 { "Failures by kind (since start)" }
            (kinds_table(&s.failures_by_kind))
            h2 { "Last hour" }
            (chart(&s.minutes))
            p.note { "JSON: " a href=(format!("/admin/api/tenants/{}", path_segment(&s.tenant))) { "/admin/api/tenants/" (s.tenant) } }
        },
    )
}

/// The webhook's tenants whose head event was refused (parked, or being retried): tenant, event id and
/// type, attempts, the last failure in words — never the event itself. Nothing when no webhook is set.
pub fn webhook_section(rows: Option<&[crate::delivery::webhook::Trouble]>) -> Markup {
    html! {
        @if let Some(rows) = rows {
            h2 { "Webhook deliveries" }
            @if rows.is_empty() {
                p.empty { "Every tenant's events are delivered; none waits for a retry." }
            } @else {
                p.note {
                    "A parked event is tried again every 10 minutes and at start; the tenant's later events wait "
                    "behind it (docs/events.md, \"Webhook\")."
                }
                table #webhook {
                    thead { tr {
                        th { "Tenant" } th { "Event id" } th { "Type" } th.num { "Attempts" } th { "State" }
                        th { "Last error" }
                    } }
                    tbody {
                        @for r in rows {
                            tr data-tenant=(r.tenant) {
                                td { (r.tenant) }
                                td { code { (r.event_id) } }
                                td { (r.kind) }
                                td.num { (r.attempts) }
                                @if r.parked {
                                    td.bad {
                                        "parked"
                                        @if let Some(at) = &r.parked_at { " " (at.get(..19).unwrap_or(at)) }
                                    }
                                } @else {
                                    td.warn { "retrying" }
                                }
                                td.detail { (r.last_error) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::metrics::{Metrics, Outcome, RequestFacts, RouteKind};

    #[test]
    fn values_are_escaped() {
        let m = Metrics::default();
        let facts = RequestFacts {
            tenant: Some("default".into()),
            authenticated: true,
        };
        let e = scim_core::error::ScimError::invalid_value("<script>alert(1)</script> & co");
        let o = Outcome {
            route: RouteKind::Scim,
            status: 400,
            scim_type: Some("invalidValue"),
            latency_ms: 1.0,
        };
        m.record(&facts, "POST", "/scim/v2/Users/<b>x</b>", &o, Some(&e));
        let s = m.summary("default").unwrap();
        let page = tenant(&s, html! {}).into_string();
        assert!(
            !page.contains("<script>alert")
                && page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
            "{page}"
        );
        assert!(!page.contains("<b>x</b>"));
        let page = unknown_tenant("<i>t</i>", html! {}).into_string();
        assert!(page.contains("&lt;i&gt;t&lt;/i&gt;"));
    }

    /// 10,000 tenants: the page shows one page of rows (the failing tenant first), says how many there
    /// are, links to the next page, and is built quickly; evicted windows are shown.
    #[test]
    fn the_tenant_table_is_paged() {
        use scim_core::metrics::MetricsConfig;
        let m = Metrics::new(MetricsConfig {
            max_tenants: 10_000,
            ..MetricsConfig::default()
        });
        let hit = |t: &str, status: u16| {
            m.record(
                &RequestFacts {
                    tenant: Some(t.into()),
                    authenticated: true,
                },
                "GET",
                "/x/scim/v2/Users",
                &Outcome {
                    route: RouteKind::Scim,
                    status,
                    scim_type: None,
                    latency_ms: 1.0,
                },
                None,
            )
        };
        for i in 0..10_000 {
            hit(&format!("t{i:05}"), 200);
        }
        hit("t07777", 500);
        let started = std::time::Instant::now();
        let q = crate::admin::PageQuery::parse(None, crate::admin::PAGE_ROWS, Order::Attention);
        let page = overview(
            &m.overview_page(q.page, q.per_page, q.order),
            None,
            true,
            None,
        )
        .into_string();
        let took = started.elapsed();
        assert_eq!(page.matches("<tr data-tenant=").count(), 50);
        assert!(
            page.contains("<tr data-tenant=\"t07777\""),
            "the failing tenant leads"
        );
        assert!(
            page.contains("Rows 1–50 of 10000"),
            "{}",
            &page[..2000.min(page.len())]
        );
        assert!(page.contains("href=\"/admin?page=2&amp;per_page=50&amp;order=attention\""));
        assert!(page.contains("No tenant window evicted"));
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
        let q = crate::admin::PageQuery::parse(
            Some("page=200&order=name&per_page=x"),
            50,
            Order::Attention,
        );
        assert_eq!((q.page, q.per_page, q.order), (200, 50, Order::Name));
        let last = overview(
            &m.overview_page(q.page, q.per_page, q.order),
            None,
            true,
            None,
        )
        .into_string();
        assert!(last.contains("Rows 9951–10000 of 10000"));
        assert!(last.contains("<tr data-tenant=\"t09999\""));
        // Past the bound: the oldest windows are evicted and the page says so.
        for i in 0..3 {
            hit(&format!("new{i}"), 200);
        }
        let o = overview(&m.overview_page(1, 50, Order::Name), None, true, None).into_string();
        assert!(o.contains("3 tenant windows evicted since start"), "{o}");
    }

    /// A browser keeps only the first of two `class` attributes: the warning colours would never show.
    #[test]
    fn no_element_has_two_class_attributes() {
        let m = Metrics::default();
        let facts = RequestFacts {
            tenant: Some("default".into()),
            authenticated: true,
        };
        for status in [200, 404, 500, 429, 401] {
            m.record(
                &facts,
                "GET",
                "/scim/v2/Users",
                &Outcome {
                    route: RouteKind::Scim,
                    status,
                    scim_type: None,
                    latency_ms: 1.0,
                },
                None,
            );
        }
        let t = Outcome {
            route: RouteKind::Token,
            status: 401,
            scim_type: None,
            latency_ms: 1.0,
        };
        m.record(&facts, "POST", "/oauth2/token", &t, None);
        let pages = [
            overview(&m.overview(), m.summary(ALL).as_ref(), true, None),
            tenant(&m.summary("default").unwrap(), html! {}),
        ];
        for page in pages.map(|p| p.into_string()) {
            for tag in page.split('<').map(|t| t.split('>').next().unwrap_or("")) {
                assert!(
                    tag.matches(" class=").count() <= 1,
                    "two class attributes: <{tag}>"
                );
            }
            assert!(
                page.contains("class=\"num bad\"") && page.contains("class=\"v bad\""),
                "{page}"
            );
        }
    }

    #[test]
    fn the_chart_has_a_bar_per_busy_minute() {
        let m = Metrics::default();
        let facts = RequestFacts {
            tenant: Some("default".into()),
            authenticated: true,
        };
        for status in [200, 200, 404] {
            m.record(
                &facts,
                "GET",
                "/scim/v2/Users",
                &Outcome {
                    route: RouteKind::Scim,
                    status,
                    scim_type: None,
                    latency_ms: 1.0,
                },
                None,
            );
        }
        let svg = chart(&m.summary("default").unwrap().minutes).into_string();
        assert_eq!(svg.matches("class=\"req\"").count(), 1);
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert!(svg.contains("3 requests, 1 failed"));
    }
}
