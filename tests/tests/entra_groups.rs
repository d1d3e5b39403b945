//! Groups the way Entra provisions them (docs/entra-dialect.md §1.6; §5 items 4, 5, 14, 25), end to end over
//! HTTP on both DynamoDB engines, plus membership at scale (embedded engine).

use futures::stream::{self, StreamExt};
use reqwest::Method;
use scim_tests::{entra_fixture, patch_body, with_ids};
use scim_tests::{Engine, Resp, TestServer};
use serde_json::json;
use std::collections::BTreeSet;

async fn user(srv: &TestServer, name: &str) -> String {
    srv.create_user(&json!({"userName": name})).await
}

/// Entra's create-group body (§1.6), with its non-standard second schema URN.
async fn entra_group(srv: &TestServer, name: &str) -> Resp {
    srv.post("/Groups", &json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": name,
        "meta": {"resourceType": "Group"}
    }))
    .await
}

async fn member_ids(srv: &TestServer, gid: &str) -> BTreeSet<String> {
    let g = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g.status, 200, "{}", g.text);
    g.body["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn create_group_entra_shape(srv: TestServer) {
    let r = entra_group(&srv, "displayName").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
    );
    assert_eq!(r.body["displayName"], "displayName");
    assert_eq!(r.body["externalId"], "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159");
    assert_eq!(r.body["members"], json!([]));
    assert_eq!(r.body["meta"]["resourceType"], "Group");
    assert_eq!(r.header("location"), r.body["meta"]["location"].as_str());
    assert_eq!(r.calls(), 1, "POST /Groups is one TransactWriteItems");
}

async fn group_display_name_is_unique_case_insensitively(srv: TestServer) {
    // §5 item 25
    assert_eq!(entra_group(&srv, "Sales").await.status, 201);
    let dup = entra_group(&srv, "SALES").await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    assert_eq!(dup.body["scimType"], "uniqueness");
    assert_eq!(dup.header("content-type"), Some("application/scim+json"));
}

