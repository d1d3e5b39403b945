//! Group membership changes as set operations. A group PATCH (or a POST/PUT body) is split into the
//! operations on ordinary attributes, applied by the PATCH engine to the group document, and a
//! [`MemberPlan`] — which ids to add, which to remove, whether to clear — applied by the store to member
//! items without reading the member list (except for a clear or a full replace, which must).
//!
//! Imports `patch::ops` and `crate::{error, filter, value}`.

use super::ops::{PatchOp, PatchOpKind};
use crate::error::{ScimError, ScimResult};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::value::entry_ci;
use serde_json::Value;

/// The net effect of the member operations of one request, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPlan {
    /// Remove every current member first (Remove `members` with no value or filter; Replace `members`).
    pub clear: bool,
    pub adds: Vec<String>,
    pub removes: Vec<String>,
}

impl MemberPlan {
    pub fn is_empty(&self) -> bool {
        !self.clear && self.adds.is_empty() && self.removes.is_empty()
    }

    pub fn changes(&self) -> usize {
        self.adds.len() + self.removes.len()
    }

    fn add(&mut self, id: String) {
        self.removes.retain(|r| r != &id);
        if !self.adds.contains(&id) {
            self.adds.push(id);
        }
    }

    fn remove(&mut self, id: String) {
        self.adds.retain(|a| a != &id);
        if !self.removes.contains(&id) {
            self.removes.push(id);
        }
    }

    fn clear(&mut self) {
        *self = MemberPlan {
            clear: true,
            ..Default::default()
        };
    }

    /// The `members` of a POST or PUT body.
    pub fn from_members_value(v: &Value) -> ScimResult<Self> {
        let mut plan = MemberPlan::default();
        for id in member_ids(v)? {
            plan.add(id);
        }
        Ok(plan)
    }
}

fn is_members(name: &str) -> bool {
    name.eq_ignore_ascii_case("members")
}

/// `[{"value": "id", "$ref": …}]`, a single `{"value": "id"}`, or (leniently) a bare id string.
pub fn member_ids(v: &Value) -> ScimResult<Vec<String>> {
    let one = |m: &Value| -> ScimResult<String> {
        let id = match m {
            Value::Object(o) => entry_ci(o, "value").map(|(_, v)| v),
            other => Some(other),
        };
        match id {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(ScimError::invalid_value(format!(
                "Each member must be an object with a non-empty string 'value' (the member's id), but the request gave {m}"
            ))),
        }
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![one(other)?]),
    }
}

/// Ids named by a `members[...]` filter: `value eq "x"`, or several of those joined with `or`.
fn filter_ids(f: &Filter, out: &mut Vec<String>) -> ScimResult<()> {
    match f {
        Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(id) } if path.name.eq_ignore_ascii_case("value") && path.sub.is_none() => {
            out.push(id.clone());
            Ok(())
        }
        Filter::Or(a, b) => {
            filter_ids(a, out)?;
            filter_ids(b, out)
        }
        other => Err(ScimError::invalid_filter(format!(
            "A members filter must select members by id, as in members[value eq \"<id>\"]; '{other}' is not supported"
        ))),
    }
}

/// Split `ops` into attribute operations and the member plan, keeping the order of each.
pub fn split(ops: Vec<PatchOp>) -> ScimResult<(Vec<PatchOp>, MemberPlan)> {
    let mut attr_ops = Vec::new();
    let mut plan = MemberPlan::default();
    for op in ops {
        match &op.path {
            Some(path)
                if is_members(&path.attr.name)
                    && path
                        .attr
                        .urn
                        .as_deref()
                        .is_none_or(|u| u.to_ascii_lowercase().contains(":core:")) =>
            {
                member_op(&op, &mut plan)?;
            }
            None => {
                // Pathless: a `members` key inside the value object is a member operation.
                let mut op = op;
                if let Some(Value::Object(obj)) = &mut op.value {
                    if let Some(key) = entry_ci(obj, "members").map(|(k, _)| k.clone()) {
                        let members = obj.remove(&key).unwrap_or(Value::Null);
                        let ids = member_ids(&members)?;
                        if op.op == PatchOpKind::Replace {
                            plan.clear();
                        }
                        ids.into_iter().for_each(|id| plan.add(id));
                    }
                    if obj.is_empty() {
                        continue;
                    }
                }
                attr_ops.push(op);
            }
            Some(_) => attr_ops.push(op),
        }
    }
    Ok((attr_ops, plan))
}

