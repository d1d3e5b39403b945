//! The embedded engine's door for other processes: a loopback HTTP listener that speaks the DynamoDB API
//! (for `scim-admin` and the benchmark's ceiling) and lets in only requests signed (AWS SigV4) with the
//! secret key kept in the data directory — a file only the directory's owner can read. Unsigned, wrongly
//! signed, tampered or stale requests are answered with a DynamoDB-style error and never reach the engine.
//! Verified requests are handed to the engine in process, by the same dispatch as the server's own calls
//! ([`crate::in_process`]).
//!
//! The expected signature is computed by `aws-sigv4`, the signer the SDK itself uses, from the request's
//! signed headers, body, `x-amz-date` and credential scope, instead of a hand-written canonicalisation:
//! the canonical request (header normalisation, path encoding, payload hash) is then byte-for-byte what
//! the SDK signed, and stays so when the SDK changes. The cost: a client that signs a header the SDK
//! never signs (`user-agent`) is refused; our clients are the SDK.

use crate::in_process;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4::SigningParams;
use dynoxide::Database;
use scim_core::store::dynamo::DynamoStore;
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
        EngineKey { secret: scim_core::auth::generate_token() }
    }

    /// The key kept in `dir`, or a new one written there (mode 0600) and kept for later starts.
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        match Self::read(dir) {
            Ok(k) => Ok(k),
            Err(_) if !dir.join(KEY_FILE).exists() => {
                let key = Self::random();
                let file = dir.join(KEY_FILE);
                crate::private_dir::create_private(&file, &key.secret)
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

    /// A store on `table` that reaches the engine at `endpoint` through its door, signing with this key.
    pub fn store(&self, endpoint: &str, table: impl Into<String>, call_timeout: Duration) -> DynamoStore {
        DynamoStore::local_with_credentials(endpoint, table, call_timeout, ACCESS_KEY_ID, &self.secret)
    }
}

/// Serve the engine's DynamoDB API on `listener`, for callers that sign with `key`.
pub async fn serve(listener: TcpListener, db: Database, key: EngineKey) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback(door)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Door { db, key }));
    axum::serve(listener, app).await
}

struct Door {
    db: Database,
    key: EngineKey,
}

async fn door(State(door): State<Arc<Door>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = verify(&door.key, &method, &uri, &headers, &body, SystemTime::now()) {
        tracing::warn!(kind = refusal.kind(), "engine listener refused a request");
        return dynamo_json(400, refusal.body());
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let (status, json) = in_process::answer_json(&door.db, target, &body);
    dynamo_json(status, json)
}

fn dynamo_json(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/x-amz-json-1.0")], body).into_response()
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
        serde_json::json!({"__type": format!("com.amazon.coral.service#{}", self.kind()), "message": m}).to_string()
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
        .ok_or_else(|| unrecognized("The request must be signed with AWS4-HMAC-SHA256 and the engine's key."))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(invalid("The Authorization header is malformed.")),
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
        return Err(invalid("The Authorization header needs Credential, SignedHeaders and Signature."));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(invalid("The Credential of the Authorization header is malformed."));
    };
    Ok(Authorization { access_key_id, date, region, service, signed_headers, signature })
}

fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, &format).ok().map(|t| t.assume_utc().into())
}

