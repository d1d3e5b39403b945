//! The local webhook deliverer (docs/events.md, "Webhook") over real sockets, on both engines: a receiver
//! server in the test answers as each test needs. One tenant's refused event never delays another's; a
//! poison event is parked after the documented attempts, shown to the operator, kept, and the tenant's
//! later events wait behind it until it is accepted; redirects are failures, never followed; the signature
//! covers the event's id and type.

use scim_tests::{Engine, TestServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

scim_tests::both_engines!(
    |engine| scim_tests::TestServer::start_events(engine).await;
    a_refused_tenant_does_not_delay_others_and_its_poison_event_is_parked,
    redirects_are_failures_and_never_followed,
    the_signature_covers_the_event_id_and_type,
    a_parked_event_outlives_the_log_and_a_restart_delivers_it_first,
);

const SECRET: &str = "whsec-test-0123456789abcdef";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Seen {
    headers: axum::http::HeaderMap,
    body: String,
    event: Value,
    /// What the receiver answered.
    status: u16,
    at: Instant,
}

impl Seen {
    fn id(&self) -> &str {
        self.event["id"].as_str().unwrap_or("")
    }
    fn tenant(&self) -> &str {
        self.event["tenant"].as_str().unwrap_or("")
    }
}

type Answer = Arc<dyn Fn(&Value, usize) -> axum::response::Response + Send + Sync>;

/// A receiver at `http://127.0.0.1:<port>/hook` answering each event with `answer(event, earlier attempts
/// of that id)`; every other path answers 200 and is counted in the second list.
async fn receiver(answer: Answer) -> (String, Arc<Mutex<Vec<Seen>>>, Arc<Mutex<Vec<String>>>) {
    use axum::response::IntoResponse;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let other: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, o) = (seen.clone(), other.clone());
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (seen, answer) = (s.clone(), answer.clone());
                async move {
                    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let before = seen
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|x| x.event["id"] == event["id"])
                        .count();
                    let resp = answer(&event, before);
                    let status = resp.status().as_u16();
                    seen.lock().unwrap().push(Seen {
                        headers,
                        body,
                        event,
                        status,
                        at: Instant::now(),
                    });
                    resp
                }
            }),
        )
        .fallback(move |uri: axum::http::Uri| {
            let o = o.clone();
            async move {
                o.lock().unwrap().push(uri.to_string());
                axum::http::StatusCode::OK.into_response()
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen, other)
}

fn config(url: String) -> scim_local::delivery::webhook::WebhookConfig {
    scim_local::delivery::webhook::WebhookConfig {
        url,
        secret: SECRET.into(),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        park_after: 3,
        parked_retry: Duration::from_millis(1500),
        ..Default::default()
    }
}

/// Start the server's consumer (polling every 50 ms) and the webhook deliverer with `hook`.
async fn start(
    s: &TestServer,
    hook: scim_local::delivery::webhook::WebhookConfig,
) -> Option<Arc<scim_local::delivery::webhook::Status>> {
    let cfg = scim_core::events::EventsConfig {
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let endpoint = scim_tests::endpoint(s.engine);
    let ev = scim_local::delivery::start(
        &s.store,
        &endpoint,
        s.engine == Engine::Moto,
        &cfg,
        Some(hook),
    )
    .await
    .expect("start events");
    ev.webhook
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true})
}

