//! DynamoDB's size limits, checked before any call so that an input too large to store is a SCIM 400 (or
//! a 404 for an id no resource can have) and never a `ValidationException` answered 500.
//!
//! | limit | DynamoDB | what it bounds here |
//! |---|---|---|
//! | partition key ≤ 2,048 bytes (table and GSIs) | `pk`, `gsi1pk`, `gsi2pk` | `userName` / group `displayName` (lower-cased, in the guard key and `gsi1pk`), `externalId` (`gsi2pk`), each with the tenant and type prefix |
//! | sort key ≤ 1,024 bytes | `sk` | a resource id (its item's and its member items' sort key): path ids, `id eq`, member values |
//! | item ≤ 400 KB (names + values) | a resource item (and its GSI copies, projection ALL) | the whole stored document; a user keeps [`GROUPS_RESERVE_BYTES`] free for its `grp` set |
//!
//! Sizes count as DynamoDB does: UTF-8 bytes of attribute names and values; numbers and timestamps are
//! counted at their largest.
//!
//! Who checks: [`resource`] once per resource write, by the service (`Service::check_size`, before its
//! DynamoDB call; the store's `create` and `replace` do not repeat it); [`id`] and [`index_key`] by the
//! store's reads and member writes.

use super::{keys, StoreError};
use crate::model;
use crate::schema::ResourceType;
use serde_json::{Map, Value};

/// DynamoDB: a partition key (of the table or of a global secondary index) is at most 2,048 bytes.
pub const PARTITION_KEY_BYTES: usize = 2048;
/// DynamoDB: a sort key is at most 1,024 bytes. Resource ids are sort keys, so this bounds every id.
pub const SORT_KEY_BYTES: usize = 1024;
/// DynamoDB: an item (attribute names and values) is at most 400 KB.
pub const ITEM_BYTES: usize = 400 * 1024;
/// Room a user item keeps for its `grp` set (the ids of its groups, 36 bytes each: about 1,000 groups)
/// whatever the size of its document, so joining groups does not push it past [`ITEM_BYTES`].
pub const GROUPS_RESERVE_BYTES: usize = 36 * 1024;
/// Attributes of a resource item besides `pk`, `sk`, `id`, `doc` and the index keys: `created`,
/// `modified` (24-character timestamps), `ver` and `mcount` (numbers, at most 21 bytes), names included.
const METADATA_BYTES: usize = 128;

/// Is `id` short enough to be a resource id (a sort key)? An id that is not cannot exist.
pub fn id_fits(id: &str) -> bool {
    id.len() <= SORT_KEY_BYTES
}

/// An id (of a member, or in a filter) that no resource can have.
pub fn id(what: &str, id: &str) -> Result<(), StoreError> {
    if id_fits(id) {
        return Ok(());
    }
    Err(StoreError::TooLarge(format!(
        "{what} is {} bytes long; a resource id is at most {SORT_KEY_BYTES} bytes (a DynamoDB sort key), so no resource has it",
        id.len()
    )))
}

/// A filter value compared with an index key (`userName`, `displayName`, `externalId` with `eq`) that is
/// too long for any stored resource to have.
pub fn index_key(key: &str) -> Result<(), StoreError> {
    if key.len() <= PARTITION_KEY_BYTES {
        return Ok(());
    }
    Err(StoreError::TooLarge(format!(
        "The filter compares userName, displayName or externalId with a value too long to be stored: \
         these values are kept in a DynamoDB key of at most {PARTITION_KEY_BYTES} bytes (tenant and type included)"
    )))
}

