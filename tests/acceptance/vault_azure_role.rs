//! `apim_vault_azure_role` (with `apim_vault_auth_backend` and `apim_vault_policy`) against a
//! real OpenBao and the APIM emulator, proven by real logins with emulator-minted
//! managed-identity tokens.

use serde_json::{json, Value};

use crate::support::fixtures::{
    provider_from_env, read_policy, trio_binding, vault_trio, AUDIENCE,
};
use crate::support::{contains_normalized, run, Bao, Emulator, Step, TestCase, Workdir};

/// The trio, its role with `role_settings`.
fn config(emu: &Emulator, role_settings: &str) -> String {
    format!(
        "{}{}",
        provider_from_env(),
        vault_trio(emu, "kv/data/orders/*", role_settings)
    )
}

/// The summary of the warning that another role is bound to the same identity.
const SHARED_IDENTITY: &str = "Another role is bound to the same identity";

/// A token minted by the emulator's control plane with claim overrides.
fn minted(emu: &Emulator, req: Value) -> String {
    let (status, body) = emu.call("POST", "/_emulator/tokens", Some(req));
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The instance's system-assigned identity now (it changes when a test re-creates it).
fn principal(emu: &Emulator) -> Value {
    emu.inventory()[emu.api_management_id()]["identity"]["principalId"].clone()
}

fn login(bao: &Bao, jwt: &str) -> (u16, Value) {
    bao.api(
        "POST",
        "auth/apim-jwt/login",
        Some(json!({ "role": "orders-apim", "jwt": jwt })),
    )
}

fn role(bao: &Bao) -> Option<Value> {
    let (status, body) = bao.api("GET", "auth/apim-jwt/role/orders-apim", None);
    (status == 200).then(|| body["data"].clone())
}

#[test]
fn vault_azure_role_from_api_management_id() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let case = TestCase::new(vec![
        Step::config(config(&emu, "token_ttl = 600")).check(|wd| {
            let r = role(&bao).expect("role written");
            assert_eq!(r["bound_claims"]["oid"], principal(&emu));
            assert_eq!(r["bound_claims"]["tid"], Value::from(emu.tenant_id()));
            assert_eq!(r["bound_audiences"], json!([AUDIENCE]));
            assert_eq!(r["user_claim"], "oid");
            assert_eq!(r["role_type"], "jwt");
            let s = wd.resource("apim_vault_azure_role.orders");
            assert_eq!(s["principal_id"], principal(&emu));
            assert_eq!(s["id"], "apim-jwt/orders-apim");
            // The instance's own token logs in and gets exactly the role's policies (not
            // Vault's `default`: token_no_default_policy) and TTL.
            let (status, body) = login(&bao, &emu.managed_identity_token(AUDIENCE));
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["auth"]["token_policies"], json!(["orders-reader"]));
            assert_eq!(body["auth"]["lease_duration"], 600);
            // Another audience, identity or tenant: refused.
            let (status, _) = login(&bao, &emu.managed_identity_token("api://something-else"));
            assert_eq!(status, 400, "wrong audience refused");
            let other_oid = minted(&emu, json!({"resource": AUDIENCE, "claims": {"oid": "00000000-0000-0000-0000-000000000001"}}));
            assert_eq!(login(&bao, &other_oid).0, 400, "other identity refused");
            let other_tid = minted(&emu, json!({"resource": AUDIENCE, "claims": {"tid": "00000000-0000-0000-0000-000000000002"}}));
            assert_eq!(login(&bao, &other_tid).0, 400, "other tenant refused");
        }),
        // Import gives back the identity as principal_id + tenant_id: Vault does not know
        // which APIM instance it belongs to.
        Step::import("apim_vault_azure_role.orders")
            .import_id("apim-jwt/orders-apim")
            .verify_ignore(&["api_management_id"]),
        // token_ttl changes in place.
        Step::config(config(&emu, "token_ttl = 300")).check(|_| {
            assert_eq!(role(&bao).unwrap()["token_ttl"], 300);
            let (_, body) = login(&bao, &emu.managed_identity_token(AUDIENCE));
            assert_eq!(body["auth"]["lease_duration"], 300);
        }),
        // Edited in Vault: plan shows it.
        Step::drift(|| {
            bao.api_ok(
                "POST",
                "auth/apim-jwt/role/orders-apim",
                Some(json!({"role_type": "jwt", "token_policies": ["default", "admin"]})),
            );
        })
        .plan_contains("apim_vault_azure_role.orders will be updated in-place")
        .plan_contains("\"admin\""),
        Step::config(config(&emu, "token_ttl = 300")),
        // The identity is re-created in Azure: plan shows the bound claims changing, and after
        // apply the new identity logs in.
        Step::drift(|| {
            let (status, body) = emu.call(
                "POST",
                "/_emulator/identity",
                Some(json!({"api_management_id": emu.api_management_id(), "recreate": true})),
            );
            assert!((200..300).contains(&status), "{body}");
        })
        .plan_contains("~ principal_id")
        .plan_contains("~ bound_claims"),
        Step::config(config(&emu, "token_ttl = 300")).check(|wd| {
            let s = wd.resource("apim_vault_azure_role.orders");
            assert_eq!(s["principal_id"], principal(&emu), "the new principal");
            assert_eq!(role(&bao).unwrap()["bound_claims"]["oid"], s["principal_id"]);
            let (status, body) = login(&bao, &emu.managed_identity_token(AUDIENCE));
            assert_eq!(status, 200, "{body}");
        }),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| {
        assert!(role(&bao).is_none(), "role removed");
        assert_eq!(bao.api("GET", "sys/auth/apim-jwt", None).0, 400, "mount removed");
    });
    run(case);
}

