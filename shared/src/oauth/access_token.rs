//! Access tokens: self-contained and signed, so that checking one needs no store call.
//!
//! Form: `at1.<kid>.<claims>.<tag>` — `at1` marks an access token (tenant tokens are 64 hex digits, so
//! the two never collide), `kid` the signing key, `claims` the base64url JSON
//! `{"t": tenant, "c": client id, "iat": issued, "exp": expiry}` (seconds since the epoch), `tag` the
//! base64url HMAC-SHA256 of `at1.<kid>.<claims>` ([`super::signing`]). The tag is checked (in constant
//! time) before the claims are even decoded. Imports `signing`.

use super::signing::KeyRing;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// What every access token begins with.
pub const PREFIX: &str = "at1.";
/// Longest token looked at (ours are about 200 bytes).
pub const MAX_TOKEN_BYTES: usize = 1024;
/// How far in the future `iat` may lie (another instance's clock).
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Whether `token` has the form of an access token (not whether it is valid).
pub fn is_access_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// tenant
    pub t: String,
    /// client id
    pub c: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused (for logs; every one is a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    /// unknown `kid` or a tag that does not verify
    Signature,
    Expired,
    IssuedInFuture,
}

/// A new token for `claims`, signed with the ring's current key.
pub fn issue(ring: &KeyRing, claims: &Claims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let kid = ring.current_kid();
    let input = format!("{PREFIX}{kid}.{body}");
    let (_, tag) = ring.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The claims of `token` if it was signed by a key of `ring` and is valid at `now` (seconds since the epoch).
pub fn verify(ring: &KeyRing, token: &str, now: i64) -> Result<Claims, Invalid> {
    if token.len() > MAX_TOKEN_BYTES || !is_access_token(token) {
        return Err(Invalid::Malformed);
    }
    let (input, tag) = token.rsplit_once('.').ok_or(Invalid::Malformed)?;
    let mut parts = input
        .strip_prefix(PREFIX)
        .ok_or(Invalid::Malformed)?
        .split('.');
    let (Some(kid), Some(body), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Invalid::Malformed);
    };
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| Invalid::Malformed)?;
    if !ring.verify(kid, input.as_bytes(), &tag) {
        return Err(Invalid::Signature);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| Invalid::Malformed)?;
    let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| Invalid::Malformed)?;
    if now >= claims.exp {
        return Err(Invalid::Expired);
    }
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(Invalid::IssuedInFuture);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(kid: &str) -> KeyRing {
        KeyRing::parse(&KeyRing::generate_text(kid)).unwrap()
    }

    fn claims(iat: i64, exp: i64) -> Claims {
        Claims {
            t: "acme".into(),
            c: "client1".into(),
            iat,
            exp,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let r = ring("k1");
        let t = issue(&r, &claims(1000, 4600));
        assert!(is_access_token(&t) && t.len() < 300, "{t}");
        assert_eq!(verify(&r, &t, 1000), Ok(claims(1000, 4600)));
        assert_eq!(verify(&r, &t, 4599).map(|c| c.exp), Ok(4600));
        assert_eq!(verify(&r, &t, 4600), Err(Invalid::Expired));
        assert_eq!(verify(&r, &t, 900), Err(Invalid::IssuedInFuture));
        assert_eq!(
            verify(&r, &t, 940).map(|c| c.iat),
            Ok(1000),
            "within the skew"
        );
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let r = ring("k1");
        let t = issue(&r, &claims(1000, 4600));
        // Another ring, even with the same kid, does not verify.
        assert_eq!(verify(&ring("k1"), &t, 1000), Err(Invalid::Signature));
        // Claims changed (another tenant) under the old tag.
        let (_, tag) = t.rsplit_once('.').unwrap();
        let mut other = claims(1000, 4600);
        other.t = "globex".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let forged = format!("{PREFIX}k1.{body}.{tag}");
        assert_eq!(verify(&r, &forged, 1000), Err(Invalid::Signature));
        for bad in [
            "",
            "at1.",
            "at1.k1",
            "at1.k1.x",
            "at1.k1.x.y.z",
            "bearer",
            &format!("{t}x"),
            &"a".repeat(2000),
        ] {
            assert!(verify(&r, bad, 1000).is_err(), "{bad}");
        }
        // Tag made with a kid the ring does not have.
        let r2 = ring("k2");
        assert_eq!(
            verify(&r, &issue(&r2, &claims(1000, 4600)), 1000),
            Err(Invalid::Signature)
        );
    }
}
