//! Webhook delivery of change events (`docs/events.md`, "Webhook"): each tenant's events, read from the
//! events log in order, POSTed one at a time to `SCIM_EVENTS_WEBHOOK_URL`, signed with HMAC-SHA256.
//!
//! Tenants are independent: a supervisor keeps a small state per tenant (its delivered position, the event
//! that failed last and when to try it again) and runs at most [`WebhookConfig::concurrency`] tenants'
//! deliveries at once, each for at most one page of events before the next tenant's turn. A tenant whose
//! receiver refuses an event waits its own backoff (0.5 s, 1 s, 2 s, … up to 60 s); the others go on.
//! After [`WebhookConfig::park_after`] refused attempts the event is **parked**: kept, with its JSON, in the
//! tenant's position item, shown on the operator page, and tried again every
//! [`WebhookConfig::parked_retry`] (and at once after a restart). The tenant's delivery stops there until it
//! is accepted — never skipped, never reordered; the other tenants continue.
//!
//! Wake-ups: the stream consumer records which tenants it logged events for and wakes the supervisor,
//! which reads only those tenants' logs; a safety sweep over every tenant runs at start and every
//! [`WebhookConfig::sweep_every`]. Idle, the deliverer makes no call.
//!
//! Redirects are not followed: a 3xx answer is a refusal (a redirect to a page answering 200 would lose the
//! event, and a 307 would send the signed event to another host).
//!
//! Positions: item `EVENTS#webhook` / `<tenant>` (`after`: the last delivered order; when parked also
//! `parkedOrder`, `parkedId`, `parkedType`, `parkedEvent`, `attempts`, `lastError`, `parkedAt`), written
//! after each delivered event, so a restart delivers at least once and in order.
//!
//! Signature: `scim-signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, signed string)>`, the signed
//! string being `<t>\n<event id>\n<event type>\n<body>` ([`signed_string`]).
//!
//! Imports `scim_core`'s events log (to read) and store: the positions through its [`DeliveryStore`]
//! (`store/events.rs`), the tenants through its `TokenStore` — no DynamoDB call of its own.

use scim_core::backoff::Backoff;
use scim_core::events::EventLog;
use scim_core::store::dynamo::DynamoStore;
use scim_core::store::{DeliveryStore, ParkedEvent, TokenStore};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

pub const SIGNATURE_HEADER: &str = "scim-signature";
pub const EVENT_ID_HEADER: &str = "scim-event-id";
pub const EVENT_TYPE_HEADER: &str = "scim-event-type";
/// Where the deliverer keeps each tenant's position (and its parked event).
pub use scim_core::store::keys::WEBHOOK_POSITIONS_PK as WEBHOOK_PK;
/// Events one delivery turn of a tenant sends at most before the next tenant's turn.
const PAGE: usize = 20;
/// A failure's words are cut to this length.
const MAX_ERROR_CHARS: usize = 200;

#[derive(Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
    /// First wait after a refused delivery; doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Refused attempts of one event before it is parked.
    pub park_after: u32,
    /// How often a parked event is tried again.
    pub parked_retry: Duration,
    /// Tenants delivered to at the same time, at most.
    pub concurrency: usize,
    /// How often every tenant's log is looked at without a notification (a safety net).
    pub sweep_every: Duration,
    /// The receiver must answer within this.
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            secret: String::new(),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            park_after: 10,
            parked_retry: Duration::from_secs(600),
            concurrency: 8,
            sweep_every: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What the signature covers: the timestamp, the event's id and type (the `scim-event-id` and
/// `scim-event-type` headers) and the raw body, separated by line feeds (none of the first three can hold
/// one: they are header values).
pub fn signed_string(timestamp: u64, id: &str, kind: &str, body: &str) -> String {
    format!("{timestamp}\n{id}\n{kind}\n{body}")
}

/// The `scim-signature` header value for the event `id` of type `kind` with `body`, sent at `timestamp`.
pub fn sign(secret: &str, timestamp: u64, id: &str, kind: &str, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, signed_string(timestamp, id, kind, body).as_bytes());
    format!("t={timestamp},v2={}", hex::encode(tag.as_ref()))
}

