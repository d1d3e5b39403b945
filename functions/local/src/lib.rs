//! The local server's parts, shared with the test harness, one folder per concern: the HTTP server and its
//! serving loop ([`server`]), the embedded DynamoDB engine (dynoxide on a SQLite file, served in-process, and
//! to other processes on a loopback port behind a signature check: [`engine`]), the operator page
//! ([`admin`]), the operator CLI's commands and output ([`cli`], for `scim-admin`), and change events with
//! their webhook delivery ([`delivery`]).
//!
//! The embedded engine is a dependency of this crate only — never of a Lambda function.

pub mod admin;
pub mod cli;
pub mod delivery;
pub mod engine;
pub mod server;
