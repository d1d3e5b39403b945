//! A tenant's last hour read back from CloudWatch — the metrics the functions' embedded-metric lines
//! produce ([`super::emf`]) — as the same summary the local server gives: `scim-admin --aws status` and the
//! manage function's `GET /manage/v1/tenants/{t}/status` ([`CloudWatchFigures`]). Behind the `cloudwatch`
//! feature; the function's role needs `cloudwatch:GetMetricData` and `cloudwatch:ListMetrics` (which
//! takes no resource).
//!
//! One `GetMetricData` for the per-minute counts, one for the latency percentiles (tolerated when it fails:
//! not every CloudWatch API implementation computes percentiles), one `ListMetrics` and `GetMetricData` for
//! the failures by kind. The last failed requests are in the logs (Logs Insights), not in metrics.
//!
//! Imports: `metrics` (the summary type and the metric names), `manage` ([`RequestFigures`]).

use crate::manage::RequestFigures;
use crate::metrics::{Counts, KindCount, LatencySummary, MinutePoint, TenantSummary, ALL};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat};
use aws_sdk_cloudwatch::Client;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The per-minute count metrics and where each goes in [`Counts`].
const COUNTS: [(&str, &str); 8] = [
    ("requests", "Requests"),
    ("failures", "Failures"),
    ("server", "ServerErrors"),
    ("auth", "AuthFailures"),
    ("throttles", "Throttles"),
    ("token", "TokenRequests"),
    ("tokenfail", "TokenFailures"),
    ("unauth", "Unauthenticated"),
];

fn dims(tenant: &str) -> Vec<Dimension> {
    if tenant == ALL {
        Vec::new()
    } else {
        vec![Dimension::builder().name("tenant").value(tenant).build()]
    }
}

fn query(
    id: &str,
    namespace: &str,
    metric: &str,
    dimensions: Vec<Dimension>,
    period: i32,
    stat: &str,
) -> MetricDataQuery {
    let m = Metric::builder()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(dimensions))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(m)
                .period(period)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

fn err(what: &str, e: impl std::fmt::Debug) -> String {
    format!("CloudWatch {what}: {e:?}")
}

/// id → (timestamp seconds → value) of one `GetMetricData` call.
async fn fetch(
    cw: &Client,
    queries: Vec<MetricDataQuery>,
    start: SystemTime,
    end: SystemTime,
) -> Result<HashMap<String, HashMap<i64, f64>>, String> {
    let mut out: HashMap<String, HashMap<i64, f64>> = HashMap::new();
    let mut next: Option<String> = None;
    loop {
        let r = cw
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(end))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| {
                err(
                    "GetMetricData",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(e),
                )
            })?;
        for res in r.metric_data_results() {
            let series = out
                .entry(res.id().unwrap_or_default().to_string())
                .or_default();
            for (t, v) in res.timestamps().iter().zip(res.values()) {
                *series.entry(t.secs()).or_insert(0.0) += v;
            }
        }
        match r.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

fn set(c: &mut Counts, id: &str, v: u64) {
    match id {
        "requests" => c.requests = v,
        "failures" => c.failures = v,
        "server" => c.server_errors = v,
        "auth" => c.auth_failures = v,
        "throttles" => c.throttles = v,
        "token" => c.token_requests = v,
        "tokenfail" => c.token_failures = v,
        "unauth" => c.unauthenticated = v,
        _ => {}
    }
}

/// The hour ending with the current minute, for `tenant` (or [`ALL`]: the dimensionless metrics).
pub async fn tenant_summary(
    cw: &Client,
    namespace: &str,
    tenant: &str,
    now: SystemTime,
) -> Result<TenantSummary, String> {
    let now_minute = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0);
    let first_minute = now_minute - 59;
    let start = UNIX_EPOCH + Duration::from_secs(first_minute * 60);
    let end = UNIX_EPOCH + Duration::from_secs((now_minute + 1) * 60);

    let queries = COUNTS
        .iter()
        .map(|(id, metric)| query(id, namespace, metric, dims(tenant), 60, "Sum"))
        .collect();
    let series = fetch(cw, queries, start, end).await?;
    let minutes: Vec<MinutePoint> = (first_minute..=now_minute)
        .map(|m| {
            let mut counts = Counts::default();
            for (id, _) in COUNTS {
                let v = series
                    .get(id)
                    .and_then(|s| s.get(&((m * 60) as i64)))
                    .copied()
                    .unwrap_or(0.0);
                set(&mut counts, id, v.round() as u64);
            }
            counts.client_errors = counts.failures.saturating_sub(counts.server_errors);
            MinutePoint {
                minute_start: m * 60,
                counts,
                latency_avg_ms: None,
            }
        })
        .collect();
    let mut last_hour = Counts::default();
    let mut last_5_minutes = Counts::default();
    for (i, p) in minutes.iter().enumerate() {
        last_hour.merge(&p.counts);
        if i >= minutes.len() - 5 {
            last_5_minutes.merge(&p.counts);
        }
    }

    // Percentiles over the whole hour; CloudWatch computes them from every value the lines carried.
    let pct = fetch(
        cw,
        vec![
            query("p50", namespace, "Latency", dims(tenant), 3600, "p50"),
            query("p99", namespace, "Latency", dims(tenant), 3600, "p99"),
        ],
        start,
        end,
    )
    .await;
    let read = |id: &str| {
        pct.as_ref()
            .ok()
            .and_then(|s| s.get(id))
            .and_then(|s| s.values().copied().reduce(f64::max))
            .map(|v| (v * 100.0).round() / 100.0)
    };
    let latency_last_hour = LatencySummary {
        samples: last_hour.requests,
        p50_ms: read("p50"),
        p99_ms: read("p99"),
        max_ms: None,
    };

    Ok(TenantSummary {
        tenant: tenant.to_string(),
        total: Counts::default(),
        last_hour,
        last_5_minutes,
        latency_last_hour,
        failures_by_kind: failures_by_kind(cw, namespace, tenant, start, end).await?,
        minutes,
        last_failures: Vec::new(),
        last_unauthenticated: Vec::new(),
    })
}

