//! `apim_vault_policy_document` (data source): renders `rule` blocks as a Vault policy
//! document. Pure computation: no API call.

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::acl;
use crate::framework::diag::Diags;
use crate::framework::resource::{Ctx, DataSource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::Value;
use crate::provider::ProviderData;

use super::rules;

/// The data source.
pub struct VaultPolicyDocument;

#[async_trait]
impl DataSource<ProviderData> for VaultPolicyDocument {
    fn type_name(&self) -> &'static str {
        "apim_vault_policy_document"
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("Renders `rule` blocks as a Vault ACL policy document (HCL), without calling any API. Use it to build a policy in one module and write it with `apim_vault_policy` in another.")
                    .block(rules::rule_block().items(1, 0))
                    .attr(Attribute::string("hcl").computed().describe("The rendered policy document.")),
            )
        })
    }

    async fn read(
        &self,
        _ctx: &Ctx<ProviderData>,
        config: &Value,
        _d: &mut Diags,
    ) -> Option<Value> {
        let mut state = config.clone();
        state.set(
            "hcl",
            Value::String(acl::render(&rules::from_values(config.get("rule")))),
        );
        Some(state)
    }
}
