//! The Events API: `GET <Tenant URL>/Events?after=<cursor>&limit=<n>` — a tenant's change events in order
//! from the events log (`docs/events.md`), behind the same tenant resolution and authentication as that
//! tenant's SCIM routes (the SCIM layer runs first). Thin: parse, read the log, answer.
//!
//! Cursors are signed with the server's keys ([`ServerKeys`]): the OAuth signing key ring when OAuth is
//! on (every key of the ring verifies, its first signs), else a key derived from the single-tenant token.
//! Pages are bounded by bytes ([`PAGE_BYTES`]) and written out as the log holds them (no re-encoding).
//!
//! Imports: `state`, `respond` of `http`; the crate's `events`, `error`, `auth` (through the state),
//! `oauth::signing`.

use super::respond::{ScimBodyMarker, SCIM_JSON};
use super::state::{AppState, RequestCtx};
use crate::error::{ScimError, ScimResult, ScimType};
use crate::events::cursor::{self, CursorKeys};
use crate::events::log::{Continuity, Start, MAX_PAGE, PAGE_BYTES};
use crate::oauth::signing::KeyRing;
use aws_lc_rs::hmac;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

/// Events per page when `limit` is not given.
const DEFAULT_PAGE: usize = 100;
/// The key id of cursors signed with the key derived from the single-tenant token (`~` is never in a
/// ring's key ids), and of unsigned ones (a server with neither key: tenant tokens only, OAuth off).
const TOKEN_KID: &str = "~t";
const UNKEYED_KID: &str = "~u";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/Events", get(list))
}

/// The keys this server signs and verifies cursors with.
struct ServerKeys<'a> {
    ring: Option<&'a KeyRing>,
    token: Option<hmac::Key>,
}

impl<'a> ServerKeys<'a> {
    fn of(st: &'a AppState) -> Self {
        let token = st
            .auth
            .derived_key("events-cursor")
            .map(|k| hmac::Key::new(hmac::HMAC_SHA256, &k));
        ServerKeys {
            ring: st.auth.oauth().map(|o| o.ring()),
            token,
        }
    }
}

impl CursorKeys for ServerKeys<'_> {
    fn sign(&self, data: &[u8]) -> (String, Vec<u8>) {
        match (self.ring, &self.token) {
            (Some(ring), _) => {
                let (kid, tag) = ring.sign(data);
                (kid.to_string(), tag)
            }
            (None, Some(key)) => (TOKEN_KID.into(), hmac::sign(key, data).as_ref().to_vec()),
            (None, None) => (UNKEYED_KID.into(), sha256(data)),
        }
    }

    fn verify(&self, kid: &str, data: &[u8], tag: &[u8]) -> bool {
        match kid {
            TOKEN_KID => self
                .token
                .as_ref()
                .is_some_and(|k| hmac::verify(k, data, tag).is_ok()),
            // Accepted only where no key could have signed it.
            UNKEYED_KID => self.ring.is_none() && self.token.is_none() && sha256(data) == tag,
            kid => self.ring.is_some_and(|r| r.verify(kid, data, tag)),
        }
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

async fn list(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    RawQuery(q): RawQuery,
) -> ScimResult<Response> {
    let Some(log) = st.events.as_ref() else {
        return Err(ScimError::not_found(
            "Change events are not enabled on this server",
        ));
    };
    let keys = ServerKeys::of(&st);
    let (mut start, mut limit) = (Start::Oldest, DEFAULT_PAGE);
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "after" => {
                let pos = cursor::decode(&keys, log.table(), &ctx.tenant, &v);
                start = Start::After(pos.ok_or_else(|| {
                    not_ours("is not one this server issued for this tenant's events")
                })?);
            }
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ScimError::invalid_value(format!(
                            "limit must be a whole number from 1 to {MAX_PAGE}"
                        ))
                    })?
            }
            _ => {}
        }
    }
    let page = log.read_page(&ctx.tenant, start, limit, PAGE_BYTES).await?;
    match page.continuity {
        Continuity::Whole => {}
        Continuity::BeyondHead => {
            return Err(not_ours(
                "is past the last event of this tenant's log: it is not a position this log issued",
            ))
        }
        Continuity::OtherLog => return Err(not_ours(
            "names an event this tenant's log does not hold at its position: it is another log's",
        )),
        Continuity::Expired => {
            let secs = log.retention().as_secs();
            let kept = if secs % 86_400 == 0 {
                format!("{} days", secs / 86_400)
            } else {
                format!("{secs} seconds")
            };
            return Err(ScimError::bad_request(
                ScimType::ExpiredCursor,
                format!(
                    "Events after this cursor have expired (events are kept {kept}), so changes were missed: \
                     resync by reading the Users and Groups in full, then read the events again without 'after' \
                     (from the oldest kept)"
                ),
            ));
        }
    }
    let next = cursor::encode(&keys, log.table(), &ctx.tenant, &page.next);
    Ok(page_response(
        page.events.iter().map(|e| e.json.as_str()),
        &next,
        page.more,
        page.size_limited,
    ))
}

