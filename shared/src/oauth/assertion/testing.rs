//! Test keys and assertions, for this module's unit tests and the harness's JWKS server
//! (`scim_tests::jwks`; feature `testing`, never enabled by a deployed binary). RSA keys are generated
//! in the test by aws-lc-rs; no key material is kept in the repository.
//!
//! Tokens are assembled by hand (header and claims as given, then signed) so a test can make any of the
//! bad ones a verifier must refuse: `alg: none`, an HMAC keyed with the public key, a missing or numeric
//! `kid`, a signature by another key.

use super::WifTrust;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// An RSA-2048 signing key and its `kid`.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pair: Arc<RsaKeyPair>,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        TestKey {
            kid: kid.to_string(),
            pair: Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation")),
        }
    }

    /// The same key pair under another `kid`.
    pub fn with_kid(&self, kid: &str) -> Self {
        TestKey {
            kid: kid.to_string(),
            pair: self.pair.clone(),
        }
    }

    /// The public key as a JWK, shaped like Microsoft's (`kty`, `use`, `kid`, `n`, `e`; `alg` too).
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key as PEM text (SubjectPublicKeyInfo): what an attacker would use as an HMAC secret.
    pub fn public_pem(&self) -> String {
        let der = self.pair.public_key().as_der().expect("public key DER");
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// `header.claims.signature` with an RS256 signature by this key, whatever the header says.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signature");
        format!("{input}.{}", b64(&signature))
    }
}

/// A JWKS document with these keys.
pub fn jwks_document<'a>(keys: impl IntoIterator<Item = &'a TestKey>) -> Value {
    json!({ "keys": keys.into_iter().map(TestKey::jwk).collect::<Vec<_>>() })
}

/// The header Entra sends: `{"typ":"JWT","alg":"RS256","kid":…}`.
pub fn header(kid: &str) -> Value {
    json!({ "typ": "JWT", "alg": "RS256", "kid": kid })
}

/// Claims shaped like Entra's WIF assertion for `trust`, issued at `now`, valid 65 minutes.
pub fn claims(trust: &WifTrust, now: SystemTime) -> Value {
    let t = now
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    json!({
        "aud": trust.audience,
        "iss": trust.issuer,
        "iat": t,
        "nbf": t,
        "exp": t + 3900,
        "appid": "b5ba7a93-4452-4522-aeb4-a2b5da870c16",
        "appidacr": "2",
        "idp": trust.issuer,
        "oid": "d2f8ee76-c549-45b8-a143-f5b640669704",
        "sub": trust.subject,
        "tid": "ce5f061f-abe6-4e40-9615-301f87bcb7f0",
        "ver": "2.0",
    })
}

/// A trust shaped like one copied from Entra, with its JWKS at `jwks_url`.
pub fn trust(jwks_url: &str) -> WifTrust {
    WifTrust {
        issuer: "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/v2.0"
            .into(),
        subject: "9c7e2f1a-3b4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
        audience: "api://b5ba7a93-4452-4522-aeb4-a2b5da870c16".into(),
        jwks_url: jwks_url.into(),
    }
}

/// An unsecured JWS (RFC 7515 §A.5): `header.claims.` with an empty signature.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.", signing_input(header, claims))
}

/// `header.claims.HMAC-SHA256(secret)`: with the public key's PEM as the secret, the classic attack on
/// verifiers that let the token choose the algorithm.
pub fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}
