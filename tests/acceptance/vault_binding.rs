//! `apim_vault_binding` end to end: real Terraform, real OpenBao and the APIM emulator.
//! Requests through the emulator's gateway (the secret reaching the backend) are in runtime.rs.

use serde_json::{json, Value};

use crate::support::fixtures::{
    entra_backend, provider_from_env, trio_binding, vault_trio, AUDIENCE,
};
use crate::support::{run, Bao, Emulator, Step, TestCase};

const SECRET: &str = "s3cr3t-orders-key";
const ORIGINAL_POLICY: &str = "<policies>\r\n  <inbound>\r\n    <base />\r\n    <set-header name=\"X-Team\" exists-action=\"override\">\r\n      <value>orders</value>\r\n    </set-header>\r\n  </inbound>\r\n  <backend>\r\n    <base />\r\n  </backend>\r\n  <outbound>\r\n    <base />\r\n  </outbound>\r\n  <on-error>\r\n    <base />\r\n  </on-error>\r\n</policies>";

fn api_policy(emu: &Emulator) -> Option<String> {
    let (s, b) = emu.arm(
        "GET",
        &format!(
            "{}/apis/orders-api/policies/policy?format=rawxml",
            emu.api_management_id()
        ),
        None,
    );
    (s == 200).then(|| b["properties"]["value"].as_str().unwrap().to_string())
}

fn fragment(emu: &Emulator, name: &str) -> Option<String> {
    let (s, b) = emu.arm(
        "GET",
        &format!(
            "{}/policyFragments/vault-{name}?format=rawxml",
            emu.api_management_id()
        ),
        None,
    );
    (s == 200).then(|| b["properties"]["value"].as_str().unwrap().to_string())
}

