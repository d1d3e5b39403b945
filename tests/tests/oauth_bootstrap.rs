//! How a Lambda function starts with OAuth: `bootstrap::token_endpoint_state` and `lambda_state` read the
//! signing keys from the SSM SecureString parameter named by `SCIM_OAUTH_KEYS_SSM_PARAMETER` (moto's SSM
//! here, through `AWS_ENDPOINT_URL`), refuse out-of-range settings, and without keys the token function
//! refuses to start while the SCIM functions run on static tokens.
//!
//! One test in its own binary: it sets environment variables, which no other test may see.

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use scim_core::oauth::signing::KeyRing;
use scim_tests::{endpoint, fresh_store, Engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_start_reads_the_signing_keys_from_ssm() {
    let moto = endpoint(Engine::Moto);
    let store = fresh_store(Engine::Moto).await;
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&moto)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build(),
    );
    let name = format!("/scim-test/{}/bootstrap-keys", std::process::id());
    let text = format!(
        "{},{}",
        KeyRing::generate_text("current"),
        KeyRing::generate_text("previous")
    );
    ssm.put_parameter()
        .name(&name)
        .value(&text)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();

    // As the template configures a function (every AWS call to moto).
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("SCIM_TABLE", store.table()),
        ("SCIM_MULTI_TENANT", "true"),
        ("SCIM_OAUTH_KEYS_SSM_PARAMETER", name.as_str()),
    ] {
        std::env::set_var(k, v);
    }
    for k in [
        "SCIM_TOKEN_SSM_PARAMETER",
        "SCIM_BEARER_TOKEN",
        "SCIM_OAUTH_SIGNING_KEYS",
        "SCIM_LOCAL_ENGINE",
        "SCIM_DYNAMODB_ENDPOINT",
        "SCIM_OAUTH_TOKEN_LIFETIME_MINUTES",
    ] {
        std::env::remove_var(k);
    }
    let state = scim_core::bootstrap::token_endpoint_state()
        .await
        .expect("the token function starts");
    let oauth = state.auth.oauth().expect("OAuth on");
    assert_eq!(oauth.ring().kids(), vec!["current", "previous"]);
    assert_eq!(oauth.settings().token_lifetime.as_secs(), 3600);
    let scim = scim_core::bootstrap::lambda_state()
        .await
        .expect("a SCIM function starts");
    assert!(
        scim.auth.oauth().is_some(),
        "the SCIM functions verify access tokens with the same keys"
    );

    // Out of range: the function refuses to start, saying why.
    std::env::set_var("SCIM_OAUTH_TOKEN_LIFETIME_MINUTES", "30");
    let e = scim_core::bootstrap::token_endpoint_state()
        .await
        .err()
        .expect("refused");
    assert!(e.contains("60-360"), "{e}");
    std::env::set_var("SCIM_OAUTH_TOKEN_LIFETIME_MINUTES", "360");
    let state = scim_core::bootstrap::token_endpoint_state().await.unwrap();
    assert_eq!(
        state
            .auth
            .oauth()
            .unwrap()
            .settings()
            .token_lifetime
            .as_secs(),
        6 * 3600
    );

    // A parameter that does not exist: refused, naming it.
    std::env::set_var(
        "SCIM_OAUTH_KEYS_SSM_PARAMETER",
        "/scim-test/no-such-parameter",
    );
    let e = scim_core::bootstrap::token_endpoint_state()
        .await
        .err()
        .expect("refused");
    assert!(e.contains("/scim-test/no-such-parameter"), "{e}");

    // OAuth off (the template passes an empty name): the token function refuses to start, a SCIM
    // function runs without OAuth.
    std::env::set_var("SCIM_OAUTH_KEYS_SSM_PARAMETER", "");
    let e = scim_core::bootstrap::token_endpoint_state()
        .await
        .err()
        .expect("refused");
    assert!(e.contains("no OAuth signing keys"), "{e}");
    let scim = scim_core::bootstrap::lambda_state()
        .await
        .expect("a SCIM function starts");
    assert!(scim.auth.oauth().is_none());
}
