//! Where a PATCH path, or a key of a pathless value, lands in a resource: a [`Target`], resolved against
//! the resource type's schemas (names matched case-insensitively, canonical names written).
//!
//! Both the engine (`apply`) and the dialect's rewrites (`dialect`) ask it what a path points at.
//! Imports `crate::{error, filter, schema}`; nothing else of `patch`.

use crate::error::{ScimError, ScimResult};
use crate::filter::{Filter, PatchPath};
use crate::schema::{AttrDef, Mutability, Resolved, ResourceType, Schema, COMMON_ATTRIBUTES};
use serde_json::Value;

/// Where a PATCH path or a key of a pathless value object points.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// `schemas`: maintained by the server, operations on it are ignored.
    Ignored,
    /// Exactly the core schema URN: its object value holds top-level attributes.
    Core,
    /// Exactly an extension schema URN: the whole extension object (`schema` is None when unknown).
    Extension {
        key: String,
        schema: Option<&'static Schema>,
    },
    /// An attribute, possibly with a value filter and/or a sub-attribute.
    Attr(AttrTarget),
}

#[derive(Debug, Clone)]
pub(super) struct AttrTarget {
    /// The extension key holding the attribute; None for top-level attributes.
    pub ext: Option<String>,
    /// The key of the attribute (canonical when known, as written otherwise).
    pub name: String,
    pub def: Option<&'static AttrDef>,
    /// The target may not be written (`id`, `meta`, readOnly attributes and sub-attributes).
    pub read_only: bool,
    pub filter: Option<Filter>,
    pub sub: Option<SubTarget>,
    /// The path as written, for error messages.
    pub label: String,
}

#[derive(Debug, Clone)]
pub(super) struct SubTarget {
    pub name: String,
    pub def: Option<&'static AttrDef>,
}

impl AttrTarget {
    pub(super) fn new(ext: Option<String>, name: String, def: Option<&'static AttrDef>) -> Self {
        let read_only = def.is_some_and(|d| d.mutability == Mutability::ReadOnly);
        let label = match &ext {
            Some(u) => format!("{u}:{name}"),
            None => name.clone(),
        };
        AttrTarget {
            ext,
            name,
            def,
            read_only,
            filter: None,
            sub: None,
            label,
        }
    }

    /// Whether emptying this target would break a required attribute (`userName`, group `displayName`).
    pub(super) fn required(&self) -> bool {
        match (&self.filter, &self.sub) {
            (_, Some(s)) => s.def.is_some_and(|d| d.required),
            (None, None) => self.def.is_some_and(|d| d.required),
            (Some(_), None) => false,
        }
    }

    /// `password`: this server keeps no credentials, so writes to writeOnly attributes are ignored
    /// (as POST/PUT drop them).
    pub(super) fn write_only(&self) -> bool {
        self.def
            .is_some_and(|d| d.mutability == Mutability::WriteOnly)
    }

    /// The target is a whole attribute (no filter, no sub-attribute).
    pub(super) fn is_whole(&self) -> bool {
        self.filter.is_none() && self.sub.is_none()
    }
}

/// Resolve a parsed path against the resource type.
pub(super) fn resolve(path: &PatchPath, rt: &ResourceType) -> ScimResult<Target> {
    let a = &path.attr;
    let sub = a.sub.as_deref().or(path.sub_after_filter.as_deref());
    if path.filter.is_none() && sub.is_none() {
        let full = match &a.urn {
            Some(u) => format!("{u}:{}", a.name),
            None => a.name.clone(),
        };
        if full.eq_ignore_ascii_case(&rt.core.id) {
            return Ok(Target::Core);
        }
        if let Some(schema) = rt.extension(&full) {
            return Ok(Target::Extension {
                key: schema.id.clone(),
                schema: Some(schema),
            });
        }
    }
    let Some(mut t) = locate(a.urn.as_deref(), &a.name, rt) else {
        return Ok(Target::Ignored);
    };
    t.label = label(path);
    t.filter = path.filter.clone();
    if let Some(s) = sub {
        let def = t.def.and_then(|d| d.sub(s));
        t.read_only |= def.is_some_and(|d| d.mutability == Mutability::ReadOnly);
        t.sub = Some(SubTarget {
            name: def.map_or_else(|| s.to_string(), |d| d.name.clone()),
            def,
        });
    }
    check_shape(&t)?;
    Ok(Target::Attr(t))
}

