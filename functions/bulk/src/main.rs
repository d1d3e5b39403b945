//! Lambda handler for `/Bulk`, `/Me` and `POST /.search`: the shared router, run by `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    scim_core::logging::init();
    let state = scim_core::bootstrap::lambda_state().await?;
    scim_core::http::lambda::run(scim_core::http::bulk_router(state)).await
}
