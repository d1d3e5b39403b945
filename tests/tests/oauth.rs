//! OAuth 2.0 end to end, over HTTP, on both engines: the token endpoint (client secrets by Basic, body
//! and both; Workload Identity Federation assertions against a JWKS served on loopback), access tokens on
//! their tenant's SCIM routes and nowhere else, expiry, revocation within its bound, rotation, every
//! malformed request's RFC 6749 error; and Entra's Test Connection with OAuth, on the local server and
//! through the Lambda functions' routers with API Gateway events.

use reqwest::Method;
use scim_core::oauth::assertion::{JwksSettings, WifTrust};
use scim_core::oauth::credentials::{self, DEFAULT_SECRET_DAYS};
use scim_core::oauth::OAuthSettings;
use scim_core::store::{AddSecret, ClientStore, OAuthClient, TokenStore};
use scim_tests::jwks::{self as kit, JwksServer, TestKey};
use scim_tests::{Engine, Resp, TestServer};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The revocation bound the tests run with (production default: 30 s).
const CLIENT_CHECK: Duration = Duration::from_millis(1000);

fn settings() -> OAuthSettings {
    OAuthSettings {
        client_check: CLIENT_CHECK,
        ..OAuthSettings::default()
    }
}

fn jwks_settings() -> JwksSettings {
    JwksSettings {
        fetch_timeout: Duration::from_millis(2000),
        refetch_interval: Duration::from_millis(200),
        ..JwksSettings::default()
    }
}

/// A server that has OAuth on (each test's, on both engines: `both_engines!` at the end).
async fn server(engine: Engine) -> TestServer {
    TestServer::start_oauth(engine, settings(), jwks_settings()).await
}

/// Entra's Test Connection request (a random `userName`; one Query on `gsi1`).
const TEST_CONNECTION: &str =
    "/Users?filter=userName%20eq%20%228f5b9e0e-3f6d-4a57-9d3b-1b7f0c7e9a21%22";

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A client of `tenant` (registered first unless it is `default`) with one secret; (client id, secret).
async fn new_client(srv: &TestServer, tenant: &str) -> (String, String) {
    if tenant != "default" {
        srv.store
            .create_tenant(tenant, "2026-12-02T00:00:00Z")
            .await
            .unwrap();
    }
    let (secret, stored) =
        credentials::new_secret(DEFAULT_SECRET_DAYS, now_unix(), "2026-12-02T00:00:00Z").unwrap();
    let c = OAuthClient {
        tenant: tenant.into(),
        id: credentials::new_client_id(),
        label: String::new(),
        created: String::new(),
        revoked: false,
        revoked_at: None,
        secrets: 1,
    };
    srv.store.create_client(&c, &stored).await.unwrap();
    (c.id, secret)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn token_url(srv: &TestServer, tenant: &str) -> String {
    if tenant == "default" {
        format!("{}/oauth2/token", srv.origin())
    } else {
        format!("{}/{tenant}/oauth2/token", srv.origin())
    }
}

async fn resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// POST a form to the tenant's token endpoint, with an optional Basic header.
async fn token_request(
    srv: &TestServer,
    tenant: &str,
    basic: Option<(&str, &str)>,
    form: &str,
) -> Resp {
    let mut rb = client()
        .post(token_url(srv, tenant))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    resp(rb.send().await.unwrap()).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Asserts a successful token answer and returns the access token.
fn issued(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        (
            r.body["token_type"].as_str(),
            r.body["expires_in"].as_u64(),
            r.body["scope"].as_str()
        ),
        (Some("Bearer"), Some(3600), Some("scim")),
        "{}",
        r.text
    );
    r.body["access_token"].as_str().unwrap().to_string()
}

/// Asserts an RFC 6749 §5.2 error: status, code, no SCIM body, not cacheable.
fn refused(r: &Resp, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (status, Some(code)),
        "{}",
        r.text
    );
    assert!(r.body["error_description"].is_string(), "{}", r.text);
    assert!(
        r.body.get("schemas").is_none() && !r.text.contains("urn:ietf:params:scim"),
        "never a SCIM body: {}",
        r.text
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    if status == 401 {
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
            "{:?}",
            r.headers
        );
    }
}

async fn scim_get(srv: &TestServer, tenant: &str, token: &str, path: &str) -> Resp {
    let base = if tenant == "default" {
        srv.base.clone()
    } else {
        srv.tenant_base(tenant)
    };
    srv.call_at(&base, token, Method::GET, path, None).await
}

