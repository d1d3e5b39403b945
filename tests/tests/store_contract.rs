//! The store contract: every access pattern, every conditional failure, paging edges — through the real
//! SDK on both engines (embedded dynoxide and moto), with the DynamoDB calls each operation makes.

use scim_core::filter::parse_filter;
use scim_core::model::{prepare_input, StoredResource};
use scim_core::schema::{user_resource_type, ResourceType};
use scim_core::store::dynamo::DynamoStore;
use scim_core::store::{count_calls, ListQuery, ResourceStore, StoreError};
use serde_json::{json, Map, Value};

const T: &str = "default";

fn rt() -> &'static ResourceType {
    user_resource_type()
}

fn user(id: &str, user_name: &str, external_id: Option<&str>) -> StoredResource {
    let mut body = json!({"userName": user_name, "active": true});
    if let Some(x) = external_id {
        body["externalId"] = json!(x);
    }
    StoredResource {
        id: id.into(),
        attrs: prepare_input(body, rt()).unwrap(),
        created: "c".into(),
        last_modified: "m".into(),
        version: 1,
        ..Default::default()
    }
}

fn q(
    filter: Option<&scim_core::filter::Filter>,
    start_index: usize,
    count: usize,
) -> ListQuery<'_> {
    ListQuery {
        filter,
        start_index,
        count,
        max_scan: 10_000,
        after: None,
        budget: None,
    }
}

fn with_attrs(r: &StoredResource, attrs: Map<String, Value>) -> StoredResource {
    StoredResource {
        attrs,
        version: r.version + 1,
        ..r.clone()
    }
}

async fn create_get_roundtrip_verbatim(s: DynamoStore) {
    let mut u = user("u1", "Ann.Example@Contoso.COM", Some("Ext-1"));
    u.attrs.insert(
        "phoneNumbers".into(),
        json!([{"value": "+1 (555) 010-0000", "type": "work"}]),
    );
    u.attrs.insert("weight".into(), json!(1.50));
    let ((), calls) = count_calls(async { s.create(T, rt(), &u).await.unwrap() }).await;
    assert_eq!(calls, 1, "create is one TransactWriteItems");
    let (got, calls) = count_calls(s.get(T, rt(), "u1")).await;
    assert_eq!(calls, 1, "get is one GetItem");
    assert_eq!(got.unwrap(), Some(u));
    assert_eq!(s.get(T, rt(), "nope").await.unwrap(), None);
}

async fn user_name_unique_case_insensitively(s: DynamoStore) {
    s.create(T, rt(), &user("u1", "Ann", None)).await.unwrap();
    let e = s
        .create(T, rt(), &user("u2", "aNN", None))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        StoreError::Uniqueness {
            attr: "userName".into(),
            value: "aNN".into()
        }
    );
    assert_eq!(
        s.get(T, rt(), "u2").await.unwrap(),
        None,
        "nothing of the failed create was written"
    );
    let page = s.list(T, rt(), q(None, 1, 10)).await.unwrap();
    assert_eq!(
        page.total, 1,
        "the counter did not move for the failed create"
    );
}

async fn id_is_never_overwritten(s: DynamoStore) {
    s.create(T, rt(), &user("same", "a", None)).await.unwrap();
    assert!(s.create(T, rt(), &user("same", "b", None)).await.is_err());
    assert_eq!(
        s.get(T, rt(), "same").await.unwrap().unwrap().attrs["userName"],
        "a"
    );
}

async fn tenants_are_isolated(s: DynamoStore) {
    s.create("t1", rt(), &user("u1", "ann", Some("x")))
        .await
        .unwrap();
    s.create("t2", rt(), &user("u2", "ann", Some("x")))
        .await
        .unwrap();
    assert_eq!(s.get("t2", rt(), "u1").await.unwrap(), None);
    let f = parse_filter("userName eq \"ann\"").unwrap();
    let p = s.list("t1", rt(), q(Some(&f), 1, 10)).await.unwrap();
    assert_eq!(
        p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["u1"]
    );
    assert_eq!(s.list("t2", rt(), q(None, 1, 10)).await.unwrap().total, 1);
}

