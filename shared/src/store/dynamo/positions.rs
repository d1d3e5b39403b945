//! Position checkpoints for index paging (`startIndex`), so that a sequential walk costs the same per
//! page at any depth (see docs/store.md, "Index paging").
//!
//! A checkpoint says: in the id-ordered list of a tenant's resources of one type, the item at 1-based
//! position `p` has id `x`. A page asking for `startIndex = N` then starts the Query right after `x`
//! (`ExclusiveStartKey`) for the nearest checkpoint with `p ≤ N − 1` and skips only the `N − 1 − p` items
//! in between, instead of all `N − 1`. Each page served teaches the checkpoint of its last item, which is
//! exactly what the next page of a sequential walk needs.
//!
//! Positions hold only while no resource of that type is created or deleted in the tenant. Every create
//! and delete bumps a change sequence on the counter shard it updates anyway, and the list reads the
//! shards anyway (for `totalResults`), so each request knows the sum of the sequences, `seq`, for free:
//! checkpoints are kept per `seq`, and a request that sees another `seq` than the one they were learned
//! at never uses them (a larger one replaces them).
//!
//! Per process, bounded: at most [`MAX_LISTS`] (tenant, type) lists, the least recently used dropped
//! first, and at most [`MAX_MARKS`] checkpoints per list — when full, every other one is dropped
//! (coverage stays even, gaps double) and the newest is always kept, so a sequential walk always finds
//! the checkpoint it needs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Most (tenant, resource type) lists kept per process.
pub const MAX_LISTS: usize = 64;
/// Most checkpoints kept per list (a 36-character id each: ≈ 100 bytes with the map's overhead).
pub const MAX_MARKS: usize = 1024;

#[derive(Debug, Default)]
struct List {
    /// Change sequence and total the checkpoints were learned at.
    seq: u64,
    total: usize,
    /// Last use, for least-recently-used eviction of whole lists.
    used: u64,
    /// 1-based position → id of the item there.
    marks: BTreeMap<usize, String>,
}

#[derive(Debug, Default)]
struct Inner {
    lists: HashMap<(String, &'static str), List>,
    clock: u64,
}

/// Position checkpoints of every (tenant, resource type), shared by the clones of a store.
#[derive(Debug)]
pub struct Positions {
    inner: Mutex<Inner>,
    max_lists: usize,
    max_marks: usize,
}

impl Default for Positions {
    fn default() -> Self {
        Positions::new(MAX_LISTS, MAX_MARKS)
    }
}

impl Positions {
    pub fn new(max_lists: usize, max_marks: usize) -> Self {
        Positions {
            inner: Mutex::new(Inner::default()),
            max_lists: max_lists.max(1),
            max_marks: max_marks.max(2),
        }
    }

    /// The checkpoint `(position, id)` with the largest position `≤ at`, learned at change sequence `seq`
    /// and total `total`.
    pub fn nearest(
        &self,
        tenant: &str,
        rt: &'static str,
        seq: u64,
        total: usize,
        at: usize,
    ) -> Option<(usize, String)> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let list = inner.lists.get_mut(&(tenant.to_string(), rt))?;
        list.used = now;
        if (list.seq, list.total) != (seq, total) {
            return None;
        }
        list.marks
            .range(..=at)
            .next_back()
            .map(|(p, id)| (*p, id.clone()))
    }

    /// Remember that at change sequence `seq` and total `total` the item at 1-based `position` has id
    /// `id`. Checkpoints of an older sequence (or of another total at the same sequence) are dropped; one
    /// from an older sequence than those kept is ignored.
    pub fn learn(
        &self,
        tenant: &str,
        rt: &'static str,
        seq: u64,
        total: usize,
        position: usize,
        id: &str,
    ) {
        if position == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let key = (tenant.to_string(), rt);
        if !inner.lists.contains_key(&key) && inner.lists.len() >= self.max_lists {
            if let Some(oldest) = inner
                .lists
                .iter()
                .min_by_key(|(_, l)| l.used)
                .map(|(k, _)| k.clone())
            {
                inner.lists.remove(&oldest);
            }
        }
        let list = inner.lists.entry(key).or_insert_with(|| List {
            seq,
            total,
            ..List::default()
        });
        list.used = now;
        if seq < list.seq {
            return;
        }
        if (seq, total) != (list.seq, list.total) {
            // A newer sequence; or the same with another total: a writer that does not bump the sequence
            // (an older version of this code, during a deployment) changed the list.
            (list.seq, list.total) = (seq, total);
            list.marks.clear();
        }
        if list.marks.len() >= self.max_marks && !list.marks.contains_key(&position) {
            let odd: Vec<usize> = list.marks.keys().skip(1).step_by(2).copied().collect();
            for p in odd {
                list.marks.remove(&p);
            }
        }
        list.marks.insert(position, id.to_string());
    }

