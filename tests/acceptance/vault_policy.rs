//! `apim_vault_policy` and `apim_vault_policy_document` against a real OpenBao.

use serde_json::{json, Value};

use crate::support::{run, Bao, Step, TestCase};

const HEADER: &str = r#"
terraform {
  required_providers {
    apim = { source = "apimvault/apim" }
  }
}
"#;

/// A provider block pointing at `bao` explicitly.
fn provider(bao: &Bao) -> String {
    format!(
        "{HEADER}\nprovider \"apim\" {{\n  vault {{\n    address = \"{}\"\n    token   = \"{}\"\n  }}\n}}\n",
        bao.addr(),
        bao.token()
    )
}

/// The policy text OpenBao holds, or `None` when there is no such policy.
fn vault_policy(bao: &Bao, name: &str) -> Option<String> {
    let (status, body) = bao.api("GET", &format!("sys/policies/acl/{name}"), None);
    match status {
        200 => Some(
            body["data"]["policy"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        404 => None,
        other => panic!("unexpected status {other} reading policy {name}: {body}"),
    }
}

fn write_vault_policy(bao: &Bao, name: &str, text: &str) {
    bao.api_ok(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(json!({ "policy": text })),
    );
}

/// Capabilities granted on `path` by the policy text, sorted (parsed the crude way: tests
/// must not depend on the parser under test).
fn capabilities_in(text: &str, path: &str) -> Vec<String> {
    let start = text
        .find(&format!("path \"{path}\""))
        .unwrap_or_else(|| panic!("no rule for {path} in:\n{text}"));
    let rest = &text[start..];
    let caps = &rest[rest.find("capabilities").unwrap()..];
    let list = &caps[caps.find('[').unwrap() + 1..caps.find(']').unwrap()];
    let mut v: Vec<String> = list
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v
}

fn rules_config(bao: &Bao, caps: &str) -> String {
    format!(
        r#"{}
resource "apim_vault_policy" "orders" {{
  name = "orders-reader"

  rule {{
    path         = "kv/data/orders/*"
    capabilities = [{caps}]
    description  = "Orders team secrets"
  }}

  rule {{
    path                = "sys/+/capabilities-self"
    capabilities        = ["update"]
    required_parameters = ["paths"]
    allowed_parameter {{
      key   = "paths"
      value = ["kv/data/orders/a", "kv/data/orders/b"]
    }}
  }}
}}
"#,
        provider(bao)
    )
}

#[test]
fn vault_policy_rules_lifecycle() {
    let bao = Bao::start();
    run(TestCase::new(vec![
        Step::config(rules_config(&bao, r#""read", "list""#)).check(|wd| {
            let text = vault_policy(&bao, "orders-reader").expect("policy created in Vault");
            assert_eq!(capabilities_in(&text, "kv/data/orders/*"), ["list", "read"]);
            assert!(text.contains("# Orders team secrets"), "{text}");
            let state = wd.resource("apim_vault_policy.orders");
            assert_eq!(state["id"], "orders-reader");
            assert_eq!(state["hcl"].as_str(), Some(text.as_str()));
        }),
        Step::import("apim_vault_policy.orders").import_id("orders-reader"),
        // Update in place.
        Step::config(rules_config(&bao, r#""read", "list", "update""#)).check(|_| {
            let text = vault_policy(&bao, "orders-reader").unwrap();
            assert_eq!(
                capabilities_in(&text, "kv/data/orders/*"),
                ["list", "read", "update"]
            );
        }),
        // A formatting-only rewrite in Vault is no change: the apply leaves Vault's text alone.
        Step::config(rules_config(&bao, r#""read", "list", "update""#))
            .pre_config(|| {
                let text = vault_policy(&bao, "orders-reader").unwrap();
                let reformatted = format!(
                    "# rewritten by hand\n{}",
                    text.replace("\n  ", "\n        ").replace(", ", ",")
                );
                write_vault_policy(&bao, "orders-reader", &reformatted);
            })
            .check(|_| {
                let text = vault_policy(&bao, "orders-reader").unwrap();
                assert!(
                    text.starts_with("# rewritten by hand"),
                    "an equivalent policy was rewritten:\n{text}"
                );
            }),
        // A real out-of-band edit shows as an update of the capabilities...
        Step::drift(|| {
            write_vault_policy(
                &bao,
                "orders-reader",
                "path \"kv/data/orders/*\" { capabilities = [\"delete\"] }\npath \"sys/+/capabilities-self\" { capabilities = [\"update\"] required_parameters = [\"paths\"] allowed_parameters = { \"paths\" = [\"kv/data/orders/a\", \"kv/data/orders/b\"] } }",
            )
        })
        .plan_contains("apim_vault_policy.orders will be updated in-place")
        .plan_contains("\"delete\""),
        // ...which apply repairs.
        Step::config(rules_config(&bao, r#""read", "list""#)).check(|_| {
            let text = vault_policy(&bao, "orders-reader").unwrap();
            assert_eq!(capabilities_in(&text, "kv/data/orders/*"), ["list", "read"]);
        }),
        // Deleted out of band: Terraform plans to create it again.
        Step::drift(|| {
            bao.api_ok("DELETE", "sys/policies/acl/orders-reader", None);
        })
        .plan_contains("apim_vault_policy.orders will be created"),
        Step::config(rules_config(&bao, r#""read", "list""#))
            .check(|_| assert!(vault_policy(&bao, "orders-reader").is_some())),
    ])
    .check_destroy(|| assert_eq!(vault_policy(&bao, "orders-reader"), None)));
}

fn raw_config(bao: &Bao, body: &str) -> String {
    format!(
        "{}\nresource \"apim_vault_policy\" \"raw\" {{\n  name   = \"raw-policy\"\n  policy = <<-EOT\n{body}\n  EOT\n}}\n",
        provider(bao)
    )
}

#[test]
fn vault_policy_raw_document() {
    let bao = Bao::start();
    // Not in the provider's canonical layout, so import keeps the raw form.
    let body = "    path \"secret/data/app\" { capabilities = [\"read\"] }";
    let reformatted = "    # same meaning, other layout\n    path \"secret/data/app\" {\n      capabilities = [ \"read\" ]\n    }";
    run(TestCase::new(vec![
        Step::config(raw_config(&bao, body)).check(|wd| {
            let text = vault_policy(&bao, "raw-policy").unwrap();
            assert_eq!(capabilities_in(&text, "secret/data/app"), ["read"]);
            assert_eq!(
                wd.resource("apim_vault_policy.raw")["hcl"].as_str(),
                Some(text.as_str())
            );
        }),
        Step::import("apim_vault_policy.raw").import_id("raw-policy"),
        // Reformatting the configuration changes nothing in Vault.
        Step::config(raw_config(&bao, reformatted)).check(|_| {
            let text = vault_policy(&bao, "raw-policy").unwrap();
            assert!(!text.contains("other layout"), "rewritten: {text}");
        }),
        Step::config(raw_config(&bao, &body.replace("read", "list"))).check(|_| {
            let text = vault_policy(&bao, "raw-policy").unwrap();
            assert_eq!(capabilities_in(&text, "secret/data/app"), ["list"]);
        }),
    ])
    .check_destroy(|| assert_eq!(vault_policy(&bao, "raw-policy"), None)));
}

#[test]
fn vault_policy_bad_input() {
    let bao = Bao::start();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  rule {{\n    path = \"a/*\"\n    capabilities = [\"read\", \"fly\"]\n  }}\n}}\n", provider(&bao)),
            "\"fly\", which is not one of",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  policy = \"path \\\"a\\\" {{ capabilities = [\\\"reed\\\"] }}\"\n}}\n", provider(&bao)),
            "grants \"reed\", which Vault does not know",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  policy = \"path \\\"a\\\" {{ capabilities = [\\\"read\\\"] }}\"\n  rule {{\n    path = \"a\"\n    capabilities = [\"read\"]\n  }}\n}}\n", provider(&bao)),
            "Only one of `rule`, `policy` may be set",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n}}\n", provider(&bao)),
            "Exactly one of `rule`, `policy` must be set",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"Orders\"\n  rule {{\n    path = \"a\"\n    capabilities = [\"read\"]\n  }}\n}}\n", provider(&bao)),
            "Vault stores policy names in lowercase",
        ),
        (
            format!("{HEADER}\nprovider \"apim\" {{\n  vault {{\n    address = \"vault.example.com\"\n  }}\n}}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  policy = \"path \\\"a\\\" {{ capabilities = [\\\"read\\\"] }}\"\n}}\n"),
            "which is not an http:// or https:// URL",
        ),
    ];
    for (config, expected) in &cases {
        run(TestCase::new(vec![
            Step::config(config.clone()).expect_error(expected)
        ]));
    }
    // A policy that exists already is not adopted silently: the error says to import it.
    write_vault_policy(&bao, "taken", "path \"a\" { capabilities = [\"read\"] }");
    run(TestCase::new(vec![Step::config(format!(
        "{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"taken\"\n  rule {{\n    path = \"b\"\n    capabilities = [\"read\"]\n  }}\n}}\n",
        provider(&bao)
    ))
    .expect_error("terraform import apim_vault_policy.<name> taken")]));
    assert!(vault_policy(&bao, "taken").unwrap().contains("path \"a\""));
}

#[test]
fn vault_policy_document_renders_and_feeds_a_policy() {
    let bao = Bao::start();
    // Configured through the environment (VAULT_ADDR, VAULT_TOKEN) instead of the block.
    let config = format!(
        r#"{HEADER}
provider "apim" {{}}

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
"#
    );
    let expected = "# payments\npath \"kv/data/payments/*\" {\n  capabilities = [\"read\"]\n}\n\npath \"kv/metadata/payments/*\" {\n  capabilities = [\"list\"]\n  denied_parameters = {\n    \"*\" = []\n  }\n}\n";
    run(TestCase::new(vec![Step::config(config).check(|wd| {
        assert_eq!(wd.outputs()["hcl"], Value::from(expected));
        assert_eq!(vault_policy(&bao, "payments").as_deref(), Some(expected));
    })])
    .envs(bao.env()));
}
