//! The `setup` Lambda function (the customer's setup page on AWS), by API Gateway HTTP API (payload 2.0)
//! events of its routes `ANY /setup` and `ANY /setup/{proxy+}`, converted as the function's runner
//! converts them (`scim_core::http::lambda::request_from_str`) and served by the function's own router
//! (`scim_setup::app`), on both engines. As API Gateway sends them: cookies in the event's `cookies`
//! field (not a header), form bodies base64-encoded, the caller's address in `requestContext.http`.
//!
//! A link opens (303, a `Secure` session cookie even where no header says TLS), the page shows the
//! tenant's URLs on the API's host (or the custom domain), a form with the session's CSRF token works and
//! one without it, or from another site, is refused and changes nothing; failed link openings are
//! counted per caller address from the event (not from a header the caller writes); the health section
//! shows the tenant's request figures read from CloudWatch (moto's) by the reader `main` attaches, or, with
//! none attached, says they are in the provider's monitoring.

use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use scim_core::auth::Auth;
use scim_core::config::{HttpConfig, Limits};
use scim_core::http::AppState;
use scim_core::manage::{Manager, Principal, RequestFigures};
use scim_core::oauth::assertion::{Jwks, JwksSettings};
use scim_core::oauth::signing::KeyRing;
use scim_core::oauth::{OAuth, OAuthSettings};
use scim_core::service::Service;
use scim_tests::{fresh_store, Engine, Page};
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

const HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";
const CALLER: &str = "203.0.113.7";

/// One request as API Gateway hands it to the function.
struct Ev<'a> {
    method: &'a str,
    path: &'a str,
    source_ip: &'a str,
    cookies: Vec<String>,
    headers: Vec<(&'a str, &'a str)>,
    form: Option<Vec<(&'a str, &'a str)>>,
    tls_header: bool,
}

impl<'a> Ev<'a> {
    fn get(path: &'a str) -> Self {
        Ev {
            method: "GET",
            path,
            source_ip: CALLER,
            cookies: Vec::new(),
            headers: Vec::new(),
            form: None,
            tls_header: true,
        }
    }
    fn post(path: &'a str, form: Vec<(&'a str, &'a str)>) -> Self {
        Ev {
            method: "POST",
            form: Some(form),
            ..Self::get(path)
        }
    }
    fn cookie(mut self, c: &str) -> Self {
        self.cookies.push(c.to_string());
        self
    }
    fn header(mut self, k: &'a str, v: &'a str) -> Self {
        self.headers.push((k, v));
        self
    }
    fn from(mut self, ip: &'a str) -> Self {
        self.source_ip = ip;
        self
    }

    /// The payload 2.0 event of this request.
    fn event(&self) -> String {
        let mut headers = json!({
            "accept": "text/html",
            "host": HOST,
            "user-agent": "Mozilla/5.0",
            "x-forwarded-for": self.source_ip,
            "x-forwarded-port": "443",
        });
        if self.tls_header {
            headers["x-forwarded-proto"] = json!("https");
        }
        for (k, v) in &self.headers {
            headers[*k] = json!(v);
        }
        let route = if self.path == "/setup" {
            "ANY /setup"
        } else {
            "ANY /setup/{proxy+}"
        };
        let mut ev = json!({
            "version": "2.0",
            "routeKey": route,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": HOST,
                "domainPrefix": "abc123",
                "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": self.source_ip, "userAgent": "Mozilla/5.0"},
                "requestId": "Jx1ZbgHUPHcEMkQ=",
                "routeKey": route,
                "stage": "$default",
                "time": "07/Dec/2026:03:00:00 +0000",
                "timeEpoch": 1796612400000u64
            },
            "isBase64Encoded": false
        });
        if let Some(p) = self.path.strip_prefix("/setup/") {
            ev["pathParameters"] = json!({"proxy": p});
        }
        if !self.cookies.is_empty() {
            ev["cookies"] = json!(self.cookies);
        }
        if let Some(form) = &self.form {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            // HTTP APIs hand a form post's body over base64-encoded.
            ev["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
            ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
            ev["isBase64Encoded"] = json!(true);
        }
        ev.to_string()
    }
}

struct Function {
    router: Router,
    manager: Manager,
}

