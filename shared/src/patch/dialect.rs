//! Entra's PATCH dialect rewritten into RFC 7644 form before the engine (`patch::apply`) sees it.
//!
//! One small, named function per quirk, each tested on the payload Entra actually sends, run in a fixed
//! order by [`patch_request`]. The quirks are catalogued in `docs/entra-dialect.md` (cited below as
//! "dialect §x"; its §0 explains source keys such as `[S1]` and `[PM]`).
//!
//! Two of them also apply to whole resource bodies (POST/PUT): their value rules live in
//! [`crate::model::shapes`] (`coerce_string_booleans`, `manager_object`), which `model` runs on every
//! body and `string_booleans` and `manager_shapes` run on the values of single operations.
//!
//! Capitalised attribute names (`Manager.Value`, `Primary`, `UserName`; dialect §5 item 30) are not
//! rewritten here: the engine resolves names case-insensitively and writes canonical keys.
//!
//! Imports `patch::{ops, target}`, `crate::model::shapes` and `crate::{error, filter, schema, value}`.

use super::ops::{PatchOpKind, Paths};
use super::target::{is_urn, resolve, resolve_key, Target};
use crate::error::{ScimError, ScimResult};
use crate::model::shapes::{
    apply_shape, coerce_attrs, coerce_single, coerce_string_booleans, coerce_value, is_reference,
    reference_shape, references_in, RefShape,
};
use crate::schema::{ResourceType, PATCH_OP};
use crate::value::{describe, entry_ci};
use serde_json::{Map, Value};

/// One normaliser: rewrites the operations of a PatchOp request in place.
/// Each is given the request's [`Paths`] (the resource type, and every path parsed once).
pub type Normaliser = fn(&mut Vec<Value>, &Paths) -> ScimResult<()>;

/// The normalisers, in the order [`patch_request`] runs them. The order matters: `op` values are
/// lower-cased before anything looks at them, pathless objects are split into path operations before
/// the per-path rules run, and the manager's shapes are settled before empty values become removals.
pub const PIPELINE: [(&str, Normaliser); 7] = [
    ("op_case", op_case),
    ("pathless_dotted_keys", pathless_dotted_keys),
    ("manager_shapes", manager_shapes),
    ("string_booleans", string_booleans),
    (
        "remove_with_value_on_single_valued",
        remove_with_value_on_single_valued,
    ),
    ("member_remove_with_value", member_remove_with_value),
    ("empty_string_clears", empty_string_clears),
];

/// Check the PatchOp envelope and rewrite its operations into RFC form (see [`PIPELINE`]).
/// Afterwards `body["Operations"]` is an array of objects with lower-case `op` and the member names
/// `op`, `path` (a non-empty string, or absent) and `value`. It may be empty when every operation
/// turned out to be a no-op (a member removal listing no members).
pub fn patch_request(body: &mut Value, paths: &Paths) -> ScimResult<()> {
    let ops = envelope(body)?;
    for (_, normalise) in PIPELINE {
        normalise(ops, paths)?;
    }
    Ok(())
}

/// The envelope (RFC 7644 §3.5.2): an object whose `schemas` holds the PatchOp URN and whose
/// `Operations` is a non-empty array of objects. Member names are matched case-insensitively
/// (`operations`, `Op`, `Path`, `Value`) and made canonical; a `null` or empty `path` counts as absent.
pub fn envelope(body: &mut Value) -> ScimResult<&mut Vec<Value>> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "The PATCH body must be a JSON object with \"schemas\" and \"Operations\"",
        ));
    };
    check_schemas(obj)?;
    let key = entry_ci(obj, "Operations").map(|(k, _)| k.clone()).ok_or_else(|| {
        ScimError::invalid_syntax("The PATCH body has no \"Operations\": give an array of {\"op\", \"path\", \"value\"} objects")
    })?;
    let ops = obj.shift_remove(&key).unwrap_or_default();
    let Value::Array(mut ops) = ops else {
        return Err(ScimError::invalid_syntax(
            "\"Operations\" must be an array of {\"op\", \"path\", \"value\"} objects",
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax(
            "\"Operations\" is empty: a PATCH needs at least one operation",
        ));
    }
    for (i, op) in ops.iter_mut().enumerate() {
        canonical_op_members(i, op)?;
    }
    let slot = obj.entry("Operations").or_insert(Value::Array(ops));
    match slot {
        Value::Array(ops) => Ok(ops),
        _ => Err(ScimError::internal(
            "PATCH operations were lost while normalising",
        )),
    }
}

fn check_schemas(obj: &Map<String, Value>) -> ScimResult<()> {
    let Some((_, schemas)) = entry_ci(obj, "schemas") else {
        return Err(ScimError::invalid_syntax(format!(
            "The PATCH body has no \"schemas\": it must be [\"{PATCH_OP}\"]"
        )));
    };
    let has = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case(PATCH_OP))
    };
    let ok = match schemas {
        Value::Array(list) => list.iter().any(has),
        single => has(single),
    };
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "The PATCH body's \"schemas\" is {schemas}; it must contain \"{PATCH_OP}\""
        )))
    }
}

fn canonical_op_members(i: usize, op: &mut Value) -> ScimResult<()> {
    let Value::Object(m) = op else {
        return Err(ScimError::invalid_syntax(format!(
            "Operations[{i}] must be an object with \"op\", \"path\" and \"value\""
        )));
    };
    for name in ["op", "path", "value"] {
        if let Some(k) = entry_ci(m, name)
            .map(|(k, _)| k.clone())
            .filter(|k| k != name)
        {
            if let Some(v) = m.shift_remove(&k) {
                m.insert(name.to_string(), v);
            }
        }
    }
    match m.get("path") {
        None => {}
        Some(Value::Null) => {
            m.shift_remove("path");
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            m.shift_remove("path");
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path must be a string, not {}",
                describe(other)
            )))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// 1. op_case
