//! One file per API Management entity: the request and response bodies of each endpoint
//! (as in the published 2024-05-01 specification) and the calls on [`super::Azure`].

pub mod api;
pub mod api_policy;
pub mod backend;
pub mod logger;
pub mod named_value;
pub mod policy_fragment;
pub mod service;

use serde::{Deserialize, Serialize};

/// `format` of a policy or fragment document. The provider writes and reads `rawxml`, so
/// that policy expressions (C#) need no XML escaping and read back byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PolicyFormat {
    /// XML-encoded policy expressions (the API's default).
    Xml,
    /// Policy expressions as typed.
    #[default]
    Rawxml,
}

impl PolicyFormat {
    /// The query parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyFormat::Xml => "xml",
            PolicyFormat::Rawxml => "rawxml",
        }
    }
}
