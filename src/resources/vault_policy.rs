//! `apim_vault_policy`: a Vault ACL policy, from `rule` blocks or a raw `policy` document.
//! Drift is judged on meaning: formatting, comments and rule order never show as a diff.

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::acl;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::identity::IdentitySchema;
use crate::framework::list::{ListResource, Listed};
use crate::framework::model::Known;
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, Schema};
use crate::framework::value::Value;

use super::rules::{self, Rule};
use super::{already_exists, api_error};

const TYPE: &str = "apim_vault_policy";

/// The resource.
pub struct VaultPolicy;

fn validate_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    let before = d.0.len();
    super::vault_binding::grammar::validate_policy_name(v, p, d);
    if d.0.len() > before {
        return;
    }
    validators::string(v, p, d, "Invalid policy name", |name| {
        if name != name.to_lowercase() {
            Err(format!("`name` is {name:?}, but Vault stores policy names in lowercase, so Terraform would see a different name after apply. Use {:?}.", name.to_lowercase()))
        } else {
            Ok(())
        }
    });
}

crate::model! {
    /// An `apim_vault_policy`.
    pub struct PolicyModel, plan PolicyPlan {
        /// The policy name.
        pub id: Known<String>,
        /// `name`.
        pub name: String,
        /// `rule` blocks.
        pub rule: Vec<Rule>,
        /// `policy`: the raw document.
        pub policy: Option<String>,
        /// The document as written to Vault.
        pub hcl: Known<String>,
    }
}

/// The policy text the configuration asks for, when known.
fn desired_text(config: &PolicyPlan) -> Option<String> {
    match (&config.policy, &config.rule) {
        (Known::Value(Some(p)), _) => Some(p.clone()),
        (Known::Value(None), Known::Value(rules)) if !rules.is_empty() => {
            Some(acl::render(&rules::to_acl(rules)))
        }
        _ => None,
    }
}

/// The policy text of a known model.
fn text_of(m: &PolicyModel) -> String {
    match (&m.hcl, &m.policy) {
        (Known::Value(h), _) => h.clone(),
        (Known::Unknown, Some(p)) => p.clone(),
        (Known::Unknown, None) => acl::render(&rules::to_acl(&m.rule)),
    }
}

/// The state of a policy whose text Vault holds, in the form that represents it exactly:
/// `rule` blocks when the text is the canonical rendering of its rules (as this provider
/// writes them), otherwise the raw `policy`.
fn state_from_text(name: &str, text: &str) -> PolicyModel {
    let mut s = PolicyModel {
        id: Known::Value(name.to_string()),
        name: name.to_string(),
        rule: Vec::new(),
        policy: None,
        hcl: Known::Value(text.to_string()),
    };
    match acl::parse(text) {
        Ok(r) if !r.is_empty() && acl::render(&r) == text => s.rule = rules::from_acl(&r),
        _ => s.policy = Some(text.to_string()),
    }
    s
}

#[async_trait]
impl Resource<ProviderData> for VaultPolicy {
    type Model = PolicyModel;

    fn identity(&self) -> Option<&IdentitySchema> {
        static I: OnceLock<IdentitySchema> = OnceLock::new();
        Some(
            I.get_or_init(|| IdentitySchema::new(&[("name", "The policy name.")], |v| v.join("/"))),
        )
    }

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

