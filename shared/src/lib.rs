//! The SCIM 2.0 core shared by every handler (Lambda functions, the local server, the tests).
//!
//! Split by concept: [`schema`] (attribute definitions as data), [`model`] (resource input and output
//! rules), [`filter`] (filter and path AST), [`normalise`] (Entra's dialect rewritten into RFC form),
//! [`patch`] (RFC 7644 §3.5.2), [`store`] (the DynamoDB store), [`http`] (one axum router for every
//! deployment; its folder also holds the request-line repair and the Lambda runner), [`config`], [`error`].

pub mod auth;
pub mod bootstrap;
pub mod bulk;
pub mod config;
pub mod error;
pub mod filter;
pub mod http;
pub mod logging;
pub mod members;
pub mod model;
pub mod normalise;
pub mod patch;
pub mod profile;
pub mod query;
pub mod schema;
pub mod service;
pub mod store;
pub mod discovery;
