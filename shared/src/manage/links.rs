//! Setup links: what a vendor sends so that a customer's IT admin connects Entra alone, on the setup page
//! (`http/setup.rs`). Two forms (as WorkOS's Admin Portal has them): **in-app** (the vendor's settings page
//! redirects to it at once; valid minutes, opens once) and **shareable** (e-mailed; valid days, opens any
//! number of times, revocable). A link is `<origin>/setup/<id>.<secret>`: the id `<tenant>_<key>` names
//! the tenant, so the link is read under that tenant's partition only; of the secret only its SHA-256 is
//! kept, compared in constant time. Opening a link gives a browser session (a random id in a cookie,
//! stored as its SHA-256 under the tenant); revoking the link ends its sessions.
//!
//! Every change runs inside `store::audited` (`link.create`, `link.revoke`, `link.open`, and the page's
//! actions with the link as the actor `setup-link:<id>`). Imports its parent and `store`.

use super::{rfc3339, unix_now, ManageError, Manager, Principal};
use crate::auth::{generate_token, token_hash, valid_tenant};
use crate::store::{audited, LinkKind, LinkOpen, SetupLink, SetupSession, TenantState};
use serde::Serialize;
use subtle::ConstantTimeEq;

/// In-app links: valid this many minutes unless told (at most [`MAX_IN_APP_MINUTES`]).
pub const DEFAULT_IN_APP_MINUTES: u32 = 5;
pub const MAX_IN_APP_MINUTES: u32 = 60;
/// Shareable links: valid this many days unless told (at most [`MAX_SHAREABLE_DAYS`]).
pub const DEFAULT_SHAREABLE_DAYS: u32 = 7;
pub const MAX_SHAREABLE_DAYS: u32 = 30;
/// How long a page session lasts (never past a shareable link's own expiry).
pub const SESSION_SECS: i64 = 3600;
/// Longest return URL.
pub const MAX_RETURN_URL: usize = 2048;
/// Where the setup page lives.
pub const SETUP_PATH: &str = "/setup";

/// A new link: its URL appears here once and nowhere else.
#[derive(Debug, Clone, Serialize)]
pub struct NewLink {
    pub id: String,
    pub url: String,
    pub kind: &'static str,
    pub expires: String,
}

/// A link as listed: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub id: String,
    pub kind: &'static str,
    pub created: String,
    pub expires: String,
    pub expired: bool,
    #[serde(rename = "returnUrl")]
    pub return_url: Option<String>,
    pub used: Option<String>,
    pub revoked: Option<String>,
}

/// Why a link or a session opens nothing. Each is a page of its own, in words, never a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// No such link, or the secret does not match (a forged or mistyped link): 404.
    Unknown,
    Expired,
    Used,
    Revoked,
    /// The tenant is being deleted: 403.
    TenantClosed,
    /// No session, or it ended: 401.
    NoSession,
    /// The store did not answer: 503.
    Unavailable,
}

impl LinkRefusal {
    pub fn status(self) -> u16 {
        match self {
            LinkRefusal::Unknown => 404,
            LinkRefusal::Expired | LinkRefusal::Used | LinkRefusal::Revoked => 410,
            LinkRefusal::TenantClosed => 403,
            LinkRefusal::NoSession => 401,
            LinkRefusal::Unavailable => 503,
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            LinkRefusal::Unknown => "This setup link is not valid",
            LinkRefusal::Expired => "This setup link has expired",
            LinkRefusal::Used => "This setup link was already used",
            LinkRefusal::Revoked => "This setup link was revoked",
            LinkRefusal::TenantClosed => "This directory is closed",
            LinkRefusal::NoSession => "Your setup session has ended",
            LinkRefusal::Unavailable => "The setup page is unavailable",
        }
    }
    pub fn advice(self) -> &'static str {
        match self {
            LinkRefusal::Unknown => "Check that the whole link was copied. If it was, ask the person who sent it for a new one.",
            LinkRefusal::Expired => "Setup links are valid for a limited time. Ask the person who sent it for a new one.",
            LinkRefusal::Used => "A link opened from your application works once. Open the setup page again from your application.",
            LinkRefusal::Revoked => "The person who sent this link has withdrawn it. Ask them for a new one.",
            LinkRefusal::TenantClosed => "This directory is being removed; nothing can be set up here any more.",
            LinkRefusal::NoSession => "Sessions end after an hour, or when the link is revoked. Open your setup link again.",
            LinkRefusal::Unavailable => "Please try again in a minute.",
        }
    }
}

