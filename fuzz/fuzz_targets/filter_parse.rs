//! Arbitrary bytes (UTF-8, lossily) → `parse_filter`. When a filter parses:
//! * its `Display` form must parse again, to an equal AST (the canonical form is documented as
//!   round-tripping);
//! * evaluating it against a realistic user and group must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::filter::parse_filter;
use scim_core::schema::{group_resource_type, user_resource_type};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static FIXTURES: OnceLock<(serde_json::Value, serde_json::Value)> = OnceLock::new();
    let (user, group) = FIXTURES.get_or_init(|| (shared_fuzz::user_rendered(), shared_fuzz::group_rendered()));

    let input = String::from_utf8_lossy(data);
    let Ok(filter) = parse_filter(&input) else { return };
    let shown = filter.to_string();
    match parse_filter(&shown) {
        Ok(again) => assert_eq!(again, filter, "Display form {shown:?} of {input:?} parses to a different AST"),
        Err(e) => panic!("Display form {shown:?} of {input:?} does not parse: {e}"),
    }
    let _ = filter.matches(user, user_resource_type());
    let _ = filter.matches(group, group_resource_type());
});
