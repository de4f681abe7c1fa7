//! ACL policies: `sys/policy/<name>` (the same store as `sys/policies/acl/<name>`).
//! API reference: <https://developer.hashicorp.com/vault/api-docs/system/policy>.

use super::{Vault, VaultError};

impl Vault {
    /// GET `sys/policy/<name>`: the policy text, or `None` when there is no such policy.
    pub async fn read_policy(&self, name: &str) -> Result<Option<String>, VaultError> {
        let path = format!("sys/policy/{name}");
        match self
            .call(&path, |c| async move {
                vaultrs::sys::policy::read(&c, name).await
            })
            .await
        {
            Ok(p) => Ok(Some(p.rules)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT `sys/policy/<name>`: creates or replaces the policy.
    pub async fn write_policy(&self, name: &str, text: &str) -> Result<(), VaultError> {
        let path = format!("sys/policy/{name}");
        self.call(&path, |c| async move {
            vaultrs::sys::policy::set(&c, name, text).await
        })
        .await
    }

    /// DELETE `sys/policy/<name>`; success when it is already gone.
    pub async fn delete_policy(&self, name: &str) -> Result<(), VaultError> {
        let path = format!("sys/policy/{name}");
        match self
            .call(&path, |c| async move {
                vaultrs::sys::policy::delete(&c, name).await
            })
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}
