//! `apim_vault_policy_document` (data source): renders `rule` blocks as a Vault policy
//! document. Pure computation: no API call.

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::acl;
use crate::context::ProviderData;
use crate::framework::diag::Diags;
use crate::framework::resource::{Ctx, DataSource};
use crate::framework::schema::{Attribute, Block, Schema};

use super::rules::{self, Rule};

crate::model! {
    /// An `apim_vault_policy_document`.
    pub struct PolicyDocumentModel, plan PolicyDocumentPlan {
        /// `rule` blocks.
        pub rule: Vec<Rule>,
        /// The rendered document (null in the configuration).
        pub hcl: Option<String>,
    }
}

/// The data source.
pub struct VaultPolicyDocument;

#[async_trait]
impl DataSource<ProviderData> for VaultPolicyDocument {
    type Model = PolicyDocumentModel;

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
        config: PolicyDocumentModel,
        _d: &mut Diags,
    ) -> Option<PolicyDocumentModel> {
        let hcl = acl::render(&rules::to_acl(&config.rule));
        Some(PolicyDocumentModel {
            hcl: Some(hcl),
            ..config
        })
    }
}
