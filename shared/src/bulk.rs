//! Bulk (RFC 7644 §3.7): parsing, `bulkId` references and execution order. The order is computed before
//! anything runs: an operation that refers to `bulkId:x` (in its path or anywhere in its data) runs after
//! the POST that declares `bulkId` x; operations caught in a circular reference are answered 409 without
//! running. Data is walked with an explicit stack, so no nesting depth in a hostile body can exhaust the
//! call stack.

use crate::error::{ScimError, ScimResult};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

#[derive(Debug, Clone, PartialEq)]
pub struct BulkOp {
    pub method: String,
    pub path: String,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub fail_on_errors: Option<usize>,
    pub ops: Vec<BulkOp>,
}

fn get_ci<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(k))
        .map(|(_, v)| v)
}

/// Parse and check a BulkRequest body; `max_ops` → 413 above it.
pub fn parse(body: &Value, max_ops: usize) -> ScimResult<BulkRequest> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "A BulkRequest must be a JSON object",
        ));
    };
    let schemas_ok = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST))
            })
        });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "A BulkRequest's schemas must contain {BULK_REQUEST}"
        )));
    }
    let fail_on_errors =
        match get_ci(obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ScimError::invalid_value("failOnErrors must be a positive integer")
            })? as usize),
        };
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("A BulkRequest needs an Operations array"))?;
    if ops.len() > max_ops {
        return Err(ScimError::payload_too_large(format!("The BulkRequest has {} operations; the limit is {max_ops} (see /ServiceProviderConfig)", ops.len())));
    }
    let mut out = Vec::with_capacity(ops.len());
    let mut declared = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        let Value::Object(o) = op else {
            return Err(ScimError::invalid_syntax(format!(
                "Operation {i} is not an object"
            )));
        };
        let s = |k: &str| get_ci(o, k).and_then(Value::as_str).map(str::to_string);
        let method = s("method")
            .map(|m| m.to_ascii_uppercase())
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operation {i} has no method")))?;
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            return Err(ScimError::invalid_syntax(format!(
                "Operation {i}: method {method} is not POST, PUT, PATCH or DELETE"
            )));
        }
        let path = s("path")
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operation {i} has no path")))?;
        let bulk_id = s("bulkId");
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "Operation {i}: a POST needs a bulkId"
            )));
        }
        if let Some(b) = &bulk_id {
            if !declared.insert(b.clone()) {
                return Err(ScimError::invalid_syntax(format!(
                    "bulkId {b} is declared twice"
                )));
            }
        }
        let data = get_ci(o, "data").cloned();
        if matches!(method.as_str(), "POST" | "PUT" | "PATCH") && data.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "Operation {i}: {method} needs data"
            )));
        }
        out.push(BulkOp {
            method,
            path,
            bulk_id,
            version: s("version"),
            data,
        });
    }
    Ok(BulkRequest {
        fail_on_errors,
        ops: out,
    })
}

fn bulk_ref(s: &str) -> Option<&str> {
    s.strip_prefix("bulkId:")
}

/// Every `bulkId:x` an operation refers to (path and data, any depth).
pub fn references(op: &BulkOp) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for seg in op.path.split('/') {
        if let Some(r) = bulk_ref(seg) {
            refs.insert(r.to_string());
        }
    }
    let mut stack: Vec<&Value> = op.data.iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(r) = bulk_ref(s) {
                    refs.insert(r.to_string());
                }
            }
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    refs
}

/// The execution order (indices), and the operations that cannot run: caught in a circular reference,
/// or referring to a bulkId nobody declares.
pub fn order(ops: &[BulkOp]) -> (Vec<usize>, Vec<(usize, ScimError)>) {
    let declared: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.bulk_id.as_deref().map(|b| (b, i)))
        .collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    let mut blocked: Vec<(usize, ScimError)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        for r in references(op) {
            match declared.get(r.as_str()) {
                Some(&j) if j != i => deps[i].push(j),
                Some(_) => blocked.push((
                    i,
                    ScimError::new(
                        409,
                        Some(crate::error::ScimType::InvalidValue),
                        format!("Operation refers to its own bulkId {r}"),
                    ),
                )),
                None => blocked.push((
                    i,
                    ScimError::invalid_value(format!(
                        "bulkId {r} is not declared by any operation of this request"
                    )),
                )),
            }
        }
    }
    // Kahn's algorithm, keeping request order among ready operations.
    let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..ops.len()).filter(|&i| indegree[i] == 0).collect();
    let mut out = Vec::with_capacity(ops.len());
    while let Some(i) = ready.pop_first() {
        out.push(i);
        for &k in &dependents[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                ready.insert(k);
            }
        }
    }
    for i in 0..ops.len() {
        if !out.contains(&i) {
            blocked.push((
                i,
                ScimError::new(
                    409,
                    Some(crate::error::ScimType::InvalidValue),
                    "Operation is part of a circular bulkId reference",
                ),
            ));
        }
    }
    let blocked_set: BTreeSet<usize> = blocked.iter().map(|(i, _)| *i).collect();
    out.retain(|i| !blocked_set.contains(i));
    blocked.sort_by_key(|(i, _)| *i);
    blocked.dedup_by_key(|(i, _)| *i);
    (out, blocked)
}

