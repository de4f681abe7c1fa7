//! `apim_vault_policy_document` against a real OpenBao: the document it renders is what a
//! policy made from it holds.

use serde_json::Value;

use crate::support::fixtures::provider_from_env;
use crate::support::{run, Bao, Step, TestCase};

#[test]
fn vault_policy_document_renders_and_feeds_a_policy() {
    let bao = Bao::start();
    // Configured through the environment (VAULT_ADDR, VAULT_TOKEN) instead of the block.
    let config = format!(
        r#"{}
data "apim_vault_policy_document" "doc" {{
  rule {{
    path         = "kv/data/payments/*"
    capabilities = ["read"]
    description  = "payments"
  }}
  rule {{
    path         = "kv/metadata/payments/*"
    capabilities = ["list"]
    denied_parameter {{
      key = "*"
    }}
  }}
}}

resource "apim_vault_policy" "from_doc" {{
  name   = "payments"
  policy = data.apim_vault_policy_document.doc.hcl
}}

output "hcl" {{
  value = data.apim_vault_policy_document.doc.hcl
}}
"#,
        provider_from_env()
    );
    let expected = "# payments\npath \"kv/data/payments/*\" {\n  capabilities = [\"read\"]\n}\n\npath \"kv/metadata/payments/*\" {\n  capabilities = [\"list\"]\n  denied_parameters = {\n    \"*\" = []\n  }\n}\n";
    run(TestCase::new(vec![Step::config(config).check(|wd| {
        assert_eq!(wd.outputs()["hcl"], Value::from(expected));
        assert_eq!(bao.policy("payments").as_deref(), Some(expected));
    })])
    .envs(bao.env()));
}
