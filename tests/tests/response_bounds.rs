//! The response bound (`SCIM_MAX_RESPONSE_BYTES`, docs/store.md "Response size"): no list page, `.search`
//! page, group representation or BulkResponse passes it, counted as Lambda carries a body (a JSON string
//! inside API Gateway's envelope); pages that stop early still walk every resource exactly once, by
//! `startIndex` and by cursor, and cost the same DynamoDB calls per page.
//!
//! Most tests run a server with a small bound (and small resources) to stay fast; one runs the real
//! bound with users near DynamoDB's item limit, and one the real bound with a `/Bulk` of long errors.

use futures::stream::{self, StreamExt};
use scim_core::config::Limits;
use scim_tests::{patch_body, Resp, TestServer};
use serde_json::{json, Value};

/// The bytes `text` takes as a JSON string in Lambda's response envelope (without its two quotes),
/// computed here by serde_json itself rather than by the server's own function.
fn envelope_len(text: &str) -> usize {
    serde_json::to_string(&Value::String(text.to_string()))
        .expect("encode")
        .len()
        - 2
}

/// The small bound of most tests (below what `SCIM_MAX_RESPONSE_BYTES` accepts — every User must fit
/// — which is why these tests keep their users small).
const SMALL: usize = 32 * 1024;

async fn server_with_bound(engine: scim_tests::Engine, max_response_bytes: usize) -> TestServer {
    TestServer::start_with(
        engine,
        Limits {
            max_response_bytes,
            ..Limits::default()
        },
    )
    .await
}

/// Run each named `async fn(TestServer)` on both engines with a server bounded to `$bound` bytes.
/// A small user whose size varies with `i`; some carry many double quotes (each costs one more byte in
/// the envelope).
fn small_user(i: usize) -> Value {
    let quotes = if i.is_multiple_of(5) {
        "\"".repeat(120)
    } else {
        String::new()
    };
    let title = "t".repeat((i * 37) % 600);
    json!({"userName": format!("u{i:04}@contoso.com"), "title": title, "nickName": quotes, "active": true})
}

async fn create_users(srv: &TestServer, n: usize, body: impl Fn(usize) -> Value) -> Vec<String> {
    let body = &body;
    let mut ids: Vec<String> = stream::iter(0..n)
        .map(|i| async move { srv.create_user(&body(i)).await })
        .buffer_unordered(4)
        .collect()
        .await;
    ids.sort();
    ids
}

/// A filter value for a query string.
fn q(filter: &str) -> String {
    form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

/// How a list is asked for: query parameters of a GET, or the body of a POST `.search`.
#[derive(Clone, Copy, Debug)]
enum Via {
    Get,
    Search,
}

async fn list(srv: &TestServer, via: Via, endpoint: &str, params: &[(&str, Value)]) -> Resp {
    match via {
        Via::Get => {
            let query: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map(q).unwrap_or_else(|| v.to_string())))
                .collect();
            srv.get(&format!("{endpoint}?{}", query.join("&"))).await
        }
        Via::Search => {
            let mut body =
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
            for (k, v) in params {
                body[*k] = v.clone();
            }
            let path = if endpoint.is_empty() {
                "/.search".to_string()
            } else {
                format!("{endpoint}/.search")
            };
            srv.post(&path, &body).await
        }
    }
}

/// A page's ids, after checking it: 200, within `bound` as Lambda carries it, `itemsPerPage` = its
/// resources.
fn check_page(r: &Resp, bound: usize, what: &str) -> Vec<String> {
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    let size = envelope_len(&r.text);
    assert!(
        size <= bound,
        "{what}: the page takes {size} bytes in the envelope, more than the bound {bound}"
    );
    let resources = r.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no Resources in {}", r.text));
    assert_eq!(r.body["itemsPerPage"], resources.len(), "{what}");
    resources
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect()
}

/// Walk a list by `startIndex` (count 200, the largest): every page checked, each next page at
/// `startIndex + itemsPerPage`. The pages, and the ids in the order they came.
async fn walk_by_index(
    srv: &TestServer,
    via: Via,
    endpoint: &str,
    filter: Option<&str>,
    bound: usize,
) -> (Vec<Resp>, Vec<String>) {
    let (mut pages, mut seen, mut start) = (Vec::new(), Vec::new(), 1usize);
    loop {
        let mut params = vec![("startIndex", json!(start)), ("count", json!(200))];
        if let Some(f) = filter {
            params.push(("filter", json!(f)));
        }
        let r = list(srv, via, endpoint, &params).await;
        let what = format!("{via:?} {endpoint} startIndex={start}");
        let ids = check_page(&r, bound, &what);
        assert_eq!(r.body["startIndex"], start, "{what}");
        let total = r.body["totalResults"].as_u64().expect("totalResults") as usize;
        start += ids.len();
        seen.extend(ids);
        pages.push(r);
        if start > total {
            return (pages, seen);
        }
        assert!(pages.len() <= total, "{what}: the walk does not advance");
    }
}

