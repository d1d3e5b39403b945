//! Offboarding: removing every item a deleted tenant owns, in bounded, resumable steps.
//!
//! `Manager::delete_tenant` sets the tenant `deleting` (the gate refuses its requests from then on);
//! [`Manager::offboard_step`] then does at most about `budget` DynamoDB calls of deletion and returns
//! where it got. All progress lives in the table — the offboarding record `OFFBOARDED` /
//! `<tenant>#<started>` (`store::OffboardRecord`) and the items still there — so any step may be the last
//! one a process runs, and the next step, in any process, continues.
//!
//! * **Waiting.** Other processes may serve the tenant for up to their gate's TTL after `deleting` was
//!   written, and a request that passed the gate just before may still be writing. Nothing is deleted
//!   before `started` + the gate's TTL + `offboard_grace` ([`Manager::offboard_settle`]).
//! * **Passes.** A pass goes through the tenant's partitions in [`OffboardPhase`] order (users with their
//!   guards, groups with their members and guards, counters, tokens both ways, OAuth, the events log, its
//!   ids and head, the webhook position, the audit trail). A pass that deleted anything is followed,
//!   after another settle wait, by a new pass; only a pass that finds nothing ends it.
//! * **The end.** One transaction deletes the register item and turns the record into the deletion
//!   receipt (who, started, finished, items deleted), kept for the audit retention: the audit trail goes
//!   with the tenant, the receipt stays. The id may then be created again.
//!
//! Where it runs: in `scim-local`, a background task when a delete is accepted ([`spawn`]) and at start-up
//! for tenants a stopped server left `deleting` ([`resume_in_background`]); on AWS, a scheduled management
//! function calls [`Manager::run_until`] with its deadline. Imports `store` and its parent.

use super::{gate, unix_now, ManageError, Manager};
use crate::auth::valid_tenant;
use crate::backoff::Backoff;
use crate::store::{OffboardPhase, OffboardRecord, Store, TenantState};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Offboarding's wait past the gate's TTL, by default: API Gateway's longest request.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// DynamoDB calls one step of the background runner spends (a Lambda's step the same).
pub const DEFAULT_BUDGET: u32 = 50;

/// A deletion as the management API reports it (`GET /tenants/{tenant}/deletion`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeletionStatus {
    pub tenant: String,
    /// `deleting` or `done`.
    pub state: &'static str,
    /// RFC 3339: when the deletion was accepted.
    pub started: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Who asked for it.
    #[serde(rename = "deletedBy", skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// Items deleted so far.
    #[serde(rename = "itemsDeleted")]
    pub items_deleted: u64,
    /// `waiting` (for the other processes' gates), the part being deleted (`users`, `groups`, …), `finish`
    /// or `done`.
    pub phase: &'static str,
    /// 1 for the first pass; a pass that found anything is followed by another.
    pub pass: u32,
    /// How long until the next step can delete anything (a settle wait), when it cannot now.
    #[serde(skip)]
    pub wait: Option<Duration>,
}

impl DeletionStatus {
    pub fn done(&self) -> bool {
        self.state == "done"
    }