async fn replace_checks_version_and_moves_guard(s: DynamoStore) {
    let u = user("u1", "ann", None);
    s.create(T, rt(), &u).await.unwrap();
    // Same unique key: one conditional PutItem.
    let mut attrs = u.attrs.clone();
    attrs.insert("title".into(), json!("Boss"));
    let v2 = with_attrs(&u, attrs);
    let (r, calls) = count_calls(s.replace(T, rt(), &u, &v2)).await;
    r.unwrap();
    assert_eq!(calls, 1);
    // Stale version loses.
    assert_eq!(
        s.replace(T, rt(), &u, &v2).await.unwrap_err(),
        StoreError::VersionConflict
    );
    // Case-only rename keeps the guard; a real rename moves it.
    let mut attrs = v2.attrs.clone();
    attrs.insert("userName".into(), json!("ANN"));
    let v3 = with_attrs(&v2, attrs);
    s.replace(T, rt(), &v2, &v3).await.unwrap();
    let mut attrs = v3.attrs.clone();
    attrs.insert("userName".into(), json!("bob"));
    let v4 = with_attrs(&v3, attrs);
    let (r, calls) = count_calls(s.replace(T, rt(), &v3, &v4)).await;
    r.unwrap();
    assert_eq!(calls, 1, "rename is one TransactWriteItems");
    // The old name is free again, the new one is taken.
    s.create(T, rt(), &user("u2", "Ann", None)).await.unwrap();
    assert!(matches!(
        s.create(T, rt(), &user("u3", "BOB", None)).await,
        Err(StoreError::Uniqueness { .. })
    ));
    // Renaming onto a taken name fails whole.
    let mut attrs = v4.attrs.clone();
    attrs.insert("userName".into(), json!("ann"));
    let clash = with_attrs(&v4, attrs);
    assert!(matches!(
        s.replace(T, rt(), &v4, &clash).await,
        Err(StoreError::Uniqueness { .. })
    ));
    assert_eq!(s.get(T, rt(), "u1").await.unwrap().unwrap(), v4);
}

async fn delete_frees_name_and_uncounts(s: DynamoStore) {
    let u = user("u1", "ann", Some("e1"));
    s.create(T, rt(), &u).await.unwrap();
    let stale = StoredResource {
        version: 7,
        ..u.clone()
    };
    assert_eq!(
        s.delete(T, rt(), &stale).await.unwrap_err(),
        StoreError::VersionConflict
    );
    let (r, calls) = count_calls(s.delete(T, rt(), &u)).await;
    r.unwrap();
    assert_eq!(calls, 1);
    assert_eq!(s.get(T, rt(), "u1").await.unwrap(), None);
    assert_eq!(s.list(T, rt(), q(None, 1, 10)).await.unwrap().total, 0);
    s.create(T, rt(), &user("u2", "ANN", None)).await.unwrap();
    let f = parse_filter("externalId eq \"e1\"").unwrap();
    assert_eq!(
        s.list(T, rt(), q(Some(&f), 1, 10)).await.unwrap().total,
        0,
        "no index entry outlives its resource"
    );
}

async fn indexed_filters_are_one_query(s: DynamoStore) {
    s.create(T, rt(), &user("u1", "Ann@X.com", Some("ext-A")))
        .await
        .unwrap();
    s.create(T, rt(), &user("u2", "bob@x.com", Some("ext-b")))
        .await
        .unwrap();
    for (filter, want) in [
        ("userName eq \"ann@x.COM\"", vec!["u1"]),
        ("USERNAME EQ \"BOB@X.COM\"", vec!["u2"]),
        ("userName eq \"nobody\"", vec![]),
        ("externalId eq \"ext-A\"", vec!["u1"]),
        ("externalId eq \"EXT-A\"", vec![]), // externalId is caseExact
        ("userName eq \"ann@x.com\" and active eq true", vec!["u1"]),
        ("userName eq \"ann@x.com\" and active eq false", vec![]),
        ("id eq \"u2\"", vec!["u2"]),
    ] {
        let f = parse_filter(filter).unwrap();
        let (page, calls) = count_calls(s.list(T, rt(), q(Some(&f), 1, 10))).await;
        let page = page.unwrap();
        assert_eq!(calls, 1, "{filter} is one call");
        assert_eq!(
            page.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            want,
            "{filter}"
        );
        assert_eq!(page.total, want.len());
    }
}

