//! Schema discoverability, as Microsoft's gallery validation checks it, for every built-in app profile on
//! both engines: `GET /Schemas` is flattened into attribute names the way the validation does, and every
//! target attribute of the app's Entra attribute mapping must be among them (compared ignoring case).
//!
//! The flattening (Microsoft's SCIM validation, test "Schema_Discoverability"):
//! * from the core User schema (and the core Group schema for groups): `manager` and `members` by name;
//!   a multi-valued complex attribute as value paths `name[type eq "<v>"].<sub>` for each canonical value
//!   `<v>` of its `type` sub-attribute and each sub-attribute other than `type` and `primary` (without
//!   canonical values: `name[primary eq "True"].<sub>` for each sub-attribute but `primary`); a
//!   single-valued complex attribute as `name.<sub>` for its sub-attributes that are neither complex nor
//!   references; any other attribute by name unless it is a reference;
//! * every other schema listed counts as a User extension: `<schema id>:<attribute name>`.
//!
//! The mapping tables below are written here from each app's documented Entra attribute mapping (and
//! Microsoft's default mapping for a non-gallery app), not derived from the server's schemas.

use scim_tests::urn::{ENTERPRISE, GROUP, USER};
use scim_tests::{patch_body, TestServer};
use serde_json::{json, Value};
use std::collections::HashSet;

const JOSTLE: &str = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";
const JOYN: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";
const SPOKE: &str = "urn:ietf:params:scim:schemas:extension:SpokeCustom:2.0:User";

