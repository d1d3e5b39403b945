//! The domain events ([`Event`]) and how one stream record becomes zero, one or two of them
//! ([`events_of`]): which items are resources or memberships (read from the key layout of `store::keys`),
//! what changed in a resource's document, the `active` transitions. Imports `record` (beside it),
//! `model`, `schema`, `value` and `store::keys`; no I/O.

use super::record::{Attr, Change, ChangeKind, Image};
use crate::model::{self, StoredResource};
use crate::schema::{self, ResourceType};
use crate::store::keys;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The event types, as they appear in `type`.
pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DEACTIVATED: &str = "user.deactivated";
pub const USER_REACTIVATED: &str = "user.reactivated";
pub const USER_DELETED: &str = "user.deleted";
pub const GROUP_CREATED: &str = "group.created";
pub const GROUP_UPDATED: &str = "group.updated";
pub const GROUP_DELETED: &str = "group.deleted";
pub const GROUP_MEMBER_ADDED: &str = "group.member_added";
pub const GROUP_MEMBER_REMOVED: &str = "group.member_removed";

/// One committed change, as the vendor's app receives it (`docs/events.md`, `docs/events.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Stable: the stream record's sequence number and the event's index within the record, so every
    /// delivery of the same change carries the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant: String,
    /// When the change was written (RFC 3339, UTC).
    pub time: String,
    /// `User` or `Group`.
    pub resource_type: String,
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `user.updated` / `group.updated`: the attribute paths whose value changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_attributes: Option<Vec<String>>,
    /// `group.member_added` / `group.member_removed`: the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// The resource as it now is (as it was, for a delete), as `GET` returns it but without
    /// `meta.location` and group `$ref` (the event does not know the public URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// Set when the resource was too large to carry in the event (read it with `GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_omitted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub value: String,
}

/// What an item of the table is, from its partition key (see `store::keys`).
enum ItemKind<'a> {
    Resource {
        tenant: &'a str,
        rt: &'static ResourceType,
    },
    Member {
        tenant: &'a str,
        group: &'a str,
    },
}

fn item_kind(pk: &str) -> Option<ItemKind<'_>> {
    Some(match keys::domain_key(pk)? {
        keys::DomainKey::Resource { tenant, kind } => ItemKind::Resource {
            tenant,
            rt: match kind {
                schema::ResourceKind::User => schema::user_resource_type(),
                schema::ResourceKind::Group => schema::group_resource_type(),
            },
        },
        keys::DomainKey::Member { tenant, group } => ItemKind::Member { tenant, group },
    })
}

/// True when the record is about a resource or a membership (the items events are made of); every
/// other item (guards, counters, tokens, the events log itself, checkpoints) yields no event.
pub fn is_domain_item(c: &Change) -> bool {
    c.pk().and_then(item_kind).is_some()
}