/// Replace `bulkId:x` by the id created for x, in the path and at any depth of the data. `None` when a
/// referenced operation did not create anything (it failed).
pub fn resolve(op: &BulkOp, ids: &HashMap<String, String>) -> Option<BulkOp> {
    let sub = |s: &str| -> Option<String> {
        match bulk_ref(s) {
            Some(r) => ids.get(r).cloned(),
            None => Some(s.to_string()),
        }
    };
    let path = op
        .path
        .split('/')
        .map(sub)
        .collect::<Option<Vec<_>>>()?
        .join("/");
    let mut data = op.data.clone();
    let mut stack: Vec<&mut Value> = data.iter_mut().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(r) = bulk_ref(s) {
                    *s = ids.get(r)?.clone();
                }
            }
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Object(m) => stack.extend(m.values_mut()),
            _ => {}
        }
    }
    Some(BulkOp {
        path,
        data,
        ..op.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(ops: Value) -> Value {
        json!({"schemas": [BULK_REQUEST], "Operations": ops})
    }

    #[test]
    fn rfc_example_orders_user_before_group() {
        // RFC 7644 §3.7.2: the group (first) refers to the user (second) by bulkId.
        let r = parse(&req(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq", "data": {"displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {"userName": "Alice"}}
        ])), 50).unwrap();
        let (order, blocked) = order(&r.ops);
        assert_eq!(order, vec![1, 0]);
        assert!(blocked.is_empty());
        let ids = HashMap::from([("qwerty".to_string(), "u-1".to_string())]);
        let g = resolve(&r.ops[0], &ids).unwrap();
        assert_eq!(g.data.unwrap()["members"][0]["value"], "u-1");
    }

    #[test]
    fn circular_references_are_409_and_nothing_else_is_blocked() {
        let r = parse(&req(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"userName": "c"}},
            {"method": "PATCH", "path": "/Users/bulkId:zzz", "data": {}}
        ])), 50).unwrap();
        let (order, blocked) = order(&r.ops);
        assert_eq!(order, vec![2]);
        assert_eq!(
            blocked
                .iter()
                .map(|(i, e)| (*i, e.status))
                .collect::<Vec<_>>(),
            vec![(0, 409), (1, 409), (3, 400)]
        );
    }

    #[test]
    fn deep_data_is_walked_without_recursion() {
        // Request bodies are parsed by serde_json, which refuses nesting beyond 128 levels; the walk itself
        // uses an explicit stack either way.
        let mut v = json!({"value": "bulkId:x"});
        for _ in 0..130 {
            v = json!([v]);
        }
        let text = json!({"schemas": [BULK_REQUEST], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "y", "data": {"d": v}}]}).to_string();
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "serde_json's own depth limit"
        );
        let op = BulkOp {
            method: "POST".into(),
            path: "/Users".into(),
            bulk_id: Some("y".into()),
            version: None,
            data: Some(v),
        };
        assert!(references(&op).contains("x"));
        assert!(resolve(&op, &HashMap::from([("x".to_string(), "1".to_string())])).is_some());
    }

    #[test]
    fn limits_and_shape_errors() {
        let ops: Vec<Value> = (0..51)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        assert_eq!(parse(&req(json!(ops)), 50).unwrap_err().status, 413);
        for bad in [
            json!({"Operations": []}),
            req(json!([{"method": "GET", "path": "/Users"}])),
            req(json!([{"method": "POST", "path": "/Users", "data": {}}])),
            req(
                json!([{"method": "POST", "path": "/Users", "bulkId": "a", "data": {}}, {"method": "POST", "path": "/Users", "bulkId": "a", "data": {}}]),
            ),
            req(json!([{"method": "PATCH", "path": "/Users/1"}])),
        ] {
            assert_eq!(parse(&bad, 50).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(
            parse(
                &json!({"schemas": [BULK_REQUEST], "failOnErrors": 0, "Operations": []}),
                50
            )
            .unwrap_err()
            .status,
            400
        );
    }
}