/// `urn:…:<attr>`, the target name of an extension attribute in a mapping.
fn ext(urn: &str, attr: &str) -> String {
    format!("{urn}:{attr}")
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `prefix[type eq "<t>"].<sub>` for each type and sub-attribute.
fn value_paths(attr: &str, types: &[&str], subs: &[&str]) -> Vec<String> {
    types
        .iter()
        .flat_map(|t| {
            subs.iter()
                .map(move |s| format!("{attr}[type eq \"{t}\"].{s}"))
        })
        .collect()
}

const WORK_ADDRESS: [&str; 6] = [
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
];

/// Microsoft Entra ID's default group mapping: displayName, objectId → externalId, members.
fn entra_default_groups() -> Vec<String> {
    strings(&["displayName", "externalId", "members"])
}

/// Microsoft Entra ID's default user mapping for a non-gallery SCIM app.
fn default_users() -> Vec<String> {
    let mut m = strings(&[
        "userName",
        "active",
        "displayName",
        "title",
        "preferredLanguage",
        "externalId",
        "name.givenName",
        "name.familyName",
        "name.formatted",
        "emails[type eq \"work\"].value",
    ]);
    m.extend(value_paths("addresses", &["work"], &WORK_ADDRESS));
    m.extend(value_paths(
        "phoneNumbers",
        &["work", "mobile", "fax"],
        &["value"],
    ));
    m.extend(["employeeNumber", "department", "manager"].map(|a| ext(ENTERPRISE, a)));
    // Microsoft's table of the user schema also maps proxyAddresses and the office, written with capitals.
    m.extend(strings(&[
        "emails[type eq \"other\"].Value",
        "addresses[type eq \"other\"].Formatted",
    ]));
    m
}

/// Jostle: users only.
fn jostle_users() -> Vec<String> {
    let mut m = strings(&["userName", "active", "name.givenName", "name.familyName"]);
    m.extend(value_paths(
        "emails",
        &["work", "personal", "alternate1", "alternate2"],
        &["value"],
    ));
    m.extend(["alternateEmail1Label", "alternateEmail2Label"].map(|a| ext(JOSTLE, a)));
    m
}

/// Joyn FSM: users (its groups, when provisioned, use Entra's default group mapping).
fn joynfsm_users() -> Vec<String> {
    let mut m = strings(&[
        "userName",
        "emails[type eq \"work\"].value",
        "active",
        "name.formatted",
        "displayName",
        "externalId",
        "name.givenName",
        "name.familyName",
        "phoneNumbers[type eq \"mobile\"].value",
    ]);
    m.extend(value_paths("addresses", &["work"], &WORK_ADDRESS));
    m.push(ext(ENTERPRISE, "department"));
    m.extend(["xid", "joynFieldId"].map(|a| ext(JOYN, a)));
    m
}

/// Juno Journey: users (its groups, when provisioned, use Entra's default group mapping).
fn junojourney_users() -> Vec<String> {
    let mut m = strings(&[
        "userName",
        "externalId",
        "displayName",
        "title",
        "active",
        "preferredLanguage",
        "emails[type eq \"work\"].value",
        "name.givenName",
        "name.familyName",
        "name.middleName",
        "name.formatted",
    ]);
    m.extend(value_paths(
        "addresses",
        &["work"],
        &[
            "country",
            "region",
            "locality",
            "postalCode",
            "formatted",
            "streetAddress",
        ],
    ));
    m.extend(value_paths(
        "phoneNumbers",
        &["fax", "mobile", "work"],
        &["value"],
    ));
    m.extend(
        [
            "department",
            "employeeNumber",
            "costCenter",
            "division",
            "manager",
            "organization",
        ]
        .map(|a| ext(ENTERPRISE, a)),
    );
    m
}

/// askSpoke: users, groups and memberships.
fn askspoke_users() -> Vec<String> {
    let mut m = strings(&[
        "userName",
        "emails[type eq \"work\"].value",
        "active",
        "title",
        "name.givenName",
        "name.familyName",
        "name.formatted",
        "externalId",
    ]);
    m.extend(value_paths(
        "addresses",
        &["work"],
        &["locality", "country", "region"],
    ));
    m.extend(["department", "manager"].map(|a| ext(ENTERPRISE, a)));
    m.push(ext(SPOKE, "startDate"));
    m
}

fn askspoke_groups() -> Vec<String> {
    strings(&["displayName", "members"])
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The validation's names for one core schema's attributes.
fn flatten_core(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for a in list(schema, "attributes") {
        let (name, ty) = (text(a, "name"), text(a, "type"));
        let subs = list(a, "subAttributes");
        if name == "manager" || name == "members" {
            out.push(name.to_string());
        } else if ty == "complex" && a["multiValued"] == true {
            let canonical = subs
                .iter()
                .find(|s| text(s, "name") == "type")
                .map(|t| list(t, "canonicalValues"))
                .unwrap_or(&[]);
            if canonical.is_empty() {
                for s in subs.iter().filter(|s| text(s, "name") != "primary") {
                    out.push(format!("{name}[primary eq \"True\"].{}", text(s, "name")));
                }
            } else {
                for v in canonical {
                    for s in subs
                        .iter()
                        .filter(|s| !["type", "primary"].contains(&text(s, "name")))
                    {
                        out.push(format!(
                            "{name}[type eq \"{}\"].{}",
                            v.as_str().unwrap_or(""),
                            text(s, "name")
                        ));
                    }
                }
            }
        } else if ty == "complex" {
            for s in subs
                .iter()
                .filter(|s| !["complex", "reference"].contains(&text(s, "type")))
            {
                out.push(format!("{name}.{}", text(s, "name")));
            }
        } else if ty != "reference" {
            out.push(name.to_string());
        }
    }
    out
}

/// (user names, group names) the validation builds from a `/Schemas` list.
fn flatten(schemas: &Value) -> (Vec<String>, Vec<String>) {
    let resources = list(schemas, "Resources");
    let core = |id: &str| {
        resources
            .iter()
            .find(|s| text(s, "id") == id)
            .map(flatten_core)
            .unwrap_or_default()
    };
    let mut users = core(USER);
    for s in resources
        .iter()
        .filter(|s| ![USER, GROUP].contains(&text(s, "id")))
    {
        users.extend(
            list(s, "attributes")
                .iter()
                .map(|a| format!("{}:{}", text(s, "id"), text(a, "name"))),
        );
    }
    (users, core(GROUP))
}

/// The mapping's targets the flattened names lack (compared ignoring case, as the validation does).
fn missing(mapping: &[String], flattened: &[String]) -> Vec<String> {
    let have: HashSet<String> = flattened.iter().map(|n| n.to_lowercase()).collect();
    mapping
        .iter()
        .filter(|m| !have.contains(&m.to_lowercase()))
        .cloned()
        .collect()
}

async fn discoverable(srv: &TestServer, profile: &str, users: Vec<String>, groups: Vec<String>) {
    let r = srv.get("/Schemas").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (flat_users, flat_groups) = flatten(&r.body);
    let (mu, mg) = (missing(&users, &flat_users), missing(&groups, &flat_groups));
    assert!(
        mu.is_empty() && mg.is_empty(),
        "{profile}: /Schemas does not advertise users {mu:?}, groups {mg:?}"
    );
    // No duplicates in the tables (each counts once), and the tables are not empty.
    assert_eq!(
        users
            .iter()
            .map(|m| m.to_lowercase())
            .collect::<HashSet<_>>()
            .len(),
        users.len(),
        "{profile}"
    );
    assert!(!users.is_empty());
    // What the test checked, for the record (`--nocapture`).
    println!(
        "{profile}: users {} of {} mapped targets found ({} names flattened): {users:?}",
        users.len() - mu.len(),
        users.len(),
        flat_users.len()
    );
    println!(
        "{profile}: groups {} of {} mapped targets found ({} names flattened): {groups:?}",
        groups.len() - mg.len(),
        groups.len(),
        flat_groups.len()
    );
}

async fn default(srv: TestServer) {
    discoverable(&srv, "default", default_users(), entra_default_groups()).await;
}

async fn jostle(srv: TestServer) {
    discoverable(&srv, "jostle", jostle_users(), vec![]).await;
    // Jostle serves no groups: no Group schema to flatten.
    let r = srv.get("/Schemas").await;
    assert!(
        list(&r.body, "Resources")
            .iter()
            .all(|s| text(s, "id") != GROUP),
        "{}",
        r.text
    );
}

async fn joynfsm(srv: TestServer) {
    discoverable(&srv, "joynfsm", joynfsm_users(), entra_default_groups()).await;
}

async fn junojourney(srv: TestServer) {
    discoverable(
        &srv,
        "junojourney",
        junojourney_users(),
        entra_default_groups(),
    )
    .await;
}

async fn askspoke(srv: TestServer) {
    discoverable(&srv, "askspoke", askspoke_users(), askspoke_groups()).await;
}

/// Listing `externalId` in the schemas changed none of its rules: a string, case-exact in filters, not
/// unique, readWrite, projected and PATCHed like any simple attribute, on users and groups alike.
async fn external_id_keeps_its_rules(srv: TestServer) {
    for (endpoint, body) in [
        ("/Users", json!({"userName": "ann@contoso.com"})),
        ("/Groups", json!({"displayName": "Sales"})),
    ] {
        let mut first = body.clone();
        first["externalId"] = json!("Ext-1");
        let made = srv.post(endpoint, &first).await;
        assert_eq!(
            (made.status, &made.body["externalId"]),
            (201, &json!("Ext-1")),
            "{}",
            made.text
        );
        let id = made.id();
        let count = |v: &str| {
            format!(
                "{endpoint}?filter={}",
                format!("externalId eq \"{v}\"")
                    .replace(' ', "%20")
                    .replace('"', "%22")
            )
        };
        assert_eq!(
            srv.get(&count("Ext-1")).await.body["totalResults"],
            1,
            "{endpoint}"
        );
        assert_eq!(
            srv.get(&count("ext-1")).await.body["totalResults"],
            0,
            "{endpoint}: caseExact"
        );
        let projected = srv
            .get(&format!("{endpoint}/{id}?attributes=externalId"))
            .await;
        assert_eq!(projected.body["externalId"], "Ext-1", "{}", projected.text);
        assert!(
            projected.body.get("userName").is_none() && projected.body.get("displayName").is_none(),
            "{}",
            projected.text
        );
        // Not a string: refused as before.
        let mut bad = body.clone();
        bad["externalId"] = json!(5);
        bad[if endpoint == "/Users" {
            "userName"
        } else {
            "displayName"
        }] = json!("other");
        let r = srv.post(endpoint, &bad).await;
        assert_eq!(
            (r.status, r.body["scimType"].as_str()),
            (400, Some("invalidValue")),
            "{}",
            r.text
        );
        // Not unique: a second resource may carry the same externalId.
        let mut second = bad.clone();
        second["externalId"] = json!("Ext-1");
        assert_eq!(
            srv.post(endpoint, &second).await.status,
            201,
            "{endpoint}: externalId is not unique"
        );
        assert_eq!(srv.get(&count("Ext-1")).await.body["totalResults"], 2);
        // PATCH by path and pathless, as Entra sends it; a path into a simple attribute is invalid.
        let ops = json!([{"op": "Replace", "path": "externalId", "value": "Ext-2"}]);
        assert!(
            srv.patch(&format!("{endpoint}/{id}"), &patch_body(ops))
                .await
                .status
                < 300
        );
        let ops = json!([{"op": "replace", "value": {"ExternalId": "Ext-3"}}]);
        assert!(
            srv.patch(&format!("{endpoint}/{id}"), &patch_body(ops))
                .await
                .status
                < 300
        );
        assert_eq!(
            srv.get(&format!("{endpoint}/{id}")).await.body["externalId"],
            "Ext-3"
        );
        let ops = json!([{"op": "add", "path": "externalId.x", "value": "y"}]);
        let r = srv
            .patch(&format!("{endpoint}/{id}"), &patch_body(ops))
            .await;
        assert_eq!(
            (r.status, r.body["scimType"].as_str()),
            (400, Some("invalidPath")),
            "{}",
            r.text
        );
        let ops = json!([{"op": "remove", "path": "externalId"}]);
        assert!(
            srv.patch(&format!("{endpoint}/{id}"), &patch_body(ops))
                .await
                .status
                < 300
        );
        assert!(srv
            .get(&format!("{endpoint}/{id}"))
            .await
            .body
            .get("externalId")
            .is_none());
    }
}

mod external_id {
    use super::*;
    scim_tests::engine_tests!(external_id_keeps_its_rules);
}

scim_tests::both_engines!(
    |engine, name| scim_tests::TestServer::start_profile(engine, name).await;
    default,
    jostle,
    joynfsm,
    junojourney,
    askspoke,
);

#[test]
fn the_flattening_follows_the_validation() {
    let schemas = serde_json::json!({"Resources": [
        {"id": USER, "attributes": [
            {"name": "userName", "type": "string"},
            {"name": "profileUrl", "type": "reference"},
            {"name": "name", "type": "complex", "subAttributes": [{"name": "givenName", "type": "string"}]},
            {"name": "emails", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "type", "type": "string", "canonicalValues": ["work", "home"]},
                {"name": "primary", "type": "boolean"}]},
            {"name": "roles", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "type": "string"}, {"name": "primary", "type": "boolean"}]}
        ]},
        {"id": "urn:x", "attributes": [{"name": "manager", "type": "complex"}]},
        {"id": GROUP, "attributes": [{"name": "members", "type": "complex", "multiValued": true}]}
    ]});
    let (users, groups) = flatten(&schemas);
    assert_eq!(
        users,
        [
            "userName",
            "name.givenName",
            "emails[type eq \"work\"].value",
            "emails[type eq \"home\"].value",
            "roles[primary eq \"True\"].value",
            "urn:x:manager",
        ]
    );
    assert_eq!(groups, ["members"]);
    assert_eq!(
        missing(&strings(&["USERNAME", "externalId"]), &users),
        ["externalId"]
    );
}
