//! ACL policies: `sys/policies/acl/<name>` (the same store as `sys/policy/<name>`).
//! API reference: <https://openbao.org/api-docs/system/policies/>.

use reqwest::Method;
use serde::Deserialize;

use super::{Vault, VaultError};

#[derive(Deserialize)]
struct Read {
    data: Policy,
}

#[derive(Deserialize)]
struct Policy {
    policy: String,
}

impl Vault {
    /// GET `sys/policies/acl/<name>`: the policy text, or `None` when there is no such policy.
    pub async fn read_policy(&self, name: &str) -> Result<Option<String>, VaultError> {
        match self
            .send::<Read>(Method::GET, &format!("sys/policies/acl/{name}"), None)
            .await
        {
            Ok(r) => Ok(Some(r.data.policy)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT `sys/policies/acl/<name>`: creates or replaces the policy.
    pub async fn write_policy(&self, name: &str, text: &str) -> Result<(), VaultError> {
        let body = serde_json::json!({ "policy": text });
        self.send::<serde_json::Value>(
            Method::PUT,
            &format!("sys/policies/acl/{name}"),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// DELETE `sys/policies/acl/<name>`; success when it is already gone.
    pub async fn delete_policy(&self, name: &str) -> Result<(), VaultError> {
        match self
            .send::<serde_json::Value>(Method::DELETE, &format!("sys/policies/acl/{name}"), None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
