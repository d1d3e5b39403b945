//! Evaluation of a [`Filter`] against a resource held as JSON ([`Filter::matches`]): names matched
//! case-insensitively, string values as the schema's case-exactness says ([`AttrInfo`]).
//!
//! Imports the AST from `filter` and `crate::value`; nothing else.

use super::{AttrInfo, AttrPath, CompValue, CompareOp, Filter};
use crate::value::entry_ci;
use serde_json::Value;

/// The value of member `key` of `obj` ([`entry_ci`]: exactly first, then ignoring ASCII case).
fn get_ci<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    entry_ci(obj, key).map(|(_, v)| v)
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Core schema URNs (`urn:ietf:params:scim:schemas:core:2.0:User`, `…:Group`) name the top level of a resource.
const CORE_URN_PREFIX: &str = "urn:ietf:params:scim:schemas:core:";

/// The values a path names in `res`: the attribute, or each element of a multi-valued one; with a
/// sub-attribute, that sub-attribute of the object or of each element.
fn values<'a>(res: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let Some(obj) = res.as_object() else {
        return Vec::new();
    };
    let found = match &path.urn {
        // An extension URN names the object stored under that key; a core URN names the top level.
        Some(urn) => match get_ci(obj, urn) {
            Some(Value::Object(ext)) => get_ci(ext, &path.name),
            _ if starts_with_ci(urn, CORE_URN_PREFIX) => get_ci(obj, &path.name),
            _ => None,
        },
        // An unqualified name that is not a top-level attribute may name an extension attribute (Entra's
        // `manager eq "<id>"` means the enterprise extension's manager).
        None => get_ci(obj, &path.name).or_else(|| {
            obj.iter()
                .filter(|(k, _)| starts_with_ci(k, "urn:"))
                .find_map(|(_, v)| v.as_object().and_then(|ext| get_ci(ext, &path.name)))
        }),
    };
    let Some(attr) = found else { return Vec::new() };
    let items: Vec<&Value> = match attr {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    match &path.sub {
        Some(sub) => items
            .into_iter()
            .filter_map(|v| v.as_object().and_then(|m| get_ci(m, sub)))
            .collect(),
        None => items,
    }
}

/// The value a comparison sees: a complex value (an email, a member, the manager) compares its `value`.
fn scalar(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(m) => get_ci(m, "value"),
        other => Some(other),
    }
}

/// RFC 7644 `pr`: not null, not an empty string, array or object.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn datetime(s: &str) -> Option<time::OffsetDateTime> {
    // Cheap pre-check so ordinary strings skip the parser: RFC 3339 starts with `YYYY-`.
    if s.len() < 20 || s.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Compare one attribute value with a literal. Mismatched types never match.
fn compare(v: &Value, op: CompareOp, lit: &CompValue, case_exact: bool) -> bool {
    use std::borrow::Cow;
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (v, lit) {
        (Value::String(a), CompValue::Str(b)) => {
            // Two dateTimes are ordered chronologically (offsets and fractions honoured).
            let ordered = matches!(
                op,
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
            );
            if let Some((x, y)) = ordered.then(|| datetime(a).zip(datetime(b))).flatten() {
                Some(x.cmp(&y))
            } else {
                let (a, b): (Cow<str>, Cow<str>) = if case_exact {
                    (a.into(), b.into())
                } else {
                    (a.to_lowercase().into(), b.to_lowercase().into())
                };
                match op {
                    CompareOp::Co => return a.contains(&*b),
                    CompareOp::Sw => return a.starts_with(&*b),
                    CompareOp::Ew => return a.ends_with(&*b),
                    _ => Some(a.cmp(&b)),
                }
            }
        }
        (Value::Number(a), CompValue::Num(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y)),
        // Booleans only have equality (the parser already refuses gt/ge/lt/le against true/false).
        (Value::Bool(a), CompValue::Bool(b)) => {
            matches!(op, CompareOp::Eq | CompareOp::Ne).then(|| a.cmp(b))
        }
        _ => None,
    };
    let Some(o) = ordering else { return false };
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

impl Filter {
    /// Does `resource` (a SCIM resource as JSON) match this filter?
    ///
    /// Attribute names are matched case-insensitively; string values case-insensitively unless
    /// `info.case_exact` says otherwise. A comparison on a multi-valued attribute matches if any element
    /// does; a complex value without a sub-attribute (`emails`, `members`, `manager`) compares its `value`.
    /// `ne` is the negation of `eq` (so it matches an absent attribute); `eq null` matches an absent one.
    pub fn matches(&self, resource: &Value, info: &dyn AttrInfo) -> bool {
        self.eval(resource, info, None)
    }

    /// `parent` is the multi-valued attribute whose element `res` is, inside a value filter.
    fn eval(&self, res: &Value, info: &dyn AttrInfo, parent: Option<&AttrPath>) -> bool {
        match self {
            Filter::And(a, b) => a.eval(res, info, parent) && b.eval(res, info, parent),
            Filter::Or(a, b) => a.eval(res, info, parent) || b.eval(res, info, parent),
            Filter::Not(a) => !a.eval(res, info, parent),
            Filter::Present(p) => values(res, p).into_iter().any(present),
            Filter::Compare { path, op, value } => {
                let case_exact = match parent {
                    Some(par) => info.case_exact(par.urn.as_deref(), &par.name, Some(&path.name)),
                    None => info.case_exact(path.urn.as_deref(), &path.name, path.sub.as_deref()),
                };
                let mut vals = values(res, path).into_iter().filter_map(scalar);
                match (op, value) {
                    (CompareOp::Eq, CompValue::Null) => !vals.any(present),
                    (CompareOp::Ne, CompValue::Null) => vals.any(present),
                    (CompareOp::Ne, _) => {
                        !vals.any(|v| compare(v, CompareOp::Eq, value, case_exact))
                    }
                    _ => vals.any(|v| compare(v, *op, value, case_exact)),
                }
            }
            Filter::ValuePath { path, filter } => {
                values(res, path).into_iter().any(|element| match element {
                    Value::Object(_) => filter.eval(element, info, Some(path)),
                    Value::Null => false,
                    // A multi-valued primitive (e.g. `schemas`): the element is its own `value`.
                    primitive => {
                        filter.eval(&serde_json::json!({ "value": primitive }), info, Some(path))
                    }
                })
            }
        }
    }
}