async fn get_and_query_excluding_members(srv: TestServer) {
    // §1.6 Get / Query; §5 item 14: members absent, and not read (one DynamoDB call).
    let u = user(&srv, "m@x.com").await;
    let gid = srv
        .post(
            "/Groups",
            &json!({"displayName": "Eng (EU), 'core'", "members": [{"value": u}]}),
        )
        .await
        .id();
    let g = srv
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    assert_eq!(g.status, 200);
    assert!(g.body.get("members").is_none(), "{}", g.text);
    assert_eq!(g.calls(), 1);
    let q = srv
        .get("/Groups?excludedAttributes=members&filter=displayName+eq+%22eng+(eu),+'CORE'%22")
        .await;
    assert_eq!(q.status, 200, "{}", q.text);
    assert_eq!(
        q.body["totalResults"], 1,
        "displayName eq is case-insensitive and takes special characters"
    );
    assert!(q.body["Resources"][0].get("members").is_none());
    assert_eq!(q.calls(), 1);
    // Test Connection's group probe: a random name → empty list, 200.
    let none = srv.get("/Groups?excludedAttributes=members&filter=displayName+eq+%22e6b2d8a4-0000-4000-8000-000000000000%22").await;
    assert_eq!(
        (none.status, none.body["totalResults"].clone()),
        (200, json!(0))
    );
    // Without exclusion, members are returned with their $ref.
    let full = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(full.body["members"][0]["value"], u.as_str());
    assert!(full.body["members"][0]["$ref"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/Users/{u}")));
}

async fn rename_by_path_and_pathless(srv: TestServer) {
    let gid = entra_group(&srv, "Old").await.id();
    // §1.6 Rename — 204
    let r = srv.patch(&format!("/Groups/{gid}"), &patch_body(json!([{"op":"Replace","path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // Validator: pathless replace of displayName and of externalId.
    let r = srv
        .patch(
            &format!("/Groups/{gid}"),
            &entra_fixture("group-patch-rename-pathless"),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = srv
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(json!([{"op":"replace","value":{"externalId":"c3b97a69-0000"}}])),
        )
        .await;
    assert_eq!(r.status, 204);
    let g = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(
        (g.body["displayName"].clone(), g.body["externalId"].clone()),
        (json!("MSADPJJZWBUS"), json!("c3b97a69-0000"))
    );
    // The old names are free again; the new one is taken (uniqueness consistent after renames).
    assert_eq!(entra_group(&srv, "old").await.status, 201);
    assert_eq!(entra_group(&srv, "msadpjjzwbus").await.status, 409);
    // PATCH answers with the group when attributes are asked for.
    let r = srv
        .patch(
            &format!("/Groups/{gid}?attributes=displayName"),
            &patch_body(json!([{"op":"replace","path":"displayName","value":"X"}])),
        )
        .await;
    assert_eq!((r.status, r.body["displayName"].clone()), (200, json!("X")));
}

async fn add_and_remove_members_entra_dialects(srv: TestServer) {
    let (a, b, c) = (
        user(&srv, "a@x").await,
        user(&srv, "b@x").await,
        user(&srv, "c@x").await,
    );
    let gid = entra_group(&srv, "G").await.id();
    let path = format!("/Groups/{gid}");
    // §1.6 Add members (several in one operation)
    let r = srv.patch(&path, &patch_body(json!([{"op":"Add","path":"members","value":[{"$ref":null,"value":a},{"$ref":null,"value":b},{"value":c}]}]))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(member_ids(&srv, &gid).await, set(&[&a, &b, &c]));
    // §1.6 Remove, default dialect: path "members" + value array removes only those (§5 item 4).
    let r = srv
        .patch(
            &path,
            &with_ids(
                entra_fixture("group-patch-remove-members"),
                "f648f8d5ea4e4cd38e9c",
                &a,
            ),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&srv, &gid).await, set(&[&b, &c]));
    // §1.6 Remove, flag dialect: members[value eq "x"] removes only x (§5 item 5).
    let r = srv
        .patch(
            &path,
            &patch_body(json!([{"op":"remove","path":format!("members[value eq \"{b}\"]")}])),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&srv, &gid).await, set(&[&c]));
    // Re-adding an existing member and removing a non-member are no-ops.
    let r = srv.patch(&path, &patch_body(json!([{"op":"add","path":"members","value":[{"value":c}]},{"op":"remove","path":format!("members[value eq \"{a}\"]")}]))).await;
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&srv, &gid).await, set(&[&c]));
    // The user's groups attribute is derived from memberships.
    let uc = srv.get(&format!("/Users/{c}")).await;
    assert_eq!(uc.body["groups"][0]["value"], gid.as_str());
    assert!(srv
        .get(&format!("/Users/{a}"))
        .await
        .body
        .get("groups")
        .is_none());
    // Remove "members" with neither value nor filter clears the group.
    let r = srv
        .patch(
            &path,
            &patch_body(json!([{"op":"Remove","path":"members"}])),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(member_ids(&srv, &gid).await.is_empty());
}

async fn member_operations_apply_in_order(srv: TestServer) {
    // Validator preview: add and remove of the same member in one request.
    let (a, b) = (user(&srv, "a@x").await, user(&srv, "b@x").await);
    let gid = entra_group(&srv, "G").await.id();
    let r = srv
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(json!([
                {"op":"add","path":"members","value":[{"value":a},{"value":b}]},
                {"op":"remove","path":format!("members[value eq \"{a}\"]")},
                {"op":"replace","path":"displayName","value":"Renamed"}
            ])),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let g = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g.body["displayName"], "Renamed");
    assert_eq!(member_ids(&srv, &gid).await, set(&[&b]));
}

async fn unknown_member_is_refused_and_nothing_applied(srv: TestServer) {
    let a = user(&srv, "a@x").await;
    let gid = entra_group(&srv, "G").await.id();
    let before = srv.get(&format!("/Groups/{gid}")).await;
    let r = srv
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(json!([
                {"op":"replace","path":"displayName","value":"Changed"},
                {"op":"add","path":"members","value":[{"value":a},{"value":"no-such-user"}]}
            ])),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("no-such-user"));
    let after = srv.get(&format!("/Groups/{gid}")).await;
    assert_eq!(after.body, before.body, "nothing of the PATCH was applied");
}

async fn membership_filter(srv: TestServer) {
    // `id eq "g" and members eq "u"` answers whether u is a member.
    let (a, b) = (user(&srv, "a@x").await, user(&srv, "b@x").await);
    let gid = srv
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": a}]}),
        )
        .await
        .id();
    let other = srv
        .post(
            "/Groups",
            &json!({"displayName": "H", "members": [{"value": a}, {"value": b}]}),
        )
        .await
        .id();
    let q = |u: &str, g: &str| {
        format!(
            "/Groups?filter=id+eq+%22{g}%22+and+members+eq+%22{u}%22&excludedAttributes=members"
        )
    };
    assert_eq!(srv.get(&q(&a, &gid)).await.body["totalResults"], 1);
    assert_eq!(srv.get(&q(&b, &gid)).await.body["totalResults"], 0);
    let all_of_a = srv
        .get(&format!(
            "/Groups?filter=members+eq+%22{a}%22&excludedAttributes=members"
        ))
        .await;
    assert_eq!(all_of_a.body["totalResults"], 2);
    let of_b = srv
        .get(&format!("/Groups?filter=members+eq+%22{b}%22"))
        .await;
    assert_eq!(of_b.body["Resources"][0]["id"], other.as_str());
    let bad = srv.get("/Groups?filter=members+co+%22x%22").await;
    assert_eq!(
        (bad.status, bad.body["scimType"].clone()),
        (400, json!("invalidFilter"))
    );
}

async fn deletes_clean_up_memberships(srv: TestServer) {
    let (a, b) = (user(&srv, "a@x").await, user(&srv, "b@x").await);
    let g1 = srv
        .post(
            "/Groups",
            &json!({"displayName": "G1", "members": [{"value": a}, {"value": b}]}),
        )
        .await
        .id();
    let g2 = srv
        .post(
            "/Groups",
            &json!({"displayName": "G2", "members": [{"value": a}]}),
        )
        .await
        .id();
    // Deleting a user removes its memberships.
    assert_eq!(srv.delete(&format!("/Users/{a}")).await.status, 204);
    assert_eq!(member_ids(&srv, &g1).await, set(&[&b]));
    assert!(member_ids(&srv, &g2).await.is_empty());
    // Deleting a group removes its member items and the users' references to it.
    assert_eq!(srv.delete(&format!("/Groups/{g1}")).await.status, 204);
    assert_eq!(srv.get(&format!("/Groups/{g1}")).await.status, 404);
    assert_eq!(srv.delete(&format!("/Groups/{g1}")).await.status, 404);
    assert!(srv
        .get(&format!("/Users/{b}"))
        .await
        .body
        .get("groups")
        .is_none());
    // The name is free again.
    assert_eq!(entra_group(&srv, "g1").await.status, 201);
}

async fn put_replaces_members(srv: TestServer) {
    let (a, b) = (user(&srv, "a@x").await, user(&srv, "b@x").await);
    let gid = srv
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": a}]}),
        )
        .await
        .id();
    let r = srv
        .put(
            &format!("/Groups/{gid}"),
            &json!({"displayName": "G2", "members": [{"value": b}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["displayName"], "G2");
    assert_eq!(member_ids(&srv, &gid).await, set(&[&b]));
}

async fn member_add_calls_do_not_grow(srv: TestServer) {
    // Adding one member reads neither the member list nor the group itself: 2 calls (BatchGetItem of
    // the group, the user and the membership; TransactWriteItems) whatever the group size.
    let gid = entra_group(&srv, "Small").await.id();
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..11 {
            v.push(user(&srv, &format!("u{i}@x")).await);
        }
        v
    };
    let add = |id: &str| patch_body(json!([{"op":"Add","path":"members","value":[{"value":id}]}]));
    srv.patch(&format!("/Groups/{gid}"), &patch_body(json!([{"op":"Add","path":"members","value": ids[..10].iter().map(|i| json!({"value": i})).collect::<Vec<_>>()}]))).await;
    let r = srv.patch(&format!("/Groups/{gid}"), &add(&ids[10])).await;
    assert_eq!((r.status, r.calls()), (204, 2));
    let r = srv
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(
                json!([{"op":"remove","path":format!("members[value eq \"{}\"]", ids[10])}]),
            ),
        )
        .await;
    assert_eq!((r.status, r.calls()), (204, 2));
    // With If-Match the group is read first (to compare versions): 3 calls, and a stale version is 412.
    let etag = srv
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let r = srv
        .call_with_header(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            ("If-Match", &etag),
            Some(&add(&ids[10])),
        )
        .await;
    assert_eq!((r.status, r.calls()), (204, 3), "{}", r.text);
    let r = srv
        .call_with_header(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            ("If-Match", &etag),
            Some(&add(&ids[9])),
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text);
}

async fn member_patch_of_a_missing_group_is_404_and_writes_nothing(srv: TestServer) {
    let u = user(&srv, "lonely@x").await;
    let missing = "00000000-0000-4000-8000-000000000000";
    for body in [
        patch_body(json!([{"op":"Add","path":"members","value":[{"value": u}]}])),
        patch_body(json!([{"op":"Remove","path":"members","value":[{"value": u}]}])),
        patch_body(json!([{"op":"Add","path":"members","value":[{"value": "not-a-user"}]}])),
    ] {
        let r = srv.patch(&format!("/Groups/{missing}"), &body).await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(r.body["status"], "404");
    }
    let user = srv.get(&format!("/Users/{u}")).await;
    assert!(
        user.body
            .get("groups")
            .is_none_or(|g| g.as_array().is_some_and(|a| a.is_empty())),
        "{}",
        user.text
    );
}

scim_tests::engine_tests!(
    create_group_entra_shape,
    group_display_name_is_unique_case_insensitively,
    get_and_query_excluding_members,
    rename_by_path_and_pathless,
    add_and_remove_members_entra_dialects,
    member_operations_apply_in_order,
    unknown_member_is_refused_and_nothing_applied,
    membership_filter,
    deletes_clean_up_memberships,
    put_replaces_members,
    member_add_calls_do_not_grow,
    member_patch_of_a_missing_group_is_404_and_writes_nothing,
);

/// A group grows to 10,000 members through Entra-sized PATCHes; the member set is exact after removals,
/// and adding or removing one member makes as many DynamoDB calls at 10,000 as at 10. Embedded engine
/// only: moto answers GSI-heavy workloads at a few requests a second (measured: about 17 index queries a second at 10,000 items).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_of_ten_thousand() {
    let srv = TestServer::start(Engine::Dynoxide).await;
    let gid = entra_group(&srv, "Everyone").await.id();
    let users: Vec<String> = stream::iter(0..10_000)
        .map(|i| {
            let srv = &srv;
            async move {
                srv.create_user(&json!({"userName": format!("user{i:05}@example.com")}))
                    .await
            }
        })
        .buffered(8)
        .collect()
        .await;
    let path = format!("/Groups/{gid}");
    let add_one =
        |id: &str| patch_body(json!([{"op":"Add","path":"members","value":[{"value":id}]}]));
    // Calls for one add/remove at 10 members…
    let batch = |ids: &[String]| {
        patch_body(
            json!([{"op":"Add","path":"members","value": ids.iter().map(|i| json!({"$ref": null, "value": i})).collect::<Vec<_>>()}]),
        )
    };
    assert_eq!(srv.patch(&path, &batch(&users[..9])).await.status, 204);
    let small_add = srv.patch(&path, &add_one(&users[9])).await.calls();
    // …then Entra-sized batches up to 10,000.
    for chunk in users[10..].chunks(100) {
        let r = srv.patch(&path, &batch(chunk)).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    let g = srv.get(&format!("{path}?excludedAttributes=members")).await;
    assert!(g.body.get("members").is_none());
    // Remove every 7th member in batches with Entra's default dialect, one with the flag dialect.
    let removed: Vec<&String> = users.iter().step_by(7).collect();
    for chunk in removed.chunks(100) {
        let body = patch_body(
            json!([{"op":"Remove","path":"members","value": chunk.iter().map(|i| json!({"value": i})).collect::<Vec<_>>()}]),
        );
        assert_eq!(srv.patch(&path, &body).await.status, 204);
    }
    let big_remove = srv
        .patch(
            &path,
            &patch_body(
                json!([{"op":"remove","path":format!("members[value eq \"{}\"]", users[1])}]),
            ),
        )
        .await
        .calls();
    let big_add = srv.patch(&path, &add_one(&users[1])).await.calls();
    let expected: BTreeSet<String> = users
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 0)
        .map(|(_, u)| u.clone())
        .collect();
    assert_eq!(member_ids(&srv, &gid).await, expected);
    assert_eq!(
        big_add, small_add,
        "one member add costs the same at 10 and 10,000 members"
    );
    assert_eq!(big_remove, small_add);
}
