//! Test harness: starts the DynamoDB engines (embedded dynoxide, moto's server) once per test binary,
//! gives each test its own table and its own SCIM server — the local server's code on a loopback port —
//! and a small HTTP client. Every end-to-end test runs on both engines through [`both_engines!`] (with a
//! server of its own: [`engine_tests!`]; a fresh table: [`store_tests!`]).
//! [`jwks`] is a JWKS server on loopback (and assertion signing) for the Workload Identity Federation tests.

pub mod jwks;

use reqwest::Method;
use scim_core::auth::Auth;
use scim_core::config::{HttpConfig, Limits};
use scim_core::http::{self, AppState};
use scim_core::service::Service;
use scim_core::store::dynamo::DynamoStore;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Dynoxide,
    Moto,
}

/// The stores' and SDK clients' timeout per call: 10 s, or `SCIM_TEST_CALL_TIMEOUT_SECS` (a measurement
/// at hundreds of thousands of items on moto, whose Query time grows with the partition's size).
pub fn call_timeout() -> Duration {
    let secs = std::env::var("SCIM_TEST_CALL_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// The in-memory dynoxide engine shared by this test binary (its HTTP listener on its own thread and
/// runtime, so it outlives each test's runtime).
fn dynoxide() -> &'static scim_local::engine::EmbeddedDynamo {
    static ENGINE: OnceLock<scim_local::engine::EmbeddedDynamo> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let engine = scim_local::engine::start_embedded_dynamodb(None)
                    .await
                    .expect("start dynoxide");
                tx.send(engine).expect("send engine");
                std::future::pending::<()>().await;
            });
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("dynoxide did not start")
    })
}

struct Moto {
    endpoint: String,
    // Held open for the life of the process; when the process exits the pipe closes and moto stops.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// The Python that has moto (and openapi-spec-validator): `SCIM_MOTO_PYTHON`, else `.venv`, else `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("SCIM_MOTO_PYTHON") {
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        return venv.to_string();
    }
    "python3".to_string()
}

fn moto_endpoint() -> String {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let py = python();
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_server.py");
        let mut child = Command::new(&py)
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {py}: {e}. Run tests/run.sh, which installs moto[server] in .venv"));
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read moto output");
        assert_eq!(
            line.trim(),
            "ready",
            "moto did not start (is `moto[server]` installed for {py}? Run tests/run.sh, which installs it in .venv)"
        );
        Moto { endpoint: format!("http://127.0.0.1:{port}"), _stdin: Mutex::new(stdin), _child: Mutex::new(child) }
    })
    .endpoint
    .clone()
}

/// The directory of `scim-local`'s binaries (`scim-local`, `scim-admin`), built for this test run's
/// profile beside its target directory (the tests that run a binary itself: a crash, its log, the admin
/// CLI).
pub fn local_bin_dir() -> std::path::PathBuf {
    use std::path::Path;
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "scim-local",
            "--bins",
            "--profile",
            &profile,
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p scim-local --bins failed");
    dir
}

/// The `scim-local` binary ([`local_bin_dir`]).
pub fn local_binary() -> std::path::PathBuf {
    local_bin_dir().join("scim-local")
}

