//! What Microsoft Entra ID's provisioning service sends for users, and what it needs back: every
//! request/response pair of docs/entra-dialect.md §1.2–§1.5 and §1.7, and one test per
//! user-related quirk of §5 (`quirk_NN_…`). Each test runs on both engines (dynoxide and moto).

use reqwest::Method;
use scim_tests::patch_body;
use scim_tests::urn::{ENTERPRISE, ERROR, LIST, USER};
use scim_tests::SCIM_JSON;
use scim_tests::{entra_fixture, with_ids};
use scim_tests::{Resp, TestServer};
use serde_json::{json, Value};

/// The operations of a captured Entra PATCH (`shared/fixtures/entra/<name>.json`).
fn captured_ops(name: &str) -> Value {
    entra_fixture(name)["Operations"].clone()
}

const MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
const DEPARTMENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
const EMPLOYEE_NUMBER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";

// ---------------------------------------------------------------------------------------------
// Helpers

/// A minimal user.
fn user_body(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "active": true})
}

/// The POST of docs/entra-dialect.md §1.3 ([S1] "User Operations"), verbatim.
fn tutorial_user() -> Value {
    entra_fixture("user-post-tutorial")
}

/// What the server keeps of [`tutorial_user`] (no schemas, meta or empty roles).
fn tutorial_user_attrs() -> Value {
    json!({
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}
    })
}

/// [S1] "Example 2. Provision a user": explicit nulls and the malformed URN `enterprise:2.0User`, verbatim.
fn joy_young_user() -> Value {
    entra_fixture("user-post-nulls-and-malformed-urn")
}

fn joy_young_attrs() -> Value {
    json!({"externalId":"jyoung","userName":"jyoung@testuser.com","active":true,"displayName":"Joy Young",
     "emails":[{"type":"work","value":"jyoung@Contoso.com","primary":true}],
     "name":{"familyName":"Young","givenName":"Joy"}})
}

/// A user carrying the attributes the SCIM_Null_Update_Test clears.
fn null_update_user() -> Value {
    json!({"schemas": [USER, ENTERPRISE], "userName": "null.update@contoso.com", "active": true,
        "displayName": "Null Update", "title": "Engineer", "nickName": "Nully",
        "name": {"givenName": "Null", "familyName": "Update"},
        ENTERPRISE: {"department": "R&D", "employeeNumber": "42"}})
}

/// Percent-encode a query value the way Entra sends it (form encoding: space as `+`).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn filter_path(filter: &str) -> String {
    format!("/Users?filter={}", enc(filter))
}

/// A filter string value: quoted, with `"` and `\` escaped.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn user_path(id: &str) -> String {
    format!("/Users/{id}")
}

fn location(srv: &TestServer, id: &str) -> String {
    format!("{}/Users/{id}", srv.base)
}

/// The client's attributes of a resource: everything but `id`, `meta` and `schemas`.
fn attrs_of(resource: &Value) -> Value {
    let mut v = resource.clone();
    let m = v
        .as_object_mut()
        .unwrap_or_else(|| panic!("not a resource: {resource}"));
    m.remove("id");
    m.remove("meta");
    m.remove("schemas");
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().expect("object").remove(key);
    v
}

fn assert_scim_ct(r: &Resp) {
    let ct = r
        .header("content-type")
        .unwrap_or_else(|| panic!("no Content-Type on a {} answer: {}", r.status, r.text));
    assert_eq!(
        ct.split(';').next().unwrap().trim(),
        SCIM_JSON,
        "Content-Type of a {} answer: {}",
        r.status,
        r.text
    );
}

fn assert_timestamp(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {v}"));
    let b = s.as_bytes();
    assert!(
        s.len() >= 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && s.ends_with('Z'),
        "not RFC 3339 UTC: {s}"
    );
}

/// A SCIM Error: status, content type, schemas, string `status`, a `detail`.
fn assert_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_scim_ct(r);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{}", r.text);
    assert_eq!(r.body["status"], json!(status.to_string()), "{}", r.text);
    assert!(
        r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "no detail: {}",
        r.text
    );
}

/// 201 with everything Entra reads from a create: id, Location = meta.location, meta, ETag. Returns the id.
fn assert_created(srv: &TestServer, r: &Resp) -> String {
    assert_eq!(r.status, 201, "{}", r.text);
    assert_scim_ct(r);
    let id = r.id();
    assert!(!id.is_empty(), "empty id");
    let meta = &r.body["meta"];
    assert_eq!(meta["resourceType"], "User", "{}", r.text);
    assert_eq!(meta["location"], json!(location(srv, &id)), "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some(location(srv, &id).as_str()),
        "Location header"
    );
    assert_eq!(meta["version"], "W/\"1\"", "{}", r.text);
    assert_eq!(r.header("etag"), Some("W/\"1\""), "ETag header");
    assert_timestamp(&meta["created"]);
    assert_eq!(meta["lastModified"], meta["created"], "{}", r.text);
    id
}

async fn create(srv: &TestServer, body: &Value) -> (String, Resp) {
    let r = srv.post("/Users", body).await;
    (assert_created(srv, &r), r)
}

async fn get_user(srv: &TestServer, id: &str) -> Value {
    let r = srv.get(&user_path(id)).await;
    assert_eq!(r.status, 200, "GET /Users/{id}: {}", r.text);
    assert_scim_ct(&r);
    r.body
}

/// PATCH, expect 200 with the resource, and return the user as a following GET shows it.
async fn patch_ok(srv: &TestServer, id: &str, ops: Value) -> Value {
    let body = patch_body(ops);
    let r = srv.patch(&user_path(id), &body).await;
    assert_eq!(r.status, 200, "PATCH {body}: {}", r.text);
    assert_scim_ct(&r);
    let got = get_user(srv, id).await;
    assert_eq!(
        r.body, got,
        "the PATCH response is the resource as GET shows it"
    );
    got
}

/// A list request that must succeed; returns the ListResponse.
async fn list(srv: &TestServer, path: &str) -> Value {
    let r = srv.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    assert_scim_ct(&r);
    assert_eq!(r.body["schemas"], json!([LIST]), "GET {path}: {}", r.text);
    let n = r.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources array: {}", r.text))
        .len();
    assert_eq!(r.body["itemsPerPage"], json!(n), "GET {path}: {}", r.text);
    r.body
}

async fn find(srv: &TestServer, filter: &str) -> Value {
    list(srv, &filter_path(filter)).await
}

fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// The filter finds exactly the users `want` (by id).
async fn assert_finds(srv: &TestServer, filter: &str, want: &[&str]) -> Value {
    let l = find(srv, filter).await;
    assert_eq!(l["totalResults"], json!(want.len()), "{filter}: {l}");
    let mut got = ids(&l);
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{filter}: {l}");
    l
}

async fn set_active(srv: &TestServer, id: &str, op: &str, value: Value) -> Value {
    patch_ok(
        srv,
        id,
        json!([{"op": op, "path": "active", "value": value}]),
    )
    .await
}

/// A user to point a manager reference at.
async fn manager(srv: &TestServer, name: &str) -> String {
    srv.create_user(&user_body(name)).await
}

fn ext_manager(user: &Value) -> &Value {
    &user[ENTERPRISE]["manager"]
}

// ---------------------------------------------------------------------------------------------
// §1.2 Test Connection

