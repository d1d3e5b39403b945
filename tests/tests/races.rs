//! Write races, on both engines: for every pair of writes that touch the same user, group, uniqueness
//! guard or membership, many trials of the two requests fired together, each followed by a check of the
//! invariants — no orphan membership, a user's `groups` agrees with its groups' members, the stored member
//! count agrees with the member items, uniqueness holds and frees up, `totalResults` is right.
//!
//! Each trial builds fresh resources and keeps to a handful of requests (moto serializes requests), and
//! every [`ROUND`] trials the test moves to a fresh server and table: moto copies the whole table for each
//! item of a transaction, so its transactions slow down as a table grows.
//! `SCIM_RACE_TRIALS` overrides the number of trials per pair (default 300).

use futures::future::join;
use scim_core::auth::DEFAULT_TENANT;
use scim_core::schema::group_resource_type;
use scim_core::store::{MemberStore, ResourceStore};
use scim_tests::patch_body;
use scim_tests::{Resp, TestServer};
use serde_json::{json, Value};

fn trials() -> usize {
    std::env::var("SCIM_RACE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Trials per table.
const ROUND: usize = 25;

/// Before trial `i`: a fresh server and table when a round is over (true then).
async fn next_round(srv: &mut TestServer, i: usize) -> bool {
    if i == 0 || !i.is_multiple_of(ROUND) {
        return false;
    }
    *srv = TestServer::start(srv.engine).await;
    true
}

fn add_member(u: &str) -> Value {
    patch_body(json!([{"op": "Add", "path": "members", "value": [{"value": u}]}]))
}

fn remove_member(u: &str) -> Value {
    patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": u}]}]))
}

async fn new_group(srv: &TestServer, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let r = srv
        .post("/Groups", &json!({"displayName": name, "members": members}))
        .await;
    assert_eq!(r.status, 201, "create group: {}", r.text);
    r.id()
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The member items of `g`, read from the store itself (they outlive a deleted group if orphaned).
async fn member_items(srv: &TestServer, g: &str) -> Vec<String> {
    srv.store
        .list_members(DEFAULT_TENANT, g, 1000)
        .await
        .expect("list members")
}

/// The group's stored member count (`mcount`), or None when the group item is gone.
async fn stored_count(srv: &TestServer, g: &str) -> Option<u64> {
    srv.store
        .get(DEFAULT_TENANT, group_resource_type(), g)
        .await
        .expect("get group")
        .map(|g| g.member_count)
}

async fn total(srv: &TestServer, endpoint: &str) -> u64 {
    let r = srv.get(&format!("{endpoint}?count=0")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["totalResults"].as_u64().expect("totalResults")
}

async fn count_named(srv: &TestServer, endpoint: &str, attr: &str, name: &str) -> u64 {
    let r = srv
        .get(&format!(
            "{endpoint}?filter={attr}+eq+%22{name}%22&excludedAttributes=members"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["totalResults"].as_u64().expect("totalResults")
}

/// At the end of a round (before trial `i`, or at the very end): `totalResults` of the table equals the
/// resources the round made; the count starts again with the next table.
async fn check_total(
    v: &mut Violations,
    srv: &TestServer,
    endpoint: &str,
    expected: &mut u64,
    i: usize,
) {
    if i == 0 || !i.is_multiple_of(ROUND) {
        return;
    }
    let t = total(srv, endpoint).await;
    let want = *expected;
    v.check(t == want, || {
        format!("before trial {i}: {endpoint} totalResults {t}, expected {want}")
    });
    *expected = 0;
}

/// Collects violations across trials and fails once at the end with the count and the first few.
struct Violations {
    pair: &'static str,
    trials: usize,
    found: Vec<String>,
}

impl Violations {
    fn new(pair: &'static str, trials: usize) -> Self {
        Violations {
            pair,
            trials,
            found: Vec::new(),
        }
    }
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.found.push(what());
        }
    }
    fn finish(self) {
        assert!(
            self.found.is_empty(),
            "{}: {} violations in {} trials; first: {:#?}",
            self.pair,
            self.found.len(),
            self.trials,
            &self.found[..self.found.len().min(5)]
        );
    }
}

fn st(r: &Resp) -> u16 {
    r.status
}

/// DELETE /Users/{u} and PATCH /Groups/{g} (Add u) at once: the user is gone, and so is every trace of
/// the membership, whichever landed first.
async fn user_delete_vs_member_add(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("user delete vs member add", n);
    let (mut added, mut refused) = (0, 0);
    for i in 0..n {
        next_round(&mut srv, i).await;
        let u = srv
            .create_user(&json!({"userName": format!("u{i}@x")}))
            .await;
        let g = new_group(&srv, &format!("g{i}"), &[]).await;
        let (del, add) = join(
            srv.delete(&format!("/Users/{u}")),
            srv.patch(&format!("/Groups/{g}"), &add_member(&u)),
        )
        .await;
        v.check(st(&del) == 204, || {
            format!("trial {i}: delete answered {} {}", del.status, del.text)
        });
        v.check(matches!(st(&add), 204 | 400), || {
            format!("trial {i}: add answered {} {}", add.status, add.text)
        });
        if add.status == 204 {
            added += 1
        } else {
            refused += 1
        }
        // `GET /Groups/{g}` lists the member items when the stored count is above 0: both are checked
        // at the source (a request fewer per trial on moto).
        let items = member_items(&srv, &g).await;
        v.check(items.is_empty(), || {
            format!(
                "trial {i}: orphan member items {items:?} (add {}, delete {})",
                add.status, del.status
            )
        });
        let count = stored_count(&srv, &g).await;
        v.check(count == Some(0), || {
            format!("trial {i}: stored member count {count:?}, expected 0")
        });
    }
    eprintln!("user delete vs member add: {added} adds landed first, {refused} refused");
    v.finish();
}

/// DELETE /Users/{u} and PATCH /Groups/{g} (Remove u) at once.
async fn user_delete_vs_member_remove(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("user delete vs member remove", n);
    for i in 0..n {
        next_round(&mut srv, i).await;
        let u = srv
            .create_user(&json!({"userName": format!("u{i}@x")}))
            .await;
        let g = new_group(&srv, &format!("g{i}"), &[&u]).await;
        let (del, rm) = join(
            srv.delete(&format!("/Users/{u}")),
            srv.patch(&format!("/Groups/{g}"), &remove_member(&u)),
        )
        .await;
        v.check(st(&del) == 204, || {
            format!("trial {i}: delete answered {} {}", del.status, del.text)
        });
        v.check(st(&rm) == 204, || {
            format!("trial {i}: remove answered {} {}", rm.status, rm.text)
        });
        let items = member_items(&srv, &g).await;
        v.check(items.is_empty(), || {
            format!("trial {i}: orphan member items {items:?}")
        });
        let count = stored_count(&srv, &g).await;
        v.check(count == Some(0), || {
            format!("trial {i}: stored member count {count:?}, expected 0")
        });
    }
    v.finish();
}

/// DELETE /Groups/{g} and PATCH /Groups/{g} (Add u) at once: the group is gone and the user lists no
/// trace of it.
async fn group_delete_vs_member_add(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("group delete vs member add", n);
    for i in 0..n {
        next_round(&mut srv, i).await;
        let u = srv
            .create_user(&json!({"userName": format!("u{i}@x")}))
            .await;
        let g = new_group(&srv, &format!("g{i}"), &[]).await;
        let (del, add) = join(
            srv.delete(&format!("/Groups/{g}")),
            srv.patch(&format!("/Groups/{g}"), &add_member(&u)),
        )
        .await;
        v.check(st(&del) == 204, || {
            format!("trial {i}: delete answered {} {}", del.status, del.text)
        });
        v.check(matches!(st(&add), 204 | 404), || {
            format!("trial {i}: add answered {} {}", add.status, add.text)
        });
        let user = srv.get(&format!("/Users/{u}")).await;
        v.check(ids(&user.body["groups"]).is_empty(), || {
            format!(
                "trial {i}: user still lists the deleted group: {}",
                user.text
            )
        });
        let items = member_items(&srv, &g).await;
        v.check(items.is_empty(), || {
            format!("trial {i}: orphan member items {items:?}")
        });
        let count = stored_count(&srv, &g).await;
        v.check(count.is_none(), || {
            format!("trial {i}: deleted group still stored (count {count:?})")
        });
    }
    v.finish();
}

/// PATCH /Users/{a} (userName → b) and POST /Users (userName b) at once: exactly one holds b, and a is
/// free again exactly when the rename won.
async fn rename_vs_create_of_same_name(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("rename vs create of the same name", n);
    let mut users = 0;
    for i in 0..n {
        check_total(&mut v, &srv, "/Users", &mut users, i).await;
        next_round(&mut srv, i).await;
        let (a, b) = (format!("a{i}@x"), format!("b{i}@x"));
        let u = srv.create_user(&json!({"userName": a})).await;
        users += 1;
        let rename =
            patch_body(json!([{"op": "replace", "path": "userName", "value": b.to_uppercase()}]));
        let (ren, post) = join(
            srv.patch(&format!("/Users/{u}"), &rename),
            srv.post("/Users", &json!({"userName": b})),
        )
        .await;
        let outcome = (ren.status, post.status);
        v.check(outcome == (200, 409) || outcome == (409, 201), || {
            format!(
                "trial {i}: rename {} / create {}: {} {}",
                ren.status, post.status, ren.text, post.text
            )
        });
        if post.status == 201 {
            users += 1;
        }
        let holders_b = count_named(&srv, "/Users", "userName", &b).await;
        v.check(holders_b == 1, || {
            format!("trial {i}: {holders_b} users named {b}")
        });
        let holders_a = count_named(&srv, "/Users", "userName", &a).await;
        let want_a = if ren.status == 200 { 0 } else { 1 };
        v.check(holders_a == want_a, || {
            format!("trial {i}: {holders_a} users named {a}, expected {want_a}")
        });
    }
    check_total(&mut v, &srv, "/Users", &mut users, ROUND).await;
    v.finish();
}

/// PUT /Users/{u} (new userName) and DELETE /Users/{u} at once: the user is gone and both names are free.
async fn put_vs_delete_of_one_user(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("PUT vs DELETE of one user", n);
    let mut users = 0;
    for i in 0..n {
        check_total(&mut v, &srv, "/Users", &mut users, i).await;
        next_round(&mut srv, i).await;
        let (x, y) = (format!("x{i}@x"), format!("y{i}@x"));
        let u = srv.create_user(&json!({"userName": x})).await;
        let (put, del) = join(
            srv.put(&format!("/Users/{u}"), &json!({"userName": y})),
            srv.delete(&format!("/Users/{u}")),
        )
        .await;
        v.check(st(&del) == 204, || {
            format!("trial {i}: delete answered {} {}", del.status, del.text)
        });
        v.check(matches!(st(&put), 200 | 404), || {
            format!("trial {i}: put answered {} {}", put.status, put.text)
        });
        v.check(srv.get(&format!("/Users/{u}")).await.status == 404, || {
            format!("trial {i}: deleted user still there")
        });
        // Both names must be free again: no guard outlived the user.
        for name in [&x, &y] {
            let r = srv.post("/Users", &json!({"userName": name})).await;
            v.check(r.status == 201, || {
                format!(
                    "trial {i}: {name} not free after the delete: {} {}",
                    r.status, r.text
                )
            });
            if r.status == 201 {
                users += 1;
            }
        }
    }
    check_total(&mut v, &srv, "/Users", &mut users, ROUND).await;
    v.finish();
}

/// Two PATCHes adding the same user to one group at once: one membership, counted once.
async fn two_adds_of_one_member(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("two adds of one member", n);
    for i in 0..n {
        next_round(&mut srv, i).await;
        let u = srv
            .create_user(&json!({"userName": format!("u{i}@x")}))
            .await;
        let g = new_group(&srv, &format!("g{i}"), &[]).await;
        let path = format!("/Groups/{g}");
        let (a, b) = join(
            srv.patch(&path, &add_member(&u)),
            srv.patch(&path, &add_member(&u)),
        )
        .await;
        v.check(a.status == 204 && b.status == 204, || {
            format!(
                "trial {i}: adds answered {} {} / {} {}",
                a.status, a.text, b.status, b.text
            )
        });
        let group = srv.get(&path).await;
        v.check(ids(&group.body["members"]) == vec![u.clone()], || {
            format!("trial {i}: members {}", group.body["members"])
        });
        let count = stored_count(&srv, &g).await;
        v.check(count == Some(1), || {
            format!("trial {i}: stored member count {count:?}, expected 1")
        });
        let user = srv.get(&format!("/Users/{u}")).await;
        v.check(ids(&user.body["groups"]) == vec![g.clone()], || {
            format!("trial {i}: user's groups {}", user.body["groups"])
        });
    }
    v.finish();
}

/// DELETE /Groups/{g} and PATCH /Groups/{g} (displayName → n2) at once: the group is gone and both names
/// are free.
async fn group_delete_vs_rename(mut srv: TestServer) {
    let n = trials();
    let mut v = Violations::new("group delete vs group rename", n);
    let mut groups = 0;
    for i in 0..n {
        check_total(&mut v, &srv, "/Groups", &mut groups, i).await;
        next_round(&mut srv, i).await;
        let (n1, n2) = (format!("n{i}"), format!("m{i}"));
        let g = new_group(&srv, &n1, &[]).await;
        let rename = patch_body(json!([{"op": "replace", "path": "displayName", "value": n2}]));
        let (del, ren) = join(
            srv.delete(&format!("/Groups/{g}")),
            srv.patch(&format!("/Groups/{g}"), &rename),
        )
        .await;
        v.check(st(&del) == 204, || {
            format!("trial {i}: delete answered {} {}", del.status, del.text)
        });
        v.check(matches!(st(&ren), 204 | 404), || {
            format!("trial {i}: rename answered {} {}", ren.status, ren.text)
        });
        for name in [&n1, &n2] {
            let r = srv.post("/Groups", &json!({"displayName": name})).await;
            v.check(r.status == 201, || {
                format!(
                    "trial {i}: {name} not free after the delete: {} {}",
                    r.status, r.text
                )
            });
            if r.status == 201 {
                groups += 1;
            }
        }
    }
    check_total(&mut v, &srv, "/Groups", &mut groups, ROUND).await;
    v.finish();
}

/// A user in 50 groups (deleted in several transactions) and a PATCH of that user at once: whichever
/// lands first, the user ends deleted with no membership left and every group's count back to 0.
async fn delete_of_user_in_many_groups_vs_patch(srv: TestServer) {
    let n = (trials() / 100).max(1);
    let mut v = Violations::new("delete of a user in 50 groups vs PATCH", n);
    let mut groups = Vec::new();
    for k in 0..50 {
        groups.push(new_group(&srv, &format!("g{k}"), &[]).await);
    }
    for i in 0..n {
        let u = srv
            .create_user(&json!({"userName": format!("u{i}@x")}))
            .await;
        for g in &groups {
            assert_eq!(
                srv.patch(&format!("/Groups/{g}"), &add_member(&u))
                    .await
                    .status,
                204
            );
        }
        let title =
            patch_body(json!([{"op": "replace", "path": "title", "value": format!("t{i}")}]));
        let (del, p) = join(
            srv.delete(&format!("/Users/{u}")),
            srv.patch(&format!("/Users/{u}"), &title),
        )
        .await;
        v.check(st(&del) == 204, || {
            format!("trial {i}: delete answered {} {}", del.status, del.text)
        });
        v.check(matches!(st(&p), 200 | 404), || {
            format!("trial {i}: patch answered {} {}", p.status, p.text)
        });
        v.check(srv.get(&format!("/Users/{u}")).await.status == 404, || {
            format!("trial {i}: deleted user still there")
        });
        for g in &groups {
            let items = member_items(&srv, g).await;
            v.check(items.is_empty(), || {
                format!("trial {i}: orphan member items in {g}: {items:?}")
            });
            let count = stored_count(&srv, g).await;
            v.check(count == Some(0), || {
                format!("trial {i}: stored member count of {g} {count:?}")
            });
        }
    }
    v.finish();
}

scim_tests::engine_tests!(
    delete_of_user_in_many_groups_vs_patch,
    user_delete_vs_member_add,
    user_delete_vs_member_remove,
    group_delete_vs_member_add,
    rename_vs_create_of_same_name,
    put_vs_delete_of_one_user,
    two_adds_of_one_member,
    group_delete_vs_rename,
);
