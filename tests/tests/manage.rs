//! The management API (`/manage/v1`) end to end over HTTP, on both engines, as a vendor's backend uses it:
//! onboarding a customer (tenant, client, connection details, then Entra's token request and Test
//! Connection with exactly those values, status, rotation, revocation, the audit trail with its
//! principal); pause and resume as Entra sees them; the start of offboarding; every refusal's stable code
//! with nothing changed; the credentials kept apart (no SCIM or OAuth token works here, the admin token
//! works nowhere else); the OpenAPI document validated by a real validator and matched with the routes.

use reqwest::Method;
use scim_core::oauth::assertion::JwksSettings;
use scim_core::oauth::OAuthSettings;
use scim_core::store::{TenantState, TenantStore};
use scim_tests::{Engine, Resp, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

scim_tests::both_engines!(
    |engine| super::server(engine).await;
    onboarding_as_a_vendor_does_it,
    pause_and_resume_as_entra_sees_them,
    delete_closes_the_tenant_at_once,
    bad_input_is_refused_with_its_code_and_changes_nothing,
    credentials_are_kept_apart,
    secrets_and_hashes_are_never_listed,
    tenants_are_listed_in_pages,
    concurrent_management_writes_leave_nothing_half_done,
);

async fn server(engine: Engine) -> TestServer {
    let settings = OAuthSettings {
        client_check: Duration::from_millis(1000),
        ..OAuthSettings::default()
    };
    TestServer::start_oauth(engine, settings, JwksSettings::default()).await
}

const TEST_CONNECTION: &str =
    "/Users?filter=userName%20eq%20%228f5b9e0e-3f6d-4a57-9d3b-1b7f0c7e9a21%22";

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

/// A management call with `token` as the bearer (None: no credential).
async fn call_as(
    srv: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rb = client.request(method, format!("{}/manage/v1{path}", srv.origin()));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    resp(rb.send().await.unwrap()).await
}

/// A management call with the admin credential.
async fn manage(srv: &TestServer, method: Method, path: &str, body: Option<&Value>) -> Resp {
    call_as(srv, Some(&srv.admin_token), method, path, body).await
}

fn code(r: &Resp) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

/// Entra's token request with the values the connection details gave: client secret in the header.
async fn entra_token(token_endpoint: &str, client_id: &str, secret: &str) -> Resp {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .post(token_endpoint)
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=scim")
        .send()
        .await
        .unwrap();
    resp(r).await
}

async fn audit_actions(srv: &TestServer, tenant: &str) -> Vec<(String, String)> {
    let r = manage(
        srv,
        Method::GET,
        &format!("/tenants/{tenant}/audit?limit=200"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut v: Vec<(String, String)> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.reverse(); // oldest first
    v
}

async fn new_tenant(srv: &TestServer, id: &str) -> Resp {
    let r = manage(
        srv,
        Method::POST,
        "/tenants",
        Some(&json!({"id": id, "displayName": format!("{id} Inc."), "metadata": {"orgId": format!("org_{id}")}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r
}

async fn onboarding_as_a_vendor_does_it(srv: TestServer) {
    // 1. The vendor's settings page: create the tenant and a client, read the connection details.
    let t = new_tenant(&srv, "acme").await;
    assert_eq!(t.body["state"], "active");
    assert_eq!(t.body["metadata"]["orgId"], "org_acme");
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let c = manage(
        &srv,
        Method::POST,
        "/tenants/acme/clients",
        Some(&json!({"label": "Entra"})),
    )
    .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let client_id = c.body["clientId"].as_str().unwrap().to_string();
    let first_secret = c.body["clientSecret"].as_str().unwrap().to_string();
    let first_secret_id = c.body["secretId"].as_str().unwrap().to_string();
    let conn = manage(&srv, Method::GET, "/tenants/acme/connection", None).await;
    assert_eq!(conn.status, 200, "{}", conn.text);
    let tenant_url = conn.body["tenantUrl"].as_str().unwrap().to_string();
    let token_endpoint = conn.body["tokenEndpoint"].as_str().unwrap().to_string();
    assert_eq!(tenant_url, srv.tenant_base("acme"));
    assert_eq!(
        token_endpoint,
        format!("{}/acme/oauth2/token", srv.origin())
    );
    assert_eq!(conn.body["clientIds"], json!([client_id]));
    assert_eq!(
        conn.body["authMethods"],
        json!(["oauth_client_credentials"])
    );

    // 2. The customer's admin pastes them into Entra: its token request, then Test Connection.
    let tok = entra_token(&token_endpoint, &client_id, &first_secret).await;
    assert_eq!(tok.status, 200, "{}", tok.text);
    let access = tok.body["access_token"].as_str().unwrap().to_string();
    let tc = srv
        .call_at(&tenant_url, &access, Method::GET, TEST_CONNECTION, None)
        .await;
    assert_eq!(tc.status, 200, "{}", tc.text);
    assert_eq!(tc.body["totalResults"], 0);

    // 3. The status shows the requests, from the operator page's figures.
    let st = manage(&srv, Method::GET, "/tenants/acme/status", None).await;
    assert_eq!(st.status, 200, "{}", st.text);
    assert!(
        st.body["summary"]["last_hour"]["requests"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{}",
        st.text
    );
    assert_eq!(st.body["quarantineThreshold"], 0.4);

    // 4. Rotation: a second secret works, then the first is revoked and stops working.
    let rot = manage(
        &srv,
        Method::POST,
        &format!("/tenants/acme/clients/{client_id}/secrets"),
        None,
    )
    .await;
    assert_eq!(rot.status, 201, "{}", rot.text);
    let second = rot.body["clientSecret"].as_str().unwrap().to_string();
    let second_id = rot.body["secretId"].as_str().unwrap().to_string();
    let creds = manage(&srv, Method::GET, "/tenants/acme/credentials", None).await;
    let used = |id: &str| {
        creds.body["clients"][0]["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["lastUsed"].clone())
            .unwrap()
    };
    assert!(
        used(&first_secret_id).is_string(),
        "Entra used the first secret: {}",
        creds.text
    );
    assert!(
        used(&second_id).is_null(),
        "nobody used the second yet: {}",
        creds.text
    );
    assert_ne!(second, first_secret);
    assert_eq!(
        entra_token(&token_endpoint, &client_id, &second)
            .await
            .status,
        200
    );
    let rev = manage(
        &srv,
        Method::DELETE,
        &format!("/tenants/acme/clients/{client_id}/secrets/{first_secret_id}"),
        None,
    )
    .await;
    assert_eq!(rev.status, 200, "{}", rev.text);
    assert_eq!(
        entra_token(&token_endpoint, &client_id, &first_secret)
            .await
            .status,
        401
    );
    assert_eq!(
        entra_token(&token_endpoint, &client_id, &second)
            .await
            .status,
        200
    );

    // The vendor can tell which secret Entra still uses before revoking the old one.
    let creds = manage(&srv, Method::GET, "/tenants/acme/credentials", None).await;
    let secrets = creds.body["clients"][0]["secrets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(secrets.len(), 1, "{}", creds.text);
    assert!(secrets[0]["lastUsed"].is_string(), "{}", creds.text);

    // 5. The audit trail lists each step, with its principal, oldest first.
    let actions = audit_actions(&srv, "acme").await;
    assert_eq!(
        actions,
        [
            "tenant.create",
            "client.create",
            "client.rotate",
            "client.revoke_secret"
        ]
        .iter()
        .map(|a| (a.to_string(), "local-admin".to_string()))
        .collect::<Vec<_>>()
    );
    let audit = manage(&srv, Method::GET, "/tenants/acme/audit", None).await;
    assert_eq!(
        audit.body["entries"][0]["target"],
        json!(format!("{client_id}/{first_secret_id}"))
    );
}

async fn pause_and_resume_as_entra_sees_them(srv: TestServer) {
    new_tenant(&srv, "acme").await;
    let token = srv.add_tenant_token("acme", None).await;
    let base = srv.tenant_base("acme");
    let c = manage(&srv, Method::POST, "/tenants/acme/clients", None).await;
    let (id, secret) = (
        c.body["clientId"].as_str().unwrap().to_string(),
        c.body["clientSecret"].as_str().unwrap().to_string(),
    );
    let token_url = format!("{}/acme/oauth2/token", srv.origin());
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@acme.example"});
    assert_eq!(
        srv.call_at(&base, &token, Method::POST, "/Users", Some(&user))
            .await
            .status,
        201
    );

    let p = manage(&srv, Method::POST, "/tenants/acme/pause", None).await;
    assert_eq!(
        (p.status, p.body["state"].as_str()),
        (200, Some("paused")),
        "{}",
        p.text
    );
    let r = srv
        .call_at(&base, &token, Method::GET, TEST_CONNECTION, None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("300"));
    assert!(r.text.contains("paused"), "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let w = srv
        .call_at(&base, &token, Method::POST, "/Users", Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@acme.example"})))
        .await;
    assert_eq!(w.status, 503);
    let t = entra_token(&token_url, &id, &secret).await;
    assert_eq!(
        (t.status, t.body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{}",
        t.text
    );
    // Pausing again changes nothing (no second audit entry).
    assert_eq!(
        manage(&srv, Method::POST, "/tenants/acme/pause", None)
            .await
            .status,
        200
    );

    let r = manage(&srv, Method::POST, "/tenants/acme/resume", None).await;
    assert_eq!(r.body["state"], "active");
    let list = srv
        .call_at(&base, &token, Method::GET, "/Users", None)
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["totalResults"], 1,
        "nothing was written while paused"
    );
    assert_eq!(entra_token(&token_url, &id, &secret).await.status, 200);
    let actions: Vec<String> = audit_actions(&srv, "acme")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "client.create",
            "tenant.pause",
            "tenant.resume"
        ]
    );
}

async fn delete_closes_the_tenant_at_once(srv: TestServer) {
    new_tenant(&srv, "acme").await;
    new_tenant(&srv, "other").await;
    let token = srv.add_tenant_token("acme", None).await;
    let other = srv.add_tenant_token("other", None).await;
    let base = srv.tenant_base("acme");
    assert_eq!(
        srv.call_at(&base, &token, Method::GET, "/Users", None)
            .await
            .status,
        200
    );
    let d = manage(&srv, Method::DELETE, "/tenants/acme", None).await;
    assert_eq!(
        (d.status, d.body["state"].as_str()),
        (202, Some("deleting")),
        "{}",
        d.text
    );
    let r = srv
        .call_at(&base, &token, Method::GET, "/Users", None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("being deleted"), "{}", r.text);
    // The other tenant is served as before.
    assert_eq!(
        srv.call_at(
            &srv.tenant_base("other"),
            &other,
            Method::GET,
            "/Users",
            None
        )
        .await
        .status,
        200
    );
    // A second delete, pausing, resuming, renaming, new credentials: refused, nothing changed.
    for (m, p, b) in [
        (Method::DELETE, "/tenants/acme", None),
        (Method::POST, "/tenants/acme/pause", None),
        (Method::POST, "/tenants/acme/resume", None),
        (
            Method::PATCH,
            "/tenants/acme",
            Some(json!({"displayName": "x"})),
        ),
        (Method::POST, "/tenants/acme/clients", None),
        (Method::POST, "/tenants/acme/tokens", None),
    ] {
        let r = manage(&srv, m.clone(), p, b.as_ref()).await;
        assert_eq!(
            (r.status, code(&r)),
            (409, "tenant_deleting"),
            "{m} {p}: {}",
            r.text
        );
    }
    let t = manage(&srv, Method::GET, "/tenants/acme", None).await;
    assert_eq!(
        (t.body["state"].as_str(), t.body["version"].as_u64()),
        (Some("deleting"), Some(2))
    );
    assert_eq!(
        srv.store.tenant_state("acme").await.unwrap(),
        Some(TenantState::Deleting)
    );
}

async fn bad_input_is_refused_with_its_code_and_changes_nothing(srv: TestServer) {
    new_tenant(&srv, "acme").await;
    let before = manage(&srv, Method::GET, "/tenants/acme", None).await.body;
    let audit_before = audit_actions(&srv, "acme").await.len();
    let big = json!({"blob": "x".repeat(5000)});
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (
            Method::GET,
            "/tenants/nobody".into(),
            None,
            404,
            "tenant_not_found",
        ),
        (
            Method::POST,
            "/tenants/nobody/pause".into(),
            None,
            404,
            "tenant_not_found",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "acme"})),
            409,
            "tenant_exists",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "manage"})),
            400,
            "reserved_tenant_id",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "default"})),
            400,
            "reserved_tenant_id",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "Acme"})),
            400,
            "invalid_tenant_id",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "a".repeat(64)})),
            400,
            "invalid_tenant_id",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "new", "metadata": big})),
            400,
            "metadata_too_large",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "new", "metadata": [1]})),
            400,
            "invalid_metadata",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "new", "displayName": ""})),
            400,
            "invalid_display_name",
        ),
        (
            Method::POST,
            "/tenants".into(),
            Some(json!({"id": "new", "colour": "red"})),
            400,
            "invalid_body",
        ),
        (
            Method::PATCH,
            "/tenants/acme".into(),
            Some(json!({"metadata": "x"})),
            400,
            "invalid_metadata",
        ),
        (
            Method::POST,
            "/tenants/acme/clients".into(),
            Some(json!({"days": 10})),
            400,
            "invalid_days",
        ),
        (
            Method::POST,
            "/tenants/acme/clients/nope/secrets".into(),
            None,
            404,
            "credential_not_found",
        ),
        (
            Method::DELETE,
            "/tenants/acme/tokens/nope".into(),
            None,
            404,
            "credential_not_found",
        ),
        (
            Method::DELETE,
            "/tenants/acme/wif".into(),
            None,
            404,
            "credential_not_found",
        ),
        (
            Method::PUT,
            "/tenants/acme/wif".into(),
            Some(
                json!({"issuer": "i", "subject": "s", "audience": "a", "jwksUrl": "http://example.com/k"}),
            ),
            400,
            "invalid_trust",
        ),
        (
            Method::GET,
            "/tenants?limit=abc".into(),
            None,
            400,
            "invalid_query",
        ),
        (Method::GET, "/nothing".into(), None, 404, "not_found"),
        (
            Method::PUT,
            "/tenants".into(),
            None,
            405,
            "method_not_allowed",
        ),
    ];
    for (m, p, b, status, c) in cases {
        let r = manage(&srv, m.clone(), &p, b.as_ref()).await;
        assert_eq!((r.status, code(&r)), (status, c), "{m} {p}: {}", r.text);
        assert!(!r.body["error"]["message"].as_str().unwrap_or("").is_empty());
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // Not JSON, and too large.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = resp(
        client
            .post(format!("{}/manage/v1/tenants", srv.origin()))
            .bearer_auth(&srv.admin_token)
            .header("content-type", "text/plain")
            .body("id=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, code(&r)), (415, "unsupported_media_type"));
    let r = manage(
        &srv,
        Method::POST,
        "/tenants",
        Some(&json!({"id": "x", "metadata": {"a": "b".repeat(20_000)}})),
    )
    .await;
    assert_eq!((r.status, code(&r)), (413, "too_large"));

    // A revoked client gets no new secret; a sixth secret is refused.
    let c = manage(&srv, Method::POST, "/tenants/acme/clients", None).await;
    let id = c.body["clientId"].as_str().unwrap().to_string();
    for _ in 0..4 {
        assert_eq!(
            manage(
                &srv,
                Method::POST,
                &format!("/tenants/acme/clients/{id}/secrets"),
                None
            )
            .await
            .status,
            201
        );
    }
    let sixth = manage(
        &srv,
        Method::POST,
        &format!("/tenants/acme/clients/{id}/secrets"),
        None,
    )
    .await;
    assert_eq!(
        (sixth.status, code(&sixth)),
        (409, "too_many_secrets"),
        "{}",
        sixth.text
    );
    assert_eq!(
        manage(
            &srv,
            Method::DELETE,
            &format!("/tenants/acme/clients/{id}"),
            None
        )
        .await
        .status,
        200
    );
    let r = manage(
        &srv,
        Method::POST,
        &format!("/tenants/acme/clients/{id}/secrets"),
        None,
    )
    .await;
    assert_eq!((r.status, code(&r)), (409, "client_revoked"), "{}", r.text);

    // Nothing of the refusals changed the tenant or reached the audit trail.
    assert_eq!(
        manage(&srv, Method::GET, "/tenants/acme", None).await.body,
        before
    );
    assert_eq!(
        manage(&srv, Method::GET, "/tenants/new", None).await.status,
        404
    );
    assert_eq!(
        manage(&srv, Method::GET, "/tenants/x", None).await.status,
        404
    );
    let actions: Vec<String> = audit_actions(&srv, "acme")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions.len(), audit_before + 6, "{actions:?}");
    assert_eq!(
        &actions[audit_before..],
        [
            "client.create",
            "client.rotate",
            "client.rotate",
            "client.rotate",
            "client.rotate",
            "client.revoke"
        ]
    );
}

