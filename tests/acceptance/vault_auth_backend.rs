//! `apim_vault_auth_backend` against a real OpenBao that fetches discovery documents from
//! the APIM emulator (the Entra side).

use serde_json::{json, Value};

use crate::support::fixtures::{entra_backend, hcl_file, provider_from_env};
use crate::support::{run, Bao, Emulator, Step, TestCase};

fn backend(emu: &Emulator, settings: &str) -> String {
    format!("{}{}", provider_from_env(), entra_backend(emu, settings))
}

fn jwt_config(bao: &Bao, path: &str) -> Value {
    let (status, body) = bao.api("GET", &format!("auth/{path}/config"), None);
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn mount(bao: &Bao, path: &str) -> Option<Value> {
    let (status, body) = bao.api("GET", &format!("sys/auth/{path}"), None);
    (status == 200).then(|| body["data"].clone())
}

#[test]
fn vault_auth_backend_from_tenant_id() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let v1 = format!("{}/{}/", emu.url(), emu.tenant_id());
    let case = TestCase::new(vec![
        Step::config(backend(&emu, "")).check(|wd| {
            let cfg = jwt_config(&bao, "apim-jwt");
            assert_eq!(cfg["oidc_discovery_url"], Value::from(v1.as_str()));
            assert_eq!(cfg["bound_issuer"], Value::from(v1.as_str()));
            let state = wd.resource("apim_vault_auth_backend.entra");
            assert_eq!(state["token_version"], 1);
            assert_eq!(state["oidc_discovery_url"], Value::from(v1.as_str()));
            assert!(state["accessor"].as_str().unwrap().starts_with("auth_jwt_"));
            assert_eq!(mount(&bao, "apim-jwt").unwrap()["type"], "jwt");
        }),
        // Import recognises the derived URL and gives back the tenant form.
        Step::import("apim_vault_auth_backend.entra").import_id("apim-jwt"),
        // Tune values update in place.
        Step::config(backend(
            &emu,
            "description = \"Entra ID for APIM\"\ndefault_lease_ttl = 900\nmax_lease_ttl = 3600",
        ))
        .check(|_| {
            let m = mount(&bao, "apim-jwt").unwrap();
            assert_eq!(m["description"], "Entra ID for APIM");
            assert_eq!(m["config"]["default_lease_ttl"], 900);
            assert_eq!(m["config"]["max_lease_ttl"], 3600);
        }),
        // Version 2 tokens: the issuer moves to <authority>/<tenant>/v2.0.
        Step::config(backend(
            &emu,
            "description = \"Entra ID for APIM\"\ndefault_lease_ttl = 900\nmax_lease_ttl = 3600\ntoken_version = 2",
        ))
        .check(|_| {
            let cfg = jwt_config(&bao, "apim-jwt");
            assert_eq!(cfg["bound_issuer"], Value::from(format!("{}/{}/v2.0", emu.url(), emu.tenant_id())));
        }),
        // Someone changes the issuer in Vault: plan shows it, apply repairs it.
        Step::drift(|| {
            let mut cfg = jwt_config(&bao, "apim-jwt");
            cfg["bound_issuer"] = json!("https://evil.example/");
            bao.api_ok("POST", "auth/apim-jwt/config", Some(cfg));
        })
        .plan_contains("apim_vault_auth_backend.entra will be updated in-place")
        .plan_contains("https://evil.example/"),
        Step::config(backend(
            &emu,
            "description = \"Entra ID for APIM\"\ndefault_lease_ttl = 900\nmax_lease_ttl = 3600\ntoken_version = 2",
        )),
        // A tune made out of band shows too.
        Step::drift(|| {
            bao.api_ok("POST", "sys/auth/apim-jwt/tune", Some(json!({"max_lease_ttl": 7200})));
        })
        .plan_contains("3600"),
        // The mount disabled out of band is re-created.
        Step::drift(|| {
            bao.api_ok("DELETE", "sys/auth/apim-jwt", None);
        })
        .plan_contains("will be created"),
        Step::config(backend(&emu, "")),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| assert!(mount(&bao, "apim-jwt").is_none(), "mount removed"));
    run(case);
}

#[test]
fn vault_auth_backend_explicit_jwks() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let jwks = format!("{}/{}/discovery/v2.0/keys", emu.url(), emu.tenant_id());
    let issuer = format!("{}/{}/", emu.url(), emu.tenant_id());
    let config = format!(
        r#"{}
resource "apim_vault_auth_backend" "keys" {{
  jwks_url     = "{jwks}"
  jwks_ca_pem  = {ca}
  bound_issuer = "{issuer}"
}}
"#,
        provider_from_env(),
        ca = hcl_file(emu.ca_file()),
    );
    run(TestCase::new(vec![
        Step::config(config).check(|wd| {
            let cfg = jwt_config(&bao, "jwt");
            assert_eq!(cfg["jwks_url"], Value::from(jwks.as_str()));
            assert_eq!(cfg["oidc_discovery_url"], "");
            let s = wd.resource("apim_vault_auth_backend.keys");
            assert_eq!(s["path"], "jwt");
            assert!(s["oidc_discovery_url"].is_null());
            assert!(s["tenant_id"].is_null());
        }),
        Step::import("apim_vault_auth_backend.keys").import_id("jwt"),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| assert!(mount(&bao, "jwt").is_none())));
}

#[test]
fn vault_auth_backend_bad_input() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let header = provider_from_env();
    let resource = |body: &str| {
        format!("{header}\nresource \"apim_vault_auth_backend\" \"b\" {{\n{body}\n}}\n")
    };
    let cases = [
        (
            resource("  tenant_id = \"contoso.onmicrosoft.com\""),
            "use the tenant's GUID",
        ),
        (
            resource(&format!("  tenant_id = \"{}\"\n  jwks_url = \"https://x.example/keys\"", emu.tenant_id())),
            "Only one of `tenant_id`, `oidc_discovery_url`, `jwks_url`, `jwt_validation_pubkeys` may be set",
        ),
        (
            resource("  oidc_discovery_url = \"https://x.example/t/.well-known/openid-configuration\"\n  bound_issuer = \"https://x.example/t/\""),
            "Vault appends `/.well-known/openid-configuration` itself",
        ),
        (
            resource(&format!("  path = \"/jwt/\"\n  tenant_id = \"{}\"", emu.tenant_id())),
            "`path` is \"/jwt/\": it starts with `/`",
        ),
        (
            resource(&format!("  tenant_id = \"{}\"\n  token_version = 3", emu.tenant_id())),
            "`token_version` must be 1",
        ),
    ];
    for (config, expected) in &cases {
        run(
            TestCase::new(vec![Step::config(config.clone()).expect_error(expected)])
                .envs(bao.env())
                .envs(emu.env()),
        );
    }
    // Another method already mounted at the path: no adoption, a pointer to import.
    bao.api_ok("POST", "sys/auth/taken", Some(json!({"type": "userpass"})));
    run(TestCase::new(vec![Step::config(resource(&format!(
        "  path = \"taken\"\n  tenant_id = \"{}\"\n  oidc_discovery_ca_pem = {}",
        emu.tenant_id(),
        hcl_file(emu.ca_file())
    )))
    .expect_error("mounted at \"taken\" already exists")])
    .envs(bao.env())
    .envs(emu.env()));
    assert_eq!(mount(&bao, "taken").unwrap()["type"], "userpass");
    // Discovery that Vault cannot reach (no CA given): the apply fails and leaves no mount.
    run(TestCase::new(vec![Step::config(resource(&format!(
        "  path = \"no-ca\"\n  tenant_id = \"{}\"",
        emu.tenant_id()
    )))
    .expect_error("Unable to create apim_vault_auth_backend")])
    .envs(bao.env())
    .envs(emu.env()));
    assert!(
        mount(&bao, "no-ca").is_none(),
        "a failed create leaves no mount behind"
    );
}

