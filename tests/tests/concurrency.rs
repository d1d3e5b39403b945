//! Races, on both engines: concurrent PATCHes of one user never lose an update; concurrent POSTs of one
//! userName create exactly one user.

use futures::future::join_all;
use scim_tests::urn::PATCH_OP;
use scim_tests::TestServer;
use serde_json::json;

async fn concurrent_patches_all_land(srv: TestServer) {
    let id = srv
        .create_user(&json!({"userName": "race@example.com"}))
        .await;
    let patches = (0..32).map(|i| {
        let body = json!({"schemas": [PATCH_OP],
            "Operations": [{"op": "Add", "path": format!("emails[type eq \"t{i}\"].value"), "value": format!("{i}@example.com")}]});
        let srv = &srv;
        let path = format!("/Users/{id}");
        async move { srv.patch(&path, &body).await }
    });
    let results = join_all(patches).await;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let user = srv.get(&format!("/Users/{id}")).await;
    let emails = user.body["emails"].as_array().expect("emails").clone();
    assert_eq!(
        emails.len(),
        32,
        "every concurrent PATCH landed: {}",
        user.text
    );
    for i in 0..32 {
        assert!(
            emails.contains(&json!({"type": format!("t{i}"), "value": format!("{i}@example.com")})),
            "t{i} missing"
        );
    }
    assert_eq!(
        user.body["meta"]["version"], "W/\"33\"",
        "one version per change"
    );
}

async fn concurrent_creates_of_one_user_name_yield_one_user(srv: TestServer) {
    let posts = (0..32).map(|i| {
        // Same userName in different cases: uniqueness is case-insensitive.
        let name = if i % 2 == 0 {
            "Dup@Example.com"
        } else {
            "dup@example.COM"
        };
        let body = json!({"userName": name, "externalId": format!("e{i}")});
        let srv = &srv;
        async move { srv.post("/Users", &body).await }
    });
    let results = join_all(posts).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let conflicts = results
        .iter()
        .filter(|r| r.status == 409 && r.body["scimType"] == "uniqueness")
        .count();
    assert_eq!(
        (created, conflicts),
        (1, 31),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let list = srv
        .get("/Users?filter=userName+eq+%22DUP%40example.com%22")
        .await;
    assert_eq!(list.body["totalResults"], 1);
    let all = srv.get("/Users").await;
    assert_eq!(
        all.body["totalResults"], 1,
        "the counter counts the one user"
    );
}

scim_tests::engine_tests!(
    concurrent_patches_all_land,
    concurrent_creates_of_one_user_name_yield_one_user
);
