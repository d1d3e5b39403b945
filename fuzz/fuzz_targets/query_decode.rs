//! Arbitrary bytes (UTF-8, lossily) as a raw query string → `query::decode` → `ListParams::parse` with
//! the default limits (filter, startIndex, count, attributes, excludedAttributes, sortBy). Must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::config::Limits;
use scim_core::query::{self, ListParams};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    let limits = LIMITS.get_or_init(Limits::default);

    let raw = String::from_utf8_lossy(data);
    let pairs = query::decode(Some(&raw));
    if let Ok(params) = ListParams::parse(&pairs, limits) {
        assert!(params.start_index >= 1, "startIndex below 1 from {raw:?}");
        assert!(params.count <= limits.max_page_size, "count above the page limit from {raw:?}");
    }
    let _ = query::projection(&pairs);
});
