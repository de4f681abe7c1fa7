//! `list "apim_vault_binding"`: the bindings of an API Management instance, as the records of
//! the managed blocks in its APIs' policies name them, whether a configuration manages them
//! or not (another pipeline's, or one whose state was lost).

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::azure::id::ServiceId;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::list::{ListResource, Listed};
use crate::framework::resource::Ctx;
use crate::framework::schema::{Attribute, Block, Schema};

use super::apim::{api_policy_id, azure_err, bindings_of};
use super::grammar::validate_service_id;
use super::model::{api_name, binding_id};
use super::{VaultBinding, TYPE};

crate::model! {
    /// The `config` block of `list "apim_vault_binding"`.
    pub struct BindingListConfig, plan BindingListConfigPlan {
        /// `api_management_id`.
        pub api_management_id: String,
        /// `api_id`: one API only.
        pub api_id: Option<String>,
    }
}

/// `list "apim_vault_binding"`.
pub struct VaultBindingList;

#[async_trait]
impl ListResource<ProviderData> for VaultBindingList {
    type Resource = VaultBinding;
    type Config = BindingListConfig;

    fn resource(&self) -> &VaultBinding {
        &VaultBinding
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("The bindings of an API Management instance: those the provider's records in its APIs' inbound policies name, whether a configuration manages them or not. A record edited by hand so that it cannot be read is reported as a warning.")
                    .attr(Attribute::string("api_management_id").required().validate(validate_service_id).describe("ARM ID of the API Management instance."))
                    .attr(Attribute::string("api_id").describe("Only the bindings of this API (its name, or its ARM ID).")),
            )
        })
    }

    async fn list(
        &self,
        ctx: &Ctx<ProviderData>,
        config: BindingListConfig,
        limit: usize,
        d: &mut Diags,
    ) -> Vec<Listed> {
        let Some(azure) = ctx.data(d).and_then(|p| p.azure(d)) else {
            return Vec::new();
        };
        let Ok(service) = ServiceId::parse(&config.api_management_id) else {
            d.attr_error(
                AttrPath::root("api_management_id"),
                format!("Unable to list {TYPE}"),
                "`api_management_id` is not an API Management instance's ARM ID.",
            );
            return Vec::new();
        };
        let mut apis = match &config.api_id {
            Some(api) => vec![api_name(api).to_string()],
            None => match azure.list_apis(&service).await {
                Ok(apis) => apis.into_iter().map(|a| a.name).collect(),
                Err(e) => {
                    azure_err(d, "list", &e);
                    return Vec::new();
                }
            },
        };
        apis.sort();
        let mut out = Vec::new();
        for api in apis {
            if out.len() >= limit {
                break;
            }
            let (names, unreadable) = match bindings_of(azure, &api_policy_id(&service, &api)).await
            {
                Ok(found) => found,
                Err(e) if e.is_not_found() && config.api_id.is_some() => {
                    d.attr_error(
                        AttrPath::root("api_id"),
                        format!("Unable to list {TYPE}"),
                        format!("{service} has no API {api:?}."),
                    );
                    return Vec::new();
                }
                Err(e) => {
                    azure_err(d, "list", &e);
                    return Vec::new();
                }
            };
            for name in unreadable {
                d.warning(
                    format!("{TYPE} {api}/{name} left out"),
                    format!("The record of binding {name:?} in the policy of API {api:?} in {service} was edited by hand and cannot be read, so it cannot be imported. Apply the configuration that manages it to render it again, or remove it from the policy."),
                );
            }
            for name in names {
                out.push(Listed {
                    import_id: binding_id(&service, &api, &name),
                    display_name: format!("{api}/{name}"),
                });
            }
        }
        out.truncate(limit);
        out
    }
}
