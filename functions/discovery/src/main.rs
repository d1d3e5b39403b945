//! Lambda handler for the SCIM discovery endpoints (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`): the shared router, run by `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::bootstrap::lambda_state().await?;
    shared::http::lambda::run(shared::http::discovery_router(state)).await
}