impl Function {
    /// The `setup` function as its `main` builds it (no single-tenant token; OAuth on, as with a key
    /// ring in SSM), with `http` settings, without a reader of request figures (as under `cargo lambda
    /// watch`).
    async fn start(engine: Engine, http: HttpConfig) -> Self {
        Self::start_with(engine, http, None).await
    }

    /// [`Self::start`], with `figures` attached to the manager as `main` attaches CloudWatch's.
    async fn start_with(
        engine: Engine,
        http: HttpConfig,
        figures: Option<Arc<dyn RequestFigures>>,
    ) -> Self {
        let ring = KeyRing::parse(&KeyRing::generate_text("setup1")).unwrap();
        let oauth = OAuth::new(
            ring,
            OAuthSettings::default(),
            Jwks::with_settings(JwksSettings::default()),
        );
        let store = fresh_store(engine).await;
        let state = AppState::new(
            Service::new(Arc::new(store), Limits::default()),
            Auth::tenant_tokens_only().with_oauth(Some(Arc::new(oauth))),
            http,
        );
        let mut manager = scim_setup::manager(&state).expect("management settings");
        if let Some(f) = figures {
            manager = manager.with_figures(f);
        }
        Function {
            router: scim_setup::app(state, Arc::new(manager.clone())),
            manager,
        }
    }

