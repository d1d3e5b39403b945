//! Resource rules: what a POST/PUT body becomes before it is stored (nulls and read-only input dropped,
//! attribute names made canonical, Entra's shapes normalised, types checked), and how a stored resource
//! is rendered (schemas, meta, `attributes` / `excludedAttributes` projection).
//!
//! Values are never transformed: what the client sent is what is stored and returned. Entra's value
//! shapes (string booleans, manager shapes) are settled by [`shapes`].
//!
//! Imports `crate::{error, filter, schema, value}` and its child `shapes`; never `crate::patch` (which
//! imports `shapes`).

pub mod shapes;

use crate::error::{ScimError, ScimResult};
use crate::filter::AttrPath;
use crate::schema::{AttrDef, AttrType, Mutability, ResourceType, Returned};
use crate::value::{describe, entry_ci, strip_unassigned};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A resource as the store keeps it: the client's attributes (canonical names, verbatim values)
/// plus the server-maintained identity and metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredResource {
    pub id: String,
    /// All attributes except `id`, `meta` and `schemas` (which the server derives).
    pub attrs: Map<String, Value>,
    pub created: String,
    pub last_modified: String,
    /// Incremented by every write that changes the resource; `meta.version` is `W/"<version>"`.
    pub version: u64,
    /// Users: ids of the groups the user is a direct member of (kept by the store with each membership
    /// change; rendered as the read-only `groups` attribute).
    pub groups: Vec<String>,
    /// Groups: number of members (kept by the store with each membership change).
    pub member_count: u64,
}

impl StoredResource {
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// Server time as RFC 3339 with milliseconds, UTC (`2018-03-27T19:59:26.000Z`).
pub fn now_rfc3339() -> String {
    // Always three fractional digits (RFC 3339 formatting would drop a zero fraction).
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// A new, never-reused resource id (random UUID v4; the store also refuses to overwrite an id).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The case-insensitive uniqueness key of a resource: lower-cased `userName` (User) or `displayName` (Group).
pub fn unique_key(rt: &ResourceType, attrs: &Map<String, Value>) -> Option<String> {
    let attr = unique_attr(rt)?;
    attrs
        .get(attr)
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

/// The attribute that identifies a resource to people and must be unique per tenant.
pub fn unique_attr(rt: &ResourceType) -> Option<&'static str> {
    Some(rt.kind.unique_attr())
}

/// Turn a POST or PUT body into stored attributes: the body must be an object; `null`s, empty
/// arrays/objects, read-only input (`id`, `meta`, `groups`, …) and `password` are dropped; unknown schema
/// URNs in `schemas` are ignored; attribute names become canonical; Entra's shapes are normalised;
/// then [`validate`] runs.
pub fn prepare_input(body: Value, rt: &ResourceType) -> ScimResult<Map<String, Value>> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(format!(
            "The request body must be a JSON object representing a {}",
            rt.name
        )));
    };
    let mut attrs = canonicalise(obj, rt);
    attrs.remove("id");
    attrs.remove("meta");
    attrs.remove("schemas");
    drop_server_owned(&mut attrs, rt);
    shapes::coerce_string_booleans(&mut attrs, rt);
    shapes::manager_object(&mut attrs, rt);
    strip_unassigned(&mut attrs);
    validate(&mut attrs, rt)?;
    Ok(attrs)
}