    fn validate(&self, config: &PolicyPlan, d: &mut Diags) {
        let Some(text) = config.policy.as_str() else {
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
        req: PlanRequest<'_, PolicyModel>,
        plan: &mut Plan<PolicyModel>,
        _d: &mut Diags,
    ) {
        let text = desired_text(req.config);
        // Bindings planned later in this run judge the policy as planned.
        if let (Some(data), Some(name)) = (ctx.data(&mut Diags::new()), plan.state.name.get()) {
            data.this_run.policy(name, text.clone());
            if req.prior.and_then(|p| p.hcl.get()) != text.as_ref() {
                data.this_run.changing();
            }
        }
        let Some(text) = text else {
            return;
        };
        match req.prior.and_then(|p| p.hcl.get()) {
            // Same meaning as what Vault holds: keep the prior values, so no diff.
            Some(prior) if acl::equivalent(prior, &text) => {
                if req.config.policy.value().is_some() {
                    plan.state.policy = Known::Value(req.prior.and_then(|p| p.policy.clone()));
                }
                plan.state.hcl = Known::Value(prior.clone());
            }
            _ => plan.state.hcl = Known::Value(text),
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: PolicyModel,
        d: &mut Diags,
    ) -> Option<PolicyModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let name = planned.name.clone();
        let text = text_of(&planned);
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
        Some(PolicyModel {
            id: Known::Value(name),
            hcl: Known::Value(text),
            ..planned
        })
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: PolicyModel,
        d: &mut Diags,
    ) -> Option<PolicyModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let name = state.name.clone();
        let text = match vault.read_policy(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                api_error(d, "read", TYPE, &format!("policy {name:?}"), &e);
                return Some(state);
            }
        };
        if state.hcl.get().is_some_and(|h| acl::equivalent(h, &text)) {
            return Some(state);
        }
        // Changed out of band (or just imported): take Vault's version, keeping the form
        // the configuration uses where it can represent the text.
        let mut s = state_from_text(&name, &text);
        let parsed = acl::parse(&text).ok().filter(|r| !r.is_empty());
        match (state.policy.is_none(), parsed) {
            (true, Some(r)) => {
                s.rule = rules::from_acl(&r);
                s.policy = None;
            }
            (true, None) => {}
            (false, _) => {
                s.policy = Some(text);
                s.rule = Vec::new();
            }
        }
        Some(s)
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        _prior: PolicyModel,
        planned: PolicyModel,
        d: &mut Diags,
    ) -> Option<PolicyModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let text = text_of(&planned);
        if let Err(e) = vault.write_policy(&planned.name, &text).await {
            let name = &planned.name;
            api_error(d, "update", TYPE, &format!("policy {name:?}"), &e);
            return None;
        }
        Some(PolicyModel {
            hcl: Known::Value(text),
            ..planned
        })
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: PolicyModel, d: &mut Diags) {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        let name = &state.name;
        if let Err(e) = vault.delete_policy(name).await {
            api_error(d, "delete", TYPE, &format!("policy {name:?}"), &e);
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<ProviderData>,
        id: &str,
        d: &mut Diags,
    ) -> Option<PolicyModel> {
        let vault = ctx.data(d)?.vault(d)?;
        // The name, or the policy's API path (`sys/policies/acl/<name>`, `sys/policy/<name>`).
        let id = super::strip_api_path(id, &["sys/policies/acl/", "sys/policy/"]);
        if id.is_empty() || id.contains('/') {
            d.error(
                format!("Unable to import {TYPE}"),
                format!("The import ID {id:?} is not a policy name. Use the name, e.g. `terraform import {TYPE}.example my-policy` (or its API path, `sys/policies/acl/my-policy`)."),
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

crate::model! {
    /// The `config` block of `list "apim_vault_policy"`.
    pub struct PolicyListConfig, plan PolicyListConfigPlan {
        /// `name_prefix`.
        pub name_prefix: Option<String>,
    }
}

/// `list "apim_vault_policy"`: the ACL policies Vault holds, but its built-in `root` and
/// `default` (which cannot be deleted, so no configuration can own them).
pub struct VaultPolicyList;

/// Policies every Vault has and no configuration can own.
const BUILT_IN: [&str; 2] = ["root", "default"];

#[async_trait]
impl ListResource<ProviderData> for VaultPolicyList {
    type Resource = VaultPolicy;
    type Config = PolicyListConfig;

    fn resource(&self) -> &VaultPolicy {
        &VaultPolicy
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("The Vault ACL policies of the provider's Vault (and namespace), whether a configuration manages them or not; Vault's built-in `root` and `default` policies are left out.")
                    .attr(Attribute::string("name_prefix").describe("Only the policies whose name starts with this.")),
            )
        })
    }

    async fn list(
        &self,
        ctx: &Ctx<ProviderData>,
        config: PolicyListConfig,
        limit: usize,
        d: &mut Diags,
    ) -> Vec<Listed> {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return Vec::new();
        };
        let names = match vault.list_policies().await {
            Ok(n) => n,
            Err(e) => {
                api_error(d, "list", TYPE, "policies", &e);
                return Vec::new();
            }
        };
        let prefix = config.name_prefix.unwrap_or_default();
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|n| !BUILT_IN.contains(&n.as_str()) && n.starts_with(&prefix))
            .collect();
        names.sort();
        names
            .into_iter()
            .take(limit)
            .map(|name| Listed {
                import_id: name.clone(),
                display_name: name,
            })
            .collect()
    }
}
