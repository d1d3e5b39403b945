//! The customer's setup page (`/setup`) end to end over HTTP, on both engines: setup links made with the
//! management API, opened once (in-app) or until revoked (shareable); expired, used, revoked, forged and
//! cross-tenant links refused with a page in words; link guessing throttled; every form refused without
//! the session's CSRF token or from another site; a client secret shown once (not on reload) that works
//! at the token endpoint as Entra uses it, rotated and retired; WIF saved against a loopback JWKS; the
//! connection check; the audit trail with the link as the actor. Then the page in headless Chromium.

use reqwest::{Method, StatusCode};
use scim_core::oauth::assertion::testing::TestKey;
use scim_core::oauth::assertion::JwksSettings;
use scim_core::oauth::OAuthSettings;
use scim_core::store::{ClientStore, LinkKind, LinkStore, SetupLink};
use scim_tests::{Engine, Page, TestServer};
use serde_json::{json, Value};

scim_tests::both_engines!(
    |engine| super::server(engine).await;
    links_open_as_their_kind_says_and_refuse_the_rest,
    link_requests_are_checked,
    forms_need_the_session_and_its_token,
    the_page_connects_entra_and_audits_with_the_link_as_actor,
    an_old_secret_entra_still_uses_is_flagged_before_retiring,
    scim_admin_link_commands,
);

async fn server(engine: Engine) -> TestServer {
    TestServer::start_oauth(engine, OAuthSettings::default(), JwksSettings::default()).await
}

/// A client that does not follow redirects and keeps no cookies (the tests carry the cookie).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(r: reqwest::RequestBuilder) -> Page {
    let r = r.send().await.unwrap();
    Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

async fn manage(srv: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = http()
        .request(method, format!("{}/manage/v1{path}", srv.origin()))
        .bearer_auth(&srv.admin_token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn tenant(srv: &TestServer, id: &str) {
    let (s, b) = manage(srv, Method::POST, "/tenants", Some(json!({"id": id}))).await;
    assert_eq!(s, 201, "{b}");
}

async fn link(srv: &TestServer, tenant: &str, body: Value) -> (String, String) {
    let (s, b) = manage(
        srv,
        Method::POST,
        &format!("/tenants/{tenant}/setup-links"),
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let url = b["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/setup/{tenant}_", srv.origin())),
        "{url}"
    );
    (b["id"].as_str().unwrap().to_string(), url)
}

/// Open a link: 303 to `/setup` with the session cookie → the cookie's `name=value`.
async fn open(url: &str) -> String {
    let p = page(http().get(url)).await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(p.header("location"), "/setup");
    let set = p.header("set-cookie").to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/setup"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure ({set})");
    set.split(';').next().unwrap().to_string()
}

async fn show(srv: &TestServer, cookie: &str) -> Page {
    page(
        http()
            .get(format!("{}/setup", srv.origin()))
            .header("cookie", cookie),
    )
    .await
}

