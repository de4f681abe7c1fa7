//! The `rule` block shared by `apim_vault_policy` and `apim_vault_policy_document`, and the
//! mapping between its Terraform values and the Vault ACL rule model.

use std::collections::BTreeMap;

use crate::clients::vault::acl::{PathRule, CAPABILITIES};
use crate::framework::schema::{validators, Attribute, Block, NestedBlock};
use crate::framework::value::Type;

fn parameter_block(what: &'static str) -> Block {
    Block::new(what)
        .attr(
            Attribute::string("key")
                .required()
                .describe("Parameter name (`*` for any)."),
        )
        .attr(
            Attribute::of("value", Type::list_of(Type::String))
                .describe("Values; empty or absent for any value."),
        )
}

/// The `rule` block: one `path` stanza of a Vault policy.
pub fn rule_block() -> NestedBlock {
    NestedBlock::list(
        "rule",
        Block::new("A path rule of the policy.")
            .attr(
                Attribute::string("path")
                    .required()
                    .validate(validators::not_empty)
                    .describe("The API path the rule applies to; `*` at the end is a prefix glob, `+` matches one path segment."),
            )
            .attr(
                Attribute::of("capabilities", Type::set_of(Type::String))
                    .required()
                    .each_one_of(CAPABILITIES)
                    .describe("Capabilities granted on the path."),
            )
            .attr(Attribute::string("description").describe(
                "A description, rendered as a comment above the rule. Vault keeps it only as text, so a change of it alone rewrites the policy.",
            ))
            .attr(
                Attribute::of("required_parameters", Type::list_of(Type::String))
                    .describe("Parameters that requests must contain."),
            )
            .attr(Attribute::string("min_wrapping_ttl").describe("Minimum response-wrapping TTL, e.g. `1s`."))
            .attr(Attribute::string("max_wrapping_ttl").describe("Maximum response-wrapping TTL, e.g. `90s`."))
            .block(NestedBlock::list(
                "allowed_parameter",
                parameter_block("A parameter requests may set, with its allowed values."),
            ))
            .block(NestedBlock::list(
                "denied_parameter",
                parameter_block("A parameter requests may not set, with its denied values."),
            )),
    )
}

crate::model! {
    /// A `rule` block.
    pub struct Rule, plan RulePlan {
        /// `path`.
        pub path: String,
        /// `capabilities`.
        pub capabilities: Vec<String>,
        /// `description`.
        pub description: Option<String>,
        /// `required_parameters`.
        pub required_parameters: Option<Vec<String>>,
        /// `min_wrapping_ttl`.
        pub min_wrapping_ttl: Option<String>,
        /// `max_wrapping_ttl`.
        pub max_wrapping_ttl: Option<String>,
        /// `allowed_parameter` blocks.
        pub allowed_parameter: Vec<Parameter>,
        /// `denied_parameter` blocks.
        pub denied_parameter: Vec<Parameter>,
    }
}

crate::model! {
    /// An `allowed_parameter` or `denied_parameter` block.
    pub struct Parameter, plan ParameterPlan {
        /// `key`.
        pub key: String,
        /// `value`.
        pub value: Option<Vec<String>>,
    }
}

fn params(blocks: &[Parameter]) -> BTreeMap<String, Vec<String>> {
    blocks
        .iter()
        .map(|p| (p.key.clone(), p.value.clone().unwrap_or_default()))
        .collect()
}

fn param_blocks(m: &BTreeMap<String, Vec<String>>) -> Vec<Parameter> {
    m.iter()
        .map(|(k, v)| Parameter {
            key: k.clone(),
            value: Some(v.clone()),
        })
        .collect()
}

/// Rule blocks as Vault rules.
pub fn to_acl(rules: &[Rule]) -> Vec<PathRule> {
    rules
        .iter()
        .map(|r| PathRule {
            path: r.path.clone(),
            capabilities: r.capabilities.clone(),
            description: r.description.clone(),
            required_parameters: r.required_parameters.clone().unwrap_or_default(),
            allowed_parameters: params(&r.allowed_parameter),
            denied_parameters: params(&r.denied_parameter),
            min_wrapping_ttl: r.min_wrapping_ttl.clone(),
            max_wrapping_ttl: r.max_wrapping_ttl.clone(),
        })
        .collect()
}

/// Vault rules as rule blocks.
pub fn from_acl(rules: &[PathRule]) -> Vec<Rule> {
    rules
        .iter()
        .map(|r| Rule {
            path: r.path.clone(),
            capabilities: r.capabilities.clone(),
            description: r.description.clone(),
            required_parameters: (!r.required_parameters.is_empty())
                .then(|| r.required_parameters.clone()),
            allowed_parameter: param_blocks(&r.allowed_parameters),
            denied_parameter: param_blocks(&r.denied_parameters),
            min_wrapping_ttl: r.min_wrapping_ttl.clone(),
            max_wrapping_ttl: r.max_wrapping_ttl.clone(),
        })
        .collect()
}
