//! One tenant's figures, kept in process: counts since start, a per-minute series of the last hour, latency
//! histograms of the last hour (5-minute slots), failures by kind, the last failed requests, and apart
//! from them the last unauthenticated and failed token-endpoint requests.
//!
//! Hand-written rather than a metrics crate: what is needed is small (fixed arrays under one short lock per
//! tenant) and must answer "the last hour" for one tenant, which the exporter-oriented crates do not keep.
//!
//! Imports: nothing of the crate; [`super`]'s types only.

use super::{
    Class, Counts, FailedRequest, KindCount, LatencySummary, MinutePoint, Outcome,
    UNAUTHENTICATED_KEPT,
};
use std::collections::{BTreeMap, VecDeque};

/// Minutes in the series (the chart's hour).
pub const MINUTES: usize = 60;
/// Latency slots of [`SLOT_MINUTES`] minutes: the last hour and the current slot.
const SLOTS: usize = 13;
const SLOT_MINUTES: u64 = 5;

/// Latency buckets: the first holds up to 50 µs, each next one's bound is 2^(1/4) ≈ 1.19 times the last
/// (so a percentile read from a bucket's bound is at most 19 % above the truth), the last everything over
/// about 170 s.
const BUCKETS: usize = 88;
const FIRST_BOUND_US: f64 = 50.0;

fn bucket(latency_us: f64) -> usize {
    if latency_us <= FIRST_BOUND_US {
        return 0;
    }
    (((latency_us / FIRST_BOUND_US).log2() * 4.0).ceil() as usize).min(BUCKETS - 1)
}

/// Upper bound of bucket `i`, in milliseconds.
fn bound_ms(i: usize) -> f64 {
    FIRST_BOUND_US * 2f64.powf(i as f64 / 4.0) / 1000.0
}

#[derive(Clone)]
struct Histogram {
    counts: [u32; BUCKETS],
    max_ms: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            max_ms: 0.0,
        }
    }
}

impl Histogram {
    fn add(&mut self, latency_ms: f64) {
        let i = bucket(latency_ms * 1000.0);
        self.counts[i] = self.counts[i].saturating_add(1);
        self.max_ms = self.max_ms.max(latency_ms);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// The bound of the bucket holding the `q` quantile, capped at the largest value seen.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(round2(bound_ms(i).min(self.max_ms)));
            }
        }
        Some(round2(self.max_ms))
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Clone, Default)]
struct Minute {
    /// Minutes since the Unix epoch this slot holds; a slot of another minute counts as empty.
    minute: u64,
    counts: Counts,
    latency_ms_sum: f64,
}

#[derive(Clone, Default)]
struct Slot {
    /// `minute / SLOT_MINUTES` of the slot's start.
    slot: u64,
    hist: Histogram,
}

/// Everything kept for one tenant (or for all of them, or for requests no tenant can be named for).
pub(super) struct Window {
    total: Counts,
    minutes: Vec<Minute>,
    slots: Vec<Slot>,
    kinds: BTreeMap<(u16, &'static str), u64>,
    failures: VecDeque<FailedRequest>,
    failures_kept: usize,
    /// Unauthenticated and failed token-endpoint requests, apart from `failures` ([`Class`]).
    unauthenticated: VecDeque<FailedRequest>,
    unauthenticated_kept: usize,
}

/// Estimated heap bytes of one kept [`FailedRequest`] beyond its own struct: a typical one (time 20,
/// tenant up to 63, method, a path of 40–60, `scimType`, a redacted detail of 100–150 bytes, allocator
/// rounding). The worst case — a 200-character path and a 300-character detail of 4-byte characters — is
/// about 1.7 KB; see `docs/operations.md`, "Memory bounds".
pub(super) const FAILED_REQUEST_HEAP_BYTES: usize = 256;

/// Keep `f` as the newest of at most `kept`.
fn keep(list: &mut VecDeque<FailedRequest>, kept: usize, f: &FailedRequest) {
    if kept == 0 {
        return;
    }
    while list.len() >= kept {
        list.pop_front();
    }
    list.push_back(f.clone());
}

impl Window {
    /// Estimated bytes of one window once its lists are full (what a tenant costs at most, for typical
    /// failed requests): the struct, its minute and slot arrays, the kept failed and unauthenticated
    /// requests, a few failure kinds, and the tenant map's entry (name, `Arc`, `Mutex`, LRU links). At
    /// 50 failures kept: 39.6 KB; the fixed part (no failure kept) 11.1 KB.
    pub(super) fn estimated_bytes(failures_kept: usize) -> usize {
        use std::mem::size_of;
        let failed = size_of::<FailedRequest>() + FAILED_REQUEST_HEAP_BYTES;
        let kept = failures_kept + failures_kept.min(UNAUTHENTICATED_KEPT);
        size_of::<Window>()
            + MINUTES * size_of::<Minute>()
            + SLOTS * size_of::<Slot>()
            + kept * failed
            + 8 * 64 // failure kinds: BTreeMap entries
            + 256 // the map's entry: key, Arc and Mutex headers, LRU links
    }

