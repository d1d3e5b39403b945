//! RFC features beyond what Entra uses, on both engines: ETags, POST .search, RFC 9865 cursors, /Me,
//! sorting refused rather than ignored.

use futures::future::join_all;
use reqwest::Method;
use scim_tests::urn::PATCH_OP;
use scim_tests::TestServer;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn patch_title(t: &str) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": t}]})
}

async fn etags(srv: TestServer) {
    let created = srv.post("/Users", &json!({"userName": "e@x.com"})).await;
    let (id, tag) = (created.id(), created.header("etag").unwrap().to_string());
    assert_eq!(tag, "W/\"1\"");
    assert_eq!(created.body["meta"]["version"], tag.as_str());
    let path = format!("/Users/{id}");
    // If-None-Match with the current version → 304; with an old one → 200.
    assert_eq!(
        srv.call_with_header(Method::GET, &path, ("if-none-match", &tag), None)
            .await
            .status,
        304
    );
    assert_eq!(
        srv.call_with_header(Method::GET, &path, ("if-none-match", "W/\"0\""), None)
            .await
            .status,
        200
    );
    // If-Match with the current version succeeds and moves the version.
    let r = srv
        .call_with_header(
            Method::PATCH,
            &path,
            ("if-match", &tag),
            Some(&patch_title("a")),
        )
        .await;
    assert_eq!((r.status, r.header("etag")), (200, Some("W/\"2\"")));
    // A stale If-Match → 412 on PATCH, PUT and DELETE, and nothing changes.
    for (m, body) in [
        (Method::PATCH, Some(patch_title("b"))),
        (
            Method::PUT,
            Some(json!({"userName": "e@x.com", "title": "c"})),
        ),
        (Method::DELETE, None),
    ] {
        let r = srv
            .call_with_header(m.clone(), &path, ("if-match", &tag), body.as_ref())
            .await;
        assert_eq!(r.status, 412, "{m}: {}", r.text);
        assert!(r.body["detail"].as_str().unwrap().contains("W/\"2\""));
    }
    let now = srv.get(&path).await;
    assert_eq!(
        (now.body["title"].clone(), now.header("etag")),
        (json!("a"), Some("W/\"2\""))
    );
    assert_eq!(
        srv.call_with_header(Method::DELETE, &path, ("if-match", "W/\"2\""), None)
            .await
            .status,
        204
    );
    assert_eq!(
        srv.get("/ServiceProviderConfig").await.body["etag"]["supported"],
        true
    );
}

async fn search_endpoints(srv: TestServer) {
    for i in 0..3 {
        srv.create_user(&json!({"userName": format!("s{i}@x.com"), "title": if i == 1 { "Boss" } else { "Staff" }})).await;
    }
    srv.post("/Groups", &json!({"displayName": "Staff"})).await;
    let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "title eq \"staff\"", "attributes": ["userName"], "startIndex": 1, "count": 10});
    let r = srv.post("/Users/.search", &req).await;
    assert_eq!(
        (r.status, r.body["totalResults"].clone()),
        (200, json!(2)),
        "{}",
        r.text
    );
    assert!(
        r.body["Resources"][0].get("title").is_none(),
        "attributes honoured"
    );
    assert_eq!(
        r.body["Resources"][0]["userName"].as_str().unwrap().len(),
        8
    );
    let g = srv
        .post(
            "/Groups/.search",
            &json!({"filter": "displayName eq \"STAFF\"", "excludedAttributes": ["members"]}),
        )
        .await;
    assert_eq!(g.body["totalResults"], 1);
    // Root search: every resource type, paged across them.
    let all = srv.post("/.search", &json!({"count": 3})).await;
    assert_eq!(
        (
            all.body["totalResults"].clone(),
            all.body["itemsPerPage"].clone()
        ),
        (json!(4), json!(3))
    );
    let rest = srv
        .post("/.search", &json!({"startIndex": 4, "count": 3}))
        .await;
    assert_eq!(rest.body["Resources"][0]["displayName"], "Staff");
    let bad = srv
        .post("/Users/.search", &json!({"filter": "title xx \"a\""}))
        .await;
    assert_eq!(
        (bad.status, bad.body["scimType"].clone()),
        (400, json!("invalidFilter"))
    );
}

