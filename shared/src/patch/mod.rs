//! PATCH (RFC 7644 §3.5.2) and, beside it, Entra's PATCH dialect as named rewrites.
//!
//! [`parse_ops`] takes a request through two steps: [`dialect`] rewrites Entra's dialect into RFC form
//! (one named rewrite per quirk of `docs/entra-dialect.md`), then `ops` parses every operation and its
//! `path` once into a [`PatchOp`]. [`apply`](fn@apply) (`apply.rs`, the engine) runs the operations in order
//! on a copy of the resource and writes the copy back only when every operation succeeded, so a request
//! changes all or nothing. `target` tells the engine and the dialect where a path lands. [`members`]
//! splits a group's member operations off as set operations for the store.
//!
//! Imports, from the bottom up: `ops` and `target` import no other file of `patch`; `dialect` and
//! `apply` import those two; `members` imports `ops`; this file imports `dialect` and `ops`. Outside
//! `patch`: `crate::{error, filter, schema, value}`, and `crate::model` (for its value shapes) in
//! `dialect` only; nothing below imports `patch`.
//!
//! Rules worth knowing (each is a choice the RFC leaves open or that Entra forces):
//! * Attribute names match case-insensitively; keys written use the schema's canonical name (`UserName`
//!   → `userName`) and unknown names are stored as written. Values are stored exactly as sent.
//! * Unknown attributes and unknown extension URNs are stored, not rejected (docs/entra-dialect.md §5 item 8:
//!   one odd path must never block the `active: false` in the same request).
//! * An unqualified name that is not a core attribute but is the name of exactly one extension attribute
//!   resolves to it (`"path": "manager"` in the Entra tutorial, [S1] Example 5).
//! * `add`/`replace` through a value filter that matches nothing creates the element from the filter's
//!   `eq` comparisons (§5 item 7); any other filter that matches nothing is 400 `noTarget`.
//! * Replacing a single-valued complex attribute merges the given sub-attributes (RFC 7644 §3.5.2.3),
//!   except that a new `value` of a reference such as `manager` replaces the whole object, so a stale
//!   `$ref`/`displayName` of the previous manager does not survive.
//! * In multi-valued reference lists (`members`, which have `value` and `$ref`), an element with the same
//!   `value` is the same element: adding it again merges instead of duplicating.
//! * A value set with `primary: true` turns `primary` off on the other values (RFC 7644 §3.5.2).
//! * `null` inside values means unassigned and is dropped; attributes, elements and extension objects left
//!   empty are removed. Read-only sub-attributes inside values are dropped (as for POST); a *path* that
//!   targets a read-only attribute is 400 `mutability`; read-only keys of a pathless value are ignored.
//! * `schemas` is the server's: operations on it are ignored; so are writes to writeOnly attributes
//!   (`password`: this server keeps no credentials, and POST/PUT drop it too).
//!
//! Type checking is not done here: the caller runs `model::validate` on the result.

mod apply;
pub mod dialect;
pub mod members;
mod ops;
mod target;

pub use apply::apply;
pub use ops::{PatchOp, PatchOpKind, Paths};

use crate::error::ScimResult;
use crate::schema::ResourceType;
use serde_json::Value;

/// Validate and normalise a PatchOp body (Entra's dialect included), then parse every path.
/// A path that does not parse is 400 `invalidPath` with the parser's explanation.
pub fn parse_ops(body: &Value, rt: &ResourceType) -> ScimResult<Vec<PatchOp>> {
    let mut body = body.clone();
    let paths = Paths::new(rt);
    dialect::patch_request(&mut body, &paths)?;
    let list = body
        .get("Operations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().map(|op| ops::parse_op(op, &paths)).collect()
}
