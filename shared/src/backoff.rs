//! The one backoff every retry loop of the crate (and of the functions) waits with: the wait before the
//! `n`-th retry is `first · 2^(n-1)`, capped at `max`, optionally jittered to a uniform draw in
//! `[d/2, 3d/2]` so that writers contending for one item do not retry in step.
//!
//! Written here rather than taken from a crate (`backoff`, `backon`): each loop owns its own bound on
//! attempts and its own decision of what to retry, and needs only the delay; twenty lines of arithmetic
//! are easier to read at the call site than a retry framework's policy objects.
//!
//! Imports nothing of the crate.

use std::time::Duration;

/// A capped exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub first: Duration,
    /// No wait is longer (before jitter).
    pub max: Duration,
    /// Draw each wait uniformly from `[d/2, 3d/2]` instead of `d`.
    pub jitter: bool,
}

impl Backoff {
    /// `first`, doubling up to `max`, without jitter.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            jitter: false,
        }
    }

    /// The same, jittered.
    pub const fn jittered(self) -> Self {
        Backoff {
            jitter: true,
            ..self
        }
    }

    /// The wait before retry `n` (1 for the first retry; 0 waits nothing).
    pub fn delay(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let doubled = self
            .first
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(self.max);
        if !self.jitter {
            return doubled;
        }
        let ms = doubled.as_millis().min(u128::from(u64::MAX)) as u64;
        Duration::from_millis(ms / 2 + rand::random_range(0..=ms))
    }

    /// Sleep [`Self::delay`]`(n)`.
    pub async fn wait(&self, n: u32) {
        let d = self.delay(n);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_first_and_stops_at_max() {
        let b = Backoff::new(10 * MS, 640 * MS);
        let got: Vec<u128> = (0..10).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(got, [0, 10, 20, 40, 80, 160, 320, 640, 640, 640]);
        // No overflow however many retries.
        assert_eq!(b.delay(u32::MAX), 640 * MS);
        let long = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(long.delay(40), Duration::from_secs(1 << 20));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let b = Backoff::new(10 * MS, 160 * MS).jittered();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let d = b.delay(3).as_millis();
            assert!((20..=60).contains(&d), "{d}");
            seen.insert(d);
        }
        // Actually random: many distinct waits.
        assert!(seen.len() > 10, "{seen:?}");
        assert_eq!(b.delay(0), Duration::ZERO);
    }
}