async fn unindexed_filters_are_evaluated_and_bounded(s: DynamoStore) {
    for i in 0..12 {
        let mut u = user(&format!("u{i:02}"), &format!("user{i}"), None);
        u.attrs.insert(
            "title".into(),
            json!(if i % 3 == 0 { "Eng" } else { "Ops" }),
        );
        s.create(T, rt(), &u).await.unwrap();
    }
    let f = parse_filter("title eq \"eng\" or userName eq \"user1\"").unwrap();
    let page = s.list(T, rt(), q(Some(&f), 1, 100)).await.unwrap();
    assert_eq!(page.total, 5);
    let page = s.list(T, rt(), q(Some(&f), 2, 2)).await.unwrap();
    assert_eq!((page.total, page.items.len()), (5, 2));
    let at_bound = ListQuery {
        max_scan: 12,
        ..q(Some(&f), 1, 10)
    };
    assert_eq!(
        s.list(T, rt(), at_bound).await.unwrap().total,
        5,
        "12 users, bound 12: allowed"
    );
    let past_bound = ListQuery {
        max_scan: 11,
        ..q(Some(&f), 1, 10)
    };
    assert!(
        matches!(
            s.list(T, rt(), past_bound).await,
            Err(StoreError::TooMany(_))
        ),
        "12 users, bound 11: tooMany"
    );
}

async fn unfiltered_paging_edges(s: DynamoStore) {
    for i in 0..7 {
        s.create(T, rt(), &user(&format!("u{i}"), &format!("n{i}"), None))
            .await
            .unwrap();
    }
    let all = s.list(T, rt(), q(None, 1, 100)).await.unwrap();
    assert_eq!(all.total, 7);
    let ids: Vec<String> = all.items.iter().map(|r| r.id.clone()).collect();
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let (p, calls) = count_calls(s.list(T, rt(), q(None, start, 3))).await;
        let p = p.unwrap();
        assert_eq!(p.total, 7);
        assert!(calls <= 3, "page at {start}: {calls} calls");
        seen.extend(p.items.into_iter().map(|r| r.id));
    }
    assert_eq!(seen, ids, "pages are disjoint and in order");
    let (p, calls) = count_calls(s.list(T, rt(), q(None, 1, 0))).await;
    assert_eq!(
        (p.unwrap().items.len(), calls),
        (0, 1),
        "count=0 reads only the total"
    );
    assert!(s
        .list(T, rt(), q(None, 8, 3))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(s
        .list(T, rt(), q(None, 500, 3))
        .await
        .unwrap()
        .items
        .is_empty());
}

scim_tests::store_tests!(
    create_get_roundtrip_verbatim,
    user_name_unique_case_insensitively,
    id_is_never_overwritten,
    tenants_are_isolated,
    replace_checks_version_and_moves_guard,
    delete_frees_name_and_uncounts,
    indexed_filters_are_one_query,
    unindexed_filters_are_evaluated_and_bounded,
    unfiltered_paging_edges,
);

/// scim-local reaches its embedded engine in process; `scim-admin` and the benchmark reach the same engine
/// over its HTTP listener. Both transports see the same table and the same conditional failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_engine_in_process_and_over_http_agree() {
    let inproc = scim_tests::fresh_store(scim_tests::Engine::Dynoxide).await;
    let http = scim_tests::dynoxide_over_http(inproc.table());
    let a = user("u-a", "alice", Some("x-a"));
    inproc.create(T, rt(), &a).await.unwrap();
    assert_eq!(
        http.get(T, rt(), "u-a").await.unwrap().unwrap().attrs,
        a.attrs,
        "written in process, read over HTTP"
    );
    let b = user("u-b", "Bob", None);
    http.create(T, rt(), &b).await.unwrap();
    assert_eq!(
        inproc.get(T, rt(), "u-b").await.unwrap().unwrap().attrs,
        b.attrs,
        "written over HTTP, read in process"
    );
    for s in [&inproc, &http] {
        let err = s
            .create(T, rt(), &user("u-c", "ALICE", None))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Uniqueness {
                attr: "userName".into(),
                value: "ALICE".into()
            }
        );
    }
    assert_eq!(inproc.list(T, rt(), q(None, 1, 10)).await.unwrap().total, 2);
}

