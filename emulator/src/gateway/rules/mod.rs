//! Microsoft's documented rules for policies, in tables with a citation per rule.

pub mod types;
