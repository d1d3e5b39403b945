//! Tenant isolation, on both engines: a tenant's token works only on its own URL, and nothing of one
//! tenant is visible through another.

use reqwest::Method;
use scim_tests::urn::PATCH_OP;
use scim_tests::TestServer;
use serde_json::{json, Value};

fn routes(uid: &str, gid: &str) -> Vec<(Method, String, Option<Value>)> {
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]});
    vec![
        (Method::GET, "/Users".into(), None),
        (
            Method::GET,
            "/Users?filter=userName+eq+%22shared%40x.com%22".into(),
            None,
        ),
        (
            Method::POST,
            "/Users".into(),
            Some(json!({"userName": "new@x.com"})),
        ),
        (Method::GET, format!("/Users/{uid}"), None),
        (
            Method::PUT,
            format!("/Users/{uid}"),
            Some(json!({"userName": "shared@x.com"})),
        ),
        (Method::PATCH, format!("/Users/{uid}"), Some(patch.clone())),
        (Method::DELETE, format!("/Users/{uid}"), None),
        (Method::GET, "/Groups".into(), None),
        (
            Method::POST,
            "/Groups".into(),
            Some(json!({"displayName": "new"})),
        ),
        (Method::GET, format!("/Groups/{gid}"), None),
        (
            Method::PUT,
            format!("/Groups/{gid}"),
            Some(json!({"displayName": "G"})),
        ),
        (Method::PATCH, format!("/Groups/{gid}"), Some(patch)),
        (Method::DELETE, format!("/Groups/{gid}"), None),
        (Method::GET, "/ServiceProviderConfig".into(), None),
        (Method::GET, "/Schemas".into(), None),
        (Method::GET, "/ResourceTypes".into(), None),
    ]
}

async fn tokens_work_only_on_their_tenant(srv: TestServer) {
    let (ta, tb) = (srv.add_tenant("acme").await, srv.add_tenant("globex").await);
    let b = srv.tenant_base("globex");
    let uid = srv
        .call_at(
            &b,
            &tb,
            Method::POST,
            "/Users",
            Some(&json!({"userName": "shared@x.com"})),
        )
        .await
        .id();
    let gid = srv
        .call_at(
            &b,
            &tb,
            Method::POST,
            "/Groups",
            Some(&json!({"displayName": "G"})),
        )
        .await
        .id();
    for (method, path, body) in routes(&uid, &gid) {
        // A's token on B's URL, A's token on the default URL, the default token on B's URL, an unknown tenant.
        for (base, token) in [
            (&b, &ta),
            (&srv.base, &ta),
            (&b, &srv.token),
            (&srv.tenant_base("initech"), &ta),
        ] {
            let r = srv
                .call_at(base, token, method.clone(), &path, body.as_ref())
                .await;
            assert_eq!(r.status, 401, "{method} {base}{path}: {}", r.text);
            assert!(
                !r.text.contains(&uid) && !r.text.contains("shared@x.com"),
                "no data in errors: {}",
                r.text
            );
        }
    }
    // B's resources are untouched, and B's own token still works.
    let u = srv
        .call_at(&b, &tb, Method::GET, &format!("/Users/{uid}"), None)
        .await;
    assert_eq!(
        (u.status, u.body["userName"].clone()),
        (200, json!("shared@x.com"))
    );
    assert!(u.body["meta"]["location"]
        .as_str()
        .unwrap()
        .contains("/globex/scim/v2/Users/"));
}