async fn cursor_paging(srv: TestServer) {
    let mut ids = BTreeSet::new();
    for i in 0..7 {
        ids.insert(
            srv.create_user(&json!({"userName": format!("c{i}@x.com")}))
                .await,
        );
    }
    // count=0 returns only the total.
    let zero = srv.get("/Users?cursor=&count=0").await;
    assert_eq!(
        (
            zero.body["totalResults"].clone(),
            zero.body["Resources"].clone()
        ),
        (json!(7), json!([]))
    );
    // Walk with cursors while other users are created: every original user is seen exactly once.
    let mut seen = Vec::new();
    let mut next = String::new();
    for round in 0..10 {
        let page = srv.get(&format!("/Users?count=3&cursor={next}")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.body.get("startIndex").is_none());
        seen.extend(
            page.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        let bodies: Vec<Value> = (0..2)
            .map(|j| json!({"userName": format!("late{round}-{j}@x.com")}))
            .collect();
        join_all(bodies.iter().map(|b| srv.post("/Users", b))).await;
        match page.body["nextCursor"].as_str() {
            Some(c) => next = c.to_string(),
            None => break,
        }
    }
    let seen_set: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), seen_set.len(), "no resource twice");
    assert!(
        ids.is_subset(&seen_set),
        "every resource present at the start was seen"
    );
    // Forged or foreign cursors are refused.
    let forged = srv.get("/Users?cursor=6162.0000000000000000&count=3").await;
    assert_eq!(
        (forged.status, forged.body["scimType"].clone()),
        (400, json!("invalidCursor"))
    );
    let both = srv.get("/Users?cursor=&startIndex=2").await;
    assert_eq!(both.status, 400);
    // Filtered cursor paging.
    let f = srv
        .get("/Users?filter=userName+sw+%22c%22&count=4&cursor=")
        .await;
    assert_eq!(
        (
            f.body["totalResults"].clone(),
            f.body["itemsPerPage"].clone()
        ),
        (json!(7), json!(4))
    );
    let c = f.body["nextCursor"].as_str().unwrap();
    let f2 = srv
        .get(&format!(
            "/Users?filter=userName+sw+%22c%22&count=4&cursor={c}"
        ))
        .await;
    assert_eq!(f2.body["itemsPerPage"], 3);
    assert!(f2.body.get("nextCursor").is_none());
    assert_eq!(
        srv.get("/ServiceProviderConfig").await.body["pagination"]["cursor"],
        true
    );
}

