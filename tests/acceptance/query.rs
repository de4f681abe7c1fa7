//! `terraform query` (Terraform 1.14+): the list resources find the bindings, roles,
//! policies and mounts that exist, made outside the querying configuration (through the
//! Vault API, or by another working directory); `-generate-config-out` writes import blocks
//! and resources that validate, import, and then plan empty.

use serde_json::json;

use crate::support::fixtures::{provider_from_env, trio_binding, vault_trio, AUDIENCE};
use crate::support::{Bao, Emulator, TerraformBin, Workdir};

/// A working directory with the Vault and emulator environment.
fn workdir(bao: &Bao, emu: &Emulator) -> Workdir {
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    wd
}

/// The binding another configuration makes: the trio's role reading one KV v2 secret.
fn binding(emu: &Emulator) -> String {
    trio_binding(
        "orders",
        &format!(
            "api_management_id = \"{}\"\nname              = \"orders\"\napi_id            = \"orders-api\"\nsecret_path       = \"secret/data/orders/backend\"\nsecret_field      = \"api_key\"\ninject {{\n  header = \"X-Api-Key\"\n}}",
            emu.api_management_id()
        ),
    )
}

/// Objects made outside the querying configuration: the trio and a binding by another
/// working directory; a policy, a JWT mount and two roles (one for the emulator's APIM
/// identity, one for an object ID that is no APIM identity) through the Vault API.
fn made_elsewhere(bao: &Bao, emu: &Emulator) -> Workdir {
    bao.api_ok(
        "POST",
        "secret/data/orders/backend",
        Some(json!({"data": {"api_key": "orders-query-key"}})),
    );
    emu.create_api("orders-api");
    let wd = workdir(bao, emu);
    wd.write_config(&format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(emu, "secret/data/orders/*", ""),
        binding(emu)
    ));
    wd.run_ok(&["apply", "-auto-approve"]);
    bao.write_policy(
        "script-reader",
        "path \"secret/data/script/*\" {\n  capabilities = [\"read\"]\n}\n",
    );
    bao.trust_emulator(emu, "script-jwt");
    bao.emulator_role(
        emu,
        "script-jwt",
        "script-apim",
        AUDIENCE,
        json!({"token_policies": ["script-reader"], "token_ttl": 600}),
    );
    bao.api_ok(
        "POST",
        "auth/script-jwt/role/someone-else",
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "oid",
            "bound_claims": {"oid": "0b0b0b0b-1111-2222-3333-444444444444", "tid": emu.tenant_id()},
        })),
    );
    wd
}

/// A `.tfquery.hcl` listing every type.
fn every_list(emu: &Emulator) -> String {
    format!(
        r#"list "apim_vault_policy" "policies" {{
  provider = apim
}}

list "apim_vault_auth_backend" "mounts" {{
  provider = apim
}}

list "apim_vault_azure_role" "roles" {{
  provider = apim
  config {{
    backend = "script-jwt"
  }}
}}

list "apim_vault_azure_role" "trio_roles" {{
  provider = apim
  config {{
    backend = "apim-jwt"
  }}
}}

list "apim_vault_binding" "bindings" {{
  provider = apim
  config {{
    api_management_id = "{}"
  }}
}}
"#,
        emu.api_management_id()
    )
}

/// The display names `terraform query` printed for `list.<ty>.<name>`, in order.
fn found(out: &str, list: &str) -> Vec<String> {
    let head = format!("list.{list} ");
    out.lines()
        .filter(|l| l.starts_with(&head))
        .map(|l| l.rsplit("   ").next().unwrap_or(l).trim().to_string())
        .collect()
}

/// `terraform plan -detailed-exitcode` with and without refresh both say "no changes".
#[track_caller]
fn assert_plans_empty(wd: &Workdir) {
    for refresh in [false, true] {
        let out = wd.plan_output(refresh);
        assert_eq!(
            out.code, 0,
            "the plan (refresh: {refresh}) must be empty:\n{out}"
        );
    }
}

