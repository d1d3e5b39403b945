//! Operations, on both engines: an Entra-like sequence with failing requests, counted per tenant in
//! process (the admin JSON), written as CloudWatch embedded-metric lines (parsed and checked), with failed
//! requests kept without tokens or personal data; the operator API's own credential.

use reqwest::Method;
use scim_tests::{engine_tests, patch_body, TestServer};
use serde_json::{json, Value};

const USER_NAME: &str = "ann.lopez@contoso.com";

/// The requests of one provisioning cycle for tenant `acme`, three of them failing and one with a wrong
/// credential (counted apart: unauthenticated); returns acme's token.
async fn entra_cycle(srv: &TestServer) -> String {
    let token = srv.add_tenant("acme").await;
    let base = srv.tenant_base("acme");
    let call = |m: Method, p: &str, b: Option<Value>| {
        let (base, token) = (base.clone(), token.clone());
        let p = p.to_string();
        async move { srv.call_at(&base, &token, m, &p, b.as_ref()).await }
    };
    // Test Connection, then match-then-create.
    assert_eq!(
        call(
            Method::GET,
            "/Users?filter=userName+eq+%22a1b2c3d4-0000%22",
            None
        )
        .await
        .status,
        200
    );
    let created = call(
        Method::POST,
        "/Users",
        Some(json!({"userName": USER_NAME, "externalId": "e-1"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.id();
    // A second create of the same user: 409 uniqueness (its detail quotes the userName).
    let dup = call(Method::POST, "/Users", Some(json!({"userName": USER_NAME}))).await;
    assert_eq!(
        (dup.status, dup.body["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{}",
        dup.text
    );
    assert!(
        dup.text.contains(USER_NAME),
        "the client's own answer quotes the value: {}",
        dup.text
    );
    // A filter Entra would never send: 400 invalidFilter (the query carries the user name).
    let bad = call(
        Method::GET,
        &format!(
            "/Users?filter=userName+xx+%22{}%22",
            USER_NAME.replace('@', "%40")
        ),
        None,
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["scimType"].as_str()),
        (400, Some("invalidFilter")),
        "{}",
        bad.text
    );
    assert_eq!(
        call(Method::GET, "/Users/0000-no-such-user", None)
            .await
            .status,
        404
    );
    let disable = patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(
        call(Method::PATCH, &format!("/Users/{id}"), Some(disable))
            .await
            .status,
        200
    );
    // A revoked or mistyped credential.
    let wrong = srv
        .call_at(
            &base,
            "not-the-token-0123456789abcdef",
            Method::GET,
            "/Users",
            None,
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        call(Method::GET, &format!("/Users/{id}"), None)
            .await
            .status,
        200
    );
    token
}

async fn an_entra_cycle_is_counted_for_its_tenant(srv: TestServer) {
    let token = entra_cycle(&srv).await;
    // The base URL's directory, and a tenant nobody authenticated for.
    assert_eq!(srv.get("/Users").await.status, 200);
    let ghost = srv
        .call_at(
            &srv.tenant_base("ghost"),
            "nope-0123456789abcdef0123",
            Method::GET,
            "/Users",
            None,
        )
        .await;
    assert_eq!(ghost.status, 401);
    // A failed token-endpoint request (OAuth is off here: 404), counted apart like every token request.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token_url = format!("{}/acme/oauth2/token", srv.origin());
    let form = "grant_type=client_credentials";
    let refused = client
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);

    let (status, acme) = srv.admin_json("/admin/api/tenants/acme").await;
    assert_eq!(status, 200, "{acme}");
    for window in ["total", "last_hour", "last_5_minutes"] {
        let c = &acme[window];
        assert_eq!(
            (
                c["requests"].as_u64(),
                c["failures"].as_u64(),
                c["client_errors"].as_u64(),
                c["server_errors"].as_u64(),
                c["auth_failures"].as_u64(),
                c["throttles"].as_u64()
            ),
            (Some(7), Some(3), Some(3), Some(0), Some(1), Some(0)),
            "{window}: {c}"
        );
        let apart = (
            c["unauthenticated"].as_u64(),
            c["token_requests"].as_u64(),
            c["token_failures"].as_u64(),
        );
        assert_eq!(apart, (Some(1), Some(1), Some(1)), "{window}: {c}");
    }
    assert_eq!(acme["latency_last_hour"]["samples"], 7);
    let (p50, p99) = (
        acme["latency_last_hour"]["p50_ms"].as_f64().unwrap(),
        acme["latency_last_hour"]["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{p50} {p99}");
    let mut kinds: Vec<(u64, Option<&str>, u64)> = acme["failures_by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["status"].as_u64().unwrap(),
                k["scimType"].as_str(),
                k["count"].as_u64().unwrap(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (400, Some("invalidFilter"), 1),
            (404, None, 1),
            (409, Some("uniqueness"), 1)
        ]
    );
    // The figures agree: the kinds add up to the failures, the token endpoint's failure in neither.
    assert_eq!(
        kinds.iter().map(|k| k.2).sum::<u64>(),
        acme["total"]["failures"].as_u64().unwrap()
    );
    let minutes = acme["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert_eq!(
        minutes
            .iter()
            .map(|m| m["counts"]["requests"].as_u64().unwrap())
            .sum::<u64>(),
        7
    );

    // The last failures, newest first: method, path without query, status, scimType, a redacted detail.
    let failures = acme["last_failures"].as_array().unwrap();
    let seen: Vec<(&str, u64)> = failures
        .iter()
        .map(|f| (f["method"].as_str().unwrap(), f["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, vec![("GET", 404), ("GET", 400), ("POST", 409)]);
    assert_eq!(failures[1]["path"], "/acme/scim/v2/Users");
    assert_eq!(failures[0]["path"], "/acme/scim/v2/Users/0000-no-such-user");
    assert!(
        failures[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid filter"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2]["detail"]
            .as_str()
            .unwrap()
            .starts_with("userName \"…\" is already in use"),
        "{}",
        failures[2]
    );
    // The wrong credential and the failed token request: shown apart, for Entra's admin to diagnose.
    let apart: Vec<(&str, &str, u64)> = acme["last_unauthenticated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["method"].as_str().unwrap(),
                f["path"].as_str().unwrap(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        apart,
        vec![
            ("POST", "/acme/oauth2/token", 404),
            ("GET", "/acme/scim/v2/Users", 401)
        ]
    );
    let kept = acme.to_string();
    for secret in [
        USER_NAME,
        "ann.lopez",
        "contoso",
        token.as_str(),
        srv.token.as_str(),
        "not-the-token",
    ] {
        assert!(
            !kept.contains(secret),
            "the admin JSON holds {secret:?}: {kept}"
        );
    }

    let (_, overview) = srv.admin_json("/admin/api/overview").await;
    let names: Vec<&str> = overview["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["acme", "default", "(unattributed)"],
        "{overview}"
    );
    assert_eq!(overview["all"]["total"]["requests"], 8);
    assert_eq!(overview["all"]["total"]["failures"], 3);
    assert_eq!(
        overview["all"]["total"]["unauthenticated"], 2,
        "acme's wrong credential and ghost's"
    );
    let (status, _) = srv.admin_json("/admin/api/tenants/ghost").await;
    assert_eq!(
        status, 404,
        "a tenant nobody authenticated for is not minted"
    );
}

/// Whoever knows a tenant's id but not its credential can neither push its failure ratio toward Entra's
/// quarantine warning nor flush its real failures out of the kept list: requests that do not authenticate
/// are counted apart (where an Entra job with a wrong Secret Token still shows), in bounded memory.
async fn unauthenticated_requests_cannot_move_a_tenants_failure_figures(srv: TestServer) {
    entra_cycle(&srv).await;
    let (_, before) = srv.admin_json("/admin/api/tenants/acme").await;
    for i in 0..60 {
        let r = srv
            .call_at(
                &srv.tenant_base("acme"),
                &format!("forged-{i:032}"),
                Method::GET,
                "/Users",
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let (_, after) = srv.admin_json("/admin/api/tenants/acme").await;
    for key in ["requests", "failures", "client_errors", "server_errors"] {
        assert_eq!(
            after["last_hour"][key], before["last_hour"][key],
            "{key}: {}",
            after["last_hour"]
        );
    }
    assert_eq!(
        (
            after["last_hour"]["requests"].as_u64(),
            after["last_hour"]["failures"].as_u64()
        ),
        (Some(7), Some(3))
    );
    assert_eq!(
        after["last_failures"], before["last_failures"],
        "the real failures are still the ones kept"
    );
    assert_eq!(after["failures_by_kind"], before["failures_by_kind"]);
    assert_eq!(
        (
            after["last_hour"]["unauthenticated"].as_u64(),
            after["last_hour"]["auth_failures"].as_u64()
        ),
        (Some(61), Some(61))
    );
    let kept = after["last_unauthenticated"].as_array().unwrap();
    assert_eq!(
        kept.len(),
        scim_core::metrics::UNAUTHENTICATED_KEPT,
        "bounded"
    );
    assert!(
        kept.iter()
            .all(|f| f["status"] == 401 && f["path"] == "/acme/scim/v2/Users"),
        "{kept:?}"
    );
    let (_, overview) = srv.admin_json("/admin/api/overview").await;
    assert_eq!(
        (
            overview["all"]["last_hour"]["failures"].as_u64(),
            overview["all"]["last_hour"]["unauthenticated"].as_u64()
        ),
        (Some(3), Some(61))
    );
}

/// The EMF lines CloudWatch would read: valid JSON, every metric a root member, every dimension set
/// naming root members, per-tenant and total sets, figures that add up.
async fn every_request_writes_one_metric_line(srv: TestServer) {
    let token = entra_cycle(&srv).await;
    let ghost = srv
        .call_at(
            &srv.tenant_base("ghost"),
            "nope-0123456789abcdef0123",
            Method::GET,
            "/Users",
            None,
        )
        .await;
    assert_eq!(ghost.status, 401);
    let lines = srv.metrics.emf().expect("memory EMF sink").lines();
    assert_eq!(lines.len(), 9);
    let docs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for (line, v) in lines.iter().zip(&docs) {
        assert!(!line.contains('\n'));
        for secret in [
            USER_NAME,
            "ann.lopez",
            "contoso",
            token.as_str(),
            "not-the-token",
            "nope-0123",
        ] {
            assert!(!line.contains(secret), "{secret:?} in {line}");
        }
        assert!(v["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], "ScimTest");
            for m in d["Metrics"].as_array().unwrap() {
                assert!(
                    v[m["Name"].as_str().unwrap()].is_number(),
                    "{m} is no root number in {line}"
                );
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(
                        v[dim.as_str().unwrap()].is_string(),
                        "{dim} is no root string in {line}"
                    );
                }
            }
        }
    }
    let acme: Vec<&Value> = docs.iter().filter(|v| v["tenant"] == "acme").collect();
    assert_eq!(acme.len(), 8);
    let sum = |name: &str| {
        acme.iter()
            .map(|v| v[name].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        (
            sum("Requests"),
            sum("Failures"),
            sum("AuthFailures"),
            sum("ServerErrors"),
            sum("Throttles")
        ),
        (7, 3, 1, 0, 0)
    );
    // The wrong credential's line: Unauthenticated and AuthFailures only, none of the ratio's metrics.
    let refused = acme.iter().find(|v| v["status"] == 401).unwrap();
    assert_eq!(
        (
            refused["Unauthenticated"].as_u64(),
            refused.get("Failures"),
            refused.get("kind")
        ),
        (Some(1), None, None),
        "{refused}"
    );
    assert!(acme
        .iter()
        .all(|v| v["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([["tenant"], []])));
    let dup = acme.iter().find(|v| v["status"] == 409).unwrap();
    assert_eq!(
        (
            dup["kind"].as_str(),
            dup["scimType"].as_str(),
            dup["method"].as_str()
        ),
        (Some("409 uniqueness"), Some("uniqueness"), Some("POST"))
    );
    assert_eq!(
        dup["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
        json!([["tenant", "kind"], ["kind"]])
    );
    assert!(acme
        .iter()
        .filter(|v| v["status"] != 401)
        .all(|v| v["Latency"].as_f64().unwrap() > 0.0));
    let unattributed = docs
        .iter()
        .find(|v| v["tenant"] == "(unattributed)")
        .unwrap();
    assert_eq!(
        unattributed["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[]])
    );
    assert_eq!(unattributed["AuthFailures"], 1);
}

/// The operator API and page want the admin token — not the SCIM token — and the SCIM API refuses it.
async fn the_operator_pages_have_their_own_credential(srv: TestServer) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = srv.origin();
    for path in ["/admin/api/overview", "/admin/api/tenants/default"] {
        for auth in [
            None,
            Some(srv.token.as_str()),
            Some("0123456789abcdef0123456789abcdef"),
        ] {
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
    let csp = page
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        page.text().await.unwrap().contains("name=\"token\""),
        "the sign-in form"
    );
    let scim = srv
        .call_at(&srv.base, &srv.admin_token, Method::GET, "/Users", None)
        .await;
    assert_eq!(scim.status, 401, "the admin token opens no SCIM route");

    // Sign in with the form: a session cookie, HttpOnly and SameSite=Strict, that opens the page.
    let wrong = client
        .post(format!("{origin}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", srv.token))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let ok = client
        .post(format!("{origin}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", srv.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains(&srv.admin_token),
        "the cookie is a session id, not the token"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    assert_eq!(srv.get("/Users").await.status, 200);
    let page = client
        .get(format!("{origin}/admin"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-tenant=\"default\""), "{html}");
    let tenant = client
        .get(format!("{origin}/admin/tenants/default"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), 200);
    // Signing out ends the session.
    let out = client
        .post(format!("{origin}/admin/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(
        client
            .get(format!("{origin}/admin"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

engine_tests!(
    an_entra_cycle_is_counted_for_its_tenant,
    unauthenticated_requests_cannot_move_a_tenants_failure_figures,
    every_request_writes_one_metric_line,
    the_operator_pages_have_their_own_credential
);

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): run tests/install-chromium.sh (tests/run.sh does)"));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..100 {
        if client
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return driver;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {}", driver.url);
}

/// Where the browser test leaves its screenshots for people to look at (ignored by git).
fn test_output() -> std::path::PathBuf {
    let dir = std::env::var_os("SCIM_TEST_OUTPUT")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../test-output"))
        });
    std::fs::create_dir_all(&dir).expect("create test-output");
    dir
}

/// `<name>.png` as a laptop screen shows the page, and `<name>-full.png` with the whole page.
async fn shoot(
    c: &fantoccini::Client,
    out: &std::path::Path,
    name: &str,
) -> Result<(), fantoccini::error::CmdError> {
    std::fs::write(out.join(format!("{name}.png")), c.screenshot().await?)
        .expect("write screenshot");
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await?
        .as_u64()
        .unwrap_or(900) as u32;
    c.set_window_size(1366, height + 160).await?;
    std::fs::write(out.join(format!("{name}-full.png")), c.screenshot().await?)
        .expect("write screenshot");
    c.set_window_size(1366, 900).await
}

/// The page's warning colours as the browser computes them (`--fail`, `--warn` of the page's CSS).
const RED: &str = "rgb(214, 69, 61)";
const AMBER: &str = "rgb(201, 138, 18)";

/// The text colour the browser computes for the element `css` selects.
async fn colour(c: &fantoccini::Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    let v = c.execute("const e = document.querySelector(arguments[0]); return e ? getComputedStyle(e).color : 'no element ' + arguments[0]", vec![json!(css)]).await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// The operator page in Debian's chromium (headless, driven through chromedriver): sign in with the
/// form, read the figures and the last failures, leave screenshots in test-output/. The page reads no
/// store, so one engine is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_page_in_a_real_browser() {
    use fantoccini::{ClientBuilder, Locator};
    let srv = TestServer::start(scim_tests::Engine::Dynoxide).await;
    entra_cycle(&srv).await;
    for _ in 0..3 {
        assert_eq!(srv.get("/Users").await.status, 200);
    }
    // globex: one failure in four requests (25 %: amber, half-way to Entra's 40 %).
    let globex = srv.add_tenant("globex").await;
    for (path, status) in [
        ("/Users", 200),
        ("/Users", 200),
        ("/Groups", 200),
        ("/Users/0000-missing", 404),
    ] {
        assert_eq!(
            srv.call_at(&srv.tenant_base("globex"), &globex, Method::GET, path, None)
                .await
                .status,
            status
        );
    }
    let driver = chromedriver().await;
    let chromium = std::env::var("SCIM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900", "--hide-scrollbars"]}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver");
    let out = test_output();
    let result = async {
        // Not signed in: the form. Sign in with the admin token.
        c.goto(&format!("{}/admin", srv.origin())).await?;
        c.find(Locator::Css("input#token"))
            .await?
            .send_keys(&srv.admin_token)
            .await?;
        c.find(Locator::Css("form.login button[type=submit]"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("table#tenants")).await?;
        let row = c
            .find(Locator::Css("tr[data-tenant=acme]"))
            .await?
            .text()
            .await?;
        let cells: Vec<&str> = row.split_whitespace().collect();
        // tenant, req/min, requests, failed, ratio (two words), 5xx, 401/403, 429, …
        assert_eq!(
            &cells[..7],
            &["acme", "1.4", "7", "3", "42.9", "%", "0"],
            "{row}"
        );
        // What a person sees: the failure ratio coloured against Entra's rule (red from 40 %, amber from
        // 20 %), a failed count in red — and a healthy tenant's cells in neither colour.
        let cell = |t: &str, n: usize| format!("tr[data-tenant={t}] td:nth-child({n})");
        let (acme_ratio, globex_ratio, default_ratio) = (
            colour(&c, &cell("acme", 5)).await?,
            colour(&c, &cell("globex", 5)).await?,
            colour(&c, &cell("default", 5)).await?,
        );
        assert_eq!(acme_ratio, RED, "acme's ratio cell (over 40 %)");
        assert_eq!(globex_ratio, AMBER, "globex's ratio cell (25 %)");
        assert!(
            default_ratio != RED && default_ratio != AMBER,
            "a healthy ratio is in neither warning colour: {default_ratio}"
        );
        assert_eq!(
            colour(&c, &cell("acme", 4)).await?,
            RED,
            "acme's failed count"
        );
        let default_failed = colour(&c, &cell("default", 4)).await?;
        assert!(
            default_failed != RED && default_failed != AMBER,
            "no failure, no warning colour: {default_failed}"
        );
        let body = c.find(Locator::Css("body")).await?.text().await?;
        assert!(
            body.contains("Latest failed requests")
                && body.contains("uniqueness")
                && body.contains("invalidFilter"),
            "{body}"
        );
        shoot(&c, &out, "operations-overview").await?;

        // One tenant's cards: the ratio card in the warning colour of its level, the failed count in red.
        let card = |n: usize| format!("div.cards div.card:nth-child({n}) div.v");
        for (tenant, ratio_colour) in [("globex", AMBER), ("default", ""), ("acme", RED)] {
            c.goto(&format!("{}/admin/tenants/{tenant}", srv.origin()))
                .await?;
            c.wait().for_element(Locator::Css("div.cards")).await?;
            let (ratio, failed) = (colour(&c, &card(4)).await?, colour(&c, &card(3)).await?);
            if ratio_colour.is_empty() {
                assert!(
                    ratio != RED && ratio != AMBER && failed != RED,
                    "{tenant}: healthy, yet {ratio} / {failed}"
                );
            } else {
                assert_eq!(
                    (ratio.as_str(), failed.as_str()),
                    (ratio_colour, RED),
                    "{tenant}'s ratio and failed cards"
                );
            }
        }
        c.goto(&format!("{}/admin", srv.origin())).await?;

        // One tenant: failures by kind, the last failed requests, the chart.
        c.find(Locator::Css("tr[data-tenant=acme] a"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("table#kinds")).await?;
        let kinds = c.find(Locator::Css("table#kinds")).await?.text().await?;
        for k in [
            "409 uniqueness 1",
            "400 invalidFilter 1",
            "404 – 1",
            "All 3",
        ] {
            assert!(kinds.contains(k), "{k} in {kinds}");
        }
        assert!(
            !kinds.contains("401"),
            "the wrong credential is no failure kind: {kinds}"
        );
        let apart = c
            .find(Locator::Css("table#unauthenticated"))
            .await?
            .text()
            .await?;
        assert!(apart.contains("GET /acme/scim/v2/Users 401"), "{apart}");
        let failures = c.find(Locator::Css("table#failures")).await?.text().await?;
        assert!(
            failures.contains("GET /acme/scim/v2/Users/0000-no-such-user")
                && failures.contains("userName \"…\" is already in use"),
            "{failures}"
        );
        let bars = c.find_all(Locator::Css("svg rect.req")).await?.len();
        assert!(bars >= 1, "the chart has a bar for the busy minute");
        let page = c.source().await?;
        assert!(
            !page.contains(USER_NAME) && !page.contains(&srv.admin_token),
            "no user name or token on the page"
        );
        shoot(&c, &out, "operations-tenant").await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.expect("browser steps");
}

/// What CloudWatch Logs does with an embedded-metric line, done by hand for moto (which stores metrics
/// but does not read logs): every metric of every directive, once per dimension set, with the dimension
/// values from the line's root members.
fn extract_emf(line: &Value) -> Vec<aws_sdk_cloudwatch::types::MetricDatum> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let ts = aws_sdk_cloudwatch::primitives::DateTime::from_millis(
        line["_aws"]["Timestamp"].as_i64().unwrap(),
    );
    let mut out = Vec::new();
    for d in line["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
        for set in d["Dimensions"].as_array().unwrap() {
            let dims: Vec<Dimension> = set
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    Dimension::builder()
                        .name(k.as_str().unwrap())
                        .value(line[k.as_str().unwrap()].as_str().unwrap())
                        .build()
                })
                .collect();
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert_eq!(d["Namespace"], "ScimTest");
                out.push(
                    MetricDatum::builder()
                        .metric_name(name)
                        .set_dimensions(Some(dims.clone()))
                        .value(line[name].as_f64().unwrap())
                        .unit(StandardUnit::from(m["Unit"].as_str().unwrap()))
                        .timestamp(ts)
                        .build(),
                );
            }
        }
    }
    out
}

/// `scim-admin --aws status`: the metric lines of an Entra-like cycle, extracted as CloudWatch would and
/// put into moto's CloudWatch, read back as the same figures the local server reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_from_cloudwatch_reads_back_the_metric_lines() {
    let srv = TestServer::start(scim_tests::Engine::Moto).await;
    entra_cycle(&srv).await;
    let namespace = format!("ScimTest/{}", std::process::id());
    let conf = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .endpoint_url(scim_tests::endpoint(scim_tests::Engine::Moto))
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    let cw = aws_sdk_cloudwatch::Client::from_conf(conf);
    let data: Vec<_> = srv
        .metrics
        .emf()
        .unwrap()
        .lines()
        .iter()
        .flat_map(|l| extract_emf(&serde_json::from_str(l).unwrap()))
        .collect();
    for chunk in data.chunks(20) {
        cw.put_metric_data()
            .namespace(&namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("PutMetricData");
    }
    let s = scim_core::metrics::cloudwatch::tenant_summary(
        &cw,
        &namespace,
        "acme",
        std::time::SystemTime::now(),
    )
    .await
    .expect("status from CloudWatch");
    let c = &s.last_hour;
    assert_eq!(
        (
            c.requests,
            c.failures,
            c.client_errors,
            c.server_errors,
            c.auth_failures,
            c.throttles,
            c.token_requests
        ),
        (7, 3, 3, 0, 1, 0, 0),
        "{s:?}"
    );
    assert_eq!(c.unauthenticated, 1, "{s:?}");
    assert_eq!(s.minutes.len(), 60);
    assert_eq!(s.minutes.iter().map(|m| m.counts.requests).sum::<u64>(), 7);
    assert_eq!(s.last_5_minutes.requests, 7);
    let mut kinds: Vec<(u16, Option<String>, u64)> = s
        .failures_by_kind
        .iter()
        .map(|k| (k.status, k.scim_type.clone(), k.count))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (400, Some("invalidFilter".into()), 1),
            (404, None, 1),
            (409, Some("uniqueness".into()), 1)
        ]
    );
    let text = scim_local::cli::text::summary(&s, "CloudWatch");
    assert!(
        text.contains("7 requests, 3 failed (42.9 %)") && text.contains("quarantine"),
        "{text}"
    );
    assert!(text.contains("1 unauthenticated"), "{text}");
    // Another tenant's figures are not acme's.
    let other = scim_core::metrics::cloudwatch::tenant_summary(
        &cw,
        &namespace,
        "globex",
        std::time::SystemTime::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        (other.last_hour.requests, other.failures_by_kind.len()),
        (0, 0)
    );
}

/// A sign-in form sent at one byte per 300 ms is cut off with 408 at the body read timeout (2 s here),
/// over the real serving loop; the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sign_in_form_is_cut_off_at_the_body_read_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let http = scim_core::config::HttpConfig {
        body_read_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let srv = TestServer::start_with_serve_config(
        scim_tests::Engine::Dynoxide,
        http,
        scim_local::server::serve::ServeConfig::default(),
    )
    .await;
    let body = format!("token={}", "x".repeat(90));
    let head = format!("POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for b in body.as_bytes() {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        // Read whatever the server has answered meanwhile.
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await
        {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the slow form is still being read after {:?}",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        client
            .get(format!("{}/admin", srv.origin()))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "still serving"
    );
}

async fn sign_in(client: &reqwest::Client, origin: &str, token: &str) -> reqwest::Response {
    let form = format!("token={token}");
    client
        .post(format!("{origin}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sign-in is throttled over the real serving loop: after 10 wrong tokens the 11th attempt gets 429 with
/// `Retry-After` (and so does the right token from the same place, without being compared); a wrong
/// bearer on the API counts the same; a session opened earlier keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled() {
    let srv = TestServer::start(scim_tests::Engine::Dynoxide).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = srv.origin();
    let ok = sign_in(&client, &origin, &srv.admin_token).await;
    assert_eq!(ok.status(), 303);
    let session = ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    for i in 0..10 {
        assert_eq!(
            sign_in(&client, &origin, &format!("wrong-{i}"))
                .await
                .status(),
            401,
            "attempt {i}"
        );
    }
    let limited = sign_in(&client, &origin, "wrong-10").await;
    assert_eq!(limited.status(), 429);
    let wait = retry_after(&limited);
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    assert!(limited
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
    assert_eq!(
        sign_in(&client, &origin, &srv.admin_token).await.status(),
        429,
        "no token is compared while limited"
    );
    let api = client
        .get(format!("{origin}/admin/api/overview"))
        .bearer_auth(&srv.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 429);
    assert!(retry_after(&api) >= 1);
    let page = client
        .get(format!("{origin}/admin"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "a live session is not throttled");
}

/// Per address and in total, over a real socket served by scim-local's serving loop (which tells the
/// page each connection's peer address): one address
/// past its limit does not lock out another; enough addresses together lock out everyone (new sign-ins
/// only) until the window ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_limits_are_per_address_and_in_total() {
    use scim_core::throttle::FailureLimits;
    use scim_local::admin::{AdminAuth, AdminConfig};
    use std::net::{IpAddr, Ipv4Addr};
    let token = scim_core::auth::generate_token();
    let auth = std::sync::Arc::new(AdminAuth::new(&token).unwrap());
    let limits = FailureLimits {
        per_peer: 3,
        global: 6,
        window: std::time::Duration::from_secs(60),
        max_peers: 64,
    };
    let cfg = AdminConfig {
        sign_in: limits,
        ..AdminConfig::new(std::time::Duration::from_secs(5))
    };
    let router = scim_local::admin::router(
        std::sync::Arc::new(scim_core::metrics::Metrics::default()),
        auth,
        cfg,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    // scim-local's own serving loop: it reports each connection's peer address to the page.
    let cfg = scim_local::server::serve::ServeConfig::default();
    tokio::spawn(scim_local::server::serve::serve_until(
        router,
        listener,
        cfg,
        std::future::pending(),
    ));
    let from = |last: u8| {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        reqwest::Client::builder()
            .no_proxy()
            .local_address(ip)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let (one, two, three, four) = (from(1), from(2), from(3), from(4));
    for i in 0..3 {
        assert_eq!(
            sign_in(&one, &origin, &format!("wrong-{i}")).await.status(),
            401
        );
    }
    assert_eq!(
        sign_in(&one, &origin, "wrong-3").await.status(),
        429,
        "127.0.0.1 is past its limit"
    );
    assert_eq!(
        sign_in(&two, &origin, &token).await.status(),
        303,
        "the right token from another address works"
    );
    for i in 0..3 {
        assert_eq!(
            sign_in(&three, &origin, &format!("wrong-{i}"))
                .await
                .status(),
            401
        );
    }
    let all = sign_in(&four, &origin, &token).await;
    assert_eq!(
        all.status(),
        429,
        "six failures in all: new sign-ins wait, whatever the address"
    );
    assert!(retry_after(&all) >= 1);
}