    /// Checkpoints held in all lists (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.lock().lists.values().map(|l| l.marks.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map holds no invariant a panic elsewhere could break: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_is_the_largest_position_at_or_below() {
        let p = Positions::default();
        assert_eq!(p.nearest("t", "User", 7, 300, 500), None);
        p.learn("t", "User", 7, 300, 100, "a");
        p.learn("t", "User", 7, 300, 200, "b");
        assert_eq!(p.nearest("t", "User", 7, 300, 99), None);
        assert_eq!(p.nearest("t", "User", 7, 300, 100), Some((100, "a".into())));
        assert_eq!(p.nearest("t", "User", 7, 300, 199), Some((100, "a".into())));
        assert_eq!(
            p.nearest("t", "User", 7, 300, 10_000),
            Some((200, "b".into()))
        );
    }

    #[test]
    fn another_sequence_invalidates() {
        let p = Positions::default();
        p.learn("t", "User", 7, 300, 100, "a");
        assert_eq!(
            p.nearest("t", "User", 8, 300, 150),
            None,
            "a create or delete happened since"
        );
        assert_eq!(p.nearest("t", "User", 6, 300, 150), None);
        // A request that still read the older sequence does not overwrite newer checkpoints.
        p.learn("t", "User", 8, 300, 300, "c");
        p.learn("t", "User", 7, 300, 200, "b");
        assert_eq!(
            p.nearest("t", "User", 8, 300, 1000),
            Some((300, "c".into()))
        );
        assert_eq!(p.nearest("t", "User", 7, 300, 1000), None);
        assert_eq!(p.len(), 1, "the sequence-7 checkpoint went with the change");
    }

    #[test]
    fn another_total_at_the_same_sequence_invalidates() {
        let p = Positions::default();
        p.learn("t", "User", 7, 300, 100, "a");
        assert_eq!(
            p.nearest("t", "User", 7, 301, 150),
            None,
            "a writer that did not bump the sequence"
        );
        p.learn("t", "User", 7, 301, 120, "b");
        assert_eq!(p.nearest("t", "User", 7, 301, 150), Some((120, "b".into())));
        assert_eq!(p.nearest("t", "User", 7, 300, 150), None);
    }

    #[test]
    fn tenants_and_types_are_separate() {
        let p = Positions::default();
        p.learn("t", "User", 1, 300, 100, "a");
        assert_eq!(p.nearest("u", "User", 1, 300, 100), None);
        assert_eq!(p.nearest("t", "Group", 1, 300, 100), None);
        p.learn("t", "Group", 1, 300, 50, "g");
        assert_eq!(p.nearest("t", "Group", 1, 300, 100), Some((50, "g".into())));
        assert_eq!(p.nearest("t", "User", 1, 300, 100), Some((100, "a".into())));
    }

    #[test]
    fn a_full_list_thins_out_and_keeps_the_newest() {
        let p = Positions::new(4, 8);
        for i in 1..=1000 {
            p.learn("t", "User", 1, 300, i * 100, &format!("id{i}"));
            // A sequential walk always finds the checkpoint of the page before.
            assert_eq!(
                p.nearest("t", "User", 1, 300, i * 100),
                Some((i * 100, format!("id{i}")))
            );
            assert!(p.len() <= 8);
        }
        // Older positions are still covered, with wider gaps.
        let (pos, _) = p
            .nearest("t", "User", 1, 300, 50_000)
            .expect("a checkpoint below 50,000");
        assert!(pos <= 50_000 && pos > 0);
    }

    #[test]
    fn least_recently_used_list_goes_first() {
        let p = Positions::new(2, 8);
        p.learn("a", "User", 1, 300, 10, "x");
        p.learn("b", "User", 1, 300, 10, "y");
        assert!(p.nearest("a", "User", 1, 300, 10).is_some());
        p.learn("c", "User", 1, 300, 10, "z");
        assert!(
            p.nearest("b", "User", 1, 300, 10).is_none(),
            "b was the least recently used"
        );
        assert!(p.nearest("a", "User", 1, 300, 10).is_some());
        assert!(p.nearest("c", "User", 1, 300, 10).is_some());
    }

    #[test]
    fn position_zero_is_not_a_checkpoint() {
        let p = Positions::default();
        p.learn("t", "User", 1, 300, 0, "x");
        assert!(p.is_empty());
    }
}
