//! Provider functions called by the real Terraform: in outputs, a `check` block and a
//! `precondition`, with the errors Terraform shows for a bad argument. Functions need no
//! configured provider, so no Vault or Azure is involved.

use crate::support::fixtures::REQUIRED_PROVIDERS;
use crate::support::{terraform_versions, Workdir};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

const POLICY: &str = r#"path "kv/data/orders/*" { capabilities = ["read"] }
path "kv/data/orders/admin" { capabilities = ["deny"] }
"#;

fn config(body: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\nlocals {{\n  policy = {}\n}}\n{body}",
        serde_json::to_string(POLICY).unwrap()
    )
}

#[test]
fn functions_answer_in_outputs_checks_and_preconditions() {
    for tf in terraform_versions() {
        let wd = Workdir::new(tf);
        wd.write_config(&config(&format!(
            r#"
output "v1" {{
  value = provider::apim::entra_issuer("{TENANT}", 1, "public")
}}
output "v2" {{
  value = provider::apim::entra_issuer("{TENANT}", 2, "usgovernment")
}}
output "reads_backend" {{
  value = provider::apim::policy_grants(local.policy, "kv/data/orders/backend", "read")
}}
output "reads_admin" {{
  value = provider::apim::policy_grants(local.policy, "kv/data/orders/admin", "read")
}}
check "admin_is_readable" {{
  assert {{
    condition     = provider::apim::policy_grants(local.policy, "kv/data/orders/admin", "read")
    error_message = "the policy does not grant read on kv/data/orders/admin"
  }}
}}
"#
        )));
        let out = wd.run(&["apply", "-auto-approve"]);
        assert!(out.success(), "{out}");
        // The failed check is a warning, with its message.
        assert!(
            out.combined()
                .contains("the policy does not grant read on kv/data/orders/admin"),
            "[{}] the check's message:\n{out}",
            tf.version
        );
        let outputs = wd.outputs();
        assert_eq!(
            outputs["v1"],
            format!("https://sts.windows.net/{TENANT}/"),
            "[{}]",
            tf.version
        );
        assert_eq!(
            outputs["v2"],
            format!("https://login.microsoftonline.us/{TENANT}/v2.0")
        );
        assert_eq!(outputs["reads_backend"], true);
        assert_eq!(outputs["reads_admin"], false, "deny wins");
    }
}

#[test]
fn a_failing_precondition_stops_the_plan_and_a_bad_argument_is_named() {
    let tf = &terraform_versions()[0];
    let wd = Workdir::new(tf);
    wd.write_config(&config(
        r#"
resource "terraform_data" "binding" {
  lifecycle {
    precondition {
      condition     = provider::apim::policy_grants(local.policy, "kv/data/billing/key", "read")
      error_message = "the policy must grant read on kv/data/billing/key"
    }
  }
}
"#,
    ));
    let out = wd.run(&["plan"]);
    assert!(!out.success(), "{out}");
    assert!(
        out.combined()
            .contains("the policy must grant read on kv/data/billing/key"),
        "{out}"
    );

    let wd = Workdir::new(tf);
    wd.write_config(&config(
        r#"
output "bad" {
  value = provider::apim::entra_issuer("contoso.com", 1, "public")
}
"#,
    ));
    let out = wd.run(&["plan"]);
    assert!(!out.success(), "{out}");
    let text = out.combined();
    assert!(
        text.contains("tenant_id is \"contoso.com\"") && text.contains("GUID"),
        "the error names the argument and the fix:\n{text}"
    );
}
