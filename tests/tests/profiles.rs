//! The four seed apps' profiles (`shared/profiles/*.json`, described in the README), end to end on both engines: a user carrying every attribute
//! of the app's Entra mapping is created, each attribute is PATCHed the way Entra does (value paths,
//! URN-qualified paths, pathless dotted keys), and everything reads back verbatim; `/Schemas` and
//! `/ResourceTypes` show the profile.

use reqwest::Method;
use scim_tests::patch_body;
use scim_tests::TestServer;
use serde_json::{json, Value};

use scim_tests::urn::ENTERPRISE as ENT;
const JOSTLE: &str = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";
const JOYN: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";
const SPOKE: &str = "urn:ietf:params:scim:schemas:extension:SpokeCustom:2.0:User";

/// POST `user`, check it comes back verbatim, apply `ops`, check `expect` (a list of (JSON pointer,
/// value)) on the PATCH answer and on a fresh GET; check /Schemas lists `extension`.
async fn round_trip(
    srv: &TestServer,
    user: Value,
    ops: Value,
    expect: &[(&str, Value)],
    extension: Option<&str>,
) {
    let created = srv.post("/Users", &user).await;
    assert_eq!(created.status, 201, "{}", created.text);
    for (k, v) in user.as_object().unwrap() {
        if k != "schemas" {
            assert_eq!(&created.body[k], v, "{k} round-trips verbatim");
        }
    }
    let id = created.id();
    let r = srv.patch(&format!("/Users/{id}"), &patch_body(ops)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = srv.get(&format!("/Users/{id}")).await;
    for (ptr, want) in expect {
        assert_eq!(
            r.body.pointer(ptr),
            Some(want),
            "PATCH answer {ptr}: {}",
            r.text
        );
        assert_eq!(got.body.pointer(ptr), Some(want), "GET {ptr}: {}", got.text);
    }
    if let Some(ext) = extension {
        let schemas = srv.get("/Schemas").await;
        assert!(
            schemas.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == ext),
            "/Schemas lists {ext}"
        );
        let one = srv.get(&format!("/Schemas/{ext}")).await;
        assert_eq!(one.status, 200);
        let rt = srv.get("/ResourceTypes/User").await;
        assert!(rt.body["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["schema"] == ext));
    }
}

fn ptr_ext(urn: &str, attr: &str) -> String {
    format!("/{}/{attr}", urn.replace('~', "~0").replace('/', "~1"))
}

async fn jostle(srv: TestServer) {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", JOSTLE],
        "userName": "Ann.Example@Contoso.com", "active": true,
        "name": {"givenName": "Ann", "familyName": "Example"},
        "emails": [{"type": "work", "value": "Ann@Contoso.com", "primary": true}, {"type": "personal", "value": "ann@home.example"},
                   {"type": "alternate1", "value": "ann.alt1@x.example"}, {"type": "alternate2", "value": "ann.alt2@x.example"}],
        JOSTLE: {"alternateEmail1Label": "Backup", "alternateEmail2Label": "Old"}
    });
    let ops = json!([
        {"op": "Replace", "path": "userName", "value": "ann.new@Contoso.com"},
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "name.givenName", "value": "Anne"},
        {"op": "Replace", "path": "name.familyName", "value": "Exámple"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "Anne@Contoso.com"},
        {"op": "Replace", "path": "emails[type eq \"personal\"].value", "value": "anne@home.example"},
        {"op": "Replace", "path": "emails[type eq \"alternate1\"].value", "value": "a1@x.example"},
        {"op": "Add", "path": "emails[type eq \"alternate2\"].value", "value": "a2@x.example"},
        {"op": "Replace", "path": format!("{JOSTLE}:alternateEmail1Label"), "value": "Primary backup"},
        {"op": "replace", "value": {format!("{JOSTLE}:alternateEmail2Label"): "Legacy"}}
    ]);
    round_trip(
        &srv,
        user,
        ops,
        &[
            ("/userName", json!("ann.new@Contoso.com")),
            ("/active", json!(false)),
            ("/name/givenName", json!("Anne")),
            ("/name/familyName", json!("Exámple")),
            ("/emails/0/value", json!("Anne@Contoso.com")),
            ("/emails/1/value", json!("anne@home.example")),
            ("/emails/2/value", json!("a1@x.example")),
            ("/emails/3/value", json!("a2@x.example")),
            (
                &ptr_ext(JOSTLE, "alternateEmail1Label"),
                json!("Primary backup"),
            ),
            (&ptr_ext(JOSTLE, "alternateEmail2Label"), json!("Legacy")),
        ],
        Some(JOSTLE),
    )
    .await;
    // Jostle serves Users only, and says so.
    assert_eq!(srv.get("/Groups").await.status, 404);
    let rts = srv.get("/ResourceTypes").await;
    assert_eq!(rts.body["totalResults"], 1);
    // The enterprise extension is not part of this profile: its attributes are kept as unknown data, not advertised.
    assert!(!srv.get("/Schemas").await.text.contains(ENT));
}

