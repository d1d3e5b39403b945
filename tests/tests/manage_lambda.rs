//! The `manage` Lambda function on AWS, by the Lambda event's IAM context as API Gateway passes it: API
//! Gateway HTTP API (payload 2.0) events of the `ANY /manage/v1/{proxy+}` route, converted as the
//! function's runner converts them (`scim_core::http::lambda::request_from_str`) and served by the
//! function's own router (`scim_manage::app`), on both engines. The caller named by
//! `requestContext.authorizer.iam.userArn` is the principal, and the audit trail records it; an event
//! without the IAM authoriser's context — none at all, a SCIM bearer token, a JWT authoriser's claims, a
//! Lambda authoriser's context, an IAM context without a `userArn` — is answered 401 `unauthenticated`
//! and changes nothing.

use axum::Router;
use http_body_util::BodyExt;
use scim_core::auth::Auth;
use scim_core::config::{HttpConfig, Limits};
use scim_core::http::AppState;
use scim_core::service::Service;
use scim_tests::{fresh_store, Engine};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// The role a vendor's backend assumes, as API Gateway's IAM authorisation names it.
const VENDOR_ARN: &str = "arn:aws:sts::123456789012:assumed-role/vendor-backend/session";
const HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";

/// API Gateway's IAM authoriser context for [`VENDOR_ARN`] (the shape HTTP APIs send: every field,
/// `cognitoIdentity` null for a role session).
fn iam() -> Value {
    json!({
        "iam": {
            "accessKey": "ASIAZZZZZZZZZZEXAMPLE",
            "accountId": "123456789012",
            "callerId": "AROAZZZZZZZZZZEXAMPLE:session",
            "cognitoIdentity": null,
            "principalOrgId": "o-abcdefghij",
            "userArn": VENDOR_ARN,
            "userId": "AROAZZZZZZZZZZEXAMPLE:session"
        }
    })
}

