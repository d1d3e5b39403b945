//! The embedded engine's door for other processes: a loopback HTTP listener that speaks the DynamoDB API
//! (for `scim-admin` and the benchmark's ceiling) and lets in only requests signed (AWS SigV4) with the
//! secret key kept in the data directory — a file only the directory's owner can read. Unsigned, wrongly
//! signed, tampered or stale requests are answered with a DynamoDB-style error and never reach the engine.
//! Verified requests are handed to the engine in process, by the same dispatch as the server's own calls
//! ([`crate::engine::in_process`]).
//!
//! The signature is checked before the body is read: the door requires the body's SHA-256 in a signed
//! `x-amz-content-sha256` header (our clients add it before signing:
//! [`scim_core::store::dynamo::DynamoStore::local_with_credentials`]), verifies the signature over the
//! head with that hash, and only then reads the body — within the body read timeout, at most 16 MB — and
//! checks that it has that hash. A caller without the key is answered at once, whatever it sends after its
//! headers; the connection limits are the SCIM port's ([`crate::server::listener`]).
//!
//! The expected signature is computed by `aws-sigv4`, the signer the SDK itself uses, from the request's
//! signed headers, the claimed payload hash, `x-amz-date` and credential scope, instead of a hand-written
//! canonicalisation: the canonical request (header normalisation, path encoding) is then byte-for-byte what
//! the SDK signed, and stays so when the SDK changes. The cost: a client that signs a header the SDK
//! never signs (`user-agent`) is refused; our clients are the SDK.

use crate::engine::in_process;
use crate::server::listener::{self, ServeConfig};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4::SigningParams;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dynoxide::Database;
use scim_core::store::dynamo::DynamoStore;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

/// The engine key's access key id and its file in the data directory (mode 0600): the data directory's
/// layout is the core's ([`scim_core::local_engine`]), which other processes read it by.
pub use scim_core::local_engine::{ACCESS_KEY_ID, KEY_FILE};
/// How far a request's `x-amz-date` may be from the engine's clock (AWS allows 15 minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The largest request body the door reads (DynamoDB's own limit for a BatchWriteItem).
const MAX_BODY: usize = 16 * 1024 * 1024;
const SERVICE: &str = "dynamodb";
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const AMZ_JSON: &str = "application/x-amz-json-1.0";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The secret the engine's door checks signatures against.
#[derive(Clone)]
pub struct EngineKey {
    secret: String,
}

impl std::fmt::Debug for EngineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineKey(..)")
    }
}

impl EngineKey {
    /// A new random key (256 bits), kept in memory only.
    pub fn random() -> Self {
        EngineKey {
            secret: scim_core::auth::generate_token(),
        }
    }

