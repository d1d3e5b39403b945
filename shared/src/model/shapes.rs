//! Entra's value shapes that the schema settles, on whole resources (POST/PUT bodies, PATCH results) and
//! on single values: booleans sent as strings (docs/entra-dialect.md §1.5, §5 item 1) and references
//! such as `manager` sent as a bare id, an `{"Value": …}` object or a one-element array (§1.4 (e),
//! §5 item 6). The PATCH dialect's rewrites `string_booleans` and `manager_shapes`
//! (`crate::patch::dialect`) apply the same rules to the values of single operations.
//!
//! Imports `crate::{schema, value}` only.

use crate::schema::{AttrDef, AttrType, ResourceType};
use crate::value::entry_ci;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------------
// Booleans sent as strings
// ---------------------------------------------------------------------------------------------------

/// Whole-resource form of the dialect's `string_booleans` for POST/PUT bodies (Microsoft's Postman
/// collection posts `"active": "True"`, dialect §5 item 1): recurses into complex, multi-valued and
/// extension attributes.
pub fn coerce_string_booleans(resource: &mut Map<String, Value>, rt: &ResourceType) {
    for (key, value) in resource.iter_mut() {
        if let Some(def) = rt.core.attr(key) {
            coerce_value(def, value);
        } else if let (Some(ext), Value::Object(m)) = (rt.extension(key), value) {
            coerce_attrs(m, &ext.attributes);
        }
    }
}

pub(crate) fn coerce_attrs(attrs: &mut Map<String, Value>, defs: &[AttrDef]) {
    for (key, value) in attrs.iter_mut() {
        if let Some(def) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(key)) {
            coerce_value(def, value);
        }
    }
}

/// A value of attribute `def`: an array of values when multi-valued, else one value.
pub(crate) fn coerce_value(def: &AttrDef, value: &mut Value) {
    match value {
        Value::Array(items) if def.multi_valued => {
            items.iter_mut().for_each(|v| coerce_single(def, v))
        }
        other => coerce_single(def, other),
    }
}

