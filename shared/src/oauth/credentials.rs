//! Client ids and client secrets: how they are made, stored and checked, and how long a secret lives.
//!
//! A client id is 128 random bits (32 hex digits), public. A secret is 256 random bits (64 hex digits)
//! made by the server, shown once, and stored only as its SHA-256: a secret of that entropy cannot be
//! guessed from its hash by any dictionary or brute force, so a slow password hash would add latency and
//! nothing else. Presented secrets are compared as hashes, in constant time, against every secret of the
//! client (and against a stand-in when the client has none), so the work does not depend on which one
//! matches or whether the client exists.
//!
//! Lifetimes (Entra's gallery rules: secrets expire after one to three years): 365 to 1,095 days, 730 by
//! default. Imports `store` (the stored secret type).

use crate::store::ClientSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest, default and longest secret lifetime, in days.
pub const MIN_SECRET_DAYS: u32 = 365;
pub const DEFAULT_SECRET_DAYS: u32 = 730;
pub const MAX_SECRET_DAYS: u32 = 1095;

/// A new client id: 32 hex digits.
pub fn new_client_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A new secret id (public, to list and revoke): 12 hex digits.
pub fn new_secret_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

/// Client ids this server could have made, or an admin could reasonably type: 1–64 letters, digits,
/// `-` and `_`. Anything else is refused before any store call (it cannot exist).
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Hex SHA-256 of a secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new secret, valid `days` from `now_unix`: the secret (to show once) and its stored form.
pub fn new_secret(
    days: u32,
    now_unix: i64,
    created: &str,
) -> Result<(String, ClientSecret), String> {
    if !(MIN_SECRET_DAYS..=MAX_SECRET_DAYS).contains(&days) {
        return Err(format!("a client secret must live {MIN_SECRET_DAYS} to {MAX_SECRET_DAYS} days (one to three years), not {days}"));
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let stored = ClientSecret {
        id: new_secret_id(),
        hash: secret_hash(&secret),
        created: created.to_string(),
        expires: now_unix + i64::from(days) * 86_400,
        last_used: None,
    };
    Ok((secret, stored))
}

/// How a presented secret compares with a client's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// It is an unexpired secret of the client.
    Valid,
    /// It is one of the client's secrets, expired.
    Expired,
    None,
}

/// Compares `presented` (a hex SHA-256) with every stored hash, in constant time, without stopping at
/// the first match; with no stored secrets, with a stand-in, so the work is the same.
pub fn matching_secret(presented: &str, secrets: &[ClientSecret], now_unix: i64) -> Match {
    const STAND_IN: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let mut valid = false;
    let mut expired = false;
    if secrets.is_empty() {
        let _ = bool::from(presented.as_bytes().ct_eq(STAND_IN.as_bytes()));
    }
    for s in secrets {
        let same = bool::from(presented.as_bytes().ct_eq(s.hash.as_bytes()));
        let live = now_unix < s.expires;
        valid |= same & live;
        expired |= same & !live;
    }
    if valid {
        Match::Valid
    } else if expired {
        Match::Expired
    } else {
        Match::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_their_lifetimes() {
        let (secret, stored) = new_secret(DEFAULT_SECRET_DAYS, 1000, "c").unwrap();
        assert_eq!(
            (secret.len(), stored.hash.len(), stored.expires),
            (64, 64, 1000 + 730 * 86_400)
        );
        assert_eq!(stored.hash, secret_hash(&secret));
        assert!(!stored.hash.contains(&secret));
        assert!(new_secret(364, 0, "c").is_err() && new_secret(1096, 0, "c").is_err());
        assert!(new_secret(365, 0, "c").is_ok() && new_secret(1095, 0, "c").is_ok());
        let (_, other) = new_secret(365, 0, "c").unwrap();
        let all = [other.clone(), stored.clone()];
        let h = secret_hash(&secret);
        assert_eq!(matching_secret(&h, &all, 1000), Match::Valid);
        assert_eq!(matching_secret(&h, &all, stored.expires - 1), Match::Valid);
        assert_eq!(matching_secret(&h, &all, stored.expires), Match::Expired);
        assert_eq!(
            matching_secret(&secret_hash("nope"), &all, 1000),
            Match::None
        );
        assert_eq!(matching_secret(&h, &[], 1000), Match::None);
    }

    #[test]
    fn ids() {
        assert!(valid_client_id(&new_client_id()) && new_client_id().len() == 32);
        for bad in ["", "a b", "a#b", "a/b", &"x".repeat(65)] {
            assert!(!valid_client_id(bad), "{bad}");
        }
    }
}
