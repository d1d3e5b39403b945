//! The SCIM 2.0 core shared by every handler (Lambda functions, the local server, the tests).
//!
//! Split by concept: [`value`] (JSON value rules every layer shares), [`schema`] (attribute definitions
//! as data), [`filter`] (filter and path AST, parser, evaluator), [`model`] (resource input and output
//! rules, Entra's value shapes), [`patch`] (RFC 7644 §3.5.2 and Entra's PATCH dialect, group member
//! operations), [`store`] (the DynamoDB store), [`http`] (one axum router for every deployment;
//! its folder also holds the request-line repair and the Lambda runner),
//! [`config`], [`error`].
//!
//! Imports point down this list and never back: `value` imports nothing of the crate; `filter` imports
//! `value` (and `error`); `schema` imports `filter`; `model` imports those; `patch` imports `model`'s
//! value shapes and those below; the service, store and HTTP layers import all of them.

pub mod auth;
pub mod bootstrap;
pub mod bulk;
pub mod config;
pub mod error;
pub mod filter;
pub mod http;
pub mod local_engine;
pub mod logging;
pub mod model;
pub mod patch;
pub mod profile;
pub mod query;
pub mod schema;
pub mod service;
pub mod store;
pub mod value;
pub mod discovery;
