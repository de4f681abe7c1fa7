//! `apim_vault_policy`: a Vault ACL policy, from `rule` blocks or a raw `policy` document.
//! Drift is judged on meaning: formatting, comments and rule order never show as a diff.

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::acl;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::plan::Planned;
use crate::framework::resource::{Ctx, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, Schema};
use crate::framework::value::Value;
use crate::provider::ProviderData;

use super::{already_exists, api_error, rules};

const TYPE: &str = "apim_vault_policy";

/// The resource.
pub struct VaultPolicy;

fn validate_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid policy name", |name| {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
            Err(format!(
                "`name` is {name:?}: a Vault policy name must be non-empty, without spaces or `/`."
            ))
        } else if name != name.to_lowercase() {
            Err(format!("`name` is {name:?}, but Vault stores policy names in lowercase, so Terraform would see a different name after apply. Use {:?}.", name.to_lowercase()))
        } else {
            Ok(())
        }
    });
}

/// The policy text the configuration asks for, when known.
fn desired_text(config: &Value) -> Option<String> {
    let policy = config.get("policy");
    if let Some(p) = policy.as_str() {
        return Some(p.to_string());
    }
    let rules = config.get("rule");
    (policy.is_null() && rules.is_wholly_known() && !rules.as_list().is_empty())
        .then(|| acl::render(&rules::from_values(rules)))
}

/// The state of a policy whose text Vault holds, in the form that represents it exactly:
/// `rule` blocks when the text is the canonical rendering of its rules (as this provider
/// writes them), otherwise the raw `policy`.
fn state_from_text(name: &str, text: &str) -> Value {
    let mut s = VaultPolicy.schema().block.empty_value();
    s.set("id", Value::from(name));
    s.set("name", Value::from(name));
    s.set("hcl", Value::from(text));
    match acl::parse(text) {
        Ok(r) if !r.is_empty() && acl::render(&r) == text => s.set("rule", rules::to_values(&r)),
        _ => s.set("policy", Value::from(text)),
    }
    s
}

