//! Operations, on both engines: an Entra-like sequence with failing requests, counted per tenant in
//! process (the admin JSON), written as CloudWatch embedded-metric lines (parsed and checked), with failed
//! requests kept without tokens or personal data; the operator API's own credential.

use reqwest::Method;
use scim_tests::{engine_tests, patch_body, TestServer};
use serde_json::{json, Value};

const USER_NAME: &str = "ann.lopez@contoso.com";

/// The requests of one provisioning cycle for tenant `acme`, four of them failing; returns acme's token.
async fn entra_cycle(srv: &TestServer) -> String {
    let token = srv.add_tenant("acme").await;
    let base = srv.tenant_base("acme");
    let call = |m: Method, p: &str, b: Option<Value>| {
        let (base, token) = (base.clone(), token.clone());
        let p = p.to_string();
        async move { srv.call_at(&base, &token, m, &p, b.as_ref()).await }
    };
    // Test Connection, then match-then-create.
    assert_eq!(call(Method::GET, "/Users?filter=userName+eq+%22a1b2c3d4-0000%22", None).await.status, 200);
    let created = call(Method::POST, "/Users", Some(json!({"userName": USER_NAME, "externalId": "e-1"}))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.id();
    // A second create of the same user: 409 uniqueness (its detail quotes the userName).
    let dup = call(Method::POST, "/Users", Some(json!({"userName": USER_NAME}))).await;
    assert_eq!((dup.status, dup.body["scimType"].as_str()), (409, Some("uniqueness")), "{}", dup.text);
    assert!(dup.text.contains(USER_NAME), "the client's own answer quotes the value: {}", dup.text);
    // A filter Entra would never send: 400 invalidFilter (the query carries the user name).
    let bad = call(Method::GET, &format!("/Users?filter=userName+xx+%22{}%22", USER_NAME.replace('@', "%40")), None).await;
    assert_eq!((bad.status, bad.body["scimType"].as_str()), (400, Some("invalidFilter")), "{}", bad.text);
    assert_eq!(call(Method::GET, "/Users/0000-no-such-user", None).await.status, 404);
    let disable = patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(call(Method::PATCH, &format!("/Users/{id}"), Some(disable)).await.status, 200);
    // A revoked or mistyped credential.
    let wrong = srv.call_at(&base, "not-the-token-0123456789abcdef", Method::GET, "/Users", None).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(call(Method::GET, &format!("/Users/{id}"), None).await.status, 200);
    token
}

async fn an_entra_cycle_is_counted_for_its_tenant(srv: TestServer) {
    let token = entra_cycle(&srv).await;
    // The base URL's directory, and a tenant nobody authenticated for.
    assert_eq!(srv.get("/Users").await.status, 200);
    let ghost = srv.call_at(&srv.tenant_base("ghost"), "nope-0123456789abcdef0123", Method::GET, "/Users", None).await;
    assert_eq!(ghost.status, 401);

    let (status, acme) = srv.admin_json("/admin/api/tenants/acme").await;
    assert_eq!(status, 200, "{acme}");
    for window in ["total", "last_hour", "last_5_minutes"] {
        let c = &acme[window];
        assert_eq!(
            (c["requests"].as_u64(), c["failures"].as_u64(), c["client_errors"].as_u64(), c["server_errors"].as_u64(), c["auth_failures"].as_u64(), c["throttles"].as_u64()),
            (Some(8), Some(4), Some(4), Some(0), Some(1), Some(0)),
            "{window}: {c}"
        );
    }
    assert_eq!(acme["latency_last_hour"]["samples"], 8);
    let (p50, p99) = (acme["latency_last_hour"]["p50_ms"].as_f64().unwrap(), acme["latency_last_hour"]["p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p99, "{p50} {p99}");
    let mut kinds: Vec<(u64, Option<&str>, u64)> =
        acme["failures_by_kind"].as_array().unwrap().iter().map(|k| (k["status"].as_u64().unwrap(), k["scimType"].as_str(), k["count"].as_u64().unwrap())).collect();
    kinds.sort();
    assert_eq!(kinds, vec![(400, Some("invalidFilter"), 1), (401, None, 1), (404, None, 1), (409, Some("uniqueness"), 1)]);
    let minutes = acme["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert_eq!(minutes.iter().map(|m| m["counts"]["requests"].as_u64().unwrap()).sum::<u64>(), 8);

    // The last failures, newest first: method, path without query, status, scimType, a redacted detail.
    let failures = acme["last_failures"].as_array().unwrap();
    let seen: Vec<(&str, u64)> = failures.iter().map(|f| (f["method"].as_str().unwrap(), f["status"].as_u64().unwrap())).collect();
    assert_eq!(seen, vec![("GET", 401), ("GET", 404), ("GET", 400), ("POST", 409)]);
    assert_eq!(failures[2]["path"], "/acme/scim/v2/Users");
    assert_eq!(failures[1]["path"], "/acme/scim/v2/Users/0000-no-such-user");
    assert!(failures[2]["detail"].as_str().unwrap().starts_with("Invalid filter"), "{}", failures[2]);
    assert!(failures[3]["detail"].as_str().unwrap().starts_with("userName \"…\" is already in use"), "{}", failures[3]);
    let kept = acme.to_string();
    for secret in [USER_NAME, "ann.lopez", "contoso", token.as_str(), srv.token.as_str(), "not-the-token"] {
        assert!(!kept.contains(secret), "the admin JSON holds {secret:?}: {kept}");
    }

    let (_, overview) = srv.admin_json("/admin/api/overview").await;
    let names: Vec<&str> = overview["tenants"].as_array().unwrap().iter().map(|t| t["tenant"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["acme", "default", "(unattributed)"], "{overview}");
    assert_eq!(overview["all"]["total"]["requests"], 10);
    assert_eq!(overview["all"]["total"]["failures"], 5);
    let (status, _) = srv.admin_json("/admin/api/tenants/ghost").await;
    assert_eq!(status, 404, "a tenant nobody authenticated for is not minted");
}

/// The EMF lines CloudWatch would read: valid JSON, every metric a root member, every dimension set
/// naming root members, per-tenant and total sets, figures that add up.
async fn every_request_writes_one_metric_line(srv: TestServer) {
    let token = entra_cycle(&srv).await;
    let ghost = srv.call_at(&srv.tenant_base("ghost"), "nope-0123456789abcdef0123", Method::GET, "/Users", None).await;
    assert_eq!(ghost.status, 401);
    let lines = srv.metrics.emf().expect("memory EMF sink").lines();
    assert_eq!(lines.len(), 9);
    let docs: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    for (line, v) in lines.iter().zip(&docs) {
        assert!(!line.contains('\n'));
        for secret in [USER_NAME, "ann.lopez", "contoso", token.as_str(), "not-the-token", "nope-0123"] {
            assert!(!line.contains(secret), "{secret:?} in {line}");
        }
        assert!(v["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], "ScimTest");
            for m in d["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m} is no root number in {line}");
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(v[dim.as_str().unwrap()].is_string(), "{dim} is no root string in {line}");
                }
            }
        }
    }
    let acme: Vec<&Value> = docs.iter().filter(|v| v["tenant"] == "acme").collect();
    assert_eq!(acme.len(), 8);
    let sum = |name: &str| acme.iter().map(|v| v[name].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("Requests"), sum("Failures"), sum("AuthFailures"), sum("ServerErrors"), sum("Throttles")), (8, 4, 1, 0, 0));
    assert!(acme.iter().all(|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([["tenant"], []])));
    let dup = acme.iter().find(|v| v["status"] == 409).unwrap();
    assert_eq!((dup["kind"].as_str(), dup["scimType"].as_str(), dup["method"].as_str()), (Some("409 uniqueness"), Some("uniqueness"), Some("POST")));
    assert_eq!(dup["_aws"]["CloudWatchMetrics"][1]["Dimensions"], json!([["tenant", "kind"], ["kind"]]));
    assert!(acme.iter().all(|v| v["Latency"].as_f64().unwrap() > 0.0));
    let unattributed = docs.iter().find(|v| v["tenant"] == "(unattributed)").unwrap();
    assert_eq!(unattributed["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    assert_eq!(unattributed["AuthFailures"], 1);
}

/// The operator API and page want the admin token — not the SCIM token — and the SCIM API refuses it.
async fn the_operator_pages_have_their_own_credential(srv: TestServer) {
    let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let origin = srv.origin();
    for path in ["/admin/api/overview", "/admin/api/tenants/default"] {
        for auth in [None, Some(srv.token.as_str()), Some("0123456789abcdef0123456789abcdef")] {
            let mut rb = client.get(format!("{origin}{path}"));
            if let Some(t) = auth {
                rb = rb.bearer_auth(t);
            }
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 401, "{path} with {auth:?}");
            assert!(r.headers().get("www-authenticate").is_some());
        }
    }
    let page = client.get(format!("{origin}/admin")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    let csp = page.headers().get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(page.text().await.unwrap().contains("name=\"token\""), "the sign-in form");
    let scim = srv.call_at(&srv.base, &srv.admin_token, Method::GET, "/Users", None).await;
    assert_eq!(scim.status, 401, "the admin token opens no SCIM route");

    // Sign in with the form: a session cookie, HttpOnly and SameSite=Strict, that opens the page.
    let wrong = client.post(format!("{origin}/admin/login")).header("content-type", "application/x-www-form-urlencoded").body(format!("token={}", srv.token)).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let ok = client.post(format!("{origin}/admin/login")).header("content-type", "application/x-www-form-urlencoded").body(format!("token={}", srv.admin_token)).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains(&srv.admin_token), "the cookie is a session id, not the token");
    let session = cookie.split(';').next().unwrap().to_string();
    assert_eq!(srv.get("/Users").await.status, 200);
    let page = client.get(format!("{origin}/admin")).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-tenant=\"default\""), "{html}");
    let tenant = client.get(format!("{origin}/admin/tenants/default")).header("cookie", &session).send().await.unwrap();
    assert_eq!(tenant.status(), 200);
    // Signing out ends the session.
    let out = client.post(format!("{origin}/admin/logout")).header("cookie", &session).send().await.unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(client.get(format!("{origin}/admin")).header("cookie", &session).send().await.unwrap().status(), 401);
}

engine_tests!(an_entra_cycle_is_counted_for_its_tenant, every_request_writes_one_metric_line, the_operator_pages_have_their_own_credential);
