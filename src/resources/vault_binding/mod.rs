//! `apim_vault_binding`: makes an APIM API fetch one Vault secret at request time.
//!
//! The binding lives in its API's inbound policy, in one block the provider manages for all
//! the bindings of that API (`render.rs`): its record, its read, its injection, and what it
//! shares with the others (the cache, the logins). Apply edits the block (`apim.rs`); no
//! named values and no policy fragments, so an instance holds as many bindings as its policy
//! documents' size allows. Plan checks that the binding can work (`checks.rs`): the role
//! exists, its policies grant `read` on the secret path, the cache fits the token and lease
//! lifetimes, the API exists, and the policy still fits the instance's document size.
//!
//! - `model.rs`: the binding's model, its record, its ID;
//! - `checks.rs`: the attributes' grammar and the checks against Vault and Azure;
//! - `apim.rs`: reading and editing the block with ETags;
//! - `render.rs`: the block and the binding's part of it;
//! - `list.rs`: the bindings of an instance, for `terraform query`.

mod apim;
mod checks;
pub(crate) mod grammar;
mod list;
mod model;
pub mod render;

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::azure::id::ServiceId;
use crate::clients::azure::AzureError;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::identity::IdentitySchema;
use crate::framework::model::{self as models, Known};
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, NestedBlock, Schema};

use super::already_exists;
use super::policy_xml::{self, Format};
use apim::{azure_err, edit_block, record_of, Edited};
use checks::validate_name;
use grammar::{
    validate_audience, validate_inject_name, validate_logger_id, validate_mount_path,
    validate_namespace, validate_secret_field, validate_secret_path, validate_service_id,
    validate_vault_address, validate_vault_name,
};
pub use list::VaultBindingList;
pub(crate) use model::api_name;
use model::{binding_id, from_record, service_of, spec};
pub use model::{BindingModel, BindingPlan, InjectBlock, InjectBlockPlan};
use render::{binding_part, BindingSpec};

pub(crate) use apim::bump_generation;

const TYPE: &str = "apim_vault_binding";

/// The resource.
pub struct VaultBinding;

/// The import ID's parts: the instance, the API, the binding's name.
fn parse_id(id: &str) -> Result<(ServiceId, String, String), String> {
    let form = "`<api_management_id>/apis/<api>/vaultBindings/<name>` (the binding's `id`)";
    let (api_part, name) = id
        .rsplit_once("/vaultBindings/")
        .ok_or_else(|| format!("The import ID {id:?} must be {form}."))?;
    let (apim, api) = api_part
        .rsplit_once("/apis/")
        .ok_or_else(|| format!("The import ID {id:?} must be {form}."))?;
    let service =
        ServiceId::parse_insensitive(apim).map_err(|e| format!("The import ID's instance: {e}"))?;
    Ok((service, api.to_string(), name.to_string()))
}

