//! Entra's PATCH dialect rewritten into RFC 7644 form before the engine ([`crate::patch`]) sees it.
//!
//! One small, named function per quirk, each tested on the payload Entra actually sends, run in a fixed
//! order by [`patch_request`]. The quirks are catalogued in `/work/shared/reference/entra-dialect.md`
//! (cited below as "dialect §x"); the issue references come from there.
//!
//! Two of them also apply to whole resource bodies (POST/PUT): [`coerce_string_booleans`] and
//! [`manager_object`].
//!
//! Capitalised attribute names (`Manager.Value`, `Primary`, `UserName`; dialect §5 item 30) are not
//! rewritten here: the engine resolves names case-insensitively and writes canonical keys.

use crate::error::{ScimError, ScimResult};
use crate::filter;
use crate::patch::{self, Target};
use crate::schema::{AttrDef, AttrType, ResourceType, PATCH_OP};
use serde_json::{Map, Value};

/// One normaliser: rewrites the operations of a PatchOp request in place.
pub type Normaliser = fn(&mut Vec<Value>, &ResourceType) -> ScimResult<()>;

/// The normalisers, in the order [`patch_request`] runs them. The order matters: `op` values are
/// lower-cased before anything looks at them, pathless objects are split into path operations before
/// the per-path rules run, and the manager's shapes are settled before empty values become removals.
pub const PIPELINE: [(&str, Normaliser); 7] = [
    ("op_case", op_case),
    ("pathless_dotted_keys", pathless_dotted_keys),
    ("manager_shapes", manager_shapes),
    ("string_booleans", string_booleans),
    ("remove_with_value_on_single_valued", remove_with_value_on_single_valued),
    ("member_remove_with_value", member_remove_with_value),
    ("empty_string_clears", empty_string_clears),
];

/// Check the PatchOp envelope and rewrite its operations into RFC form (see [`PIPELINE`]).
/// Afterwards `body["Operations"]` is an array of objects with lower-case `op` and the member names
/// `op`, `path` (a non-empty string, or absent) and `value`. It may be empty when every operation
/// turned out to be a no-op (a member removal listing no members).
pub fn patch_request(body: &mut Value, rt: &ResourceType) -> ScimResult<()> {
    let ops = envelope(body)?;
    for (_, normalise) in PIPELINE {
        normalise(ops, rt)?;
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
    let key = ci_key(obj, "Operations").ok_or_else(|| {
        ScimError::invalid_syntax("The PATCH body has no \"Operations\": give an array of {\"op\", \"path\", \"value\"} objects")
    })?;
    let ops = obj.shift_remove(&key).unwrap_or_default();
    let Value::Array(mut ops) = ops else {
        return Err(ScimError::invalid_syntax("\"Operations\" must be an array of {\"op\", \"path\", \"value\"} objects"));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("\"Operations\" is empty: a PATCH needs at least one operation"));
    }
    for (i, op) in ops.iter_mut().enumerate() {
        canonical_op_members(i, op)?;
    }
    let slot = obj.entry("Operations").or_insert(Value::Array(ops));
    match slot {
        Value::Array(ops) => Ok(ops),
        _ => Err(ScimError::internal("PATCH operations were lost while normalising")),
    }
}

