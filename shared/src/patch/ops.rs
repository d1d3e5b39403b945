//! The operations of a PatchOp request in RFC form: [`PatchOpKind`], [`PatchOp`], and the parsing of one
//! operation and of its `path`.
//!
//! Imports `crate::{error, filter, schema, value}`; nothing else of `patch`.

use crate::error::{ScimError, ScimResult};
use crate::filter::{self, AttrPath, PatchPath};
use crate::schema::ResourceType;
use crate::value::describe;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// The three PATCH operations (RFC 7644 §3.5.2.1–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Replace,
    Remove,
}

impl PatchOpKind {
    /// `add`, `Add`, `ADD`, … (Entra capitalises them: docs/entra-dialect.md §5 item 2).
    pub fn parse(op: &str) -> Option<Self> {
        match op.trim().to_ascii_lowercase().as_str() {
            "add" => Some(Self::Add),
            "replace" => Some(Self::Replace),
            "remove" => Some(Self::Remove),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Replace => "replace",
            Self::Remove => "remove",
        }
    }
}

/// One operation of a PatchOp request, in RFC form.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// The paths of one PatchOp request, each parsed once: the dialect's rewrites ask what a path points at,
/// and [`parse_op`] then takes the same parse, so no path text is parsed twice (a rewrite that makes a
/// new path, such as `members[value eq "…"]`, parses only that one). Keyed by the trimmed text; at most
/// one entry per distinct path of the request, whose size the body limit bounds.
pub struct Paths<'a> {
    pub rt: &'a ResourceType,
    parsed: RefCell<HashMap<String, ScimResult<PatchPath>>>,
    parses: Cell<usize>,
}

impl<'a> Paths<'a> {
    pub fn new(rt: &'a ResourceType) -> Self {
        Paths {
            rt,
            parsed: RefCell::default(),
            parses: Cell::new(0),
        }
    }

    /// `path` parsed as a PATCH path of this resource type (see [`parse_patch_path`]), parsed at its
    /// first use only.
    pub fn parse(&self, path: &str) -> ScimResult<PatchPath> {
        let key = path.trim();
        if let Some(p) = self.parsed.borrow().get(key) {
            return p.clone();
        }
        self.parses.set(self.parses.get() + 1);
        let p = parse_patch_path(key, self.rt);
        self.parsed.borrow_mut().insert(key.to_string(), p.clone());
        p
    }

    /// How many path texts were parsed (each at most once).
    pub fn parses(&self) -> usize {
        self.parses.get()
    }
}

/// One operation of a normalised PatchOp request (see `dialect::patch_request`), its path parsed
/// through `paths` (so a path the dialect already parsed is not parsed again).
/// A path that does not parse is 400 `invalidPath` with the parser's explanation.
pub(super) fn parse_op(op: &Value, paths: &Paths) -> ScimResult<PatchOp> {
    let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
    let kind = PatchOpKind::parse(name).ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "Unsupported PATCH op \"{name}\": use add, replace or remove"
        ))
    })?;
    let path = match op.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(paths.parse(s)?),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "A PATCH \"path\" must be a string, not {}",
                describe(other)
            )))
        }
    };
    Ok(PatchOp {
        op: kind,
        path,
        value: op.get("value").cloned(),
    })
}

/// Parse a PATCH path. A path that is exactly a schema URN of `rt` (the whole enterprise extension, say)
/// is represented as an [`AttrPath`] without URN whose name is the canonical URN.
fn parse_patch_path(path: &str, rt: &ResourceType) -> ScimResult<PatchPath> {
    let path = path.trim();
    if let Some(urn) = rt.canonical_urn(path) {
        let attr = AttrPath {
            urn: None,
            name: urn.to_string(),
            sub: None,
        };
        return Ok(PatchPath {
            attr,
            filter: None,
            sub_after_filter: None,
        });
    }
    filter::parse_path(path).map_err(|e| {
        ScimError::invalid_path(format!("The PATCH path \"{path}\" is not valid: {e}"))
    })
}
