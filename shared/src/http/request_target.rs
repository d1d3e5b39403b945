//! Request targets as clients really send them. Entra (and Microsoft's own test suites) put raw double quotes,
//! parentheses, `+` for spaces and `%40` side by side in one query string — `GET
//! /Users?filter=userName+eq+"dale.mohr%40romaguera.uk"` — and some clients send raw spaces or UTF-8. The
//! `http` crate's URI parser refuses a raw `"` (and `<`, `>`, `` ` ``, `{`, `}`, `|`, control bytes) in a query,
//! so such a request would be refused before any SCIM code runs: by hyper with an empty 400 on the local
//! server, by `lambda_http`'s request conversion (a panic) on Lambda.
//!
//! [`escape`] percent-encodes exactly the bytes a URI may not carry raw and leaves everything else — in
//! particular existing `%XX` escapes and `+` — untouched, so the query is still decoded exactly once, by
//! [`crate::query::decode`]: `"` becomes `%22` and decodes back to `"`; `%40` stays `%40` and decodes to `@`.
//! The local server applies it to each request line before hyper parses it, the Lambda runner to the API
//! Gateway event's `rawPath` and `rawQueryString`.
//!
//! Why hand-written: the escaping set is the complement of what `http::Uri` accepts, which no crate exposes;
//! `percent-encoding`'s sets would also re-encode `%`, decoding twice.
//!
//! Imports: nothing of the crate (its tests use `query` to show the query decodes once).

/// Must this byte of a request target be percent-encoded for `http::Uri` to accept it?
fn needs_escape(b: u8) -> bool {
    matches!(b, 0..=0x20 | b'"' | b'#' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | 0x7F..=0xFF)
}

/// The target with every byte a URI may not carry raw percent-encoded (`"` → `%22`, a space → `%20`,
/// UTF-8 bytes → `%XX` each); `None` when nothing needed escaping.
pub fn escape_bytes(target: &[u8]) -> Option<Vec<u8>> {
    if !target.iter().any(|b| needs_escape(*b)) {
        return None;
    }
    let mut out = Vec::with_capacity(target.len() + 16);
    for &b in target {
        if needs_escape(b) {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// [`escape_bytes`] for a string (an API Gateway event's `rawQueryString`).
pub fn escape(target: &str) -> std::borrow::Cow<'_, str> {
    match escape_bytes(target.as_bytes()) {
        // Only ASCII is produced: every byte ≥ 0x80 was escaped.
        Some(v) => std::borrow::Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
        None => std::borrow::Cow::Borrowed(target),
    }
}

/// Rewrite one HTTP/1 request line (without its line ending) so its target is a valid URI:
/// `GET /Users?filter=userName eq "a b" HTTP/1.1` (raw spaces inside the target too) becomes
/// `GET /Users?filter=userName%20eq%20%22a%20b%22 HTTP/1.1`. `None` when the line needs no change or is not a
/// request line this can repair (then the HTTP library answers it as it would).
pub fn repair_request_line(line: &[u8]) -> Option<Vec<u8>> {
    let first_space = line.iter().position(|b| *b == b' ')?;
    let last_space = line.iter().rposition(|b| *b == b' ')?;
    if last_space <= first_space || !line[last_space + 1..].starts_with(b"HTTP/") {
        return None;
    }
    let target = &line[first_space + 1..last_space];
    let escaped = escape_bytes(target)?;
    let mut out = Vec::with_capacity(line.len() + escaped.len());
    out.extend_from_slice(&line[..=first_space]);
    out.extend_from_slice(&escaped);
    out.extend_from_slice(&line[last_space..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(line: &str) -> String {
        String::from_utf8(
            repair_request_line(line.as_bytes()).unwrap_or_else(|| line.as_bytes().to_vec()),
        )
        .unwrap()
    }

    #[test]
    fn entra_request_lines_become_valid_uris() {
        assert_eq!(
            repaired(
                r#"GET /scim/v2/Users?filter=userName+eq+"dale.mohr%40romaguera.uk" HTTP/1.1"#
            ),
            "GET /scim/v2/Users?filter=userName+eq+%22dale.mohr%40romaguera.uk%22 HTTP/1.1"
        );
        assert_eq!(
            repaired(r#"GET /Users?filter=displayName+eq+"LAUser-(0b1d2a5b)" HTTP/1.1"#),
            "GET /Users?filter=displayName+eq+%22LAUser-(0b1d2a5b)%22 HTTP/1.1"
        );
        assert_eq!(
            repaired(r#"GET /Users?filter=userName eq "a b" HTTP/1.1"#),
            "GET /Users?filter=userName%20eq%20%22a%20b%22 HTTP/1.1"
        );
        assert_eq!(
            repaired("GET /Users?filter=userName+eq+\"jos\u{e9}\" HTTP/1.1"),
            "GET /Users?filter=userName+eq+%22jos%C3%A9%22 HTTP/1.1"
        );
        for line in [
            "GET /Users?filter=userName+eq+%22x%22 HTTP/1.1",
            "GET /scim/v2/Users/abc HTTP/1.1",
            "garbage",
        ] {
            assert!(repair_request_line(line.as_bytes()).is_none(), "{line}");
        }
        for line in [
            repaired(r#"GET /Users?filter=externalId+eq+"9edf3db5-1" HTTP/1.1"#),
            repaired("GET /a?b=<{|}>^`\\ HTTP/1.1"),
        ] {
            let target = line.split(' ').nth(1).unwrap();
            assert!(target.parse::<http::Uri>().is_ok(), "{target}");
        }
    }

    #[test]
    fn escaping_keeps_existing_escapes_so_the_query_decodes_once() {
        let q = r#"filter=userName+eq+"a%2Bb%40c"&count=1"#;
        let e = escape(q);
        assert_eq!(e, "filter=userName+eq+%22a%2Bb%40c%22&count=1");
        let decoded = crate::query::decode(Some(&e));
        assert_eq!(decoded[0].1, r#"userName eq "a+b@c""#);
        assert!(matches!(escape("filter=x"), std::borrow::Cow::Borrowed(_)));
    }
}
