//! Typed API clients. They know nothing of Terraform: no values, schemas or diagnostics.

pub mod azure;
pub mod vault;
