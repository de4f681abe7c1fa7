//! `terraform providers schema -json` through the real CLI: what users and tools see.

use crate::support::fixtures::REQUIRED_PROVIDERS;
use crate::support::{terraform_versions, Workdir};

#[test]
fn providers_schema_lists_config_and_types_with_descriptions() {
    for tf in terraform_versions() {
        let wd = Workdir::new(tf);
        wd.write_config(REQUIRED_PROVIDERS);
        let out = wd.run_ok(&["providers", "schema", "-json"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout));
        let p = &v["provider_schemas"]["registry.terraform.io/apimvault/apim"];
        let provider = &p["provider"]["block"];
        assert!(!provider["description"].as_str().unwrap_or("").is_empty());
        let vault = &provider["block_types"]["vault"]["block"];
        assert_eq!(vault["attributes"]["token"]["sensitive"], true);
        assert!(vault["attributes"]["address"]["description"]
            .as_str()
            .unwrap()
            .contains("VAULT_ADDR"));
        assert!(
            provider["block_types"]["azure"]["block"]["attributes"]["client_secret"]["sensitive"]
                .as_bool()
                .unwrap()
        );
        let policy = &p["resource_schemas"]["apim_vault_policy"]["block"];
        assert!(!policy["description"].as_str().unwrap_or("").is_empty());
        assert_eq!(policy["attributes"]["name"]["required"], true);
        assert_eq!(policy["attributes"]["hcl"]["computed"], true);
        assert_eq!(policy["block_types"]["rule"]["nesting_mode"], "list");
        let doc = &p["data_source_schemas"]["apim_vault_policy_document"]["block"];
        assert!(!doc["description"].as_str().unwrap_or("").is_empty());
        assert_eq!(doc["block_types"]["rule"]["min_items"], 1);
        for (name, attr) in policy["attributes"].as_object().unwrap() {
            assert!(
                !attr["description"].as_str().unwrap_or("").is_empty(),
                "apim_vault_policy.{name} has no description (Terraform {})",
                tf.version
            );
        }
    }
}

/// Every type and attribute Terraform sees has its page and its line in docs/.
#[test]
fn providers_schema_and_docs_agree() {
    let tf = &terraform_versions()[0];
    let wd = Workdir::new(tf);
    wd.write_config(REQUIRED_PROVIDERS);
    let out = wd.run_ok(&["providers", "schema", "-json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let p = &v["provider_schemas"]["registry.terraform.io/apimvault/apim"];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut checked = 0;
    for (kind, folder) in [
        ("resource_schemas", "resources"),
        ("data_source_schemas", "data-sources"),
        ("ephemeral_resource_schemas", "ephemeral-resources"),
    ] {
        for (name, schema) in p[kind].as_object().unwrap() {
            let page = root
                .join(folder)
                .join(format!("{}.md", name.trim_start_matches("apim_")));
            let text = std::fs::read_to_string(&page)
                .unwrap_or_else(|_| panic!("{name} has no page {}", page.display()));
            let mut attrs: Vec<String> = Vec::new();
            fn collect(block: &serde_json::Value, out: &mut Vec<String>) {
                for a in block["attributes"].as_object().into_iter().flatten() {
                    out.push(a.0.clone());
                }
                for (b, nested) in block["block_types"].as_object().into_iter().flatten() {
                    out.push(b.clone());
                    collect(&nested["block"], out);
                }
            }
            collect(&schema["block"], &mut attrs);
            for a in attrs {
                assert!(
                    text.contains(&format!("- `{a}` (")),
                    "{} does not document `{a}`",
                    page.display()
                );
                checked += 1;
            }
        }
    }
    let index = std::fs::read_to_string(root.join("index.md")).unwrap();
    for b in ["vault", "azure"] {
        assert!(
            index.contains(&format!("- `{b}` (Block")),
            "index.md does not document `{b}`"
        );
    }
    eprintln!("schema: {checked} attributes found in docs/");
}