async fn me_endpoint(srv: TestServer) {
    // The single-tenant token names no user: a clear 501.
    let r = srv.get("/Me").await;
    assert_eq!(r.status, 501);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("bound to a user"));
    // A tenant token bound to a user acts on that user, at its tenant's URL.
    let admin = srv.add_tenant("acme").await;
    let base = srv.tenant_base("acme");
    let id = srv
        .call_at(
            &base,
            &admin,
            Method::POST,
            "/Users",
            Some(&json!({"userName": "me@x.com"})),
        )
        .await
        .id();
    let token = srv.add_tenant_token("acme", Some(&id)).await;
    let me = srv.call_at(&base, &token, Method::GET, "/Me", None).await;
    assert_eq!(
        (me.status, me.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
    let r = srv
        .call_at(
            &base,
            &token,
            Method::PATCH,
            "/Me",
            Some(&patch_title("Me")),
        )
        .await;
    assert_eq!((r.status, r.body["title"].clone()), (200, json!("Me")));
    let r = srv
        .call_at(
            &base,
            &token,
            Method::PUT,
            "/Me",
            Some(&json!({"userName": "me@x.com", "nickName": "m"})),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["nickName"].clone(),
            r.body.get("title").is_none()
        ),
        (200, json!("m"), true)
    );
    assert_eq!(
        srv.call_at(&base, &token, Method::DELETE, "/Me", None)
            .await
            .status,
        204
    );
    assert_eq!(
        srv.call_at(&base, &admin, Method::GET, &format!("/Users/{id}"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        srv.call_at(&base, &token, Method::GET, "/Me", None)
            .await
            .status,
        404
    );
}

async fn sorting_is_refused_not_ignored(srv: TestServer) {
    let r = srv.get("/Users?sortBy=userName&sortOrder=descending").await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("Sorting is not supported"));
    assert_eq!(
        srv.post("/Users/.search", &json!({"sortBy": "userName"}))
            .await
            .status,
        400
    );
    assert_eq!(
        srv.get("/ServiceProviderConfig").await.body["sort"]["supported"],
        false
    );
}

fn bulk_req(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
}

async fn bulk(srv: TestServer) {
    let existing = srv.create_user(&json!({"userName": "old@x.com"})).await;
    // RFC 7644 §3.7.2 shape: the group comes first and refers to users created later by bulkId.
    let r = srv
        .post("/Bulk", &bulk_req(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:alice"}, {"value": "bulkId:bob"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "alice", "data": {"userName": "alice@x.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "bob", "data": {"userName": "bob@x.com", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:alice"}}}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "OLD@x.com"}},
            {"method": "PATCH", "path": "/Users/bulkId:alice", "data": {"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}},
            {"method": "DELETE", "path": format!("/Users/{existing}")},
            {"method": "DELETE", "path": "/Users/does-not-exist"}
        ])))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ops = r.body["Operations"].as_array().unwrap();
    let status: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    // Each answered as it would be alone: created, created, created, taken, patched, deleted, not found.
    assert_eq!(
        status,
        ["201", "201", "201", "409", "200", "204", "404"],
        "{}",
        r.text
    );
    assert_eq!(ops[3]["response"]["scimType"], "uniqueness");
    assert!(ops[0]["location"].as_str().unwrap().contains("/Groups/"));
    let gid = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let alice = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let group = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(group.body["members"].as_array().unwrap().len(), 2);
    let bob = srv.get("/Users?filter=userName+eq+%22bob%40x.com%22").await;
    assert_eq!(
        bob.body["Resources"][0]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
            ["manager"]["value"],
        alice.as_str()
    );
    assert_eq!(
        srv.get(&format!("/Users/{alice}")).await.body["active"],
        false
    );
}

async fn bulk_cycles_fail_on_errors_and_limits(srv: TestServer) {
    let r = srv
        .post("/Bulk", &bulk_req(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"userName": "c@x.com"}}
        ])))
        .await;
    let status: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["409", "409", "201"], "{}", r.text);
    assert_eq!(
        srv.get("/Groups").await.body["totalResults"],
        0,
        "nothing of the cycle was created"
    );
    // failOnErrors: 1 — stop after the first error.
    let mut req = bulk_req(json!([
        {"method": "DELETE", "path": "/Users/nope"},
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": {"userName": "d@x.com"}}
    ]));
    req["failOnErrors"] = json!(1);
    let r = srv.post("/Bulk", &req).await;
    assert_eq!(r.body["Operations"].as_array().unwrap().len(), 1);
    assert_eq!(
        srv.get("/Users?filter=userName+eq+%22d%40x.com%22")
            .await
            .body["totalResults"],
        0
    );
    // maxOperations (50) and maxPayloadSize are advertised and enforced with 413.
    let spc = srv.get("/ServiceProviderConfig").await;
    assert_eq!(
        (
            spc.body["bulk"]["supported"].clone(),
            spc.body["bulk"]["maxOperations"].clone()
        ),
        (json!(true), json!(50))
    );
    let ops: Vec<Value> = (0..51)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    assert_eq!(srv.post("/Bulk", &bulk_req(json!(ops))).await.status, 413);
    let max = spc.body["bulk"]["maxPayloadSize"].as_u64().unwrap();
    let r = srv
        .send(
            srv.request(Method::POST, "/Bulk")
                .header("content-type", "application/scim+json")
                .header("content-length", (max + 1).to_string())
                .body(vec![b' '; 16]),
        )
        .await;
    assert_eq!(
        r.status, 413,
        "refused from Content-Length, before the body is read"
    );
}

scim_tests::engine_tests!(
    etags,
    search_endpoints,
    cursor_paging,
    me_endpoint,
    sorting_is_refused_not_ignored,
    bulk,
    bulk_cycles_fail_on_errors_and_limits
);