async fn joynfsm(srv: TestServer) {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, JOYN],
        "userName": "tech1@joyn.example", "externalId": "tech1", "active": true, "displayName": "Tech One",
        "name": {"formatted": "Tech One", "givenName": "Tech", "familyName": "One"},
        "emails": [{"type": "work", "value": "Tech1@Joyn.example", "primary": true}],
        "addresses": [{"type": "work", "formatted": "1 Main St\nSpringfield", "streetAddress": "1 Main St", "locality": "Springfield", "region": "IL", "postalCode": "62701", "country": "US"}],
        "phoneNumbers": [{"type": "mobile", "value": "+1 (555) 010-0001"}],
        ENT: {"department": "Field"}, JOYN: {"xid": "X-1", "joynFieldId": "F-9"}
    });
    let ops = json!([
        {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Chicago"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "60601"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 010 0002"},
        {"op": "Replace", "path": format!("{ENT}:department"), "value": "Field Ops"},
        {"op": "Replace", "path": format!("{JOYN}:xid"), "value": "X-2"},
        {"op": "Add", "path": format!("{JOYN}:joynFieldId"), "value": "F-10"},
        {"op": "replace", "value": {"displayName": "Tech 1", "name.formatted": "Tech 1", "externalId": "tech-1"}}
    ]);
    round_trip(
        &srv,
        user,
        ops,
        &[
            ("/addresses/0/locality", json!("Chicago")),
            ("/addresses/0/postalCode", json!("60601")),
            ("/addresses/0/region", json!("IL")),
            ("/phoneNumbers/0/value", json!("+1 555 010 0002")),
            (&ptr_ext(ENT, "department"), json!("Field Ops")),
            (&ptr_ext(JOYN, "xid"), json!("X-2")),
            (&ptr_ext(JOYN, "joynFieldId"), json!("F-10")),
            ("/displayName", json!("Tech 1")),
            ("/name/formatted", json!("Tech 1")),
            ("/externalId", json!("tech-1")),
        ],
        Some(JOYN),
    )
    .await;
    // Extension attributes are filterable.
    let f = srv
        .get(&format!("/Users?filter={JOYN}:xid+eq+%22X-2%22"))
        .await;
    assert_eq!(f.body["totalResults"], 1, "{}", f.text);
}

