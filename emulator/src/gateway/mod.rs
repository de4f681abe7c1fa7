//! The gateway: requests to `{gateway_url}/{api path}/...` run through the instance's policies.

pub mod compose;
pub mod context;
pub mod document;
pub mod expr;
pub mod instance;
pub mod rules;
