//! A tenant's figures as terminal text (`scim-admin status`), from the local server's admin JSON or from
//! CloudWatch — the same summary either way.
//!
//! Imports: `scim_core::metrics` (the summary type).

use scim_core::metrics::TenantSummary;
use std::fmt::Write;

/// Eight-level bars of a series, for a one-line sparkline.
fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|v| {
            if *v == 0 {
                ' '
            } else {
                BARS[(*v * 7).checked_div(max).unwrap_or(0) as usize]
            }
        })
        .collect()
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2} ms"))
}

/// The summary; `source` says where it came from (the local server, CloudWatch).
pub fn summary(s: &TenantSummary, source: &str) -> String {
    let mut out = String::new();
    let h = &s.last_hour;
    let ratio = h
        .failure_ratio()
        .map_or("–".into(), |r| format!("{:.1} %", r * 100.0));
    let flag = match h.failure_ratio() {
        Some(r) if r >= 0.40 => "  ← at Entra's quarantine ratio (40 %)",
        Some(r) if r >= 0.20 => "  ← half-way to Entra's quarantine ratio (40 %)",
        _ => "",
    };
    let _ = writeln!(out, "tenant {}   ({source})", s.tenant);
    let _ = writeln!(
        out,
        "last hour:   {} requests, {} failed ({ratio}){flag}",
        h.requests, h.failures
    );
    let (c4, c5, t) = (h.client_errors, h.server_errors, h.throttles);
    let _ = writeln!(out, "             {c4} 4xx, {c5} 5xx, {t} throttled (429)");
    let (u, a) = (h.unauthenticated, h.auth_failures);
    let _ = writeln!(
        out,
        "             {u} unauthenticated, apart ({a} refused credentials, 401/403)"
    );
    let _ = writeln!(
        out,
        "             token endpoint: {} requests, {} failed",
        h.token_requests, h.token_failures
    );
    let five = &s.last_5_minutes;
    let _ = writeln!(
        out,
        "last 5 min:  {} requests ({:.1}/min), {} failed",
        five.requests,
        five.requests as f64 / 5.0,
        five.failures
    );
    let l = &s.latency_last_hour;
    let _ = writeln!(
        out,
        "latency:     p50 {}, p99 {} (last hour, {} requests)",
        ms(l.p50_ms),
        ms(l.p99_ms),
        l.samples
    );
    if !s.minutes.is_empty() {
        let req: Vec<u64> = s.minutes.iter().map(|m| m.counts.requests).collect();
        let fail: Vec<u64> = s.minutes.iter().map(|m| m.counts.failures).collect();
        let _ = writeln!(out, "requests/min |{}| (−60 min … now)", sparkline(&req));
        let _ = writeln!(out, "failed/min   |{}|", sparkline(&fail));
    }
    if s.total != scim_core::metrics::Counts::default() {
        let _ = writeln!(
            out,
            "since start: {} requests, {} failed",
            s.total.requests, s.total.failures
        );
    }
    if !s.failures_by_kind.is_empty() {
        let _ = writeln!(out, "failures by kind:");
        for k in &s.failures_by_kind {
            let _ = writeln!(
                out,
                "  {:>6}  {} {}",
                k.count,
                k.status,
                k.scim_type.as_deref().unwrap_or("")
            );
        }
    }
    if !s.last_failures.is_empty() {
        let _ = writeln!(out, "last failed requests (newest first):");
        for f in &s.last_failures {
            let t = f
                .scim_type
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {} {}  {}{t}  {}",
                f.at, f.method, f.path, f.status, f.detail
            );
        }
    }
    if !s.last_unauthenticated.is_empty() {
        let _ = writeln!(
            out,
            "last unauthenticated requests (newest first; not in the failures):"
        );
        for f in &s.last_unauthenticated {
            let _ = writeln!(
                out,
                "  {}  {} {}  {}  {}",
                f.at, f.method, f.path, f.status, f.detail
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest() {
        assert_eq!(sparkline(&[0, 1, 2, 4]), " ▂▄█");
        assert_eq!(sparkline(&[]), "");
    }
}