/// An API Gateway HTTP API (payload 2.0) event of the management route for `method path`, with
/// `authorizer` as its request context's authoriser (None: a route without authorisation).
fn event(
    method: &str,
    path: &str,
    query: &str,
    authorizer: Option<Value>,
    extra_headers: &[(&str, &str)],
    body: Option<&Value>,
) -> String {
    let mut headers = json!({
        "accept": "application/json",
        "host": HOST,
        "user-agent": "vendor-backend/1.0",
        "x-amz-date": "20261207T030000Z",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https"
    });
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    for (k, v) in extra_headers {
        headers[*k] = json!(v);
    }
    let proxy = path.strip_prefix("/manage/v1/").unwrap_or("");
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": HOST,
        "domainPrefix": "abc123",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "vendor-backend/1.0"},
        "requestId": "Jx1ZbgHUPHcEMkQ=",
        "routeKey": "ANY /manage/v1/{proxy+}",
        "stage": "$default",
        "time": "07/Dec/2026:03:00:00 +0000",
        "timeEpoch": 1796612400000u64
    });
    if let Some(a) = authorizer {
        context["authorizer"] = a;
    }
    json!({
        "version": "2.0",
        "routeKey": "ANY /manage/v1/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "pathParameters": {"proxy": proxy},
        "requestContext": context,
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
    .to_string()
}

struct Function {
    router: Router,
}

impl Function {
    /// The `manage` function as its `main` builds it: a state without a single-tenant token, the
    /// management operations with the state's gate, the function's router.
    async fn start(engine: Engine) -> Self {
        Self::start_with(engine, Auth::tenant_tokens_only(), HttpConfig::default()).await
    }

    async fn start_with(engine: Engine, auth: Auth, http: HttpConfig) -> Self {
        let store = fresh_store(engine).await;
        let state = AppState::new(Service::new(Arc::new(store), Limits::default()), auth, http);
        let manager = scim_manage::manager(&state).expect("management settings");
        Function {
            router: scim_manage::app(state, Arc::new(manager)),
        }
    }

    async fn invoke(&self, event: &str) -> (u16, axum::http::HeaderMap, Value) {
        let req =
            scim_core::http::lambda::request_from_str(event).expect("an API Gateway v2 event");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A call signed by the vendor's backend (the IAM context present).
    async fn as_vendor(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (s, _, b) = self
            .invoke(&event(method, path, "", Some(iam()), &[], body))
            .await;
        (s, b)
    }

    /// The audit trail of `tenant` as (action, actor), oldest first.
    async fn audit(&self, tenant: &str) -> Vec<(String, String)> {
        let (s, _, b) = self
            .invoke(&event(
                "GET",
                &format!("/manage/v1/tenants/{tenant}/audit"),
                "limit=200",
                Some(iam()),
                &[],
                None,
            ))
            .await;
        assert_eq!(s, 200, "{b}");
        let mut v: Vec<(String, String)> = b["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["actor"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.reverse();
        v
    }
}

/// A refusal for want of the IAM principal: 401, `unauthenticated`, not cached.
fn assert_unauthenticated(what: &str, (s, h, b): &(u16, axum::http::HeaderMap, Value)) {
    assert_eq!(*s, 401, "{what}: {b}");
    assert_eq!(b["error"]["code"], "unauthenticated", "{what}: {b}");
    assert!(h.contains_key("www-authenticate"), "{what}");
    assert_eq!(h["cache-control"], "no-store", "{what}");
}

async fn iam_principal_is_the_caller(engine: Engine) {
    let f = Function::start(engine).await;

    // Onboarding by the vendor's backend, signed with its role.
    let (s, b) = f
        .as_vendor(
            "POST",
            "/manage/v1/tenants",
            Some(&json!({"id": "acme", "displayName": "Acme Corp", "metadata": {"orgId": "org_123"}})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (b["id"].as_str(), b["state"].as_str()),
        (Some("acme"), Some("active"))
    );
    let (s, b) = f.as_vendor("GET", "/manage/v1/tenants/acme", None).await;
    assert_eq!(
        (s, b["displayName"].as_str()),
        (200, Some("Acme Corp")),
        "{b}"
    );

    // A token issued and a pause, each recorded with the role's ARN as its actor.
    let (s, b) = f
        .as_vendor(
            "POST",
            "/manage/v1/tenants/acme/tokens",
            Some(&json!({"label": "entra"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = f
        .as_vendor("POST", "/manage/v1/tenants/acme/pause", None)
        .await;
    assert_eq!((s, b["state"].as_str()), (200, Some("paused")), "{b}");
    let actor = VENDOR_ARN.to_string();
    assert_eq!(
        f.audit("acme").await,
        vec![
            ("tenant.create".to_string(), actor.clone()),
            ("token.issue".to_string(), actor.clone()),
            ("tenant.pause".to_string(), actor),
        ]
    );

    // The connection details name the API's own host (the request's Host header on Lambda).
    let (s, b) = f
        .as_vendor("GET", "/manage/v1/tenants/acme/connection", None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tenantUrl"], format!("https://{HOST}/acme/scim/v2"));

    // The OpenAPI document, behind the same authorisation.
    let (s, b) = f.as_vendor("GET", "/manage/v1/openapi.json", None).await;
    assert_eq!((s, b["openapi"].is_string()), (200, true));
}

async fn without_the_iam_context_nothing_is_done(engine: Engine) {
    let f = Function::start(engine).await;
    let (s, b) = f
        .as_vendor("POST", "/manage/v1/tenants", Some(&json!({"id": "acme"})))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = f
        .as_vendor(
            "POST",
            "/manage/v1/tenants/acme/tokens",
            Some(&json!({"label": "entra"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let scim_token = b["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {scim_token}");
    let create = json!({"id": "beta"});
    let jwt = json!({"jwt": {
        "claims": {"iss": "https://login.example.com/", "sub": "vendor-backend", "aud": "manage", "scope": "manage"},
        "scopes": ["manage"]
    }});
    let lambda_authorizer = json!({"lambda": {"principalId": VENDOR_ARN, "userArn": VENDOR_ARN}});
    let iam_without_arn = json!({"iam": {
        "accessKey": "ASIAZZZZZZZZZZEXAMPLE", "accountId": "123456789012", "callerId": "AROAZZZZZZZZZZEXAMPLE:session",
        "cognitoIdentity": null, "principalOrgId": null, "userArn": "", "userId": "AROAZZZZZZZZZZEXAMPLE:session"
    }});

    let cases: Vec<(&str, String)> = vec![
        // A route without authorisation (no authorizer in the request context at all).
        (
            "no authorizer",
            event("POST", "/manage/v1/tenants", "", None, &[], Some(&create)),
        ),
        // A tenant's SCIM bearer token, which works on its SCIM routes, is no management credential.
        (
            "SCIM bearer token",
            event(
                "POST",
                "/manage/v1/tenants",
                "",
                None,
                &[("authorization", &bearer)],
                Some(&create),
            ),
        ),
        (
            "SCIM bearer token, reading",
            event(
                "GET",
                "/manage/v1/tenants/acme/credentials",
                "",
                None,
                &[("authorization", &bearer)],
                None,
            ),
        ),
        // A JWT authoriser's claims (a route configured with another authoriser) name no IAM principal.
        (
            "JWT authorizer",
            event(
                "POST",
                "/manage/v1/tenants",
                "",
                Some(jwt.clone()),
                &[("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln")],
                Some(&create),
            ),
        ),
        (
            "JWT authorizer, deleting",
            event(
                "DELETE",
                "/manage/v1/tenants/acme",
                "",
                Some(jwt),
                &[],
                None,
            ),
        ),
        (
            "Lambda authorizer",
            event(
                "POST",
                "/manage/v1/tenants",
                "",
                Some(lambda_authorizer),
                &[],
                Some(&create),
            ),
        ),
        (
            "IAM context without a userArn",
            event(
                "POST",
                "/manage/v1/tenants/acme/pause",
                "",
                Some(iam_without_arn),
                &[],
                None,
            ),
        ),
        // SigV4 headers the client sent are not the authoriser's verdict: only the context counts.
        (
            "SigV4 headers without the IAM context",
            event(
                "POST",
                "/manage/v1/tenants",
                "",
                None,
                &[
                    ("authorization", "AWS4-HMAC-SHA256 Credential=ASIAZZZZZZZZZZEXAMPLE/20261207/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000"),
                    ("x-amz-security-token", "FwoGZXIvYXdzEXAMPLE"),
                ],
                Some(&create),
            ),
        ),
    ];
    for (what, ev) in &cases {
        assert_unauthenticated(what, &f.invoke(ev).await);
    }

    // Nothing of it happened: no tenant beta, acme still active, the audit trail as before.
    let (s, b) = f.as_vendor("GET", "/manage/v1/tenants/beta", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("tenant_not_found")),
        "{b}"
    );
    let (s, b) = f.as_vendor("GET", "/manage/v1/tenants/acme", None).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("active")), "{b}");
    let actions: Vec<String> = f.audit("acme").await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["tenant.create", "token.issue"]);
}

/// With a custom domain (the template sets `SCIM_PUBLIC_URL` to `https://<DomainName>/scim/v2` in every
/// function), the connection details hand out the domain's URLs, even for a call that came to the
/// execute-api host.
async fn connection_details_name_the_custom_domain(engine: Engine) {
    use scim_core::oauth::assertion::{Jwks, JwksSettings};
    use scim_core::oauth::signing::KeyRing;
    use scim_core::oauth::{OAuth, OAuthSettings};
    let ring = KeyRing::parse(&KeyRing::generate_text("manage1")).unwrap();
    let oauth = OAuth::new(
        ring,
        OAuthSettings::default(),
        Jwks::with_settings(JwksSettings::default()),
    );
    let http = HttpConfig {
        public_url: Some("https://scim.vendor.example/scim/v2".into()),
        ..HttpConfig::default()
    };
    let f = Function::start_with(
        engine,
        Auth::tenant_tokens_only().with_oauth(Some(Arc::new(oauth))),
        http,
    )
    .await;
    let (s, b) = f
        .as_vendor("POST", "/manage/v1/tenants", Some(&json!({"id": "acme"})))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = f
        .as_vendor("GET", "/manage/v1/tenants/acme/connection", None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tenantUrl"], "https://scim.vendor.example/acme/scim/v2");
    assert_eq!(
        b["tokenEndpoint"],
        "https://scim.vendor.example/acme/oauth2/token"
    );
}

/// A CloudWatch client of moto (CloudWatch is moto's whichever engine holds the table).
/// On AWS the function serves no SCIM request, so the status route's figures are the SCIM functions'
/// metrics read back from CloudWatch (`metrics::cloudwatch`, as `main` sets it up): put into moto's
/// CloudWatch as the functions' metric lines become, read through the route — the tenant's own figures,
/// not another's. A CloudWatch that cannot be reached leaves the figures out; the route still answers.
async fn status_reads_the_request_figures_from_cloudwatch(engine: Engine) {
    use scim_core::metrics::cloudwatch::CloudWatchFigures;
    // Both engines' tests share moto's CloudWatch: each its own namespace and tenant.
    let namespace = format!("ScimManage/{}/{engine:?}", std::process::id());
    let acme = format!("acme-{}", format!("{engine:?}").to_lowercase());
    let acme = acme.as_str();
    let cw = scim_tests::cloudwatch(&scim_tests::endpoint(Engine::Moto));
    let store = fresh_store(engine).await;
    let state = AppState::new(
        Service::new(Arc::new(store), Limits::default()),
        Auth::tenant_tokens_only(),
        HttpConfig::default(),
    );
    let figures = Arc::new(CloudWatchFigures::new(cw.clone(), &namespace));
    let manager = scim_manage::manager(&state)
        .expect("management settings")
        .with_figures(figures.clone());
    let f = Function {
        router: scim_manage::app(state.clone(), Arc::new(manager)),
    };
    let (s, b) = f
        .as_vendor("POST", "/manage/v1/tenants", Some(&json!({"id": acme})))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = f
        .as_vendor("GET", &format!("/manage/v1/tenants/{acme}/status"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["metricsEnabled"], true, "{b}");
    assert_eq!(b["summary"]["last_hour"]["requests"], 0, "{b}");

    scim_tests::put_figures(
        &cw,
        &namespace,
        &[
            ("Requests", acme, None, 5.0),
            ("Failures", acme, None, 2.0),
            ("ServerErrors", acme, None, 1.0),
            ("FailuresByKind", acme, Some("409 uniqueness"), 1.0),
            ("FailuresByKind", acme, Some("500"), 1.0),
            ("Requests", "globex", None, 40.0),
            ("Failures", "globex", None, 40.0),
        ],
    )
    .await;
    let (s, b) = f
        .as_vendor("GET", &format!("/manage/v1/tenants/{acme}/status"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    let h = &b["summary"]["last_hour"];
    assert_eq!(
        (
            &h["requests"],
            &h["failures"],
            &h["server_errors"],
            &h["client_errors"]
        ),
        (&json!(5), &json!(2), &json!(1), &json!(1)),
        "{b}"
    );
    assert_eq!(b["failureRatioLastHour"], 0.4, "{b}");
    let mut kinds: Vec<(u64, String, u64)> = b["summary"]["failures_by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["status"].as_u64().unwrap(),
                k["scimType"].as_str().unwrap_or("").to_string(),
                k["count"].as_u64().unwrap(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![(409, "uniqueness".into(), 1), (500, String::new(), 1)]
    );

    // CloudWatch out of reach: no figures, and still an answer.
    let gone = Arc::new(CloudWatchFigures::new(
        scim_tests::cloudwatch("http://127.0.0.1:9"),
        &namespace,
    ));
    let manager = scim_manage::manager(&state)
        .expect("management settings")
        .with_figures(gone);
    let f = Function {
        router: scim_manage::app(state, Arc::new(manager)),
    };
    let (s, b) = f
        .as_vendor("GET", &format!("/manage/v1/tenants/{acme}/status"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["metricsEnabled"].as_bool(), b["summary"].is_null()),
        (Some(true), true),
        "{b}"
    );
}

scim_tests::both_engines!(
    iam_principal_is_the_caller,
    without_the_iam_context_nothing_is_done,
    connection_details_name_the_custom_domain,
    status_reads_the_request_figures_from_cloudwatch,
);
