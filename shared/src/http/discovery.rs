//! The discovery handlers (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`, and their
//! routes ([`routes`]); the documents themselves are built by the crate's `discovery` module.
//!
//! Imports: `state`, `extract`, `respond` of `http`; the crate's `discovery`, `error`.

use super::extract::PathParam;
use super::respond::scim_json;
use super::state::{AppState, RequestCtx};
use crate::discovery;
use crate::error::{ScimError, ScimResult};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

/// `/ServiceProviderConfig`, `/Schemas[/{urn}]` and `/ResourceTypes[/{name}]`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(spc))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{urn}", get(schema_one))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{name}", get(resource_type_one))
}

async fn spc(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    let mut doc = discovery::service_provider_config(&ctx.base_url, &st.service.limits);
    if st.auth.oauth().is_some() {
        let origin = ctx
            .base_url
            .strip_suffix(st.http.base_path.as_str())
            .unwrap_or(&ctx.base_url);
        discovery::add_oauth_scheme(&mut doc, &format!("{origin}/oauth2/token"));
    }
    scim_json(StatusCode::OK, &doc)
}

async fn schemas(State(st): State<AppState>, Extension(ctx): Extension<RequestCtx>) -> Response {
    let docs = discovery::schemas(&st.resource_types)
        .into_iter()
        .map(|s| discovery::schema_doc(s, &ctx.base_url))
        .collect();
    scim_json(StatusCode::OK, &discovery::list(docs))
}

async fn schema_one(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(urn): PathParam,
) -> ScimResult<Response> {
    let s = discovery::schemas(&st.resource_types)
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(&urn))
        .ok_or_else(|| {
            ScimError::not_found(format!(
                "Schema {urn} is not served here; GET /Schemas lists those that are"
            ))
        })?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::schema_doc(s, &ctx.base_url),
    ))
}

async fn resource_types(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
) -> Response {
    let docs = st
        .resource_types
        .iter()
        .map(|rt| discovery::resource_type_doc(rt, &ctx.base_url))
        .collect();
    scim_json(StatusCode::OK, &discovery::list(docs))
}

async fn resource_type_one(
    State(st): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    PathParam(name): PathParam,
) -> ScimResult<Response> {
    let rt = st
        .resource_types
        .iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&name))
        .ok_or_else(|| {
            ScimError::not_found(format!(
                "Resource type {name} is not served here; GET /ResourceTypes lists those that are"
            ))
        })?;
    Ok(scim_json(
        StatusCode::OK,
        &discovery::resource_type_doc(rt, &ctx.base_url),
    ))
}