#[test]
fn vault_azure_role_bad_input() {
    let bao = Bao::start();
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "subscriptions": [{
                "resource_groups": [{
                    "name": "rg1", "location": "westeurope",
                    "services": [
                        {"name": "with-identity", "identity": {"type": "SystemAssigned"}},
                        {"name": "no-identity"}
                    ]
                }]
            }],
            "clients": [{}]
        })
        .to_string(),
    )
    .unwrap();
    let emu = Emulator::start_with_args(&["--seed", &seed.to_string_lossy()]);
    let sub = emu.subscription_id().to_string();
    let base = provider_from_env();
    let role = |identity: &str| {
        format!("{base}\nresource \"apim_vault_azure_role\" \"r\" {{\n  name = \"r\"\n  audience = \"{AUDIENCE}\"\n{identity}\n}}\n")
    };
    let cases = [
        (
            role("  api_management_id = \"/subscriptions/abc/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/x\""),
            "`api_management_id`",
        ),
        (
            role(&format!("  api_management_id = \"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/missing\"")),
            "does not exist",
        ),
        (
            role(&format!("  api_management_id = \"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/no-identity\"")),
            "identity { type = \"SystemAssigned\" }",
        ),
        (
            role(&format!("  api_management_id = \"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/with-identity\"\n  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"")),
            "Only one of `api_management_id`, `principal_id` may be set",
        ),
        (role("  principal_id = \"11111111-2222-3333-4444-555555555555\""), "`tenant_id` must be set when `principal_id` is set"),
        (
            role("  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"\n  backend = \"userpass\""),
            "is of type \"userpass\"",
        ),
    ];
    bao.api_ok(
        "POST",
        "sys/auth/userpass",
        Some(json!({"type": "userpass"})),
    );
    for (config, expected) in &cases {
        run(
            TestCase::new(vec![Step::config(config.clone()).expect_error(expected)])
                .envs(bao.env())
                .envs(emu.env()),
        );
    }
}

/// The type of `token` as OpenBao reports it to the root token (`auth/token/lookup`).
fn token_type(bao: &Bao, token: &str) -> Value {
    let data = bao.api_ok("POST", "auth/token/lookup", Some(json!({ "token": token })));
    data["data"]["type"].clone()
}

/// `GET <path>` with `token`: the status and the answer.
fn read_with(bao: &Bao, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/v1/{path}", bao.addr()))
        .header("X-Vault-Token", token)
        .send()
        .unwrap();
    crate::support::status_and_json(r)
}

/// A role created with the token defaults fits the gateway's single-use login: OpenBao holds
/// `token_type = "batch"`, `token_no_default_policy = true` and `token_ttl = 300`, and the
/// login the binding's fragment makes (`POST auth/<backend>/login` with the instance's
/// managed-identity token) gets a batch token carrying only the role's policies, which reads
/// the secret. Other values are still taken.
#[test]
fn vault_azure_role_defaults_fit_a_single_use_gateway_login() {
    let bao = Bao::start();
    let emu = Emulator::start();
    bao.api_ok(
        "POST",
        "secret/data/orders/backend",
        Some(json!({"data": {"api_key": "k"}})),
    );
    let config = |role_settings: &str| {
        format!(
            "{}{}",
            provider_from_env(),
            vault_trio(&emu, "secret/data/orders/*", role_settings)
        )
    };
    let gateway_login = || {
        let (status, body) = login(&bao, &emu.managed_identity_token(AUDIENCE));
        assert_eq!(status, 200, "{body}");
        body["auth"].clone()
    };
    let case = TestCase::new(vec![
        Step::config(config("")).check(|wd| {
            let r = role(&bao).expect("role written");
            assert_eq!(r["token_type"], "batch");
            assert_eq!(r["token_no_default_policy"], true);
            assert_eq!(r["token_ttl"], 300);
            let s = wd.resource("apim_vault_azure_role.orders");
            assert_eq!(s["token_type"], "batch");
            assert_eq!(s["token_no_default_policy"], true);
            assert_eq!(s["token_ttl"], 300);

            let auth = gateway_login();
            let token = auth["client_token"].as_str().unwrap();
            assert_eq!(auth["token_type"], "batch", "{auth}");
            assert_eq!(auth["renewable"], false, "{auth}");
            assert_eq!(auth["lease_duration"], 300, "{auth}");
            assert_eq!(auth["token_policies"], json!(["orders-reader"]), "{auth}");
            assert_eq!(token_type(&bao, token), "batch");
            // The read the gateway makes next works with it.
            let (status, body) = read_with(&bao, token, "secret/data/orders/backend");
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["data"]["api_key"], "k");
            // Without Vault's `default` policy the token cannot even look itself up.
            let (status, body) = read_with(&bao, token, "auth/token/lookup-self");
            assert_eq!(status, 403, "{body}");
        }),
        // Import reads the defaults back as they are: no diff.
        Step::import("apim_vault_azure_role.orders")
            .import_id("apim-jwt/orders-apim")
            .verify_ignore(&["api_management_id"]),
        // Other values are taken: a service token with the `default` policy.
        Step::config(config(
            "token_type              = \"service\"\ntoken_no_default_policy = false\ntoken_ttl               = 120",
        ))
        .check(|_| {
            let r = role(&bao).unwrap();
            assert_eq!(r["token_type"], "service");
            assert_eq!(r["token_no_default_policy"], false);
            assert_eq!(r["token_ttl"], 120);
            let auth = gateway_login();
            let token = auth["client_token"].as_str().unwrap();
            assert_eq!(token_type(&bao, token), "service");
            assert_eq!(auth["token_policies"], json!(["default", "orders-reader"]));
            let (status, body) = read_with(&bao, token, "auth/token/lookup-self");
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["type"], "service");
        }),
        // Back to the defaults: the role is updated in place.
        Step::config(config("")).check(|_| {
            let auth = gateway_login();
            assert_eq!(auth["token_type"], "batch", "{auth}");
            assert_eq!(token_type(&bao, auth["client_token"].as_str().unwrap()), "batch");
        }),
        // The default TTL is the longest cache a binding planned with the role may keep.
        Step::config(format!(
            "{}{}",
            config(""),
            trio_binding(
                "orders",
                &format!(
                    "api_management_id = \"{}\"\napi_id = \"orders-api\"\nname = \"orders\"\nsecret_path = \"secret/data/orders/backend\"\nsecret_field = \"api_key\"\ncache_ttl = 301\ninject {{\n  header = \"X-Api-Key\"\n}}",
                    emu.api_management_id()
                )
            )
        ))
        .expect_error("longer than the role's token_ttl of 300 s"),
    ])
    .envs(bao.env())
    .envs(emu.env());
    run(case);
}