async fn create_at(s: &TestServer, tenant: &str, token: &str, name: &str) -> String {
    let r = s
        .call_at(
            &s.tenant_base(tenant),
            token,
            reqwest::Method::POST,
            "/Users",
            Some(&user(name)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

/// Wait up to `secs` for `cond` over what the receiver saw.
async fn wait_for(
    seen: &Arc<Mutex<Vec<Seen>>>,
    secs: u64,
    what: &str,
    cond: impl Fn(&[Seen]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond(&seen.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            summary(&seen.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn summary(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|x| format!("{} {} {} {}", x.tenant(), x.id(), x.event["type"], x.status))
        .collect()
}

fn accepted_of(seen: &[Seen], tenant: &str) -> Vec<Value> {
    seen.iter()
        .filter(|x| x.tenant() == tenant && x.status < 300)
        .map(|x| x.event.clone())
        .collect()
}

/// The operator page and its JSON, served on a socket with the deliverer's status (as `scim-local` does).
async fn operator_page(status: Arc<scim_local::delivery::webhook::Status>) -> (String, String) {
    let token = scim_core::auth::generate_token();
    let auth = Arc::new(scim_local::admin::AdminAuth::new(&token).unwrap());
    let app = scim_local::admin::router_with_webhook(
        Arc::new(scim_core::metrics::Metrics::default()),
        auth,
        scim_local::admin::AdminConfig::new(std::time::Duration::from_secs(30)),
        Some(status),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, token)
}

/// acme's receiver refuses acme's events (413, as a body limit does) while globex's arrive within a
/// second; acme's first event is parked after 3 attempts, shown on the operator page (id, type, attempts,
/// the failure in words, no personal data) and kept in the table; acme's later event waits behind it (the
/// documented rule: the tenant stops at its parked event); once the receiver accepts again, the parked
/// retry delivers acme's events in order.
async fn a_refused_tenant_does_not_delay_others_and_its_poison_event_is_parked(s: TestServer) {
    let acme_token = s.add_tenant("acme").await;
    let globex_token = s.add_tenant("globex").await;
    let refuse = Arc::new(AtomicBool::new(true));
    let r = refuse.clone();
    let answer: Answer = Arc::new(move |ev: &Value, _| {
        use axum::response::IntoResponse;
        if ev["tenant"] == "acme" && r.load(Ordering::SeqCst) {
            axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response()
        } else {
            axum::http::StatusCode::NO_CONTENT.into_response()
        }
    });
    let (url, seen, _) = receiver(answer).await;
    let status = start(&s, config(url)).await.expect("the webhook's status");

    create_at(&s, "acme", &acme_token, "ann@acme.example").await;
    wait_for(&seen, 20, "acme's first refusal", |v| {
        v.iter().any(|x| x.tenant() == "acme")
    })
    .await;
    let poison = seen
        .lock()
        .unwrap()
        .iter()
        .find(|x| x.tenant() == "acme")
        .unwrap()
        .id()
        .to_string();

    // globex's events arrive promptly, each, while acme's are refused.
    for i in 0..3 {
        let written = Instant::now();
        create_at(&s, "globex", &globex_token, &format!("g{i}@globex.example")).await;
        let name = format!("g{i}@globex.example");
        wait_for(&seen, 20, "globex's event", |v| {
            v.iter()
                .any(|x| x.event["userName"] == name.as_str() && x.status == 204)
        })
        .await;
        let at = seen
            .lock()
            .unwrap()
            .iter()
            .find(|x| x.event["userName"] == name.as_str())
            .unwrap()
            .at;
        assert!(
            at.duration_since(written) < Duration::from_secs(2),
            "globex's event {i} took {:?}",
            at.duration_since(written)
        );
    }

    // Parked after exactly 3 attempts, shown to the operator.
    let deadline = Instant::now() + Duration::from_secs(20);
    let trouble = loop {
        if let Some(t) = status
            .troubles()
            .into_iter()
            .find(|t| t.tenant == "acme" && t.parked)
        {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "acme's event was never parked: {:?}",
            status.troubles()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let attempts = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|x| x.id() == poison)
        .count();
    assert_eq!(
        (
            trouble.event_id.as_str(),
            trouble.kind.as_str(),
            trouble.attempts,
            attempts
        ),
        (poison.as_str(), "user.created", 3, 3)
    );
    assert!(trouble.last_error.contains("413"), "{}", trouble.last_error);

    let (origin, token) = operator_page(status.clone()).await;
    let client = reqwest::Client::new();
    let j: Value = client
        .get(format!("{origin}/admin/api/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = j["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"] == "acme")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (
            row["eventId"].as_str(),
            row["type"].as_str(),
            row["parked"].as_bool()
        ),
        (Some(poison.as_str()), Some("user.created"), Some(true)),
        "{j}"
    );
    assert!(
        row["lastError"]
            .as_str()
            .unwrap()
            .contains("413 Payload Too Large"),
        "{j}"
    );
    let page = client
        .get(format!("{origin}/admin"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Webhook")
            && page.contains(&poison)
            && page.contains("413 Payload Too Large"),
        "{page}"
    );
    assert!(
        !page.contains("ann@acme.example") && !j.to_string().contains("ann@acme.example"),
        "personal data on the page"
    );
    // Unauthenticated: nothing.
    let r = client
        .get(format!("{origin}/admin/api/webhook"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Kept: the tenant's position item holds the parked event (deliverable after the log's retention).
    let item = s
        .sdk()
        .get_item()
        .table_name(s.store.events_table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("EVENTS#webhook".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("acme".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["parkedId"].as_s().unwrap(), &poison);
    let kept: Value = serde_json::from_str(item["parkedEvent"].as_s().unwrap()).unwrap();
    assert_eq!(kept["id"], poison.as_str());

    // acme's later event waits behind the parked one (never skipped, never reordered) …
    create_at(&s, "acme", &acme_token, "bob@acme.example").await;
    create_at(&s, "globex", &globex_token, "g9@globex.example").await;
    wait_for(&seen, 20, "globex's later event", |v| {
        v.iter().any(|x| x.event["userName"] == "g9@globex.example")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|x| x.event["userName"] == "bob@acme.example"),
        "acme's later event passed the parked one"
    );

    // … until the receiver accepts again: the parked retry delivers it, then the rest, in order.
    refuse.store(false, Ordering::SeqCst);
    wait_for(
        &seen,
        20,
        "acme's events after the receiver recovered",
        |v| accepted_of(v, "acme").len() >= 2,
    )
    .await;
    let acme: Vec<String> = accepted_of(&seen.lock().unwrap(), "acme")
        .iter()
        .map(|e| e["userName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(acme, ["ann@acme.example", "bob@acme.example"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while status.troubles().iter().any(|t| t.tenant == "acme") {
        assert!(
            Instant::now() < deadline,
            "acme still in trouble: {:?}",
            status.troubles()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every globex event was accepted exactly once.
    let globex = accepted_of(&seen.lock().unwrap(), "globex");
    assert_eq!(globex.len(), 4, "{globex:#?}");
}

/// A parked event is kept with its JSON: after the log no longer holds it (its retention passed) and the
/// server restarts, the new deliverer reads the parked event from the table, tries it at once (not after
/// the parked retry), and then delivers the tenant's later events in order.
async fn a_parked_event_outlives_the_log_and_a_restart_delivers_it_first(s: TestServer) {
    use aws_sdk_dynamodb::types::AttributeValue as AV;
    let acme = s.add_tenant("acme").await;
    let refuse = Arc::new(AtomicBool::new(true));
    let r = refuse.clone();
    let answer: Answer = Arc::new(move |_: &Value, _| {
        use axum::response::IntoResponse;
        match r.load(Ordering::SeqCst) {
            true => axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            false => axum::http::StatusCode::NO_CONTENT.into_response(),
        }
    });
    let (url, seen, _) = receiver(answer).await;
    // The first server's deliverer: parks after 3 attempts and would retry only in an hour.
    let hook = scim_local::delivery::webhook::WebhookConfig {
        parked_retry: Duration::from_secs(3600),
        ..config(url.clone())
    };
    let status = start(&s, hook.clone()).await.expect("status");
    create_at(&s, "acme", &acme, "ann@acme.example").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !status.troubles().iter().any(|t| t.parked) {
        assert!(
            Instant::now() < deadline,
            "never parked: {:?}",
            status.troubles()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let poison = status.troubles()[0].event_id.clone();
    create_at(&s, "acme", &acme, "bob@acme.example").await;
    // The log's copy of the parked event expires (deleted here, as the TTL sweep would).
    let log = scim_core::events::EventLog::new(&s.store, Duration::from_secs(3600));
    let page = log.read("acme", 0, 10).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut page = page;
    while page.events.len() < 2 {
        assert!(Instant::now() < deadline, "bob's event was never logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
        page = log.read("acme", 0, 10).await.unwrap();
    }
    let order = page
        .events
        .iter()
        .find(|(_, e)| e["id"] == poison.as_str())
        .map(|(o, _)| *o)
        .unwrap();
    s.sdk()
        .delete_item()
        .table_name(s.store.events_table())
        .key("pk", AV::S("T#acme#events".into()))
        .key("sk", AV::S(format!("{order:020}")))
        .send()
        .await
        .unwrap();
    assert!(log
        .read("acme", 0, 10)
        .await
        .unwrap()
        .events
        .iter()
        .all(|(_, e)| e["id"] != poison.as_str()));

    // A restarted server: a new deliverer on the same table, the receiver accepting again.
    refuse.store(false, Ordering::SeqCst);
    let wake = scim_local::delivery::webhook::Wake {
        notify: Arc::default(),
        tenants: Arc::default(),
    };
    let restarted = Arc::new(scim_local::delivery::webhook::Status::default());
    tokio::spawn(scim_local::delivery::webhook::deliver(
        s.store.clone(),
        log,
        hook,
        wake,
        restarted.clone(),
    ));
    wait_for(&seen, 10, "acme's two events", |v| {
        accepted_of(v, "acme").len() >= 2
    })
    .await;
    let got: Vec<Value> = accepted_of(&seen.lock().unwrap(), "acme");
    assert_eq!(got[0]["id"], poison.as_str(), "the parked event first");
    assert_eq!(
        got[0]["userName"], "ann@acme.example",
        "delivered whole, from the parked copy"
    );
    assert_eq!(got[1]["userName"], "bob@acme.example");
    assert_eq!(got.len(), 2);
}

/// A 302 to a page answering 200 is not a delivery, and a 307 naming another host never gets the
/// signed event re-sent there: both are refusals, retried until the receiver itself answers 2xx.
async fn redirects_are_failures_and_never_followed(s: TestServer) {
    let (elsewhere, elsewhere_seen, elsewhere_other) = receiver(Arc::new(|_: &Value, _| {
        use axum::response::IntoResponse;
        axum::http::StatusCode::NO_CONTENT.into_response()
    }))
    .await;
    let answer: Answer = Arc::new(move |_: &Value, before: usize| {
        use axum::response::IntoResponse;
        match before {
            0 | 1 => (axum::http::StatusCode::FOUND, [("location", "/landing")]).into_response(),
            2 | 3 => (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", elsewhere.clone())],
            )
                .into_response(),
            _ => axum::http::StatusCode::NO_CONTENT.into_response(),
        }
    });
    let (url, seen, landing) = receiver(answer).await;
    let mut hook = config(url);
    hook.park_after = 10;
    let status = start(&s, hook).await.expect("status");
    s.create_user(&user("ann@contoso.example")).await;
    // In between, the failure is told as a redirect.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = status.troubles().first() {
            assert!(t.last_error.contains("redirect") && !t.parked, "{t:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no refusal recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for(&seen, 20, "the event accepted after the redirects", |v| {
        v.iter().any(|x| x.status == 204)
    })
    .await;
    let v = seen.lock().unwrap().clone();
    let statuses: Vec<u16> = v.iter().map(|x| x.status).collect();
    assert_eq!(statuses, [302, 302, 307, 307, 204], "{:#?}", summary(&v));
    assert!(
        v.windows(2).all(|w| w[0].id() == w[1].id()),
        "the same event each time"
    );
    assert!(
        landing.lock().unwrap().is_empty(),
        "the 302 was followed: {:?}",
        landing.lock().unwrap()
    );
    assert!(
        elsewhere_seen.lock().unwrap().is_empty() && elsewhere_other.lock().unwrap().is_empty(),
        "the 307 was followed"
    );
}

/// A receiver following docs/events.md (the harness's [`scim_tests::webhook_signature_ok`]).
fn verify(secret: &str, signature: &str, id: &str, kind: &str, body: &str) -> bool {
    scim_tests::webhook_signature_ok(secret, signature, id, kind, body)
}

/// The documented recipe accepts what the deliverer sends; the same signature with another event id or
/// type (headers a receiver routes on), another body or another secret is refused.
async fn the_signature_covers_the_event_id_and_type(s: TestServer) {
    let (url, seen, _) = receiver(Arc::new(|_: &Value, _| {
        use axum::response::IntoResponse;
        axum::http::StatusCode::NO_CONTENT.into_response()
    }))
    .await;
    start(&s, config(url)).await;
    let u = s.create_user(&user("ann@contoso.example")).await;
    let r = s.delete(&format!("/Users/{u}")).await;
    assert_eq!(r.status, 204);
    wait_for(&seen, 20, "two events", |v| v.len() >= 2).await;
    let v = seen.lock().unwrap().clone();
    for x in &v {
        let h = |n: &str| {
            x.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (sig, id, kind) = (
            h("scim-signature"),
            h("scim-event-id"),
            h("scim-event-type"),
        );
        assert_eq!(
            (id.as_str(), kind.as_str()),
            (x.id(), x.event["type"].as_str().unwrap())
        );
        assert!(
            verify(SECRET, &sig, &id, &kind, &x.body),
            "the documented recipe failed: {sig}"
        );
        let other_id = format!("{id}0");
        assert!(
            !verify(SECRET, &sig, &other_id, &kind, &x.body),
            "a changed id verified"
        );
        for other_kind in ["user.deleted", "user.created", "user.deactivated"]
            .iter()
            .filter(|k| **k != kind)
        {
            assert!(
                !verify(SECRET, &sig, &id, other_kind, &x.body),
                "a changed type verified"
            );
        }
        assert!(
            !verify(SECRET, &sig, &id, &kind, &x.body.replace("ann", "bob")),
            "a changed body verified"
        );
        assert!(!verify("another-secret", &sig, &id, &kind, &x.body));
    }
    // The ids are the events', and the other event's signature does not fit this one.
    let h = |x: &Seen, n: &str| {
        x.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(!verify(
        SECRET,
        &h(&v[0], "scim-signature"),
        v[1].id(),
        &h(&v[1], "scim-event-type"),
        &v[0].body
    ));
}