/// Check a resource's attributes after any change (POST, PUT, PATCH): required attributes present and
/// non-empty, known attributes of the right JSON type. Also re-applies the boolean/manager normalisers
/// and drops emptied values, so PATCH results obey the same rules as POST bodies.
pub fn validate(attrs: &mut Map<String, Value>, rt: &ResourceType) -> ScimResult<()> {
    shapes::coerce_string_booleans(attrs, rt);
    strip_unassigned(attrs);
    for def in &rt.core.attributes {
        if def.required {
            match attrs.get(&def.name) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                Some(Value::String(_)) | None => {
                    return Err(ScimError::invalid_value(format!(
                        "'{}' is required for a {} and cannot be empty",
                        def.name, rt.name
                    )))
                }
                Some(_) => {}
            }
        }
    }
    if let Some(v) = attrs.get("externalId") {
        if !v.is_string() {
            return Err(type_error("externalId", "a string", v));
        }
    }
    for (key, value) in attrs.iter() {
        if let Some(def) = rt.core.attr(key) {
            check_type(def, &def.name, value)?;
        } else if let Some(ext) = rt.extension(key) {
            let Value::Object(inner) = value else {
                return Err(type_error(
                    &ext.id,
                    "an object holding the extension's attributes",
                    value,
                ));
            };
            for (k, v) in inner {
                if let Some(def) = ext.attr(k) {
                    check_type(def, &format!("{}:{}", ext.id, def.name), v)?;
                }
            }
        }
    }
    Ok(())
}

fn check_type(def: &AttrDef, label: &str, value: &Value) -> ScimResult<()> {
    if def.multi_valued {
        let Value::Array(items) = value else {
            return Err(type_error(label, "an array (it is multi-valued)", value));
        };
        for item in items {
            check_single(def, label, item)?;
        }
        Ok(())
    } else {
        check_single(def, label, value)
    }
}

fn check_single(def: &AttrDef, label: &str, value: &Value) -> ScimResult<()> {
    match def.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            if !value.is_string() {
                return Err(type_error(label, "a string", value));
            }
        }
        AttrType::DateTime => match value.as_str() {
            Some(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => {}
            _ => {
                return Err(type_error(
                    label,
                    "an RFC 3339 date-time string such as 2024-05-01T12:00:00Z",
                    value,
                ))
            }
        },
        AttrType::Boolean => {
            if !value.is_boolean() {
                return Err(type_error(label, "a boolean (true or false)", value));
            }
        }
        AttrType::Integer => {
            if !(value.is_i64() || value.is_u64()) {
                return Err(type_error(label, "an integer", value));
            }
        }
        AttrType::Decimal => {
            if !value.is_number() {
                return Err(type_error(label, "a number", value));
            }
        }
        AttrType::Complex => {
            let Value::Object(obj) = value else {
                return Err(type_error(label, "an object", value));
            };
            for (k, v) in obj {
                if let Some(sub) = def.sub(k) {
                    check_single_or_multi(sub, &format!("{label}.{}", sub.name), v)?;
                }
            }
        }
    }
    Ok(())
}

fn check_single_or_multi(def: &AttrDef, label: &str, value: &Value) -> ScimResult<()> {
    if def.multi_valued {
        check_type(def, label, value)
    } else {
        check_single(def, label, value)
    }
}

fn type_error(label: &str, expected: &str, got: &Value) -> ScimError {
    let shown = describe(got);
    ScimError::invalid_value(format!(
        "Attribute '{label}' must be {expected}, but the request gave {shown}"
    ))
}

/// Enforce the size limits on a resource about to be written: at most `max_values` leaf values and no
/// string longer than `max_len` characters.
pub fn check_size(attrs: &Map<String, Value>, max_values: usize, max_len: usize) -> ScimResult<()> {
    fn walk(key: &str, v: &Value, count: &mut usize, max_len: usize) -> ScimResult<()> {
        match v {
            Value::Object(m) => m.iter().try_for_each(|(k, x)| walk(k, x, count, max_len)),
            Value::Array(a) => a.iter().try_for_each(|x| walk(key, x, count, max_len)),
            Value::String(s) => {
                *count += 1;
                let n = s.chars().count();
                if n > max_len {
                    return Err(ScimError::invalid_value(format!(
                        "The value of '{key}' is {n} characters long; the limit is {max_len}"
                    )));
                }
                Ok(())
            }
            _ => {
                *count += 1;
                Ok(())
            }
        }
    }
    let mut count = 0;
    for (k, v) in attrs {
        walk(k, v, &mut count, max_len)?;
    }
    if count > max_values {
        return Err(ScimError::invalid_value(format!(
            "The resource has {count} attribute values; the limit is {max_values}"
        )));
    }
    Ok(())
}

