//! The engine: runs RFC-form operations ([`PatchOp`]) in order on a copy of a resource and writes the copy
//! back only when every operation succeeded, so a request changes all or nothing. The rules it follows
//! are listed in the `patch` module's documentation.
//!
//! Imports `patch::{ops, target}` and `crate::{error, filter, schema, value}`.

use super::ops::{PatchOp, PatchOpKind};
use super::target::{label, resolve, resolve_key, AttrTarget, SubTarget, Target};
use crate::error::{ScimError, ScimResult};
use crate::filter::{AttrInfo, CompValue, CompareOp, Filter};
use crate::schema::{AttrDef, Mutability, ResourceType, Schema};
use crate::value::{describe, drop_nulls, entry_ci, is_unassigned};
use serde_json::{Map, Value};

/// Apply `ops` in order. All or nothing: on the first failing operation the resource is left unchanged.
pub fn apply(
    resource: &mut Map<String, Value>,
    ops: &[PatchOp],
    rt: &ResourceType,
) -> ScimResult<()> {
    let mut work = resource.clone();
    for op in ops {
        apply_one(&mut work, op, rt)?;
    }
    *resource = work;
    Ok(())
}

fn apply_one(res: &mut Map<String, Value>, op: &PatchOp, rt: &ResourceType) -> ScimResult<()> {
    match (op.op, &op.path) {
        (PatchOpKind::Remove, None) => Err(ScimError::no_target(
            "remove needs a path naming what to remove, e.g. \"title\" or \"members[value eq \\\"<id>\\\"]\"",
        )),
        (PatchOpKind::Remove, Some(path)) => remove_target(res, &resolve(path, rt)?, op.value.as_ref(), rt),
        (kind, path) => {
            let value = op.value.clone().ok_or_else(|| {
                let at = path.as_ref().map(|p| format!(" (path \"{}\")", label(p))).unwrap_or_default();
                ScimError::invalid_value(format!("The {} operation{at} has no \"value\"", kind.as_str()))
            })?;
            match path {
                None => write_pathless(res, kind, value, rt),
                Some(p) => write_target(res, kind, &resolve(p, rt)?, value, rt),
            }
        }
    }
}

/// Case-exactness for filters inside brackets: their paths are relative to an element of `name`.
struct ElementInfo<'a> {
    rt: &'a ResourceType,
    urn: Option<&'a str>,
    name: &'a str,
}

impl AttrInfo for ElementInfo<'_> {
    fn case_exact(&self, _urn: Option<&str>, name: &str, _sub: Option<&str>) -> bool {
        self.rt.case_exact(self.urn, self.name, Some(name))
    }
}

// ---------------------------------------------------------------------------------------------------
// add / replace
// ---------------------------------------------------------------------------------------------------

fn write_target(
    res: &mut Map<String, Value>,
    kind: PatchOpKind,
    target: &Target,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    match target {
        Target::Ignored => Ok(()),
        Target::Core => write_pathless(res, kind, value, rt),
        Target::Extension { key, schema } => write_extension(res, kind, key, *schema, value, rt),
        Target::Attr(t) => write_attr(res, kind, t, value, rt),
    }
}

/// `add`/`replace` without a path: every key of the object value is an attribute (RFC 7644 §3.5.2.1).
fn write_pathless(
    res: &mut Map<String, Value>,
    kind: PatchOpKind,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    let Value::Object(obj) = value else {
        return Err(ScimError::invalid_value(format!(
            "An {} without \"path\" needs an object value whose keys are attribute names, such as \
             {{\"displayName\": \"…\"}}; the request gave {}",
            kind.as_str(),
            describe(&value)
        )));
    };
    for (key, v) in obj {
        match resolve_key(&key, &v, rt) {
            // RFC 7643 §2.2: read-only values in a request are ignored (clients echo id/meta).
            Target::Attr(t) if t.read_only => {}
            target => write_target(res, kind, &target, v, rt)?,
        }
    }
    Ok(())
}

/// `add`/`replace` of a whole extension object: each of its attributes in turn.
fn write_extension(
    res: &mut Map<String, Value>,
    kind: PatchOpKind,
    key: &str,
    schema: Option<&'static Schema>,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    let Value::Object(obj) = value else {
        return Err(ScimError::invalid_value(format!(
            "'{key}' must be an object holding the extension's attributes; the request gave {}",
            describe(&value)
        )));
    };
    for (name, v) in obj {
        let def = schema.and_then(|s| s.attr(&name));
        let t = AttrTarget::new(
            Some(key.to_string()),
            def.map_or(name, |d| d.name.clone()),
            def,
        );
        if !t.read_only {
            write_attr(res, kind, &t, v, rt)?;
        }
    }
    Ok(())
}

fn write_attr(
    res: &mut Map<String, Value>,
    kind: PatchOpKind,
    t: &AttrTarget,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    if t.write_only() {
        return Ok(());
    }
    if t.read_only {
        return Err(read_only_error(t));
    }
    let value = drop_nulls(value);
    let c = ensure_container(res, t.ext.as_deref())?;
    let key = key_in(c, &t.name);
    match (&t.filter, &t.sub) {
        (None, None) => write_whole(c, &key, kind, t, value)?,
        (None, Some(s)) => write_sub_everywhere(c, &key, t, s, value)?,
        (Some(f), _) => write_filtered(c, &key, t, f, value, rt)?,
    }
    tidy(res, t.ext.as_deref(), &key);
    Ok(())
}

/// The whole attribute: append to / replace a multi-valued one, merge a complex one, set a simple one.
fn write_whole(
    c: &mut Map<String, Value>,
    key: &str,
    kind: PatchOpKind,
    t: &AttrTarget,
    value: Value,
) -> ScimResult<()> {
    if value.is_null() {
        c.shift_remove(key);
        return Ok(());
    }
    match t.def {
        Some(d) if d.multi_valued => {
            let items: Vec<Value> = into_items(value)
                .into_iter()
                .map(|v| canonical_element(d, v))
                .collect();
            let slot = c.entry(key).or_insert(Value::Null);
            let mut list = match (kind, std::mem::take(slot)) {
                (PatchOpKind::Add, Value::Array(cur)) => cur,
                (PatchOpKind::Add, Value::Null)
                | (PatchOpKind::Replace, _)
                | (PatchOpKind::Remove, _) => Vec::new(),
                (PatchOpKind::Add, other) => vec![other],
            };
            let written: Vec<usize> = items
                .into_iter()
                .map(|it| add_element(d, &mut list, it))
                .collect();
            reset_other_primaries(&mut list, &written);
            *slot = Value::Array(list);
        }
        Some(d) if d.is_complex() => {
            let Value::Object(m) = value else {
                return Err(ScimError::invalid_value(format!(
                    "'{}' is a complex attribute: its value must be an object of sub-attributes; the request gave {}",
                    t.label,
                    describe(&value)
                )));
            };
            merge_complex(c, key, d, canonical_members(d, m));
        }
        Some(_) => {
            c.insert(key.to_string(), value);
        }
        None => match (kind, c.get_mut(key), value) {
            (PatchOpKind::Add, Some(Value::Array(cur)), Value::Array(items)) => {
                for it in items {
                    if !cur.contains(&it) {
                        cur.push(it);
                    }
                }
            }
            (PatchOpKind::Add, Some(Value::Object(cur)), Value::Object(m)) => cur.extend(m),
            (_, _, v) => {
                c.insert(key.to_string(), v);
            }
        },
    }
    Ok(())
}