/// One value (or one element) of attribute `def`.
pub(crate) fn coerce_single(def: &AttrDef, value: &mut Value) {
    match (def.ty, &mut *value) {
        (AttrType::Boolean, Value::String(s)) => {
            if let Some(b) = parse_bool(s) {
                *value = Value::Bool(b);
            }
        }
        (AttrType::Complex, Value::Object(m)) => coerce_attrs(m, &def.sub_attributes),
        _ => {}
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------------
// References (`manager`)
// ---------------------------------------------------------------------------------------------------

/// Normalise the references among `attrs`' keys in place; returns the names of the emptied ones
/// (removed from `attrs`).
pub(crate) fn references_in(attrs: &mut Map<String, Value>, defs: &[AttrDef]) -> Vec<String> {
    let mut cleared = Vec::new();
    let keys: Vec<String> = attrs.keys().cloned().collect();
    for key in keys {
        let Some(def) = defs
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(&key) && is_reference(d))
        else {
            continue;
        };
        if attrs.get_mut(&key).is_some_and(|v| apply_shape(def, v)) {
            attrs.shift_remove(&key);
            cleared.push(def.name.clone());
        }
    }
    cleared
}

/// Rewrite `value` to the object shape; true when it is empty (the reference is to be removed).
pub(crate) fn apply_shape(def: &AttrDef, value: &mut Value) -> bool {
    match reference_shape(def, value) {
        RefShape::Clear => true,
        RefShape::Set(v) => {
            *value = v;
            false
        }
        RefShape::Keep => false,
    }
}

/// Whole-resource form of the dialect's `manager_shapes` for POST/PUT bodies: a manager given as a
/// string, an `{"Value": …}` object or a one-element array becomes `{"value": id}`; an empty one is
/// dropped (and an extension object left empty with it). Shapes it cannot read (several managers) are left for the
/// type check to reject.
pub fn manager_object(resource: &mut Map<String, Value>, rt: &ResourceType) {
    references_in(resource, &rt.core.attributes);
    for (schema, _) in &rt.extensions {
        let Some(key) = entry_ci(resource, &schema.id).map(|(k, _)| k.clone()) else {
            continue;
        };
        let Some(Value::Object(inner)) = resource.get_mut(&key) else {
            continue;
        };
        references_in(inner, &schema.attributes);
        if inner.is_empty() {
            resource.shift_remove(&key);
        }
    }
}

/// A single-valued complex attribute with a `value` sub-attribute: a reference such as `manager`.
pub(crate) fn is_reference(d: &AttrDef) -> bool {
    d.is_complex() && !d.multi_valued && d.sub("value").is_some()
}

/// What [`reference_shape`] makes of a value given for a reference.
pub(crate) enum RefShape {
    /// Empty: remove the reference.
    Clear,
    /// The object form.
    Set(Value),
    /// Not a shape we can read; leave it for validation.
    Keep,
}

/// The object form of a reference value, or whether it clears the reference.
pub(crate) fn reference_shape(def: &AttrDef, value: &Value) -> RefShape {
    match value {
        Value::Null => RefShape::Clear,
        Value::String(s) if s.is_empty() => RefShape::Clear,
        Value::String(_) | Value::Number(_) => {
            let mut m = Map::new();
            m.insert("value".into(), value.clone());
            RefShape::Set(Value::Object(m))
        }
        Value::Object(m) => {
            let m: Map<String, Value> = m
                .iter()
                .map(|(k, v)| {
                    (
                        def.sub(k).map_or_else(|| k.clone(), |d| d.name.clone()),
                        v.clone(),
                    )
                })
                .collect();
            match m.get("value") {
                Some(Value::Null) => RefShape::Clear,
                Some(Value::String(s)) if s.is_empty() => RefShape::Clear,
                None if m.values().all(Value::is_null) => RefShape::Clear,
                _ => RefShape::Set(Value::Object(m)),
            }
        }
        Value::Array(items) => match items.as_slice() {
            [] => RefShape::Clear,
            [one] => match reference_shape(def, one) {
                RefShape::Keep => RefShape::Set(one.clone()),
                shape => shape,
            },
            _ => RefShape::Keep,
        },
        Value::Bool(_) => RefShape::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::user_resource_type;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn manager_object_on_post_bodies() {
        let rt = user_resource_type();
        for (given, want) in [
            (
                json!("m-1"),
                json!({ENT: {"manager": {"value": "m-1"}, "department": "D"}}),
            ),
            (
                json!({"Value": "m-1"}),
                json!({ENT: {"manager": {"value": "m-1"}, "department": "D"}}),
            ),
            (
                json!([{"value": "m-1", "$ref": "r"}]),
                json!({ENT: {"manager": {"value": "m-1", "$ref": "r"}, "department": "D"}}),
            ),
            (json!(""), json!({ENT: {"department": "D"}})),
        ] {
            let Value::Object(mut m) = json!({ENT: {"manager": given, "department": "D"}}) else {
                unreachable!()
            };
            manager_object(&mut m, rt);
            assert_eq!(Value::Object(m), want);
        }
        let Value::Object(mut m) = json!({"userName": "u", ENT: {"manager": null}}) else {
            unreachable!()
        };
        manager_object(&mut m, rt);
        assert_eq!(
            Value::Object(m),
            json!({"userName": "u"}),
            "an extension left empty is dropped"
        );
    }

    // ---- 4. string_booleans -------------------------------------------------------------------------------

    #[test]
    fn coerce_string_booleans_on_post_bodies() {
        // [PM] posts "active": "True"
        let Value::Object(mut m) = json!({
            "UserName": "u", "active": "True", "title": "false",
            "emails": [{"value": "a@b", "primary": "True"}, {"value": "c@d", "primary": "false"}],
            "roles": [{"value": "r", "primary": "False"}],
            ENT: {"department": "true"}
        }) else {
            unreachable!()
        };
        coerce_string_booleans(&mut m, user_resource_type());
        assert_eq!(
            Value::Object(m),
            json!({
                "UserName": "u", "active": true, "title": "false",
                "emails": [{"value": "a@b", "primary": true}, {"value": "c@d", "primary": false}],
                "roles": [{"value": "r", "primary": false}],
                ENT: {"department": "true"}
            })
        );
    }

    // ---- 5. remove_with_value_on_single_valued -----------------------------------------------------------
}