    fn of(rec: &OffboardRecord, now_ms: i64) -> Self {
        let wait = (rec.phase != OffboardPhase::Done && rec.not_before_ms > now_ms)
            .then(|| Duration::from_millis((rec.not_before_ms - now_ms) as u64));
        DeletionStatus {
            tenant: rec.tenant.clone(),
            state: if rec.finished.is_some() {
                "done"
            } else {
                "deleting"
            },
            started: rec.started.clone(),
            finished: rec.finished.clone(),
            actor: rec.actor.clone(),
            items_deleted: rec.deleted,
            phase: rec.phase.as_str(),
            pass: rec.pass,
            wait,
        }
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds of an RFC 3339 time.
fn ms_of(t: &str) -> Option<i64> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn not_deleting(id: &str) -> ManageError {
    ManageError::new(
        409,
        "tenant_not_deleting",
        format!("Tenant \"{id}\" is not being deleted"),
    )
}

impl Manager {
    /// How long after `deleting` (and after a pass that found anything) nothing is deleted: the gate's
    /// TTL (this process's, at least the default) and `offboard_grace`.
    pub fn offboard_settle(&self) -> Duration {
        let ttl = self
            .gate
            .as_ref()
            .map(|g| g.ttl())
            .unwrap_or(gate::DEFAULT_TTL);
        ttl + self.settings.offboard_grace
    }

    /// Where the deletion of `tenant` is: `tenant_not_found` when there never was such a tenant (nor a
    /// receipt of its deletion), `tenant_not_deleting` when it lives and is not being deleted.
    pub async fn deletion_status(&self, tenant: &str) -> Result<DeletionStatus, ManageError> {
        if !valid_tenant(tenant) {
            return Err(ManageError::no_tenant(tenant));
        }
        match self.store.tenant(tenant).await? {
            None => match self.store.latest_offboard(tenant).await? {
                Some(rec) => Ok(DeletionStatus::of(&rec, now_ms())),
                None => Err(ManageError::no_tenant(tenant)),
            },
            Some(r) if r.state != TenantState::Deleting => Err(not_deleting(tenant)),
            Some(r) => match self.store.offboard_record(tenant, &r.updated).await? {
                Some(rec) => Ok(DeletionStatus::of(&rec, now_ms())),
                // Accepted; no step has run yet.
                None => Ok(DeletionStatus::of(
                    &self.new_record(tenant, &r.updated, String::new()),
                    now_ms(),
                )),
            },
        }
    }

    fn new_record(&self, tenant: &str, started: &str, actor: String) -> OffboardRecord {
        let from = ms_of(started).unwrap_or_else(now_ms);
        OffboardRecord {
            tenant: tenant.to_string(),
            started: started.to_string(),
            actor,
            phase: OffboardPhase::Waiting,
            pass: 1,
            dirty: false,
            deleted: 0,
            not_before_ms: from + self.offboard_settle().as_millis() as i64,
            finished: None,
            expires: 0,
            version: 0,
        }
    }

    /// The record of the deletion that began at `started`, written now if no step wrote it yet.
    async fn record(&self, tenant: &str, started: &str) -> Result<OffboardRecord, ManageError> {
        if let Some(rec) = self.store.offboard_record(tenant, started).await? {
            return Ok(rec);
        }
        // Who asked: the delete's own audit entry (the trail goes with the tenant; the receipt keeps this).
        let actor = self
            .store
            .audit_entries(tenant, None, 20)
            .await?
            .into_iter()
            .find(|e| e.action == "tenant.delete")
            .map(|e| e.actor)
            .unwrap_or_default();
        let rec = self.new_record(tenant, started, actor);
        if self.store.start_offboard(&rec).await? {
            return Ok(rec);
        }
        // Another runner wrote it first.
        self.store
            .offboard_record(tenant, started)
            .await?
            .ok_or_else(|| ManageError::from(crate::store::StoreError::Contention))
    }

    fn finished(&self, rec: &OffboardRecord) -> OffboardRecord {
        let mut done = rec.clone();
        done.phase = OffboardPhase::Done;
        done.finished = Some(crate::model::now_rfc3339());
        done.expires = unix_now() + i64::from(self.settings.audit_retention_days) * 86_400;
        done.version = rec.version + 1;
        done
    }

    /// One step of `tenant`'s offboarding: at most about `budget` DynamoDB calls that delete (Query,
    /// BatchWriteItem, DeleteItem; each step also reads the register and the record, and saves the record
    /// after each batch). Resumable from the table alone; safe to run in several processes at once.
    pub async fn offboard_step(
        &self,
        tenant: &str,
        budget: u32,
    ) -> Result<DeletionStatus, ManageError> {
        if !valid_tenant(tenant) {
            return Err(ManageError::no_tenant(tenant));
        }
        let reg = match self.store.tenant(tenant).await? {
            Some(r) if r.state == TenantState::Deleting => r,
            Some(_) => return Err(not_deleting(tenant)),
            None => {
                // Gone: done, or a step stopped between the register's delete and the receipt.
                let Some(rec) = self.store.latest_offboard(tenant).await? else {
                    return Err(ManageError::no_tenant(tenant));
                };
                if rec.finished.is_some() {
                    return Ok(DeletionStatus::of(&rec, now_ms()));
                }
                let done = self.finished(&rec);
                self.store.finish_offboard(&done).await?;
                return Ok(DeletionStatus::of(&done, now_ms()));
            }
        };
        let mut rec = self.record(tenant, &reg.updated).await?;
        let mut used = 0u32;
        loop {
            let now = now_ms();
            if rec.phase == OffboardPhase::Done || now < rec.not_before_ms {
                return Ok(DeletionStatus::of(&rec, now));
            }
            let mut next = rec.clone();
            next.version = rec.version + 1;
            let mut deleted = 0;
            match rec.phase {
                OffboardPhase::Waiting => next.phase = OffboardPhase::Users,
                OffboardPhase::Finish if rec.dirty => {
                    // Something was found: another pass, after another settle wait.
                    next.pass += 1;
                    next.dirty = false;
                    next.phase = OffboardPhase::Users;
                    next.not_before_ms = now + self.offboard_settle().as_millis() as i64;
                }
                OffboardPhase::Finish | OffboardPhase::Done => {
                    let done = self.finished(&rec);
                    self.store.finish_offboard(&done).await?;
                    if let Some(g) = &self.gate {
                        g.set(tenant, None);
                    }
                    tracing::info!(
                        tenant,
                        items = done.deleted,
                        passes = done.pass,
                        "tenant offboarded"
                    );
                    return Ok(DeletionStatus::of(&done, now_ms()));
                }
                phase => {
                    if used >= budget {
                        return Ok(DeletionStatus::of(&rec, now));
                    }
                    let b = self
                        .store
                        .offboard_batch(tenant, phase, budget - used)
                        .await?;
                    used += b.calls.max(1);
                    deleted = b.deleted;
                    next.deleted += b.deleted;
                    next.dirty |= b.deleted > 0;
                    if b.exhausted {
                        next.phase = phase.next();
                    }
                }
            }
            if self.store.save_offboard(&next, rec.version).await? {
                rec = next;
            } else {
                // Another runner saved first: keep our count and our finding, take its record.
                if deleted > 0 {
                    self.store
                        .note_offboard(tenant, &rec.started, deleted)
                        .await?;
                }
                rec = self.record(tenant, &reg.updated).await?;
            }
        }
    }

    /// Steps until `tenant` is done or `deadline` passes, sleeping through settle waits.
    pub async fn offboard_until(
        &self,
        tenant: &str,
        deadline: Option<Instant>,
    ) -> Result<DeletionStatus, ManageError> {
        loop {
            let s = self.offboard_step(tenant, DEFAULT_BUDGET).await?;
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if s.done() || left == Some(Duration::ZERO) {
                return Ok(s);
            }
            if let Some(wait) = s.wait {
                match left {
                    Some(l) if l <= wait => return Ok(s),
                    _ => tokio::time::sleep(wait).await,
                }
            }
        }
    }

    /// Every tenant being deleted, stepped until done, waiting, or `deadline` (a scheduled Lambda passes
    /// its remaining time less a margin). Returns where each one got.
    pub async fn run_until(&self, deadline: Instant) -> Result<Vec<DeletionStatus>, ManageError> {
        let mut out = Vec::new();
        for tenant in deleting_tenants(self.store.as_ref()).await? {
            if Instant::now() >= deadline {
                break;
            }
            loop {
                let s = self.offboard_step(&tenant, DEFAULT_BUDGET).await?;
                if s.done() || s.wait.is_some() || Instant::now() >= deadline {
                    out.push(s);
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The ids of the tenants whose state is `deleting` (the register, page by page).
pub async fn deleting_tenants(store: &dyn Store) -> Result<Vec<String>, ManageError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.tenant_page(after.as_deref(), 1000).await?;
        out.extend(
            page.tenants
                .iter()
                .filter(|t| t.state == TenantState::Deleting)
                .map(|t| t.id.clone()),
        );
        match page.next_after {
            Some(a) => after = Some(a),
            None => return Ok(out),
        }
    }
}

/// Run `tenant`'s offboarding to the end in a background task (a store error is retried with backoff;
/// a refusal — no such tenant, not deleting — ends it).
pub fn spawn(manager: Manager, tenant: String) {
    tokio::spawn(async move {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut failures = 0;
        loop {
            match manager.offboard_until(&tenant, None).await {
                Ok(_) => return,
                Err(e) if e.status < 500 => {
                    tracing::info!(tenant, code = e.code, "offboarding ended");
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        tenant,
                        code = e.code,
                        message = e.message,
                        "offboarding step failed; retrying"
                    );
                    failures += 1;
                    backoff.wait(failures).await;
                }
            }
        }
    });
}

/// At start-up: continue, in the background, every offboarding a stopped process left unfinished (one
/// line in `scim-local`'s `main`).
pub fn resume_in_background(store: Arc<dyn Store>, gate: Arc<gate::TenantGate>) {
    let settings = super::ManageSettings::from_env().unwrap_or_default();
    let manager = Manager::new(store, settings).with_gate(gate);
    tokio::spawn(async move {
        match deleting_tenants(manager.store.as_ref()).await {
            Ok(tenants) => {
                for t in tenants {
                    tracing::info!(tenant = t, "resuming offboarding");
                    spawn(manager.clone(), t);
                }
            }
            Err(e) => tracing::warn!(
                code = e.code,
                "offboarding not resumed: register unreadable"
            ),
        }
    });
}