    /// The key kept in `dir`, or a new one written there (mode 0600) and kept for later starts.
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        match Self::read(dir) {
            Ok(k) => Ok(k),
            Err(_) if !dir.join(KEY_FILE).exists() => {
                let key = Self::random();
                let file = dir.join(KEY_FILE);
                crate::engine::private_dir::create_private(&file, &key.secret)
                    .map_err(|e| format!("cannot write the engine key {}: {e}", file.display()))?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    /// The key kept in `dir` (by a running `scim-local`).
    pub fn read(dir: &Path) -> Result<Self, String> {
        scim_core::local_engine::read_engine_key(dir).map(|secret| EngineKey { secret })
    }

    /// The access key id and secret to sign with (for a client of the engine's DynamoDB API beyond the
    /// store: `scim_core::store::dynamo::engine_sdk_config`; the benchmark's and the tests').
    pub fn credentials(&self) -> (&'static str, &str) {
        (ACCESS_KEY_ID, &self.secret)
    }

    /// A store on `table` that reaches the engine at `endpoint` through its door, signing with this key.
    pub fn store(
        &self,
        endpoint: &str,
        table: impl Into<String>,
        call_timeout: Duration,
    ) -> DynamoStore {
        DynamoStore::local_with_credentials(
            endpoint,
            table,
            call_timeout,
            ACCESS_KEY_ID,
            &self.secret,
        )
    }
}

/// The door's limits: the SCIM port's connection caps and timeouts, and its body read timeout.
#[derive(Debug, Clone)]
pub struct DoorConfig {
    pub serve: ServeConfig,
    /// `SCIM_BODY_READ_TIMEOUT_SECS` (default 30): a verified request's body must arrive within this.
    pub body_read_timeout: Duration,
}

impl DoorConfig {
    pub fn from_env() -> Self {
        DoorConfig {
            serve: ServeConfig::from_env(),
            body_read_timeout: scim_core::config::HttpConfig::from_env().body_read_timeout,
        }
    }
}

impl Default for DoorConfig {
    fn default() -> Self {
        DoorConfig {
            serve: ServeConfig::default(),
            body_read_timeout: scim_core::config::HttpConfig::default().body_read_timeout,
        }
    }
}

/// Serve the engine's DynamoDB API on `listener`, for callers that sign with `key`, within `cfg`'s limits.
pub async fn serve(
    listener: TcpListener,
    db: Database,
    key: EngineKey,
    cfg: DoorConfig,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback(door)
        .with_state(Arc::new(Door {
            db,
            key,
            body_read_timeout: cfg.body_read_timeout,
        }));
    let busy = error_body(
        "com.amazon.coral.availability#ThrottlingException",
        "The engine has too many open connections; retry shortly.",
    );
    let busy = listener::busy_answer(AMZ_JSON, &busy);
    listener::serve_until(
        app,
        listener,
        cfg.serve,
        busy,
        |io| io,
        std::future::pending(),
    )
    .await
}

struct Door {
    db: Database,
    key: EngineKey,
    body_read_timeout: Duration,
}

async fn door(State(door): State<Arc<Door>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // The head first: nothing of the body is read for a caller without the key.
    let content_sha256 = match verify_head(
        &door.key,
        &parts.method,
        &parts.uri,
        &parts.headers,
        SystemTime::now(),
    ) {
        Ok(hash) => hash,
        Err(refusal) => {
            tracing::warn!(kind = refusal.kind(), "engine listener refused a request");
            return closing(dynamo_json(400, refusal.body()));
        }
    };
    let body = match read_body(body, &parts.headers, door.body_read_timeout).await {
        Ok(b) => b,
        Err(answer) => return closing(answer),
    };
    if let Err(refusal) = check_body(&content_sha256, &body) {
        tracing::warn!(kind = refusal.kind(), "engine listener refused a request");
        return dynamo_json(400, refusal.body());
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (status, json) = in_process::answer_json(&door.db, target, &body);
    dynamo_json(status, json)
}

/// A verified request's body: at most [`MAX_BODY`] bytes (also by its `Content-Length`, checked before any
/// byte is read), within `timeout`.
async fn read_body(body: Body, headers: &HeaderMap, timeout: Duration) -> Result<Bytes, Response> {
    let too_large = || {
        dynamo_json(
            413,
            error_body(
                "com.amazon.coral.validate#ValidationException",
                "The request body is larger than 16 MB.",
            ),
        )
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) if declared.is_none() => Err(too_large()),
        Ok(Err(_)) => Err(dynamo_json(
            400,
            error_body(
                "com.amazon.coral.validate#ValidationException",
                "The request body was cut off.",
            ),
        )),
        Err(_) => {
            tracing::warn!("engine listener: a request body did not arrive in time");
            let detail = "The request body did not arrive within the body read timeout.";
            Err(dynamo_json(
                408,
                error_body("com.amazon.coral.service#RequestTimeoutException", detail),
            ))
        }
    }
}

/// `answer`, after which the connection is closed (its request's body may be unread).
fn closing(mut answer: Response) -> Response {
    answer
        .headers_mut()
        .insert("connection", axum::http::HeaderValue::from_static("close"));
    answer
}

fn error_body(kind: &str, message: &str) -> String {
    serde_json::json!({"__type": kind, "message": message}).to_string()
}

fn dynamo_json(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", AMZ_JSON)], body).into_response()
}

/// Why the door refused a request (DynamoDB's own error types for these cases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or not the engine's key.
    UnrecognizedClient(String),
    /// The signature does not match, or the request is outside the time window.
    InvalidSignature(String),
}

impl Refusal {
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnrecognizedClient(_) => "UnrecognizedClientException",
            Refusal::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    fn body(&self) -> String {
        let (Refusal::UnrecognizedClient(m) | Refusal::InvalidSignature(m)) = self;
        error_body(&format!("com.amazon.coral.service#{}", self.kind()), m)
    }
}

fn unrecognized(m: &str) -> Refusal {
    Refusal::UnrecognizedClient(m.to_string())
}
fn invalid(m: impl Into<String>) -> Refusal {
    Refusal::InvalidSignature(m.into())
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, Refusal> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| {
            unrecognized("The request must be signed with AWS4-HMAC-SHA256 and the engine's key.")
        })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(invalid("The Authorization header is malformed.")),
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(invalid(
            "The Authorization header needs Credential, SignedHeaders and Signature.",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(invalid(
            "The Credential of the Authorization header is malformed.",
        ));
    };
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, &format)
        .ok()
        .map(|t| t.assume_utc().into())
}

