//! The RPC handlers, grouped by what they serve.

pub mod action;
pub mod configure;
pub mod data;
pub mod ephemeral;
pub mod function;
pub mod list;
pub mod resource;
pub mod schema;
pub mod unsupported;
pub mod validate;