/// A live page session: the tenant and link it belongs to.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub tenant: String,
    /// The link's public id (`<tenant>_<key>`).
    pub link_id: String,
    pub link: SetupLink,
    /// The session id (from the cookie): the page's CSRF token is derived from it.
    pub secret: String,
    pub expires: i64,
}

impl PageSession {
    /// The actor of every action of the page.
    pub fn principal(&self) -> Principal {
        Principal(format!("setup-link:{}", self.link_id))
    }
    /// The token every form of the page carries: derived from the session id, which only the cookie holds
    /// (`HttpOnly`), so another site cannot know it.
    pub fn csrf(&self) -> String {
        csrf_token(&self.secret)
    }
}

pub fn csrf_token(session_secret: &str) -> String {
    token_hash(&format!("setup-csrf\0{session_secret}"))
}

/// Unix seconds now (the clock links and sessions are compared with).
pub fn now() -> i64 {
    unix_now()
}

/// The public id of a link.
pub fn link_id(tenant: &str, key: &str) -> String {
    format!("{tenant}_{key}")
}

fn hex_of_len(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<tenant>_<key>` → (tenant, key), when well formed.
pub fn parse_link_id(id: &str) -> Option<(&str, &str)> {
    let (t, k) = id.rsplit_once('_')?;
    (valid_tenant(t) && hex_of_len(k, 16)).then_some((t, k))
}

/// `<id>.<secret>` → (tenant, key, secret), when well formed (64 hex digits of secret).
fn parse_pair(s: &str) -> Option<(&str, &str, &str)> {
    let (id, secret) = s.split_once('.')?;
    let (t, k) = parse_link_id(id)?;
    hex_of_len(secret, 64).then_some((t, k, secret))
}

/// A return URL the page may link to: absolute `https://` (or `http://` on a loopback host, for a vendor
/// developing locally), without spaces or control characters.
pub fn check_return_url(u: &str) -> Result<(), ManageError> {
    let bad = || {
        ManageError::invalid(
            "invalid_return_url",
            format!("returnUrl must be an absolute https:// URL of at most {MAX_RETURN_URL} characters (http:// only for localhost)"),
        )
    };
    if u.len() > MAX_RETURN_URL || u.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let uri: http::Uri = u.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if matches!(host, "localhost" | "127.0.0.1" | "[::1]") => Ok(()),
        _ => Err(bad()),
    }
}

fn link_view(l: &SetupLink, now: i64) -> LinkView {
    LinkView {
        id: link_id(&l.tenant, &l.key),
        kind: l.kind.as_str(),
        created: l.created.clone(),
        expires: rfc3339(l.expires),
        expired: l.expires <= now,
        return_url: l.return_url.clone(),
        used: l.used.clone(),
        revoked: l.revoked.clone(),
    }
}

fn refusal_of(l: &SetupLink, now: i64) -> Option<LinkRefusal> {
    if l.revoked.is_some() {
        Some(LinkRefusal::Revoked)
    } else if l.expires <= now {
        Some(LinkRefusal::Expired)
    } else if l.kind == LinkKind::InApp && l.used.is_some() {
        Some(LinkRefusal::Used)
    } else {
        None
    }
}

fn no_link(tenant: &str, id: &str) -> ManageError {
    ManageError::new(
        404,
        "link_not_found",
        format!(
            "Tenant \"{tenant}\" has no setup link \"{}\"",
            id.escape_default()
        ),
    )
}

