//! The embedded engine's HTTP listener (functions/local/src/engine/engine_door.rs) lets in only requests
//! signed with the engine's key: unsigned, wrongly signed, tampered and stale requests are refused and change
//! nothing; the SDK signing with the key works; `scim-local` keeps its data directory private; and
//! `scim-admin` still reaches a running server's engine through the same door. The door has the SCIM port's
//! connection limits: a cap, header, body and idle timeouts, and a caller without the key is answered
//! before its body is read.
//!
//! dynoxide only: moto is a test engine with no such door.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use scim_core::store::dynamo::{engine_sdk_config, local_config, DynamoStore};
use scim_local::engine::engine_door::EngineKey;
use scim_local::engine::EmbeddedDynamo;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const T: Duration = Duration::from_secs(10);

fn key_of(pk: &str) -> [(String, AttributeValue); 2] {
    [
        ("pk".into(), AttributeValue::S(pk.into())),
        ("sk".into(), AttributeValue::S("door".into())),
    ]
}

/// Put `pk` through `client` on `table`.
async fn put(client: &Client, table: &str, pk: &str) -> Result<(), String> {
    let mut req = client.put_item().table_name(table);
    for (k, v) in key_of(pk) {
        req = req.item(k, v);
    }
    req.send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_string())
}

/// A client of the engine at `endpoint` signing with `key_id` and `secret`, as the store signs
/// (`DynamoStore::local_with_credentials`; the store keeps its own client to itself).
fn signed_client(endpoint: &str, key_id: &str, secret: &str) -> Client {
    Client::from_conf(engine_sdk_config(endpoint, T, key_id, secret).build())
}

/// The SDK configuration of a client of `engine` through its door, signing with its key (as
/// `EmbeddedDynamo::http_store`).
fn door_config(engine: &EmbeddedDynamo) -> aws_sdk_dynamodb::config::Builder {
    let (key_id, secret) = engine.key.credentials();
    engine_sdk_config(&engine.endpoint, T, key_id, secret)
}

/// Whether `pk` is in the shared engine's `inproc` table, read in process (not through the door under test).
async fn present(inproc: &DynamoStore, pk: &str) -> bool {
    present_in(scim_tests::dynoxide_engine(), inproc.table(), pk).await
}

/// Whether `pk` is in `engine`'s `table`, read in process (as `EmbeddedDynamo::store` reaches it).
async fn present_in(engine: &EmbeddedDynamo, table: &str, pk: &str) -> bool {
    let client = Client::from_conf(
        local_config(&engine.endpoint, T)
            .http_client(engine.in_process_http())
            .allow_no_auth()
            .build(),
    );
    let mut req = client.get_item().table_name(table).consistent_read(true);
    for (k, v) in key_of(pk) {
        req = req.key(k, v);
    }
    req.send().await.expect("in-process GetItem").item.is_some()
}

fn endpoint() -> String {
    scim_tests::dynoxide_engine().endpoint.clone()
}

