//! ACL policies: `sys/policies/acl/<name>` (the same store as `sys/policy/<name>`).
//! API reference: <https://openbao.org/api-docs/system/policies/>.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::fields::Data;
use super::path::segment;
use super::{json_body, Vault, VaultError};

/// The `data` of `GET sys/policies/acl/<name>` (the fields used here).
/// API reference: <https://openbao.org/api-docs/system/policies/#read-acl-policy>.
#[derive(Deserialize)]
struct Policy {
    policy: String,
}

/// Body of `PUT sys/policies/acl/<name>`.
/// API reference: <https://openbao.org/api-docs/system/policies/#createupdate-acl-policy>.
#[derive(Serialize)]
struct WritePolicyRequest<'a> {
    /// The policy document (HCL or JSON).
    policy: &'a str,
}

/// `sys/policies/acl/<name>`, the name percent-encoded.
fn acl_path(name: &str) -> Result<String, VaultError> {
    Ok(format!(
        "sys/policies/acl/{}",
        segment("policy name", name)?
    ))
}

impl Vault {
    /// LIST `sys/policies/acl`: the names of every ACL policy, `root` and `default` included.
    /// API reference: <https://openbao.org/api-docs/system/policies/#list-acl-policies>.
    pub async fn list_policies(&self) -> Result<Vec<String>, VaultError> {
        self.list("sys/policies/acl").await
    }

    /// GET `sys/policies/acl/<name>`: the policy text, or `None` when there is no such policy.
    pub async fn read_policy(&self, name: &str) -> Result<Option<String>, VaultError> {
        match self
            .send::<Data<Policy>>(Method::GET, &acl_path(name)?, None)
            .await
        {
            Ok(r) => Ok(Some(r.data.policy)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT `sys/policies/acl/<name>`: creates or replaces the policy.
    pub async fn write_policy(&self, name: &str, text: &str) -> Result<(), VaultError> {
        let body = json_body(&WritePolicyRequest { policy: text });
        self.send::<serde_json::Value>(Method::PUT, &acl_path(name)?, Some(&body))
            .await
            .map(|_| ())
    }

    /// DELETE `sys/policies/acl/<name>`; success when it is already gone.
    pub async fn delete_policy(&self, name: &str) -> Result<(), VaultError> {
        match self
            .send::<serde_json::Value>(Method::DELETE, &acl_path(name)?, None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            json_body(&WritePolicyRequest {
                policy: "path \"kv/*\" {}"
            }),
            serde_json::json!({"policy": "path \"kv/*\" {}"})
        );
        let read: Data<Policy> =
            serde_json::from_str(r#"{"data": {"name": "orders", "policy": "x"}}"#).unwrap();
        assert_eq!(read.data.policy, "x");
    }
}
