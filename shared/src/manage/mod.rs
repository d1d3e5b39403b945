//! The management operations a vendor's backend (and `scim-admin`, and the setup page) runs on tenants:
//! the register (create, read, list, rename, metadata), the lifecycle (pause, resume, delete), the
//! credentials (tenant tokens, OAuth clients and their secrets, the WIF trust), a tenant's connection
//! details and its audit trail. Written once; every caller — the HTTP API under `/manage/v1`
//! (`http/manage.rs`), the CLI — calls these functions, never a copy.
//!
//! Every operation that changes something runs inside `store::audited`, so its audit entry (who, what,
//! when) is written in the same transaction as the change, or not at all.
//!
//! Refusals are [`ManageError`]s with a stable `code` (documented in `docs/manage.md` and the OpenAPI
//! document). Imports `store`, `auth` (tenant ids, tokens), `oauth` (secrets, WIF trusts), `config`.

pub mod gate;
pub mod links;
pub mod offboard;

use crate::auth::{generate_token, token_hash, valid_tenant, DEFAULT_TENANT, RESERVED_TENANT_IDS};
use crate::backoff::Backoff;
use crate::oauth::assertion::WifTrust;
use crate::oauth::credentials::{self, DEFAULT_SECRET_DAYS, MAX_SECRET_DAYS, MIN_SECRET_DAYS};
use crate::store::{
    audited, AddSecret, AuditEntry, ClientCredentials, OAuthClient, Store, StoreError, TenantPage,
    TenantRecord, TenantState, TenantWrite, TokenRecord, WifTrustRecord, MAX_SECRETS_PER_CLIENT,
};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest vendor metadata, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 200;
/// Longest label of a token or client, in characters.
pub const MAX_LABEL: usize = 100;
/// How long audit entries are kept by default (`SCIM_AUDIT_RETENTION_DAYS`).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;
/// Tries of an optimistic write on a tenant that keeps changing, before `conflict`.
const WRITE_ATTEMPTS: u32 = 5;
/// Between tries of a credential write that lost a race (20 ms … 80 ms, jittered).
const CONTENTION_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(20), Duration::from_millis(80)).jittered();

/// Run `write` until it is not refused for contention (a concurrent writer of the same item), at most
/// [`WRITE_ATTEMPTS`] times, waiting [`CONTENTION_BACKOFF`] between tries; a last contention is the
/// store's `conflict`.
async fn retry_contention<T, F, Fut>(mut write: F) -> Result<T, ManageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match write().await {
            Err(StoreError::Contention) if tries < WRITE_ATTEMPTS => {
                CONTENTION_BACKOFF.wait(tries).await;
                tries += 1;
            }
            r => return r.map_err(Into::into),
        }
    }
}

/// A refusal of a management operation: an HTTP status, a stable machine-readable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManageError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ManageError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ManageError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub(crate) fn no_tenant(id: &str) -> Self {
        Self::new(
            404,
            "tenant_not_found",
            format!("Tenant \"{id}\" does not exist"),
        )
    }
    fn deleting(id: &str) -> Self {
        Self::new(
            409,
            "tenant_deleting",
            format!("Tenant \"{id}\" is being deleted; nothing of it can change any more"),
        )
    }
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Contention | StoreError::VersionConflict => ManageError::new(
                409,
                "conflict",
                "The tenant was changed by another request at the same moment; read it again and retry",
            ),
            StoreError::Throttled(_) | StoreError::Unavailable(_) => ManageError::new(
                503,
                "unavailable",
                "The store is busy or did not answer in time; retry shortly",
            ),
            StoreError::TooLarge(d) => ManageError::invalid("too_large", d),
            _ => ManageError::new(500, "internal", "The operation failed because of an internal storage error; nothing was changed"),
        }
    }
}

/// Who asks: an IAM principal's ARN (API Gateway's IAM authorisation), `local-admin` (the local
/// server's admin credential), `setup-link:<id>`, `cli:<user>`. Written into every audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// The tenant as the management API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantView {
    pub id: String,
    #[serde(rename = "displayName")]
    pub display_name: String,
    pub metadata: Value,
    pub state: &'static str,
    pub created: String,
    pub updated: String,
    pub version: u64,
}

