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
//!
//! A user item also holds `grp`, the string set of its groups' ids, and a group item `mcount`, its number
//! of members; both change in the same transactions as the member items.
//!
//! Only key attributes are normalised (lower-cased); the resource itself is stored verbatim in `doc`.

use crate::schema::ResourceType;

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
