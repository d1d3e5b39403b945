//! A token request as RFC 6749 §4.4 and §2.3 (and RFC 7523 §2.2 for assertions) define it, read from the
//! request's `Content-Type`, `Authorization` header and form body — pure parsing, no store, no secrets
//! compared except the two copies of one secret a client sent by both methods (constant time).
//!
//! Rules: the body is `application/x-www-form-urlencoded` (UTF-8), no parameter twice (§3.2), an empty
//! value counts as absent (§3.1); `grant_type=client_credentials` only; the client authenticates by
//! exactly one method — HTTP Basic (`client_secret_basic`, id and secret form-encoded inside, §2.3.1),
//! body parameters (`client_secret_post`), both carrying the same id and secret (Entra's "Both"), or a
//! JWT client assertion (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
//! Imports `super` (the error type) only.

use super::{ErrorCode, OAuthError};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use subtle::ConstantTimeEq;

/// The assertion type of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    Secret {
        client_id: String,
        secret: String,
    },
    Assertion {
        client_id: String,
        assertion: String,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret { client_id, .. } => write!(
                f,
                "Secret {{ client_id: {client_id:?}, secret: <redacted> }}"
            ),
            ClientAuth::Assertion { client_id, .. } => write!(
                f,
                "Assertion {{ client_id: {client_id:?}, assertion: <redacted> }}"
            ),
        }
    }
}

impl ClientAuth {
    pub fn client_id(&self) -> &str {
        match self {
            ClientAuth::Secret { client_id, .. } | ClientAuth::Assertion { client_id, .. } => {
                client_id
            }
        }
    }
}

/// A well-formed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub client: ClientAuth,
    /// The `scope` parameter, as sent (space-separated scope tokens).
    pub scope: Option<String>,
    /// The client used HTTP Basic: a refusal of its credentials carries `WWW-Authenticate: Basic`.
    pub basic: bool,
}

fn err(code: ErrorCode, description: &str, basic: bool) -> OAuthError {
    OAuthError::new(code, description).with_basic_challenge(basic)
}