impl From<&TenantRecord> for TenantView {
    fn from(r: &TenantRecord) -> Self {
        TenantView {
            id: r.id.clone(),
            display_name: r.display_name.clone(),
            metadata: serde_json::from_str(&r.metadata).unwrap_or_else(|_| json!({})),
            state: r.state.as_str(),
            created: r.created.clone(),
            updated: r.updated.clone(),
            version: r.version,
        }
    }
}

/// What a new or rotated client secret gives back: the secret appears here once and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct NewSecret {
    #[serde(rename = "clientId")]
    pub client_id: String,
    #[serde(rename = "clientSecret")]
    pub secret: String,
    #[serde(rename = "secretId")]
    pub secret_id: String,
    pub expires: String,
}

/// A new tenant token: shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub label: String,
    pub created: String,
}

/// The settings the operations need.
#[derive(Debug, Clone)]
pub struct ManageSettings {
    pub audit_retention_days: u32,
    /// Fetch `http://` JWKS URLs on any host (the WIF trust check); from `SCIM_WIF_ALLOW_HTTP_JWKS`.
    pub allow_http_jwks: bool,
    /// How long a revoked client's access tokens may still work (the OAuth client check's cache).
    pub client_check: Duration,
    /// Offboarding waits this long past the gate's TTL before it deletes, and between passes (requests
    /// that passed the gate before `deleting`, the stream's events of the deletes); from
    /// `SCIM_OFFBOARD_GRACE_SECS` (0–900, default 30: API Gateway's longest request).
    pub offboard_grace: Duration,
    /// Run a tenant's offboarding in a background task of this process when its delete is accepted
    /// (`SCIM_OFFBOARD_BACKGROUND`, default on; off where a scheduled function runs it instead).
    pub offboard_background: bool,
}

impl ManageSettings {
    pub fn from_env() -> Result<Self, String> {
        let days = match std::env::var("SCIM_AUDIT_RETENTION_DAYS") {
            Ok(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| format!("SCIM_AUDIT_RETENTION_DAYS must be 1 to 3650, not {v:?}"))?,
            Err(_) => DEFAULT_AUDIT_RETENTION_DAYS,
        };
        let grace =
            match std::env::var("SCIM_OFFBOARD_GRACE_SECS") {
                Ok(v) => v.parse::<u64>().ok().filter(|d| *d <= 900).ok_or_else(|| {
                    format!("SCIM_OFFBOARD_GRACE_SECS must be 0 to 900, not {v:?}")
                })?,
                Err(_) => offboard::DEFAULT_GRACE.as_secs(),
            };
        let background = !matches!(
            std::env::var("SCIM_OFFBOARD_BACKGROUND").as_deref(),
            Ok("0" | "off" | "false")
        );
        Ok(ManageSettings {
            offboard_grace: Duration::from_secs(grace),
            offboard_background: background,
            audit_retention_days: days,
            allow_http_jwks: crate::oauth::assertion::JwksSettings::from_env().allow_http,
            client_check: crate::oauth::OAuthSettings::from_env()
                .map(|s| s.client_check)
                .unwrap_or(Duration::from_secs(30)),
        })
    }
}

impl Default for ManageSettings {
    fn default() -> Self {
        ManageSettings {
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            allow_http_jwks: false,
            client_check: Duration::from_secs(30),
            offboard_grace: offboard::DEFAULT_GRACE,
            offboard_background: true,
        }
    }
}

/// The management operations on one store.
#[derive(Clone)]
pub struct Manager {
    pub store: Arc<dyn Store>,
    pub settings: ManageSettings,
    /// The gate of this process, told at once when a tenant's state changes here.
    pub gate: Option<Arc<gate::TenantGate>>,
    /// Where the status route reads a tenant's request figures when this process does not count them
    /// itself (the manage function on AWS: CloudWatch, `metrics::cloudwatch`); None: the process's own.
    pub figures: Option<Arc<dyn RequestFigures>>,
}

/// A tenant's request figures of the last hour, read from elsewhere than this process's own metrics
/// (the functions that served the requests wrote them: CloudWatch on AWS).
#[async_trait::async_trait]
pub trait RequestFigures: Send + Sync {
    /// Where the figures come from, for a message.
    fn source(&self) -> String;
    async fn last_hour(&self, tenant: &str) -> Result<crate::metrics::TenantSummary, String>;
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn now_micros() -> String {
    let t = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&f).unwrap_or_else(|_| crate::model::now_rfc3339())
}

pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A tenant id a new tenant may take.
pub fn check_new_tenant_id(id: &str) -> Result<(), ManageError> {
    if RESERVED_TENANT_IDS.contains(&id) {
        return Err(ManageError::invalid(
            "reserved_tenant_id",
            format!(
                "\"{id}\" is reserved (reserved names: {})",
                RESERVED_TENANT_IDS.join(", ")
            ),
        ));
    }
    if !valid_tenant(id) {
        return Err(ManageError::invalid(
            "invalid_tenant_id",
            "A tenant id is 1 to 63 lower-case letters, digits and '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

fn check_display_name(name: &str) -> Result<(), ManageError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_DISPLAY_NAME || name.trim() != name || name.chars().any(char::is_control) {
        return Err(ManageError::invalid(
            "invalid_display_name",
            format!("displayName must be 1 to {MAX_DISPLAY_NAME} characters, without control characters or surrounding spaces"),
        ));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), ManageError> {
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(ManageError::invalid(
            "invalid_label",
            format!("label must be at most {MAX_LABEL} characters, without control characters"),
        ));
    }
    Ok(())
}

/// Vendor metadata: a JSON object of at most [`MAX_METADATA_BYTES`] as compact JSON; returns that text.
pub fn check_metadata(v: &Value) -> Result<String, ManageError> {
    if !v.is_object() {
        return Err(ManageError::invalid(
            "invalid_metadata",
            "metadata must be a JSON object (for example {\"orgId\": \"org_123\"})",
        ));
    }
    let text = v.to_string();
    if text.len() > MAX_METADATA_BYTES {
        return Err(ManageError::invalid(
            "metadata_too_large",
            format!(
                "metadata is {} bytes as compact JSON; at most {MAX_METADATA_BYTES} are kept",
                text.len()
            ),
        ));
    }
    Ok(text)
}

fn check_days(days: Option<u32>) -> Result<u32, ManageError> {
    let d = days.unwrap_or(DEFAULT_SECRET_DAYS);
    if !(MIN_SECRET_DAYS..=MAX_SECRET_DAYS).contains(&d) {
        return Err(ManageError::invalid(
            "invalid_days",
            format!("a client secret lives {MIN_SECRET_DAYS} to {MAX_SECRET_DAYS} days, not {d}"),
        ));
    }
    Ok(d)
}

fn check_public_id(what: &str, id: &str) -> Result<(), ManageError> {
    if !credentials::valid_client_id(id) {
        return Err(ManageError::new(
            404,
            "credential_not_found",
            format!("There is no {what} \"{}\"", id.escape_default()),
        ));
    }
    Ok(())
}

impl Manager {
    pub fn new(store: Arc<dyn Store>, settings: ManageSettings) -> Self {
        Manager {
            store,
            settings,
            gate: None,
            figures: None,
        }
    }

    pub fn with_figures(mut self, figures: Arc<dyn RequestFigures>) -> Self {
        self.figures = Some(figures);
        self
    }

    /// `tenant`'s request figures of the last hour for the status route: from [`Self::figures`] when set
    /// (None, logged, when they cannot be read), else from `own` (this process's metrics). Also whether
    /// any are kept.
    pub async fn request_figures(
        &self,
        tenant: &str,
        own: &crate::metrics::Metrics,
    ) -> (bool, Option<crate::metrics::TenantSummary>) {
        let Some(f) = &self.figures else {
            return (own.enabled(), own.summary(tenant));
        };
        match f.last_hour(tenant).await {
            Ok(s) => (true, Some(s)),
            Err(e) => {
                tracing::warn!(tenant, source = %f.source(), error = %e, "request figures not read");
                (true, None)
            }
        }
    }

    pub fn with_gate(mut self, gate: Arc<gate::TenantGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    fn entry(&self, p: &Principal, tenant: &str, action: &str, target: &str) -> AuditEntry {
        AuditEntry {
            tenant: tenant.to_string(),
            at: now_micros(),
            nonce: hex::encode(rand::random::<[u8; 4]>()),
            actor: p.0.clone(),
            action: action.to_string(),
            target: target.to_string(),
            expires: unix_now() + i64::from(self.settings.audit_retention_days) * 86_400,
        }
    }

    /// The tenant, or `tenant_not_found`. The base URL's directory (`default`, served without
    /// registration) reads as an active tenant of that name: its credentials can be managed, its
    /// lifecycle cannot (it has no register item to change).
    pub async fn tenant(&self, id: &str) -> Result<TenantRecord, ManageError> {
        if id == DEFAULT_TENANT {
            return Ok(TenantRecord {
                id: id.into(),
                display_name: "the base URL's directory".into(),
                metadata: "{}".into(),
                state: TenantState::Active,
                created: String::new(),
                updated: String::new(),
                version: 0,
            });
        }
        if !valid_tenant(id) {
            return Err(ManageError::no_tenant(id));
        }
        self.store
            .tenant(id)
            .await?
            .ok_or_else(|| ManageError::no_tenant(id))
    }

    /// The tenant, if it may still change (not being deleted).
    async fn live_tenant(&self, id: &str) -> Result<TenantRecord, ManageError> {
        let t = self.tenant(id).await?;
        if t.state == TenantState::Deleting {
            return Err(ManageError::deleting(id));
        }
        Ok(t)
    }

    pub async fn create_tenant(
        &self,
        p: &Principal,
        id: &str,
        display_name: Option<&str>,
        metadata: Option<&Value>,
    ) -> Result<TenantRecord, ManageError> {
        check_new_tenant_id(id)?;
        let name = display_name.unwrap_or(id);
        check_display_name(name)?;
        let meta = match metadata {
            Some(m) => check_metadata(m)?,
            None => "{}".into(),
        };
        let now = crate::model::now_rfc3339();
        let rec = TenantRecord {
            id: id.to_string(),
            display_name: name.to_string(),
            metadata: meta,
            state: TenantState::Active,
            created: now.clone(),
            updated: now,
            version: 1,
        };
        let (r, _) = audited(
            self.entry(p, id, "tenant.create", ""),
            self.store.register_tenant(&rec),
        )
        .await;
        if !r? {
            return Err(ManageError::new(
                409,
                "tenant_exists",
                format!("Tenant \"{id}\" already exists"),
            ));
        }
        Ok(rec)
    }

    pub async fn list_tenants(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TenantPage, ManageError> {
        Ok(self.store.tenant_page(after, limit.clamp(1, 200)).await?)
    }

    /// Change a tenant with `change` (which may refuse it), conditioned on the version read; retried when
    /// another change got in between. `action` names it in the audit trail.
    async fn change_tenant(
        &self,
        p: &Principal,
        id: &str,
        action: &str,
        change: impl Fn(&TenantRecord) -> Result<Option<TenantRecord>, ManageError>,
    ) -> Result<TenantRecord, ManageError> {
        if id == DEFAULT_TENANT {
            return Err(ManageError::invalid(
                "reserved_tenant_id",
                "The base URL's directory is not a registered tenant: it cannot be renamed, paused or deleted",
            ));
        }
        for _ in 0..WRITE_ATTEMPTS {
            let cur = self.tenant(id).await?;
            let Some(mut next) = change(&cur)? else {
                return Ok(cur);
            };
            next.version = cur.version + 1;
            next.updated = crate::model::now_rfc3339();
            let (r, _) = audited(
                self.entry(p, id, action, ""),
                self.store.update_tenant(&next, cur.version),
            )
            .await;
            match r? {
                TenantWrite::Written => {
                    if let Some(g) = &self.gate {
                        g.set(id, Some(next.state));
                    }
                    return Ok(next);
                }
                TenantWrite::Missing => return Err(ManageError::no_tenant(id)),
                TenantWrite::Changed => continue,
            }
        }
        Err(StoreError::Contention.into())
    }

    pub async fn update_tenant(
        &self,
        p: &Principal,
        id: &str,
        display_name: Option<&str>,
        metadata: Option<&Value>,
    ) -> Result<TenantRecord, ManageError> {
        if let Some(n) = display_name {
            check_display_name(n)?;
        }
        let meta = metadata.map(check_metadata).transpose()?;
        self.change_tenant(p, id, "tenant.update", |cur| {
            if cur.state == TenantState::Deleting {
                return Err(ManageError::deleting(id));
            }
            let mut next = cur.clone();
            if let Some(n) = display_name {
                next.display_name = n.to_string();
            }
            if let Some(m) = &meta {
                next.metadata = m.clone();
            }
            Ok(
                (next.display_name != cur.display_name || next.metadata != cur.metadata)
                    .then_some(next),
            )
        })
        .await
    }

    /// Pause: the tenant's SCIM and token requests are answered 503 with `Retry-After` until resumed.
    /// Pausing a paused tenant changes nothing.
    pub async fn pause(&self, p: &Principal, id: &str) -> Result<TenantRecord, ManageError> {
        self.set_state(p, id, TenantState::Paused, "tenant.pause")
            .await
    }

    pub async fn resume(&self, p: &Principal, id: &str) -> Result<TenantRecord, ManageError> {
        self.set_state(p, id, TenantState::Active, "tenant.resume")
            .await
    }

    /// Start offboarding: from this moment every request of the tenant is refused; its items are then
    /// removed in batches (`offboard.rs`: `offboard_step`, run in the background here when
    /// `offboard_background`). A second delete is `tenant_deleting`.
    pub async fn delete_tenant(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<TenantRecord, ManageError> {
        self.change_tenant(p, id, "tenant.delete", |cur| {
            if cur.state == TenantState::Deleting {
                return Err(ManageError::deleting(id));
            }
            let mut next = cur.clone();
            next.state = TenantState::Deleting;
            Ok(Some(next))
        })
        .await
    }

    async fn set_state(
        &self,
        p: &Principal,
        id: &str,
        to: TenantState,
        action: &str,
    ) -> Result<TenantRecord, ManageError> {
        self.change_tenant(p, id, action, |cur| {
            if cur.state == TenantState::Deleting {
                return Err(ManageError::deleting(id));
            }
            if cur.state == to {
                return Ok(None);
            }
            let mut next = cur.clone();
            next.state = to;
            Ok(Some(next))
        })
        .await
    }

    // ---- credentials ----

    pub async fn issue_token(
        &self,
        p: &Principal,
        id: &str,
        label: &str,
        user: Option<&str>,
    ) -> Result<NewToken, ManageError> {
        check_label(label)?;
        if id == DEFAULT_TENANT {
            return Err(ManageError::invalid(
                "reserved_tenant_id",
                "The base URL's directory takes its configured token (SCIM_BEARER_TOKEN or the SSM parameter), not tenant tokens",
            ));
        }
        self.live_tenant(id).await?;
        let token = generate_token();
        let hash = token_hash(&token);
        let rec = TokenRecord {
            id: hash[..12].to_string(),
            hash,
            tenant: id.to_string(),
            label: label.to_string(),
            created: crate::model::now_rfc3339(),
            user: user.map(str::to_string),
            last_used: None,
        };
        let (r, _) = audited(
            self.entry(p, id, "token.issue", &rec.id),
            self.store.put_token(&rec),
        )
        .await;
        r?;
        Ok(NewToken {
            id: rec.id,
            token,
            label: rec.label,
            created: rec.created,
        })
    }

    pub async fn revoke_token(
        &self,
        p: &Principal,
        id: &str,
        token_id: &str,
    ) -> Result<(), ManageError> {
        self.tenant(id).await?;
        let (r, _) = audited(
            self.entry(p, id, "token.revoke", token_id),
            self.store.revoke_token(id, token_id),
        )
        .await;
        if !r? {
            return Err(ManageError::new(
                404,
                "credential_not_found",
                format!(
                    "Tenant \"{id}\" has no token \"{}\"",
                    token_id.escape_default()
                ),
            ));
        }
        Ok(())
    }

    pub async fn create_client(
        &self,
        p: &Principal,
        id: &str,
        label: &str,
        days: Option<u32>,
    ) -> Result<NewSecret, ManageError> {
        check_label(label)?;
        let days = check_days(days)?;
        self.live_tenant(id).await?;
        let now = crate::model::now_rfc3339();
        let (secret, stored) = credentials::new_secret(days, unix_now(), &now)
            .map_err(|m| ManageError::invalid("invalid_days", m))?;
        let client = OAuthClient {
            tenant: id.to_string(),
            id: credentials::new_client_id(),
            label: label.to_string(),
            created: now,
            revoked: false,
            revoked_at: None,
            secrets: 1,
        };
        let (r, _) = audited(
            self.entry(p, id, "client.create", &client.id),
            self.store.create_client(&client, &stored),
        )
        .await;
        r?;
        Ok(NewSecret {
            client_id: client.id,
            secret,
            secret_id: stored.id,
            expires: rfc3339(stored.expires),
        })
    }

    /// Add a secret to a client (rotation): the old ones stay valid until revoked.
    pub async fn rotate_client(
        &self,
        p: &Principal,
        id: &str,
        client_id: &str,
        days: Option<u32>,
    ) -> Result<NewSecret, ManageError> {
        check_public_id("client", client_id)?;
        let days = check_days(days)?;
        self.live_tenant(id).await?;
        let now = crate::model::now_rfc3339();
        let (secret, stored) = credentials::new_secret(days, unix_now(), &now)
            .map_err(|m| ManageError::invalid("invalid_days", m))?;
        let added = retry_contention(|| async {
            audited(
                self.entry(p, id, "client.rotate", client_id),
                self.store.add_secret(id, client_id, &stored),
            )
            .await
            .0
        })
        .await?;
        match added {
            AddSecret::Added => Ok(NewSecret {
                client_id: client_id.to_string(),
                secret,
                secret_id: stored.id,
                expires: rfc3339(stored.expires),
            }),
            AddSecret::NoClient => Err(ManageError::new(
                404,
                "credential_not_found",
                format!("Tenant \"{id}\" has no client \"{client_id}\""),
            )),
            AddSecret::Revoked => Err(ManageError::new(
                409,
                "client_revoked",
                format!("Client \"{client_id}\" is revoked and gets no new secret; create a new client"),
            )),
            AddSecret::TooMany => Err(ManageError::new(
                409,
                "too_many_secrets",
                format!("Client \"{client_id}\" already holds {MAX_SECRETS_PER_CLIENT} secrets; revoke one first"),
            )),
        }
    }

    pub async fn revoke_secret(
        &self,
        p: &Principal,
        id: &str,
        client_id: &str,
        secret_id: &str,
    ) -> Result<(), ManageError> {
        check_public_id("client", client_id)?;
        check_public_id("secret", secret_id)?;
        self.tenant(id).await?;
        let revoked = retry_contention(|| async {
            audited(
                self.entry(
                    p,
                    id,
                    "client.revoke_secret",
                    &format!("{client_id}/{secret_id}"),
                ),
                self.store.revoke_secret(id, client_id, secret_id),
            )
            .await
            .0
        })
        .await?;
        if revoked {
            Ok(())
        } else {
            Err(ManageError::new(
                404,
                "credential_not_found",
                format!("Client \"{client_id}\" of tenant \"{id}\" has no secret \"{secret_id}\""),
            ))
        }
    }

    pub async fn revoke_client(
        &self,
        p: &Principal,
        id: &str,
        client_id: &str,
    ) -> Result<(), ManageError> {
        check_public_id("client", client_id)?;
        self.tenant(id).await?;
        let now = crate::model::now_rfc3339();
        let (r, _) = audited(
            self.entry(p, id, "client.revoke", client_id),
            self.store.revoke_client(id, client_id, &now),
        )
        .await;
        if !r? {
            return Err(ManageError::new(
                404,
                "credential_not_found",
                format!("Tenant \"{id}\" has no client \"{client_id}\""),
            ));
        }
        Ok(())
    }

    pub async fn set_wif(
        &self,
        p: &Principal,
        id: &str,
        trust: &WifTrust,
    ) -> Result<(), ManageError> {
        trust
            .check(self.settings.allow_http_jwks)
            .map_err(|m| ManageError::invalid("invalid_trust", m))?;
        self.live_tenant(id).await?;
        let now = crate::model::now_rfc3339();
        let rec = crate::oauth::trust_record(trust);
        let (r, _) = audited(
            self.entry(p, id, "wif.set", ""),
            self.store.put_wif_trust(id, &rec, &now),
        )
        .await;
        r?;
        Ok(())
    }

    pub async fn wif(&self, id: &str) -> Result<Option<WifTrustRecord>, ManageError> {
        self.tenant(id).await?;
        Ok(self.store.wif_trust(id).await?)
    }

    pub async fn remove_wif(&self, p: &Principal, id: &str) -> Result<(), ManageError> {
        self.tenant(id).await?;
        let (r, _) = audited(
            self.entry(p, id, "wif.remove", ""),
            self.store.remove_wif_trust(id),
        )
        .await;
        if !r? {
            return Err(ManageError::new(
                404,
                "credential_not_found",
                format!("Tenant \"{id}\" has no WIF trust"),
            ));
        }
        Ok(())
    }

    /// Every credential of the tenant — never a secret or a hash.
    pub async fn credentials(&self, id: &str) -> Result<Value, ManageError> {
        self.tenant(id).await?;
        let tokens = self.store.list_tokens(id).await?;
        let clients = self.store.list_clients(id).await?;
        let wif = self.store.wif_trust(id).await?;
        // A token's use is written on the item authentication reads (found by its hash).
        let used =
            futures::future::join_all(tokens.iter().map(|t| self.store.token(&t.hash))).await;
        let now = unix_now();
        Ok(json!({
            "tokens": tokens.iter().zip(used).map(|(t, u)| json!({
                "id": t.id, "label": t.label, "created": t.created, "user": t.user,
                "lastUsed": u.ok().flatten().and_then(|r| r.last_used).map(rfc3339),
            })).collect::<Vec<_>>(),
            "clients": clients.iter().map(|c| client_view(c, now)).collect::<Vec<_>>(),
            "wif": wif.map(|w| wif_view(&w)),
        }))
    }

    /// What the customer's admin pastes into Entra: the Tenant URL, the token endpoint, the clients' ids
    /// and the authentication methods the tenant can use now. `origin` is the public scheme and host
    /// (`https://scim.vendor.example`, or the API's own), `base_path` the SCIM base path (`/scim/v2`).
    pub async fn connection(
        &self,
        id: &str,
        origin: &str,
        base_path: &str,
        oauth_on: bool,
    ) -> Result<Value, ManageError> {
        let t = self.tenant(id).await?;
        let clients = self.store.list_clients(id).await?;
        let wif = self.store.wif_trust(id).await?;
        let tokens = self.store.list_tokens(id).await?;
        let now = unix_now();
        let live: Vec<&ClientCredentials> = clients.iter().filter(|c| !c.client.revoked).collect();
        let mut methods = Vec::new();
        if oauth_on
            && live
                .iter()
                .any(|c| c.secrets.iter().any(|s| s.expires > now))
        {
            methods.push("oauth_client_credentials");
        }
        if oauth_on && wif.is_some() && !live.is_empty() {
            methods.push("workload_identity_federation");
        }
        if !tokens.is_empty() {
            methods.push("bearer_token");
        }
        let origin = origin.trim_end_matches('/');
        Ok(json!({
            "tenant": id,
            "state": t.state.as_str(),
            "tenantUrl": format!("{origin}/{id}{base_path}"),
            "tokenEndpoint": oauth_on.then(|| format!("{origin}/{id}/oauth2/token")),
            "clientIds": live.iter().map(|c| c.client.id.clone()).collect::<Vec<_>>(),
            "authMethods": methods,
            "scope": "scim",
        }))
    }

    /// The tenant's audit trail, newest first.
    pub async fn audit(
        &self,
        id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Value, ManageError> {
        if id != DEFAULT_TENANT && !valid_tenant(id) {
            return Err(ManageError::no_tenant(id));
        }
        let limit = limit.clamp(1, 200);
        let entries = self.store.audit_entries(id, before, limit).await?;
        let next = (entries.len() == limit)
            .then(|| {
                entries
                    .last()
                    .map(|e| crate::store::keys::audit_sk(&e.at, &e.nonce))
            })
            .flatten();
        Ok(json!({
            "entries": entries.iter().map(|e| json!({
                "at": e.at, "actor": e.actor, "action": e.action,
                "target": (!e.target.is_empty()).then_some(&e.target),
            })).collect::<Vec<_>>(),
            "nextBefore": next,
        }))
    }
}

fn client_view(c: &ClientCredentials, now: i64) -> Value {
    json!({
        "id": c.client.id,
        "label": c.client.label,
        "created": c.client.created,
        "revoked": c.client.revoked,
        "revokedAt": c.client.revoked_at,
        "secrets": c.secrets.iter().map(|s| json!({
            "id": s.id,
            "created": s.created,
            "expires": rfc3339(s.expires),
            "expired": s.expires <= now,
            "lastUsed": s.last_used.map(rfc3339),
        })).collect::<Vec<_>>(),
    })
}

fn wif_view(w: &WifTrustRecord) -> Value {
    json!({
        "issuer": w.issuer, "subject": w.subject, "audience": w.audience, "jwksUrl": w.jwks_url,
        "lastUsed": w.last_used.map(rfc3339),
    })
}