    pub(super) fn new(failures_kept: usize) -> Self {
        Window {
            total: Counts::default(),
            minutes: vec![Minute::default(); MINUTES],
            slots: vec![Slot::default(); SLOTS],
            kinds: BTreeMap::new(),
            // Not reserved ahead: most tenants never fill it, and 50 empty slots are 8 KB per tenant.
            failures: VecDeque::new(),
            failures_kept,
            unauthenticated: VecDeque::new(),
            unauthenticated_kept: failures_kept.min(UNAUTHENTICATED_KEPT),
        }
    }

    /// Count one request that ended at `minute` (minutes since the epoch), as `class` says.
    pub(super) fn add(
        &mut self,
        o: &Outcome,
        class: Class,
        minute: u64,
        failed: Option<&FailedRequest>,
    ) {
        self.total.add(o, class);
        let m = &mut self.minutes[(minute % MINUTES as u64) as usize];
        if m.minute != minute {
            *m = Minute {
                minute,
                ..Minute::default()
            };
        }
        m.counts.add(o, class);
        if class != Class::Scim {
            if let Some(f) = failed {
                keep(&mut self.unauthenticated, self.unauthenticated_kept, f);
            }
            return;
        }
        m.latency_ms_sum += o.latency_ms;
        let slot_no = minute / SLOT_MINUTES;
        let s = &mut self.slots[(slot_no % SLOTS as u64) as usize];
        if s.slot != slot_no {
            *s = Slot {
                slot: slot_no,
                hist: Histogram::default(),
            };
        }
        s.hist.add(o.latency_ms);
        if o.is_failure() {
            *self
                .kinds
                .entry((o.status, o.scim_type.unwrap_or("")))
                .or_insert(0) += 1;
        }
        if let Some(f) = failed {
            keep(&mut self.failures, self.failures_kept, f);
        }
    }

    pub(super) fn total(&self) -> Counts {
        self.total
    }

    /// The minutes `now - MINUTES + 1 ..= now`, oldest first, empty minutes included.
    pub(super) fn series(&self, now_minute: u64) -> Vec<MinutePoint> {
        (0..MINUTES as u64)
            .rev()
            .map(|back| {
                let minute = now_minute.saturating_sub(back);
                let m = &self.minutes[(minute % MINUTES as u64) as usize];
                let (counts, sum) = if m.minute == minute {
                    (m.counts, m.latency_ms_sum)
                } else {
                    (Counts::default(), 0.0)
                };
                let avg = (counts.requests > 0).then(|| round2(sum / counts.requests as f64));
                MinutePoint {
                    minute_start: minute * 60,
                    counts,
                    latency_avg_ms: avg,
                }
            })
            .collect()
    }

    /// Sum of the last `minutes` minutes up to `now_minute`.
    pub(super) fn last(&self, now_minute: u64, minutes: u64) -> Counts {
        let mut c = Counts::default();
        for m in &self.minutes {
            if m.minute + minutes > now_minute && m.minute <= now_minute {
                c.merge(&m.counts);
            }
        }
        c
    }

