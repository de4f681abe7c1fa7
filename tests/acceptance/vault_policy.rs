//! `apim_vault_policy` against a real OpenBao.

use crate::support::fixtures::{provider_at, provider_with_vault};
use crate::support::{run, Bao, Step, TestCase};

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
        provider_at(bao)
    )
}

#[test]
fn vault_policy_rules_lifecycle() {
    let bao = Bao::start();
    run(TestCase::new(vec![
        Step::config(rules_config(&bao, r#""read", "list""#)).check(|wd| {
            let text = bao.policy("orders-reader").expect("policy created in Vault");
            assert_eq!(capabilities_in(&text, "kv/data/orders/*"), ["list", "read"]);
            assert!(text.contains("# Orders team secrets"), "{text}");
            let state = wd.resource("apim_vault_policy.orders");
            assert_eq!(state["id"], "orders-reader");
            assert_eq!(state["hcl"].as_str(), Some(text.as_str()));
        }),
        Step::import("apim_vault_policy.orders").import_id("orders-reader"),
        // Update in place.
        Step::config(rules_config(&bao, r#""read", "list", "update""#)).check(|_| {
            let text = bao.policy("orders-reader").unwrap();
            assert_eq!(
                capabilities_in(&text, "kv/data/orders/*"),
                ["list", "read", "update"]
            );
        }),
        // A formatting-only rewrite in Vault is no change: the apply leaves Vault's text alone.
        Step::config(rules_config(&bao, r#""read", "list", "update""#))
            .pre_config(|| {
                let text = bao.policy("orders-reader").unwrap();
                let reformatted = format!(
                    "# rewritten by hand\n{}",
                    text.replace("\n  ", "\n        ").replace(", ", ",")
                );
                bao.write_policy("orders-reader", &reformatted);
            })
            .check(|_| {
                let text = bao.policy("orders-reader").unwrap();
                assert!(
                    text.starts_with("# rewritten by hand"),
                    "an equivalent policy was rewritten:\n{text}"
                );
            }),
        // A real out-of-band edit shows as an update of the capabilities...
        Step::drift(|| {
            bao.write_policy(
                "orders-reader",
                "path \"kv/data/orders/*\" { capabilities = [\"delete\"] }\npath \"sys/+/capabilities-self\" { capabilities = [\"update\"] required_parameters = [\"paths\"] allowed_parameters = { \"paths\" = [\"kv/data/orders/a\", \"kv/data/orders/b\"] } }",
            )
        })
        .plan_contains("apim_vault_policy.orders will be updated in-place")
        .plan_contains("\"delete\""),
        // ...which apply repairs.
        Step::config(rules_config(&bao, r#""read", "list""#)).check(|_| {
            let text = bao.policy("orders-reader").unwrap();
            assert_eq!(capabilities_in(&text, "kv/data/orders/*"), ["list", "read"]);
        }),
        // Deleted out of band: Terraform plans to create it again.
        Step::drift(|| {
            bao.api_ok("DELETE", "sys/policies/acl/orders-reader", None);
        })
        .plan_contains("apim_vault_policy.orders will be created"),
        Step::config(rules_config(&bao, r#""read", "list""#))
            .check(|_| assert!(bao.policy("orders-reader").is_some())),
    ])
    .check_destroy(|| assert_eq!(bao.policy("orders-reader"), None)));
}

fn raw_config(bao: &Bao, body: &str) -> String {
    format!(
        "{}\nresource \"apim_vault_policy\" \"raw\" {{\n  name   = \"raw-policy\"\n  policy = <<-EOT\n{body}\n  EOT\n}}\n",
        provider_at(bao)
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
            let text = bao.policy("raw-policy").unwrap();
            assert_eq!(capabilities_in(&text, "secret/data/app"), ["read"]);
            assert_eq!(
                wd.resource("apim_vault_policy.raw")["hcl"].as_str(),
                Some(text.as_str())
            );
        }),
        Step::import("apim_vault_policy.raw").import_id("raw-policy"),
        // Reformatting the configuration changes nothing in Vault.
        Step::config(raw_config(&bao, reformatted)).check(|_| {
            let text = bao.policy("raw-policy").unwrap();
            assert!(!text.contains("other layout"), "rewritten: {text}");
        }),
        Step::config(raw_config(&bao, &body.replace("read", "list"))).check(|_| {
            let text = bao.policy("raw-policy").unwrap();
            assert_eq!(capabilities_in(&text, "secret/data/app"), ["list"]);
        }),
    ])
    .check_destroy(|| assert_eq!(bao.policy("raw-policy"), None)));
}

#[test]
fn vault_policy_bad_input() {
    let bao = Bao::start();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  rule {{\n    path = \"a/*\"\n    capabilities = [\"read\", \"fly\"]\n  }}\n}}\n", provider_at(&bao)),
            "\"fly\", which is not one of",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  policy = \"path \\\"a\\\" {{ capabilities = [\\\"reed\\\"] }}\"\n}}\n", provider_at(&bao)),
            "grants \"reed\", which Vault does not know",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  policy = \"path \\\"a\\\" {{ capabilities = [\\\"read\\\"] }}\"\n  rule {{\n    path = \"a\"\n    capabilities = [\"read\"]\n  }}\n}}\n", provider_at(&bao)),
            "Only one of `rule`, `policy` may be set",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n}}\n", provider_at(&bao)),
            "Exactly one of `rule`, `policy` must be set",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"Orders\"\n  rule {{\n    path = \"a\"\n    capabilities = [\"read\"]\n  }}\n}}\n", provider_at(&bao)),
            "Vault stores policy names in lowercase",
        ),
        (
            format!("{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"x\"\n  policy = \"path \\\"a\\\" {{ capabilities = [\\\"read\\\"] }}\"\n}}\n", provider_with_vault("address = \"vault.example.com\"")),
            "which is not an http:// or https:// URL",
        ),
    ];
    for (config, expected) in &cases {
        run(TestCase::new(vec![
            Step::config(config.clone()).expect_error(expected)
        ]));
    }
    // A policy that exists already is not adopted silently: the error says to import it.
    bao.write_policy("taken", "path \"a\" { capabilities = [\"read\"] }");
    run(TestCase::new(vec![Step::config(format!(
        "{}\nresource \"apim_vault_policy\" \"p\" {{\n  name = \"taken\"\n  rule {{\n    path = \"b\"\n    capabilities = [\"read\"]\n  }}\n}}\n",
        provider_at(&bao)
    ))
    .expect_error("terraform import apim_vault_policy.<name> taken")]));
    assert!(bao.policy("taken").unwrap().contains("path \"a\""));
}
