//! HTTP-level behaviour every SCIM client (Entra first) depends on: content types, authentication,
//! query decoding, error bodies and codes, size limits, path tolerance, PATCH atomicity, and the
//! DynamoDB calls each operation makes (docs/store.md "Access patterns"). Runs on both engines.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use scim_tests::patch_body;
use scim_tests::urn::{ERROR, LIST, PATCH_OP, USER};
use scim_tests::SCIM_JSON;
use scim_tests::{Resp, TestServer};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

fn user_body(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true, "displayName": "Original"})
}

fn user_path(id: &str) -> String {
    format!("/Users/{id}")
}

/// A client that sends no Authorization header at all (the harness's `request` always adds the token).
fn unauthenticated(srv: &TestServer, method: Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .request(method, format!("{}{}", srv.base, path))
}

/// A raw body with an explicit Content-Type.
async fn send_raw(
    srv: &TestServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Resp {
    srv.send(
        srv.request(method, path)
            .header(CONTENT_TYPE, content_type)
            .body(body),
    )
    .await
}

fn assert_scim_ct(r: &Resp) {
    let ct = r
        .header("content-type")
        .unwrap_or_else(|| panic!("no Content-Type on a {} answer: {}", r.status, r.text));
    assert_eq!(
        ct.split(';').next().unwrap().trim(),
        SCIM_JSON,
        "Content-Type of a {} answer: {}",
        r.status,
        r.text
    );
}

/// A SCIM Error: status, content type, schemas, string `status`, a `detail`.
fn assert_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_scim_ct(r);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{}", r.text);
    assert_eq!(r.body["status"], json!(status.to_string()), "{}", r.text);
    assert!(
        r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "no detail: {}",
        r.text
    );
}

fn assert_error_type(r: &Resp, status: u16, scim_type: &str) {
    assert_error(r, status);
    assert_eq!(r.body["scimType"], scim_type, "{}", r.text);
}

/// How many users the server holds (`totalResults` of the unfiltered list).
async fn user_count(srv: &TestServer) -> u64 {
    let r = srv.get("/Users?count=0").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["totalResults"]
        .as_u64()
        .unwrap_or_else(|| panic!("no totalResults: {}", r.text))
}