/// Walk a list by cursor (count 200): until a page has no `nextCursor`.
async fn walk_by_cursor(
    srv: &TestServer,
    via: Via,
    endpoint: &str,
    filter: Option<&str>,
    bound: usize,
) -> (Vec<Resp>, Vec<String>) {
    let (mut pages, mut seen, mut cursor) = (Vec::new(), Vec::new(), String::new());
    loop {
        let mut params = vec![("cursor", json!(cursor)), ("count", json!(200))];
        if let Some(f) = filter {
            params.push(("filter", json!(f)));
        }
        let r = list(srv, via, endpoint, &params).await;
        let what = format!("{via:?} {endpoint} page {} by cursor", pages.len() + 1);
        let ids = check_page(&r, bound, &what);
        let total = r.body["totalResults"].as_u64().expect("totalResults") as usize;
        seen.extend(ids);
        let next = r.body["nextCursor"].as_str().map(str::to_string);
        pages.push(r);
        match next {
            Some(c) => cursor = c,
            None => return (pages, seen),
        }
        assert!(
            pages.len() <= total + 1,
            "{what}: the walk does not advance"
        );
    }
}

/// `seen` holds every id of `want` exactly once (and nothing else).
fn assert_once(seen: &[String], want: &[String], what: &str) {
    let mut sorted = seen.to_vec();
    sorted.sort();
    assert_eq!(
        sorted.len(),
        want.len(),
        "{what}: {} ids seen for {} resources",
        seen.len(),
        want.len()
    );
    assert_eq!(sorted, want, "{what}: every resource exactly once");
}