fn member_op(op: &PatchOp, plan: &mut MemberPlan) -> ScimResult<()> {
    let Some(path) = &op.path else { return Ok(()) };
    if path.attr.sub.is_some() || path.sub_after_filter.is_some() {
        return Err(ScimError::invalid_path(format!(
            "Member sub-attributes cannot be changed ('{path}'); add or remove whole members instead"
        )));
    }
    match (op.op, &path.filter) {
        (PatchOpKind::Add, None) => {
            member_ids(op.value.as_ref().unwrap_or(&Value::Null))?.into_iter().for_each(|id| plan.add(id));
        }
        (PatchOpKind::Replace, None) => {
            plan.clear();
            member_ids(op.value.as_ref().unwrap_or(&Value::Null))?.into_iter().for_each(|id| plan.add(id));
        }
        (PatchOpKind::Remove, None) => match &op.value {
            None | Some(Value::Null) => plan.clear(),
            Some(v) => member_ids(v)?.into_iter().for_each(|id| plan.remove(id)),
        },
        (PatchOpKind::Remove, Some(f)) => {
            let mut ids = Vec::new();
            filter_ids(f, &mut ids)?;
            ids.into_iter().for_each(|id| plan.remove(id));
        }
        (_, Some(_)) => {
            return Err(ScimError::invalid_path(format!(
                "'{path}': members are added with path \"members\" and a value list, not through a filter"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::parse_ops;
    use crate::schema::group_resource_type;
    use serde_json::json;

    fn plan(ops: Value) -> (Vec<PatchOp>, MemberPlan) {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        split(parse_ops(&body, group_resource_type()).unwrap()).unwrap()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn entra_add_members() {
        // docs/entra-dialect.md §1.6 "Add members"
        let (attrs, p) = plan(
            json!([{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}, {"value":"u2"}]}]),
        );
        assert!(attrs.is_empty());
        assert_eq!(
            p,
            MemberPlan {
                clear: false,
                adds: ids(&["f648f8d5ea4e4cd38e9c", "u2"]),
                removes: vec![]
            }
        );
    }

    #[test]
    fn entra_remove_with_value_array_removes_only_those() {
        // §1.6 default dialect; §5 item 4
        let (_, p) = plan(
            json!([{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]),
        );
        assert_eq!(
            p,
            MemberPlan {
                clear: false,
                adds: vec![],
                removes: ids(&["f648f8d5ea4e4cd38e9c"])
            }
        );
    }

    #[test]
    fn entra_remove_by_filter_removes_only_that_member() {
        // §1.6 with flag; §5 item 5
        let (_, p) = plan(
            json!([{"op":"remove","path":"members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]),
        );
        assert_eq!(p.removes, ids(&["7f4bc1a3-285e-48ae-8202-5accb43efb0e"]));
        assert!(!p.clear);
    }

    #[test]
    fn remove_members_without_value_clears() {
        let (_, p) = plan(json!([{"op":"Remove","path":"members"}]));
        assert!(p.clear && p.adds.is_empty());
    }

    #[test]
    fn operations_apply_in_order() {
        let (_, p) = plan(json!([
            {"op":"add","path":"members","value":[{"value":"a"},{"value":"b"}]},
            {"op":"remove","path":"members[value eq \"a\"]"},
            {"op":"remove","path":"members","value":[{"value":"c"}]},
            {"op":"add","path":"members","value":[{"value":"c"}]}
        ]));
        assert_eq!(
            p,
            MemberPlan {
                clear: false,
                adds: ids(&["b", "c"]),
                removes: ids(&["a"])
            }
        );
        let (_, p) = plan(
            json!([{"op":"add","path":"members","value":[{"value":"a"}]}, {"op":"replace","path":"members","value":[{"value":"z"}]}]),
        );
        assert_eq!(
            p,
            MemberPlan {
                clear: true,
                adds: ids(&["z"]),
                removes: vec![]
            }
        );
    }

    #[test]
    fn pathless_rename_and_members_split() {
        // Validator: {"op":"replace","value":{"displayName":"…"}} — stays an attribute op.
        let (attrs, p) = plan(json!([{"op":"replace","value":{"displayName":"MSADPJJZWBUS"}}]));
        assert_eq!(attrs.len(), 1);
        assert!(p.is_empty());
        let (attrs, p) =
            plan(json!([{"op":"add","value":{"displayName":"X","members":[{"value":"m"}]}}]));
        assert_eq!(attrs.len(), 1);
        assert_eq!(p.adds, ids(&["m"]));
    }

    #[test]
    fn bad_member_shapes_are_rejected() {
        let body = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        for ops in [
            json!([{"op":"add","path":"members","value":[{"display":"no value"}]}]),
            json!([{"op":"add","path":"members","value":[{"value":5}]}]),
            json!([{"op":"remove","path":"members[display eq \"x\"]"}]),
            json!([{"op":"replace","path":"members[value eq \"x\"].display","value":"y"}]),
        ] {
            let r = parse_ops(&body(ops.clone()), group_resource_type()).and_then(split);
            assert_eq!(r.unwrap_err().status, 400, "{ops}");
        }
    }
}