async fn listing_and_filters_never_cross_tenants(srv: TestServer) {
    let (ta, tb) = (srv.add_tenant("acme").await, srv.add_tenant("globex").await);
    let (a, b) = (srv.tenant_base("acme"), srv.tenant_base("globex"));
    // The same userName and group name in both tenants (uniqueness is per tenant) and in the default one.
    let ua = srv
        .call_at(
            &a,
            &ta,
            Method::POST,
            "/Users",
            Some(&json!({"userName": "shared@x.com", "externalId": "e1"})),
        )
        .await;
    let ub = srv
        .call_at(
            &b,
            &tb,
            Method::POST,
            "/Users",
            Some(&json!({"userName": "SHARED@x.com", "externalId": "e1"})),
        )
        .await;
    assert_eq!((ua.status, ub.status), (201, 201));
    srv.create_user(&json!({"userName": "shared@x.com"})).await;
    let ga = srv
        .call_at(
            &a,
            &ta,
            Method::POST,
            "/Groups",
            Some(&json!({"displayName": "Staff", "members": [{"value": ua.id()}]})),
        )
        .await;
    assert_eq!(ga.status, 201, "{}", ga.text);
    // B may not use A's user as a member.
    let gb = srv
        .call_at(
            &b,
            &tb,
            Method::POST,
            "/Groups",
            Some(&json!({"displayName": "Staff", "members": [{"value": ua.id()}]})),
        )
        .await;
    assert_eq!(gb.status, 400, "{}", gb.text);
    for (base, token, want) in [(&a, &ta, ua.id()), (&b, &tb, ub.id())] {
        for q in [
            "/Users",
            "/Users?filter=userName+eq+%22shared%40x.com%22",
            "/Users?filter=externalId+eq+%22e1%22",
            "/Users?filter=userName+co+%22shared%22",
        ] {
            let l = srv.call_at(base, token, Method::GET, q, None).await;
            assert_eq!(l.body["totalResults"], 1, "{base}{q}: {}", l.text);
            assert_eq!(l.body["Resources"][0]["id"], want.as_str());
        }
        let other = if want == ua.id() { ub.id() } else { ua.id() };
        let r = srv
            .call_at(base, token, Method::GET, &format!("/Users/{other}"), None)
            .await;
        assert_eq!(r.status, 404);
        let r = srv
            .call_at(
                base,
                token,
                Method::DELETE,
                &format!("/Users/{other}"),
                None,
            )
            .await;
        assert_eq!(r.status, 404);
        let r = srv
            .call_at(
                base,
                token,
                Method::GET,
                &format!("/Users?filter=id+eq+%22{other}%22"),
                None,
            )
            .await;
        assert_eq!(r.body["totalResults"], 0);
    }
    let groups_b = srv.call_at(&b, &tb, Method::GET, "/Groups", None).await;
    assert_eq!(groups_b.body["totalResults"], 0);
    let default = srv.get("/Users").await;
    assert_eq!(default.body["totalResults"], 1);
    assert_ne!(default.body["Resources"][0]["id"], ua.id().as_str());
}

async fn revoked_and_unknown_tokens_are_refused(srv: TestServer) {
    use scim_core::store::TokenStore;
    let t = srv.add_tenant("acme").await;
    let id = &scim_core::auth::token_hash(&t)[..12];
    assert!(srv.store.revoke_token("acme", id).await.unwrap());
    let r = srv
        .call_at(&srv.tenant_base("acme"), &t, Method::GET, "/Users", None)
        .await;
    assert_eq!(r.status, 401);
    assert!(srv.store.list_tokens("acme").await.unwrap().is_empty());
    // Tokens are stored only as hashes.
    let t2 = srv.add_tenant("acme").await;
    let listed = srv.store.list_tokens("acme").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0].hash, t2);
    assert_eq!(listed[0].hash, scim_core::auth::token_hash(&t2));
}

/// A token record naming the base URL's internal directory id (as an older `scim-admin` could write for a
/// tenant called `default`) opens nothing: not the base URL, not `/default/scim/v2`.
async fn no_tenant_can_be_the_base_urls_directory(srv: TestServer) {
    use scim_core::store::{TokenRecord, TokenStore};
    let uid = srv.create_user(&json!({"userName": "main@x.com"})).await;
    for reserved in scim_core::auth::RESERVED_TENANT_IDS {
        assert!(!scim_core::auth::valid_tenant(reserved), "{reserved}");
    }
    let tenant = scim_core::auth::DEFAULT_TENANT;
    srv.store
        .create_tenant(tenant, "2026-01-01T00:00:00Z")
        .await
        .expect("create tenant");
    let token = scim_core::auth::generate_token();
    let hash = scim_core::auth::token_hash(&token);
    let rec = TokenRecord {
        id: hash[..12].to_string(),
        hash,
        tenant: tenant.into(),
        label: "forged".into(),
        created: String::new(),
        user: None,
        last_used: None,
    };
    srv.store.put_token(&rec).await.expect("put token");
    for path in ["/Users".to_string(), format!("/Users/{uid}")] {
        let r = srv
            .call_at(&srv.base, &token, Method::GET, &path, None)
            .await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        let r = srv
            .call_at(&srv.tenant_base(tenant), &token, Method::GET, &path, None)
            .await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(!r.text.contains("main@x.com"), "{}", r.text);
    }
}

scim_tests::engine_tests!(
    tokens_work_only_on_their_tenant,
    listing_and_filters_never_cross_tenants,
    revoked_and_unknown_tokens_are_refused,
    no_tenant_can_be_the_base_urls_directory
);