async fn get_user(srv: &TestServer, id: &str) -> Value {
    let r = srv.get(&user_path(id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// A JSON body of more than 1 MiB.
fn oversized_user() -> String {
    json!({"schemas": [USER], "userName": "big@contoso.com", "displayName": "x".repeat(1024 * 1024 + 1)}).to_string()
}

// ---------------------------------------------------------------------------------------------
// Content types

async fn every_response_is_application_scim_json(srv: TestServer) {
    let id = srv.create_user(&user_body("ct@contoso.com")).await;
    let successes = [
        (200, srv.get(&user_path(&id)).await),
        (
            200,
            srv.get("/Users?filter=userName+eq+%22ct%40contoso.com%22")
                .await,
        ),
        (201, srv.post("/Users", &user_body("ct2@contoso.com")).await),
        (
            200,
            srv.patch(
                &user_path(&id),
                &patch_body(json!([{"op": "replace", "path": "title", "value": "T"}])),
            )
            .await,
        ),
        (200, srv.get("/Schemas").await),
    ];
    for (status, r) in &successes {
        assert_eq!(r.status, *status, "{}", r.text);
        assert_scim_ct(r);
    }
    let errors = [
        (
            401,
            srv.send(unauthenticated(&srv, Method::GET, "/Users")).await,
        ),
        (
            404,
            srv.get("/Users/00000000-0000-4000-8000-000000000000").await,
        ),
        (404, srv.get("/NoSuchEndpoint").await),
        (405, srv.post("/ServiceProviderConfig", &json!({})).await),
        (409, srv.post("/Users", &user_body("CT@contoso.com")).await),
        (400, srv.get("/Users?filter=userName+xx+%22a%22").await),
        (
            413,
            send_raw(&srv, Method::POST, "/Users", SCIM_JSON, oversized_user()).await,
        ),
        (
            415,
            send_raw(
                &srv,
                Method::POST,
                "/Users",
                "text/plain",
                user_body("plain@contoso.com").to_string(),
            )
            .await,
        ),
    ];
    for (status, r) in &errors {
        assert_error(r, *status);
    }
}

async fn request_content_types_accepted(srv: TestServer) {
    let types = [
        SCIM_JSON,
        "application/scim+json; charset=utf-8",
        "application/json",
        "application/json; charset=utf-8",
    ];
    for (i, ct) in types.iter().enumerate() {
        let r = send_raw(
            &srv,
            Method::POST,
            "/Users",
            ct,
            user_body(&format!("ct{i}@contoso.com")).to_string(),
        )
        .await;
        assert_eq!(r.status, 201, "POST with {ct}: {}", r.text);
        let id = r.id();
        let ops = patch_body(
            json!([{"op": "Replace", "path": "displayName", "value": format!("via {ct}")}]),
        );
        let r = send_raw(&srv, Method::PATCH, &user_path(&id), ct, ops.to_string()).await;
        assert_eq!(r.status, 200, "PATCH with {ct}: {}", r.text);
        assert_eq!(r.body["displayName"], json!(format!("via {ct}")));
        let r = send_raw(
            &srv,
            Method::PUT,
            &user_path(&id),
            ct,
            user_body(&format!("ct{i}@contoso.com")).to_string(),
        )
        .await;
        assert_eq!(r.status, 200, "PUT with {ct}: {}", r.text);
    }
}

async fn text_plain_body_is_415_and_creates_nothing(srv: TestServer) {
    let r = send_raw(
        &srv,
        Method::POST,
        "/Users",
        "text/plain",
        user_body("plain@contoso.com").to_string(),
    )
    .await;
    assert_error(&r, 415);
    assert_eq!(user_count(&srv).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Authentication

async fn missing_token_is_401_with_www_authenticate(srv: TestServer) {
    for (method, path) in [
        (Method::GET, "/Users"),
        (Method::GET, "/Schemas"),
        (Method::POST, "/Users"),
        (Method::GET, "/NoSuchEndpoint"),
    ] {
        let mut rb = unauthenticated(&srv, method.clone(), path);
        if method == Method::POST {
            rb = rb
                .header(CONTENT_TYPE, SCIM_JSON)
                .body(user_body("anon@contoso.com").to_string());
        }
        let r = srv.send(rb).await;
        assert_error(&r, 401);
        let challenge = r
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("no WWW-Authenticate on {method} {path}"));
        assert!(
            challenge.to_ascii_lowercase().starts_with("bearer"),
            "{challenge}"
        );
    }
    assert_eq!(
        user_count(&srv).await,
        0,
        "nothing was created without a token"
    );
}

async fn wrong_token_is_401(srv: TestServer) {
    let wrong = [
        "Bearer 0000000000000000000000000000000000000000000000000000000000000000".to_string(),
        format!("Basic {}", srv.token),
        srv.token.clone(),
        "Bearer ".to_string(),
        format!("Bearer {}x", srv.token),
    ];
    for header in wrong {
        let r = srv
            .send(unauthenticated(&srv, Method::GET, "/Users").header(AUTHORIZATION, &header))
            .await;
        assert_error(&r, 401);
        assert!(
            r.header("www-authenticate").is_some(),
            "no WWW-Authenticate for {header:?}"
        );
    }
}

async fn bearer_bearer_token_accepted(srv: TestServer) {
    let r = srv
        .send(
            unauthenticated(&srv, Method::GET, "/Users")
                .header(AUTHORIZATION, format!("Bearer Bearer {}", srv.token)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["schemas"], json!([LIST]));
}

// ---------------------------------------------------------------------------------------------
// Query strings

async fn unknown_query_parameter_aad_opt_scim_062020_ignored(srv: TestServer) {
    let r = srv
        .post("/Users?aadOptscim062020", &user_body("flag@contoso.com"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.id();
    let r = srv
        .get("/Users?aadOptscim062020&filter=userName+eq+%22flag%40contoso.com%22")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), vec![id.clone()]);
    let r = srv.get(&format!("/Users/{id}?aadOptscim062020")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = srv
        .patch(
            &format!("/Users/{id}?aadOptscim062020"),
            &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], json!(false));
    let r = srv.get("/Schemas?aadOptscim062020").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn malformed_filters_are_400_invalid_filter(srv: TestServer) {
    srv.create_user(&user_body("a")).await;
    for q in [
        "userName+xx+%22a%22",
        "%28",
        "userName+eq",
        "userName+eq+%22unterminated",
        "emails%5Btype+eq+%22work%22+and+value+eq+%22a%22",
        "userName+eq+%22a%22+and",
    ] {
        let r = srv.get(&format!("/Users?filter={q}")).await;
        assert_error_type(&r, 400, "invalidFilter");
    }
}

async fn sort_by_is_400(srv: TestServer) {
    assert_error(&srv.get("/Users?sortBy=userName").await, 400);
    assert_error(
        &srv.get("/Users?sortBy=userName&sortOrder=descending").await,
        400,
    );
}

async fn count_not_a_number_is_400(srv: TestServer) {
    assert_error(&srv.get("/Users?count=abc").await, 400);
    assert_error(&srv.get("/Users?startIndex=abc").await, 400);
}

async fn encoded_plus_in_filter_value_is_decoded_once(srv: TestServer) {
    let plus = srv.create_user(&user_body("a+b@x.com")).await;
    let space = srv.create_user(&user_body("a b@x.com")).await;
    let r = srv
        .get("/Users?filter=userName+eq+%22a%2Bb%40x.com%22")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r.body), [plus], "{}", r.text);
    let r = srv.get("/Users?filter=userName+eq+%22a+b%40x.com%22").await;
    assert_eq!(ids(&r.body), [space], "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// Paths

async fn double_slash_and_trailing_slash_paths_work(srv: TestServer) {
    let r = srv.post("//Users", &user_body("slash@contoso.com")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.id();
    for path in [
        "//Users".to_string(),
        "/Users/".to_string(),
        format!("//Users/{id}"),
        format!("/Users/{id}/"),
    ] {
        let r = srv.get(&path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        assert_scim_ct(&r);
    }
    let r = srv
        .get("//Users?filter=userName+eq+%22slash%40contoso.com%22")
        .await;
    assert_eq!(
        ids(&r.body),
        vec![id.clone()],
        "the query survives the path clean-up: {}",
        r.text
    );
    let r = srv.get(&format!("/Users/{id}/")).await;
    assert_eq!(r.body["id"], json!(id));
}

async fn unknown_path_is_404_scim_error(srv: TestServer) {
    for path in ["/NoSuchEndpoint", "/Users/x/extra", "/Groupz", "/"] {
        assert_error(&srv.get(path).await, 404);
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

async fn malformed_json_is_400_invalid_syntax_and_creates_nothing(srv: TestServer) {
    srv.create_user(&user_body("existing@contoso.com")).await;
    for body in [
        "{\"userName\": \"x\",",
        "not json",
        "",
        "[1, 2]",
        "\"userName\"",
    ] {
        let r = send_raw(&srv, Method::POST, "/Users", SCIM_JSON, body.to_string()).await;
        assert_error_type(&r, 400, "invalidSyntax");
    }
    assert_eq!(user_count(&srv).await, 1);
}

async fn body_over_one_mib_is_413_and_creates_nothing(srv: TestServer) {
    let r = send_raw(&srv, Method::POST, "/Users", SCIM_JSON, oversized_user()).await;
    assert_error(&r, 413);
    assert_eq!(user_count(&srv).await, 0);
    let id = srv.create_user(&user_body("small@contoso.com")).await;
    let big = patch_body(
        json!([{"op": "replace", "path": "displayName", "value": "x".repeat(1024 * 1024 + 1)}]),
    );
    let r = send_raw(
        &srv,
        Method::PATCH,
        &user_path(&id),
        SCIM_JSON,
        big.to_string(),
    )
    .await;
    assert_error(&r, 413);
    assert_eq!(get_user(&srv, &id).await["displayName"], "Original");
}

async fn patch_without_operations_is_400_and_changes_nothing(srv: TestServer) {
    let id = srv.create_user(&user_body("noops@contoso.com")).await;
    let before = get_user(&srv, &id).await;
    for body in [
        json!({"schemas": [PATCH_OP]}),
        json!({"schemas": [PATCH_OP], "Operations": []}),
    ] {
        let r = srv.patch(&user_path(&id), &body).await;
        assert_error_type(&r, 400, "invalidSyntax");
    }
    assert_eq!(get_user(&srv, &id).await, before);
}

async fn patch_with_invalid_second_operation_changes_nothing(srv: TestServer) {
    let id = srv.create_user(&user_body("atomic@contoso.com")).await;
    let before = get_user(&srv, &id).await;
    for bad in [
        json!({"op": "replace", "path": "active", "value": "maybe"}),
        json!({"op": "remove", "path": "userName"}),
        json!({"op": "frobnicate", "path": "title", "value": "x"}),
    ] {
        let ops = json!([{"op": "replace", "path": "displayName", "value": "Changed"}, bad]);
        let r = srv.patch(&user_path(&id), &patch_body(ops.clone())).await;
        assert_error(&r, 400);
        let after = get_user(&srv, &id).await;
        assert_eq!(after, before, "{ops} changed the user");
        assert_eq!(after["meta"]["version"], "W/\"1\"");
    }
}

async fn post_ignores_client_supplied_id_and_meta(srv: TestServer) {
    let mut body = user_body("ids@contoso.com");
    body["id"] = json!("client-chosen-id");
    body["meta"] = json!({"resourceType": "Group", "created": "2000-01-01T00:00:00Z", "lastModified": "2000-01-01T00:00:00Z",
        "version": "W/\"99\"", "location": "https://elsewhere.example/Users/client-chosen-id"});
    let r = srv.post("/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.id();
    assert_ne!(id, "client-chosen-id");
    let meta = &r.body["meta"];
    assert_eq!(meta["resourceType"], "User");
    assert_ne!(meta["created"], "2000-01-01T00:00:00Z");
    assert_eq!(meta["version"], "W/\"1\"");
    assert_eq!(meta["location"], json!(format!("{}/Users/{id}", srv.base)));
    assert_eq!(get_user(&srv, &id).await, r.body);
    assert_error(&srv.get("/Users/client-chosen-id").await, 404);
}

// ---------------------------------------------------------------------------------------------
// DynamoDB calls per operation (docs/store.md "Access patterns and their DynamoDB calls")

async fn calls_get_by_id_is_1(srv: TestServer) {
    let id = srv.create_user(&user_body("calls@contoso.com")).await;
    let r = srv.get(&user_path(&id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.calls(), 1);
    let r = srv.get("/Users/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.calls(), 1);
}

async fn calls_user_name_filter_is_1(srv: TestServer) {
    srv.create_user(&user_body("calls@contoso.com")).await;
    srv.create_user(&user_body("other@contoso.com")).await;
    for q in [
        "filter=userName+eq+%22calls%40contoso.com%22",
        "filter=userName+eq+%22absent%40contoso.com%22",
        "filter=userName+eq+%22calls%40contoso.com%22+and+active+eq+true",
    ] {
        let r = srv.get(&format!("/Users?{q}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.calls(), 1, "{q}");
    }
}

async fn calls_external_id_and_id_filters_are_1(srv: TestServer) {
    let id = srv
        .create_user(&json!({"userName": "calls@contoso.com", "externalId": "ext-1"}))
        .await;
    for q in [
        "filter=externalId+eq+%22ext-1%22".to_string(),
        format!("filter=id+eq+%22{id}%22"),
    ] {
        let r = srv.get(&format!("/Users?{q}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(ids(&r.body), vec![id.clone()], "{q}");
        assert_eq!(r.calls(), 1, "{q}");
    }
}

async fn calls_post_is_1(srv: TestServer) {
    let r = srv.post("/Users", &user_body("calls@contoso.com")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.calls(), 1);
}

async fn calls_patch_is_2(srv: TestServer) {
    let id = srv.create_user(&user_body("calls@contoso.com")).await;
    let r = srv
        .patch(
            &user_path(&id),
            &patch_body(json!([{"op": "Replace", "path": "displayName", "value": "Changed"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.calls(), 2, "1 GetItem + 1 conditional PutItem");
}

async fn calls_patch_changing_nothing_is_1(srv: TestServer) {
    let id = srv.create_user(&user_body("calls@contoso.com")).await;
    let r = srv
        .patch(
            &user_path(&id),
            &patch_body(json!([{"op": "Replace", "path": "displayName", "value": "Original"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.calls(), 1, "only the read");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
}

async fn calls_delete_is_2(srv: TestServer) {
    let id = srv.create_user(&user_body("calls@contoso.com")).await;
    let r = srv.delete(&user_path(&id)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.calls(), 2, "1 GetItem + 1 TransactWriteItems");
}

/// Capacity units per operation, as the engine reports them (`ReturnConsumedCapacity=TOTAL`). dynoxide
/// applies DynamoDB's rules (docs/benchmark.md, "Capacity units"), so its figures are asserted exactly;
/// moto reports no capacity for TransactWriteItems and a flat 0.5 elsewhere, so only their kind is checked.
async fn capacity_units_are_reported(srv: TestServer) {
    let exact = srv.engine == scim_tests::Engine::Dynoxide;
    let r = srv.post("/Users", &user_body("cap@contoso.com")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (read, write) = r.capacity();
    assert_eq!(read, 0.0, "a create reads nothing");
    if exact {
        assert_eq!(
            write, 7.0,
            "3 items in a transaction (2 each) + the userName index entry (1)"
        );
    }
    let id = r.id();
    let (read, write) = srv.get(&user_path(&id)).await.capacity();
    assert!(read > 0.0 && write == 0.0, "GET by id: {read}/{write}");
    if exact {
        assert_eq!(
            read, 1.0,
            "one strongly consistent read of an item under 4 KB"
        );
    }
    let (read, write) = srv
        .get("/Users?filter=userName+eq+%22cap%40contoso.com%22")
        .await
        .capacity();
    assert!(read > 0.0 && write == 0.0, "userName eq: {read}/{write}");
    if exact {
        assert_eq!(
            read, 0.5,
            "one eventually consistent index query under 4 KB"
        );
    }
    let r = srv
        .patch(
            &user_path(&id),
            &patch_body(json!([{"op": "Replace", "path": "displayName", "value": "Changed"}])),
        )
        .await;
    let (read, write) = r.capacity();
    assert!(
        read > 0.0 && write > 0.0,
        "PATCH reads then writes: {read}/{write}"
    );
    if exact {
        assert_eq!(
            (read, write),
            (1.0, 2.0),
            "GetItem + UpdateItem of the item and its index entry"
        );
    }
    let (read, write) = srv.get("/ServiceProviderConfig").await.capacity();
    assert_eq!((read, write), (0.0, 0.0), "discovery touches no table");
}

scim_tests::engine_tests!(
    capacity_units_are_reported,
    every_response_is_application_scim_json,
    request_content_types_accepted,
    text_plain_body_is_415_and_creates_nothing,
    missing_token_is_401_with_www_authenticate,
    wrong_token_is_401,
    bearer_bearer_token_accepted,
    unknown_query_parameter_aad_opt_scim_062020_ignored,
    malformed_filters_are_400_invalid_filter,
    sort_by_is_400,
    count_not_a_number_is_400,
    encoded_plus_in_filter_value_is_decoded_once,
    double_slash_and_trailing_slash_paths_work,
    unknown_path_is_404_scim_error,
    malformed_json_is_400_invalid_syntax_and_creates_nothing,
    body_over_one_mib_is_413_and_creates_nothing,
    patch_without_operations_is_400_and_changes_nothing,
    patch_with_invalid_second_operation_changes_nothing,
    post_ignores_client_supplied_id_and_meta,
    calls_get_by_id_is_1,
    calls_user_name_filter_is_1,
    calls_external_id_and_id_filters_are_1,
    calls_post_is_1,
    calls_patch_is_2,
    calls_patch_changing_nothing_is_1,
    calls_delete_is_2,
);