async fn test_connection_returns_exactly_an_empty_list_response(srv: TestServer) {
    srv.create_user(&user_body("someone.else@contoso.com"))
        .await;
    let guid = scim_core::model::new_id();
    let r = srv
        .get(&format!("/Users?filter=userName+eq+%22{guid}%22"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_ct(&r);
    assert_eq!(
        r.body,
        json!({"schemas": [LIST], "totalResults": 0, "Resources": [], "startIndex": 1, "itemsPerPage": 0}),
        "Test Connection needs an empty ListResponse"
    );
}

// ---------------------------------------------------------------------------------------------
// §1.3 Create user: match first, then POST

async fn create_match_then_post_tutorial_user(srv: TestServer) {
    let name = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee";
    let l = find(&srv, &format!("userName eq {}", quoted(name))).await;
    assert_eq!(l["totalResults"], 0, "{l}");
    let (id, r) = create(&srv, &tutorial_user()).await;
    assert_eq!(r.body["schemas"], json!([USER]), "{}", r.text);
    assert_eq!(attrs_of(&r.body), tutorial_user_attrs(), "{}", r.text);
    let got = get_user(&srv, &id).await;
    assert_eq!(got, r.body, "GET returns what POST returned");
    // The next cycle's match finds it, with the same representation.
    let l = assert_finds(&srv, &format!("userName eq {}", quoted(name)), &[&id]).await;
    assert_eq!(l["Resources"][0], got);
}

async fn create_with_nulls_and_malformed_schema_urn(srv: TestServer) {
    let (id, r) = create(&srv, &joy_young_user()).await;
    assert_eq!(r.body["schemas"], json!([USER]), "{}", r.text);
    assert_eq!(
        attrs_of(&r.body),
        joy_young_attrs(),
        "nulls absent, values verbatim: {}",
        r.text
    );
    assert_eq!(
        r.body["emails"][0]["value"], "jyoung@Contoso.com",
        "case kept"
    );
    assert!(
        !r.text.contains("null"),
        "no nulls in the response: {}",
        r.text
    );
    assert_eq!(get_user(&srv, &id).await, r.body);
}

async fn create_with_roles(srv: TestServer) {
    let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"externalId":"alias","userName":"alias@contoso.OnMicrosoft.com",
        "active":true,"displayName":"First Name Last Name","meta":{"resourceType":"User"},
        "roles":[{"primary":true,"type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]});
    let (id, r) = create(&srv, &body).await;
    let want = json!({"externalId":"alias","userName":"alias@contoso.OnMicrosoft.com","active":true,"displayName":"First Name Last Name",
        "roles":[{"primary":true,"type":"WindowsAzureActiveDirectoryRole","value":"Admin"}]});
    assert_eq!(attrs_of(&r.body), want, "{}", r.text);
    assert_eq!(attrs_of(&get_user(&srv, &id).await), want);
}

// ---------------------------------------------------------------------------------------------
// §1.4 Update user (PATCH)

async fn patch_a_multi_valued_and_sub_attribute_replace(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let got = patch_ok(&srv, &id, captured_ops("user-patch-a-multi-valued-replace")).await;
    let mut want = tutorial_user_attrs();
    want["emails"][0]["value"] = json!("updatedEmail@microsoft.com");
    want["name"]["familyName"] = json!("updatedFamilyName");
    assert_eq!(attrs_of(&got), want);
}

async fn patch_b_single_valued_replace_of_user_name(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let old = "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee";
    let new = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com";
    let got = patch_ok(&srv, &id, captured_ops("user-patch-b-user-name")).await;
    let mut want = tutorial_user_attrs();
    want["userName"] = json!(new);
    assert_eq!(attrs_of(&got), want);
    assert_finds(&srv, &format!("userName eq {}", quoted(new)), &[&id]).await;
    assert_finds(&srv, &format!("userName eq {}", quoted(old)), &[]).await;
    // The old name is free again.
    srv.create_user(&user_body(old)).await;
}

async fn patch_c_replace_multiple_default_dialect(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let got = patch_ok(
        &srv,
        &id,
        captured_ops("user-patch-c-default-dialect-multi"),
    )
    .await;
    let mut want = tutorial_user_attrs();
    want["displayName"] = json!("Pvlo");
    want["emails"][0]["value"] = json!("TestBcwqnm@test.microsoft.com");
    want["name"]["givenName"] = json!("Gtfd");
    want["name"]["familyName"] = json!("Pkqf");
    want["externalId"] = json!("Eqpj");
    want[ENTERPRISE] = json!({"employeeNumber": "Eqpj"});
    assert_eq!(attrs_of(&got), want);
    assert_eq!(got["schemas"], json!([USER, ENTERPRISE]));
}

async fn patch_c_replace_multiple_flag_dialect(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let got = patch_ok(
        &srv,
        &id,
        captured_ops("user-patch-c-flag-dialect-pathless"),
    )
    .await;
    let mut want = tutorial_user_attrs();
    want["emails"][0]["value"] = json!("TestMhvaes@test.microsoft.com");
    want["displayName"] = json!("Bjfe");
    want["name"]["givenName"] = json!("Kkom");
    want["name"]["familyName"] = json!("Unua");
    want[ENTERPRISE] = json!({"employeeNumber": "Aklq"});
    assert_eq!(
        attrs_of(&got),
        want,
        "dotted keys are paths, never literal keys"
    );
    assert_eq!(got["schemas"], json!([USER, ENTERPRISE]));
}

async fn patch_c_pathless_add_with_dotted_keys(srv: TestServer) {
    let id = srv.create_user(&user_body("foo.bar@contoso.com")).await;
    let got = patch_ok(
        &srv,
        &id,
        captured_ops("user-patch-c-pathless-add-dotted-keys"),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "foo.bar@contoso.com", "active": true, "displayName": "Foo Bar", "title": "Bar Foo",
            "name": {"givenName": "Foo", "familyName": "Bar", "formatted": "Foo Bar"}})
    );
}

async fn patch_d_add_nick_name_in_both_dialects(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "Add", "path": "nickName", "value": "Babs"}]),
    )
    .await;
    let mut want = tutorial_user_attrs();
    want["nickName"] = json!("Babs");
    assert_eq!(attrs_of(&got), want);
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "add", "path": "nickName", "value": "Barbara"}]),
    )
    .await;
    want["nickName"] = json!("Barbara");
    assert_eq!(attrs_of(&got), want);
}

async fn patch_d_mixed_ops_in_one_request(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let got = patch_ok(&srv, &id, captured_ops("user-patch-d-mixed-ops")).await;
    let mut want = tutorial_user_attrs();
    want["emails"][0]["value"] = json!("AdeleV2@REDACTED.onmicrosoft.com");
    want["addresses"] = json!([{"type": "work", "formatted": "18/2111"}]);
    want[ENTERPRISE] = json!({"department": "Retail"});
    assert_eq!(attrs_of(&got), want);
}

async fn patch_d_add_work_email_to_user_without_one(srv: TestServer) {
    let id = srv.create_user(&user_body("no.mail@contoso.com")).await;
    let got = patch_ok(&srv, &id, json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "no.mail@Contoso.com"}])).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "no.mail@contoso.com", "active": true, "emails": [{"type": "work", "value": "no.mail@Contoso.com"}]})
    );
}

async fn patch_e_manager_tutorial_array_with_ref(srv: TestServer) {
    let m = manager(&srv, "boss@contoso.com").await;
    let id = srv.create_user(&user_body("report@contoso.com")).await;
    let reference = format!("http://example.com/scim/Users/{m}");
    let ops = with_ids(
        captured_ops("user-patch-e-manager-array-with-ref"),
        "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        &m,
    );
    let got = patch_ok(&srv, &id, ops).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "report@contoso.com", "active": true, ENTERPRISE: {"manager": {"$ref": reference, "value": m}}})
    );
    assert_eq!(got["schemas"], json!([USER, ENTERPRISE]));
}

async fn patch_e_manager_urn_path_bare_string(srv: TestServer) {
    let m = manager(&srv, "boss@contoso.com").await;
    let id = srv.create_user(&user_body("report@contoso.com")).await;
    let ops = with_ids(
        captured_ops("user-patch-e-manager-urn-bare-string"),
        "45619541-95de-4d5e-9872-571b5d2c5577",
        &m,
    );
    let got = patch_ok(&srv, &id, ops).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "report@contoso.com", "active": true, ENTERPRISE: {"manager": {"value": m}}})
    );
}

