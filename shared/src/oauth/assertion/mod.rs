//! Workload Identity Federation: verifying the JWT that Entra's provisioning service presents as
//! `client_assertion` at the token endpoint (RFC 7523 §2.2 client authentication, §3 rules) instead of a
//! client secret.
//!
//! Owns [`WifTrust`] (the four values a tenant's admin copies from Entra), [`Jwks`] (the cache of the
//! issuer's signing keys, `jwks.rs`; its HTTP fetching in `fetch.rs`) and the rules an assertion must
//! pass ([`Jwks::verify`]). It knows nothing of tenants, clients, access tokens or the store: the token
//! endpoint looks the trust up and answers `invalid_client` to every [`Rejected`].
//! Imports: only `config` (environment helpers) and `cache` (`max_from_env`) of this crate.
//!
//! The rules, in the order they are applied (each refusal is one [`Rejected`] variant):
//! 1. at most [`MAX_ASSERTION_BYTES`], three base64url segments (a JWS in compact form; no JWE);
//! 2. header: `alg` exactly `RS256` (so never `none`, never an HMAC — a "secret" made of the public key
//!    cannot work — and no other algorithm), `kid` a non-empty string, `typ` absent or `JWT`, no `crit`;
//!    key-carrying headers (`jku`, `x5u`, `jwk`, `x5c`) are ignored: keys come only from the trust's JWKS URL;
//! 3. claims, compared exactly (byte for byte) with the trust: `iss`, `sub`, `aud` (a string, or an array
//!    that contains it); `exp` required; `nbf` and `iat` optional; times within [`CLOCK_SKEW`]; `exp` at
//!    most [`MAX_LIFETIME`] ahead. Claims are checked before any key is looked up, so an assertion that
//!    was never meant for this trust cannot make the server fetch anything;
//! 4. the key with that `kid` from the trust's JWKS URL (cached; an unknown `kid` refetches, rate-limited);
//! 5. the RS256 signature (by `jsonwebtoken` on aws-lc-rs, the crypto library the AWS SDK already links).
//!
//! Not checked: `jti` replay (Entra's assertions carry none; an assertion is only worth an access token
//! of the same tenant, and it travels over TLS), `tid`/`oid`/`appid` (the issuer already names the tenant;
//! they are returned for logs).

mod fetch;
mod jwks;
mod probe;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use fetch::{check_jwks_url, FetchError};
pub use jwks::{Jwks, JwksSettings};
pub use probe::probe_jwks;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest assertion looked at (bytes). Entra's are about 1.5 KB; anything longer is refused before parsing.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Longest `kid` accepted, in a header or a JWKS (Microsoft's are 27–40 characters).
pub const MAX_KID_LEN: usize = 256;
/// Clock difference tolerated between Entra and this server, both ways, for `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Furthest `exp` may lie in the future (Entra's assertions live about 65 minutes); RFC 7523 §3 lets a
/// server refuse an unreasonably distant expiry, and this bounds how long a captured assertion is worth.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a tenant's admin copied from Entra's "Workload Identity Federation" connectivity page: the
/// expected `iss`, `sub` and `aud` of the assertion and where the issuer publishes its keys. Stored
/// verbatim and compared exactly (Microsoft's pages disagree on the forms, so nothing is normalised).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifTrust {
    /// e.g. `https://login.microsoftonline.com/<tenant id>/v2.0`
    pub issuer: String,
    /// the object id of Entra's provisioning workload identity
    pub subject: String,
    /// e.g. `api://<workload identity app id>` (some pages add `/.default`: paste what Entra shows)
    pub audience: String,
    /// e.g. `https://login.microsoftonline.com/<tenant id>/discovery/v2.0/keys`
    pub jwks_url: String,
}

