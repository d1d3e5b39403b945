//! The SCIM 2.0 core shared by every handler (Lambda functions, the local server, the tests).
//!
//! Split by concept: [`value`] (JSON value rules every layer shares), [`schema`] (attribute definitions
//! as data), [`filter`] (filter and path AST, parser, evaluator), [`model`] (resource input and output
//! rules, Entra's value shapes), [`patch`] (RFC 7644 §3.5.2 and Entra's PATCH dialect, group member
//! operations), [`store`] (the DynamoDB store), [`http`] (one axum router for every deployment;
//! its folder also holds the request-line repair and the Lambda runner),
//! [`metrics`] (per-tenant request metrics, in process and as CloudWatch embedded-metric lines),
//! [`config`], [`error`].
//!
//! Imports point down this list and never back: `value` imports nothing of the crate; `filter` imports
//! `value` (and `error`); `schema` imports `filter`; `model` imports those; `patch` imports `model`'s
//! value shapes and those below; the service, store and HTTP layers import all of them.
//!
//! Captured Entra payloads live in `shared/fixtures/entra/` (one JSON file each, indexed in its README):
//! the unit tests read them with `entra_fixture!`, the end-to-end tests with `scim_tests::entra_fixture`,
//! and `fuzz/run.sh` seeds the PATCH fuzzer with them, so each payload is written down once.

/// A captured Entra payload from `shared/fixtures/entra/<name>.json`, parsed (tests only).
#[cfg(test)]
macro_rules! entra_fixture {
    ($name:literal) => {
        serde_json::from_str::<serde_json::Value>(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/entra/",
            $name,
            ".json"
        )))
        .expect(concat!("fixture ", $name, " is JSON"))
    };
}

pub mod auth;
pub mod backoff;
pub mod bootstrap;
pub mod bulk;
pub mod cache;
pub mod config;
pub mod discovery;
pub mod error;
pub mod events;
pub mod filter;
pub mod http;
#[cfg(feature = "local-engine")]
pub mod local_engine;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod model;
pub mod oauth;
pub mod patch;
pub mod profile;
pub mod query;
pub mod schema;
pub mod service;
pub mod store;
pub mod throttle;
pub mod value;
