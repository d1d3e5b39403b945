//! Query-string parameters of list requests (RFC 7644 §3.4.2), decoded exactly once: `+` is a space,
//! `%2B` a plus (Entra sends `filter=userName+eq+%22a%2Bb%40x.com%22`). Unknown parameters, such as
//! Entra's `aadOptscim062020` feature flag, are ignored.

use crate::config::Limits;
use crate::error::{ScimError, ScimResult};
use crate::filter::{self, AttrPath, Filter};
use crate::model::Projection;

/// Parsed list parameters.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<Filter>,
    /// 1-based; values below 1 become 1 (RFC 7644 §3.4.2.4).
    pub start_index: usize,
    pub count: usize,
    pub projection: Projection,
    /// RFC 9865 cursor paging: `Some(None)` for the first page (`cursor=` empty), `Some(Some(id))` after.
    pub cursor: Option<Option<String>>,
}

/// Cursors are opaque to clients: the id to continue after, with a checksum so an altered or invented
/// cursor is refused (400 `invalidCursor`). A cursor only ever addresses the caller's own tenant and
/// resource type (both come from the request, not the cursor), and ids are random, so a cursor reveals
/// nothing. Cursors do not expire: paging by key is stable across concurrent inserts.
pub fn encode_cursor(resource_type: &str, id: &str) -> String {
    let payload = format!("{resource_type}:{id}");
    format!(
        "{}.{}",
        hex::encode(payload.as_bytes()),
        cursor_check(&payload)
    )
}

fn cursor_check(payload: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(format!("scim-cursor-v1\0{payload}").as_bytes())[..8])
}

pub fn decode_cursor(resource_type: &str, cursor: &str) -> ScimResult<String> {
    let bad = || {
        ScimError::bad_request(
            crate::error::ScimType::InvalidCursor,
            "The cursor is not one this server issued; start again without it",
        )
    };
    let (data, check) = cursor.split_once('.').ok_or_else(bad)?;
    let payload = hex::decode(data)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    if cursor_check(&payload) != check {
        return Err(bad());
    }
    let (rt, id) = payload.split_once(':').ok_or_else(bad)?;
    if rt != resource_type {
        return Err(bad());
    }
    Ok(id.to_string())
}

/// Decode a raw query string into (name, value) pairs, once.
pub fn decode(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `attributes` / `excludedAttributes` only (GET by id, POST/PUT/PATCH responses).
pub fn projection(pairs: &[(String, String)]) -> ScimResult<Projection> {
    Ok(Projection {
        attributes: attr_list(param(pairs, "attributes"), "attributes")?,
        excluded: attr_list(param(pairs, "excludedAttributes"), "excludedAttributes")?,
    })
}

fn attr_list(v: Option<&str>, label: &str) -> ScimResult<Vec<AttrPath>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            filter::parse_attr_path(s).map_err(|e| {
                ScimError::invalid_value(format!("'{s}' in {label} is not an attribute path: {e}"))
            })
        })
        .collect()
}

impl ListParams {
    /// Cursor parameters need the resource type (a cursor is bound to it).
    pub fn parse_for(
        pairs: &[(String, String)],
        limits: &Limits,
        resource_type: &str,
    ) -> ScimResult<Self> {
        let mut p = Self::parse(pairs, limits)?;
        if let Some(c) = param(pairs, "cursor") {
            if param(pairs, "startIndex").is_some() {
                return Err(ScimError::invalid_value(
                    "Use either cursor or startIndex paging, not both (RFC 9865)",
                ));
            }
            p.cursor = Some(if c.is_empty() {
                None
            } else {
                Some(decode_cursor(resource_type, c)?)
            });
        }
        Ok(p)
    }