impl WifTrust {
    /// Whether the trust can be used at all: every value present and of sane length, and a JWKS URL
    /// this server would fetch (https, or http on a loopback host when `allow_http` is false). For
    /// `scim-admin` to refuse a bad trust when it is set rather than at the first assertion.
    pub fn check(&self, allow_http: bool) -> Result<(), String> {
        for (name, v) in [
            ("issuer", &self.issuer),
            ("subject", &self.subject),
            ("audience", &self.audience),
            ("JWKS URL", &self.jwks_url),
        ] {
            if v.trim().is_empty() {
                return Err(format!("the {name} is empty"));
            }
            if v.len() > 2048 {
                return Err(format!("the {name} is longer than 2048 bytes"));
            }
            if v.trim() != v.as_str() {
                return Err(format!("the {name} has leading or trailing spaces"));
            }
        }
        check_jwks_url(&self.jwks_url, allow_http)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// An assertion that passed every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// `iss` (equal to the trust's issuer)
    pub iss: String,
    /// `sub` (equal to the trust's subject)
    pub sub: String,
    /// the trust's audience, found in `aud`
    pub aud: String,
    /// `exp`
    pub exp: SystemTime,
    /// the `kid` whose key verified the signature
    pub kid: String,
    /// Entra's `tid` (tenant id) and `oid` (object id), when present: for logs only, never checked
    pub tid: Option<String>,
    pub oid: Option<String>,
}

/// Why an assertion was refused. For logs only: the token endpoint answers `invalid_client` to all of
/// them. Its `Display` never contains the assertion or any value taken from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// longer than [`MAX_ASSERTION_BYTES`]
    TooLong,
    /// not three base64url segments, or a header or claims set that is not a JSON object
    Malformed,
    /// `alg` missing or not exactly `RS256`
    Algorithm,
    /// `kid` missing, not a string, empty or too long
    MissingKid,
    /// `typ` present and not `JWT`
    Type,
    /// a `crit` header (no extension is understood)
    Critical,
    Issuer,
    Subject,
    Audience,
    /// `exp` missing or not an integer
    MissingExpiry,
    /// `nbf` or `iat` not an integer
    BadTime,
    Expired,
    /// `nbf` later than now + skew
    NotYetValid,
    /// `iat` later than now + skew
    IssuedInFuture,
    /// `exp` more than [`MAX_LIFETIME`] ahead
    LifetimeTooLong,
    /// no key with this `kid` in the JWKS (after a refetch, or while a refetch is rate-limited)
    UnknownKey,
    /// the `kid` is not cached and the JWKS could not be fetched
    JwksUnavailable(FetchError),
    BadSignature,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Rejected::TooLong => "assertion too long",
            Rejected::Malformed => "assertion is not a compact JWS with JSON header and claims",
            Rejected::Algorithm => "alg is not RS256",
            Rejected::MissingKid => "kid missing or not a string",
            Rejected::Type => "typ is not JWT",
            Rejected::Critical => "crit header present",
            Rejected::Issuer => "iss does not match the trust",
            Rejected::Subject => "sub does not match the trust",
            Rejected::Audience => "aud does not contain the trust's audience",
            Rejected::MissingExpiry => "exp missing or not an integer",
            Rejected::BadTime => "nbf or iat not an integer",
            Rejected::Expired => "assertion expired",
            Rejected::NotYetValid => "assertion not yet valid (nbf)",
            Rejected::IssuedInFuture => "assertion issued in the future (iat)",
            Rejected::LifetimeTooLong => "exp too far in the future",
            Rejected::UnknownKey => "no key with this kid in the JWKS",
            Rejected::JwksUnavailable(e) => return write!(f, "JWKS unavailable: {e}"),
            Rejected::BadSignature => "signature does not verify",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Rejected {}

impl Jwks {
    /// Applies every rule of the module's documentation to `assertion` for `trust`, at time `now`.
    pub async fn verify(
        &self,
        assertion: &str,
        trust: &WifTrust,
        now: SystemTime,
    ) -> Result<VerifiedAssertion, Rejected> {
        let jws = Compact::parse(assertion)?;
        let kid = check_header(&jws.header)?;
        let checked = check_claims(&jws.claims, trust, now)?;
        let key = self.key(&trust.jwks_url, &kid).await?;
        // The one algorithm and the one backend, fixed here: RS256 (checked in the header to agree, never
        // taken from it) on aws-lc-rs, called directly so no process-wide provider choice can change it.
        let verifier = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory)(
            &jsonwebtoken::Algorithm::RS256,
            &key,
        )
        .map_err(|_| Rejected::BadSignature)?;
        verifier
            .verify(jws.signing_input.as_bytes(), &jws.signature)
            .map_err(|_| Rejected::BadSignature)?;
        Ok(VerifiedAssertion {
            iss: trust.issuer.clone(),
            sub: trust.subject.clone(),
            aud: trust.audience.clone(),
            exp: checked.exp,
            kid,
            tid: checked.tid,
            oid: checked.oid,
        })
    }
}

