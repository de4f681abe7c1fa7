//! The provider's own Vault token outliving its TTL during a long apply: a configured
//! renewable token is renewed; a JWT login's token is renewed and, past its max TTL, replaced
//! by a new login.

use serde_json::json;

use crate::support::fixtures::{provider_with_vault, MANAGES_POLICIES};
use crate::support::{assert_absent, terraform_versions, Bao, Emulator, Workdir};

/// A config that creates a policy, waits `hold` seconds in a provisioner, then creates a
/// second policy: the provider's token must still work after the wait.
fn slow_config(vault: &str, hold: u32) -> String {
    format!(
        r#"{}
resource "apim_vault_policy" "before" {{
  name   = "before-the-wait"
  policy = "path \"secret/data/a\" {{ capabilities = [\"read\"] }}"
}}

resource "terraform_data" "wait" {{
  depends_on = [apim_vault_policy.before]
  provisioner "local-exec" {{
    command = "sleep {hold}"
  }}
}}

resource "apim_vault_policy" "after" {{
  depends_on = [terraform_data.wait]
  name       = "after-the-wait"
  policy     = "path \"secret/data/b\" {{ capabilities = [\"read\"] }}"
}}
"#,
        provider_with_vault(vault)
    )
}

#[test]
fn an_apply_outlives_the_ttl_of_a_configured_renewable_token() {
    let bao = Bao::start();
    bao.write_policy("tf-admin", MANAGES_POLICIES);
    let vault = format!("address = \"{}\"", bao.addr());
    for tf in terraform_versions() {
        let five_seconds =
            || json!({"policies": ["tf-admin"], "ttl": "5s", "explicit_max_ttl": "10m"});
        let short = bao.create_token(five_seconds());
        let control = bao.create_token(five_seconds());
        let mut wd = Workdir::new(tf);
        wd.write_config(&slow_config(&vault, 12));
        wd.env("VAULT_TOKEN", &short);
        wd.env("TF_LOG_PROVIDER", "debug");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(bao.policy("before-the-wait").is_some());
        assert!(bao.policy("after-the-wait").is_some());
        assert!(apply.stderr.contains("Vault token renewed"), "{apply}");
        assert_absent(
            "the debug log",
            &apply.combined(),
            &[("the token", short.as_str())],
        );

        // The TTL was real: the same kind of token, left alone, expired during the wait.
        let (status, _) = bao.api("POST", "auth/token/lookup", Some(json!({"token": control})));
        assert_ne!(status, 200, "the control token should have expired");
        let looked = bao.api_ok("POST", "auth/token/lookup", Some(json!({"token": short})));
        assert!(!looked["data"]["last_renewal_time"].is_null(), "{looked}");
        eprintln!(
            "lease: Terraform {}: a 5 s token outlived a 12 s wait with {} renewals; after apply: ttl {} s, last_renewal_time {}",
            tf.version,
            apply.stderr.matches("Vault token renewed").count(),
            looked["data"]["ttl"],
            looked["data"]["last_renewal_time"]
        );

        wd.env("VAULT_TOKEN", bao.token());
        let destroy = wd.destroy();
        assert!(destroy.success(), "{destroy}");
        assert!(bao.policy("after-the-wait").is_none());
    }
}

const AUDIENCE: &str = "api://terraform-ci";

/// OpenBao trusting the emulator at the JWT mount `ci-jwt`, with the role `terraform` (policy
/// `tf-admin`, plus `token`'s settings) for the emulator's tokens of [`AUDIENCE`]; the `vault`
/// block settings that log in with it.
fn ci_login(bao: &Bao, emu: &Emulator, token: serde_json::Value) -> String {
    bao.write_policy("tf-admin", MANAGES_POLICIES);
    bao.trust_emulator(emu, "ci-jwt");
    let mut role = json!({"token_policies": ["tf-admin"]});
    for (k, v) in token.as_object().into_iter().flatten() {
        role[k] = v.clone();
    }
    bao.emulator_role(emu, "ci-jwt", "terraform", AUDIENCE, role);
    format!(
        "address = \"{}\"\nauth_login_jwt {{\n  mount = \"ci-jwt\"\n  role  = \"terraform\"\n}}",
        bao.addr()
    )
}