async fn junojourney(srv: TestServer) {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "userName": "learner@juno.example", "externalId": "l-1", "displayName": "Lea Rner", "title": "Analyst", "active": true, "preferredLanguage": "fr-CA",
        "emails": [{"type": "work", "value": "Learner@Juno.example", "primary": true}],
        "addresses": [{"type": "work", "country": "CA", "region": "QC", "locality": "Montréal", "postalCode": "H2X 1Y4", "formatted": "1 Rue X", "streetAddress": "1 Rue X"}],
        "name": {"givenName": "Lea", "familyName": "Rner", "middleName": "M", "formatted": "Lea M Rner"},
        "phoneNumbers": [{"type": "fax", "value": "+1 514 000 0000"}, {"type": "mobile", "value": "+1 514 000 0001"}, {"type": "work", "value": "+1 514 000 0002"}],
        "roles": [{"primary": true, "type": "WindowsAzureActiveDirectoryRole", "value": "Learner"}],
        ENT: {"department": "Finance", "employeeNumber": "007", "costCenter": "CC1", "division": "EMEA", "organization": "Juno", "manager": {"value": "m-1"}}
    });
    let ops = json!([
        {"op": "Replace", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 514 999 0000"},
        {"op": "Replace", "path": "name.middleName", "value": "Marie"},
        {"op": "Replace", "path": "preferredLanguage", "value": "en-CA"},
        {"op": "Replace", "path": format!("{ENT}:costCenter"), "value": "CC2"},
        {"op": "Add", "path": format!("{ENT}:manager"), "value": "m-2"},
        {"op": "replace", "value": {format!("{ENT}:division"): "AMER", format!("{ENT}:organization"): "Juno Inc", "title": "Lead"}},
        {"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"06b07648\",\"value\":\"Admin\",\"displayName\":\"Admin\"}"}]}
    ]);
    round_trip(
        &srv,
        user,
        ops,
        &[
            ("/phoneNumbers/0/value", json!("+1 514 999 0000")),
            ("/name/middleName", json!("Marie")),
            ("/preferredLanguage", json!("en-CA")),
            (&ptr_ext(ENT, "costCenter"), json!("CC2")),
            (&ptr_ext(ENT, "manager"), json!({"value": "m-2"})),
            (&ptr_ext(ENT, "division"), json!("AMER")),
            (&ptr_ext(ENT, "organization"), json!("Juno Inc")),
            ("/title", json!("Lead")),
            (
                "/roles/1/value",
                json!("{\"id\":\"06b07648\",\"value\":\"Admin\",\"displayName\":\"Admin\"}"),
            ),
            ("/addresses/0/locality", json!("Montréal")),
        ],
        Some(ENT),
    )
    .await;
}

async fn askspoke(srv: TestServer) {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, SPOKE],
        "userName": "agent@spoke.example", "externalId": "a-1", "active": true, "title": "Agent",
        "emails": [{"type": "work", "value": "Agent@Spoke.example", "primary": true}],
        "name": {"givenName": "Ag", "familyName": "Ent", "formatted": "Ag Ent"},
        "addresses": [{"type": "work", "locality": "Oakland", "country": "US", "region": "CA"}],
        ENT: {"department": "IT"}, SPOKE: {"startDate": "2026-01-05"}
    });
    let boss = srv
        .create_user(&json!({"userName": "boss@spoke.example"}))
        .await;
    let ops = json!([
        {"op": "Replace", "path": "addresses[type eq \"work\"].country", "value": "GB"},
        {"op": "Add", "path": format!("{ENT}:manager"), "value": [{"$ref": null, "value": boss}]},
        {"op": "Replace", "path": format!("{SPOKE}:startDate"), "value": "2026-02-01"}
    ]);
    round_trip(
        &srv,
        user,
        ops,
        &[
            ("/addresses/0/country", json!("GB")),
            ("/addresses/0/locality", json!("Oakland")),
            (&ptr_ext(ENT, "manager"), json!({"value": boss})),
            (&ptr_ext(SPOKE, "startDate"), json!("2026-02-01")),
        ],
        Some(SPOKE),
    )
    .await;
    // askSpoke needs groups and memberships.
    let uid = srv
        .get("/Users?filter=userName+eq+%22agent%40spoke.example%22")
        .await
        .body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g = srv
        .post(
            "/Groups",
            &json!({"displayName": "Help desk", "members": [{"value": uid}]}),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.text);
    let r = srv.call(Method::GET, &format!("/Users/{uid}"), None).await;
    assert_eq!(r.body["groups"][0]["value"], g.body["id"]);
}

scim_tests::both_engines!(
    |engine, name| scim_tests::TestServer::start_profile(engine, name).await;
    jostle,
    joynfsm,
    junojourney,
    askspoke,
);