async fn credentials_are_kept_apart(srv: TestServer) {
    new_tenant(&srv, "acme").await;
    let tenant_token = srv.add_tenant_token("acme", None).await;
    let c = manage(&srv, Method::POST, "/tenants/acme/clients", None).await;
    let access = entra_token(
        &format!("{}/acme/oauth2/token", srv.origin()),
        c.body["clientId"].as_str().unwrap(),
        c.body["clientSecret"].as_str().unwrap(),
    )
    .await
    .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // No SCIM credential works on the management API.
    for t in [
        None,
        Some(srv.token.as_str()),
        Some(tenant_token.as_str()),
        Some(access.as_str()),
        Some("nope"),
    ] {
        let r = call_as(&srv, t, Method::GET, "/tenants/acme", None).await;
        assert_eq!(
            (r.status, code(&r)),
            (401, "unauthenticated"),
            "{t:?}: {}",
            r.text
        );
        let r = call_as(
            &srv,
            t,
            Method::POST,
            "/tenants",
            Some(&json!({"id": "evil"})),
        )
        .await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        manage(&srv, Method::GET, "/tenants/evil", None)
            .await
            .status,
        404
    );
    // The management credential works on no SCIM route.
    for base in [srv.base.clone(), srv.tenant_base("acme")] {
        let r = srv
            .call_at(&base, &srv.admin_token, Method::GET, "/Users", None)
            .await;
        assert_eq!(r.status, 401, "{base}: {}", r.text);
    }
}