async fn token_by_basic_body_and_both(srv: TestServer) {
    let (id, secret) = new_client(&srv, "acme").await;
    let grant = [("grant_type", "client_credentials")];
    let by_basic = issued(&token_request(&srv, "acme", Some((&id, &secret)), &form(&grant)).await);
    let by_body = issued(
        &token_request(
            &srv,
            "acme",
            None,
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "scim"),
            ]),
        )
        .await,
    );
    let by_both = issued(
        &token_request(
            &srv,
            "acme",
            Some((&id, &secret)),
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ]),
        )
        .await,
    );
    // Both, disagreeing: refused, with the Basic challenge.
    let r = token_request(
        &srv,
        "acme",
        Some((&id, &secret)),
        &form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "another"),
        ]),
    )
    .await;
    refused(&r, 401, "invalid_client");

    let tenant_token = srv.add_tenant_token("acme", None).await;
    for token in [&by_basic, &by_body, &by_both, &tenant_token] {
        let r = scim_get(&srv, "acme", token, TEST_CONNECTION).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // A SCIM request with an access token costs what it costs with a tenant token (whose record is
        // cached after its first use), the first after a token request included (the grant read the
        // client): no extra DynamoDB call.
        if token != &tenant_token {
            assert_eq!(
                r.calls(),
                1,
                "userName eq: one Query on gsi1, nothing for the token"
            );
        }
    }
    assert_eq!(
        scim_get(&srv, "acme", &tenant_token, TEST_CONNECTION)
            .await
            .calls(),
        1,
        "the tenant token, cached"
    );
    // On its tenant only: another tenant's URL, the base URL: 401 (a SCIM error there).
    srv.store.create_tenant("globex", "x").await.unwrap();
    for (tenant, token) in [("globex", &by_basic), ("default", &by_basic)] {
        let r = scim_get(&srv, tenant, token, "/Users").await;
        assert_eq!(r.status, 401, "{tenant}: {}", r.text);
    }
    // A tampered token is refused.
    let mut forged = by_basic.clone();
    forged.pop();
    forged.push(if by_basic.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(scim_get(&srv, "acme", &forged, "/Users").await.status, 401);
    // Static tokens keep working beside it.
    assert_eq!(srv.get("/Users").await.status, 200);
    let tenant_token = srv.add_tenant("initech").await;
    assert_eq!(
        scim_get(&srv, "initech", &tenant_token, "/Users")
            .await
            .status,
        200
    );

    // The discovery document says so, with the tenant's token endpoint.
    let r = scim_get(&srv, "acme", &by_basic, "/ServiceProviderConfig").await;
    let schemes = r.body["authenticationSchemes"].as_array().unwrap();
    assert_eq!(
        schemes
            .iter()
            .map(|s| s["type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["oauthbearertoken", "oauth2"]
    );
    assert!(
        schemes[1]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("{}/acme/oauth2/token", srv.origin())),
        "{}",
        r.text
    );

    // The base URL's directory has its token endpoint at /oauth2/token; its tokens are not acme's.
    let (did, dsecret) = new_client(&srv, "default").await;
    let default_token =
        issued(&token_request(&srv, "default", Some((&did, &dsecret)), &form(&grant)).await);
    assert_eq!(
        scim_get(&srv, "default", &default_token, "/Users")
            .await
            .status,
        200
    );
    assert_eq!(
        scim_get(&srv, "acme", &default_token, "/Users")
            .await
            .status,
        401
    );
    // acme's client at the base URL's endpoint, or at globex's: unknown there.
    refused(
        &token_request(&srv, "default", Some((&id, &secret)), &form(&grant)).await,
        401,
        "invalid_client",
    );
    refused(
        &token_request(&srv, "globex", Some((&id, &secret)), &form(&grant)).await,
        401,
        "invalid_client",
    );
}

async fn expired_token_and_expired_secret(srv: TestServer) {
    let (id, secret) = new_client(&srv, "acme").await;
    let oauth = srv.oauth.clone().unwrap();
    let fresh = oauth.issue_at("acme", &id, SystemTime::now());
    assert_eq!(scim_get(&srv, "acme", &fresh, "/Users").await.status, 200);
    let old = oauth.issue_at("acme", &id, SystemTime::now() - Duration::from_secs(3601));
    let r = scim_get(&srv, "acme", &old, "/Users").await;
    assert_eq!(r.status, 401, "an expired access token: {}", r.text);
    let almost = oauth.issue_at("acme", &id, SystemTime::now() - Duration::from_secs(3590));
    assert_eq!(scim_get(&srv, "acme", &almost, "/Users").await.status, 200);

    // A client whose only secret has expired gets no token, and the same answer an unknown client gets.
    let (plain, mut stored) =
        credentials::new_secret(DEFAULT_SECRET_DAYS, now_unix(), "x").unwrap();
    stored.expires = now_unix() - 1;
    let c = OAuthClient {
        tenant: "acme".into(),
        id: credentials::new_client_id(),
        label: String::new(),
        created: String::new(),
        revoked: false,
        revoked_at: None,
        secrets: 1,
    };
    srv.store.create_client(&c, &stored).await.unwrap();
    let grant = form(&[("grant_type", "client_credentials")]);
    let expired = token_request(&srv, "acme", Some((&c.id, &plain)), &grant).await;
    refused(&expired, 401, "invalid_client");
    let unknown = token_request(
        &srv,
        "acme",
        Some((&credentials::new_client_id(), &plain)),
        &grant,
    )
    .await;
    let wrong = token_request(
        &srv,
        "acme",
        Some((
            &id,
            "0000000000000000000000000000000000000000000000000000000000000000",
        )),
        &grant,
    )
    .await;
    assert_eq!(
        expired.text, unknown.text,
        "no hint whether the client exists"
    );
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(
        (expired.calls(), unknown.calls(), wrong.calls()),
        (1, 1, 1),
        "the same store work for each"
    );
    // A fresh secret for it: tokens again.
    let (plain2, stored2) = credentials::new_secret(365, now_unix(), "x").unwrap();
    assert_eq!(
        srv.store.add_secret("acme", &c.id, &stored2).await.unwrap(),
        AddSecret::Added
    );
    issued(&token_request(&srv, "acme", Some((&c.id, &plain2)), &grant).await);
    issued(&token_request(&srv, "acme", Some((&id, &secret)), &grant).await);
}

async fn revoked_client(srv: TestServer) {
    let (id, secret) = new_client(&srv, "acme").await;
    let grant = form(&[("grant_type", "client_credentials")]);
    let token = issued(&token_request(&srv, "acme", Some((&id, &secret)), &grant).await);
    assert_eq!(scim_get(&srv, "acme", &token, "/Users").await.status, 200);
    assert!(srv.store.revoke_client("acme", &id, "now").await.unwrap());
    // No new token, at once.
    refused(
        &token_request(&srv, "acme", Some((&id, &secret)), &grant).await,
        401,
        "invalid_client",
    );
    // The existing token fails within the bound (the grant above already taught this instance).
    let started = std::time::Instant::now();
    loop {
        let r = scim_get(&srv, "acme", &token, "/Users").await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200);
        assert!(
            started.elapsed() < CLIENT_CHECK + Duration::from_millis(500),
            "a revoked client's token still works after the bound"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(CLIENT_CHECK + Duration::from_millis(100)).await;
    assert_eq!(
        scim_get(&srv, "acme", &token, "/Users").await.status,
        401,
        "and keeps failing"
    );
}

async fn revoked_client_seen_only_by_the_check(srv: TestServer) {
    // An instance that never saw the revocation at its token endpoint: the bound still holds.
    let (id, _) = new_client(&srv, "acme").await;
    let token = srv
        .oauth
        .clone()
        .unwrap()
        .issue_at("acme", &id, SystemTime::now());
    let first = scim_get(&srv, "acme", &token, TEST_CONNECTION).await;
    assert_eq!(
        (first.status, first.calls()),
        (200, 3),
        "the first use reads the client once (GetItem) and the tenant's state (the gate's GetItem, \
         cached per tenant) besides the Query"
    );
    let second = scim_get(&srv, "acme", &token, TEST_CONNECTION).await;
    assert_eq!(
        (second.status, second.calls()),
        (200, 1),
        "then it is cached: no DynamoDB call for the token"
    );
    srv.store.revoke_client("acme", &id, "now").await.unwrap();
    tokio::time::sleep(CLIENT_CHECK + Duration::from_millis(100)).await;
    assert_eq!(scim_get(&srv, "acme", &token, "/Users").await.status, 401);
}

async fn rotated_secret(srv: TestServer) {
    let (id, old) = new_client(&srv, "acme").await;
    let (new, stored) = credentials::new_secret(DEFAULT_SECRET_DAYS, now_unix(), "x").unwrap();
    assert_eq!(
        srv.store.add_secret("acme", &id, &stored).await.unwrap(),
        AddSecret::Added
    );
    let grant = form(&[("grant_type", "client_credentials")]);
    let with_old = issued(&token_request(&srv, "acme", Some((&id, &old)), &grant).await);
    issued(&token_request(&srv, "acme", Some((&id, &new)), &grant).await);
    let old_id = srv
        .store
        .client_credentials("acme", &id)
        .await
        .unwrap()
        .unwrap()
        .secrets
        .into_iter()
        .find(|s| s.id != stored.id)
        .unwrap()
        .id;
    assert!(srv.store.revoke_secret("acme", &id, &old_id).await.unwrap());
    refused(
        &token_request(&srv, "acme", Some((&id, &old)), &grant).await,
        401,
        "invalid_client",
    );
    issued(&token_request(&srv, "acme", Some((&id, &new)), &grant).await);
    // Tokens already issued with the old secret live on (the client is not revoked).
    assert_eq!(
        scim_get(&srv, "acme", &with_old, "/Users").await.status,
        200
    );
}

async fn malformed_requests(srv: TestServer) {
    let (id, secret) = new_client(&srv, "acme").await;
    let good = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ]);
    let url = token_url(&srv, "acme");
    let c = client();
    let post = |ct: &'static str, body: String| c.post(&url).header("content-type", ct).body(body);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("JSON body", post("application/json", json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}).to_string()), 400, "invalid_request"),
        ("no content type", c.post(&url).body(good.clone()), 400, "invalid_request"),
        ("no grant_type", post("application/x-www-form-urlencoded", form(&[("client_id", &id), ("client_secret", &secret)])), 400, "invalid_request"),
        ("password grant", post("application/x-www-form-urlencoded", good.replace("client_credentials", "password")), 400, "unsupported_grant_type"),
        ("authorization_code grant", post("application/x-www-form-urlencoded", good.replace("client_credentials", "authorization_code")), 400, "unsupported_grant_type"),
        ("repeated parameter", post("application/x-www-form-urlencoded", format!("{good}&grant_type=client_credentials")), 400, "invalid_request"),
        ("unknown scope", post("application/x-www-form-urlencoded", format!("{good}&scope=admin")), 400, "invalid_scope"),
        ("bad scope characters", post("application/x-www-form-urlencoded", format!("{good}&scope=scim%22")), 400, "invalid_scope"),
        ("no credentials", post("application/x-www-form-urlencoded", form(&[("grant_type", "client_credentials")])), 401, "invalid_client"),
        ("id without secret", post("application/x-www-form-urlencoded", form(&[("grant_type", "client_credentials"), ("client_id", &id)])), 401, "invalid_client"),
        ("unknown client", post("application/x-www-form-urlencoded", good.replace(&id, &credentials::new_client_id())), 401, "invalid_client"),
        ("wrong secret", post("application/x-www-form-urlencoded", good.replace(&secret, &"0".repeat(64))), 401, "invalid_client"),
        ("malformed client id", post("application/x-www-form-urlencoded", good.replace(&id, "a%23b")), 401, "invalid_client"),
        ("Bearer instead of Basic", post("application/x-www-form-urlencoded", form(&[("grant_type", "client_credentials")])).bearer_auth(&secret), 401, "invalid_client"),
        ("broken Basic", post("application/x-www-form-urlencoded", form(&[("grant_type", "client_credentials")])).header("authorization", "Basic %%%"), 401, "invalid_client"),
        ("secret and assertion", post("application/x-www-form-urlencoded", format!("{good}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c")), 400, "invalid_request"),
        ("unknown assertion type", post("application/x-www-form-urlencoded", form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_assertion_type", "saml"), ("client_assertion", "x")])), 401, "invalid_client"),
        ("GET", c.get(&url), 405, "invalid_request"),
        ("too large", post("application/x-www-form-urlencoded", format!("{good}&pad={}", "x".repeat(20_000))), 413, "invalid_request"),
    ];
    let mut same_answer: Vec<String> = Vec::new();
    for (what, rb, status, code) in cases {
        let r = resp(rb.send().await.unwrap()).await;
        refused(&r, status, code);
        if ["unknown client", "wrong secret", "malformed client id"].contains(&what) {
            same_answer.push(r.text.clone());
        }
        if what == "GET" {
            assert_eq!(r.header("allow"), Some("POST"));
        }
    }
    same_answer.dedup();
    assert_eq!(
        same_answer.len(),
        1,
        "one answer for every failed client authentication: {same_answer:?}"
    );
    // A path that is no tenant's.
    let r = resp(
        client()
            .post(format!("{}/Acme/oauth2/token", srv.origin()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(good.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&r, 404, "invalid_request");
    // After all of that, the good request still works.
    issued(&token_request(&srv, "acme", None, &good).await);
}

/// POST `form` to `url` as a token request.
async fn token_request_at(url: &str, form: &str) -> Resp {
    let rb = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    resp(rb.body(form.to_string()).send().await.unwrap()).await
}

/// A token URL pasted with a trailing slash (or a doubled one) is the token URL, as a Tenant URL
/// pasted so is the Tenant URL: tokens are issued, and they work.
async fn token_url_with_trailing_slash(srv: TestServer) {
    for tenant in ["acme", "default"] {
        let (id, secret) = new_client(&srv, tenant).await;
        let pairs = [
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ];
        let good = form(&pairs);
        let url = token_url(&srv, tenant);
        let doubled = url.replacen("/oauth2/token", "//oauth2//token", 1);
        for pasted in [format!("{url}/"), format!("{url}//"), doubled] {
            let token = issued(&token_request_at(&pasted, &good).await);
            assert_eq!(
                scim_get(&srv, tenant, &token, TEST_CONNECTION).await.status,
                200,
                "{pasted}"
            );
        }
        // Still an OAuth answer, never a SCIM one, when refused at such a URL.
        let wrong = good.replace(&secret, &"0".repeat(64));
        refused(
            &token_request_at(&format!("{url}/"), &wrong).await,
            401,
            "invalid_client",
        );
    }
}

/// The token endpoint reads its tenant from the path by the rule of the SCIM routes: a percent-encoded
/// (or capitalised) alias of a tenant id is no tenant, so no token is issued there.
async fn percent_encoded_tenant_is_no_alias(srv: TestServer) {
    let (id, secret) = new_client(&srv, "a").await;
    let pairs = [
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ];
    let good = form(&pairs);
    for alias in ["%61", "%41", "A"] {
        let r = token_request_at(&format!("{}/{alias}/oauth2/token", srv.origin()), &good).await;
        refused(&r, 404, "invalid_request");
        // The SCIM routes refuse the same alias (with the tenant's real token).
        let token = issued(&token_request(&srv, "a", None, &good).await);
        let base = format!("{}/{alias}/scim/v2", srv.origin());
        let scim = srv
            .call_at(&base, &token, Method::GET, "/Users", None)
            .await;
        assert_eq!(scim.status, 404, "{alias}: {}", scim.text);
    }
    issued(&token_request(&srv, "a", None, &good).await);
}

/// Two RSA keys generated once for this test binary.
fn keys() -> &'static (TestKey, TestKey) {
    static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    KEYS.get_or_init(|| (TestKey::generate("k1"), TestKey::generate("k2")))
}

fn assertion_form(client_id: &str, assertion: &str) -> String {
    form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
        ("scope", "scim"),
    ])
}

async fn workload_identity_federation(srv: TestServer) {
    let (k1, k2) = keys();
    let jwks = JwksServer::start(vec![k1.clone()]).await;
    let trust = kit::trust(jwks.url());
    let (id, _) = new_client(&srv, "acme").await;
    srv.store
        .put_wif_trust("acme", &scim_core::oauth::trust_record(&trust), "x")
        .await
        .unwrap();
    let now = SystemTime::now();
    let good = k1.sign(&kit::header("k1"), &kit::claims(&trust, now));

    // Before anything else: an assertion for a tenant without a trust (globex, with a client).
    let (gid, _) = new_client(&srv, "globex").await;
    refused(
        &token_request(&srv, "globex", None, &assertion_form(&gid, &good)).await,
        401,
        "invalid_client",
    );

    let token = issued(&token_request(&srv, "acme", None, &assertion_form(&id, &good)).await);
    assert_eq!(scim_get(&srv, "acme", &token, "/Users").await.status, 200);
    assert_eq!(scim_get(&srv, "globex", &token, "/Users").await.status, 401);

    let claims = kit::claims(&trust, now);
    let t = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let other_trust = |f: fn(&mut WifTrust)| {
        let mut t = trust.clone();
        f(&mut t);
        k1.sign(&kit::header("k1"), &kit::claims(&t, now))
    };
    let bad = [
        (
            "alg none",
            kit::unsigned(&json!({"alg": "none", "typ": "JWT", "kid": "k1"}), &claims),
        ),
        (
            "HS256 keyed with the public key",
            kit::sign_hs256(
                k1.public_pem().as_bytes(),
                &json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
                &claims,
            ),
        ),
        (
            "missing kid",
            k1.sign(&json!({"alg": "RS256", "typ": "JWT"}), &claims),
        ),
        (
            "expired",
            k1.sign(&kit::header("k1"), &with("exp", json!(t - 3600))),
        ),
        (
            "not yet valid",
            k1.sign(&kit::header("k1"), &with("nbf", json!(t + 3600))),
        ),
        (
            "issued in the future",
            k1.sign(&kit::header("k1"), &with("iat", json!(t + 3600))),
        ),
        (
            "wrong iss",
            other_trust(|t| t.issuer = "https://login.microsoftonline.com/another/v2.0".into()),
        ),
        (
            "wrong sub",
            other_trust(|t| t.subject = "another-subject".into()),
        ),
        (
            "wrong aud",
            other_trust(|t| t.audience = "api://another-app".into()),
        ),
        (
            "signed by an unpublished key",
            k2.with_kid("k1").sign(&kit::header("k1"), &claims),
        ),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, assertion) in &bad {
        let r = token_request(&srv, "acme", None, &assertion_form(&id, assertion)).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}: {}",
            r.text
        );
        refused(&r, 401, "invalid_client");
    }
    // Another tenant's trust: globex trusts another workload identity; acme's assertion is nothing there,
    // and globex's is nothing at acme.
    let globex_trust = WifTrust {
        subject: "globex-workload".into(),
        ..trust.clone()
    };
    srv.store
        .put_wif_trust(
            "globex",
            &scim_core::oauth::trust_record(&globex_trust),
            "x",
        )
        .await
        .unwrap();
    refused(
        &token_request(&srv, "globex", None, &assertion_form(&gid, &good)).await,
        401,
        "invalid_client",
    );
    let for_globex = k1.sign(&kit::header("k1"), &kit::claims(&globex_trust, now));
    refused(
        &token_request(&srv, "acme", None, &assertion_form(&id, &for_globex)).await,
        401,
        "invalid_client",
    );
    issued(&token_request(&srv, "globex", None, &assertion_form(&gid, &for_globex)).await);
    // A valid assertion with another tenant's client id, or an unknown one: refused.
    refused(
        &token_request(&srv, "acme", None, &assertion_form(&gid, &good)).await,
        401,
        "invalid_client",
    );
    refused(
        &token_request(
            &srv,
            "acme",
            None,
            &assertion_form(&credentials::new_client_id(), &good),
        )
        .await,
        401,
        "invalid_client",
    );

    // An unknown client with a valid assertion, a known one with a bad assertion: the same answer after
    // the same store work.
    let unknown = token_request(
        &srv,
        "acme",
        None,
        &assertion_form(&credentials::new_client_id(), &good),
    )
    .await;
    let known_bad = token_request(&srv, "acme", None, &assertion_form(&id, &bad[0].1)).await;
    assert_eq!(
        (unknown.calls(), known_bad.calls(), unknown.text.clone()),
        (2, 2, known_bad.text.clone())
    );

    // Key rotation: Microsoft publishes k2; an assertion signed with it is accepted (one refetch).
    jwks.add_key(k2.clone());
    tokio::time::sleep(jwks_settings().refetch_interval + Duration::from_millis(50)).await;
    let fetches = jwks.fetches();
    let rotated = k2.sign(&kit::header("k2"), &kit::claims(&trust, SystemTime::now()));
    issued(&token_request(&srv, "acme", None, &assertion_form(&id, &rotated)).await);
    assert_eq!(jwks.fetches(), fetches + 1, "the new kid was fetched once");
    issued(&token_request(&srv, "acme", None, &assertion_form(&id, &rotated)).await);
    assert_eq!(jwks.fetches(), fetches + 1, "and then cached");

    // A revoked client gets nothing for a valid assertion; a removed trust neither.
    srv.store
        .revoke_client("globex", &gid, "now")
        .await
        .unwrap();
    refused(
        &token_request(&srv, "globex", None, &assertion_form(&gid, &for_globex)).await,
        401,
        "invalid_client",
    );
    srv.store.remove_wif_trust("acme").await.unwrap();
    refused(
        &token_request(&srv, "acme", None, &assertion_form(&id, &good)).await,
        401,
        "invalid_client",
    );
}