/// The events of one stream record, in order (index 0, 1, …). A change of a resource item whose document
/// did not change (a membership bumps the user's `grp` and version, the group's count) yields none: the
/// membership's own record yields the member event.
pub fn events_of(c: &Change) -> Vec<Event> {
    let Some(kind) = c.pk().and_then(item_kind) else {
        return Vec::new();
    };
    let Some(sk) = c.sk() else { return Vec::new() };
    let mut out = Vec::new();
    match kind {
        ItemKind::Member { tenant, group } => {
            let kind = match c.kind {
                ChangeKind::Insert => GROUP_MEMBER_ADDED,
                ChangeKind::Remove => GROUP_MEMBER_REMOVED,
                ChangeKind::Modify => return out,
            };
            let mut e = base(c, 0, kind, tenant, "Group", group, time_of(c, None));
            e.member = Some(Member {
                value: sk.to_string(),
            });
            out.push(e);
        }
        ItemKind::Resource { tenant, rt } => {
            let user = rt.is_user();
            let old = c.old.as_ref().and_then(stored);
            let new = c.new.as_ref().and_then(stored);
            match (c.kind, old, new) {
                (ChangeKind::Insert, _, Some(n)) => {
                    out.push(resource_event(
                        c,
                        0,
                        if user { USER_CREATED } else { GROUP_CREATED },
                        tenant,
                        rt,
                        &n,
                    ));
                }
                (ChangeKind::Remove, Some(o), _) => {
                    let mut e = resource_event(
                        c,
                        0,
                        if user { USER_DELETED } else { GROUP_DELETED },
                        tenant,
                        rt,
                        &o,
                    );
                    e.time = time_of(c, None);
                    out.push(e);
                }
                (ChangeKind::Modify, Some(o), Some(n)) => {
                    let changed = changed_paths(&o.attrs, &n.attrs);
                    if changed.is_empty() {
                        return out;
                    }
                    let mut e = resource_event(
                        c,
                        0,
                        if user { USER_UPDATED } else { GROUP_UPDATED },
                        tenant,
                        rt,
                        &n,
                    );
                    e.changed_attributes = Some(changed);
                    out.push(e);
                    if user {
                        match (active(&o.attrs), active(&n.attrs)) {
                            (true, false) => {
                                out.push(resource_event(c, 1, USER_DEACTIVATED, tenant, rt, &n))
                            }
                            (false, true) => {
                                out.push(resource_event(c, 1, USER_REACTIVATED, tenant, rt, &n))
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn base(
    c: &Change,
    index: usize,
    kind: &str,
    tenant: &str,
    resource_type: &str,
    id: &str,
    time: String,
) -> Event {
    Event {
        id: format!("{}-{index}", c.seq),
        kind: kind.to_string(),
        tenant: tenant.to_string(),
        time,
        resource_type: resource_type.to_string(),
        resource_id: id.to_string(),
        external_id: None,
        user_name: None,
        display_name: None,
        changed_attributes: None,
        member: None,
        resource: None,
        resource_omitted: None,
    }
}

fn resource_event(
    c: &Change,
    index: usize,
    kind: &str,
    tenant: &str,
    rt: &'static ResourceType,
    res: &StoredResource,
) -> Event {
    let mut e = base(
        c,
        index,
        kind,
        tenant,
        rt.name,
        &res.id,
        time_of(c, Some(&res.last_modified)),
    );
    let text = |k: &str| {
        crate::value::entry_ci(&res.attrs, k)
            .map(|(_, v)| v)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    e.external_id = text("externalId");
    e.user_name = if rt.is_user() { text("userName") } else { None };
    e.display_name = text("displayName");
    e.resource = Some(representation(res, rt));
    e
}

/// The resource as `GET` renders it, without the parts that need the public URL.
fn representation(res: &StoredResource, rt: &ResourceType) -> Value {
    let mut v = model::render(res, rt, "");
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("location");
    }
    if let Some(groups) = v.get_mut("groups").and_then(Value::as_array_mut) {
        for g in groups {
            if let Some(o) = g.as_object_mut() {
                o.remove("$ref");
            }
        }
    }
    v
}

/// The write's own timestamp when the item carries one (`modified`), else the record's.
fn time_of(c: &Change, modified: Option<&str>) -> String {
    if let Some(m) = modified.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    // As the store writes `meta` timestamps: UTC, three fractional digits.
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let millis = (c.time * 1000.0).round() as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(model::now_rfc3339)
}

/// A resource item's image as the store reads it (the same attributes as `store::dynamo`'s `from_item`).
fn stored(img: &Image) -> Option<StoredResource> {
    let s = |k: &str| img.get(k).and_then(Attr::as_s).map(str::to_string);
    let attrs = match serde_json::from_str(&s("doc")?) {
        Ok(Value::Object(m)) => m,
        _ => return None,
    };
    let mut groups = match img.get("grp") {
        Some(Attr::Ss(g)) => g.clone(),
        _ => Vec::new(),
    };
    groups.sort();
    Some(StoredResource {
        id: s("id").or_else(|| s("sk"))?,
        attrs,
        created: s("created").unwrap_or_default(),
        last_modified: s("modified").unwrap_or_default(),
        version: img
            .get("ver")
            .and_then(Attr::as_n)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        groups,
        member_count: img
            .get("mcount")
            .and_then(Attr::as_n)
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64,
    })
}

/// `active` as the app should read it: `false` (or Entra's `"False"`) is inactive; absent is active.
fn active(doc: &Map<String, Value>) -> bool {
    match crate::value::entry_ci(doc, "active").map(|(_, v)| v) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
        _ => true,
    }
}

/// The attribute paths whose values differ between two documents, sorted — always down to the attribute
/// a consumer keys on, whether it was added from absent, replaced or removed: a top-level attribute
/// (`active`, `title`), each changed sub-attribute of a complex attribute (`name.givenName`, also when
/// `name` itself was absent before or is removed whole), each changed attribute of an extension
/// (`urn:…:enterprise:2.0:User:manager`, also when the extension was absent before or is removed whole).
/// Multi-valued attributes (`emails`, `addresses`, `phoneNumbers`) and an extension's complex attributes
/// (`manager`) are reported whole. Names compare case-insensitively, as SCIM names do; a complex value
/// that has no sub-attribute on either side (`{}`) is reported by its own name.
pub fn changed_paths(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let (o, n) = (by_lower_name(old), by_lower_name(new));
    let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for k in keys {
        let (ov, nv) = (o.get(k), n.get(k));
        let name = nv.or(ov).map(|(name, _)| *name).unwrap_or(k);
        let (ov, nv) = (ov.map(|(_, v)| *v), nv.map(|(_, v)| *v));
        if ov == nv {
            continue;
        }
        let sep = if name
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            ':'
        } else {
            '.'
        };
        let leaves = match (ov, nv) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => changed_members(a, b),
            (None, Some(Value::Object(m))) | (Some(Value::Object(m)), None) => {
                changed_members(&Map::new(), m)
            }
            _ => Vec::new(),
        };
        if leaves.is_empty() {
            out.push(name.to_string());
        }
        out.extend(leaves.into_iter().map(|l| format!("{name}{sep}{l}")));
    }
    out.sort();
    out.dedup();
    out
}

/// The members of two objects whose values differ (present on one side only, or different), by name.
fn changed_members(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let (o, n) = (by_lower_name(old), by_lower_name(new));
    let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    keys.into_iter()
        .filter(|k| o.get(*k).map(|(_, v)| *v) != n.get(*k).map(|(_, v)| *v))
        .map(|k| {
            n.get(k)
                .or(o.get(k))
                .map_or(k.clone(), |(name, _)| name.to_string())
        })
        .collect()
}

/// A document's members by lower-cased name (SCIM names are case-insensitive).
fn by_lower_name(m: &Map<String, Value>) -> std::collections::BTreeMap<String, (&String, &Value)> {
    m.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A resource item's image as the stream carries it (DynamoDB JSON), built like `store::dynamo`'s.
    fn user_image(tenant: &str, id: &str, doc: Value, ver: u64, grp: &[&str]) -> Value {
        let mut m = json!({
            "pk": {"S": format!("T#{tenant}#User")}, "sk": {"S": id}, "id": {"S": id},
            "doc": {"S": doc.to_string()}, "created": {"S": "2026-12-02T10:00:00.000Z"},
            "modified": {"S": format!("2026-12-02T10:00:0{ver}.000Z")}, "ver": {"N": ver.to_string()},
            "gsi1pk": {"S": format!("T#{tenant}#User#{}", doc["userName"].as_str().unwrap_or("").to_lowercase())}
        });
        if !grp.is_empty() {
            m["grp"] = json!({"SS": grp});
        }
        m
    }

    fn record(
        name: &str,
        seq: &str,
        keys: Value,
        old: Option<Value>,
        new: Option<Value>,
    ) -> Change {
        let mut d = json!({"ApproximateCreationDateTime": 1796205600.5, "Keys": keys, "SequenceNumber": seq,
            "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"});
        if let Some(o) = old {
            d["OldImage"] = o;
        }
        if let Some(n) = new {
            d["NewImage"] = n;
        }
        Change::from_json(&json!({"eventID": "x", "eventName": name, "eventSource": "aws:dynamodb", "dynamodb": d})).expect("record")
    }

    fn ann(active: Value, given: &str) -> Value {
        json!({"userName": "ann@contoso.com", "externalId": "ann-ext", "active": active,
            "name": {"givenName": given, "familyName": "Lee"}, "emails": [{"value": "ann@contoso.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}})
    }

    fn keys(pk: &str, sk: &str) -> Value {
        json!({"pk": {"S": pk}, "sk": {"S": sk}})
    }

    #[test]
    fn a_created_user_is_one_event_with_its_resource() {
        let c = record(
            "INSERT",
            "100",
            keys("T#acme#User", "u1"),
            None,
            Some(user_image("acme", "u1", ann(json!(true), "Ann"), 1, &[])),
        );
        let ev = events_of(&c);
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(
            (
                e.id.as_str(),
                e.kind.as_str(),
                e.tenant.as_str(),
                e.resource_id.as_str()
            ),
            ("100-0", USER_CREATED, "acme", "u1")
        );
        assert_eq!(e.user_name.as_deref(), Some("ann@contoso.com"));
        assert_eq!(e.external_id.as_deref(), Some("ann-ext"));
        assert_eq!(e.time, "2026-12-02T10:00:01.000Z");
        let r = e.resource.as_ref().unwrap();
        assert_eq!(r["id"], "u1");
        assert_eq!(r["name"]["givenName"], "Ann");
        assert_eq!(r["meta"]["version"], "W/\"1\"");
        assert!(r["meta"].get("location").is_none());
    }

    #[test]
    fn a_patch_that_disables_is_an_update_and_a_deactivation() {
        let old = user_image("acme", "u1", ann(json!(true), "Ann"), 1, &[]);
        let new = user_image("acme", "u1", ann(json!(false), "Anna"), 2, &[]);
        let ev = events_of(&record(
            "MODIFY",
            "101",
            keys("T#acme#User", "u1"),
            Some(old.clone()),
            Some(new.clone()),
        ));
        let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, [USER_UPDATED, USER_DEACTIVATED]);
        assert_eq!(
            ev[0].changed_attributes.as_deref().unwrap(),
            ["active", "name.givenName"]
        );
        assert_eq!((ev[0].id.as_str(), ev[1].id.as_str()), ("101-0", "101-1"));
        assert_eq!(ev[1].resource.as_ref().unwrap()["active"], false);
        // And back: Entra's string boolean counts too.
        let back = user_image("acme", "u1", ann(json!("True"), "Anna"), 3, &[]);
        let ev = events_of(&record(
            "MODIFY",
            "102",
            keys("T#acme#User", "u1"),
            Some(new),
            Some(back),
        ));
        let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, [USER_UPDATED, USER_REACTIVATED]);
    }

    #[test]
    fn a_membership_bookkeeping_change_of_the_user_is_no_event() {
        let old = user_image("acme", "u1", ann(json!(true), "Ann"), 1, &[]);
        let new = user_image("acme", "u1", ann(json!(true), "Ann"), 2, &["g1"]);
        assert!(events_of(&record(
            "MODIFY",
            "103",
            keys("T#acme#User", "u1"),
            Some(old),
            Some(new)
        ))
        .is_empty());
    }

    #[test]
    fn member_items_are_member_events() {
        let pk = "T#acme#Group#g1#members";
        let item = json!({"pk": {"S": pk}, "sk": {"S": "u1"}, "value": {"S": "u1"}});
        let added = events_of(&record(
            "INSERT",
            "104",
            keys(pk, "u1"),
            None,
            Some(item.clone()),
        ));
        assert_eq!(added.len(), 1);
        assert_eq!(
            (
                added[0].kind.as_str(),
                added[0].resource_type.as_str(),
                added[0].resource_id.as_str()
            ),
            (GROUP_MEMBER_ADDED, "Group", "g1")
        );
        assert_eq!(added[0].member, Some(Member { value: "u1".into() }));
        assert_eq!(added[0].time, "2026-12-02T10:00:00.500Z");
        let removed = events_of(&record("REMOVE", "105", keys(pk, "u1"), Some(item), None));
        assert_eq!(removed[0].kind, GROUP_MEMBER_REMOVED);
    }

    #[test]
    fn deletes_carry_the_resource_as_it_was() {
        let old = user_image("acme", "u1", ann(json!(true), "Ann"), 4, &["g1"]);
        let ev = events_of(&record(
            "REMOVE",
            "106",
            keys("T#acme#User", "u1"),
            Some(old),
            None,
        ));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, USER_DELETED);
        assert_eq!(
            ev[0].resource.as_ref().unwrap()["groups"],
            json!([{"value": "g1", "type": "direct"}])
        );
        let g = json!({"pk": {"S": "T#default#Group"}, "sk": {"S": "g1"}, "id": {"S": "g1"}, "doc": {"S": "{\"displayName\":\"Sales\",\"externalId\":\"s\"}"},
            "created": {"S": "c"}, "modified": {"S": "m"}, "ver": {"N": "3"}, "mcount": {"N": "0"}});
        let ev = events_of(&record(
            "REMOVE",
            "107",
            keys("T#default#Group", "g1"),
            Some(g),
            None,
        ));
        assert_eq!(
            (ev[0].kind.as_str(), ev[0].tenant.as_str()),
            (GROUP_DELETED, "default")
        );
        assert_eq!(ev[0].display_name.as_deref(), Some("Sales"));
        assert_eq!(ev[0].user_name, None);
    }

    #[test]
    fn other_items_are_ignored() {
        for (pk, sk) in [
            ("T#acme#User#uniq#ann@contoso.com", "#"),
            ("T#acme#count", "User#3"),
            ("T#acme#tokens", "abc"),
            ("TOKEN#abcdef", "#"),
            ("TENANTS", "acme"),
            ("T#acme#events", "00000000000000000001"),
            ("T#acme#events#ids", "1-0"),
            ("EVENTS#shards", "shard-1"),
            ("T#acme#Group#g1#members#x", "u1"),
        ] {
            let item = json!({"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": "1"}});
            let c = record("INSERT", "1", keys(pk, sk), None, Some(item));
            assert!(events_of(&c).is_empty(), "{pk}");
            assert!(!is_domain_item(&c), "{pk}");
        }
    }

    #[test]
    fn changed_paths_of_extensions_and_removals() {
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let a = json!({"userName": "a", "title": "x", ent: {"department": "Sales", "manager": {"value": "m1"}}});
        let b = json!({"USERNAME": "a", ent: {"department": "Ops", "manager": {"value": "m2"}}, "nickName": "n"});
        let got = changed_paths(a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(
            got,
            [
                "nickName",
                "title",
                format!("{ent}:department").as_str(),
                format!("{ent}:manager").as_str()
            ]
        );
    }

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// Entra's default user mapping: each attribute as a fragment of a document with value `v`, and the
    /// path `changedAttributes` names for it.
    type Fragment = Box<dyn Fn(&str) -> Value>;

    fn entra_mapping() -> Vec<(Fragment, String)> {
        let e = |p: &str| format!("{ENT}:{p}");
        let addr = |sub: &'static str| -> Fragment {
            Box::new(move |v: &str| json!({"addresses": [{"type": "work", sub: v}]}))
        };
        let phone = |kind: &'static str| -> Fragment {
            Box::new(move |v: &str| json!({"phoneNumbers": [{"type": kind, "value": v}]}))
        };
        vec![
            (
                Box::new(|v: &str| json!({"userName": v})),
                "userName".into(),
            ),
            (
                Box::new(|v: &str| json!({"active": v == "b"})),
                "active".into(),
            ),
            (
                Box::new(|v: &str| json!({"displayName": v})),
                "displayName".into(),
            ),
            (Box::new(|v: &str| json!({"title": v})), "title".into()),
            (
                Box::new(
                    |v: &str| json!({"emails": [{"type": "work", "value": v, "primary": true}]}),
                ),
                "emails".into(),
            ),
            (
                Box::new(|v: &str| json!({"preferredLanguage": v})),
                "preferredLanguage".into(),
            ),
            (
                Box::new(|v: &str| json!({"name": {"givenName": v}})),
                "name.givenName".into(),
            ),
            (
                Box::new(|v: &str| json!({"name": {"familyName": v}})),
                "name.familyName".into(),
            ),
            (
                Box::new(|v: &str| json!({"name": {"formatted": v}})),
                "name.formatted".into(),
            ),
            (addr("formatted"), "addresses".into()),
            (addr("streetAddress"), "addresses".into()),
            (addr("locality"), "addresses".into()),
            (addr("region"), "addresses".into()),
            (addr("postalCode"), "addresses".into()),
            (addr("country"), "addresses".into()),
            (phone("work"), "phoneNumbers".into()),
            (phone("mobile"), "phoneNumbers".into()),
            (phone("fax"), "phoneNumbers".into()),
            (
                Box::new(|v: &str| json!({"externalId": v})),
                "externalId".into(),
            ),
            (
                Box::new(|v: &str| json!({ENT: {"employeeNumber": v}})),
                e("employeeNumber"),
            ),
            (
                Box::new(|v: &str| json!({ENT: {"department": v}})),
                e("department"),
            ),
            (
                Box::new(|v: &str| json!({ENT: {"manager": {"value": v}}})),
                e("manager"),
            ),
        ]
    }

    /// `doc` with `fragment` merged in (objects merged one level deep, as a PATCH add would leave them).
    fn with(doc: &Value, fragment: &Value) -> Map<String, Value> {
        let mut out = doc.as_object().unwrap().clone();
        for (k, v) in fragment.as_object().unwrap() {
            match (out.get_mut(k), v) {
                (Some(Value::Object(have)), Value::Object(add)) => have.extend(add.clone()),
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }

    #[test]
    fn every_attribute_of_entras_mapping_is_named_added_replaced_or_removed() {
        // Bare: nothing but what the attribute needs (no `name`, no extension, no other attribute).
        // Furnished: the user has the complex attribute and the extension already, with other members.
        let bare = json!({"userName": "base@contoso.com"});
        let furnished = json!({"userName": "base@contoso.com", "name": {"middleName": "Q"}, ENT: {"costCenter": "c1"},
            "nickName": "n"});
        for (fragment, path) in entra_mapping() {
            for base in [&bare, &furnished] {
                let base = &if path == "userName" {
                    json!({})
                } else {
                    base.clone()
                };
                let without = base.as_object().unwrap().clone();
                let (a, b) = (with(base, &fragment("a")), with(base, &fragment("b")));
                assert_eq!(
                    changed_paths(&without, &a),
                    [path.as_str()],
                    "{path} added to {base}"
                );
                assert_eq!(
                    changed_paths(&a, &b),
                    [path.as_str()],
                    "{path} replaced on {base}"
                );
                assert_eq!(
                    changed_paths(&a, &without),
                    [path.as_str()],
                    "{path} removed from {base}"
                );
            }
        }
    }

    #[test]
    fn a_whole_complex_attribute_or_extension_lists_its_members() {
        let full = json!({"userName": "u", "name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Ann Lee"},
            ENT: {"department": "Sales", "manager": {"value": "m1"}, "employeeNumber": "7"}});
        let full = full.as_object().unwrap();
        let bare = json!({"userName": "u"});
        let bare = bare.as_object().unwrap();
        let leaves = [
            "name.familyName".to_string(),
            "name.formatted".into(),
            "name.givenName".into(),
            format!("{ENT}:department"),
            format!("{ENT}:employeeNumber"),
            format!("{ENT}:manager"),
        ];
        assert_eq!(changed_paths(bare, full), leaves, "added from absent");
        assert_eq!(changed_paths(full, bare), leaves, "removed whole");
        // A user's first manager reads as any later one; names of either case match.
        let first = json!({"userName": "u", ENT.to_uppercase(): {"Manager": {"value": "m1"}}});
        assert_eq!(
            changed_paths(bare, first.as_object().unwrap()),
            [format!("{}:Manager", ENT.to_uppercase())]
        );
        let empty = json!({"userName": "u", "name": {}});
        assert_eq!(changed_paths(bare, empty.as_object().unwrap()), ["name"]);
    }

    #[test]
    fn a_first_manager_makes_an_update_naming_the_manager() {
        let old = user_image("acme", "u1", json!({"userName": "ann@contoso.com"}), 1, &[]);
        let new = user_image(
            "acme",
            "u1",
            json!({"userName": "ann@contoso.com", ENT: {"manager": {"value": "m1"}}}),
            2,
            &[],
        );
        let ev = events_of(&record(
            "MODIFY",
            "109",
            keys("T#acme#User", "u1"),
            Some(old),
            Some(new),
        ));
        assert_eq!(
            ev[0].changed_attributes.as_deref().unwrap(),
            [format!("{ENT}:manager")]
        );
    }

    #[test]
    fn the_published_schema_names_every_type_and_field() {
        let schema: Value = serde_json::from_str(include_str!("../../../docs/events.schema.json"))
            .expect("schema is JSON");
        let types: Vec<&str> = schema["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let ours = [
            USER_CREATED,
            USER_UPDATED,
            USER_DEACTIVATED,
            USER_REACTIVATED,
            USER_DELETED,
            GROUP_CREATED,
            GROUP_UPDATED,
            GROUP_DELETED,
            GROUP_MEMBER_ADDED,
            GROUP_MEMBER_REMOVED,
        ];
        assert_eq!(types, ours);
        let full = Event {
            id: "1-0".into(),
            kind: USER_UPDATED.into(),
            tenant: "t".into(),
            time: "t".into(),
            resource_type: "User".into(),
            resource_id: "u".into(),
            external_id: Some("e".into()),
            user_name: Some("u".into()),
            display_name: Some("d".into()),
            changed_attributes: Some(vec![]),
            member: Some(Member { value: "u".into() }),
            resource: Some(json!({})),
            resource_omitted: Some(true),
        };
        let v = serde_json::to_value(&full).unwrap();
        let props = schema["properties"].as_object().unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(
                props.contains_key(k),
                "{k} is not in docs/events.schema.json"
            );
        }
        assert_eq!(
            props.len(),
            v.as_object().unwrap().len(),
            "the schema names a field the events never carry"
        );
    }

    #[test]
    fn an_event_never_carries_a_password() {
        let mut doc = ann(json!(true), "Ann");
        doc["password"] = json!("Secret-123");
        let c = record(
            "INSERT",
            "108",
            keys("T#acme#User", "u1"),
            None,
            Some(user_image("acme", "u1", doc, 1, &[])),
        );
        let ev = events_of(&c);
        assert!(ev[0].resource.as_ref().unwrap().get("password").is_none());
        assert!(!serde_json::to_string(&ev[0])
            .unwrap()
            .contains("Secret-123"));
    }
}
