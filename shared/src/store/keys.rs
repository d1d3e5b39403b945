//! The single-table key layout. Every key starts with the tenant, so tenants never share an item.
//!
//! | item | pk | sk | other key attributes |
//! |---|---|---|---|
//! | resource | `T#<tenant>#<Type>` | `<id>` | `gsi1pk` = `T#<tenant>#<Type>#<lower(unique attr)>`, `gsi2pk` = `T#<tenant>#<Type>#ext#<externalId>` |
//! | uniqueness guard | `T#<tenant>#<Type>#uniq#<lower(unique attr)>` | `#` | `id` of the owner |
//! | counter shard | `T#<tenant>#count` | `<Type>#<shard>` | `n` |
//! | group member | `T#<tenant>#Group#<group id>#members` | `<user id>` | `value` |
//! | OAuth client | `T#<tenant>#oauth` | `C#<client id>` | — (`revoked`, `secrets` count) |
//! | client secret | `T#<tenant>#oauth` | `C#<client id>#S#<secret id>` | — (`hash`, `expires`) |
//! | WIF trust | `T#<tenant>#oauth` | `WIF` | — (`issuer`, `subject`, `audience`, `jwks_url`) |
//! | event (events log) | `T#<tenant>#events` | order, 20 digits | — (`id`, `ev`, `ttl`) |
//! | logged event id | `T#<tenant>#events#ids` | event id | — (`o`, `ttl`) |
//! | events log head | `T#<tenant>#events#head` | `#` | — (`n`) |
//! | tenant (register) | `TENANTS` | `<tenant>` | — (`name`, `meta`, `state`, `ver`, `created`, `updated`) |
//! | audit entry | `T#<tenant>#audit` | `<RFC 3339 µs>#<nonce>` | — (`actor`, `action`, `target`, `ttl`) |
//! | setup link | `T#<tenant>#links` | `L#<link key>` | — (`hash`, `kind`, `created`, `expires`, `ret`, `used`, `revoked`, `ttl`) |
//! | setup page session | `T#<tenant>#links` | `S#<SHA-256 of the session id>` | — (`link`, `expires`, `ttl`) |
//! | stream checkpoint (no tenant's) | `EVENTS#shards` | shard id | — (`seq`, `closed`) |
//! | webhook position | `EVENTS#webhook` | `<tenant>` | — (the deliverer's position and any parked event) |
//! | the events items' move (events table only) | `EVENTS#moved` | `#` | — (`at`, `copied`, `cleaned`) |
//! | offboarding record / deletion receipt (not the tenant's: it outlives it) | `OFFBOARDED` | `<tenant>#<started>` | — (`actor`, `phase`, `pass`, `dirty`, `deleted`, `finished`, `ttl`) |
//!
//! The rows from "event" to "webhook position" ([`is_events_key`]) live in the change events' table, a
//! second table without a stream, beside the main table (`SCIM_EVENTS_TABLE`); every other row in the main
//! table. Deployments from before that table had them in the main table: `store/dynamo/events_move.rs`
//! copies them over once.
//!
//! The webhook position is the one item a tenant owns whose partition key does not start with the
//! tenant (the deliverer lists every tenant's position in one Query): removing a tenant removes
//! `EVENTS#webhook` / `<tenant>` too. Offboarding (`store/offboard.rs`) removes every row above whose key
//! holds the tenant, the register item last; it keeps the `OFFBOARDED` receipt, which is not the tenant's
//! data (who deleted it, when, how many items) and expires with the audit retention.
//!
//! A user item also holds `grp`, the string set of its groups' ids, and a group item `mcount`, its number
//! of members; both change in the same transactions as the member items.
//!
//! Only key attributes are normalised (lower-cased); the resource itself is stored verbatim in `doc`.

use crate::schema::{ResourceKind, ResourceType};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI2: &str = "gsi2";
pub const GSI2PK: &str = "gsi2pk";
pub const GUARD_SK: &str = "#";
/// Counter shards per resource type and tenant: concurrent creates rarely touch the same item.
pub const COUNTER_SHARDS: u32 = 8;

pub fn resource_pk(tenant: &str, rt: &ResourceType) -> String {
    format!("T#{tenant}#{}", rt.name)
}

