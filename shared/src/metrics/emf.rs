//! CloudWatch embedded metric format: one JSON line per request on standard output, which Lambda sends to
//! CloudWatch Logs, where the `_aws` directive makes CloudWatch extract the metrics — no API call, no added
//! latency beyond formatting a line.
//!
//! Metrics (namespace [`DEFAULT_NAMESPACE`] or `SCIM_METRICS_NAMESPACE`), each with the dimension set
//! `tenant` and with no dimension (the total):
//! * SCIM requests: `Requests`, `Failures` (4xx/5xx), `ServerErrors` (5xx), `AuthFailures` (401/403),
//!   `Throttles` (429), `Latency` (milliseconds; CloudWatch computes p50/p99 from the values);
//! * the token endpoint: `TokenRequests`, `TokenFailures`;
//! * a SCIM request refused before it authenticated ([`super::Class::Unauthenticated`]): only
//!   `Unauthenticated` and `AuthFailures` (401/403) — none of the figures above, so it moves neither a
//!   tenant's failure ratio (`AVG(Failures)`) nor its latency;
//! * failed SCIM requests of the tenant also: `FailuresByKind` with dimensions `tenant`+`kind` and `kind`
//!   alone, where kind is the status and `scimType` (`400 invalidFilter`, `404`).
//!
//! A request no tenant can be named for carries only the dimensionless set. A failed request's line also
//! holds its method, path, `scimType` and redacted detail (the Logs Insights queries read them).
//!
//! Imports: [`super`]'s types.

use super::{Class, FailedRequest, Outcome};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

pub const DEFAULT_NAMESPACE: &str = "ScimDynamo";
/// Lines a memory sink keeps (the newest).
const MEMORY_LINES: usize = 10_000;

/// Where the lines go.
enum Sink {
    Stdout,
    /// For tests: the last lines, in memory.
    Memory(Mutex<VecDeque<String>>),
}

pub struct Emf {
    namespace: String,
    sink: Sink,
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Clone for Emf {
    /// A clone writes to the same kind of sink (a memory sink starts empty).
    fn clone(&self) -> Self {
        match self.sink {
            Sink::Stdout => Emf::stdout(self.namespace.clone()),
            Sink::Memory(_) => Emf::memory(self.namespace.clone()),
        }
    }
}

impl Emf {
    pub fn stdout(namespace: impl Into<String>) -> Self {
        Emf {
            namespace: namespace.into(),
            sink: Sink::Stdout,
        }
    }

    /// Lines kept in memory ([`Emf::lines`]), for tests.
    pub fn memory(namespace: impl Into<String>) -> Self {
        Emf {
            namespace: namespace.into(),
            sink: Sink::Memory(Mutex::new(VecDeque::new())),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The lines a memory sink holds, oldest first (none for standard output).
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Memory(m) => m
                .lock()
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default(),
            Sink::Stdout => Vec::new(),
        }
    }

    pub(super) fn write(&self, line: &str) {
        match &self.sink {
            Sink::Stdout => {
                // One write of the whole line under stdout's lock: lines of concurrent requests never mix.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(format!("{line}\n").as_bytes());
                let _ = out.flush();
            }
            Sink::Memory(m) => {
                if let Ok(mut l) = m.lock() {
                    if l.len() >= MEMORY_LINES {
                        l.pop_front();
                    }
                    l.push_back(line.to_string());
                }
            }
        }
    }

    /// The line for one request. `tenant`: the tenant it is counted for, None when unattributed; `class`:
    /// how it is counted.
    pub fn line(
        &self,
        tenant: Option<&str>,
        o: &Outcome,
        class: Class,
        failed: Option<&FailedRequest>,
        timestamp_ms: u64,
    ) -> String {
        // The dimension sets: `tenant` (when the request is counted for one) and none, each with `extra`.
        let dims = |extra: Option<&'static str>| -> Value {
            let base: Vec<Vec<&str>> = if tenant.is_some() {
                vec![vec!["tenant"], vec![]]
            } else {
                vec![vec![]]
            };
            Value::from(
                base.into_iter()
                    .map(|mut set| {
                        set.extend(extra);
                        Value::from(set)
                    })
                    .collect::<Vec<Value>>(),
            )
        };
        let fail = u8::from(o.is_failure());
        let mut root = Map::new();
        let auth_failure = json!(u8::from(matches!(o.status, 401 | 403)));
        let values: Vec<(&str, &str, Value)> = match class {
            Class::Scim => vec![
                ("Requests", "Count", json!(1)),
                ("Failures", "Count", json!(fail)),
                ("ServerErrors", "Count", json!(u8::from(o.status >= 500))),
                ("AuthFailures", "Count", auth_failure),
                ("Throttles", "Count", json!(u8::from(o.status == 429))),
                (
                    "Latency",
                    "Milliseconds",
                    json!((o.latency_ms * 100.0).round() / 100.0),
                ),
            ],
            Class::Token => vec![
                ("TokenRequests", "Count", json!(1)),
                ("TokenFailures", "Count", json!(fail)),
            ],
            Class::Unauthenticated => {
                vec![
                    ("Unauthenticated", "Count", json!(1)),
                    ("AuthFailures", "Count", auth_failure),
                ]
            }
        };
        let metrics: Vec<Value> = values
            .iter()
            .map(|(n, u, _)| json!({"Name": n, "Unit": u}))
            .collect();
        let mut directives = vec![
            json!({"Namespace": self.namespace, "Dimensions": dims(None), "Metrics": metrics}),
        ];
        if let Some(f) = failed.filter(|_| class == Class::Scim) {
            let kind = match &f.scim_type {
                Some(t) => format!("{} {t}", f.status),
                None => f.status.to_string(),
            };
            directives.push(json!({"Namespace": self.namespace, "Dimensions": dims(Some("kind")), "Metrics": [{"Name": "FailuresByKind", "Unit": "Count"}]}));
            root.insert("kind".into(), json!(kind));
            root.insert("FailuresByKind".into(), json!(1));
        }
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
        root.insert(
            "tenant".into(),
            json!(tenant.unwrap_or(super::UNATTRIBUTED)),
        );
        root.insert("route".into(), json!(o.route));
        root.insert("status".into(), json!(o.status));
        for (name, _, v) in values {
            root.insert(name.into(), v);
        }
        if let Some(f) = failed {
            root.insert("method".into(), json!(f.method));
            root.insert("path".into(), json!(f.path));
            if let Some(t) = &f.scim_type {
                root.insert("scimType".into(), json!(t));
            }
            root.insert("detail".into(), json!(f.detail));
        }
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RouteKind;

