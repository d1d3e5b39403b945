//! Index paging (`startIndex`/`count`, as Entra's account discovery and Microsoft's validator walk a
//! directory): every page is exactly the id-ordered slice at its position — also after creates and deletes
//! between pages — and a sequential walk costs the same per page at any depth (position checkpoints,
//! docs/store.md, "Index paging").

use futures::stream::{self, StreamExt};
use scim_tests::{Resp, TestServer};
use serde_json::{json, Value};

const USERS: usize = 300;

/// Bodies of equal size, so that equal page sizes read equal capacity.
fn user_body(i: usize) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("walk{i:05}@contoso.com"), "active": true})
}

/// Create users `from..to` (a few at a time) and return their ids.
async fn create_users(srv: &TestServer, from: usize, to: usize) -> Vec<String> {
    stream::iter(from..to)
        .map(|i| async move { srv.create_user(&user_body(i)).await })
        .buffer_unordered(4)
        .collect()
        .await
}

async fn delete_user(srv: &TestServer, ids: &mut Vec<String>, at: usize) {
    let id = ids.remove(at);
    let r = srv.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, 204, "delete: {}", r.text);
}

async fn page(srv: &TestServer, start: usize, count: usize) -> Resp {
    let r = srv
        .get(&format!("/Users?startIndex={start}&count={count}"))
        .await;
    assert_eq!(r.status, 200, "startIndex={start}: {}", r.text);
    r
}

