//! Fixtures shared by the fuzz targets: a realistic Entra-provisioned user and group, as stored
//! (attributes only, what `patch::apply` sees) and as rendered (with `id`, `meta`, `schemas`, what
//! `Filter::matches` sees).

use serde_json::{json, Map, Value};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A user's stored attributes, shaped like what Entra provisions (dialect §1.3 of docs/entra-dialect.md).
pub fn user_attrs() -> Map<String, Value> {
    let v = json!({
        "userName": "Test_User_ab6490ee@contoso.com",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "active": true,
        "displayName": "Test User",
        "nickName": "Babs",
        "title": "Engineer",
        "preferredLanguage": "en-US",
        "name": {"givenName": "Test", "familyName": "User", "formatted": "Test User"},
        "emails": [
            {"value": "test.user@contoso.com", "type": "work", "primary": true},
            {"value": "Test.User@Contoso.onmicrosoft.com", "type": "other"}
        ],
        "phoneNumbers": [{"value": "+1 (425) 555-0100", "type": "work"}, {"value": "+1 425 555 0199", "type": "mobile"}],
        "addresses": [{"type": "work", "streetAddress": "1 Microsoft Way", "postalCode": "98052", "formatted": "18/2111", "primary": true}],
        "roles": [{"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"}],
        ENTERPRISE: {"department": "Sales", "employeeNumber": "1001", "manager": {"value": "2819c223-7f76-453a-919d-413861904646"}}
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("the fixture is an object"),
    }
}

/// A group's stored attributes.
pub fn group_attrs() -> Map<String, Value> {
    let v = json!({
        "displayName": "Sales Team",
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "members": [
            {"value": "f648f8d5ea4e4cd38e9c", "display": "Test User"},
            {"value": "7f4bc1a3-285e-48ae-8202-5accb43efb0e"}
        ]
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("the fixture is an object"),
    }
}

/// The user as a GET renders it (what filters are evaluated against).
pub fn user_rendered() -> Value {
    let mut m = user_attrs();
    m.insert("id".into(), json!("48af03ac28ad4fb88478"));
    m.insert(
        "schemas".into(),
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]),
    );
    m.insert(
        "meta".into(),
        json!({"resourceType": "User", "created": "2018-03-27T19:59:26.000Z", "lastModified": "2024-05-01T10:00:00.000Z",
               "version": "W/\"3\"", "location": "https://scim.example/scim/v2/Users/48af03ac28ad4fb88478"}),
    );
    m.insert("groups".into(), json!([{"value": "927fa2c08dcb4a7fae9e", "display": "Sales Team"}]));
    Value::Object(m)
}

/// The group as a GET renders it.
pub fn group_rendered() -> Value {
    let mut m = group_attrs();
    m.insert("id".into(), json!("927fa2c08dcb4a7fae9e"));
    m.insert("schemas".into(), json!(["urn:ietf:params:scim:schemas:core:2.0:Group"]));
    m.insert("meta".into(), json!({"resourceType": "Group", "created": "2018-03-27T19:59:26.000Z", "lastModified": "2018-03-27T19:59:26.000Z"}));
    Value::Object(m)
}
