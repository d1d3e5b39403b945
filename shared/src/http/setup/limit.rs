//! Throttling of link guessing on the setup page: failed link openings (no such link, a wrong secret) are
//! counted per peer address and in total, in fixed windows; past either limit an opening is answered 429
//! with `Retry-After` **before** any link is read. The same rule as the operator page's sign-in throttle
//! (`scim-local`'s `admin/limit.rs`, which the core cannot import); kept minimal here. In memory, per
//! process: on Lambda each instance counts apart (API Gateway's throttling bounds the whole).
//!
//! Imports: nothing of the crate.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct GuessLimits {
    pub per_peer: u32,
    pub global: u32,
    pub window: Duration,
    pub max_peers: usize,
}

impl Default for GuessLimits {
    fn default() -> Self {
        GuessLimits {
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

struct State {
    global: Option<Bucket>,
    peers: HashMap<IpAddr, Bucket>,
}

pub struct GuessThrottle {
    limits: GuessLimits,
    state: Mutex<State>,
}

const UNKNOWN: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

impl GuessThrottle {
    pub fn new(limits: GuessLimits) -> Self {
        GuessThrottle {
            limits,
            state: Mutex::new(State {
                global: None,
                peers: HashMap::new(),
            }),
        }
    }

    /// None: go ahead. Some(wait): refused until the full window ends.
    pub fn check(&self, peer: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let l = self.limits;
        let st = self.state.lock().ok()?;
        let over = |b: Option<&Bucket>, limit: u32| {
            b.filter(|b| now.duration_since(b.start) < l.window && b.failures >= limit)
                .map(|b| (b.start + l.window).saturating_duration_since(now))
        };
        over(st.peers.get(&peer.unwrap_or(UNKNOWN)), l.per_peer)
            .into_iter()
            .chain(over(st.global.as_ref(), l.global))
            .max()
            .map(|d| d.max(Duration::from_secs(1)))
    }

    /// Count one failed opening.
    pub fn failed(&self, peer: Option<IpAddr>) {
        let now = Instant::now();
        let window = self.limits.window;
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let bump = |b: &mut Bucket| {
            if now.duration_since(b.start) >= window {
                *b = Bucket {
                    start: now,
                    failures: 0,
                };
            }
            b.failures = b.failures.saturating_add(1);
        };
        let fresh = Bucket {
            start: now,
            failures: 0,
        };
        bump(st.global.get_or_insert(fresh));
        let p = peer.unwrap_or(UNKNOWN);
        if !st.peers.contains_key(&p) && st.peers.len() >= self.limits.max_peers {
            st.peers.retain(|_, b| now.duration_since(b.start) < window);
            if st.peers.len() >= self.limits.max_peers {
                return;
            }
        }
        bump(st.peers.entry(p).or_insert(fresh));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_then_everyone_waits() {
        let t = GuessThrottle::new(GuessLimits {
            per_peer: 2,
            global: 3,
            window: Duration::from_secs(60),
            max_peers: 4,
        });
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        t.failed(a);
        assert!(t.check(a).is_none());
        t.failed(a);
        assert!(t.check(a).is_some() && t.check(b).is_none());
        t.failed(b);
        assert!(t.check(b).is_some(), "three in all");
    }
}
