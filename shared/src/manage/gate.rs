//! The tenant gate: whether a tenant's SCIM and token requests are served, by its lifecycle state in the
//! register (`TenantStore::tenant_state`). A paused tenant is answered 503 with `Retry-After` (Entra
//! retries it and nothing changes); a tenant being deleted is refused with 403 from the moment its
//! deletion began.
//!
//! The state is read at most once per tenant per `SCIM_TENANT_STATE_SECS` (default 5) per process
//! (one eventually consistent GetItem, 0.5 RCU) and kept in a bounded cache (`SCIM_TENANT_STATE_CACHE`,
//! default 20,000 tenants, about 100 bytes each; [`crate::cache::TimedLru`]: when full, the least
//! recently used tenant goes first). A change made through this process's `Manager` is seen at once; one made elsewhere (another
//! Lambda instance) within the TTL — which is why offboarding waits [`TenantGate::ttl`] before it
//! deletes anything and sweeps until a pass finds nothing. The base URL's directory (`default`) is
//! not in the register and is always served. Imports `store` and `cache`.

use crate::cache::TimedLru;
use crate::store::{StoreError, TenantState, TenantStore};
use std::time::Duration;

pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
pub const DEFAULT_CAPACITY: usize = 20_000;
/// What a paused tenant's requests are told to wait before retrying, in seconds.
pub const PAUSED_RETRY_AFTER_SECS: u32 = 300;

/// Why a tenant's request is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    Paused,
    Deleting,
    /// The register could not be read.
    Store(StoreError),
}

pub struct TenantGate {
    ttl: Duration,
    /// tenant → its state (None when unregistered), for `ttl` after it was read.
    seen: TimedLru<String, Option<TenantState>>,
}

impl Default for TenantGate {
    fn default() -> Self {
        TenantGate::new(DEFAULT_TTL, DEFAULT_CAPACITY)
    }
}

impl TenantGate {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TenantGate {
            ttl,
            seen: TimedLru::new(capacity, ttl),
        }
    }

    /// From `SCIM_TENANT_STATE_SECS` (0–60) and `SCIM_TENANT_STATE_CACHE` (100–1,000,000).
    pub fn from_env() -> Result<Self, String> {
        let num =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match std::env::var(
                name,
            ) {
                Ok(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        format!(
                            "{name} must be {} to {}, not {v:?}",
                            range.start(),
                            range.end()
                        )
                    }),
                Err(_) => Ok(default),
            };
        Ok(TenantGate::new(
            Duration::from_secs(num(
                "SCIM_TENANT_STATE_SECS",
                DEFAULT_TTL.as_secs(),
                0..=60,
            )?),
            num(
                "SCIM_TENANT_STATE_CACHE",
                DEFAULT_CAPACITY as u64,
                100..=1_000_000,
            )? as usize,
        ))
    }

    /// How long a state change made elsewhere may go unseen here.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Entries held now (for tests and the bound's measurement).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remember `state` for `tenant` (a change made in this process).
    pub fn set(&self, tenant: &str, state: Option<TenantState>) {
        self.seen.put(tenant.to_string(), state);
    }

    fn cached(&self, tenant: &str) -> Option<Option<TenantState>> {
        self.seen.get(tenant)
    }

    /// Whether `tenant`'s requests are served now.
    pub async fn check(&self, tenant: &str, store: &dyn TenantStore) -> Result<(), Closed> {
        if tenant == crate::auth::DEFAULT_TENANT {
            return Ok(());
        }
        let state = match self.cached(tenant) {
            Some(s) => s,
            None => {
                let s = store.tenant_state(tenant).await.map_err(Closed::Store)?;
                self.set(tenant, s);
                s
            }
        };
        match state {
            Some(TenantState::Paused) => Err(Closed::Paused),
            Some(TenantState::Deleting) => Err(Closed::Deleting),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_capacity_and_keeps_the_newest() {
        let g = TenantGate::new(Duration::from_secs(60), 100);
        for i in 0..1000 {
            g.set(&format!("t{i}"), Some(TenantState::Active));
            assert!(g.len() <= 100, "{} entries after {i}", g.len());
        }
        assert_eq!(g.cached("t999"), Some(Some(TenantState::Active)));
        assert_eq!(g.cached("t0"), None);
    }

    #[test]
    fn an_entry_expires_after_the_ttl() {
        let g = TenantGate::new(Duration::from_millis(0), 10);
        g.set("a", Some(TenantState::Paused));
        assert_eq!(g.cached("a"), None);
    }
}