/// Check the request's SigV4 signature against `key` at time `now`, its body included.
pub fn verify(
    key: &EngineKey,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    check_body(&verify_head(key, method, uri, headers, now)?, body)
}

/// Whether `body` has the SHA-256 `content_sha256` the verified head claims.
fn check_body(content_sha256: &str, body: &[u8]) -> Result<(), Refusal> {
    if hex::encode(Sha256::digest(body)) == content_sha256 {
        Ok(())
    } else {
        Err(invalid(
            "The request body does not match its signed x-amz-content-sha256.",
        ))
    }
}

/// Check the SigV4 signature of a request's head against `key` at time `now`, with the payload hash its
/// signed `x-amz-content-sha256` header claims; that hash (for [`check_body`]) when it holds.
pub fn verify_head(
    key: &EngineKey,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<String, Refusal> {
    let auth_value = headers
        .get("authorization")
        .ok_or_else(|| unrecognized("The request carries no signature; sign it with the engine's key (SCIM_DATA_DIR/engine-key)."))?
        .to_str()
        .map_err(|_| invalid("The Authorization header is malformed."))?;
    let auth = parse_authorization(auth_value)?;
    if auth.access_key_id != ACCESS_KEY_ID {
        return Err(unrecognized(
            "The security token included in the request is invalid.",
        ));
    }
    if auth.service != SERVICE {
        return Err(invalid(format!(
            "Credential should be scoped to the service '{SERVICE}'."
        )));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| invalid("The request needs an X-Amz-Date header."))?;
    let signed_at =
        parse_amz_date(amz_date).ok_or_else(|| invalid("The X-Amz-Date header is malformed."))?;
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(invalid("The Credential's date does not match X-Amz-Date."));
    }
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(invalid(format!(
            "Signature expired: {amz_date} is more than {} minutes from the engine's time.",
            MAX_SKEW.as_secs() / 60
        )));
    }
    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    for required in ["host", "x-amz-date", "x-amz-target", CONTENT_SHA256] {
        if !names.contains(&required) {
            return Err(invalid(format!(
                "The signed headers must include {required}."
            )));
        }
    }
    let mut signed = Vec::new();
    for name in &names {
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(invalid(format!("The signed header {name} is missing.")));
        }
        for v in values {
            signed.push((
                *name,
                v.to_str()
                    .map_err(|_| invalid(format!("The signed header {name} is not text.")))?,
            ));
        }
    }

    let content_sha256 = headers
        .get(CONTENT_SHA256)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_sha256.len() != 64
        || !content_sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid(
            "The x-amz-content-sha256 header must be the body's SHA-256 in lower-case hex.",
        ));
    }

    // The expected signature, by the SDK's signer (see the module comment). The URI's authority is a
    // placeholder: the signed `host` header (required above) is what the signer uses.
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let identity =
        Credentials::new(ACCESS_KEY_ID, key.secret.clone(), None, None, "engine-key").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(SERVICE)
        .time(signed_at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| invalid("The request cannot be verified."))?
        .into();
    let request = SignableRequest::new(
        method.as_str(),
        format!("http://engine{path}"),
        signed.into_iter(),
        SignableBody::Precomputed(content_sha256.to_string()),
    )
    .map_err(|_| invalid("The request cannot be verified."))?;
    let (instructions, expected) = sign(request, &params)
        .map_err(|_| invalid("The request cannot be verified."))?
        .into_parts();
    let (expected_headers, _) = instructions.into_parts();
    let expected_signed = expected_headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("authorization"))
        .and_then(|h| h.value().split("SignedHeaders=").nth(1))
        .and_then(|v| v.split(',').next())
        .unwrap_or("");
    let same_signature: bool = expected.as_bytes().ct_eq(auth.signature.as_bytes()).into();
    if expected_signed != auth.signed_headers || !same_signature {
        return Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check the engine's key (SCIM_DATA_DIR/engine-key).",
        ));
    }
    Ok(content_sha256.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"TableName":"t","Key":{"pk":{"S":"a"},"sk":{"S":"b"}}}"#;

    /// A request signed as our clients sign it (the SDK, with the body's hash added), with `secret` at `at`.
    fn signed(secret: &str, at: SystemTime, body: &[u8]) -> HeaderMap {
        signed_with(secret, at, body, true)
    }

    fn signed_with(secret: &str, at: SystemTime, body: &[u8], content_sha256: bool) -> HeaderMap {
        let identity = Credentials::new(ACCESS_KEY_ID, secret, None, None, "test").into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let hash = hex::encode(Sha256::digest(body));
        let mut base = vec![
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
            ("host", "127.0.0.1:4567"),
            ("user-agent", "test"),
        ];
        if content_sha256 {
            base.push((CONTENT_SHA256, &hash));
        }
        let req = SignableRequest::new(
            "POST",
            "http://127.0.0.1:4567/",
            base.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instr, _) = sign(req, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        for (k, v) in base {
            headers.insert(k, v.parse().unwrap());
        }
        let (extra, _) = instr.into_parts();
        for h in extra {
            headers.insert(
                axum::http::HeaderName::from_bytes(h.name().as_bytes()).unwrap(),
                h.value().parse().unwrap(),
            );
        }
        headers
    }

    fn check(
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
        key: &EngineKey,
    ) -> Result<(), Refusal> {
        verify(
            key,
            &Method::POST,
            &Uri::from_static("/"),
            headers,
            body,
            now,
        )
    }

    #[test]
    fn a_request_signed_with_the_key_passes() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        assert_eq!(
            check(&signed(&key.secret, now, BODY), BODY, now, &key),
            Ok(())
        );
        // within the window either side
        assert_eq!(
            check(
                &signed(&key.secret, now - Duration::from_secs(200), BODY),
                BODY,
                now,
                &key
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &signed(&key.secret, now + Duration::from_secs(200), BODY),
                BODY,
                now,
                &key
            ),
            Ok(())
        );
    }

    #[test]
    fn unsigned_is_an_unrecognized_client() {
        let key = EngineKey::random();
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", "DynamoDB_20120810.GetItem".parse().unwrap());
        let r = check(&h, BODY, SystemTime::now(), &key).unwrap_err();
        assert_eq!(r.kind(), "UnrecognizedClientException");
        assert!(
            r.body()
                .contains("com.amazon.coral.service#UnrecognizedClientException"),
            "{}",
            r.body()
        );
    }

    #[test]
    fn another_secret_or_key_id_is_refused() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        let r = check(
            &signed(&EngineKey::random().secret, now, BODY),
            BODY,
            now,
            &key,
        )
        .unwrap_err();
        assert_eq!(r.kind(), "InvalidSignatureException");
        let mut h = signed(&key.secret, now, BODY);
        let other = h["authorization"]
            .to_str()
            .unwrap()
            .replace("Credential=scim-local/", "Credential=someone/");
        h.insert("authorization", other.parse().unwrap());
        assert_eq!(
            check(&h, BODY, now, &key).unwrap_err().kind(),
            "UnrecognizedClientException"
        );
    }

    #[test]
    fn tampered_body_or_header_is_refused() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        let h = signed(&key.secret, now, BODY);
        let tampered = br#"{"TableName":"t","Key":{"pk":{"S":"z"},"sk":{"S":"b"}}}"#;
        assert_eq!(
            check(&h, tampered, now, &key).unwrap_err().kind(),
            "InvalidSignatureException"
        );
        let mut h2 = h.clone();
        h2.insert(
            "x-amz-target",
            "DynamoDB_20120810.DeleteItem".parse().unwrap(),
        );
        assert_eq!(
            check(&h2, BODY, now, &key).unwrap_err().kind(),
            "InvalidSignatureException"
        );
        let mut h3 = h.clone();
        let sig = h3["authorization"].to_str().unwrap().to_string();
        let flipped = format!(
            "{}{}",
            &sig[..sig.len() - 1],
            if sig.ends_with('0') { '1' } else { '0' }
        );
        h3.insert("authorization", flipped.parse().unwrap());
        assert_eq!(
            check(&h3, BODY, now, &key).unwrap_err().kind(),
            "InvalidSignatureException"
        );
        // dropping x-amz-target from the signed headers is refused even with a valid signature
        let mut h4 = h.clone();
        let a = h4["authorization"]
            .to_str()
            .unwrap()
            .replace(";x-amz-target", "");
        h4.insert("authorization", a.parse().unwrap());
        assert_eq!(
            check(&h4, BODY, now, &key).unwrap_err().kind(),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn the_body_hash_must_be_signed_and_true() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        // Signed as the SDK signs by default (no x-amz-content-sha256): the head alone cannot be verified.
        let h = signed_with(&key.secret, now, BODY, false);
        let r = check(&h, BODY, now, &key).unwrap_err();
        assert!(r.body().contains("x-amz-content-sha256"), "{}", r.body());
        // The head verifies before any body is seen, and gives the hash the body must have.
        let h = signed(&key.secret, now, BODY);
        let claimed = verify_head(&key, &Method::POST, &Uri::from_static("/"), &h, now).unwrap();
        assert_eq!(claimed, hex::encode(Sha256::digest(BODY)));
        assert_eq!(
            check_body(&claimed, b"{}").unwrap_err().kind(),
            "InvalidSignatureException"
        );
        // Another hash in the header than the one signed is refused at the head.
        let mut h2 = h.clone();
        h2.insert(
            CONTENT_SHA256,
            hex::encode(Sha256::digest(b"{}")).parse().unwrap(),
        );
        assert_eq!(
            verify_head(&key, &Method::POST, &Uri::from_static("/"), &h2, now)
                .unwrap_err()
                .kind(),
            "InvalidSignatureException"
        );
        h2.insert(CONTENT_SHA256, "UNSIGNED-PAYLOAD".parse().unwrap());
        assert_eq!(
            verify_head(&key, &Method::POST, &Uri::from_static("/"), &h2, now)
                .unwrap_err()
                .kind(),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn stale_or_future_dates_are_refused() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        for at in [
            now - Duration::from_secs(6 * 60),
            now + Duration::from_secs(6 * 60),
        ] {
            let r = check(&signed(&key.secret, at, BODY), BODY, now, &key).unwrap_err();
            assert_eq!(r.kind(), "InvalidSignatureException");
            assert!(r.body().contains("expired"), "{}", r.body());
        }
    }

    #[test]
    fn malformed_headers_are_refusals_not_panics() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        for auth in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=scim-local, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=scim-local/2024/us/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00",
            "AWS4-HMAC-SHA256 garbage",
            "Basic abc",
        ] {
            let mut h = signed(&key.secret, now, BODY);
            h.insert("authorization", auth.parse().unwrap());
            assert!(check(&h, BODY, now, &key).is_err(), "{auth}");
        }
        let mut h = signed(&key.secret, now, BODY);
        h.insert("x-amz-date", "yesterday".parse().unwrap());
        assert_eq!(
            check(&h, BODY, now, &key).unwrap_err().kind(),
            "InvalidSignatureException"
        );
        let mut h = signed(&key.secret, now, BODY);
        h.remove("host");
        assert_eq!(
            check(&h, BODY, now, &key).unwrap_err().kind(),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("scim-door-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::engine::private_dir::prepare(&dir).unwrap();
        let a = EngineKey::load_or_create(&dir).unwrap();
        let b = EngineKey::load_or_create(&dir).unwrap();
        assert_eq!(a.secret, b.secret);
        assert_eq!(EngineKey::read(&dir).unwrap().secret, a.secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(dir.join(KEY_FILE))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
        }
        std::fs::write(dir.join(KEY_FILE), "short").unwrap();
        assert!(EngineKey::load_or_create(&dir)
            .unwrap_err()
            .contains("malformed"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
