//! Every limit at the limit (accepted) and one past it (refused with a clear SCIM error, nothing written).
//! Limits are engine-independent checks made before the store is touched, so these run on the embedded
//! engine only.

use scim_tests::{Engine, TestServer};
use serde_json::{json, Value};
use shared::config::Limits;
use shared::filter::MAX_FILTER_DEPTH;

async fn server(l: Limits) -> TestServer {
    TestServer::start_with(Engine::Dynoxide, l).await
}

fn patch(ops: Vec<Value>) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// A user body of exactly `n` bytes.
fn body_of_len(n: usize) -> String {
    let base = json!({"userName": "u@x.com", "title": ""}).to_string();
    let pad = n - base.len();
    json!({"userName": "u@x.com", "title": "a".repeat(pad)}).to_string()
}

async fn post_raw(srv: &TestServer, body: String) -> scim_tests::Resp {
    srv.send(srv.request(reqwest::Method::POST, "/Users").header("content-type", "application/scim+json").body(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_size() {
    let srv = server(Limits { max_body_bytes: 2000, ..Limits::default() }).await;
    assert_eq!(post_raw(&srv, body_of_len(2000)).await.status, 201);
    let r = post_raw(&srv, body_of_len(2001).replace("u@x.com", "v@x.com")).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("2000 bytes"));
    assert_eq!(srv.get("/Users").await.body["totalResults"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_length() {
    let srv = server(Limits { max_filter_len: 30, ..Limits::default() }).await;
    let f = |n: usize| format!("/Users?filter=userName+eq+%22{}%22", "a".repeat(n - 14)); // `userName eq ""` is 14
    assert_eq!(srv.get(&f(30)).await.status, 200);
    let r = srv.get(&f(31)).await;
    assert_eq!((r.status, r.body["scimType"].clone()), (400, json!("invalidFilter")));
    assert!(r.body["detail"].as_str().unwrap().contains("limit is 30"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_depth() {
    let srv = server(Limits::default()).await;
    let nested = |n: usize| format!("/Users?filter={}userName+eq+%22a%22{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(srv.get(&nested(MAX_FILTER_DEPTH)).await.status, 200);
    let r = srv.get(&nested(MAX_FILTER_DEPTH + 1)).await;
    assert_eq!((r.status, r.body["scimType"].clone()), (400, json!("invalidFilter")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_operations() {
    let srv = server(Limits { max_patch_ops: 3, ..Limits::default() }).await;
    let id = srv.create_user(&json!({"userName": "u@x.com"})).await;
    let op = |v: &str| json!({"op": "replace", "path": "title", "value": v});
    assert_eq!(srv.patch(&format!("/Users/{id}"), &patch(vec![op("a"), op("b"), op("c")])).await.status, 200);
    let r = srv.patch(&format!("/Users/{id}"), &patch(vec![op("a"), op("b"), op("c"), op("d")])).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("limit is 3"));
    assert_eq!(srv.get(&format!("/Users/{id}")).await.body["title"], "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_per_request() {
    let srv = server(Limits { max_member_changes: 3, ..Limits::default() }).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(srv.create_user(&json!({"userName": format!("u{i}@x")})).await);
    }
    let gid = srv.post("/Groups", &json!({"displayName": "G"})).await.id();
    let add = |ids: &[String]| patch(vec![json!({"op": "add", "path": "members", "value": ids.iter().map(|i| json!({"value": i})).collect::<Vec<_>>()})]);
    assert_eq!(srv.patch(&format!("/Groups/{gid}"), &add(&users[..3])).await.status, 204);
    let r = srv.patch(&format!("/Groups/{gid}"), &add(&users)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("split it"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_values_per_resource() {
    let srv = server(Limits { max_attribute_values: 4, ..Limits::default() }).await;
    // userName + 3 leaves of one email = 4 values.
    let four = json!({"userName": "u@x.com", "emails": [{"value": "u@x.com", "type": "work", "primary": true}]});
    let id = srv.create_user(&four).await;
    let r = srv.post("/Users", &json!({"userName": "v@x.com", "title": "t", "emails": [{"value": "v@x.com", "type": "work", "primary": true}]})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("limit is 4"));
    let r = srv.patch(&format!("/Users/{id}"), &patch(vec![json!({"op": "add", "path": "title", "value": "t"})])).await;
    assert_eq!(r.status, 400, "a PATCH may not grow past the limit either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_length() {
    let srv = server(Limits { max_value_len: 10, ..Limits::default() }).await;
    assert_eq!(srv.post("/Users", &json!({"userName": "u@x.com", "title": "é".repeat(10)})).await.status, 201);
    let r = srv.post("/Users", &json!({"userName": "v@x.com", "title": "é".repeat(11)})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("'title' is 11 characters"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_size() {
    let srv = server(Limits { max_page_size: 3, ..Limits::default() }).await;
    for i in 0..5 {
        srv.create_user(&json!({"userName": format!("u{i}@x")})).await;
    }
    assert_eq!(srv.get("/Users?count=3").await.body["itemsPerPage"], 3);
    let r = srv.get("/Users?count=4").await;
    assert_eq!((r.body["itemsPerPage"].clone(), r.body["totalResults"].clone()), (json!(3), json!(5)), "a larger count is lowered to the maximum");
    let spc = srv.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["filter"]["maxResults"], 3, "advertised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexed_filter_scan() {
    let srv = server(Limits { max_filter_scan: 3, ..Limits::default() }).await;
    for i in 0..3 {
        srv.create_user(&json!({"userName": format!("u{i}@x"), "title": "t"})).await;
    }
    assert_eq!(srv.get("/Users?filter=title+eq+%22t%22").await.body["totalResults"], 3);
    srv.create_user(&json!({"userName": "u3@x", "title": "t"})).await;
    let r = srv.get("/Users?filter=title+eq+%22t%22").await;
    assert_eq!((r.status, r.body["scimType"].clone()), (400, json!("tooMany")));
    assert_eq!(srv.get("/Users?filter=userName+eq+%22u3%40x%22").await.body["totalResults"], 1, "indexed filters are not bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_returned_per_group() {
    let srv = server(Limits { max_group_members: 2, ..Limits::default() }).await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(srv.create_user(&json!({"userName": format!("u{i}@x")})).await);
    }
    let gid = srv.post("/Groups", &json!({"displayName": "G", "members": [{"value": users[0]}, {"value": users[1]}]})).await.id();
    assert_eq!(srv.get(&format!("/Groups/{gid}")).await.body["members"].as_array().unwrap().len(), 2);
    let add = patch(vec![json!({"op": "add", "path": "members", "value": [{"value": users[2]}]})]);
    assert_eq!(srv.patch(&format!("/Groups/{gid}"), &add).await.status, 204, "a group may grow past it");
    let r = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!((r.status, r.body["scimType"].clone()), (400, json!("tooMany")));
    assert!(r.body["detail"].as_str().unwrap().contains("excludedAttributes=members"));
    assert_eq!(srv.get(&format!("/Groups/{gid}?excludedAttributes=members")).await.status, 200);
}