/// Issue 18: `terraform query` finds the bindings, roles, policies and mounts made outside
/// the configuration (each role with the APIM instance whose identity it is bound to,
/// resolved through ARM); the generated configuration validates, its import blocks apply,
/// and the next plan is empty.
#[test]
fn query_finds_what_exists_and_generated_config_imports_and_plans_empty() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let _elsewhere = made_elsewhere(&bao, &emu);
    let wd = workdir(&bao, &emu);
    wd.write_config(&provider_from_env());
    wd.write_file("everything.tfquery.hcl", &every_list(&emu));

    let out = wd.run_ok(&["query"]);
    assert_eq!(
        found(&out.stdout, "apim_vault_policy.policies"),
        ["orders-reader", "script-reader"],
        "Vault's built-in policies are left out:\n{out}"
    );
    assert_eq!(
        found(&out.stdout, "apim_vault_auth_backend.mounts"),
        ["apim-jwt", "script-jwt"],
        "{out}"
    );
    let apim = "bound to the system-assigned identity of API Management instance apim-emulator";
    assert_eq!(
        found(&out.stdout, "apim_vault_azure_role.roles"),
        [
            format!("script-jwt/script-apim: {apim}"),
            "script-jwt/someone-else: not bound to an API Management identity of the subscription"
                .to_string(),
        ],
        "{out}"
    );
    assert_eq!(
        found(&out.stdout, "apim_vault_azure_role.trio_roles"),
        [format!("apim-jwt/orders-apim: {apim}")],
        "{out}"
    );
    assert_eq!(
        found(&out.stdout, "apim_vault_binding.bindings"),
        ["orders-api/orders"],
        "{out}"
    );

    wd.run_ok(&["query", "-generate-config-out=generated.tf"]);
    let generated = std::fs::read_to_string(wd.path().join("generated.tf")).unwrap();
    for block in [
        "resource \"apim_vault_binding\" \"bindings_0\"",
        "to       = apim_vault_binding.bindings_0",
        "resource \"apim_vault_azure_role\" \"roles_1\"",
        "resource \"apim_vault_auth_backend\" \"mounts_1\"",
    ] {
        assert!(generated.contains(block), "{block}:\n{generated}");
    }
    // What a user would write: the tenant form of a mount, no computed values.
    assert!(!generated.contains("oidc_discovery_url"), "{generated}");
    assert!(!generated.contains("policy_xml"), "{generated}");

    wd.run_ok(&["validate"]);
    let out = wd.run_ok(&["apply", "-auto-approve"]);
    assert!(
        out.stdout
            .contains("Resources: 8 imported, 0 added, 0 changed, 0 destroyed"),
        "{out}"
    );
    assert_plans_empty(&wd);
    let role = wd.resource("apim_vault_azure_role.roles_0");
    assert_eq!(role["principal_id"], emu.principal_id(), "{role}");
}

/// The `config` filters and `limit`: a policy name prefix, a mount path prefix, the roles of
/// one APIM instance, the bindings of one API, and at most `limit` results.
#[test]
fn query_filters_and_limits() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let _elsewhere = made_elsewhere(&bao, &emu);
    emu.create_api("other-api");
    let wd = workdir(&bao, &emu);
    wd.write_config(&provider_from_env());
    wd.write_file(
        "filtered.tfquery.hcl",
        &format!(
            r#"list "apim_vault_policy" "script" {{
  provider = apim
  config {{
    name_prefix = "script-"
  }}
}}

list "apim_vault_policy" "first" {{
  provider = apim
  limit    = 1
}}

list "apim_vault_auth_backend" "script" {{
  provider = apim
  config {{
    path_prefix = "script"
  }}
}}

list "apim_vault_azure_role" "of_instance" {{
  provider = apim
  config {{
    backend           = "script-jwt"
    api_management_id = "{apim}"
  }}
}}

list "apim_vault_binding" "other_api" {{
  provider = apim
  config {{
    api_management_id = "{apim}"
    api_id            = "other-api"
  }}
}}

list "apim_vault_binding" "orders_api" {{
  provider = apim
  config {{
    api_management_id = "{apim}"
    api_id            = "orders-api"
  }}
}}
"#,
            apim = emu.api_management_id()
        ),
    );
    let out = wd.run_ok(&["query"]);
    let stdout = &out.stdout;
    assert_eq!(
        found(stdout, "apim_vault_policy.script"),
        ["script-reader"],
        "{out}"
    );
    assert_eq!(
        found(stdout, "apim_vault_policy.first"),
        ["orders-reader"],
        "{out}"
    );
    assert_eq!(
        found(stdout, "apim_vault_auth_backend.script"),
        ["script-jwt"],
        "{out}"
    );
    assert_eq!(
        found(stdout, "apim_vault_azure_role.of_instance").len(),
        1,
        "only the role bound to the instance's identity:\n{out}"
    );
    assert!(
        found(stdout, "apim_vault_azure_role.of_instance")[0]
            .starts_with("script-jwt/script-apim:"),
        "{out}"
    );
    assert_eq!(
        found(stdout, "apim_vault_binding.other_api"),
        Vec::<String>::new(),
        "{out}"
    );
    assert_eq!(
        found(stdout, "apim_vault_binding.orders_api"),
        ["orders-api/orders"],
        "{out}"
    );
}