/// A tenant whose head event was refused: being retried, or parked. No personal data: the event's id
/// and type only, and the failure in words (the status, or what went wrong with the connection).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Trouble {
    pub tenant: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip)]
    order: u64,
    /// Refused attempts so far.
    pub attempts: u32,
    pub last_error: String,
    /// True once `park_after` attempts were refused: tried again every `parked_retry`; the tenant's later
    /// events wait behind it.
    pub parked: bool,
    /// When it was parked (RFC 3339, UTC).
    pub parked_at: Option<String>,
}

/// The tenants whose delivery is in trouble, for the operator page. At most one entry per tenant.
#[derive(Debug, Default)]
pub struct Status {
    troubles: Mutex<BTreeMap<String, Trouble>>,
}

impl Status {
    /// Parked first, then retrying; by tenant.
    pub fn troubles(&self) -> Vec<Trouble> {
        let mut v: Vec<Trouble> = self
            .troubles
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| {
            b.parked
                .cmp(&a.parked)
                .then_with(|| a.tenant.cmp(&b.tenant))
        });
        v
    }

    fn set(&self, tenant: &str, trouble: Option<&Trouble>) {
        if let Ok(mut t) = self.troubles.lock() {
            match trouble {
                Some(x) => t.insert(tenant.to_string(), x.clone()),
                None => t.remove(tenant),
            };
        }
    }
}

/// How the deliverer learns of new events: the consumer adds the tenants it logged events for to `tenants`,
/// then wakes `notify`.
#[derive(Clone)]
pub struct Wake {
    pub notify: Arc<tokio::sync::Notify>,
    pub tenants: Arc<Mutex<BTreeSet<String>>>,
}

struct Ctx {
    client: reqwest::Client,
    store: DynamoStore,
    log: EventLog,
    cfg: WebhookConfig,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    /// In the ready queue or running.
    Busy,
    /// Waiting for a retry until then.
    Waiting(Instant),
}

/// The supervisor's memory of one tenant: a few numbers and at most one [`Trouble`].
struct Tenant {
    /// The last delivered order; None until read from the table.
    after: Option<u64>,
    trouble: Option<Trouble>,
    phase: Phase,
    /// New events were announced while a turn ran.
    again: bool,
    /// Consecutive failures to reach the table.
    store_failures: u32,
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant {
            after: None,
            trouble: None,
            phase: Phase::Idle,
            again: false,
            store_failures: 0,
        }
    }
}

enum Outcome {
    CaughtUp,
    More,
    Refused,
    Unavailable(String),
}

struct Done {
    tenant: String,
    after: Option<u64>,
    trouble: Option<Trouble>,
    outcome: Outcome,
}

/// Run for ever: deliver each tenant's new events as the consumer announces them (`wake`), with a safety
/// sweep over every tenant at start and every `cfg.sweep_every`; the tenants in trouble in `status`.
pub async fn deliver(
    store: DynamoStore,
    log: EventLog,
    cfg: WebhookConfig,
    wake: Wake,
    status: Arc<Status>,
) {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; events are not delivered");
            return;
        }
    };
    let ctx = Arc::new(Ctx {
        client,
        store,
        log,
        cfg,
    });
    let mut tenants: HashMap<String, Tenant> = HashMap::new();
    let mut ready: VecDeque<String> = VecDeque::new();
    let mut jobs = tokio::task::JoinSet::new();
    let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut next_sweep = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_sweep {
            next_sweep = now + sweep(&ctx, &mut tenants, &mut ready).await;
        }
        let announced = wake
            .tenants
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in announced {
            schedule(&mut tenants, &mut ready, &t);
        }
        let now = Instant::now();
        let mut next_wake = next_sweep;
        for (name, st) in tenants.iter_mut() {
            if let Phase::Waiting(due) = st.phase {
                if due <= now {
                    st.phase = Phase::Busy;
                    ready.push_back(name.clone());
                } else {
                    next_wake = next_wake.min(due);
                }
            }
        }
        while running.len() < ctx.cfg.concurrency.max(1) {
            let Some(name) = ready.pop_front() else { break };
            let st = tenants.entry(name.clone()).or_default();
            let (after, trouble) = (st.after, st.trouble.clone());
            let handle = jobs.spawn(turn(ctx.clone(), name.clone(), after, trouble));
            running.insert(handle.id(), name);
        }
        tokio::select! {
            _ = wake.notify.notified() => {}
            Some(r) = jobs.join_next_with_id(), if !jobs.is_empty() => {
                let done = match r {
                    Ok((id, done)) => {
                        running.remove(&id);
                        done
                    }
                    Err(e) => {
                        let Some(tenant) = running.remove(&e.id()) else { continue };
                        // Read its position and parked event again from the table at its next turn.
                        let outcome = Outcome::Unavailable("a delivery turn failed".into());
                        Done { tenant, after: None, trouble: None, outcome }
                    }
                };
                finish(&ctx.cfg, &status, &mut tenants, &mut ready, done);
            }
            _ = tokio::time::sleep_until(next_wake) => {}
        }
    }
}

