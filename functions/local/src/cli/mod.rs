//! The operator CLI (`scim-admin`): OAuth client and WIF commands, CloudWatch figures, terminal output.

pub mod clients;
pub mod text;