    async fn invoke(&self, ev: &Ev<'_>) -> Page {
        let req = scim_core::http::lambda::request_from_str(&ev.event())
            .expect("an API Gateway v2 event");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).to_string(),
        }
    }

    /// A tenant and a shareable link to its page, made as the management API makes them (the links
    /// name the API's host).
    async fn tenant_and_link(&self, tenant: &str) -> String {
        let vendor = Principal("arn:aws:sts::123456789012:assumed-role/vendor-backend/s".into());
        self.manager
            .create_tenant(&vendor, tenant, None, None)
            .await
            .unwrap();
        let link = self
            .manager
            .create_link(
                &vendor,
                tenant,
                "shareable",
                Some(2),
                None,
                None,
                &format!("https://{HOST}"),
            )
            .await
            .unwrap();
        link.url
    }

    async fn clients(&self, tenant: &str) -> usize {
        self.manager.store.list_clients(tenant).await.unwrap().len()
    }

    /// A session on `tenant`'s page: a new tenant, its link opened; the session cookie.
    async fn session(&self, tenant: &str) -> String {
        let url = self.tenant_and_link(tenant).await;
        let opened = self.invoke(&Ev::get(&path_of(&url))).await;
        assert_eq!(opened.status, 303, "{}", opened.text);
        opened
            .header("set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }
}

/// The path of a link URL (what API Gateway routes on).
fn path_of(url: &str) -> String {
    let rest = url.strip_prefix(&format!("https://{HOST}")).unwrap();
    rest.to_string()
}

async fn a_link_opens_the_page_and_its_forms_need_the_token(engine: Engine) {
    let f = Function::start(engine, HttpConfig::default()).await;
    let url = f.tenant_and_link("acme").await;
    let path = path_of(&url);

    // Opening: 303 to /setup with the session cookie, Secure on Lambda even when no header says TLS.
    let mut ev = Ev::get(&path);
    ev.tls_header = false;
    let opened = f.invoke(&ev).await;
    assert_eq!(opened.status, 303, "{}", opened.text);
    assert_eq!(opened.header("location"), "/setup");
    let set = opened.header("set-cookie").to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/setup", "; Secure"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();

    // The page: the tenant's values on the API's host; with no reader of request figures attached, the
    // health figures said to be elsewhere.
    let page = f.invoke(&Ev::get("/setup").cookie(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains(&format!("https://{HOST}/acme/scim/v2")),
        "the Tenant URL in {}",
        page.text
    );
    assert!(page
        .text
        .contains(&format!("https://{HOST}/acme/oauth2/token")));
    assert!(
        page.text
            .contains("does not record request figures here; your provider sees them"),
        "{}",
        page.text
    );
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page
        .header("content-security-policy")
        .contains("default-src 'none'"));
    // Without the cookie: no page.
    let none = f.invoke(&Ev::get("/setup")).await;
    assert_eq!(none.status, 401);
    assert!(none.text.contains("session has ended"), "{}", none.text);

    let csrf = page.field("csrf").expect("the CSRF field");
    let origin = format!("https://{HOST}");
    // Without the token, with another session's token, or from another site: refused, nothing made.
    let other = f.invoke(&Ev::get(&path)).await;
    let other_cookie = other.header("set-cookie").split(';').next().unwrap();
    let other_csrf = f
        .invoke(&Ev::get("/setup").cookie(other_cookie))
        .await
        .field("csrf")
        .unwrap();
    assert_ne!(other_csrf, csrf);
    for (what, ev) in [
        (
            "no token",
            Ev::post("/setup/secret", vec![]).cookie(&cookie),
        ),
        (
            "another session's token",
            Ev::post("/setup/secret", vec![("csrf", &other_csrf)]).cookie(&cookie),
        ),
        (
            "another site",
            Ev::post("/setup/secret", vec![("csrf", &csrf)])
                .cookie(&cookie)
                .header("origin", "https://evil.example"),
        ),
    ] {
        let r = f.invoke(&ev).await;
        assert_eq!(r.status, 403, "{what}: {}", r.text);
    }
    assert_eq!(f.clients("acme").await, 0, "nothing was made");

    // With it: a client secret, shown in this answer.
    let made = f
        .invoke(
            &Ev::post("/setup/secret", vec![("csrf", &csrf)])
                .cookie(&cookie)
                .header("origin", &origin)
                .header("sec-fetch-site", "same-origin"),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text);
    assert!(
        made.text.contains("Your new client secret"),
        "{}",
        made.text
    );
    assert_eq!(made.field("new-secret").map(|s| s.len()), Some(64));
    assert_eq!(f.clients("acme").await, 1);
    // The page's own cookie among others (API Gateway joins the `cookies` field for the function).
    let again = f
        .invoke(&Ev::get("/setup").cookie("theme=dark").cookie(&cookie))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert!(!again.text.contains("Your new client secret"));
}

async fn guessing_is_counted_per_caller_address(engine: Engine) {
    let f = Function::start(engine, HttpConfig::default()).await;
    let url = f.tenant_and_link("acme").await;
    // Ten wrong links from one address, then that address waits, whatever X-Forwarded-For it writes.
    let mut last = 0;
    for n in 0..11 {
        let guess = format!("/setup/acme_{n:016x}.{}", "0".repeat(64));
        last = f.invoke(&Ev::get(&guess)).await.status;
    }
    assert_eq!(last, 429, "the eleventh guess");
    let spoofed = f
        .invoke(&Ev::get(&path_of(&url)).header("x-forwarded-for", "198.51.100.9"))
        .await;
    assert_eq!(spoofed.status, 429, "a header does not make another caller");
    assert!(spoofed.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Another caller is not held back by them.
    let other = f
        .invoke(&Ev::get(&path_of(&url)).from("198.51.100.9"))
        .await;
    assert_eq!(other.status, 303, "{}", other.text);
}

/// With a custom domain (the template sets `SCIM_PUBLIC_URL` to `https://<DomainName>/scim/v2`), the page
/// names the domain, whichever host the request came to.
async fn the_page_names_the_custom_domain(engine: Engine) {
    let http = HttpConfig {
        public_url: Some("https://scim.vendor.example/scim/v2".into()),
        ..HttpConfig::default()
    };
    let f = Function::start(engine, http).await;
    let url = f.tenant_and_link("acme").await;
    let opened = f.invoke(&Ev::get(&path_of(&url))).await;
    assert_eq!(opened.status, 303, "{}", opened.text);
    let cookie = opened.header("set-cookie").split(';').next().unwrap();
    let page = f.invoke(&Ev::get("/setup").cookie(cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page
        .text
        .contains("https://scim.vendor.example/acme/scim/v2"));
    assert!(page
        .text
        .contains("https://scim.vendor.example/acme/oauth2/token"));
}

/// A CloudWatch client of moto (CloudWatch is moto's whichever engine holds the table).
/// The text of the health section's element `id` (a card's value, or the element itself when it holds
/// the value), tags stripped.
fn health_value(page: &str, id: &str) -> String {
    let health = &page[page.find("id=\"health\"").expect("the health section")..];
    let at = health
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {health}"));
    let rest = &health[at..];
    let tag_start = health[..at].rfind('<').unwrap();
    // A card: its value is in the `v` element inside it.
    let rest = if health[tag_start..at].contains("class=\"card\"") {
        &rest[rest.find("class=\"v").expect("the card's value")..]
    } else {
        rest
    };
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].trim().to_string()
}

/// On AWS the page's process serves no SCIM request: the health section's request figures are the SCIM
/// functions' metrics read back from CloudWatch by the reader `main` attaches (the manage function's
/// status route reads them the same way). Put into moto's CloudWatch as the functions' metric lines
/// become: the page shows the tenant's own last hour (not another tenant's), its failures by kind with
/// what they mean, and the warning when the failure ratio passes Entra's 40 % quarantine threshold. A
/// CloudWatch that cannot be reached leaves the figures out, in words; the page still answers.
async fn the_health_section_shows_the_figures_from_cloudwatch(engine: Engine) {
    use scim_core::metrics::cloudwatch::CloudWatchFigures;
    // Both engines' tests share moto's CloudWatch: each its own namespace and tenant.
    let namespace = format!("ScimSetup/{}/{engine:?}", std::process::id());
    let acme = format!("acme-{}", format!("{engine:?}").to_lowercase());
    let acme = acme.as_str();
    let cw = scim_tests::cloudwatch(&scim_tests::endpoint(Engine::Moto));
    let f = Function::start_with(
        engine,
        HttpConfig::default(),
        Some(Arc::new(CloudWatchFigures::new(cw.clone(), &namespace))),
    )
    .await;
    let cookie = f.session(acme).await;

    // Nothing recorded yet: zeros, no ratio, no warning; no word of the figures being elsewhere only.
    let page = f.invoke(&Ev::get("/setup").cookie(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        !page.text.contains("does not record request figures here"),
        "{}",
        page.text
    );
    assert!(page.text.contains("from your provider's monitoring"));
    assert_eq!(health_value(&page.text, "requests"), "0");
    assert_eq!(health_value(&page.text, "failures"), "0");
    assert_eq!(health_value(&page.text, "ratio"), "–");
    assert_eq!(
        health_value(&page.text, "last-request"),
        "none in the last hour"
    );
    assert!(!page.text.contains("id=\"ratio-warning\""));

    scim_tests::put_figures(
        &cw,
        &namespace,
        &[
            ("Requests", acme, None, 5.0),
            ("Failures", acme, None, 3.0),
            ("ServerErrors", acme, None, 1.0),
            ("FailuresByKind", acme, Some("409 uniqueness"), 2.0),
            ("FailuresByKind", acme, Some("500"), 1.0),
            ("Requests", "globex", None, 40.0),
            ("Failures", "globex", None, 1.0),
        ],
    )
    .await;

    let page = f.invoke(&Ev::get("/setup").cookie(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(health_value(&page.text, "requests"), "5", "{}", page.text);
    assert_eq!(health_value(&page.text, "failures"), "3");
    assert_eq!(health_value(&page.text, "ratio"), "60.0 %");
    let last = health_value(&page.text, "last-request");
    assert!(
        last.starts_with("20") && last.ends_with('Z'),
        "the minute of the last request, not {last:?}"
    );
    assert!(
        page.text.contains("id=\"ratio-warning\"")
            && page
                .text
                .contains("More than 40 % of Entra's requests failed in the last hour"),
        "{}",
        page.text
    );
    let kinds = &page.text[page.text.find("id=\"kinds\"").expect("failures by kind")..];
    for row in [
        "<td>409 uniqueness</td><td>A user or group with that name already exists here.</td><td>2</td>",
        "<td>500</td><td>The server failed; Entra retries these.</td><td>1</td>",
    ] {
        assert!(kinds.contains(row), "{row} in {kinds}");
    }

    // CloudWatch out of reach: the page answers, says so, and shows no figure.
    let gone = Function::start_with(
        engine,
        HttpConfig::default(),
        Some(Arc::new(CloudWatchFigures::new(
            scim_tests::cloudwatch("http://127.0.0.1:9"),
            &namespace,
        ))),
    )
    .await;
    let cookie = gone.session(acme).await;
    let page = gone.invoke(&Ev::get("/setup").cookie(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .contains("could not be read from your provider's monitoring just now"),
        "{}",
        page.text
    );
    for id in ["requests", "failures", "ratio", "last-request"] {
        assert_eq!(health_value(&page.text, id), "–", "#{id}");
    }
    assert!(!page.text.contains("id=\"ratio-warning\""));
}

scim_tests::both_engines!(
    a_link_opens_the_page_and_its_forms_need_the_token,
    guessing_is_counted_per_caller_address,
    the_page_names_the_custom_domain,
    the_health_section_shows_the_figures_from_cloudwatch,
);
