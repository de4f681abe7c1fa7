//! The committed docs/ match the schema declarations and examples, and every example under
//! examples/resources and examples/data-sources applies against a real OpenBao.

use std::path::Path;

use crate::support::fixtures::{hcl_file, provider_from_env};
use crate::support::{run, Bao, Collector, Emulator, Step, TestCase};

#[test]
fn docs_are_generated_from_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var("APIM_UPDATE_DOCS").as_deref() == Ok("1");
    let mut stale = Vec::new();
    for (rel, content) in apim_provider::docs::pages(root) {
        let path = root.join(&rel);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "docs out of date: {stale:?}. Regenerate with `APIM_UPDATE_DOCS=1 cargo test --test acceptance docs` and commit."
    );
}

#[test]
fn vault_examples_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for example in [
        "examples/resources/apim_vault_policy/resource.tf",
        "examples/data-sources/apim_vault_policy_document/data-source.tf",
    ] {
        let bao = Bao::start();
        let body = std::fs::read_to_string(root.join(example)).unwrap();
        run(TestCase::new(vec![Step::config(format!(
            "{}\n{body}",
            provider_from_env()
        ))])
        .envs(bao.env()));
    }
    // Audit devices need a server that accepts API-created ones, and a collector listening.
    let bao = Bao::start_with_config("unsafe_allow_api_audit_creation = true");
    let collector = Collector::start();
    let body =
        std::fs::read_to_string(root.join("examples/resources/apim_vault_audit/resource.tf"))
            .unwrap();
    run(TestCase::new(vec![Step::config(format!(
        "{}\n{body}",
        provider_from_env()
    ))])
    .envs(bao.env())
    .env("TF_VAR_siem_collector_address", collector.addr.clone())
    .env(
        "TF_VAR_audit_log_file",
        bao.dir().join("audit.log").display().to_string(),
    ));
}

#[test]
fn auth_backend_example_applies_against_the_emulator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bao = Bao::start();
    let emu = Emulator::start();
    let body = std::fs::read_to_string(
        root.join("examples/resources/apim_vault_auth_backend/resource.tf"),
    )
    .unwrap();
    // The example's tenant becomes the emulator's, whose discovery is served under a private CA.
    let tenant_line = "  tenant_id   = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\n";
    assert!(
        body.contains(tenant_line),
        "the example changed: update this test"
    );
    let body = body.replace(
        tenant_line,
        &format!(
            "  tenant_id   = \"{}\"\n  oidc_discovery_ca_pem = {}\n",
            emu.tenant_id(),
            hcl_file(emu.ca_file())
        ),
    );
    run(TestCase::new(vec![Step::config(format!(
        "{}\n{body}",
        provider_from_env()
    ))])
    .envs(bao.env())
    .envs(emu.env()));
}

/// The auth backend, role and binding examples applied together against OpenBao and the
/// emulator: their placeholder IDs become the emulator's, and the binding's role, planned in
/// the same run, passes the binding's plan-time checks.
#[test]
fn apim_examples_apply_against_the_emulator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bao = Bao::start();
    let emu = Emulator::start();
    bao.api_ok(
        "POST",
        "sys/mounts/kv",
        Some(serde_json::json!({"type": "kv", "options": {"version": "2"}})),
    );
    bao.api_ok(
        "POST",
        "kv/data/orders/backend",
        Some(serde_json::json!({"data": {"api_key": "k"}})),
    );
    bao.api_ok(
        "PUT",
        "sys/policies/acl/orders-reader",
        Some(serde_json::json!({"policy": "path \"kv/data/orders/*\" { capabilities = [\"read\"] }"})),
    );
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let placeholder_apim = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim";
    let body = [
        read("examples/resources/apim_vault_auth_backend/resource.tf").replace(
            "  tenant_id   = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\n",
            &format!(
                "  tenant_id   = \"{}\"\n  oidc_discovery_ca_pem = {}\n",
                emu.tenant_id(),
                hcl_file(emu.ca_file())
            ),
        ),
        read("examples/resources/apim_vault_azure_role/resource.tf"),
        read("examples/resources/apim_vault_binding/resource.tf"),
    ]
    .join("\n")
    .replace(placeholder_apim, emu.api_management_id());
    assert!(
        !body.contains("00000000-0000"),
        "a placeholder was not replaced:\n{body}"
    );
    // The API the binding names.
    emu.arm_ok(
        "PUT",
        &format!("{}/apis/orders-api", emu.api_management_id()),
        Some(serde_json::json!({"properties": {"displayName": "Orders", "path": "orders", "protocols": ["https"]}})),
    );
    run(TestCase::new(vec![Step::config(format!(
        "{}\n{body}",
        provider_from_env()
    ))])
    .envs(bao.env())
    .envs(emu.env()));
}

/// The provider page's example is valid configuration (it points at real Vault and Azure, so
/// it is validated rather than applied).
#[test]
fn provider_example_validates() {
    use crate::support::{terraform_versions, Workdir};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for tf in terraform_versions() {
        let wd = Workdir::new(tf);
        wd.write_config(
            &std::fs::read_to_string(root.join("examples/provider/provider.tf")).unwrap(),
        );
        let out = wd.run(&["validate"]);
        assert!(out.success(), "{out}");
    }
}

/// The keys of a page's YAML front matter (`key: ...` lines between the opening and the
/// closing `---`); `None` when the page has none.
fn front_matter_keys(page: &str) -> Option<Vec<String>> {
    let rest = page.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(
        rest[..end]
            .lines()
            .filter(|l| !l.starts_with(' '))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_string()))
            .collect(),
    )
}

/// The front matter rules of `tfplugindocs validate` for the registry layout: no `layout` or
/// `sidebar_current` anywhere; the index page needs no `subcategory` (it refuses one, even
/// empty); guides need a `page_title`. The index page carries `page_title` and `description`,
/// which the registry shows.
#[test]
fn front_matter_is_what_tfplugindocs_validate_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut problems = Vec::new();
    let mut pages = vec![root.join("index.md")];
    for dir in [
        "resources",
        "data-sources",
        "ephemeral-resources",
        "guides",
        "functions",
        "list-resources",
    ] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            pages.extend(entries.flatten().map(|e| e.path()));
        }
    }
    for page in &pages {
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(page).unwrap();
        let Some(keys) = front_matter_keys(&text) else {
            problems.push(format!("{name}: no front matter"));
            continue;
        };
        let has = |k: &str| keys.iter().any(|x| x == k);
        for forbidden in ["layout", "sidebar_current"] {
            if has(forbidden) {
                problems.push(format!("{name}: {forbidden} is not allowed"));
            }
        }
        if name == "index.md" {
            if has("subcategory") {
                problems.push(format!("{name}: subcategory is not allowed on the index"));
            }
            for required in ["page_title", "description"] {
                if !has(required) {
                    problems.push(format!("{name}: {required} is missing"));
                }
            }
        }
        if name.starts_with("guides/") && !has("page_title") {
            problems.push(format!("{name}: page_title is missing"));
        }
    }
    assert!(pages.len() > 5, "found only {pages:?}");
    assert!(problems.is_empty(), "front matter problems: {problems:#?}");
}
