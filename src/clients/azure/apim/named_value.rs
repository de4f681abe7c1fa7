//! Named values: `{service}/namedValues/{namedValueId}` — apimnamedvalues.json
//! (`NamedValueCreateContract`, `NamedValueContract`, `NamedValueUpdateParameters`,
//! `NamedValueSecretContract` in definitions.json).
//!
//! PUT and PATCH are long-running operations ([`Azure::send`] follows them). A secret named
//! value never shows its value in GET, list or PUT answers; `listValue` returns it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clients::azure::id::{NamedValueId, ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError, Tagged};

/// A Key Vault reference instead of an inline value (`KeyVaultContractCreateProperties`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultReference {
    /// e.g. `https://contoso.vault.azure.net/secrets/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_identifier: Option<String>,
    /// A user-assigned identity's client ID; the system-assigned one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_client_id: Option<String>,
}

/// Body of `PUT {service}/namedValues/{id}` (`NamedValueCreateContract`). `If-Match` is
/// optional; 201 (created) or 200 (updated), both long-running.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedValueCreate {
    /// Required, 1–256 of `[A-Za-z0-9-._]`: the name policies use as `{{displayName}}`.
    pub display_name: String,
    /// Inline value, ≤ 4096 characters (or use `key_vault`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Whether the value is secret (then never shown by GET).
    pub secret: bool,
    /// Tags (a list, not a map; ≤ 32).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Key Vault reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_vault: Option<KeyVaultReference>,
}

impl fmt::Debug for NamedValueCreate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedValueCreate")
            .field("display_name", &self.display_name)
            .field("value", &shown(&self.value, self.secret))
            .field("secret", &self.secret)
            .field("tags", &self.tags)
            .field("key_vault", &self.key_vault)
            .finish()
    }
}

fn shown(value: &Option<String>, secret: bool) -> Option<&str> {
    match value {
        Some(_) if secret => Some("<secret>"),
        Some(v) => Some(v),
        None => None,
    }
}

/// Body of `PATCH {service}/namedValues/{id}` (`NamedValueUpdateParameters`): only the
/// fields given change. `If-Match` is required; 200 or 202 (long-running).
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedValueUpdate {
    /// New display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// New value (at least one character).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// New secret flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
    /// New tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl fmt::Debug for NamedValueUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedValueUpdate")
            .field("display_name", &self.display_name)
            .field("value", &self.value.as_ref().map(|_| "<hidden>"))
            .field("secret", &self.secret)
            .field("tags", &self.tags)
            .finish()
    }
}

/// Response of GET/PUT/PATCH (`NamedValueContract`).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedValue {
    /// ARM ID.
    pub id: String,
    /// The named value ID.
    pub name: String,
    /// Properties.
    pub properties: NamedValueProperties,
}

/// `properties` of a named value.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedValueProperties {
    /// Display name.
    pub display_name: String,
    /// The value, for a non-secret inline named value.
    #[serde(default)]
    pub value: Option<String>,
    /// Secret flag.
    #[serde(default)]
    pub secret: bool,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Key Vault reference.
    #[serde(default)]
    pub key_vault: Option<KeyVaultReference>,
    /// e.g. `InProgress` in a PUT answer, `Succeeded` later.
    #[serde(default)]
    pub provisioning_state: Option<String>,
}

impl fmt::Debug for NamedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.properties;
        f.debug_struct("NamedValue")
            .field("id", &self.id)
            .field("display_name", &p.display_name)
            .field("value", &shown(&p.value, p.secret))
            .field("secret", &p.secret)
            .field("tags", &p.tags)
            .field("key_vault", &p.key_vault)
            .field("provisioning_state", &p.provisioning_state)
            .finish()
    }
}

/// Response of `POST {service}/namedValues/{id}/listValue` (`NamedValueSecretContract`).
#[derive(Clone, Deserialize)]
pub struct NamedValueSecret {
    /// The value.
    #[serde(default)]
    pub value: String,
}

impl fmt::Debug for NamedValueSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamedValueSecret(<secret>)")
    }
}

impl Azure {
    /// `PUT {service}/namedValues/{id}`: creates or replaces it; waits for the operation.
    pub async fn put_named_value(
        &self,
        id: &NamedValueId,
        body: &NamedValueCreate,
        if_match: Option<&str>,
    ) -> Result<Tagged<NamedValue>, AzureError> {
        self.put_json(
            &id.arm_id(),
            json!({ "properties": body }),
            if_match,
            &format!("creating or updating {id}"),
        )
        .await
    }

    /// `GET {service}/namedValues/{id}` (without a secret value).
    pub async fn get_named_value(
        &self,
        id: &NamedValueId,
    ) -> Result<Tagged<NamedValue>, AzureError> {
        self.get_json(&id.arm_id(), &[], &format!("reading {id}"))
            .await
    }

    /// `PATCH {service}/namedValues/{id}` with `If-Match` (`*` for unconditional).
    pub async fn patch_named_value(
        &self,
        id: &NamedValueId,
        body: &NamedValueUpdate,
        if_match: &str,
    ) -> Result<Tagged<NamedValue>, AzureError> {
        self.patch_json(
            &id.arm_id(),
            json!({ "properties": body }),
            Some(if_match),
            &format!("updating {id}"),
        )
        .await
    }

    /// `DELETE {service}/namedValues/{id}` with `If-Match` (`*` for unconditional); success
    /// when it is already gone.
    pub async fn delete_named_value(
        &self,
        id: &NamedValueId,
        if_match: &str,
    ) -> Result<(), AzureError> {
        self.delete(&id.arm_id(), Some(if_match), &format!("deleting {id}"))
            .await
    }

    /// `GET {service}/namedValues` with an optional OData `$filter`, every page.
    pub async fn list_named_values(
        &self,
        service: &ServiceId,
        filter: Option<&str>,
    ) -> Result<Vec<NamedValue>, AzureError> {
        let query: Vec<(&str, &str)> = filter.map(|f| ("$filter", f)).into_iter().collect();
        self.list_json(
            &format!("{}/namedValues", service.arm_id()),
            &query,
            &format!("listing the named values of {service}"),
        )
        .await
    }

    /// `POST {service}/namedValues/{id}/listValue`: the value, secret or not.
    pub async fn named_value_secret(
        &self,
        id: &NamedValueId,
    ) -> Result<Tagged<NamedValueSecret>, AzureError> {
        self.post_json(
            &format!("{}/listValue", id.arm_id()),
            None,
            &format!("reading the value of {id}"),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_spec_and_hide_secrets() {
        let b = NamedValueCreate {
            display_name: "vault-token".into(),
            value: Some("hunter2".into()),
            secret: true,
            tags: vec![],
            key_vault: None,
        };
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({"displayName": "vault-token", "value": "hunter2", "secret": true})
        );
        assert!(!format!("{b:?}").contains("hunter2"));
        let u = NamedValueUpdate {
            value: Some("hunter2".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"value": "hunter2"})
        );
        assert!(!format!("{u:?}").contains("hunter2"));
        let s: NamedValueSecret = serde_json::from_value(json!({"value": "hunter2"})).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
