//! The SCIM client: each request timed and recorded, with the DynamoDB use the server reports.

use crate::record::Recorder;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Instant;

pub(crate) const CALLS_HEADER: &str = "x-scim-dynamodb-calls";
/// `read=<units>, write=<units>`: the capacity DynamoDB reported consumed by the request.
pub(crate) const CAPACITY_HEADER: &str = "x-scim-dynamodb-capacity";

pub(crate) struct Scim {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) auth: String,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// Latency in microseconds and what the server reported about its DynamoDB use.
    pub(crate) us: u32,
    pub(crate) usage: Usage,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Scim {
    pub(crate) async fn req(
        &self,
        rec: &Recorder,
        phase: &str,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let url = format!("{}{}", self.base, path);
        let mut rb = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", &self.auth)
            .header("Accept", "application/scim+json");
        let body_text = body.map(Value::to_string);
        if let Some(b) = &body_text {
            rb = rb
                .header("Content-Type", "application/scim+json")
                .body(b.clone());
        }
        let t0 = Instant::now();
        let (status, text, usage) = match rb.send().await {
            Ok(r) => {
                let st = r.status().as_u16();
                let usage = Usage::of(r.headers());
                match r.text().await {
                    Ok(t) => (st, t, usage),
                    Err(e) => (0, format!("reading the body failed: {e}"), usage),
                }
            }
            Err(e) => (0, format!("request failed: {e}"), Usage::default()),
        };
        let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let ok = (200..300).contains(&status);
        let err = (!ok).then(|| {
            let mut resp = text.clone();
            resp.truncate(800);
            json!({"request": format!("{method} {path}"), "body": body_text.as_deref().map(|b| b.chars().take(800).collect::<String>()),
                   "status": status, "response": resp})
        });
        rec.record(phase, op, us, status, usage, err);
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            us,
            usage,
        }
    }
}

/// What the server reported about one request's DynamoDB use (headers it sends when
/// `SCIM_EXPOSE_CALL_COUNT=1`; absent for other servers).
#[derive(Default, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) calls: Option<u32>,
    pub(crate) capacity: Option<(f64, f64)>,
}

impl Usage {
    pub(crate) fn of(h: &reqwest::header::HeaderMap) -> Usage {
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let capacity = text(CAPACITY_HEADER).and_then(|v| {
            let unit = |k: &str| {
                v.split(", ")
                    .find_map(|p| p.strip_prefix(k))
                    .and_then(|n| n.parse::<f64>().ok())
            };
            Some((unit("read=")?, unit("write=")?))
        });
        Usage {
            calls: text(CALLS_HEADER).and_then(|v| v.parse().ok()),
            capacity,
        }
    }
}

/// Percent-encode a query value (everything but unreserved characters), as Entra does (`%20`, not `+`).
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// xorshift64*: a tiny deterministic generator (one per worker).
pub(crate) struct Rng(u64);
impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
