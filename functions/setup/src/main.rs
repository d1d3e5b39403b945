//! Lambda handler of the customer's setup page (`/setup`, `/setup/{link or form}`): the core's setup
//! router (see `lib.rs`), run by `lambda_http`. Needs no SCIM token; reads the OAuth signing keys when
//! configured, so that the page shows the token endpoint.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    scim_core::logging::init();
    let state = scim_core::bootstrap::setup_state().await?;
    let manager = setup::manager(&state)?;
    scim_core::http::lambda::run(setup::app(state, Arc::new(manager))).await
}
