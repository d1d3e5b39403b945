//! OAuth 2.0 for Entra: client authentication by Workload Identity Federation assertions ([`assertion`]).
pub mod assertion;
