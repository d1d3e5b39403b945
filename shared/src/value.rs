//! JSON value rules every layer shares: finding a member by name regardless of case, what counts as
//! "unassigned" (RFC 7643 §2.5), and how a value is named in an error message.
//!
//! Owns nothing SCIM-specific beyond those rules. Imports nothing from the crate, so every module
//! (`filter`, `model`, `patch`, …) may import it.

use serde_json::{Map, Value};

/// The member of `m` named `name`: the exact key when present, else the first key equal to it ignoring
/// ASCII case (attribute names and URNs are ASCII). The crate's one case-insensitive lookup.
pub fn entry_ci<'m>(m: &'m Map<String, Value>, name: &str) -> Option<(&'m String, &'m Value)> {
    m.get_key_value(name)
        .or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
}

/// Unassigned (RFC 7643 §2.5): `null`, an empty array or an empty object. An empty string is a value.
pub fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Remove the [unassigned](is_unassigned) members of `attrs` at any depth, and the arrays and objects
/// left empty by that removal: what POST/PUT bodies and PATCH results are stored without.
pub fn strip_unassigned(attrs: &mut Map<String, Value>) {
    attrs.retain(|_, v| {
        prune(v);
        !is_unassigned(v)
    });
}

fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => m.retain(|_, inner| {
            prune(inner);
            !is_unassigned(inner)
        }),
        Value::Array(items) => items.retain_mut(|inner| {
            prune(inner);
            !is_unassigned(inner)
        }),
        _ => {}
    }
}

/// Remove `null` members and elements at any depth, but keep the arrays and objects that leaves empty
/// (unlike [`strip_unassigned`]): a PATCH value before it is written.
pub fn drop_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k, drop_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .filter(|x| !x.is_null())
                .map(drop_nulls)
                .collect(),
        ),
        other => other,
    }
}

/// A short description of a value for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 40 => {
            format!("a string of {} characters", s.chars().count())
        }
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    }
}