/// `terraform plan` with the configuration in `wd`: its whole output (warnings included).
fn plan_text(wd: &Workdir) -> String {
    wd.run_ok(&["plan"]).combined()
}

fn no_shared_identity_warning(wd: &Workdir) {
    let plan = plan_text(wd);
    assert!(!contains_normalized(&plan, SHARED_IDENTITY), "{plan}");
}

/// The warnings of `terraform plan -json` that another role shares the identity: the address
/// of the role each is about, and its detail.
fn plan_warnings(wd: &Workdir) -> Vec<(String, String)> {
    let out = wd.run_ok(&["plan", "-json"]);
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["diagnostic"].clone())
        .filter(|d| d["severity"] == "warning" && d["summary"] == SHARED_IDENTITY)
        .map(|d| {
            let address = d["address"].as_str().unwrap_or_default().to_string();
            (
                address,
                d["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Two roles bound to the APIM instance's identity with different policies do not isolate
/// from each other: plan says so, on each of them. One role, or a second with the same
/// policies, draws no warning.
#[test]
fn vault_azure_role_warns_when_another_role_shares_the_identity() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let second = |policies: &str| {
        format!(
            r#"{policy}resource "apim_vault_azure_role" "admin" {{
  name              = "admin-apim"
  backend           = apim_vault_auth_backend.entra.path
  api_management_id = "{apim}"
  audience          = "{AUDIENCE}"
  token_policies    = {policies}
}}
"#,
            policy = read_policy("admin", "admin-reader", "kv/data/admin/*"),
            apim = emu.api_management_id(),
        )
    };
    let case = TestCase::new(vec![
        Step::config(config(&emu, "")).check(no_shared_identity_warning),
        Step::config(format!(
            "{}{}",
            config(&emu, ""),
            second("[apim_vault_policy.admin.name]")
        ))
        .check(|wd| {
            // As people read it: one warning in full, the other folded by Terraform.
            let plan = plan_text(wd);
            assert!(
                contains_normalized(&plan, &format!("Warning: {SHARED_IDENTITY}")),
                "{plan}"
            );
            assert!(
                contains_normalized(&plan, "(and one more similar warning elsewhere)"),
                "{plan}"
            );
            assert!(
                contains_normalized(
                    &plan,
                    "The instance, not the API, is the isolation boundary"
                ),
                "{plan}"
            );
            // Each role's own warning names the other.
            let warnings = plan_warnings(wd);
            assert_eq!(warnings.len(), 2, "{warnings:?}");
            for (this, other, policies) in [
                ("orders", "admin-apim", "admin-reader"),
                ("admin", "orders-apim", "orders-reader"),
            ] {
                let (_, detail) = warnings
                    .iter()
                    .find(|(address, _)| *address == format!("apim_vault_azure_role.{this}"))
                    .unwrap_or_else(|| panic!("no warning on {this}: {warnings:?}"));
                let expected = format!("the role(s) {other:?} (policies {policies:?})");
                assert!(detail.contains(&expected), "{detail}");
                assert!(
                    detail.contains(&format!("object ID {}", emu.principal_id())),
                    "{detail}"
                );
            }
        }),
        // The same policies: nothing to tell apart, no warning.
        Step::config(format!(
            "{}{}",
            config(&emu, ""),
            second("[apim_vault_policy.orders.name]")
        ))
        .check(no_shared_identity_warning),
        // One role again: no warning.
        Step::config(config(&emu, "")).check(no_shared_identity_warning),
    ])
    .envs(bao.env())
    .envs(emu.env());
    run(case);
}
