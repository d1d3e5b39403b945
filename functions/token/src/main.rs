//! Lambda handler for the OAuth 2.0 token endpoint (`/oauth2/token`, `/{tenant}/oauth2/token`): the shared
//! router's token routes, run by `lambda_http`. Needs a signing key ring (docs/oauth.md), no SCIM token.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    scim_core::logging::init();
    let state = scim_core::bootstrap::token_endpoint_state().await?;
    scim_core::http::lambda::run(scim_core::http::token_router(state)).await
}