    pub fn parse(pairs: &[(String, String)], limits: &Limits) -> ScimResult<Self> {
        let filter = match param(pairs, "filter") {
            None => None,
            Some(f) if f.chars().count() > limits.max_filter_len => {
                return Err(ScimError::invalid_filter(format!(
                    "The filter is {} characters long; the limit is {}",
                    f.chars().count(),
                    limits.max_filter_len
                )))
            }
            Some(f) => Some(filter::parse_filter(f)?),
        };
        if param(pairs, "sortBy").is_some() || param(pairs, "sortOrder").is_some() {
            return Err(ScimError::new(
                400,
                None,
                "Sorting is not supported by this service (see /ServiceProviderConfig: sort.supported is false); remove sortBy/sortOrder",
            ));
        }
        let start_index = match param(pairs, "startIndex") {
            None => 1,
            Some(s) => parse_int(s, "startIndex")?.max(1) as usize,
        };
        let count = match param(pairs, "count") {
            None => limits.default_page_size,
            Some(s) => (parse_int(s, "count")?.max(0) as usize).min(limits.max_page_size),
        };
        Ok(ListParams {
            filter,
            start_index,
            count,
            projection: projection(pairs)?,
            cursor: None,
        })
    }
}

fn parse_int(s: &str, name: &str) -> ScimResult<i64> {
    s.trim().parse::<i64>().map_err(|_| {
        ScimError::invalid_value(format!(
            "{name} must be an integer, but the request gave '{s}'"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ScimResult<ListParams> {
        ListParams::parse(&decode(Some(q)), &Limits::default())
    }

    #[test]
    fn plus_is_space_and_percent_2b_is_plus_decoded_once() {
        let pairs = decode(Some("filter=userName+eq+%22a%2Bb%40x.com%22"));
        assert_eq!(
            pairs,
            vec![(
                "filter".to_string(),
                "userName eq \"a+b@x.com\"".to_string()
            )]
        );
        // A literal %25 stays a percent sign after one decode: no double decoding.
        assert_eq!(decode(Some("filter=%2525"))[0].1, "%25");
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        let p = parse("aadOptscim062020&filter=userName+eq+%22x%22").unwrap();
        assert!(p.filter.is_some());
    }

    #[test]
    fn paging_defaults_and_clamps() {
        let p = parse("").unwrap();
        assert_eq!((p.start_index, p.count), (1, 100));
        let p = parse("startIndex=0&count=-5").unwrap();
        assert_eq!((p.start_index, p.count), (1, 0));
        let p = parse("startIndex=11&count=5000").unwrap();
        assert_eq!((p.start_index, p.count), (11, 200));
        assert_eq!(parse("count=abc").unwrap_err().status, 400);
    }

    #[test]
    fn bad_or_long_filters_are_invalid_filter() {
        let e = parse("filter=userName+xx+%22a%22").unwrap_err();
        assert_eq!(e.scim_type, Some(crate::error::ScimType::InvalidFilter));
        let long = format!("filter=userName+eq+%22{}%22", "a".repeat(5000));
        assert!(parse(&long).unwrap_err().detail.contains("limit is 4096"));
    }

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let c = encode_cursor("User", "abc-123");
        assert_eq!(decode_cursor("User", &c).unwrap(), "abc-123");
        assert_eq!(
            decode_cursor("Group", &c).unwrap_err().scim_type,
            Some(crate::error::ScimType::InvalidCursor)
        );
        let forged = encode_cursor("User", "zzz")
            .replace(&hex::encode("User:zzz"), &hex::encode("User:aaa"));
        assert!(decode_cursor("User", &forged).is_err());
        for junk in ["", ".", "zz.yy", "abc", &format!("{c}0")] {
            assert!(decode_cursor("User", junk).is_err(), "{junk}");
        }
        let p = ListParams::parse_for(&decode(Some("cursor=&count=2")), &Limits::default(), "User")
            .unwrap();
        assert_eq!(p.cursor, Some(None));
        assert!(ListParams::parse_for(
            &decode(Some("cursor=&startIndex=2")),
            &Limits::default(),
            "User"
        )
        .is_err());
    }

    #[test]
    fn sort_is_refused_not_ignored() {
        assert_eq!(parse("sortBy=userName").unwrap_err().status, 400);
    }

    #[test]
    fn attribute_lists() {
        let p = parse("attributes=userName,%20name.givenName&excludedAttributes=members").unwrap();
        assert_eq!(p.projection.attributes.len(), 2);
        assert_eq!(p.projection.excluded[0].name, "members");
    }
}