/// A JWS in compact serialisation, its header and claims decoded (not yet trusted).
struct Compact<'a> {
    /// `BASE64URL(header) '.' BASE64URL(payload)`: what the signature covers
    signing_input: &'a str,
    signature: Vec<u8>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl<'a> Compact<'a> {
    fn parse(token: &'a str) -> Result<Self, Rejected> {
        if token.len() > MAX_ASSERTION_BYTES {
            return Err(Rejected::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejected::Malformed);
        };
        if s.is_empty() {
            // an unsecured JWS (RFC 7515 §A.5, `alg: none`) has an empty signature
            return Err(Rejected::Algorithm);
        }
        let object = |seg: &str| -> Result<Map<String, Value>, Rejected> {
            let bytes = URL_SAFE_NO_PAD
                .decode(seg)
                .map_err(|_| Rejected::Malformed)?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(Rejected::Malformed),
            }
        };
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| Rejected::Malformed)?;
        Ok(Compact {
            signing_input: &token[..h.len() + 1 + p.len()],
            signature,
            header: object(h)?,
            claims: object(p)?,
        })
    }
}

/// The header rules (RFC 7515 §4.1); returns the `kid`.
fn check_header(header: &Map<String, Value>) -> Result<String, Rejected> {
    // Case-sensitive (RFC 7515 §4.1.1): "rs256", "none", "HS256" … are all refused.
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(Rejected::Algorithm);
    }
    let kid = match header.get("kid") {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => k.clone(),
        _ => return Err(Rejected::MissingKid),
    };
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(Rejected::Type),
    }
    // RFC 7515 §4.1.11: a recipient must refuse a JWS whose critical extensions it does not understand;
    // this one understands none.
    if header.contains_key("crit") {
        return Err(Rejected::Critical);
    }
    Ok(kid)
}

/// What the claim rules return besides the trust's own values.
struct Checked {
    exp: SystemTime,
    tid: Option<String>,
    oid: Option<String>,
}

/// The claim rules (RFC 7523 §3, RFC 7519 §4.1).
fn check_claims(
    claims: &Map<String, Value>,
    trust: &WifTrust,
    now: SystemTime,
) -> Result<Checked, Rejected> {
    if claims.get("iss").and_then(Value::as_str) != Some(trust.issuer.as_str()) {
        return Err(Rejected::Issuer);
    }
    if claims.get("sub").and_then(Value::as_str) != Some(trust.subject.as_str()) {
        return Err(Rejected::Subject);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == trust.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(trust.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(Rejected::Audience);
    }
    // NumericDate as an integer (Entra sends integers); compared in i128 so no value can overflow.
    let time = |name: &str| -> Result<Option<i128>, ()> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(|t| Some(t as i128)).ok_or(()),
        }
    };
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i128)
        .unwrap_or(0);
    let skew = CLOCK_SKEW.as_secs() as i128;
    let exp = time("exp").ok().flatten().ok_or(Rejected::MissingExpiry)?;
    let nbf = time("nbf").map_err(|_| Rejected::BadTime)?;
    let iat = time("iat").map_err(|_| Rejected::BadTime)?;
    // RFC 7519 §4.1.4: valid only while now is before exp.
    if now_s >= exp + skew {
        return Err(Rejected::Expired);
    }
    if nbf.is_some_and(|nbf| now_s < nbf - skew) {
        return Err(Rejected::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now_s + skew) {
        return Err(Rejected::IssuedInFuture);
    }
    if exp > now_s + MAX_LIFETIME.as_secs() as i128 + skew {
        return Err(Rejected::LifetimeTooLong);
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    Ok(Checked {
        // exp > now - skew here, and at most now + lifetime + skew: it fits in u64
        exp: UNIX_EPOCH + Duration::from_secs(exp.max(0) as u64),
        tid: text("tid"),
        oid: text("oid"),
    })
}