/// Microsoft's onboarding SCIM_Update_Manager_Test: set, change, remove with `""`.
async fn patch_e_manager_onboarding_set_change_remove(srv: TestServer) {
    let m1 = manager(&srv, "boss1@contoso.com").await;
    let m2 = manager(&srv, "boss2@contoso.com").await;
    let id = srv.create_user(&user_body("report@contoso.com")).await;
    let base = json!({"userName": "report@contoso.com", "active": true});

    let with_manager = |m: &str| json!({"userName": "report@contoso.com", "active": true, ENTERPRISE: {"manager": {"value": m}}});
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "Add", "path": MANAGER, "value": m1}]),
    )
    .await;
    assert_eq!(attrs_of(&got), with_manager(&m1));
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "replace", "path": MANAGER, "value": m2}]),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        with_manager(&m2),
        "the new manager replaces the old one"
    );
    let got = patch_ok(
        &srv,
        &id,
        captured_ops("user-patch-e-manager-clear-empty-string"),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        base,
        "manager removed, and the emptied extension with it"
    );
    assert_eq!(got["schemas"], json!([USER]));
}

/// scimvalidator.microsoft.com: add / replace `{"value": …}`, then remove by path.
async fn patch_e_manager_validator_object_and_remove(srv: TestServer) {
    let m1 = manager(&srv, "boss1@contoso.com").await;
    let m2 = manager(&srv, "boss2@contoso.com").await;
    let mut body = user_body("report@contoso.com");
    body[ENTERPRISE] = json!({"department": "Sales"});
    let id = srv.create_user(&body).await;

    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "add", "path": MANAGER, "value": {"value": m1}}]),
    )
    .await;
    assert_eq!(
        got[ENTERPRISE],
        json!({"department": "Sales", "manager": {"value": m1}})
    );
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "replace", "path": MANAGER, "value": {"value": m2}}]),
    )
    .await;
    assert_eq!(
        got[ENTERPRISE],
        json!({"department": "Sales", "manager": {"value": m2}})
    );
    let got = patch_ok(&srv, &id, json!([{"op": "remove", "path": MANAGER}])).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "report@contoso.com", "active": true, ENTERPRISE: {"department": "Sales"}})
    );
}

async fn patch_e_manager_remove_with_value_filter(srv: TestServer) {
    let m = manager(&srv, "boss@contoso.com").await;
    let id = srv.create_user(&user_body("report@contoso.com")).await;
    patch_ok(
        &srv,
        &id,
        json!([{"op": "Add", "path": MANAGER, "value": m}]),
    )
    .await;
    let ops = with_ids(
        captured_ops("user-patch-e-manager-remove-value-filter"),
        "45619541-95de-4d5e-9872-571b5d2c5577",
        &m,
    );
    let got = patch_ok(&srv, &id, ops).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "report@contoso.com", "active": true})
    );
}

async fn patch_f_remove_with_value_on_single_valued_path(srv: TestServer) {
    let mut body = user_body("leaver@contoso.com");
    body["emails"] = json!([{"type": "work", "value": "updated@example.org", "primary": true}, {"type": "other", "value": "alias@example.org"}]);
    let id = srv.create_user(&body).await;
    let got = patch_ok(&srv, &id, captured_ops("user-patch-f-remove-with-value")).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "leaver@contoso.com", "active": true,
            "emails": [{"type": "work", "primary": true}, {"type": "other", "value": "alias@example.org"}]}),
        "the work email's value is removed, nothing else"
    );
}

async fn patch_g_roles_stringified_json_and_assertive_replace(srv: TestServer) {
    let id = srv.create_user(&user_body("roles@contoso.com")).await;
    let ops = captured_ops("user-patch-g-roles-stringified-json");
    let stringified = ops[0]["value"].clone();
    let got = patch_ok(&srv, &id, ops).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "roles@contoso.com", "active": true, "roles": stringified}),
        "stored verbatim"
    );

    let ops = captured_ops("user-patch-g-roles-assertive-replace");
    let assertive = ops[0]["value"].clone();
    let got = patch_ok(&srv, &id, ops).await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "roles@contoso.com", "active": true, "roles": assertive}),
        "replace swaps the whole list"
    );
}

/// Microsoft's SCIM_Null_Update_Test: `""` by path, `""` pathless, then nulls by path and pathless;
/// each time the attributes must be gone afterwards.
async fn patch_h_null_update_sequence(srv: TestServer) {
    let (id, _) = create(&srv, &null_update_user()).await;
    let restore = json!([{"op": "replace", "value": {"displayName": "Null Update", "title": "Engineer", "nickName": "Nully",
        "name.givenName": "Null", DEPARTMENT: "R&D"}}]);
    let cleared = json!({"userName": "null.update@contoso.com", "active": true, "name": {"familyName": "Update"},
        ENTERPRISE: {"employeeNumber": "42"}});
    let paths = [
        "displayName",
        "title",
        "nickName",
        "name.givenName",
        DEPARTMENT,
    ];
    let by_path = |v: Value| {
        Value::Array(
            paths
                .iter()
                .map(|p| json!({"op": "replace", "path": p, "value": v}))
                .collect(),
        )
    };
    let pathless = |v: Value| json!([{"op": "replace", "value": {"displayName": v, "title": v, "nickName": v, "name.givenName": v, DEPARTMENT: v}}]);

    for (label, ops) in [
        ("\"\" by path", by_path(json!(""))),
        ("\"\" pathless", pathless(json!(""))),
        ("null by path", by_path(Value::Null)),
        ("null pathless", pathless(Value::Null)),
    ] {
        let got = patch_ok(&srv, &id, ops).await;
        assert_eq!(attrs_of(&got), cleared, "after clearing with {label}");
        let got = patch_ok(&srv, &id, restore.clone()).await;
        assert_eq!(
            attrs_of(&got),
            attrs_of(&without(null_update_user(), "schemas")),
            "restored after {label}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// §1.5 Disable / re-enable / delete

async fn disable_and_reenable_in_both_dialects(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    for (op, off) in [
        ("Replace", json!("False")),
        ("Replace", json!("false")),
        ("replace", json!(false)),
    ] {
        let got = set_active(&srv, &id, op, off.clone()).await;
        let mut want = tutorial_user_attrs();
        want["active"] = json!(false);
        assert_eq!(attrs_of(&got), want, "disabled with {off}");
        let got = set_active(&srv, &id, "Replace", json!("True")).await;
        assert_eq!(
            attrs_of(&got),
            tutorial_user_attrs(),
            "re-enabled with \"True\" after {off}"
        );
    }
}

async fn delete_then_get_is_404_and_second_delete_is_404(srv: TestServer) {
    let (id, _) = create(&srv, &joy_young_user()).await;
    let r = srv.delete(&user_path(&id)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "", "204 has no body");
    assert_error(&srv.get(&user_path(&id)).await, 404);
    assert_error(&srv.delete(&user_path(&id)).await, 404);
    assert_finds(&srv, "userName eq \"jyoung@testuser.com\"", &[]).await;
    assert_finds(&srv, "externalId eq \"jyoung\"", &[]).await;
}

// ---------------------------------------------------------------------------------------------
// §1.7 Schema discovery

fn has_no_nulls(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().all(has_no_nulls),
        Value::Object(m) => m.values().all(has_no_nulls),
        _ => true,
    }
}

fn attribute<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .unwrap_or_else(|| panic!("schema without attributes: {schema}"))
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("schema {} has no attribute {name}", schema["id"]))
}

/// A check of one served schema document.
type SchemaCheck = fn(&TestServer, &Value);

