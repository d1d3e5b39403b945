//! Lambda handler of the customer's setup page (`/setup`, `/setup/{link or form}`): the core's setup
//! router (see `lib.rs`), run by `lambda_http`. Needs no SCIM token; reads the OAuth signing keys when
//! configured, so that the page shows the token endpoint, and the tenant's request figures from
//! CloudWatch, as the manage function's status route does.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    scim_core::logging::init();
    let state = scim_core::bootstrap::setup_state().await?;
    let manager = setup::manager(&state)?;
    // The health section's request figures: the SCIM functions' metrics, in CloudWatch, read by the same
    // reader as the manage function's status route. Not under `cargo lambda watch` (whose requests went
    // to a local engine, counted nowhere in CloudWatch).
    #[cfg(not(feature = "local-engine"))]
    let manager = manager.with_figures(Arc::new(
        scim_core::metrics::cloudwatch::CloudWatchFigures::from_env().await,
    ));
    scim_core::http::lambda::run(setup::app(state, Arc::new(manager))).await
}
