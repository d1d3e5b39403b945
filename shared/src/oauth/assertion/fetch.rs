//! Fetching a JWKS document over HTTP(S): which URLs may be fetched, with a timeout on the whole
//! exchange, a cap on the body, no redirects, no proxy and no connection kept between fetches.
//!
//! The client is hyper-util's with hyper-rustls — the stack the AWS SDK already links into every
//! function (same rustls, same aws-lc-rs crypto, same native root certificates), so fetching keys adds
//! no crate to the Lambda binaries; `reqwest` would have added itself and a second root store for one
//! GET a minute. Redirects are not followed (the JWKS URL is answered directly by Microsoft).
//!
//! URL rule: `https` always; `http` only to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`: the
//! tests' JWKS server) unless [`super::JwksSettings::allow_http`] (`SCIM_WIF_ALLOW_HTTP_JWKS`) allows it
//! everywhere. No user-info in the URL.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// Why a JWKS could not be had. Carries no secret (JWKS documents and URLs are public).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// the JWKS URL is not one this server fetches (see the module's documentation)
    UrlRefused(&'static str),
    /// the TLS client could not be built (no root certificates on this machine)
    Tls(String),
    /// connection refused, DNS, TLS handshake, reset …
    Connect(String),
    /// no complete answer within the fetch timeout
    Timeout,
    /// an answer other than 200
    Status(u16),
    /// a body larger than the cap
    TooLarge,
    /// not a JSON object with a `keys` array
    NotJwks,
    /// more keys than the cap
    TooManyKeys,
    /// no RSA signing key of 2048 bits or more with a `kid`
    NoUsableKeys,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::UrlRefused(why) => write!(f, "JWKS URL refused: {why}"),
            FetchError::Tls(e) => write!(f, "TLS client unavailable: {e}"),
            FetchError::Connect(e) => write!(f, "request failed: {e}"),
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::Status(s) => write!(f, "answered HTTP {s}"),
            FetchError::TooLarge => f.write_str("body larger than the cap"),
            FetchError::NotJwks => f.write_str("not a JWKS document"),
            FetchError::TooManyKeys => f.write_str("more keys than the cap"),
            FetchError::NoUsableKeys => f.write_str("no usable RSA signing key"),
        }
    }
}

/// Checks a JWKS URL against the module's rule and parses it.
pub fn check_jwks_url(url: &str, allow_http: bool) -> Result<http::Uri, FetchError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| FetchError::UrlRefused("not a URL"))?;
    let authority = uri.authority().ok_or(FetchError::UrlRefused("no host"))?;
    if authority.as_str().contains('@') {
        return Err(FetchError::UrlRefused("user-info in the URL"));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(FetchError::UrlRefused("no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if allow_http || is_loopback(host) => Ok(uri),
        Some("http") => Err(FetchError::UrlRefused(
            "http is allowed only to a loopback host",
        )),
        _ => Err(FetchError::UrlRefused("not http(s)")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

type Https = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;
type Plain = Client<HttpConnector, Empty<Bytes>>;

/// The two clients, each built at its first use (loading the root certificates takes milliseconds that a
/// Lambda function's start should not pay before a WIF assertion arrives).
pub(super) struct Fetcher {
    pub(super) timeout: Duration,
    pub(super) max_body_bytes: usize,
    pub(super) allow_http: bool,
    https: OnceLock<Result<Https, String>>,
    plain: OnceLock<Plain>,
}

impl Fetcher {
    pub(super) fn new(timeout: Duration, max_body_bytes: usize, allow_http: bool) -> Self {
        Fetcher {
            timeout,
            max_body_bytes,
            allow_http,
            https: OnceLock::new(),
            plain: OnceLock::new(),
        }
    }

    /// GET `url` → its body (at most `max_body_bytes`), all within `timeout`.
    pub(super) async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let uri = check_jwks_url(url, self.allow_http)?;
        if uri.scheme_str() == Some("https") {
            let client = self
                .https
                .get_or_init(|| build_https(self.timeout))
                .as_ref()
                .map_err(|e| FetchError::Tls(e.clone()))?;
            self.get(client, uri).await
        } else {
            self.get(
                self.plain
                    .get_or_init(|| builder().build(connector(self.timeout))),
                uri,
            )
            .await
        }
    }

    async fn get<C: Connect + Clone + Send + Sync + 'static>(
        &self,
        client: &Client<C, Empty<Bytes>>,
        uri: http::Uri,
    ) -> Result<Bytes, FetchError> {
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("scim-core/", env!("CARGO_PKG_VERSION"), " (jwks)"),
            )
            .body(Empty::new())
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let max = self.max_body_bytes;
        let exchange = async move {
            let response = client
                .request(request)
                .await
                .map_err(|e| FetchError::Connect(error_chain(&e)))?;
            if response.status() != http::StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let announced = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if announced.is_some_and(|n| n > max as u64) {
                return Err(FetchError::TooLarge);
            }
            match Limited::new(response.into_body(), max).collect().await {
                Ok(body) => Ok(body.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge),
                Err(e) => Err(FetchError::Connect(e.to_string())),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout)?
    }
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    // Fetches are at most one a refetch interval per URL: a pooled connection would only sit idle.
    b.pool_max_idle_per_host(0);
    b
}

fn connector(timeout: Duration) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.enforce_http(false);
    c.set_connect_timeout(Some(timeout));
    c
}

fn build_https(timeout: Duration) -> Result<Https, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| e.to_string())?
        .https_only()
        .enable_http1()
        .wrap_connector(connector(timeout));
    Ok(builder().build(connector))
}

/// The error and its causes on one line (hyper's own message is only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = |u: &str| check_jwks_url(u, false).is_ok();
        assert!(ok("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys"));
        assert!(ok("http://127.0.0.1:8123/keys"));
        assert!(ok("http://127.8.9.10/keys"));
        assert!(ok("http://localhost:1/keys"));
        assert!(ok("http://[::1]:9/keys"));
        assert!(!ok(
            "http://login.microsoftonline.com/x/discovery/v2.0/keys"
        ));
        assert!(!ok("http://10.0.0.1/keys"));
        assert!(!ok("http://127.0.0.1.example.com/keys"));
        assert!(!ok("http://[::2]/keys"));
        assert!(!ok("ftp://127.0.0.1/keys"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("/relative/keys"));
        assert!(!ok("https://user:pw@login.microsoftonline.com/keys"));
        assert!(!ok("not a url"));
        assert!(!ok(""));
        // the explicit setting opens plain http to any host
        assert!(check_jwks_url("http://jwks.internal/keys", true).is_ok());
        assert!(check_jwks_url("ftp://jwks.internal/keys", true).is_err());
    }

    #[test]
    fn errors_name_no_secret_and_read_well() {
        assert_eq!(FetchError::Status(503).to_string(), "answered HTTP 503");
        assert_eq!(
            check_jwks_url("http://10.0.0.1/k", false)
                .unwrap_err()
                .to_string(),
            "JWKS URL refused: http is allowed only to a loopback host"
        );
    }
}