/// Resolve a key of a pathless `add`/`replace` value object.
pub(super) fn resolve_key(key: &str, value: &Value, rt: &ResourceType) -> Target {
    if key.eq_ignore_ascii_case(&rt.core.id) && value.is_object() {
        return Target::Core;
    }
    if let Some(schema) = rt.extension(key) {
        return Target::Extension {
            key: schema.id.clone(),
            schema: Some(schema),
        };
    }
    if is_urn(key) && value.is_object() {
        return Target::Extension {
            key: key.to_string(),
            schema: None,
        };
    }
    match locate(None, key, rt) {
        None => Target::Ignored,
        Some(t) => Target::Attr(t),
    }
}

/// Find an attribute by optional URN and name. None means `schemas` (ignored).
fn locate(urn: Option<&str>, name: &str, rt: &ResourceType) -> Option<AttrTarget> {
    if let Some(r) = rt.resolve(urn, name) {
        let ext = r.in_extension.then(|| r.schema.id.clone());
        return Some(AttrTarget::new(ext, r.def.name.clone(), Some(r.def)));
    }
    let core = urn.is_none_or(|u| u.eq_ignore_ascii_case(&rt.core.id));
    if !core {
        let ext = urn.map(|u| rt.canonical_urn(u).unwrap_or(u).to_string());
        return Some(AttrTarget::new(ext, name.to_string(), None));
    }
    if let Some(common) = COMMON_ATTRIBUTES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
    {
        return match *common {
            "schemas" => None,
            "externalId" => Some(AttrTarget::new(None, "externalId".into(), None)),
            other => Some(AttrTarget {
                read_only: true,
                ..AttrTarget::new(None, other.into(), None)
            }),
        };
    }
    if urn.is_none() {
        if let Some(r) = unique_extension_attr(rt, name) {
            return Some(AttrTarget::new(
                Some(r.schema.id.clone()),
                r.def.name.clone(),
                Some(r.def),
            ));
        }
    }
    Some(AttrTarget::new(None, name.to_string(), None))
}

fn unique_extension_attr(rt: &ResourceType, name: &str) -> Option<Resolved<'static>> {
    let mut hits = rt
        .extensions
        .iter()
        .filter_map(|(s, _)| rt.resolve(Some(&s.id), name));
    let first = hits.next()?;
    hits.next().is_none().then_some(first)
}

/// Reject paths that cannot address anything: a sub-attribute of a simple attribute, a filter on a
/// single-valued simple attribute.
fn check_shape(t: &AttrTarget) -> ScimResult<()> {
    let Some(d) = t.def else { return Ok(()) };
    if d.is_complex() {
        return Ok(());
    }
    if let Some(s) = &t.sub {
        return Err(ScimError::invalid_path(format!(
            "The PATCH path \"{}\" is not valid: '{}' is a simple attribute, so it has no sub-attribute '{}'",
            t.label, d.name, s.name
        )));
    }
    if t.filter.is_some() && !d.multi_valued {
        return Err(ScimError::invalid_path(format!(
            "The PATCH path \"{}\" is not valid: '{}' is single-valued, so it cannot take a [filter]",
            t.label, d.name
        )));
    }
    Ok(())
}

/// The path as text, for messages (the parser's canonical form).
pub(super) fn label(p: &PatchPath) -> String {
    p.to_string()
}

pub(super) fn is_urn(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}
