//! Failure details and paths with no personal data, for the failure ring buffer and the metric log line.
//!
//! A SCIM error's `detail` is written by this crate, but many details quote what the client sent: a
//! `userName` that is taken, the string an attribute had, a filter token, a PATCH path with a value filter
//! (`emails[value eq "ann@contoso.com"]`). Every such value is quoted (`"…"` or `'…'`) by the code that
//! writes the detail, and the text outside quotes is the crate's own (plus numbers, positions and
//! server-made ids). So a quoted span survives only when it is exactly a name this server defines — an
//! attribute of the core User, enterprise User or Group schema (plain, `parent.sub` or URN-qualified), a
//! schema URN, a filter operator or a PATCH op — and everything else is replaced by `…`.
//!
//! A value may itself contain quote characters (`John "Johnny" Smith`), which would put part of it
//! outside the quotes as seen by a simple scan. So once a span of one quote kind is not kept, everything
//! from the first such span to the end of the last span of that kind is redacted as one: a value's text
//! always lies between its opening quote and its closing one, and that closing quote is at or before the
//! end of the last span of its kind. As a last net, any word still holding `@` (an e-mail address) is
//! replaced too, and the detail is cut to [`MAX_DETAIL`] characters.
//!
//! Imports: the crate's `schema` (the names that may be kept).

use crate::schema;
use std::collections::HashSet;
use std::sync::OnceLock;

/// Longest detail kept, in characters.
pub const MAX_DETAIL: usize = 300;
const QUOTES: [char; 2] = ['"', '\''];
const HIDDEN: &str = "…";

/// Names a detail may quote and keep: attribute names and paths, schema URNs, filter and PATCH words.
fn vocabulary() -> &'static HashSet<String> {
    static V: OnceLock<HashSet<String>> = OnceLock::new();
    V.get_or_init(|| {
        let mut v: HashSet<String> = [
            "add", "replace", "remove", "and", "or", "not", "eq", "ne", "co", "sw", "ew", "pr",
            "gt", "ge", "lt", "le",
        ]
        .iter()
        .chain(schema::COMMON_ATTRIBUTES.iter())
        .chain(
            [
                "value",
                "path",
                "op",
                "operations",
                "members",
                "(",
                ")",
                "[",
                "]",
            ]
            .iter(),
        )
        .map(|s| s.to_ascii_lowercase())
        .collect();
        for s in [
            schema::user_schema(),
            schema::enterprise_user_schema(),
            schema::group_schema(),
        ] {
            v.insert(s.id.to_ascii_lowercase());
            for a in &s.attributes {
                let mut names = vec![a.name.clone()];
                names.extend(
                    a.sub_attributes
                        .iter()
                        .map(|sub| format!("{}.{}", a.name, sub.name)),
                );
                for n in names {
                    v.insert(format!("{}:{}", s.id, n).to_ascii_lowercase());
                    v.insert(n.to_ascii_lowercase());
                }
                for sub in &a.sub_attributes {
                    v.insert(sub.name.to_ascii_lowercase());
                }
            }
        }
        v
    })
}

/// One quoted span: byte offsets of its opening quote and of its end (exclusive), its quote character,
/// and whether its content may be kept.
struct Span {
    start: usize,
    end: usize,
    quote: char,
    kept: bool,
}

fn spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut open: Option<(usize, char)> = None;
    for (i, c) in text.char_indices() {
        match open {
            None if QUOTES.contains(&c) => open = Some((i, c)),
            Some((start, q)) if c == q => {
                let inner = &text[start + 1..i];
                let kept = vocabulary().contains(&inner.to_ascii_lowercase());
                out.push(Span {
                    start,
                    end: i + 1,
                    quote: q,
                    kept,
                });
                open = None;
            }
            _ => {}
        }
    }
    // An unterminated quote runs to the end of the text: never kept.
    if let Some((start, q)) = open {
        out.push(Span {
            start,
            end: text.len(),
            quote: q,
            kept: false,
        });
    }
    out
}

/// `detail` with every quoted value replaced by `…` (see the module's opening), then any word holding `@`,
/// cut to [`MAX_DETAIL`] characters.
pub fn detail(detail: &str) -> String {
    let spans = spans(detail);
    let hidden_kinds: Vec<char> = QUOTES
        .iter()
        .copied()
        .filter(|q| spans.iter().any(|s| s.quote == *q && !s.kept))
        .collect();
    let mut text = detail.to_string();
    if let Some(first) = spans.iter().find(|s| !s.kept) {
        let end = spans
            .iter()
            .filter(|s| hidden_kinds.contains(&s.quote))
            .map(|s| s.end)
            .max()
            .unwrap_or(first.end);
        text = format!(
            "{}{q}{HIDDEN}{q}{}",
            &detail[..first.start],
            &detail[end..],
            q = first.quote
        );
    }
    let words: Vec<&str> = text
        .split(' ')
        .map(|w| if w.contains('@') { HIDDEN } else { w })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() > MAX_DETAIL {
        let mut cut: String = joined.chars().take(MAX_DETAIL).collect();
        cut.push_str(HIDDEN);
        cut
    } else {
        joined
    }
}