fn assert_user_schema(srv: &TestServer, s: &Value) {
    assert_eq!(s["id"], USER);
    assert_eq!(s["name"], "User");
    assert_eq!(
        s["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
    );
    assert_eq!(
        s["meta"]["location"],
        json!(format!("{}/Schemas/{USER}", srv.base))
    );
    let un = attribute(s, "userName");
    assert_eq!(
        (
            &un["type"],
            &un["required"],
            &un["caseExact"],
            &un["mutability"],
            &un["uniqueness"],
            &un["multiValued"]
        ),
        (
            &json!("string"),
            &json!(true),
            &json!(false),
            &json!("readWrite"),
            &json!("server"),
            &json!(false)
        )
    );
    assert_eq!(attribute(s, "active")["type"], "boolean");
    let emails = attribute(s, "emails");
    assert_eq!(emails["multiValued"], true);
    let subs: Vec<&Value> = emails["subAttributes"]
        .as_array()
        .expect("subAttributes")
        .iter()
        .map(|a| &a["name"])
        .collect();
    for sub in ["value", "type", "primary"] {
        assert!(
            subs.contains(&&json!(sub)),
            "emails.{sub} missing: {subs:?}"
        );
    }
    for name in [
        "name",
        "displayName",
        "nickName",
        "title",
        "preferredLanguage",
        "phoneNumbers",
        "addresses",
        "roles",
    ] {
        attribute(s, name);
    }
    assert!(has_no_nulls(s), "nulls in {s}");
}

fn assert_enterprise_schema(srv: &TestServer, s: &Value) {
    assert_eq!(s["id"], ENTERPRISE);
    assert_eq!(
        s["meta"]["location"],
        json!(format!("{}/Schemas/{ENTERPRISE}", srv.base))
    );
    for name in [
        "employeeNumber",
        "department",
        "costCenter",
        "organization",
        "division",
    ] {
        assert_eq!(attribute(s, name)["type"], "string", "{name}");
    }
    let m = attribute(s, "manager");
    assert_eq!(m["type"], "complex");
    assert_eq!(m["multiValued"], false);
    assert!(m["subAttributes"]
        .as_array()
        .expect("manager sub-attributes")
        .iter()
        .any(|a| a["name"] == "value"));
    assert!(has_no_nulls(s), "nulls in {s}");
}

async fn schemas_list_has_user_and_enterprise_schemas(srv: TestServer) {
    let l = list(&srv, "/Schemas").await;
    let resources = l["Resources"].as_array().expect("Resources");
    assert_eq!(l["totalResults"], json!(resources.len()));
    assert_eq!(l["startIndex"], 1);
    let by_id = |id: &str| {
        resources
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in /Schemas: {l}"))
    };
    assert_user_schema(&srv, by_id(USER));
    assert_enterprise_schema(&srv, by_id(ENTERPRISE));
}

async fn schema_by_urn(srv: TestServer) {
    let all = list(&srv, "/Schemas").await;
    let checks: [(&str, SchemaCheck); 2] = [
        (USER, assert_user_schema),
        (ENTERPRISE, assert_enterprise_schema),
    ];
    for (urn, check) in checks {
        let r = srv.get(&format!("/Schemas/{urn}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_scim_ct(&r);
        check(&srv, &r.body);
        let listed = all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == urn)
            .expect("listed");
        assert_eq!(
            &r.body, listed,
            "GET /Schemas/{urn} equals its /Schemas entry"
        );
    }
    assert_error(&srv.get("/Schemas/urn:example:nope").await, 404);
}

fn user_resource_type_doc(srv: &TestServer) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User", "name": "User", "endpoint": "/Users", "description": "User Account",
        "schema": USER, "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{}/ResourceTypes/User", srv.base)}
    })
}

async fn resource_types_list_and_user(srv: TestServer) {
    let l = list(&srv, "/ResourceTypes").await;
    let resources = l["Resources"].as_array().expect("Resources");
    assert_eq!(l["totalResults"], json!(resources.len()));
    let user = resources
        .iter()
        .find(|r| r["id"] == "User")
        .unwrap_or_else(|| panic!("no User in {l}"));
    assert_eq!(user, &user_resource_type_doc(&srv));
    let r = srv.get("/ResourceTypes/User").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_ct(&r);
    assert_eq!(r.body, user_resource_type_doc(&srv));
    assert_error(&srv.get("/ResourceTypes/Printer").await, 404);
}

