//! Vault over TLS: verification is on by default, a private CA is trusted through
//! `ca_cert_file` (or `VAULT_CACERT`), and `skip_tls_verify` works but warns.

use crate::support::fixtures::{hcl_string, provider_with_vault, read_policy};
use crate::support::{contains_normalized, Bao, TerraformBin, Workdir};

fn config(vault: &str) -> String {
    format!(
        "{}{}",
        provider_with_vault(vault),
        read_policy("p", "over-tls", "secret/data/tls")
    )
}

#[test]
fn vault_tls_verified_by_default_private_ca_trusted_skip_warns() {
    let bao = Bao::start_tls();
    assert!(bao.addr().starts_with("https://"));
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env() {
        wd.env(k, v);
    }

    // Verification is on: a certificate from an unknown CA is refused, nothing is written.
    wd.write_config(&config(""));
    let out = wd.apply();
    assert!(!out.success(), "an unknown CA must be refused:\n{out}");
    let text = out.combined();
    assert!(
        contains_normalized(&text, "cannot reach Vault")
            && text.to_lowercase().contains("certificate"),
        "the diagnostic names the certificate problem:\n{text}"
    );
    assert_eq!(bao.api("GET", "sys/policies/acl/over-tls", None).0, 404);
    assert!(wd.resource_addresses().is_empty());

    // The private CA, by setting and by environment.
    let ca = bao.tls_ca_file();
    let ca_hcl = hcl_string(&ca.to_string_lossy());
    wd.write_config(&config(&format!("ca_cert_file = {ca_hcl}")));
    let out = wd.apply();
    assert!(out.success(), "{out}");
    assert!(
        !contains_normalized(&out.combined(), "TLS verification of Vault is off"),
        "no warning with a trusted CA:\n{out}"
    );
    assert_eq!(bao.api("GET", "sys/policies/acl/over-tls", None).0, 200);
    wd.write_config(&config(""));
    wd.env("VAULT_CACERT", &ca);
    assert_eq!(wd.plan(true), 0, "VAULT_CACERT works as the setting does");

    // Verification off: works, and says what it risks.
    wd.env("VAULT_CACERT", "");
    wd.write_config(&config("skip_tls_verify = true"));
    let out = wd.plan_output(true);
    assert!(out.success(), "{out}");
    let text = out.combined();
    for needle in [
        "TLS verification of Vault is off",
        "ca_cert_file",
        "skip_tls_verify",
    ] {
        assert!(contains_normalized(&text, needle), "{needle:?} in:\n{text}");
    }
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    assert_eq!(bao.api("GET", "sys/policies/acl/over-tls", None).0, 404);
}
