//! Arbitrary bytes → JSON (when they parse) → a PatchOp request → `patch::parse_ops` → `patch::apply`
//! on a realistic user and on a group → `model::validate`, exactly as `service::patch` chains them.
//! Nothing may panic, and an `apply` that fails must leave the resource unchanged (all or nothing).
//!
//! JSON that is not a PatchOp request is wrapped so the engine, not the envelope check, sees it:
//! an array becomes `Operations`, an object with an `op` member becomes the one operation, any other
//! object becomes the value of a pathless `replace`, any other value the value of `replace displayName`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use scim_core::model;
use scim_core::patch;
use scim_core::schema::{group_resource_type, user_resource_type, ResourceType, PATCH_OP};
use std::sync::OnceLock;

fn has_key(m: &Map<String, Value>, name: &str) -> bool {
    m.keys().any(|k| k.eq_ignore_ascii_case(name))
}

fn as_request(v: Value) -> Value {
    match v {
        Value::Object(m) if has_key(&m, "Operations") => Value::Object(m),
        Value::Object(m) if has_key(&m, "op") => json!({"schemas": [PATCH_OP], "Operations": [m]}),
        Value::Object(m) => json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": m}]}),
        Value::Array(ops) => json!({"schemas": [PATCH_OP], "Operations": ops}),
        other => json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": other}]}),
    }
}

fn run(body: &Value, rt: &ResourceType, resource: &Map<String, Value>) {
    let Ok(ops) = patch::parse_ops(body, rt) else { return };
    let mut attrs = resource.clone();
    match patch::apply(&mut attrs, &ops, rt) {
        Ok(()) => {
            let _ = model::validate(&mut attrs, rt);
        }
        Err(_) => assert_eq!(&attrs, resource, "a failed PATCH changed the resource"),
    }
}

fuzz_target!(|data: &[u8]| {
    static FIXTURES: OnceLock<(Map<String, Value>, Map<String, Value>)> = OnceLock::new();
    let (user, group) = FIXTURES.get_or_init(|| (shared_fuzz::user_attrs(), shared_fuzz::group_attrs()));

    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let body = as_request(value);
    run(&body, user_resource_type(), user);
    run(&body, group_resource_type(), group);
});