impl Manager {
    /// A new setup link for tenant `id`; `origin` is the public scheme and host the link is served at.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_link(
        &self,
        p: &Principal,
        id: &str,
        kind: &str,
        days: Option<u32>,
        minutes: Option<u32>,
        return_url: Option<&str>,
        origin: &str,
    ) -> Result<NewLink, ManageError> {
        let kind = LinkKind::parse(kind).ok_or_else(|| {
            ManageError::invalid(
                "invalid_kind",
                "kind is \"in_app\" (valid minutes, opens once) or \"shareable\" (valid days, revocable)",
            )
        })?;
        if id == crate::auth::DEFAULT_TENANT {
            return Err(ManageError::invalid(
                "reserved_tenant_id",
                "The base URL's directory has no setup page: setup links are for registered tenants",
            ));
        }
        let lifetime = match kind {
            LinkKind::InApp => {
                if days.is_some() {
                    return Err(ManageError::invalid(
                        "invalid_lifetime",
                        "an in_app link is valid minutes: give minutes, not days",
                    ));
                }
                let m = minutes.unwrap_or(DEFAULT_IN_APP_MINUTES);
                if !(1..=MAX_IN_APP_MINUTES).contains(&m) {
                    return Err(ManageError::invalid(
                        "invalid_lifetime",
                        format!(
                            "an in_app link is valid 1 to {MAX_IN_APP_MINUTES} minutes, not {m}"
                        ),
                    ));
                }
                i64::from(m) * 60
            }
            LinkKind::Shareable => {
                if minutes.is_some() {
                    return Err(ManageError::invalid(
                        "invalid_lifetime",
                        "a shareable link is valid days: give days, not minutes",
                    ));
                }
                let d = days.unwrap_or(DEFAULT_SHAREABLE_DAYS);
                if !(1..=MAX_SHAREABLE_DAYS).contains(&d) {
                    return Err(ManageError::invalid(
                        "invalid_lifetime",
                        format!(
                            "a shareable link is valid 1 to {MAX_SHAREABLE_DAYS} days, not {d}"
                        ),
                    ));
                }
                i64::from(d) * 86_400
            }
        };
        if let Some(u) = return_url {
            check_return_url(u)?;
        }
        self.live_tenant(id).await?;
        let secret = generate_token();
        let link = SetupLink {
            tenant: id.to_string(),
            key: hex::encode(rand::random::<[u8; 8]>()),
            kind,
            hash: token_hash(&secret),
            created: crate::model::now_rfc3339(),
            expires: unix_now() + lifetime,
            return_url: return_url.map(str::to_string),
            used: None,
            revoked: None,
        };
        let public = link_id(id, &link.key);
        let (r, _) = audited(
            self.entry(p, id, "link.create", &public),
            self.store.put_link(&link),
        )
        .await;
        r?;
        Ok(NewLink {
            url: format!(
                "{}{SETUP_PATH}/{public}.{secret}",
                origin.trim_end_matches('/')
            ),
            id: public,
            kind: kind.as_str(),
            expires: rfc3339(link.expires),
        })
    }

    /// The tenant's links, oldest first: never a secret or a hash.
    pub async fn list_links(&self, id: &str) -> Result<Vec<LinkView>, ManageError> {
        self.tenant(id).await?;
        let now = unix_now();
        Ok(self
            .store
            .list_links(id)
            .await?
            .iter()
            .map(|l| link_view(l, now))
            .collect())
    }

    /// Revoke a link: it opens nothing more, and the sessions it opened end at their next request.
    pub async fn revoke_link(
        &self,
        p: &Principal,
        id: &str,
        link: &str,
    ) -> Result<(), ManageError> {
        self.tenant(id).await?;
        let key = match parse_link_id(link) {
            Some((t, k)) if t == id => k,
            _ => return Err(no_link(id, link)),
        };
        let now = crate::model::now_rfc3339();
        let (r, _) = audited(
            self.entry(p, id, "link.revoke", link),
            self.store.revoke_link(id, key, &now),
        )
        .await;
        if !r? {
            return Err(no_link(id, link));
        }
        Ok(())
    }

    /// Open a link (`<id>.<secret>`, as in its URL): a new session, whose id is returned once (for the
    /// cookie). Audited `link.open` with the link as the actor.
    pub async fn open_link(&self, pair: &str) -> Result<(PageSession, String), LinkRefusal> {
        let (tenant, key, secret) = parse_pair(pair).ok_or(LinkRefusal::Unknown)?;
        let link = self
            .store
            .link(tenant, key)
            .await
            .map_err(|_| LinkRefusal::Unavailable)?
            .ok_or(LinkRefusal::Unknown)?;
        if !bool::from(token_hash(secret).as_bytes().ct_eq(link.hash.as_bytes())) {
            return Err(LinkRefusal::Unknown);
        }
        let now = unix_now();
        if let Some(r) = refusal_of(&link, now) {
            return Err(r);
        }
        self.page_tenant(tenant).await?;
        let session_secret = generate_token();
        let mut expires = now + SESSION_SECS;
        if link.kind == LinkKind::Shareable {
            expires = expires.min(link.expires);
        }
        let session = SetupSession {
            tenant: tenant.to_string(),
            hash: token_hash(&session_secret),
            link: key.to_string(),
            expires,
        };
        let public = link_id(tenant, key);
        let p = Principal(format!("setup-link:{public}"));
        let (r, _) = audited(
            self.entry(&p, tenant, "link.open", &public),
            self.store.open_link(
                tenant,
                key,
                link.kind == LinkKind::InApp,
                &crate::model::now_rfc3339(),
                now,
                &session,
            ),
        )
        .await;
        match r.map_err(|_| LinkRefusal::Unavailable)? {
            LinkOpen::Opened => Ok((
                PageSession {
                    tenant: tenant.to_string(),
                    link_id: public,
                    link,
                    secret: session_secret.clone(),
                    expires,
                },
                format!("{}.{session_secret}", link_id(tenant, key)),
            )),
            LinkOpen::Refused => {
                // Changed meanwhile (another tab used it, the vendor revoked it): read it again to say which.
                let again = self
                    .store
                    .link(tenant, key)
                    .await
                    .map_err(|_| LinkRefusal::Unavailable)?
                    .ok_or(LinkRefusal::Unknown)?;
                Err(refusal_of(&again, unix_now()).unwrap_or(LinkRefusal::Used))
            }
        }
    }

    /// The live session a cookie (`<link id>.<session id>`) names: the session exists under the link's
    /// tenant, has not ended, and its link is not revoked.
    pub async fn page_session(&self, cookie: &str) -> Result<PageSession, LinkRefusal> {
        let (tenant, key, secret) = parse_pair(cookie).ok_or(LinkRefusal::NoSession)?;
        let s = self
            .store
            .setup_session(tenant, &token_hash(secret))
            .await
            .map_err(|_| LinkRefusal::Unavailable)?
            .ok_or(LinkRefusal::NoSession)?;
        let now = unix_now();
        if s.expires <= now || s.link != key {
            return Err(LinkRefusal::NoSession);
        }
        let link = self
            .store
            .link(tenant, key)
            .await
            .map_err(|_| LinkRefusal::Unavailable)?
            .ok_or(LinkRefusal::NoSession)?;
        if link.revoked.is_some() {
            return Err(LinkRefusal::Revoked);
        }
        self.page_tenant(tenant).await?;
        Ok(PageSession {
            tenant: tenant.to_string(),
            link_id: link_id(tenant, key),
            link,
            secret: secret.to_string(),
            expires: s.expires,
        })
    }

    async fn page_tenant(&self, tenant: &str) -> Result<(), LinkRefusal> {
        match self.store.tenant(tenant).await {
            Ok(Some(t)) if t.state == TenantState::Deleting => Err(LinkRefusal::TenantClosed),
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(LinkRefusal::Unknown),
            Err(_) => Err(LinkRefusal::Unavailable),
        }
    }

    /// Record an action of the setup page that changes nothing (a connection check) in the audit trail.
    pub async fn note(
        &self,
        p: &Principal,
        id: &str,
        action: &str,
        target: &str,
    ) -> Result<(), ManageError> {
        let (r, _) = audited(self.entry(p, id, action, target), self.store.audit_only()).await;
        Ok(r?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_pairs() {
        assert_eq!(
            parse_link_id("acme-co_0123456789abcdef"),
            Some(("acme-co", "0123456789abcdef"))
        );
        for bad in [
            "acme_0123",
            "Acme_0123456789abcdef",
            "_0123456789abcdef",
            "acme_0123456789ABCDEF",
            "acme0123456789abcdef",
        ] {
            assert_eq!(parse_link_id(bad), None, "{bad}");
        }
        let secret = "a".repeat(64);
        assert!(parse_pair(&format!("acme_0123456789abcdef.{secret}")).is_some());
        assert!(parse_pair(&format!("acme_0123456789abcdef.{secret}a")).is_none());
        assert!(parse_pair("acme_0123456789abcdef").is_none());
    }

    #[test]
    fn return_urls() {
        for ok in [
            "https://app.vendor.example/settings/scim",
            "http://localhost:3000/back",
            "http://127.0.0.1/x",
        ] {
            assert!(check_return_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "http://vendor.example/",
            "/relative",
            "https://a b",
            "data:text/html,x",
        ] {
            assert!(check_return_url(bad).is_err(), "{bad}");
        }
    }
}