async fn pages_stop_at_the_bound_and_walks_return_everyone_once(srv: TestServer) {
    let users = create_users(&srv, 150, small_user).await;
    for via in [Via::Get, Via::Search] {
        let (pages, seen) = walk_by_index(&srv, via, "/Users", None, SMALL).await;
        assert!(
            pages.len() >= 3,
            "{via:?}: 150 users of up to ~1 KB need several {SMALL}-byte pages, not {}",
            pages.len()
        );
        assert_once(&seen, &users, &format!("{via:?} by startIndex"));
        for (n, p) in pages.iter().enumerate() {
            assert_eq!(p.body["totalResults"], users.len());
            // Counter shards + the page: a page cut by the bound teaches the position of its last user,
            // so the next page starts there without skipping (no COUNT query).
            assert_eq!(
                p.calls(),
                2,
                "{via:?} page {n} by startIndex: {}",
                p.header("x-scim-dynamodb-calls").unwrap_or("?")
            );
        }
        let (pages, seen) = walk_by_cursor(&srv, via, "/Users", None, SMALL).await;
        assert!(pages.len() >= 3);
        assert_once(&seen, &users, &format!("{via:?} by cursor"));
        for (n, p) in pages.iter().enumerate() {
            assert_eq!(p.calls(), 2, "{via:?} page {n} by cursor");
        }
        // A filter no index serves: evaluated over the partition, only the page kept.
        let filter = "userName sw \"u\" and active eq true";
        let (_, seen) = walk_by_index(&srv, via, "/Users", Some(filter), SMALL).await;
        assert_once(&seen, &users, &format!("{via:?} filtered, by startIndex"));
        let (_, seen) = walk_by_cursor(&srv, via, "/Users", Some(filter), SMALL).await;
        assert_once(&seen, &users, &format!("{via:?} filtered, by cursor"));
    }
    // POST /.search across resource types: users, then groups, under one bound.
    let mut all = users.clone();
    for g in 0..3 {
        let r = srv
            .post("/Groups", &json!({"displayName": format!("group {g}")}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        all.push(r.id());
    }
    all.sort();
    let (pages, seen) = walk_by_index(&srv, Via::Search, "", None, SMALL).await;
    assert!(pages.len() >= 3);
    assert_eq!(pages[0].body["totalResults"], all.len());
    assert_once(&seen, &all, "POST /.search by startIndex");
}

/// 250 member entries (~155 bytes each with the test server's base URL) are more than 32 KB.
async fn a_group_over_the_bound_is_refused_or_answered_without_a_body(srv: TestServer) {
    let users = create_users(
        &srv,
        251,
        |i| json!({"userName": format!("m{i:04}@contoso.com")}),
    )
    .await;
    let members: Vec<Value> = users[..250].iter().map(|u| json!({"value": u})).collect();
    // The write is done; its answer has no room for the representation: 201 with Location, no body.
    let r = srv
        .post(
            "/Groups",
            &json!({"displayName": "big", "members": members}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.text, "", "the representation would pass the bound");
    let location = r.header("location").expect("Location").to_string();
    assert!(r.header("etag").is_some());
    let big = location.rsplit('/').next().expect("id").to_string();
    let small = srv
        .post(
            "/Groups",
            &json!({"displayName": "small", "members": [{"value": users[0]}, {"value": users[1]}]}),
        )
        .await;
    assert_eq!(small.status, 201, "{}", small.text);
    assert_eq!(
        small.body["members"].as_array().map(Vec::len),
        Some(2),
        "a group within the bound is answered whole"
    );
    let small = small.id();

    let r = srv.get(&format!("/Groups/{big}")).await;
    assert_eq!(
        (r.status, r.body["scimType"].as_str()),
        (400, Some("tooMany")),
        "{}",
        r.text
    );
    let detail = r.body["detail"].as_str().expect("detail");
    assert!(
        detail.contains("excludedAttributes=members") && detail.contains(&SMALL.to_string()),
        "{detail}"
    );
    let r = srv
        .get(&format!("/Groups/{big}?excludedAttributes=members"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(srv.get(&format!("/Groups/{small}")).await.status, 200);

    // The list: pages up to the big group, which is refused when it comes first; without members, all.
    let mut start = 1;
    let refused = loop {
        let r = srv
            .get(&format!("/Groups?startIndex={start}&count=200"))
            .await;
        if r.status == 400 {
            break r;
        }
        let ids = check_page(&r, SMALL, "groups with members");
        assert!(!ids.contains(&big));
        assert!(
            !ids.is_empty(),
            "the big group must stop the walk: {}",
            r.text
        );
        start += ids.len();
    };
    assert_eq!(refused.body["scimType"], "tooMany", "{}", refused.text);
    let r = srv
        .get("/Groups?excludedAttributes=members&count=200")
        .await;
    let mut ids = check_page(&r, SMALL, "groups without members");
    ids.sort();
    let mut want = vec![big.clone(), small.clone()];
    want.sort();
    assert_eq!(ids, want);

    // A PATCH that asks for the representation: done, answered 204.
    let add =
        patch_body(json!([{"op": "add", "path": "members", "value": [{"value": users[250]}]}]));
    let r = srv
        .patch(&format!("/Groups/{big}?attributes=members"), &add)
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""), "{}", r.text);
    let member = format!(
        "/Groups?excludedAttributes=members&filter={}",
        q(&format!(
            "id eq \"{big}\" and members eq \"{}\"",
            users[250]
        ))
    );
    assert_eq!(
        srv.get(&member).await.body["totalResults"],
        1,
        "the member was added"
    );
}

/// A BulkRequest whose results would not all fit: operations run while the largest result each can have
/// still fits beside the results so far (and a short one for each operation after it), then the rest are
/// answered 413 without running.
async fn bulk_runs_only_what_it_can_answer(srv: TestServer) {
    let id = srv
        .create_user(&json!({"userName": "target@contoso.com"}))
        .await;
    let bad_path = format!("!{}", "p".repeat(20_000));
    let post = |i: usize| {
        let (data, bulk_id) = (
            json!({"userName": format!("bulk{i}@contoso.com")}),
            format!("b{i}-{}", "x".repeat(100)),
        );
        json!({"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": data})
    };
    let bad = bad_patch(&id, &bad_path);
    // Two creates, six long errors (their results are large), six creates.
    let ops: Vec<Value> = (0..2)
        .map(post)
        .chain((0..6).map(|_| bad.clone()))
        .chain((2..8).map(post))
        .collect();
    let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let r = srv.post("/Bulk", &req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let size = envelope_len(&r.text);
    assert!(
        size <= BULK_BOUND,
        "the BulkResponse takes {size} bytes, more than {BULK_BOUND}"
    );
    let results = r.body["Operations"].as_array().expect("Operations");
    assert_eq!(results.len(), 14, "every operation has a result");
    let statuses: Vec<&str> = results
        .iter()
        .map(|o| o["status"].as_str().expect("status"))
        .collect();
    let run = statuses.iter().take_while(|s| **s != "413").count();
    assert!(
        (3..14).contains(&run),
        "the first operations run, then none: {statuses:?}"
    );
    assert!(statuses[run..].iter().all(|s| *s == "413"), "{statuses:?}");
    for (k, o) in results.iter().enumerate() {
        match o.get("bulkId").and_then(Value::as_str) {
            Some(b) => {
                let i: usize = b[1..]
                    .split('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("bulkId number");
                let f = format!(
                    "/Users?filter={}",
                    q(&format!("userName eq \"bulk{i}@contoso.com\""))
                );
                let exists = srv.get(&f).await.body["totalResults"].as_u64();
                assert_eq!(
                    exists,
                    Some(u64::from(k < run)),
                    "operation {k} ran exactly when answered so: {o}"
                );
            }
            None if k < run => {
                assert_eq!(o["status"], "400", "{o}");
                let detail = o["response"]["detail"].as_str().expect("detail");
                assert!(
                    detail.chars().count() <= 1000 && detail.ends_with("(cut)"),
                    "the long detail is cut: {detail}"
                );
            }
            None => {}
        }
        if k >= run {
            assert!(
                o["response"]["detail"]
                    .as_str()
                    .expect("detail")
                    .starts_with("Not run"),
                "{o}"
            );
        }
    }
}

/// A bulk PATCH of user `id` whose path is not valid (its error quotes it).
fn bad_patch(id: &str, path: &str) -> Value {
    let data = patch_body(json!([{"op": "replace", "path": path, "value": "x"}]));
    json!({"method": "PATCH", "path": format!("/Users/{id}"), "data": data})
}

/// Room for a handful of bulk results.
const BULK_BOUND: usize = 16 * 1024;

scim_tests::both_engines!(
    in (small_dynoxide, small_moto),
    |engine| super::server_with_bound(engine, super::SMALL).await;
    pages_stop_at_the_bound_and_walks_return_everyone_once,
    a_group_over_the_bound_is_refused_or_answered_without_a_body,
);

scim_tests::both_engines!(
    in (bulk_dynoxide, bulk_moto),
    |engine| super::server_with_bound(engine, super::BULK_BOUND).await;
    bulk_runs_only_what_it_can_answer,
);

/// A user of ~368 KB: 23 e-mail values of 16,000 characters (the longest value), near the item limit.
fn large_user(i: usize) -> Value {
    let emails: Vec<Value> = (0..23)
        .map(|k| json!({"value": format!("{i}-{k}-{}", "m".repeat(15_990)), "type": "work"}))
        .collect();
    json!({"userName": format!("large{i:03}@contoso.com"), "emails": emails})
}

/// The real bound (5 MiB) with users near DynamoDB's item limit: a page of 200 of them would be ~74 MB.
async fn real_bound_with_users_near_the_item_limit(srv: TestServer) {
    let bound = Limits::default().max_response_bytes;
    let users = create_users(&srv, 20, large_user).await;
    let (pages, seen) = walk_by_index(&srv, Via::Get, "/Users", None, bound).await;
    assert!(
        pages.len() >= 2,
        "20 users of ~368 KB are ~7.4 MB: {} pages",
        pages.len()
    );
    assert!(
        envelope_len(&pages[0].text) > bound - 400_000,
        "the first page is filled to within one user of the bound"
    );
    assert_once(&seen, &users, "by startIndex");
    let (_, seen) = walk_by_cursor(&srv, Via::Search, "/Users", None, bound).await;
    assert_once(&seen, &users, ".search by cursor");
}

/// The real bound and a `/Bulk` of 50 operations whose errors quote their long input: each detail is cut,
/// the response stays small.
async fn real_bound_bulk_of_long_errors(srv: TestServer) {
    let id = srv
        .create_user(&json!({"userName": "target@contoso.com"}))
        .await;
    let bad_path = format!("!{}", "p".repeat(100_000));
    let ops: Vec<Value> = (0..50).map(|_| bad_patch(&id, &bad_path)).collect();
    let r = srv
        .post(
            "/Bulk",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(500)]);
    let results = r.body["Operations"].as_array().expect("Operations");
    assert_eq!(results.len(), 50);
    for o in results {
        assert_eq!(o["status"], "400");
        assert!(
            o["response"]["detail"]
                .as_str()
                .expect("detail")
                .chars()
                .count()
                <= 1000
        );
    }
    assert!(
        envelope_len(&r.text) < 100_000,
        "{} bytes",
        envelope_len(&r.text)
    );
}

scim_tests::engine_tests!(
    real_bound_with_users_near_the_item_limit,
    real_bound_bulk_of_long_errors
);