/// The tenant's `FailuresByKind` series (found with `ListMetrics`), summed over the hour.
async fn failures_by_kind(
    cw: &Client,
    namespace: &str,
    tenant: &str,
    start: SystemTime,
    end: SystemTime,
) -> Result<Vec<KindCount>, String> {
    let mut kinds: Vec<String> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut req = cw
            .list_metrics()
            .namespace(namespace)
            .metric_name("FailuresByKind")
            .set_next_token(next.take());
        if tenant != ALL {
            req = req.dimensions(
                DimensionFilter::builder()
                    .name("tenant")
                    .value(tenant)
                    .build(),
            );
        }
        let r = req.send().await.map_err(|e| {
            err(
                "ListMetrics",
                aws_sdk_cloudwatch::error::DisplayErrorContext(e),
            )
        })?;
        for m in r.metrics() {
            let ds = m.dimensions();
            let has_tenant = ds.iter().any(|d| d.name() == Some("tenant"));
            if has_tenant != (tenant != ALL) {
                continue;
            }
            if let Some(k) = ds
                .iter()
                .find(|d| d.name() == Some("kind"))
                .and_then(|d| d.value())
            {
                if !kinds.iter().any(|x| x == k) {
                    kinds.push(k.to_string());
                }
            }
        }
        match r.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::new();
    // GetMetricData takes at most 500 queries.
    for chunk in kinds.chunks(500) {
        let queries = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut d = dims(tenant);
                d.push(Dimension::builder().name("kind").value(k).build());
                query(
                    &format!("k{i}"),
                    namespace,
                    "FailuresByKind",
                    d,
                    3600,
                    "Sum",
                )
            })
            .collect();
        let series = fetch(cw, queries, start, end).await?;
        for (i, k) in chunk.iter().enumerate() {
            let n = series
                .get(&format!("k{i}"))
                .map(|s| s.values().sum::<f64>())
                .unwrap_or(0.0)
                .round() as u64;
            let mut parts = k.splitn(2, ' ');
            let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if n > 0 {
                out.push(KindCount {
                    status,
                    scim_type: parts.next().map(str::to_string),
                    count: n,
                });
            }
        }
    }
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.status.cmp(&b.status)));
    Ok(out)
}

/// The status route's figures from CloudWatch: [`tenant_summary`] for the hour ending now.
pub struct CloudWatchFigures {
    client: Client,
    namespace: String,
}

impl CloudWatchFigures {
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        CloudWatchFigures {
            client,
            namespace: namespace.into(),
        }
    }

    /// From the AWS configuration chain, in the namespace the functions write (`SCIM_METRICS_NAMESPACE`,
    /// else [`super::emf::DEFAULT_NAMESPACE`]).
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self::new(Client::new(&sdk), namespace_from_env())
    }
}

/// `SCIM_METRICS_NAMESPACE`, else [`super::emf::DEFAULT_NAMESPACE`].
pub fn namespace_from_env() -> String {
    std::env::var("SCIM_METRICS_NAMESPACE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| super::emf::DEFAULT_NAMESPACE.to_string())
}

#[async_trait::async_trait]
impl RequestFigures for CloudWatchFigures {
    fn source(&self) -> String {
        format!("CloudWatch, namespace {}", self.namespace)
    }

    async fn last_hour(&self, tenant: &str) -> Result<TenantSummary, String> {
        tenant_summary(&self.client, &self.namespace, tenant, SystemTime::now()).await
    }
}
