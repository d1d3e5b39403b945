//! Bearer-token authentication. The configured token is kept only as a SHA-256 digest and compared in
//! constant time; tokens are never logged.

use crate::error::ScimError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub struct Auth {
    digest: [u8; 32],
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { token: <redacted> }")
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Refuses an empty or whitespace-only token.
    pub fn from_token(token: &str) -> Result<Self, String> {
        let t = token.trim();
        if t.is_empty() {
            return Err("the bearer token is empty".into());
        }
        if t.len() < 16 {
            return Err("the bearer token is shorter than 16 characters; use a long random secret".into());
        }
        Ok(Auth { digest: digest(t) })
    }

    /// Check an `Authorization` header value. Accepts `Bearer <token>` (scheme case-insensitive) and
    /// tolerates `Bearer Bearer <token>`, which Entra sends when an admin pastes the token with its prefix.
    pub fn check(&self, header: Option<&str>) -> Result<(), ScimError> {
        let Some(h) = header else {
            return Err(ScimError::unauthorized("Authentication required: send 'Authorization: Bearer <token>'"));
        };
        let token = strip_bearer(h).ok_or_else(|| ScimError::unauthorized("The Authorization header must use the Bearer scheme"))?;
        let token = strip_bearer(token).unwrap_or(token);
        if bool::from(digest(token.trim()).ct_eq(&self.digest)) {
            Ok(())
        } else {
            Err(ScimError::unauthorized("The bearer token is not valid for this endpoint"))
        }
    }
}

fn strip_bearer(h: &str) -> Option<&str> {
    let h = h.trim_start();
    let (scheme, rest) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// A new random token: 32 bytes from the OS generator, hex-encoded (64 characters).
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_the_token_in_bearer_forms() {
        let a = Auth::from_token(T).unwrap();
        assert!(a.check(Some(&format!("Bearer {T}"))).is_ok());
        assert!(a.check(Some(&format!("bearer {T}"))).is_ok());
        assert!(a.check(Some(&format!("Bearer Bearer {T}"))).is_ok());
    }

    #[test]
    fn refuses_missing_wrong_or_non_bearer() {
        let a = Auth::from_token(T).unwrap();
        for h in [None, Some("Bearer nope"), Some("Basic abc"), Some(T), Some("Bearer "), Some("")] {
            let e = a.check(h).unwrap_err();
            assert_eq!(e.status, 401, "{h:?}");
        }
    }

    #[test]
    fn refuses_weak_configuration_and_hides_token_in_debug() {
        assert!(Auth::from_token("  ").is_err());
        assert!(Auth::from_token("short").is_err());
        assert!(!format!("{:?}", Auth::from_token(T).unwrap()).contains(T));
        assert_eq!(generate_token().len(), 64);
    }
}