/// A `config` block that cannot list anything is an error that names the attribute and the
/// fix, never a crash: an instance ID that is not one, a mount that is not there.
#[test]
fn query_config_errors_name_the_attribute() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let wd = workdir(&bao, &emu);
    wd.write_config(&provider_from_env());
    wd.write_file(
        "bad.tfquery.hcl",
        "list \"apim_vault_binding\" \"bad\" {\n  provider = apim\n  config {\n    api_management_id = \"apim-emulator\"\n  }\n}\n",
    );
    let out = wd.run(&["query"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.combined().contains("api_management_id"), "{out}");
    assert!(
        out.combined().contains("Invalid API Management ID"),
        "{out}"
    );

    wd.write_file(
        "bad.tfquery.hcl",
        "list \"apim_vault_azure_role\" \"bad\" {\n  provider = apim\n  config {\n    backend = \"nowhere\"\n  }\n}\n",
    );
    let out = wd.run(&["query"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.combined()
            .contains("Nothing is mounted at auth path \"nowhere\""),
        "{out}"
    );
}

/// With every Terraform the tools provide (1.15.5, and 1.11 when on `PATH`, which knows no
/// `terraform query` and ignores `.tfquery.hcl` files and list resource schemas), a
/// configuration beside a query file validates, applies and plans empty.
#[test]
fn query_files_and_list_schemas_break_no_terraform() {
    let bao = Bao::start();
    let emu = Emulator::start();
    for tf in crate::support::terraform_versions() {
        let mut wd = Workdir::new(tf);
        for (k, v) in bao.env().into_iter().chain(emu.env()) {
            wd.env(k, v);
        }
        let name = format!("kept-{}", tf.version.replace('.', "-"));
        wd.write_config(&format!(
            "{}{}",
            provider_from_env(),
            crate::support::fixtures::read_policy("p", &name, "secret/data/kept/*")
        ));
        wd.write_file(
            "policies.tfquery.hcl",
            "list \"apim_vault_policy\" \"all\" {\n  provider = apim\n}\n",
        );
        wd.run_ok(&["validate"]);
        wd.run_ok(&["apply", "-auto-approve"]);
        assert_plans_empty(&wd);
        if tf.version_tuple() >= (1, 14, 0) {
            let out = wd.run_ok(&["query"]);
            assert!(
                found(&out.stdout, "apim_vault_policy.all").contains(&name),
                "{out}"
            );
        }
    }
}

/// The examples of `docs/list-resources/` run: every `examples/list-resources/*` file in one
/// working directory, its placeholder instance replaced by the emulator's.
#[test]
fn query_examples_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bao = Bao::start();
    let emu = Emulator::start();
    bao.trust_emulator(&emu, "jwt");
    bao.emulator_role(&emu, "jwt", "orders-apim", AUDIENCE, json!({}));
    emu.create_api("orders-api");
    let wd = workdir(&bao, &emu);
    wd.write_config(&provider_from_env());
    let placeholder = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-apis/providers/Microsoft.ApiManagement/service/contoso-apim";
    let mut lists = 0;
    for entry in std::fs::read_dir(root.join("examples/list-resources")).unwrap() {
        let dir = entry.unwrap().path();
        let ty = dir.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read_to_string(dir.join("list-resource.tfquery.hcl")).unwrap();
        lists += body.matches("list \"").count();
        wd.write_file(
            &format!("{ty}.tfquery.hcl"),
            &body.replace(placeholder, emu.api_management_id()),
        );
    }
    assert_eq!(lists, 7, "the examples changed: update this test");
    let out = wd.run_ok(&["query"]);
    assert_eq!(
        found(&out.stdout, "apim_vault_azure_role.contoso"),
        ["jwt/orders-apim: bound to the system-assigned identity of API Management instance apim-emulator"],
        "{out}"
    );
    assert_eq!(
        found(&out.stdout, "apim_vault_auth_backend.all"),
        ["jwt"],
        "{out}"
    );
}