pub fn guard_pk(tenant: &str, rt: &ResourceType, unique_lower: &str) -> String {
    format!("T#{tenant}#{}#uniq#{unique_lower}", rt.name)
}

pub fn gsi1pk(tenant: &str, rt: &ResourceType, unique_lower: &str) -> String {
    format!("T#{tenant}#{}#{unique_lower}", rt.name)
}

pub fn gsi2pk(tenant: &str, rt: &ResourceType, external_id: &str) -> String {
    format!("T#{tenant}#{}#ext#{external_id}", rt.name)
}

/// Partition of a group's member items (one item per member, sort key = the member's id).
pub fn members_pk(tenant: &str, group_id: &str) -> String {
    format!("T#{tenant}#Group#{group_id}#members")
}

/// The registry of tenants (one item per tenant, sort key = tenant id).
pub const TENANTS_PK: &str = "TENANTS";

/// A tenant's audit trail (sort key: [`audit_sk`], so entries sort by time).
pub fn audit_pk(tenant: &str) -> String {
    format!("T#{tenant}#audit")
}

/// An audit entry's sort key: its time (RFC 3339 with microseconds, UTC) and its nonce.
pub fn audit_sk(at: &str, nonce: &str) -> String {
    format!("{at}#{nonce}")
}

/// A tenant's setup links and the browser sessions they opened.
pub fn links_pk(tenant: &str) -> String {
    format!("T#{tenant}#links")
}

/// A setup link item (in [`links_pk`]).
pub fn link_sk(key: &str) -> String {
    format!("L#{key}")
}

/// The sort keys of setup links begin with this.
pub const LINK_SK_PREFIX: &str = "L#";

/// A setup page session item (in [`links_pk`]), by the hash of the session id.
pub fn setup_session_sk(hash: &str) -> String {
    format!("S#{hash}")
}

/// A token, found by its hash at authentication.
pub fn token_pk(hash: &str) -> String {
    format!("TOKEN#{hash}")
}

/// A tenant's tokens, listed by public id (sort key).
pub fn tenant_tokens_pk(tenant: &str) -> String {
    format!("T#{tenant}#tokens")
}

pub fn counter_pk(tenant: &str) -> String {
    format!("T#{tenant}#count")
}

pub fn counter_sk(rt: &ResourceType, shard: u32) -> String {
    format!("{}#{shard}", rt.name)
}

pub fn counter_prefix(rt: &ResourceType) -> String {
    format!("{}#", rt.name)
}

/// A tenant's OAuth partition: its clients, their secrets and its WIF trust.
pub fn oauth_pk(tenant: &str) -> String {
    format!("T#{tenant}#oauth")
}

/// An OAuth client item; its secrets' sort keys begin with it and `#S#`.
pub fn client_sk(client_id: &str) -> String {
    format!("C#{client_id}")
}

/// A client secret item (in the tenant's OAuth partition).
pub fn secret_sk(client_id: &str, secret_id: &str) -> String {
    format!("C#{client_id}#S#{secret_id}")
}

/// The tenant's WIF trust item (in its OAuth partition).
pub const WIF_SK: &str = "WIF";

/// A tenant's events log (sort key: the event's order, 20 digits).
pub fn events_pk(tenant: &str) -> String {
    format!("T#{tenant}#events")
}

/// The ids of a tenant's logged events (deduplication; sort key: the event id).
pub fn event_ids_pk(tenant: &str) -> String {
    format!("T#{tenant}#events#ids")
}

/// The head of a tenant's events log (sort key [`GUARD_SK`]; `n`: the last order given).
pub fn events_head_pk(tenant: &str) -> String {
    format!("T#{tenant}#events#head")
}

/// The stream consumer's checkpoints, one item per shard (no tenant's).
pub const STREAM_CHECKPOINTS_PK: &str = "EVENTS#shards";

/// The webhook deliverer's positions, one item per tenant (sort key: the tenant id).
pub const WEBHOOK_POSITIONS_PK: &str = "EVENTS#webhook";

/// The events table's record of the move of the change events' items out of the table (sort key
/// [`GUARD_SK`]; `at`: when the copy finished, `copied`, and `cleaned` once the old items are gone). Lives
/// in the events table only.
pub const EVENTS_MOVED_PK: &str = "EVENTS#moved";