scim_tests::both_engines!(
    in (events_move_dynoxide, events_move_moto), |engine| engine;
    the_change_events_move_out_of_the_table_once_and_nothing_is_lost,
    two_moves_at_once_and_an_append_keep_one_order,
);

/// A store of a table made before the events table existed: the change events' items in the table itself,
/// a log of `n` events for `tenant`, a checkpoint and a webhook position. Returns the store that sees the
/// table with a new, empty events table beside it (as a stack or data directory updated to this version).
async fn table_from_before_the_events_table(
    engine: scim_tests::Engine,
    tenant: &str,
    n: u64,
) -> DynamoStore {
    use scim_core::store::{Appended, DeliveryStore, EventLogStore};
    let base = scim_tests::fresh_store(engine).await;
    let old = base.clone().with_events_table(base.table());
    let ttl = now() + 86_400;
    let ids: Vec<String> = (1..=n).map(|i| format!("ev-{i}")).collect();
    let events: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                json!({"id": id, "type": "user.created"}).to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = events
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        old.log_append(tenant, 0, &refs, ttl).await.unwrap(),
        Appended::Written
    );
    // An expired event id of an earlier append (its TTL passed; not copied).
    assert_eq!(
        old.log_append(tenant, n, &[("ev-old", "{\"id\":\"ev-old\"}")], now() - 5)
            .await
            .unwrap(),
        Appended::Written
    );
    old.save_checkpoint("shard-1", "000123", false)
        .await
        .unwrap();
    old.save_webhook_position(tenant, 2).await.unwrap();
    let moved = base.with_events_table(format!("{}-v2", old.table()));
    moved.create_table_if_missing().await.unwrap();
    moved
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The keys of the change events' items in `table`.
async fn events_keys(engine: scim_tests::Engine, table: &str) -> Vec<(String, String)> {
    let client = scim_tests::sdk_client(engine);
    let mut out: Vec<(String, String)> = scim_tests::scan_table(&client, table)
        .await
        .into_iter()
        .filter_map(|i| {
            let pk = i["pk"].as_s().unwrap().clone();
            (scim_core::store::keys::is_events_key(&pk) || pk == "EVENTS#moved")
                .then(|| (pk, i["sk"].as_s().unwrap().clone()))
        })
        .collect();
    out.sort();
    out
}

async fn log_ids(s: &DynamoStore, tenant: &str) -> Vec<(u64, String)> {
    use scim_core::store::EventLogStore;
    let r = s.log_range(tenant, 0, false, 100, None).await.unwrap();
    r.items
        .into_iter()
        .map(|i| (i.order.unwrap(), i.id))
        .collect()
}