    /// p50 and p99 of the SCIM requests of the last hour (the 5-minute slots ending with the current one).
    pub(super) fn latency(&self, now_minute: u64) -> LatencySummary {
        let now_slot = now_minute / SLOT_MINUTES;
        let mut h = Histogram::default();
        for s in &self.slots {
            if s.slot + (SLOTS as u64) > now_slot && s.slot <= now_slot {
                h.merge(&s.hist);
            }
        }
        LatencySummary {
            samples: h.total(),
            p50_ms: h.quantile(0.50),
            p99_ms: h.quantile(0.99),
            max_ms: (h.total() > 0).then_some(round2(h.max_ms)),
        }
    }

    /// Failures by status and `scimType` since start, most frequent first.
    pub(super) fn kinds(&self) -> Vec<KindCount> {
        let mut v: Vec<KindCount> = self
            .kinds
            .iter()
            .map(|((status, t), n)| KindCount {
                status: *status,
                scim_type: (!t.is_empty()).then(|| t.to_string()),
                count: *n,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.status.cmp(&b.status)));
        v
    }

    /// The last failed requests, newest first.
    pub(super) fn failures(&self) -> Vec<FailedRequest> {
        self.failures.iter().rev().cloned().collect()
    }

    /// The last unauthenticated and failed token-endpoint requests, newest first.
    pub(super) fn unauthenticated(&self) -> Vec<FailedRequest> {
        self.unauthenticated.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RouteKind;

    fn outcome(status: u16, latency_ms: f64) -> Outcome {
        Outcome {
            route: RouteKind::Scim,
            status,
            scim_type: None,
            latency_ms,
        }
    }

    #[test]
    fn buckets_bound_their_values_within_a_fifth() {
        for us in [1.0, 50.0, 51.0, 700.0, 1_000.0, 12_345.0, 3_000_000.0] {
            let b = bound_ms(bucket(us)) * 1000.0;
            assert!(
                b >= us && b <= us.max(FIRST_BOUND_US) * 1.19 + 1e-6,
                "{us} µs → bound {b}"
            );
        }
        assert_eq!(bucket(1e12), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for i in 1..=100 {
            h.add(i as f64); // 1 … 100 ms
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((50.0..=50.0 * 1.19).contains(&p50), "{p50}");
        assert!((99.0..=100.0).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn minutes_roll_over_and_old_ones_drop_out() {
        let mut w = Window::new(2);
        w.add(&outcome(200, 1.0), Class::Scim, 1000, None);
        w.add(&outcome(400, 3.0), Class::Scim, 1000, None);
        w.add(&outcome(200, 2.0), Class::Scim, 1030, None);
        assert_eq!(w.last(1030, 60).requests, 3);
        assert_eq!(w.last(1030, 5).requests, 1);
        // 60 minutes later the slot of minute 1000 is reused for minute 1060.
        w.add(&outcome(200, 2.0), Class::Scim, 1060, None);
        assert_eq!(w.last(1060, 60).requests, 2);
        let series = w.series(1060);
        assert_eq!(series.len(), MINUTES);
        assert_eq!(series.last().unwrap().counts.requests, 1);
        assert_eq!(series.iter().map(|m| m.counts.requests).sum::<u64>(), 2);
        assert_eq!(w.total().requests, 4);
        assert_eq!(w.total().failures, 1);
        assert_eq!(w.kinds()[0].status, 400);
    }

    #[test]
    fn the_ring_buffer_keeps_the_newest() {
        let mut w = Window::new(2);
        for i in 0..5u16 {
            let f = FailedRequest {
                at: i.to_string(),
                tenant: "t".into(),
                method: "GET".into(),
                path: "/".into(),
                status: 400 + i,
                scim_type: None,
                detail: String::new(),
            };
            w.add(&outcome(400 + i, 1.0), Class::Scim, 10, Some(&f));
        }
        let kept: Vec<u16> = w.failures().iter().map(|f| f.status).collect();
        assert_eq!(kept, vec![404, 403]);
    }
}