/// `scim-local` (`bin`) on its embedded engine in `data`, listening on 127.0.0.1:`port`: the variables that
/// would send it to another store, transport, receiver or log format are removed; its output is discarded
/// unless the caller sets it. The caller adds what its test needs (token, events, log level).
pub fn local_command(
    bin: &std::path::Path,
    data: &std::path::Path,
    port: u16,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.env("SCIM_DATA_DIR", data)
        .env("SCIM_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("SCIM_DYNAMODB_ENDPOINT")
        .env_remove("SCIM_TABLE")
        .env_remove("SCIM_EMBEDDED_TRANSPORT")
        .env_remove("SCIM_EVENTS_WEBHOOK_URL")
        .env_remove("SCIM_LOG_FORMAT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Whether a started `scim-local` answers `GET <scim_base>/ServiceProviderConfig` with 200 to `token` and
/// `ready()` holds, within 30 s.
pub async fn local_server_up(scim_base: &str, token: &str, ready: impl Fn() -> bool) -> bool {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..300 {
        let r = client
            .get(format!("{scim_base}/ServiceProviderConfig"))
            .bearer_auth(token)
            .send()
            .await;
        if r.map(|r| r.status().as_u16() == 200).unwrap_or(false) && ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A child process killed (SIGKILL) and reaped when the test lets go of it, whatever happened.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The in-memory dynoxide engine shared by this test binary: its listener's endpoint and key, and its
/// in-process stores.
pub fn dynoxide_engine() -> &'static scim_local::engine::EmbeddedDynamo {
    dynoxide()
}

/// A store on `table` of the shared dynoxide engine, over its HTTP listener and signed with its key (as
/// `scim-admin` reaches a running server's engine).
pub fn dynoxide_over_http(table: &str) -> DynamoStore {
    dynoxide().http_store(table, call_timeout())
}

/// The engine's DynamoDB API. dynoxide's listener refuses unsigned requests: reach it with
/// [`dynoxide_over_http`] (or the engine's key), not with `DynamoStore::local`.
pub fn endpoint(engine: Engine) -> String {
    match engine {
        Engine::Dynoxide => dynoxide().endpoint.clone(),
        Engine::Moto => moto_endpoint(),
    }
}

/// A DynamoDB client of `engine` for what the store's traits do not show (a test that inspects or removes
/// raw items): built here, from the engine's endpoint (dynoxide: its in-process transport, as
/// [`fresh_store`] reaches it; moto: dummy credentials) — the store keeps its own client to itself.
pub fn sdk_client(engine: Engine) -> aws_sdk_dynamodb::Client {
    sdk_client_with_timeout(engine, call_timeout())
}

/// [`sdk_client`] with another timeout per call (a Scan page of a table of hundreds of thousands of
/// items takes moto longer than 10 s).
pub fn sdk_client_with_timeout(engine: Engine, timeout: Duration) -> aws_sdk_dynamodb::Client {
    use scim_core::store::dynamo::local_config;
    let conf = match engine {
        Engine::Dynoxide => local_config(&dynoxide().endpoint, timeout)
            .http_client(dynoxide().in_process_http())
            .allow_no_auth(),
        Engine::Moto => local_config(&moto_endpoint(), timeout).credentials_provider(
            aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "test"),
        ),
    };
    aws_sdk_dynamodb::Client::from_conf(conf.build())
}

/// Every item of `table`, by a strongly consistent Scan, page after page.
pub async fn scan_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let r = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        out.extend(r.items.unwrap_or_default());
        match r.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

/// A fresh table on `engine`, created with the production table-creation code.
pub async fn fresh_store(engine: Engine) -> DynamoStore {
    static N: AtomicU32 = AtomicU32::new(0);
    let table = format!(
        "scim_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let store = match engine {
        // As scim-local reaches its engine: in process, through the same SDK calls.
        Engine::Dynoxide => dynoxide().store(table, call_timeout()),
        Engine::Moto => DynamoStore::local(&moto_endpoint(), table, call_timeout()),
    };
    store.create_table_if_missing().await.expect("create table");
    store
}

/// A SCIM server (the local server's router and serving loop) on its own table and loopback port.
pub struct TestServer {
    pub engine: Engine,
    /// `http://127.0.0.1:PORT/scim/v2`
    pub base: String,
    pub token: String,
    pub store: DynamoStore,
    /// The server's metrics (its EMF lines are kept in memory: `metrics.emf().unwrap().lines()`).
    pub metrics: Arc<scim_core::metrics::Metrics>,
    /// The operator page's credential (`/admin`, `/admin/api/…`).
    pub admin_token: String,
    /// OAuth (token endpoint, access tokens), on for servers from [`TestServer::start_oauth`].
    pub oauth: Option<Arc<scim_core::oauth::OAuth>>,
    client: reqwest::Client,
}

/// An HTML page as a browser gets it: status, headers and text (the setup and operator pages' tests, over
/// HTTP or through a Lambda event).
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    /// A header's value, or "" when absent or not text.
    pub fn header(&self, n: &str) -> &str {
        self.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The value of the field `name` (`name="<name>" value="…"`), as maud writes it.
    pub fn field(&self, name: &str) -> Option<String> {
        let at = self.text.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.text[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].replace("&amp;", "&"))
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// DynamoDB calls the request made (the server exposes them to tests).
    pub fn calls(&self) -> u32 {
        self.header(http::middleware::CALLS_HEADER)
            .and_then(|v| v.parse().ok())
            .expect("call count header")
    }
    /// Capacity units the request consumed, as DynamoDB reported them: (read, write).
    pub fn capacity(&self) -> (f64, f64) {
        let v = self
            .header(http::middleware::CAPACITY_HEADER)
            .expect("capacity header");
        let unit = |k: &str| -> f64 {
            v.split(", ")
                .find_map(|p| p.strip_prefix(k))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bad capacity header {v}"))
        };
        (unit("read="), unit("write="))
    }
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
            .to_string()
    }
}

impl TestServer {
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, Limits::default()).await
    }

    pub async fn start_with(engine: Engine, limits: Limits) -> Self {
        Self::start_wrapped(engine, limits, |s| Arc::new(s)).await
    }

    /// A server whose store is `wrap(fresh store)`: the seam for fault injection.
    pub async fn start_wrapped(
        engine: Engine,
        limits: Limits,
        wrap: impl FnOnce(DynamoStore) -> Arc<dyn scim_core::store::Store>,
    ) -> Self {
        Self::start_full(engine, limits, "default", wrap).await
    }

    /// A server with the app profile `profile` (built-in name).
    pub async fn start_profile(engine: Engine, profile: &str) -> Self {
        Self::start_full(engine, Limits::default(), profile, |s| Arc::new(s)).await
    }

    pub async fn start_full(
        engine: Engine,
        limits: Limits,
        profile: &str,
        wrap: impl FnOnce(DynamoStore) -> Arc<dyn scim_core::store::Store>,
    ) -> Self {
        let http_cfg = HttpConfig {
            expose_call_count: true,
            ..HttpConfig::default()
        };
        Self::start_serving(
            engine,
            limits,
            profile,
            wrap,
            http_cfg,
            scim_local::server::serve::ServeConfig::default(),
            None,
        )
        .await
    }

    /// A server with OAuth on: a fresh random signing key, `settings`, and a JWKS cache with `jwks`.
    pub async fn start_oauth(
        engine: Engine,
        settings: scim_core::oauth::OAuthSettings,
        jwks: scim_core::oauth::assertion::JwksSettings,
    ) -> Self {
        use scim_core::oauth::{assertion::Jwks, signing::KeyRing, OAuth};
        let ring = KeyRing::parse(&KeyRing::generate_text("test1")).expect("key ring");
        let oauth = Arc::new(OAuth::new(
            ring,
            settings.checked().expect("OAuth settings"),
            Jwks::with_settings(jwks),
        ));
        let http_cfg = HttpConfig {
            expose_call_count: true,
            ..HttpConfig::default()
        };
        Self::start_serving(
            engine,
            Limits::default(),
            "default",
            |s| Arc::new(s),
            http_cfg,
            scim_local::server::serve::ServeConfig::default(),
            Some(oauth),
        )
        .await
    }

    /// A server with its own HTTP settings and connection limits (timeouts, connection cap).
    pub async fn start_with_serve_config(
        engine: Engine,
        http_cfg: HttpConfig,
        serve_cfg: scim_local::server::serve::ServeConfig,
    ) -> Self {
        Self::start_serving(
            engine,
            Limits::default(),
            "default",
            |s| Arc::new(s),
            http_cfg,
            serve_cfg,
            None,
        )
        .await
    }

    async fn start_serving(
        engine: Engine,
        limits: Limits,
        profile: &str,
        wrap: impl FnOnce(DynamoStore) -> Arc<dyn scim_core::store::Store>,
        http_cfg: HttpConfig,
        serve_cfg: scim_local::server::serve::ServeConfig,
        oauth: Option<Arc<scim_core::oauth::OAuth>>,
    ) -> Self {
        Self::start_configured(
            engine,
            limits,
            profile,
            wrap,
            http_cfg,
            serve_cfg,
            oauth,
            |_, _| {},
        )
        .await
    }

    /// A server whose Events API reads its table's events log (docs/events.md). The stream consumer is
    /// not started: a test runs it ([`TestServer::events_consumer`]) when it wants the events.
    pub async fn start_events(engine: Engine) -> Self {
        let http_cfg = HttpConfig {
            expose_call_count: true,
            ..HttpConfig::default()
        };
        let retention = scim_core::events::EventsConfig::default().retention;
        let server = Self::start_configured(
            engine,
            Limits::default(),
            "default",
            |s| Arc::new(s),
            http_cfg,
            scim_local::server::serve::ServeConfig::default(),
            None,
            |state, store| {
                state.events = Some(Arc::new(scim_core::events::EventLog::new(store, retention)));
            },
        )
        .await;
        // As scim-local does at start: the table's stream (and TTL), before any write.
        server
            .events_consumer()
            .ensure_stream()
            .await
            .expect("enable the table's stream");
        server
    }

    /// A raw DynamoDB client of this server's engine ([`sdk_client`]); its table is `self.store.table()`.
    pub fn sdk(&self) -> aws_sdk_dynamodb::Client {
        sdk_client(self.engine)
    }

    /// A consumer of this server's table stream (each one starts from the checkpoints in the table).
    pub fn events_consumer(&self) -> scim_core::events::Consumer {
        scim_local::delivery::consumer(
            &self.store,
            &endpoint(self.engine),
            self.engine == Engine::Moto,
            &scim_core::events::EventsConfig::default(),
        )
    }

    // Every way a test server differs is a parameter here; the named constructors above pick them.
    #[allow(clippy::too_many_arguments)]
    async fn start_configured(
        engine: Engine,
        limits: Limits,
        profile: &str,
        wrap: impl FnOnce(DynamoStore) -> Arc<dyn scim_core::store::Store>,
        http_cfg: HttpConfig,
        serve_cfg: scim_local::server::serve::ServeConfig,
        oauth: Option<Arc<scim_core::oauth::OAuth>>,
        configure: impl FnOnce(&mut AppState, &DynamoStore),
    ) -> Self {
        scim_core::logging::init();
        let store = fresh_store(engine).await;
        let token = scim_core::auth::generate_token();
        let profile = scim_core::profile::Profile::load(profile).expect("profile");
        let mut state = AppState::with_profile(
            Service::new(wrap(store.clone()), limits),
            Auth::from_token(&token)
                .expect("token")
                .with_oauth(oauth.clone()),
            http_cfg,
            &profile,
        );
        configure(&mut state, &store);
        let metrics_cfg = scim_core::metrics::MetricsConfig {
            emf: Some(scim_core::metrics::emf::Emf::memory("ScimTest")),
            ..Default::default()
        };
        state.metrics = Arc::new(scim_core::metrics::Metrics::new(metrics_cfg));
        let metrics = state.metrics.clone();
        let admin_token = scim_core::auth::generate_token();
        let admin = Arc::new(scim_local::admin::AdminAuth::new(&admin_token).expect("admin token"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(scim_local::server::serve::serve_until(
            scim_local::server::app(state, Some(admin)),
            listener,
            serve_cfg,
            std::future::pending(),
        ));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        TestServer {
            engine,
            base: format!("http://{addr}/scim/v2"),
            token,
            store,
            metrics,
            admin_token,
            oauth,
            client,
        }
    }

    /// `http://127.0.0.1:PORT` (the operator page is at `/admin`).
    pub fn origin(&self) -> String {
        self.base.trim_end_matches("/scim/v2").to_string()
    }

    /// GET an operator API path (`/admin/api/…`) with the admin token; the status and JSON body.
    pub async fn admin_json(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.origin()))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("admin request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A request with the right token and `application/scim+json` body; `path` is relative to the base
    /// URL and may carry a raw query string (sent as written, not re-encoded).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        self.send(rb).await
    }

    /// A request with one extra header (`If-Match`, `Accept`, …).
    pub async fn call_with_header(
        &self,
        method: Method,
        path: &str,
        header: (&str, &str),
        body: Option<&Value>,
    ) -> Resp {
        let mut rb = self.request(method, path).header(header.0, header.1);
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        self.send(rb).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// Register `tenant` and issue it a token (as `scim-admin` does); returns the token.
    pub async fn add_tenant(&self, tenant: &str) -> String {
        self.add_tenant_token(tenant, None).await
    }

    /// Register `tenant` (if new) and issue a token, optionally bound to `user` (for `/Me`).
    pub async fn add_tenant_token(&self, tenant: &str, user: Option<&str>) -> String {
        use scim_core::store::{TokenRecord, TokenStore};
        self.store
            .create_tenant(tenant, "2026-01-01T00:00:00Z")
            .await
            .expect("create tenant");
        let token = scim_core::auth::generate_token();
        let hash = scim_core::auth::token_hash(&token);
        let rec = TokenRecord {
            id: hash[..12].to_string(),
            hash,
            tenant: tenant.into(),
            label: "test".into(),
            created: String::new(),
            user: user.map(Into::into),
            last_used: None,
        };
        self.store.put_token(&rec).await.expect("put token");
        token
    }

    /// `127.0.0.1:PORT`, for tests that speak HTTP over a raw socket.
    pub fn addr(&self) -> String {
        self.base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host")
            .to_string()
    }

    /// Send `request` (bytes exactly as given) on a new connection and read until the server closes it or
    /// `wait` passes; returns what arrived.
    pub async fn raw(&self, request: &[u8], wait: Duration) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.addr())
            .await
            .expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
        out
    }

    /// `http://127.0.0.1:PORT/<tenant>/scim/v2`
    pub fn tenant_base(&self, tenant: &str) -> String {
        self.base
            .replacen("/scim/v2", &format!("/{tenant}/scim/v2"), 1)
    }

    /// A request to any base URL with any token.
    pub async fn call_at(
        &self,
        base: &str,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        self.send(rb).await
    }

    /// POST a user and return its id (asserting 201).
    pub async fn create_user(&self, body: &Value) -> String {
        let r = self.post("/Users", body).await;
        assert_eq!(r.status, 201, "create user: {}", r.text);
        r.id()
    }
}