async fn the_change_events_move_out_of_the_table_once_and_nothing_is_lost(
    engine: scim_tests::Engine,
) {
    use scim_core::store::{DeliveryStore, EventLogStore};
    let s = table_from_before_the_events_table(engine, "acme", 3).await;
    let old_keys = events_keys(engine, s.table()).await;
    // 4 events and their ids, the head, the checkpoint, the webhook position.
    assert_eq!(old_keys.len(), 11, "{old_keys:?}");
    let want: Vec<(u64, String)> = (1..=4)
        .map(|i| {
            (
                i,
                if i == 4 {
                    "ev-old".into()
                } else {
                    format!("ev-{i}")
                },
            )
        })
        .collect();
    // Before the move every call reads where the items are: the table.
    assert_eq!(s.log_head("acme").await.unwrap(), 4);
    assert_eq!(log_ids(&s, "acme").await, want);
    assert!(events_keys(engine, s.events_table()).await.is_empty());

    let m = s.move_events().await.unwrap();
    // Everything but the expired event (its item and its id item).
    assert_eq!(m.copied, 9, "{m:?}");
    assert_eq!(m.cleaned, 0);
    let new_keys = events_keys(engine, s.events_table()).await;
    assert_eq!(
        new_keys.len(),
        10,
        "the 9 items and EVENTS#moved: {new_keys:?}"
    );
    // The same answers, now from the events table; the old items stay for an hour.
    assert_eq!(s.log_head("acme").await.unwrap(), 4);
    assert_eq!(log_ids(&s, "acme").await, want[..3].to_vec());
    assert_eq!(
        s.checkpoint("shard-1").await.unwrap().seq.as_deref(),
        Some("000123")
    );
    assert_eq!(s.webhook_position("acme").await.unwrap().after, 2);
    assert_eq!(events_keys(engine, s.table()).await, old_keys);

    // The log goes on from its head, in the events table only.
    let ttl = now() + 86_400;
    s.log_append("acme", 4, &[("ev-5", "{\"id\":\"ev-5\"}")], ttl)
        .await
        .unwrap();
    // A new process (nothing remembered) finds the move recorded.
    let fresh = DynamoStore::clone(&s).with_events_table(s.events_table().to_string());
    assert_eq!(fresh.log_head("acme").await.unwrap(), 5);
    assert_eq!(
        log_ids(&fresh, "acme").await.last(),
        Some(&(5, "ev-5".to_string()))
    );
    assert_eq!(
        events_keys(engine, s.table()).await,
        old_keys,
        "nothing new in the table"
    );

    // Again within the hour: nothing to do.
    assert_eq!(s.move_events().await.unwrap(), Default::default());
    // An hour later: the old items are deleted from the table, once.
    let later = now() + scim_core::store::dynamo::CLEAN_AFTER_SECS + 1;
    let c = s.move_events_at(later).await.unwrap();
    assert_eq!(c.cleaned, 11, "{c:?}");
    assert!(events_keys(engine, s.table()).await.is_empty());
    assert_eq!(s.move_events_at(later).await.unwrap(), Default::default());
    assert_eq!(s.log_head("acme").await.unwrap(), 5);
    assert_eq!(log_ids(&s, "acme").await.len(), 4);
}

async fn two_moves_at_once_and_an_append_keep_one_order(engine: scim_tests::Engine) {
    use scim_core::store::{Appended, EventLogStore, OffboardPhase, OffboardStore};
    let s = table_from_before_the_events_table(engine, "acme", 30).await;
    let a = s.clone().with_events_table(s.events_table().to_string());
    let b = s.clone().with_events_table(s.events_table().to_string());
    let (ra, rb) = tokio::join!(a.move_events(), b.move_events());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    // Each copied everything, or found the other's record and did nothing.
    assert!(
        [ra.copied, rb.copied].iter().all(|c| [0, 63].contains(c)) && ra.copied + rb.copied >= 63,
        "{ra:?} {rb:?}"
    );
    // One mover appends while the other copies again (a move cut short and repeated): the head never
    // goes back, and the log keeps one gap-free order.
    let ttl = now() + 86_400;
    // As if a move had been cut short before its record: a third process copies everything again.
    scim_tests::sdk_client(engine)
        .delete_item()
        .table_name(s.events_table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EVENTS#moved".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("#".into()))
        .send()
        .await
        .unwrap();
    let c = s.clone().with_events_table(s.events_table().to_string());
    let (appended, again) = tokio::join!(
        a.log_append("acme", 31, &[("ev-32", "{\"id\":\"ev-32\"}")], ttl),
        c.move_events()
    );
    assert_eq!(appended.unwrap(), Appended::Written);
    assert_eq!(again.unwrap().copied, 63);
    assert_eq!(b.log_head("acme").await.unwrap(), 32);
    let orders: Vec<u64> = log_ids(&b, "acme")
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(orders, (1..=32).filter(|o| *o != 31).collect::<Vec<_>>());

    // Offboarding before the old items are cleaned removes the tenant's change events in both tables.
    for phase in [
        OffboardPhase::Events,
        OffboardPhase::EventIds,
        OffboardPhase::EventsHead,
        OffboardPhase::Webhook,
    ] {
        for _ in 0..100 {
            if s.offboard_batch("acme", phase, 50).await.unwrap().exhausted {
                break;
            }
        }
    }
    let left = |keys: Vec<(String, String)>| {
        keys.into_iter()
            .filter(|(pk, sk)| pk.contains("acme") || sk == "acme")
            .collect::<Vec<_>>()
    };
    assert!(left(events_keys(engine, s.table()).await).is_empty());
    assert!(left(events_keys(engine, s.events_table()).await).is_empty());
}