#[test]
fn an_apply_outlives_the_ttl_and_max_ttl_of_a_jwt_login_token() {
    let bao = Bao::start();
    let emu = Emulator::start();
    // Tokens live 4 s and at most 9 s in all: a 14 s wait needs renewals and a new login.
    let vault = ci_login(
        &bao,
        &emu,
        json!({"token_ttl": "4s", "token_max_ttl": "9s"}),
    );
    for tf in terraform_versions() {
        let jwt = emu.managed_identity_token(AUDIENCE);
        let mut wd = Workdir::new(tf);
        wd.write_config(&slow_config(&vault, 14));
        wd.env("APIM_VAULT_AUTH_JWT", &jwt);
        wd.env("TF_LOG_PROVIDER", "debug");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(bao.policy("after-the-wait").is_some());
        assert!(apply.stderr.contains("Vault token renewed"), "{apply}");
        assert!(apply.stderr.contains("Logged in to Vault again"), "{apply}");
        assert_absent(
            "the debug log",
            &apply.combined(),
            &[("the JWT", jwt.as_str())],
        );
        eprintln!(
            "lease: Terraform {}: JWT login tokens (ttl 4 s, max 9 s) over a 14 s wait: {} renewals, {} new logins",
            tf.version,
            apply.stderr.matches("Vault token renewed").count(),
            apply.stderr.matches("Logged in to Vault again").count()
        );
        let destroy = wd.destroy();
        assert!(destroy.success(), "{destroy}");
    }
}

/// The live tokens OpenBao holds that were issued by logging in to `auth/<mount>/login`.
fn live_login_tokens(bao: &Bao, mount: &str) -> usize {
    let (status, listed) = bao.api("LIST", "auth/token/accessors", None);
    assert_eq!(status, 200, "{listed}");
    listed["data"]["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            let (status, t) = bao.api(
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({"accessor": a})),
            );
            status == 200 && t["data"]["path"] == format!("auth/{mount}/login")
        })
        .count()
}

/// A token obtained by `auth_login_jwt` does not outlive the provider process: Terraform's
/// Shutdown revokes it (here with an hour of TTL left), and a configured token is left alone.
#[test]
fn the_token_a_jwt_login_obtained_is_revoked_when_the_provider_exits() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let vault = ci_login(&bao, &emu, json!({"token_ttl": "1h"}));
    for tf in terraform_versions() {
        let mut wd = Workdir::new(tf);
        wd.write_config(&slow_config(&vault, 0));
        wd.env("APIM_VAULT_AUTH_JWT", emu.managed_identity_token(AUDIENCE));
        wd.env("TF_LOG_PROVIDER", "debug");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(
            apply
                .stderr
                .contains("Revoked a Vault token this process obtained"),
            "{apply}"
        );
        assert_eq!(
            live_login_tokens(&bao, "ci-jwt"),
            0,
            "[{}] no token of the provider's logins is left alive",
            tf.version
        );
        let destroy = wd.destroy();
        assert!(destroy.success(), "{destroy}");
        assert_eq!(live_login_tokens(&bao, "ci-jwt"), 0);
    }
    // A configured token is never revoked by the provider.
    let configured = bao.create_token(json!({"policies": ["tf-admin"], "ttl": "1h"}));
    let mut wd = Workdir::new(&terraform_versions()[0]);
    wd.write_config(&slow_config(&format!("address = \"{}\"", bao.addr()), 0));
    wd.env("VAULT_TOKEN", &configured);
    assert!(wd.apply().success());
    let (status, _) = bao.api(
        "POST",
        "auth/token/lookup",
        Some(json!({"token": configured})),
    );
    assert_eq!(status, 200, "the configured token is still valid");
    assert!(wd.destroy().success());
}