fn named_value(emu: &Emulator, name: &str) -> Option<String> {
    let (s, b) = emu.arm(
        "GET",
        &format!("{}/namedValues/{name}", emu.api_management_id()),
        None,
    );
    (s == 200).then(|| {
        b["properties"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

fn setup(bao: &Bao, emu: &Emulator) {
    bao.api_ok(
        "POST",
        "secret/data/orders/backend",
        Some(json!({"data": {"api_key": SECRET}})),
    );
    emu.arm_ok("PUT",
        &format!("{}/apis/orders-api", emu.api_management_id()),
        Some(
            json!({"properties": {"displayName": "Orders", "path": "orders", "protocols": ["https"], "serviceUrl": "https://backend.example"}}),
        ),
    );
    emu.arm_ok(
        "PUT",
        &format!(
            "{}/apis/orders-api/policies/policy",
            emu.api_management_id()
        ),
        Some(json!({"properties": {"format": "rawxml", "value": ORIGINAL_POLICY}})),
    );
}

/// The trio (its policy reading `secret/data/orders/*`, its role's tokens living `role_ttl`
/// seconds) and `apim_vault_binding.orders` with `binding`.
fn config(emu: &Emulator, binding: &str, role_ttl: i64) -> String {
    config_reading(emu, "secret/data/orders/*", binding, role_ttl)
}

/// [`config`] with the trio's policy granting the read on `read_path`.
fn config_reading(emu: &Emulator, read_path: &str, binding: &str, role_ttl: i64) -> String {
    format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(emu, read_path, &format!("token_ttl = {role_ttl}")),
        orders_binding(emu, binding)
    )
}

/// `apim_vault_binding.orders` on the emulator's instance, logging in with the trio's role.
fn orders_binding(emu: &Emulator, binding: &str) -> String {
    trio_binding(
        "orders",
        &format!(
            "api_management_id = \"{}\"\nname              = \"orders\"\n{binding}",
            emu.api_management_id()
        ),
    )
}

/// `config` with the binding naming the role `role` (a literal, not the trio's role).
fn with_role(config: &str, role: &str) -> String {
    let reference = "role     = apim_vault_azure_role.orders.name";
    assert!(config.contains(reference), "{config}");
    config.replace(reference, &format!("role     = \"{role}\""))
}

const BINDING: &str = r#"secret_path  = "secret/data/orders/backend"
secret_field = "api_key"
api_id       = "orders-api"
cache_ttl    = 120
inject {
  header = "X-Api-Key"
}"#;

/// [`BINDING`] reading `password` at `path` instead of the KV secret, with the trio's
/// policy granting that read.
fn config_on(emu: &Emulator, path: &str) -> String {
    config_reading(
        emu,
        path,
        &BINDING
            .replace("secret/data/orders/backend", path)
            .replace("secret_field = \"api_key\"", "secret_field = \"password\""),
        600,
    )
}

#[test]
fn vault_binding_lifecycle_and_runtime() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    // cache_ttl and inject changed.
    let updated = config(
        &emu,
        &BINDING
            .replace("120", "60")
            .replace("header = \"X-Api-Key\"", "query = \"key\""),
        600,
    );
    let case = TestCase::new(vec![
        Step::config(config(&emu, BINDING, 600)).check(|wd| {
            let b = wd.resource("apim_vault_binding.orders");
            assert_eq!(b["vault_address"], Value::from(bao.addr()));
            assert_eq!(
                named_value(&emu, "vault-orders-role").as_deref(),
                Some("orders-apim")
            );
            assert_eq!(
                named_value(&emu, "vault-orders-audience").as_deref(),
                Some(AUDIENCE)
            );
            let policy = api_policy(&emu).unwrap();
            assert!(
                policy.contains("<include-fragment fragment-id=\"vault-orders\" />"),
                "{policy}"
            );
            assert!(
                policy.contains("<value>orders</value>"),
                "other content kept: {policy}"
            );
            // The secret reaching the backend through the gateway: runtime.rs.
        }),
        Step::import("apim_vault_binding.orders"),
        // cache_ttl and inject change in place.
        Step::config(updated.clone()).check(|_| {
            let xml = fragment(&emu, "orders").unwrap();
            assert!(xml.contains("duration=\"60\""));
            // The secret as a query parameter through the gateway: runtime.rs.
        }),
        // Each APIM object edited out of band shows as an update.
        Step::drift(|| {
            emu.arm(
                "PATCH",
                &format!("{}/namedValues/vault-orders-role", emu.api_management_id()),
                Some(json!({"properties": {"value": "someone-else"}})),
            );
        })
        .plan_contains("apim_vault_binding.orders will be updated in-place")
        .plan_contains("someone-else"),
        Step::config(updated.clone()),
        Step::drift(|| {
            let xml = fragment(&emu, "orders")
                .unwrap()
                .replace("duration=\"60\"", "duration=\"86400\"");
            emu.arm(
                "PUT",
                &format!("{}/policyFragments/vault-orders", emu.api_management_id()),
                Some(json!({"properties": {"format": "rawxml", "value": xml}})),
            );
        })
        .plan_contains("86400"),
        Step::config(updated.clone()),
        Step::drift(|| {
            let p = api_policy(&emu)
                .unwrap()
                .replace("<include-fragment fragment-id=\"vault-orders\" />", "");
            emu.arm(
                "PUT",
                &format!(
                    "{}/apis/orders-api/policies/policy",
                    emu.api_management_id()
                ),
                Some(json!({"properties": {"format": "rawxml", "value": p}})),
            );
        })
        .plan_contains("+ api_id"),
        // Apply puts the include back.
        Step::config(updated.clone()),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| {
        assert_eq!(
            api_policy(&emu).as_deref(),
            Some(ORIGINAL_POLICY),
            "the API policy is back as it was"
        );
        assert!(fragment(&emu, "orders").is_none(), "fragment removed");
        assert!(
            named_value(&emu, "vault-orders-addr").is_none(),
            "named values removed"
        );
    });
    run(case);
}

#[test]
fn vault_binding_plan_time_refusals() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let cases = [
        // A role that does not exist (and is not planned in this run).
        (
            with_role(&config(&emu, BINDING, 600), "nobody"),
            "Vault role not found",
        ),
        // Policies that do not grant read on the path.
        (
            config(
                &emu,
                &BINDING.replace("secret/data/orders/backend", "secret/data/payments/db"),
                600,
            ),
            "none of them grants `read` on \"secret/data/payments/db\"",
        ),
        // A cache that outlives the token.
        (
            config(&emu, BINDING, 60),
            "longer than the role's token_ttl of 60 s",
        ),
    ];
    for (cfg, expected) in &cases {
        run(
            TestCase::new(vec![Step::config(cfg.clone()).expect_error(expected)])
                .envs(bao.env())
                .envs(emu.env()),
        );
    }
    assert!(
        fragment(&emu, "orders").is_none(),
        "nothing written to APIM"
    );
}

/// A second binding on the API of `apim_vault_binding.orders`, into a variable.
const AUDIT: &str = r#"api_management_id = apim_vault_binding.orders.api_management_id
name              = "orders-audit"
secret_path       = "secret/data/orders/backend"
secret_field      = "api_key"
api_id            = "orders-api"
inject {
  variable = "auditKey"
}"#;

/// A binding on no API: its fragment is there for other policies to include.
const STANDALONE: &str = r#"api_management_id = apim_vault_binding.orders.api_management_id
name              = "standalone"
secret_path       = "secret/data/orders/backend"
secret_field      = "api_key"
inject {
  header = "X-Key"
}"#;

#[test]
fn vault_binding_two_on_one_api_and_one_without_api() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let base = config(&emu, BINDING, 600);
    let standalone = trio_binding("standalone", STANDALONE);
    let config = format!("{base}{}{standalone}", trio_binding("audit", AUDIT));
    run(TestCase::new(vec![
        Step::config(config.clone()).check(|_| {
            let policy = api_policy(&emu).unwrap();
            assert!(policy.contains("fragment-id=\"vault-orders\""), "{policy}");
            assert!(
                policy.contains("fragment-id=\"vault-orders-audit\""),
                "{policy}"
            );
            assert!(
                !policy.contains("vault-standalone"),
                "no api_id, no include: {policy}"
            );
            assert!(
                fragment(&emu, "standalone").is_some(),
                "the fragment exists for other policies to include"
            );
        }),
        // Removing one binding leaves the other's include and the rest of the policy.
        Step::config(format!("{base}{standalone}")).check(|_| {
            let policy = api_policy(&emu).unwrap();
            assert!(policy.contains("fragment-id=\"vault-orders\""), "{policy}");
            assert!(!policy.contains("vault-orders-audit"), "{policy}");
            assert!(fragment(&emu, "orders-audit").is_none());
        }),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| assert_eq!(api_policy(&emu).as_deref(), Some(ORIGINAL_POLICY))));
}

#[test]
fn vault_binding_refuses_leases_shorter_than_the_cache_and_roles_edited_in_vault() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    // A leased engine whose default lease TTL is shorter than the binding's cache.
    bao.api_ok(
        "POST",
        "sys/mounts/database",
        Some(json!({"type": "database", "config": {"default_lease_ttl": "60s"}})),
    );
    run(
        TestCase::new(vec![Step::config(config_on(&emu, "database/creds/orders"))
            .expect_error("longer than the default lease TTL (60 s)")])
        .envs(bao.env())
        .envs(emu.env()),
    );
    // A role managed elsewhere (here: made through the API) whose policy is edited in Vault
    // so that it no longer grants the read: the binding's next plan refuses, naming the fix.
    // (When the role and policy are in the same configuration, the plan judges them as they
    // will be after the apply, which repairs them.)
    let principal = emu.inventory()[emu.api_management_id()]["identity"]["principalId"].clone();
    let backend_only = format!("{}{}", provider_from_env(), entra_backend(&emu, ""));
    let binding_only = with_role(
        &format!("{backend_only}{}", orders_binding(&emu, BINDING)),
        "outside",
    );
    let grant = |path: &str| {
        bao.write_policy(
            "outside-reader",
            &format!("path \"{path}\" {{ capabilities = [\"read\"] }}"),
        );
    };
    run(TestCase::new(vec![
        // The role appears once the mount exists (a step that makes it through the API).
        Step::config(backend_only),
        Step::config(binding_only.clone()).pre_config(|| {
            grant("secret/data/orders/*");
            bao.api_ok(
                "POST",
                "auth/apim-jwt/role/outside",
                Some(json!({
                    "role_type": "jwt", "user_claim": "oid", "bound_audiences": [AUDIENCE],
                    "bound_claims": {"oid": principal, "tid": emu.tenant_id()},
                    "token_policies": ["outside-reader"], "token_ttl": 600
                })),
            );
        }),
        Step::config(binding_only.clone())
            .pre_config(|| grant("secret/data/other/*"))
            .expect_error("none of them grants `read` on \"secret/data/orders/backend\""),
        Step::config(binding_only.clone()).pre_config(|| grant("secret/data/orders/*")),
    ])
    .envs(bao.env())
    .envs(emu.env()));
}

#[test]
fn module_composition_example_applies() {
    use crate::support::{terraform_versions, Workdir};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/module-composition");
    for tf in terraform_versions() {
        let bao = Bao::start();
        let emu = Emulator::start();
        setup(&bao, &emu);
        bao.api_ok(
            "POST",
            "sys/mounts/kv",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        bao.api_ok(
            "POST",
            "kv/data/orders/backend",
            Some(json!({"data": {"api_key": "k1"}})),
        );
        bao.api_ok(
            "POST",
            "kv/data/orders/audit",
            Some(json!({"data": {"token": "t1"}})),
        );
        let mut wd = Workdir::new(tf);
        for (k, v) in bao.env().into_iter().chain(emu.env()) {
            wd.env(k, v);
        }
        wd.env("TF_VAR_api_management_id", emu.api_management_id());
        wd.env("TF_VAR_tenant_id", emu.tenant_id());
        wd.env(
            "TF_VAR_discovery_ca_pem",
            std::fs::read_to_string(emu.ca_file()).unwrap(),
        );
        wd.write_file(
            "main.tf",
            &std::fs::read_to_string(root.join("main.tf")).unwrap(),
        );
        wd.write_file(
            "modules/apim-vault-secrets/main.tf",
            &std::fs::read_to_string(root.join("modules/apim-vault-secrets/main.tf")).unwrap(),
        );
        // Installs the local module only (init would look the dev-overridden provider up on
        // Terraform versions before 1.15).
        wd.run_ok(&["get"]);
        wd.apply();
        assert_eq!(wd.plan(true), 0, "empty plan after apply");
        let policy = api_policy(&emu).unwrap();
        assert!(
            policy.contains("vault-orders-backend") && policy.contains("vault-orders-audit"),
            "{policy}"
        );
        let (status, body) = bao.api("GET", "auth/apim/role/apim-orders-api", None);
        assert_eq!(status, 200, "{body}");
        let out = wd.destroy();
        assert!(out.success(), "{out}");
        assert_eq!(api_policy(&emu).as_deref(), Some(ORIGINAL_POLICY));
    }
}

#[test]
fn vault_binding_with_a_leased_secret() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    // A KV version 1 mount in leased-passthrough mode hands out a lease with every read.
    bao.enable_leased_kv("apim-leased");
    bao.api_ok(
        "POST",
        "apim-leased/orders/db",
        Some(json!({"password": "leased-pw", "ttl": "10m"})),
    );
    run(
        TestCase::new(vec![Step::config(config_on(&emu, "apim-leased/orders/db"))
            .check(|_| {
                let xml = fragment(&emu, "orders").unwrap();
                assert!(
                    xml.contains("[\"data\"][\"password\"]"),
                    "not KV v2: the field is under data"
                );
                // The leased secret through the gateway, and its lease: runtime.rs.
            })])
        .envs(bao.env())
        .envs(emu.env()),
    );
}

/// An edit made in APIM between `plan` and `apply` is detected, not overwritten.
#[test]
fn vault_binding_update_does_not_overwrite_a_concurrent_edit() {
    use crate::support::{TerraformBin, Workdir};
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    wd.write_config(&config(&emu, BINDING, 600));
    wd.apply();
    wd.write_config(&config(&emu, &BINDING.replace("120", "90"), 600));
    wd.run_ok(&["plan", "-out=tfplan"]);
    // Someone edits the fragment in the portal after the plan.
    let edited = fragment(&emu, "orders")
        .unwrap()
        .replace("duration=\"120\"", "duration=\"30\"");
    emu.arm(
        "PUT",
        &format!("{}/policyFragments/vault-orders", emu.api_management_id()),
        Some(json!({"properties": {"format": "rawxml", "value": edited}})),
    );
    let out = wd.run(&["apply", "tfplan"]);
    assert!(!out.success(), "the apply must refuse: {out}");
    assert!(
        crate::support::contains_normalized(&out.combined(), "changed since this plan was made"),
        "{out}"
    );
    assert!(
        fragment(&emu, "orders")
            .unwrap()
            .contains("duration=\"30\""),
        "the portal's edit is still there"
    );
    let out = wd.destroy();
    assert!(out.success(), "{out}");
}

/// With `TF_LOG=trace`, neither the Vault token, the Azure client secret nor any access token
/// (the provider's ARM token) appears in the logs, the plans, the state or the diagnostics of a
/// whole binding module's lifecycle.
#[test]
fn secrets_never_reach_logs_plans_or_state() {
    let emu = Emulator::start();
    let secret = emu.client_secret().to_string();
    secrets_scan(&emu, &[], &secret);
}

/// The same with the provider signed in to Azure by a managed identity (App Service's
/// endpoint, as `azure_identity` reads it): neither its `IDENTITY_HEADER` secret nor the
/// managed-identity token appears anywhere.
#[test]
fn managed_identity_secrets_never_reach_logs_plans_or_state() {
    let emu = Emulator::start();
    let header = format!("mi-header-{}-7b2d", std::process::id());
    let env = [
        // The system-assigned identity: no client ID, no secret.
        ("ARM_CLIENT_ID", String::new()),
        ("ARM_CLIENT_SECRET", String::new()),
        ("ARM_USE_MSI", "true".to_string()),
        (
            "IDENTITY_ENDPOINT",
            format!("{}/metadata/identity/oauth2/token", emu.url()),
        ),
        ("IDENTITY_HEADER", header.clone()),
    ];
    secrets_scan(&emu, &env, &header);
    let requests = emu.requests();
    assert!(
        requests.as_array().unwrap().iter().any(|r| r["path"]
            .as_str()
            .unwrap_or("")
            .ends_with("/metadata/identity/oauth2/token")
            && r["status"] == 200),
        "the provider signed in with the managed identity: {requests}"
    );
}

/// A binding module's plan, apply, plan, destroy under `TF_LOG=trace`, with the Azure
/// credential from `azure_env` on top of the emulator's; then a search of every output, plan
/// (as `terraform show -json` renders it), the state and the trace log for the Vault token,
/// `azure_secret` and any access token.
fn secrets_scan(emu: &Emulator, azure_env: &[(&str, String)], azure_secret: &str) {
    use crate::support::{TerraformBin, Workdir};
    let bao = Bao::start();
    setup(&bao, emu);
    // A token whose value can be searched for without false matches.
    let token = format!(
        "tok{}x{}",
        std::process::id(),
        emu.client_secret().len() * 7919
    );
    bao.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"id": token, "policies": ["root"], "ttl": "1h"})),
    );
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in emu.env() {
        wd.env(k, v);
    }
    for (k, v) in azure_env {
        wd.env(k, v);
    }
    wd.env("VAULT_ADDR", bao.addr());
    wd.env("VAULT_TOKEN", &token);
    let log = wd.path().join("trace.log");
    wd.env("TF_LOG", "trace");
    wd.env("TF_LOG_PATH", &log);
    wd.write_config(&config(emu, BINDING, 600));
    // Plan files are zip archives: their content is searched as `terraform show -json`
    // renders it (every value, sensitive ones included).
    let outputs = [
        wd.run_ok(&["plan", "-out=tfplan"]).combined(),
        wd.run_ok(&["show", "-json", "tfplan"]).combined(),
        wd.run_ok(&["apply", "tfplan"]).combined(),
        wd.run_ok(&["plan", "-out=tfplan2"]).combined(),
        wd.run_ok(&["show", "-json", "tfplan2"]).combined(),
        wd.state_raw(),
        wd.run_ok(&["destroy", "-auto-approve"]).combined(),
    ];
    let files = [std::fs::read_to_string(&log).expect("the trace log")];
    assert!(files[0].len() > 10_000, "the trace log has content");
    // Every API call is in it (method, path, status), so the search covers them.
    for call in [
        "provider.terraform-provider-apim: Vault request: ",
        "provider.terraform-provider-apim: ARM request: ",
    ] {
        assert!(files[0].contains(call), "{call} lines in the trace log");
    }
    assert!(
        files[0].contains("provider.terraform-provider-apim")
            || files[0].contains("apimvault/apim")
    );
    for (i, text) in outputs.iter().chain(files.iter()).enumerate() {
        assert!(!text.contains(&token), "the Vault token leaked (text #{i})");
        assert!(
            !text.contains(azure_secret),
            "the Azure credential's secret leaked (text #{i})"
        );
        assert_eq!(
            crate::support::jwts_in(text),
            Vec::<String>::new(),
            "an access token leaked (text #{i})"
        );
    }
}