    /// Each directive's metrics are root members, and each dimension set names root members.
    fn check_directives(v: &Value) {
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for m in d["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m} in {v}");
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(v[dim.as_str().unwrap()].is_string(), "{dim} in {v}");
                }
            }
        }
    }

    #[test]
    fn a_successful_request_has_per_tenant_and_total_metrics() {
        let e = Emf::memory("Ns");
        let o = Outcome {
            route: RouteKind::Scim,
            status: 200,
            scim_type: None,
            latency_ms: 1.234,
        };
        let v: Value =
            serde_json::from_str(&e.line(Some("acme"), &o, Class::Scim, None, 1_700_000_000_000))
                .unwrap();
        check_directives(&v);
        let d = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(d.as_array().unwrap().len(), 1);
        assert_eq!(d[0]["Namespace"], "Ns");
        assert_eq!(d[0]["Dimensions"], json!([["tenant"], []]));
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(
            (
                v["tenant"].as_str(),
                v["Requests"].as_u64(),
                v["Failures"].as_u64(),
                v["Latency"].as_f64()
            ),
            (Some("acme"), Some(1), Some(0), Some(1.23))
        );
        assert!(v.get("detail").is_none() && v.get("path").is_none());
    }

    #[test]
    fn a_failure_adds_its_kind_and_an_unattributed_one_only_the_total() {
        let e = Emf::memory("Ns");
        let o = Outcome {
            route: RouteKind::Scim,
            status: 400,
            scim_type: Some("invalidFilter"),
            latency_ms: 1.0,
        };
        let f = FailedRequest {
            at: "t".into(),
            tenant: "(unattributed)".into(),
            method: "GET".into(),
            path: "/x/scim/v2/Users".into(),
            status: 400,
            scim_type: Some("invalidFilter".into()),
            detail: "d".into(),
        };
        let v: Value = serde_json::from_str(&e.line(None, &o, Class::Scim, Some(&f), 1)).unwrap();
        check_directives(&v);
        let d = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(d[0]["Dimensions"], json!([[]]));
        assert_eq!(d[1]["Dimensions"], json!([["kind"]]));
        assert_eq!(
            (
                v["kind"].as_str(),
                v["FailuresByKind"].as_u64(),
                v["scimType"].as_str()
            ),
            (Some("400 invalidFilter"), Some(1), Some("invalidFilter"))
        );
        let t = Outcome {
            route: RouteKind::Token,
            status: 401,
            scim_type: None,
            latency_ms: 1.0,
        };
        let v: Value =
            serde_json::from_str(&e.line(Some("acme"), &t, Class::Token, None, 1)).unwrap();
        check_directives(&v);
        assert_eq!(
            (
                v["TokenRequests"].as_u64(),
                v["TokenFailures"].as_u64(),
                v.get("Requests")
            ),
            (Some(1), Some(1), None)
        );
    }

    /// A refused credential is counted as such, with its path for the refused-credentials query, but in
    /// none of the metrics a tenant's failure ratio, kinds or latency are read from; so is a failed
    /// token-endpoint request (no kind).
    #[test]
    fn unauthenticated_and_token_lines_carry_no_failure_ratio_or_kind() {
        let e = Emf::memory("Ns");
        let o = Outcome {
            route: RouteKind::Scim,
            status: 401,
            scim_type: None,
            latency_ms: 1.0,
        };
        let f = FailedRequest {
            at: "t".into(),
            tenant: "acme".into(),
            method: "GET".into(),
            path: "/acme/scim/v2/Users".into(),
            status: 401,
            scim_type: None,
            detail: "d".into(),
        };
        let v: Value =
            serde_json::from_str(&e.line(Some("acme"), &o, Class::Unauthenticated, Some(&f), 1))
                .unwrap();
        check_directives(&v);
        assert_eq!(
            (
                v["Unauthenticated"].as_u64(),
                v["AuthFailures"].as_u64(),
                v["path"].as_str()
            ),
            (Some(1), Some(1), Some("/acme/scim/v2/Users"))
        );
        for absent in ["Requests", "Failures", "Latency", "kind", "FailuresByKind"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
        assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
        let t = Outcome {
            route: RouteKind::Token,
            status: 401,
            scim_type: None,
            latency_ms: 1.0,
        };
        let v: Value =
            serde_json::from_str(&e.line(Some("acme"), &t, Class::Token, Some(&f), 1)).unwrap();
        assert!(v.get("kind").is_none() && v["TokenFailures"] == 1, "{v}");
    }
}