async fn post_form(
    srv: &TestServer,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Page {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut rb = http()
        .post(format!("{}{path}", srv.origin()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    page(rb).await
}

fn assert_refused(p: &Page, status: u16, words: &str) {
    assert_eq!(p.status, status, "{}", p.text);
    assert!(p.text.contains(words), "{words} in {}", p.text);
    assert!(
        p.header("content-type").starts_with("text/html"),
        "a page, not a trace"
    );
    assert!(p
        .header("content-security-policy")
        .contains("default-src 'none'"));
}

/// Another link's secret (the part after the dot) with this id.
fn with_secret_of(url: &str, other: &str) -> String {
    let secret = other.rsplit_once('.').unwrap().1;
    format!("{}.{secret}", url.rsplit_once('.').unwrap().0)
}

async fn links_open_as_their_kind_says_and_refuse_the_rest(srv: TestServer) {
    tenant(&srv, "acme").await;
    tenant(&srv, "globex").await;
    // In-app: opens once; the page shows the tenant's own values.
    let (_, in_app) = link(&srv, "acme", json!({"kind": "in_app"})).await;
    let cookie = open(&in_app).await;
    let p = show(&srv, &cookie).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains(&srv.tenant_base("acme")), "the Tenant URL");
    assert!(p
        .text
        .contains(&format!("{}/acme/oauth2/token", srv.origin())));
    assert_eq!(p.header("cache-control"), "no-store");
    assert_eq!(p.header("x-frame-options"), "DENY");
    let csp = p.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'sha256-")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_refused(&page(http().get(&in_app)).await, 410, "already used");

    // Shareable: opens again and again, until revoked; revoking ends its sessions too.
    let (share_id, share) = link(&srv, "acme", json!({"kind": "shareable", "days": 2})).await;
    let first = open(&share).await;
    open(&share).await;
    // Over TLS (a proxy says so), the cookie is Secure.
    let tls = page(http().get(&share).header("x-forwarded-proto", "https")).await;
    assert!(
        tls.header("set-cookie").contains("; Secure"),
        "{}",
        tls.header("set-cookie")
    );
    // A forged secret, another tenant's id with this secret, a link that never was: 404.
    let mut forged = share.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_refused(&page(http().get(&forged)).await, 404, "not valid");
    let (_, globex) = link(&srv, "globex", json!({"kind": "shareable"})).await;
    assert_refused(
        &page(http().get(with_secret_of(&globex, &share))).await,
        404,
        "not valid",
    );
    assert_refused(
        &page(http().get(with_secret_of(&share, &globex))).await,
        404,
        "not valid",
    );
    // globex's id with acme's key and secret: read under globex, where no such link is.
    let cross = share.replace("/setup/acme_", "/setup/globex_");
    assert_refused(&page(http().get(&cross)).await, 404, "not valid");
    // acme's session cookie names acme: edited to globex, it is no session.
    let p = show(&srv, &first.replace("=acme_", "=globex_")).await;
    assert_refused(&p, 401, "session has ended");

    let (s, b) = manage(
        &srv,
        Method::DELETE,
        &format!("/tenants/acme/setup-links/{share_id}"),
        None,
    )
    .await;
    assert_eq!((s, &b["revoked"]), (200, &json!(share_id)));
    assert_refused(&page(http().get(&share)).await, 410, "revoked");
    assert_refused(&show(&srv, &first).await, 410, "revoked");
    // Another tenant's path cannot revoke it (nor list it).
    let (s, _) = manage(
        &srv,
        Method::DELETE,
        &format!("/tenants/globex/setup-links/{share_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Expired: a link written with its expiry passed.
    let secret = "ab".repeat(32);
    srv.store
        .put_link(&SetupLink {
            tenant: "acme".into(),
            key: "00000000000000ee".into(),
            kind: LinkKind::Shareable,
            hash: scim_core::auth::token_hash(&secret),
            created: "2026-01-01T00:00:00Z".into(),
            expires: scim_core::manage::links::now() - 10,
            return_url: None,
            used: None,
            revoked: None,
        })
        .await
        .unwrap();
    assert_refused(
        &page(http().get(format!(
            "{}/setup/acme_00000000000000ee.{secret}",
            srv.origin()
        )))
        .await,
        410,
        "expired",
    );
    // No cookie: no page.
    assert_refused(
        &page(http().get(format!("{}/setup", srv.origin()))).await,
        401,
        "session has ended",
    );

    // Guessing is throttled: ten wrong links from one address, then 429 before any lookup.
    let mut last = 0;
    for n in 0..12 {
        let guess = format!("{}/setup/acme_{:016x}.{}", srv.origin(), n, "0".repeat(64));
        last = page(http().get(guess)).await.status;
    }
    assert_eq!(last, 429, "the twelfth guess");
    let p = page(http().get(&globex)).await;
    assert_eq!(p.status, 429, "even a good link waits, from that address");
    assert!(p.header("retry-after").parse::<u64>().unwrap() >= 1);
}

async fn link_requests_are_checked(srv: TestServer) {
    tenant(&srv, "acme").await;
    for (body, code) in [
        (json!({"kind": "forever"}), "invalid_kind"),
        (json!({"kind": "in_app", "days": 1}), "invalid_lifetime"),
        (json!({"kind": "in_app", "minutes": 61}), "invalid_lifetime"),
        (json!({"kind": "shareable", "days": 31}), "invalid_lifetime"),
        (
            json!({"kind": "shareable", "minutes": 5}),
            "invalid_lifetime",
        ),
        (
            json!({"kind": "shareable", "returnUrl": "javascript:alert(1)"}),
            "invalid_return_url",
        ),
        (
            json!({"kind": "shareable", "returnUrl": "http://vendor.example/"}),
            "invalid_return_url",
        ),
        (json!({"kind": "shareable", "extra": 1}), "invalid_body"),
    ] {
        let (s, b) = manage(
            &srv,
            Method::POST,
            "/tenants/acme/setup-links",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {b}"
        );
    }
    let (s, b) = manage(
        &srv,
        Method::POST,
        "/tenants/nobody/setup-links",
        Some(json!({"kind": "shareable"})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("tenant_not_found"))
    );
    let (id, url) = link(
        &srv,
        "acme",
        json!({"kind": "in_app", "minutes": 10, "returnUrl": "https://app.vendor.example/settings"}),
    )
    .await;
    let (s, b) = manage(&srv, Method::GET, "/tenants/acme/setup-links", None).await;
    assert_eq!(s, 200);
    let listed = &b["links"][0];
    assert_eq!(listed["id"], json!(id));
    assert_eq!(listed["kind"], "in_app");
    assert_eq!(listed["returnUrl"], "https://app.vendor.example/settings");
    let secret = url.rsplit_once('.').unwrap().1;
    assert!(
        !b.to_string().contains(secret)
            && !b.to_string().contains(&scim_core::auth::token_hash(secret)),
        "no secret or hash listed: {b}"
    );
    // The page links back to the vendor's app.
    let cookie = open(&url).await;
    assert!(show(&srv, &cookie)
        .await
        .text
        .contains("href=\"https://app.vendor.example/settings\""));
    let (s, b) = manage(&srv, Method::GET, "/tenants/acme/setup-links", None).await;
    assert_eq!(s, 200);
    assert!(b["links"][0]["used"].is_string(), "{b}");
    // Without the management credential: nothing.
    let r = http()
        .post(format!(
            "{}/manage/v1/tenants/acme/setup-links",
            srv.origin()
        ))
        .json(&json!({"kind": "shareable"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn forms_need_the_session_and_its_token(srv: TestServer) {
    tenant(&srv, "acme").await;
    let (_, url) = link(&srv, "acme", json!({"kind": "shareable"})).await;
    let cookie = open(&url).await;
    let csrf = show(&srv, &cookie)
        .await
        .field("csrf")
        .expect("a CSRF field");
    assert_eq!(csrf.len(), 64);
    let (_, other_url) = link(&srv, "acme", json!({"kind": "shareable"})).await;
    let other_csrf = show(&srv, &open(&other_url).await)
        .await
        .field("csrf")
        .unwrap();
    assert_ne!(csrf, other_csrf, "each session its own token");
    for path in [
        "/setup/secret",
        "/setup/check",
        "/setup/wif",
        "/setup/retire",
    ] {
        assert_refused(
            &post_form(&srv, path, Some(&cookie), &[]).await,
            403,
            "security token",
        );
        assert_refused(
            &post_form(&srv, path, Some(&cookie), &[("csrf", &other_csrf)]).await,
            403,
            "security token",
        );
        assert_refused(
            &post_form(&srv, path, None, &[("csrf", &csrf)]).await,
            401,
            "session",
        );
    }
    // A cross-site post: the browser sends the cookie? Not with SameSite=Strict; and if a browser did,
    // its Origin (or Sec-Fetch-Site) gives it away, even with the right token.
    let body = format!("csrf={csrf}");
    for (h, v) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let p = page(
            http()
                .post(format!("{}/setup/secret", srv.origin()))
                .header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .header(h, v)
                .body(body.clone()),
        )
        .await;
        assert_refused(&p, 403, "another site");
    }
    let (_, creds) = manage(&srv, Method::GET, "/tenants/acme/credentials", None).await;
    assert_eq!(creds["clients"], json!([]), "nothing was made");
    // The same origin is fine.
    let p = page(
        http()
            .post(format!("{}/setup/secret", srv.origin()))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", srv.origin())
            .header("sec-fetch-site", "same-origin")
            .body(body),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("Your new client secret"));
}

async fn the_page_connects_entra_and_audits_with_the_link_as_actor(srv: TestServer) {
    tenant(&srv, "acme").await;
    let (link_id, url) = link(&srv, "acme", json!({"kind": "shareable"})).await;
    let cookie = open(&url).await;
    let csrf = show(&srv, &cookie).await.field("csrf").unwrap();

    // Generate: the secret is in this answer only, never cached.
    let made = post_form(&srv, "/setup/secret", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(made.status, 200, "{}", made.text);
    assert_eq!(made.header("cache-control"), "no-store");
    let secret = made.field("new-secret").expect("the new secret");
    let client = made.field("client-id").expect("the Client ID");
    assert_eq!(secret.len(), 64, "{secret}");
    let again = show(&srv, &cookie).await;
    assert!(again.text.contains(&client), "the Client ID stays");
    assert!(
        !again.text.contains(&secret) && !again.text.contains("Your new client secret"),
        "a reload does not show the secret"
    );
    // Entra's token request with exactly these values, then its Test Connection query.
    let token_endpoint = format!("{}/acme/oauth2/token", srv.origin());
    let tok = http()
        .post(&token_endpoint)
        .basic_auth(&client, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=scim")
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), 200);
    let access: Value = tok.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_string();
    let tc = http()
        .get(format!(
            "{}/Users?filter=userName%20eq%20%22x%40y.example%22",
            srv.tenant_base("acme")
        ))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(tc.status(), 200);

    // Rotate: a second secret; retire the first; the first stops working, the second works.
    let first_id = again.field("secret").expect("a retire form");
    let rotated = post_form(&srv, "/setup/secret", Some(&cookie), &[("csrf", &csrf)]).await;
    let second = rotated.field("new-secret").unwrap();
    assert_ne!(second, secret);
    assert_eq!(rotated.field("new-secret-client").unwrap(), client);
    let retired = post_form(
        &srv,
        "/setup/retire",
        Some(&cookie),
        &[("csrf", &csrf), ("client", &client), ("secret", &first_id)],
    )
    .await;
    assert_eq!(retired.status, 200, "{}", retired.text);
    assert!(retired.text.contains("is retired"), "{}", retired.text);
    assert_eq!(token_status(&srv, "acme", &client, &secret).await, 401);
    assert_eq!(token_status(&srv, "acme", &client, &second).await, 200);

    // WIF against a loopback JWKS: checked on save (a URL without RSA keys is refused, nothing saved).
    let jwks = scim_tests::jwks::JwksServer::start(vec![TestKey::generate("k1")]).await;
    let wif = |jwks_url: String| {
        let csrf = csrf.clone();
        let tenant_id = "ce5f061f-abe6-4e40-9615-301f87bcb7f0";
        vec![
            ("csrf".to_string(), csrf),
            (
                "issuer".to_string(),
                format!("https://login.microsoftonline.com/{tenant_id}/v2.0"),
            ),
            (
                "subject".to_string(),
                "6dfd4b2e-1111-4aaa-8bbb-0123456789ab".to_string(),
            ),
            (
                "audience".to_string(),
                "api://AzureADTokenExchange".to_string(),
            ),
            ("jwks_url".to_string(), jwks_url),
        ]
    };
    let bad = wif(scim_tests::jwks::closed_url());
    let bad: Vec<(&str, &str)> = bad.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = post_form(&srv, "/setup/wif", Some(&cookie), &bad).await;
    assert!(p.text.contains("Not saved"), "{}", p.text);
    let (s, _) = manage(&srv, Method::GET, "/tenants/acme/wif", None).await;
    assert_eq!(s, 404, "nothing saved");
    let good = wif(jwks.url().to_string());
    let good: Vec<(&str, &str)> = good.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = post_form(&srv, "/setup/wif", Some(&cookie), &good).await;
    assert!(
        p.text.contains("Workload identity federation saved"),
        "{}",
        p.text
    );
    let (s, w) = manage(&srv, Method::GET, "/tenants/acme/wif", None).await;
    assert_eq!((s, w["jwksUrl"].as_str()), (200, Some(jwks.url())));

    // The connection check, step by step, in words.
    let checked = post_form(&srv, "/setup/check", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(checked.status, 200);
    for words in [
        "Directory: </strong><span class=\"ok\">passed",
        "Token request: </strong><span class=\"ok\">passed",
        "User query: </strong><span class=\"ok\">passed",
    ] {
        assert!(checked.text.contains(words), "{words} in {}", checked.text);
    }

    // The audit trail: the vendor made the link; the link did the rest.
    let (_, audit) = manage(&srv, Method::GET, "/tenants/acme/audit?limit=200", None).await;
    let entries: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let actor = format!("setup-link:{link_id}");
    let want: Vec<(String, String)> = [
        ("local-admin", "tenant.create"),
        ("local-admin", "link.create"),
        (actor.as_str(), "link.open"),
        (actor.as_str(), "client.create"),
        (actor.as_str(), "client.rotate"),
        (actor.as_str(), "client.revoke_secret"),
        (actor.as_str(), "wif.set"),
        (actor.as_str(), "setup.check"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(entries, want);
}

/// Entra's token request with a client's secret (basic authentication, as Entra sends it) → its status.
async fn token_status(srv: &TestServer, tenant: &str, client: &str, secret: &str) -> u16 {
    token_status_at(
        &format!("{}/{tenant}/oauth2/token", srv.origin()),
        client,
        secret,
    )
    .await
}

/// [`token_status`] at a token endpoint given whole (as the page shows it).
async fn token_status_at(endpoint: &str, client: &str, secret: &str) -> u16 {
    http()
        .post(endpoint)
        .basic_auth(client, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=scim")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until the clock's second changes: secrets' creation times are kept to the second, and the page
/// tells the older secret from the newer one by them.
async fn next_second() {
    let now = scim_core::manage::links::now();
    while scim_core::manage::links::now() == now {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The tenant's secrets of `client` as the management API lists them: (id, lastUsed).
async fn secrets(srv: &TestServer, client: &str) -> Vec<(String, Option<String>)> {
    let (_, creds) = manage(srv, Method::GET, "/tenants/acme/credentials", None).await;
    let c = creds["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == json!(client))
        .unwrap()
        .clone();
    c["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["lastUsed"].as_str().map(str::to_string),
            )
        })
        .collect()
}

async fn an_old_secret_entra_still_uses_is_flagged_before_retiring(srv: TestServer) {
    tenant(&srv, "acme").await;
    let (_, url) = link(&srv, "acme", json!({"kind": "shareable"})).await;
    let cookie = open(&url).await;
    let csrf = show(&srv, &cookie).await.field("csrf").unwrap();
    let first = post_form(&srv, "/setup/secret", Some(&cookie), &[("csrf", &csrf)]).await;
    let (client, old) = (
        first.field("client-id").unwrap(),
        first.field("new-secret").unwrap(),
    );
    // Entra gets a token with it: its use is written down.
    assert_eq!(token_status(&srv, "acme", &client, &old).await, 200);
    let listed = secrets(&srv, &client).await;
    assert_eq!(listed.len(), 1);
    let (old_id, used) = listed[0].clone();
    let used = used.expect("the use was written down");
    // One secret only: nothing to warn about (retiring the only secret has its own advice).
    let p = show(&srv, &cookie).await;
    assert!(!p.text.contains("Entra still used"), "{}", p.text);
    assert!(p.text.contains(&used), "its last use is shown");

    // Rotation: a second secret. Entra still holds the first, used minutes ago: flagged beside Retire.
    next_second().await;
    let second = post_form(&srv, "/setup/secret", Some(&cookie), &[("csrf", &csrf)]).await;
    let new = second.field("new-secret").unwrap();
    let new_id = secrets(&srv, &client)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .find(|id| *id != old_id)
        .unwrap();
    for p in [&second, &show(&srv, &cookie).await] {
        assert_eq!(p.status, 200, "{}", p.text);
        let warning = format!(
            "<p class=\"warn in-use\" id=\"in-use-{old_id}\" role=\"note\">Entra still used secret <code>{old_id}</code> at {used}. Retiring it now will break provisioning until Entra is updated with the new secret.</p>"
        );
        assert!(p.text.contains(&warning), "{warning} in {}", p.text);
        assert!(
            p.text
                .contains(&format!("aria-describedby=\"in-use-{old_id}\"")),
            "the Retire button points at it"
        );
        assert!(
            !p.text.contains(&format!("in-use-{new_id}")),
            "the new secret is not flagged"
        );
        assert_eq!(p.text.matches("Entra still used").count(), 1);
    }

    // Its last use more than 24 hours ago: no warning.
    let day_ago =
        scim_core::manage::links::now() - scim_core::http::setup::OLD_SECRET_IN_USE_SECS - 60;
    srv.store
        .note_secret_use("acme", &client, &old_id, day_ago)
        .await
        .unwrap();
    assert!(!show(&srv, &cookie).await.text.contains("Entra still used"));
    // Used again now (Entra never got the new one): flagged again. Retiring it is still allowed — the
    // page warns, it does not refuse — and then the warning is gone with the secret.
    srv.store
        .note_secret_use("acme", &client, &old_id, scim_core::manage::links::now())
        .await
        .unwrap();
    assert!(show(&srv, &cookie)
        .await
        .text
        .contains(&format!("in-use-{old_id}")));
    // The new secret used too (Entra switched): the old one is still flagged, the new one never.
    assert_eq!(token_status(&srv, "acme", &client, &new).await, 200);
    let p = show(&srv, &cookie).await;
    assert!(
        p.text.contains(&format!("in-use-{old_id}"))
            && !p.text.contains(&format!("in-use-{new_id}"))
    );
    let retired = post_form(
        &srv,
        "/setup/retire",
        Some(&cookie),
        &[("csrf", &csrf), ("client", &client), ("secret", &old_id)],
    )
    .await;
    assert!(retired.text.contains("is retired"), "{}", retired.text);
    assert!(!retired.text.contains("Entra still used"));
    assert_eq!(token_status(&srv, "acme", &client, &old).await, 401);
}

/// `scim-admin link create|list|revoke` (the module the binary runs), on the server's store: the links it
/// makes open the page; every refusal says why and makes nothing.
async fn scim_admin_link_commands(srv: TestServer) {
    use scim_local::cli::links::{command, origin};
    tenant(&srv, "acme").await;
    let m = scim_core::manage::Manager::new(
        std::sync::Arc::new(srv.store.clone()),
        scim_core::manage::ManageSettings::default(),
    );
    let addr = srv.addr();
    let here = |url: Option<&str>| origin(url, None, "/scim/v2", &addr, false);
    let line = |out: &str, name: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .trim()
            .to_string()
    };
    let run = |words: Vec<&'static str>| {
        let m = m.clone();
        async move { command(&m, &words, here).await }
    };

    // Shareable, with a return URL: it opens the page, which links back.
    let out = command(
        &m,
        &[
            "link",
            "create",
            "acme",
            "shareable",
            "--days",
            "2",
            "--return-url",
            "https://app.vendor.example/settings",
        ],
        &here,
    )
    .await
    .unwrap();
    let (share_id, share_url) = (line(&out, "link id:"), line(&out, "url:"));
    assert_eq!(line(&out, "kind:"), "shareable");
    assert!(
        share_url.starts_with(&format!("{}/setup/acme_", srv.origin())),
        "{out}"
    );
    let cookie = open(&share_url).await;
    let p = show(&srv, &cookie).await;
    assert_eq!(p.status, 200);
    assert!(p
        .text
        .contains("href=\"https://app.vendor.example/settings\""));
    // In-app: opens once.
    let out = command(
        &m,
        &["link", "create", "acme", "in_app", "--minutes", "10"],
        &here,
    )
    .await
    .unwrap();
    let (app_id, app_url) = (line(&out, "link id:"), line(&out, "url:"));
    open(&app_url).await;
    assert_refused(&page(http().get(&app_url)).await, 410, "already used");
    // --url names another origin (the API's, or the custom domain).
    let out = command(
        &m,
        &[
            "link",
            "create",
            "acme",
            "shareable",
            "--url",
            "https://scim.vendor.example/",
        ],
        &here,
    )
    .await
    .unwrap();
    assert!(
        line(&out, "url:").starts_with("https://scim.vendor.example/setup/acme_"),
        "{out}"
    );

    // Listed: each link's state, never its secret.
    let listed = command(&m, &["link", "list", "acme"], &here).await.unwrap();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let row = |id: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(row(&share_id).contains("shareable\tlive"), "{listed}");
    assert!(
        row(&share_id).contains("returns to https://app.vendor.example/settings"),
        "{listed}"
    );
    assert!(row(&app_id).contains("in_app\tused "), "{listed}");
    for url in [&share_url, &app_url] {
        let secret = url.rsplit_once('.').unwrap().1;
        assert!(!listed.contains(secret), "no secret listed");
    }

    // Refusals, each saying why; nothing made.
    for (words, says) in [
        (vec!["link", "create", "acme"], "in_app or shareable"),
        (vec!["link", "create", "acme", "forever"], "not 'forever'"),
        (
            vec!["link", "create", "acme", "shareable", "--days", "31"],
            "1 to 30 days, not 31",
        ),
        (
            vec!["link", "create", "acme", "in_app", "--minutes", "61"],
            "1 to 60 minutes",
        ),
        (
            vec!["link", "create", "acme", "in_app", "--days", "1"],
            "give minutes, not days",
        ),
        (
            vec!["link", "create", "acme", "shareable", "--days", "two"],
            "whole number",
        ),
        (
            vec!["link", "create", "acme", "shareable", "--days"],
            "--days needs a value",
        ),
        (
            vec![
                "link",
                "create",
                "acme",
                "shareable",
                "--days",
                "1",
                "--days",
                "2",
            ],
            "given twice",
        ),
        (
            vec!["link", "create", "acme", "shareable", "--forever"],
            "unexpected '--forever'",
        ),
        (
            vec![
                "link",
                "create",
                "acme",
                "shareable",
                "--return-url",
                "javascript:alert(1)",
            ],
            "returnUrl must be an absolute https:// URL",
        ),
        (
            vec![
                "link",
                "create",
                "acme",
                "shareable",
                "--url",
                "https://x.example/a/b",
            ],
            "no path",
        ),
        (
            vec!["link", "create", "nobody", "shareable"],
            "does not exist",
        ),
        (vec!["link", "create", "default", "shareable"], "reserved"),
        (
            vec!["link", "create", "Acme", "shareable"],
            "not a tenant id",
        ),
        (vec!["link", "revoke", "acme"], "missing <link-id>"),
        (
            vec!["link", "revoke", "acme", "acme_0000000000000000"],
            "has no setup link",
        ),
    ] {
        let e = run(words.clone()).await.unwrap_err();
        assert!(e.contains(says), "{words:?}: {e}");
    }
    assert_eq!(
        command(&m, &["link", "list", "acme"], &here)
            .await
            .unwrap()
            .lines()
            .count(),
        3,
        "nothing made"
    );
    // Another tenant cannot revoke acme's link.
    tenant(&srv, "globex").await;
    assert!(run(vec!["link", "revoke", "globex"])
        .await
        .unwrap_err()
        .contains("missing"));
    let e = command(&m, &["link", "revoke", "globex", &share_id], &here)
        .await
        .unwrap_err();
    assert!(e.contains("has no setup link"), "{e}");

    // Revoked: the link opens nothing, and its session ends.
    let out = command(&m, &["link", "revoke", "acme", &share_id], &here)
        .await
        .unwrap();
    assert!(out.contains("revoked"), "{out}");
    assert_refused(&page(http().get(&share_url)).await, 410, "revoked");
    assert_refused(&show(&srv, &cookie).await, 410, "revoked");
    assert!(command(&m, &["link", "list", "acme"], &here)
        .await
        .unwrap()
        .lines()
        .any(|l| l.starts_with(&share_id) && l.contains("\trevoked ")));

    // In the audit trail as the CLI's user.
    let (_, audit) = manage(&srv, Method::GET, "/tenants/acme/audit?limit=200", None).await;
    let cli = scim_local::cli::clients::cli_principal().0;
    let by_cli: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == json!(cli))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_cli,
        ["link.revoke", "link.create", "link.create", "link.create"]
    );

    // Where a link points when --url is not given.
    let o = |url, public: Option<&str>, aws| origin(url, public, "/scim/v2", "127.0.0.1:8080", aws);
    assert_eq!(o(None, None, false).unwrap(), "http://127.0.0.1:8080");
    assert_eq!(
        o(None, Some("https://scim.vendor.example/scim/v2"), true).unwrap(),
        "https://scim.vendor.example"
    );
    assert_eq!(
        o(
            Some("https://abc.execute-api.eu-west-1.amazonaws.com"),
            None,
            true
        )
        .unwrap(),
        "https://abc.execute-api.eu-west-1.amazonaws.com"
    );
    assert!(o(None, None, true).unwrap_err().contains("needs --url"));
    assert!(o(Some("ftp://x.example"), None, false)
        .unwrap_err()
        .contains("origin"));
}

// ---- the page in a real browser ----

/// chromedriver on a free loopback port, stopped when dropped (as the operator page's browser test).
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
    for _ in 0..100 {
        if http()
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

fn test_output() -> std::path::PathBuf {
    let dir = std::env::var_os("SCIM_TEST_OUTPUT")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../test-output"))
        });
    std::fs::create_dir_all(&dir).expect("create test-output");
    dir
}

/// `<name>.png` as the window shows it, and `<name>-full.png` with the whole page.
async fn shoot(
    c: &fantoccini::Client,
    out: &std::path::Path,
    name: &str,
    width: u32,
) -> Result<(), fantoccini::error::CmdError> {
    std::fs::write(out.join(format!("{name}.png")), c.screenshot().await?)
        .expect("write screenshot");
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await?
        .as_u64()
        .unwrap_or(900) as u32;
    c.set_window_size(width, height + 160).await?;
    std::fs::write(out.join(format!("{name}-full.png")), c.screenshot().await?)
        .expect("write screenshot");
    c.set_window_size(width, 900).await
}

/// The page's warning colours as the browser computes them (`--fail`, `--warn` of its CSS).
const RED: &str = "rgb(214, 69, 61)";
const AMBER: &str = "rgb(201, 138, 18)";

async fn colour(c: &fantoccini::Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    let v = c.execute("const e = document.querySelector(arguments[0]); return e ? getComputedStyle(e).color : 'no element ' + arguments[0]", vec![json!(css)]).await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// The setup page in Debian's chromium (headless, through chromedriver), on both engines: open a shareable
/// link, read the values, generate a secret (shown once: gone after a reload), see the health figures move
/// after provisioning traffic, with the failure ratio in the warning colours; rotate while Entra still
/// uses the first secret and see the amber warning beside its Retire button; fill the WIF form against a
/// loopback JWKS (refused with a closed URL, the typed values kept; saved with the good one, which the
/// server fetched) and see the saved values; a phone-sized window; a revoked link's page. Screenshots in
/// test-output/ (the moto run's with `-moto` in their names). The two runs take turns: one browser at a
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_in_a_real_browser() {
    browser(Engine::Dynoxide, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_page_in_a_real_browser_on_moto() {
    browser(Engine::Moto, "-moto").await
}

static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn browser(engine: Engine, suffix: &str) {
    use fantoccini::{ClientBuilder, Locator};
    let _turn = ONE_BROWSER.lock().await;
    let srv = server(engine).await;
    tenant(&srv, "acme").await;
    let token = srv.add_tenant_token("acme", None).await;
    let (link_id, url) = link(
        &srv,
        "acme",
        json!({"kind": "shareable", "returnUrl": "https://app.vendor.example/settings"}),
    )
    .await;
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
        c.goto(&url).await?;
        c.wait()
            .for_element(Locator::Css("input#tenant-url"))
            .await?;
        let here = c.current_url().await?;
        assert_eq!(here.path(), "/setup", "the secret left the address bar");
        let h1 = c.find(Locator::Css("h1")).await?.text().await?;
        assert_eq!(h1, "Connect Microsoft Entra ID");
        let tenant_url = c
            .find(Locator::Css("input#tenant-url"))
            .await?
            .prop("value")
            .await?;
        assert_eq!(
            tenant_url.as_deref(),
            Some(srv.tenant_base("acme").as_str())
        );
        let labels = c.find_all(Locator::Css("label")).await?.len();
        assert!(labels >= 6, "labelled fields: {labels}");
        shoot(&c, &out, &format!("setup-page{suffix}"), 1366).await?;

        // Generate a secret: shown once.
        c.find(Locator::Css("button#generate"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::Css("input#new-secret"))
            .await?;
        let secret = c
            .find(Locator::Css("input#new-secret"))
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        assert_eq!(secret.len(), 64);
        let text = c
            .find(Locator::Css("#new-secret-box"))
            .await?
            .text()
            .await?;
        assert!(text.contains("shown only this once"), "{text}");
        shoot(&c, &out, &format!("setup-secret-shown-once{suffix}"), 1366).await?;
        c.goto(&format!("{}/setup", srv.origin())).await?;
        c.wait().for_element(Locator::Css("table#secrets")).await?;
        assert!(
            !c.source().await?.contains(&secret),
            "a reload does not show the secret"
        );

        // Provisioning traffic: 2 of 4 requests fail (50 %: over Entra's 40 %, in red).
        for (path, want) in [
            ("/Users", 200),
            ("/Groups", 200),
            ("/Users/missing-1", 404),
            ("/Users/missing-2", 404),
        ] {
            let r = srv
                .call_at(&srv.tenant_base("acme"), &token, Method::GET, path, None)
                .await;
            assert_eq!(r.status, want);
        }
        c.refresh().await?;
        c.wait().for_element(Locator::Css("#ratio")).await?;
        let ratio = c.find(Locator::Css("#ratio")).await?.text().await?;
        assert_eq!(ratio, "50.0 %");
        assert_eq!(colour(&c, "#ratio").await?, RED, "the ratio over 40 %");
        assert_eq!(colour(&c, "#ratio-warning").await?, RED);
        let warning = c.find(Locator::Css("#ratio-warning")).await?.text().await?;
        assert!(
            warning.contains("40 %") && warning.contains("quarantine"),
            "{warning}"
        );
        let kinds = c.find(Locator::Css("table#kinds")).await?.text().await?;
        assert!(kinds.contains("does not exist here"), "{kinds}");
        let requests = c.find(Locator::Css("#requests .v")).await?.text().await?;
        assert_eq!(requests, "4");
        shoot(&c, &out, &format!("setup-health-red{suffix}"), 1366).await?;
        // Three more good requests: 2 of 7 (28.6 %), amber.
        for _ in 0..3 {
            srv.call_at(
                &srv.tenant_base("acme"),
                &token,
                Method::GET,
                "/Users",
                None,
            )
            .await;
        }
        c.refresh().await?;
        c.wait().for_element(Locator::Css("#ratio")).await?;
        assert_eq!(
            colour(&c, "#ratio").await?,
            AMBER,
            "28.6 %: half-way warning"
        );

        // The connection check, in words.
        c.find(Locator::Css("button#check")).await?.click().await?;
        c.wait().for_element(Locator::Css("ul#checks")).await?;
        let checks = c.find(Locator::Css("ul#checks")).await?.text().await?;
        assert!(checks.contains("User query: passed"), "{checks}");

        // Rotation while Entra still uses the first secret: an amber warning beside its Retire button.
        let client = c
            .find(Locator::Css("input#client-id"))
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        assert_eq!(token_status(&srv, "acme", &client, &secret).await, 200);
        let (old_id, used) = secrets(&srv, &client).await.remove(0);
        let used = used.expect("Entra's use written down");
        next_second().await;
        c.find(Locator::Css("button#generate"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::Css("input#new-secret"))
            .await?;
        let warning_css = format!("#in-use-{old_id}");
        let warning = c
            .find(Locator::Css(&warning_css))
            .await?
            .text()
            .await?;
        assert_eq!(
            warning,
            format!("Entra still used secret {old_id} at {used}. Retiring it now will break provisioning until Entra is updated with the new secret.")
        );
        assert_eq!(colour(&c, &warning_css).await?, AMBER, "the warning in amber");
        // Right under the old secret's row, with its Retire button.
        let row = c
            .find(Locator::Css(&format!(
                "tr[data-secret='{old_id}'] + tr.in-use-note {warning_css}"
            )))
            .await?
            .text()
            .await?;
        assert_eq!(row, warning);
        let described = c
            .find(Locator::Css(&format!("tr[data-secret='{old_id}'] button.danger")))
            .await?
            .attr("aria-describedby")
            .await?;
        assert_eq!(described.as_deref(), Some(&warning_css[1..]));
        assert_eq!(
            c.find_all(Locator::Css("p.in-use")).await?.len(),
            1,
            "only the old secret is flagged"
        );
        c.execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
            vec![json!(warning_css)],
        )
        .await?;
        shoot(&c, &out, &format!("setup-old-secret-in-use{suffix}"), 1366).await?;

        // Workload identity federation: typed into the form, checked against the JWKS on save.
        let jwks = scim_tests::jwks::JwksServer::start(vec![TestKey::generate("k1")]).await;
        let issuer = "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/v2.0";
        let subject = "6dfd4b2e-1111-4aaa-8bbb-0123456789ab";
        let audience = "api://AzureADTokenExchange";
        c.goto(&format!("{}/setup", srv.origin())).await?;
        c.wait().for_element(Locator::Css("form#wif-form")).await?;
        for (id, value) in [
            ("issuer", issuer.to_string()),
            ("subject", subject.to_string()),
            ("audience", audience.to_string()),
            ("jwks_url", scim_tests::jwks::closed_url()),
        ] {
            c.find(Locator::Css(&format!("input#{id}")))
                .await?
                .send_keys(&value)
                .await?;
        }
        c.find(Locator::Css("button#save-wif"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#notice")).await?;
        let notice = c.find(Locator::Css("#notice")).await?.text().await?;
        assert!(notice.starts_with("Not saved"), "{notice}");
        c.find(Locator::Css("#notice.fail")).await?;
        let kept = c
            .find(Locator::Css("input#subject"))
            .await?
            .prop("value")
            .await?;
        assert_eq!(kept.as_deref(), Some(subject), "the typed values are kept");
        assert_eq!(jwks.fetches(), 0);
        let field = c.find(Locator::Css("input#jwks_url")).await?;
        field.clear().await?;
        field.send_keys(jwks.url()).await?;
        c.find(Locator::Css("button#save-wif"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#notice")).await?;
        let notice = c.find(Locator::Css("#notice")).await?.text().await?;
        assert!(
            notice.contains("Workload identity federation saved")
                && notice.contains("serves 1 RSA signing key"),
            "{notice}"
        );
        assert!(jwks.fetches() >= 1, "the server fetched the JWKS on save");
        // Saved: shown on the page itself, after a reload.
        c.goto(&format!("{}/setup", srv.origin())).await?;
        c.wait().for_element(Locator::Css("#wif-current")).await?;
        let current = c.find(Locator::Css("#wif-current")).await?.text().await?;
        assert!(
            current.contains(issuer) && current.contains(subject),
            "{current}"
        );
        for (id, want) in [
            ("issuer", issuer),
            ("subject", subject),
            ("audience", audience),
            ("jwks_url", jwks.url()),
        ] {
            let v = c
                .find(Locator::Css(&format!("input#{id}")))
                .await?
                .prop("value")
                .await?;
            assert_eq!(v.as_deref(), Some(want), "{id}");
        }
        let (s, w) = manage(&srv, Method::GET, "/tenants/acme/wif", None).await;
        assert_eq!((s, w["subject"].as_str()), (200, Some(subject)));
        shoot(&c, &out, &format!("setup-wif-saved{suffix}"), 1366).await?;

        // On a phone: one column, nothing wider than the screen.
        c.set_window_size(390, 844).await?;
        c.goto(&format!("{}/setup", srv.origin())).await?;
        let overflow = c
            .execute(
                "const w = window.innerWidth; const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1).map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5); return document.documentElement.scrollWidth > w ? wide.join(' ') || 'wider' : false",
                vec![],
            )
            .await?;
        assert_eq!(overflow, json!(false), "no sideways scrolling on a phone");
        shoot(&c, &out, &format!("setup-phone{suffix}"), 390).await?;
        c.set_window_size(1366, 900).await?;

        // Revoked: the next page view says so.
        let (s, _) = manage(
            &srv,
            Method::DELETE,
            &format!("/tenants/acme/setup-links/{link_id}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        c.refresh().await?;
        let body = c.find(Locator::Css("body")).await?.text().await?;
        assert!(body.contains("This setup link was revoked"), "{body}");
        shoot(&c, &out, &format!("setup-revoked{suffix}"), 1366).await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.expect("browser steps");
}
