//! Whether a tenant's events are still wanted, for the events log's writers (the local consumer, the
//! events Lambda): not for a tenant being deleted (`deleting` in the register), nor events of a tenant
//! that was offboarded (its `OFFBOARDED` receipt) written before the deletion finished. A consumer that
//! lags beyond offboarding's settle wait would otherwise log the deletion's own `*.deleted` events into
//! a partition offboarding has already emptied, where they would stay until their TTL.
//!
//! The rule, per tenant:
//! - in the register and `deleting`: none of its events;
//! - else, with a receipt (the latest): only events after the receipt's `finished` (a tenant created
//!   again under the same id; an unfinished receipt without a register item: none);
//! - else (no receipt: a live tenant, registered or not — tenants made before the register existed, or
//!   by a token alone, are not in it): all of them.
//!
//! Cost: at most two reads (the register's GetItem, the receipt's Query of one item) per tenant per
//! [`TTL`], whatever the number of records; the verdicts are cached for [`TTL`] (shorter than the settle
//! wait, `manage::gate::DEFAULT_TTL` plus the grace, so a tenant's deletion is seen before its first batch)
//! and at most [`CAPACITY`] tenants (the cache is emptied when full).

use crate::store::dynamo::DynamoStore;
use crate::store::{OffboardStore, StoreError, TenantState, TenantStore};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long a tenant's verdict is kept.
pub const TTL: Duration = Duration::from_secs(5);
/// Most tenants whose verdicts are kept.
pub const CAPACITY: usize = 4096;

/// What the register and the receipts say of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Log every event.
    Live,
    /// Being deleted: log none.
    Deleting,
    /// Offboarded: log only events after this time (`None`: the deletion did not finish, log none).
    OffboardedAt(Option<OffsetDateTime>),
}

impl Fate {
    /// Whether an event of this tenant written at `time` (RFC 3339) is wanted. An event whose time does
    /// not parse is kept (logged rather than lost), except while the tenant is being deleted.
    pub fn wants(&self, time: &str) -> bool {
        match self {
            Fate::Live => true,
            Fate::Deleting | Fate::OffboardedAt(None) => false,
            Fate::OffboardedAt(Some(finished)) => OffsetDateTime::parse(time, &Rfc3339)
                .map(|t| t > *finished)
                .unwrap_or(true),
        }
    }
}

pub struct Owners {
    store: DynamoStore,
    cache: Mutex<HashMap<String, (Instant, Fate)>>,
}

impl Owners {
    pub fn new(store: &DynamoStore) -> Self {
        Owners {
            store: store.clone(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `tenant`'s fate: cached, else read (the register, then its latest receipt).
    pub async fn fate(&self, tenant: &str) -> Result<Fate, StoreError> {
        if let Ok(c) = self.cache.lock() {
            if let Some((at, fate)) = c.get(tenant) {
                if at.elapsed() < TTL {
                    return Ok(fate.clone());
                }
            }
        }
        let fate = self.read(tenant).await?;
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CAPACITY && !c.contains_key(tenant) {
                c.clear();
            }
            c.insert(tenant.to_string(), (Instant::now(), fate.clone()));
        }
        Ok(fate)
    }

    async fn read(&self, tenant: &str) -> Result<Fate, StoreError> {
        let registered = self.store.tenant_state(tenant).await?;
        if registered == Some(TenantState::Deleting) {
            return Ok(Fate::Deleting);
        }
        let Some(receipt) = self.store.latest_offboard(tenant).await? else {
            return Ok(Fate::Live);
        };
        let finished = receipt
            .finished
            .as_deref()
            .and_then(|f| OffsetDateTime::parse(f, &Rfc3339).ok());
        Ok(match (finished, registered) {
            (Some(f), _) => Fate::OffboardedAt(Some(f)),
            // A receipt whose deletion has not finished, and the tenant is not in the register (a step
            // stopped between the two): it is still going.
            (None, None) => Fate::OffboardedAt(None),
            // Registered again (not `deleting`) while an older record never finished: the tenant lives.
            (None, Some(_)) => Fate::Live,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_by_fate_and_time() {
        let at = OffsetDateTime::parse("2026-12-07T06:00:00.000Z", &Rfc3339).unwrap();
        let gone = Fate::OffboardedAt(Some(at));
        assert!(Fate::Live.wants("2026-12-07T05:00:00.000Z"));
        assert!(!Fate::Deleting.wants("2026-12-07T07:00:00.000Z"));
        assert!(!Fate::OffboardedAt(None).wants("2026-12-07T07:00:00.000Z"));
        assert!(!gone.wants("2026-12-07T05:59:59.999Z"));
        assert!(!gone.wants("2026-12-07T06:00:00.000Z"));
        assert!(gone.wants("2026-12-07T06:00:00.001Z"));
        assert!(gone.wants("not a time"));
    }
}