/// AKS workload identity sets `AZURE_AUTHORITY_HOST` for its own sign-in. An auth backend that
/// derives its issuer from `tenant_id` must not follow it: the issuer stays the cloud's
/// (`https://sts.windows.net/<tenant>/` for managed-identity tokens), the plan says why, and
/// only `azure.authority_host` or `ARM_AUTHORITY_HOST` moves it.
#[test]
fn an_ambient_azure_authority_host_does_not_move_the_derived_issuer() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let tenant = emu.tenant_id().to_string();
    let config = format!(
        "{}resource \"apim_vault_auth_backend\" \"b\" {{\n  tenant_id = \"{tenant}\"\n}}\n",
        provider_from_env()
    );
    let ambient = emu.url().to_string();
    let plan = |authority: (&str, &str)| {
        let mut wd = crate::support::Workdir::new(&crate::support::TerraformBin::primary());
        wd.envs(
            bao.env()
                .into_iter()
                .chain(emu.env())
                .filter(|(k, _)| k != "ARM_AUTHORITY_HOST"),
        );
        wd.env(authority.0, authority.1);
        wd.write_config(&config);
        let out = wd.run(&["plan"]);
        assert!(out.success(), "{out}");
        out.combined()
    };
    let text = plan(("AZURE_AUTHORITY_HOST", &ambient));
    assert!(
        text.contains(&format!("https://sts.windows.net/{tenant}/")),
        "the public cloud's issuer:\n{text}"
    );
    assert!(
        text.contains("AZURE_AUTHORITY_HOST not used for the issuer")
            && text.contains("ARM_AUTHORITY_HOST"),
        "the plan says where the authority came from and how to change it:\n{text}"
    );
    let text = plan(("ARM_AUTHORITY_HOST", &ambient));
    assert!(
        text.contains(&format!("{ambient}/{tenant}/")),
        "ARM_AUTHORITY_HOST asks for that authority:\n{text}"
    );
    assert!(!text.contains("not used for the issuer"), "{text}");
}