/// The schema and message URNs tests send and expect (RFC 7643 §8.7.1, RFC 7644 §3.1). Written out here,
/// not taken from `scim_core::schema`, so that a wrong constant in the server fails the tests.
pub mod urn {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
}

/// The SCIM media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// A PatchOp request body with these operations (a JSON array).
/// A captured Entra payload, `shared/fixtures/entra/<name>.json` (the same files the core's unit tests
/// and the PATCH fuzzer's seeds use; see the README there).
pub fn entra_fixture(name: &str) -> Value {
    let path = format!(
        "{}/../shared/fixtures/entra/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path} is not JSON: {e}"))
}

/// `v` with every occurrence of `from` inside its strings replaced by `to`: puts this test's ids where a
/// captured payload has Entra's.
pub fn with_ids(v: Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| with_ids(x, from, to)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| (k, with_ids(x, from, to)))
                .collect(),
        ),
        other => other,
    }
}

pub fn patch_body(ops: impl Into<Value>) -> Value {
    serde_json::json!({"schemas": [urn::PATCH_OP], "Operations": ops.into()})
}

/// Trials per race test: `SCIM_RACE_TRIALS`, else `default`.
pub fn race_trials(default: usize) -> usize {
    std::env::var("SCIM_RACE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run each named test function on both engines, as a `#[tokio::test]` (multi-threaded, 2 workers) per
/// engine. Every test file's "on both engines" goes through this one macro.
///
/// * `both_engines!(a, b)`: `async fn a(Engine)`; generates `dynoxide::a`, `moto::a`, `dynoxide::b`,
///   `moto::b`.
/// * `both_engines!(|engine| <expr>; a, b)`: `async fn a(T)`, given `<expr>` (of `engine`; it may
///   `.await`). It is evaluated inside the generated module: name the file's own items as `super::…`.
/// * `both_engines!(|engine, name| <expr>; a, b)`: the same, `name` being the test's name (`"a"`).
/// * `both_engines!(in (small_dynoxide, small_moto), |engine| <expr>; a, b)`: other module names (for a
///   second use in one file): `small_dynoxide::a`, `small_moto::a`, ….
/// * `both_engines!(each in races; a, b)`: `async fn a(Engine)`, a module per test:
///   `races::a::dynoxide`, `races::a::moto`, ….
#[macro_export]
macro_rules! both_engines {
    (@mod $mod:ident, $variant:ident, |$engine:ident, $tname:ident| $make:expr; $($name:ident),*) => {
        mod $mod {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $engine = $crate::Engine::$variant;
                    let $tname: &'static str = stringify!($name);
                    super::$name($make).await
                }
            )*
        }
    };
    (in ($dyn_mod:ident, $moto_mod:ident), |$engine:ident, $tname:ident| $make:expr; $($name:ident),* $(,)?) => {
        $crate::both_engines!(@mod $dyn_mod, Dynoxide, |$engine, $tname| $make; $($name),*);
        $crate::both_engines!(@mod $moto_mod, Moto, |$engine, $tname| $make; $($name),*);
    };
    (in ($dyn_mod:ident, $moto_mod:ident), |$engine:ident| $make:expr; $($name:ident),* $(,)?) => {
        $crate::both_engines!(in ($dyn_mod, $moto_mod), |$engine, _test_name| $make; $($name),*);
    };
    (each in $outer:ident; $($name:ident),* $(,)?) => {
        mod $outer {
            $(
                pub mod $name {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn dynoxide() {
                        super::super::$name($crate::Engine::Dynoxide).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn moto() {
                        super::super::$name($crate::Engine::Moto).await
                    }
                }
            )*
        }
    };
    (|$engine:ident, $tname:ident| $make:expr; $($name:ident),* $(,)?) => {
        $crate::both_engines!(in (dynoxide, moto), |$engine, $tname| $make; $($name),*);
    };
    (|$engine:ident| $make:expr; $($name:ident),* $(,)?) => {
        $crate::both_engines!(in (dynoxide, moto), |$engine, _test_name| $make; $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::both_engines!(in (dynoxide, moto), |engine, _test_name| engine; $($name),*);
    };
}

/// Run each named `async fn(TestServer)` on both engines, on a server of its own: `engine_tests!(a, b)`
/// generates `dynoxide::a`, `moto::a`, `dynoxide::b`, `moto::b` ([`both_engines!`]).
#[macro_export]
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        $crate::both_engines!(|engine| $crate::TestServer::start(engine).await; $($name),*);
    };
}