/// Can a resource with these attributes (and, for a user, these groups) be stored under `id`? Checks every
/// key it would write and the size of its item.
pub fn resource(
    tenant: &str,
    rt: &ResourceType,
    id: &str,
    attrs: &Map<String, Value>,
    groups: &[String],
) -> Result<(), StoreError> {
    self::id("The id", id)?;
    if let (Some(attr), Some(unique)) = (model::unique_attr(rt), model::unique_key(rt, attrs)) {
        // The guard key is the longer of the two keys holding the unique value (`…#uniq#<value>` vs `…#<value>`).
        let prefix = keys::guard_pk(tenant, rt, "")
            .len()
            .max(keys::gsi1pk(tenant, rt, "").len());
        check_key_value(attr, unique.len(), prefix, ", lower-cased")?;
    }
    let external = attrs.get("externalId").and_then(Value::as_str);
    if let Some(ext) = external {
        check_key_value(
            "externalId",
            ext.len(),
            keys::gsi2pk(tenant, rt, "").len(),
            "",
        )?;
    }
    let resource_pk = keys::resource_pk(tenant, rt);
    let unique_keys = model::unique_key(rt, attrs)
        .map_or(0, |u| "gsi1pk".len() + keys::gsi1pk(tenant, rt, &u).len());
    let external_key = external.map_or(0, |x| "gsi2pk".len() + keys::gsi2pk(tenant, rt, x).len());
    let fixed = "pk".len()
        + resource_pk.len()
        + "sk".len()
        + id.len()
        + "id".len()
        + id.len()
        + "doc".len()
        + METADATA_BYTES
        + unique_keys
        + external_key;
    let groups_bytes: usize = groups.iter().map(String::len).sum::<usize>()
        + if groups.is_empty() { 0 } else { "grp".len() };
    let reserve = if rt.is_user() {
        groups_bytes.max(GROUPS_RESERVE_BYTES)
    } else {
        groups_bytes
    };
    let document = json_len(attrs);
    let allowed = ITEM_BYTES.saturating_sub(fixed + reserve);
    if document > allowed {
        let room = if rt.is_user() {
            ", less room kept for the user's group memberships"
        } else {
            ""
        };
        return Err(StoreError::TooLarge(format!(
            "The {} is {document} bytes as stored (JSON); a stored {} may be at most {allowed} bytes: DynamoDB's item limit of 400 KB ({ITEM_BYTES} bytes){room}",
            rt.name, rt.name
        )));
    }
    Ok(())
}

/// A value stored in a partition key after a `prefix_len`-byte prefix.
fn check_key_value(attr: &str, len: usize, prefix_len: usize, how: &str) -> Result<(), StoreError> {
    let max = PARTITION_KEY_BYTES.saturating_sub(prefix_len);
    if len <= max {
        return Ok(());
    }
    Err(StoreError::TooLarge(format!(
        "'{attr}' is {len} bytes long (UTF-8{how}); it may be at most {max} bytes, because it is part of a DynamoDB key, \
         which holds at most {PARTITION_KEY_BYTES} bytes with the tenant and resource type"
    )))
}

/// The length of the document as the store writes it (`serde_json::to_string`), without building it.
fn json_len(attrs: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing a map of JSON values to a counter cannot fail.
    let _ = serde_json::to_writer(&mut c, attrs);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{group_resource_type, user_resource_type};
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn user_name_is_bounded_by_the_guard_key() {
        let rt = user_resource_type();
        let max = PARTITION_KEY_BYTES - keys::guard_pk("default", rt, "").len();
        assert!(resource(
            "default",
            rt,
            "id",
            &attrs(json!({"userName": "a".repeat(max)})),
            &[]
        )
        .is_ok());
        let e = resource(
            "default",
            rt,
            "id",
            &attrs(json!({"userName": "a".repeat(max + 1)})),
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(&e, StoreError::TooLarge(d) if d.contains(&format!("at most {max} bytes")) && d.contains("2048")),
            "{e:?}"
        );
        // Bytes, not characters, and after lower-casing.
        assert!(resource(
            "default",
            rt,
            "id",
            &attrs(json!({"userName": "É".repeat(max / 2 + 1)})),
            &[]
        )
        .is_err());
    }

    #[test]
    fn document_size_keeps_room_for_groups() {
        let rt = user_resource_type();
        let ok = attrs(
            json!({"userName": "u", "title": "a".repeat(ITEM_BYTES - GROUPS_RESERVE_BYTES - 1000)}),
        );
        assert!(resource("default", rt, "id", &ok, &[]).is_ok());
        let big =
            attrs(json!({"userName": "u", "title": "a".repeat(ITEM_BYTES - GROUPS_RESERVE_BYTES)}));
        assert!(
            matches!(resource("default", rt, "id", &big, &[]), Err(StoreError::TooLarge(d)) if d.contains("400 KB"))
        );
        // Groups do not reserve room; a group document may use it.
        let g = attrs(json!({"displayName": "g", "description": "a".repeat(ITEM_BYTES - 1000)}));
        assert!(resource("default", group_resource_type(), "id", &g, &[]).is_ok());
    }

    #[test]
    fn ids_are_sort_keys() {
        assert!(id("x", &"a".repeat(SORT_KEY_BYTES)).is_ok());
        assert!(id("x", &"a".repeat(SORT_KEY_BYTES + 1)).is_err());
        assert!(index_key(&"a".repeat(PARTITION_KEY_BYTES + 1)).is_err());
    }
}