/// New events for `tenant`: queue it unless it runs already (then once more after) or waits for a retry
/// (which will read them anyway, after its head event).
fn schedule(tenants: &mut HashMap<String, Tenant>, ready: &mut VecDeque<String>, tenant: &str) {
    let st = tenants.entry(tenant.to_string()).or_default();
    match st.phase {
        Phase::Idle => {
            st.phase = Phase::Busy;
            ready.push_back(tenant.to_string());
        }
        Phase::Busy => st.again = true,
        Phase::Waiting(_) => {}
    }
}

/// Queue every tenant (and the base URL's directory); forget idle tenants that no longer exist. Returns
/// when to sweep again.
async fn sweep(
    ctx: &Ctx,
    tenants: &mut HashMap<String, Tenant>,
    ready: &mut VecDeque<String>,
) -> Duration {
    let mut names: HashSet<String> = HashSet::from([scim_core::auth::DEFAULT_TENANT.to_string()]);
    let again = match ctx.store.list_tenants().await {
        Ok(t) => {
            names.extend(t);
            tenants.retain(|n, st| {
                names.contains(n) || st.phase != Phase::Idle || st.trouble.is_some()
            });
            ctx.cfg.sweep_every
        }
        Err(e) => {
            tracing::warn!(error = ?e, "webhook: cannot list tenants; sweeping again soon");
            ctx.cfg.sweep_every.min(Duration::from_secs(10))
        }
    };
    for n in names {
        schedule(tenants, ready, &n);
    }
    again
}

fn backoff(cfg: &WebhookConfig, attempts: u32) -> Duration {
    Backoff::new(cfg.first_backoff, cfg.max_backoff).delay(attempts.max(1))
}

/// A turn ended: record it and decide when the tenant goes next.
fn finish(
    cfg: &WebhookConfig,
    status: &Status,
    tenants: &mut HashMap<String, Tenant>,
    ready: &mut VecDeque<String>,
    done: Done,
) {
    let st = tenants.entry(done.tenant.clone()).or_default();
    // What the turn knew last (None: read the position again from the table next time).
    st.after = done.after;
    st.trouble = done.trouble;
    status.set(&done.tenant, st.trouble.as_ref());
    let now = Instant::now();
    match done.outcome {
        Outcome::Unavailable(e) => {
            st.store_failures += 1;
            tracing::warn!(error = %e, tenant = done.tenant, "webhook: table unavailable; retrying");
            st.phase = Phase::Waiting(now + backoff(cfg, st.store_failures));
            st.again = false;
        }
        Outcome::Refused => {
            st.store_failures = 0;
            let wait = match &st.trouble {
                Some(t) if t.parked => cfg.parked_retry,
                Some(t) => backoff(cfg, t.attempts),
                None => cfg.first_backoff,
            };
            st.phase = Phase::Waiting(now + wait);
            st.again = false;
        }
        Outcome::More => {
            st.store_failures = 0;
            st.again = false;
            st.phase = Phase::Busy;
            ready.push_back(done.tenant);
        }
        Outcome::CaughtUp => {
            st.store_failures = 0;
            if std::mem::take(&mut st.again) {
                st.phase = Phase::Busy;
                ready.push_back(done.tenant);
            } else {
                st.phase = Phase::Idle;
            }
        }
    }
}

/// One tenant's turn: its parked event first (one attempt), then up to a page of its events in order,
/// each tried once; stops at the first refusal.
async fn turn(
    ctx: Arc<Ctx>,
    tenant: String,
    mut after: Option<u64>,
    mut trouble: Option<Trouble>,
) -> Done {
    let r = run_turn(&ctx, &tenant, &mut after, &mut trouble).await;
    Done {
        tenant,
        after,
        trouble,
        outcome: r.unwrap_or_else(Outcome::Unavailable),
    }
}