fn ids_of(r: &Resp) -> Vec<String> {
    r.body["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| u["id"].as_str().expect("id").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The page at `start` (1-based) is exactly `sorted[start-1 ..][.. count]`, with the right totals.
async fn assert_page(srv: &TestServer, sorted: &[String], start: usize, count: usize) -> Resp {
    let r = page(srv, start, count).await;
    let want: Vec<String> = sorted.iter().skip(start - 1).take(count).cloned().collect();
    assert_eq!(
        ids_of(&r),
        want,
        "page startIndex={start} count={count} of {}",
        sorted.len()
    );
    assert_eq!(r.body["totalResults"], sorted.len(), "{start}");
    assert_eq!(r.body["startIndex"], start);
    assert_eq!(r.body["itemsPerPage"], want.len());
    r
}

async fn sequential_walk_equals_the_id_ordered_listing(srv: TestServer) {
    let mut ids = create_users(&srv, 0, USERS).await;
    ids.sort();
    // A count that does not divide the total: the last page is short.
    let count = 23;
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= USERS {
        seen.extend(ids_of(&assert_page(&srv, &ids, start, count).await));
        start += count;
    }
    assert_eq!(seen, ids, "the walk returns every user once, in id order");
    assert_eq!(
        ids_of(&page(&srv, USERS + 1, count).await),
        Vec::<String>::new(),
        "past the end"
    );
    // Random access after the walk, at positions on, next to and between the learned checkpoints.
    for start in [24, 25, 47, 93, 1, 150, 299, 300, 2, 208, 231, 116] {
        assert_page(&srv, &ids, start, 17).await;
    }
    // Cursor paging returns the same order.
    let mut cursor_seen = Vec::new();
    let mut next = String::new();
    loop {
        let r = srv.get(&format!("/Users?count=100&cursor={next}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        cursor_seen.extend(ids_of(&r));
        match r.body["nextCursor"].as_str() {
            Some(c) => next = c.to_string(),
            None => break,
        }
    }
    assert_eq!(cursor_seen, ids);
}

async fn creates_and_deletes_between_pages_keep_every_page_exact(srv: TestServer) {
    let mut ids = create_users(&srv, 0, USERS).await;
    ids.sort();
    let count = 20;
    // Learn checkpoints at 20, 40, …, 200.
    for start in (1..=200).step_by(count) {
        assert_page(&srv, &ids, start, count).await;
    }
    // A delete before the checkpoints shifts every later position by one.
    delete_user(&srv, &mut ids, 50).await;
    for start in [101, 61, 181, 1, 45, 200, 121, 141, 299, 21] {
        assert_page(&srv, &ids, start, count).await;
    }
    // So does a create (its id is random: anywhere in the order).
    let mut new = create_users(&srv, USERS, USERS + 1).await;
    ids.append(&mut new);
    ids.sort();
    for start in [101, 61, 181, 1, 45, 200, 121, 141, 300, 21] {
        assert_page(&srv, &ids, start, count).await;
    }
    // A walk with a create or a delete between every two pages: each page is the slice of the moment.
    let mut start = 1;
    let mut i = 0;
    while start <= ids.len() {
        assert_page(&srv, &ids, start, count).await;
        if i % 2 == 0 {
            let at = (i * 37) % ids.len();
            delete_user(&srv, &mut ids, at).await;
        } else {
            let mut new = create_users(&srv, USERS + 10 + i, USERS + 11 + i).await;
            ids.append(&mut new);
            ids.sort();
        }
        // The page just served and a random one, at the new state.
        assert_page(&srv, &ids, start, count).await;
        assert_page(&srv, &ids, 1 + (i * 53) % ids.len(), count).await;
        start += count;
        i += 1;
    }
    // Create and delete one: the same total, another sequence — positions learned before are not used.
    let mut new = create_users(&srv, USERS + 900, USERS + 901).await;
    ids.append(&mut new);
    ids.sort();
    delete_user(&srv, &mut ids, 0).await;
    for start in [2, 20, 21, 22, 101, 180, 181, 250] {
        assert_page(&srv, &ids, start, count).await;
    }
}

async fn sequential_walk_costs_the_same_per_page_at_any_depth(srv: TestServer) {
    let mut ids = create_users(&srv, 0, USERS).await;
    ids.sort();
    let count = 25;
    let mut pages = Vec::new();
    for start in (1..=USERS).step_by(count) {
        pages.push(assert_page(&srv, &ids, start, count).await);
    }
    let (first, last) = (&pages[0], &pages[pages.len() - 1]);
    assert_eq!(
        first.calls(),
        2,
        "counter shards + the page: {}",
        first.text
    );
    assert_eq!(
        last.calls(),
        first.calls(),
        "the last page of the walk makes the same calls as the first"
    );
    assert_eq!(
        last.capacity(),
        first.capacity(),
        "the last page reads the same capacity as the first"
    );
    for (n, p) in pages.iter().enumerate() {
        assert_eq!(
            (p.calls(), p.capacity()),
            (first.calls(), first.capacity()),
            "page {n}"
        );
    }
    // After a create and a delete the checkpoints no longer apply: a jump to the last page skips with a
    // COUNT query (same answer, more reads) — and teaches the checkpoints of the next walk.
    let mut new = create_users(&srv, USERS, USERS + 1).await;
    ids.append(&mut new);
    ids.sort();
    delete_user(&srv, &mut ids, 0).await;
    let last_start = USERS - count + 1;
    let jump = assert_page(&srv, &ids, last_start, count).await;
    assert_eq!(
        jump.calls(),
        first.calls() + 1,
        "one COUNT query skips {} items",
        last_start - 1
    );
    if srv.engine == scim_tests::Engine::Dynoxide {
        // moto reports a flat 0.5 per call; dynoxide bills by size, as DynamoDB does.
        assert!(
            jump.capacity().0 > 2.0 * first.capacity().0,
            "skipping reads the skipped items: {:?} vs {:?}",
            jump.capacity(),
            first.capacity()
        );
    }
    let again = assert_page(&srv, &ids, last_start, count).await;
    assert_eq!(
        (again.calls(), again.capacity()),
        (first.calls(), first.capacity()),
        "the jump taught the position"
    );
}

scim_tests::engine_tests!(
    sequential_walk_equals_the_id_ordered_listing,
    creates_and_deletes_between_pages_keep_every_page_exact,
    sequential_walk_costs_the_same_per_page_at_any_depth,
);
