//! Lambda handler for the SCIM `/Users` resource: the shared router, run by `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::bootstrap::lambda_state().await?;
    shared::http::lambda::run(shared::http::users_router(state)).await
}