/// A role bound to a user-assigned identity of an instance is shown with it: the instances'
/// identities come from ARM, user-assigned ones included.
#[test]
fn query_roles_name_user_assigned_identities() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let uai = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-uai",
        emu.subscription_id(),
        emu.field("resource_group")
    );
    let (status, body) = emu.arm(
        "PATCH",
        emu.api_management_id(),
        Some(json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uai.clone(): {}}}})),
    );
    assert!(status == 200 || status == 202, "{status} {body}");
    let service = emu.arm_ok("GET", emu.api_management_id(), None);
    let principal = service["identity"]["userAssignedIdentities"]
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(&uai)))
        .and_then(|(_, v)| v["principalId"].as_str())
        .unwrap_or_else(|| panic!("no principal for {uai}: {service}"))
        .to_string();
    bao.trust_emulator(&emu, "jwt");
    bao.api_ok(
        "POST",
        "auth/jwt/role/uai-role",
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "oid",
            "bound_claims": {"oid": principal, "tid": emu.tenant_id()},
        })),
    );
    let wd = workdir(&bao, &emu);
    wd.write_config(&provider_from_env());
    wd.write_file(
        "roles.tfquery.hcl",
        &format!(
            "list \"apim_vault_azure_role\" \"uai\" {{\n  provider = apim\n  config {{\n    api_management_id = \"{}\"\n  }}\n}}\n",
            emu.api_management_id()
        ),
    );
    let out = wd.run_ok(&["query"]);
    assert_eq!(
        found(&out.stdout, "apim_vault_azure_role.uai"),
        ["jwt/uai-role: bound to the user-assigned identity orders-uai of API Management instance apim-emulator"],
        "{out}"
    );
}

/// A binding record edited by hand so that it cannot be read is a warning naming it; the
/// readable bindings of the instance are listed all the same.
#[test]
fn query_reports_unreadable_binding_records_and_lists_the_rest() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let _elsewhere = made_elsewhere(&bao, &emu);
    let policy = emu.api_policy("orders-api").expect("the binding's policy");
    let marker = "<!-- apim-vault-binding orders ";
    let start = policy.find(marker).expect("the record") + marker.len();
    let end = start + policy[start..].find(" -->").expect("the record's end");
    let garbled = format!("{}not-base64{}", &policy[..start], &policy[end..]);
    emu.create_api("other-api");
    emu.put_api_policy("other-api", &garbled);
    let wd = workdir(&bao, &emu);
    wd.write_config(&provider_from_env());
    wd.write_file(
        "bindings.tfquery.hcl",
        &format!(
            "list \"apim_vault_binding\" \"all\" {{\n  provider = apim\n  config {{\n    api_management_id = \"{}\"\n  }}\n}}\n",
            emu.api_management_id()
        ),
    );
    let out = wd.run_ok(&["query"]);
    assert_eq!(
        found(&out.stdout, "apim_vault_binding.all"),
        ["orders-api/orders"],
        "{out}"
    );
    assert!(
        crate::support::contains_normalized(
            &out.combined(),
            "apim_vault_binding other-api/orders left out"
        ),
        "{out}"
    );
}

/// Without an `azure` configuration the roles are listed all the same, each saying that its
/// APIM identity was not looked up; asking for one instance's roles is an error that says
/// what is missing.
#[test]
fn query_roles_without_azure() {
    let bao = Bao::start();
    let emu = Emulator::start();
    bao.trust_emulator(&emu, "jwt");
    bao.emulator_role(&emu, "jwt", "orders-apim", AUDIENCE, json!({}));
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.envs(bao.env());
    wd.write_config(&provider_from_env());
    wd.write_file(
        "roles.tfquery.hcl",
        "list \"apim_vault_azure_role\" \"all\" {\n  provider = apim\n}\n",
    );
    let out = wd.run_ok(&["query"]);
    assert_eq!(
        found(&out.stdout, "apim_vault_azure_role.all"),
        ["jwt/orders-apim: API Management identity not looked up (no azure configuration)"],
        "{out}"
    );
    wd.write_file(
        "roles.tfquery.hcl",
        &format!(
            "list \"apim_vault_azure_role\" \"all\" {{\n  provider = apim\n  config {{\n    api_management_id = \"{}\"\n  }}\n}}\n",
            emu.api_management_id()
        ),
    );
    let out = wd.run(&["query"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        crate::support::contains_normalized(&out.combined(), "ARM_SUBSCRIPTION_ID"),
        "the missing setting is named:\n{out}"
    );
}
