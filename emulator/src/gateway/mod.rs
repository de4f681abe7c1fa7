//! The gateway: requests to `{gateway_url}/{api path}/...` run through the instance's policies.

pub mod context;
pub mod expr;
pub mod rules;
