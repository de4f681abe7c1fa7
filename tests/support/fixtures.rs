//! Configuration the acceptance tests share, as HCL text: the `terraform` block, provider
//! blocks, and the Vault objects most binding tests need (the "trio": an auth backend trusting
//! the emulator's tenant, a policy granting a read, a role for the emulator's APIM instance).
//! A test appends what is particular to it.

use std::path::Path;

use super::{Bao, Emulator};

/// The `terraform` block every configuration using the provider starts with: with
/// `dev_overrides`, the source address must match the override.
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    apim = {
      source = "apimvault/apim"
    }
  }
}
"#;

/// The audience of [`vault_trio`]'s role, and so of the bindings that log in with it.
pub const AUDIENCE: &str = "api://apim-vault";

/// A Vault policy that may manage ACL policies, for tokens that apply configurations of
/// `apim_vault_policy` (and nothing else).
pub const MANAGES_POLICIES: &str = "path \"sys/policies/acl/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\npath \"sys/policy/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n";

/// `text` as an HCL string literal (JSON's quoting is HCL's for the text tests use).
pub fn hcl_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// `file("<path>")`: the file's content, read by Terraform.
pub fn hcl_file(path: &Path) -> String {
    format!("file({})", hcl_string(&path.to_string_lossy()))
}

/// The lines of `settings` (attribute lines, possibly blocks), each indented by `depth`
/// levels of two spaces, with a newline after each; empty when `settings` is blank.
fn indented(settings: &str, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    let lines: Vec<&str> = settings.trim_matches('\n').lines().collect();
    let margin = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| match l.get(margin..) {
            Some(rest) if !rest.trim().is_empty() => format!("{pad}{rest}\n"),
            _ => "\n".to_string(),
        })
        .collect()
}

/// [`REQUIRED_PROVIDERS`] and `provider "apim" {}`: the provider takes Vault and Azure from
/// the environment (`bao.env()`, `emu.env()`).
pub fn provider_from_env() -> String {
    format!("{REQUIRED_PROVIDERS}provider \"apim\" {{}}\n")
}

/// [`REQUIRED_PROVIDERS`] and a provider whose `vault` block holds `settings`.
pub fn provider_with_vault(settings: &str) -> String {
    format!("{REQUIRED_PROVIDERS}{}", provider_block("", settings))
}

/// [`provider_with_vault`] pointing at `bao` with its root token.
pub fn provider_at(bao: &Bao) -> String {
    provider_with_vault(&vault_at(bao.addr(), bao.token()))
}

/// A second instance of the provider, `apim.<alias>`, whose `vault` block holds `settings`
/// (to follow [`provider_from_env`], [`provider_with_vault`] or [`provider_at`]).
pub fn aliased_provider(alias: &str, settings: &str) -> String {
    provider_block(&format!("alias = \"{alias}\""), settings)
}

fn provider_block(top: &str, vault: &str) -> String {
    format!(
        "provider \"apim\" {{\n{}  vault {{\n{}  }}\n}}\n",
        indented(top, 1),
        indented(vault, 2)
    )
}

/// The `vault` settings of a provider at `address` with `token`.
pub fn vault_at(address: &str, token: &str) -> String {
    format!(
        "address = {}\ntoken   = {}",
        hcl_string(address),
        hcl_string(token)
    )
}

/// `apim_vault_auth_backend.entra` at `apim-jwt`, trusting the emulator's tenant (its
/// discovery served under the emulator's CA); `settings` adds attributes.
pub fn entra_backend(emu: &Emulator, settings: &str) -> String {
    format!(
        "resource \"apim_vault_auth_backend\" \"entra\" {{\n  path                  = \"apim-jwt\"\n  tenant_id             = \"{}\"\n  oidc_discovery_ca_pem = {}\n{}}}\n",
        emu.tenant_id(),
        hcl_file(emu.ca_file()),
        indented(settings, 1)
    )
}

/// `apim_vault_policy.<label>` named `name`, with one rule granting `read` on `path`.
pub fn read_policy(label: &str, name: &str, path: &str) -> String {
    format!(
        "resource \"apim_vault_policy\" \"{label}\" {{\n  name = \"{name}\"\n  rule {{\n    path         = \"{path}\"\n    capabilities = [\"read\"]\n  }}\n}}\n"
    )
}

/// The Vault side of a binding: [`entra_backend`]; `apim_vault_policy.orders`
/// (`orders-reader`, granting `read` on `read_path`); and `apim_vault_azure_role.orders`
/// (`orders-apim` at the backend, for the emulator's APIM instance and [`AUDIENCE`], with that
/// policy), `role_settings` adding attributes to the role.
pub fn vault_trio(emu: &Emulator, read_path: &str, role_settings: &str) -> String {
    format!(
        r#"{backend}{policy}resource "apim_vault_azure_role" "orders" {{
  name              = "orders-apim"
  backend           = apim_vault_auth_backend.entra.path
  api_management_id = "{apim}"
  audience          = "{AUDIENCE}"
  token_policies    = [apim_vault_policy.orders.name]
{role_settings}}}
"#,
        backend = entra_backend(emu, ""),
        policy = read_policy("orders", "orders-reader", read_path),
        apim = emu.api_management_id(),
        role_settings = indented(role_settings, 1),
    )
}

/// `apim_vault_binding.<label>` logging in with [`vault_trio`]'s role at its backend, for
/// [`AUDIENCE`]; `settings` holds the rest (`api_management_id`, `name`, the secret,
/// `inject`...).
pub fn trio_binding(label: &str, settings: &str) -> String {
    format!(
        "resource \"apim_vault_binding\" \"{label}\" {{\n  role     = apim_vault_azure_role.orders.name\n  backend  = apim_vault_auth_backend.entra.path\n  audience = \"{AUDIENCE}\"\n{}}}\n",
        indented(settings, 1)
    )
}