#[async_trait]
impl Resource<ProviderData> for VaultPolicy {
    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("A Vault ACL policy (`sys/policies/acl/<name>`), written from `rule` blocks or from a raw `policy` document. Formatting-only differences between the configuration and Vault never show as a diff.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("The policy name."))
                    .attr(
                        Attribute::string("name")
                            .required()
                            .requires_replace()
                            .validate(validate_name)
                            .describe("Policy name, in lowercase (Vault lowercases names)."),
                    )
                    .block(rules::rule_block())
                    .attr(Attribute::string("policy").describe(
                        "The policy document in Vault's HCL syntax, as an alternative to `rule` blocks. Exactly one of the two must be set.",
                    ))
                    .attr(Attribute::string("hcl").computed().describe("The policy document as written to Vault."))
                    .constraint(Constraint::ExactlyOneOf(&["rule", "policy"])),
            )
        })
    }

    fn validate(&self, config: &Value, d: &mut Diags) {
        let Some(text) = config.get("policy").as_str() else {
            return;
        };
        match acl::parse(text) {
            Ok(r) => {
                let unknown = acl::unknown_capabilities(&r);
                if !unknown.is_empty() {
                    d.attr_error(
                        AttrPath::root("policy"),
                        "Unknown capability",
                        format!(
                            "`policy` grants {}, which Vault does not know. Capabilities are: {}.",
                            unknown.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", "),
                            acl::CAPABILITIES.join(", ")
                        ),
                    );
                }
            }
            Err(e) => d.attr_warning(
                AttrPath::root("policy"),
                "Policy document not understood",
                format!("The provider could not parse `policy` ({e}). Vault checks it at apply; until it parses, drift is detected by comparing text."),
            ),
        }
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx<ProviderData>,
        req: PlanRequest<'_>,
        planned: &mut Planned,
        _d: &mut Diags,
    ) {
        let prior_hcl = req.prior.get("hcl").as_str();
        let text = desired_text(req.config);
        // Bindings planned later in this run judge the policy as planned.
        if let (Some(data), Some(name)) = (
            ctx.data(&mut Diags::new()),
            planned.state.get("name").as_str(),
        ) {
            data.planned.policy(name, text.clone());
        }
        let Some(text) = text else {
            return;
        };
        match prior_hcl {
            // Same meaning as what Vault holds: keep the prior values, so no diff.
            Some(prior) if acl::equivalent(prior, &text) => {
                if req.config.get("policy").as_str().is_some() {
                    planned.state.set("policy", req.prior.get("policy").clone());
                }
                planned.state.set("hcl", Value::from(prior));
            }
            _ => planned.state.set("hcl", Value::String(text)),
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: &Value,
        _config: &Value,
        d: &mut Diags,
    ) -> Option<Value> {
        let vault = ctx.data(d)?.vault(d)?;
        let name = planned.get("name").as_str()?.to_string();
        let text = planned.get("hcl").as_str()?.to_string();
        match vault.read_policy(&name).await {
            Ok(Some(_)) => {
                already_exists(
                    d,
                    TYPE,
                    &format!("A Vault policy named {name:?}"),
                    &name,
                    "",
                );
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                api_error(d, "create", TYPE, &format!("policy {name:?}"), &e);
                return None;
            }
        }
        if let Err(e) = vault.write_policy(&name, &text).await {
            api_error(d, "create", TYPE, &format!("policy {name:?}"), &e);
            return None;
        }
        let mut state = planned.clone();
        state.set("id", Value::from(name.as_str()));
        Some(state)
    }

    async fn read(&self, ctx: &Ctx<ProviderData>, state: &Value, d: &mut Diags) -> Option<Value> {
        let vault = ctx.data(d)?.vault(d)?;
        let name = state.get("name").as_str()?.to_string();
        let text = match vault.read_policy(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                api_error(d, "read", TYPE, &format!("policy {name:?}"), &e);
                return Some(state.clone());
            }
        };
        if state
            .get("hcl")
            .as_str()
            .is_some_and(|h| acl::equivalent(h, &text))
        {
            return Some(state.clone());
        }
        // Changed out of band (or just imported): take Vault's version, keeping the form
        // the configuration uses where it can represent the text.
        let mut s = state_from_text(&name, &text);
        let parsed = acl::parse(&text).ok().filter(|r| !r.is_empty());
        match (state.get("policy").is_null(), parsed) {
            (true, Some(r)) => {
                s.set("rule", rules::to_values(&r));
                s.set("policy", Value::Null);
            }
            (true, None) => {}
            (false, _) => {
                s.set("policy", Value::from(text.as_str()));
                s.set("rule", Value::List(Vec::new()));
            }
        }
        Some(s)
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        _prior: &Value,
        planned: &Value,
        _config: &Value,
        d: &mut Diags,
    ) -> Option<Value> {
        let vault = ctx.data(d)?.vault(d)?;
        let name = planned.get("name").as_str()?;
        let text = planned.get("hcl").as_str()?;
        if let Err(e) = vault.write_policy(name, text).await {
            api_error(d, "update", TYPE, &format!("policy {name:?}"), &e);
            return None;
        }
        Some(planned.clone())
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: &Value, d: &mut Diags) {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        let Some(name) = state.get("name").as_str() else {
            return;
        };
        if let Err(e) = vault.delete_policy(name).await {
            api_error(d, "delete", TYPE, &format!("policy {name:?}"), &e);
        }
    }

    async fn import(&self, ctx: &Ctx<ProviderData>, id: &str, d: &mut Diags) -> Option<Value> {
        let vault = ctx.data(d)?.vault(d)?;
        if id.is_empty() || id.contains('/') {
            d.error(
                format!("Unable to import {TYPE}"),
                format!("The import ID {id:?} is not a policy name. Use the name, e.g. `terraform import {TYPE}.example my-policy`."),
            );
            return None;
        }
        match vault.read_policy(id).await {
            Ok(Some(text)) => Some(state_from_text(id, &text)),
            Ok(None) => {
                d.error(
                    format!("Unable to import {TYPE}"),
                    format!("Vault has no policy named {id:?}. Check the name (Vault stores names in lowercase) and the namespace the provider uses."),
                );
                None
            }
            Err(e) => {
                api_error(d, "import", TYPE, &format!("policy {id:?}"), &e);
                None
            }
        }
    }
}
