//! A JWKS server on a real loopback socket, standing in for `login.microsoftonline.com/<tid>/discovery/
//! v2.0/keys`: it serves the public halves of keys generated in the test, rotates them at runtime (add a
//! `kid`, drop one), counts the fetches, and can misbehave on demand (slow headers, a body that trickles,
//! an error status, an oversized or arbitrary body).
//!
//! Signing (good and deliberately bad assertions: `alg: none`, HS256 keyed with the public key, a missing
//! `kid`, any header or claims) is `scim_core::oauth::assertion::testing`, re-exported here.

pub use scim_core::oauth::assertion::testing::*;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with the current keys
    Normal,
    /// waits this long before answering (normally)
    SlowHeaders(Duration),
    /// sends 200 and its headers at once, then the body one byte per interval
    TrickleBody(Duration),
    /// this status, with a short body
    Status(u16),
    /// 200 with exactly these bytes (with `Content-Length` when `length_header`, else chunked)
    Body { bytes: Vec<u8>, length_header: bool },
}

struct Inner {
    keys: Mutex<Vec<TestKey>>,
    behaviour: Mutex<Behaviour>,
    fetches: AtomicUsize,
}

/// The server; it runs until the test's runtime ends.
pub struct JwksServer {
    inner: Arc<Inner>,
    url: String,
}

impl JwksServer {
    /// Serves `keys` at `http://127.0.0.1:<port>/<tenant id>/discovery/v2.0/keys`.
    pub async fn start(keys: Vec<TestKey>) -> Self {
        let inner = Arc::new(Inner {
            keys: Mutex::new(keys),
            behaviour: Mutex::new(Behaviour::Normal),
            fetches: AtomicUsize::new(0),
        });
        let path = "/ce5f061f-abe6-4e40-9615-301f87bcb7f0/discovery/v2.0/keys";
        let app = axum::Router::new()
            .route(path, axum::routing::get(answer))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer { inner, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times the keys were asked for (every request, whatever the behaviour).
    pub fn fetches(&self) -> usize {
        self.inner.fetches.load(Ordering::SeqCst)
    }

    /// Publishes `key` beside the others (a rotation's first step).
    pub fn add_key(&self, key: TestKey) {
        self.inner.keys.lock().unwrap().push(key);
    }

    /// Stops publishing the key `kid` (a rotation's last step).
    pub fn drop_key(&self, kid: &str) {
        self.inner.keys.lock().unwrap().retain(|k| k.kid != kid);
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = b;
    }
}

async fn answer(State(inner): State<Arc<Inner>>) -> Response {
    inner.fetches.fetch_add(1, Ordering::SeqCst);
    let behaviour = inner.behaviour.lock().unwrap().clone();
    let document = || {
        jwks_document(inner.keys.lock().unwrap().iter())
            .to_string()
            .into_bytes()
    };
    let json = |body: Body| {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .expect("response")
    };
    match behaviour {
        Behaviour::Normal => json(Body::from(document())),
        Behaviour::SlowHeaders(wait) => {
            tokio::time::sleep(wait).await;
            json(Body::from(document()))
        }
        Behaviour::TrickleBody(every) => {
            let bytes = document();
            let stream = futures::stream::unfold(0usize, move |i| {
                let byte = bytes.get(i).copied();
                async move {
                    tokio::time::sleep(every).await;
                    byte.map(|b| (Ok::<_, std::io::Error>(vec![b]), i + 1))
                }
            });
            json(Body::from_stream(stream))
        }
        Behaviour::Status(code) => Response::builder()
            .status(StatusCode::from_u16(code).expect("status"))
            .body(Body::from("unavailable"))
            .expect("response"),
        Behaviour::Body {
            bytes,
            length_header: true,
        } => json(Body::from(bytes)),
        Behaviour::Body {
            bytes,
            length_header: false,
        } => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                bytes.chunks(4096).map(|c| Ok(c.to_vec())).collect();
            json(Body::from_stream(futures::stream::iter(chunks)))
        }
    }
}

/// A loopback URL where nothing listens (a JWKS endpoint that is down).
pub fn closed_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    format!("http://127.0.0.1:{port}/keys")
}
