//! API Gateway HTTP API (v2) events, as Lambda receives them, through `lambda_http`'s conversion and the
//! same routers the Lambda functions run (`users_router`, `groups_router`, `discovery_router`). Proves the
//! query string is decoded exactly once from `rawQueryString` (raw double quotes included) and that a request without `User-Agent` is
//! served.

use axum::Router;
use http_body_util::BodyExt;
use scim_core::auth::Auth;
use scim_core::config::{HttpConfig, Limits};
use scim_core::http::{self, AppState};
use scim_core::service::Service;
use scim_tests::{fresh_store, Engine};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

struct Lambda {
    users: Router,
    groups: Router,
    discovery: Router,
    token: String,
}

impl Lambda {
    async fn new() -> Self {
        let store = fresh_store(Engine::Dynoxide).await;
        let token = scim_core::auth::generate_token();
        let state = AppState::new(
            Service::new(Arc::new(store), Limits::default()),
            Auth::from_token(&token).unwrap(),
            HttpConfig::default(),
        );
        Lambda {
            users: http::users_router(state.clone()),
            groups: http::groups_router(state.clone()),
            discovery: http::discovery_router(state),
            token,
        }
    }

    /// Load a fixture, fill its placeholders, convert it as `lambda_http::run` does, and call `router`.
    async fn invoke(
        &self,
        router: &Router,
        fixture: &str,
        vars: &[(&str, &str)],
    ) -> (u16, axum::http::HeaderMap, Value) {
        let path = format!(
            "{}/fixtures/apigw-v2/{fixture}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text = text.replace("{{TOKEN}}", &self.token);
        for (k, v) in vars {
            text = text.replace(&format!("{{{{{k}}}}}"), v);
        }
        // Converted as the functions' runner converts it (scim_core::http::lambda::run).
        let req = scim_core::http::lambda::request_from_str(&text)
            .unwrap_or_else(|e| panic!("{fixture}: not an API Gateway v2 event: {e}"));
        let resp = router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_through_lambda_events() {
    let l = Lambda::new().await;

    // Test Connection, without a User-Agent header.
    let (s, h, b) = l
        .invoke(&l.users, "users-test-connection-no-user-agent", &[])
        .await;
    assert_eq!((s, b["totalResults"].clone()), (200, Value::from(0)));
    assert_eq!(h["content-type"], "application/scim+json");

    let (s, h, b) = l.invoke(&l.users, "users-post", &[]).await;
    assert_eq!(s, 201, "{b}");
    let uid = b["id"].as_str().unwrap().to_string();
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("https://abc123.execute-api.eu-west-1.amazonaws.com/scim/v2/Users/{uid}")
    );

    // `+` is a space and `%2B` a plus: decoded once, the filter finds a+b@x.com.
    let (s, _, b) = l.invoke(&l.users, "users-get-filter-encoded", &[]).await;
    assert_eq!((s, b["totalResults"].clone()), (200, Value::from(1)), "{b}");
    assert_eq!(b["Resources"][0]["userName"], "a+b@x.com");
    // Entra's raw double quotes, as API Gateway passes them on in rawQueryString: the same answer.
    let (s, _, b) = l.invoke(&l.users, "users-get-filter-raw-quotes", &[]).await;
    assert_eq!((s, b["totalResults"].clone()), (200, Value::from(1)), "{b}");
    assert_eq!(b["Resources"][0]["userName"], "a+b@x.com");

    let (s, _, b) = l
        .invoke(&l.users, "users-get-by-id", &[("USER_ID", &uid)])
        .await;
    assert_eq!((s, b["id"].as_str()), (200, Some(uid.as_str())));
    let (s, _, b) = l
        .invoke(&l.users, "users-patch-disable", &[("USER_ID", &uid)])
        .await;
    assert_eq!((s, b["active"].clone()), (200, Value::Bool(false)));
    let (s, _, b) = l.invoke(&l.users, "users-put", &[("USER_ID", &uid)]).await;
    assert_eq!((s, b["title"].clone()), (200, Value::from("Engineer")));

    let (s, _, b) = l.invoke(&l.groups, "groups-post", &[]).await;
    assert_eq!(s, 201, "{b}");
    let gid = b["id"].as_str().unwrap().to_string();
    let (s, _, b) = l
        .invoke(&l.groups, "groups-get-filter-excluding-members", &[])
        .await;
    assert_eq!((s, b["totalResults"].clone()), (200, Value::from(1)), "{b}");
    assert!(b["Resources"][0].get("members").is_none());
    let (s, _, _) = l
        .invoke(
            &l.groups,
            "groups-patch-add-member",
            &[("GROUP_ID", &gid), ("USER_ID", &uid)],
        )
        .await;
    assert_eq!(s, 204);
    let (s, _, b) = l
        .invoke(&l.groups, "groups-get-by-id", &[("GROUP_ID", &gid)])
        .await;
    assert_eq!(
        (s, b["members"][0]["value"].as_str()),
        (200, Some(uid.as_str()))
    );

    for (fixture, want) in [
        (
            "discovery-service-provider-config",
            "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
        ),
        (
            "discovery-schemas",
            "urn:ietf:params:scim:api:messages:2.0:ListResponse",
        ),
        (
            "discovery-schema-by-urn",
            "urn:ietf:params:scim:schemas:core:2.0:Schema",
        ),
        (
            "discovery-resource-types",
            "urn:ietf:params:scim:api:messages:2.0:ListResponse",
        ),
        (
            "discovery-resource-type-group",
            "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
        ),
    ] {
        let (s, h, b) = l.invoke(&l.discovery, fixture, &[]).await;
        assert_eq!(
            (s, b["schemas"][0].as_str()),
            (200, Some(want)),
            "{fixture}: {b}"
        );
        assert_eq!(h["content-type"], "application/scim+json");
    }
    let (s, _, b) = l.invoke(&l.discovery, "discovery-post-refused", &[]).await;
    assert_eq!((s, b["status"].clone()), (405, Value::from("405")));

    let (s, _, _) = l
        .invoke(&l.groups, "groups-delete", &[("GROUP_ID", &gid)])
        .await;
    assert_eq!(s, 204);
    let (s, _, _) = l
        .invoke(&l.users, "users-delete", &[("USER_ID", &uid)])
        .await;
    assert_eq!(s, 204);
    let (s, _, b) = l
        .invoke(&l.users, "users-delete", &[("USER_ID", &uid)])
        .await;
    assert_eq!((s, b["status"].clone()), (404, Value::from("404")));
    // A function serves only its own resource: the users function does not answer /Groups.
    let (s, _, _) = l
        .invoke(&l.users, "groups-get-by-id", &[("GROUP_ID", &gid)])
        .await;
    assert_eq!(s, 404);
}