async fn service_provider_config(srv: TestServer) {
    let r = srv.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_scim_ct(&r);
    let b = &r.body;
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(b["patch"]["supported"], true);
    assert_eq!(b["filter"]["supported"], true);
    assert_eq!(b["filter"]["maxResults"], 200);
    assert_eq!(
        (
            b["bulk"]["supported"].clone(),
            b["bulk"]["maxOperations"].clone(),
            b["bulk"]["maxPayloadSize"].clone()
        ),
        (json!(true), json!(50), json!(20_971_520))
    );
    assert_eq!(b["sort"]["supported"], false);
    assert_eq!(b["changePassword"]["supported"], false);
    assert_eq!(b["etag"]["supported"], true);
    assert_eq!(b["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        b["meta"]["location"],
        json!(format!("{}/ServiceProviderConfig", srv.base))
    );
    assert!(has_no_nulls(b), "{b}");
}

async fn discovery_endpoints_refuse_writes_with_405(srv: TestServer) {
    let paths = [
        "/Schemas".to_string(),
        format!("/Schemas/{USER}"),
        "/ResourceTypes".into(),
        "/ResourceTypes/User".into(),
        "/ServiceProviderConfig".into(),
    ];
    for path in &paths {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let body = json!({"schemas": [USER], "userName": "x"});
            let r = srv
                .call(
                    method.clone(),
                    path,
                    (method != Method::DELETE).then_some(&body),
                )
                .await;
            assert_error(&r, 405);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Filters, paging, projection, versions

async fn duplicate_user_name_differing_in_case_is_409_uniqueness(srv: TestServer) {
    let id = srv.create_user(&user_body("Dup.User@Contoso.com")).await;
    let r = srv.post("/Users", &user_body("dup.user@contoso.COM")).await;
    assert_error(&r, 409);
    assert_eq!(r.body["scimType"], "uniqueness", "{}", r.text);
    assert_eq!(list(&srv, "/Users").await["totalResults"], 1);
    // A rename onto a taken name (in another case) is refused the same way, and changes nothing.
    let other = srv.create_user(&user_body("other@contoso.com")).await;
    let before = get_user(&srv, &other).await;
    let r = srv
        .patch(
            &user_path(&other),
            &patch_body(
                json!([{"op": "Replace", "path": "userName", "value": "DUP.USER@CONTOSO.COM"}]),
            ),
        )
        .await;
    assert_error(&r, 409);
    assert_eq!(r.body["scimType"], "uniqueness", "{}", r.text);
    assert_eq!(get_user(&srv, &other).await, before);
    assert_finds(&srv, "userName eq \"dup.user@contoso.com\"", &[&id]).await;
}

async fn external_id_filter_unquoted_and_quoted(srv: TestServer) {
    let (id, _) = create(&srv, &joy_young_user()).await;
    srv.create_user(&json!({"userName": "other@contoso.com", "externalId": "jyoung2"}))
        .await;
    let l = list(&srv, "/Users?filter=externalId+eq+jyoung").await;
    assert_eq!(l["totalResults"], 1, "{l}");
    assert_eq!(ids(&l), vec![id.clone()]);
    assert_finds(&srv, "externalId eq \"jyoung\"", &[&id]).await;
    let l = list(&srv, "/Users?filter=externalId eq jyoung").await;
    assert_eq!(ids(&l), [id]);
}

async fn emails_value_path_filter(srv: TestServer) {
    let (id, _) = create(&srv, &joy_young_user()).await;
    let mut other = user_body("other@contoso.com");
    other["emails"] = json!([{"type": "other", "value": "jyoung@Contoso.com"}, {"type": "work", "value": "other@Contoso.com"}]);
    srv.create_user(&other).await;
    assert_finds(
        &srv,
        "emails[type eq \"work\"].value eq \"jyoung@Contoso.com\"",
        &[&id],
    )
    .await;
    assert_finds(
        &srv,
        "emails[type eq \"work\"].value eq \"nobody@Contoso.com\"",
        &[],
    )
    .await;
}

async fn id_and_manager_reference_check_with_attributes_id(srv: TestServer) {
    let m = manager(&srv, "boss@contoso.com").await;
    let id = srv.create_user(&user_body("report@contoso.com")).await;
    patch_ok(
        &srv,
        &id,
        json!([{"op": "Add", "path": MANAGER, "value": m}]),
    )
    .await;

    let l = list(
        &srv,
        &format!(
            "{}&attributes=id",
            filter_path(&format!("id eq \"{id}\" and manager eq \"{m}\""))
        ),
    )
    .await;
    assert_eq!(l["totalResults"], 1, "{l}");
    let r = &l["Resources"][0];
    assert_eq!(r["id"], json!(id));
    let mut keys: Vec<&String> = r.as_object().expect("resource").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["id", "schemas"],
        "attributes=id returns only id (and schemas): {r}"
    );

    let other = list(
        &srv,
        &format!(
            "{}&attributes=id",
            filter_path(&format!("id eq \"{id}\" and manager eq \"{id}\""))
        ),
    )
    .await;
    assert_eq!(other["totalResults"], 0, "{other}");
    assert_eq!(other["Resources"], json!([]));
}

async fn paging_the_onboarding_way(srv: TestServer) {
    let mut created = Vec::new();
    for i in 0..11 {
        created.push(
            srv.create_user(&user_body(&format!("page.user.{i:02}@contoso.com")))
                .await,
        );
    }
    let mut seen = Vec::new();
    for (start, items) in [(1, 5), (6, 5), (11, 1)] {
        let l = list(&srv, &format!("/Users?startIndex={start}&count=5")).await;
        assert_eq!(l["startIndex"], start, "{l}");
        assert_eq!(l["itemsPerPage"], items, "{l}");
        assert_eq!(l["totalResults"], 11, "{l}");
        seen.extend(ids(&l));
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "duplicates across pages: {seen:?}"
    );
    created.sort();
    assert_eq!(unique, created, "the pages cover every user");
}

async fn attributes_and_excluded_attributes_on_get_and_list(srv: TestServer) {
    let (id, _) = create(&srv, &joy_young_user()).await;
    let m = manager(&srv, "boss@contoso.com").await;
    let full = patch_ok(
        &srv,
        &id,
        json!([{"op": "Add", "path": MANAGER, "value": m}]),
    )
    .await;

    // `schemas` is the server's business; the projected attributes are compared without it.
    let r = srv
        .get(&format!("/Users/{id}?attributes=userName,name.givenName"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        without(r.body, "schemas"),
        json!({"id": id, "userName": "jyoung@testuser.com", "name": {"givenName": "Joy"}})
    );

    let r = srv
        .get(&format!(
            "/Users/{id}?excludedAttributes=emails,name.familyName,{ENTERPRISE}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut want = without(without(full.clone(), "emails"), ENTERPRISE);
    want["name"] = json!({"givenName": "Joy"});
    assert_eq!(without(r.body, "schemas"), without(want, "schemas"));

    let l = list(
        &srv,
        &format!(
            "{}&attributes=userName",
            filter_path("externalId eq \"jyoung\"")
        ),
    )
    .await;
    assert_eq!(l["totalResults"], 1, "{l}");
    assert_eq!(
        without(l["Resources"][0].clone(), "schemas"),
        json!({"id": id, "userName": "jyoung@testuser.com"})
    );

    let l = list(&srv, "/Users?excludedAttributes=emails,name").await;
    assert_eq!(l["totalResults"], 2, "{l}");
    let joy = l["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == json!(id))
        .expect("listed");
    assert_eq!(joy, &without(without(full, "emails"), "name"));
}

async fn unchanged_patch_and_put_keep_version_and_last_modified(srv: TestServer) {
    let (id, created) = create(&srv, &tutorial_user()).await;
    let meta = created.body["meta"].clone();
    for ops in [
        json!([{"op": "Replace", "path": "name.familyName", "value": "familyName"}]),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
        json!([{"op": "replace", "value": {"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "name.givenName": "givenName"}}]),
    ] {
        let got = patch_ok(&srv, &id, ops.clone()).await;
        assert_eq!(got["meta"], meta, "{ops} changed nothing");
    }
    let r = srv.put(&user_path(&id), &tutorial_user()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["meta"], meta, "PUT of the same body changes nothing");
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(get_user(&srv, &id).await, created.body);
}

async fn changing_patch_bumps_version_and_etag(srv: TestServer) {
    let (id, created) = create(&srv, &tutorial_user()).await;
    let r = srv
        .patch(
            &user_path(&id),
            &patch_body(json!([{"op": "Replace", "path": "displayName", "value": "Changed"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(r.body["meta"]["created"], created.body["meta"]["created"]);
    assert_timestamp(&r.body["meta"]["lastModified"]);
    assert!(
        r.body["meta"]["lastModified"].as_str() >= created.body["meta"]["lastModified"].as_str()
    );
    let g = srv.get(&user_path(&id)).await;
    assert_eq!(g.header("etag"), Some("W/\"2\""));
    assert_eq!(g.body, r.body);
}

// ---------------------------------------------------------------------------------------------
// §5 quirks

// "`active` sent as string `"False"`/`"True"` (also `"false"`), op `Replace`"
async fn quirk_01_active_string_false(srv: TestServer) {
    let id = srv
        .create_user(&user_body("active.string@contoso.com"))
        .await;
    let got = set_active(&srv, &id, "Replace", json!("False")).await;
    assert_eq!(got["active"], json!(false), "stored as a JSON boolean");
    let got = set_active(&srv, &id, "Replace", json!("True")).await;
    assert_eq!(got["active"], json!(true));
}

// "Capitalised `op` values (`Add`/`Replace`/`Remove`)."
async fn quirk_02_capitalised_op_values(srv: TestServer) {
    let mut body = user_body("ops@contoso.com");
    body["title"] = json!("Old Title");
    let id = srv.create_user(&body).await;
    let got = patch_ok(
        &srv,
        &id,
        json!([
            {"op": "Add", "path": "nickName", "value": "Opsy"},
            {"op": "Replace", "path": "displayName", "value": "Ops Person"},
            {"op": "Remove", "path": "title"}
        ]),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "ops@contoso.com", "active": true, "nickName": "Opsy", "displayName": "Ops Person"})
    );
}

// "Pathless PATCH with dotted keys (`"name.givenName"`, `"urn:…:enterprise:2.0:User:employeeNumber"`)"
async fn quirk_03_pathless_patch_with_dotted_keys(srv: TestServer) {
    let id = srv.create_user(&user_body("dotted@contoso.com")).await;
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "add", "value": {
            "emails[type eq \"work\"].value": "dotted@Contoso.com",
            "name.givenName": "Dot",
            EMPLOYEE_NUMBER: "7",
            "nickName": "Dotty"
        }}]),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "dotted@contoso.com", "active": true, "emails": [{"type": "work", "value": "dotted@Contoso.com"}],
            "name": {"givenName": "Dot"}, ENTERPRISE: {"employeeNumber": "7"}, "nickName": "Dotty"}),
        "no literal dotted keys are stored"
    );
    // The validator's "Update User userName".
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "replace", "value": {"userName": "emilio@hermann.uk"}}]),
    )
    .await;
    assert_eq!(got["userName"], "emilio@hermann.uk");
    assert_finds(&srv, "userName eq \"emilio@hermann.uk\"", &[&id]).await;
}

// "Manager sent as bare string / array / object; must be returned as object"
async fn quirk_06_manager_shapes_returned_as_object(srv: TestServer) {
    let m1 = manager(&srv, "boss1@contoso.com").await;
    let m2 = manager(&srv, "boss2@contoso.com").await;
    let r1 = location(&srv, &m1);
    let id = srv.create_user(&user_body("report@contoso.com")).await;
    let shapes = [
        (
            json!([{"op": "Add", "path": MANAGER, "value": m1}]),
            json!({"value": m1}),
        ),
        (
            json!([{"op": "Replace", "path": MANAGER, "value": {"value": m2}}]),
            json!({"value": m2}),
        ),
        (
            json!([{"op": "Replace", "path": MANAGER, "value": {"Value": m1}}]),
            json!({"value": m1}),
        ),
        (
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": r1, "value": m1}]}]),
            json!({"$ref": r1, "value": m1}),
        ),
        (
            json!([{"op": "replace", "value": {MANAGER: m2}}]),
            json!({"value": m2}),
        ),
        (
            json!([{"op": "replace", "value": {ENTERPRISE: {"manager": m1}}}]),
            json!({"value": m1}),
        ),
    ];
    for (ops, want) in shapes {
        let got = patch_ok(&srv, &id, ops.clone()).await;
        assert!(
            ext_manager(&got).is_object(),
            "manager returned as an object: {got}"
        );
        assert_eq!(
            attrs_of(&got),
            json!({"userName": "report@contoso.com", "active": true, ENTERPRISE: {"manager": want}}),
            "after {ops}"
        );
    }
    // POST with a bare string manager.
    let mut body = user_body("report2@contoso.com");
    body[ENTERPRISE] = json!({"manager": m2});
    let (_, r) = create(&srv, &body).await;
    assert_eq!(ext_manager(&r.body), &json!({"value": m2}), "{}", r.text);
}

// "`Add` on a value-path whose element doesn't exist … must create it."
async fn quirk_07_add_on_missing_value_path_element_creates_it(srv: TestServer) {
    let mut body = user_body("add.missing@contoso.com");
    body["emails"] = json!([{"type": "other", "value": "alias@contoso.com"}]);
    let id = srv.create_user(&body).await;
    let got = patch_ok(
        &srv,
        &id,
        json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "work@contoso.com"},
            {"op": "Add", "path": "addresses[type eq \"work\"].country", "value": "DE"}
        ]),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "add.missing@contoso.com", "active": true,
            "emails": [{"type": "other", "value": "alias@contoso.com"}, {"type": "work", "value": "work@contoso.com"}],
            "addresses": [{"type": "work", "country": "DE"}]})
    );
}