async fn run_turn(
    ctx: &Ctx,
    tenant: &str,
    after: &mut Option<u64>,
    trouble: &mut Option<Trouble>,
) -> Result<Outcome, String> {
    let mut pos = match *after {
        Some(a) => a,
        None => {
            let (a, parked) = load(&ctx.store, tenant).await?;
            *after = Some(a);
            *trouble = parked;
            a
        }
    };
    if let Some(mut t) = trouble.clone().filter(|t| t.parked) {
        match parked_event(&ctx.store, tenant).await? {
            Some(body) => match post(ctx, &t.event_id, &t.kind, &body).await {
                Ok(()) => {
                    save_position(&ctx.store, tenant, t.order).await?;
                    tracing::info!(
                        tenant,
                        event = t.event_id,
                        "webhook: the parked event was accepted"
                    );
                    pos = t.order;
                    *after = Some(pos);
                    *trouble = None;
                }
                Err(e) => {
                    t.attempts += 1;
                    t.last_error = e;
                    if let Err(e) = note_attempt(&ctx.store, tenant, &t).await {
                        tracing::warn!(error = %e, tenant, "webhook: cannot record the attempt");
                    }
                    *trouble = Some(t);
                    return Ok(Outcome::Refused);
                }
            },
            // Released by hand (the item rewritten without it): go on from the log.
            None => *trouble = None,
        }
    }
    let page = ctx
        .log
        .read(tenant, pos, PAGE)
        .await
        .map_err(|e| format!("reading the events log: {e:?}"))?;
    for (order, ev) in &page.events {
        let body = ev.to_string();
        let id = ev.get("id").and_then(Value::as_str).unwrap_or("");
        let kind = ev.get("type").and_then(Value::as_str).unwrap_or("");
        match post(ctx, id, kind, &body).await {
            Ok(()) => {
                pos = *order;
                *after = Some(pos);
                *trouble = None;
                if let Err(e) = save_position(&ctx.store, tenant, pos).await {
                    // At least once: the event may be delivered again after a restart.
                    tracing::warn!(error = %e, tenant, "webhook: cannot save the delivery position");
                }
            }
            Err(e) => {
                let before = trouble
                    .as_ref()
                    .filter(|t| t.order == *order)
                    .map_or(0, |t| t.attempts);
                let mut t = Trouble {
                    tenant: tenant.to_string(),
                    event_id: id.to_string(),
                    kind: kind.to_string(),
                    order: *order,
                    attempts: before + 1,
                    last_error: e,
                    parked: false,
                    parked_at: None,
                };
                tracing::warn!(
                    tenant,
                    event = id,
                    attempt = t.attempts,
                    error = t.last_error,
                    "webhook refused the event"
                );
                if t.attempts >= ctx.cfg.park_after {
                    t.parked = true;
                    t.parked_at = Some(now_rfc3339());
                    match park(&ctx.store, tenant, pos, &t, &body).await {
                        Ok(()) => tracing::warn!(
                            tenant,
                            event = id,
                            "webhook: event parked; the tenant's later events wait behind it"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, tenant, "webhook: cannot park the event; retrying it");
                            t.parked = false;
                            t.parked_at = None;
                        }
                    }
                }
                *trouble = Some(t);
                return Ok(Outcome::Refused);
            }
        }
    }
    Ok(if page.more {
        Outcome::More
    } else {
        Outcome::CaughtUp
    })
}

/// POST one event once: Ok on 2xx, else the failure in words.
async fn post(ctx: &Ctx, id: &str, kind: &str, body: &str) -> Result<(), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let r = ctx
        .client
        .post(&ctx.cfg.url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(&ctx.cfg.secret, now, id, kind, body))
        .header(EVENT_ID_HEADER, id)
        .header(EVENT_TYPE_HEADER, kind)
        .body(body.to_string())
        .send()
        .await;
    match r {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(refusal_words(resp.status())),
        Err(e) => Err(cut(transport_words(&e, ctx.cfg.timeout))),
    }
}