/// Whether an item with partition key `pk` belongs to the change events (the events log, its ids and
/// head, the consumer's checkpoints, the webhook positions): the items kept in the events table.
pub fn is_events_key(pk: &str) -> bool {
    if pk == STREAM_CHECKPOINTS_PK || pk == WEBHOOK_POSITIONS_PK {
        return true;
    }
    let Some((tenant, rest)) = pk.strip_prefix("T#").and_then(|r| r.split_once('#')) else {
        return false;
    };
    !tenant.is_empty() && matches!(rest, "events" | "events#ids" | "events#head")
}

/// Offboarding records and deletion receipts, one item per deletion (sort key: [`offboard_sk`]).
pub const OFFBOARD_PK: &str = "OFFBOARDED";

/// A deletion's record: the tenant and the time its deletion began (tenant ids hold no `#`, so
/// `begins_with(<tenant>#)` finds one tenant's records, newest last).
pub fn offboard_sk(tenant: &str, started: &str) -> String {
    format!("{tenant}#{started}")
}

/// What a partition key names, for the items change events are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKey<'a> {
    /// A resource item ([`resource_pk`]).
    Resource { tenant: &'a str, kind: ResourceKind },
    /// A group's member item ([`members_pk`]).
    Member { tenant: &'a str, group: &'a str },
}

/// The inverse of [`resource_pk`] and [`members_pk`]: None for every other item (guards, counters,
/// tokens, the events log, checkpoints).
pub fn domain_key(pk: &str) -> Option<DomainKey<'_>> {
    let (tenant, rest) = pk.strip_prefix("T#")?.split_once('#')?;
    if let Some(kind) = ResourceKind::from_name(rest) {
        return Some(DomainKey::Resource { tenant, kind });
    }
    let group = rest.strip_prefix("Group#")?.strip_suffix("#members")?;
    (!group.is_empty() && !group.contains('#')).then_some(DomainKey::Member { tenant, group })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{group_resource_type, user_resource_type};

    #[test]
    fn the_change_events_keys_are_told_apart_from_every_other_key() {
        let u = user_resource_type();
        for pk in [
            events_pk("acme"),
            event_ids_pk("acme"),
            events_head_pk("a-b"),
            STREAM_CHECKPOINTS_PK.to_string(),
            WEBHOOK_POSITIONS_PK.to_string(),
        ] {
            assert!(is_events_key(&pk), "{pk}");
        }
        for pk in [
            resource_pk("events", u),
            members_pk("acme", "events"),
            counter_pk("acme"),
            audit_pk("acme"),
            oauth_pk("events"),
            TENANTS_PK.to_string(),
            OFFBOARD_PK.to_string(),
            EVENTS_MOVED_PK.to_string(),
            "T##events".to_string(),
            "T#acme#events#other".to_string(),
        ] {
            assert!(!is_events_key(&pk), "{pk}");
        }
    }

    #[test]
    fn domain_key_reads_back_the_keys_written() {
        let (u, g) = (user_resource_type(), group_resource_type());
        assert_eq!(
            domain_key(&resource_pk("acme", u)),
            Some(DomainKey::Resource {
                tenant: "acme",
                kind: ResourceKind::User
            })
        );
        assert_eq!(
            domain_key(&resource_pk("a-b", g)),
            Some(DomainKey::Resource {
                tenant: "a-b",
                kind: ResourceKind::Group
            })
        );
        assert_eq!(
            domain_key(&members_pk("acme", "g1")),
            Some(DomainKey::Member {
                tenant: "acme",
                group: "g1"
            })
        );
        for other in [
            guard_pk("acme", u, "ann"),
            counter_pk("acme"),
            tenant_tokens_pk("acme"),
            oauth_pk("acme"),
            events_pk("acme"),
            event_ids_pk("acme"),
            events_head_pk("acme"),
            audit_pk("acme"),
            links_pk("acme"),
            STREAM_CHECKPOINTS_PK.to_string(),
            WEBHOOK_POSITIONS_PK.to_string(),
            TENANTS_PK.to_string(),
            OFFBOARD_PK.to_string(),
        ] {
            assert_eq!(domain_key(&other), None, "{other}");
        }
    }
}