// "One unsupported path fails the whole PATCH — including the `active=false` in the same request."
async fn quirk_08_default_mapping_paths_do_not_block_deactivation(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await;
    let got = patch_ok(&srv, &id, json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "moved@contoso.com"},
        {"op": "Add", "path": "emails[type eq \"other\"].Value", "value": "alias@contoso.com"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"},
        {"op": "Replace", "path": "addresses[type eq \"other\"].Formatted", "value": "PO Box 1"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 425 555 0100"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0101"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 425 555 0102"},
        {"op": "Replace", "path": "title", "value": "Engineer"},
        {"op": "Add", "path": DEPARTMENT, "value": "Retail"},
        {"op": "Add", "path": EMPLOYEE_NUMBER, "value": "E1"},
        {"op": "Replace", "path": "active", "value": "False"}
    ]))
    .await;
    let mut want = tutorial_user_attrs();
    want["active"] = json!(false);
    want["emails"] = json!([{"primary": true, "type": "work", "value": "moved@contoso.com"}, {"type": "other", "value": "alias@contoso.com"}]);
    want["addresses"] = json!([{"type": "work", "streetAddress": "1 Main St", "postalCode": "98052"}, {"type": "other", "formatted": "PO Box 1"}]);
    want["phoneNumbers"] = json!([{"type": "work", "value": "+1 425 555 0100"}, {"type": "mobile", "value": "+1 425 555 0101"},
        {"type": "fax", "value": "+1 425 555 0102"}]);
    want["title"] = json!("Engineer");
    want[ENTERPRISE] = json!({"department": "Retail", "employeeNumber": "E1"});
    assert_eq!(attrs_of(&got), want);
}

// "Remove with a `value` on single-valued paths"
async fn quirk_09_remove_with_value_on_single_valued_path(srv: TestServer) {
    let mut body = user_body("remove.value@contoso.com");
    body["title"] = json!("Old Title");
    body[ENTERPRISE] = json!({"department": "Sales", "employeeNumber": "9"});
    let id = srv.create_user(&body).await;
    let got = patch_ok(
        &srv,
        &id,
        json!([
            {"op": "Remove", "path": "title", "value": "Old Title"},
            {"op": "Remove", "path": DEPARTMENT, "value": "Sales"}
        ]),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "remove.value@contoso.com", "active": true, ENTERPRISE: {"employeeNumber": "9"}})
    );
}

// "`roles` values are stringified JSON for AppRoleAssignmentsComplex"
async fn quirk_10_roles_values_are_stringified_json(srv: TestServer) {
    let roles = json!([{"value": "{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"Admin\",\"displayName\":\"Admin\"}"}]);
    let mut body = user_body("roles@contoso.com");
    body["roles"] = roles.clone();
    let (id, r) = create(&srv, &body).await;
    assert_eq!(
        r.body["roles"], roles,
        "stored and returned verbatim (a string, not parsed)"
    );
    let more = json!([{"value": "{\"id\":\"06b07648-ecfe-599f-9d2f-6325724a46ee\",\"value\":\"User\",\"displayName\":\"User\"}"}]);
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "Add", "path": "roles", "value": more}]),
    )
    .await;
    assert_eq!(got["roles"], json!([roles[0], more[0]]));
}

// "Non-standard / malformed `schemas` on create … Don't reject unknown schema URIs."
async fn quirk_11_unknown_and_malformed_schema_urns_accepted(srv: TestServer) {
    for (i, extra) in [
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User",
        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"schemas": [USER, extra], "userName": format!("schema{i}@contoso.com")});
        let (_, r) = create(&srv, &body).await;
        assert_eq!(r.body["schemas"], json!([USER]), "{}", r.text);
    }
}

// "Explicit `null`s, `roles: []`, `meta:{resourceType}` in POST — ignore nulls and read-only input."
async fn quirk_12_nulls_empty_roles_and_meta_in_post_ignored(srv: TestServer) {
    let body = json!({"schemas": [USER], "userName": "nulls@contoso.com", "active": true, "title": null, "addresses": null,
        "phoneNumbers": null, "roles": [], "meta": {"resourceType": "User"}, "name": {"givenName": "N", "familyName": null},
        ENTERPRISE: {"department": null, "manager": null}});
    let (id, r) = create(&srv, &body).await;
    let want = json!({"userName": "nulls@contoso.com", "active": true, "name": {"givenName": "N"}});
    assert_eq!(attrs_of(&r.body), want, "{}", r.text);
    assert_eq!(
        r.body["schemas"],
        json!([USER]),
        "an emptied extension is not advertised"
    );
    assert_eq!(attrs_of(&get_user(&srv, &id).await), want);
}

// "Filter GET returning 404 (instead of empty ListResponse) → quarantine"
async fn quirk_13_filter_without_match_is_empty_list_not_404(srv: TestServer) {
    srv.create_user(&user_body("present@contoso.com")).await;
    for f in [
        "userName eq \"absent@contoso.com\"",
        "externalId eq \"absent\"",
        "emails[type eq \"work\"].value eq \"absent@contoso.com\"",
        "displayName eq \"Absent\"",
        "id eq \"00000000-0000-4000-8000-000000000000\"",
    ] {
        let l = find(&srv, f).await;
        assert_eq!(l["totalResults"], 0, "{f}: {l}");
        assert_eq!(l["Resources"], json!([]), "{f}: {l}");
        assert_eq!(l["startIndex"], 1, "{f}: {l}");
    }
    // By id, absent is 404 (that is where a 404 belongs).
    assert_error(
        &srv.get("/Users/00000000-0000-4000-8000-000000000000").await,
        404,
    );
}