/// Canonical attribute names (`UserName` → `userName`, extension URN keys → the schema's id,
/// URN-qualified top-level keys moved under their extension). Unknown names are kept as written.
pub fn canonicalise(obj: Map<String, Value>, rt: &ResourceType) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in obj {
        if let Some(common) = ["id", "externalId", "meta", "schemas"]
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&key))
        {
            out.insert((*common).to_string(), value);
        } else if let Some(def) = rt.core.attr(&key) {
            out.insert(def.name.clone(), canonical_value(def, value));
        } else if let Some(ext) = rt.extension(&key) {
            let inner = match value {
                Value::Object(m) => Value::Object(canonical_members(m, &ext.attributes)),
                other => other,
            };
            merge_extension(&mut out, &ext.id, inner);
        } else if let Some((urn, name)) = split_urn_key(&key) {
            if let Some(r) = rt.resolve(Some(urn), name) {
                if r.in_extension {
                    let mut m = Map::new();
                    m.insert(r.def.name.clone(), canonical_value(r.def, value));
                    merge_extension(&mut out, &r.schema.id, Value::Object(m));
                } else {
                    out.insert(r.def.name.clone(), canonical_value(r.def, value));
                }
            } else {
                out.insert(key, value);
            }
        } else {
            out.insert(key, value);
        }
    }
    out
}

fn merge_extension(out: &mut Map<String, Value>, urn: &str, inner: Value) {
    match (out.get_mut(urn), inner) {
        (Some(Value::Object(existing)), Value::Object(add)) => existing.extend(add),
        (_, inner) => {
            out.insert(urn.to_string(), inner);
        }
    }
}

/// `urn:…:enterprise:2.0:User:department` → (`urn:…:enterprise:2.0:User`, `department`).
fn split_urn_key(key: &str) -> Option<(&str, &str)> {
    if !key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        return None;
    }
    let (urn, name) = key.rsplit_once(':')?;
    Some((urn, name))
}

