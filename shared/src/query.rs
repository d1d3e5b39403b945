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
}

/// Decode a raw query string into (name, value) pairs, once.
pub fn decode(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
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
            filter::parse_attr_path(s).map_err(|e| ScimError::invalid_value(format!("'{s}' in {label} is not an attribute path: {e}")))
        })
        .collect()
}

impl ListParams {
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
        Ok(ListParams { filter, start_index, count, projection: projection(pairs)? })
    }
}

fn parse_int(s: &str, name: &str) -> ScimResult<i64> {
    s.trim().parse::<i64>().map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, but the request gave '{s}'")))
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
        assert_eq!(pairs, vec![("filter".to_string(), "userName eq \"a+b@x.com\"".to_string())]);
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