// "Wrong response Content-Type (`application/json`) → validator aborts"
async fn quirk_15_responses_are_application_scim_json(srv: TestServer) {
    let (id, _) = create(&srv, &tutorial_user()).await; // create() checks the 201's Content-Type
    assert_scim_ct(&srv.get(&user_path(&id)).await);
    assert_scim_ct(&srv.get("/Users").await);
    assert_scim_ct(&srv.get(&filter_path("userName eq \"nobody\"")).await);
    assert_scim_ct(
        &srv.patch(
            &user_path(&id),
            &patch_body(json!([{"op": "Replace", "path": "title", "value": "T"}])),
        )
        .await,
    );
    assert_scim_ct(&srv.put(&user_path(&id), &tutorial_user()).await);
    assert_scim_ct(&srv.get("/Users/nope").await);
    assert_scim_ct(&srv.post("/Users", &tutorial_user()).await);
    for p in ["/Schemas", "/ResourceTypes", "/ServiceProviderConfig"] {
        assert_scim_ct(&srv.get(p).await);
    }
}

// "Case-sensitive filter matching → validator "different case" tests fail"
async fn quirk_16_filter_matching_is_case_insensitive(srv: TestServer) {
    let id = srv.create_user(&user_body("ford_purdy@romaguera.uk")).await;
    let l = assert_finds(&srv, "userName eq \"FORD_PURDY@ROMAGUERA.UK\"", &[&id]).await;
    assert_eq!(
        l["Resources"][0]["userName"], "ford_purdy@romaguera.uk",
        "stored case returned"
    );
    assert_finds(&srv, "UserName eq \"Ford_Purdy@Romaguera.uk\"", &[&id]).await;
    assert_finds(&srv, "username EQ \"ford_purdy@romaguera.uk\"", &[&id]).await;
}

// "String booleans in responses (`"primary":"True"`) → validator parse error"
async fn quirk_17_booleans_returned_as_json_booleans(srv: TestServer) {
    let body = json!({"schemas": [USER], "userName": "bools@contoso.com", "active": "True",
        "emails": [{"value": "a@contoso.com", "type": "work", "primary": "True"}]});
    let (id, r) = create(&srv, &body).await;
    assert_eq!(r.body["active"], json!(true), "{}", r.text);
    assert_eq!(
        r.body["emails"],
        json!([{"value": "a@contoso.com", "type": "work", "primary": true}]),
        "{}",
        r.text
    );
    let got = patch_ok(&srv, &id, json!([
        {"op": "Add", "path": "emails", "value": [{"value": "b@contoso.com", "type": "other", "primary": "true"}]}
    ]))
    .await;
    assert_eq!(
        got["emails"],
        json!([{"value": "a@contoso.com", "type": "work", "primary": false}, {"value": "b@contoso.com", "type": "other", "primary": true}]),
        "booleans, and a single primary"
    );
    let got = patch_ok(
        &srv,
        &id,
        json!([{"op": "Replace", "path": "emails[type eq \"other\"].primary", "value": "False"}]),
    )
    .await;
    assert_eq!(got["emails"][1]["primary"], json!(false));
    let l = find(&srv, "userName eq \"bools@contoso.com\"").await;
    assert_eq!(l["Resources"][0]["active"], json!(true));
    assert!(
        !l.to_string().contains("\"True\"") && !l.to_string().contains("\"False\""),
        "{l}"
    );
}

/// A GET sent over a plain TCP connection with no `User-Agent` header (as Entra's Test Connection does).
async fn get_without_user_agent(srv: &TestServer, path: &str) -> (String, Value) {
    use std::io::{Read, Write};
    let rest = srv.base.strip_prefix("http://").expect("http base URL");
    let (host, prefix) = rest.split_once('/').expect("base path");
    let request = format!(
        "GET /{prefix}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nAccept: application/scim+json\r\nConnection: close\r\n\r\n",
        srv.token
    );
    assert!(!request.to_ascii_lowercase().contains("user-agent"));
    let host = host.to_string();
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&host).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    })
    .await
    .expect("join");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {raw}"));
    (
        head.to_string(),
        serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {raw}")),
    )
}

// "Missing `User-Agent` on Entra requests → WAF/edge 403 on Test Connection"
async fn quirk_18_request_without_user_agent_is_served(srv: TestServer) {
    let guid = scim_core::model::new_id();
    let (head, body) =
        get_without_user_agent(&srv, &format!("/Users?filter=userName+eq+%22{guid}%22")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/scim+json"),
        "{head}"
    );
    assert_eq!(
        body,
        json!({"schemas": [LIST], "totalResults": 0, "Resources": [], "startIndex": 1, "itemsPerPage": 0})
    );
}

// "Query decoding: `+` means space … double decoding corrupts `%2B` … Decode exactly once"
async fn quirk_19_query_decoded_exactly_once(srv: TestServer) {
    let plus = srv.create_user(&user_body("a+b@x.com")).await;
    let space = srv.create_user(&user_body("a b@x.com")).await;
    let percent = srv.create_user(&user_body("a%2Bb@x.com")).await;
    let cases = [
        ("filter=userName+eq+%22a%2Bb%40x.com%22", &plus),
        ("filter=userName+eq+%22a+b%40x.com%22", &space),
        ("filter=userName%20eq%20%22a%20b@x.com%22", &space),
        ("filter=userName+eq+%22a%252Bb%40x.com%22", &percent),
        ("filter=userName+eq+\"a%2Bb%40x.com\"", &plus),
    ];
    for (q, want) in cases {
        let l = list(&srv, &format!("/Users?{q}")).await;
        assert_eq!(ids(&l), [want.to_string()], "{q}: {l}");
    }
}

// "Transforming stored values (lower-casing, phone formatting) → endless re-PATCH each cycle"
async fn quirk_20_values_returned_verbatim_so_no_repatch(srv: TestServer) {
    let body = json!({"schemas": [USER], "userName": "Ann.Example@Contoso.COM", "displayName": "  Ann  EXAMPLE ",
        "phoneNumbers": [{"value": "+1 (555) 010-0000", "type": "work"}], "emails": [{"value": "Ann.Example@CONTOSO.com", "type": "work"}],
        "preferredLanguage": "en-US", "locale": "en_US", "timezone": "America/Los_Angeles", ENTERPRISE: {"employeeNumber": "007"}});
    let (id, r) = create(&srv, &body).await;
    let want = without(body, "schemas");
    assert_eq!(attrs_of(&r.body), want, "POST response verbatim");
    assert_eq!(attrs_of(&get_user(&srv, &id).await), want, "GET verbatim");
    let l = find(&srv, "userName eq \"ann.example@contoso.com\"").await;
    assert_eq!(attrs_of(&l["Resources"][0]), want, "list verbatim");
    // Entra diffs what it reads against its source: sending the same values again changes nothing.
    let got = patch_ok(&srv, &id, json!([
        {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 (555) 010-0000"},
        {"op": "Replace", "path": "displayName", "value": "  Ann  EXAMPLE "},
        {"op": "Replace", "path": EMPLOYEE_NUMBER, "value": "007"}
    ]))
    .await;
    assert_eq!(
        got["meta"]["version"], "W/\"1\"",
        "nothing changed, nothing written"
    );
}

// "`id` must be stable and never reused: Entra caches it"
async fn quirk_22_id_stable_and_never_reused(srv: TestServer) {
    let (id, _) = create(&srv, &joy_young_user()).await;
    let mut put = joy_young_user();
    put["id"] = json!("client-chosen-id");
    put["title"] = json!("CEO");
    let r = srv.put(&user_path(&id), &put).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], json!(id), "PUT cannot change the id");
    assert_error(&srv.get("/Users/client-chosen-id").await, 404);
    let r = srv
        .patch(
            &user_path(&id),
            &patch_body(json!([{"op": "replace", "value": {"displayName": "Joy Y."}}])),
        )
        .await;
    assert_eq!(r.body["id"], json!(id), "{}", r.text);
    assert_eq!(get_user(&srv, &id).await["id"], json!(id));
    assert_eq!(srv.delete(&user_path(&id)).await.status, 204);
    let (again, _) = create(&srv, &joy_young_user()).await;
    assert_ne!(again, id, "a re-created user gets a new id");
    assert_error(&srv.get(&user_path(&id)).await, 404);
}