/// A request path as kept for a failed request: without the query (the caller passes the path only), a
/// segment holding `@` (also `%40`) or longer than 100 bytes replaced by `…` — a client that puts a user
/// name in a path (`/Users/ann@contoso.com`) leaves no trace of it.
pub fn path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let joined = path
        .split('/')
        .map(|seg| {
            if seg.contains('@') || seg.to_ascii_lowercase().contains("%40") || seg.len() > 100 {
                HIDDEN
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    cut(joined, MAX_PATH)
}

/// Longest path kept (characters; longer ones are cut and end in `…`), so a kept request's size is bounded.
pub const MAX_PATH: usize = 200;

/// `s` cut to `max` characters, with `…` after a cut.
pub fn cut(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut c: String = s.chars().take(max).collect();
    c.push('…');
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut() {
        let p = format!("/acme/scim/v2/{}", "a/".repeat(500));
        let kept = path(&p);
        assert_eq!(kept.chars().count(), MAX_PATH + 1);
        assert!(kept.ends_with('…'));
        assert_eq!(path("/acme/scim/v2/Users"), "/acme/scim/v2/Users");
    }

    #[test]
    fn quoted_values_are_hidden_and_schema_names_kept() {
        assert_eq!(
            detail("userName \"ann@contoso.com\" is already in use by another resource (compared case-insensitively)"),
            "userName \"…\" is already in use by another resource (compared case-insensitively)"
        );
        assert_eq!(
            detail("Attribute 'active' must be a boolean, but the request gave the string \"Ann Smith\""),
            "Attribute 'active' must be a boolean, but the request gave the string \"…\""
        );
        assert_eq!(
            detail("Attribute 'name.givenName' must be a string, but the request gave 12"),
            "Attribute 'name.givenName' must be a string, but the request gave 12"
        );
        let urn =
            "'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager' is read-only";
        assert_eq!(detail(urn), urn);
        assert_eq!(detail("User 2f1c-9 not found"), "User 2f1c-9 not found");
    }

    #[test]
    fn values_holding_quotes_never_leak() {
        for (input, secret) in [
            (
                "the request gave the string \"John \"Johnny\" Smith\" for 'displayName'",
                ["John", "Johnny", "Smith"],
            ),
            (
                "The PATCH path \"emails[value eq \"ann@x.com\"]\" is not valid: expected 'and'",
                ["ann", "x.com", "emails"],
            ),
            ("gave the string \"x\" title \"y\"", ["x\"", "title", "y\""]),
            (
                "gave \"O'Brien Maria Lopez\" and 'Maria' 'title'",
                ["O'Brien", "Maria", "Lopez"],
            ),
            ("unterminated \"Maria Lopez", ["Maria", "Lopez", "Maria"]),
        ] {
            let out = detail(input);
            for s in secret {
                assert!(!out.contains(s), "{input:?} → {out:?} leaks {s:?}");
            }
        }
    }

    #[test]
    fn filter_errors_keep_their_shape() {
        assert_eq!(
            detail("Invalid filter: expected an operator (eq ne co sw ew pr gt ge lt le) after 'userName' at position 10"),
            "Invalid filter: expected an operator (eq ne co sw ew pr gt ge lt le) after 'userName' at position 10"
        );
        let out = detail(
            "Invalid filter: unexpected 'jsmith' at position 13 (expected 'and', 'or' or the end)",
        );
        assert!(
            out.starts_with("Invalid filter: unexpected '…'") && !out.contains("jsmith"),
            "{out}"
        );
    }

    #[test]
    fn e_mail_addresses_outside_quotes_and_long_details_are_cut() {
        assert_eq!(
            detail("no endpoint at /Users/ann@x.com here"),
            "no endpoint at … here"
        );
        let long = "x ".repeat(400);
        assert_eq!(detail(&long).chars().count(), MAX_DETAIL + 1);
    }

    #[test]
    fn paths_lose_queries_and_user_names() {
        assert_eq!(
            path("/acme/scim/v2/Users/ann@x.com"),
            "/acme/scim/v2/Users/…"
        );
        assert_eq!(path("/scim/v2/Users/ann%40x.com"), "/scim/v2/Users/…");
        assert_eq!(
            path("/scim/v2/Users?filter=userName eq \"a\""),
            "/scim/v2/Users"
        );
        assert_eq!(path("/scim/v2/Users/2f1c"), "/scim/v2/Users/2f1c");
    }
}
