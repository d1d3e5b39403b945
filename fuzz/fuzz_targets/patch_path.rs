//! Arbitrary bytes (UTF-8, lossily) → `parse_path` (PATCH `path`) and `parse_attr_path`
//! (`attributes=` entries). Neither may panic; what parses must print (`Display`) to a form that parses
//! back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::filter::{parse_attr_path, parse_path};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(path) = parse_path(&input) {
        let shown = path.to_string();
        match parse_path(&shown) {
            Ok(again) => assert_eq!(again, path, "Display form {shown:?} of path {input:?} parses to a different path"),
            Err(e) => panic!("Display form {shown:?} of path {input:?} does not parse: {e}"),
        }
    }
    if let Ok(attr) = parse_attr_path(&input) {
        let shown = attr.to_string();
        match parse_attr_path(&shown) {
            Ok(again) => assert_eq!(again, attr, "Display form {shown:?} of attribute path {input:?} parses differently"),
            Err(e) => panic!("Display form {shown:?} of attribute path {input:?} does not parse: {e}"),
        }
    }
});
