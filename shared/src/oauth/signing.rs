//! The access tokens' signing keys: a [`KeyRing`] of HMAC-SHA256 keys, each with a key id (`kid`). The
//! first key of the ring signs new tokens; every key verifies. So a key is rotated without downtime:
//! add the new key second (every instance now accepts it), then move it first (it signs), and remove the
//! old one once the longest token lifetime has passed.
//!
//! The ring's text (`kid:hex,kid:hex,…`, each key at least 32 random bytes) comes from configuration
//! only: `SCIM_OAUTH_SIGNING_KEYS`, the SSM SecureString parameter named by `SCIM_OAUTH_KEYS_SSM_PARAMETER`
//! (read at init), or, for `scim-local`, a file in its data directory made at first start. Never from the
//! source, never logged (`Debug` shows the key ids only).
//!
//! HMAC by aws-lc-rs (the crypto library the AWS SDK already links); verification compares tags in
//! constant time. Imports nothing of the crate.

use aws_lc_rs::hmac;

/// Shortest key accepted, in bytes (HMAC-SHA256's block of security: 256 bits).
pub const MIN_KEY_BYTES: usize = 32;
/// Longest key id.
pub const MAX_KID_LEN: usize = 32;

/// Signing keys; the first signs, all verify.
pub struct KeyRing {
    keys: Vec<(String, hmac::Key)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "kids",
                &self
                    .keys
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl KeyRing {
    /// Parses `kid:hexkey` entries separated by commas or white space. Refuses an empty ring, a bad or
    /// repeated key id, and a key that is not hex or shorter than [`MIN_KEY_BYTES`]. Error texts never
    /// contain key material.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<(String, hmac::Key)> = Vec::new();
        for (n, entry) in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let Some((kid, hexkey)) = entry.split_once(':') else {
                return Err(format!(
                    "signing key {} is not of the form <key id>:<hex key>",
                    n + 1
                ));
            };
            if !valid_kid(kid) {
                return Err(format!("signing key {}: the key id must be 1-{MAX_KID_LEN} letters, digits, '-' or '_'", n + 1));
            }
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(format!("signing key id {kid} appears twice"));
            }
            let bytes =
                hex::decode(hexkey).map_err(|_| format!("signing key {kid} is not hexadecimal"))?;
            if bytes.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "signing key {kid} is shorter than {MIN_KEY_BYTES} bytes ({} hex digits)",
                    MIN_KEY_BYTES * 2
                ));
            }
            keys.push((kid.to_string(), hmac::Key::new(hmac::HMAC_SHA256, &bytes)));
        }
        if keys.is_empty() {
            return Err("no signing key configured".into());
        }
        Ok(KeyRing { keys })
    }

    /// The text of a new ring of one random key, `kid` naming it.
    pub fn generate_text(kid: &str) -> String {
        let bytes: [u8; 32] = rand::random();
        format!("{kid}:{}", hex::encode(bytes))
    }

    /// The key id that signs.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].0
    }

    /// The key ids, signing key first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// HMAC-SHA256 of `data` with the signing key; returns its key id and the tag.
    pub fn sign(&self, data: &[u8]) -> (&str, Vec<u8>) {
        let (kid, key) = &self.keys[0];
        (kid, hmac::sign(key, data).as_ref().to_vec())
    }

    /// Whether `tag` is the HMAC of `data` by the key `kid` (constant-time comparison). False for an
    /// unknown key id.
    pub fn verify(&self, kid: &str, data: &[u8], tag: &[u8]) -> bool {
        self.keys
            .iter()
            .find(|(k, _)| k == kid)
            .is_some_and(|(_, key)| hmac::verify(key, data, tag).is_ok())
    }

    /// Reads the ring from the SSM SecureString parameter `name` (decrypted).
    pub async fn from_ssm(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<Self, String> {
        let out = ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read the OAuth signing keys from SSM parameter {name}: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            })?;
        let value = out
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| format!("SSM parameter {name} has no value"))?;
        KeyRing::parse(&value).map_err(|e| format!("SSM parameter {name}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0000000000000000000000000000000000000000000000000000000000000001";
    const K2: &str = "0000000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn first_key_signs_every_key_verifies() {
        let old = KeyRing::parse(&format!("a:{K1}")).unwrap();
        let rotated = KeyRing::parse(&format!("b:{K2}, a:{K1}")).unwrap();
        let (kid, tag) = old.sign(b"x");
        assert_eq!(kid, "a");
        assert!(
            rotated.verify("a", b"x", &tag),
            "the old key still verifies after the new one signs"
        );
        let (kid, tag2) = rotated.sign(b"x");
        assert_eq!(kid, "b");
        assert!(
            !old.verify("b", b"x", &tag2),
            "an unknown kid never verifies"
        );
        assert!(!rotated.verify("a", b"y", &tag));
        assert!(
            !rotated.verify("b", b"x", &tag),
            "a tag of key a is not one of key b"
        );
        assert_eq!(rotated.kids(), vec!["b", "a"]);
    }

    #[test]
    fn refuses_bad_rings_without_echoing_keys() {
        for bad in [
            "",
            " , ",
            "a",
            &format!("a:{}", &K1[..62]),
            "a:zz",
            &format!("a:{K1},a:{K2}"),
            &format!("a b:{K1}"),
            &format!(":{K1}"),
        ] {
            let e = KeyRing::parse(bad).unwrap_err();
            assert!(!e.contains(K1) && !e.contains(K2), "{e}");
        }
        let r = KeyRing::parse(&KeyRing::generate_text("k1")).unwrap();
        assert_eq!(r.current_kid(), "k1");
        assert!(!format!("{r:?}").contains(K1));
    }
}