fn refusal_words(status: reqwest::StatusCode) -> String {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    match code {
        300..=399 => {
            format!("the receiver answered {code} {reason}: a redirect, which is not followed")
        }
        413 => {
            format!("the receiver answered {code} {reason}: the event is larger than it accepts")
        }
        _ => format!("the receiver answered {code} {reason}"),
    }
}

fn transport_words(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f64())
    } else if e.is_connect() {
        "could not connect to the receiver".into()
    } else {
        "the connection failed before a complete answer".into()
    }
}

fn cut(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_ERROR_CHARS) {
        s.truncate(i);
    }
    s
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The tenant's delivered position and its parked event (without the event's JSON).
async fn load(store: &DynamoStore, tenant: &str) -> Result<(u64, Option<Trouble>), String> {
    let p = store
        .webhook_position(tenant)
        .await
        .map_err(|e| format!("reading the delivery position: {e:?}"))?;
    let parked = p.parked.map(|e| Trouble {
        tenant: tenant.to_string(),
        event_id: e.id,
        kind: e.kind,
        order: e.order,
        attempts: e.attempts,
        last_error: e.last_error,
        parked: true,
        parked_at: e.parked_at,
    });
    Ok((p.after, parked))
}

async fn parked_event(store: &DynamoStore, tenant: &str) -> Result<Option<String>, String> {
    store
        .parked_event_json(tenant)
        .await
        .map_err(|e| format!("reading the parked event: {e:?}"))
}

/// The position after a delivered event (and no parked event).
async fn save_position(store: &DynamoStore, tenant: &str, after: u64) -> Result<(), String> {
    store
        .save_webhook_position(tenant, after)
        .await
        .map_err(|e| format!("saving the delivery position: {e:?}"))
}

/// Keep the refused event (its JSON too: it stays deliverable after the log's retention) at the position.
async fn park(
    store: &DynamoStore,
    tenant: &str,
    after: u64,
    t: &Trouble,
    body: &str,
) -> Result<(), String> {
    let parked = ParkedEvent {
        order: t.order,
        id: t.event_id.clone(),
        kind: t.kind.clone(),
        attempts: t.attempts,
        last_error: t.last_error.clone(),
        parked_at: t.parked_at.clone(),
    };
    store
        .park_event(tenant, after, &parked, body)
        .await
        .map_err(|e| format!("parking the event: {e:?}"))
}

async fn note_attempt(store: &DynamoStore, tenant: &str, t: &Trouble) -> Result<(), String> {
    store
        .note_parked_attempt(tenant, t.order, t.attempts, &t.last_error)
        .await
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_id_type_and_body() {
        let s = sign("secret", 1_700_000_000, "1-0", "user.created", "{}");
        assert!(s.starts_with("t=1700000000,v2="), "{s}");
        assert_eq!(s.len(), "t=1700000000,v2=".len() + 64);
        // HMAC-SHA256("secret", "1700000000\n1-0\nuser.created\n{}"), computed independently (openssl).
        assert_eq!(&s["t=1700000000,v2=".len()..], EXPECTED);
        assert_ne!(
            s,
            sign("secret", 1_700_000_000, "1-0", "user.created", "{ }")
        );
        assert_ne!(
            s,
            sign("secret", 1_700_000_000, "1-1", "user.created", "{}")
        );
        assert_ne!(
            s,
            sign("secret", 1_700_000_000, "1-0", "user.deleted", "{}")
        );
        assert_ne!(
            s,
            sign("secret", 1_700_000_001, "1-0", "user.created", "{}")
        );
        assert_ne!(s, sign("other", 1_700_000_000, "1-0", "user.created", "{}"));
    }
    const EXPECTED: &str = "6840a8df076ee89352d26044e5cdf1471940bc3a54040a63992fc52d1d85ee14";

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = WebhookConfig::default();
        let waits: Vec<u64> = (1..=10)
            .map(|n| backoff(&cfg, n).as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
    }

    #[test]
    fn failures_are_told_in_words() {
        assert_eq!(
            refusal_words(reqwest::StatusCode::PAYLOAD_TOO_LARGE),
            "the receiver answered 413 Payload Too Large: the event is larger than it accepts"
        );
        assert!(refusal_words(reqwest::StatusCode::FOUND).contains("redirect"));
        assert_eq!(cut("é".repeat(300)).chars().count(), MAX_ERROR_CHARS);
    }
}
