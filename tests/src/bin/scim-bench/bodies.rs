//! Request bodies in Entra's shapes (docs/entra-dialect.md §1.3, §2).

use serde_json::{json, Value};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub(crate) fn user_name(run: &str, i: usize) -> String {
    format!("bench{run}.u{i}@contoso.com")
}

pub(crate) fn external_id(run: &str, i: usize) -> String {
    format!("bench{run}-u{i}")
}

pub(crate) fn user_body(run: &str, i: usize) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": external_id(run, i),
        "userName": user_name(run, i),
        "active": true,
        "displayName": format!("Bench User {i}"),
        "emails": [{"primary": true, "type": "work", "value": format!("u{i}.{run}@contoso.com")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("Given{i} Family"), "familyName": "Family", "givenName": format!("Given{i}")},
        "title": "Engineer",
        ENTERPRISE: {"department": format!("Dept {}", i % 17), "employeeNumber": format!("E{i:07}")},
        "roles": []
    })
}

pub(crate) fn group_name(run: &str, g: usize) -> String {
    format!("Bench Group {g} {run}")
}

pub(crate) fn group_body(run: &str, g: usize) -> Value {
    json!({"schemas": [GROUP_SCHEMA], "externalId": format!("bench{run}-g{g}"), "displayName": group_name(run, g), "members": []})
}

pub(crate) fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

pub(crate) fn add_members(ids: &[&str]) -> Value {
    let vals: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    patch(json!([{"op": "Add", "path": "members", "value": vals}]))
}

/// RFC 7644 §3.5.2.2 flag form; both servers accept it (Entra's default `path:"members"` + value array is a
/// quirk probe).
pub(crate) fn remove_member(id: &str) -> Value {
    patch(json!([{"op": "Remove", "path": format!("members[value eq \"{id}\"]")}]))
}

/// The incremental update Entra sends for a changed user: capitalised ops, a value-path email, a URN path,
/// `active` as a string.
pub(crate) fn user_update(i: usize, n: u64, run: &str) -> Value {
    patch(json!([
        {"op": "Replace", "path": "displayName", "value": format!("Bench User {i} v{n}")},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": format!("u{i}.v{n}.{run}@contoso.com")},
        {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": format!("Dept {}", n % 17)},
        {"op": "Replace", "path": "active", "value": "True"}
    ]))
}

pub(crate) fn disable() -> Value {
    patch(json!([{"op": "Replace", "path": "active", "value": "False"}]))
}