/// Run each named `async fn(DynamoStore)` on a fresh table of both engines ([`both_engines!`]).
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        $crate::both_engines!(|engine| $crate::fresh_store(engine).await; $($name),*);
    };
}

/// A webhook receiver's check, from docs/events.md alone: parse `scim-signature: t=<unix>,v2=<hex>`,
/// recompute HMAC-SHA256 over `<t>\n<event id>\n<event type>\n<raw body>`, compare in constant time, and
/// refuse a `t` more than five minutes from now.
pub fn webhook_signature_ok(secret: &str, header: &str, id: &str, kind: &str, body: &str) -> bool {
    let mut t = None;
    let mut v2 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<u64>().ok(),
            Some(("v2", x)) => v2 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v2)) = (t, v2) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(t) > 300 {
        return false;
    }
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    aws_lc_rs::hmac::verify(&key, format!("{t}\n{id}\n{kind}\n{body}").as_bytes(), &v2).is_ok()
}

/// A CloudWatch client of moto's server at `endpoint` (dummy credentials), for tests that put the metric
/// data the SCIM functions' metric lines become and read it back through `metrics::cloudwatch`.
pub fn cloudwatch(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    let conf = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(conf)
}

/// Put `data` into `namespace` now, each `(metric, tenant, kind, count)` with a `tenant` dimension and,
/// when given, a `kind` one: the shape of the functions' per-tenant metrics.
pub async fn put_figures(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    data: &[(&str, &str, Option<&str>, f64)],
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
    let data = data
        .iter()
        .map(|(name, tenant, kind, v)| {
            let mut dims = vec![Dimension::builder().name("tenant").value(*tenant).build()];
            if let Some(k) = kind {
                dims.push(Dimension::builder().name("kind").value(*k).build());
            }
            MetricDatum::builder()
                .metric_name(*name)
                .set_dimensions(Some(dims))
                .value(*v)
                .unit(StandardUnit::Count)
                .timestamp(now)
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");
}
