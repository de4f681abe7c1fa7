//! `apim_vault_binding`: makes an APIM API fetch one Vault secret at request time.
//!
//! Apply writes three named values (Vault address, role, audience), a `rawxml` policy
//! fragment with the runtime flow (see `render.rs`) and, with `api_id`, an
//! `<include-fragment>` in that API's inbound policy. Plan checks on the Vault side that the
//! binding can work: the role exists, its policies grant `read` on the secret path, and the
//! cache lifetime fits the token and lease TTLs.

mod apim;
mod checks;
mod grammar;
mod model;
pub mod render;

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::azure::id::{ResourceId, ServiceId};
use crate::clients::azure::AzureError;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::model::{self as models, Known};
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, NestedBlock, Schema};
use crate::framework::value::Type;

use super::already_exists;
use super::policy_xml::{self, Format};
use apim::azure_err;
use checks::{validate_field, validate_header_name, validate_name, validate_path};
use model::{created, named_values, object_ids, service_of, spec};
pub use model::{BindingModel, BindingPlan, InjectBlock, InjectBlockPlan};
use render::{fragment_id, named_value_names, parse_fragment, render};

const TYPE: &str = "apim_vault_binding";

/// The resource.
pub struct VaultBinding;

#[async_trait]
impl Resource<ProviderData> for VaultBinding {
    type Model = BindingModel;

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("Makes one API Management API (or any policy that includes the fragment) fetch one Vault secret at request time: APIM logs in to Vault with its managed identity, reads the secret, caches it for `cache_ttl` and injects it. Plan checks that the binding can work: the role exists, its policies grant `read` on `secret_path`, and `cache_ttl` fits the token and lease TTLs.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("`<api_management_id>/vaultBindings/<name>`."))
                    .attr(Attribute::string("api_management_id").required().requires_replace().validate(|v, p, d| {
                        if let Some(s) = v.as_str() {
                            if let Err(e) = ServiceId::parse(s) {
                                d.attr_error(p.clone(), "Invalid API Management ID", format!("`api_management_id`: {e}"));
                            }
                        }
                    }).describe("ARM ID of the API Management instance."))
                    .attr(Attribute::string("name").required().requires_replace().validate(validate_name).describe("Name of the binding: lowercase letters, digits and dashes. Names the named values (`vault-<name>-addr`, `-role`, `-audience`) and the policy fragment (`vault-<name>`)."))
                    .attr(Attribute::string("role").required().validate(validators::not_empty).describe("The Vault role APIM logs in with (an apim_vault_azure_role's name)."))
                    .attr(Attribute::string("backend").default("jwt").describe("Mount path of the JWT auth method."))
                    .attr(Attribute::string("audience").required().validate(validators::not_empty).describe("The token audience APIM asks Entra ID for; must be one of the role's bound audiences."))
                    .attr(Attribute::string("vault_address").optional_computed().describe("The Vault address the gateway calls. Defaults to the provider's Vault address."))
                    .attr(Attribute::string("vault_namespace").describe("Vault Enterprise namespace, sent as `X-Vault-Namespace` on both Vault calls."))
                    .attr(Attribute::string("secret_path").required().validate(validate_path).describe("API path of the secret, e.g. `kv/data/orders/backend` (KV v2) or `database/creds/orders`."))
                    .attr(Attribute::string("secret_field").required().validate(validate_field).describe("Field to inject (read from `data.data` for KV v2, from `data` otherwise)."))
                    .block(
                        NestedBlock::single(
                            "inject",
                            Block::new("Where the secret goes: exactly one of `header`, `query`, `variable`.")
                                .attr(Attribute::string("header").validate(validate_header_name).describe("A header of the backend request."))
                                .attr(Attribute::string("query").validate(validate_header_name).describe("A query parameter of the backend request."))
                                .attr(Attribute::string("variable").validate(validate_header_name).describe("A context variable, for other policies to use."))
                                .constraint(Constraint::ExactlyOneOf(&["header", "query", "variable"])),
                        )
                        .items(1, 1),
                    )
                    .attr(Attribute::number("cache_ttl").default(300).validate(validators::non_negative_int).describe("Seconds the gateway caches the secret; 0 disables caching."))
                    .attr(Attribute::string("api_id").describe("An API (its name, or its ARM ID) whose inbound policy includes the fragment, right after `<base />`."))
                    .attr(Attribute::string("on_error").default("fail").one_of(&["fail", "continue"]).describe("When Vault cannot be reached or refuses: `fail` answers 502 without telling why; `continue` forwards the request without the secret."))
                    .attr(Attribute::string("fragment_id").computed().describe("ARM ID of the policy fragment."))
                    .attr(Attribute::of("named_value_ids", Type::list_of(Type::String)).computed().describe("ARM IDs of the named values."))
                    .attr(Attribute::string("policy_xml").computed().describe("The rendered policy fragment (`rawxml`).")),
            )
        })
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx<ProviderData>,
        req: PlanRequest<'_, BindingModel>,
        plan: &mut Plan<BindingModel>,
        d: &mut Diags,
    ) {
        let Some(data) = ctx.data(d) else { return };
        let st = &mut plan.state;
        if st.vault_address.is_null()
            || (req.config.vault_address.is_null() && st.vault_address.is_unknown())
        {
            if let Some(vault) = data.vault(&mut Diags::new()) {
                let address = vault.address().as_str().trim_end_matches('/').to_string();
                st.vault_address = Known::Value(Some(address));
            }
        }
        if let (Some(apim), Some(name)) = (st.api_management_id.get(), st.name.get()) {
            if let Ok(service) = ServiceId::parse(apim) {
                let (id, fragment, named_values) = object_ids(&service, name);
                st.id = Known::Value(id);
                st.fragment_id = Known::Value(fragment);
                st.named_value_ids = Known::Value(named_values);
            }
        }
        st.policy_xml = Known::Unknown;
        let Some(known) = models::known::<BindingModel>(st) else {
            // A role or path created in this run with unknown values: checked again at apply.
            return;
        };
        let kv_v2 = self.check_vault(data, &known, false, d).await;
        if let Some(s) = kv_v2.and_then(|kv| spec(&known, kv)) {
            let xml = render(&s);
            // Formatting-only differences from what APIM holds keep the prior text.
            let prior = req.prior.and_then(|p| p.policy_xml.get());
            plan.state.policy_xml = match prior {
                Some(p) if policy_xml::equivalent(p, Format::Raw, &xml, Format::Raw) => {
                    Known::Value(p.clone())
                }
                _ => Known::Value(xml),
            };
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let data = ctx.data(d)?;
        let azure = data.azure(d)?;
        let Some(service) = service_of(&planned) else {
            d.attr_error(
                AttrPath::root("api_management_id"),
                format!("Unable to create {TYPE}"),
                "`api_management_id` is not an API Management instance's ARM ID.",
            );
            return None;
        };
        let name = planned.name.clone();
        let kv_v2 = self.check_vault(data, &planned, true, d).await?;
        if d.has_errors() {
            return None;
        }
        let Some(fragment_spec) = spec(&planned, kv_v2) else {
            d.attr_error(
                AttrPath::root("inject"),
                format!("Unable to create {TYPE}"),
                "The `inject` block must set one of `header`, `query` or `variable`.",
            );
            return None;
        };
        let xml = render(&fragment_spec);
        if planned
            .policy_xml
            .get()
            .is_some_and(|p| !policy_xml::equivalent(p, Format::Raw, &xml, Format::Raw))
        {
            d.error(format!("Unable to create {TYPE}"), "The secret's mount changed between plan and apply (KV version 2 or not). Run `terraform plan` again.");
            return None;
        }
        // Adopting objects made outside Terraform would hide them: ask for an import.
        let fid = service.policy_fragment(fragment_id(&name));
        match ctx.cancel.run(azure.get_policy_fragment(&fid)).await {
            Ok(Ok(_)) => {
                let what = format!("The policy fragment {} in {service}", fragment_id(&name));
                already_exists(
                    d,
                    TYPE,
                    &what,
                    &format!("{}/vaultBindings/{name}", service.arm_id()),
                    "",
                );
                return None;
            }
            Ok(Err(e)) if e.is_not_found() => {}
            Ok(Err(e)) => {
                azure_err(d, "create", &e);
                return None;
            }
            Err(_) => {
                d.error(
                    format!("Unable to create {TYPE}"),
                    "Cancelled: Terraform asked the provider to stop.",
                );
                return None;
            }
        }
        let api = planned.api_id.clone();
        let steps = async {
            self.write_named_values(azure, &service, None, &planned)
                .await?;
            self.write_fragment(azure, &service, &name, &xml, false)
                .await?;
            if let Some(api) = &api {
                self.set_include(azure, &service, api, &name, true).await?;
            }
            Ok::<(), AzureError>(())
        };
        let outcome = match ctx.cancel.run(steps).await {
            Ok(r) => r,
            Err(_) => Err(AzureError::Config(
                "cancelled: Terraform asked the provider to stop".into(),
            )),
        };
        if let Err(e) = outcome {
            azure_err(d, "create", &e);
            // Leave nothing behind; if that fails too, keep what exists in state (tainted).
            if let Err(cleanup) = self
                .remove_all(azure, &service, &name, api.as_deref())
                .await
            {
                d.error(
                    format!("Unable to clean up {TYPE}"),
                    format!("Some of the binding's APIM objects could not be removed ({cleanup}). They stay in state; the next apply replaces them."),
                );
                return Some(created(planned, &service, xml));
            }
            return None;
        }
        Some(created(planned, &service, xml))
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let azure = ctx.data(d)?.azure(d)?;
        self.read_apim(azure, &state, d).await
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        prior: BindingModel,
        planned: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let data = ctx.data(d)?;
        let azure = data.azure(d)?;
        let service = service_of(&planned)?;
        let name = planned.name.clone();
        let kv_v2 = self.check_vault(data, &planned, true, d).await?;
        if d.has_errors() {
            return None;
        }
        let xml = render(&spec(&planned, kv_v2)?);
        // What APIM holds must still be what the plan was made from.
        if let Some(current) = self.read_apim(azure, &prior, d).await {
            if current.policy_xml != prior.policy_xml
                || named_values(&current) != named_values(&prior)
            {
                d.error(
                    format!("Unable to update {TYPE}"),
                    format!("The binding's APIM objects in {service} changed since this plan was made. Run `terraform plan` again to see the change, then apply."),
                );
                return None;
            }
        }
        let (old_api, new_api) = (prior.api_id.as_deref(), planned.api_id.as_deref());
        let prior_xml = prior.policy_xml.get().filter(|p| !p.is_empty());
        let steps = async {
            self.write_named_values(azure, &service, Some(&prior), &planned)
                .await?;
            if !prior_xml.is_some_and(|p| policy_xml::equivalent(p, Format::Raw, &xml, Format::Raw))
            {
                self.write_fragment(azure, &service, &name, &xml, prior_xml.is_some())
                    .await?;
            }
            if old_api != new_api {
                if let Some(old) = old_api {
                    self.set_include(azure, &service, old, &name, false).await?;
                }
            }
            if let Some(new) = new_api {
                self.set_include(azure, &service, new, &name, true).await?;
            }
            Ok::<(), AzureError>(())
        };
        // A stop between two writes ends the update there; the state is then read back from
        // APIM, so it holds what was written.
        let outcome = match ctx.cancel.run(steps).await {
            Ok(r) => r,
            Err(_) => Err(AzureError::Config(
                "cancelled: Terraform asked the provider to stop".into(),
            )),
        };
        if let Err(e) = outcome {
            azure_err(d, "update", &e);
            return self
                .read_apim(azure, &prior, &mut Diags::new())
                .await
                .or(Some(prior));
        }
        let policy_xml = match planned.policy_xml.clone() {
            Known::Value(p) => p,
            Known::Unknown => xml,
        };
        Some(created(planned, &service, policy_xml))
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: BindingModel, d: &mut Diags) {
        let Some(azure) = ctx.data(d).and_then(|p| p.azure(d)) else {
            return;
        };
        let Some(service) = service_of(&state) else {
            return;
        };
        if let Err(e) = self
            .remove_all(azure, &service, &state.name, state.api_id.as_deref())
            .await
        {
            azure_err(d, "delete", &e);
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<ProviderData>,
        id: &str,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let azure = ctx.data(d)?.azure(d)?;
        let Some((apim, name)) = id.split_once("/vaultBindings/") else {
            d.error(
                format!("Unable to import {TYPE}"),
                format!("The import ID {id:?} must be `<api_management_id>/vaultBindings/<name>`."),
            );
            return None;
        };
        let service = match ServiceId::parse_insensitive(apim) {
            Ok(s) => s,
            Err(e) => {
                d.error(
                    format!("Unable to import {TYPE}"),
                    format!("The import ID's instance: {e}"),
                );
                return None;
            }
        };
        let fragment = match azure
            .get_policy_fragment(&service.policy_fragment(fragment_id(name)))
            .await
        {
            Ok(t) => t.value.properties.value,
            Err(e) if e.is_not_found() => {
                d.error(format!("Unable to import {TYPE}"), format!("{service} has no policy fragment {:?}: there is no binding named {name:?}.", fragment_id(name)));
                return None;
            }
            Err(e) => {
                azure_err(d, "import", &e);
                return None;
            }
        };
        let Some(mut s) = parse_fragment(name, &fragment) else {
            d.error(format!("Unable to import {TYPE}"), format!("The policy fragment {:?} is not one this provider wrote (or was edited beyond recognition); it cannot be imported as a binding.", fragment_id(name)));
            return None;
        };
        let (id, fragment, _) = object_ids(&service, name);
        s.id = Known::Value(id);
        s.api_management_id = service.arm_id();
        s.fragment_id = Known::Value(fragment);
        // Which API includes it: the fragment's references.
        if let Ok(apis) = azure
            .fragment_api_references(&service.policy_fragment(fragment_id(name)))
            .await
        {
            s.api_id = apis.first().cloned();
        }
        let [addr, role, audience] = named_value_names(name).map(|n| service.named_value(n));
        if let Ok(t) = azure.get_named_value(&addr).await {
            s.vault_address = Known::Value(t.value.properties.value);
        }
        if let Ok(t) = azure.get_named_value(&role).await {
            s.role = t.value.properties.value.unwrap_or_default();
        }
        if let Ok(t) = azure.get_named_value(&audience).await {
            s.audience = t.value.properties.value.unwrap_or_default();
        }
        Some(s)
    }
}
