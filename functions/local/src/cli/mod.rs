//! The operator CLI (`scim-admin`): OAuth client and WIF commands, setup links, CloudWatch figures,
//! terminal output.

pub mod clients;
pub mod links;
pub mod text;