fn raw_put_body(table: &str, pk: &str) -> String {
    serde_json::json!({"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "door"}}})
        .to_string()
}

async fn raw_post(headers: &[(String, String)], body: String) -> (u16, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rb = client.post(format!("{}/", endpoint())).body(body);
    for (k, v) in headers {
        // reqwest sets these from the URL and the body
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let r = rb.send().await.expect("engine listener answers");
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_request_is_refused_and_changes_nothing() {
    let inproc = scim_tests::fresh_store(scim_tests::Engine::Dynoxide).await;
    let headers = [
        (
            "content-type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        ),
        (
            "x-amz-target".to_string(),
            "DynamoDB_20120810.PutItem".to_string(),
        ),
    ];
    let (status, body) = raw_post(&headers, raw_put_body(inproc.table(), "door#unsigned")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("UnrecognizedClientException"), "{body}");
    // A plausible-looking but fake SigV4 header is no better.
    let mut forged = headers.to_vec();
    forged.push(("x-amz-date".into(), "20260101T000000Z".into()));
    forged.push((
        "authorization".into(),
        "AWS4-HMAC-SHA256 Credential=scim-local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00".into(),
    ));
    let (status, body) = raw_post(&forged, raw_put_body(inproc.table(), "door#unsigned")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidSignatureException"), "{body}");
    assert!(
        !present(&inproc, "door#unsigned").await,
        "a refused request must not reach the engine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_secret_or_key_id_is_refused_and_changes_nothing() {
    let inproc = scim_tests::fresh_store(scim_tests::Engine::Dynoxide).await;
    let key = EngineKey::random();
    let (key_id, secret) = key.credentials();
    let wrong = signed_client(&endpoint(), key_id, secret);
    assert_eq!(
        put(&wrong, inproc.table(), "door#wrong").await,
        Err("InvalidSignatureException".into())
    );
    let stranger = signed_client(&endpoint(), "AKIDEXAMPLE", "local");
    assert_eq!(
        put(&stranger, inproc.table(), "door#wrong").await,
        Err("UnrecognizedClientException".into())
    );
    // what tools used before the door: the environment's (or dummy) credentials
    // (as `DynamoStore::local` signs)
    let key_id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "local".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "local".into());
    let dummy = Client::from_conf(
        local_config(&endpoint(), T)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                key_id, secret, None, None, "test",
            ))
            .build(),
    );
    assert!(put(&dummy, inproc.table(), "door#wrong").await.is_err());
    assert!(!present(&inproc, "door#wrong").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_sdk_calls_work() {
    let inproc = scim_tests::fresh_store(scim_tests::Engine::Dynoxide).await;
    let http = scim_tests::dynoxide_over_http(inproc.table());
    http.warm_up()
        .await
        .expect("DescribeTable through the door");
    let signed = Client::from_conf(door_config(scim_tests::dynoxide_engine()).build());
    put(&signed, inproc.table(), "door#signed")
        .await
        .expect("signed PutItem");
    assert!(present(&inproc, "door#signed").await);
}

/// Keeps the signed request the SDK was about to send, and stops it there.
#[derive(Debug, Clone, Default)]
struct Capture(Arc<Mutex<Option<Captured>>>);

/// A captured request: its headers and body.
type Captured = (Vec<(String, String)>, Vec<u8>);

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let req = ctx.request();
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        *self.0.lock().unwrap() = Some((headers, req.body().bytes().unwrap_or_default().to_vec()));
        Err("captured, not sent".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_body_is_refused_and_changes_nothing() {
    let inproc = scim_tests::fresh_store(scim_tests::Engine::Dynoxide).await;
    let capture = Capture::default();
    let client = Client::from_conf(
        door_config(scim_tests::dynoxide_engine())
            .interceptor(capture.clone())
            .build(),
    );
    assert!(
        put(&client, inproc.table(), "door#tamper-a").await.is_err(),
        "the interceptor stops the call"
    );
    let (headers, body) = capture.0.lock().unwrap().clone().expect("a signed request");
    assert!(
        headers.iter().any(|(k, _)| k == "authorization"),
        "the SDK signed it: {headers:?}"
    );
    let body = String::from_utf8(body).unwrap();
    // Same length, another item: only the content differs from what was signed.
    let tampered = body.replace("door#tamper-a", "door#tamper-b");
    assert_ne!(tampered, body);
    let (status, text) = raw_post(&headers, tampered).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("InvalidSignatureException"), "{text}");
    assert!(
        !present(&inproc, "door#tamper-b").await,
        "the tampered request must not reach the engine"
    );
    // Control: the same headers with the body that was signed are let in.
    let (status, text) = raw_post(&headers, body).await;
    assert_eq!(status, 200, "{text}");
    assert!(present(&inproc, "door#tamper-a").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_request_is_refused_and_changes_nothing() {
    let inproc = scim_tests::fresh_store(scim_tests::Engine::Dynoxide).await;
    let at = |ago: u64| {
        let clock = aws_smithy_async::time::StaticTimeSource::new(
            SystemTime::now() - Duration::from_secs(ago),
        );
        // No retries: the SDK corrects its clock from the refusal's Date header and retries, which (rightly)
        // succeeds; the point here is the first, stale attempt.
        let no_retry = aws_sdk_dynamodb::config::retry::RetryConfig::disabled();
        Client::from_conf(
            door_config(scim_tests::dynoxide_engine())
                .time_source(clock)
                .retry_config(no_retry)
                .build(),
        )
    };
    assert_eq!(
        put(&at(10 * 60), inproc.table(), "door#stale").await,
        Err("InvalidSignatureException".into())
    );
    assert!(!present(&inproc, "door#stale").await);
    // Control: a request signed a minute ago (a slow client, a clock a little off) is let in.
    put(&at(60), inproc.table(), "door#recent")
        .await
        .expect("signed a minute ago");
    assert!(present(&inproc, "door#recent").await);
}

/// An engine whose door has 1 s header and body timeouts, a 2 s idle timeout and room for 4 connections,
/// with a table.
async fn strict_door() -> (scim_local::engine::EmbeddedDynamo, String) {
    let serve = scim_local::server::serve::ServeConfig {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        max_connections: 4,
        max_connections_per_peer: 4,
    };
    let cfg = scim_local::engine::engine_door::DoorConfig {
        serve,
        body_read_timeout: Duration::from_secs(1),
    };
    let engine = scim_local::engine::start_embedded_dynamodb_with(None, EngineKey::random(), cfg)
        .await
        .expect("start the engine");
    let table = "door-limits".to_string();
    engine
        .store(&table, T)
        .create_table_if_missing()
        .await
        .expect("create the table in process");
    (engine, table)
}

/// The raw bytes of a PutItem of `pk` in `table`, signed with `engine`'s key as the store signs (the SDK's
/// own request, not sent by it) for the engine at `host`: its head and its body.
async fn signed_put(
    engine: &EmbeddedDynamo,
    table: &str,
    host: &str,
    pk: &str,
) -> (Vec<u8>, Vec<u8>) {
    let capture = Capture::default();
    let client = Client::from_conf(door_config(engine).interceptor(capture.clone()).build());
    assert!(
        put(&client, table, pk).await.is_err(),
        "the interceptor stops the call"
    );
    let (headers, body) = capture.0.lock().unwrap().clone().expect("a signed request");
    // The signer took `host` from the URL; the HTTP client adds the header.
    let mut head = format!("POST / HTTP/1.1\r\nhost: {host}\r\n");
    for (k, v) in headers.into_iter().filter(|(k, _)| k != "host") {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    (head.into_bytes(), body)
}

fn host_of(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Status and body of one raw HTTP answer (empty: no answer).
fn status_of(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Write `bytes` one at a time, `gap` apart, until a write fails (the server closed the connection), all are
/// sent or `limit` passed; then read what the server answered. Whether the server closed the connection
/// before the end, how long that took, and the answer.
async fn trickle(
    stream: &mut tokio::net::TcpStream,
    bytes: &[u8],
    gap: Duration,
    limit: Duration,
) -> (bool, Duration, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut cut = false;
    for b in bytes {
        if stream.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        if started.elapsed() > limit {
            break;
        }
        tokio::time::sleep(gap).await;
    }
    let took = started.elapsed();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    (cut, took, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_are_refused_and_signed_calls_still_work() {
    use tokio::io::AsyncReadExt;
    let (engine, table) = strict_door().await;
    let host = host_of(&engine.endpoint);
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(tokio::net::TcpStream::connect(&host).await.unwrap());
    }
    // The two beyond the cap are answered 503 (a DynamoDB error the SDK retries) and closed at once.
    for s in &mut held[4..] {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut answer)).await;
        let (status, text) = status_of(&answer);
        assert_eq!(status, 503, "a connection over the cap: {text:?}");
        assert!(
            text.contains("application/x-amz-json-1.0") && text.contains("ThrottlingException"),
            "{text}"
        );
    }
    // The four within it are closed by the header read timeout.
    let started = std::time::Instant::now();
    for s in &mut held[..4] {
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        assert!(
            closed.is_ok(),
            "an idle connection was held {:?}",
            started.elapsed()
        );
    }
    let http = Client::from_conf(door_config(&engine).build());
    put(&http, &table, "door#after-idle")
        .await
        .expect("signed PutItem once the idle sockets are gone");
    assert!(present_in(&engine, &table, "door#after-idle").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_key_is_answered_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = endpoint();
    let host = host_of(&endpoint);
    // Both announce a 16 MB body and send 64 KB of it, the rest never.
    let unsigned = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amz-target: DynamoDB_20120810.PutItem\r\ncontent-length: 16000000\r\n\r\n"
    );
    // A head as the SDK signs it (right key id, fresh date, signed hash) with another signature.
    let (signed, _) = signed_put(
        scim_tests::dynoxide_engine(),
        "door-forged",
        &host,
        "door#forged",
    )
    .await;
    let forged: String = String::from_utf8(signed)
        .unwrap()
        .split_inclusive("\r\n")
        .map(|l| match l.split_once("Signature=") {
            Some((before, _)) => format!("{before}Signature={}\r\n", "0".repeat(64)),
            None if l.starts_with("content-length:") => "content-length: 16000000\r\n".to_string(),
            None => l.to_string(),
        })
        .collect();
    assert!(
        forged.contains("Signature=0000") && forged.contains("content-length: 16000000"),
        "{forged}"
    );
    for (name, head, kind) in [
        ("unsigned", unsigned, "UnrecognizedClientException"),
        ("forged", forged, "InvalidSignatureException"),
    ] {
        let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&vec![b' '; 64 * 1024]).await.unwrap();
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        let (status, text) = status_of(&answer);
        assert_eq!(
            status, 400,
            "{name}: answered without waiting for the body: {text:?}"
        );
        assert!(text.contains(kind), "{name}: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: answered after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_bodies_are_cut_off() {
    let (engine, table) = strict_door().await;
    let host = host_of(&engine.endpoint);
    let gap = Duration::from_millis(200);

    // A signed head trickled at one byte per 200 ms: cut off after about the header read timeout (1 s).
    let (head, _) = signed_put(&engine, &table, &host, "door#slow-head").await;
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (cut, took, _) = trickle(&mut s, &head, gap, Duration::from_secs(6)).await;
    assert!(
        cut && took < Duration::from_secs(4),
        "a trickled head of {} bytes held the connection {took:?}",
        head.len()
    );

    // A signed request whose body is trickled: 408 after the body read timeout, and nothing written.
    let (head, body) = signed_put(&engine, &table, &host, "door#slow-body").await;
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, &head)
        .await
        .unwrap();
    let (_, took, answer) = trickle(&mut s, &body, gap, Duration::from_secs(4)).await;
    let (status, text) = status_of(&answer);
    assert_eq!(status, 408, "{text:?}");
    assert!(text.contains("RequestTimeoutException"), "{text}");
    assert!(
        took < Duration::from_secs(4),
        "a trickled body held the connection {took:?}"
    );
    assert!(
        !present_in(&engine, &table, "door#slow-body").await,
        "nothing was written"
    );

    // Control: the same request sent at once is let in.
    let (head, body) = signed_put(&engine, &table, &host, "door#fast").await;
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, &[head, body].concat())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut answer),
    )
    .await;
    assert_eq!(
        status_of(&answer).0,
        200,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(present_in(&engine, &table, "door#fast").await);
}

#[cfg(unix)]
mod running_server {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    /// `scim-local` and `scim-admin`, built for this test run's profile.
    fn binaries() -> (PathBuf, PathBuf) {
        let dir = scim_tests::local_bin_dir();
        (dir.join("scim-local"), dir.join("scim-admin"))
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn admin(bin: &Path, data: &Path, args: &[&str]) -> Output {
        Command::new(bin)
            .args(args)
            .env("SCIM_DATA_DIR", data)
            .env_remove("SCIM_DYNAMODB_ENDPOINT")
            .env_remove("SCIM_TABLE")
            .output()
            .expect("run scim-admin")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn private_data_dir_and_scim_admin_through_the_door() {
        let (local_bin, admin_bin) = binaries();
        let data = std::env::temp_dir().join(format!("scim-engine-door-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        // As an older version left it: a world-readable directory and token file.
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let token = scim_core::auth::generate_token();
        std::fs::write(data.join("token"), &token).unwrap();
        std::fs::set_permissions(data.join("token"), std::fs::Permissions::from_mode(0o644))
            .unwrap();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let _server = scim_tests::KillOnDrop(
            scim_tests::local_command(&local_bin, &data, port)
                .env("RUST_LOG", "warn")
                .env_remove("SCIM_BEARER_TOKEN")
                .spawn()
                .expect("start scim-local"),
        );
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let up = scim_tests::local_server_up(&format!("{base}/scim/v2"), &token, || {
            data.join("endpoint").exists()
        })
        .await;
        assert!(up, "scim-local did not start");

        assert_eq!(mode(&data), 0o700, "the data directory is private");
        let files: Vec<String> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        for name in ["token", "endpoint", "engine-key", "dynamodb.sqlite"] {
            assert!(files.contains(&name.to_string()), "{name} in {files:?}");
        }
        for f in &files {
            assert_eq!(mode(&data.join(f)), 0o600, "{f} is owner-only");
        }

        // The endpoint the server published refuses callers without the key.
        let engine = std::fs::read_to_string(data.join("endpoint")).unwrap();
        let r = client
            .post(engine.trim())
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .header("content-type", "application/x-amz-json-1.0")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);

        let out = admin(&admin_bin, &data, &["tenant", "create", "acme"]);
        assert!(
            out.status.success(),
            "tenant create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("tenant acme created"));
        let out = admin(&admin_bin, &data, &["token", "issue", "acme"]);
        assert!(
            out.status.success(),
            "token issue: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let acme_token = stdout
            .lines()
            .find_map(|l| l.strip_prefix("token:"))
            .expect("a token line")
            .trim()
            .to_string();
        let r = client
            .get(format!("{base}/acme/scim/v2/Users"))
            .bearer_auth(&acme_token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "the running server knows the token scim-admin issued"
        );

        // scim-admin went through the door: with another key it is refused (and says so) rather than
        // falling back to opening the database behind the server's back.
        let kept = std::fs::read_to_string(data.join("engine-key")).unwrap();
        std::fs::write(data.join("engine-key"), scim_core::auth::generate_token()).unwrap();
        let out = admin(&admin_bin, &data, &["tenant", "list"]);
        assert!(
            !out.status.success(),
            "scim-admin with a wrong key must fail"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refused") && err.contains("InvalidSignature"),
            "{err}"
        );
        std::fs::write(data.join("engine-key"), kept).unwrap();
        let out = admin(&admin_bin, &data, &["tenant", "list"]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("acme"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        drop(_server);
        std::fs::remove_dir_all(&data).unwrap();
    }
}
