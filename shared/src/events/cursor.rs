//! The Events API's cursors: a position in one tenant's events log, bound to what issued it. A cursor
//! names the order of the last event the reader has (0: none yet) and a fingerprint of that event's id,
//! and carries an HMAC-SHA256 tag, made with a key of the server, over the table, the tenant, the order
//! and the fingerprint. So a cursor of another tenant, another table or another server's keys, or an
//! altered one, fails the tag; and one whose event is not the event now at its order (a log made anew
//! under the same name) fails the fingerprint, which the log checks when it reads.
//!
//! The keys are the server's (the HTTP layer chooses them, `http/events.rs`): this module only asks a
//! [`CursorKeys`] to sign and to verify. Pure; imports nothing of the crate.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Signs and verifies cursor tags. `kid` names the key that made a tag; every key the server holds
/// verifies, the first signs (so a key rotation keeps earlier cursors valid while the old key is kept).
pub trait CursorKeys {
    /// The key id and HMAC tag of `data` by the signing key.
    fn sign(&self, data: &[u8]) -> (String, Vec<u8>);
    /// Whether `tag` is the tag of `data` by the key `kid` (constant time). False for an unknown key.
    fn verify(&self, kid: &str, data: &[u8], tag: &[u8]) -> bool;
}

/// A position in a tenant's events log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The order of the last event the reader has; 0 when it has none.
    pub order: u64,
    /// The first 8 bytes of SHA-256 of that event's id (None at order 0, and at a head whose event had
    /// expired when the cursor was made).
    pub id_fp: Option<[u8; 8]>,
}

impl Position {
    /// The position after the event `id` at `order` (`id` None: order 0, before every event).
    pub fn after(order: u64, id: Option<&str>) -> Self {
        Position {
            order,
            id_fp: id.map(fingerprint),
        }
    }
}

/// The fingerprint of an event id a cursor carries.
pub fn fingerprint(id: &str) -> [u8; 8] {
    let d = Sha256::digest(id.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

const VERSION: &str = "ev2";

fn signed_data(table: &str, tenant: &str, order: u64, fp: &str) -> Vec<u8> {
    format!("scim-events-cursor\0{VERSION}\0{table}\0{tenant}\0{order}\0{fp}").into_bytes()
}

fn fp_text(p: &Position) -> String {
    p.id_fp.map_or_else(|| "-".to_string(), hex::encode)
}

/// The opaque cursor for `pos` in `tenant`'s log of `table`.
pub fn encode(keys: &dyn CursorKeys, table: &str, tenant: &str, pos: &Position) -> String {
    let fp = fp_text(pos);
    let (kid, tag) = keys.sign(&signed_data(table, tenant, pos.order, &fp));
    let text = format!("{VERSION}.{}.{fp}.{kid}.{}", pos.order, hex::encode(tag));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// The position a cursor names, when this server issued it for `tenant`'s log of `table`; None for
/// anything else (malformed, altered, another tenant's or table's, signed by a key this server lacks).
pub fn decode(keys: &dyn CursorKeys, table: &str, tenant: &str, cursor: &str) -> Option<Position> {
    if cursor.len() > 512 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('.');
    let (v, order, fp, kid, tag) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if v != VERSION || parts.next().is_some() {
        return None;
    }
    if order.is_empty() || order.len() > 20 || !order.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let order_text = order;
    let order: u64 = order.parse().ok()?;
    // Canonical form only (no leading zeros): one position, one cursor.
    if order.to_string() != order_text {
        return None;
    }
    let id_fp = match fp {
        "-" => None,
        h => {
            let b = hex::decode(h).ok()?;
            Some(<[u8; 8]>::try_from(b.as_slice()).ok()?)
        }
    };
    // Order 0 names no event; any other order names one, unless it is the head of a log whose every
    // event had expired when the cursor was issued.
    if (order == 0 && id_fp.is_some()) || fp.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    keys.verify(kid, &signed_data(table, tenant, order, fp), &tag)
        .then_some(Position { order, id_fp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    struct Keys(Vec<(&'static str, hmac::Key)>);
    impl CursorKeys for Keys {
        fn sign(&self, data: &[u8]) -> (String, Vec<u8>) {
            (
                self.0[0].0.to_string(),
                hmac::sign(&self.0[0].1, data).as_ref().to_vec(),
            )
        }
        fn verify(&self, kid: &str, data: &[u8], tag: &[u8]) -> bool {
            self.0
                .iter()
                .find(|(k, _)| *k == kid)
                .is_some_and(|(_, key)| hmac::verify(key, data, tag).is_ok())
        }
    }
    fn key(b: u8) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[b; 32])
    }

    #[test]
    fn a_cursor_is_valid_only_where_it_was_issued() {
        let k = Keys(vec![("a", key(1))]);
        let p = Position::after(42, Some("100-0"));
        let c = encode(&k, "scim", "acme", &p);
        assert_eq!(decode(&k, "scim", "acme", &c), Some(p));
        for p in [
            Position::after(0, None),
            Position {
                order: 7,
                id_fp: None,
            },
        ] {
            assert_eq!(
                decode(&k, "scim", "acme", &encode(&k, "scim", "acme", &p)),
                Some(p)
            );
        }
        assert_eq!(decode(&k, "scim", "globex", &c), None, "another tenant's");
        assert_eq!(decode(&k, "other", "acme", &c), None, "another table's");
        assert_eq!(
            decode(&Keys(vec![("a", key(2))]), "scim", "acme", &c),
            None,
            "another server's key"
        );
        // A rotated ring still verifies the old key's cursors.
        assert_eq!(
            decode(
                &Keys(vec![("b", key(2)), ("a", key(1))]),
                "scim",
                "acme",
                &c
            ),
            Some(p)
        );
    }

    #[test]
    fn altered_or_unsigned_cursors_are_refused() {
        let k = Keys(vec![("a", key(1))]);
        let c = encode(&k, "scim", "acme", &Position::after(42, Some("100-0")));
        let text = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&c)
                .unwrap(),
        )
        .unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let forged = [
            text.replacen(".42.", ".44.", 1),
            text.replacen(".42.", ".042.", 1),
            text.replacen("ev2.", "ev1.", 1),
            format!("{text}.x"),
            text.rsplit_once('.').unwrap().0.to_string(),
        ];
        for f in forged {
            assert_eq!(decode(&k, "scim", "acme", &b64(&f)), None, "{f}");
        }
        // The unsigned form of earlier versions (base64url("ev1.<n>")), and junk.
        for bad in ["ZXYxLjQy", "ZXYxLjQ0", "", "!!!!", "ev1.12"] {
            assert_eq!(decode(&k, "scim", "acme", bad), None, "{bad}");
        }
        assert_eq!(decode(&k, "scim", "acme", &"A".repeat(10_000)), None);
    }
}
