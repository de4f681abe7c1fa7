//! The `rule` block shared by `apim_vault_policy` and `apim_vault_policy_document`, and the
//! mapping between its Terraform values and the Vault ACL rule model.

use std::collections::BTreeMap;

use crate::clients::vault::acl::{PathRule, CAPABILITIES};
use crate::framework::schema::{validators, Attribute, Block, NestedBlock};
use crate::framework::value::{Type, Value};

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

fn params(v: &Value) -> BTreeMap<String, Vec<String>> {
    v.as_list()
        .iter()
        .filter_map(|p| {
            Some((
                p.get("key").as_str()?.to_string(),
                p.get("value").string_list(),
            ))
        })
        .collect()
}

/// Rule blocks (known) as Vault rules.
pub fn from_values(rules: &Value) -> Vec<PathRule> {
    rules
        .as_list()
        .iter()
        .map(|r| PathRule {
            path: r.get("path").as_str().unwrap_or_default().to_string(),
            capabilities: r.get("capabilities").string_list(),
            description: r.get("description").as_str().map(str::to_string),
            required_parameters: r.get("required_parameters").string_list(),
            allowed_parameters: params(r.get("allowed_parameter")),
            denied_parameters: params(r.get("denied_parameter")),
            min_wrapping_ttl: r.get("min_wrapping_ttl").as_str().map(str::to_string),
            max_wrapping_ttl: r.get("max_wrapping_ttl").as_str().map(str::to_string),
        })
        .collect()
}

fn param_values(m: &BTreeMap<String, Vec<String>>) -> Value {
    Value::List(
        m.iter()
            .map(|(k, v)| {
                Value::object([
                    ("key", Value::from(k.as_str())),
                    ("value", Value::strings(v.iter().cloned())),
                ])
            })
            .collect(),
    )
}

/// Vault rules as rule block values.
pub fn to_values(rules: &[PathRule]) -> Value {
    Value::List(
        rules
            .iter()
            .map(|r| {
                Value::object([
                    ("path", Value::from(r.path.as_str())),
                    (
                        "capabilities",
                        Value::strings(r.capabilities.iter().cloned()),
                    ),
                    ("description", Value::opt_string(r.description.clone())),
                    (
                        "required_parameters",
                        if r.required_parameters.is_empty() {
                            Value::Null
                        } else {
                            Value::strings(r.required_parameters.iter().cloned())
                        },
                    ),
                    ("allowed_parameter", param_values(&r.allowed_parameters)),
                    ("denied_parameter", param_values(&r.denied_parameters)),
                    (
                        "min_wrapping_ttl",
                        Value::opt_string(r.min_wrapping_ttl.clone()),
                    ),
                    (
                        "max_wrapping_ttl",
                        Value::opt_string(r.max_wrapping_ttl.clone()),
                    ),
                ])
            })
            .collect(),
    )
}
