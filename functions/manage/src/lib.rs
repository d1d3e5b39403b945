//! The management API's Lambda function: `scim_core::http::manage::routes` behind API Gateway's IAM
//! authorisation. API Gateway lets a request reach this function only when its SigV4 signature is valid
//! and the caller's IAM policy allows `execute-api:Invoke` on the route (infra/template.yaml, docs/deploy.md);
//! it then names the caller in the event's `requestContext.authorizer.iam.userArn`. [`app`] puts that ARN
//! into the request as the [`Principal`] every management route needs (and every audit entry records).
//! A request without it — a route deployed without IAM authorisation, a SCIM token, a JWT authorizer's
//! claims — carries no principal, and the router answers 401 `unauthenticated`.
//!
//! The status route's request figures come from CloudWatch (`scim_core::metrics::cloudwatch`, set up in
//! `main.rs`): this function serves no SCIM request, so its own metrics hold none.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use scim_core::http::manage::iam_principal;
use scim_core::http::AppState;
use scim_core::manage::{ManageSettings, Manager, Principal};
use std::sync::Arc;

/// The function's router: the management routes, each request's principal taken from the Lambda event's
/// IAM authoriser context.
pub fn app(state: AppState, manager: Arc<Manager>) -> Router {
    scim_core::http::manage::routes(state, manager)
        .layer(axum::middleware::from_fn(principal_from_iam))
}

/// The management operations on the state's store, telling the state's tenant gate of every state change
/// made here (settings from the environment: `ManageSettings::from_env`).
pub fn manager(state: &AppState) -> Result<Manager, String> {
    Ok(
        Manager::new(state.service.store.clone(), ManageSettings::from_env()?)
            .with_gate(state.gate.clone()),
    )
}

async fn principal_from_iam(mut req: Request, next: Next) -> Response {
    // Only what API Gateway wrote into the event counts: no header of the request can set it.
    req.extensions_mut().remove::<Principal>();
    if let Some(p) = iam_principal(&req) {
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}
