//! The Events API: `GET <Tenant URL>/Events?after=<cursor>&limit=<n>` — a tenant's change events in order
//! from the events log (`docs/events.md`), behind the same tenant resolution and authentication as that
//! tenant's SCIM routes (the SCIM layer runs first). Thin: parse, read the log, answer.
//!
//! Imports: `state`, `respond` of `http`; the crate's `events`, `error`.

use super::respond::scim_json;
use super::state::{AppState, RequestCtx};
use crate::error::{ScimError, ScimResult};
use crate::events::log::{decode_cursor, encode_cursor, MAX_PAGE};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Value};

/// Events per page when `limit` is not given.
const DEFAULT_PAGE: usize = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/Events", get(list))
}

async fn list(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>, RawQuery(q): RawQuery) -> ScimResult<Response> {
    let Some(log) = st.events.as_ref() else {
        return Err(ScimError::not_found("Change events are not enabled on this server"));
    };
    let (mut after, mut limit) = (0u64, DEFAULT_PAGE);
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "after" => {
                after = decode_cursor(&v).ok_or_else(|| {
                    ScimError::invalid_value("The cursor is not one this server issued; use the nextCursor of an earlier page, or omit it to start from the oldest event kept")
                })?
            }
            "limit" => {
                limit = v.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                    ScimError::invalid_value(format!("limit must be a whole number from 1 to {MAX_PAGE}"))
                })?
            }
            _ => {}
        }
    }
    let page = log.read(&ctx.tenant, after, limit).await?;
    let events: Vec<Value> = page.events.into_iter().map(|(_, e)| e).collect();
    Ok(scim_json(StatusCode::OK, &json!({"events": events, "nextCursor": encode_cursor(page.last), "hasMore": page.more})))
}
