//! Recording: each operation's latencies, statuses, DynamoDB calls and capacity, per phase.

use crate::client::Usage;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct OpRec {
    pub(crate) phase: String,
    pub(crate) lat_us: Vec<u32>,
    pub(crate) errors: u64,
    pub(crate) statuses: BTreeMap<String, u64>,
    pub(crate) calls: Vec<u32>,
    /// (read, write) capacity units per answered request.
    pub(crate) capacity: Vec<(f64, f64)>,
    pub(crate) first_error: Option<Value>,
}

#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) ops: Mutex<Vec<(String, OpRec)>>,
    pub(crate) phases: Mutex<Vec<(String, f64)>>,
}

impl Recorder {
    pub(crate) fn with<R>(&self, phase: &str, op: &str, f: impl FnOnce(&mut OpRec) -> R) -> R {
        let mut ops = self.ops.lock().unwrap();
        let i = match ops.iter().position(|(n, _)| n == op) {
            Some(i) => i,
            None => {
                ops.push((
                    op.to_string(),
                    OpRec {
                        phase: phase.to_string(),
                        ..Default::default()
                    },
                ));
                ops.len() - 1
            }
        };
        f(&mut ops[i].1)
    }

    pub(crate) fn record(
        &self,
        phase: &str,
        op: &str,
        us: u32,
        status: u16,
        usage: Usage,
        err: Option<Value>,
    ) {
        self.with(phase, op, |r| {
            r.lat_us.push(us);
            *r.statuses
                .entry(if status == 0 {
                    "transport".into()
                } else {
                    status.to_string()
                })
                .or_default() += 1;
            if let Some(c) = usage.calls {
                r.calls.push(c);
            }
            if let Some(c) = usage.capacity {
                r.capacity.push(c);
            }
            if let Some(e) = err {
                r.errors += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(e);
                }
            }
        })
    }

    /// A 2xx answer that is wrong all the same (no id, a filter that found the wrong number of users).
    pub(crate) fn mark_error(&self, phase: &str, op: &str, detail: Value) {
        self.with(phase, op, |r| {
            r.errors += 1;
            if r.first_error.is_none() {
                r.first_error = Some(detail);
            }
        })
    }

    pub(crate) fn end_phase(&self, name: &str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        self.phases.lock().unwrap().push((name.to_string(), secs));
        eprintln!("  phase {name}: {secs:.1} s");
    }
}

pub(crate) fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

pub(crate) fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
