//! The check a WIF trust gets when the setup page saves it: its JWKS URL is fetched now (with the same
//! fetcher and bounds as the token endpoint's) and must serve at least one RSA signing key the token
//! endpoint would use (RS256, a `kid`, a modulus of 2048 bits or more). Imports `fetch` and `jwks` (settings).

use super::fetch::{FetchError, Fetcher};
use super::jwks::JwksSettings;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// Fetch the JWKS at `url` → the number of usable RSA keys in it (at least one), or why not.
pub async fn probe_jwks(settings: &JwksSettings, url: &str) -> Result<usize, FetchError> {
    let fetcher = Fetcher::new(
        settings.fetch_timeout,
        settings.max_body_bytes,
        settings.allow_http,
    );
    let body = fetcher.fetch(url).await?;
    let doc: Value = serde_json::from_slice(&body).map_err(|_| FetchError::NotJwks)?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(FetchError::NotJwks)?;
    if keys.len() > settings.max_keys {
        return Err(FetchError::TooManyKeys);
    }
    let usable = keys
        .iter()
        .filter(|jwk| {
            let field = |name: &str| jwk.get(name).and_then(Value::as_str);
            let optional_is =
                |name: &str, want: &str| jwk.get(name).is_none() || field(name) == Some(want);
            let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else {
                return false;
            };
            field("kty") == Some("RSA")
                && optional_is("use", "sig")
                && optional_is("alg", "RS256")
                && !kid.is_empty()
                && modulus_bits(n) >= 2048
                && jsonwebtoken::DecodingKey::from_rsa_components(n, e).is_ok()
        })
        .count();
    if usable == 0 {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(usable)
}

fn modulus_bits(n: &str) -> usize {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(n) else {
        return 0;
    };
    let significant: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
    match significant.first() {
        Some(first) => (significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}
