//! Offboarding end to end, on both engines: a tenant with users, groups and members, tokens, an OAuth
//! client with secrets, a WIF trust, change events, a webhook position and its audit trail is deleted
//! through the management API, its steps run to the end — in one go, or three calls at a time with a
//! fresh `Manager` each step — and a scan of the whole table finds nothing of it, while every item of
//! another tenant is byte for byte what it was. The status route reports it; the id can be created
//! again. A SCIM POST racing the delete leaves nothing behind either.

use aws_sdk_dynamodb::types::AttributeValue as AV;
use reqwest::Method;
use scim_core::manage::gate::TenantGate;
use scim_core::manage::{ManageSettings, Manager};
use scim_core::oauth::assertion::JwksSettings;
use scim_core::oauth::OAuthSettings;
use scim_core::store::dynamo::DynamoStore;
use scim_core::store::keys;
use scim_tests::urn::{GROUP, USER};
use scim_tests::{Engine, Resp, TestServer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

scim_tests::both_engines!(
    a_deleted_tenant_leaves_nothing_and_the_other_is_untouched,
    offboarding_resumes_after_every_small_step,
    a_post_racing_the_delete_leaves_nothing_behind,
    a_lagging_consumer_logs_nothing_of_an_offboarded_tenant,
    a_consumer_logs_nothing_of_a_tenant_being_deleted,
);

async fn server(engine: Engine) -> TestServer {
    let srv =
        TestServer::start_oauth(engine, OAuthSettings::default(), JwksSettings::default()).await;
    // The table's stream, before any write, so the consumer can make the tenants' events.
    srv.events_consumer()
        .ensure_stream()
        .await
        .expect("enable the table's stream");
    srv
}

/// A Manager of the test's own (as a scheduled function or another process would run steps): a gate
/// with no cache and a short grace, so the settle waits are short.
fn manager(store: &DynamoStore) -> Manager {
    let settings = ManageSettings {
        offboard_grace: Duration::from_millis(150),
        ..ManageSettings::default()
    };
    Manager::new(Arc::new(store.clone()), settings)
        .with_gate(Arc::new(TenantGate::new(Duration::ZERO, 100)))
}

async fn manage(srv: &TestServer, method: Method, path: &str, body: Option<&Value>) -> Resp {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rb = client
        .request(method, format!("{}/manage/v1{path}", srv.origin()))
        .bearer_auth(&srv.admin_token);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

fn code(r: &Resp) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

/// A tenant as a customer leaves it: `users` users, groups with members, a tenant token, a client with
/// two secrets, a WIF trust, its audit trail; returns its SCIM token.
async fn populate(srv: &TestServer, tenant: &str, users: usize) -> String {
    let r = manage(srv, Method::POST, "/tenants", Some(&json!({"id": tenant}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = manage(
        srv,
        Method::POST,
        &format!("/tenants/{tenant}/tokens"),
        Some(&json!({"label": "entra"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = srv.add_tenant_token(tenant, None).await;
    let c = manage(
        srv,
        Method::POST,
        &format!("/tenants/{tenant}/clients"),
        None,
    )
    .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let client = c.body["clientId"].as_str().unwrap().to_string();
    let r = manage(
        srv,
        Method::POST,
        &format!("/tenants/{tenant}/clients/{client}/secrets"),
        None,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let trust = json!({"issuer": "https://login.example.com/t", "subject": "s", "audience": "a", "jwksUrl": "https://login.example.com/keys"});
    let r = manage(
        srv,
        Method::PUT,
        &format!("/tenants/{tenant}/wif"),
        Some(&trust),
    )
    .await;
    assert!(r.status < 300, "{}", r.text);
    let base = srv.tenant_base(tenant);
    let mut ids = Vec::new();
    for i in 0..users {
        let u = json!({"schemas": [USER], "userName": format!("user{i}@{tenant}.example"), "externalId": format!("x{i}")});
        let r = srv
            .call_at(&base, &token, Method::POST, "/Users", Some(&u))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.id());
    }
    for g in 0..3 {
        let members: Vec<Value> = ids
            .iter()
            .skip(g)
            .step_by(3)
            .map(|id| json!({"value": id}))
            .collect();
        let body =
            json!({"schemas": [GROUP], "displayName": format!("Group {g}"), "members": members});
        let r = srv
            .call_at(&base, &token, Method::POST, "/Groups", Some(&body))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // An empty group too.
    let body = json!({"schemas": [GROUP], "displayName": "Nobody"});
    let r = srv
        .call_at(&base, &token, Method::POST, "/Groups", Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The webhook deliverer's position (it runs only in scim-local): the one item outside the prefix.
    put_webhook_position(&srv.store, tenant).await;
    token
}

async fn put_webhook_position(store: &DynamoStore, tenant: &str) {
    use scim_core::store::DeliveryStore;
    store.save_webhook_position(tenant, 1).await.unwrap();
}

type Row = (String, String, BTreeMap<String, String>);

/// Every item of the table and of the change events' table, in key order, each attribute as text.
async fn scan(srv: &TestServer) -> Vec<Row> {
    // A long timeout: moto reads a page of a large table slowly (the measurement's 240,000 items).
    let client = scim_tests::sdk_client_with_timeout(srv.engine, Duration::from_secs(300));
    let mut out = Vec::new();
    for table in [srv.store.table(), srv.store.events_table()] {
        scan_into(&client, table, &mut out).await;
    }
    out.sort();
    out
}

/// Every item of `table`, appended to `out`.
async fn scan_into(client: &aws_sdk_dynamodb::Client, table: &str, out: &mut Vec<Row>) {
    for item in scim_tests::scan_table(client, table).await {
        let text = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let attrs = item
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect();
        out.push((text(keys::PK), text(keys::SK), attrs));
    }
}

/// Whether `row` is an item `tenant` owns.
fn owned_by(row: &Row, tenant: &str) -> bool {
    let (pk, sk, attrs) = row;
    pk.starts_with(&format!("T#{tenant}#"))
        || (pk.starts_with("TOKEN#")
            && attrs.get("tenant") == Some(&format!("{:?}", AV::S(tenant.into()))))
        || ((pk == keys::TENANTS_PK || pk == keys::WEBHOOK_POSITIONS_PK) && sk == tenant)
}

fn items_of(rows: &[Row], tenant: &str) -> Vec<Row> {
    rows.iter()
        .filter(|r| owned_by(r, tenant))
        .cloned()
        .collect()
}

/// Run the server's stream consumer until it has nothing more: the tenants' events log items.
async fn make_events(srv: &TestServer) {
    let mut c = srv.events_consumer();
    for _ in 0..20 {
        if c.poll().await.expect("consumer poll") == 0 {
            break;
        }
    }
}

/// Both tenants populated, their events made; `gone` deleted through the API. Returns the other
/// tenant's items before.
/// `via_api`: the delete through the management API (whose server then also runs the steps in the
/// background, after its default 30 s grace), else through the test's own Manager (no other runner).
async fn delete_one_of_two(srv: &TestServer, users: usize, via_api: bool) -> Vec<Row> {
    populate(srv, "gone", users).await;
    populate(srv, "kept", 5).await;
    make_events(srv).await;
    let before = scan(srv).await;
    let mine = items_of(&before, "gone");
    for part in [
        "#User",
        "#Group",
        "#count",
        "#tokens",
        "#oauth",
        "#events",
        "#events#ids",
        "#events#head",
        "#audit",
        "#uniq#",
    ] {
        assert!(
            mine.iter().any(|(pk, _, _)| pk.contains(part)),
            "the tenant has no {part} item to delete"
        );
    }
    assert!(mine.iter().any(|(pk, _, _)| pk.starts_with("TOKEN#")));
    assert!(mine.iter().any(|(pk, _, _)| pk.ends_with("#members")));
    assert!(mine
        .iter()
        .any(|(pk, _, _)| pk == keys::WEBHOOK_POSITIONS_PK));
    if !via_api {
        let who = scim_core::manage::Principal("test".into());
        manager(&srv.store)
            .delete_tenant(&who, "gone")
            .await
            .unwrap();
        return items_of(&before, "kept");
    }
    let r = manage(srv, Method::DELETE, "/tenants/gone", None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let s = manage(srv, Method::GET, "/tenants/gone/deletion", None).await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["state"], "deleting");
    assert_eq!(s.body["phase"], "waiting");
    assert_eq!(s.body["itemsDeleted"], 0);
    items_of(&before, "kept")
}

async fn check_clean(srv: &TestServer, kept_before: &[Row]) -> Vec<Row> {
    let after = scan(srv).await;
    let left = items_of(&after, "gone");
    assert!(
        left.is_empty(),
        "items of the deleted tenant left: {:#?}",
        left.iter().map(|r| (&r.0, &r.1)).collect::<Vec<_>>()
    );
    assert_eq!(
        items_of(&after, "kept"),
        kept_before,
        "the other tenant's items changed"
    );
    after
}

async fn a_deleted_tenant_leaves_nothing_and_the_other_is_untouched(engine: Engine) {
    let srv = server(engine).await;
    assert_eq!(
        code(&manage(&srv, Method::GET, "/tenants/never/deletion", None).await),
        "tenant_not_found"
    );
    let kept = delete_one_of_two(&srv, 100, true).await;
    assert_eq!(
        code(&manage(&srv, Method::GET, "/tenants/kept/deletion", None).await),
        "tenant_not_deleting"
    );
    // Nothing is deleted before the settle wait has passed.
    let m = manager(&srv.store);
    let s = m.offboard_step("gone", 50).await.unwrap();
    assert_eq!(
        (s.state, s.phase, s.items_deleted),
        ("deleting", "waiting", 0)
    );
    let total = scim_core::store::measure(m.offboard_until("gone", None)).await;
    let s = total.0.unwrap();
    assert!(s.done(), "{s:?}");
    assert!(s.pass >= 2, "a clean pass ends it: {s:?}");
    assert!(s.items_deleted > 300, "{s:?}");
    let after = check_clean(&srv, &kept).await;
    // The receipt stays: who, when, how many; with a TTL.
    let receipt: Vec<&Row> = after.iter().filter(|r| r.0 == keys::OFFBOARD_PK).collect();
    assert_eq!(receipt.len(), 1, "{receipt:?}");
    assert!(receipt[0].1.starts_with("gone#"));
    assert!(receipt[0].2.contains_key("ttl"));
    let st = manage(&srv, Method::GET, "/tenants/gone/deletion", None).await;
    assert_eq!(st.status, 200, "{}", st.text);
    assert_eq!(st.body["state"], "done");
    assert_eq!(st.body["phase"], "done");
    assert_eq!(st.body["deletedBy"], "local-admin");
    assert_eq!(st.body["itemsDeleted"].as_u64(), Some(s.items_deleted));
    assert!(st.body["finished"].is_string() && st.body["started"].is_string());
    // Another step changes nothing.
    assert!(m.offboard_step("gone", 50).await.unwrap().done());
    // The tenant is gone, and its id may be taken again.
    assert_eq!(
        manage(&srv, Method::GET, "/tenants/gone", None)
            .await
            .status,
        404
    );
    let r = manage(&srv, Method::POST, "/tenants", Some(&json!({"id": "gone"}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        code(&manage(&srv, Method::GET, "/tenants/gone/deletion", None).await),
        "tenant_not_deleting"
    );
    println!(
        "offboarded {} items in {} calls ({:?})",
        s.items_deleted, total.1.calls, total.1
    );
}

async fn offboarding_resumes_after_every_small_step(engine: Engine) {
    let srv = server(engine).await;
    let kept = delete_one_of_two(&srv, 30, false).await;
    let mut steps = 0;
    let mut phases = Vec::new();
    loop {
        // A fresh Manager each time: nothing but the table carries the progress.
        let s = manager(&srv.store).offboard_step("gone", 3).await.unwrap();
        steps += 1;
        if phases.last() != Some(&s.phase) {
            phases.push(s.phase);
        }
        if s.done() {
            break;
        }
        if let Some(w) = s.wait {
            tokio::time::sleep(w).await;
        }
        assert!(steps < 2000, "no end in sight: {s:?}");
    }
    assert!(steps > 8, "{steps} steps");
    // The small phases may pass within one step of 3 calls; the big ones take several.
    for p in ["users", "groups", "done"] {
        assert!(phases.contains(&p), "{p} not seen in {phases:?}");
    }
    check_clean(&srv, &kept).await;
}

async fn a_post_racing_the_delete_leaves_nothing_behind(engine: Engine) {
    let trials = scim_tests::race_trials(300);
    let mut srv = TestServer::start(engine).await;
    let mut kept: Vec<Row> = Vec::new();
    for i in 0..trials {
        if engine == Engine::Moto && i % 25 == 0 && i > 0 {
            srv = TestServer::start(engine).await;
        }
        if kept.is_empty() || i % 25 == 0 {
            let t = srv.add_tenant("kept").await;
            let u = json!({"schemas": [USER], "userName": "stay"});
            srv.call_at(
                &srv.tenant_base("kept"),
                &t,
                Method::POST,
                "/Users",
                Some(&u),
            )
            .await;
            kept = items_of(&scan(&srv).await, "kept");
        }
        let tenant = format!("race{i}");
        let token = srv.add_tenant(&tenant).await;
        let base = srv.tenant_base(&tenant);
        let u = json!({"schemas": [USER], "userName": format!("late{i}"), "externalId": "e"});
        let post = srv.call_at(&base, &token, Method::POST, "/Users", Some(&u));
        // The delete through a Manager of the test's own (its short grace; the server's would wait its
        // default 30 s before the first batch, every trial).
        let m = manager(&srv.store);
        let who = scim_core::manage::Principal("test".into());
        let del = m.delete_tenant(&who, &tenant);
        let (p, d) = tokio::join!(post, del);
        assert!(d.is_ok(), "{d:?}");
        assert!(matches!(p.status, 201 | 403), "{} {}", p.status, p.text);
        let s = manager(&srv.store)
            .offboard_until(&tenant, None)
            .await
            .unwrap();
        assert!(s.done(), "{s:?}");
        let after = scan(&srv).await;
        let left = items_of(&after, &tenant);
        assert!(
            left.is_empty(),
            "trial {i} (POST {}): left {left:?}",
            p.status
        );
        assert_eq!(items_of(&after, "kept"), kept, "trial {i}");
    }
}

/// The events logged for `tenant` (their JSON), in order.
async fn logged_events(srv: &TestServer, tenant: &str) -> Vec<Value> {
    let pk = keys::events_pk(tenant);
    scan(srv)
        .await
        .into_iter()
        .filter(|(p, _, _)| *p == pk)
        .map(|(_, _, attrs)| {
            let ev = attrs.get("ev").expect("an event's JSON");
            // `S("…")`, as `scan` prints it.
            let text: String = serde_json::from_str(
                ev.strip_prefix("S(")
                    .and_then(|t| t.strip_suffix(')'))
                    .unwrap_or("null"),
            )
            .unwrap_or_default();
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The consumer lags beyond the whole deletion: the stream still holds the deletion's records when it
/// reads them. It logs nothing of the deleted tenant (whose partition stays empty), while it logs the
/// other tenants' events — one registered, one with a token alone and no register item (as tenants made
/// before the register) — and, once the id is taken again, the new tenant's events, not the old one's.
async fn a_lagging_consumer_logs_nothing_of_an_offboarded_tenant(engine: Engine) {
    let srv = server(engine).await;
    let kept = delete_one_of_two(&srv, 10, false).await;
    // A tenant with a token and no register item.
    let legacy = srv.add_tenant("legacy").await;
    srv.sdk()
        .delete_item()
        .table_name(srv.store.table())
        .key(keys::PK, AV::S(keys::TENANTS_PK.into()))
        .key(keys::SK, AV::S("legacy".into()))
        .send()
        .await
        .unwrap();
    let s = manager(&srv.store)
        .offboard_until("gone", None)
        .await
        .unwrap();
    assert!(s.done(), "{s:?}");
    check_clean(&srv, &kept).await;
    let kept_token = srv.add_tenant_token("kept", None).await;
    for (tenant, token) in [("kept", &kept_token), ("legacy", &legacy)] {
        let u = json!({"schemas": [USER], "userName": format!("after@{tenant}.example")});
        let r = srv
            .call_at(
                &srv.tenant_base(tenant),
                token,
                Method::POST,
                "/Users",
                Some(&u),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let kept_before = logged_events(&srv, "kept").await.len();
    // The consumer catches up: the deletion's records and the two new users.
    make_events(&srv).await;
    let left = items_of(&scan(&srv).await, "gone");
    assert!(
        left.is_empty(),
        "the lagging consumer logged events of the offboarded tenant: {:?}",
        left.iter().map(|r| (&r.0, &r.1)).collect::<Vec<_>>()
    );
    let kept_events = logged_events(&srv, "kept").await;
    assert_eq!(
        kept_events.len(),
        kept_before + 1,
        "{:?}",
        kinds(&kept_events)
    );
    assert_eq!(kept_events.last().unwrap()["type"], "user.created");
    let legacy_events = logged_events(&srv, "legacy").await;
    assert_eq!(kinds(&legacy_events), ["user.created"]);
    // The id taken again: its new events are logged (none of the old tenant's).
    let r = manage(&srv, Method::POST, "/tenants", Some(&json!({"id": "gone"}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = srv.add_tenant_token("gone", None).await;
    let u = json!({"schemas": [USER], "userName": "again@gone.example"});
    let r = srv
        .call_at(
            &srv.tenant_base("gone"),
            &token,
            Method::POST,
            "/Users",
            Some(&u),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    make_events(&srv).await;
    let again = logged_events(&srv, "gone").await;
    assert_eq!(kinds(&again), ["user.created"], "{again:?}");
    assert_eq!(again[0]["userName"], "again@gone.example");
}

/// The consumer reads the deletion's first records while the tenant is still `deleting` (its users
/// deleted, its events partition not yet): it logs none of them.
async fn a_consumer_logs_nothing_of_a_tenant_being_deleted(engine: Engine) {
    let srv = server(engine).await;
    delete_one_of_two(&srv, 10, false).await;
    let before = logged_events(&srv, "gone").await;
    assert!(!before.is_empty());
    let m = manager(&srv.store);
    let mut steps = 0;
    loop {
        let s = m.offboard_step("gone", 3).await.unwrap();
        if let Some(w) = s.wait {
            tokio::time::sleep(w).await;
        }
        if s.phase != "waiting" && s.phase != "users" && s.phase != "groups" {
            assert_eq!(s.state, "deleting");
            break;
        }
        steps += 1;
        assert!(steps < 500, "{s:?}");
    }
    // The users and groups are gone; the stream holds their REMOVE records.
    make_events(&srv).await;
    let after = logged_events(&srv, "gone").await;
    assert_eq!(
        kinds(&after),
        kinds(&before),
        "events logged for a tenant being deleted"
    );
    let s = m.offboard_until("gone", None).await.unwrap();
    assert!(s.done(), "{s:?}");
}

/// The measurement in docs/benchmark.md ("Offboarding"), not part of the normal run:
/// `SCIM_OFFBOARD_USERS=100000 cargo test -p scim-tests --release --test offboarding -- --ignored --nocapture`.
///
/// The tenant as a large customer leaves it: one user, ten groups (each with that user) and a token made
/// over HTTP; then from that user's own items (the user and its uniqueness guard, as the store wrote
/// them) `SCIM_OFFBOARD_USERS` users cloned in bulk (BatchWriteItem of 25, 4 at a time); one user in
/// five a member of one group (its member item and its `grp`); an events log of one event per ten users
/// (the first 8 through the store's `log_append`, the rest in bulk in the same shape, the head moved past
/// them). Then the deletion alone is timed, step by step (the default budget of 50 calls a step), each
/// step's calls and capacity from `store::measure`; the settle wait is waited out before the clock
/// starts. Printed: the totals and the cost of the users phase's steps by position (first, middle, last
/// tenth), which must be flat.
async fn measure_offboarding(engine: Engine) {
    let users: usize = std::env::var("SCIM_OFFBOARD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let srv = TestServer::start(engine).await;
    let token = srv.add_tenant("big").await;
    let base = srv.tenant_base("big");
    let t0 = std::time::Instant::now();
    let template =
        json!({"schemas": [USER], "userName": "tmpl-user@big.example", "externalId": "tmpl-ext"});
    let r = srv
        .call_at(&base, &token, Method::POST, "/Users", Some(&template))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let tmpl_id = r.id();
    let mut groups = Vec::new();
    for g in 0..10 {
        let body = json!({"schemas": [GROUP], "displayName": format!("Group {g}"), "members": [{"value": tmpl_id}]});
        let r = srv
            .call_at(&base, &token, Method::POST, "/Groups", Some(&body))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        groups.push(r.id());
    }
    // The events log: one event per ten users. The first few through the store (`log_append`); the rest
    // in bulk with the users, items of the same shape (moto copies the whole table for each transaction:
    // 10,000 events in transactions took it over half an hour), then the head moved past them.
    let events = (users / 10).max(8);
    let event = |e: usize| {
        let id = format!("ev-{e:08}");
        let json = json!({"id": id, "type": "user.created", "tenant": "big", "resourceId": format!("00000000-0000-4000-8000-{:012}", e * 10)}).to_string();
        (id, json)
    };
    let ttl = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
        + 7 * 86_400;
    {
        use scim_core::store::EventLogStore;
        let first: Vec<(String, String)> = (0..8).map(event).collect();
        let refs: Vec<(&str, &str)> = first
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        srv.store.log_append("big", 0, &refs, ttl).await.unwrap();
    }
    let event_items = (8..events).flat_map(|e| {
        let (id, json) = event(e);
        let order = e as u64 + 1;
        let mut ev = HashMap::new();
        ev.insert(keys::PK.to_string(), AV::S(keys::events_pk("big")));
        ev.insert(keys::SK.to_string(), AV::S(format!("{order:020}")));
        ev.insert("id".to_string(), AV::S(id.clone()));
        ev.insert("ev".to_string(), AV::S(json));
        ev.insert("ttl".to_string(), AV::N(ttl.to_string()));
        let mut guard = HashMap::new();
        guard.insert(keys::PK.to_string(), AV::S(keys::event_ids_pk("big")));
        guard.insert(keys::SK.to_string(), AV::S(id));
        guard.insert("o".to_string(), AV::N(order.to_string()));
        guard.insert("ttl".to_string(), AV::N(ttl.to_string()));
        [ev, guard]
    });
    // The tenant is marked `deleting` now, while the table is small: the delete is a transaction, and
    // moto copies the whole table for each (over 10 s at 240,000 items). Nothing is deleted before the
    // steps below; the bulk writes go around the SCIM gate. Through the test's own Manager (its short
    // grace): the server's would also run the steps in the background, beside the measured ones.
    let m = manager(&srv.store);
    let who = scim_core::manage::Principal("test".into());
    m.delete_tenant(&who, "big").await.unwrap();
    let (client, table) = (srv.sdk(), srv.store.table().to_string());
    let user_pk = keys::resource_pk("big", scim_core::schema::user_resource_type());
    let get = |pk: String, sk: String| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            client
                .get_item()
                .table_name(table)
                .key(keys::PK, AV::S(pk))
                .key(keys::SK, AV::S(sk))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .expect("the template's item")
        }
    };
    let user_item = get(user_pk, tmpl_id.clone()).await;
    let guard_item = get(
        keys::guard_pk(
            "big",
            scim_core::schema::user_resource_type(),
            "tmpl-user@big.example",
        ),
        keys::GUARD_SK.into(),
    )
    .await;
    // Item `i`: the template's with its id, userName and externalId replaced; in group `i % 10` if
    // `i % 5 == 0`.
    let clone = |item: &HashMap<String, AV>, i: usize| -> HashMap<String, AV> {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        item.iter()
            .filter(|(k, _)| k.as_str() != "grp")
            .map(|(k, v)| {
                let v = match v {
                    AV::S(text) => AV::S(
                        text.replace(&tmpl_id, &id)
                            .replace("tmpl-user", &format!("u{i}"))
                            .replace("tmpl-ext", &format!("x{i}")),
                    ),
                    other => other.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    };
    let member = |i: usize| i.is_multiple_of(5).then(|| groups[i % 10].clone());
    let writes: Vec<HashMap<String, AV>> = (1..users)
        .flat_map(|i| {
            let mut u = clone(&user_item, i);
            let mut out = vec![clone(&guard_item, i)];
            if let Some(g) = member(i) {
                u.insert("grp".into(), AV::Ss(vec![g.clone()]));
                let id = u[keys::SK].clone();
                let mut m = HashMap::new();
                m.insert(keys::PK.to_string(), AV::S(keys::members_pk("big", &g)));
                m.insert(keys::SK.to_string(), id.clone());
                m.insert("value".to_string(), id);
                out.push(m);
            }
            out.push(u);
            out
        })
        .collect();
    // The events log's items go to the change events' table, the rest to the table: chunks of one table.
    let event_items: Vec<HashMap<String, AV>> = event_items.collect();
    let written = writes.len() + event_items.len();
    let events_table = srv.store.events_table().to_string();
    let chunks: Vec<(String, Vec<HashMap<String, AV>>)> = writes
        .chunks(25)
        .map(|c| (table.clone(), c.to_vec()))
        .chain(
            event_items
                .chunks(25)
                .map(|c| (events_table.clone(), c.to_vec())),
        )
        .collect();
    let chunks = Arc::new(std::sync::Mutex::new(chunks));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, chunks) = (client.clone(), chunks.clone());
        workers.spawn(async move {
            loop {
                let Some((table, chunk)) = chunks.lock().unwrap().pop() else {
                    return;
                };
                let mut requests: Vec<aws_sdk_dynamodb::types::WriteRequest> = chunk
                    .into_iter()
                    .map(|item| {
                        let put = aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .unwrap();
                        aws_sdk_dynamodb::types::WriteRequest::builder()
                            .put_request(put)
                            .build()
                    })
                    .collect();
                for attempt in 0.. {
                    assert!(attempt < 50, "BatchWriteItem keeps leaving items");
                    let r = client
                        .batch_write_item()
                        .request_items(&table, requests.clone())
                        .send()
                        .await
                        .unwrap();
                    requests = r
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&table))
                        .unwrap_or_default();
                    if requests.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    // Each group's member count, as the store keeps it (`mcount`).
    let per_group = (1..users).filter(|i| member(*i).is_some()).count() / 10 + 1;
    for g in &groups {
        client
            .update_item()
            .table_name(&table)
            .key(
                keys::PK,
                AV::S(keys::resource_pk(
                    "big",
                    scim_core::schema::group_resource_type(),
                )),
            )
            .key(keys::SK, AV::S(g.clone()))
            .update_expression("SET mcount = :n")
            .expression_attribute_values(":n", AV::N(per_group.to_string()))
            .send()
            .await
            .unwrap();
    }
    // The head past the bulk's events, as `log_append` would have left it.
    client
        .update_item()
        .table_name(srv.store.events_table())
        .key(keys::PK, AV::S(keys::events_head_pk("big")))
        .key(keys::SK, AV::S(keys::GUARD_SK.into()))
        .update_expression("SET #n = :n")
        .expression_attribute_names("#n", "n")
        .expression_attribute_values(":n", AV::N(events.to_string()))
        .send()
        .await
        .unwrap();
    println!(
        "{engine:?}: {users} users, 10 groups, {} memberships, {events} events made ({written} items in bulk) in {:?}",
        per_group * 10,
        t0.elapsed()
    );
    // Every item the tenant holds, counted (not on moto: a Scan of 240,000 items takes it 11 minutes).
    if engine == Engine::Dynoxide {
        let present = items_of(&scan(&srv).await, "big").len();
        println!("{engine:?}: the tenant holds {present} items");
    }
    // The settle wait (from the delete, before the bulk) is not the deletion's cost: it is over by now.
    tokio::time::sleep(m.offboard_settle()).await;
    let t1 = std::time::Instant::now();
    let mut total = scim_core::store::Usage::default();
    let mut waited = Duration::ZERO;
    // The users phase's steps: (time, calls, write units, items).
    let mut user_steps: Vec<(Duration, u32, f64, u64)> = Vec::new();
    let mut before = 0;
    let mut phase = "users";
    let s = loop {
        let step = std::time::Instant::now();
        let (s, usage) = scim_core::store::measure(
            m.offboard_step("big", scim_core::manage::offboard::DEFAULT_BUDGET),
        )
        .await;
        let s = s.unwrap();
        let took = step.elapsed();
        total.calls += usage.calls;
        total.read_units += usage.read_units;
        total.write_units += usage.write_units;
        if s.pass == 1 && phase == "users" {
            user_steps.push((
                took,
                usage.calls,
                usage.write_units,
                s.items_deleted - before,
            ));
        }
        before = s.items_deleted;
        phase = s.phase;
        if s.done() {
            break s;
        }
        if let Some(w) = s.wait {
            waited += w;
            tokio::time::sleep(w).await;
        }
    };
    println!(
        "{engine:?}: offboarded {users} users ({} items, {} passes) in {:?} (of which settle waits {:?}): {} calls, {:.1} RCU, {:.1} WCU",
        s.items_deleted,
        s.pass,
        t1.elapsed(),
        waited,
        total.calls,
        total.read_units,
        total.write_units
    );
    let tenth = (user_steps.len() / 10).max(1);
    for (name, part) in [
        ("first", &user_steps[..tenth.min(user_steps.len())]),
        (
            "middle",
            &user_steps[(user_steps.len() / 2).saturating_sub(tenth / 2)..]
                [..tenth.min(user_steps.len() - (user_steps.len() / 2).saturating_sub(tenth / 2))],
        ),
        (
            "last",
            &user_steps[user_steps.len().saturating_sub(tenth)..],
        ),
    ] {
        let n = part.len().max(1) as f64;
        let items = part.iter().map(|p| p.3 as f64).sum::<f64>().max(1.0);
        let ms = part.iter().map(|p| p.0.as_secs_f64() * 1000.0).sum::<f64>();
        let calls = part.iter().map(|p| p.1 as f64).sum::<f64>();
        let wcu = part.iter().map(|p| p.2).sum::<f64>();
        println!(
            "{engine:?}: {name} tenth of the {} users-phase steps ({} steps, {items:.0} items): {:.1} calls and {:.0} items a step; {:.3} ms, {:.3} calls, {:.2} WCU an item",
            user_steps.len(),
            part.len(),
            calls / n,
            items / n,
            ms / items,
            calls / items,
            wcu / items
        );
    }
    let left = items_of(&scan(&srv).await, "big");
    assert!(left.is_empty(), "{} items left", left.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement (docs/benchmark.md): minutes on moto"]
async fn measure_offboarding_moto() {
    measure_offboarding(Engine::Moto).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement (docs/benchmark.md)"]
async fn measure_offboarding_dynoxide() {
    measure_offboarding(Engine::Dynoxide).await
}