async fn secrets_and_hashes_are_never_listed(srv: TestServer) {
    new_tenant(&srv, "acme").await;
    let tok = manage(
        &srv,
        Method::POST,
        "/tenants/acme/tokens",
        Some(&json!({"label": "legacy"})),
    )
    .await;
    assert_eq!(tok.status, 201, "{}", tok.text);
    let token = tok.body["token"].as_str().unwrap().to_string();
    let c = manage(&srv, Method::POST, "/tenants/acme/clients", None).await;
    let secret = c.body["clientSecret"].as_str().unwrap().to_string();
    // The issued token works at the tenant's URL.
    assert_eq!(
        srv.call_at(
            &srv.tenant_base("acme"),
            &token,
            Method::GET,
            "/Users",
            None
        )
        .await
        .status,
        200
    );
    let list = manage(&srv, Method::GET, "/tenants/acme/credentials", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["tokens"][0]["label"], "legacy");
    assert_eq!(
        list.body["clients"][0]["secrets"].as_array().unwrap().len(),
        1
    );
    for hidden in [
        token.clone(),
        secret.clone(),
        scim_core::auth::token_hash(&token),
        scim_core::oauth::credentials::secret_hash(&secret),
    ] {
        assert!(!list.text.contains(&hidden), "a secret or a hash is listed");
    }
    let conn = manage(&srv, Method::GET, "/tenants/acme/connection", None).await;
    assert_eq!(
        conn.body["authMethods"],
        json!(["oauth_client_credentials", "bearer_token"])
    );
    let id = tok.body["id"].as_str().unwrap();
    assert_eq!(
        manage(
            &srv,
            Method::DELETE,
            &format!("/tenants/acme/tokens/{id}"),
            None
        )
        .await
        .status,
        200
    );
    let list = manage(&srv, Method::GET, "/tenants/acme/credentials", None).await;
    assert_eq!(list.body["tokens"], json!([]));
}