fn check_schemas(obj: &Map<String, Value>) -> ScimResult<()> {
    let Some(schemas) = ci_key(obj, "schemas").and_then(|k| obj.get(&k)) else {
        return Err(ScimError::invalid_syntax(format!(
            "The PATCH body has no \"schemas\": it must be [\"{PATCH_OP}\"]"
        )));
    };
    let has = |v: &Value| v.as_str().is_some_and(|s| s.trim().eq_ignore_ascii_case(PATCH_OP));
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
        if let Some(k) = ci_key(m, name).filter(|k| k != name) {
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
                patch::describe(other)
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
pub fn op_case(ops: &mut Vec<Value>, _rt: &ResourceType) -> ScimResult<()> {
    for (i, op) in ops.iter_mut().enumerate() {
        let Value::Object(m) = op else { continue };
        let kind = match m.get("op") {
            Some(Value::String(s)) => match patch::PatchOpKind::parse(s) {
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
                    patch::describe(other)
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
pub fn pathless_dotted_keys(ops: &mut Vec<Value>, rt: &ResourceType) -> ScimResult<()> {
    rewrite(ops, |op| {
        let kind = op_kind(&op).to_string();
        if !is_write(&kind) || path_of(&op).is_some() {
            return Ok(vec![op]);
        }
        let Some(Value::Object(obj)) = op.get("value") else { return Ok(vec![op]) };
        if !obj.iter().any(|(k, v)| is_path_key(k, v, rt)) {
            return Ok(vec![op]);
        }
        let mut out = Vec::new();
        let mut plain = Map::new();
        for (k, v) in obj {
            if is_path_key(k, v, rt) {
                if !plain.is_empty() {
                    out.push(make_op(&kind, None, Some(Value::Object(std::mem::take(&mut plain)))));
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

fn is_path_key(key: &str, value: &Value, rt: &ResourceType) -> bool {
    let parses = || filter::parse_path(key).is_ok();
    if patch::is_urn(key) {
        if rt.schema_urns().any(|u| u.eq_ignore_ascii_case(key)) {
            return false;
        }
        let under_known = rt.schema_urns().any(|u| {
            key.get(..u.len()).is_some_and(|p| p.eq_ignore_ascii_case(u)) && key.get(u.len()..).is_some_and(|r| r.starts_with(':'))
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
pub fn manager_shapes(ops: &mut Vec<Value>, rt: &ResourceType) -> ScimResult<()> {
    rewrite(ops, |mut op| {
        if !is_write(op_kind(&op)) {
            return Ok(vec![op]);
        }
        let Some(path) = path_of(&op).map(str::to_string) else {
            let mut out = Vec::new();
            if let Some(Value::Object(obj)) = op.get_mut("value") {
                out = pathless_references(obj, rt);
            }
            out.insert(0, op);
            return Ok(out);
        };
        let Some(Target::Attr(t)) = target(&path, rt) else { return Ok(vec![op]) };
        let Some(def) = t.def.filter(|d| is_reference(d) && t.is_whole()) else { return Ok(vec![op]) };
        let Some(value) = op.get_mut("value") else { return Ok(vec![op]) };
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
        let Some(target) = obj.get(&key).map(|v| patch::resolve_key(&key, v, rt)) else { continue };
        match target {
            Target::Attr(t) => {
                let Some(def) = t.def.filter(|d| is_reference(d)) else { continue };
                if obj.get_mut(&key).is_some_and(|v| apply_shape(def, v)) {
                    obj.shift_remove(&key);
                    removes.push(make_op("remove", Some(key.clone()), None));
                }
            }
            Target::Extension { key: urn, schema: Some(schema) } => {
                if let Some(Value::Object(inner)) = obj.get_mut(&key) {
                    for name in references_in(inner, &schema.attributes) {
                        removes.push(make_op("remove", Some(format!("{urn}:{name}")), None));
                    }
                }
            }
            _ => {}
        }
    }
    removes
}

/// Normalise the references among `attrs`' keys in place; returns the names of the emptied ones
/// (removed from `attrs`).
fn references_in(attrs: &mut Map<String, Value>, defs: &[AttrDef]) -> Vec<String> {
    let mut cleared = Vec::new();
    let keys: Vec<String> = attrs.keys().cloned().collect();
    for key in keys {
        let Some(def) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(&key) && is_reference(d)) else { continue };
        if attrs.get_mut(&key).is_some_and(|v| apply_shape(def, v)) {
            attrs.shift_remove(&key);
            cleared.push(def.name.clone());
        }
    }
    cleared
}

/// Rewrite `value` to the object shape; true when it is empty (the reference is to be removed).
fn apply_shape(def: &AttrDef, value: &mut Value) -> bool {
    match reference_shape(def, value) {
        RefShape::Clear => true,
        RefShape::Set(v) => {
            *value = v;
            false
        }
        RefShape::Keep => false,
    }
}

/// Whole-resource form of [`manager_shapes`] for POST/PUT bodies: a manager given as a string, an
/// `{"Value": …}` object or a one-element array becomes `{"value": id}`; an empty one is dropped (and an
/// extension object left empty with it). Shapes it cannot read (several managers) are left for the
/// type check to reject.
pub fn manager_object(resource: &mut Map<String, Value>, rt: &ResourceType) {
    references_in(resource, &rt.core.attributes);
    for (schema, _) in &rt.extensions {
        let Some(key) = ci_key(resource, &schema.id) else { continue };
        let Some(Value::Object(inner)) = resource.get_mut(&key) else { continue };
        references_in(inner, &schema.attributes);
        if inner.is_empty() {
            resource.shift_remove(&key);
        }
    }
}

/// A single-valued complex attribute with a `value` sub-attribute: a reference such as `manager`.
fn is_reference(d: &AttrDef) -> bool {
    d.is_complex() && !d.multi_valued && d.sub("value").is_some()
}

enum RefShape {
    /// Empty: remove the reference.
    Clear,
    /// The object form.
    Set(Value),
    /// Not a shape we can read; leave it for validation.
    Keep,
}

fn reference_shape(def: &AttrDef, value: &Value) -> RefShape {
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
                .map(|(k, v)| (def.sub(k).map_or_else(|| k.clone(), |d| d.name.clone()), v.clone()))
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

// ---------------------------------------------------------------------------------------------------
// 4. string_booleans
// ---------------------------------------------------------------------------------------------------

/// Quirk: Entra sends booleans as strings — `"active": "False"` by default, also `"True"`, `"false"`
/// (dialect §1.5, §5 item 1; AzureAD/SCIMReferenceCode#21 "our service sends it as a string today";
/// scimmyjs/scimmy#51, #86; Captain-P-Goldfish/scim-for-keycloak#119; bytebase/bytebase PR #19073), and
/// `"primary": "True"` inside values. Where the schema says the target (or a sub-attribute of an object
/// value, e.g. `primary`) is boolean, `"true"`/`"false"` in any case become JSON booleans.
pub fn string_booleans(ops: &mut Vec<Value>, rt: &ResourceType) -> ScimResult<()> {
    for op in ops.iter_mut() {
        if !is_write(op_kind(op)) {
            continue;
        }
        let target = match path_of(op) {
            None => Some(Target::Core),
            Some(p) => target(p, rt),
        };
        let (Some(target), Some(value)) = (target, op.get_mut("value")) else { continue };
        match target {
            Target::Core => {
                if let Value::Object(m) = value {
                    coerce_string_booleans(m, rt);
                }
            }
            Target::Extension { schema: Some(s), .. } => {
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

/// Whole-resource form of [`string_booleans`] for POST/PUT bodies (Microsoft's Postman collection posts
/// `"active": "True"`, dialect §5 item 1): recurses into complex, multi-valued and extension attributes.
pub fn coerce_string_booleans(resource: &mut Map<String, Value>, rt: &ResourceType) {
    for (key, value) in resource.iter_mut() {
        if let Some(def) = rt.core.attr(key) {
            coerce_value(def, value);
        } else if let (Some(ext), Value::Object(m)) = (rt.extension(key), value) {
            coerce_attrs(m, &ext.attributes);
        }
    }
}

fn coerce_attrs(attrs: &mut Map<String, Value>, defs: &[AttrDef]) {
    for (key, value) in attrs.iter_mut() {
        if let Some(def) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(key)) {
            coerce_value(def, value);
        }
    }
}

/// A value of attribute `def`: an array of values when multi-valued, else one value.
fn coerce_value(def: &AttrDef, value: &mut Value) {
    match value {
        Value::Array(items) if def.multi_valued => items.iter_mut().for_each(|v| coerce_single(def, v)),
        other => coerce_single(def, other),
    }
}

/// One value (or one element) of attribute `def`.
fn coerce_single(def: &AttrDef, value: &mut Value) {
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
// 5. remove_with_value_on_single_valued
// ---------------------------------------------------------------------------------------------------

/// Quirk: Entra sends `remove` with a `value` on single-valued targets, e.g.
/// `{"op":"Remove","path":"emails[type eq \"work\"].value","value":"updated@example.org"}` (dialect §1.4 (f),
/// §5 item 9; AzureAD/SCIMReferenceCode PR #87). Choice: the value is dropped and the target removed,
/// whatever its current value. (The reference code clears only when the value matches; but Entra sends
/// this only after the source attribute was cleared, and a comparison that fails on case or formatting
/// would leave stale data that Entra then never clears.) A `value` stays only where it selects elements:
/// a whole multi-valued (or unknown) attribute without filter.
pub fn remove_with_value_on_single_valued(ops: &mut Vec<Value>, rt: &ResourceType) -> ScimResult<()> {
    for op in ops.iter_mut() {
        if op_kind(op) != "remove" || op.get("value").is_none() {
            continue;
        }
        let keep = match path_of(op).and_then(|p| target(p, rt)) {
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
pub fn member_remove_with_value(ops: &mut Vec<Value>, rt: &ResourceType) -> ScimResult<()> {
    rewrite(ops, |op| {
        if op_kind(&op) != "remove" {
            return Ok(vec![op]);
        }
        let Some(path) = path_of(&op).map(|p| p.trim().to_string()) else { return Ok(vec![op]) };
        let Some(Target::Attr(t)) = target(&path, rt) else { return Ok(vec![op]) };
        let listable = t.is_whole() && t.def.is_some_and(|d| d.multi_valued && d.is_complex() && d.sub("value").is_some());
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
                    out.push(make_op("remove", Some(format!("{path}[value eq {literal}]")), None));
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
        Value::Object(m) => {
            let key = ci_key(m, "value")?;
            m.get(&key).filter(|v| v.is_string() || v.is_number()).cloned()
        }
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
pub fn empty_string_clears(ops: &mut Vec<Value>, rt: &ResourceType) -> ScimResult<()> {
    rewrite(ops, |mut op| {
        if !is_write(op_kind(&op)) {
            return Ok(vec![op]);
        }
        let Some(path) = path_of(&op).map(str::to_string) else {
            let mut out = Vec::new();
            if let Some(Value::Object(obj)) = op.get_mut("value") {
                out = pathless_clears(obj, rt)?;
            }
            out.insert(0, op);
            return Ok(out);
        };
        if !op.get("value").is_some_and(is_empty) {
            return Ok(vec![op]);
        }
        match target(&path, rt) {
            Some(Target::Attr(t)) if t.required() => Err(required_error(&t.label, rt)),
            Some(Target::Attr(_)) | Some(Target::Extension { .. }) => Ok(vec![make_op("remove", Some(path), None)]),
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
        let empty = is_empty(value);
        match patch::resolve_key(&key, value, rt) {
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
                let Some(Value::Object(inner)) = obj.get_mut(&key) else { continue };
                let names: Vec<String> = inner.iter().filter(|(_, v)| is_empty(v)).map(|(k, _)| k.clone()).collect();
                for name in names {
                    inner.shift_remove(&name);
                    if schema.and_then(|s| s.attr(&name)).is_some_and(|d| d.required) {
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

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

/// Replace each operation by the operations `f` makes of it.
fn rewrite(ops: &mut Vec<Value>, mut f: impl FnMut(Value) -> ScimResult<Vec<Value>>) -> ScimResult<()> {
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
fn target(path: &str, rt: &ResourceType) -> Option<Target> {
    let parsed = patch::parse_patch_path(path, rt).ok()?;
    patch::resolve(&parsed, rt).ok()
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

/// The key of `m` equal to `name` ignoring case (the exact key first).
fn ci_key(m: &Map<String, Value>, name: &str) -> Option<String> {
    if m.contains_key(name) {
        return Some(name.to_string());
    }
    m.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}