/// Entra's Test Connection with OAuth: a token request as Entra sends it (Basic header, grant and scope
/// in the body), then `GET /Users?filter=userName eq "<random guid>"` with raw quotes, expecting 200 and
/// an empty list.
async fn entra_test_connection(srv: TestServer) {
    let (id, secret) = new_client(&srv, "acme").await;
    let r = client()
        .post(token_url(&srv, "acme"))
        .basic_auth(&id, Some(&secret))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("accept", "application/json")
        .body("grant_type=client_credentials&scope=scim")
        .send()
        .await
        .unwrap();
    let token = issued(&resp(r).await);
    let r = scim_get(
        &srv,
        "acme",
        &token,
        "/Users?filter=userName+eq+\"8f5b9e0e-3f6d-4a57-9d3b-1b7f0c7e9a21\"",
    )
    .await;
    assert_eq!(
        (r.status, r.body["totalResults"].as_u64()),
        (200, Some(0)),
        "{}",
        r.text
    );
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    // The metrics count the token request apart, for acme.
    let (status, summary) = srv.admin_json("/admin/api/tenants/acme").await;
    assert_eq!(status, 200);
    assert_eq!(
        summary["last_hour"]["token_requests"].as_u64(),
        Some(1),
        "{summary}"
    );
}

// Each named `async fn(TestServer)` on both engines, with a server that has OAuth on.
scim_tests::both_engines!(
    |engine| super::server(engine).await;
    token_by_basic_body_and_both,
    expired_token_and_expired_secret,
    revoked_client,
    revoked_client_seen_only_by_the_check,
    rotated_secret,
    malformed_requests,
    workload_identity_federation,
    entra_test_connection,
    token_url_with_trailing_slash,
    percent_encoded_tenant_is_no_alias,
);