async fn tenants_are_listed_in_pages(srv: TestServer) {
    for i in 0..7 {
        new_tenant(&srv, &format!("t{i}")).await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &after {
            Some(a) => format!("/tenants?limit=3&after={a}"),
            None => "/tenants?limit=3".into(),
        };
        let r = manage(&srv, Method::GET, &q, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        for t in r.body["tenants"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_string());
        }
        match r.body["nextAfter"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>());
    assert!(pages >= 3);
}

/// Concurrent management writes on one tenant: rotate vs revoke of a client, pause vs delete. Every
/// trial ends in one of the states a serial order gives, and the audit trail holds exactly the actions
/// that took effect.
async fn concurrent_management_writes_leave_nothing_half_done(mut srv: TestServer) {
    let trials = scim_tests::race_trials(300);
    for i in 0..trials {
        // A fresh table every 25 trials: moto's transactions slow down as a table grows.
        if i > 0 && i % 25 == 0 {
            srv = server(srv.engine).await;
        }
        let t = format!("r{i}");
        new_tenant(&srv, &t).await;
        let c = manage(&srv, Method::POST, &format!("/tenants/{t}/clients"), None).await;
        let id = c.body["clientId"].as_str().unwrap().to_string();
        let rot_path = format!("/tenants/{t}/clients/{id}/secrets");
        let rev_path = format!("/tenants/{t}/clients/{id}");
        let (rot, rev) = tokio::join!(
            manage(&srv, Method::POST, &rot_path, None),
            manage(&srv, Method::DELETE, &rev_path, None),
        );
        assert_eq!(rev.status, 200, "{}", rev.text);
        assert!(
            rot.status == 201 || (rot.status, code(&rot)) == (409, "client_revoked"),
            "{}",
            rot.text
        );
        let creds = manage(
            &srv,
            Method::GET,
            &format!("/tenants/{t}/credentials"),
            None,
        )
        .await;
        let secrets = creds.body["clients"][0]["secrets"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(secrets, if rot.status == 201 { 2 } else { 1 }, "trial {i}");
        assert_eq!(creds.body["clients"][0]["revoked"], true);

        let pause_path = format!("/tenants/{t}/pause");
        let delete_path = format!("/tenants/{t}");
        let (p, d) = tokio::join!(
            manage(&srv, Method::POST, &pause_path, None),
            manage(&srv, Method::DELETE, &delete_path, None),
        );
        assert_eq!(d.status, 202, "{}", d.text);
        assert!(
            p.status == 200 || (p.status, code(&p)) == (409, "tenant_deleting"),
            "{}",
            p.text
        );
        let now = manage(&srv, Method::GET, &format!("/tenants/{t}"), None).await;
        assert_eq!(now.body["state"], "deleting", "trial {i}");
        let actions: Vec<String> = audit_actions(&srv, &t)
            .await
            .into_iter()
            .map(|a| a.0)
            .collect();
        let mut expected = vec!["tenant.create", "client.create"];
        // The two pairs ran concurrently; the audit holds exactly what took effect, in commit order.
        let rot_ok = rot.status == 201;
        let pause_ok = p.status == 200;
        let mut pair1: Vec<&str> = vec!["client.revoke"];
        if rot_ok {
            pair1.insert(0, "client.rotate");
        }
        let mut got1: Vec<&str> = actions[2..2 + pair1.len()]
            .iter()
            .map(String::as_str)
            .collect();
        got1.sort();
        pair1.sort();
        assert_eq!(got1, pair1, "trial {i}: {actions:?}");
        expected.extend(pair1);
        if pause_ok {
            expected.push("tenant.pause");
        }
        expected.push("tenant.delete");
        assert_eq!(actions.len(), expected.len(), "trial {i}: {actions:?}");
        assert_eq!(
            actions.last().map(String::as_str),
            Some("tenant.delete"),
            "trial {i}: {actions:?}"
        );
    }
}

/// The OpenAPI document kept in docs/ is the one served, validates with a real validator
/// (openapi-spec-validator, beside moto in .venv), and names exactly the routes the server has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_and_matches_the_routes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/manage.openapi.json");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let py = scim_tests::python();
    let out = std::process::Command::new(&py)
        .args(["-m", "openapi_spec_validator", path])
        .output()
        .unwrap_or_else(|e| panic!("{py}: {e}"));
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(kept["openapi"], "3.1.0");

    let srv = server(Engine::Dynoxide).await;
    let served = manage(&srv, Method::GET, "/openapi.json", None).await;
    assert_eq!(served.body, kept, "the served document is the one in docs/");

    // Every documented operation is routed (an unrouted one gets the fallback's `not_found` or
    // `method_not_allowed`), and no undocumented method is (405 on each of them).
    let all = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut documented = 0;
    for (template, item) in kept["paths"].as_object().unwrap() {
        let concrete = template
            .replace("{tenant}", "nobody")
            .replace("{token}", "t0")
            .replace("{client}", "c0")
            .replace("{secret}", "s0");
        for m in &all {
            let name = m.as_str().to_ascii_lowercase();
            let r = manage(&srv, m.clone(), &concrete, None).await;
            if item.get(&name).is_some() {
                documented += 1;
                assert!(
                    !matches!(code(&r), "not_found" | "method_not_allowed"),
                    "{m} {template} is documented but not routed: {}",
                    r.text
                );
                let documented_statuses = item[&name]["responses"].as_object().unwrap();
                assert!(
                    documented_statuses.contains_key(&r.status.to_string()),
                    "{m} {template} answered {} which the document does not list",
                    r.status
                );
            } else {
                assert_eq!(
                    (r.status, code(&r)),
                    (405, "method_not_allowed"),
                    "{m} {template} is routed but not documented"
                );
            }
        }
    }
    assert!(documented >= 20, "{documented}");
}
