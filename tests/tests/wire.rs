//! The local server over a real socket, byte for byte: request lines as Entra sends them (raw `"`, `(`, `)`,
//! `+` for spaces, `%40`, `%2B`, `%22`, unquoted values, raw spaces), SCIM bodies on refusals the HTTP library
//! makes itself, malformed preconditions, path aliases, and the connection limits (header, body and idle
//! timeouts, the connection cap, the cap per peer address).

use scim_core::config::HttpConfig;
use scim_local::server::serve::ServeConfig;
use scim_tests::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

/// Status, headers (lower-cased names) and JSON body of one raw HTTP/1.1 answer.
fn parse(raw: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_ascii_lowercase(), body)
}

fn get_line(srv: &TestServer, target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", srv.addr(), srv.token).into_bytes()
}

async fn entra_request_lines_are_answered(srv: TestServer) {
    srv.create_user(&json!({"userName": "dale.mohr@romaguera.uk", "externalId": "9edf3db5-2f5b-4c1b-9a1e-1f0a6a1e0b2c"})).await;
    srv.create_user(&json!({"userName": "LAUser-(0b1d2a5b)@contoso.com", "externalId": "jyoung"}))
        .await;
    srv.create_user(&json!({"userName": "a+b@x.com"})).await;
    let wait = Duration::from_secs(10);
    for (target, expected) in [
        // Test Connection, raw quotes.
        (
            r#"/scim/v2/Users?filter=userName+eq+"00000000-0000-0000-0000-000000000000""#,
            0,
        ),
        (
            r#"/scim/v2/Users?filter=userName+eq+"dale.mohr%40romaguera.uk""#,
            1,
        ),
        (
            r#"/scim/v2/Users?filter=externalId+eq+"9edf3db5-2f5b-4c1b-9a1e-1f0a6a1e0b2c""#,
            1,
        ),
        (
            r#"/scim/v2/Users?filter=userName+eq+"LAUser-(0b1d2a5b)%40contoso.com""#,
            1,
        ),
        (r#"/scim/v2/Users?filter=userName+eq+"a%2Bb%40x.com""#, 1),
        (
            "/scim/v2/Users?filter=userName+eq+%22dale.mohr%40romaguera.uk%22",
            1,
        ),
        ("/scim/v2/Users?filter=externalId+eq+jyoung", 1),
        (
            r#"/scim/v2/Users?filter=userName eq "dale.mohr@romaguera.uk""#,
            1,
        ),
        (
            r#"/scim/v2/Users?filter=(userName+eq+"a%2Bb%40x.com")+or+(externalId+eq+"jyoung")"#,
            2,
        ),
    ] {
        let (status, head, body) = parse(&srv.raw(&get_line(&srv, target), wait).await);
        assert_eq!(status, 200, "{target}: {body}");
        assert!(
            head.contains("content-type: application/scim+json"),
            "{target}: {head}"
        );
        assert_eq!(body["totalResults"], expected, "{target}: {body}");
    }
    // Two requests with raw quotes on one kept-alive connection, the first with a body.
    let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"a+b@x.com\""}"#;
    let two = format!(
        "POST /scim/v2/Users/.search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/scim+json\r\nContent-Length: {n}\r\n\r\n{body}\
         GET /scim/v2/Users?filter=userName+eq+\"dale.mohr%40romaguera.uk\" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n",
        t = srv.token,
        n = body.len()
    );
    let raw = String::from_utf8_lossy(&srv.raw(two.as_bytes(), wait).await).to_string();
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 2, "{raw}");
    assert_eq!(raw.matches(r#""totalResults":1"#).count(), 2, "{raw}");
}

async fn unparseable_requests_get_a_scim_error_body(srv: TestServer) {
    let wait = Duration::from_secs(10);
    for (name, request) in [
        (
            "header without a colon",
            b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n".to_vec(),
        ),
        (
            "headers too large",
            format!(
                "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(600_000)
            )
            .into_bytes(),
        ),
    ] {
        let (status, head, body) = parse(&srv.raw(&request, wait).await);
        assert!(status == 400 || status == 431, "{name}: {status}");
        assert!(
            head.contains("content-type: application/scim+json"),
            "{name}: {head}"
        );
        assert_eq!(body["status"], status.to_string(), "{name}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: {body}"
        );
    }
}

async fn a_malformed_if_match_fails_and_changes_nothing(srv: TestServer) {
    let id = srv
        .create_user(&json!({"userName": "precondition@example.com"}))
        .await;
    let mut request = format!("DELETE /scim/v2/Users/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\nIf-Match: W/\"", srv.token).into_bytes();
    request.extend_from_slice(b"\xe9\"\r\n\r\n");
    let (status, head, body) = parse(&srv.raw(&request, Duration::from_secs(10)).await);
    assert_eq!(status, 400, "{body}");
    assert!(
        head.contains("content-type: application/scim+json"),
        "{head}"
    );
    assert!(
        body["detail"].as_str().unwrap_or("").contains("If-Match"),
        "{body}"
    );
    assert_eq!(
        srv.get(&format!("/Users/{id}")).await.status,
        200,
        "the user was not deleted"
    );
}

async fn path_aliases_of_the_base_url_are_not_found(srv: TestServer) {
    srv.create_user(&json!({"userName": "alias@example.com"}))
        .await;
    for target in [
        "/A/scim/v2/Users",
        "/%61/scim/v2/Users",
        "/scim/scim/v2/Users",
        "/default/scim/v2/Users",
        "/x/y/scim/v2/Users",
    ] {
        let (status, head, body) = parse(
            &srv.raw(&get_line(&srv, target), Duration::from_secs(10))
                .await,
        );
        assert_eq!(status, 404, "{target}: {body}");
        assert!(
            head.contains("content-type: application/scim+json"),
            "{target}"
        );
        assert!(body.get("Resources").is_none(), "{target}: {body}");
    }
    let (status, _, body) = parse(
        &srv.raw(&get_line(&srv, "/scim/v2/Users"), Duration::from_secs(10))
            .await,
    );
    assert_eq!((status, body["totalResults"].clone()), (200, json!(1)));
}

scim_tests::engine_tests!(
    entra_request_lines_are_answered,
    unparseable_requests_get_a_scim_error_body,
    a_malformed_if_match_fails_and_changes_nothing,
    path_aliases_of_the_base_url_are_not_found
);

/// A server with 1 s header and body timeouts, a 2 s idle timeout and room for 4 connections.
async fn strict_server() -> TestServer {
    let http = HttpConfig {
        body_read_timeout: Duration::from_secs(1),
        ..HttpConfig::default()
    };
    let serve = ServeConfig {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        max_connections: 4,
        max_connections_per_peer: 4,
    };
    TestServer::start_with_serve_config(scim_tests::Engine::Dynoxide, http, serve).await
}

/// Write `bytes` one at a time, `gap` apart, until a write fails (the server closed the connection) or all
/// are sent; returns how long that took.
async fn trickle(srv: &TestServer, bytes: &[u8], gap: Duration) -> Duration {
    use tokio::io::AsyncWriteExt;
    let started = std::time::Instant::now();
    let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    for b in bytes {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(gap).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_while_others_are_served() {
    let srv = strict_server().await;
    // An idle connection (nothing sent) is closed after the header read timeout.
    let started = std::time::Instant::now();
    let out = srv.raw(b"", Duration::from_secs(10)).await;
    assert!(
        out.is_empty() || parse(&out).0 == 408,
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connection held {:?}",
        started.elapsed()
    );

    // Headers trickled at one byte per 200 ms: cut off after about a second, long before they are complete.
    let head = format!(
        "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        srv.token
    );
    let took = trickle(&srv, head.as_bytes(), Duration::from_millis(200)).await;
    assert!(
        took < Duration::from_secs(5),
        "a trickled head of {} bytes held the connection {took:?}",
        head.len()
    );

    // A body trickled at one byte per 200 ms: 408 with a SCIM body after the body read timeout.
    let body = json!({"userName": "slow@example.com"}).to_string();
    let mut request =
        format!("POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n", srv.token, body.len())
            .into_bytes();
    request.extend_from_slice(body.as_bytes());
    let header_len = request.len() - body.len();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(srv.addr()).await.unwrap();
    s.write_all(&request[..header_len]).await.unwrap();
    let mut answer = Vec::new();
    let started = std::time::Instant::now();
    for b in body.as_bytes() {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    let (status, head, b) = parse(&answer);
    assert_eq!(status, 408, "{b}");
    assert!(
        head.contains("content-type: application/scim+json"),
        "{head}"
    );
    assert_eq!(
        srv.get("/Users?filter=userName+eq+%22slow%40example.com%22")
            .await
            .body["totalResults"],
        0,
        "nothing was written"
    );

    // The cap: 3 silent connections leave room for a normal request; a 4th fills the server, and the next
    // connection is answered 503 with a SCIM body; once the silent ones are cut off, requests are served again.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(srv.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(srv.get("/Users").await.status, 200, "served below the cap");
    silent.push(tokio::net::TcpStream::connect(srv.addr()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, head, b) = parse(
        &srv.raw(&get_line(&srv, "/scim/v2/Users"), Duration::from_secs(5))
            .await,
    );
    assert_eq!(status, 503, "{b}");
    assert!(head.contains("retry-after"), "{head}");
    assert_eq!(b["status"], "503");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _, b) = parse(
        &srv.raw(&get_line(&srv, "/scim/v2/Users"), Duration::from_secs(5))
            .await,
    );
    assert_eq!(
        status, 200,
        "served again once the silent connections were cut off: {b}"
    );
    drop(silent);
}

/// `request` sent from a socket bound to the loopback address `from` (each address of 127/8 is another
/// peer to the server); what arrived until the server closed the connection or 5 s passed.
async fn raw_from(srv: &TestServer, from: &str, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = socket
        .connect(srv.addr().parse().unwrap())
        .await
        .expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_holding_its_cap_cannot_starve_another() {
    use tokio::io::AsyncReadExt;
    // Long timeouts: the idle sockets stay open for the whole test, as a client reopening them would keep them.
    let serve = ServeConfig {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(60),
        max_connections: 8,
        max_connections_per_peer: 4,
    };
    let srv = TestServer::start_with_serve_config(
        scim_tests::Engine::Dynoxide,
        HttpConfig::default(),
        serve,
    )
    .await;
    let id = srv
        .create_user(&json!({"userName": "peer@example.com"}))
        .await;
    // Peer 127.0.0.1 opens as many silent connections as the whole server has room for.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(tokio::net::TcpStream::connect(srv.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Those beyond its share were answered 503 and closed at once; the rest are held.
    let mut refused = 0;
    for s in &mut held {
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await
        {
            let (status, head, body) = parse(&buf[..n]);
            assert_eq!(status, 503, "{body}");
            assert!(
                head.contains("content-type: application/scim+json")
                    && head.contains("retry-after"),
                "{head}"
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 4,
        "one peer holds at most 4 of the 8 connections; {refused} of its 8 were refused"
    );
    // The same peer is refused while it holds its share; another peer is served.
    let (status, _, b) =
        parse(&raw_from(&srv, "127.0.0.1", &get_line(&srv, "/scim/v2/Users")).await);
    assert_eq!(status, 503, "{b}");
    for _ in 0..3 {
        let (status, _, b) = parse(
            &raw_from(
                &srv,
                "127.0.0.2",
                &get_line(&srv, &format!("/scim/v2/Users/{id}")),
            )
            .await,
        );
        assert_eq!(
            status, 200,
            "another peer is served while the first holds its share: {b}"
        );
    }
    // Closed connections give their slots back.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, b) =
        parse(&raw_from(&srv, "127.0.0.1", &get_line(&srv, "/scim/v2/Users")).await);
    assert_eq!(status, 200, "{b}");
}