// ---------------------------------------------------------------------------------------------------

/// Quirk: Entra sends `op` as `Add`, `Replace`, `Remove` (dialect §1.4, §2.5 [S1]: "Don't require a
/// case-sensitive match on … PATCH op"; §5 item 2, MicrosoftDocs/azure-docs#42220). Lower-case it;
/// anything other than add/replace/remove is 400 `invalidSyntax` naming the op.
#[allow(clippy::ptr_arg)] // every normaliser has the same signature (see `Normaliser`)
pub fn op_case(ops: &mut Vec<Value>, _paths: &Paths) -> ScimResult<()> {
    for (i, op) in ops.iter_mut().enumerate() {
        let Value::Object(m) = op else { continue };
        let kind = match m.get("op") {
            Some(Value::String(s)) => match PatchOpKind::parse(s) {
                Some(k) => k,
                None => {
                    return Err(ScimError::invalid_syntax(format!(
                        "Operations[{i}] has op \"{s}\"; the supported operations are add, replace and remove"
                    )))
                }
            },
            Some(other) => {
                return Err(ScimError::invalid_syntax(format!(
                    "Operations[{i}].op must be \"add\", \"replace\" or \"remove\", not {}",
                    describe(other)
                )))
            }
            None => {
                return Err(ScimError::invalid_syntax(format!(
                    "Operations[{i}] has no \"op\": use add, replace or remove"
                )))
            }
        };
        m.insert("op".into(), Value::String(kind.as_str().into()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// 2. pathless_dotted_keys
// ---------------------------------------------------------------------------------------------------

/// Quirk: with `aadOptscim062020` (and in the validator) a pathless `add`/`replace` carries keys that are
/// paths: `"name.givenName"`, `"urn:…:enterprise:2.0:User:employeeNumber"` (dialect §1.4 (c), §5 item 3;
/// Captain-P-Goldfish/SCIM-SDK#267, #416; thomaspoignant/scim-patch#132; pond/scimitar#123;
/// AzureAD/SCIMReferenceCode#97). Each such key becomes an operation with that path, in key order; plain
/// keys stay together in pathless operations. A key that is exactly a schema URN with an object value is
/// an extension object and stays; so does an unknown URN key with an object value. A key that does not
/// parse as a path is left alone (and stored verbatim by the engine).
pub fn pathless_dotted_keys(ops: &mut Vec<Value>, paths: &Paths) -> ScimResult<()> {
    rewrite(ops, |op| {
        let kind = op_kind(&op).to_string();
        if !is_write(&kind) || path_of(&op).is_some() {
            return Ok(vec![op]);
        }
        let Some(Value::Object(obj)) = op.get("value") else {
            return Ok(vec![op]);
        };
        if !obj.iter().any(|(k, v)| is_path_key(k, v, paths)) {
            return Ok(vec![op]);
        }
        let mut out = Vec::new();
        let mut plain = Map::new();
        for (k, v) in obj {
            if is_path_key(k, v, paths) {
                if !plain.is_empty() {
                    out.push(make_op(
                        &kind,
                        None,
                        Some(Value::Object(std::mem::take(&mut plain))),
                    ));
                }
                out.push(make_op(&kind, Some(k.clone()), Some(v.clone())));
            } else {
                plain.insert(k.clone(), v.clone());
            }
        }
        if !plain.is_empty() {
            out.push(make_op(&kind, None, Some(Value::Object(plain))));
        }
        Ok(out)
    })
}

fn is_path_key(key: &str, value: &Value, paths: &Paths) -> bool {
    let rt = paths.rt;
    let parses = || paths.parse(key).is_ok();
    if is_urn(key) {
        if rt.schema_urns().any(|u| u.eq_ignore_ascii_case(key)) {
            return false;
        }
        let under_known = rt.schema_urns().any(|u| {
            key.get(..u.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(u))
                && key.get(u.len()..).is_some_and(|r| r.starts_with(':'))
        });
        return (under_known || !value.is_object()) && parses();
    }
    key.contains('.') && parses()
}

// ---------------------------------------------------------------------------------------------------
// 3. manager_shapes
// ---------------------------------------------------------------------------------------------------

/// Quirk: the enterprise `manager` arrives as a bare id string (imulab/go-scim#75, Microsoft's onboarding
/// test), as `{"value": id}` (scimvalidator), as `{"Value": id}` ([PM]), or as `[{"$ref": …, "value": id}]`
/// ([S1] Example 5), by URN path, by `"path": "manager"`, or inside a pathless value; `""`/null means
/// "remove the manager" (dialect §1.4 (e), §5 item 6; Budibase/budibase#15369: Entra fails when it is
/// returned as a string). Always rewritten to `{"value": id}` (keeping `$ref`/`displayName` when given);
/// empty shapes become a `remove` of the manager. Applies to any single-valued complex attribute with a
/// `value` sub-attribute (a reference), which today is `manager`.
pub fn manager_shapes(ops: &mut Vec<Value>, paths: &Paths) -> ScimResult<()> {
    rewrite(ops, |mut op| {
        if !is_write(op_kind(&op)) {
            return Ok(vec![op]);
        }
        let Some(path) = path_of(&op).map(str::to_string) else {
            let mut out = Vec::new();
            if let Some(Value::Object(obj)) = op.get_mut("value") {
                out = pathless_references(obj, paths.rt);
            }
            return Ok(keep_unless_emptied(op, out));
        };
        let Some(Target::Attr(t)) = target(&path, paths) else {
            return Ok(vec![op]);
        };
        let Some(def) = t.def.filter(|d| is_reference(d) && t.is_whole()) else {
            return Ok(vec![op]);
        };
        let Some(value) = op.get_mut("value") else {
            return Ok(vec![op]);
        };
        match reference_shape(def, value) {
            RefShape::Clear => Ok(vec![make_op("remove", Some(path), None)]),
            RefShape::Set(v) => {
                *value = v;
                Ok(vec![op])
            }
            RefShape::Keep => Ok(vec![op]),
        }
    })
}

/// References inside a pathless value: top-level keys and keys of extension objects. Returns the
/// `remove` operations for the emptied ones (which are taken out of the value).
fn pathless_references(obj: &mut Map<String, Value>, rt: &ResourceType) -> Vec<Value> {
    let mut removes = Vec::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let Some(target) = obj.get(&key).map(|v| resolve_key(&key, v, rt)) else {
            continue;
        };
        match target {
            Target::Attr(t) => {
                let Some(def) = t.def.filter(|d| is_reference(d)) else {
                    continue;
                };
                if obj.get_mut(&key).is_some_and(|v| apply_shape(def, v)) {
                    obj.shift_remove(&key);
                    removes.push(make_op("remove", Some(key.clone()), None));
                }
            }
            Target::Extension {
                key: urn,
                schema: Some(schema),
            } => {
                if let Some(Value::Object(inner)) = obj.get_mut(&key) {
                    let cleared = references_in(inner, &schema.attributes);
                    if !cleared.is_empty() && inner.is_empty() {
                        obj.shift_remove(&key);
                    }
                    for name in cleared {
                        removes.push(make_op("remove", Some(format!("{urn}:{name}")), None));
                    }
                }
            }
            _ => {}
        }
    }
    removes
}

// ---------------------------------------------------------------------------------------------------
// 4. string_booleans
// ---------------------------------------------------------------------------------------------------

/// Quirk: Entra sends booleans as strings — `"active": "False"` by default, also `"True"`, `"false"`
/// (dialect §1.5, §5 item 1; AzureAD/SCIMReferenceCode#21 "our service sends it as a string today";
/// scimmyjs/scimmy#51, #86; Captain-P-Goldfish/scim-for-keycloak#119; bytebase/bytebase PR #19073), and
/// `"primary": "True"` inside values. Where the schema says the target (or a sub-attribute of an object
/// value, e.g. `primary`) is boolean, `"true"`/`"false"` in any case become JSON booleans.
#[allow(clippy::ptr_arg)] // every normaliser has the same signature (see `Normaliser`)
pub fn string_booleans(ops: &mut Vec<Value>, paths: &Paths) -> ScimResult<()> {
    for op in ops.iter_mut() {
        if !is_write(op_kind(op)) {
            continue;
        }
        let target = match path_of(op) {
            None => Some(Target::Core),
            Some(p) => target(p, paths),
        };
        let (Some(target), Some(value)) = (target, op.get_mut("value")) else {
            continue;
        };
        match target {
            Target::Core => {
                if let Value::Object(m) = value {
                    coerce_string_booleans(m, paths.rt);
                }
            }
            Target::Extension {
                schema: Some(s), ..
            } => {
                if let Value::Object(m) = value {
                    coerce_attrs(m, &s.attributes);
                }
            }
            Target::Attr(t) => match (&t.sub, &t.filter, t.def) {
                (Some(sub), _, _) => {
                    if let Some(sd) = sub.def {
                        coerce_value(sd, value);
                    }
                }
                (None, Some(_), Some(d)) => coerce_single(d, value),
                (None, None, Some(d)) => coerce_value(d, value),
                (None, _, None) => {}
            },
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// 5. remove_with_value_on_single_valued
// ---------------------------------------------------------------------------------------------------

/// Quirk: Entra sends `remove` with a `value` on single-valued targets, e.g.
/// `{"op":"Remove","path":"emails[type eq \"work\"].value","value":"updated@example.org"}` (dialect §1.4 (f),
/// §5 item 9; AzureAD/SCIMReferenceCode PR #87). Choice: the value is dropped and the target removed,
/// whatever its current value. (The reference code clears only when the value matches; but Entra sends
/// this only after the source attribute was cleared, and a comparison that fails on case or formatting
/// would leave stale data that Entra then never clears.) A `value` stays only where it selects elements:
/// a whole multi-valued (or unknown) attribute without filter.
#[allow(clippy::ptr_arg)] // every normaliser has the same signature (see `Normaliser`)
pub fn remove_with_value_on_single_valued(ops: &mut Vec<Value>, paths: &Paths) -> ScimResult<()> {
    for op in ops.iter_mut() {
        if op_kind(op) != "remove" || op.get("value").is_none() {
            continue;
        }
        let keep = match path_of(op).and_then(|p| target(p, paths)) {
            Some(Target::Attr(t)) => t.is_whole() && t.def.is_none_or(|d| d.multi_valued),
            Some(_) => false,
            None => true,
        };
        if !keep {
            if let Value::Object(m) = op {
                m.shift_remove("value");
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// 6. member_remove_with_value
// ---------------------------------------------------------------------------------------------------

/// Quirk: Entra removes group members with `{"op":"Remove","path":"members","value":[{"value":"<id>"}]}`
/// (dialect §1.6 default dialect, §5 item 4; [S1]; [S2]; MicrosoftDocs/azure-docs#30826;
/// Captain-P-Goldfish/SCIM-SDK#149, #167; apache/directory-scimple#436). RFC-strict servers delete every
/// member. Rewritten to one `remove` per listed element, `members[value eq "<id>"]` (the id JSON-escaped),
/// for any multi-valued complex attribute with a `value` sub-attribute. Listed elements without a
/// `value` stay in a `remove` with a value (the engine removes equal elements); an empty list removes
/// nothing; a `remove` of `members` without value or filter still clears them all (RFC 7644 §3.5.2.2).
pub fn member_remove_with_value(ops: &mut Vec<Value>, paths: &Paths) -> ScimResult<()> {
    rewrite(ops, |op| {
        if op_kind(&op) != "remove" {
            return Ok(vec![op]);
        }
        let Some(path) = path_of(&op).map(|p| p.trim().to_string()) else {
            return Ok(vec![op]);
        };
        let Some(Target::Attr(t)) = target(&path, paths) else {
            return Ok(vec![op]);
        };
        let listable = t.is_whole()
            && t.def
                .is_some_and(|d| d.multi_valued && d.is_complex() && d.sub("value").is_some());
        if !listable {
            return Ok(vec![op]);
        }
        let items = match op.get("value") {
            None | Some(Value::Null) => return Ok(vec![op]),
            Some(Value::Array(items)) => items.clone(),
            Some(one) => vec![one.clone()],
        };
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for item in items {
            match element_value(&item) {
                Some(id) => {
                    let literal = serde_json::to_string(&id).unwrap_or_default();
                    out.push(make_op(
                        "remove",
                        Some(format!("{path}[value eq {literal}]")),
                        None,
                    ));
                }
                None => rest.push(item),
            }
        }
        if !rest.is_empty() {
            out.push(make_op("remove", Some(path), Some(Value::Array(rest))));
        }
        Ok(out)
    })
}

/// The `value` of a listed element: `{"value": "id"}` (any case), or a bare id.
fn element_value(item: &Value) -> Option<Value> {
    match item {
        Value::String(_) | Value::Number(_) => Some(item.clone()),
        Value::Object(m) => entry_ci(m, "value")
            .map(|(_, v)| v)
            .filter(|v| v.is_string() || v.is_number())
            .cloned(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// 7. empty_string_clears
// ---------------------------------------------------------------------------------------------------

/// Quirk: Microsoft's onboarding test clears attributes with `{"op":"replace","path":"<attr>","value":""}`,
/// with a pathless `replace` whose values are `""`, and then with `null`s, and expects the attribute gone
/// or empty afterwards (dialect §1.4 (h), §5 item 27 [LA `SCIM_Null_Update_Test`]; Entra itself "can't
/// provision null attributes" [S6; S7]). `add`/`replace` of `""` or null becomes a `remove` of that path;
/// on a required attribute (`userName`, group `displayName`) it is 400 `invalidValue`. In a pathless value,
/// keys (and keys of extension objects) holding `""`/null become `remove` operations.
pub fn empty_string_clears(ops: &mut Vec<Value>, paths: &Paths) -> ScimResult<()> {
    rewrite(ops, |mut op| {
        if !is_write(op_kind(&op)) {
            return Ok(vec![op]);
        }
        let Some(path) = path_of(&op).map(str::to_string) else {
            let mut out = Vec::new();
            if let Some(Value::Object(obj)) = op.get_mut("value") {
                out = pathless_clears(obj, paths.rt)?;
            }
            return Ok(keep_unless_emptied(op, out));
        };
        if !op.get("value").is_some_and(clears) {
            return Ok(vec![op]);
        }
        match target(&path, paths) {
            Some(Target::Attr(t)) if t.required() => Err(required_error(&t.label, paths.rt)),
            Some(Target::Attr(_)) | Some(Target::Extension { .. }) => {
                Ok(vec![make_op("remove", Some(path), None)])
            }
            _ => Ok(vec![op]),
        }
    })
}

/// `""`/null keys of a pathless value (and of its extension objects) taken out as `remove` operations.
fn pathless_clears(obj: &mut Map<String, Value>, rt: &ResourceType) -> ScimResult<Vec<Value>> {
    let mut removes = Vec::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let Some(value) = obj.get(&key) else { continue };
        let empty = clears(value);
        match resolve_key(&key, value, rt) {
            Target::Attr(t) if empty => {
                if t.required() {
                    return Err(required_error(&t.label, rt));
                }
                obj.shift_remove(&key);
                if !t.read_only {
                    removes.push(make_op("remove", Some(key), None));
                }
            }
            Target::Extension { key: urn, schema } => {
                let Some(Value::Object(inner)) = obj.get_mut(&key) else {
                    continue;
                };
                let names: Vec<String> = inner
                    .iter()
                    .filter(|(_, v)| clears(v))
                    .map(|(k, _)| k.clone())
                    .collect();
                for name in names {
                    inner.shift_remove(&name);
                    if schema
                        .and_then(|s| s.attr(&name))
                        .is_some_and(|d| d.required)
                    {
                        return Err(required_error(&format!("{urn}:{name}"), rt));
                    }
                    removes.push(make_op("remove", Some(format!("{urn}:{name}")), None));
                }
                if inner.is_empty() {
                    obj.shift_remove(&key);
                }
            }
            _ => {}
        }
    }
    Ok(removes)
}

fn required_error(label: &str, rt: &ResourceType) -> ScimError {
    ScimError::invalid_value(format!(
        "{label} is required and cannot be empty: a {} must keep a {label}",
        rt.name
    ))
}

/// `""` or `null`: how Entra clears an attribute (dialect §1.4 (h)). Unlike [`is_unassigned`], an empty
/// string counts and an empty array or object does not.
///
/// [`is_unassigned`]: crate::value::is_unassigned
fn clears(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/// A pathless operation followed by the operations split out of it; the pathless one is dropped when
/// splitting emptied its value (it would change nothing).
fn keep_unless_emptied(op: Value, split: Vec<Value>) -> Vec<Value> {
    let emptied = !split.is_empty()
        && op
            .get("value")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty);
    if emptied {
        split
    } else {
        std::iter::once(op).chain(split).collect()
    }
}

/// Replace each operation by the operations `f` makes of it.
fn rewrite(
    ops: &mut Vec<Value>,
    mut f: impl FnMut(Value) -> ScimResult<Vec<Value>>,
) -> ScimResult<()> {
    let old = std::mem::take(ops);
    for op in old {
        ops.extend(f(op)?);
    }
    Ok(())
}

fn op_kind(op: &Value) -> &str {
    op.get("op").and_then(Value::as_str).unwrap_or_default()
}

fn is_write(kind: &str) -> bool {
    kind == "add" || kind == "replace"
}

fn path_of(op: &Value) -> Option<&str> {
    op.get("path").and_then(Value::as_str)
}

/// Where `path` points, or None when it does not parse (the engine then reports it).
fn target(path: &str, paths: &Paths) -> Option<Target> {
    let parsed = paths.parse(path).ok()?;
    resolve(&parsed, paths.rt).ok()
}

fn make_op(kind: &str, path: Option<String>, value: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("op".into(), Value::String(kind.into()));
    if let Some(p) = path {
        m.insert("path".into(), Value::String(p));
    }
    if let Some(v) = value {
        m.insert("value".into(), v);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::filter;
    use crate::schema::{group_resource_type, user_resource_type};
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn body(ops: Value) -> Value {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    }

    /// Run one normaliser on already-enveloped, lower-cased operations.
    fn one(n: Normaliser, ops: Value) -> Value {
        let Value::Array(mut ops) = ops else {
            panic!("ops must be an array")
        };
        n(&mut ops, &Paths::new(user_resource_type()))
            .unwrap_or_else(|e| panic!("normaliser failed: {e}"));
        Value::Array(ops)
    }

    fn one_group(n: Normaliser, ops: Value) -> Value {
        let Value::Array(mut ops) = ops else {
            panic!("ops must be an array")
        };
        n(&mut ops, &Paths::new(group_resource_type()))
            .unwrap_or_else(|e| panic!("normaliser failed: {e}"));
        Value::Array(ops)
    }

    /// The whole pipeline, returning the normalised Operations.
    fn pipeline(rt: &ResourceType, mut b: Value) -> ScimResult<Value> {
        patch_request(&mut b, &Paths::new(rt))?;
        Ok(b["Operations"].clone())
    }

    // ---- envelope ----------------------------------------------------------------------------------

    #[test]
    fn envelope_accepts_case_variants() {
        let mut b = json!({"Schemas": ["URN:ietf:params:scim:api:messages:2.0:patchop"],
                           "operations": [{"Op": "Replace", "Path": "title", "Value": "x"}]});
        patch_request(&mut b, &Paths::new(user_resource_type())).unwrap();
        assert_eq!(
            b["Operations"],
            json!([{"op": "replace", "path": "title", "value": "x"}])
        );
        assert!(b.get("operations").is_none());
    }

    #[test]
    fn envelope_null_or_empty_path_is_absent() {
        let ops = pipeline(
            user_resource_type(),
            body(json!([
                {"op": "replace", "path": null, "value": {"title": "a"}},
                {"op": "replace", "path": " ", "value": {"title": "b"}}
            ])),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([{"op": "replace", "value": {"title": "a"}}, {"op": "replace", "value": {"title": "b"}}])
        );
    }

    #[test]
    fn envelope_rejections() {
        let rt = user_resource_type();
        let cases = [
            (json!("x"), "JSON object"),
            (
                json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
                "no \"schemas\"",
            ),
            (
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []}),
                "must contain",
            ),
            (json!({"schemas": [PATCH_OP]}), "no \"Operations\""),
            (json!({"schemas": [PATCH_OP], "Operations": []}), "empty"),
            (
                json!({"schemas": [PATCH_OP], "Operations": {"op": "add"}}),
                "must be an array",
            ),
            (
                json!({"schemas": [PATCH_OP], "Operations": ["add"]}),
                "Operations[0] must be an object",
            ),
        ];
        for (b, needle) in cases {
            let e = pipeline(rt, b.clone()).unwrap_err();
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(ScimType::InvalidSyntax)),
                "{b}"
            );
            assert!(e.detail.contains(needle), "{b}: {}", e.detail);
        }
        let e = pipeline(rt, body(json!([{"op": "add", "path": 3, "value": 1}]))).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn schemas_as_a_single_string_is_tolerated() {
        let b = json!({"schemas": PATCH_OP, "Operations": [{"op": "add", "path": "title", "value": "x"}]});
        assert!(pipeline(user_resource_type(), b).is_ok());
    }

    // ---- 1. op_case --------------------------------------------------------------------------------------

    #[test]
    fn op_case_lower_cases_entra_ops() {
        let got = one(
            op_case,
            json!([
                {"op": "Add", "path": "nickName", "value": "Babs"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Remove", "path": "title"},
                {"op": "REMOVE", "path": "title"}
            ]),
        );
        let ops: Vec<&str> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["op"].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["add", "replace", "remove", "remove"]);
    }

    #[test]
    fn op_case_rejects_unknown_or_missing_op() {
        for (ops, needle) in [
            (
                json!([{"op": "add", "path": "a", "value": 1}, {"op": "Copy", "path": "a"}]),
                "Operations[1] has op \"Copy\"",
            ),
            (json!([{"path": "a"}]), "no \"op\""),
            (json!([{"op": true}]), "not true"),
        ] {
            let Value::Array(mut ops) = ops else {
                unreachable!()
            };
            let e = op_case(&mut ops, &Paths::new(user_resource_type())).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
            assert!(e.detail.contains(needle), "{}", e.detail);
        }
    }

    // ---- 2. pathless_dotted_keys -------------------------------------------------------------------------

    #[test]
    fn pathless_dotted_keys_flag_dialect_payload() {
        // dialect §1.4 (c), with aadOptscim062020
        let got = one(
            pathless_dotted_keys,
            entra_fixture!("user-patch-c-flag-dialect-pathless")["Operations"].clone(),
        );
        assert_eq!(
            got,
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"},
                {"op": "replace", "value": {"displayName": "Bjfe"}},
                {"op": "replace", "path": "name.givenName", "value": "Kkom"},
                {"op": "replace", "path": "name.familyName", "value": "Unua"},
                {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Aklq"}
            ])
        );
    }

    #[test]
    fn pathless_dotted_keys_add_keeps_key_order() {
        // pond/scimitar#123
        let got = one(
            pathless_dotted_keys,
            json!([
                {"op": "add", "value": {"displayName": "Foo Bar", "title": "Bar Foo", "name.givenName": "Foo",
                                        "name.familyName": "Bar", "name.formatted": "Foo Bar", "nickName": "FB"}}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "add", "value": {"displayName": "Foo Bar", "title": "Bar Foo"}},
                {"op": "add", "path": "name.givenName", "value": "Foo"},
                {"op": "add", "path": "name.familyName", "value": "Bar"},
                {"op": "add", "path": "name.formatted", "value": "Foo Bar"},
                {"op": "add", "value": {"nickName": "FB"}}
            ])
        );
    }

    #[test]
    fn pathless_dotted_keys_keeps_extension_objects_and_odd_keys() {
        let ops = json!([{"op": "add", "value": {
            ENT: {"department": "D"},
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User": {"x": 1},
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:y": "2",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": {"value": "m"},
            "weird key.with space": 1,
            "title": "T"
        }}]);
        let got = one(pathless_dotted_keys, ops);
        assert_eq!(
            got,
            json!([
                {"op": "add", "value": {ENT: {"department": "D"}, "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User": {"x": 1}}},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:y", "value": "2"},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m"}},
                {"op": "add", "value": {"weird key.with space": 1, "title": "T"}}
            ])
        );
    }

    #[test]
    fn pathless_dotted_keys_leaves_path_ops_and_removes_alone() {
        let ops = json!([
            {"op": "replace", "path": "name", "value": {"name.givenName": "x"}},
            {"op": "remove", "path": "title"}
        ]);
        assert_eq!(one(pathless_dotted_keys, ops.clone()), ops);
    }

    // ---- 3. manager_shapes ---------------------------------------------------------------------------------

    #[test]
    fn manager_shapes_all_four() {
        let p = format!("{ENT}:manager");
        let got = one(
            manager_shapes,
            json!([
                {"op": "add", "path": "manager", "value": [{"$ref": "http://.../scim/Users/00aa", "value": "00aa"}]},
                {"op": "add", "path": p, "value": "45619541-95de-4d5e-9872-571b5d2c5577"},
                {"op": "replace", "path": p, "value": {"value": "AXTKDLNRKMKT"}},
                {"op": "replace", "path": p, "value": {"Value": "m-1", "DisplayName": "Boss"}},
                {"op": "replace", "path": p, "value": 42}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "add", "path": "manager", "value": {"$ref": "http://.../scim/Users/00aa", "value": "00aa"}},
                {"op": "add", "path": p, "value": {"value": "45619541-95de-4d5e-9872-571b5d2c5577"}},
                {"op": "replace", "path": p, "value": {"value": "AXTKDLNRKMKT"}},
                {"op": "replace", "path": p, "value": {"value": "m-1", "displayName": "Boss"}},
                {"op": "replace", "path": p, "value": {"value": 42}}
            ])
        );
    }

    #[test]
    fn manager_shapes_empty_means_remove() {
        let p = format!("{ENT}:manager");
        let got = one(
            manager_shapes,
            json!([
                {"op": "replace", "path": p, "value": ""},
                {"op": "replace", "path": p, "value": null},
                {"op": "replace", "path": p, "value": []},
                {"op": "replace", "path": p, "value": {"value": ""}},
                {"op": "add", "path": "Manager", "value": [{"value": null}]}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "remove", "path": p}, {"op": "remove", "path": p}, {"op": "remove", "path": p},
                {"op": "remove", "path": p}, {"op": "remove", "path": "Manager"}
            ])
        );
    }

    #[test]
    fn manager_shapes_in_pathless_values() {
        let got = one(
            manager_shapes,
            json!([
                {"op": "replace", "value": {ENT: {"Manager": "m-2", "department": "D"}}},
                {"op": "replace", "value": {ENT: {"manager": ""}, "title": "T"}},
                {"op": "replace", "value": {"manager": [{"value": "m-3"}]}}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "replace", "value": {ENT: {"Manager": {"value": "m-2"}, "department": "D"}}},
                {"op": "replace", "value": {"title": "T"}},
                {"op": "remove", "path": format!("{ENT}:manager")},
                {"op": "replace", "value": {"manager": {"value": "m-3"}}}
            ])
        );
    }

    #[test]
    fn manager_shapes_leaves_sub_paths_filters_and_several_managers() {
        let ops = json!([
            {"op": "replace", "path": "manager.value", "value": "m"},
            {"op": "remove", "path": "manager[value eq \"m\"]"},
            {"op": "add", "path": "manager", "value": [{"value": "a"}, {"value": "b"}]}
        ]);
        assert_eq!(one(manager_shapes, ops.clone()), ops);
    }

    #[test]
    fn string_booleans_active_and_primary() {
        // dialect §1.5 default dialect; AzureAD/SCIMReferenceCode#21
        let got = one(
            string_booleans,
            json!([
                {"op": "replace", "path": "active", "value": "False"},
                {"op": "replace", "path": "active", "value": "true"},
                {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "True"},
                {"op": "add", "path": "emails", "value": [{"value": "a@b", "Primary": "FALSE"}]},
                {"op": "add", "path": "emails[type eq \"work\"]", "value": {"primary": "true"}},
                {"op": "replace", "value": {"active": "False", "title": "True", "emails": [{"primary": "True"}]}},
                {"op": "replace", "path": "title", "value": "False"},
                {"op": "replace", "path": "active", "value": "yes"},
                {"op": "remove", "path": "active", "value": "False"}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "replace", "path": "active", "value": true},
                {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
                {"op": "add", "path": "emails", "value": [{"value": "a@b", "Primary": false}]},
                {"op": "add", "path": "emails[type eq \"work\"]", "value": {"primary": true}},
                {"op": "replace", "value": {"active": false, "title": "True", "emails": [{"primary": true}]}},
                {"op": "replace", "path": "title", "value": "False"},
                {"op": "replace", "path": "active", "value": "yes"},
                {"op": "remove", "path": "active", "value": "False"}
            ])
        );
    }

    #[test]
    fn remove_with_value_on_single_valued_drops_the_value() {
        // AzureAD/SCIMReferenceCode PR #87
        let got = one(
            remove_with_value_on_single_valued,
            json!([
                {"op": "remove", "path": "emails[type eq \"work\"].value", "value": "updated@example.org"},
                {"op": "remove", "path": "title", "value": "x"},
                {"op": "remove", "path": format!("{ENT}:manager"), "value": {"value": "m"}},
                {"op": "remove", "path": "emails", "value": [{"value": "a@b"}]},
                {"op": "remove", "path": "unknownList", "value": ["a"]}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "remove", "path": "emails[type eq \"work\"].value"},
                {"op": "remove", "path": "title"},
                {"op": "remove", "path": format!("{ENT}:manager")},
                {"op": "remove", "path": "emails", "value": [{"value": "a@b"}]},
                {"op": "remove", "path": "unknownList", "value": ["a"]}
            ])
        );
    }

    // ---- 6. member_remove_with_value ----------------------------------------------------------------------

    #[test]
    fn member_remove_with_value_default_dialect() {
        // dialect §1.6 [S1] / [S2] without flag
        let got = one_group(
            member_remove_with_value,
            json!([
                {"op": "remove", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]},
                {"op": "remove", "path": "Members", "value": [{"value": "u1091"}, {"Value": "u2"}]}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "remove", "path": "members[value eq \"f648f8d5ea4e4cd38e9c\"]"},
                {"op": "remove", "path": "Members[value eq \"u1091\"]"},
                {"op": "remove", "path": "Members[value eq \"u2\"]"}
            ])
        );
    }

    #[test]
    fn member_remove_with_value_escapes_and_keeps_the_rest() {
        let got = one_group(
            member_remove_with_value,
            json!([
                {"op": "remove", "path": "members", "value": [{"value": "a\"b\\c"}, {"display": "no id"}]},
                {"op": "remove", "path": "members", "value": []},
                {"op": "remove", "path": "members"},
                {"op": "remove", "path": "members[value eq \"x\"]"}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "remove", "path": "members[value eq \"a\\\"b\\\\c\"]"},
                {"op": "remove", "path": "members", "value": [{"display": "no id"}]},
                {"op": "remove", "path": "members"},
                {"op": "remove", "path": "members[value eq \"x\"]"}
            ])
        );
        let generated = got[0]["path"].as_str().unwrap();
        let parsed = filter::parse_path(generated).unwrap();
        assert!(parsed.filter.is_some(), "the generated path parses back");
    }

    #[test]
    fn member_remove_with_value_is_generic_over_value_lists() {
        let got = one(
            member_remove_with_value,
            json!([{"op": "remove", "path": "emails", "value": [{"value": "a@b", "type": "work"}]}]),
        );
        assert_eq!(
            got,
            json!([{"op": "remove", "path": "emails[value eq \"a@b\"]"}])
        );
    }

    // ---- 7. empty_string_clears -----------------------------------------------------------------------------

    #[test]
    fn empty_string_clears_with_paths() {
        // [LA] SCIM_Null_Update_Test
        let got = one(
            empty_string_clears,
            json!([
                {"op": "replace", "path": "title", "value": ""},
                {"op": "replace", "path": "nickName", "value": null},
                {"op": "add", "path": "emails[type eq \"work\"].value", "value": ""},
                {"op": "replace", "path": format!("{ENT}:department"), "value": ""},
                {"op": "replace", "path": "displayName", "value": " "}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "remove", "path": "title"},
                {"op": "remove", "path": "nickName"},
                {"op": "remove", "path": "emails[type eq \"work\"].value"},
                {"op": "remove", "path": format!("{ENT}:department")},
                {"op": "replace", "path": "displayName", "value": " "}
            ])
        );
    }

    #[test]
    fn empty_string_clears_pathless() {
        let got = one(
            empty_string_clears,
            json!([
                {"op": "replace", "value": {"title": "", "displayName": "New", "nickName": null, "id": "",
                                            ENT: {"department": "", "costCenter": "C"}}},
                {"op": "replace", "value": {ENT: {"division": null}}}
            ]),
        );
        assert_eq!(
            got,
            json!([
                {"op": "replace", "value": {"displayName": "New", ENT: {"costCenter": "C"}}},
                {"op": "remove", "path": "title"},
                {"op": "remove", "path": "nickName"},
                {"op": "remove", "path": format!("{ENT}:department")},
                {"op": "remove", "path": format!("{ENT}:division")}
            ])
        );
    }

    #[test]
    fn empty_string_on_required_attribute_is_invalid_value() {
        for (rt, ops) in [
            (
                user_resource_type(),
                json!([{"op": "replace", "path": "userName", "value": ""}]),
            ),
            (
                user_resource_type(),
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:userName", "value": null}]),
            ),
            (
                user_resource_type(),
                json!([{"op": "replace", "value": {"userName": ""}}]),
            ),
            (
                group_resource_type(),
                json!([{"op": "replace", "path": "displayName", "value": ""}]),
            ),
        ] {
            let Value::Array(mut ops) = ops else {
                unreachable!()
            };
            let e = empty_string_clears(&mut ops, &Paths::new(rt)).unwrap_err();
            assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
            assert!(
                e.detail.contains("is required and cannot be empty"),
                "{}",
                e.detail
            );
        }
    }

    // ---- the pipeline as a whole ----------------------------------------------------------------------------

    #[test]
    fn pipeline_on_default_dialect_group_removal() {
        let ops = pipeline(
            group_resource_type(),
            entra_fixture!("group-patch-remove-members"),
        )
        .unwrap();
        assert_eq!(
            ops,
            json!([{"op": "remove", "path": "members[value eq \"f648f8d5ea4e4cd38e9c\"]"}])
        );
    }

    #[test]
    fn pipeline_on_flag_dialect_with_booleans_and_manager() {
        let ops = pipeline(user_resource_type(), body(json!([
            {"op": "Replace", "value": {"active": "False", "name.givenName": "G",
                                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-1",
                                        "title": ""}}
        ])))
        .unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "replace", "value": {"active": false}},
                {"op": "replace", "path": "name.givenName", "value": "G"},
                {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m-1"}},
                {"op": "remove", "path": "title"}
            ])
        );
    }

    /// Each rewrite on the payload captured from Entra that made it necessary (`shared/fixtures/entra/`):
    /// what the engine receives after the whole pipeline.
    #[test]
    fn captured_payloads_through_the_pipeline() {
        let p = format!("{ENT}:manager");
        let cases = [
            (
                "string_booleans",
                entra_fixture!("user-patch-disable-string-false"),
                json!([{"op": "replace", "path": "active", "value": false}]),
            ),
            (
                "string_booleans",
                entra_fixture!("user-patch-enable-string-true"),
                json!([{"op": "replace", "path": "active", "value": true}]),
            ),
            (
                "manager_shapes",
                entra_fixture!("user-patch-e-manager-array-with-ref"),
                json!([{"op": "add", "path": "manager", "value": {"$ref": "http://example.com/scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                                                              "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}}]),
            ),
            (
                "manager_shapes",
                entra_fixture!("user-patch-e-manager-urn-bare-string"),
                json!([{"op": "add", "path": p, "value": {"value": "45619541-95de-4d5e-9872-571b5d2c5577"}}]),
            ),
            (
                "manager_shapes",
                entra_fixture!("user-patch-e-manager-clear-empty-string"),
                json!([{"op": "remove", "path": p}]),
            ),
            (
                "remove_with_value_on_single_valued",
                entra_fixture!("user-patch-f-remove-with-value"),
                json!([{"op": "remove", "path": "emails[type eq \"work\"].value"}]),
            ),
            (
                "empty_string_clears",
                entra_fixture!("user-patch-h-clear-pathless"),
                json!([{"op": "remove", "path": "title"}, {"op": "remove", "path": "nickName"},
                    {"op": "remove", "path": format!("{ENT}:department")}]),
            ),
            (
                "op_case",
                entra_fixture!("user-patch-b-user-name"),
                json!([{"op": "replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]),
            ),
        ];
        for (rewrite, payload, want) in cases {
            let got = pipeline(user_resource_type(), payload.clone())
                .unwrap_or_else(|e| panic!("{rewrite}: {e}"));
            assert_eq!(got, want, "{rewrite} on {payload}");
        }
        let got = pipeline(
            group_resource_type(),
            entra_fixture!("group-patch-add-members"),
        )
        .unwrap();
        assert_eq!(
            got,
            json!([{"op": "add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}])
        );
    }

    /// Every path text of a request is parsed once, however many rewrites ask what it points at, and the
    /// final parse of the operations takes the same parse (issue 25: no path parsed twice).
    #[test]
    fn each_path_is_parsed_once() {
        let rt = user_resource_type();
        let paths = Paths::new(rt);
        let mut b = body(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@example.org"},
            {"op": "Add", "path": format!("{ENT}:manager"), "value": "m-1"},
            {"op": "Remove", "path": "title", "value": "old"},
            {"op": "Replace", "path": "active", "value": "True"},
            {"op": "Replace", "value": {"name.givenName": "Ann", "displayName": "Ann B"}}
        ]));
        patch_request(&mut b, &paths).unwrap();
        let ops: Vec<_> = b["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| super::super::ops::parse_op(op, &paths).unwrap())
            .collect();
        assert_eq!(ops.len(), 7);
        // active, the emails value path, the manager URN path, title, name.givenName: five texts.
        assert_eq!(paths.parses(), 5);
    }

    #[test]
    fn pipeline_names_are_listed_in_order() {
        let names: Vec<&str> = PIPELINE.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "op_case",
                "pathless_dotted_keys",
                "manager_shapes",
                "string_booleans",
                "remove_with_value_on_single_valued",
                "member_remove_with_value",
                "empty_string_clears"
            ]
        );
    }
}
