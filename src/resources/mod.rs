//! One file per Terraform type, plus this registry. Resources use the framework and the
//! typed clients; they never see the protocol.

pub mod functions;
pub mod policy_xml;
mod rules;
pub(crate) mod shared_reads;
pub mod this_run;
pub mod vault_audit;
pub mod vault_auth_backend;
pub mod vault_azure_role;
pub mod vault_binding;
pub mod vault_lease;
pub mod vault_policy;
pub mod vault_policy_document;
pub mod vault_rotate;
pub mod vault_secret;

use crate::context::ProviderData;
use crate::framework::action::ActionType;
use crate::framework::lifecycle::{DataSourceType, EphemeralType, ResourceType};
use crate::framework::list::ListType;

/// Every managed resource type.
pub fn resources() -> Vec<Box<dyn ResourceType<ProviderData>>> {
    vec![
        Box::new(vault_policy::VaultPolicy),
        Box::new(vault_auth_backend::VaultAuthBackend),
        Box::new(vault_azure_role::VaultAzureRole),
        Box::new(vault_binding::VaultBinding),
        Box::new(vault_audit::VaultAudit),
    ]
}

/// Every data source type.
pub fn data_sources() -> Vec<Box<dyn DataSourceType<ProviderData>>> {
    vec![
        Box::new(vault_policy_document::VaultPolicyDocument),
        Box::new(vault_lease::VaultLease),
    ]
}

/// Every list resource type (`terraform query`).
pub fn list_resources() -> Vec<Box<dyn ListType<ProviderData>>> {
    vec![
        Box::new(vault_policy::VaultPolicyList),
        Box::new(vault_auth_backend::VaultAuthBackendList),
        Box::new(vault_azure_role::VaultAzureRoleList),
        Box::new(vault_binding::VaultBindingList),
    ]
}

/// Every ephemeral resource type.
pub fn ephemeral_resources() -> Vec<Box<dyn EphemeralType<ProviderData>>> {
    vec![Box::new(vault_secret::VaultSecret)]
}

/// Every action type.
pub fn actions() -> Vec<Box<dyn ActionType<ProviderData>>> {
    vec![Box::new(vault_rotate::VaultRotate)]
}

/// The uniform diagnostic for a failed API call: "Unable to <action> <type>", with the
/// object and the upstream error in the detail.
pub(crate) fn api_error(
    d: &mut crate::framework::Diags,
    action: &str,
    type_name: &str,
    object: &str,
    err: &dyn std::fmt::Display,
) {
    d.error(
        format!("Unable to {action} {type_name}"),
        format!("{type_name} {object}: {err}"),
    );
}

/// The uniform diagnostic for a create that finds its object already there: no silent
/// adoption, a pointer to import instead. `what` names the object ("A Vault policy named
/// \"x\""), `hint` may add another way out.
pub(crate) fn already_exists(
    d: &mut crate::framework::Diags,
    type_name: &str,
    what: &str,
    import_id: &str,
    hint: &str,
) {
    d.error(
        format!("Unable to create {type_name}"),
        format!(
            "{what} already exists. To manage it with Terraform, import it: `terraform import {type_name}.<name> {import_id}` (or an `import` block with id = {import_id:?}){hint}."
        ),
    );
}

/// An import ID without surrounding slashes and without the first of `prefixes` it starts
/// with: the API path of an object (`sys/audit/<path>`) names it as its own ID does.
pub(crate) fn strip_api_path<'a>(id: &'a str, prefixes: &[&str]) -> &'a str {
    let id = id.trim_matches('/');
    prefixes
        .iter()
        .find_map(|p| id.strip_prefix(p))
        .map(|rest| rest.trim_matches('/'))
        .unwrap_or(id)
}