// ---------------------------------------------------------------------------------------------------
// The Lambda event path: API Gateway v2 events through the `token` and `users` functions' routers.
// ---------------------------------------------------------------------------------------------------

mod lambda {
    use super::*;
    use axum::Router;
    use http_body_util::BodyExt;
    use scim_core::auth::Auth;
    use scim_core::config::{HttpConfig, Limits};
    use scim_core::http::{self, AppState};
    use scim_core::oauth::assertion::Jwks;
    use scim_core::oauth::signing::KeyRing;
    use scim_core::oauth::OAuth;
    use scim_core::service::Service;
    use std::sync::Arc;
    use tower::ServiceExt;

    fn event(method: &str, path: &str, query: &str, headers: Value, body: Option<&str>) -> String {
        json!({
            "version": "2.0",
            "routeKey": format!("{method} {path}"),
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "20.51.0.1", "userAgent": ""},
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": format!("{method} {path}"),
                "stage": "$default",
                "time": "02/Dec/2026:07:51:00 +0000",
                "timeEpoch": 1796198400000u64
            },
            "body": body,
            "isBase64Encoded": false
        })
        .to_string()
    }

    async fn invoke(router: &Router, event: &str) -> (u16, axum::http::HeaderMap, Value) {
        let req =
            scim_core::http::lambda::request_from_str(event).expect("an API Gateway v2 event");
        let resp = router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn test_connection_through_lambda_events(engine: Engine) {
        let store = scim_tests::fresh_store(engine).await;
        store.create_tenant("acme", "x").await.unwrap();
        let (secret, stored) =
            credentials::new_secret(DEFAULT_SECRET_DAYS, now_unix(), "x").unwrap();
        let c = OAuthClient {
            tenant: "acme".into(),
            id: credentials::new_client_id(),
            label: String::new(),
            created: String::new(),
            revoked: false,
            revoked_at: None,
            secrets: 1,
        };
        store.create_client(&c, &stored).await.unwrap();
        let ring = KeyRing::parse(&KeyRing::generate_text("lambda1")).unwrap();
        let oauth = Arc::new(OAuth::new(
            ring,
            settings(),
            Jwks::with_settings(jwks_settings()),
        ));
        // As the two functions start: each its own state (a token function needs no SCIM token).
        let token_state = AppState::new(
            Service::new(Arc::new(store.clone()), Limits::default()),
            Auth::tenant_tokens_only().with_oauth(Some(oauth.clone())),
            HttpConfig::default(),
        );
        let users_state = AppState::new(
            Service::new(Arc::new(store.clone()), Limits::default()),
            Auth::from_token(&scim_core::auth::generate_token())
                .unwrap()
                .with_oauth(Some(oauth)),
            HttpConfig::default(),
        );
        let (token_fn, users_fn) = (
            http::token_router(token_state),
            http::users_router(users_state),
        );

        let basic = format!("Basic {}", base64_encode(&format!("{}:{secret}", c.id)));
        let ev = event(
            "POST",
            "/acme/oauth2/token",
            "",
            json!({"authorization": basic, "content-type": "application/x-www-form-urlencoded", "host": "abc123.execute-api.eu-west-1.amazonaws.com", "x-forwarded-proto": "https"}),
            Some("grant_type=client_credentials&scope=scim"),
        );
        let (s, h, b) = invoke(&token_fn, &ev).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(h["cache-control"], "no-store");
        let token = b["access_token"].as_str().unwrap();
        let ev = event(
            "GET",
            "/acme/scim/v2/Users",
            "filter=userName+eq+\"8f5b9e0e-3f6d-4a57-9d3b-1b7f0c7e9a21\"",
            json!({"authorization": format!("Bearer {token}"), "host": "abc123.execute-api.eu-west-1.amazonaws.com", "x-forwarded-proto": "https", "content-length": "0"}),
            None,
        );
        let (s, h, b) = invoke(&users_fn, &ev).await;
        assert_eq!((s, b["totalResults"].clone()), (200, Value::from(0)), "{b}");
        assert_eq!(h["content-type"], "application/scim+json");
        // A wrong secret through the token function: RFC 6749 error, not SCIM.
        let ev = event(
            "POST",
            "/acme/oauth2/token",
            "",
            json!({"authorization": format!("Basic {}", base64_encode(&format!("{}:nope", c.id))), "content-type": "application/x-www-form-urlencoded"}),
            Some("grant_type=client_credentials"),
        );
        let (s, _, b) = invoke(&token_fn, &ev).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (401, Some("invalid_client")),
            "{b}"
        );
        // Pasted with a trailing slash, the token function's URL still issues; an escaped alias of the
        // tenant is no tenant (the SCIM routes' rule).
        let grant = |path: &str| {
            let form_type = "application/x-www-form-urlencoded";
            let headers = json!({"authorization": basic, "content-type": form_type});
            event(
                "POST",
                path,
                "",
                headers,
                Some("grant_type=client_credentials"),
            )
        };
        let (s, _, b) = invoke(&token_fn, &grant("/acme/oauth2/token/")).await;
        assert_eq!(s, 200, "{b}");
        let (s, _, b) = invoke(&token_fn, &grant("/%61cme/oauth2/token")).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (404, Some("invalid_request")),
            "{b}"
        );
        // The token function serves nothing else.
        let (s, _, _) = invoke(
            &token_fn,
            &event(
                "GET",
                "/acme/scim/v2/Users",
                "",
                json!({"authorization": format!("Bearer {token}")}),
                None,
            ),
        )
        .await;
        assert_eq!(s, 404);
    }

    fn base64_encode(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynoxide() {
        test_connection_through_lambda_events(Engine::Dynoxide).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn moto() {
        test_connection_through_lambda_events(Engine::Moto).await
    }
}

/// Without a signing key ring OAuth is off: no token endpoint (404, still an RFC 6749 body), the
/// discovery document names the bearer token only, and an `at1.` token is just an unknown token.
async fn oauth_off(srv: TestServer) {
    assert!(srv.oauth.is_none());
    let r = token_request(
        &srv,
        "default",
        Some(("c", "s")),
        "grant_type=client_credentials",
    )
    .await;
    refused(&r, 404, "invalid_request");
    let r = srv.get("/ServiceProviderConfig").await;
    let schemes: Vec<&str> = r.body["authenticationSchemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(schemes, vec!["oauthbearertoken"]);
    let r = srv
        .call_at(&srv.base, "at1.k.e30.AAAA", Method::GET, "/Users", None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        srv.get("/Users").await.status,
        200,
        "the static token works"
    );
}

mod off {
    use super::*;
    scim_tests::engine_tests!(oauth_off);
}