impl VaultBinding {
    /// The binding's record in its API's policy, as a state; `None` when it is not there.
    async fn read_binding(
        &self,
        ctx: &Ctx<ProviderData>,
        service: &ServiceId,
        api: &str,
        name: &str,
        prior: Option<&BindingModel>,
        d: &mut Diags,
    ) -> Result<Option<BindingModel>, ()> {
        let azure = ctx.data(d).and_then(|p| p.azure(d)).ok_or(())?;
        match apim::read_policy_shared(azure, &apim::api_policy_id(service, api)).await {
            Ok(doc) => Ok(doc.and_then(|(doc, _)| {
                let (spec, intact) = record_of(&doc, api_name(api), name)?;
                Some(from_record(service, api, &spec, prior, intact))
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => {
                azure_err(d, "read", &e);
                Err(())
            }
        }
    }

    /// Writes the binding's record (adding it when `create`), after the apply-time checks.
    async fn write(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: BindingModel,
        create: bool,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let data = ctx.data(d)?;
        let azure = data.azure(d)?;
        let action = if create { "create" } else { "update" };
        let Some(service) = service_of(&planned) else {
            d.attr_error(
                AttrPath::root("api_management_id"),
                format!("Unable to {action} {TYPE}"),
                "`api_management_id` is not an API Management instance's ARM ID.",
            );
            return None;
        };
        // The Vault checks and the logger's lookup (ARM) are independent: asked at once,
        // their diagnostics kept in this order.
        let (mut on_vault, mut on_logger) = (Diags::new(), Diags::new());
        let (facts, logger) = tokio::join!(
            self.check_vault(data, &planned, true, &mut on_vault),
            self.check_logger(data, &planned, &mut on_logger),
        );
        d.extend(on_vault);
        let facts = facts?;
        d.extend(on_logger);
        let logger = logger?;
        if d.has_errors() {
            return None;
        }
        let Some(mine) = spec(&planned, facts.kv_v2, facts.leased, logger) else {
            d.error(
                format!("Unable to {action} {TYPE}"),
                "The binding needs an `inject` target and a Vault address (`vault_address`, or the provider's `vault.address`).",
            );
            return None;
        };
        let part = binding_part(&mine);
        if let Some(p) = planned.policy_xml.get() {
            if !policy_xml::equivalent(p, Format::Raw, &part, Format::Raw) {
                d.error(format!("Unable to {action} {TYPE}"), "The secret's mount changed between plan and apply (KV version 2, or leased). Run `terraform plan` again.");
                return None;
            }
        }
        let name = planned.name.clone();
        let api = planned.api_id.clone();
        let import_id = binding_id(&service, &api, &name);
        let change = {
            let (name, import_id) = (name.clone(), import_id.clone());
            move |block: &mut render::Block| {
                let existing = block.bindings.iter().position(|s| s.name == name);
                match existing {
                    // Adopting a binding made elsewhere would hide it: ask for an import.
                    Some(_) if create => Err(format!("exists:{import_id}")),
                    // The rotation generation is no setting: the record keeps it.
                    Some(i) => {
                        block.bindings[i] = BindingSpec {
                            generation: block.bindings[i].generation,
                            ..mine.clone()
                        };
                        Ok(())
                    }
                    None => {
                        block.bindings.push(mine.clone());
                        Ok(())
                    }
                }
            }
        };
        // A stop ends the edit before its write or after it, never in the middle: the state
        // is read back from APIM either way.
        let outcome = match ctx
            .cancel
            .run(edit_block(azure, &service, &api, change))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(AzureError::Config(
                "cancelled: Terraform asked the provider to stop".into(),
            )),
        };
        match outcome {
            Ok(Edited::Written | Edited::Unchanged) => Some(BindingModel {
                id: Known::Value(import_id),
                policy_xml: Known::Value(part),
                ..planned
            }),
            Err(AzureError::Config(m)) if m.starts_with("exists:") => {
                let what = format!(
                    "A binding named {name:?} in the policy of API {:?} of {service}",
                    api_name(&api)
                );
                already_exists(d, TYPE, &what, &m["exists:".len()..], "");
                None
            }
            Err(e) => {
                azure_err(d, action, &e);
                // What APIM holds now is the state: the record if it was written, else the
                // prior state (update) or nothing (create).
                match self
                    .read_binding(
                        ctx,
                        &service,
                        &api,
                        &name,
                        Some(&planned),
                        &mut Diags::new(),
                    )
                    .await
                {
                    Ok(found) if create => found,
                    Ok(Some(found)) => Some(found),
                    _ => None,
                }
            }
        }
    }
}

#[async_trait]
impl Resource<ProviderData> for VaultBinding {
    type Model = BindingModel;

    fn identity(&self) -> Option<&IdentitySchema> {
        static I: OnceLock<IdentitySchema> = OnceLock::new();
        Some(I.get_or_init(|| {
            IdentitySchema::new(
                &[
                    (
                        "api_management_id",
                        "ARM ID of the API Management instance.",
                    ),
                    ("api_id", "The API (its name, or its ARM ID)."),
                    ("name", "Name of the binding."),
                ],
                |v| match ServiceId::parse(v[0]) {
                    Ok(service) => binding_id(&service, v[1], v[2]),
                    // The import then names what is wrong with the instance's ID.
                    Err(_) => format!("{}/apis/{}/vaultBindings/{}", v[0], v[1], v[2]),
                },
            )
        }))
    }

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("Makes one API Management API fetch one Vault secret at request time: APIM logs in to Vault with its managed identity, reads the secret, caches it and injects it into the request to the backend. The binding lives in a block the provider manages in the API's inbound policy, shared by all the bindings of that API (one cache entry, one login per role, one read per secret); no named values or policy fragments are used. The gateway logs in only for a claim of the cache entry: when it is empty, one request fetches while the others wait for it, and in its last quarter one request refreshes it while the others keep using it. Plan checks that the binding can work: the role exists, its policies grant `read` on `secret_path`, `cache_ttl` fits the token and lease TTLs, and the API exists. When a fetch fails at request time, the gateway records why (a `trace`, and a metric or event for a named `logger_id`); the caller gets a bare 502.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("`<api_management_id>/apis/<api_id>/vaultBindings/<name>`; the import ID."))
                    .attr(Attribute::string("api_management_id").required().requires_replace().validate(validate_service_id).describe("ARM ID of the API Management instance."))
                    .attr(Attribute::string("api_id").required().requires_replace().describe("The API (its name, or its ARM ID) whose inbound policy runs the binding, right after `<base />`."))
                    .attr(Attribute::string("name").required().requires_replace().validate(validate_name).describe("Name of the binding: lowercase letters, digits and dashes, unique within its API."))
                    .attr(Attribute::string("role").required().validate(validate_vault_name).describe("The Vault role APIM logs in with (an apim_vault_azure_role's name)."))
                    .attr(Attribute::string("backend").default("jwt").validate(validate_mount_path).describe("Mount path of the JWT auth method."))
                    .attr(Attribute::string("audience").required().validate(validate_audience).describe("The token audience APIM asks Entra ID for; must be one of the role's bound audiences."))
                    .attr(Attribute::string("vault_address").optional_computed().validate(validate_vault_address).describe("The Vault address the gateway calls: `https://`, or `http://` for a loopback address only. Defaults to the provider's Vault address."))
                    .attr(Attribute::string("vault_namespace").validate(validate_namespace).describe("Vault Enterprise namespace, sent as `X-Vault-Namespace` on every Vault call."))
                    .attr(Attribute::string("secret_path").required().validate(validate_secret_path).describe("API path of the secret, e.g. `kv/data/orders/backend` (KV v2) or `database/creds/orders`."))
                    .attr(Attribute::string("secret_field").required().validate(validate_secret_field).describe("Field to inject (read from `data.data` for KV v2, from `data` otherwise)."))
                    .block(
                        NestedBlock::single(
                            "inject",
                            Block::new("Where the secret goes: exactly one of `header`, `query`, `variable`.")
                                .attr(Attribute::string("header").validate(validate_inject_name).describe("A header of the backend request."))
                                .attr(Attribute::string("query").validate(validate_inject_name).describe("A query parameter of the backend request. APIM's gateway logs record backend URLs, query string included: prefer `header`."))
                                .attr(Attribute::string("variable").validate(validate_inject_name).describe("A context variable, for other policies to use."))
                                .constraint(Constraint::ExactlyOneOf(&["header", "query", "variable"])),
                        )
                        .items(1, 1),
                    )
                    .attr(Attribute::number("cache_ttl").default(300).validate(validators::non_negative_int).describe("Seconds the gateway caches the secret (never longer than the lease Vault gives with it, less a second); one request refreshes it in the last quarter of that time (at most 30 seconds before its end) while the others keep using it. 0 fetches it on every request, which is refused for leased secrets (each read would be a new credential)."))
                    .attr(Attribute::number("rotation").default(0).validate(validators::non_negative_int).describe("A number that is part of the cache key: change it (for example after rotating the secret) and the gateway fetches the secret again on the next request instead of when the cache expires. The `apim_vault_rotate` action does the same for every binding that reads a secret it rotates, without a change here."))
                    .attr(Attribute::string("on_error").default("fail").one_of(&["fail", "continue"]).describe("When Vault cannot be reached or refuses: `fail` answers 502 without telling why; `continue` forwards the request without the secret. Either way the gateway records why in a `trace` (source `apim-vault-binding`: the binding, the step that failed, Vault's status and error text; never a token or a secret)."))
                    .attr(Attribute::string("logger_id").validate(validate_logger_id).describe("An APIM logger of the instance (its name, or its ARM ID, e.g. `azurerm_api_management_logger.<name>.id`) that failures are also sent to: an `azureEventHub` logger gets a `log-to-eventhub` event per failed binding, an `applicationInsights` or `azureMonitor` logger an `emit-metric` `apim-vault-binding-failures` (namespace `apim-vault`, dimensions `binding` and `outcome`). Plan checks that the logger exists."))
                    .attr(Attribute::string("policy_xml").computed().describe("The binding's part of the managed block (`rawxml`): its read and its injection. An edit of the block outside Terraform shows as a change here, which apply repairs.")),
            )
        })
    }

    fn validate(&self, config: &BindingPlan, d: &mut Diags) {
        let query = config
            .inject
            .get()
            .and_then(|i| i.as_ref())
            .and_then(|i| i.query.as_ref());
        if query.is_some() {
            d.attr_warning(
                AttrPath::root("inject").attr("query"),
                "The secret would be in URLs",
                "APIM's gateway logs and Application Insights record the backend request's URL, query string included, so a secret injected as a query parameter ends up in logs. Use `header` (or `variable`) unless the backend only reads it from the query.",
            );
        }
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
        if let (Some(apim), Some(api), Some(name)) =
            (st.api_management_id.get(), st.api_id.get(), st.name.get())
        {
            if let Ok(service) = ServiceId::parse(apim) {
                st.id = Known::Value(binding_id(&service, api, name));
            }
        }
        // The same API written another way (its name, its ARM ID) is not another API.
        if let (Some(prior), Some(api)) = (req.prior, st.api_id.get()) {
            if api_name(&prior.api_id).eq_ignore_ascii_case(api_name(api)) {
                plan.requires_replace
                    .retain(|p| *p != AttrPath::root("api_id"));
            }
        }
        let st = &mut plan.state;
        st.policy_xml = Known::Unknown;
        // The checks run whenever their inputs are known, for a create as for an update; a
        // role or path that this run creates with values not known yet is checked at apply.
        let Some(known) = models::known::<BindingModel>(st) else {
            return;
        };
        // Objects this run changes are judged as they will be: a binding they would break is
        // refused even when the binding itself stays as it is.
        plan.refuse_unchanged = data.this_run.is_changing();
        // Vault's answers, the logger and the ARM objects are independent: asked at once,
        // their diagnostics kept in this order.
        let (mut on_vault, mut on_logger) = (Diags::new(), Diags::new());
        let (facts, logger, reads) = tokio::join!(
            self.check_vault(data, &known, false, &mut on_vault),
            self.check_logger(data, &known, &mut on_logger),
            checks::read_azure(data, &known),
        );
        d.extend(on_vault);
        d.extend(on_logger);
        let mine = facts
            .as_ref()
            .zip(logger)
            .and_then(|(f, l)| spec(&known, f.kv_v2, f.leased, l));
        self.check_azure(data, &known, facts.as_ref(), mine.as_ref(), reads, d);
        if let Some(mine) = mine {
            let part = binding_part(&mine);
            // Formatting-only differences from what APIM holds keep the prior text.
            let prior = req.prior.and_then(|p| p.policy_xml.get());
            plan.state.policy_xml = match prior {
                Some(p) if policy_xml::equivalent(p, Format::Raw, &part, Format::Raw) => {
                    Known::Value(p.clone())
                }
                _ => Known::Value(part),
            };
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        self.write(ctx, planned, true, d).await
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let service = service_of(&state)?;
        // A refresh is followed by the plan's checks, which judge the instance and the API
        // too: read with the policy (shared reads), not after it.
        let ahead = async {
            if let Some(data) = ctx.data(&mut Diags::new()) {
                checks::read_azure(data, &state).await;
            }
        };
        let (found, ()) = tokio::join!(
            self.read_binding(ctx, &service, &state.api_id, &state.name, Some(&state), d),
            ahead,
        );
        match found {
            Ok(found) => found,
            Err(()) => Some(state),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        _prior: BindingModel,
        planned: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        self.write(ctx, planned, false, d).await
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: BindingModel, d: &mut Diags) {
        let Some(azure) = ctx.data(d).and_then(|p| p.azure(d)) else {
            return;
        };
        let Some(service) = service_of(&state) else {
            return;
        };
        let name = state.name.clone();
        let remove = move |block: &mut render::Block| {
            block.bindings.retain(|s| s.name != name);
            Ok(())
        };
        if let Err(e) = edit_block(azure, &service, &state.api_id, remove).await {
            if !e.is_not_found() {
                azure_err(d, "delete", &e);
            }
        }
    }

    fn config_from_state(&self, ctx: &Ctx<ProviderData>, s: &mut BindingModel) {
        // `vault_address` defaults to the provider's Vault address.
        let provider_address = ctx
            .data(&mut Diags::new())
            .and_then(|data| data.vault(&mut Diags::new()))
            .map(|v| v.address().as_str().trim_end_matches('/').to_string());
        if provider_address.is_some()
            && s.vault_address.get().cloned().flatten() == provider_address
        {
            s.vault_address = Known::Value(None);
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<ProviderData>,
        id: &str,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let (service, api, name) = match parse_id(id) {
            Ok(parts) => parts,
            Err(m) => {
                d.error(format!("Unable to import {TYPE}"), m);
                return None;
            }
        };
        match self.read_binding(ctx, &service, &api, &name, None, d).await {
            Ok(Some(state)) => Some(state),
            Ok(None) => {
                d.error(
                    format!("Unable to import {TYPE}"),
                    format!(
                        "The policy of API {api:?} in {service} has no binding named {name:?}."
                    ),
                );
                None
            }
            Err(()) => None,
        }
    }
}