/// Check the request's SigV4 signature against `key` at time `now`.
pub fn verify(key: &EngineKey, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<(), Refusal> {
    let auth_value = headers
        .get("authorization")
        .ok_or_else(|| unrecognized("The request carries no signature; sign it with the engine's key (SCIM_DATA_DIR/engine-key)."))?
        .to_str()
        .map_err(|_| invalid("The Authorization header is malformed."))?;
    let auth = parse_authorization(auth_value)?;
    if auth.access_key_id != ACCESS_KEY_ID {
        return Err(unrecognized("The security token included in the request is invalid."));
    }
    if auth.service != SERVICE {
        return Err(invalid(format!("Credential should be scoped to the service '{SERVICE}'.")));
    }
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| invalid("The request needs an X-Amz-Date header."))?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| invalid("The X-Amz-Date header is malformed."))?;
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(invalid("The Credential's date does not match X-Amz-Date."));
    }
    let skew = now.duration_since(signed_at).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(invalid(format!("Signature expired: {amz_date} is more than {} minutes from the engine's time.", MAX_SKEW.as_secs() / 60)));
    }
    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    for required in ["host", "x-amz-date", "x-amz-target"] {
        if !names.contains(&required) {
            return Err(invalid(format!("The signed headers must include {required}.")));
        }
    }
    let mut signed = Vec::new();
    for name in &names {
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(invalid(format!("The signed header {name} is missing.")));
        }
        for v in values {
            signed.push((*name, v.to_str().map_err(|_| invalid(format!("The signed header {name} is not text.")))?));
        }
    }

    // The expected signature, by the SDK's signer (see the module comment). The URI's authority is a
    // placeholder: the signed `host` header (required above) is what the signer uses.
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let identity = Credentials::new(ACCESS_KEY_ID, key.secret.clone(), None, None, "engine-key").into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(SERVICE)
        .time(signed_at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| invalid("The request cannot be verified."))?
        .into();
    let request = SignableRequest::new(method.as_str(), format!("http://engine{path}"), signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|_| invalid("The request cannot be verified."))?;
    let (instructions, expected) = sign(request, &params).map_err(|_| invalid("The request cannot be verified."))?.into_parts();
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"TableName":"t","Key":{"pk":{"S":"a"},"sk":{"S":"b"}}}"#;

    /// A request signed as the SDK signs it, with `secret` at `at`.
    fn signed(secret: &str, at: SystemTime, body: &[u8]) -> HeaderMap {
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
        let base = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
            ("host", "127.0.0.1:4567"),
            ("user-agent", "test"),
        ];
        let req = SignableRequest::new("POST", "http://127.0.0.1:4567/", base.iter().copied(), SignableBody::Bytes(body)).unwrap();
        let (instr, _) = sign(req, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        for (k, v) in base {
            headers.insert(k, v.parse().unwrap());
        }
        let (extra, _) = instr.into_parts();
        for h in extra {
            headers.insert(axum::http::HeaderName::from_bytes(h.name().as_bytes()).unwrap(), h.value().parse().unwrap());
        }
        headers
    }

    fn check(headers: &HeaderMap, body: &[u8], now: SystemTime, key: &EngineKey) -> Result<(), Refusal> {
        verify(key, &Method::POST, &Uri::from_static("/"), headers, body, now)
    }

    #[test]
    fn a_request_signed_with_the_key_passes() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        assert_eq!(check(&signed(&key.secret, now, BODY), BODY, now, &key), Ok(()));
        // within the window either side
        assert_eq!(check(&signed(&key.secret, now - Duration::from_secs(200), BODY), BODY, now, &key), Ok(()));
        assert_eq!(check(&signed(&key.secret, now + Duration::from_secs(200), BODY), BODY, now, &key), Ok(()));
    }

    #[test]
    fn unsigned_is_an_unrecognized_client() {
        let key = EngineKey::random();
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", "DynamoDB_20120810.GetItem".parse().unwrap());
        let r = check(&h, BODY, SystemTime::now(), &key).unwrap_err();
        assert_eq!(r.kind(), "UnrecognizedClientException");
        assert!(r.body().contains("com.amazon.coral.service#UnrecognizedClientException"), "{}", r.body());
    }

    #[test]
    fn another_secret_or_key_id_is_refused() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        let r = check(&signed(&EngineKey::random().secret, now, BODY), BODY, now, &key).unwrap_err();
        assert_eq!(r.kind(), "InvalidSignatureException");
        let mut h = signed(&key.secret, now, BODY);
        let other = h["authorization"].to_str().unwrap().replace("Credential=scim-local/", "Credential=someone/");
        h.insert("authorization", other.parse().unwrap());
        assert_eq!(check(&h, BODY, now, &key).unwrap_err().kind(), "UnrecognizedClientException");
    }

    #[test]
    fn tampered_body_or_header_is_refused() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        let h = signed(&key.secret, now, BODY);
        let tampered = br#"{"TableName":"t","Key":{"pk":{"S":"z"},"sk":{"S":"b"}}}"#;
        assert_eq!(check(&h, tampered, now, &key).unwrap_err().kind(), "InvalidSignatureException");
        let mut h2 = h.clone();
        h2.insert("x-amz-target", "DynamoDB_20120810.DeleteItem".parse().unwrap());
        assert_eq!(check(&h2, BODY, now, &key).unwrap_err().kind(), "InvalidSignatureException");
        let mut h3 = h.clone();
        let sig = h3["authorization"].to_str().unwrap().to_string();
        let flipped = format!("{}{}", &sig[..sig.len() - 1], if sig.ends_with('0') { '1' } else { '0' });
        h3.insert("authorization", flipped.parse().unwrap());
        assert_eq!(check(&h3, BODY, now, &key).unwrap_err().kind(), "InvalidSignatureException");
        // dropping x-amz-target from the signed headers is refused even with a valid signature
        let mut h4 = h.clone();
        let a = h4["authorization"].to_str().unwrap().replace(";x-amz-target", "");
        h4.insert("authorization", a.parse().unwrap());
        assert_eq!(check(&h4, BODY, now, &key).unwrap_err().kind(), "InvalidSignatureException");
    }

    #[test]
    fn stale_or_future_dates_are_refused() {
        let key = EngineKey::random();
        let now = SystemTime::now();
        for at in [now - Duration::from_secs(6 * 60), now + Duration::from_secs(6 * 60)] {
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
        assert_eq!(check(&h, BODY, now, &key).unwrap_err().kind(), "InvalidSignatureException");
        let mut h = signed(&key.secret, now, BODY);
        h.remove("host");
        assert_eq!(check(&h, BODY, now, &key).unwrap_err().kind(), "InvalidSignatureException");
    }

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("scim-door-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::private_dir::prepare(&dir).unwrap();
        let a = EngineKey::load_or_create(&dir).unwrap();
        let b = EngineKey::load_or_create(&dir).unwrap();
        assert_eq!(a.secret, b.secret);
        assert_eq!(EngineKey::read(&dir).unwrap().secret, a.secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(dir.join(KEY_FILE), "short").unwrap();
        assert!(EngineKey::load_or_create(&dir).unwrap_err().contains("malformed"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
