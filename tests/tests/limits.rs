//! Every limit at the limit (accepted) and one past it (refused with a clear SCIM error, nothing written).
//! Limits are engine-independent checks made before the store is touched, so these run on the embedded
//! engine only.

use scim_core::config::Limits;
use scim_core::filter::MAX_FILTER_DEPTH;
use scim_tests::patch_body;
use scim_tests::{Engine, TestServer};
use serde_json::json;

async fn server(l: Limits) -> TestServer {
    TestServer::start_with(Engine::Dynoxide, l).await
}

/// A user body of exactly `n` bytes.
fn body_of_len(n: usize) -> String {
    let base = json!({"userName": "u@x.com", "title": ""}).to_string();
    let pad = n - base.len();
    json!({"userName": "u@x.com", "title": "a".repeat(pad)}).to_string()
}

async fn post_raw(srv: &TestServer, body: String) -> scim_tests::Resp {
    srv.send(
        srv.request(reqwest::Method::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_size() {
    let srv = server(Limits {
        max_body_bytes: 2000,
        ..Limits::default()
    })
    .await;
    assert_eq!(post_raw(&srv, body_of_len(2000)).await.status, 201);
    let r = post_raw(&srv, body_of_len(2001).replace("u@x.com", "v@x.com")).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("2000 bytes"));
    assert_eq!(srv.get("/Users").await.body["totalResults"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_length() {
    let srv = server(Limits {
        max_filter_len: 30,
        ..Limits::default()
    })
    .await;
    let f = |n: usize| format!("/Users?filter=userName+eq+%22{}%22", "a".repeat(n - 14)); // `userName eq ""` is 14
    assert_eq!(srv.get(&f(30)).await.status, 200);
    let r = srv.get(&f(31)).await;
    assert_eq!(
        (r.status, r.body["scimType"].clone()),
        (400, json!("invalidFilter"))
    );
    assert!(r.body["detail"].as_str().unwrap().contains("limit is 30"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_depth() {
    let srv = server(Limits::default()).await;
    let nested = |n: usize| {
        format!(
            "/Users?filter={}userName+eq+%22a%22{}",
            "(".repeat(n),
            ")".repeat(n)
        )
    };
    assert_eq!(srv.get(&nested(MAX_FILTER_DEPTH)).await.status, 200);
    let r = srv.get(&nested(MAX_FILTER_DEPTH + 1)).await;
    assert_eq!(
        (r.status, r.body["scimType"].clone()),
        (400, json!("invalidFilter"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_operations() {
    let srv = server(Limits {
        max_patch_ops: 3,
        ..Limits::default()
    })
    .await;
    let id = srv.create_user(&json!({"userName": "u@x.com"})).await;
    let op = |v: &str| json!({"op": "replace", "path": "title", "value": v});
    assert_eq!(
        srv.patch(
            &format!("/Users/{id}"),
            &patch_body(vec![op("a"), op("b"), op("c")])
        )
        .await
        .status,
        200
    );
    let r = srv
        .patch(
            &format!("/Users/{id}"),
            &patch_body(vec![op("a"), op("b"), op("c"), op("d")]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("limit is 3"));
    assert_eq!(srv.get(&format!("/Users/{id}")).await.body["title"], "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_per_request() {
    let srv = server(Limits {
        max_member_changes: 3,
        ..Limits::default()
    })
    .await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(
            srv.create_user(&json!({"userName": format!("u{i}@x")}))
                .await,
        );
    }
    let gid = srv.post("/Groups", &json!({"displayName": "G"})).await.id();
    let add = |ids: &[String]| {
        patch_body(vec![
            json!({"op": "add", "path": "members", "value": ids.iter().map(|i| json!({"value": i})).collect::<Vec<_>>()}),
        ])
    };
    assert_eq!(
        srv.patch(&format!("/Groups/{gid}"), &add(&users[..3]))
            .await
            .status,
        204
    );
    let r = srv.patch(&format!("/Groups/{gid}"), &add(&users)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("split it"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_values_per_resource() {
    let srv = server(Limits {
        max_attribute_values: 4,
        ..Limits::default()
    })
    .await;
    // userName + 3 leaves of one email = 4 values.
    let four = json!({"userName": "u@x.com", "emails": [{"value": "u@x.com", "type": "work", "primary": true}]});
    let id = srv.create_user(&four).await;
    let r = srv.post("/Users", &json!({"userName": "v@x.com", "title": "t", "emails": [{"value": "v@x.com", "type": "work", "primary": true}]})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("limit is 4"));
    let r = srv
        .patch(
            &format!("/Users/{id}"),
            &patch_body(vec![json!({"op": "add", "path": "title", "value": "t"})]),
        )
        .await;
    assert_eq!(r.status, 400, "a PATCH may not grow past the limit either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_length() {
    let srv = server(Limits {
        max_value_len: 10,
        ..Limits::default()
    })
    .await;
    assert_eq!(
        srv.post(
            "/Users",
            &json!({"userName": "u@x.com", "title": "é".repeat(10)})
        )
        .await
        .status,
        201
    );
    let r = srv
        .post(
            "/Users",
            &json!({"userName": "v@x.com", "title": "é".repeat(11)}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("'title' is 11 characters"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_size() {
    let srv = server(Limits {
        max_page_size: 3,
        ..Limits::default()
    })
    .await;
    for i in 0..5 {
        srv.create_user(&json!({"userName": format!("u{i}@x")}))
            .await;
    }
    assert_eq!(srv.get("/Users?count=3").await.body["itemsPerPage"], 3);
    let r = srv.get("/Users?count=4").await;
    assert_eq!(
        (
            r.body["itemsPerPage"].clone(),
            r.body["totalResults"].clone()
        ),
        (json!(3), json!(5)),
        "a larger count is lowered to the maximum"
    );
    let spc = srv.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["filter"]["maxResults"], 3, "advertised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexed_filter_scan() {
    let srv = server(Limits {
        max_filter_scan: 3,
        ..Limits::default()
    })
    .await;
    for i in 0..3 {
        srv.create_user(&json!({"userName": format!("u{i}@x"), "title": "t"}))
            .await;
    }
    assert_eq!(
        srv.get("/Users?filter=title+eq+%22t%22").await.body["totalResults"],
        3
    );
    srv.create_user(&json!({"userName": "u3@x", "title": "t"}))
        .await;
    let r = srv.get("/Users?filter=title+eq+%22t%22").await;
    assert_eq!(
        (r.status, r.body["scimType"].clone()),
        (400, json!("tooMany"))
    );
    assert_eq!(
        srv.get("/Users?filter=userName+eq+%22u3%40x%22").await.body["totalResults"],
        1,
        "indexed filters are not bounded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_returned_per_group() {
    let srv = server(Limits {
        max_group_members: 2,
        ..Limits::default()
    })
    .await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(
            srv.create_user(&json!({"userName": format!("u{i}@x")}))
                .await,
        );
    }
    let gid = srv
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": users[0]}, {"value": users[1]}]}),
        )
        .await
        .id();
    assert_eq!(
        srv.get(&format!("/Groups/{gid}")).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let add = patch_body(vec![
        json!({"op": "add", "path": "members", "value": [{"value": users[2]}]}),
    ]);
    assert_eq!(
        srv.patch(&format!("/Groups/{gid}"), &add).await.status,
        204,
        "a group may grow past it"
    );
    let r = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(
        (r.status, r.body["scimType"].clone()),
        (400, json!("tooMany"))
    );
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("excludedAttributes=members"));
    assert_eq!(
        srv.get(&format!("/Groups/{gid}?excludedAttributes=members"))
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// DynamoDB's own limits (keys ≤ 2,048 / 1,024 bytes, items ≤ 400 KB): every input past them is a 400
// `invalidValue` (a 404 for an id in a path) whose detail names the limit, refused before any DynamoDB
// call, with nothing written; a value just under each limit works. On both engines: the engines enforce
// these limits themselves, so a missed check would show as a 500 here.

mod dynamodb {
    use scim_core::auth::DEFAULT_TENANT;
    use scim_core::schema::{group_resource_type, user_resource_type};
    use scim_core::store::{keys, limits};
    use scim_tests::patch_body;
    use scim_tests::{Resp, TestServer};
    use serde_json::{json, Value};

    /// The longest unique name (userName / displayName) the default tenant can store.
    fn max_name(group: bool) -> usize {
        let rt = if group {
            group_resource_type()
        } else {
            user_resource_type()
        };
        limits::PARTITION_KEY_BYTES - keys::guard_pk(DEFAULT_TENANT, rt, "").len()
    }

    fn max_external_id() -> usize {
        limits::PARTITION_KEY_BYTES - keys::gsi2pk(DEFAULT_TENANT, user_resource_type(), "").len()
    }

    /// 400 invalidValue, a detail naming `limit`, and no DynamoDB call at all (or `calls`).
    #[track_caller]
    fn refused(r: &Resp, limit: &str, calls: u32) {
        assert_eq!(
            (r.status, r.body["scimType"].as_str()),
            (400, Some("invalidValue")),
            "{}",
            r.text
        );
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(limit),
            "detail should name the limit {limit}: {detail}"
        );
        assert_eq!(r.calls(), calls, "refused before DynamoDB: {}", r.text);
    }

    async fn users(srv: &TestServer) -> u64 {
        srv.get("/Users?count=0").await.body["totalResults"]
            .as_u64()
            .unwrap()
    }

    async fn groups(srv: &TestServer) -> u64 {
        srv.get("/Groups?count=0").await.body["totalResults"]
            .as_u64()
            .unwrap()
    }

    pub async fn user_name_and_external_id_keys(srv: TestServer) {
        let (max, max_ext) = (max_name(false), max_external_id());
        let at_max = "a".repeat(max);
        let id = srv
            .create_user(&json!({"userName": at_max, "externalId": "x".repeat(max_ext)}))
            .await;
        let r = srv
            .post("/Users", &json!({"userName": "b".repeat(max + 1)}))
            .await;
        refused(&r, &format!("at most {max} bytes"), 0);
        assert!(
            r.body["detail"].as_str().unwrap().contains("2048"),
            "{}",
            r.text
        );
        // Bytes after lower-casing count, not characters: 'É' is 2 bytes.
        refused(
            &srv.post("/Users", &json!({"userName": "É".repeat(max / 2 + 1)}))
                .await,
            "bytes",
            0,
        );
        refused(
            &srv.post(
                "/Users",
                &json!({"userName": "c@x", "externalId": "x".repeat(max_ext + 1)}),
            )
            .await,
            &format!("at most {max_ext} bytes"),
            0,
        );
        // The advertised SCIM_MAX_VALUE_LEN (16,384 characters) is not the bound for these attributes.
        refused(
            &srv.post("/Users", &json!({"userName": "d".repeat(16_000)}))
                .await,
            "DynamoDB key",
            0,
        );
        // PUT refuses before reading; PATCH reads the user (1 call) and writes nothing.
        refused(
            &srv.put(
                &format!("/Users/{id}"),
                &json!({"userName": "e".repeat(max + 1)}),
            )
            .await,
            "2048",
            0,
        );
        let r = srv
            .patch(
                &format!("/Users/{id}"),
                &patch_body(vec![
                    json!({"op": "replace", "path": "userName", "value": "f".repeat(max + 1)}),
                ]),
            )
            .await;
        refused(&r, "2048", 1);
        assert_eq!(users(&srv).await, 1);
        let user = srv.get(&format!("/Users/{id}")).await;
        assert_eq!(
            (
                user.body["userName"].as_str(),
                user.body["meta"]["version"].as_str()
            ),
            (Some(at_max.as_str()), Some("W/\"1\""))
        );
        // Filters: the value just under the limit finds the user; a value no key can hold is refused.
        let r = srv
            .get(&format!(
                "/Users?filter=userName+eq+%22{}%22",
                at_max.to_uppercase()
            ))
            .await;
        assert_eq!(
            (r.status, r.body["totalResults"].as_u64()),
            (200, Some(1)),
            "{}",
            r.text
        );
        let r = srv
            .get(&format!(
                "/Users?filter=externalId+eq+%22{}%22",
                "x".repeat(max_ext)
            ))
            .await;
        assert_eq!(
            (r.status, r.body["totalResults"].as_u64()),
            (200, Some(1)),
            "{}",
            r.text
        );
        refused(
            &srv.get(&format!(
                "/Users?filter=userName+eq+%22{}%22",
                "a".repeat(2100)
            ))
            .await,
            "2048 bytes",
            0,
        );
        refused(
            &srv.get(&format!(
                "/Users?filter=externalId+eq+%22{}%22",
                "x".repeat(2100)
            ))
            .await,
            "2048 bytes",
            0,
        );
    }

    pub async fn group_display_name_key(srv: TestServer) {
        let max = max_name(true);
        let r = srv
            .post("/Groups", &json!({"displayName": "g".repeat(max)}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let gid = r.id();
        refused(
            &srv.post("/Groups", &json!({"displayName": "h".repeat(2100)}))
                .await,
            &format!("at most {max} bytes"),
            0,
        );
        // With members, the name is still refused before the members are read.
        let u = srv.create_user(&json!({"userName": "u@x"})).await;
        refused(
            &srv.post(
                "/Groups",
                &json!({"displayName": "h".repeat(2100), "members": [{"value": u}]}),
            )
            .await,
            "2048",
            0,
        );
        refused(
            &srv.put(
                &format!("/Groups/{gid}"),
                &json!({"displayName": "h".repeat(2100), "members": [{"value": u}]}),
            )
            .await,
            "2048",
            0,
        );
        // A group PATCH with attribute operations reads the group (twice: once for If-Match and members,
        // once in the optimistic write loop) and writes nothing.
        let r = srv
            .patch(
                &format!("/Groups/{gid}"),
                &patch_body(vec![
                    json!({"op": "replace", "path": "displayName", "value": "h".repeat(2100)}),
                ]),
            )
            .await;
        refused(&r, "2048", 2);
        assert_eq!(groups(&srv).await, 1);
        let r = srv.get(&format!("/Groups/{gid}")).await;
        assert_eq!(
            (
                r.body["displayName"].as_str().map(str::len),
                r.body["members"]
                    .as_array()
                    .filter(|m| !m.is_empty())
                    .map(Vec::len)
            ),
            (Some(max), None),
            "{}",
            r.text.len()
        );
    }

    pub async fn ids_longer_than_a_sort_key(srv: TestServer) {
        let long = "a".repeat(limits::SORT_KEY_BYTES + 1);
        let u = srv.create_user(&json!({"userName": "u@x"})).await;
        let g = srv.post("/Groups", &json!({"displayName": "G"})).await.id();
        let add = |id: &str| {
            patch_body(vec![
                json!({"op": "add", "path": "members", "value": [{"value": id}]}),
            ])
        };
        for (method, path, body) in [
            (reqwest::Method::GET, format!("/Users/{long}"), None),
            (
                reqwest::Method::PUT,
                format!("/Users/{long}"),
                Some(json!({"userName": "v@x"})),
            ),
            (
                reqwest::Method::PATCH,
                format!("/Users/{long}"),
                Some(patch_body(vec![
                    json!({"op": "replace", "path": "title", "value": "t"}),
                ])),
            ),
            (reqwest::Method::DELETE, format!("/Users/{long}"), None),
            (reqwest::Method::GET, format!("/Groups/{long}"), None),
            (
                reqwest::Method::PATCH,
                format!("/Groups/{long}"),
                Some(add(&u)),
            ),
            (
                reqwest::Method::PUT,
                format!("/Groups/{long}"),
                Some(json!({"displayName": "G2", "members": [{"value": u}]})),
            ),
            (reqwest::Method::DELETE, format!("/Groups/{long}"), None),
        ] {
            let r = srv.call(method.clone(), &path, body.as_ref()).await;
            assert_eq!(r.status, 404, "{method} {}: {}", &path[..20], r.text);
            assert!(
                r.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("at most 1024 bytes"),
                "{}",
                r.text
            );
            assert_eq!(
                r.calls(),
                0,
                "{method}: no DynamoDB call for an id that cannot exist"
            );
        }
        // Just under: an id of 1,024 bytes is looked up (and simply not found).
        let r = srv
            .get(&format!("/Users/{}", "a".repeat(limits::SORT_KEY_BYTES)))
            .await;
        assert_eq!((r.status, r.calls()), (404, 1), "{}", r.text);
        // Filters and member values.
        refused(
            &srv.get(&format!("/Users?filter=id+eq+%22{long}%22")).await,
            "1024 bytes",
            0,
        );
        refused(
            &srv.get(&format!("/Groups?filter=members+eq+%22{long}%22"))
                .await,
            "1024 bytes",
            0,
        );
        refused(
            &srv.get(&format!(
                "/Groups?filter=id+eq+%22{g}%22+and+members+eq+%22{long}%22"
            ))
            .await,
            "1024 bytes",
            1,
        );
        let r = srv
            .get(&format!("/Users?filter=id+eq+%22{}%22", &long[1..]))
            .await;
        assert_eq!((r.status, r.body["totalResults"].as_u64()), (200, Some(0)));
        refused(
            &srv.patch(&format!("/Groups/{g}"), &add(&long)).await,
            "1024 bytes",
            0,
        );
        let remove = patch_body(vec![
            json!({"op": "remove", "path": "members", "value": [{"value": long}]}),
        ]);
        refused(
            &srv.patch(&format!("/Groups/{g}"), &remove).await,
            "1024 bytes",
            0,
        );
        refused(
            &srv.post(
                "/Groups",
                &json!({"displayName": "H", "members": [{"value": u}, {"value": long}]}),
            )
            .await,
            "1024 bytes",
            0,
        );
        refused(
            &srv.put(
                &format!("/Groups/{g}"),
                &json!({"displayName": "G", "members": [{"value": long}]}),
            )
            .await,
            "1024 bytes",
            0,
        );
        // Just under: a 1,024-byte member value is read and refused as not a user.
        let r = srv.patch(&format!("/Groups/{g}"), &add(&long[1..])).await;
        assert_eq!((r.status, r.calls()), (400, 1), "{}", r.text);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("is not the id of a User"),
            "{}",
            r.text
        );
        assert_eq!(groups(&srv).await, 1);
        let members = srv.get(&format!("/Groups/{g}")).await.body["members"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(members, 0, "no member was added");
    }

    /// `n` work emails of 16,000 characters each (the advertised SCIM_MAX_VALUE_LEN is 16,384).
    fn big_user(name: &str, n: usize) -> Value {
        let emails: Vec<Value> = (0..n)
            .map(|i| json!({"value": format!("{i}{}", "m".repeat(15_999)), "type": "work"}))
            .collect();
        json!({"userName": name, "emails": emails})
    }

    pub async fn document_over_the_item_limit(srv: TestServer) {
        // 23 × 16 KB ≈ 368 KB fits (400 KB less the reserve for groups); 24 × 16 KB ≈ 384 KB does not.
        let id = srv.create_user(&big_user("big@x", 23)).await;
        refused(
            &srv.post("/Users", &big_user("bigger@x", 24)).await,
            "400 KB",
            0,
        );
        refused(
            &srv.put(&format!("/Users/{id}"), &big_user("big@x", 24))
                .await,
            "400 KB",
            0,
        );
        let more = patch_body(vec![
            json!({"op": "add", "path": "emails", "value": [{"value": "m".repeat(16_000), "type": "home"}]}),
        ]);
        refused(
            &srv.patch(&format!("/Users/{id}"), &more).await,
            "400 KB",
            1,
        );
        // ~940 KB: the 1 MB body limit lets it through, the store does not.
        refused(
            &srv.post("/Users", &big_user("huge@x", 58)).await,
            "400 KB",
            0,
        );
        assert_eq!(users(&srv).await, 1);
        let r = srv.get(&format!("/Users/{id}")).await;
        assert_eq!(
            (
                r.body["emails"].as_array().map(Vec::len),
                r.body["meta"]["version"].as_str()
            ),
            (Some(23), Some("W/\"1\""))
        );
        // The user just under the limit can still join a group (its item keeps room for `groups`).
        let g = srv
            .post(
                "/Groups",
                &json!({"displayName": "G", "members": [{"value": id}]}),
            )
            .await;
        assert_eq!(g.status, 201, "{}", g.text);
    }

    pub async fn inside_bulk(srv: TestServer) {
        let long = "a".repeat(limits::SORT_KEY_BYTES + 1);
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "n".repeat(2100)}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": big_user("big@x", 30)},
            {"method": "PATCH", "path": format!("/Users/{long}"), "data": patch_body(vec![json!({"op": "replace", "path": "title", "value": "t"})])},
            {"method": "DELETE", "path": format!("/Groups/{long}")},
            {"method": "POST", "path": "/Groups", "bulkId": "c", "data": {"displayName": "G", "members": [{"value": long}]}},
            {"method": "POST", "path": "/Users", "bulkId": "d", "data": {"userName": "ok@x"}},
        ]});
        let r = srv.post("/Bulk", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let ops = r.body["Operations"].as_array().unwrap();
        let status = |i: usize| ops[i]["status"].as_str().unwrap_or_default().to_string();
        let detail = |i: usize| {
            ops[i]["response"]["detail"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            (0..6).map(status).collect::<Vec<_>>(),
            ["400", "400", "404", "404", "400", "201"],
            "{}",
            r.text
        );
        for (i, limit) in [
            (0, "2048"),
            (1, "400 KB"),
            (2, "1024 bytes"),
            (3, "1024 bytes"),
            (4, "1024 bytes"),
        ] {
            assert!(detail(i).contains(limit), "operation {i}: {}", detail(i));
        }
        // Only the last operation wrote anything: 1 TransactWriteItems.
        assert_eq!(r.calls(), 1, "{}", r.text);
        assert_eq!((users(&srv).await, groups(&srv).await), (1, 0));
    }

    scim_tests::engine_tests!(
        user_name_and_external_id_keys,
        group_display_name_key,
        ids_longer_than_a_sort_key,
        document_over_the_item_limit,
        inside_bulk
    );
}