/// Merge sub-attributes into a single-valued complex attribute; a reference given a new `value`
/// (a different manager) is replaced as a whole.
fn merge_complex(c: &mut Map<String, Value>, key: &str, d: &AttrDef, m: Map<String, Value>) {
    let slot = c.entry(key).or_insert(Value::Null);
    match slot {
        Value::Object(cur) if !new_reference(Some(d), cur, m.get("value")) => cur.extend(m),
        _ => *slot = Value::Object(m),
    }
}

/// `d` is a single-valued reference (has a `value` sub-attribute) and `value` differs from the current one.
fn new_reference(d: Option<&AttrDef>, cur: &Map<String, Value>, value: Option<&Value>) -> bool {
    let Some(d) = d else { return false };
    !d.multi_valued
        && d.sub("value").is_some()
        && value.is_some_and(|v| cur.get("value") != Some(v))
}

/// A sub-attribute without filter: `name.givenName`; on a multi-valued attribute every element gets it.
fn write_sub_everywhere(
    c: &mut Map<String, Value>,
    key: &str,
    t: &AttrTarget,
    s: &SubTarget,
    value: Value,
) -> ScimResult<()> {
    let multi = t.def.is_some_and(|d| d.multi_valued);
    let slot = c.entry(key).or_insert(Value::Null);
    match *slot {
        Value::Array(ref mut items) => {
            if items.is_empty() {
                items.push(Value::Object(Map::new()));
            }
            for item in items.iter_mut() {
                if let Value::Object(m) = item {
                    set_sub(m, t.def, s, value.clone());
                }
            }
        }
        Value::Object(ref mut m) => set_sub(m, t.def, s, value),
        Value::Null => {
            let mut m = Map::new();
            set_sub(&mut m, t.def, s, value);
            *slot = if multi { Value::Array(vec![Value::Object(m)]) } else { Value::Object(m) };
        }
        _ => {
            return Err(ScimError::invalid_path(format!(
                "The PATCH path \"{}\" is not valid: '{key}' holds a simple value, so it has no sub-attribute '{}'",
                t.label, s.name
            )))
        }
    }
    Ok(())
}

fn set_sub(m: &mut Map<String, Value>, def: Option<&AttrDef>, s: &SubTarget, value: Value) {
    let key = key_in(m, &s.name);
    if value.is_null() {
        m.shift_remove(&key);
        return;
    }
    if s.name == "value" && new_reference(def, m, Some(&value)) {
        m.clear();
    }
    m.insert(key, value);
}

/// Through a value filter: every matching element gets the value (merged object or `sub_after_filter`);
/// when nothing matches, a new element is built from the filter's `eq` comparisons (§5 item 7).
fn write_filtered(
    c: &mut Map<String, Value>,
    key: &str,
    t: &AttrTarget,
    f: &Filter,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    let info = ElementInfo {
        rt,
        urn: t.ext.as_deref(),
        name: &t.name,
    };
    let multi = t.def.is_none_or(|d| d.multi_valued);
    let slot = c.entry(key).or_insert(Value::Null);
    match *slot {
        Value::Array(ref mut items) => {
            let mut hits: Vec<usize> = items.iter().enumerate().filter(|(_, e)| f.matches(e, &info)).map(|(i, _)| i).collect();
            if hits.is_empty() {
                items.push(seed_element(t, f)?);
                hits.push(items.len() - 1);
            }
            for &i in &hits {
                if let Some(el) = items.get_mut(i) {
                    write_element(el, t, &value)?;
                }
            }
            reset_other_primaries(items, &hits);
        }
        Value::Object(_) => {
            if !f.matches(slot, &info) {
                *slot = seed_element(t, f)?;
            }
            write_element(slot, t, &value)?;
        }
        Value::Null => {
            let mut el = seed_element(t, f)?;
            write_element(&mut el, t, &value)?;
            *slot = if multi { Value::Array(vec![el]) } else { el };
        }
        _ => {
            return Err(ScimError::invalid_path(format!(
                "The PATCH path \"{}\" is not valid: '{key}' holds a single simple value, so a [filter] cannot select from it",
                t.label
            )))
        }
    }
    Ok(())
}

fn write_element(el: &mut Value, t: &AttrTarget, value: &Value) -> ScimResult<()> {
    let Value::Object(m) = el else { return Ok(()) };
    match (&t.sub, value) {
        (Some(s), v) => set_sub(m, t.def, s, v.clone()),
        (None, Value::Object(v)) => {
            let v = match t.def {
                Some(d) => canonical_members(d, v.clone()),
                None => v.clone(),
            };
            m.extend(v);
        }
        (None, other) => {
            return Err(ScimError::invalid_value(format!(
            "The PATCH path \"{}\" selects whole values, so its value must be an object such as \
                 {{\"value\": \"…\"}}; the request gave {}",
            t.label,
            describe(other)
        )))
        }
    }
    Ok(())
}

/// A new element from `type eq "work"` (or `type eq "work" and primary eq true`).
fn seed_element(t: &AttrTarget, f: &Filter) -> ScimResult<Value> {
    let pairs = eq_pairs(f).ok_or_else(|| {
        ScimError::no_target(format!(
            "No value of '{}' matches the filter in \"{}\", and the filter is not an `eq` comparison \
             (or an `and` of them) from which a new value could be made",
            t.name, t.label
        ))
    })?;
    let mut m = Map::new();
    for (k, v) in pairs {
        let name = t.def.and_then(|d| d.sub(&k)).map_or(k, |d| d.name.clone());
        m.insert(name, v);
    }
    Ok(Value::Object(m))
}

fn eq_pairs(f: &Filter) -> Option<Vec<(String, Value)>> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub.is_none() => {
            let v = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Null => return None,
            };
            Some(vec![(path.name.clone(), v)])
        }
        Filter::And(a, b) => {
            let mut pairs = eq_pairs(a)?;
            pairs.extend(eq_pairs(b)?);
            Some(pairs)
        }
        _ => None,
    }
}

/// Add one element to a multi-valued attribute unless already present; returns its index.
fn add_element(d: &AttrDef, list: &mut Vec<Value>, item: Value) -> usize {
    if let Some(i) = list.iter().position(|e| *e == item) {
        return i;
    }
    if is_reference_list(d) {
        if let Some(i) = list.iter().position(|e| same_value(e, &item)) {
            if let (Some(Value::Object(cur)), Value::Object(m)) = (list.get_mut(i), item) {
                cur.extend(m);
            }
            return i;
        }
    }
    list.push(item);
    list.len() - 1
}