fn canonical_value(def: &AttrDef, value: Value) -> Value {
    if !def.is_complex() {
        return value;
    }
    match value {
        Value::Object(m) => Value::Object(canonical_members(m, &def.sub_attributes)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| match v {
                    Value::Object(m) => Value::Object(canonical_members(m, &def.sub_attributes)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn canonical_members(m: Map<String, Value>, defs: &[AttrDef]) -> Map<String, Value> {
    m.into_iter()
        .map(
            |(k, v)| match defs.iter().find(|d| d.name.eq_ignore_ascii_case(&k)) {
                Some(d) => (d.name.clone(), canonical_value(d, v)),
                None => (k, v),
            },
        )
        .collect()
}

/// Drop attributes the client may not set: read-only ones (`groups`, `manager.displayName`, …) and
/// write-only secrets (`password`: this server holds no credentials).
fn drop_server_owned(attrs: &mut Map<String, Value>, rt: &ResourceType) {
    let schemas = std::iter::once((rt.core, None))
        .chain(rt.extensions.iter().map(|(s, _)| (*s, Some(s.id.as_str()))));
    for (schema, urn) in schemas {
        let target = match urn {
            None => Some(&mut *attrs),
            Some(u) => match attrs.get_mut(u) {
                Some(Value::Object(m)) => Some(m),
                _ => None,
            },
        };
        let Some(target) = target else { continue };
        for def in &schema.attributes {
            if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
                target.remove(&def.name);
                continue;
            }
            let read_only_subs: Vec<&str> = def
                .sub_attributes
                .iter()
                .filter(|s| s.mutability == Mutability::ReadOnly)
                .map(|s| s.name.as_str())
                .collect();
            if read_only_subs.is_empty() {
                continue;
            }
            match target.get_mut(&def.name) {
                Some(Value::Object(m)) => read_only_subs.iter().for_each(|s| {
                    m.remove(*s);
                }),
                Some(Value::Array(items)) => items.iter_mut().for_each(|item| {
                    if let Value::Object(m) = item {
                        read_only_subs.iter().for_each(|s| {
                            m.remove(*s);
                        });
                    }
                }),
                _ => {}
            }
        }
    }
}

/// The full representation of a resource (what GET returns before projection).
pub fn render(res: &StoredResource, rt: &ResourceType, base_url: &str) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(rt.core.id.clone())];
    for (ext, _) in &rt.extensions {
        if res.attrs.contains_key(&ext.id) {
            schemas.push(Value::String(ext.id.clone()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(res.id.clone()));
    for (k, v) in &res.attrs {
        if k == "id" || k == "meta" || k == "schemas" {
            continue;
        }
        if rt
            .core
            .attr(k)
            .is_some_and(|d| d.returned == Returned::Never)
        {
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    if !res.groups.is_empty() {
        let groups: Vec<Value> = res
            .groups
            .iter()
            .map(|g| serde_json::json!({"value": g, "$ref": format!("{base_url}/Groups/{g}"), "type": "direct"}))
            .collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": rt.name,
            "created": res.created,
            "lastModified": res.last_modified,
            "location": location(base_url, rt, &res.id),
            "version": res.etag(),
        }),
    );
    Value::Object(out)
}

/// `https://host/scim/v2/Users/<id>`
pub fn location(base_url: &str, rt: &ResourceType, id: &str) -> String {
    format!("{}{}/{}", base_url, rt.endpoint, id)
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9), applied to a rendered resource.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// True when the projection certainly leaves `name` out (used to skip reading group members).
    pub fn excludes(&self, rt: &ResourceType, name: &str) -> bool {
        let hit = |p: &AttrPath| p.sub.is_none() && names_attr(rt, p, name);
        if !self.attributes.is_empty() {
            return !self.attributes.iter().any(|p| names_attr(rt, p, name));
        }
        self.excluded.iter().any(hit)
    }

    pub fn apply(&self, rt: &ResourceType, resource: Value) -> Value {
        let Value::Object(mut obj) = resource else {
            return resource;
        };
        if !self.attributes.is_empty() {
            let mut out = Map::new();
            for (k, v) in obj.iter() {
                if k == "schemas" || k == "id" {
                    out.insert(k.clone(), v.clone());
                    continue;
                }
                if let Some(ext) = rt.extension(k) {
                    if let Value::Object(inner) = v {
                        let kept = select_members(
                            inner,
                            |name| {
                                self.attributes
                                    .iter()
                                    .filter_map(|p| ext_selector(rt, p, &ext.id, name))
                                    .collect()
                            },
                            &ext.attributes,
                        );
                        if !kept.is_empty() {
                            out.insert(k.clone(), Value::Object(kept));
                        }
                    }
                    continue;
                }
                let always = rt
                    .core
                    .attr(k)
                    .is_some_and(|d| d.returned == Returned::Always);
                let sels: Vec<Selector> = self
                    .attributes
                    .iter()
                    .filter_map(|p| core_selector(rt, p, k))
                    .collect();
                if always {
                    out.insert(k.clone(), v.clone());
                } else if let Some(kept) = select_value(v, &sels) {
                    out.insert(k.clone(), kept);
                }
            }
            obj = out;
        }
        for p in &self.excluded {
            exclude(rt, &mut obj, p);
        }
        Value::Object(obj)
    }
}

/// What a requested path selects of one attribute: all of it, or some sub-attributes.
#[derive(Debug, Clone)]
enum Selector {
    All,
    Sub(String),
}

fn names_attr(rt: &ResourceType, p: &AttrPath, name: &str) -> bool {
    let core = p
        .urn
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(&rt.core.id));
    core && p.name.eq_ignore_ascii_case(name)
}

fn core_selector(rt: &ResourceType, p: &AttrPath, key: &str) -> Option<Selector> {
    if !names_attr(rt, p, key) {
        return None;
    }
    Some(match &p.sub {
        None => Selector::All,
        Some(s) => Selector::Sub(s.clone()),
    })
}

fn ext_selector(_rt: &ResourceType, p: &AttrPath, ext_id: &str, member: &str) -> Option<Selector> {
    // `urn:…:enterprise:2.0:User` alone (parsed as urn `urn:…:enterprise:2.0`, name `User`) selects it all.
    let whole = p.sub.is_none()
        && p.urn
            .as_deref()
            .is_some_and(|u| format!("{u}:{}", p.name).eq_ignore_ascii_case(ext_id));
    if whole {
        return Some(Selector::All);
    }
    let in_ext = p
        .urn
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case(ext_id));
    if in_ext && p.name.eq_ignore_ascii_case(member) {
        return Some(match &p.sub {
            None => Selector::All,
            Some(s) => Selector::Sub(s.clone()),
        });
    }
    None
}

fn select_members(
    inner: &Map<String, Value>,
    sels_for: impl Fn(&str) -> Vec<Selector>,
    defs: &[AttrDef],
) -> Map<String, Value> {
    let mut kept = Map::new();
    for (name, v) in inner {
        let always = defs
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(name) && d.returned == Returned::Always);
        let sels = sels_for(name);
        if always {
            kept.insert(name.clone(), v.clone());
        } else if let Some(val) = select_value(v, &sels) {
            kept.insert(name.clone(), val);
        }
    }
    kept
}

fn select_value(v: &Value, sels: &[Selector]) -> Option<Value> {
    if sels.is_empty() {
        return None;
    }
    if sels.iter().any(|s| matches!(s, Selector::All)) {
        return Some(v.clone());
    }
    let subs: Vec<&str> = sels
        .iter()
        .filter_map(|s| match s {
            Selector::Sub(n) => Some(n.as_str()),
            Selector::All => None,
        })
        .collect();
    let pick = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match v {
        Value::Object(m) => {
            let kept = pick(m);
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(m) => {
                        let k = pick(m);
                        (!k.is_empty()).then_some(Value::Object(k))
                    }
                    _ => None,
                })
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

fn exclude(rt: &ResourceType, obj: &mut Map<String, Value>, p: &AttrPath) {
    // `urn:…:enterprise:2.0:User` alone (parsed as urn `urn:…:enterprise:2.0`, name `User`) names the extension.
    if let (None, Some(u)) = (&p.sub, p.urn.as_deref()) {
        if let Some(ext) = rt.extension(&format!("{u}:{}", p.name)) {
            obj.remove(&ext.id);
            return;
        }
    }
    let (target, def): (&mut Map<String, Value>, Option<&AttrDef>) = match p.urn.as_deref() {
        Some(u) if !u.eq_ignore_ascii_case(&rt.core.id) => {
            let Some(ext) = rt.extension(u) else { return };
            let Some(Value::Object(inner)) = obj.get_mut(&ext.id) else {
                return;
            };
            (inner, ext.attr(&p.name))
        }
        _ => {
            if p.name.eq_ignore_ascii_case("id") || p.name.eq_ignore_ascii_case("schemas") {
                return; // returned always
            }
            let def = rt.core.attr(&p.name);
            (obj, def)
        }
    };
    if def.is_some_and(|d| d.returned == Returned::Always) {
        return;
    }
    let Some(key) = entry_ci(target, &p.name).map(|(k, _)| k.clone()) else {
        return;
    };
    match &p.sub {
        None => {
            target.remove(&key);
        }
        Some(sub) => {
            if let Some(v) = target.get_mut(&key) {
                let drop_sub =
                    |m: &mut Map<String, Value>| m.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                match v {
                    Value::Object(m) => drop_sub(m),
                    Value::Array(items) => items.iter_mut().for_each(|i| {
                        if let Value::Object(m) = i {
                            drop_sub(m)
                        }
                    }),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{user_resource_type, ENTERPRISE_USER_SCHEMA};
    use serde_json::json;

    fn rt() -> &'static ResourceType {
        user_resource_type()
    }

    fn ap(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(Into::into),
            name: name.into(),
            sub: sub.map(Into::into),
        }
    }

    #[test]
    fn nulls_read_only_and_unknown_schema_urns_are_ignored() {
        // docs/entra-dialect.md §1.3 "Example 2. Provision a user": explicit nulls, malformed schema URN.
        let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
            "externalId":"jyoung","userName":"jyoung@testuser.com","active":true,"addresses":null,"displayName":"Joy Young",
            "emails":[{"type":"work","value":"jyoung@Contoso.com","primary":true}],"meta":{"resourceType":"User"},
            "name":{"familyName":"Young","givenName":"Joy"},"phoneNumbers":null,"preferredLanguage":null,"title":null,
            "department":null,"manager":null, "id": "client-id", "roles": []});
        let attrs = prepare_input(body, rt()).unwrap();
        assert_eq!(
            Value::Object(attrs),
            json!({"externalId":"jyoung","userName":"jyoung@testuser.com","active":true,"displayName":"Joy Young",
                "emails":[{"type":"work","value":"jyoung@Contoso.com","primary":true}],
                "name":{"familyName":"Young","givenName":"Joy"}})
        );
    }

    #[test]
    fn names_become_canonical_values_stay_verbatim() {
        let body = json!({"UserName":"Ann@X.com","Emails":[{"Value":"Ann@X.COM","Primary":"True","Type":"work"}],
            "URN:ietf:params:scim:schemas:extension:enterprise:2.0:user":{"Department":"R&D"},
            "phoneNumbers":[{"value":"+1 (555) 010-0000","type":"work"}], "customThing": "kept"});
        let attrs = prepare_input(body, rt()).unwrap();
        assert_eq!(attrs["userName"], "Ann@X.com");
        assert_eq!(
            attrs["emails"],
            json!([{"value":"Ann@X.COM","primary":true,"type":"work"}])
        );
        assert_eq!(attrs[ENTERPRISE_USER_SCHEMA], json!({"department":"R&D"}));
        assert_eq!(attrs["phoneNumbers"][0]["value"], "+1 (555) 010-0000");
        assert_eq!(attrs["customThing"], "kept");
    }

    #[test]
    fn urn_qualified_top_level_keys_move_into_their_extension() {
        let body = json!({"userName":"a","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42"});
        let attrs = prepare_input(body, rt()).unwrap();
        assert_eq!(
            attrs[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber":"42"})
        );
    }

    #[test]
    fn groups_password_and_manager_display_name_are_dropped() {
        let body = json!({"userName":"a","password":"s3cret","groups":[{"value":"g"}],
            ENTERPRISE_USER_SCHEMA: {"manager": {"value":"m","displayName":"Boss"}}});
        let attrs = prepare_input(body, rt()).unwrap();
        assert!(attrs.get("password").is_none());
        assert!(attrs.get("groups").is_none());
        assert_eq!(
            attrs[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value":"m"})
        );
    }

    #[test]
    fn missing_or_empty_user_name_is_rejected() {
        for body in [
            json!({"displayName":"x"}),
            json!({"userName":""}),
            json!({"userName":null}),
        ] {
            let e = prepare_input(body, rt()).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains("userName"), "{}", e.detail);
        }
    }

    #[test]
    fn wrong_types_are_rejected_with_a_clear_detail() {
        let e = prepare_input(json!({"userName":"a","active":"maybe"}), rt()).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::error::ScimType::InvalidValue));
        assert!(
            e.detail.contains("'active' must be a boolean"),
            "{}",
            e.detail
        );
        let e = prepare_input(json!({"userName":"a","emails":{"value":"x"}}), rt()).unwrap_err();
        assert!(e.detail.contains("emails"), "{}", e.detail);
        let e = prepare_input(json!({"userName":"a","name":{"givenName":5}}), rt()).unwrap_err();
        assert!(e.detail.contains("name.givenName"), "{}", e.detail);
        let e = prepare_input(json!(["not", "an", "object"]), rt()).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::error::ScimType::InvalidSyntax));
    }

    fn sample() -> StoredResource {
        let attrs = prepare_input(
            json!({"userName":"a","externalId":"e","name":{"givenName":"G","familyName":"F"},
                "emails":[{"value":"a@x","type":"work","primary":true}],
                ENTERPRISE_USER_SCHEMA:{"department":"D","manager":{"value":"m"}}}),
            rt(),
        )
        .unwrap();
        StoredResource {
            id: "u1".into(),
            attrs,
            created: "c".into(),
            last_modified: "m".into(),
            version: 3,
            ..Default::default()
        }
    }

    #[test]
    fn render_adds_schemas_id_and_meta() {
        let v = render(&sample(), rt(), "https://h/scim/v2");
        assert_eq!(
            v["schemas"],
            json!([crate::schema::USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
        );
        assert_eq!(v["id"], "u1");
        assert_eq!(
            v["meta"],
            json!({"resourceType":"User","created":"c","lastModified":"m",
            "location":"https://h/scim/v2/Users/u1","version":"W/\"3\""})
        );
    }

    #[test]
    fn attributes_projection_keeps_id_and_requested_paths() {
        let full = render(&sample(), rt(), "");
        let p = Projection {
            attributes: vec![
                ap(None, "userName", None),
                ap(None, "name", Some("givenName")),
                ap(None, "emails", Some("value")),
                ap(Some(ENTERPRISE_USER_SCHEMA), "manager", None),
            ],
            excluded: vec![],
        };
        assert_eq!(
            p.apply(rt(), full),
            json!({"schemas":[crate::schema::USER_SCHEMA, ENTERPRISE_USER_SCHEMA],"id":"u1","userName":"a",
            "name":{"givenName":"G"},"emails":[{"value":"a@x"}], ENTERPRISE_USER_SCHEMA:{"manager":{"value":"m"}}})
        );
    }

    #[test]
    fn attributes_id_only() {
        let p = Projection {
            attributes: vec![ap(None, "ID", None)],
            excluded: vec![],
        };
        let v = p.apply(rt(), render(&sample(), rt(), ""));
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["schemas", "id"]
        );
    }

    #[test]
    fn excluded_attributes_remove_paths_but_never_id() {
        let p = Projection {
            attributes: vec![],
            excluded: vec![
                ap(None, "emails", None),
                ap(None, "name", Some("familyName")),
                ap(None, "id", None),
                ap(
                    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0"),
                    "User",
                    None,
                ),
            ],
        };
        let v = p.apply(rt(), render(&sample(), rt(), ""));
        assert!(v.get("emails").is_none());
        assert_eq!(v["name"], json!({"givenName":"G"}));
        assert_eq!(v["id"], "u1");
        assert!(v.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert!(p.excludes(rt(), "emails"));
        assert!(!p.excludes(rt(), "userName"));
    }

    #[test]
    fn unique_key_is_lower_cased_user_name() {
        assert_eq!(unique_key(rt(), &sample().attrs).as_deref(), Some("a"));
        let attrs = prepare_input(json!({"userName":"Ann@X.com"}), rt()).unwrap();
        assert_eq!(unique_key(rt(), &attrs).as_deref(), Some("ann@x.com"));
    }

    #[test]
    fn timestamps_are_rfc3339_with_millis() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.len() == 24, "{t}");
    }
}
