//! Lambda handler for the management API (`/manage/v1`): the shared management router behind API
//! Gateway's IAM authorisation (the caller is the event's IAM principal; see `lib.rs`), run by
//! `lambda_http`. Needs no SCIM token.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    scim_core::logging::init();
    let state = scim_core::bootstrap::manage_state().await?;
    let manager = manage::manager(&state)?;
    // The status route's request figures: the SCIM functions' metrics, in CloudWatch. Not under
    // `cargo lambda watch` (whose requests went to a local engine, counted nowhere in CloudWatch).
    #[cfg(not(feature = "local-engine"))]
    let manager = manager.with_figures(Arc::new(
        scim_core::metrics::cloudwatch::CloudWatchFigures::from_env().await,
    ));
    scim_core::http::lambda::run(manage::app(state, Arc::new(manager))).await
}
