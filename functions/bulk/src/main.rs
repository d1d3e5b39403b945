//! Lambda handler for `/Bulk`, `/Me` and `POST /.search`: the shared router, run by `lambda_http`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::bootstrap::lambda_state().await?;
    shared::http::lambda::run(shared::http::bulk_router(state)).await
}