/// A 400 `invalidValue` for a cursor that is not a position of this tenant's log.
fn not_ours(why: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "The cursor {why}; use the nextCursor of an earlier page of the same tenant and server, \
         or omit 'after' to start from the oldest event kept"
    ))
}

/// `{"events": [...], "nextCursor": ..., "hasMore": ..., "sizeLimited": ...}`, the events' JSON copied as
/// logged.
fn page_response<'a>(
    events: impl Iterator<Item = &'a str> + Clone,
    next: &str,
    more: bool,
    size_limited: bool,
) -> Response {
    let len: usize = events.clone().map(|e| e.len() + 1).sum();
    let mut body = String::with_capacity(len + next.len() + 96);
    body.push_str("{\"events\":[");
    for (i, e) in events.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(e);
    }
    body.push_str("],\"nextCursor\":");
    body.push_str(&serde_json::Value::from(next).to_string());
    body.push_str(&format!(
        ",\"hasMore\":{more},\"sizeLimited\":{size_limited}}}"
    ));
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp.extensions_mut().insert(ScimBodyMarker);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_json_with_the_events_as_logged() {
        let resp = page_response(
            ["{\"id\":\"1-0\"}", "{\"id\":\"2-0\"}"].into_iter(),
            "abc",
            true,
            false,
        );
        assert_eq!(resp.headers()[header::CONTENT_TYPE], SCIM_JSON);
        let empty = page_response(std::iter::empty(), "c", false, false);
        assert_eq!(empty.status(), StatusCode::OK);
    }

    #[test]
    fn unkeyed_cursors_are_refused_where_a_key_exists() {
        let ring = KeyRing::parse(&KeyRing::generate_text("k1")).unwrap();
        let none = ServerKeys {
            ring: None,
            token: None,
        };
        let (kid, tag) = none.sign(b"x");
        assert_eq!(kid, UNKEYED_KID);
        assert!(none.verify(&kid, b"x", &tag));
        let keyed = ServerKeys {
            ring: Some(&ring),
            token: None,
        };
        assert!(
            !keyed.verify(&kid, b"x", &tag),
            "a server with keys never takes an unsigned cursor"
        );
        let token = ServerKeys {
            ring: None,
            token: Some(hmac::Key::new(hmac::HMAC_SHA256, &[7; 32])),
        };
        let (kid, tag) = token.sign(b"x");
        assert_eq!(kid, TOKEN_KID);
        assert!(token.verify(&kid, b"x", &tag) && !token.verify(&kid, b"y", &tag));
        assert!(!keyed.verify(&kid, b"x", &tag));
        let (kid, tag) = keyed.sign(b"x");
        assert!(keyed.verify(&kid, b"x", &tag) && !token.verify(&kid, b"x", &tag));
    }
}