/// Reads a token request. `authorization` is the `Authorization` header's value, if any.
pub fn parse(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<TokenRequest, OAuthError> {
    let basic_header = authorization.map(str::trim).filter(|h| !h.is_empty());
    let basic = basic_header.is_some();
    let media = content_type.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(err(
            ErrorCode::InvalidRequest,
            "the token request must be sent as application/x-www-form-urlencoded",
            basic,
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| {
        err(
            ErrorCode::InvalidRequest,
            "the request body is not UTF-8",
            basic,
        )
    })?;
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(err(
                ErrorCode::InvalidRequest,
                &format!("the parameter {} is repeated", printable(&k)),
                basic,
            ));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };

    match param("grant_type") {
        None => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "grant_type is missing",
                basic,
            ))
        }
        Some("client_credentials") => {}
        Some(_) => {
            return Err(err(
                ErrorCode::UnsupportedGrantType,
                "only grant_type=client_credentials is supported",
                basic,
            ))
        }
    }

    let from_header = match basic_header {
        None => None,
        Some(h) => Some(basic_credentials(h).ok_or_else(|| {
            err(
                ErrorCode::InvalidClient,
                "the Authorization header is not valid HTTP Basic client authentication",
                true,
            )
        })?),
    };
    let (body_id, body_secret) = (param("client_id"), param("client_secret"));
    let (assertion_type, assertion) = (param("client_assertion_type"), param("client_assertion"));

    let client = if assertion_type.is_some() || assertion.is_some() {
        if from_header.is_some() || body_secret.is_some() {
            return Err(err(ErrorCode::InvalidRequest, "use one client authentication method: a client assertion or a client secret, not both", basic));
        }
        if assertion_type != Some(JWT_BEARER) {
            return Err(err(
                ErrorCode::InvalidClient,
                &format!("client_assertion_type must be {JWT_BEARER}"),
                false,
            ));
        }
        let Some(assertion) = assertion else {
            return Err(err(
                ErrorCode::InvalidClient,
                "client_assertion is missing",
                false,
            ));
        };
        let Some(client_id) = body_id else {
            return Err(err(
                ErrorCode::InvalidRequest,
                "client_id is missing",
                false,
            ));
        };
        ClientAuth::Assertion {
            client_id: client_id.to_string(),
            assertion: assertion.to_string(),
        }
    } else {
        match (from_header, body_id, body_secret) {
            (Some((id, secret)), bid, bsecret) => {
                // Entra's "Both": the body must repeat exactly what the header says.
                let id_agrees = bid.is_none_or(|b| b == id);
                let secret_agrees = bsecret.is_none_or(|b| bool::from(b.as_bytes().ct_eq(secret.as_bytes())));
                if !(id_agrees && secret_agrees) {
                    return Err(err(ErrorCode::InvalidClient, "the client credentials in the Authorization header and in the body differ", true));
                }
                ClientAuth::Secret { client_id: id, secret }
            }
            (None, Some(id), Some(secret)) => ClientAuth::Secret { client_id: id.to_string(), secret: secret.to_string() },
            (None, _, _) => return Err(err(ErrorCode::InvalidClient, "client authentication is missing: send client_id and client_secret (HTTP Basic or body)", false)),
        }
    };

    let scope = param("scope").map(str::to_string);
    if let Some(s) = &scope {
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces.
        let ok = s.split(' ').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        });
        if !ok {
            return Err(err(
                ErrorCode::InvalidScope,
                "scope is not a space-separated list of scope tokens",
                basic,
            ));
        }
    }
    Ok(TokenRequest {
        client,
        scope,
        basic,
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` → (id, secret); None when it is anything else.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let rest = rest.trim();
    let raw = STANDARD
        .decode(rest)
        .or_else(|_| STANDARD_NO_PAD.decode(rest))
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), decode(secret));
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// A parameter name for an error description: at most 40 printable ASCII characters.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn code(r: Result<TokenRequest, OAuthError>) -> (ErrorCode, bool) {
        let e = r.unwrap_err();
        (e.code, e.basic_challenge)
    }

    #[test]
    fn the_three_ways_of_sending_a_secret() {
        let want = ClientAuth::Secret {
            client_id: "c1".into(),
            secret: "s1".into(),
        };
        let r = parse(
            FORM,
            Some(&basic("c1", "s1")),
            b"grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!((r.client.clone(), r.basic), (want.clone(), true));
        let r = parse(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            None,
            b"grant_type=client_credentials&client_id=c1&client_secret=s1&scope=scim",
        )
        .unwrap();
        assert_eq!(
            (r.client.clone(), r.basic, r.scope.as_deref()),
            (want.clone(), false, Some("scim"))
        );
        let r = parse(
            FORM,
            Some(&basic("c1", "s1")),
            b"grant_type=client_credentials&client_id=c1&client_secret=s1",
        )
        .unwrap();
        assert_eq!(r.client, want);
        // Form-encoded inside Basic (RFC 6749 §2.3.1).
        let r = parse(
            FORM,
            Some(&basic("c%3A1", "s+1")),
            b"grant_type=client_credentials",
        )
        .unwrap();
        assert_eq!(
            r.client,
            ClientAuth::Secret {
                client_id: "c:1".into(),
                secret: "s 1".into()
            }
        );
        assert!(!format!("{:?}", r.client).contains("s 1"));
    }

    #[test]
    fn disagreeing_or_missing_credentials_are_invalid_client() {
        let g = b"grant_type=client_credentials";
        assert_eq!(
            code(parse(
                FORM,
                Some(&basic("c1", "s1")),
                b"grant_type=client_credentials&client_id=c1&client_secret=s2"
            )),
            (ErrorCode::InvalidClient, true)
        );
        assert_eq!(
            code(parse(
                FORM,
                Some(&basic("c1", "s1")),
                b"grant_type=client_credentials&client_id=c2&client_secret=s1"
            )),
            (ErrorCode::InvalidClient, true)
        );
        assert_eq!(
            code(parse(FORM, Some("Basic !!!"), g)),
            (ErrorCode::InvalidClient, true)
        );
        assert_eq!(
            code(parse(FORM, Some("Bearer abc"), g)),
            (ErrorCode::InvalidClient, true)
        );
        assert_eq!(
            code(parse(FORM, Some(&basic("c1", "")), g)),
            (ErrorCode::InvalidClient, true)
        );
        assert_eq!(
            code(parse(FORM, None, g)),
            (ErrorCode::InvalidClient, false)
        );
        assert_eq!(
            code(parse(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c1"
            )),
            (ErrorCode::InvalidClient, false)
        );
        assert_eq!(
            code(parse(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c1&client_secret="
            )),
            (ErrorCode::InvalidClient, false)
        );
    }

    #[test]
    fn malformed_requests() {
        let ok = b"grant_type=client_credentials&client_id=c1&client_secret=s1";
        assert_eq!(
            code(parse(Some("application/json"), None, ok)),
            (ErrorCode::InvalidRequest, false)
        );
        assert_eq!(
            code(parse(None, None, ok)),
            (ErrorCode::InvalidRequest, false)
        );
        assert_eq!(
            code(parse(FORM, None, b"client_id=c1&client_secret=s1")),
            (ErrorCode::InvalidRequest, false)
        );
        assert_eq!(
            code(parse(
                FORM,
                None,
                b"grant_type=password&client_id=c1&client_secret=s1"
            )),
            (ErrorCode::UnsupportedGrantType, false)
        );
        assert_eq!(code(parse(FORM, None, b"grant_type=client_credentials&grant_type=client_credentials&client_id=c1&client_secret=s1")), (ErrorCode::InvalidRequest, false));
        assert_eq!(
            code(parse(FORM, None, &[b'g', 0xff])),
            (ErrorCode::InvalidRequest, false)
        );
        assert_eq!(
            code(parse(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c1&client_secret=s1&scope=a%0Ab"
            )),
            (ErrorCode::InvalidScope, false)
        );
        assert_eq!(
            code(parse(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c1&client_secret=s1&scope=a%20%20b"
            )),
            (ErrorCode::InvalidScope, false)
        );
    }

    #[test]
    fn assertions() {
        let a = format!("grant_type=client_credentials&client_id=c1&client_assertion_type={}&client_assertion=x.y.z&scope=scim", JWT_BEARER.replace(':', "%3A"));
        let r = parse(FORM, None, a.as_bytes()).unwrap();
        assert_eq!(
            r.client,
            ClientAuth::Assertion {
                client_id: "c1".into(),
                assertion: "x.y.z".into()
            }
        );
        assert_eq!(
            code(parse(FORM, None, format!("{a}&client_secret=s").as_bytes())),
            (ErrorCode::InvalidRequest, false)
        );
        assert_eq!(
            code(parse(FORM, Some(&basic("c1", "s1")), a.as_bytes())),
            (ErrorCode::InvalidRequest, true)
        );
        assert_eq!(code(parse(FORM, None, b"grant_type=client_credentials&client_id=c1&client_assertion_type=saml&client_assertion=x")), (ErrorCode::InvalidClient, false));
        assert_eq!(
            code(parse(
                FORM,
                None,
                b"grant_type=client_credentials&client_id=c1&client_assertion=x"
            )),
            (ErrorCode::InvalidClient, false)
        );
        let no_id = a.replace("client_id=c1&", "");
        assert_eq!(
            code(parse(FORM, None, no_id.as_bytes())),
            (ErrorCode::InvalidRequest, false)
        );
    }
}