// "Soft-deleted users disappearing from GET/filter → Entra re-creates / errors; they must remain visible"
async fn quirk_23_disabled_users_stay_visible(srv: TestServer) {
    let (id, _) = create(&srv, &joy_young_user()).await;
    set_active(&srv, &id, "Replace", json!("False")).await;
    assert_eq!(get_user(&srv, &id).await["active"], json!(false));
    for f in [
        "userName eq \"jyoung@testuser.com\"",
        "externalId eq \"jyoung\"",
        "active eq false",
    ] {
        let l = assert_finds(&srv, f, &[&id]).await;
        assert_eq!(l["Resources"][0]["active"], json!(false), "{f}: {l}");
    }
    let l = list(&srv, "/Users").await;
    assert_eq!(ids(&l), vec![id.clone()]);
    assert_eq!(l["Resources"][0]["active"], json!(false));
}

// "Special characters in filter values — Entra can't query them, but Microsoft tests use parentheses"
async fn quirk_26_special_characters_in_filter_values(srv: TestServer) {
    let names = [
        "LACreateUser-(a1b2c3d4)@contoso.com",
        "O'Neil, Pat (Ops)@contoso.com",
        "quote\"inside@contoso.com",
        "back\\slash@contoso.com",
        "x) or (userName pr@contoso.com",
    ];
    let mut created = Vec::new();
    for n in names {
        let mut body = user_body(n);
        body["displayName"] = json!(format!("DN {n}"));
        created.push(srv.create_user(&body).await);
    }
    for (n, id) in names.iter().zip(&created) {
        assert_finds(&srv, &format!("userName eq {}", quoted(n)), &[id]).await;
        assert_finds(
            &srv,
            &format!("displayName eq {}", quoted(&format!("DN {n}"))),
            &[id],
        )
        .await;
    }
}

// "Clearing attributes: … Microsoft tests send `""`/null via replace and pathless replace; don't 400 on empty strings for optional attributes."
async fn quirk_27_clearing_with_empty_string_and_null(srv: TestServer) {
    let (id, _) = create(&srv, &null_update_user()).await;
    let got = patch_ok(
        &srv,
        &id,
        json!([
            {"op": "Replace", "path": "title", "value": ""},
            {"op": "Replace", "path": "nickName", "value": null},
            {"op": "replace", "value": {"displayName": "", DEPARTMENT: null}}
        ]),
    )
    .await;
    assert_eq!(
        attrs_of(&got),
        json!({"userName": "null.update@contoso.com", "active": true, "name": {"givenName": "Null", "familyName": "Update"},
            ENTERPRISE: {"employeeNumber": "42"}})
    );
    // The required userName cannot be cleared: 400, and nothing of the request is applied.
    let before = get_user(&srv, &id).await;
    let r = srv
        .patch(
            &user_path(&id),
            &patch_body(
                json!([{"op": "Replace", "path": "name.givenName", "value": ""},
        {"op": "Replace", "path": "userName", "value": ""}]),
            ),
        )
        .await;
    assert_error(&r, 400);
    assert_eq!(r.body["scimType"], "invalidValue", "{}", r.text);
    assert_eq!(get_user(&srv, &id).await, before);
}

// "Capitalised keys in Microsoft's Postman/validator payloads (`UserName`, `Primary`, `Manager.Value`)"
async fn quirk_30_capitalised_keys_in_payloads(srv: TestServer) {
    let m1 = manager(&srv, "boss1@contoso.com").await;
    let m2 = manager(&srv, "boss2@contoso.com").await;
    let body = json!({"schemas": [USER, ENTERPRISE], "UserName": "Cap@Contoso.com", "Active": "True", "DisplayName": "Cap",
        "Emails": [{"Primary": "True", "Type": "work", "Value": "Cap@Contoso.com"}],
        ENTERPRISE: {"Department": "Sales", "Manager": {"Value": m1}}});
    let (id, r) = create(&srv, &body).await;
    let mut want = json!({"userName": "Cap@Contoso.com", "active": true, "displayName": "Cap",
        "emails": [{"primary": true, "type": "work", "value": "Cap@Contoso.com"}],
        ENTERPRISE: {"department": "Sales", "manager": {"value": m1}}});
    assert_eq!(attrs_of(&r.body), want, "{}", r.text);
    let got = patch_ok(&srv, &id, json!([
        {"op": "Replace", "path": "Emails[Type eq \"work\"].Value", "value": "Cap2@Contoso.com"},
        {"op": "Add", "path": "addresses[type eq \"other\"].Formatted", "value": "PO Box 2"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Manager", "value": {"Value": m2}},
        {"op": "Replace", "path": "DisplayName", "value": "Cap Two"}
    ]))
    .await;
    want["emails"][0]["value"] = json!("Cap2@Contoso.com");
    want["addresses"] = json!([{"type": "other", "formatted": "PO Box 2"}]);
    want[ENTERPRISE]["manager"] = json!({"value": m2});
    want["displayName"] = json!("Cap Two");
    assert_eq!(attrs_of(&got), want);
}

scim_tests::engine_tests!(
    test_connection_returns_exactly_an_empty_list_response,
    create_match_then_post_tutorial_user,
    create_with_nulls_and_malformed_schema_urn,
    create_with_roles,
    patch_a_multi_valued_and_sub_attribute_replace,
    patch_b_single_valued_replace_of_user_name,
    patch_c_replace_multiple_default_dialect,
    patch_c_replace_multiple_flag_dialect,
    patch_c_pathless_add_with_dotted_keys,
    patch_d_add_nick_name_in_both_dialects,
    patch_d_mixed_ops_in_one_request,
    patch_d_add_work_email_to_user_without_one,
    patch_e_manager_tutorial_array_with_ref,
    patch_e_manager_urn_path_bare_string,
    patch_e_manager_onboarding_set_change_remove,
    patch_e_manager_validator_object_and_remove,
    patch_e_manager_remove_with_value_filter,
    patch_f_remove_with_value_on_single_valued_path,
    patch_g_roles_stringified_json_and_assertive_replace,
    patch_h_null_update_sequence,
    disable_and_reenable_in_both_dialects,
    delete_then_get_is_404_and_second_delete_is_404,
    schemas_list_has_user_and_enterprise_schemas,
    schema_by_urn,
    resource_types_list_and_user,
    service_provider_config,
    discovery_endpoints_refuse_writes_with_405,
    duplicate_user_name_differing_in_case_is_409_uniqueness,
    external_id_filter_unquoted_and_quoted,
    emails_value_path_filter,
    id_and_manager_reference_check_with_attributes_id,
    paging_the_onboarding_way,
    attributes_and_excluded_attributes_on_get_and_list,
    unchanged_patch_and_put_keep_version_and_last_modified,
    changing_patch_bumps_version_and_etag,
    quirk_01_active_string_false,
    quirk_02_capitalised_op_values,
    quirk_03_pathless_patch_with_dotted_keys,
    quirk_06_manager_shapes_returned_as_object,
    quirk_07_add_on_missing_value_path_element_creates_it,
    quirk_08_default_mapping_paths_do_not_block_deactivation,
    quirk_09_remove_with_value_on_single_valued_path,
    quirk_10_roles_values_are_stringified_json,
    quirk_11_unknown_and_malformed_schema_urns_accepted,
    quirk_12_nulls_empty_roles_and_meta_in_post_ignored,
    quirk_13_filter_without_match_is_empty_list_not_404,
    quirk_15_responses_are_application_scim_json,
    quirk_16_filter_matching_is_case_insensitive,
    quirk_17_booleans_returned_as_json_booleans,
    quirk_18_request_without_user_agent_is_served,
    quirk_19_query_decoded_exactly_once,
    quirk_20_values_returned_verbatim_so_no_repatch,
    quirk_22_id_stable_and_never_reused,
    quirk_23_disabled_users_stay_visible,
    quirk_26_special_characters_in_filter_values,
    quirk_27_clearing_with_empty_string_and_null,
    quirk_30_capitalised_keys_in_payloads,
);
