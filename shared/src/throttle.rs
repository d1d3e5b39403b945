//! Throttling of guesses at a secret: failed attempts are counted per peer address and in total, in fixed
//! windows. Past either limit, attempts are answered 429 with `Retry-After` **before** the secret is
//! compared or looked up, so a locked-out peer learns nothing from its next guesses. Two users: the
//! operator page's sign-in (`scim-local`: the sign-in form, a wrong bearer token on `/admin/api/` or the
//! management API; a live session cookie is never throttled) and the setup page's link openings (no such
//! link, a wrong secret). In memory, per process: on Lambda each instance counts apart (API Gateway's
//! throttling bounds the whole).
//!
//! A request whose peer address the serving loop does not tell counts under one shared "unknown address"
//! entry: then every such caller shares the per-peer limit.
//!
//! Memory is bounded: at most [`FailureLimits::max_peers`] addresses are tracked; when the table is full
//! of live windows, a new address is counted in the total only.
//!
//! Imports: nothing of the crate.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits (documented in docs/operations.md).
#[derive(Debug, Clone, Copy)]
pub struct FailureLimits {
    /// Failed attempts one address may make per window.
    pub per_peer: u32,
    /// Failed attempts of all addresses together per window.
    pub global: u32,
    pub window: Duration,
    /// Addresses tracked at once.
    pub max_peers: usize,
}

impl Default for FailureLimits {
    fn default() -> Self {
        FailureLimits {
            per_peer: 10,
            global: 100,
            window: Duration::from_secs(300),
            max_peers: 4096,
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    start: Instant,
    failures: u32,
}

impl Bucket {
    fn live(&self, window: Duration, now: Instant) -> bool {
        now.duration_since(self.start) < window
    }
}

struct State {
    global: Option<Bucket>,
    peers: HashMap<IpAddr, Bucket>,
}

pub struct FailureThrottle {
    limits: FailureLimits,
    state: Mutex<State>,
}

/// The entry of callers whose address is not known.
const UNKNOWN: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

impl FailureThrottle {
    pub fn new(limits: FailureLimits) -> Self {
        FailureThrottle {
            limits,
            state: Mutex::new(State {
                global: None,
                peers: HashMap::new(),
            }),
        }
    }

    /// None: the attempt may go ahead. Some(wait): refused; the window that is full ends in `wait`.
    /// `peer` is None when the serving loop does not tell the address (the shared unknown entry).
    pub fn check(&self, peer: Option<IpAddr>) -> Option<Duration> {
        let peer = peer.unwrap_or(UNKNOWN);
        let now = Instant::now();
        let l = self.limits;
        let st = self.state.lock().ok()?;
        let over = |b: Option<&Bucket>, limit: u32| {
            b.filter(|b| b.live(l.window, now) && b.failures >= limit)
                .map(|b| (b.start + l.window).saturating_duration_since(now))
        };
        let by_peer = over(st.peers.get(&peer), l.per_peer);
        let total = over(st.global.as_ref(), l.global);
        by_peer
            .into_iter()
            .chain(total)
            .max()
            .map(|d| d.max(Duration::from_secs(1)))
    }

    /// Count one failed attempt.
    pub fn failed(&self, peer: Option<IpAddr>) {
        let now = Instant::now();
        let window = self.limits.window;
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let bump = |b: &mut Bucket| {
            if !b.live(window, now) {
                *b = Bucket {
                    start: now,
                    failures: 0,
                };
            }
            b.failures = b.failures.saturating_add(1);
        };
        bump(st.global.get_or_insert(Bucket {
            start: now,
            failures: 0,
        }));
        let p = peer.unwrap_or(UNKNOWN);
        if !st.peers.contains_key(&p) && st.peers.len() >= self.limits.max_peers {
            st.peers.retain(|_, b| b.live(window, now));
            if st.peers.len() >= self.limits.max_peers {
                return;
            }
        }
        bump(st.peers.entry(p).or_insert(Bucket {
            start: now,
            failures: 0,
        }));
    }

    /// A correct secret from `peer`: its own failures are forgotten (the total's are not).
    pub fn succeeded(&self, peer: Option<IpAddr>) {
        if let Ok(mut st) = self.state.lock() {
            st.peers.remove(&peer.unwrap_or(UNKNOWN));
        }
    }

    #[cfg(test)]
    fn peers(&self) -> usize {
        self.state.lock().map(|s| s.peers.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn a_peer_is_limited_then_the_total() {
        let t = FailureThrottle::new(FailureLimits {
            per_peer: 2,
            global: 5,
            window: Duration::from_secs(60),
            max_peers: 8,
        });
        for _ in 0..2 {
            assert!(t.check(ip(1)).is_none());
            t.failed(ip(1));
        }
        let wait = t.check(ip(1)).expect("peer 1 is over its limit");
        assert!(
            wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(t.check(ip(2)).is_none(), "another address is not");
        t.failed(ip(2));
        t.failed(ip(3));
        t.failed(ip(4));
        assert!(
            t.check(ip(5)).is_some(),
            "five failures in all: every address waits"
        );
        assert!(t.check(None).is_some());
    }

    #[test]
    fn windows_end_and_success_forgets_the_peer() {
        let t = FailureThrottle::new(FailureLimits {
            per_peer: 1,
            global: 100,
            window: Duration::from_millis(50),
            max_peers: 8,
        });
        t.failed(ip(1));
        assert!(t.check(ip(1)).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.check(ip(1)).is_none(), "the window ended");
        t.failed(ip(2));
        t.succeeded(ip(2));
        assert!(t.check(ip(2)).is_none());
        t.failed(None);
        assert!(
            t.check(None).is_some() && t.check(ip(3)).is_none(),
            "unknown addresses share one entry"
        );
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let t = FailureThrottle::new(FailureLimits {
            per_peer: 1,
            global: 1_000_000,
            window: Duration::from_secs(60),
            max_peers: 16,
        });
        for n in 0..=255u8 {
            t.failed(ip(n));
        }
        assert_eq!(t.peers(), 16);
    }
}