/// Multi-valued references (`members`, `groups`): `value` identifies an element.
fn is_reference_list(d: &AttrDef) -> bool {
    d.multi_valued && d.sub("value").is_some() && d.sub("$ref").is_some()
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// RFC 7644 §3.5.2: setting `primary: true` on a value sets it false on the others.
/// When several written values claim `primary`, the last one keeps it.
fn reset_other_primaries(list: &mut [Value], written: &[usize]) {
    let is_primary = |v: &Value| match v.get("primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let Some(&winner) = written
        .iter()
        .rev()
        .find(|&&i| list.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, el) in list.iter_mut().enumerate() {
        if i != winner && is_primary(el) {
            if let Value::Object(m) = el {
                m.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// remove
// ---------------------------------------------------------------------------------------------------

fn remove_target(
    res: &mut Map<String, Value>,
    target: &Target,
    value: Option<&Value>,
    rt: &ResourceType,
) -> ScimResult<()> {
    match target {
        Target::Ignored => Ok(()),
        Target::Core => Err(ScimError::invalid_path(
            "remove cannot target the core schema as a whole: name the attribute to remove",
        )),
        Target::Extension { key, .. } => {
            let key = key_in(res, key);
            res.shift_remove(&key);
            Ok(())
        }
        Target::Attr(t) => remove_attr(res, t, value, rt),
    }
}

/// Remove an attribute, a sub-attribute, or the elements a filter selects. Absent targets are a no-op.
fn remove_attr(
    res: &mut Map<String, Value>,
    t: &AttrTarget,
    value: Option<&Value>,
    rt: &ResourceType,
) -> ScimResult<()> {
    if t.write_only() {
        return Ok(());
    }
    if t.read_only {
        return Err(read_only_error(t));
    }
    let info = ElementInfo {
        rt,
        urn: t.ext.as_deref(),
        name: &t.name,
    };
    let Some(c) = existing_container(res, t.ext.as_deref()) else {
        return Ok(());
    };
    let key = key_in(c, &t.name);
    let Some(slot) = c.get_mut(&key) else {
        return Ok(());
    };
    match (&t.filter, &t.sub) {
        (None, None) => match (value, &mut *slot) {
            (Some(listed), Value::Array(items)) => remove_listed(t.def, items, listed),
            _ => *slot = Value::Null,
        },
        (None, Some(s)) => remove_sub(slot, s),
        (Some(f), sub) => remove_filtered(slot, f, sub.as_ref(), &info),
    }
    tidy(res, t.ext.as_deref(), &key);
    Ok(())
}

/// `remove` with a value on a multi-valued attribute: drop the listed elements.
fn remove_listed(def: Option<&AttrDef>, items: &mut Vec<Value>, listed: &Value) {
    let listed: Vec<Value> = into_items(drop_nulls(listed.clone()))
        .into_iter()
        .map(|v| match def {
            Some(d) => canonical_element(d, v),
            None => v,
        })
        .collect();
    let by_value = def.is_some_and(|d| d.sub("value").is_some());
    items.retain(|e| {
        !listed
            .iter()
            .any(|l| e == l || (by_value && same_value(e, l)))
    });
}

fn remove_sub(slot: &mut Value, s: &SubTarget) {
    match slot {
        Value::Object(m) => {
            let key = key_in(m, &s.name);
            m.shift_remove(&key);
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(m) = item {
                    let key = key_in(m, &s.name);
                    m.shift_remove(&key);
                }
            }
            items.retain(|e| !is_unassigned(e));
        }
        _ => {}
    }
}

fn remove_filtered(slot: &mut Value, f: &Filter, sub: Option<&SubTarget>, info: &ElementInfo) {
    match *slot {
        Value::Array(ref mut items) => {
            match sub {
                None => items.retain(|e| !f.matches(e, info)),
                Some(s) => {
                    for item in items.iter_mut() {
                        if f.matches(item, info) {
                            remove_sub(item, s);
                        }
                    }
                }
            }
            items.retain(|e| !is_unassigned(e));
        }
        Value::Object(_) if f.matches(slot, info) => match sub {
            None => *slot = Value::Null,
            Some(s) => remove_sub(slot, s),
        },
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

fn read_only_error(t: &AttrTarget) -> ScimError {
    ScimError::mutability(format!(
        "'{}' is read-only and cannot be changed with PATCH",
        t.label
    ))
}

/// The map holding the attribute, created for extensions when missing.
fn ensure_container<'m>(
    res: &'m mut Map<String, Value>,
    ext: Option<&str>,
) -> ScimResult<&'m mut Map<String, Value>> {
    let Some(ext) = ext else { return Ok(res) };
    let key = key_in(res, ext);
    let slot = res.entry(key.clone()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => Ok(m),
        other => Err(ScimError::invalid_value(format!(
            "'{key}' holds {} rather than an object of extension attributes",
            describe(other)
        ))),
    }
}

fn existing_container<'m>(
    res: &'m mut Map<String, Value>,
    ext: Option<&str>,
) -> Option<&'m mut Map<String, Value>> {
    let Some(ext) = ext else { return Some(res) };
    let key = key_in(res, ext);
    match res.get_mut(&key) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Drop the attribute if it was left unassigned, and the extension object if it was left empty.
fn tidy(res: &mut Map<String, Value>, ext: Option<&str>, key: &str) {
    if let Some(c) = existing_container(res, ext) {
        if c.get(key).is_some_and(is_unassigned) {
            c.shift_remove(key);
        }
    }
    if let Some(ext) = ext {
        let ext = key_in(res, ext);
        if res.get(&ext).is_some_and(is_unassigned) {
            res.shift_remove(&ext);
        }
    }
}

/// The key of `name` in `m` ([`entry_ci`]), or `name` itself when `m` has none.
fn key_in(m: &Map<String, Value>, name: &str) -> String {
    entry_ci(m, name).map_or_else(|| name.to_string(), |(k, _)| k.clone())
}

fn into_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn canonical_element(d: &AttrDef, v: Value) -> Value {
    match v {
        Value::Object(m) if d.is_complex() => Value::Object(canonical_members(d, m)),
        other => other,
    }
}

/// Sub-attribute keys renamed to the schema's names; read-only sub-attributes dropped.
fn canonical_members(d: &AttrDef, m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter_map(|(k, v)| match d.sub(&k) {
            Some(s) if s.mutability == Mutability::ReadOnly => None,
            Some(s) => Some((s.name.clone(), v)),
            None => Some((k, v)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::patch::parse_ops;
    use crate::schema::{group_resource_type, user_resource_type};
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "userName": "Test_User_ab6490ee@contoso.com",
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "active": true,
            "displayName": "Test User",
            "name": {"givenName": "Test", "familyName": "User", "formatted": "Test User"},
            "emails": [{"value": "test.user@contoso.com", "type": "work", "primary": true}],
            "title": "Engineer",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
                "employeeNumber": "1001",
                "manager": {"value": "mgr-1"}
            }
        })
    }

    fn group() -> Value {
        json!({
            "displayName": "displayName",
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "members": [{"value": "u1"}, {"value": "f648f8d5ea4e4cd38e9c"}, {"value": "u3"}]
        })
    }

    fn envelope(ops: Value) -> Value {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    }

    fn run_on(rt: &ResourceType, resource: Value, body: &Value) -> ScimResult<Value> {
        let Value::Object(mut m) = resource else {
            panic!("fixture must be an object")
        };
        let ops = parse_ops(body, rt)?;
        apply(&mut m, &ops, rt)?;
        Ok(Value::Object(m))
    }

    /// PATCH the realistic user with a full request body.
    fn patch_user_body(body: Value) -> Value {
        run_on(user_resource_type(), user(), &body).unwrap_or_else(|e| panic!("PATCH failed: {e}"))
    }

    /// PATCH the realistic user with these operations.
    fn patch_user(ops: Value) -> Value {
        patch_user_body(envelope(ops))
    }

    fn patch_group(ops: Value) -> Value {
        run_on(group_resource_type(), group(), &envelope(ops))
            .unwrap_or_else(|e| panic!("PATCH failed: {e}"))
    }

    fn user_err(ops: Value) -> ScimError {
        match run_on(user_resource_type(), user(), &envelope(ops)) {
            Ok(v) => panic!("expected an error, got {v}"),
            Err(e) => e,
        }
    }

    /// The realistic user with `f` applied: expected results are written as edits of the fixture.
    fn user_with(f: impl FnOnce(&mut Value)) -> Value {
        let mut u = user();
        f(&mut u);
        u
    }

    fn ent(v: &mut Value) -> &mut Map<String, Value> {
        v.get_mut(ENT)
            .and_then(Value::as_object_mut)
            .expect("fixture has the enterprise extension")
    }

    // ---- dialect §1.4 (a): multi-valued + sub-attribute replace -------------------------------------

    #[test]
    fn s1_4a_replace_work_email_and_family_name() {
        let got = patch_user_body(entra_fixture!("user-patch-a-multi-valued-replace"));
        let want = user_with(|u| {
            u["emails"][0]["value"] = json!("updatedEmail@microsoft.com");
            u["name"]["familyName"] = json!("updatedFamilyName");
        });
        assert_eq!(got, want);
    }

    // ---- §1.4 (b): single-valued replace ---------------------------------------------------------------

    #[test]
    fn s1_4b_replace_user_name() {
        let got = patch_user_body(entra_fixture!("user-patch-b-user-name"));
        assert_eq!(
            got,
            user_with(
                |u| u["userName"] = json!("5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com")
            )
        );
    }

    // ---- §1.4 (c): replace multiple attributes, both dialects ----------------------------------------

    #[test]
    fn s1_4c_default_dialect_replace_multiple() {
        let got = patch_user_body(entra_fixture!("user-patch-c-default-dialect-multi"));
        let want = user_with(|u| {
            u["displayName"] = json!("Pvlo");
            u["emails"][0]["value"] = json!("TestBcwqnm@test.microsoft.com");
            u["name"]["givenName"] = json!("Gtfd");
            u["name"]["familyName"] = json!("Pkqf");
            u["externalId"] = json!("Eqpj");
            u[ENT]["employeeNumber"] = json!("Eqpj");
        });
        assert_eq!(got, want);
    }

    #[test]
    fn s1_4c_flag_dialect_pathless_with_dotted_and_urn_keys() {
        let got = patch_user_body(entra_fixture!("user-patch-c-flag-dialect-pathless"));
        let want = user_with(|u| {
            u["emails"][0]["value"] = json!("TestMhvaes@test.microsoft.com");
            u["displayName"] = json!("Bjfe");
            u["name"]["givenName"] = json!("Kkom");
            u["name"]["familyName"] = json!("Unua");
            u[ENT]["employeeNumber"] = json!("Aklq");
        });
        assert_eq!(got, want);
    }

    #[test]
    fn s1_4c_pathless_add_with_dotted_keys() {
        // pond/scimitar#123; thomaspoignant/scim-patch#132
        let got = patch_user_body(entra_fixture!("user-patch-c-pathless-add-dotted-keys"));
        let want = user_with(|u| {
            u["displayName"] = json!("Foo Bar");
            u["title"] = json!("Bar Foo");
            u["name"] = json!({"givenName": "Foo", "familyName": "Bar", "formatted": "Foo Bar"});
        });
        assert_eq!(got, want);
        assert!(
            got.get("name.givenName").is_none(),
            "no literal dotted keys are stored"
        );
    }

    // ---- §1.4 (d): add a single-value attribute; mixed ops; creating a missing work email -----------

    #[test]
    fn s1_4d_add_nick_name_both_dialects() {
        for op in ["Add", "add"] {
            let got = patch_user(json!([{"op": op, "path": "nickName", "value": "Babs"}]));
            assert_eq!(got, user_with(|u| u["nickName"] = json!("Babs")));
        }
    }

    #[test]
    fn s1_4d_mixed_ops_create_work_address_and_department() {
        // limosa-io/laravel-scim-server#34 (the user has no addresses)
        let got = patch_user_body(entra_fixture!("user-patch-d-mixed-ops"));
        let want = user_with(|u| {
            u["emails"][0]["value"] = json!("AdeleV2@REDACTED.onmicrosoft.com");
            u["addresses"] = json!([{"type": "work", "formatted": "18/2111"}]);
            u[ENT]["department"] = json!("Retail");
        });
        assert_eq!(got, want);
    }

    #[test]
    fn s1_4d_add_on_value_path_creates_the_missing_element() {
        // §5 item 7: wireapp/wire-server PR #5419; Captain-P-Goldfish/SCIM-SDK#416
        let mut u = user();
        u.as_object_mut().unwrap().shift_remove("emails");
        let body = envelope(json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
            {"op": "Add", "path": "addresses[type eq \"work\"].country", "value": "NZ"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\" and primary eq true].value", "value": "+64 21 000"}
        ]));
        let got = run_on(user_resource_type(), u.clone(), &body).unwrap();
        let mut want = u;
        want["emails"] = json!([{"type": "work", "value": "new@contoso.com"}]);
        want["addresses"] = json!([{"type": "work", "country": "NZ"}]);
        want["phoneNumbers"] = json!([{"type": "mobile", "primary": true, "value": "+64 21 000"}]);
        assert_eq!(got, want);
    }

    #[test]
    fn add_on_value_path_with_other_types_present_appends() {
        let got = patch_user(json!([
            {"op": "Add", "path": "emails[type eq \"other\"].value", "value": "private@example.org"}
        ]));
        let want = user_with(|u| {
            u["emails"] = json!([
                {"value": "test.user@contoso.com", "type": "work", "primary": true},
                {"type": "other", "value": "private@example.org"}
            ])
        });
        assert_eq!(got, want);
    }

    #[test]
    fn unmatched_filter_that_is_not_eq_is_no_target() {
        let e = user_err(
            json!([{"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "home"}]),
        );
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::NoTarget)));
    }

    // ---- §1.4 (e): manager, four shapes -----------------------------------------------------------------

    #[test]
    fn s1_4e_manager_doc_array_shape_with_ref() {
        let got = patch_user_body(entra_fixture!("user-patch-e-manager-array-with-ref"));
        let want = user_with(|u| {
            ent(u).insert(
                "manager".into(),
                json!({"$ref": "http://example.com/scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}),
            );
        });
        assert_eq!(got, want);
    }

    #[test]
    fn s1_4e_manager_urn_path_bare_string() {
        // imulab/go-scim#75
        let got = patch_user_body(entra_fixture!("user-patch-e-manager-urn-bare-string"));
        assert_eq!(
            got,
            user_with(
                |u| u[ENT]["manager"] = json!({"value": "45619541-95de-4d5e-9872-571b5d2c5577"})
            )
        );
    }

    #[test]
    fn s1_4e_manager_onboarding_set_change_remove() {
        // [LA] SCIM_Update_Manager_Test
        let path = format!("{ENT}:manager");
        let mut u = user();
        ent(&mut u).shift_remove("manager");
        let rt = user_resource_type();
        let set = run_on(
            rt,
            u.clone(),
            &envelope(json!([{"op": "Add", "path": path, "value": "id-1"}])),
        )
        .unwrap();
        assert_eq!(set[ENT]["manager"], json!({"value": "id-1"}));
        let changed = run_on(
            rt,
            set,
            &envelope(json!([{"op": "replace", "path": path, "value": "id-2"}])),
        )
        .unwrap();
        assert_eq!(changed[ENT]["manager"], json!({"value": "id-2"}));
        let removed = run_on(
            rt,
            changed,
            &envelope(json!([{"op": "replace", "path": path, "value": ""}])),
        )
        .unwrap();
        assert_eq!(removed, u);
    }

    #[test]
    fn s1_4e_manager_validator_object_shape_and_remove() {
        // scimvalidator.microsoft.com [PG #3–#5]
        let path = format!("{ENT}:manager");
        for op in ["add", "replace"] {
            let got =
                patch_user(json!([{"op": op, "path": path, "value": {"value": "AXTKDLNRKMKT"}}]));
            assert_eq!(
                got,
                user_with(|u| u[ENT]["manager"] = json!({"value": "AXTKDLNRKMKT"}))
            );
        }
        let got = patch_user(json!([{"op": "remove", "path": path}]));
        assert_eq!(
            got,
            user_with(|u| {
                ent(u).shift_remove("manager");
            })
        );
    }

    #[test]
    fn manager_capitalised_value_key_and_path() {
        // [PM] "Manager": {"Value": …}; §5 item 30 `Manager.Value`
        let got = patch_user(
            json!([{"op": "replace", "path": format!("{ENT}:Manager"), "value": {"Value": "m-9"}}]),
        );
        assert_eq!(
            got,
            user_with(|u| u[ENT]["manager"] = json!({"value": "m-9"}))
        );
        let got = patch_user(json!([{"op": "replace", "path": "Manager.Value", "value": "m-10"}]));
        assert_eq!(
            got,
            user_with(|u| u[ENT]["manager"] = json!({"value": "m-10"}))
        );
    }

    #[test]
    fn manager_change_drops_the_previous_managers_ref() {
        let mut u = user();
        u[ENT]["manager"] = json!({"value": "mgr-1", "$ref": "../Users/mgr-1"});
        let body = envelope(
            json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": "mgr-2"}}]),
        );
        let got = run_on(user_resource_type(), u, &body).unwrap();
        assert_eq!(got[ENT]["manager"], json!({"value": "mgr-2"}));
    }

    #[test]
    fn s1_4e_manager_remove_with_filter() {
        // thomaspoignant/scim-patch#453
        let got =
            patch_user(json!([{"op": "remove", "path": "manager[value eq \"someone-else\"]"}]));
        assert_eq!(got, user(), "a filter that does not match removes nothing");
        let got = patch_user(json!([{"op": "remove", "path": "manager[value eq \"mgr-1\"]"}]));
        assert_eq!(
            got,
            user_with(|u| {
                ent(u).shift_remove("manager");
            })
        );
    }

    #[test]
    fn manager_set_via_pathless_extension_object_and_cleared_with_empty_string() {
        let got = patch_user(
            json!([{"op": "replace", "value": {ENT: {"manager": "m-3", "department": "Ops"}}}]),
        );
        assert_eq!(
            got,
            user_with(|u| {
                u[ENT]["manager"] = json!({"value": "m-3"});
                u[ENT]["department"] = json!("Ops");
            })
        );
        let got = patch_user(json!([{"op": "replace", "value": {ENT: {"manager": ""}}}]));
        assert_eq!(
            got,
            user_with(|u| {
                ent(u).shift_remove("manager");
            })
        );
    }

    // ---- §1.4 (f): remove with a value on a single-valued path ---------------------------------------

    #[test]
    fn s1_4f_remove_with_value_on_single_valued_path() {
        // AzureAD/SCIMReferenceCode PR #87: the value is ignored, the target removed.
        let got = patch_user_body(entra_fixture!("user-patch-f-remove-with-value"));
        assert_eq!(
            got,
            user_with(|u| u["emails"] = json!([{"type": "work", "primary": true}]))
        );
        let got = patch_user(json!([{"op": "Remove", "path": "title", "value": "Engineer (old)"}]));
        assert_eq!(
            got,
            user_with(|u| {
                u.as_object_mut().unwrap().shift_remove("title");
            })
        );
    }

    // ---- §1.4 (g): roles -------------------------------------------------------------------------------

    #[test]
    fn s1_4g_roles_stringified_json_values_stored_verbatim() {
        let body = entra_fixture!("user-patch-g-roles-stringified-json");
        let roles = body["Operations"][0]["value"].clone();
        let got = patch_user_body(body);
        assert_eq!(got, user_with(|u| u["roles"] = roles.clone()));
        // Sent again on the next cycle: no duplicates.
        let again = run_on(
            user_resource_type(),
            got.clone(),
            &envelope(json!([{"op": "Add", "path": "roles", "value": roles}])),
        );
        assert_eq!(again.unwrap(), got);
    }

    #[test]
    fn s1_4g_assertive_roles_replace_whole_array() {
        let mut u = user();
        u["roles"] = json!([{"value": "Old"}]);
        let body = envelope(json!([{"op": "replace", "path": "roles", "value": [
            {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"},
            {"primary": "False", "type": "WindowsAzureActiveDirectoryRole", "display": "Admin", "value": "Admin"}
        ]}]));
        let got = run_on(user_resource_type(), u, &body).unwrap();
        assert_eq!(
            got["roles"],
            json!([
                {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"},
                {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "Admin", "value": "Admin"}
            ])
        );
    }

    // ---- §1.4 (h) and §5 item 27: clearing ------------------------------------------------------------

    #[test]
    fn s1_4h_replace_with_empty_string_clears_optional_attributes() {
        let got = patch_user(json!([
            {"op": "replace", "path": "title", "value": ""},
            {"op": "replace", "path": "displayName", "value": ""},
            {"op": "replace", "path": "name.givenName", "value": ""},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": ""},
            {"op": "replace", "path": format!("{ENT}:department"), "value": ""},
            {"op": "replace", "path": "externalId", "value": ""}
        ]));
        let want = user_with(|u| {
            let m = u.as_object_mut().unwrap();
            m.shift_remove("title");
            m.shift_remove("displayName");
            m.shift_remove("externalId");
            u["name"] = json!({"familyName": "User", "formatted": "Test User"});
            u["emails"] = json!([{"type": "work", "primary": true}]);
            ent(u).shift_remove("department");
        });
        assert_eq!(got, want);
    }

    #[test]
    fn s1_4h_pathless_replace_with_empty_strings_then_nulls() {
        let cleared = user_with(|u| {
            let m = u.as_object_mut().unwrap();
            m.shift_remove("title");
            m.shift_remove("displayName");
            ent(u).shift_remove("employeeNumber");
        });
        let got = patch_user(
            json!([{"op": "replace", "value": {"title": "", "displayName": "", format!("{ENT}:employeeNumber"): ""}}]),
        );
        assert_eq!(got, cleared);
        let got = patch_user(
            json!([{"op": "replace", "value": {"title": null, "displayName": null, ENT: {"employeeNumber": null}}}]),
        );
        assert_eq!(got, cleared);
        let got = patch_user(json!([{"op": "replace", "path": "title", "value": null}]));
        assert_eq!(
            got,
            user_with(|u| {
                u.as_object_mut().unwrap().shift_remove("title");
            })
        );
    }

    #[test]
    fn empty_user_name_is_rejected() {
        for ops in [
            json!([{"op": "replace", "path": "userName", "value": ""}]),
            json!([{"op": "Replace", "value": {"UserName": null}}]),
        ] {
            let e = user_err(ops);
            assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
            assert!(e.detail.contains("userName is required"), "{}", e.detail);
        }
        let e = run_on(
            group_resource_type(),
            group(),
            &envelope(json!([{"op": "replace", "path": "displayName", "value": ""}])),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    // ---- §1.5: disable / re-enable -----------------------------------------------------------------------

    #[test]
    fn s1_5_disable_with_string_false_default_dialect() {
        let got = patch_user_body(entra_fixture!("user-patch-disable-string-false"));
        assert_eq!(got, user_with(|u| u["active"] = json!(false)));
    }

    #[test]
    fn s1_5_disable_with_boolean_flag_dialect_and_tutorial() {
        for op in ["replace", "Replace"] {
            let got = patch_user(json!([{"op": op, "path": "active", "value": false}]));
            assert_eq!(got, user_with(|u| u["active"] = json!(false)));
        }
    }

    #[test]
    fn s1_5_re_enable_and_lowercase_variants() {
        let disabled = user_with(|u| u["active"] = json!(false));
        let rt = user_resource_type();
        let got = run_on(
            rt,
            disabled,
            &envelope(json!([{"op": "Replace", "path": "active", "value": "True"}])),
        )
        .unwrap();
        assert_eq!(got, user());
        let got = patch_user(json!([{"op": "Replace", "path": "active", "value": "false"}]));
        assert_eq!(got["active"], json!(false));
        let got = patch_user(json!([{"op": "Replace", "value": {"active": "FALSE"}}]));
        assert_eq!(got["active"], json!(false));
    }

    // ---- §1.6: groups --------------------------------------------------------------------------------------

    #[test]
    fn s1_6_rename_group_with_path() {
        let got = patch_group(json!([{"op": "Replace", "path": "displayName",
                                       "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]));
        let mut want = group();
        want["displayName"] = json!("1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName");
        assert_eq!(got, want);
    }

    #[test]
    fn s1_6_validator_pathless_rename_and_external_id() {
        let got = run_on(
            group_resource_type(),
            group(),
            &entra_fixture!("group-patch-rename-pathless"),
        )
        .unwrap();
        let mut want = group();
        want["displayName"] = json!("MSADPJJZWBUS");
        assert_eq!(got, want);
        let got = patch_group(
            json!([{"op": "replace", "value": {"externalId": "c3b97a69-0000-4fa4-a1e5-55f3a5e7b0ad"}}]),
        );
        let mut want = group();
        want["externalId"] = json!("c3b97a69-0000-4fa4-a1e5-55f3a5e7b0ad");
        assert_eq!(got, want);
    }

    #[test]
    fn s1_6_add_members() {
        let got = run_on(
            group_resource_type(),
            json!({"displayName": "g"}),
            &entra_fixture!("group-patch-add-members"),
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"displayName": "g", "members": [{"value": "f648f8d5ea4e4cd38e9c"}]})
        );
        // Several in one request (gallery checklist), one already present.
        let got = patch_group(json!([{"op": "Add", "path": "members", "value": [
            {"$ref": null, "value": "u1"}, {"value": "u4"}, {"value": "u5"}
        ]}]));
        assert_eq!(
            got["members"],
            json!([{"value": "u1"}, {"value": "f648f8d5ea4e4cd38e9c"}, {"value": "u3"}, {"value": "u4"}, {"value": "u5"}])
        );
    }

    #[test]
    fn s1_6_remove_member_default_dialect_value_array() {
        let want = json!([{"value": "u1"}, {"value": "u3"}]);
        let got = run_on(
            group_resource_type(),
            group(),
            &entra_fixture!("group-patch-remove-members"),
        )
        .unwrap();
        assert_eq!(got["members"], want);
        let got = patch_group(
            json!([{"op": "Remove", "path": "members", "value": [{"value": "f648f8d5ea4e4cd38e9c"}]}]),
        );
        assert_eq!(got["members"], want);
        let got = patch_group(
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u3"}]}]),
        );
        assert_eq!(got["members"], json!([{"value": "f648f8d5ea4e4cd38e9c"}]));
    }

    #[test]
    fn s1_6_remove_member_flag_dialect_filter() {
        let got = patch_group(
            json!([{"op": "remove", "path": "members[value eq \"f648f8d5ea4e4cd38e9c\"]"}]),
        );
        assert_eq!(got["members"], json!([{"value": "u1"}, {"value": "u3"}]));
        let got = patch_group(
            json!([{"op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]),
        );
        assert_eq!(got, group(), "removing a non-member is a no-op");
    }

    #[test]
    fn remove_members_without_value_clears_all() {
        let got = patch_group(json!([{"op": "Remove", "path": "members"}]));
        assert_eq!(
            got,
            json!({"displayName": "displayName", "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"})
        );
    }

    #[test]
    fn remove_last_member_removes_the_array() {
        let body =
            envelope(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]));
        let got = run_on(
            group_resource_type(),
            json!({"displayName": "g", "members": [{"value": "u1"}]}),
            &body,
        )
        .unwrap();
        assert_eq!(got, json!({"displayName": "g"}));
    }

    #[test]
    fn member_id_with_quote_is_escaped() {
        let body = envelope(
            json!([{"op": "Remove", "path": "members", "value": [{"value": "o'brien\"x"}]}]),
        );
        let got = run_on(
            group_resource_type(),
            json!({"displayName": "g", "members": [{"value": "o'brien\"x"}, {"value": "u2"}]}),
            &body,
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"displayName": "g", "members": [{"value": "u2"}]})
        );
    }

    #[test]
    fn add_then_remove_same_member_in_one_request() {
        let got = patch_group(json!([
            {"op": "Add", "path": "members", "value": [{"value": "u9"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u9"}]}
        ]));
        assert_eq!(got, group());
    }

    // ---- §5 items ---------------------------------------------------------------------------------------

    #[test]
    fn q8_unknown_paths_are_stored_and_never_block_the_disable() {
        // limosa-io/laravel-scim-server#34; imulab/go-scim#75: one odd path must not fail the request.
        let got = patch_user(json!([
            {"op": "Replace", "path": "addresses[type eq \"other\"].Formatted", "value": "1 Main St"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCenter", "value": "CC-1"},
            {"op": "Add", "path": "msDsCloudExtensionAttribute1", "value": "x1"},
            {"op": "Replace", "path": "name.honorificMiddle", "value": "Q"},
            {"op": "Replace", "path": "active", "value": "False"}
        ]));
        let want = user_with(|u| {
            u["addresses"] = json!([{"type": "other", "formatted": "1 Main St"}]);
            u["urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User"] =
                json!({"costCenter": "CC-1"});
            u["msDsCloudExtensionAttribute1"] = json!("x1");
            u["name"]["honorificMiddle"] = json!("Q");
            u["active"] = json!(false);
        });
        assert_eq!(got, want);
    }

    #[test]
    fn q12_nulls_empty_roles_and_meta_in_a_pathless_replace() {
        let mut u = user();
        u["roles"] = json!([{"value": "r"}]);
        let body = envelope(json!([{"op": "replace", "value": {
            "nickName": null, "roles": [], "meta": {"resourceType": "User"}, "id": "other-id",
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "title": "CTO"
        }}]));
        let got = run_on(user_resource_type(), u, &body).unwrap();
        assert_eq!(got, user_with(|u| u["title"] = json!("CTO")));
        // `add` of an empty array adds nothing.
        let got = patch_user(json!([{"op": "add", "value": {"roles": [], "title": null}}]));
        assert_eq!(
            got,
            user_with(|u| {
                u.as_object_mut().unwrap().shift_remove("title");
            })
        );
    }

    #[test]
    fn q30_capitalised_names_are_made_canonical() {
        let got = patch_user(json!([
            {"op": "Replace", "path": "UserName", "value": "New@contoso.com"},
            {"op": "Replace", "path": "emails[Type eq \"work\"].Primary", "value": "True"},
            {"op": "Add", "value": {"NickName": "Nick", "Name": {"GivenName": "T"}}},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department", "value": "R&D"}
        ]));
        let want = user_with(|u| {
            u["userName"] = json!("New@contoso.com");
            u["nickName"] = json!("Nick");
            u["name"]["givenName"] = json!("T");
            u[ENT]["department"] = json!("R&D");
        });
        assert_eq!(got, want);
    }

    #[test]
    fn values_are_stored_exactly_as_sent() {
        let got = patch_user(json!([
            {"op": "replace", "path": "emails[type eq \"WORK\"].value", "value": "MiXeD.Case@Contoso.COM"},
            {"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 (425) 555-0100"}
        ]));
        assert_eq!(
            got["emails"],
            json!([{"value": "MiXeD.Case@Contoso.COM", "type": "work", "primary": true}])
        );
        assert_eq!(
            got["phoneNumbers"],
            json!([{"type": "work", "value": "+1 (425) 555-0100"}])
        );
    }

    // ---- engine semantics ---------------------------------------------------------------------------

    #[test]
    fn atomic_second_op_failing_leaves_resource_unchanged() {
        let rt = user_resource_type();
        let ops = parse_ops(
            &envelope(json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "replace", "path": "id", "value": "x"}
            ])),
            rt,
        )
        .unwrap();
        let Value::Object(mut m) = user() else {
            unreachable!()
        };
        let before = m.clone();
        let e = apply(&mut m, &ops, rt).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
        assert_eq!(m, before);
    }

    #[test]
    fn ops_apply_in_order_last_wins() {
        let got = patch_user(json!([
            {"op": "remove", "path": "displayName"},
            {"op": "add", "path": "displayName", "value": "A"},
            {"op": "replace", "path": "displayName", "value": "B"}
        ]));
        assert_eq!(got, user_with(|u| u["displayName"] = json!("B")));
    }

    #[test]
    fn remove_of_absent_attribute_is_a_no_op() {
        for path in [
            "nickName",
            "name.middleName",
            "addresses[type eq \"work\"]",
            "addresses[type eq \"work\"].country",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            "unknownThing",
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:x",
        ] {
            assert_eq!(
                patch_user(json!([{"op": "remove", "path": path}])),
                user(),
                "remove {path}"
            );
        }
    }

    #[test]
    fn add_to_multi_valued_dedupes_and_resets_primary() {
        let got = patch_user(json!([{"op": "add", "path": "emails", "value": [
            {"value": "test.user@contoso.com", "type": "work", "primary": true},
            {"Value": "home@example.org", "Type": "home", "Primary": "true"}
        ]}]));
        assert_eq!(
            got["emails"],
            json!([
                {"value": "test.user@contoso.com", "type": "work", "primary": false},
                {"value": "home@example.org", "type": "home", "primary": true}
            ])
        );
    }

    #[test]
    fn add_single_object_to_multi_valued() {
        let got = patch_user(
            json!([{"op": "add", "path": "emails", "value": {"value": "b@x.org", "type": "other"}}]),
        );
        assert_eq!(
            got["emails"],
            json!([
                {"value": "test.user@contoso.com", "type": "work", "primary": true},
                {"value": "b@x.org", "type": "other"}
            ])
        );
    }

    #[test]
    fn replace_whole_array() {
        let got = patch_user(
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x.org", "type": "work"}]}]),
        );
        assert_eq!(
            got["emails"],
            json!([{"value": "only@x.org", "type": "work"}])
        );
        let got = patch_user(json!([{"op": "replace", "path": "emails", "value": []}]));
        assert!(
            got.get("emails").is_none(),
            "an array left empty is removed"
        );
    }

    #[test]
    fn replace_filtered_element_with_object_merges() {
        let got = patch_user(
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@x.org", "display": "W"}}]),
        );
        assert_eq!(
            got["emails"],
            json!([{"value": "w@x.org", "type": "work", "primary": true, "display": "W"}])
        );
    }

    #[test]
    fn replace_complex_single_valued_merges_sub_attributes() {
        let got =
            patch_user(json!([{"op": "replace", "path": "name", "value": {"givenName": "G"}}]));
        assert_eq!(
            got["name"],
            json!({"givenName": "G", "familyName": "User", "formatted": "Test User"})
        );
        let got = patch_user(json!([{"op": "replace", "value": {"name": {"familyName": "F"}}}]));
        assert_eq!(
            got["name"],
            json!({"givenName": "Test", "familyName": "F", "formatted": "Test User"})
        );
    }

    #[test]
    fn remove_filtered_sub_attribute_and_element() {
        let mut u = user();
        u["emails"] =
            json!([{"value": "a@x.org", "type": "work"}, {"value": "b@x.org", "type": "home"}]);
        let rt = user_resource_type();
        let got = run_on(
            rt,
            u.clone(),
            &envelope(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])),
        )
        .unwrap();
        assert_eq!(got["emails"], json!([{"value": "a@x.org", "type": "work"}]));
        let got = run_on(
            rt,
            u,
            &envelope(json!([{"op": "remove", "path": "emails[type eq \"work\"].type"}])),
        )
        .unwrap();
        assert_eq!(
            got["emails"],
            json!([{"value": "a@x.org"}, {"value": "b@x.org", "type": "home"}])
        );
    }

    #[test]
    fn remove_sub_attribute_and_extension_attribute() {
        let got = patch_user(json!([
            {"op": "remove", "path": "name.formatted"},
            {"op": "remove", "path": format!("{ENT}:employeeNumber")}
        ]));
        let want = user_with(|u| {
            u["name"] = json!({"givenName": "Test", "familyName": "User"});
            ent(u).shift_remove("employeeNumber");
        });
        assert_eq!(got, want);
    }

    #[test]
    fn extension_left_empty_is_removed() {
        let got = patch_user(json!([
            {"op": "remove", "path": format!("{ENT}:employeeNumber")},
            {"op": "remove", "path": format!("{ENT}:department")},
            {"op": "remove", "path": format!("{ENT}:manager")}
        ]));
        assert_eq!(
            got,
            user_with(|u| {
                u.as_object_mut().unwrap().shift_remove(ENT);
            })
        );
    }

    #[test]
    fn whole_extension_path() {
        let got = patch_user(
            json!([{"op": "replace", "path": ENT, "value": {"department": "D2", "costCenter": "C"}}]),
        );
        assert_eq!(
            got,
            user_with(|u| {
                u[ENT]["department"] = json!("D2");
                u[ENT]["costCenter"] = json!("C");
            })
        );
        let got = patch_user(json!([{"op": "remove", "path": ENT}]));
        assert_eq!(
            got,
            user_with(|u| {
                u.as_object_mut().unwrap().shift_remove(ENT);
            })
        );
    }

    #[test]
    fn core_urn_qualified_path_addresses_top_level() {
        let got = patch_user(json!([
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:userName", "value": "u2@contoso.com"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", "value": "G"}
        ]));
        assert_eq!(
            got,
            user_with(|u| {
                u["userName"] = json!("u2@contoso.com");
                u["name"]["givenName"] = json!("G");
            })
        );
    }

    #[test]
    fn schemas_target_is_ignored() {
        let got = patch_user(json!([
            {"op": "add", "path": "schemas", "value": ["urn:x"]},
            {"op": "replace", "value": {"schemas": ["urn:y"]}}
        ]));
        assert_eq!(got, user());
    }

    // ---- rejections ---------------------------------------------------------------------------------------

    #[test]
    fn rejects_bad_op() {
        let e = user_err(json!([{"op": "Move", "path": "title", "value": "x"}]));
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidSyntax))
        );
        assert!(e.detail.contains("Move"), "{}", e.detail);
    }

    #[test]
    fn rejects_missing_operations() {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]});
        let e = parse_ops(&body, user_resource_type()).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        assert!(e.detail.contains("Operations"), "{}", e.detail);
    }

    #[test]
    fn rejects_remove_without_path() {
        let e = user_err(json!([{"op": "remove"}]));
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::NoTarget)));
        assert!(e.detail.contains("remove needs a path"), "{}", e.detail);
    }

    #[test]
    fn rejects_read_only_targets() {
        for path in [
            "id",
            "meta",
            "groups",
            "meta.lastModified",
            "groups[value eq \"g\"]",
            format!("{ENT}:manager.displayName").as_str(),
        ] {
            let e = user_err(json!([{"op": "replace", "path": path, "value": "x"}]));
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(ScimType::Mutability)),
                "{path}: {}",
                e.detail
            );
        }
        let e = user_err(json!([{"op": "remove", "path": "groups"}]));
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn rejects_malformed_path() {
        for path in [
            "emails[type eq \"work\"",
            "emails[type eq]",
            "name..givenName",
        ] {
            let e = user_err(json!([{"op": "replace", "path": path, "value": "x"}]));
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(ScimType::InvalidPath)),
                "{path}: {}",
                e.detail
            );
        }
    }

    #[test]
    fn rejects_structurally_impossible_targets() {
        let e = user_err(json!([{"op": "replace", "path": "userName.x", "value": "x"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let e =
            user_err(json!([{"op": "replace", "path": "userName[value eq \"x\"]", "value": "x"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let e = user_err(json!([{"op": "add", "value": "just a string"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        let e = user_err(json!([{"op": "replace", "path": "name", "value": "Test User"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        let e = user_err(json!([{"op": "add", "path": "title"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        let e = user_err(
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": "x@y"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let rt = user_resource_type();
        let bodies = [
            json!(null),
            json!([]),
            json!({"schemas": "urn:ietf:params:scim:api:messages:2.0:PatchOp", "Operations": [1, 2]}),
            envelope(json!([{"op": 5}])),
            envelope(json!([{"op": "add", "path": 5, "value": 1}])),
            envelope(
                json!([{"op": "add", "path": "", "value": {"": "x", ".": 1, "urn:": 2, "a.b.c.d": 3}}]),
            ),
            envelope(json!([{"op": "add", "path": "emails[type eq \"w\"].value.x", "value": 1}])),
            envelope(
                json!([{"op": "remove", "path": "members", "value": [null, 1, {"value": {"x": 1}}]}]),
            ),
            envelope(
                json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User", "value": "x"}]),
            ),
            envelope(
                json!([{"op": "add", "path": "manager", "value": [{"value": "a"}, {"value": "b"}]}]),
            ),
            envelope(json!([{"op": "add", "path": ENT, "value": [1]}])),
            envelope(json!([{"op": "add", "value": {ENT: "not an object"}}])),
        ];
        for body in bodies {
            let _ = run_on(rt, user(), &body);
            let _ = run_on(group_resource_type(), group(), &body);
        }
        let mut odd = user();
        odd["name"] = json!("a string");
        odd[ENT] = json!(7);
        odd["emails"] = json!("x");
        for ops in [
            json!([{"op": "add", "path": "name.givenName", "value": "x"}]),
            json!([{"op": "add", "path": format!("{ENT}:department"), "value": "x"}]),
            json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "x"}]),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].value"}]),
            json!([{"op": "add", "path": "emails", "value": [{"value": "y"}]}]),
        ] {
            let _ = run_on(rt, odd.clone(), &envelope(ops));
        }
    }
}
